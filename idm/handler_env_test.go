package idm_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
	"github.com/c3-pro/idm/internal/testclock"
	"github.com/c3-pro/idm/qrpng"
)

// Test principals and their tokens.
const (
	staffToken = "staff-token"
	adminToken = "admin-token"
	staffID    = "5f0c2a1b9d8e7f6a5b4c3d2e"
	staffName  = "staff@example.org"
	adminID    = "5f0c2a1b9d8e7f6a5b4c3d2f"
	adminName  = "admin@example.org"
	linkIssuer = "http://localhost:9096"
)

func testAuth() fakeAuth {
	return fakeAuth{
		staffToken: {UserID: staffID, Username: staffName},
		adminToken: {UserID: adminID, Username: adminName, Admin: true},
	}
}

// testEnv is the API handler on a store, served over real HTTP. By default
// staff requests carry the fake staffToken (testAuth); with [withAuth] the
// API sits beside package auth's routes on one host mux, as idmd wires them,
// and staff requests carry a real admin's token.
type testEnv struct {
	store  idm.Store
	clock  *testclock.Clock
	tokens *hmacLinkTokens // the link tokens, unless withAuth
	srv    *httptest.Server
	token  string // the token staff requests carry
}

// envConfig is what the options of newTestEnv may change: the API handler's
// configuration and how the env is built around it.
type envConfig struct {
	idm.Config
	clock *testclock.Clock                // the env's clock (Config.Now reads it)
	auth  bool                            // see withAuth
	wrap  func(http.Handler) http.Handler // if set, wraps what the server serves
}

// withAuth serves package auth's routes (POST /auth, the JWKS, ...) and the
// API on one host mux with package auth's staff tokens and link tokens, the
// way idmd wires them. The store gets an admin (adminName, envAdminPassword)
// and a staff user (staffID, staffName, envStaffPassword); the env logs in
// as the admin for its staff requests.
func withAuth(c *envConfig) { c.auth = true }

