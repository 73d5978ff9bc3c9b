package idm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
	"github.com/c3-pro/idm/qrpng"
)

// ExampleNewHandler wires the IDM API with package auth (staff tokens and
// link tokens) on one mux, then creates and lists a subject as the frontend
// does.
func ExampleNewHandler() {
	ctx := context.Background()
	now := func() time.Time { return time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC) }
	store := memstore.New()

	key, err := auth.NewHMACKey([]byte("an example secret of at least 32 bytes"))
	if err != nil {
		log.Fatal(err)
	}
	keys, err := auth.NewKeySet(key)
	if err != nil {
		log.Fatal(err)
	}
	// A low bcrypt cost keeps the example fast; production keeps the default.
	passwords, err := auth.NewPasswords(auth.PasswordConfig{Cost: 4})
	if err != nil {
		log.Fatal(err)
	}
	authH, err := auth.New(auth.Config{Store: store, Keys: keys, Passwords: passwords, Now: now})
	if err != nil {
		log.Fatal(err)
	}
	api, err := idm.NewHandler(idm.Config{
		Store:        store,
		LinkTokens:   authH.LinkTokens(),
		Authenticate: authH.Require, // staff routes only; POST /establish takes a link JWT
		Now:          now,
		QRCode:       func(text string) ([]byte, error) { return qrpng.Encode(text) },
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := idm.NewMux()
	authH.Install(mux.Handle)
	api.Install(mux.Handle)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	hash, err := passwords.Hash(ctx, "kettle-orbit-lantern-9")
	if err != nil {
		log.Fatal(err)
	}
	staff := idm.User{ID: idm.NewID(), Username: "staff@example.org", PasswordHash: hash, Created: now(), Changed: now()}
	if err := store.CreateUser(ctx, staff); err != nil {
		log.Fatal(err)
	}
	// The frontend logs in (POST /auth) and sends the token it gets.
	resp, err := http.Post(srv.URL+"/auth", "application/json",
		strings.NewReader(`{"username": "staff@example.org", "password": "kettle-orbit-lantern-9"}`))
	if err != nil {
		log.Fatal(err)
	}
	var login struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()
	if err != nil {
		log.Fatal(err)
	}
	token := login.AccessToken
	call := func(method, path, body string) {
		req, _ := http.NewRequestWithContext(ctx, method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "JWT "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := srv.Client().Do(req)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Print(resp.StatusCode, " ", string(b))
	}
	call("POST", "/subject", `{"sssid": "S-1", "name": "Alice", "bday": "1980-05-17", "arm": "B"}`)
	call("GET", "/subject?offset=0&perpage=10&ordercol=name&orderdir=ASC", "")
	call("GET", "/subject/S-2", "")
	// Output:
	// 201 {"data":{"sssid":"S-1","site":"main","name":"Alice","bday":"1980-05-17","created":"2026-11-29T12:00:00.000000Z","changed":"2026-11-29T12:00:00.000000Z","arm":"B"}}
	// 200 {"data":[{"sssid":"S-1","site":"main","name":"Alice","bday":"1980-05-17","created":"2026-11-29T12:00:00.000000Z","changed":"2026-11-29T12:00:00.000000Z","arm":"B"}],"total":1}
	// 404 {"error":{"status":404,"message":"Not Found"}}
}
