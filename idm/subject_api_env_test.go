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
	"github.com/c3-pro/idm/internal/testclock"
)

// rvEnv is the IDM API and package auth's routes on one mux, on a store,
// served over real HTTP, with an admin staff user and their token: the way
// idmd wires them.
type rvEnv struct {
	store idm.Store
	clock *testclock.Clock
	srv   *httptest.Server
	token string // the admin's staff token
}

// rvNewEnv starts an rvEnv on store; wrap, if not nil, wraps the host mux
// (for tests that watch requests on the server's side).
func rvNewEnv(t *testing.T, store idm.Store, wrap func(http.Handler) http.Handler) *rvEnv {
	t.Helper()
	ctx := t.Context()
	e := &rvEnv{store: store, clock: testclock.New(time.Date(2026, 11, 29, 12, 24, 5, 0, time.UTC))}
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
	authH, err := auth.New(auth.Config{Store: store, Keys: keys, Passwords: pw, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	hash, err := pw.Hash(ctx, rvAdminPassword)
	if err != nil {
		t.Fatal(err)
	}
	now := idm.Timestamp(e.clock.Now())
	admin := idm.User{ID: idm.NewID(), Username: "admin@example.org", PasswordHash: hash, Admin: true, Created: now, Changed: now}
	if err := store.CreateUser(ctx, admin); err != nil {
		t.Fatal(err)
	}
	h, err := idm.NewHandler(idm.Config{Store: store, LinkTokens: authH.LinkTokens(), Authenticate: authH.Require, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	mux := idm.NewMux()
	authH.Install(mux.Handle)
	h.Install(mux.Handle)
	var root http.Handler = mux
	if wrap != nil {
		root = wrap(mux)
	}
	e.srv = httptest.NewServer(root)
	t.Cleanup(e.srv.Close)
	r := e.do(t, "POST", "/auth", `{"username": "admin@example.org", "password": "`+rvAdminPassword+`"}`, "Authorization", "")
	var login struct {
		AccessToken string `json:"access_token"`
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &login) != nil {
		t.Fatalf("logging in as the admin: %d %s", r.status, r.body)
	}
	e.token = login.AccessToken
	return e
}

// rvAdminPassword is the admin's password in an rvEnv.
const rvAdminPassword = "an admin's passphrase"

// do sends a request with the admin's token; header holds more header
// name/value pairs, and an "Authorization" among them replaces the token
// ("" for none).
func (e *rvEnv) do(t *testing.T, method, target, body string, header ...string) response {
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
	req.Header.Set("Authorization", "JWT "+e.token)
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// must sends a request and fails t unless the answer has status want.
func (e *rvEnv) must(t *testing.T, want int, method, target, body string) response {
	t.Helper()
	r := e.do(t, method, target, body)
	if r.status != want {
		t.Fatalf("%s %s: %d %s, want %d", method, target, r.status, r.body, want)
	}
	return r
}

// actions returns the audit actions about the subject sssid, oldest first,
// read from the store.
func (e *rvEnv) actions(t *testing.T, sssid string) []string {
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
