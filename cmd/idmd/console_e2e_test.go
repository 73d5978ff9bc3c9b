package main_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/internal/browsertest"
	"github.com/c3-pro/idm/internal/qrtest"
	"github.com/c3-pro/idm/internal/smtptest"
)

// consoleProc starts an idmd configured like the published app build, with
// mail to a real SMTP server, and bootstraps its first admin.
func consoleProc(t *testing.T) (*proc, *smtptest.Server) {
	t.Helper()
	mail := smtptest.Start(t)
	addr := freeAddr(t)
	env := append(appEnv(baseEnv(t), addr, "IDM_SECRET="+strongSecret),
		"IDM_SMTP_URL="+mail.URL(), "IDM_MAIL_FROM=idm@example.org")
	p := start(t, env)
	r := call(t, "POST", p.url+"/init", "", fmt.Sprintf(`{"username":%q,"password":%q}`, adminUser, adminPass))
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	return p, mail
}

// addStaff creates a user with a role and sites through the API.
func addStaff(t *testing.T, base, username, role, sites string) {
	t.Helper()
	admin := login(t, base, adminUser, adminPass)
	r := call(t, "POST", base+"/user", admin, fmt.Sprintf(`{"username":%q,"password":%q,"role":%q,"sites":%s}`, username, adminPass, role, sites))
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
}

// page drives one Chromium over the console of base, checking every page
// it is asked to with axe-core and taking its screenshots.
type page struct {
	t    *testing.T
	ctx  context.Context
	base string
	axe  string
	dir  string
}

func newPage(t *testing.T, base string) *page {
	axe := browsertest.AxeSource(t)
	ctx := browsertest.StepTimeout(t, browsertest.New(t), 90*time.Second)
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)))
	return &page{t: t, ctx: ctx, base: base, axe: axe, dir: browsertest.ArtifactDir(t)}
}

// check runs axe-core on the page and takes its screenshots, and checks
// that the page holds no token (a JWT starts with "eyJ") and no password
// hash.
func (p *page) check(name string) {
	p.t.Helper()
	html, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	require.NoError(p.t, err)
	for _, secret := range []string{"eyJ", "$2a$", "$2b$", "$idm"} {
		require.NotContains(p.t, html, secret, "page %s", name)
	}
	browsertest.CheckPage(p.t, p.ctx, p.axe, p.dir, name)
}

// open navigates to path and returns the final status.
func (p *page) open(path string) int64 {
	p.t.Helper()
	resp, err := chromedp.Run(p.ctx, chromedp.NavigateResponse(p.base+path))
	require.NoError(p.t, err)
	return resp.Status
}

// submit clicks sel and waits for the page it leads to; it returns the
// status of that page.
func (p *page) submit(sel string) int64 {
	p.t.Helper()
	resp, err := chromedp.RunResponse(p.ctx, chromedp.Click(chromedp.CSS(sel)))
	require.NoError(p.t, err, "click %s", sel)
	return resp.Status
}

// fill sets form fields by CSS selector.
func (p *page) fill(fields ...string) {
	p.t.Helper()
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i+1] == "" {
			continue // the forms come empty
		}
		require.NoError(p.t, chromedp.Do(p.ctx, chromedp.SetValue(chromedp.CSS(fields[i]), fields[i+1])), "fill %s", fields[i])
	}
}

func (p *page) text(sel string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(p.t, err, "text of %s", sel)
	return s
}

func (p *page) count(sel string) int {
	p.t.Helper()
	n, err := chromedp.Run(p.ctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
	require.NoError(p.t, err)
	return n
}

func (p *page) location() string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Location())
	require.NoError(p.t, err)
	return s
}

// signIn signs in through the console's form.
func (p *page) signIn(username, password, otp string) int64 {
	p.t.Helper()
	if !strings.HasSuffix(p.location(), "/console/signin") {
		p.open("/console/signin")
	}
	p.fill("#username", username, "#password", password, "#otp", otp)
	return p.submit("#signin")
}

func (p *page) signOut() {
	p.t.Helper()
	require.EqualValues(p.t, http.StatusOK, p.submit("form.signout button"))
	require.Contains(p.t, p.text("main"), "You have signed out")
}

// cookie returns the console's session cookie as the browser holds it.
func (p *page) cookie() *http.Cookie {
	p.t.Helper()
	var cookies []*network.Cookie
	require.NoError(p.t, chromedp.Do(p.ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		r, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{p.base}})
		cookies = r.Cookies
		return err
	})))
	for _, c := range cookies {
		if c.Name == "idm_console" {
			require.True(p.t, c.HTTPOnly)
			require.Equal(p.t, network.CookieSameSiteStrict, c.SameSite)
			return &http.Cookie{Name: c.Name, Value: c.Value}
		}
	}
	p.t.Fatal("no console session cookie in the browser")
	return nil
}

