package console_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/console"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
	"github.com/c3-pro/idm/qrpng"
	"github.com/c3-pro/idm/users"
)

const testPassword = "correct horse battery staple"

// clock is a settable clock for the console's sessions.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is the API (auth, users, subjects) and the console on one store,
// mounted as idmd mounts them, over real HTTP.
type env struct {
	t       *testing.T
	store   idm.Store
	auth    *auth.Handler
	console *console.Handler
	clock   *clock
	srv     *httptest.Server
}

type envOption func(*console.Config)

// faultyStore fails the methods named in fail with an error that is not
// ErrNotFound, as a store that went down does.
type faultyStore struct {
	idm.Store
	mu   sync.Mutex
	fail map[string]bool
}

var errDown = errors.New("store down")

func (s *faultyStore) set(method string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[method] = on
}

func (s *faultyStore) failing(method string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fail[method]
}

func (s *faultyStore) FindSession(ctx context.Context, h string) (idm.Session, error) {
	if s.failing("FindSession") {
		return idm.Session{}, errDown
	}
	return s.Store.FindSession(ctx, h)
}

func (s *faultyStore) TouchSession(ctx context.Context, h string, at time.Time) error {
	if s.failing("TouchSession") {
		return errDown
	}
	return s.Store.TouchSession(ctx, h, at)
}

func (s *faultyStore) CreateSession(ctx context.Context, sess idm.Session) error {
	if s.failing("CreateSession") {
		return errDown
	}
	return s.Store.CreateSession(ctx, sess)
}

func (s *faultyStore) DeleteSession(ctx context.Context, h string) error {
	if s.failing("DeleteSession") {
		return errDown
	}
	return s.Store.DeleteSession(ctx, h)
}

func (s *faultyStore) FindUserByID(ctx context.Context, id string) (idm.User, error) {
	if s.failing("FindUserByID") {
		return idm.User{}, errDown
	}
	return s.Store.FindUserByID(ctx, id)
}

func newEnv(t *testing.T, store idm.Store, opts ...envOption) *env {
	t.Helper()
	pw, err := auth.NewPasswords(auth.PasswordConfig{Cost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	key, err := auth.NewHMACKey([]byte("console-test-secret-of-at-least-32-bytes"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.NewKeySet(key)
	if err != nil {
		t.Fatal(err)
	}
	var opt console.Config
	for _, o := range opts {
		o(&opt)
	}
	authH, err := auth.New(auth.Config{Store: store, Keys: keys, Passwords: pw, RateLimit: rate.Inf, RequireTOTP: opt.RequireTOTP})
	if err != nil {
		t.Fatal(err)
	}
	usersH, err := users.New(users.Config{Store: store, Passwords: pw, Authenticate: authH.Require})
	if err != nil {
		t.Fatal(err)
	}
	apiH, err := idm.NewHandler(idm.Config{Store: store, LinkTokens: authH.LinkTokens(), Authenticate: authH.Require,
		QRCode: func(text string) ([]byte, error) { return qrpng.Encode(text) }})
	if err != nil {
		t.Fatal(err)
	}
	mux := idm.NewMux()
	authH.Install(mux.Handle)
	usersH.Install(mux.Handle)
	apiH.Install(mux.Handle)
	clk := &clock{t: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)}
	cfg := console.Config{Store: store, API: mux, Tokens: authH, Now: clk.Now}
	for _, o := range opts {
		o(&cfg)
	}
	consoleH, err := console.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	consoleH.Install(mux.Handle)
	srv := httptest.NewServer(consoleH.SessionAuth(mux))
	t.Cleanup(srv.Close)
	return &env{t: t, store: store, auth: authH, console: consoleH, clock: clk, srv: srv}
}

// addUser stores a user with testPassword.
func (e *env) addUser(username string, role idm.Role, sites ...string) idm.User {
	e.t.Helper()
	pw, err := auth.NewPasswords(auth.PasswordConfig{Cost: bcrypt.MinCost})
	if err != nil {
		e.t.Fatal(err)
	}
	hash, err := pw.Hash(e.t.Context(), testPassword)
	if err != nil {
		e.t.Fatal(err)
	}
	now := idm.Timestamp(time.Now())
	u := idm.User{ID: idm.NewID(), Username: username, PasswordHash: hash, Role: role, Sites: sites,
		Admin: role == idm.RoleAdmin, Created: now, Changed: now}
	if err := e.store.CreateUser(e.t.Context(), u); err != nil {
		e.t.Fatal(err)
	}
	return u
}

// browser is a client that keeps cookies by hand, follows no redirects and
// sends what a browser sends on same-origin form posts.
type browser struct {
	e      *env
	cookie *http.Cookie
}

type page struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(method, path string, form url.Values, hdr ...string) page {
	b.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.e.srv.URL+path, body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	req.Header.Set("Accept", "text/html")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			b.cookie = nil
		} else {
			b.cookie = c
		}
	}
	return page{status: resp.StatusCode, header: resp.Header, body: string(data)}
}

// signIn signs in through the console's form.
func (e *env) signIn(username string) *browser {
	e.t.Helper()
	b := &browser{e: e}
	p := b.do("POST", "/console/signin", url.Values{"username": {username}, "password": {testPassword}})
	if p.status != http.StatusSeeOther || b.cookie == nil {
		e.t.Fatalf("sign-in of %s: %d %s", username, p.status, p.body)
	}
	return b
}

// hashOf is the stored form of a session ID.
func hashOf(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

func newFaulty() *faultyStore { return &faultyStore{Store: memstore.New(), fail: map[string]bool{}} }
