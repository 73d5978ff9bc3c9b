package resetflow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
	"github.com/c3-pro/idm/internal/smtptest"
	"github.com/c3-pro/idm/internal/testclock"
	"github.com/c3-pro/idm/resetflow"
	"github.com/c3-pro/idm/users"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
)

// t0 is the fake clock's start.
var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

const publicURL = "https://idm.example.org"

// spyStore is a memstore that keeps a copy of everything written to it, so
// that tests can check what the flow stores.
type spyStore struct {
	*memstore.Store
	mu      sync.Mutex
	written []string
}

func (s *spyStore) record(v any) {
	b, _ := json.Marshal(v)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.written = append(s.written, fmt.Sprintf("%T %s", v, b))
}

// Written returns every value written so far, each as JSON.
func (s *spyStore) Written() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.written...)
}

func (s *spyStore) CreateUser(ctx context.Context, u idm.User) error {
	s.record(u)
	return s.Store.CreateUser(ctx, u)
}

func (s *spyStore) UpdateUser(ctx context.Context, u idm.User) error {
	s.record(u)
	return s.Store.UpdateUser(ctx, u)
}

func (s *spyStore) AppendAudit(ctx context.Context, e idm.AuditEvent) error {
	s.record(e)
	return s.Store.AppendAudit(ctx, e)
}

func (s *spyStore) CreateResetToken(ctx context.Context, t idm.ResetToken) error {
	s.record(t)
	return s.Store.CreateResetToken(ctx, t)
}

func (s *spyStore) RecordLoginFailure(ctx context.Context, key string, now time.Time, window time.Duration) (idm.LoginFailures, error) {
	s.record(map[string]any{"key": key, "now": now, "window": window})
	return s.Store.RecordLoginFailure(ctx, key, now, window)
}

// env is a resetflow handler on a real memstore with real auth passwords,
// behind a real HTTP server, sending mail to a real SMTP server.
type env struct {
	t        *testing.T
	store    *spyStore
	clock    *testclock.Clock
	pw       *auth.Passwords
	mail     *smtptest.Server
	mailer   *resetflow.SMTPMailer
	h        *resetflow.Handler
	accounts *users.Service
	srv      *httptest.Server
	mu       sync.Mutex
	events   []string
}

// unlimited is an AddressLimiter that allows everything.
type unlimited struct{}

func (unlimited) Allow(*http.Request) (bool, time.Duration) { return true, 0 }

// newAccounts returns the user-lifecycle service the flow sets passwords
// through, over store.
func newAccounts(t testing.TB, store users.Store, pw users.Passwords, now func() time.Time) *users.Service {
	t.Helper()
	svc, err := users.NewService(users.ServiceConfig{Store: store, Passwords: pw, Now: now})
	require.NoError(t, err)
	return svc
}

// newEnv starts an env; opts may change the config before New.
func newEnv(t *testing.T, opts ...func(*resetflow.Config)) *env {
	t.Helper()
	e := &env{t: t, clock: testclock.New(t0)}
	e.store = &spyStore{Store: memstore.New()}
	t.Cleanup(func() { _ = e.store.Close() })
	pw, err := auth.NewPasswords(auth.PasswordConfig{Cost: bcrypt.MinCost})
	require.NoError(t, err)
	e.pw = pw
	e.mail = smtptest.Start(t)
	e.mailer, err = resetflow.NewSMTPMailer(e.mail.URL(), "C3-PRO IDM <idm@example.org>", resetflow.WithTimeout(10*time.Second))
	require.NoError(t, err)
	cfg := resetflow.Config{
		Store:     e.store,
		Accounts:  newAccounts(t, e.store, pw, e.clock.Now),
		Limiter:   unlimited{}, // the limit has tests of its own
		Passwords: pw,
		Mailer:    e.mailer,
		PublicURL: publicURL,
		Now:       e.clock.Now,
		OnEvent: func(ev string) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.events = append(e.events, ev)
		},
	}
	for _, o := range opts {
		o(&cfg)
	}
	e.accounts = cfg.Accounts.(*users.Service)
	e.h, err = resetflow.New(cfg)
	require.NoError(t, err)
	e.accounts.SetMail(e.h, e.h)
	mux := http.NewServeMux()
	e.h.Install(mux.Handle)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		e.srv.Close()
		_ = e.h.Close()
	})
	return e
}

