package idm_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/c3-pro/idm/auditlog"
	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
	"github.com/c3-pro/idm/users"
)

// matrixRole is a staff user of the role × endpoint × site matrix.
type matrixRole struct {
	name  string
	role  idm.Role // "" for a user stored without a role
	sites []string
	admin bool
}

// The roles of the matrix: site A is "their" site, B another one.
var matrixRoles = []matrixRole{
	{name: "admin", role: idm.RoleAdmin, sites: []string{idm.AllSites}, admin: true},
	{name: "coordinatorA", role: idm.RoleCoordinator, sites: []string{"A"}},
	{name: "monitorA", role: idm.RoleMonitor, sites: []string{"A"}},
	{name: "auditorA", role: idm.RoleAuditor, sites: []string{"A"}},
	{name: "coordinatorAll", role: idm.RoleCoordinator, sites: []string{idm.AllSites}},
	{name: "noRole", role: ""},
}

const matrixPassword = "a long and unusual matrix password"

// matrixEnv is the API, package auth's routes, the users handler and the
// audit log's routes on one store, served over real HTTP, with a user of
// each matrix role.
type matrixEnv struct {
	*testEnv
	tokens map[string]string // role name → staff token
	ids    map[string]string // role name → user ID
}

func newMatrixEnv(t *testing.T, store idm.Store) *matrixEnv {
	t.Helper()
	ctx := t.Context()
	pw, err := auth.NewPasswords(auth.PasswordConfig{Cost: 4})
	if err != nil {
		t.Fatal(err)
	}
	// The same key as newAuthHandler's: the users handler's auth accepts
	// the env's tokens.
	key, err := auth.NewHMACKey([]byte("0123456789abcdef0123456789abcdef-review"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.NewKeySet(key)
	if err != nil {
		t.Fatal(err)
	}
	var uh http.Handler // made below, on the env's clock
	logMux := http.NewServeMux()
	env := newTestEnvOn(t, store, withAuth, wrapped(func(next http.Handler) http.Handler {
		mux := http.NewServeMux()
		users := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { uh.ServeHTTP(w, r) })
		mux.Handle("/user", users)
		mux.Handle("/user/", users)
		for _, path := range []string{"/audit/checkpoint", "/audit/proof", "/audit/consistency"} {
			mux.Handle(path, logMux)
		}
		mux.Handle("/", next)
		return mux
	}))
	ah, err := auth.New(auth.Config{Store: store, Keys: keys, Passwords: pw, Now: env.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if uh, err = users.New(users.Config{Store: store, Passwords: pw, Authenticate: ah.Require, Now: env.clock.Now}); err != nil {
		t.Fatal(err)
	}
	logKey, err := auditlog.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := auditlog.ParseKey(logKey)
	if err != nil {
		t.Fatal(err)
	}
	auditLog, err := auditlog.New(auditlog.Config{Store: store, Key: signer, Authenticate: ah.Require, Now: env.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	auditLog.Install(logMux.Handle)
	m := &matrixEnv{testEnv: env, tokens: map[string]string{}, ids: map[string]string{}}
	hash, err := pw.Hash(ctx, matrixPassword)
	if err != nil {
		t.Fatal(err)
	}
	at := idm.Timestamp(env.clock.Now())
	for _, r := range matrixRoles {
		u := idm.User{ID: idm.NewID(), Username: "matrix-" + strings.ToLower(r.name) + "@example.org", PasswordHash: hash,
			Admin: r.admin, Role: r.role, Sites: r.sites, Created: at, Changed: at}
		if err := store.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		m.ids[r.name] = u.ID
		m.tokens[r.name] = env.login(t, u.Username, matrixPassword)
	}
	// A checkpoint, so that the audit log's routes have a tree to prove.
	if _, err := auditLog.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	return m
}

// as sends a request with the token of role.
func (m *matrixEnv) as(t *testing.T, role, method, target, body string) response {
	t.Helper()
	return m.do(t, method, target, body, "Authorization", "JWT "+m.tokens[role])
}

// seed creates, as the env's admin, a consented subject of site with a link
// and returns the link's ID.
func (m *matrixEnv) seed(t *testing.T, sssid, site string) string {
	t.Helper()
	m.must(t, http.StatusCreated, "POST", "/subject",
		`{"sssid":"`+sssid+`","site":"`+site+`","name":"N","bday":"1980-01-02","date_consented":"2024-01-01"}`)
	var l struct {
		Data struct {
			ID string `json:"_id"`
		} `json:"data"`
	}
	m.must(t, http.StatusCreated, "POST", "/subject/"+sssid+"/links", "").decode(t, &l)
	if l.Data.ID == "" {
		t.Fatal("no link ID")
	}
	return l.Data.ID
}

// TestRoleEndpointSiteMatrix checks every cell of API.md's "Roles and
// sites" table over real HTTP on every store: for each role, each endpoint
// on a subject of the role's site (A) and of another site (B).
func TestRoleEndpointSiteMatrix(t *testing.T) {
	onEachStore(t, func(t *testing.T, newStore newStoreFunc) {
		m := newMatrixEnv(t, newStore(t))
		for _, r := range matrixRoles {
			t.Run(r.name, func(t *testing.T) {
				own, other := "A-"+r.name, "B-"+r.name
				ownLink := m.seed(t, own, "A")
				otherLink := m.seed(t, other, "B")
				ownLink2 := m.seed(t, own+"-2", "A")
				otherLink2 := m.seed(t, other+"-2", "B")
				c := matrixCells(r)
				for _, cell := range []struct {
					name         string
					method, path string
					body         string
					what         string // the table's row: "read", "write", "subjectAudit", "allAudit", "users"
					ok           int
				}{
					{"list subjects", "GET", "/subject", "", "readList", 200},
					{"get subject", "GET", "/subject/%s", "", "read", 200},
					{"list links", "GET", "/subject/%s/links", "", "read", 200},
					{"get link", "GET", "/link/%l", "", "read", 200},
					{"subject audits", "GET", "/subject/%s/audits", "", "subjectAudit", 200},
					{"change subject", "PUT", "/subject/%s", `{"sssid":"%s","email":"x@example.org"}`, "write", 204},
					{"create link", "POST", "/subject/%s/links", "", "write", 201},
					{"change link", "PUT", "/link/%l", `{"withdrawn_on":"2024-02-01"}`, "write", 204},
					{"link JWT", "GET", "/link/%l/jwt", "", "write", 200},
					{"link QR code", "GET", "/link/%l/qr.png", "", "write", 200},
					{"revoke link", "DELETE", "/link/%2", "", "write", 204},
					{"audit log", "GET", "/audit", "", "allAudit", 200},
					{"audit checkpoint", "GET", "/audit/checkpoint", "", "allAudit", 200},
					{"audit inclusion proof", "GET", "/audit/proof?seq=1", "", "allAudit", 200},
					{"audit consistency proof", "GET", "/audit/consistency?old=1", "", "allAudit", 200},
					{"users", "GET", "/user", "", "users", 200},
					{"another user", "GET", "/user/" + m.ids["noRole"], "", "users", 200},
					{"import subjects", "POST", "/subject/import", `{"sssid":"I-%s","name":"N","bday":"1980-01-02"}`, "import", 200},
				} {
					for _, site := range []string{"A", "B"} {
						sssid, link, link2 := own, ownLink, ownLink2
						if site == "B" {
							sssid, link, link2 = other, otherLink, otherLink2
						}
						expand := strings.NewReplacer("%s", sssid, "%l", link, "%2", link2)
						want := c.status(cell.what, site, cell.ok)
						if r.name == "noRole" && cell.path == "/user/"+m.ids["noRole"] {
							want = 200 // oneself
						}
						var got response
						if cell.what == "import" {
							got = m.do(t, cell.method, cell.path, expand.Replace(cell.body),
								"Authorization", "JWT "+m.tokens[r.name], "Content-Type", "application/x-ndjson")
						} else {
							got = m.as(t, r.name, cell.method, expand.Replace(cell.path), expand.Replace(cell.body))
						}
						if got.status != want {
							t.Errorf("%s %s (site %s): status %d, want %d; body %s", cell.method, cell.name, site, got.status, want, got.body)
						}
						if got.status == http.StatusForbidden && cell.what != "users" && got.message() != idm.MsgForbidden {
							t.Errorf("%s: 403 message %q, want %q", cell.name, got.message(), idm.MsgForbidden)
						}
					}
				}
			})
		}
	})
}

// cells says what a role gets, as API.md's table says.
type cells struct {
	r matrixRole
}

func matrixCells(r matrixRole) cells { return cells{r} }

// status returns the expected status of a request of kind what on a
// subject of site, whose success is ok.
func (c cells) status(what, site string, ok int) int {
	role, all := c.r.role, slices.Contains(c.r.sites, idm.AllSites) || c.r.role == ""
	if role == "" {
		role = idm.RoleCoordinator
	}
	may := map[idm.Role][]string{
		idm.RoleAdmin:       {"readList", "read", "write", "subjectAudit", "allAudit", "users", "import"},
		idm.RoleCoordinator: {"readList", "read", "write", "subjectAudit"},
		idm.RoleMonitor:     {"readList", "read", "subjectAudit"},
		idm.RoleAuditor:     {"subjectAudit", "allAudit"},
	}[role]
	switch {
	case !slices.Contains(may, what):
		return http.StatusForbidden
	case what == "readList" || what == "allAudit" || what == "users" || what == "import":
		return ok
	case site == "A" || all:
		return ok
	}
	return http.StatusNotFound
}

// TestListsHoldOnlyVisibleSubjects checks that GET /subject's page, total
// and search hold only the subjects of the caller's sites.
func TestListsHoldOnlyVisibleSubjects(t *testing.T) {
	onEachStore(t, func(t *testing.T, newStore newStoreFunc) {
		m := newMatrixEnv(t, newStore(t))
		for _, s := range []struct{ sssid, site string }{{"A-1", "A"}, {"A-2", "A"}, {"B-1", "B"}, {"C-1", "C"}} {
			m.must(t, http.StatusCreated, "POST", "/subject", `{"sssid":"`+s.sssid+`","site":"`+s.site+`","name":"N","bday":"1980-01-02"}`)
		}
		for _, c := range []struct {
			role, query string
			want        []string
		}{
			{"coordinatorA", "", []string{"A-1", "A-2"}},
			{"monitorA", "?search=a-1", []string{"A-1"}},
			{"coordinatorA", "?perpage=1&offset=1", []string{"A-2"}},
			{"coordinatorAll", "", []string{"A-1", "A-2", "B-1", "C-1"}},
			{"admin", "?search=-1", []string{"A-1", "B-1", "C-1"}},
			// ?site= narrows the list to one of the caller's sites; a site
			// the caller does not see lists nothing.
			{"admin", "?site=B", []string{"B-1"}},
			{"coordinatorAll", "?site=C&search=c", []string{"C-1"}},
			{"coordinatorA", "?site=A", []string{"A-1", "A-2"}},
			{"coordinatorA", "?site=B", nil},
			{"monitorA", "?site=Z", nil},
		} {
			var page struct {
				Data []struct {
					SSSID string `json:"sssid"`
					Site  string `json:"site"`
				} `json:"data"`
				Total int `json:"total"`
			}
			r := m.as(t, c.role, "GET", "/subject"+c.query, "")
			if r.status != http.StatusOK {
				t.Fatalf("%s: %d %s", c.role, r.status, r.body)
			}
			r.decode(t, &page)
			var got []string
			for _, s := range page.Data {
				got = append(got, s.SSSID)
			}
			wantTotal := len(c.want)
			if strings.Contains(c.query, "perpage") {
				wantTotal = 2
			}
			if !slices.Equal(got, c.want) || page.Total != wantTotal {
				t.Errorf("%s GET /subject%s: %v (total %d), want %v (total %d)", c.role, c.query, got, page.Total, c.want, wantTotal)
			}
		}
	})
}

// TestSubjectListSiteParameter checks that GET /subject refuses a site
// query parameter that is not a site code.
func TestSubjectListSiteParameter(t *testing.T) {
	m := newMatrixEnv(t, memstore.New())
	for _, q := range []string{"?site=a%20b", "?site=A&site=B", "?site=" + strings.Repeat("x", idm.MaxSiteLen+1)} {
		if r := m.as(t, "admin", "GET", "/subject"+q, ""); r.status != http.StatusBadRequest {
			t.Errorf("GET /subject%s: %d %s, want 400", q, r.status, r.body)
		}
	}
}

// TestAnotherSiteIsLikeUnknown checks that a subject, its links, link JWT
// and audit trail of a site the caller does not see answer exactly like
// unknown ones: same status, body and header names.
func TestAnotherSiteIsLikeUnknown(t *testing.T) {
	onEachStore(t, func(t *testing.T, newStore newStoreFunc) {
		m := newMatrixEnv(t, newStore(t))
		link := m.seed(t, "B-1", "B")
		const unknownLink = "0123456789abcdef01234567"
		for _, role := range []string{"coordinatorA", "monitorA", "auditorA"} {
			for _, c := range []struct{ method, hidden, unknown, body string }{
				{"GET", "/subject/B-1", "/subject/NOPE", ""},
				{"GET", "/subject/B-1/links", "/subject/NOPE/links", ""},
				{"GET", "/subject/B-1/audits", "/subject/NOPE/audits", ""},
				{"PUT", "/subject/B-1", "/subject/NOPE", `{"sssid":"%s","email":"x@example.org"}`},
				{"POST", "/subject/B-1/links", "/subject/NOPE/links", ""},
				{"GET", "/link/" + link, "/link/" + unknownLink, ""},
				{"GET", "/link/" + link + "/jwt", "/link/" + unknownLink + "/jwt", ""},
				{"GET", "/link/" + link + "/qr.png", "/link/" + unknownLink + "/qr.png", ""},
				{"PUT", "/link/" + link, "/link/" + unknownLink, `{"withdrawn_on":"2024-02-01"}`},
				{"DELETE", "/link/" + link, "/link/" + unknownLink, ""},
			} {
				hb, ub := strings.ReplaceAll(c.body, "%s", "B-1"), strings.ReplaceAll(c.body, "%s", "NOPE")
				hidden := m.as(t, role, c.method, c.hidden, hb)
				unknown := m.as(t, role, c.method, c.unknown, ub)
				if hidden.status != unknown.status || string(hidden.body) != string(unknown.body) ||
					!slices.Equal(headerNames(hidden.header), headerNames(unknown.header)) {
					t.Errorf("%s %s %s: %d %s %v; unknown: %d %s %v", role, c.method, c.hidden,
						hidden.status, hidden.body, headerNames(hidden.header), unknown.status, unknown.body, headerNames(unknown.header))
				}
				mayUse := role == "coordinatorA" || strings.HasSuffix(c.hidden, "/audits") ||
					role == "monitorA" && c.method == "GET" && !strings.HasSuffix(c.hidden, "/jwt") && !strings.HasSuffix(c.hidden, "/qr.png")
				if mayUse {
					if hidden.status != http.StatusNotFound {
						t.Errorf("%s %s %s: status %d, want 404", role, c.method, c.hidden, hidden.status)
					}
				}
			}
		}
	})
}

// headerNames returns the sorted header names of h, without Date (which
// may differ by a second between two answers).
func headerNames(h http.Header) []string {
	var names []string
	for k := range h {
		if k != "Date" {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	return names
}

// TestSubjectSiteOnCreateAndMove checks where POST /subject puts a subject
// without `site`, that creating in another site is a 403, and that only
// admins move a subject to another site, audited with old and new values.
func TestSubjectSiteOnCreateAndMove(t *testing.T) {
	m := newMatrixEnv(t, memstore.New())
	site := func(sssid string) string {
		var s struct {
			Data struct {
				Site string `json:"site"`
			} `json:"data"`
		}
		m.must(t, http.StatusOK, "GET", "/subject/"+sssid, "").decode(t, &s)
		return s.Data.Site
	}
	body := func(sssid, extra string) string {
		return `{"sssid":"` + sssid + `","name":"N","bday":"1980-01-02"` + extra + `}`
	}
	if r := m.as(t, "coordinatorA", "POST", "/subject", body("S1", "")); r.status != http.StatusCreated {
		t.Fatalf("coordinator of A: %d %s", r.status, r.body)
	}
	if got := site("S1"); got != "A" {
		t.Errorf("created by the coordinator of A alone: site %q, want A", got)
	}
	if r := m.as(t, "coordinatorAll", "POST", "/subject", body("S2", "")); r.status != http.StatusCreated {
		t.Fatalf("coordinator of all: %d %s", r.status, r.body)
	}
	if got := site("S2"); got != idm.DefaultSiteCode {
		t.Errorf("created by a coordinator of every site: site %q, want the default %q", got, idm.DefaultSiteCode)
	}
	if r := m.as(t, "coordinatorA", "POST", "/subject", body("S3", `,"site":"B"`)); r.status != http.StatusForbidden {
		t.Errorf("coordinator of A creating in B: %d %s, want 403", r.status, r.body)
	}
	// The original's subjects carry `site` as an additional field of any
	// value; one that is not a site code stays that, as before.
	if r := m.as(t, "coordinatorA", "POST", "/subject", body("S4", `,"site":{"id":7,"name":"Basel"}`)); r.status != http.StatusCreated ||
		!strings.Contains(string(r.body), `"site":{"id":7,"name":"Basel"}`) {
		t.Errorf("the original's site field: %d %s, want 201 showing it as it was", r.status, r.body)
	}
	if s, err := m.store.FindSubject(t.Context(), "S4"); err != nil || s.Site != "A" {
		t.Errorf("S4: site %q (%v), want A", s.Site, err)
	}
	if r := m.as(t, "coordinatorA", "PUT", "/subject/S4", `{"sssid":"S4","site":"Bern"}`); r.status != http.StatusNoContent {
		t.Errorf("changing the original's site field: %d %s, want 204", r.status, r.body)
	}
	if r := m.as(t, "coordinatorA", "PUT", "/subject/S1", `{"sssid":"S1","site":"B"}`); r.status != http.StatusForbidden {
		t.Errorf("coordinator moving a subject: %d %s, want 403", r.status, r.body)
	}
	if r := m.as(t, "coordinatorAll", "PUT", "/subject/S2", `{"sssid":"S2","site":"B"}`); r.status != http.StatusForbidden {
		t.Errorf("coordinator of every site moving a subject: %d %s, want 403", r.status, r.body)
	}
	if r := m.as(t, "coordinatorA", "PUT", "/subject/S1", `{"sssid":"S1","site":"A"}`); r.status != http.StatusNoContent {
		t.Errorf("repeating the site: %d %s, want 204", r.status, r.body)
	}
	if r := m.as(t, "admin", "PUT", "/subject/S1", `{"sssid":"S1","site":"B"}`); r.status != http.StatusNoContent {
		t.Fatalf("admin moving a subject: %d %s", r.status, r.body)
	}
	if got := site("S1"); got != "B" {
		t.Errorf("after the move: site %q, want B", got)
	}
	if r := m.as(t, "coordinatorA", "GET", "/subject/S1", ""); r.status != http.StatusNotFound {
		t.Errorf("the coordinator of A after the move: %d, want 404", r.status)
	}
	var audits struct {
		Data []struct {
			Action string          `json:"action"`
			Old    json.RawMessage `json:"old"`
			New    json.RawMessage `json:"new"`
		} `json:"data"`
	}
	m.must(t, http.StatusOK, "GET", "/audit?perpage=1000", "").decode(t, &audits)
	found := false
	for _, a := range audits.Data {
		if a.Action == `site: "B"` {
			found = string(a.Old) == `{"site":"A"}` && string(a.New) == `{"site":"B"}`
		}
	}
	if !found {
		t.Errorf("no audit record of the move with old and new site: %+v", audits.Data)
	}
}

// TestAuditLogOfSomeSites checks that GET /audit holds, for an auditor of
// some sites, only the records about the subjects of those sites and their
// links (page and total), and everything for an admin.
func TestAuditLogOfSomeSites(t *testing.T) {
	onEachStore(t, func(t *testing.T, newStore newStoreFunc) {
		m := newMatrixEnv(t, newStore(t))
		linkA := m.seed(t, "A-1", "A")
		m.seed(t, "B-1", "B")
		subjectID := func(sssid string) string {
			s, err := m.store.FindSubject(t.Context(), sssid)
			if err != nil {
				t.Fatal(err)
			}
			return s.ID
		}
		visible := map[string]bool{subjectID("A-1"): true, linkA: true}
		type auditPage struct {
			Data []struct {
				Document string `json:"document"`
			} `json:"data"`
			Total int `json:"total"`
		}
		var all, mine, first auditPage
		m.must(t, http.StatusOK, "GET", "/audit?perpage=1000", "").decode(t, &all)
		r := m.as(t, "auditorA", "GET", "/audit?perpage=1000", "")
		if r.status != http.StatusOK {
			t.Fatalf("auditor: %d %s", r.status, r.body)
		}
		r.decode(t, &mine)
		want := 0
		for _, e := range all.Data {
			if visible[e.Document] {
				want++
			}
		}
		if want == 0 || mine.Total != want || len(mine.Data) != want || all.Total <= want {
			t.Errorf("auditor of A: %d records (total %d), want %d of the admin's %d", len(mine.Data), mine.Total, want, all.Total)
		}
		for _, e := range mine.Data {
			if !visible[e.Document] {
				t.Errorf("auditor of A sees a record about %s", e.Document)
			}
		}
		m.as(t, "auditorA", "GET", "/audit?perpage=1&offset=1", "").decode(t, &first)
		if len(first.Data) != 1 || first.Total != want || first.Data[0].Document != mine.Data[1].Document {
			t.Errorf("second page of one: %+v", first)
		}
	})
}
