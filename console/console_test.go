package console_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/console"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
)

// TestSessionCookie checks the cookie a sign-in sets: HttpOnly,
// SameSite=Strict, Path=/, a 256-bit random value of which the store keeps
// only the SHA-256; Secure and __Host- prefixed when the public URL is
// https.
func TestSessionCookie(t *testing.T) {
	for _, tc := range []struct {
		publicURL, name string
		secure          bool
	}{
		{"", "idm_console", false},
		{"http://localhost:9096", "idm_console", false},
		{"https://idm.example.org", "__Host-idm_console", true},
	} {
		t.Run(tc.publicURL, func(t *testing.T) {
			store := memstore.New()
			e := newEnv(t, store, func(c *console.Config) { c.PublicURL = tc.publicURL })
			e.addUser("coord@example.org", idm.RoleCoordinator, idm.AllSites)
			b := &browser{e: e}
			p := b.do("POST", "/console/signin", url.Values{"username": {"coord@example.org"}, "password": {testPassword}})
			if p.status != http.StatusSeeOther {
				t.Fatalf("sign-in: %d %s", p.status, p.body)
			}
			raw := p.header.Get("Set-Cookie")
			c := b.cookie
			switch {
			case c == nil:
				t.Fatalf("no cookie: %q", raw)
			case c.Name != tc.name, !c.HttpOnly, c.SameSite != http.SameSiteStrictMode, c.Path != "/", c.Secure != tc.secure, c.Domain != "":
				t.Errorf("cookie %q: want name %s, HttpOnly, SameSite=Strict, Path=/, Secure=%v, no Domain", raw, tc.name, tc.secure)
			case c.MaxAge != int(console.DefaultLifetime/time.Second):
				t.Errorf("cookie %q: Max-Age is not the session lifetime", raw)
			case len(c.Value) != 43: // 32 bytes, base64url without padding
				t.Errorf("cookie value %q is not 256 bits", c.Value)
			}
			s, err := store.FindSession(t.Context(), hashOf(c.Value))
			if err != nil {
				t.Fatalf("the session is not stored under the SHA-256 of its ID: %v", err)
			}
			if s.IDHash == c.Value || strings.Contains(s.IDHash, c.Value) {
				t.Error("the store holds the session ID itself")
			}
			if _, err := store.FindSession(t.Context(), c.Value); err == nil {
				t.Error("the session is found by its raw ID")
			}
			if !s.Expires.Equal(e.clock.Now().Add(console.DefaultLifetime)) {
				t.Errorf("session expires %v, want sign-in + %v", s.Expires, console.DefaultLifetime)
			}
		})
	}
}

// TestPageHeaders checks the headers of every kind of console answer: a
// CSP with no script and no inline style, no referrer, no framing, no
// caching.
func TestPageHeaders(t *testing.T) {
	e := newEnv(t, memstore.New())
	e.addUser("admin@example.org", idm.RoleAdmin)
	b := e.signIn("admin@example.org")
	anon := &browser{e: e}
	for _, tc := range []struct {
		name string
		b    *browser
		path string
		want int
	}{
		{"sign-in page", anon, "/console/signin", 200},
		{"redirect to sign-in", anon, "/console/", 303},
		{"home", b, "/console/", 200},
		{"subjects", b, "/console/subjects", 200},
		{"users", b, "/console/users", 200},
		{"unknown page", b, "/console/nope", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.b.do("GET", tc.path, nil)
			if p.status != tc.want {
				t.Fatalf("GET %s: %d, want %d", tc.path, p.status, tc.want)
			}
			csp := p.header.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'none'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %q", csp, want)
				}
			}
			if strings.Contains(csp, "unsafe") || strings.Contains(csp, "script-src") {
				t.Errorf("CSP %q allows script or inline code", csp)
			}
			for k, want := range map[string]string{"Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
				"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
				if got := p.header.Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
			if strings.Contains(p.body, "<script") || strings.Contains(p.body, "style=") || strings.Contains(p.body, "<style") {
				t.Error("the page has script or inline style")
			}
		})
	}
	css := anon.do("GET", "/console/static/style.css", nil)
	if css.status != 200 || !strings.HasPrefix(css.header.Get("Content-Type"), "text/css") {
		t.Errorf("stylesheet: %d %s", css.status, css.header.Get("Content-Type"))
	}
}

