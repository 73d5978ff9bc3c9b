package auth_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
	"github.com/c3-pro/idm/internal/testclock"
)

// t0 is the tests' reference time.
var t0 = time.Date(2026, time.March, 2, 9, 30, 0, 0, time.UTC)

// testSecret is a random-looking 48-byte HMAC secret for tests.
const testSecret = "vB7q2mXf9LkP4sWz8RtY1nHc6GdJ3eUa5oQiZxCvMbNl0TgE"

func newClock() *testclock.Clock { return testclock.New(t0) }

// fastPasswords returns a Passwords at bcrypt's lowest cost.
func fastPasswords(t testing.TB) *auth.Passwords {
	t.Helper()
	p, err := auth.NewPasswords(auth.PasswordConfig{Cost: bcrypt.MinCost})
	require.NoError(t, err)
	return p
}

// hmacKeys returns a KeySet of one HS256 key with secret.
// appSecret is the link secret of the published C3-PRO app build.
const appSecret = "super-duper-secret"

// linkKeys returns link keys for the secrets, the first signing.
func linkKeys(t testing.TB, secrets ...string) []*auth.LinkKey {
	t.Helper()
	var ks []*auth.LinkKey
	for _, s := range secrets {
		k, err := auth.NewLinkKey([]byte(s))
		require.NoError(t, err)
		ks = append(ks, k)
	}
	return ks
}

func hmacKeys(t testing.TB, secret string) *auth.KeySet {
	t.Helper()
	k, err := auth.NewHMACKey([]byte(secret))
	require.NoError(t, err)
	ks, err := auth.NewKeySet(k)
	require.NoError(t, err)
	return ks
}

// env is an auth handler on a real memstore behind a real HTTP server. Its
// host mux has the handler's routes plus "GET /me", which answers the
// principal that Require put into the context.
type env struct {
	t        *testing.T
	store    idm.Store
	clock    *testclock.Clock
	pw       *auth.Passwords
	cfg      auth.Config
	h        *auth.Handler
	srv      *httptest.Server
	mu       sync.Mutex
	outcomes []string
}

// newEnv starts an env; opts adjust the Config before New. By default the
// address limiter is off (rate.Inf) so that tests can log in often.
func newEnv(t *testing.T, opts ...func(*auth.Config)) *env {
	t.Helper()
	e := &env{t: t, store: memstore.New(), clock: newClock(), pw: fastPasswords(t)}
	e.cfg = auth.Config{
		Store: e.store, Keys: hmacKeys(t, testSecret), Passwords: e.pw, Now: e.clock.Now,
		RateLimit: rate.Inf,
		OnLogin: func(o string) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.outcomes = append(e.outcomes, o)
		},
	}
	for _, o := range opts {
		o(&e.cfg)
	}
	h, err := auth.New(e.cfg)
	require.NoError(t, err)
	e.h = h
	mux := idm.NewMux()
	h.Install(mux.Handle)
	mux.Handle("GET /me", h.Require(http.HandlerFunc(whoami)))
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// whoami answers the request's principal.
func whoami(w http.ResponseWriter, r *http.Request) {
	p, ok := idm.PrincipalFrom(r.Context())
	if !ok {
		idm.WriteError(w, r, nil, idm.E(idm.ErrUnauthorized, "no principal"))
		return
	}
	idm.WriteData(w, http.StatusOK, p)
}

// addUser stores a user with the password hashed by the env's Passwords.
func (e *env) addUser(username, password string) idm.User {
	e.t.Helper()
	hash, err := e.pw.Hash(e.t.Context(), password)
	require.NoError(e.t, err)
	return e.addUserWithHash(username, hash)
}

// addUserWithHash stores a user with the given encoded hash.
func (e *env) addUserWithHash(username, hash string) idm.User {
	e.t.Helper()
	u := idm.User{ID: idm.NewID(), Username: username, PasswordHash: hash, Created: t0, Changed: t0}
	require.NoError(e.t, e.store.CreateUser(e.t.Context(), u))
	return u
}

// user reads a user back from the store.
func (e *env) user(id string) idm.User {
	e.t.Helper()
	u, err := e.store.FindUserByID(e.t.Context(), id)
	require.NoError(e.t, err)
	return u
}

// update changes a stored user.
func (e *env) update(id string, change func(*idm.User)) {
	e.t.Helper()
	u := e.user(id)
	change(&u)
	require.NoError(e.t, e.store.UpdateUser(e.t.Context(), u))
}

// reply is an HTTP answer.
type reply struct {
	status int
	header http.Header
	body   string
}

// errorMessage returns the message of a JSON error envelope.
func (r reply) errorMessage(t *testing.T) string {
	t.Helper()
	var b idm.ErrorBody
	require.NoError(t, json.Unmarshal([]byte(r.body), &b), "body %q", r.body)
	require.Equal(t, r.status, b.Error.Status)
	return b.Error.Message
}

// do sends a request; header values are set on it as given.
func (e *env) do(method, path, body string, header ...string) reply {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.srv.URL+path, strings.NewReader(body))
	require.NoError(e.t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return reply{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// login posts credentials to /auth.
func (e *env) login(username, password string) reply {
	e.t.Helper()
	b, err := json.Marshal(map[string]string{"username": username, "password": password})
	require.NoError(e.t, err)
	return e.do(http.MethodPost, "/auth", string(b))
}

// token logs in and returns the access token.
func (e *env) token(username, password string) string {
	e.t.Helper()
	r := e.login(username, password)
	require.Equal(e.t, http.StatusOK, r.status, r.body)
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(e.t, json.Unmarshal([]byte(r.body), &tr))
	require.NotEmpty(e.t, tr.AccessToken)
	return tr.AccessToken
}

// me calls GET /me with an Authorization header value.
func (e *env) me(authorization string) reply {
	e.t.Helper()
	if authorization == "" {
		return e.do(http.MethodGet, "/me", "")
	}
	return e.do(http.MethodGet, "/me", "", "Authorization", authorization)
}

// audits returns the actions of all audit records, oldest first.
func (e *env) audits() []idm.AuditEvent {
	e.t.Helper()
	evs, _, err := e.store.ListAudits(e.t.Context(), idm.AuditFilter{})
	require.NoError(e.t, err)
	return evs
}

// loginOutcomes returns the outcomes OnLogin saw.
func (e *env) loginOutcomes() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.outcomes...)
}
