package resetflow_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
	"github.com/c3-pro/idm/resetflow"
	"github.com/c3-pro/idm/users"
	"golang.org/x/crypto/bcrypt"
)

// printMailer prints the mails it is given instead of sending them.
type printMailer struct{}

func (printMailer) Send(_ context.Context, m resetflow.Message) error {
	link := linkRE.FindString(m.Text)
	fmt.Printf("mail to %s: %q, link %s...\n", m.To, m.Subject, link[:len(link)-43])
	return nil
}

func ExampleNew() {
	ctx := context.Background()
	store := memstore.New()
	defer store.Close()
	_ = store.CreateUser(ctx, idm.User{ID: idm.NewID(), Username: "alice@example.org"})
	passwords, _ := auth.NewPasswords(auth.PasswordConfig{Cost: bcrypt.MinCost}) // production: cost 12 or more

	// Passwords set through links go through the user-lifecycle service.
	accounts, err := users.NewService(users.ServiceConfig{Store: store, Passwords: passwords})
	if err != nil {
		fmt.Println(err)
		return
	}
	h, err := resetflow.New(resetflow.Config{
		Store:     store,
		Accounts:  accounts,
		Passwords: passwords,
		Mailer:    printMailer{}, // production: resetflow.NewSMTPMailer(...)
		PublicURL: "https://idm.example.org",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	accounts.SetMail(h, h) // invitations and password-changed notices
	mux := http.NewServeMux()
	h.Install(mux.Handle)

	for _, username := range []string{"alice@example.org", "mallory@example.org"} {
		req := httptest.NewRequest(http.MethodPost, "/iforgot", strings.NewReader(url.Values{"username": {username}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Host = "evil.example" // links never use the request's host
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		h.Wait() // the mail goes out in the background
		fmt.Println(rec.Code, strings.Contains(rec.Body.String(), "If the address is known, a link is on its way."))
	}
	_ = h.Close()
	// Output:
	// mail to alice@example.org: "C3-PRO IDM: set a new password", link https://idm.example.org/reset?k=...
	// 200 true
	// 200 true
}