// TestSessionEnds checks every way a session ends: idle timeout, absolute
// lifetime, a change of the user's token version (password change, role
// change, API logout), disabling, deletion and sign-out. Afterwards the old
// cookie is refused (sent to sign in) and the session is gone from the
// store.
func TestSessionEnds(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(e *env, b *browser, u idm.User, first *http.Cookie)
		// alive: the session must still work after end.
		alive bool
	}{
		{"idle timeout", func(e *env, b *browser, u idm.User, first *http.Cookie) { e.clock.Add(console.DefaultIdle) }, false},
		{"just before the idle timeout", func(e *env, b *browser, u idm.User, first *http.Cookie) {
			e.clock.Add(console.DefaultIdle - time.Second)
		}, true},
		{"absolute lifetime", func(e *env, b *browser, u idm.User, first *http.Cookie) {
			for range 25 { // busy all day: never idle, but 12 h is the end
				e.clock.Add(29 * time.Minute)
				if p := b.do("GET", "/console/", nil); p.status != 200 {
					return
				}
			}
		}, false},
		{"password change", func(e *env, b *browser, u idm.User, first *http.Cookie) {
			p := b.do("POST", "/console/account/password", url.Values{"current_password": {testPassword},
				"password": {"another long passphrase 42"}, "password2": {"another long passphrase 42"}})
			if p.status != http.StatusSeeOther {
				e.t.Fatalf("password change: %d %s", p.status, p.body)
			}
			if b.cookie != nil {
				e.t.Error("the password change left the cookie")
			}
			b.cookie = first
		}, false},
		{"token version raised (role change, API logout)", func(e *env, b *browser, u idm.User, first *http.Cookie) {
			cur, _ := e.store.FindUserByID(e.t.Context(), u.ID)
			cur.TokenVersion++
			if err := e.store.UpdateUser(e.t.Context(), cur); err != nil {
				e.t.Fatal(err)
			}
		}, false},
		{"disabled", func(e *env, b *browser, u idm.User, first *http.Cookie) {
			cur, _ := e.store.FindUserByID(e.t.Context(), u.ID)
			cur.Disabled = true
			if err := e.store.UpdateUser(e.t.Context(), cur); err != nil {
				e.t.Fatal(err)
			}
		}, false},
		{"deleted", func(e *env, b *browser, u idm.User, first *http.Cookie) {
			if err := e.store.DeleteUser(e.t.Context(), u.ID); err != nil {
				e.t.Fatal(err)
			}
		}, false},
		{"sign-out", func(e *env, b *browser, u idm.User, first *http.Cookie) {
			old := b.cookie
			if p := b.do("POST", "/console/signout", url.Values{}); p.status != http.StatusSeeOther || b.cookie != nil {
				e.t.Fatalf("sign-out: %d, cookie %v", p.status, b.cookie)
			}
			b.cookie = old
			events, _, err := e.store.ListAudits(e.t.Context(), idm.AuditFilter{Actor: u.Username, Limit: 100})
			if err != nil || len(events) == 0 || events[len(events)-1].Action != "console sign-out" && events[0].Action != "console sign-out" {
				e.t.Errorf("the sign-out is not audited: %+v %v", events, err)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, memstore.New())
			u := e.addUser("coord@example.org", idm.RoleCoordinator, idm.AllSites)
			b := e.signIn(u.Username)
			first := b.cookie
			if p := b.do("GET", "/console/subjects", nil); p.status != 200 {
				t.Fatalf("signed in: %d", p.status)
			}
			hash := hashOf(b.cookie.Value)
			tc.end(e, b, u, first)
			p := b.do("GET", "/console/subjects", nil)
			if tc.alive {
				if p.status != 200 {
					t.Fatalf("the session ended early: %d", p.status)
				}
				return
			}
			if p.status != http.StatusSeeOther || !strings.Contains(p.header.Get("Location"), "signin") {
				t.Fatalf("after the end, the old cookie gave %d %s", p.status, p.header.Get("Location"))
			}
			if _, err := e.store.FindSession(t.Context(), hash); err == nil {
				t.Error("the ended session is still stored")
			}
		})
	}
}

