package idm_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
)

// TestCreateSubjectCheckOrder checks that POST /subject checks in API.md's
// order: a missing `sssid` first (before the types and names of the other
// members), then a taken one, then the other members, name and bday, and
// the dates.
func TestCreateSubjectCheckOrder(t *testing.T) { onEachStore(t, testCreateSubjectCheckOrder) }

func testCreateSubjectCheckOrder(t *testing.T, newStore newStoreFunc) {
	e := newTestEnvOn(t, newStore(t), withAuth)
	e.must(t, http.StatusCreated, "POST", "/subject", `{"sssid": "S-1", "name": "Alice", "bday": "1980-05-17"}`)
	for _, tc := range []struct {
		name, body string
		want       int
		msg        string
	}{
		{"NoSSSIDNameNotString", `{"name": 5}`, 400, "must at least provide `sssid`"},
		{"NoSSSIDBadKey", `{"_id": "x", "name": "A", "bday": "1980-05-17"}`, 400, "must at least provide `sssid`"},
		{"NoSSSIDBadDate", `{"name": "A", "bday": "17.05.1980"}`, 400, "must at least provide `sssid`"},
		{"NullSSSIDNameNotString", `{"sssid": null, "name": []}`, 400, "must at least provide `sssid`"},
		{"EmptySSSIDBadKey", `{"a.b": 1, "sssid": ""}`, 400, "must at least provide `sssid`"},
		{"SSSIDNotString", `{"sssid": 12, "name": 5}`, 400, `field "sssid" must be a string, not a number`},
		{"TakenNameNotString", `{"sssid": "S-1", "name": 5}`, 409, "this SSSID is already taken"},
		{"TakenBadKey", `{"sssid": "S-1", "_id": "x"}`, 409, "this SSSID is already taken"},
		{"TakenSSSIDLast", `{"name": 5, "sssid": "S-1"}`, 409, "this SSSID is already taken"},
		{"FreeNameNotString", `{"sssid": "S-2", "name": 5}`, 400, `field "name" must be a string, not a number`},
		{"FreeNoName", `{"sssid": "S-2", "bday": "17.05.1980"}`, 400, "missing or empty `name`"},
		{"FreeBadDate", `{"sssid": "S-2", "name": "B", "bday": "17.05.1980"}`, 400, "invalid date in `bday`"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.staff(t, "POST", "/subject", tc.body)
			if r.status != tc.want || !strings.Contains(r.message(), tc.msg) {
				t.Errorf("%s: %d %s, want %d %q", tc.body, r.status, r.body, tc.want, tc.msg)
			}
		})
	}
	if _, err := e.store.FindSubject(t.Context(), "S-2"); !errors.Is(err, idm.ErrNotFound) {
		t.Errorf("S-2 was stored (%v)", err)
	}
}

// TestSSSIDRefused checks that SSSIDs that GET /subject/{sssid} could
// not address are refused at POST and PUT, and that unusual but addressable
// ones work.
func TestSSSIDRefused(t *testing.T) { onEachStore(t, testSSSIDRefused) }

