package users_test

import (
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/internal/smtptest"
	"github.com/c3-pro/idm/resetflow"
	"github.com/c3-pro/idm/users"
)

// mailEnv is an env whose users handler invites through a real reset flow
// (mounted on the same server) that mails to an SMTP test server.
type mailEnv struct {
	*env
	mail *smtptest.Server
}

// newMailEnvOn starts a mailEnv on store s.
func newMailEnvOn(t *testing.T, s idm.Store) *mailEnv {
	t.Helper()
	pw, err := auth.NewPasswords(auth.PasswordConfig{Cost: bcrypt.MinCost})
	require.NoError(t, err)
	keys, err := auth.LoadOrCreateKeys(t.Context(), s, time.Now())
	require.NoError(t, err)
	ah, err := auth.New(auth.Config{Store: s, Keys: keys, Passwords: pw, RateLimit: rate.Inf})
	require.NoError(t, err)
	mail := smtptest.Start(t)
	mailer, err := resetflow.NewSMTPMailer(mail.URL(), "IDM <idm@example.org>", resetflow.WithTimeout(10*time.Second))
	require.NoError(t, err)
	accounts, err := users.NewService(users.ServiceConfig{Store: s, Passwords: pw})
	require.NoError(t, err)
	rh, err := resetflow.New(resetflow.Config{Store: s, Accounts: accounts, Passwords: pw, Mailer: mailer, PublicURL: "https://idm.example.org"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rh.Close() })
	accounts.SetMail(rh, rh)
	uh, err := users.New(users.Config{Store: s, Passwords: pw, Authenticate: ah.Require, Limiter: unlimited{},
		Accounts: accounts})
	require.NoError(t, err)
	mux := idm.NewMux()
	ah.Install(mux.Handle)
	uh.Install(mux.Handle)
	rh.Install(mux.Handle)
	srv := httptestServer(t, mux)
	return &mailEnv{env: &env{t: t, store: s, auth: ah, pw: pw, users: uh, srv: srv, client: srv.Client()}, mail: mail}
}

var resetLinkRE = regexp.MustCompile(`/reset\?k=([A-Za-z0-9_-]+)`)

// linkKey waits for the one mail with a link to the address to, and
// returns the link's token.
func (e *mailEnv) linkKey(to string) string {
	e.t.Helper()
	deadline := time.Now().Add(smtptest.DefaultWait)
	for {
		var keys []string
		for _, m := range e.mail.MessagesTo(to) {
			if k := resetLinkRE.FindStringSubmatch(m.Text); k != nil {
				keys = append(keys, k[1])
			}
		}
		require.LessOrEqual(e.t, len(keys), 1, "several links mailed to %s", to)
		if len(keys) == 1 {
			return keys[0]
		}
		require.True(e.t, time.Now().Before(deadline), "no link mailed to %s", to)
		time.Sleep(10 * time.Millisecond)
	}
}

// reset posts a new password with a link token as JSON.
func (e *mailEnv) reset(key string) response {
	e.t.Helper()
	return e.do(request{method: "POST", path: "/reset", body: map[string]string{"key": key, "password": "a new password for this test"}})
}

