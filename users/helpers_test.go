package users_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
	"github.com/c3-pro/idm/users"
)

// testPassword passes the default policy.
const testPassword = "correct horse battery staple"

// env is a users handler and an auth handler on one memstore, served over
// real HTTP by one host mux.
type env struct {
	t      *testing.T
	store  idm.Store
	auth   *auth.Handler
	pw     *auth.Passwords
	users  *users.Handler
	srv    *httptest.Server
	client *http.Client
}

// setup adjusts the users.Config of an env before the handler is made.
type setup func(c *users.Config)

// newEnv starts an env on a fresh memstore.
func newEnv(t *testing.T, opts ...setup) *env {
	t.Helper()
	return newEnvOn(t, memstore.New(), opts...)
}

// newEnvOn starts an env on store s; several envs on one store stand for
// several processes sharing a database.
func newEnvOn(t *testing.T, s idm.Store, opts ...setup) *env {
	t.Helper()
	pw, err := auth.NewPasswords(auth.PasswordConfig{Cost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	// The signing key is kept in the store, so envs on one store accept
	// each other's tokens, as several idmd processes on one database do.
	keys, err := auth.LoadOrCreateKeys(t.Context(), s, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ah, err := auth.New(auth.Config{Store: s, Keys: keys, Passwords: pw, RateLimit: rate.Inf})
	if err != nil {
		t.Fatal(err)
	}
	c := users.Config{Store: s, Passwords: pw, Authenticate: ah.Require, Limiter: unlimited{}}
	for _, o := range opts {
		o(&c)
	}
	uh, err := users.New(c)
	if err != nil {
		t.Fatal(err)
	}
	mux := idm.NewMux()
	ah.Install(mux.Handle)
	uh.Install(mux.Handle)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{t: t, store: s, auth: ah, pw: pw, users: uh, srv: srv, client: srv.Client()}
}

// unlimited is an AddressLimiter that allows everything.
type unlimited struct{}

func (unlimited) Allow(*http.Request) (bool, time.Duration) { return true, 0 }

// account is a user created for a test, with a token.
type account struct {
	user  idm.User
	token string
}

// addUser stores a user with testPassword directly and logs in as it
// (POST /auth) for its token.
func (e *env) addUser(username string, admin bool) account {
	e.t.Helper()
	hash, err := e.pw.Hash(e.t.Context(), testPassword)
	if err != nil {
		e.t.Fatal(err)
	}
	now := idm.Timestamp(time.Now())
	u := idm.User{ID: idm.NewID(), Username: username, PasswordHash: hash, Admin: admin, Created: now, Changed: now}
	if err := e.store.CreateUser(e.t.Context(), u); err != nil {
		e.t.Fatal(err)
	}
	status, tok := e.login(username, testPassword)
	if status != http.StatusOK {
		e.t.Fatalf("logging in as %s: status %d", username, status)
	}
	return account{user: u, token: tok}
}

// response is an HTTP answer, read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into v.
func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

// message returns the message of a JSON error envelope.
func (r response) message(t *testing.T) string {
	t.Helper()
	var b idm.ErrorBody
	r.json(t, &b)
	if b.Error.Status != r.status {
		t.Errorf("envelope status %d, HTTP status %d", b.Error.Status, r.status)
	}
	return b.Error.Message
}

// request is one HTTP request of a test.
type request struct {
	method, path string
	token        string            // staff token; "" for none
	body         any               // string, []byte or a value to encode as JSON; nil for none
	contentType  string            // default application/json when there is a body
	header       map[string]string // extra headers
}

// do sends a request to the env's server. Every answer is checked for
// password hashes and reset tokens, which no response may ever contain.
func (e *env) do(r request) response {
	e.t.Helper()
	return doOn(e.t, e.client, e.srv.URL, r)
}

func doOn(t *testing.T, client *http.Client, base string, r request) response {
	t.Helper()
	var body io.Reader
	ct := r.contentType
	switch b := r.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(j)
	}
	if body != nil && ct == "" {
		ct = "application/json"
	}
	req, err := http.NewRequestWithContext(context.WithoutCancel(t.Context()), r.method, base+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if r.token != "" {
		req.Header.Set("Authorization", "JWT "+r.token)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	checkNoSecrets(t, b)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// checkNoSecrets fails t if b looks like it holds a password hash.
func checkNoSecrets(t *testing.T, b []byte) {
	t.Helper()
	for _, s := range []string{auth.SchemePrefix, "$2a$", "$2b$", "$2y$", "password_hash", "PasswordHash", "TokenVersion", "reset"} {
		if bytes.Contains(b, []byte(s)) {
			t.Errorf("response contains %q: %s", s, b)
		}
	}
}

// login posts to /auth and returns the status and the token.
func (e *env) login(username, password string) (int, string) {
	e.t.Helper()
	res := e.do(request{method: "POST", path: "/auth", body: map[string]string{"username": username, "password": password}})
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if res.status == http.StatusOK {
		res.json(e.t, &tok)
	}
	return res.status, tok.AccessToken
}

// user reads a user from the store; ok is false when there is none.
func (e *env) user(id string) (idm.User, bool) {
	e.t.Helper()
	u, err := e.store.FindUserByID(e.t.Context(), id)
	if err != nil {
		return idm.User{}, false
	}
	return u, true
}

// userByName reads a user by username; ok is false when there is none.
func (e *env) userByName(name string) (idm.User, bool) {
	e.t.Helper()
	u, err := e.store.FindUserByUsername(e.t.Context(), name)
	if err != nil {
		return idm.User{}, false
	}
	return u, true
}

// actions returns the actions of the user-management audit records about a
// user, oldest first (logins, which package auth records, are left out).
func (e *env) actions(id string) []string {
	e.t.Helper()
	evs, err := e.store.AuditsFor(e.t.Context(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		if ev.DocType == idm.DocUser {
			out = append(out, ev.Action)
		}
	}
	return out
}

// audits returns all user-management audit records, oldest first.
func (e *env) audits() []idm.AuditEvent {
	e.t.Helper()
	evs, _, err := e.store.ListAudits(e.t.Context(), idm.AuditFilter{})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []idm.AuditEvent
	for _, ev := range evs {
		if ev.DocType == idm.DocUser {
			out = append(out, ev)
		}
	}
	return out
}

// recorder is an Inviter and a Notifier that records its calls and can be
// told to fail.
type recorder struct {
	mu      sync.Mutex
	invited []idm.User
	changed []idm.User
	fail    error
}

func (r *recorder) Invite(_ context.Context, u idm.User) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.invited = append(r.invited, u)
	return nil
}

func (r *recorder) PasswordChanged(_ context.Context, u idm.User) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changed = append(r.changed, u)
	return r.fail
}

func (r *recorder) calls() (invited, changed []idm.User) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]idm.User(nil), r.invited...), append([]idm.User(nil), r.changed...)
}

// httptestServer serves h over real HTTP for the test's lifetime.
func httptestServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}
