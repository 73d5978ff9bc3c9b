// Package browsertest starts a real headless Chromium (Debian's chromium
// package) for tests and drives it with chromedp over a pipe: no chromedriver,
// no download, and no network but loopback.
package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// Violation is one rule that axe-core found broken on a page.
type Violation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"` // minor, moderate, serious or critical
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"` // selectors of (at most 5 of) the offending elements
}

// AxeSource returns axe-core's script (axe.min.js), read from the file that
// AXE_JS names. Without AXE_JS the test is skipped, except under CI=true,
// where .ci/run provides it and its absence is a failure.
func AxeSource(t testing.TB) string {
	t.Helper()
	path := os.Getenv("AXE_JS")
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("AXE_JS is not set: .ci/run downloads axe-core and sets it")
		}
		t.Skip("accessibility check skipped: set AXE_JS to axe-core's axe.min.js")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("AXE_JS: %v", err)
	}
	return string(b)
}

// Axe runs axe-core (its source from [AxeSource]) on the page the browser
// shows and returns the violations. The script is injected through the
// DevTools protocol, which the page's Content-Security-Policy does not
// govern, so pages without any script can be checked as they are.
func Axe(ctx context.Context, source string) ([]Violation, error) {
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](source)); err != nil {
		return nil, fmt.Errorf("injecting axe-core: %w", err)
	}
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ["violations"]}).then(r => JSON.stringify(r.violations.map(v => ({
		id: v.id, impact: v.impact || "", help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))}))))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		return nil, fmt.Errorf("running axe-core: %w", err)
	}
	var vs []Violation
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		return nil, fmt.Errorf("reading axe-core's results: %w", err)
	}
	return vs, nil
}

// Widths are the viewport widths of [Screenshots]: a phone's and a
// desktop's.
var Widths = []int64{390, 1280}

// ArtifactDir returns the folder for a test's pictures: $IDM_ARTIFACTS when
// set (created if needed; CI keeps it), else a temporary folder of t. The
// path is logged.
func ArtifactDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("IDM_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else {
		dir = filepath.Join(dir, t.Name())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatalf("artifact folder: %v", err)
		}
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// Screenshots writes full-page PNG screenshots of the page the browser
// shows, one per width of [Widths], as dir/name-<width>.png, and leaves the
// viewport at the last width.
func Screenshots(ctx context.Context, dir, name string) error {
	for _, w := range Widths {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(w, 800)); err != nil {
			return err
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			return fmt.Errorf("screenshot of %s at %d px: %w", name, w, err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d.png", name, w)), png, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// CheckPage checks the page the browser shows: axe-core's violations
// (source from [AxeSource]; "" skips the check) are logged by impact, and
// serious or critical ones fail t; screenshots at every width of [Widths]
// go to dir (see [Screenshots]). It returns the violations.
func CheckPage(t testing.TB, ctx context.Context, axeSource, dir, name string) []Violation {
	t.Helper()
	var vs []Violation
	if axeSource != "" {
		var err error
		if vs, err = Axe(ctx, axeSource); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		byImpact := map[string][]string{}
		for _, v := range vs {
			byImpact[v.Impact] = append(byImpact[v.Impact], fmt.Sprintf("%s (%s) at %v", v.ID, v.Help, v.Nodes))
		}
		t.Logf("axe %s: critical %d, serious %d, moderate %d, minor %d %v", name,
			len(byImpact["critical"]), len(byImpact["serious"]), len(byImpact["moderate"]), len(byImpact["minor"]), byImpact)
		for _, impact := range []string{"critical", "serious"} {
			for _, v := range byImpact[impact] {
				t.Errorf("axe %s: %s violation %s", name, impact, v)
			}
		}
	}
	if dir != "" {
		if err := Screenshots(ctx, dir, name); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	return vs
}
