package users_test

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
	"github.com/c3-pro/idm/users"
)

// form encodes a form body.
func form(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v.Encode()
}

const formType = "application/x-www-form-urlencoded"

var inputName = regexp.MustCompile(`<input[^>]*\bname="([^"]*)"`)

// checkPageHeaders checks the headers every /init page carries.
func checkPageHeaders(t *testing.T, res response) {
	t.Helper()
	h := res.header
	if got := h.Get("Content-Type"); got != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", got)
	}
	if got := h.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("Referrer-Policy %q", got)
	}
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "style-src 'sha256-", "form-action 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Errorf("Content-Security-Policy %q allows inline code", csp)
	}
	if got := h.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q", got)
	}
}

// checkNotBootstrapped checks that nothing was created and the marker is unset.
func checkNotBootstrapped(t *testing.T, e *env) {
	t.Helper()
	if done, err := e.store.Bootstrapped(t.Context()); err != nil || done {
		t.Errorf("Bootstrapped = %v, %v; want false", done, err)
	}
	if _, n, err := e.store.ListUsers(t.Context(), idm.UserFilter{}); err != nil || n != 0 {
		t.Errorf("%d users (%v); want none", n, err)
	}
}

func TestInitForm(t *testing.T) {
	e := newEnv(t)
	res := e.do(request{method: "GET", path: "/init"})
	if res.status != http.StatusOK {
		t.Fatalf("GET /init: %d %s", res.status, res.body)
	}
	checkPageHeaders(t, res)
	page := string(res.body)
	var names []string
	for _, m := range inputName.FindAllStringSubmatch(page, -1) {
		names = append(names, m[1])
	}
	if !slices.Equal(names, []string{"username", "password"}) {
		t.Errorf("form fields %q; want exactly username and password", names)
	}
	if !strings.Contains(page, `<form method="post" action="init">`) {
		t.Errorf("the form does not post to the relative action \"init\":\n%s", page)
	}
	if !strings.Contains(page, "<style>") || !strings.Contains(page, "font:") {
		t.Error("the page has no stylesheet")
	}
	checkNotBootstrapped(t, e)

	res = e.do(request{method: "GET", path: "/init", header: map[string]string{"Accept": "application/json"}})
	var st struct {
		Data struct {
			Initialised bool `json:"initialised"`
		} `json:"data"`
	}
	res.json(t, &st)
	if res.status != http.StatusOK || st.Data.Initialised {
		t.Errorf("GET /init as JSON: %d %s", res.status, res.body)
	}
}