// A reset or invitation link dies with the user's tokens: disabling a user
// (and enabling them again) or changing their role leaves no link usable,
// nor does a logout.
func TestLinksDoNotSurviveRevocation(t *testing.T) {
	onRealStores(t, func(t *testing.T, s idm.Store) {
		e := newMailEnvOn(t, s)
		admin := e.addUser("admin@example.org", true)
		// revoke does what revokes the tokens of u.
		for _, tc := range []struct {
			name   string
			revoke func(u idm.User)
		}{
			{"disable and enable", func(u idm.User) {
				for _, disabled := range []bool{true, false} {
					res := e.do(request{method: "PUT", path: "/user/" + u.ID, token: admin.token, body: map[string]any{"disabled": disabled}})
					require.Equal(t, http.StatusOK, res.status, "%s", res.body)
				}
			}},
			{"admin role given and taken", func(u idm.User) {
				for _, a := range []bool{true, false} {
					res := e.do(request{method: "PUT", path: "/user/" + u.ID, token: admin.token, body: map[string]any{"admin": a}})
					require.Equal(t, http.StatusOK, res.status, "%s", res.body)
				}
			}},
		} {
			t.Run(tc.name+" after an invitation", func(t *testing.T) {
				name := "invited-" + idm.NewID()[:8] + "@example.org"
				res := e.do(request{method: "POST", path: "/user", token: admin.token, body: map[string]any{"username": name}})
				require.Equal(t, http.StatusCreated, res.status, "%s", res.body)
				key := e.linkKey(name)
				u, ok := e.userByName(name)
				require.True(t, ok)
				tc.revoke(u)
				res = e.reset(key)
				assert.Equal(t, http.StatusBadRequest, res.status, "the invitation still set a password: %s", res.body)
			})
			t.Run(tc.name+" after /iforgot", func(t *testing.T) {
				u := e.addUser("forgot-"+idm.NewID()[:8]+"@example.org", false).user
				res := e.do(request{method: "POST", path: "/iforgot", body: map[string]string{"username": u.Username}})
				require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
				key := e.linkKey(u.Username)
				tc.revoke(u)
				res = e.reset(key)
				assert.Equal(t, http.StatusBadRequest, res.status, "the reset link still set a password: %s", res.body)
			})
		}
		t.Run("logout after /iforgot", func(t *testing.T) {
			a := e.addUser("logout-"+idm.NewID()[:8]+"@example.org", false)
			res := e.do(request{method: "POST", path: "/iforgot", body: map[string]string{"username": a.user.Username}})
			require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
			key := e.linkKey(a.user.Username)
			res = e.do(request{method: "POST", path: "/logout", token: a.token})
			require.Equal(t, http.StatusNoContent, res.status, "%s", res.body)
			res = e.reset(key)
			assert.Equal(t, http.StatusBadRequest, res.status, "the reset link survived a logout: %s", res.body)
		})
		t.Run("a link with no revocation still works", func(t *testing.T) {
			u := e.addUser("kept-"+idm.NewID()[:8]+"@example.org", false).user
			res := e.do(request{method: "POST", path: "/iforgot", body: map[string]string{"username": u.Username}})
			require.Equal(t, http.StatusAccepted, res.status, "%s", res.body)
			res = e.reset(e.linkKey(u.Username))
			assert.Equal(t, http.StatusOK, res.status, "%s", res.body)
		})
	})
}

// Changing your own password takes your current password, admins
// included: a stolen admin token alone cannot take the admin's account
// over. An admin still sets another user's password without it.
func TestOwnPasswordNeedsCurrentPasswordEvenForAdmins(t *testing.T) {
	onRealStores(t, func(t *testing.T, s idm.Store) {
		e := newEnvOn(t, s)
		admin := e.addUser("admin@example.org", true)
		other := e.addUser("other@example.org", false)
		const newPassword = "another fine password"
		for _, tc := range []struct {
			name string
			path string
			body map[string]any
			want int
		}{
			{"own, as me, without current", "/user/me", map[string]any{"password": newPassword}, http.StatusBadRequest},
			{"own, by ID, without current", "/user/" + admin.user.ID, map[string]any{"password": newPassword}, http.StatusBadRequest},
			{"own, by username, without current", "/user/" + url.PathEscape("Admin@Example.org"), map[string]any{"password": newPassword}, http.StatusBadRequest},
			{"own, wrong current", "/user/me", map[string]any{"password": newPassword, "current_password": "not the password"}, http.StatusForbidden},
			{"another user's, without current", "/user/" + other.user.ID, map[string]any{"password": newPassword}, http.StatusOK},
			{"own, right current", "/user/me", map[string]any{"password": newPassword, "current_password": testPassword}, http.StatusOK},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before, _ := e.user(admin.user.ID)
				res := e.do(request{method: "PUT", path: tc.path, token: admin.token, body: tc.body})
				require.Equal(t, tc.want, res.status, "%s", res.body)
				if tc.want == http.StatusBadRequest {
					assert.Contains(t, res.message(t), "current_password is required")
				}
				after, _ := e.user(admin.user.ID)
				if tc.path == "/user/"+other.user.ID || tc.want != http.StatusOK {
					assert.Equal(t, before.PasswordHash, after.PasswordHash, "the admin's password changed")
				}
			})
		}
		status, _ := e.login("other@example.org", newPassword)
		assert.Equal(t, http.StatusOK, status, "the admin did not set the other user's password")
		status, _ = e.login("admin@example.org", newPassword)
		assert.Equal(t, http.StatusOK, status, "the admin did not change their own password")
	})
}
