package auth_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/time/rate"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
)

// fuzzHandler returns a handler on a memstore with alice in it, and a valid
// token of hers.
func fuzzHandler(f *testing.F) (*auth.Handler, idm.User, string) {
	f.Helper()
	store := memstore.New()
	pw := fastPasswords(f)
	hash, err := pw.Hash(f.Context(), alicePW)
	if err != nil {
		f.Fatal(err)
	}
	u := idm.User{ID: idm.NewID(), Username: alice, PasswordHash: hash, Created: t0, Changed: t0}
	if err := store.CreateUser(f.Context(), u); err != nil {
		f.Fatal(err)
	}
	h, err := auth.New(auth.Config{
		Store: store, Keys: hmacKeys(f, testSecret), Passwords: pw, Now: newClock().Now,
		RateLimit: rate.Inf, MaxFailures: 1 << 30,
	})
	if err != nil {
		f.Fatal(err)
	}
	tok, _, err := h.IssueToken(u)
	if err != nil {
		f.Fatal(err)
	}
	return h, u, tok
}

// FuzzAuthorizationHeader feeds arbitrary Authorization header values to
// Require: nothing panics, every refusal is a JSON 401 with one of the two
// documented messages, and only the real token passes.
func FuzzAuthorizationHeader(f *testing.F) {
	h, u, tok := fuzzHandler(f)
	for _, s := range []string{
		"", "JWT " + tok, "Bearer " + tok, "bearer  " + tok, "Basic YWxhZGRpbjpvcGVuc2VzYW1l", "Bearer",
		"Bearer " + tok + "x", "JWT a.b.c", "JWT ...", "JWT " + strings.Repeat("A", 9000), "JWT eyJhbGciOiJub25lIn0.e30.",
	} {
		f.Add(s)
	}
	protected := h.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := idm.PrincipalFrom(r.Context())
		if !ok || p.UserID != u.ID {
			panic("Require let a request through without the right principal")
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	f.Fuzz(func(t *testing.T, header string) {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/me", nil)
		if header != "" {
			req.Header["Authorization"] = []string{header}
		}
		rec := httptest.NewRecorder()
		protected.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusNoContent:
			if !strings.Contains(header, tok) {
				t.Fatalf("header %q passed", header)
			}
		case http.StatusUnauthorized:
			var b idm.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if m := b.Error.Message; m != "Invalid token" && m != "Authorization Required" {
				t.Fatalf("message %q", m)
			}
		default:
			t.Fatalf("status %d for %q", rec.Code, header)
		}
	})
}

// FuzzAuthBody feeds arbitrary bodies to POST /auth: nothing panics, no
// answer is a 5xx, every answer is JSON, and only alice's exact credentials
// get a token.
func FuzzAuthBody(f *testing.F) {
	h, _, _ := fuzzHandler(f)
	for _, s := range []string{
		`{"username":"alice@example.org","password":"kettle-orbit-lantern-9"}`,
		`{"username":"alice@example.org","password":"wrong"}`,
		`{"username":"alice@example.org"}`, `{}`, `[]`, `null`, `"x"`, `{"username":1,"password":true}`,
		`{"username":"a","password":"b","x":{}}`, `{"username":"\u0000","password":"\ud800"}`,
		strings.Repeat("[", 100), `{"username":"alice@example.org","password":"kettle-orbit-lantern-9"}{}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/auth", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("body %q is not JSON", rec.Body)
		}
		switch rec.Code {
		case http.StatusOK:
			var creds map[string]any
			err := json.Unmarshal([]byte(body), &creds)
			name, _ := creds["username"].(string)
			if err != nil || len(creds) != 2 || !strings.EqualFold(name, alice) || creds["password"] != alicePW {
				t.Fatalf("body %q got a token", body)
			}
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge,
			http.StatusUnsupportedMediaType, http.StatusTooManyRequests:
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
	})
}