// withCookie sends a request with the browser's session cookie, as a
// same-origin form of the console would.
func withCookie(t *testing.T, c *http.Cookie, method, url string, form url.Values) (int, []byte, http.Header) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, url, body)
	require.NoError(t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	req.AddCookie(c)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b, resp.Header
}

// TestConsoleCoordinatorMonitorBrowser walks the study team's main flow in
// a real Chromium over an idmd process: a coordinator signs in, creates a
// subject (the API's validation message shows next to its field), records
// consent, creates a link, whose QR code image decodes to the link JWT;
// the app establishes it; the subject page then shows date_enrolled and
// the audit entries. A form from another origin is refused. A monitor sees
// no edit controls and gets 403 when posting anyway. Every page passes
// axe-core without serious or critical violations and is photographed at
// phone and desktop widths.
func TestConsoleCoordinatorMonitorBrowser(t *testing.T) {
	proc, _ := consoleProc(t)
	base := proc.url
	addStaff(t, base, "coord@example.org", "coordinator", `["A"]`)
	addStaff(t, base, "monitor@example.org", "monitor", `["A"]`)
	p := newPage(t, base)

	// A browser at / lands on the console's sign-in page.
	require.EqualValues(t, http.StatusOK, p.open("/"))
	require.True(t, strings.HasSuffix(p.location(), "/console/signin"), p.location())
	p.check("signin")
	require.EqualValues(t, http.StatusUnauthorized, p.signIn("coord@example.org", "not the password", ""))
	require.Contains(t, p.text(".error"), "Invalid credentials")
	p.check("signin-error")
	require.EqualValues(t, http.StatusOK, p.signIn("coord@example.org", adminPass, ""))
	require.Contains(t, p.text("h1"), "Welcome")
	p.check("home")

	// A new subject; the API's message shows next to the field.
	require.EqualValues(t, http.StatusOK, p.submit(`nav a[href$="subjects/new"]`))
	p.fill("#sssid", "S-E2E-1", "#bday", "1980-05-17", "#email", "alice@example.org")
	require.EqualValues(t, http.StatusBadRequest, p.submit("#create"))
	require.Contains(t, p.text("#name-error"), "name")
	described, err := chromedp.Run(p.ctx, chromedp.AttributeValue(chromedp.ID("name"), "aria-describedby"))
	require.NoError(t, err)
	require.Equal(t, "name-error", described.Value)
	p.check("subject-new-error")
	p.fill("#name", "Alice Example")
	require.EqualValues(t, http.StatusOK, p.submit("#create"))
	require.Contains(t, p.text("h1"), "S-E2E-1")
	require.Contains(t, p.text(".flash"), "created")

	// Consent, then a link.
	today := time.Now().UTC().Format("2006-01-02")
	require.EqualValues(t, http.StatusOK, p.submit("#record-consent"))
	require.Equal(t, today, p.text("#date_consented_value"))
	require.EqualValues(t, http.StatusOK, p.submit("#create-link"))
	id, err := chromedp.Run(p.ctx, chromedp.AttributeValue(chromedp.CSS("li.link"), "id"))
	require.NoError(t, err)
	jti := strings.TrimPrefix(id.Value, "link-")
	require.Len(t, jti, 24)
	loaded, err := chromedp.Run(p.ctx, chromedp.Evaluate[int](`document.querySelector("img.qr").naturalWidth`))
	require.NoError(t, err)
	require.Greater(t, loaded, 0, "the browser did not load the QR code image")
	p.check("subject")

	// The QR code, fetched with the browser's session, is the link JWT.
	cookie := p.cookie()
	status, img, hdr := withCookie(t, cookie, "GET", base+"/link/"+jti+"/qr.png", nil)
	require.Equal(t, http.StatusOK, status, "%s", img)
	require.Equal(t, "image/png", hdr.Get("Content-Type"))
	code, err := qrtest.Decode(img)
	require.NoError(t, err)
	require.Equal(t, "M", code.Level)
	token := code.Text
	r := call(t, "GET", base+"/link/"+jti+"/jwt", login(t, base, "coord@example.org", adminPass), "")
	require.Equal(t, string(r.body), token, "the QR code holds the link's JWT")
	status, _, _ = withCookie(t, &http.Cookie{Name: cookie.Name, Value: "x" + cookie.Value[1:]}, "GET", base+"/link/"+jti+"/qr.png", nil)
	require.Equal(t, http.StatusUnauthorized, status, "a wrong cookie gets no QR code")

	require.EqualValues(t, http.StatusOK, p.submit(`a[href$="/print"]`))
	require.Contains(t, p.text("main"), "S-E2E-1")
	p.check("print")

	// The app scans the code and establishes the link.
	establishURL, err := appProfileLink(token, appBuildSecret, appBuildIssuer, time.Now())
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, appEstablish(t, establishURL, token, "P-123").status)
	require.EqualValues(t, http.StatusOK, p.open("/console/subjects/S-E2E-1"))
	require.Equal(t, today, p.text("#date_enrolled"))
	trail := p.text("#audit-trail")
	for _, want := range []string{"create", "consented: " + today, "[Link] create", "[Link] link to P-123"} {
		require.Contains(t, trail, want)
	}
	require.Zero(t, p.count("img.qr"), "an established link shows no QR code")

	// The list: search, site filter, sort.
	require.EqualValues(t, http.StatusOK, p.open("/console/subjects?site=A"))
	require.Contains(t, p.text("table.list tbody"), "S-E2E-1")
	require.Contains(t, p.text("table.list tbody"), "enrolled")
	require.EqualValues(t, http.StatusOK, p.submit(`th a[href*="ordercol=name"]`))
	sorted, err := chromedp.Run(p.ctx, chromedp.AttributeValue(chromedp.CSS(`th[aria-sort]`), "aria-sort"))
	require.NoError(t, err)
	require.Equal(t, "ascending", sorted.Value)
	p.check("subjects")
	require.EqualValues(t, http.StatusOK, p.open("/console/subjects?site=B"))
	require.Contains(t, p.text("#count"), "No subjects")
	require.EqualValues(t, http.StatusOK, p.open("/console/account"))
	p.check("account")
	require.EqualValues(t, http.StatusNotFound, p.open("/console/no-such-page"))
	p.check("not-found")

	// A form served from another origin (another port) posting to the
	// console is refused, although the browser sends the cookie along.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><title>x</title><form method="post" action="%s/console/subjects/new">
