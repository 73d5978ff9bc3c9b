package main

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/idm"
)

func TestObserve(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(contextHandler{slog.NewJSONHandler(&logs, nil)})
	mux := idm.NewMux()
	mux.HandleFunc("GET /boom/{x}", func(http.ResponseWriter, *http.Request) { panic("kaboom") })
	mux.HandleFunc("GET /fine", func(w http.ResponseWriter, r *http.Request) {
		idm.WriteJSON(w, http.StatusOK, map[string]string{"ok": "yes"})
	})
	srv := httptest.NewServer(observe(mux, log, newMetrics(), time.Now))
	defer srv.Close()

	t.Run("PanicIsA500Envelope", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/boom/secret-value?email=a@example.org")
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		require.JSONEq(t, `{"error":{"status":500,"message":"internal error"}}`, body.String())
		require.NotEmpty(t, resp.Header.Get("X-Request-ID"))
		require.Contains(t, logs.String(), `"msg":"panic serving request"`)
		require.Contains(t, logs.String(), `"route":"GET /boom/{x}"`)
		require.Contains(t, logs.String(), `"request_id":"`+resp.Header.Get("X-Request-ID")+`"`)
		// Request logs name the route pattern, never the path's values or
		// the query string.
		require.NotContains(t, logs.String(), "secret-value")
		require.NotContains(t, logs.String(), "a@example.org")
	})

	t.Run("RequestIDFromCaller", func(t *testing.T) {
		for _, tc := range []struct{ sent, want string }{
			{"abc-123", "abc-123"},
			{"bad id with spaces", ""},
			{strings.Repeat("x", 65), ""},
		} {
			req, err := http.NewRequest("GET", srv.URL+"/fine", nil)
			require.NoError(t, err)
			req.Header.Set("X-Request-ID", tc.sent)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			got := resp.Header.Get("X-Request-ID")
			if tc.want != "" {
				require.Equal(t, tc.want, got)
			} else {
				require.NotEqual(t, tc.sent, got)
				require.Len(t, got, 16)
			}
		}
	})
}
