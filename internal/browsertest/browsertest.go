// Package browsertest starts a real headless Chromium (Debian's chromium
// package) for tests and drives it with chromedp over a pipe: no chromedriver,
// no download, and no network but loopback.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// MaxBrowserLife bounds how long one browser may live; a test's own steps
// should use a shorter timeout made with [StepTimeout].
const MaxBrowserLife = 2 * time.Minute

// New starts a fresh headless Chromium for t and returns its chromedp context;
// t's cleanup closes the browser. Without a Chromium binary the test is
// skipped, except under CI=true, where a missing browser is a failure (CI
// installs it). CHROME_BIN names a binary explicitly.
func New(t testing.TB) context.Context {
	t.Helper()
	path := os.Getenv("CHROME_BIN")
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if path != "" {
			break
		}
		path, _ = exec.LookPath(name)
	}
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no Chromium found: CI must run apt-get install -y chromium")
		}
		t.Skip("browser test skipped: no Chromium found (apt-get install chromium, or set CHROME_BIN)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests run as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true),
		// Keep Chromium off the network: only loopback names resolve.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"),
		chromedp.WindowSize(1024, 768),
		chromedp.Env("TMPDIR="+t.TempDir()), // Chromium leaves a socket dir in $TMPDIR
	)
	ctx, cancel := context.WithTimeout(context.Background(), MaxBrowserLife)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	ctx, cancelTab := chromedp.NewContext(ctx)
	t.Cleanup(func() { cancelTab(); cancelAlloc(); cancel() })
	if err := chromedp.Do(ctx); err != nil { // start now, so a broken install fails here
		t.Fatalf("start %s: %v", path, err)
	}
	return ctx
}

// StepTimeout returns a child of the browser context that expires after d, for
// a test's steps: chromedp has no timeouts of its own, and a timeout on the
// browser's first context would kill the browser.
func StepTimeout(t testing.TB, browser context.Context, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(browser, d)
	t.Cleanup(cancel)
	return ctx
}