// TestSessionStoreErrorFailsClosed checks that a session that cannot be
// checked because the store fails is refused with 503 and never signs
// anyone in, and that a sign-in whose session cannot be stored fails.
func TestSessionStoreErrorFailsClosed(t *testing.T) {
	for _, method := range []string{"FindSession", "FindUserByID", "TouchSession"} {
		t.Run(method, func(t *testing.T) {
			store := newFaulty()
			e := newEnv(t, store)
			e.addUser("coord@example.org", idm.RoleCoordinator, idm.AllSites)
			b := e.signIn("coord@example.org")
			store.set(method, true)
			p := b.do("GET", "/console/subjects", nil)
			if p.status != http.StatusServiceUnavailable {
				t.Errorf("GET with the store failing %s: %d, want 503", method, p.status)
			}
			if strings.Contains(p.body, "coord@example.org") || strings.Contains(p.body, "signout") {
				t.Error("the error page shows a signed-in user")
			}
			store.set(method, false)
			if p := b.do("GET", "/console/subjects", nil); p.status != 200 {
				t.Errorf("after the store is back: %d", p.status)
			}
		})
	}
	t.Run("CreateSession", func(t *testing.T) {
		store := newFaulty()
		e := newEnv(t, store)
		e.addUser("coord@example.org", idm.RoleCoordinator, idm.AllSites)
		store.set("CreateSession", true)
		b := &browser{e: e}
		p := b.do("POST", "/console/signin", url.Values{"username": {"coord@example.org"}, "password": {testPassword}})
		if p.status != http.StatusServiceUnavailable || b.cookie != nil {
			t.Errorf("sign-in without a stored session: %d, cookie %v", p.status, b.cookie)
		}
	})
}

// TestMonitorSeesNoEditControlsAndGets403 checks that a monitor's pages
// offer no change and that posting anyway gets the API's 403, while a
// coordinator of the same site may.
func TestMonitorSeesNoEditControlsAndGets403(t *testing.T) {
	e := newEnv(t, memstore.New())
	e.addUser("coord@example.org", idm.RoleCoordinator, "A")
	e.addUser("mon@example.org", idm.RoleMonitor, "A")
	coord := e.signIn("coord@example.org")
	if p := coord.do("POST", "/console/subjects/new", url.Values{"sssid": {"S-1"}, "name": {"Ann"}, "bday": {"1980-01-02"}}); p.status != http.StatusSeeOther {
		t.Fatalf("coordinator creates a subject: %d %s", p.status, p.body)
	}
	mon := e.signIn("mon@example.org")
	p := mon.do("GET", "/console/subjects/S-1", nil)
	if p.status != 200 || !strings.Contains(p.body, "S-1") {
		t.Fatalf("monitor reads the subject: %d", p.status)
	}
	if strings.Contains(p.body, `method="post" action="../subjects`) || strings.Contains(p.body, "Record consent") ||
		strings.Contains(p.body, "Save changes") || strings.Contains(p.body, "Create an enrolment link") {
		t.Error("the monitor's subject page offers changes")
	}
	if home := mon.do("GET", "/console/", nil); strings.Contains(home.body, "New subject") || strings.Contains(home.body, ">Users<") {
		t.Error("the monitor's home page offers what the role may not do")
	}
	for _, post := range []struct {
		path string
		form url.Values
	}{
		{"/console/subjects/new", url.Values{"sssid": {"S-2"}, "name": {"Bo"}, "bday": {"1980-01-02"}}},
		{"/console/subjects/S-1/consent", url.Values{"date_consented": {"2026-12-01"}}},
		{"/console/subjects/S-1", url.Values{"name": {"Renamed"}}},
		{"/console/subjects/S-1/links", url.Values{}},
		{"/console/users", url.Values{"username": {"x@example.org"}, "role": {"admin"}}},
	} {
		if p := mon.do("POST", post.path, post.form); p.status != http.StatusForbidden {
			t.Errorf("monitor POST %s: %d, want 403", post.path, p.status)
		}
	}
	if p := mon.do("GET", "/console/subjects/new", nil); p.status != http.StatusForbidden {
		t.Errorf("monitor GET the new-subject form: %d, want 403", p.status)
	}
	if s, err := e.store.FindSubject(t.Context(), "S-1"); err != nil || s.Name != "Ann" || s.DateConsented != "" {
		t.Errorf("the monitor changed the subject: %+v %v", s, err)
	}
}

