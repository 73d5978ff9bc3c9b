package resetflow_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/internal/smtptest"
	"github.com/c3-pro/idm/resetflow"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPages(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice@example.org", "old password 123", false)
	key := keyOf(t, e.requestLink("alice@example.org"))
	styleRE := regexp.MustCompile(`(?s)<style>(.*?)</style>`)
	for _, tc := range []struct {
		name, method, target string
		form                 url.Values
		status               int
		contains             []string
	}{
		{"IforgotForm", "GET", "/iforgot", nil, 200, []string{`<form method="post" action="iforgot">`, `name="username"`, "Forgot your password?"}},
		{"IforgotEmpty", "POST", "/iforgot", url.Values{"username": {"  "}}, 400, []string{"username is required", `action="iforgot"`}},
		{"IforgotTooLong", "POST", "/iforgot", url.Values{"username": {strings.Repeat("a", 250) + "@x.org"}}, 400, []string{"username must be at most 254 bytes long"}},
		{"ResetForm", "GET", "/reset?k=" + key, nil, 200, []string{`<form method="post" action="reset">`, `name="pass1"`, `name="pass2"`, `value="` + key + `"`, "alice@example.org", "at least 8 characters"}},
		{"ResetNoKey", "GET", "/reset", nil, 400, []string{resetflow.MsgInvalidLink, `href="iforgot"`}},
		{"ResetBadKey", "GET", "/reset?k=%3Cscript%3E", nil, 400, []string{resetflow.MsgInvalidLink}},
		{"ResetUnknownKey", "GET", "/reset?k=" + strings.Repeat("A", 43), nil, 400, []string{resetflow.MsgInvalidLink}},
		{"ResetPostBadKey", "POST", "/reset", url.Values{"key": {"nope"}, "pass1": {"long enough pw"}, "pass2": {"long enough pw"}}, 400, []string{resetflow.MsgInvalidLink}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var res response
			if tc.method == "GET" {
				res = e.do("GET", tc.target, nil, nil)
			} else {
				res = e.postForm(tc.target, tc.form, nil)
			}
			assert.Equal(t, tc.status, res.Status, res.Body)
			for _, s := range tc.contains {
				assert.Contains(t, res.Body, s)
			}
			assert.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"))
			assert.Equal(t, "no-referrer", res.Header.Get("Referrer-Policy"))
			assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
			assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
			assert.NotContains(t, res.Body, "<script")
			// The inline stylesheet is allowed by its hash and nothing else.
			csp := res.Header.Get("Content-Security-Policy")
			m := styleRE.FindStringSubmatch(res.Body)
			require.Len(t, m, 2)
			sum := sha256.Sum256([]byte(m[1]))
			for _, d := range []string{"default-src 'none'", "style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'",
				"form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
				assert.Contains(t, csp, d)
			}
			assert.NotContains(t, csp, "unsafe")
		})
	}
	t.Run("Escaping", func(t *testing.T) {
		res := e.postForm("/iforgot", url.Values{"username": {`"><script>alert(1)</script>`}}, nil)
		assert.Equal(t, http.StatusOK, res.Status) // any username gets the uniform answer
		res = e.postForm("/iforgot", url.Values{"username": {"   "}}, nil)
		assert.NotContains(t, res.Body, "<script>alert")
	})
}

