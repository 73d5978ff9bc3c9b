package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/internal/smtptest"
	"github.com/c3-pro/idm/internal/testmongo"
)

// testService is idmd's service, wired by newService as serve wires it, on a
// real store and served over real HTTP.
type testService struct {
	t     *testing.T
	store idm.Store
	srv   *httptest.Server
	mail  *smtptest.Server
}

// storeEnvs are the environments that choose idmd's stores in the tests:
// the bbolt file (the default) and MongoDB (the embedded test server).
func storeEnvs() []struct {
	name string
	env  func(t *testing.T) map[string]string
} {
	return []struct {
		name string
		env  func(t *testing.T) map[string]string
	}{
		{"boltstore", func(t *testing.T) map[string]string {
			return map[string]string{"IDM_DB": filepath.Join(t.TempDir(), "idm.db")}
		}},
		{"mongostore", func(t *testing.T) map[string]string {
			return map[string]string{"IDM_MONGO_URI": testmongo.URI(t), "IDM_MONGO_DB": testmongo.NewDatabaseName(t)}
		}},
	}
}

// newTestService configures idmd from env (over sensible test settings:
// mail to a test SMTP server, no per-address limit), opens its store and
// serves the wired service.
func newTestService(t *testing.T, env map[string]string) *testService {
	t.Helper()
	mail := smtptest.Start(t)
	vars := map[string]string{
		"IDM_SMTP_URL": mail.URL(), "IDM_MAIL_FROM": "idm@example.org", "IDM_RATE_LIMIT": "off",
		"IDM_PUBLIC_URL": "https://idm.example.org",
	}
	for k, v := range env {
		vars[k] = v
	}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	build := configFlags(fs, func(k string) string { return vars[k] })
	require.NoError(t, fs.Parse(nil))
	cfg, err := build()
	require.NoError(t, err)
	ctx := t.Context()
	store, err := openStore(ctx, cfg)
	require.NoError(t, err)
	log := slog.New(slog.DiscardHandler)
	svc, err := newService(ctx, cfg, store, log)
	require.NoError(t, err)
	srv := httptest.NewServer(svc.handler)
	t.Cleanup(func() {
		srv.Close()
		if svc.reset != nil {
			_ = svc.reset.Close()
		}
		require.NoError(t, store.Close())
	})
	return &testService{t: t, store: store, srv: srv, mail: mail}
}

// answer is a reply of the service.
type answer struct {
	status int
	header http.Header
	body   string
}

// message returns the message of a JSON error envelope.
func (a answer) message() string {
	var e idm.ErrorBody
	if json.Unmarshal([]byte(a.body), &e) != nil {
		return ""
	}
	return e.Error.Message
}

// do sends a request; headers are name/value pairs ("Content-Type" defaults
// to application/json when there is a body; give "" to send none).
func (s *testService) do(method, path, body string, headers ...string) answer {
	s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(s.t.Context(), method, s.srv.URL+path, rd)
	require.NoError(s.t, err)
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
	resp, err := s.srv.Client().Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// must sends a request and fails the test unless it gets want.
func (s *testService) must(want int, method, path, body string, headers ...string) answer {
	s.t.Helper()
	a := s.do(method, path, body, headers...)
	require.Equal(s.t, want, a.status, "%s %s: %s", method, path, a.body)
	return a
}

const (
	testAdmin    = "admin@example.org"
	testPassword = "correct horse battery staple"
)

// bootstrap creates the first admin through /init and returns a staff
// token of theirs.
func (s *testService) bootstrap() string {
	s.t.Helper()
	s.must(http.StatusCreated, "POST", "/init", fmt.Sprintf(`{"username":%q,"password":%q}`, testAdmin, testPassword))
	return s.login(testAdmin, testPassword)
}

// login returns a staff token.
func (s *testService) login(user, pass string) string {
	s.t.Helper()
	a := s.must(http.StatusOK, "POST", "/auth", fmt.Sprintf(`{"username":%q,"password":%q}`, user, pass))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(s.t, json.Unmarshal([]byte(a.body), &tok))
	require.NotEmpty(s.t, tok.AccessToken)
	return tok.AccessToken
}

// staff sends a request with the staff token tok.
func (s *testService) staff(tok string, want int, method, path, body string, headers ...string) answer {
	s.t.Helper()
	return s.must(want, method, path, body, append([]string{"Authorization", "JWT " + tok}, headers...)...)
}

// jsonField returns the string at path in the JSON object body.
func jsonField(t *testing.T, body string, path ...string) string {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal([]byte(body), &v), body)
	for _, p := range path {
		m, ok := v.(map[string]any)
		require.True(t, ok, "%s: no object at %q", body, p)
		v = m[p]
	}
	s, ok := v.(string)
	require.True(t, ok, "%s: %v is not a string", body, path)
	return s
}