<input name="sssid" value="EVIL-1"><input name="name" value="Mallory"><input name="bday" value="1980-01-01">
<button id="go">go</button></form>`, base)
	}))
	t.Cleanup(evil.Close)
	_, err = chromedp.Run(p.ctx, chromedp.NavigateResponse(evil.URL))
	require.NoError(t, err)
	require.EqualValues(t, http.StatusForbidden, p.submit("#go"))
	r = call(t, "GET", base+"/subject/EVIL-1", login(t, base, adminUser, adminPass), "")
	require.Equal(t, http.StatusNotFound, r.status, "the cross-origin post created a subject")

	require.EqualValues(t, http.StatusOK, p.open("/console/"))
	p.signOut()
	status, _, hdr = withCookie(t, cookie, "GET", base+"/console/subjects", nil)
	require.Equal(t, http.StatusSeeOther, status, "the signed-out session still works")
	require.Contains(t, hdr.Get("Location"), "signin")

	// A monitor: no edit controls; posting anyway is a 403.
	require.EqualValues(t, http.StatusOK, p.signIn("monitor@example.org", adminPass, ""))
	require.EqualValues(t, http.StatusOK, p.open("/console/subjects/S-E2E-1"))
	require.Equal(t, 1, p.count("main form, header form"), "the monitor's page has forms besides sign-out")
	require.Zero(t, p.count(`nav a[href$="subjects/new"]`))
	require.Contains(t, p.text("#audit-trail"), "[Link] link to P-123")
	p.check("subject-monitor")
	mon := p.cookie()
	for path, form := range map[string]url.Values{
		"/console/subjects/S-E2E-1/withdraw": {"date_withdrawn": {today}},
		"/console/subjects/S-E2E-1":          {"name": {"Renamed"}},
		"/console/subjects/new":              {"sssid": {"S-MON"}, "name": {"M"}, "bday": {"1980-01-01"}},
		"/console/subjects/S-E2E-1/links":    {},
	} {
		status, body, _ := withCookie(t, mon, "POST", base+path, form)
		require.Equal(t, http.StatusForbidden, status, "monitor POST %s: %s", path, body)
	}
	require.EqualValues(t, http.StatusForbidden, p.open("/console/subjects/new"))
	p.check("forbidden")
	r = call(t, "GET", base+"/subject/S-E2E-1", login(t, base, adminUser, adminPass), "")
	require.Contains(t, string(r.body), `"name":"Alice Example"`)
	require.NotContains(t, string(r.body), "date_withdrawn")
}

var resetLink = regexp.MustCompile(`http://[^\s"<>]+/reset\?k=[A-Za-z0-9_\-]+`)

