package auth_test

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

	"golang.org/x/crypto/bcrypt"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
)

// exampleSetup returns a store with one user and a handler on it.
func exampleSetup(ctx context.Context) (*memstore.Store, *auth.Handler) {
	store := memstore.New()
	// Production keeps the default cost (12); the example is in a hurry.
	pw, err := auth.NewPasswords(auth.PasswordConfig{Cost: bcrypt.MinCost})
	if err != nil {
		log.Fatal(err)
	}
	hash, err := pw.Hash(ctx, "kettle-orbit-lantern-9")
	if err != nil {
		log.Fatal(err)
	}
	now := time.Date(2026, time.March, 2, 9, 30, 0, 0, time.UTC)
	err = store.CreateUser(ctx, idm.User{ID: idm.NewID(), Username: "alice@example.org", PasswordHash: hash, Created: now, Changed: now})
	if err != nil {
		log.Fatal(err)
	}
	// With no secret configured, a random key is generated once and kept in
	// the store; auth.NewHMACKey takes a configured secret instead.
	keys, err := auth.LoadOrCreateKeys(ctx, store, now)
	if err != nil {
		log.Fatal(err)
	}
	h, err := auth.New(auth.Config{Store: store, Keys: keys, Passwords: pw})
	if err != nil {
		log.Fatal(err)
	}
	return store, h
}

// ExampleNew mounts the auth routes on a host mux and logs in.
func ExampleNew() {
	ctx := context.Background()
	_, h := exampleSetup(ctx)

	mux := idm.NewMux()
	h.Install(mux.Handle) // POST /auth, POST /logout, GET /.well-known/jwks.json
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/auth", "application/json",
		strings.NewReader(`{"username": "Alice@Example.org", "password": "kettle-orbit-lantern-9"}`))
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.StatusCode, tok.TokenType, tok.ExpiresIn, strings.Count(tok.AccessToken, "."))

	resp, err = http.Post(srv.URL+"/auth", "application/json",
		strings.NewReader(`{"username": "alice@example.org", "password": "guess"}`))
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(resp.StatusCode, " ", string(body))
	// Output:
	// 200 Bearer 43200 2
	// 401 {"error":{"status":401,"message":"invalid credentials"}}
}

// ExampleHandler_Require guards a handler with staff-token authentication
// and reads the principal it puts into the request context; the token comes
// from a login (POST /auth).
func ExampleHandler_Require() {
	ctx := context.Background()
	_, h := exampleSetup(ctx)

	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := idm.PrincipalFrom(r.Context())
		if !ok { // fail closed if Require was forgotten
			idm.WriteError(w, r, nil, idm.E(idm.ErrUnauthorized, "Authorization Required"))
			return
		}
		fmt.Fprintf(w, "hello %s\n", p.Username)
	})
	mux := idm.NewMux()
	h.Install(mux.Handle) // POST /auth gives the token
	mux.Handle("GET /hello", h.Require(hello))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	get := func(authorization string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/hello", nil)
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Print(resp.StatusCode, " ", string(body))
	}

	resp, err := http.Post(srv.URL+"/auth", "application/json",
		strings.NewReader(`{"username": "alice@example.org", "password": "kettle-orbit-lantern-9"}`))
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var login struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&login); err != nil {
		log.Fatal(err)
	}
	token := login.AccessToken
	get("")
	get("JWT " + token)
	get("Bearer " + token)
	get("Bearer not-a-token")
	// Output:
	// 401 {"error":{"status":401,"message":"Authorization Required"}}
	// 200 hello alice@example.org
	// 200 hello alice@example.org
	// 401 {"error":{"status":401,"message":"Invalid token"}}
}

// ExampleNewLinkKey configures the link secret of the published C3-PRO app
// build next to a strong staff secret: link tokens are HS256 with the
// app's secret and issuer, staff tokens keep their own key.
func ExampleNewLinkKey() {
	ctx := context.Background()
	store := memstore.New()
	staff, err := auth.NewHMACKey([]byte("q3JX8vN2pL5sT9wY4bR7cF1hK6mD0gZaUeIoPtWnQxVy"))
	if err != nil {
		log.Fatal(err)
	}
	keys, err := auth.NewKeySet(staff)
	if err != nil {
		log.Fatal(err)
	}
	link, err := auth.NewLinkKey([]byte("super-duper-secret"))
	if err != nil {
		log.Fatal(err)
	}
	weak, _ := link.Weak()
	h, err := auth.New(auth.Config{
		Store: store, Keys: keys, LinkKeys: []*auth.LinkKey{link},
		LinkIssuer: "https://idm.c3-pro.io/", LinkAudience: "https://idm.example.org",
	})
	if err != nil {
		log.Fatal(err)
	}
	exp := time.Now().Add(24 * time.Hour)
	_, c, err := h.LinkTokens().IssueLinkToken(ctx, idm.LinkClaims{ID: idm.NewID(), Subject: "Alice", Birthdate: "1980-05-17", Expires: exp})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(weak, c.Algorithm, c.Issuer, c.Audience)
	// Output: true HS256 https://idm.c3-pro.io/ https://idm.example.org
}
