package users_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
	"github.com/c3-pro/idm/users"
)

// ExampleNew mounts the users handler next to the auth handler on one mux,
// creates the first admin through /init, logs in and reads the caller's own
// record.
func ExampleNew() {
	ctx := context.Background()
	store := memstore.New()
	// A low bcrypt cost keeps the example fast; production keeps the default.
	passwords, err := auth.NewPasswords(auth.PasswordConfig{Cost: bcrypt.MinCost})
	if err != nil {
		log.Fatal(err)
	}
	keys, err := auth.LoadOrCreateKeys(ctx, store, time.Now())
	if err != nil {
		log.Fatal(err)
	}
	authH, err := auth.New(auth.Config{Store: store, Keys: keys, Passwords: passwords})
	if err != nil {
		log.Fatal(err)
	}
	usersH, err := users.New(users.Config{Store: store, Passwords: passwords, Authenticate: authH.Require})
	if err != nil {
		log.Fatal(err)
	}
	mux := idm.NewMux()
	authH.Install(mux.Handle)
	usersH.Install(mux.Handle)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	credentials := `{"username": "Admin@Example.org", "password": "correct horse battery staple"}`
	res, err := http.Post(srv.URL+"/init", "application/json", strings.NewReader(credentials))
	if err != nil {
		log.Fatal(err)
	}
	res.Body.Close()
	fmt.Println("POST /init:", res.Status)

	res, err = http.Post(srv.URL+"/init", "application/json", strings.NewReader(credentials))
	if err != nil {
		log.Fatal(err)
	}
	res.Body.Close()
	fmt.Println("POST /init again:", res.Status)

	res, err = http.Post(srv.URL+"/auth", "application/json", strings.NewReader(credentials))
	if err != nil {
		log.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()
	if err != nil {
		log.Fatal(err)
	}

	req, _ := http.NewRequest("GET", srv.URL+"/user/me", nil)
	req.Header.Set("Authorization", "JWT "+tok.AccessToken)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	var me idm.DataBody[idm.UserView]
	err = json.NewDecoder(res.Body).Decode(&me)
	res.Body.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("GET /user/me:", res.Status, me.Data.Username, "admin:", me.Data.Admin)
	// Output:
	// POST /init: 201 Created
	// POST /init again: 409 Conflict
	// GET /user/me: 200 OK admin@example.org admin: true
}
