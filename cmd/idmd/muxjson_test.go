package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/idm"
)

// TestMuxAnswersAreJSON checks that what the mux answers itself on the
// JSON routes is the JSON envelope: the redirects of unclean paths keep
// their status and Location but carry no HTML, and 404 and 405 stay JSON.
func TestMuxAnswersAreJSON(t *testing.T) {
	s := newTestService(t, storeEnvs()[0].env(t)) // boltstore
	s.srv.Client().CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, tc := range []struct {
		method, path string
		status       int
		location     string
	}{
		// ServeMux redirects with 307 (Go 1.22 and later), so that the
		// method and body are kept.
		{"GET", "/subject//", http.StatusTemporaryRedirect, "/subject/"},
		{"GET", "/subject/../user", http.StatusTemporaryRedirect, "/user"},
		{"GET", "/./auth", http.StatusTemporaryRedirect, "/auth"},
		{"GET", "/subject//S-1/links?x=1", http.StatusTemporaryRedirect, "/subject/S-1/links?x=1"},
		{"HEAD", "/x/../readyz", http.StatusTemporaryRedirect, "/readyz"},
		{"POST", "/x/../auth", http.StatusTemporaryRedirect, "/auth"},
		{"PUT", "/subject/./S-1", http.StatusTemporaryRedirect, "/subject/S-1"},
		{"DELETE", "/link/../link/0123", http.StatusTemporaryRedirect, "/link/0123"},
		{"GET", "/no/such/path", http.StatusNotFound, ""},
		{"DELETE", "/auth", http.StatusMethodNotAllowed, ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tc.method, s.srv.URL, nil)
			require.NoError(t, err)
			req.URL.Opaque = tc.path // as sent, not cleaned by the client
			if tc.method == "POST" || tc.method == "PUT" {
				req.Body = http.NoBody
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := s.srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, tc.status, resp.StatusCode)
			require.Equal(t, tc.location, resp.Header.Get("Location"))
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
			if tc.method == "HEAD" {
				return
			}
			var body idm.ErrorBody
			dec := json.NewDecoder(resp.Body)
			dec.DisallowUnknownFields()
			require.NoError(t, dec.Decode(&body))
			require.Equal(t, tc.status, body.Error.Status)
			require.NotEmpty(t, body.Error.Message)
			require.False(t, strings.ContainsAny(body.Error.Message, "<>"), body.Error.Message)
		})
	}
}
