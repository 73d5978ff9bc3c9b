package auth_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"golang.org/x/time/rate"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/boltstore"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
)

// benchHandler returns a handler on store with one user, and a token of
// theirs.
func benchHandler(b *testing.B, store auth.Store, users idm.UserStore) (*auth.Handler, string) {
	b.Helper()
	u := idm.User{ID: idm.NewID(), Username: alice, Created: t0, Changed: t0}
	if err := users.CreateUser(b.Context(), u); err != nil {
		b.Fatal(err)
	}
	h, err := auth.New(auth.Config{Store: store, Keys: hmacKeys(b, testSecret), Passwords: fastPasswords(b), RateLimit: rate.Inf})
	if err != nil {
		b.Fatal(err)
	}
	tok, _, err := h.IssueToken(u)
	if err != nil {
		b.Fatal(err)
	}
	return h, tok
}

// BenchmarkVerifyStaffTokenHS256 measures the signature and claims check of
// a staff token, without the user lookup.
func BenchmarkVerifyStaffTokenHS256(b *testing.B) {
	s := memstore.New()
	h, tok := benchHandler(b, s, s)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.VerifyToken(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRequire measures the whole middleware: header parsing, token
// verification and the per-request user lookup, on each store.
func BenchmarkRequire(b *testing.B) {
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	run := func(b *testing.B, store auth.Store, users idm.UserStore) {
		h, tok := benchHandler(b, store, users)
		protected := h.Require(next)
		req := httptest.NewRequestWithContext(b.Context(), http.MethodGet, "/me", nil)
		req.Header.Set("Authorization", "JWT "+tok)
		b.ReportAllocs()
		for b.Loop() {
			rec := httptest.NewRecorder()
			protected.ServeHTTP(rec, req)
			if rec.Code != http.StatusNoContent {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	}
	b.Run("memstore", func(b *testing.B) {
		s := memstore.New()
		run(b, s, s)
	})
	b.Run("boltstore", func(b *testing.B) {
		s, err := boltstore.Open(filepath.Join(b.TempDir(), "idm.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close() })
		run(b, s, s)
	})
}