// TestConsoleAdminInviteTOTPBrowser: an admin invites a user from the
// users page (mail over a real SMTP server); the invitee sets a password
// from the mail, signs in, enrols a second factor from the account page
// (QR code, secret, recovery codes) and then signs in with a one-time code
// only; the admin sees the audit log with its checkpoint and resets the
// second factor. Every page passes axe-core and is photographed.
func TestConsoleAdminInviteTOTPBrowser(t *testing.T) {
	proc, mail := consoleProc(t)
	base := proc.url
	p := newPage(t, base)

	require.EqualValues(t, http.StatusOK, p.signIn(adminUser, adminPass, ""))
	require.EqualValues(t, http.StatusOK, p.submit(`nav a[href$="users"]`))
	p.fill("#username", "new@example.org", "#role", "monitor", "#sites", "A, B")
	require.EqualValues(t, http.StatusOK, p.submit("#invite"))
	require.Contains(t, p.text(".flash"), "invitation")
	require.Contains(t, p.text("#main"), "new@example.org")
	p.check("users")

	msgs := mail.Wait(t, 1)
	link := resetLink.FindString(msgs[0].Text)
	require.NotEmpty(t, link, "no link in the invitation:\n%s", msgs[0].Text)
	p.signOut()
	_, err := chromedp.Run(p.ctx, chromedp.NavigateResponse(link))
	require.NoError(t, err)
	p.fill("#pass1", "the invitee's own passphrase", "#pass2", "the invitee's own passphrase")
	require.EqualValues(t, http.StatusOK, p.submit("#submit"))
	require.Contains(t, p.text("main"), "Your password has been set")

	// The invitee signs in and enrols a second factor.
	require.EqualValues(t, http.StatusOK, p.open("/console/signin"))
	require.EqualValues(t, http.StatusOK, p.signIn("new@example.org", "the invitee's own passphrase", ""))
	require.Contains(t, p.text("main"), "monitor")
	require.EqualValues(t, http.StatusOK, p.open("/console/account"))
	require.EqualValues(t, http.StatusOK, p.submit("#start-totp"))
	secret := p.text("#totp-secret")
	require.NotEmpty(t, secret)
	p.check("account-totp-enrol")
	p.fill("#code", "000000")
	require.EqualValues(t, http.StatusBadRequest, p.submit("#confirm-totp"))
	require.NotEmpty(t, p.text("#code-error"))
	require.Equal(t, secret, p.text("#totp-secret"), "the pending enrolment is shown again")
	code, err := totp.GenerateCode(secret, time.Now())
	require.NoError(t, err)
	p.fill("#code", code)
	require.EqualValues(t, http.StatusOK, p.submit("#confirm-totp"))
	require.Equal(t, 10, p.count("#recovery-codes li"), p.text("main"))
	require.Equal(t, "active", p.text("#totp-state"))
	p.check("account-recovery-codes")
	require.EqualValues(t, http.StatusOK, p.open("/console/account"))
	require.NotContains(t, p.text("body"), secret, "the secret shows after enrolment")

	// Sign-in now needs the one-time code.
	p.signOut()
	require.EqualValues(t, http.StatusUnauthorized, p.signIn("new@example.org", "the invitee's own passphrase", ""))
	require.NotEmpty(t, p.text("#otp-error"))
	p.check("signin-otp")
	code, err = totp.GenerateCode(secret, time.Now().Add(30*time.Second)) // the confirmation used this step's code
	require.NoError(t, err)
	require.EqualValues(t, http.StatusOK, p.signIn("new@example.org", "the invitee's own passphrase", code))
	require.Contains(t, p.text("h1"), "Welcome")
	p.signOut()

	// The admin: the audit log, and a reset of the invitee's second factor.
	require.EqualValues(t, http.StatusOK, p.signIn(adminUser, adminPass, ""))
	require.EqualValues(t, http.StatusOK, p.open("/console/audit?actor=new@example.org"))
	require.Contains(t, p.text("#audit-log"), "login")
	p.check("audit")
	require.EqualValues(t, http.StatusOK, p.open("/console/users"))
	require.EqualValues(t, http.StatusOK, p.submit(`button[aria-label="Reset the second factor of new@example.org"]`))
	require.Contains(t, p.text(".flash"), "updated")
	require.Zero(t, p.count(`button[aria-label="Reset the second factor of new@example.org"]`))
	require.EqualValues(t, http.StatusOK, p.submit(`button[aria-label="Disable new@example.org"]`))
	require.Contains(t, p.text(`#main`), "disabled")
}
