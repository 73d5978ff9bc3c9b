package users_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm/memstore"
	"github.com/c3-pro/idm/users"
)

func TestNewConfig(t *testing.T) {
	pw, err := auth.NewPasswords(auth.PasswordConfig{Cost: 4})
	if err != nil {
		t.Fatal(err)
	}
	require := func(next http.Handler) http.Handler { return next }
	valid := func() users.Config {
		return users.Config{Store: memstore.New(), Passwords: pw, Authenticate: require}
	}
	for _, tc := range []struct {
		name   string
		change func(c *users.Config)
		err    string // "" for success
	}{
		{"valid", func(*users.Config) {}, ""},
		{"trusted origin", func(c *users.Config) { c.TrustedOrigins = []string{"https://idm.example.org"} }, ""},
		{"no store", func(c *users.Config) { c.Store = nil }, "Store"},
		{"no passwords", func(c *users.Config) { c.Passwords = nil }, "Passwords"},
		{"no authenticate", func(c *users.Config) { c.Authenticate = nil }, "Authenticate"},
		{"negative body limit", func(c *users.Config) { c.MaxBodyBytes = -1 }, "MaxBodyBytes"},
		{"throttling", func(c *users.Config) { c.MaxFailures, c.FailureWindow = 3, time.Minute }, ""},
		{"negative max failures", func(c *users.Config) { c.MaxFailures = -1 }, "MaxFailures"},
		{"negative failure window", func(c *users.Config) { c.FailureWindow = -time.Second }, "FailureWindow"},
		{"bad trusted origin", func(c *users.Config) { c.TrustedOrigins = []string{"idm.example.org/path"} }, "trusted origin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.change(&c)
			h, err := users.New(c)
			switch {
			case tc.err == "" && (err != nil || h == nil):
				t.Errorf("New: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("New: %v; want an error about %s", err, tc.err)
			}
		})
	}
}

// TestInstall checks that Install registers the same routes that the
// handler serves, on any mux.
func TestInstall(t *testing.T) {
	f := newFixture(t)
	var patterns []string
	f.users.Install(func(p string, _ http.Handler) { patterns = append(patterns, p) })
	want := []string{"GET /init", "POST /init", "POST /user", "GET /user", "DELETE /user", "GET /user/me",
		"POST /user/me/totp", "DELETE /user/me/totp", "POST /user/me/totp/confirm",
		"GET /user/{id}", "PUT /user/{id}", "DELETE /user/{id}"}
	if strings.Join(patterns, ",") != strings.Join(want, ",") {
		t.Errorf("patterns %q, want %q", patterns, want)
	}
	// Served on its own, the handler answers unknown paths with JSON.
	srv := httptestServer(t, f.users)
	res := doOn(t, srv.Client(), srv.URL, request{method: "GET", path: "/nope"})
	if res.status != http.StatusNotFound || res.message(t) != "Not Found" {
		t.Errorf("unknown path: %d %s", res.status, res.body)
	}
}
