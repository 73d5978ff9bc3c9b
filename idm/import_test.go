package idm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
)

// importAnswer is the data of POST /subject/import's answer.
type importAnswer struct {
	Rows          int64           `json:"rows"`
	Created       int64           `json:"created"`
	Existing      int64           `json:"existing"`
	RejectedCount int64           `json:"rejected_count"`
	Rejected      []idm.ImportRow `json:"rejected"`
	DryRun        bool            `json:"dry_run"`
}

// importHTTP posts body to /subject/import as the env's admin.
func (e *testEnv) importHTTP(t testing.TB, contentType, query, body string) response {
	t.Helper()
	return e.do(t, "POST", "/subject/import"+query, body, "Authorization", "JWT "+adminToken, "Content-Type", contentType)
}

// mustImport imports body and returns the answer's data.
func (e *testEnv) mustImport(t testing.TB, contentType, query, body string) importAnswer {
	t.Helper()
	r := e.importHTTP(t, contentType, query, body)
	require.Equal(t, http.StatusOK, r.status, "POST /subject/import: %s", r.body)
	var a struct{ Data importAnswer }
	r.decode(t, &a)
	return a.Data
}

// importRowCases are subject bodies, valid and invalid in every way POST
// /subject refuses one; each has its own SSSID (T-taken is stored before).
var importRowCases = []struct{ name, body string }{
	{"valid", `{"sssid":"V-1","name":"Anna Muster","bday":"1980-05-17","email":"a@example.org","date_consented":"2024-01-02T10:00:00Z","cohort":{"arm":2}}`},
	{"valid site", `{"sssid":"V-2","name":"B","bday":"1980-05-17","site":"basel"}`},
	{"valid legacy site", `{"sssid":"V-3","name":"B","bday":"1980-05-17","site":{"id":7}}`},
	{"valid escapes", `{"sssid":"V-\u00e9<4>","name":"Ann \"A\" & <b>","bday":"1980-05-17","note":"x\ny"}`},
	{"no sssid", `{"name":"A","bday":"1980-05-17"}`},
	{"sssid not a string", `{"sssid":7,"name":"A","bday":"1980-05-17"}`},
	{"sssid with slash", `{"sssid":"X/1","name":"A","bday":"1980-05-17"}`},
	{"sssid space at end", `{"sssid":"X-2 ","name":"A","bday":"1980-05-17"}`},
	{"sssid too long", `{"sssid":"` + strings.Repeat("x", idm.MaxSSSIDLen+1) + `","name":"A","bday":"1980-05-17"}`},
	{"taken", `{"sssid":"T-taken","name":"A","bday":"1980-05-17"}`},
	{"no name", `{"sssid":"X-3","bday":"1980-05-17"}`},
	{"empty bday", `{"sssid":"X-4","name":"A","bday":""}`},
	{"bad bday", `{"sssid":"X-5","name":"A","bday":"17.05.1980"}`},
	{"bad consent date", `{"sssid":"X-6","name":"A","bday":"1980-05-17","date_consented":"yesterday"}`},
	{"bad field name", `{"sssid":"X-7","name":"A","bday":"1980-05-17","bad key":1}`},
	{"reserved field name", `{"sssid":"X-8","name":"A","bday":"1980-05-17","Name":"B"}`},
	{"name too long", `{"sssid":"X-9","name":"` + strings.Repeat("n", idm.MaxNameLen+1) + `","bday":"1980-05-17"}`},
	{"valid site that is no site code", `{"sssid":"V-5","name":"A","bday":"1980-05-17","site":"a b"}`},
	{"name not a string", `{"sssid":"X-11","name":["A"],"bday":"1980-05-17"}`},
	{"duplicate key", `{"sssid":"X-12","name":"A","name":"B","bday":"1980-05-17"}`},
	{"not an object", `["X-13"]`},
	{"malformed", `{"sssid":"X-14",`},
	{"extra too large", `{"sssid":"X-15","name":"A","bday":"1980-05-17","big":"` + strings.Repeat("b", idm.MaxStringLen) + `","big2":"` + strings.Repeat("b", idm.MaxStringLen) + `","big3":"` + strings.Repeat("b", idm.MaxStringLen) + `","big4":"` + strings.Repeat("b", idm.MaxStringLen) + `","big5":"` + strings.Repeat("b", 100) + `"}`},
	{"invalid UTF-8", "{\"sssid\":\"X-16\",\"name\":\"A\xff\",\"bday\":\"1980-05-17\"}"},
}

