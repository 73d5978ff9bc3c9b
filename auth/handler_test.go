package auth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
)

const (
	alice   = "alice@example.org"
	alicePW = "kettle-orbit-lantern-9"
)

func TestAuthSuccess(t *testing.T) {
	e := newEnv(t)
	u := e.addUser(alice, alicePW)

	r := e.login("Alice@Example.ORG", alicePW) // usernames match in any case
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	assert.Equal(t, "no-store", r.header.Get("Cache-Control"))
	var body map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.body), &body))
	assert.Len(t, body, 3, "no data wrapper, nothing else: %s", r.body)
	assert.Equal(t, "Bearer", body["token_type"])
	assert.EqualValues(t, 12*3600, body["expires_in"])
	token, _ := body["access_token"].(string)

	// The token is a JWS that a service holding the secret can verify with
	// exactly its bytes, with the documented header and claims.
	claims := jwt.MapClaims{}
	parsed, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return []byte(testSecret), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(e.clock.Now))
	require.NoError(t, err)
	require.True(t, parsed.Valid)
	assert.Equal(t, "HS256", parsed.Header["alg"])
	assert.Equal(t, "JWT", parsed.Header["typ"])
	assert.Equal(t, e.cfg.Keys.Signing().KID(), parsed.Header["kid"])
	assert.ElementsMatch(t, []string{"sub", "identity", "iat", "nbf", "exp", "iss", "aud", "jti", "ver"}, claimNames(claims))
	assert.Equal(t, u.ID, claims["sub"])
	assert.Equal(t, u.ID, claims["identity"])
	assert.EqualValues(t, t0.Unix(), claims["iat"])
	assert.Equal(t, claims["iat"], claims["nbf"])
	assert.EqualValues(t, t0.Add(12*time.Hour).Unix(), claims["exp"])
	assert.Equal(t, auth.DefaultIssuer, claims["iss"])
	assert.Equal(t, "idm", claims["aud"])
	assert.Len(t, claims["jti"], 24)
	assert.EqualValues(t, 0, claims["ver"])

	me := e.me("JWT " + token)
	require.Equal(t, http.StatusOK, me.status, me.body)
	var p idm.DataBody[idm.Principal]
	require.NoError(t, json.Unmarshal([]byte(me.body), &p))
	// A user stored without a role acts as a coordinator of every site.
	assert.Equal(t, idm.Principal{UserID: u.ID, Username: alice, Role: idm.RoleCoordinator, Sites: []string{idm.AllSites}}, p.Data)

	evs := e.audits()
	require.Len(t, evs, 1)
	assert.Equal(t, "login", evs[0].Action)
	assert.Equal(t, idm.DocAuth, evs[0].DocType)
	assert.Equal(t, u.ID, evs[0].ActorID)
	assert.Equal(t, alice, evs[0].Actor)
	assert.Equal(t, []string{auth.OutcomeSuccess}, e.loginOutcomes())
}

