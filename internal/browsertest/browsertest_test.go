package browsertest_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/c3-pro/idm/internal/browsertest"
)

// TestAxeFindsViolations checks that the accessibility check can fail: a
// page with an unlabelled input and an image without alt text has
// violations of those rules.
func TestAxeFindsViolations(t *testing.T) {
	axe := browsertest.AxeSource(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'")
		_, _ = w.Write([]byte(`<!doctype html><html lang="en"><title>bad</title><main><h1>Bad</h1>
<img src="x.png"><form><input name="q"></form></main>`))
	}))
	t.Cleanup(srv.Close)
	ctx := browsertest.StepTimeout(t, browsertest.New(t), 30*time.Second)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	vs, err := browsertest.Axe(ctx, axe)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, v := range vs {
		found[v.ID] = v.Impact
	}
	for _, id := range []string{"image-alt", "label"} {
		if impact := found[id]; impact != "critical" {
			t.Errorf("axe did not report %s as critical: %v", id, vs)
		}
	}
}