// TestImportChecksEachRowAsPOSTSubject checks that the import accepts
// exactly the rows POST /subject accepts, refuses the others with the
// message POST /subject answers, and writes the audit record POST
// /subject writes: each row is posted to one env and imported (JSON lines)
// into another, on the same still clock.
func TestImportChecksEachRowAsPOSTSubject(t *testing.T) {
	posted := newTestEnv(t, stillClock)
	imported := newTestEnv(t, stillClock)
	for _, e := range []*testEnv{posted, imported} {
		e.must(t, http.StatusCreated, "POST", "/subject", `{"sssid":"T-taken","name":"A","bday":"1980-05-17"}`)
	}
	var file strings.Builder
	for _, c := range importRowCases {
		file.WriteString(c.body + "\n")
	}
	posted.token = adminToken
	want := map[int64]string{} // line -> POST's message, for the rows it refuses
	var created int64
	for i, c := range importRowCases {
		r := posted.staff(t, "POST", "/subject", c.body)
		switch {
		case r.status == http.StatusCreated:
			created++
		case r.status == http.StatusConflict:
			want[int64(i+1)] = idm.ReasonExists
		default:
			require.Equal(t, http.StatusBadRequest, r.status, "%s: %s", c.name, r.body)
			want[int64(i+1)] = r.message()
		}
	}
	require.EqualValues(t, 5, created, "the valid cases")
	var report []idm.ImportRow
	im, err := idm.NewImporter(idm.ImporterConfig{Store: imported.store, Now: imported.clock.Now})
	require.NoError(t, err)
	admin := &idm.Principal{UserID: adminID, Username: adminName, Admin: true}
	res, err := im.Import(t.Context(), admin, strings.NewReader(file.String()), idm.ImportOptions{
		Format: idm.ImportJSONL, Report: func(r idm.ImportRow) { report = append(report, r) }, KeepRejected: 100,
	})
	require.NoError(t, err)
	assert.Equal(t, idm.ImportResult{
		Rows: int64(len(importRowCases)), Created: created, Existing: 1, Rejected: int64(len(want) - 1),
		RejectedRows: res.RejectedRows,
	}, res)
	got := map[int64]string{}
	for _, r := range report {
		got[r.Line] = r.Reason
	}
	for i, c := range importRowCases {
		assert.Equal(t, want[int64(i+1)], got[int64(i+1)], "%s: the import's reason, POST's message", c.name)
	}
	// The subjects and their audit records are those POST /subject makes.
	for _, sssid := range []string{"V-1", "V-2", "V-3", "V-\u00e9<4>", "V-5"} {
		p, i := posted.subject(t, sssid), imported.subject(t, sssid)
		p.ID, i.ID = "", ""
		assert.Equal(t, p, i, sssid)
		pa, ia := auditsOf(t, posted, sssid), auditsOf(t, imported, sssid)
		require.Len(t, ia, 1)
		require.Len(t, pa, 1)
		assert.Equal(t, pa[0].Action, ia[0].Action)
		assert.Equal(t, pa[0].DocType, ia[0].DocType)
		assert.Equal(t, pa[0].Actor, ia[0].Actor)
		assert.Equal(t, pa[0].ActorID, ia[0].ActorID)
		assert.Equal(t, pa[0].Time, ia[0].Time)
		assert.Equal(t, string(pa[0].New), string(ia[0].New), sssid)
	}
}