func testSSSIDRefused(t *testing.T, newStore newStoreFunc) {
	e := newTestEnvOn(t, newStore(t), withAuth)
	body := func(sssid string) string {
		b, err := json.Marshal(map[string]string{"sssid": sssid, "name": "N", "bday": "1980-05-17"})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, tc := range []struct{ name, sssid, why string }{
		{"Slash", "S/1", "'/'"},
		{"Question", "S?1", "'?'"},
		{"Hash", "S#1", "'#'"},
		{"Percent", "S%41", "'%'"},
		{"Dot", ".", `"." and ".."`},
		{"DotDot", "..", `"." and ".."`},
		{"Leading", " S-1", "white space"},
		{"Trailing", "S-1 ", "white space"},
		{"TrailingTab", "S-1\t", "control"},
		{"LeadingNBSP", "\u00a0S-1", "white space"},
		{"NUL", "S\x001", "control"},
		{"Newline", "S-1\n", "control"},
		{"DEL", "S\x7f1", "control"},
		{"C1", "S\u00851", "control"},
	} {
		t.Run("POST/"+tc.name, func(t *testing.T) {
			r := e.staff(t, "POST", "/subject", body(tc.sssid))
			if r.status != http.StatusBadRequest || !strings.HasPrefix(r.message(), "invalid `sssid`") || !strings.Contains(r.message(), tc.why) {
				t.Errorf("sssid %q: %d %s", tc.sssid, r.status, r.body)
			}
			if _, err := e.store.FindSubject(t.Context(), tc.sssid); !errors.Is(err, idm.ErrNotFound) {
				t.Errorf("sssid %q was stored (%v)", tc.sssid, err)
			}
		})
		t.Run("PUT/"+tc.name, func(t *testing.T) {
			// Paths that name the SSSID exactly; "." and ".." would be
			// cleaned away by the mux, so those go to a plain path (and the
			// body's SSSID is refused before it is compared).
			path := "/subject/" + url.PathEscape(tc.sssid)
			if tc.sssid == "." || tc.sssid == ".." {
				path = "/subject/S-0"
			}
			r := e.staff(t, "PUT", path, `{"sssid": `+jsonString(t, tc.sssid)+`, "name": "M"}`)
			if r.status != http.StatusBadRequest || !strings.HasPrefix(r.message(), "invalid `sssid`") {
				t.Errorf("sssid %q: %d %s", tc.sssid, r.status, r.body)
			}
		})
	}
	for _, sssid := range []string{"S 1", "S.1", "...", "S-ü-1", "a+b=c", "S~1"} {
		t.Run("Usable/"+sssid, func(t *testing.T) {
			e.must(t, http.StatusCreated, "POST", "/subject", body(sssid))
			path := "/subject/" + url.PathEscape(sssid)
			var got struct {
				Data struct {
					SSSID string `json:"sssid"`
				} `json:"data"`
			}
			if err := json.Unmarshal(e.must(t, http.StatusOK, "GET", path, "").body, &got); err != nil || got.Data.SSSID != sssid {
				t.Errorf("GET %s: %+v %v", path, got, err)
			}
			e.must(t, http.StatusNoContent, "PUT", path, `{"sssid": `+jsonString(t, sssid)+`, "name": "M"}`)
		})
	}
}

func jsonString(t testing.TB, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// serverTime is the one shape of server-set times: RFC 3339 in UTC with six
// fractional digits.
var serverTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)

// TestServerSetTimes checks that the times the server sets are written
// with six fractional digits, also on whole seconds and with trailing zeros:
// subjects' created and changed, a derived date_enrolled, and audit
// records' datetime.
func TestServerSetTimes(t *testing.T) { onEachStore(t, testServerSetTimes) }

func testServerSetTimes(t *testing.T, newStore newStoreFunc) {
	e := newTestEnvOn(t, newStore(t), withAuth, stillClock)
	t0 := time.Date(2026, 11, 29, 12, 24, 5, 0, time.UTC)
	t1 := time.Date(2026, 11, 29, 12, 25, 0, 640_000_000, time.UTC)
	e.clock.Set(t0)
	e.must(t, http.StatusCreated, "POST", "/subject", `{"sssid": "S-1", "name": "Alice", "bday": "1980-05-17", "date_consented": "2026-11-01"}`)
	e.clock.Set(t1)
	e.must(t, http.StatusNoContent, "PUT", "/subject/S-1", `{"sssid": "S-1", "name": "Alicia"}`)

	type subject struct {
		Created      string `json:"created"`
		Changed      string `json:"changed"`
		DateEnrolled string `json:"date_enrolled"`
	}
	check := func(t *testing.T, got subject, wantEnrolled string) {
		t.Helper()
		if got.Created != "2026-11-29T12:24:05.000000Z" || got.Changed != "2026-11-29T12:25:00.640000Z" || got.DateEnrolled != wantEnrolled {
			t.Errorf("got %+v, want created 2026-11-29T12:24:05.000000Z, changed 2026-11-29T12:25:00.640000Z, enrolled %q", got, wantEnrolled)
		}
	}
	var one struct{ Data subject }
	if err := json.Unmarshal(e.must(t, http.StatusOK, "GET", "/subject/S-1", "").body, &one); err != nil {
		t.Fatal(err)
	}
	check(t, one.Data, "")
	var page struct{ Data []subject }
	if err := json.Unmarshal(e.must(t, http.StatusOK, "GET", "/subject", "").body, &page); err != nil || len(page.Data) != 1 {
		t.Fatalf("list: %+v %v", page, err)
	}
	check(t, page.Data[0], "")

	// Enrol the subject as the app does, at a whole second.
	var link struct {
		Data struct {
			ID string `json:"_id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(e.must(t, http.StatusCreated, "POST", "/subject/S-1/links", "").body, &link); err != nil {
		t.Fatal(err)
	}
	jwt := string(e.must(t, http.StatusOK, "GET", "/link/"+link.Data.ID+"/jwt", "").body)
	e.clock.Set(time.Date(2026, 11, 29, 13, 0, 0, 0, time.UTC))
	if r := e.staff(t, "POST", "/establish", `{"resourceType": "Patient", "identifier": [{"system": "urn:x", "value": "P-1"}]}`,
		"Authorization", "Bearer "+jwt); r.status != http.StatusNoContent {
		t.Fatalf("establish: %d %s", r.status, r.body)
	}
	e.clock.Set(t1.Add(time.Hour)) // reads do not change created/changed
	if err := json.Unmarshal(e.must(t, http.StatusOK, "GET", "/subject/S-1", "").body, &one); err != nil {
		t.Fatal(err)
	}
	if one.Data.DateEnrolled != "2026-11-29T13:00:00.000000Z" {
		t.Errorf("date_enrolled %q, want 2026-11-29T13:00:00.000000Z", one.Data.DateEnrolled)
	}

	var trail struct {
		Data []struct {
			Datetime string `json:"datetime"`
			Action   string `json:"action"`
		} `json:"data"`
	}
	if err := json.Unmarshal(e.must(t, http.StatusOK, "GET", "/subject/S-1/audits", "").body, &trail); err != nil || len(trail.Data) < 2 {
		t.Fatalf("audits: %+v %v", trail, err)
	}
	if trail.Data[0].Datetime != "2026-11-29T12:24:05.000000Z" || trail.Data[1].Datetime != "2026-11-29T12:25:00.640000Z" {
		t.Errorf("audit datetimes %q, %q", trail.Data[0].Datetime, trail.Data[1].Datetime)
	}
	for _, a := range trail.Data {
		if !serverTime.MatchString(a.Datetime) {
			t.Errorf("audit %q: datetime %q", a.Action, a.Datetime)
		}
	}
	var all struct {
		Data []struct {
			Datetime string `json:"datetime"`
		} `json:"data"`
	}
	if err := json.Unmarshal(e.must(t, http.StatusOK, "GET", "/audit", "").body, &all); err != nil || len(all.Data) == 0 {
		t.Fatalf("GET /audit: %+v %v", all, err)
	}
	for _, a := range all.Data {
		if !serverTime.MatchString(a.Datetime) {
			t.Errorf("GET /audit: datetime %q", a.Datetime)
		}
	}
}

// TestAnswersNotStored checks that JSON answers, data and errors alike, are
// marked "Cache-Control: no-store", and that a handler's own Cache-Control
// is kept.
func TestAnswersNotStored(t *testing.T) {
	e := newTestEnvOn(t, memstore.New(), withAuth)
	e.must(t, http.StatusCreated, "POST", "/subject", `{"sssid": "S-1", "name": "Alice", "bday": "1980-05-17"}`)
	for _, tc := range []struct {
		name, method, target, body string
		header                     []string
		want                       int
		cache                      string
	}{
		{"Create", "POST", "/subject", `{"sssid": "S-2", "name": "Bob", "bday": "1980-05-17"}`, nil, 201, "no-store"},
		{"List", "GET", "/subject", "", nil, 200, "no-store"},
		{"Get", "GET", "/subject/S-1", "", nil, 200, "no-store"},
		{"Audits", "GET", "/subject/S-1/audits", "", nil, 200, "no-store"},
		{"AllAudits", "GET", "/audit", "", nil, 200, "no-store"},
		{"BadInput", "POST", "/subject", `{"name": 5}`, nil, 400, "no-store"},
		{"Conflict", "POST", "/subject", `{"sssid": "S-1"}`, nil, 409, "no-store"},
		{"NotFound", "GET", "/subject/S-404", "", nil, 404, "no-store"},
		{"NoToken", "GET", "/subject/S-1", "", []string{"Authorization", ""}, 401, "no-store"},
		{"UnknownPath", "GET", "/nothing/here", "", nil, 404, "no-store"},
		{"WrongMethod", "DELETE", "/subject", "", nil, 405, "no-store"},
		{"EstablishNoToken", "POST", "/establish", "", []string{"Authorization", ""}, 401, "no-store"},
		{"LoginFailed", "POST", "/auth", `{"username": "admin@example.org", "password": "wrong password"}`, nil, 401, "no-store"},
		{"PublicKeysKeepTheirs", "GET", "/.well-known/jwks.json", "", nil, 200, "public, max-age=300"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.staff(t, tc.method, tc.target, tc.body, tc.header...)
			if r.status != tc.want {
				t.Fatalf("%d %s, want %d", r.status, r.body, tc.want)
			}
			if got := r.header.Values("Cache-Control"); !slices.Equal(got, []string{tc.cache}) {
				t.Errorf("Cache-Control %q, want %q", got, tc.cache)
			}
		})
	}
}

// serverCtxKey keys the server's own request context in the contexts of the
// disconnect test, so that its store can wait until the server has seen the
// client go.
type serverCtxKey struct{}

// hangingStore is a memstore whose subject writes are carried out, but then,
// when armed, wait until the client has gone and report the request
// context's error, as the MongoDB driver does for a write that the server
// has committed after the driver stopped waiting.
type hangingStore struct {
	idm.Store
	mu      sync.Mutex
	armed   bool
	entered chan struct{} // closed when an armed write is done
	saw     chan bool     // whether the server saw the client go
}

func (s *hangingStore) arm() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed, s.entered, s.saw = true, make(chan struct{}), make(chan bool, 1)
}

func (s *hangingStore) hang(ctx context.Context) error {
	s.mu.Lock()
	armed := s.armed
	s.armed = false
	s.mu.Unlock()
	if !armed {
		return nil
	}
	close(s.entered)
	orig, _ := ctx.Value(serverCtxKey{}).(context.Context)
	saw := false
	if orig != nil {
		select {
		case <-orig.Done():
			saw = true
		case <-time.After(10 * time.Second):
		}
	}
	s.saw <- saw
	return ctx.Err()
}

func (s *hangingStore) CreateSubject(ctx context.Context, sub idm.Subject) error {
	if err := s.Store.CreateSubject(context.WithoutCancel(ctx), sub); err != nil {
		return err
	}
	return s.hang(ctx)
}

func (s *hangingStore) UpdateSubject(ctx context.Context, sub idm.Subject) error {
	if err := s.Store.UpdateSubject(context.WithoutCancel(ctx), sub); err != nil {
		return err
	}
	return s.hang(ctx)
}

// TestChangeSurvivesDisconnect checks that a client that goes away
// while its change is being written does not end the change: the write the
// store carried out is not followed by a compensating "failed" record.
func TestChangeSurvivesDisconnect(t *testing.T) {
	for _, tc := range []struct {
		name, method, target, body string
		action                     string
		check                      func(s idm.Subject) bool
	}{
		{"Create", "POST", "/subject", `{"sssid": "S-2", "name": "Bob", "bday": "1980-05-17"}`, "create",
			func(s idm.Subject) bool { return s.Name == "Bob" }},
		{"Update", "PUT", "/subject/S-1", `{"sssid": "S-1", "name": "Alicia"}`, `name: "Alicia"`,
			func(s idm.Subject) bool { return s.Name == "Alicia" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &hangingStore{Store: memstore.New()}
			e := newTestEnvOn(t, store, withAuth, wrapped(func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), serverCtxKey{}, r.Context())))
				})
			}))
			e.must(t, http.StatusCreated, "POST", "/subject", `{"sssid": "S-1", "name": "Alice", "bday": "1980-05-17"}`)
			e.clock.Set(e.clock.Now().Add(time.Second))
			store.arm()

			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, tc.method, e.srv.URL+tc.target, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "JWT "+e.token)
			done := make(chan error, 1)
			go func() {
				res, err := e.srv.Client().Do(req)
				if err == nil {
					res.Body.Close()
				}
				done <- err
			}()
			select {
			case <-store.entered:
			case err := <-done:
				t.Fatalf("the request ended before its write: %v", err)
			}
			cancel() // the client goes away while the write is under way
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("client: %v, want context.Canceled", err)
			}
			if !<-store.saw {
				t.Fatal("the server did not see the client go")
			}
			e.srv.Close() // waits for the handler to finish

			sssid := "S-2"
			if tc.method == "PUT" {
				sssid = "S-1"
			}
			s, err := store.FindSubject(t.Context(), sssid)
			if err != nil || !tc.check(s) {
				t.Fatalf("stored %+v, %v", s, err)
			}
			got := e.storedActions(t, sssid)
			if len(got) == 0 || got[len(got)-1] != tc.action {
				t.Errorf("audit actions %q, want the last to be %q and no failed record", got, tc.action)
			}
			for _, a := range got {
				if strings.HasSuffix(a, idm.AuditFailed) {
					t.Errorf("audit actions %q: a compensating record for a change that was made", got)
				}
			}
		})
	}
}
