package main_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// get sends a GET with an optional Authorization header value.
func get(t *testing.T, url, authorization string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{status: resp.StatusCode, header: resp.Header, body: body}
}

// TestMetricsOnlyOnTheirOwnListener checks that the per-outcome counters,
// which tell which accounts exist, are never on the public listener: it
// answers /metrics with the JSON 404, while the metrics listener (on
// loopback) serves them, behind a bearer token when one is configured.
func TestMetricsOnlyOnTheirOwnListener(t *testing.T) {
	const notFound = `{"error":{"status":404,"message":"Not Found"}}`
	tokenFile := filepath.Join(t.TempDir(), "metrics-token")
	const token = "0123456789abcdef-metrics-token"
	require.NoError(t, os.WriteFile(tokenFile, []byte(token+"\n"), 0o600))

	for _, tc := range []struct {
		name       string
		env        []string
		wantServed bool
		token      string
	}{
		{name: "separate listener", wantServed: true},
		{name: "behind a bearer token", env: []string{"IDM_METRICS_TOKEN_FILE=" + tokenFile}, wantServed: true, token: token},
		{name: "off", env: []string{"IDM_METRICS_ADDR=off"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := start(t, append(baseEnv(t), tc.env...))
			// An /iforgot-style count or a login outcome must not be
			// readable on the public listener, by any method or path form.
			r := call(t, "POST", p.url+"/auth", "", `{"username":"nobody@example.org","password":"wrong password here"}`)
			require.Equal(t, http.StatusUnauthorized, r.status)
			for _, path := range []string{"/metrics", "/metrics/", "/metrics?x=1"} {
				r = get(t, p.url+path, "")
				require.Equal(t, http.StatusNotFound, r.status, path)
				require.JSONEq(t, notFound, string(r.body), path)
			}
			r = get(t, p.url+"/metrics", "Bearer "+token)
			require.Equal(t, http.StatusNotFound, r.status, "a token does not open the public listener")

			if !tc.wantServed {
				require.Empty(t, p.metricsURL)
				require.NotContains(t, p.logs(), `"msg":"serving metrics"`)
				return
			}
			require.True(t, strings.HasPrefix(p.metricsURL, "http://127.0.0.1:"), p.metricsURL)
			if tc.token != "" {
				for _, auth := range []string{"", "Bearer wrong-token-of-some-length", "JWT " + token, token} {
					r = get(t, p.metricsURL+"/metrics", auth)
					require.Equal(t, http.StatusUnauthorized, r.status, "Authorization %q", auth)
					require.JSONEq(t, `{"error":{"status":401,"message":"Authorization Required"}}`, string(r.body))
					require.NotContains(t, string(r.body), "idm_logins_total")
				}
			}
			r = get(t, p.metricsURL+"/metrics", "Bearer "+tc.token)
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			require.Contains(t, string(r.body), `idm_logins_total{outcome="failure"} 1`)
			// The metrics listener serves nothing of the API.
			r = get(t, p.metricsURL+"/status", "Bearer "+tc.token)
			require.Equal(t, http.StatusNotFound, r.status)
			require.JSONEq(t, notFound, string(r.body))
		})
	}
}

// TestMetricsDefaultIsLoopback checks the default of IDM_METRICS_ADDR as
// idmd -h shows it: loopback only.
func TestMetricsDefaultIsLoopback(t *testing.T) {
	_, out := runCmd(t, baseEnv(t), "", "serve", "-h")
	require.Contains(t, out, "-metrics-addr")
	require.Contains(t, out, "env IDM_METRICS_ADDR, default 127.0.0.1:9097")
}