// auditsOf returns the stored audit records of the subject.
func auditsOf(t testing.TB, e *testEnv, sssid string) []idm.AuditEvent {
	t.Helper()
	s, err := e.store.FindSubject(t.Context(), sssid)
	require.NoError(t, err)
	a, err := e.store.AuditsFor(t.Context(), s.ID)
	require.NoError(t, err)
	return a
}

// TestImportCSV checks CSV rows: cells are strings, empty cells absent
// keys, the reasons those of the equivalent JSON object; a header that
// cannot name subject fields refuses the file.
func TestImportCSV(t *testing.T) {
	e := newTestEnv(t, stillClock)
	csvFile := "\ufeffsssid,name,bday,email,site,date_consented,cohort\r\n" +
		"C-1,Anna Muster,1980-05-17,,,,A\r\n" +
		"C-2,\"Muster, Ben \"\"B\"\"\",1981-01-02,b@example.org,basel,2024-01-02,\r\n" +
		"C-3,No Bday,,,,,\r\n" +
		"C-4,Bad,1980-13-45,,,,\r\n" +
		"C-5,Too,1980-01-01,,,\r\n" +
		"C-1,Again,1980-05-17,,,,\r\n" +
		",Nobody,1980-05-17,,,,\r\n" +
		"C-6,\"multi\nline\",1980-05-17,,,,\r\n"
	var report []idm.ImportRow
	im, err := idm.NewImporter(idm.ImporterConfig{Store: e.store, Now: e.clock.Now})
	require.NoError(t, err)
	res, err := im.Import(t.Context(), &idm.Principal{Username: "importer", Admin: true}, strings.NewReader(csvFile),
		idm.ImportOptions{Format: idm.ImportCSV, Report: func(r idm.ImportRow) { report = append(report, r) }})
	require.NoError(t, err)
	assert.Equal(t, []idm.ImportRow{
		{Line: 4, SSSID: "C-3", Reason: "missing or empty `bday`"},
		{Line: 5, SSSID: "C-4", Reason: posted400(t, `{"sssid":"C-4","name":"Bad","bday":"1980-13-45"}`)},
		{Line: 6, SSSID: "C-5", Reason: "the row has 6 cells, the header 7"},
		{Line: 7, SSSID: "C-1", Reason: `the SSSID "C-1" appears before, on line 2`},
		{Line: 8, SSSID: "", Reason: "must at least provide `sssid`"},
	}, report)
	assert.EqualValues(t, 8, res.Rows)
	assert.EqualValues(t, 3, res.Created)
	s := e.subject(t, "C-2")
	assert.Equal(t, `Muster, Ben "B"`, s.Name)
	assert.Equal(t, "basel", s.Site)
	assert.Equal(t, "2024-01-02", s.DateConsented)
	assert.Empty(t, s.Extra, "an empty cell is an absent key")
	s = e.subject(t, "C-1")
	assert.Equal(t, "main", s.Site, "the default site")
	assert.Equal(t, "", s.Email)
	assert.JSONEq(t, `{"cohort":"A"}`, string(mustMarshal(t, s.Extra)))
	assert.Equal(t, "multi\nline", e.subject(t, "C-6").Name)

	for _, c := range []struct{ name, header, msg string }{
		{"empty file", "", "the CSV file is empty: it needs a header row that names the fields"},
		{"no sssid column", "name,bday\n", "the CSV header must name the `sssid` column"},
		{"twice", "sssid,name,name\n", `the CSV header names "name" more than once`},
		{"bad name", "sssid,bad key\n", "the CSV header: invalid field name \"bad key\": use 1 to 64 characters from A-Z, a-z, 0-9, _ and -, not starting with _"},
		{"reserved", "sssid,id\n", "the CSV header: invalid field name \"id\": the name is reserved"},
		{"malformed", "sssid,\"na\"me\n", `the CSV header is malformed: extraneous or missing " in quoted-field`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := im.Import(t.Context(), &idm.Principal{Username: "importer", Admin: true}, strings.NewReader(c.header), idm.ImportOptions{Format: idm.ImportCSV})
			require.Error(t, err)
			assert.Equal(t, http.StatusBadRequest, idm.StatusOf(err))
			assert.Equal(t, c.msg, idm.MessageOf(err))
		})
	}
}

