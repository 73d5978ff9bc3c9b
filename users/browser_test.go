package users_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/c3-pro/idm/internal/browsertest"
)

// TestInitBrowser bootstraps the service in a real headless Chromium: it
// opens /init under a path prefix (so the form's relative action is
// exercised), submits a password the policy refuses, sees the message with
// the username kept, submits a good one, sees the ready page, and then sees
// "already initialised". With IDM_SCREENSHOTS set to a directory it saves
// screenshots of the pages there (init.png is the form).
func TestInitBrowser(t *testing.T) {
	e := newEnv(t)
	host := http.NewServeMux()
	host.Handle("/idm/", http.StripPrefix("/idm", e.users))
	srv := httptest.NewServer(host)
	t.Cleanup(srv.Close)

	browser := browsertest.New(t)
	ctx := browsertest.StepTimeout(t, browser, time.Minute)
	shot := func(name string) {
		t.Helper()
		dir := os.Getenv("IDM_SCREENSHOTS")
		if dir == "" {
			return
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel chromedp.CSS) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}

	if err := chromedp.Do(ctx, chromedp.EmulateViewport(800, 600)); err != nil {
		t.Fatal(err)
	}
	resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(srv.URL+"/idm/init"))
	if err != nil || resp.Status != http.StatusOK {
		t.Fatalf("open /idm/init: %v (status %v)", err, resp)
	}
	if got := text("h1"); got != "Set up the identity service" {
		t.Errorf("heading %q", got)
	}
	// The stylesheet applies: the Content-Security-Policy allows it by hash.
	bg, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.getElementById("submit")).backgroundColor`))
	if err != nil || bg != "rgb(31, 95, 174)" {
		t.Errorf("the button's background is %q (%v); is the stylesheet blocked?", bg, err)
	}

	// A password the policy refuses: the form comes back with the message.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("username"), "Admin@Example.org"),
		chromedp.SendKeys(chromedp.ID("password"), "short"),
	); err != nil {
		t.Fatal(err)
	}
	resp, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("submit")))
	if err != nil || resp.Status != http.StatusBadRequest {
		t.Fatalf("submit a short password: %v (status %v)", err, resp)
	}
	if got := text("#error"); !strings.Contains(got, "at least 8 characters") {
		t.Errorf("error message %q", got)
	}
	if got, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("username"))); err != nil || got != "Admin@Example.org" {
		t.Errorf("the username field holds %q (%v)", got, err)
	}

	// A good password: the ready page.
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("password"), testPassword)); err != nil {
		t.Fatal(err)
	}
	shot("init.png")
	resp, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("submit")))
	if err != nil || resp.Status != http.StatusOK {
		t.Fatalf("submit: %v (status %v)", err, resp)
	}
	if got := text("h1"); got != "The system is ready" {
		t.Errorf("heading %q", got)
	}
	if got := text("strong"); got != "admin@example.org" {
		t.Errorf("the page names %q", got)
	}
	shot("init-ready.png")
	if u, ok := e.userByName("admin@example.org"); !ok || !u.Admin {
		t.Errorf("stored %+v (found %v)", u, ok)
	}

	// Opened again: already initialised.
	resp, err = chromedp.RunResponse(ctx, chromedp.Navigate(srv.URL+"/idm/init"))
	if err != nil || resp.Status != http.StatusConflict {
		t.Fatalf("reopen /idm/init: %v (status %v)", err, resp)
	}
	if got := text("h1"); got != "Already initialised" {
		t.Errorf("heading %q", got)
	}
	if n, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSS("form"), chromedp.AtLeast(0))); err != nil || len(n) != 0 {
		t.Errorf("the closed page has %d forms (%v)", len(n), err)
	}
	shot("init-closed.png")
}
