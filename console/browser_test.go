package console_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/c3-pro/idm/console"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
	"github.com/c3-pro/idm/internal/browsertest"
)

// sessionCookie returns the console's session cookie as the browser keeps
// it (HttpOnly: only the DevTools protocol sees it), nil when it has none.
func sessionCookie(ctx context.Context, t *testing.T, url string) *http.Cookie {
	t.Helper()
	var cookies []*network.Cookie
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		r, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
		cookies = r.Cookies
		return err
	}))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cookies {
		if c.Name == "idm_console" {
			if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict {
				t.Errorf("the browser holds the cookie without HttpOnly/SameSite=Strict: %+v", c)
			}
			return &http.Cookie{Name: c.Name, Value: c.Value}
		}
	}
	return nil
}

// TestBrowserSignOutAndIdleExpiry signs in with a real Chromium, signs out,
// signs in again and lets the session go idle (the console's clock moves
// on): each time the page goes back to the sign-in form, and the old
// cookie, sent again, is refused.
func TestBrowserSignOutAndIdleExpiry(t *testing.T) {
	e := newEnv(t, memstore.New())
	e.addUser("coord@example.org", idm.RoleCoordinator, idm.AllSites)
	ctx := browsertest.StepTimeout(t, browsertest.New(t), 60*time.Second)
	dir := browsertest.ArtifactDir(t)

	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	signIn := func() {
		t.Helper()
		if err := chromedp.Do(ctx,
			chromedp.Navigate(e.srv.URL+"/console/"),
			chromedp.WaitVisible(chromedp.ID("username")),
			chromedp.SendKeys(chromedp.ID("username"), "coord@example.org"),
			chromedp.SendKeys(chromedp.ID("password"), testPassword),
		); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("signin"))); err != nil {
			t.Fatal(err)
		}
		if h1 := text("h1"); !strings.Contains(h1, "Welcome") {
			t.Fatalf("after sign-in: %q", h1)
		}
	}
	refused := func(c *http.Cookie) {
		t.Helper()
		b := &browser{e: e, cookie: c}
		if p := b.do("GET", "/console/subjects", nil); p.status != http.StatusSeeOther || !strings.Contains(p.header.Get("Location"), "signin") {
			t.Errorf("the old cookie still works: %d %s", p.status, p.header.Get("Location"))
		}
	}

	// Sign-out.
	signIn()
	old := sessionCookie(ctx, t, e.srv.URL)
	if old == nil {
		t.Fatal("no session cookie after sign-in")
	}
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS("form.signout button"))); err != nil {
		t.Fatal(err)
	}
	if s := text("main"); !strings.Contains(s, "You have signed out") {
		t.Errorf("after sign-out: %q", s)
	}
	if sessionCookie(ctx, t, e.srv.URL) != nil {
		t.Error("the browser kept the cookie after sign-out")
	}
	browsertest.CheckPage(t, ctx, "", dir, "signed-out")
	refused(old)

	// Idle expiry.
	signIn()
	old = sessionCookie(ctx, t, e.srv.URL)
	e.clock.Add(console.DefaultIdle)
	if err := chromedp.Do(ctx, chromedp.Navigate(e.srv.URL+"/console/subjects"), chromedp.WaitVisible(chromedp.ID("username"))); err != nil {
		t.Fatal(err)
	}
	if s := text("main"); !strings.Contains(s, "Your session has ended") {
		t.Errorf("after the idle timeout: %q", s)
	}
	browsertest.CheckPage(t, ctx, "", dir, "session-ended")
	refused(old)
}
