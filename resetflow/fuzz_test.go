package resetflow_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
	"github.com/c3-pro/idm/resetflow"
	"github.com/c3-pro/idm/users"
	"golang.org/x/crypto/bcrypt"
)

// The handler is what package users expects for invitations and notices.
var (
	_ users.Inviter  = (*resetflow.Handler)(nil)
	_ users.Notifier = (*resetflow.Handler)(nil)
)

// FuzzRequests sends arbitrary bodies, content types and Accept headers to
// every route: no request may panic or get a 5xx.
func FuzzRequests(f *testing.F) {
	for _, s := range []struct {
		route, ctype, accept, body string
	}{
		{"POST /iforgot", "application/x-www-form-urlencoded", "", "username=alice%40example.org"},
		{"POST /iforgot", "application/json", "", `{"username":"alice@example.org"}`},
		{"POST /reset", "application/x-www-form-urlencoded", "text/html", "key=abc&pass1=x&pass2=y"},
		{"POST /reset", "application/json", "application/json", `{"key":"` + strings.Repeat("A", 43) + `","password":"long enough pw"}`},
		{"GET /reset?k=", "", "application/json;q=0.5, */*", ""},
		{"POST /reset", "multipart/form-data; boundary=x", "", "--x\r\n\r\n--x--"},
		{"POST /iforgot", "application/json", "", `{"username":[[[[[[[[]]]]]]]]}`},
	} {
		f.Add(s.route, s.ctype, s.accept, s.body)
	}
	store := memstore.New()
	f.Cleanup(func() { _ = store.Close() })
	_ = store.CreateUser(context.Background(), idm.User{ID: idm.NewID(), Username: "alice@example.org"})
	pw, err := auth.NewPasswords(auth.PasswordConfig{Cost: bcrypt.MinCost})
	if err != nil {
		f.Fatal(err)
	}
	h, err := resetflow.New(resetflow.Config{Store: store, Accounts: newAccounts(f, store, pw, nil), Passwords: pw, Mailer: &captureMailer{}, PublicURL: publicURL, MaxRequests: 1 << 30, Limiter: unlimited{}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = h.Close() })
	f.Fuzz(func(t *testing.T, route, ctype, accept, body string) {
		method, target, ok := strings.Cut(route, " ")
		if !ok || (method != http.MethodGet && method != http.MethodPost) || !strings.HasPrefix(target, "/") {
			return
		}
		req, err := http.NewRequest(method, "http://idm.example.org"+target, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Accept", accept)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q (Content-Type %q, Accept %q) = %d: %s", method, target, ctype, accept, rec.Code, rec.Body)
		}
		h.Wait()
	})
}