// posted400 returns the message POST /subject answers body with.
func posted400(t *testing.T, body string) string {
	t.Helper()
	r := newTestEnv(t).staff(t, "POST", "/subject", body)
	require.Equal(t, http.StatusBadRequest, r.status, "%s", r.body)
	return r.message()
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// TestImportJSONLines checks what JSON lines may hold besides objects:
// blank lines (skipped, counted in line numbers), CRLF line ends, a byte
// order mark, a last line without a newline, and a line over the limit
// (refused on its own).
func TestImportJSONLines(t *testing.T) {
	e := newTestEnv(t)
	long := `{"sssid":"J-long","name":"` + strings.Repeat("x", idm.MaxImportRowBytes) + `","bday":"1980-05-17"}`
	file := "\ufeff{\"sssid\":\"J-1\",\"name\":\"A\",\"bday\":\"1980-05-17\"}\r\n\n   \n" + long + "\n" +
		`{"sssid":"J-2","name":"B","bday":"1980-05-17"}`
	var report []idm.ImportRow
	im, err := idm.NewImporter(idm.ImporterConfig{Store: e.store})
	require.NoError(t, err)
	res, err := im.Import(t.Context(), &idm.Principal{Username: "importer", Admin: true}, strings.NewReader(file),
		idm.ImportOptions{Format: idm.ImportJSONL, Report: func(r idm.ImportRow) { report = append(report, r) }})
	require.NoError(t, err)
	assert.Equal(t, []idm.ImportRow{{Line: 4, Reason: fmt.Sprintf("the row is longer than %d bytes", idm.MaxImportRowBytes)}}, report)
	assert.Equal(t, idm.ImportResult{Rows: 3, Created: 2, Rejected: 1}, res)
	e.subject(t, "J-1")
	e.subject(t, "J-2")
}

// TestImportRerunLeavesExistingAlone checks that importing a file again
// creates nothing, reports every row as existing, and changes neither the
// subjects nor the audit trail.
func TestImportRerunLeavesExistingAlone(t *testing.T) {
	onEachStore(t, func(t *testing.T, newStore newStoreFunc) {
		e := newTestEnvOn(t, newStore(t))
		file := jsonlRows(25, 0)
		a := e.mustImport(t, "application/x-ndjson", "", file)
		assert.Equal(t, importAnswer{Rows: 25, Created: 25, Rejected: []idm.ImportRow{}}, a)
		before := e.state(t)
		count, err := e.store.AuditCount(t.Context())
		require.NoError(t, err)
		a = e.mustImport(t, "application/x-ndjson", "", file)
		assert.Equal(t, importAnswer{Rows: 25, Existing: 25, Rejected: []idm.ImportRow{}}, a)
		assert.Equal(t, before, e.state(t), "the store after the second import")
		after, err := e.store.AuditCount(t.Context())
		require.NoError(t, err)
		assert.Equal(t, count, after)
	})
}

// jsonlRows returns n JSON lines of valid subjects R-<from> onwards.
func jsonlRows(n, from int) string {
	var b strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, `{"sssid":"R-%05d","name":"Name %d","bday":"1980-05-17"}`+"\n", i, i)
	}
	return b.String()
}