// stillClock gives the env a clock that stands still until the test moves it.
func stillClock(c *envConfig) {
	c.clock = testclock.New(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	c.Now = c.clock.Now
}

// wrapped wraps what the env's server serves (for tests that watch requests
// on the server's side).
func wrapped(wrap func(http.Handler) http.Handler) func(*envConfig) {
	return func(c *envConfig) { c.wrap = wrap }
}

// Passwords of the users of an env made withAuth.
const (
	envAdminPassword = "an admin's passphrase"
	envStaffPassword = "a long and unusual test password"
)

// newTestEnv returns the API handler on a fresh memstore; configure may
// change the handler's configuration and the env.
func newTestEnv(t testing.TB, configure ...func(*envConfig)) *testEnv {
	t.Helper()
	return newTestEnvOn(t, memstore.New(), configure...)
}

// newTestEnvOn returns the API handler on store.
func newTestEnvOn(t testing.TB, store idm.Store, configure ...func(*envConfig)) *testEnv {
	t.Helper()
	e := &testEnv{
		store:  store,
		tokens: &hmacLinkTokens{secret: []byte("a test secret of at least 32 bytes!!"), issuer: linkIssuer, audience: linkIssuer},
		token:  staffToken,
	}
	c := envConfig{clock: newTestClock()}
	c.Config = idm.Config{
		Store:        e.store,
		LinkTokens:   e.tokens,
		Authenticate: testAuth().Require,
		Now:          c.clock.Now,
		QRCode:       qrCode,
	}
	for _, f := range configure {
		f(&c)
	}
	e.clock = c.clock
	var authH *auth.Handler
	if c.auth {
		authH = newAuthHandler(t, store, c.Now)
		c.LinkTokens, c.Authenticate = authH.LinkTokens(), authH.Require
		e.tokens = nil
	}
	h, err := idm.NewHandler(c.Config)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	var root http.Handler = h
	if authH != nil {
		mux := idm.NewMux()
		authH.Install(mux.Handle)
		h.Install(mux.Handle)
		root = mux
	}
	if c.wrap != nil {
		root = c.wrap(root)
	}
	e.srv = httptest.NewServer(root)
	t.Cleanup(e.srv.Close)
	if authH != nil {
		e.token = e.login(t, adminName, envAdminPassword)
	}
	return e
}

// newAuthHandler returns package auth's handler on store, with the admin
// and the staff user of withAuth stored.
func newAuthHandler(t testing.TB, store idm.Store, now func() time.Time) *auth.Handler {
	t.Helper()
	ctx := t.Context()
	pw, err := auth.NewPasswords(auth.PasswordConfig{Cost: 4}) // bcrypt.MinCost: hashing is not under test
	if err != nil {
		t.Fatal(err)
	}
	key, err := auth.NewHMACKey([]byte("0123456789abcdef0123456789abcdef-review"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.NewKeySet(key)
	if err != nil {
		t.Fatal(err)
	}
	authH, err := auth.New(auth.Config{Store: store, Keys: keys, Passwords: pw, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	at := idm.Timestamp(now())
	for _, u := range []struct {
		user     idm.User
		password string
	}{
		{idm.User{ID: idm.NewID(), Username: adminName, Admin: true, Created: at, Changed: at}, envAdminPassword},
		{idm.User{ID: staffID, Username: staffName, Created: at, Changed: at}, envStaffPassword},
	} {
		if u.user.PasswordHash, err = pw.Hash(ctx, u.password); err != nil {
			t.Fatal(err)
		}
		if err := store.CreateUser(ctx, u.user); err != nil {
			t.Fatal(err)
		}
	}
	return authH
}

// login posts the credentials to /auth (an env made withAuth) and returns
// the staff token.
func (e *testEnv) login(t testing.TB, username, password string) string {
	t.Helper()
	r := e.do(t, "POST", "/auth", `{"username": `+jsonString(t, username)+`, "password": `+jsonString(t, password)+`}`)
	var login struct {
		AccessToken string `json:"access_token"`
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &login) != nil {
		t.Fatalf("logging in as %s: %d %s", username, r.status, r.body)
	}
	return login.AccessToken
}

// response is an answer of the server.
type response struct {
	status int
	header http.Header
	body   []byte
}

// message returns the error message of a JSON error envelope, "" if there
// is none.
func (r response) message() string {
	var env idm.ErrorBody
	if json.Unmarshal(r.body, &env) != nil {
		return ""
	}
	return env.Error.Message
}

// decode decodes the body into v.
func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends a request; headers are name/value pairs.
func (e *testEnv) do(t testing.TB, method, target, body string, headers ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, e.srv.URL+target, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// staff sends a request with the env's staff token (the frontend's `JWT`
// scheme); headers are more name/value pairs, and an "Authorization" among
// them replaces the token ("" for none).
func (e *testEnv) staff(t testing.TB, method, target, body string, headers ...string) response {
	t.Helper()
	return e.do(t, method, target, body, append([]string{"Authorization", "JWT " + e.token}, headers...)...)
}

// must sends a staff request and fails the test unless it gets want.
func (e *testEnv) must(t testing.TB, want int, method, target, body string) response {
	t.Helper()
	r := e.staff(t, method, target, body)
	if r.status != want {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, target, r.status, want, r.body)
	}
	return r
}

// createLink creates a link for the subject and returns its ID.
func (e *testEnv) createLink(t testing.TB, sssid string) string {
	t.Helper()
	var got struct {
		Data struct {
			ID string `json:"_id"`
		} `json:"data"`
	}
	e.must(t, http.StatusCreated, "POST", "/subject/"+sssid+"/links", "").decode(t, &got)
	return got.Data.ID
}

// mint fetches the link's JWT.
func (e *testEnv) mint(t testing.TB, jti string) string {
	t.Helper()
	return string(e.must(t, http.StatusOK, "GET", "/link/"+jti+"/jwt", "").body)
}

// establish posts a FHIR Patient to /establish with the link JWT.
func (e *testEnv) establish(t testing.TB, token, patientID string) response {
	t.Helper()
	return e.do(t, "POST", "/establish", patientJSON(patientID), "Authorization", "Bearer "+token)
}

func patientJSON(id string) string {
	return `{"resourceType": "Patient", "identifier": [{"system": "urn:example:patients", "value": "` + id + `"}], "name": [{"family": "Example"}]}`
}

// fixture is the data most table tests start from.
type fixture struct {
	links map[string]string // name -> jti
	jwts  map[string]string // name -> link JWT
}

// seed creates subjects S-1 (invited and consented, with links in every
// state), S-2 (not consented) and S-3 (withdrawn).
func (e *testEnv) seed(t testing.TB) fixture {
	t.Helper()
	ctx := t.Context()
	e.must(t, http.StatusCreated, "POST", "/subject", `{"sssid": "S-1", "name": "Alice", "bday": "1980-05-17", "email": "alice@example.org", "date_invited": "2024-04-01", "date_consented": "2024-05-01T12:00:00+02:00", "site": "Zurich"}`)
	e.must(t, http.StatusCreated, "POST", "/subject", `{"sssid": "S-2", "name": "Bob", "bday": "1975-01-02"}`)
	e.must(t, http.StatusCreated, "POST", "/subject", `{"sssid": "S-3", "name": "Carol", "bday": "1990-12-31", "date_consented": "2024-01-01", "date_withdrawn": "2024-06-01"}`)
	f := fixture{links: map[string]string{}, jwts: map[string]string{}}
	for _, name := range []string{"fresh", "minted", "linked", "revoked", "expired"} {
		f.links[name] = e.createLink(t, "S-1")
		if name != "fresh" {
			f.jwts[name] = e.mint(t, f.links[name])
		}
	}
	if _, err := e.store.EstablishLink(ctx, f.links["linked"], "P-0", "urn:example:patients", e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	e.must(t, http.StatusNoContent, "DELETE", "/link/"+f.links["revoked"], "")
	l, err := e.store.FindLink(ctx, f.links["expired"])
	if err != nil {
		t.Fatal(err)
	}
	l.Exp = e.clock.Now().Add(-time.Hour).Unix()
	if err := e.store.UpdateLink(ctx, l); err != nil {
		t.Fatal(err)
	}
	// A link migrated from the original: only the hash of its token.
	other := &hmacLinkTokens{secret: []byte("the original service's own secret"), issuer: "https://old.example", audience: "https://old.example"}
	now := e.clock.Now()
	migrated := idm.Link{ID: idm.NewID(), SSSID: "S-1", Issuer: "https://old.example", Audience: "https://old.example",
		Algorithm: "HS256", Created: idm.Timestamp(now), Changed: idm.Timestamp(now), Exp: now.Add(time.Hour).Unix()}
	tok, _, err := other.IssueLinkToken(ctx, idm.LinkClaims{ID: migrated.ID, Expires: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	migrated.JWTHash = sha256Hex(tok)
	if err := e.store.CreateLink(ctx, migrated); err != nil {
		t.Fatal(err)
	}
	f.links["migrated"], f.jwts["migrated"] = migrated.ID, tok
	return f
}

// expand replaces {name} with the fixture's link IDs and {jwt:name} with
// its tokens.
func (f fixture) expand(s string) string {
	var pairs []string
	for name, id := range f.links {
		pairs = append(pairs, "{"+name+"}", id)
	}
	for name, tok := range f.jwts {
		pairs = append(pairs, "{jwt:"+name+"}", tok)
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

// storedActions returns the audit actions about the subject sssid, oldest
// first, read from the store (also after the server is closed).
func (e *testEnv) storedActions(t testing.TB, sssid string) []string {
	t.Helper()
	s, err := e.store.FindSubject(t.Context(), sssid)
	if err != nil {
		t.Fatalf("find subject %q: %v", sssid, err)
	}
	evs, err := e.store.AuditsFor(t.Context(), s.ID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Action)
	}
	return out
}

// state returns the store's subjects, links and audit records as JSON, to
// tell whether a request changed anything.
func (e *testEnv) state(t testing.TB) string {
	t.Helper()
	ctx := t.Context()
	subjects, _, err := e.store.ListSubjects(ctx, idm.SubjectFilter{})
	if err != nil {
		t.Fatal(err)
	}
	sssids := make([]string, len(subjects))
	for i, s := range subjects {
		sssids[i] = s.SSSID
	}
	links, err := e.store.LinksForSubjects(ctx, sssids...)
	if err != nil {
		t.Fatal(err)
	}
	audits, _, err := e.store.ListAudits(ctx, idm.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]any{"subjects": subjects, "links": links, "audits": audits})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// qrCode is the QR encoder the test handlers use: idmd's.
func qrCode(text string) ([]byte, error) { return qrpng.Encode(text) }