func claimNames(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func TestAuthInvalidCredentials(t *testing.T) {
	e := newEnv(t, func(c *auth.Config) { c.MaxFailures = 1000 })
	e.addUser(alice, alicePW)
	disabled := e.addUser("bob@example.org", alicePW)
	e.update(disabled.ID, func(u *idm.User) { u.Disabled = true })
	e.addUserWithHash("invited@example.org", "")

	const want = `{"error":{"status":401,"message":"invalid credentials"}}`
	tests := []struct {
		name string
		body string
	}{
		{"wrong password", `{"username":"alice@example.org","password":"wrong-password-1"}`},
		{"unknown user", `{"username":"nobody@example.org","password":"kettle-orbit-lantern-9"}`},
		{"disabled user, right password", `{"username":"bob@example.org","password":"kettle-orbit-lantern-9"}`},
		{"user without password", `{"username":"invited@example.org","password":"kettle-orbit-lantern-9"}`},
		{"missing password", `{"username":"alice@example.org"}`},
		{"missing username", `{"password":"kettle-orbit-lantern-9"}`},
		{"empty object", `{}`},
		{"empty password", `{"username":"alice@example.org","password":""}`},
		{"extra key", `{"username":"alice@example.org","password":"kettle-orbit-lantern-9","admin":true}`},
		{"key in other case", `{"Username":"alice@example.org","password":"kettle-orbit-lantern-9"}`},
		{"number as password", `{"username":"alice@example.org","password":12345678}`},
		{"null password", `{"username":"alice@example.org","password":null}`},
		{"username too long", `{"username":"` + strings.Repeat("a", 255) + `","password":"kettle-orbit-lantern-9"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(http.MethodPost, "/auth", tt.body)
			assert.Equal(t, http.StatusUnauthorized, r.status)
			assert.JSONEq(t, want, r.body)
			assert.NotEmpty(t, r.header.Get("WWW-Authenticate"))
		})
	}
	for _, o := range e.loginOutcomes() {
		assert.Equal(t, auth.OutcomeFailure, o)
	}
	for _, ev := range e.audits() {
		assert.Equal(t, "login failed", ev.Action)
		assert.Empty(t, ev.ActorID)
	}
}

func TestAuthBadInput(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
	}{
		{"malformed JSON", "application/json", `{"username":`, http.StatusBadRequest},
		{"array", "application/json", `["a","b"]`, http.StatusBadRequest},
		{"string", "application/json", `"x"`, http.StatusBadRequest},
		{"null", "application/json", `null`, http.StatusBadRequest},
		{"trailing data", "application/json", `{"username":"a","password":"b"} {}`, http.StatusBadRequest},
		{"empty body", "application/json", ``, http.StatusBadRequest},
		{"form", "application/x-www-form-urlencoded", `username=a&password=b`, http.StatusUnsupportedMediaType},
		{"too deep", "application/json", strings.Repeat("[", 40) + strings.Repeat("]", 40), http.StatusBadRequest},
		{"too large", "application/json", `{"username":"` + strings.Repeat("a", idm.DefaultMaxBodyBytes) + `"}`, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(http.MethodPost, "/auth", tt.body, "Content-Type", tt.contentType)
			assert.Equal(t, tt.status, r.status, r.body)
			assert.NotEmpty(t, r.errorMessage(t))
		})
	}
	t.Run("charset is fine", func(t *testing.T) {
		e.addUser(alice, alicePW)
		r := e.do(http.MethodPost, "/auth", `{"username":"alice@example.org","password":"kettle-orbit-lantern-9"}`,
			"Content-Type", "application/json; charset=utf-8")
		assert.Equal(t, http.StatusOK, r.status, r.body)
	})
}

func TestRoutes(t *testing.T) {
	e := newEnv(t)
	// The Handler itself is an http.Handler over its own idm.Mux.
	srv := httptest.NewServer(e.h)
	t.Cleanup(srv.Close)
	tests := []struct {
		method, path string
		status       int
		message      string
		allow        string
	}{
		{http.MethodGet, "/auth", http.StatusMethodNotAllowed, "Method Not Allowed", "POST"},
		{http.MethodGet, "/logout", http.StatusMethodNotAllowed, "Method Not Allowed", "POST"},
		{http.MethodPost, "/.well-known/jwks.json", http.StatusMethodNotAllowed, "Method Not Allowed", "GET, HEAD"},
		{http.MethodGet, "/nope", http.StatusNotFound, "Not Found", ""},
		{http.MethodPost, "/logout", http.StatusUnauthorized, "Authorization Required", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+tt.path, nil)
			require.NoError(t, err)
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			var b idm.ErrorBody
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&b))
			assert.Equal(t, tt.status, resp.StatusCode)
			assert.Equal(t, tt.message, b.Error.Message)
			if tt.allow != "" {
				assert.Equal(t, tt.allow, resp.Header.Get("Allow"))
			}
		})
	}
}

func TestRequire(t *testing.T) {
	e := newEnv(t)
	e.addUser(alice, alicePW)
	token := e.token(alice, alicePW)
	tests := []struct {
		name          string
		authorization string
		header        bool // send the header even when empty
		status        int
		message       string
	}{
		{"JWT scheme", "JWT " + token, true, http.StatusOK, ""},
		{"Bearer scheme", "Bearer " + token, true, http.StatusOK, ""},
		{"lower-case scheme", "jwt " + token, true, http.StatusOK, ""},
		{"mixed-case scheme", "bEaReR " + token, true, http.StatusOK, ""},
		{"extra spaces", "Bearer   " + token + "  ", true, http.StatusOK, ""},
		{"no header", "", false, http.StatusUnauthorized, "Authorization Required"},
		{"empty header", "", true, http.StatusUnauthorized, "Authorization Required"},
		{"Basic scheme", "Basic " + token, true, http.StatusUnauthorized, "Invalid token"},
		{"scheme only", "Bearer", true, http.StatusUnauthorized, "Invalid token"},
		{"token only", token, true, http.StatusUnauthorized, "Invalid token"},
		{"two tokens", "Bearer " + token + " " + token, true, http.StatusUnauthorized, "Invalid token"},
		{"garbage", "Bearer abc.def.ghi", true, http.StatusUnauthorized, "Invalid token"},
		{"huge", "Bearer " + strings.Repeat("a", 9000), true, http.StatusUnauthorized, "Invalid token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r reply
			if tt.header {
				r = e.do(http.MethodGet, "/me", "", "Authorization", tt.authorization)
			} else {
				r = e.do(http.MethodGet, "/me", "")
			}
			require.Equal(t, tt.status, r.status, r.body)
			if tt.message != "" {
				assert.Equal(t, tt.message, r.errorMessage(t))
				assert.NotEmpty(t, r.header.Get("WWW-Authenticate"))
			}
		})
	}
	t.Run("two Authorization headers", func(t *testing.T) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.srv.URL+"/me", nil)
		require.NoError(t, err)
		req.Header.Add("Authorization", "Bearer "+token)
		req.Header.Add("Authorization", "Bearer "+token)
		resp, err := e.srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	})
	t.Run("store down", func(t *testing.T) {
		e2 := newEnv(t)
		u := e2.addUser(alice, alicePW)
		tok, _, err := e2.h.IssueToken(u)
		require.NoError(t, err)
		h, err := auth.New(auth.Config{Store: downStore{e2.store}, Keys: e2.cfg.Keys, Passwords: e2.pw, Now: e2.clock.Now})
		require.NoError(t, err)
		rec := httptest.NewRecorder()
		req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/me", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		h.Require(http.HandlerFunc(whoami)).ServeHTTP(rec, req)
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
		assert.NotContains(t, rec.Body.String(), "db is down")
	})
}

// downStore is a store whose user lookups fail as if the database were down.
type downStore struct{ idm.Store }

func (downStore) FindUserByID(_ context.Context, _ string) (idm.User, error) {
	return idm.User{}, fmt.Errorf("db is down: %w", idm.ErrUnavailable)
}

func TestLogout(t *testing.T) {
	e := newEnv(t)
	u := e.addUser(alice, alicePW)
	first := e.token(alice, alicePW)
	second := e.token(alice, alicePW)

	r := e.do(http.MethodPost, "/logout", "", "Authorization", "JWT "+first)
	require.Equal(t, http.StatusNoContent, r.status, r.body)
	assert.Empty(t, r.body)
	assert.Equal(t, int64(1), e.user(u.ID).TokenVersion)
	for _, tok := range []string{first, second} {
		r = e.me("Bearer " + tok)
		assert.Equal(t, http.StatusUnauthorized, r.status)
		assert.Equal(t, "Invalid token", r.errorMessage(t))
	}
	r = e.do(http.MethodPost, "/logout", "", "Authorization", "JWT "+first)
	assert.Equal(t, http.StatusUnauthorized, r.status, "a revoked token cannot log out again")

	third := e.token(alice, alicePW)
	assert.Equal(t, http.StatusOK, e.me("Bearer "+third).status)

	var actions []string
	for _, ev := range e.audits() {
		actions = append(actions, ev.Action)
	}
	assert.ElementsMatch(t, []string{"login", "login", "logout", "login"}, actions)
}

func TestNewConfig(t *testing.T) {
	store := memstore.New()
	keys := hmacKeys(t, testSecret)
	pw := fastPasswords(t)
	tests := []struct {
		name string
		cfg  auth.Config
		ok   bool
	}{
		{"minimal", auth.Config{Store: store, Keys: keys, Passwords: pw}, true},
		{"no store", auth.Config{Keys: keys, Passwords: pw}, false},
		{"no keys", auth.Config{Store: store, Passwords: pw}, false},
		{"equal audiences", auth.Config{Store: store, Keys: keys, Passwords: pw, Audience: "x", LinkAudience: "x"}, false},
		{"link audience defaults to issuer, equal to audience", auth.Config{Store: store, Keys: keys, Passwords: pw, Issuer: "idm"}, false},
		{"leeway above 30 s", auth.Config{Store: store, Keys: keys, Passwords: pw, Leeway: 31 * time.Second}, false},
		{"negative TTL", auth.Config{Store: store, Keys: keys, Passwords: pw, TokenTTL: -time.Second}, false},
		{"negative burst", auth.Config{Store: store, Keys: keys, Passwords: pw, RateBurst: -1}, false},
		{"negative rate", auth.Config{Store: store, Keys: keys, Passwords: pw, RateLimit: -1}, false},
		{"negative failures", auth.Config{Store: store, Keys: keys, Passwords: pw, MaxFailures: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := auth.New(tt.cfg)
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
}