// TestImportDryRunWritesNothing checks that a dry run reports what an
// import would do and writes nothing, audit records included.
func TestImportDryRunWritesNothing(t *testing.T) {
	onEachStore(t, func(t *testing.T, newStore newStoreFunc) {
		e := newTestEnvOn(t, newStore(t))
		e.must(t, http.StatusCreated, "POST", "/subject", `{"sssid":"R-00003","name":"A","bday":"1980-05-17"}`)
		before := e.state(t)
		count, err := e.store.AuditCount(t.Context())
		require.NoError(t, err)
		file := jsonlRows(10, 0) + `{"sssid":"R-bad","name":"A","bday":"someday"}` + "\n"
		a := e.mustImport(t, "application/x-ndjson", "?dry_run=1", file)
		assert.Equal(t, int64(9), a.Created)
		assert.Equal(t, int64(1), a.Existing)
		assert.Equal(t, int64(1), a.RejectedCount)
		assert.True(t, a.DryRun)
		assert.Equal(t, before, e.state(t))
		after, err := e.store.AuditCount(t.Context())
		require.NoError(t, err)
		assert.Equal(t, count, after, "no audit record")
	})
}

// failingBatches is a store whose CreateSubjects fails on its failAt-th
// call (1 for the first); with race set, its first call instead creates the
// batch's third subject first, as a concurrent POST /subject would.
type failingBatches struct {
	idm.Store
	calls  atomic.Int32
	failAt int32
	race   bool
}

var errBatch = errors.New("the disk is full")

func (s *failingBatches) CreateSubjects(ctx context.Context, subjects []idm.Subject, audits []idm.AuditEvent) error {
	n := s.calls.Add(1)
	if n == s.failAt {
		return errBatch
	}
	if s.race && n == 1 && len(subjects) > 2 {
		other := subjects[2]
		other.ID = idm.NewID()
		if err := s.Store.CreateSubject(ctx, other); err != nil {
			return err
		}
	}
	return s.Store.CreateSubjects(ctx, subjects, audits)
}

// TestImportBatchAllOrNothing checks that a batch that cannot be stored
// stops the import: the batches before it stay stored, nothing of it or
// after it is, and the result counts what was stored.
func TestImportBatchAllOrNothing(t *testing.T) {
	onEachStore(t, func(t *testing.T, newStore newStoreFunc) {
		store := &failingBatches{Store: newStore(t), failAt: 2}
		im, err := idm.NewImporter(idm.ImporterConfig{Store: store})
		require.NoError(t, err)
		res, err := im.Import(t.Context(), &idm.Principal{Username: "importer", Admin: true}, strings.NewReader(jsonlRows(10, 0)),
			idm.ImportOptions{Format: idm.ImportJSONL, BatchSize: 4})
		require.ErrorIs(t, err, errBatch)
		assert.Contains(t, err.Error(), "the batch of lines 5 to 8")
		assert.EqualValues(t, 4, res.Created)
		_, total, err := store.ListSubjects(t.Context(), idm.SubjectFilter{Limit: 100})
		require.NoError(t, err)
		assert.Equal(t, 4, total)
		for i := range 10 {
			_, err := store.FindSubject(t.Context(), fmt.Sprintf("R-%05d", i))
			if i < 4 {
				assert.NoError(t, err, i)
			} else {
				assert.ErrorIs(t, err, idm.ErrNotFound, i)
			}
		}
		n, err := store.AuditCount(t.Context())
		require.NoError(t, err)
		assert.EqualValues(t, 4, n, "one audit record per stored subject")
	})
}

// TestImportSSSIDTakenMeanwhile checks that a batch that meets an SSSID
// created after its row was read reports that row as existing and stores
// the rest.
func TestImportSSSIDTakenMeanwhile(t *testing.T) {
	store := &failingBatches{Store: memstore.New(), race: true}
	im, err := idm.NewImporter(idm.ImporterConfig{Store: store})
	require.NoError(t, err)
	var report []idm.ImportRow
	res, err := im.Import(t.Context(), &idm.Principal{Username: "importer", Admin: true}, strings.NewReader(jsonlRows(5, 0)),
		idm.ImportOptions{Format: idm.ImportJSONL, Report: func(r idm.ImportRow) { report = append(report, r) }})
	require.NoError(t, err)
	assert.Equal(t, idm.ImportResult{Rows: 5, Created: 4, Existing: 1}, res)
	assert.Equal(t, []idm.ImportRow{{Line: 3, SSSID: "R-00002", Reason: idm.ReasonExists}}, report)
	n, err := store.AuditCount(t.Context())
	require.NoError(t, err)
	assert.EqualValues(t, 4, n)
}

