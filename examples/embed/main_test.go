package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/idm/memstore"
)

func TestEmbed(t *testing.T) {
	h, err := newApp(context.Background(), memstore.New(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()

	do := func(method, path, token, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}

	status, body := do("GET", "/hello", "", "")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "host program")

	// The /init page under the prefix posts to a relative action.
	status, body = do("GET", "/idm/init", "", "")
	require.Equal(t, http.StatusOK, status)
	require.NotContains(t, body, `action="/init"`)

	status, body = do("POST", "/idm/init", "", `{"username":"host.admin@example.org","password":"a long enough passphrase"}`)
	require.Equal(t, http.StatusCreated, status, body)
	status, body = do("POST", "/idm/auth", "", `{"username":"host.admin@example.org","password":"a long enough passphrase"}`)
	require.Equal(t, http.StatusOK, status, body)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &tok))

	status, body = do("GET", "/whoami", tok.AccessToken, "")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "host.admin@example.org")
	status, _ = do("GET", "/whoami", "", "")
	require.Equal(t, http.StatusUnauthorized, status)

	status, body = do("POST", "/idm/subject", tok.AccessToken, `{"sssid":"E-1","name":"Eve","bday":"1990-01-01"}`)
	require.Equal(t, http.StatusCreated, status, body)
	status, body = do("GET", "/idm/subject/E-1", tok.AccessToken, "")
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, `"name":"Eve"`)

	status, body = do("GET", "/idm/nope", "", "")
	require.Equal(t, http.StatusNotFound, status)
	require.JSONEq(t, `{"error":{"status":404,"message":"Not Found"}}`, body)
}
