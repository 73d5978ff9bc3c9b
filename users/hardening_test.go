package users_test

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/boltstore"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/internal/testmongo"
	"github.com/c3-pro/idm/mongostore"
	"github.com/c3-pro/idm/users"
)

// TestMain stops the embedded FerretDB that the mongostore subtests start.
func TestMain(m *testing.M) {
	code := m.Run()
	testmongo.Stop()
	os.Exit(code)
}

// onRealStores runs fn as a subtest on a fresh boltstore (a file in
// t.TempDir) and a fresh mongostore (a database of the embedded FerretDB,
// or of $IDM_TEST_MONGO_URI).
func onRealStores(t *testing.T, fn func(t *testing.T, s idm.Store)) {
	t.Helper()
	t.Run("boltstore", func(t *testing.T) {
		s, err := boltstore.Open(filepath.Join(t.TempDir(), "idm.db"))
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		fn(t, s)
	})
	t.Run("mongostore", func(t *testing.T) {
		_, db := testmongo.DB(t)
		s, err := mongostore.New(t.Context(), db)
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		fn(t, s)
	})
}

// Every spelling of a username that normalises to the same name finds the
// same account at POST /auth and counts against the same login-failure
// counter: decomposed accents, upper case, a dotted capital I.
func TestLoginFindsAndThrottlesEverySpellingOfAName(t *testing.T) {
	onRealStores(t, func(t *testing.T, s idm.Store) {
		e := newEnvOn(t, s)
		admin := e.addUser("admin@example.org", true)
		for _, name := range []string{"i\u0307x@example.org", "jos\u00e9@example.org"} {
			res := e.do(request{method: "POST", path: "/user", token: admin.token, body: map[string]any{"username": name, "password": testPassword}})
			require.Equal(t, http.StatusCreated, res.status, "%s", res.body)
		}

		// A decomposed é finds the account stored with the composed one...
		status, _ := e.login("jose\u0301@example.org", testPassword)
		require.Equal(t, http.StatusOK, status, "a decomposed spelling does not log in")
		// ... and its failures count against it.
		for range auth.DefaultMaxFailures {
			status, _ := e.login("JOSE\u0301@example.org", "wrong password")
			require.Equal(t, http.StatusUnauthorized, status)
		}
		status, _ = e.login("jos\u00e9@example.org", testPassword)
		assert.Equal(t, http.StatusTooManyRequests, status, "failures under a decomposed spelling were not counted")

		for range auth.DefaultMaxFailures {
			status, _ := e.login("i\u0307x@example.org", "wrong password")
			require.Equal(t, http.StatusUnauthorized, status)
		}
		for _, spelling := range []string{"I\u0307x@example.org", "\u0130x@example.org", "i\u0307X@EXAMPLE.ORG", " i\u0307x@example.org "} {
			status, _ := e.login(spelling, testPassword)
			assert.Equal(t, http.StatusTooManyRequests, status, "%q escaped the throttle of i\u0307x@example.org", spelling)
		}
		// An admin's unlock clears the one counter of all spellings.
		u, ok := e.userByName("i\u0307x@example.org")
		require.True(t, ok)
		res := e.do(request{method: "PUT", path: "/user/" + u.ID, token: admin.token, body: map[string]any{"unlock": true}})
		require.Equal(t, http.StatusOK, res.status, "%s", res.body)
		status, _ = e.login("\u0130X@example.org", testPassword)
		assert.Equal(t, http.StatusOK, status)
	})
}

// New usernames with invisible characters, mixed scripts or fullwidth
// lookalikes of a taken name are refused; mixed scripts may be allowed by
// configuration, invisible characters never.
func TestNewUsernamesRefuseInvisibleAndLookalikeCharacters(t *testing.T) {
	onRealStores(t, func(t *testing.T, s idm.Store) {
		for _, allowMixed := range []bool{false, true} {
			e := newEnvOn(t, s, func(c *users.Config) { c.UsernameRule.AllowMixedScripts = allowMixed })
			admin := e.addUser("admin-"+idm.NewID()[:6]+"@example.org", true)
			root := "root-" + idm.NewID()[:6]
			res := e.do(request{method: "POST", path: "/user", token: admin.token, body: map[string]any{"username": root + "@example.org", "password": testPassword}})
			require.Equal(t, http.StatusCreated, res.status, "%s", res.body)
			mixed := http.StatusBadRequest
			if allowMixed {
				mixed = http.StatusCreated
			}
			for _, tc := range []struct {
				name, username string
				want           int
				msg            string
			}{
				{"zero-width space at the end", root + "@example.org\u200b", http.StatusBadRequest, "invisible"},
				{"zero-width space inside", "ro\u200b" + root[2:] + "@example.org", http.StatusBadRequest, "invisible"},
				{"right-to-left override", root + "\u202e@example.org", http.StatusBadRequest, "invisible"},
				{"fullwidth letter", "\uff52" + root[1:] + "@example.org", http.StatusConflict, "taken"},
				{"fullwidth capital", "\uff32" + root[1:] + "@example.org", http.StatusConflict, "taken"},
				{"Cyrillic o", "r\u043e" + root[2:] + "@example.org", mixed, "mixes the scripts"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					res := e.do(request{method: "POST", path: "/user", token: admin.token, body: map[string]any{"username": tc.username, "password": testPassword}})
					require.Equal(t, tc.want, res.status, "%s", res.body)
					if tc.want != http.StatusCreated {
						assert.Contains(t, res.message(t), tc.msg)
					}
				})
			}
		}
	})
}

// Users stored before the current rule - with names that it refuses, or
// not in today's normal form - can still log in under the names they have
// always used, are throttled under one key, and can be found and deleted by
// an admin.
func TestExistingUsersWithRefusedNamesCanStillLogIn(t *testing.T) {
	onRealStores(t, func(t *testing.T, s idm.Store) {
		e := newEnvOn(t, s)
		admin := e.addUser("admin@example.org", true)
		legacy := []string{
			"r\u043eot@example.org",         // mixed scripts
			"ro\u200bot@example.org",        // an invisible character
			"\uff52oot@example.org",         // fullwidth, as the old rule stored it
			"jose\u0301@example.org",        // decomposed, as migrate stored it
			"li\u03bfn@example.org",         // Greek omicron
			"m\u00fcller\u202e@example.org", // a bidi control
		}
		for _, name := range legacy {
			e.addUser(name, false)
		}
		for _, name := range legacy {
			status, _ := e.login(name, testPassword)
			assert.Equal(t, http.StatusOK, status, "%q cannot log in", name)
			res := e.do(request{method: "GET", path: "/user/" + url.PathEscape(name), token: admin.token})
			assert.Equal(t, http.StatusOK, res.status, "%q not found: %s", name, res.body)
		}
		// The fullwidth account answers to its other spellings too, and
		// counts their failures under one key.
		for range auth.DefaultMaxFailures {
			status, _ := e.login("\uff32OOT@example.org", "wrong password")
			require.Equal(t, http.StatusUnauthorized, status)
		}
		status, _ := e.login("\uff52oot@example.org", testPassword)
		assert.Equal(t, http.StatusTooManyRequests, status)

		res := e.do(request{method: "DELETE", path: "/user", token: admin.token, body: map[string]any{"username": "ro\u200bot@example.org"}})
		assert.Equal(t, http.StatusNoContent, res.status, "%s", res.body)
		_, ok := e.userByName("ro\u200bot@example.org")
		assert.False(t, ok, "not deleted")
	})
}