// TestImportAsSiteUser checks that the rows are checked for the importing
// user's sites as POST /subject checks them: a row without a site goes to
// their one site, a row of another site is refused.
func TestImportAsSiteUser(t *testing.T) {
	e := newTestEnv(t)
	im, err := idm.NewImporter(idm.ImporterConfig{Store: e.store})
	require.NoError(t, err)
	p := &idm.Principal{UserID: staffID, Username: staffName, Role: idm.RoleCoordinator, Sites: []string{"A"}}
	var report []idm.ImportRow
	_, err = im.Import(t.Context(), p, strings.NewReader("sssid,name,bday,site\nS-1,A,1980-05-17,\nS-2,B,1980-05-17,B\nS-3,C,1980-05-17,A\n"),
		idm.ImportOptions{Format: idm.ImportCSV, Report: func(r idm.ImportRow) { report = append(report, r) }})
	require.NoError(t, err)
	assert.Equal(t, []idm.ImportRow{{Line: 3, SSSID: "S-2", Reason: idm.MsgForbidden}}, report)
	assert.Equal(t, "A", e.subject(t, "S-1").Site)
	assert.Equal(t, "A", e.subject(t, "S-3").Site)
}

// TestImportRoute checks POST /subject/import's answers to bad requests,
// its limit, and the cap on the rejected rows it lists.
func TestImportRoute(t *testing.T) {
	e := newTestEnv(t, func(c *envConfig) { c.MaxImportBytes = 64 << 10 })
	for _, c := range []struct {
		name, contentType, query, body string
		status                         int
		msg                            string
	}{
		{"json", "application/json", "", `{"sssid":"A"}`, http.StatusUnsupportedMediaType,
			"the request body must be CSV (Content-Type: text/csv) or JSON lines (Content-Type: application/x-ndjson)"},
		{"latin1", "text/csv; charset=latin1", "", "sssid\n", http.StatusUnsupportedMediaType, `the request body must be UTF-8, not charset "latin1"`},
		{"bad dry_run", "text/csv", "?dry_run=maybe", "sssid\n", http.StatusBadRequest, `query parameter "dry_run" must be 1 or 0, not "maybe"`},
		{"bad header", "text/csv", "", "sssid,_x\n", http.StatusBadRequest,
			`the CSV header: invalid field name "_x": use 1 to 64 characters from A-Z, a-z, 0-9, _ and -, not starting with _`},
		{"too large", "application/x-ndjson", "", jsonlRows(2000, 0), http.StatusRequestEntityTooLarge, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.importHTTP(t, c.contentType, c.query, c.body)
			assert.Equal(t, c.status, r.status, "%s", r.body)
			if c.msg != "" {
				assert.Equal(t, c.msg, r.message())
			} else {
				assert.Contains(t, r.message(), "request body too large (limit 65536 bytes)")
			}
		})
	}
	// A body over the limit stops the import where it is: the batches
	// before stay stored and the answer says so.
	r := e.importHTTP(t, "application/x-ndjson", "", jsonlRows(2000, 0))
	assert.Contains(t, r.message(), "the import stopped after")

	var bad bytes.Buffer
	for i := range idm.MaxImportListed + 5 {
		fmt.Fprintf(&bad, "B-%d,Name,1980-02-30\n", i)
	}
	a := e.mustImport(t, "text/csv; charset=utf-8", "", "sssid,name,bday\n"+bad.String())
	assert.EqualValues(t, idm.MaxImportListed+5, a.RejectedCount)
	assert.Len(t, a.Rejected, idm.MaxImportListed)
	assert.Equal(t, idm.ImportRow{Line: 2, SSSID: "B-0", Reason: a.Rejected[0].Reason}, a.Rejected[0])
	assert.NotEmpty(t, a.Rejected[0].Reason)
}