func TestInitBadInput(t *testing.T) {
	for _, tc := range []struct {
		name        string
		contentType string
		body        string
		want        int
		msg         string // part of the message
		username    string // shown again in the re-rendered form
	}{
		{"form/no username", formType, form("password", testPassword), 400, "username is required", ""},
		{"form/invalid email", formType, form("username", "not-an-email", "password", testPassword), 400, "email address", "not-an-email"},
		{"form/display name", formType, form("username", "Ann <ann@example.org>", "password", testPassword), 400, "email address", "Ann &lt;ann@example.org&gt;"},
		{"form/too long", formType, form("username", strings.Repeat("a", 250)+"@example.org", "password", testPassword), 400, "at most 254 bytes", ""},
		{"form/no password", formType, form("username", "ann@example.org"), 400, "password is required", "ann@example.org"},
		{"form/short password", formType, form("username", "ann@example.org", "password", "short"), 400, "at least 8 characters", "ann@example.org"},
		{"form/common password", formType, form("username", "ann@example.org", "password", "password123"), 400, "too common", "ann@example.org"},
		{"form/escaped", formType, form("username", `<script>alert(1)</script>`, "password", testPassword), 400, "email address", "&lt;script&gt;alert(1)&lt;/script&gt;"},
		{"form/oversize", formType, form("username", "ann@example.org", "password", strings.Repeat("x", 2<<20)), 413, "too large", ""},
		{"json/invalid email", "application/json", `{"username":"nope","password":"` + testPassword + `"}`, 400, "email address", ""},
		{"json/short password", "application/json", `{"username":"ann@example.org","password":"short"}`, 400, "at least 8 characters", ""},
		{"json/unknown field", "application/json", `{"username":"ann@example.org","password":"` + testPassword + `","admin":false}`, 400, `unknown field "admin"`, ""},
		{"json/wrong type", "application/json", `{"username":42,"password":"` + testPassword + `"}`, 400, `"username" must be a string`, ""},
		{"json/malformed", "application/json", `{"username":`, 400, "malformed JSON", ""},
		{"json/empty", "application/json", ``, 400, "empty", ""},
		{"json/oversize", "application/json", `{"username":"` + strings.Repeat("a", 2<<20) + `"}`, 413, "too large", ""},
		{"unsupported type", "text/plain", "username=ann@example.org", 415, "JSON", ""},
		{"multipart", "multipart/form-data; boundary=x", "--x--", 415, "JSON", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			res := e.do(request{method: "POST", path: "/init", body: tc.body, contentType: tc.contentType})
			if res.status != tc.want {
				t.Fatalf("status %d, want %d: %s", res.status, tc.want, res.body)
			}
			if tc.contentType == formType {
				checkPageHeaders(t, res)
				page := string(res.body)
				if !strings.Contains(page, tc.msg) || !strings.Contains(page, `class="error"`) {
					t.Errorf("page lacks the error %q:\n%s", tc.msg, page)
				}
				if !strings.Contains(page, `name="username"`) {
					t.Error("the form is not shown again")
				}
				if tc.username != "" && !strings.Contains(page, `value="`+tc.username+`"`) {
					t.Errorf("the entered username %q is not shown again:\n%s", tc.username, page)
				}
				if strings.Contains(page, "<script>") {
					t.Error("the page contains unescaped input")
				}
			} else if msg := res.message(t); !strings.Contains(msg, tc.msg) {
				t.Errorf("message %q, want it to contain %q", msg, tc.msg)
			}
			checkNotBootstrapped(t, e)
		})
	}
}

func TestInitBootstrap(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  request
		want int
	}{
		{"form", request{method: "POST", path: "/init", body: form("username", " Ann@Example.ORG ", "password", testPassword), contentType: formType}, http.StatusOK},
		{"json", request{method: "POST", path: "/init", body: map[string]string{"username": "Ann@Example.org", "password": testPassword}}, http.StatusCreated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			res := e.do(tc.req)
			if res.status != tc.want {
				t.Fatalf("POST /init: %d %s", res.status, res.body)
			}
			if tc.name == "form" {
				checkPageHeaders(t, res)
				if !strings.Contains(string(res.body), "The system is ready") || !strings.Contains(string(res.body), "ann@example.org") {
					t.Errorf("not the ready page:\n%s", res.body)
				}
			} else {
				var got idm.DataBody[idm.UserView]
				res.json(t, &got)
				if got.Data.Username != "ann@example.org" || !got.Data.Admin || got.Data.Disabled || !idm.ValidID(got.Data.ID) {
					t.Errorf("answer %+v", got.Data)
				}
			}
			u, ok := e.userByName("ann@example.org")
			if !ok || !u.Admin || u.Disabled || u.PasswordHash == "" {
				t.Fatalf("stored user %+v (found %v); want an enabled admin with a password", u, ok)
			}
			if done, err := e.store.Bootstrapped(t.Context()); err != nil || !done {
				t.Errorf("Bootstrapped = %v, %v", done, err)
			}
			evs, err := e.store.AuditsFor(t.Context(), u.ID)
			if err != nil || len(evs) != 1 || evs[0].Action != users.ActionCreate || evs[0].ActorID != u.ID ||
				evs[0].Actor != u.Username || evs[0].DocType != idm.DocUser || strings.Contains(string(evs[0].New), "$") {
				t.Errorf("audit %+v, %v", evs, err)
			}
			if status, _ := e.login("ann@example.org", testPassword); status != http.StatusOK {
				t.Errorf("the new admin cannot log in: %d", status)
			}
			checkInitClosed(t, e)
			if _, n, _ := e.store.ListUsers(t.Context(), idm.UserFilter{}); n != 1 {
				t.Errorf("%d users after /init was closed; want 1", n)
			}
		})
	}
}