// countEvents returns how often ev was reported.
func (e *env) countEvents(ev string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, x := range e.events {
		if x == ev {
			n++
		}
	}
	return n
}

// addUser stores a user with the given password ("" for none).
func (e *env) addUser(username, password string, disabled bool) idm.User {
	e.t.Helper()
	u := idm.User{ID: idm.NewID(), Username: username, Disabled: disabled, Created: t0, Changed: t0}
	if password != "" {
		h, err := e.pw.Hash(e.t.Context(), password)
		require.NoError(e.t, err)
		u.PasswordHash = h
	}
	require.NoError(e.t, e.store.CreateUser(e.t.Context(), u))
	u, err := e.store.FindUserByID(e.t.Context(), u.ID)
	require.NoError(e.t, err)
	return u
}

func (e *env) user(id string) idm.User {
	e.t.Helper()
	u, err := e.store.FindUserByID(e.t.Context(), id)
	require.NoError(e.t, err)
	return u
}

// response is a finished HTTP exchange.
type response struct {
	Status int
	Header http.Header
	Body   string
}

// do sends a request to the env's server.
func (e *env) do(method, target string, body io.Reader, header map[string]string) response {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.srv.URL+target, body)
	require.NoError(e.t, err)
	for k, v := range header {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	res, err := e.srv.Client().Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	return response{Status: res.StatusCode, Header: res.Header, Body: string(b)}
}

// postForm posts form values.
func (e *env) postForm(target string, v url.Values, header map[string]string) response {
	e.t.Helper()
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for k, x := range header {
		h[k] = x
	}
	return e.do(http.MethodPost, target, strings.NewReader(v.Encode()), h)
}

// postJSON posts a JSON body.
func (e *env) postJSON(target, body string, header map[string]string) response {
	e.t.Helper()
	h := map[string]string{"Content-Type": "application/json"}
	for k, x := range header {
		h[k] = x
	}
	return e.do(http.MethodPost, target, strings.NewReader(body), h)
}

var linkRE = regexp.MustCompile(`https?://[^\s"<>]+/reset\?k=[A-Za-z0-9_-]+`)

// requestLink posts /iforgot for username and returns the link from the
// mail that arrives (the n-th mail in all).
func (e *env) requestLink(username string) string {
	e.t.Helper()
	before := len(e.mail.Messages())
	res := e.postForm("/iforgot", url.Values{"username": {username}}, nil)
	require.Equal(e.t, http.StatusOK, res.Status, res.Body)
	msgs := e.mail.Wait(e.t, before+1)
	return mailLink(e.t, msgs[before])
}

// mailLink returns the one link in m's text body, checking the HTML body
// has the same.
func mailLink(t *testing.T, m smtptest.Message) string {
	t.Helper()
	require.NoError(t, m.ParseErr)
	links := linkRE.FindAllString(m.Text, -1)
	require.Len(t, links, 1, "text body: %s", m.Text)
	require.Contains(t, m.HTML, `href="`+links[0]+`"`)
	return links[0]
}

// keyOf returns the token of a link.
func keyOf(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	require.NoError(t, err)
	return u.Query().Get("k")
}

// setPassword posts the reset form.
func (e *env) setPassword(key, pass1, pass2 string) response {
	e.t.Helper()
	return e.postForm("/reset", url.Values{"key": {key}, "pass1": {pass1}, "pass2": {pass2}}, nil)
}

// verify reports whether password is u's current password.
func (e *env) verify(userID, password string) bool {
	e.t.Helper()
	ok, _, err := e.pw.Verify(e.t.Context(), e.user(userID).PasswordHash, password)
	require.NoError(e.t, err)
	return ok
}

// audits returns the actions of the audit records about a user.
func (e *env) audits(userID string) []string {
	e.t.Helper()
	recs, err := e.store.AuditsFor(e.t.Context(), userID)
	require.NoError(e.t, err)
	var out []string
	for _, r := range recs {
		out = append(out, r.Action)
	}
	return out
}

// errorMessage returns the message of a JSON error envelope.
func errorMessage(t *testing.T, body string) string {
	t.Helper()
	var env idm.ErrorBody
	require.NoError(t, json.Unmarshal([]byte(body), &env), body)
	return env.Error.Message
}