func TestJSON(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("alice@example.org", "old password 123", false)
	res := e.postJSON("/iforgot", `{"username":"alice@example.org"}`, nil)
	require.Equal(t, http.StatusAccepted, res.Status)
	assert.Equal(t, "application/json", res.Header.Get("Content-Type"))
	link := mailLink(t, e.mail.Wait(t, 1)[0])
	key := keyOf(t, link)

	get := e.do("GET", "/reset?k="+key, nil, map[string]string{"Accept": "application/json"})
	require.Equal(t, http.StatusOK, get.Status)
	var view struct {
		Data struct {
			Purpose  string    `json:"purpose"`
			Username string    `json:"username"`
			Expires  time.Time `json:"expires"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(get.Body), &view))
	assert.Equal(t, "reset", view.Data.Purpose)
	assert.Equal(t, "alice@example.org", view.Data.Username)
	assert.Equal(t, t0.Add(2*time.Hour), view.Data.Expires)

	for _, tc := range []struct {
		name, method, target, ctype, body string
		header                            map[string]string
		status                            int
		message                           string
	}{
		{"Malformed", "POST", "/reset", "application/json", `{"key":`, nil, 400, "malformed JSON: unexpected end of input"},
		{"UnknownField", "POST", "/reset", "application/json", `{"key":"x","password":"y","pass2":"z"}`, nil, 400, `unknown field "pass2"`},
		{"WrongType", "POST", "/iforgot", "application/json", `{"username":5}`, nil, 400, `field "username" must be a string, not number`},
		{"EmptyUsername", "POST", "/iforgot", "application/json", `{"username":""}`, nil, 400, "username is required"},
		{"BadKey", "POST", "/reset", "application/json", `{"key":"x","password":"long enough pw"}`, nil, 400, resetflow.MsgInvalidLink},
		{"TextPlain", "POST", "/iforgot", "text/plain", `username=alice@example.org`, map[string]string{"Accept": "application/json"}, 415, "the request body must be a form (application/x-www-form-urlencoded) or JSON"},
		{"TooLarge", "POST", "/iforgot", "application/json", `{"username":"` + strings.Repeat("a", 2<<20) + `"}`, nil, 413, "request body too large (limit 1048576 bytes)"},
		{"FormTooLarge", "POST", "/iforgot", "application/x-www-form-urlencoded", "username=" + strings.Repeat("a", 2<<20), map[string]string{"Accept": "application/json"}, 413, "request body too large (limit 1048576 bytes)"},
		{"LongField", "POST", "/reset", "application/x-www-form-urlencoded", "key=" + strings.Repeat("a", 5000), map[string]string{"Accept": "application/json"}, 400, `field "key" is longer than 4096 bytes`},
		{"BadUTF8", "POST", "/iforgot", "application/x-www-form-urlencoded", "username=%ff", map[string]string{"Accept": "application/json"}, 400, `field "username" is not valid UTF-8`},
		{"GetExpired", "GET", "/reset?k=" + strings.Repeat("A", 43), "", "", map[string]string{"Accept": "application/json"}, 400, resetflow.MsgInvalidLink},
		{"MethodNotAllowed", "DELETE", "/reset", "", "", nil, 405, "Method Not Allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{}
			if tc.ctype != "" {
				h["Content-Type"] = tc.ctype
			}
			for k, v := range tc.header {
				h[k] = v
			}
			res := e.do(tc.method, tc.target, strings.NewReader(tc.body), h)
			assert.Equal(t, tc.status, res.Status, res.Body)
			assert.Equal(t, "application/json", res.Header.Get("Content-Type"))
			assert.Equal(t, tc.message, errorMessage(t, res.Body))
			if tc.status == 405 {
				assert.Equal(t, "GET, HEAD, POST", res.Header.Get("Allow"))
			}
		})
	}

	t.Run("NotFound", func(t *testing.T) {
		srv := httptest.NewServer(e.h)
		defer srv.Close()
		res, err := srv.Client().Get(srv.URL + "/iforgot/x")
		require.NoError(t, err)
		defer res.Body.Close()
		assert.Equal(t, http.StatusNotFound, res.StatusCode)
		assert.Equal(t, "application/json", res.Header.Get("Content-Type"))
	})

	ok := e.postJSON("/reset", `{"key":"`+key+`","password":"a fresh passphrase"}`, nil)
	require.Equal(t, http.StatusOK, ok.Status, ok.Body)
	assert.JSONEq(t, `{"data":{"message":"your password has been set"}}`, ok.Body)
	assert.True(t, e.verify(u.ID, "a fresh passphrase"))
}

func TestNegotiation(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		accept string
		json   bool
	}{
		{"", false},
		{"*/*", false},
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", false},
		{"application/json", true},
		{"application/json, text/plain, */*", true},
		{"text/html;q=0.5, application/json", true},
		{"application/*", true},
		{"application/json;q=0.2, text/*;q=0.5", false},
		{"application/json;q=0", false},
		{"application/json;q=0.8, */*;q=0.8", true},
		{"text/html, application/json", false},
	} {
		t.Run(tc.accept, func(t *testing.T) {
			res := e.postForm("/iforgot", url.Values{"username": {"nobody@example.org"}}, map[string]string{"Accept": tc.accept})
			if tc.json {
				assert.Equal(t, http.StatusAccepted, res.Status)
				assert.Equal(t, "application/json", res.Header.Get("Content-Type"))
			} else {
				assert.Equal(t, http.StatusOK, res.Status)
				assert.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"))
			}
		})
	}
}

func TestAccountLimit(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("alice@example.org", "old password 123", false)
	for i := range 5 {
		res := e.postForm("/iforgot", url.Values{"username": {"alice@example.org"}}, nil)
		require.Equal(t, http.StatusOK, res.Status, "request %d", i)
		e.h.Wait()
	}
	assert.Len(t, e.mail.Messages(), resetflow.DefaultMaxRequests)
	assert.Equal(t, 2, e.countEvents(resetflow.EventThrottled))
	assert.Equal(t, 1, count(e.audits(u.ID), resetflow.ActionResetThrottled), "one throttling record per window")
	// The last link sent is still good.
	last := mailLink(t, e.mail.Messages()[2])
	assert.Equal(t, http.StatusOK, e.do("GET", "/reset?k="+keyOf(t, last), nil, nil).Status)

	e.clock.Advance(time.Hour)
	e.postForm("/iforgot", url.Values{"username": {"alice@example.org"}}, nil)
	e.mail.Wait(t, resetflow.DefaultMaxRequests+1)
}

func count(xs []string, x string) int {
	n := 0
	for _, y := range xs {
		if y == x {
			n++
		}
	}
	return n
}

func TestAddressLimit(t *testing.T) {
	lim, err := auth.NewAddressLimiter(auth.AddressLimiterConfig{Rate: 0.01, Burst: 2})
	require.NoError(t, err)
	e := newEnv(t, func(c *resetflow.Config) { c.Limiter = lim })
	for i := range 2 {
		res := e.postForm("/iforgot", url.Values{"username": {"nobody@example.org"}}, nil)
		require.Equal(t, http.StatusOK, res.Status, "request %d", i)
	}
	for _, tc := range []struct {
		name string
		send func() response
		json bool
	}{
		{"IforgotForm", func() response { return e.postForm("/iforgot", url.Values{"username": {"nobody@example.org"}}, nil) }, false},
		{"IforgotJSON", func() response { return e.postJSON("/iforgot", `{"username":"nobody@example.org"}`, nil) }, true},
		{"ResetGet", func() response { return e.do("GET", "/reset?k=x", nil, nil) }, false},
		{"ResetJSON", func() response { return e.postJSON("/reset", `{"key":"x","password":"y"}`, nil) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := tc.send()
			assert.Equal(t, http.StatusTooManyRequests, res.Status)
			assert.NotEmpty(t, res.Header.Get("Retry-After"))
			if tc.json {
				assert.Equal(t, "too many requests; try again later", errorMessage(t, res.Body))
			} else {
				assert.Contains(t, res.Body, "too many requests; try again later")
			}
		})
	}
	// GET /iforgot only shows a form and is not limited.
	assert.Equal(t, http.StatusOK, e.do("GET", "/iforgot", nil, nil).Status)
}

func TestInvite(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("new.user@example.org", "", false)
	admin := idm.Principal{UserID: idm.NewID(), Username: "admin@example.org", Admin: true}
	require.NoError(t, e.h.Invite(idm.WithPrincipal(t.Context(), &admin), u))
	m := e.mail.Wait(t, 1)[0]
	assert.Equal(t, []string{"new.user@example.org"}, m.To)
	assert.Contains(t, m.Subject, "your new account")
	assert.Contains(t, m.Text, "an account was created for you")
	assert.Contains(t, m.Text, "valid for 72 hours")
	assert.Equal(t, `"C3-PRO IDM" <idm@example.org>`, m.Header.Get("From"))
	key := keyOf(t, mailLink(t, m))

	recs, err := e.store.AuditsFor(t.Context(), u.ID)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, resetflow.ActionInvite, recs[0].Action)
	assert.Equal(t, admin.UserID, recs[0].ActorID)
	assert.Equal(t, "admin@example.org", recs[0].Actor)

	e.clock.Advance(72*time.Hour - time.Second)
	get := e.do("GET", "/reset?k="+key, nil, nil)
	require.Equal(t, http.StatusOK, get.Status)
	assert.Contains(t, get.Body, "Choose your password")
	res := e.setPassword(key, "my first password", "my first password")
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	assert.True(t, e.verify(u.ID, "my first password"))
	assert.Contains(t, e.audits(u.ID), resetflow.ActionSetPassword)

	t.Run("Expired", func(t *testing.T) {
		v := e.addUser("late@example.org", "", false)
		require.NoError(t, e.h.Invite(t.Context(), v))
		key := keyOf(t, mailLink(t, e.mail.MessagesTo("late@example.org")[0]))
		e.clock.Advance(72 * time.Hour)
		assert.Equal(t, http.StatusBadRequest, e.setPassword(key, "my first password", "my first password").Status)
	})
	t.Run("Disabled", func(t *testing.T) {
		v := e.addUser("off@example.org", "", true)
		err := e.h.Invite(t.Context(), v)
		assert.ErrorIs(t, err, idm.ErrPrecondition)
		e.h.Wait()
		assert.Empty(t, e.mail.MessagesTo("off@example.org"))
	})
	t.Run("MailFails", func(t *testing.T) {
		e.mail.SetReject(func(smtptest.Message) error { return errors.New("mailbox unavailable") })
		defer e.mail.SetReject(nil)
		v := e.addUser("unlucky@example.org", "", false)
		err := e.h.Invite(t.Context(), v)
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "/reset?k=", "no link in errors")
		n, err := e.store.CountResetTokens(t.Context(), v.ID, time.Time{})
		require.NoError(t, err)
		assert.Zero(t, n, "an invitation that was not sent is removed")
	})
}

func TestMailFailureInvisible(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice@example.org", "old password 123", false)
	ok := e.postForm("/iforgot", url.Values{"username": {"alice@example.org"}}, nil)
	e.h.Wait()
	e.mail.SetReject(func(smtptest.Message) error { return errors.New("relay down") })
	failed := e.postForm("/iforgot", url.Values{"username": {"alice@example.org"}}, nil)
	e.h.Wait()
	assert.Equal(t, ok.Status, failed.Status)
	assert.Equal(t, ok.Body, failed.Body)
	assert.Equal(t, 1, e.countEvents(resetflow.EventMailFailed))
	assert.Equal(t, 1, e.countEvents(resetflow.EventMailSent))
}

func TestDisabledUserGetsNoMail(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("alice@example.org", "old password 123", false)
	key := keyOf(t, e.requestLink("alice@example.org"))
	// Disabled after the link went out: the link stops working.
	u.Disabled = true
	require.NoError(t, e.store.UpdateUser(t.Context(), u))
	assert.Equal(t, http.StatusBadRequest, e.setPassword(key, "brand new password", "brand new password").Status)
	require.NoError(t, e.h.PasswordChanged(t.Context(), u))
	e.postForm("/iforgot", url.Values{"username": {"alice@example.org"}}, nil)
	e.h.Wait()
	assert.Len(t, e.mail.Messages(), 1, "only the mail sent before disabling")
}

func TestPasswordChangedNotice(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("alice@example.org", "old password 123", false)
	u.PasswordChanged = t0.Add(90 * time.Minute)
	require.NoError(t, e.h.PasswordChanged(t.Context(), u))
	m := e.mail.Wait(t, 1)[0]
	assert.Equal(t, "C3-PRO IDM: your password was changed", m.Subject)
	assert.Contains(t, m.Text, "29 November 2026 at 13:30 UTC")
	assert.Contains(t, m.HTML, `href="https://idm.example.org/iforgot"`)
}

func TestPathPrefix(t *testing.T) {
	e := newEnv(t, func(c *resetflow.Config) { c.PublicURL = "https://example.org/idm/" })
	host := http.NewServeMux()
	inner := http.NewServeMux()
	e.h.Install(inner.Handle)
	host.Handle("/idm/", http.StripPrefix("/idm", inner))
	srv := httptest.NewServer(host)
	defer srv.Close()
	u := e.addUser("alice@example.org", "old password 123", false)

	res, err := srv.Client().PostForm(srv.URL+"/idm/iforgot", url.Values{"username": {"alice@example.org"}})
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	link := mailLink(t, e.mail.Wait(t, 1)[0])
	assert.True(t, strings.HasPrefix(link, "https://example.org/idm/reset?k="), link)

	res, err = srv.Client().PostForm(srv.URL+"/idm/reset", url.Values{"key": {keyOf(t, link)}, "pass1": {"prefixed password"}, "pass2": {"prefixed password"}})
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.True(t, e.verify(u.ID, "prefixed password"))
}

func TestTemplatesReplaceable(t *testing.T) {
	host := fstest.MapFS{
		"mail/reset.subject.txt": {Data: []byte("Reset for {{.Username}}")},
		"mail/reset.txt":         {Data: []byte("Go to {{.Link}} within {{.ValidFor}}.")},
		"pages/style.css":        {Data: []byte("body { color: #000; }")},
	}
	e := newEnv(t, func(c *resetflow.Config) { c.Templates = host; c.ServiceName = "Study X" })
	e.addUser("alice@example.org", "old password 123", false)
	link := e.requestLink("alice@example.org")
	m := e.mail.Messages()[0]
	assert.Equal(t, "Reset for alice@example.org", m.Subject)
	assert.Equal(t, "Go to "+link+" within 2 hours.", m.Text)
	assert.Contains(t, m.HTML, "Study X", "the HTML body keeps its default")
	page := e.do("GET", "/iforgot", nil, nil)
	assert.Contains(t, page.Body, "<style>body { color: #000; }</style>")
	sum := sha256.Sum256([]byte("body { color: #000; }"))
	assert.Contains(t, page.Header.Get("Content-Security-Policy"), base64.StdEncoding.EncodeToString(sum[:]))

	_, err := resetflow.New(resetflow.Config{Store: e.store, Accounts: e.accounts, Passwords: e.pw, Mailer: e.mailer, PublicURL: publicURL,
		Templates: fstest.MapFS{"pages/reset.html": {Data: []byte("{{define \"content\"}}{{.Nope}")}}})
	assert.ErrorContains(t, err, "pages/reset.html")
}

func TestNew(t *testing.T) {
	e := newEnv(t)
	valid := func() resetflow.Config {
		return resetflow.Config{Store: e.store, Accounts: e.accounts, Passwords: e.pw, Mailer: e.mailer, PublicURL: publicURL}
	}
	for _, tc := range []struct {
		name   string
		change func(*resetflow.Config)
		ok     bool
	}{
		{"Valid", func(*resetflow.Config) {}, true},
		{"PrefixAndLogin", func(c *resetflow.Config) { c.PublicURL = "http://localhost:9096/idm"; c.LoginURL = "/login" }, true},
		{"NoStore", func(c *resetflow.Config) { c.Store = nil }, false},
		{"NoAccounts", func(c *resetflow.Config) { c.Accounts = nil }, false},
		{"NoPasswords", func(c *resetflow.Config) { c.Passwords = nil }, false},
		{"NoMailer", func(c *resetflow.Config) { c.Mailer = nil }, false},
		{"NoPublicURL", func(c *resetflow.Config) { c.PublicURL = "" }, false},
		{"RelativePublicURL", func(c *resetflow.Config) { c.PublicURL = "/idm" }, false},
		{"PublicURLScheme", func(c *resetflow.Config) { c.PublicURL = "ftp://idm.example.org" }, false},
		{"PublicURLQuery", func(c *resetflow.Config) { c.PublicURL = "https://idm.example.org/?a=b" }, false},
		{"PublicURLUser", func(c *resetflow.Config) { c.PublicURL = "https://u:p@idm.example.org" }, false},
		{"LoginURLScript", func(c *resetflow.Config) { c.LoginURL = "javascript:alert(1)" }, false},
		{"LoginURLSchemeRelative", func(c *resetflow.Config) { c.LoginURL = "//evil.example/" }, false},
		{"NegativeTTL", func(c *resetflow.Config) { c.TokenTTL = -time.Hour }, false},
		{"TinyTTL", func(c *resetflow.Config) { c.InviteTTL = time.Millisecond }, false},
		{"NegativeMaxRequests", func(c *resetflow.Config) { c.MaxRequests = -1 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.change(&c)
			h, err := resetflow.New(c)
			if tc.ok {
				require.NoError(t, err)
				require.NoError(t, h.Close())
			} else {
				assert.Error(t, err)
			}
		})
	}
}

func TestClose(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice@example.org", "old password 123", false)
	e.postForm("/iforgot", url.Values{"username": {"alice@example.org"}}, nil)
	require.NoError(t, e.h.Close())
	assert.Len(t, e.mail.Messages(), 1, "Close waits for the mail being sent")
	res := e.postForm("/iforgot", url.Values{"username": {"alice@example.org"}}, nil)
	assert.Equal(t, http.StatusOK, res.Status, "the answer stays the same after Close")
	assert.Equal(t, 1, e.countEvents(resetflow.EventDropped))
	assert.Len(t, e.mail.Messages(), 1)
}

func TestResetClearsLoginThrottling(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("alice@example.org", "old password 123", false)
	for range 6 {
		_, err := e.store.RecordLoginFailure(t.Context(), "alice@example.org", t0, 15*time.Minute)
		require.NoError(t, err)
	}
	key := keyOf(t, e.requestLink("alice@example.org"))
	require.Equal(t, http.StatusOK, e.setPassword(key, "brand new password", "brand new password").Status)
	lf, err := e.store.LoginFailures(t.Context(), "alice@example.org")
	require.NoError(t, err)
	assert.Zero(t, lf.Count, "a reset unlocks the account")
	assert.True(t, e.verify(u.ID, "brand new password"))
}