// checkInitClosed checks that every kind of /init request answers "already
// initialised" and creates nobody.
func checkInitClosed(t *testing.T, e *env) {
	t.Helper()
	_, before, err := e.store.ListUsers(t.Context(), idm.UserFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []request{
		{method: "GET", path: "/init"},
		{method: "POST", path: "/init", body: form("username", "eve@example.org", "password", testPassword), contentType: formType},
	} {
		res := e.do(req)
		if res.status != http.StatusConflict || !strings.Contains(string(res.body), "Already initialised") {
			t.Errorf("%s /init once closed: %d\n%s", req.method, res.status, res.body)
		}
		checkPageHeaders(t, res)
		if strings.Contains(string(res.body), `name="password"`) {
			t.Errorf("%s /init once closed shows the form", req.method)
		}
	}
	for _, req := range []request{
		{method: "GET", path: "/init", header: map[string]string{"Accept": "application/json"}},
		{method: "POST", path: "/init", body: map[string]string{"username": "eve@example.org", "password": testPassword}},
		{method: "POST", path: "/init", body: `{"bad json`}, // closed wins over bad input
	} {
		res := e.do(req)
		if res.status != http.StatusConflict || res.message(t) != "already initialised" {
			t.Errorf("%s /init (JSON) once closed: %d %s", req.method, res.status, res.body)
		}
	}
	if _, after, _ := e.store.ListUsers(t.Context(), idm.UserFilter{}); after != before {
		t.Errorf("%d users after closed /init requests, %d before", after, before)
	}
	if _, ok := e.userByName("eve@example.org"); ok {
		t.Error("a closed /init created a user")
	}
}

func TestInitClosed(t *testing.T) {
	t.Run("admin exists", func(t *testing.T) {
		e := newEnv(t)
		e.addUser("root@example.org", true)
		checkInitClosed(t, e)
	})
	t.Run("marker set", func(t *testing.T) {
		e := newEnv(t)
		if err := e.store.MarkBootstrapped(t.Context(), time.Now()); err != nil {
			t.Fatal(err)
		}
		checkInitClosed(t, e)
	})
	t.Run("only a disabled admin", func(t *testing.T) {
		// A store migrated without the marker, whose only admin is disabled,
		// is not bootstrapped again.
		e := newEnv(t)
		a := e.addUser("root@example.org", true)
		u, _ := e.user(a.user.ID)
		u.Disabled = true
		if err := e.store.UpdateUser(t.Context(), u); err != nil {
			t.Fatal(err)
		}
		res := e.do(request{method: "GET", path: "/init"})
		if res.status != http.StatusOK {
			t.Fatalf("GET /init: %d", res.status)
		}
		// The username is taken, so the form says so and nothing changes.
		res = e.do(request{method: "POST", path: "/init", body: map[string]string{"username": "root@example.org", "password": testPassword}})
		if res.status != http.StatusConflict || res.message(t) != "this username has already been taken" {
			t.Errorf("POST /init with a taken username: %d %s", res.status, res.body)
		}
		if done, _ := e.store.Bootstrapped(t.Context()); done {
			t.Error("a refused /init set the marker")
		}
	})
}

// TestInitConcurrent sends 50 POST /init at once, spread over two handlers
// on one store (two processes): exactly one creates an admin.
func TestInitConcurrent(t *testing.T) {
	store := memstore.New()
	envs := []*env{newEnvOn(t, store), newEnvOn(t, store)}
	const n = 50
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			e := envs[i%len(envs)]
			var req request
			if i%2 == 0 {
				req = request{method: "POST", path: "/init", body: map[string]string{"username": "admin" + string(rune('a'+i%26)) + "@example.org", "password": testPassword}}
			} else {
				req = request{method: "POST", path: "/init", body: form("username", "form"+string(rune('a'+i%26))+"@example.org", "password", testPassword), contentType: formType}
			}
			statuses[i] = e.do(req).status
		})
	}
	close(start)
	wg.Wait()
	wins := 0
	for i, s := range statuses {
		switch s {
		case http.StatusCreated, http.StatusOK:
			wins++
		case http.StatusConflict:
		default:
			t.Errorf("request %d: status %d", i, s)
		}
	}
	if wins != 1 {
		t.Errorf("%d successful bootstraps; want exactly 1 (statuses %v)", wins, statuses)
	}
	list, total, err := store.ListUsers(t.Context(), idm.UserFilter{})
	if err != nil || total != 1 || !list[0].Admin {
		t.Errorf("users after the race: %+v (%d, %v); want one admin", list, total, err)
	}
	if n, _ := store.CountAdmins(t.Context()); n != 1 {
		t.Errorf("%d admins", n)
	}
}

