package main_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// idleAfter is idmd's idleReleaseAfter.
const idleAfter = 2 * time.Second

// TestIdleRelease checks the wiring of the idle memory release in a real
// idmd: it releases once before it listens, once more when it has been
// idle for idleReleaseAfter after serving requests, and not again while it
// stays idle.
func TestIdleRelease(t *testing.T) {
	p := start(t, append(baseEnv(t), "IDM_LOG_LEVEL=debug"))
	releases := func() int { return strings.Count(p.logs(), `"msg":"idle: released memory"`) }
	require.Equal(t, 1, releases(), "one release at start-up")

	r := call(t, "GET", p.url+"/readyz", "", "")
	require.Equal(t, http.StatusOK, r.status)
	require.Eventually(t, func() bool { return releases() == 2 }, idleAfter+10*time.Second, 50*time.Millisecond,
		"a release once idle after a request")
	time.Sleep(2 * idleAfter)
	require.Equal(t, 2, releases(), "no further release while idle")
}