// TestCrossOriginPostRefused checks that state-changing console requests
// (sign-in, sign-out, a change) from another origin are refused.
func TestCrossOriginPostRefused(t *testing.T) {
	e := newEnv(t, memstore.New())
	e.addUser("coord@example.org", idm.RoleCoordinator, idm.AllSites)
	b := e.signIn("coord@example.org")
	for _, tc := range []struct {
		path string
		form url.Values
	}{
		{"/console/signin", url.Values{"username": {"coord@example.org"}, "password": {testPassword}}},
		{"/console/subjects/new", url.Values{"sssid": {"X-1"}, "name": {"Ann"}, "bday": {"1980-01-02"}}},
		{"/console/signout", url.Values{}},
	} {
		for _, hdr := range [][]string{{"Sec-Fetch-Site", "cross-site"}, {"Sec-Fetch-Site", "same-site"}} {
			if p := b.do("POST", tc.path, tc.form, hdr...); p.status != http.StatusForbidden {
				t.Errorf("POST %s with %v: %d, want 403", tc.path, hdr, p.status)
			}
		}
	}
	if _, err := e.store.FindSubject(t.Context(), "X-1"); err == nil {
		t.Error("a cross-origin post created a subject")
	}
	if p := b.do("GET", "/console/", nil); p.status != 200 {
		t.Errorf("a cross-origin sign-out ended the session: %d", p.status)
	}
}

// TestSignInIsTheAPILogin checks that console sign-ins count toward the
// API's per-account limit (and API failures toward the console's) and
// are audited as the API's are.
func TestSignInIsTheAPILogin(t *testing.T) {
	e := newEnv(t, memstore.New())
	e.addUser("coord@example.org", idm.RoleCoordinator, idm.AllSites)
	b := &browser{e: e}
	for i := range auth.DefaultMaxFailures {
		form := url.Values{"username": {"coord@example.org"}, "password": {"wrong password " + string(rune('a'+i))}}
		if p := b.do("POST", "/console/signin", form); p.status != http.StatusUnauthorized || !strings.Contains(p.body, "Invalid credentials") {
			t.Fatalf("wrong password %d: %d", i, p.status)
		}
	}
	p := b.do("POST", "/console/signin", url.Values{"username": {"coord@example.org"}, "password": {testPassword}})
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" || b.cookie != nil {
		t.Errorf("right password after %d failures: %d, Retry-After %q", auth.DefaultMaxFailures, p.status, p.header.Get("Retry-After"))
	}
	resp, err := http.Post(e.srv.URL+"/auth", "application/json", strings.NewReader(`{"username":"coord@example.org","password":"`+testPassword+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("the API after console failures: %d, want 429", resp.StatusCode)
	}
	events, _, err := e.store.ListAudits(t.Context(), idm.AuditFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var failed, throttled int
	for _, ev := range events {
		switch ev.Action {
		case "login failed":
			failed++
		case "login throttled":
			throttled++
		}
	}
	if failed != auth.DefaultMaxFailures || throttled != 2 {
		t.Errorf("audit: %d failed, %d throttled logins; want %d and 2", failed, throttled, auth.DefaultMaxFailures)
	}
}

// TestSessionAuthForQRCode checks that GET /link/{jti}/qr.png with a live
// console session and no Authorization header reaches the API with a
// staff token of the session's user, and that nothing else gets one.
func TestSessionAuthForQRCode(t *testing.T) {
	e := newEnv(t, memstore.New())
	u := e.addUser("coord@example.org", idm.RoleCoordinator, idm.AllSites)
	b := e.signIn(u.Username)
	var got *idm.Principal
	var gotErr error
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, gotErr = e.auth.Authenticate(r)
	})
	h := e.console.SessionAuth(next)
	for _, tc := range []struct {
		name, method, path string
		cookie             bool
		want               bool
	}{
		{"qr with session", "GET", "/link/0123456789abcdef01234567/qr.png", true, true},
		{"qr without cookie", "GET", "/link/0123456789abcdef01234567/qr.png", false, false},
		{"jwt with session", "GET", "/link/0123456789abcdef01234567/jwt", true, false},
		{"qr by POST", "POST", "/link/0123456789abcdef01234567/qr.png", true, false},
		{"subject with session", "GET", "/subject/S-1", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, gotErr = nil, nil
			r := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.cookie {
				r.AddCookie(b.cookie)
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			if tc.want != (gotErr == nil) || tc.want && got.UserID != u.ID {
				t.Errorf("authenticated %v (%v), want %v", got, gotErr, tc.want)
			}
		})
	}
	// An ended session gets no token.
	e.clock.Add(console.DefaultIdle)
	r := httptest.NewRequest("GET", "/link/0123456789abcdef01234567/qr.png", nil)
	r.AddCookie(b.cookie)
	got, gotErr = nil, nil
	h.ServeHTTP(httptest.NewRecorder(), r)
	if gotErr == nil {
		t.Error("an idle session's cookie got a token")
	}
}