func TestInitCrossOrigin(t *testing.T) {
	body := form("username", "ann@example.org", "password", testPassword)
	for _, tc := range []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"cross-site fetch", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"same-site other port", map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"foreign origin", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"trusted origin", map[string]string{"Origin": "https://admin.example.org", "Sec-Fetch-Site": "cross-site"}, http.StatusOK},
		{"same origin", map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusOK},
		{"no browser headers", nil, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *users.Config) { c.TrustedOrigins = []string{"https://admin.example.org"} })
			res := e.do(request{method: "POST", path: "/init", body: body, contentType: formType, header: tc.header})
			if res.status != tc.want {
				t.Fatalf("status %d, want %d: %s", res.status, tc.want, res.body)
			}
			if tc.want == http.StatusForbidden {
				if msg := res.message(t); msg != "cross-origin request refused" {
					t.Errorf("message %q", msg)
				}
				checkNotBootstrapped(t, e)
			}
		})
	}
}

// fixedLimiter refuses every request after the first n.
type fixedLimiter struct {
	mu sync.Mutex
	n  int
}

func (l *fixedLimiter) Allow(*http.Request) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == 0 {
		return false, 1500 * time.Millisecond
	}
	l.n--
	return true, 0
}

func TestInitRateLimit(t *testing.T) {
	e := newEnv(t, func(c *users.Config) { c.Limiter = &fixedLimiter{n: 1} })
	if res := e.do(request{method: "GET", path: "/init"}); res.status != http.StatusOK {
		t.Fatalf("first request: %d", res.status)
	}
	res := e.do(request{method: "POST", path: "/init", body: map[string]string{"username": "ann@example.org", "password": testPassword}})
	if res.status != http.StatusTooManyRequests || res.header.Get("Retry-After") != "2" {
		t.Errorf("JSON: %d, Retry-After %q: %s", res.status, res.header.Get("Retry-After"), res.body)
	}
	res = e.do(request{method: "POST", path: "/init", body: form("username", "ann@example.org", "password", testPassword), contentType: formType})
	if res.status != http.StatusTooManyRequests || !strings.Contains(string(res.body), "too many requests") {
		t.Errorf("form: %d: %s", res.status, res.body)
	}
	checkNotBootstrapped(t, e)
}

// TestInitDefaultLimiter checks that /init is limited per address without
// any configuration, with auth's default bucket.
func TestInitDefaultLimiter(t *testing.T) {
	e := newEnv(t, func(c *users.Config) { c.Limiter = nil })
	for i := range auth.DefaultRateBurst {
		if res := e.do(request{method: "GET", path: "/init"}); res.status != http.StatusOK {
			t.Fatalf("request %d: %d", i+1, res.status)
		}
	}
	last := e.do(request{method: "GET", path: "/init"})
	if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" {
		t.Errorf("request %d: %d, Retry-After %q", auth.DefaultRateBurst+1, last.status, last.header.Get("Retry-After"))
	}
}

// TestInitNegotiatesByQuality answers GET /init with JSON or the page as
// the Accept header prefers, weighing q-values as the reset flow does.
func TestInitNegotiatesByQuality(t *testing.T) {
	for _, tc := range []struct {
		accept string
		json   bool
	}{
		{"application/json", true},
		{"application/json, text/html;q=0.1", true},
		{"text/html, application/json;q=0.5", false},
		{"application/json, text/plain, */*", true},
		{"*/*", false},
		{"", false},
	} {
		t.Run(tc.accept, func(t *testing.T) {
			e := newEnv(t)
			res := e.do(request{method: "GET", path: "/init", header: map[string]string{"Accept": tc.accept}})
			if res.status != http.StatusOK {
				t.Fatalf("status %d", res.status)
			}
			if got := strings.HasPrefix(res.header.Get("Content-Type"), "application/json"); got != tc.json {
				t.Errorf("Content-Type %q; want JSON %v", res.header.Get("Content-Type"), tc.json)
			}
		})
	}
}