// TestRedirectBrowsers checks GET /: a browser is sent to the console,
// everything else gets the handler's answer.
func TestRedirectBrowsers(t *testing.T) {
	h := console.RedirectBrowsers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"status":"ready"}`))
	}))
	for _, tc := range []struct {
		accept string
		want   int
	}{
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", http.StatusSeeOther},
		{"text/html;q=0.5", http.StatusSeeOther},
		{"", http.StatusOK},
		{"application/json", http.StatusOK},
		{"*/*", http.StatusOK},
		{"text/html;q=0", http.StatusOK},
	} {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/", nil)
		if tc.accept != "" {
			r.Header.Set("Accept", tc.accept)
		}
		h.ServeHTTP(rec, r)
		if rec.Code != tc.want {
			t.Errorf("Accept %q: %d, want %d", tc.accept, rec.Code, tc.want)
		}
		if tc.want == http.StatusSeeOther && rec.Header().Get("Location") != "console/" {
			t.Errorf("Location %q", rec.Header().Get("Location"))
		}
	}
}

// TestSubjectFormShowsAPIMessagesByField checks that the API's validation
// messages come back next to the field they name.
func TestSubjectFormShowsAPIMessagesByField(t *testing.T) {
	e := newEnv(t, memstore.New())
	e.addUser("coord@example.org", idm.RoleCoordinator, idm.AllSites)
	b := e.signIn("coord@example.org")
	for _, tc := range []struct {
		name  string
		form  url.Values
		field string
	}{
		{"no name", url.Values{"sssid": {"S-1"}, "bday": {"1980-01-02"}}, "name"},
		{"bad birth date", url.Values{"sssid": {"S-1"}, "name": {"Ann"}, "bday": {"1980-13-02"}}, "bday"},
		{"no sssid", url.Values{"name": {"Ann"}, "bday": {"1980-01-02"}}, "sssid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := b.do("POST", "/console/subjects/new", tc.form)
			if p.status != http.StatusBadRequest {
				t.Fatalf("%d, want 400", p.status)
			}
			if !strings.Contains(p.body, `aria-describedby="`+tc.field+`-error"`) || !strings.Contains(p.body, `id="`+tc.field+`-error"`) {
				t.Errorf("no message tied to %s:\n%s", tc.field, p.body)
			}
		})
	}
}

// TestSubjectListSortLinks checks the column headers' links: ascending
// first, descending when the list is sorted ascending by that column.
func TestSubjectListSortLinks(t *testing.T) {
	e := newEnv(t, memstore.New())
	e.addUser("coord@example.org", idm.RoleCoordinator, idm.AllSites)
	b := e.signIn("coord@example.org")
	for _, s := range []string{"S-1", "S-2"} {
		if p := b.do("POST", "/console/subjects/new", url.Values{"sssid": {s}, "name": {"N " + s}, "bday": {"1980-01-02"}}); p.status != http.StatusSeeOther {
			t.Fatalf("create %s: %d", s, p.status)
		}
	}
	p := b.do("GET", "/console/subjects", nil)
	if !strings.Contains(p.body, `href="./subjects?orderdir=asc&amp;ordercol=name"`) && !strings.Contains(p.body, `href="./subjects?ordercol=name&amp;orderdir=asc"`) {
		t.Errorf("unsorted list: the name header does not sort ascending:\n%s", p.body)
	}
	p = b.do("GET", "/console/subjects?ordercol=name&orderdir=asc", nil)
	if !strings.Contains(p.body, `ordercol=name&amp;orderdir=desc`) || !strings.Contains(p.body, `aria-sort="ascending"`) {
		t.Errorf("sorted by name ascending: the header does not offer descending")
	}
	if !strings.Contains(p.body, `ordercol=sssid&amp;orderdir=asc`) {
		t.Errorf("sorted by name: the SSSID header does not sort ascending")
	}
}

// TestRequireTOTPSendsToAccount checks that with a second factor required
// (IDM_REQUIRE_TOTP), a user without one is sent from every page to the
// account page, which offers the enrolment.
func TestRequireTOTPSendsToAccount(t *testing.T) {
	e := newEnv(t, memstore.New(), func(c *console.Config) { c.RequireTOTP = true })
	e.addUser("coord@example.org", idm.RoleCoordinator, idm.AllSites)
	b := e.signIn("coord@example.org")
	for _, path := range []string{"/console/", "/console/subjects", "/console/subjects/new"} {
		p := b.do("GET", path, nil)
		if p.status != http.StatusSeeOther || !strings.HasSuffix(p.header.Get("Location"), "account") {
			t.Errorf("GET %s: %d %s, want a redirect to the account page", path, p.status, p.header.Get("Location"))
		}
	}
	p := b.do("GET", "/console/account", nil)
	if p.status != 200 || !strings.Contains(p.body, "requires a second factor") || !strings.Contains(p.body, `id="start-totp"`) {
		t.Errorf("account page: %d", p.status)
	}
	if p := b.do("POST", "/console/account/totp", url.Values{}); p.status != 200 || !strings.Contains(p.body, `id="totp-secret"`) {
		t.Errorf("starting the enrolment: %d", p.status)
	}
}

// TestInviteWithoutMail checks that an invitation the API refuses (no
// mail configured) says why on the users page, and that a bad username's
// message goes next to its field.
func TestInviteWithoutMail(t *testing.T) {
	e := newEnv(t, memstore.New())
	e.addUser("admin@example.org", idm.RoleAdmin)
	b := e.signIn("admin@example.org")
	p := b.do("POST", "/console/users", url.Values{"username": {"new@example.org"}, "role": {"monitor"}, "sites": {"A"}})
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "no mail is configured") || !strings.Contains(p.body, `id="form-error"`) {
		t.Errorf("invite without mail: %d\n%s", p.status, p.body)
	}
	p = b.do("POST", "/console/users", url.Values{"username": {"not an email"}, "role": {"monitor"}, "sites": {"A"}, "password": {"x"}})
	if p.status != http.StatusBadRequest {
		t.Errorf("invite of a bad username: %d", p.status)
	}
}

// TestUsersPageShowsLastSignIn checks that the users page shows each
// user's last successful sign-in for an access review, and "never" for a
// user who has not signed in.
func TestUsersPageShowsLastSignIn(t *testing.T) {
	e := newEnv(t, memstore.New())
	e.addUser("admin@example.org", idm.RoleAdmin)
	e.addUser("idle@example.org", idm.RoleMonitor)
	b := e.signIn("admin@example.org")
	admin, err := e.store.FindUserByUsername(t.Context(), "admin@example.org")
	if err != nil || admin.LastLogin.IsZero() {
		t.Fatalf("the console's sign-in recorded no login: %v %v", admin.LastLogin, err)
	}
	p := b.do("GET", "/console/users", nil)
	want := "Last sign-in: " + admin.LastLogin.UTC().Format("2006-01-02 15:04 UTC")
	if p.status != http.StatusOK || !strings.Contains(p.body, want) || !strings.Contains(p.body, "Last sign-in: never") {
		t.Errorf("users page: %d, want %q and one never\n%s", p.status, want, p.body)
	}
}
