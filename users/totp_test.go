package users_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
	"github.com/c3-pro/idm/internal/qrtest"
	"github.com/c3-pro/idm/internal/testclock"
	"github.com/c3-pro/idm/users"
)

// onAllStores runs fn on a memstore, a boltstore and a mongostore.
func onAllStores(t *testing.T, fn func(t *testing.T, s idm.Store)) {
	t.Helper()
	t.Run("memstore", func(t *testing.T) { fn(t, memstore.New()) })
	onRealStores(t, fn)
}

// totpEnv is an env whose auth and users handlers share a settable clock,
// with a stand-in for the other APIs (GET /subject) behind the same
// staff-token middleware.
type totpEnv struct {
	*env
	clock *testclock.Clock
}

func newTOTPEnv(t *testing.T, s idm.Store, requireTOTP bool) *totpEnv {
	t.Helper()
	// In the middle of a step, so that a few seconds do not change it.
	clock := testclock.New(time.Now().Truncate(30 * time.Second).Add(10 * time.Second))
	pw, err := auth.NewPasswords(auth.PasswordConfig{Cost: bcrypt.MinCost})
	require.NoError(t, err)
	keys, err := auth.LoadOrCreateKeys(t.Context(), s, time.Now())
	require.NoError(t, err)
	ah, err := auth.New(auth.Config{Store: s, Keys: keys, Passwords: pw, RateLimit: rate.Inf, Now: clock.Now,
		RequireTOTP: requireTOTP})
	require.NoError(t, err)
	uh, err := users.New(users.Config{Store: s, Passwords: pw, Authenticate: ah.Require, Limiter: unlimited{}, Now: clock.Now})
	require.NoError(t, err)
	mux := idm.NewMux()
	ah.Install(mux.Handle)
	uh.Install(mux.Handle)
	mux.Handle("GET /subject", ah.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		idm.WriteJSON(w, http.StatusOK, map[string]any{"data": []any{}})
	})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &totpEnv{env: &env{t: t, store: s, auth: ah, pw: pw, users: uh, srv: srv, client: srv.Client()}, clock: clock}
}

// loginOTP posts username, password and (unless "") otp to /auth.
func (e *totpEnv) loginOTP(username, password, otp string) response {
	e.t.Helper()
	body := map[string]string{"username": username, "password": password}
	if otp != "" {
		body["otp"] = otp
	}
	return e.do(request{method: "POST", path: "/auth", body: body})
}

// token returns the access token of a successful login.
func token(t *testing.T, res response) string {
	t.Helper()
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	res.json(t, &tok)
	return tok.AccessToken
}

// code is the one-time code of secret at the env's clock shifted by steps.
func (e *totpEnv) code(secret string, steps int) string {
	e.t.Helper()
	c, err := totp.GenerateCode(secret, e.clock.Now().Add(time.Duration(steps)*30*time.Second))
	require.NoError(e.t, err)
	return c
}

// wrongCode is a six-digit code that is none of secret's within the skew.
func (e *totpEnv) wrongCode(secret string) string {
	e.t.Helper()
	for i := 0; ; i++ {
		c := fmt.Sprintf("%06d", i)
		if c != e.code(secret, -1) && c != e.code(secret, 0) && c != e.code(secret, 1) {
			return c
		}
	}
}

// enrol starts and confirms a second factor for acc and returns its secret
// and recovery codes. The confirming code's step is then the last accepted.
func (e *totpEnv) enrol(acc account) (string, []string) {
	e.t.Helper()
	res := e.do(request{method: "POST", path: "/user/me/totp", token: acc.token})
	require.Equal(e.t, http.StatusCreated, res.status, "%s", res.body)
	var en struct {
		Data struct {
			Secret string `json:"secret"`
			URI    string `json:"uri"`
			QRPNG  string `json:"qr_png"`
		} `json:"data"`
	}
	res.json(e.t, &en)
	res = e.do(request{method: "POST", path: "/user/me/totp/confirm", token: acc.token,
		body: map[string]string{"code": e.code(en.Data.Secret, 0)}})
	require.Equal(e.t, http.StatusOK, res.status, "%s", res.body)
	var conf struct {
		Data struct {
			RecoveryCodes []string `json:"recovery_codes"`
		} `json:"data"`
	}
	res.json(e.t, &conf)
	return en.Data.Secret, conf.Data.RecoveryCodes
}

// checkNoSecretAudited fails t if any audit record of the store holds
// secret (in any spelling of its case) or one of codes.
func checkNoSecretAudited(t *testing.T, s idm.Store, secret string, codes ...string) {
	t.Helper()
	evs, _, err := s.ListAudits(t.Context(), idm.AuditFilter{})
	require.NoError(t, err)
	require.NotEmpty(t, evs)
	for _, ev := range evs {
		rec := strings.ToUpper(strings.Join([]string{ev.Action, ev.Actor, string(ev.Old), string(ev.New)}, " "))
		for _, s := range append([]string{secret}, codes...) {
			assert.NotContains(t, rec, strings.ToUpper(s), "audit record %q", ev.Action)
		}
	}
}

// The whole life of a second factor over HTTP: enrolment (pending, shown
// once with a QR code), a wrong confirmation, the confirmation with the
// recovery codes, logins that need the code, replays refused, a recovery
// code used once; every step audited without the secret.
func TestTOTPEnrolConfirmAndLogin(t *testing.T) {
	onAllStores(t, func(t *testing.T, s idm.Store) {
		e := newTOTPEnv(t, s, false)
		ann := e.addUser("ann@example.org", false)

		res := e.do(request{method: "POST", path: "/user/me/totp", token: ann.token})
		require.Equal(t, http.StatusCreated, res.status, "%s", res.body)
		var en struct {
			Data struct {
				Secret string `json:"secret"`
				URI    string `json:"uri"`
				QRPNG  string `json:"qr_png"`
			} `json:"data"`
		}
		res.json(t, &en)
		first := en.Data.Secret
		require.NotEmpty(t, first)
		u, err := url.Parse(en.Data.URI)
		require.NoError(t, err)
		assert.Equal(t, "otpauth://totp/idm:ann@example.org", u.Scheme+"://"+u.Host+u.Path)
		assert.Equal(t, first, u.Query().Get("secret"))
		assert.Equal(t, "idm", u.Query().Get("issuer"))
		pngBytes, err := base64.StdEncoding.DecodeString(en.Data.QRPNG)
		require.NoError(t, err)
		code, err := qrtest.Decode(pngBytes)
		require.NoError(t, err, "qr_png is a PNG of a QR code")
		assert.Equal(t, en.Data.URI, code.Text, "the QR code holds the URI")

		// A new POST replaces the pending enrolment.
		res = e.do(request{method: "POST", path: "/user/me/totp", token: ann.token})
		require.Equal(t, http.StatusCreated, res.status)
		res.json(t, &en)
		secret := en.Data.Secret
		assert.NotEqual(t, first, secret)
		stored, _ := e.user(ann.user.ID)
		assert.Equal(t, idm.TOTP{Secret: secret}, stored.TOTP, "pending")

		// Pending: logins need no code; the user record says false.
		token(t, e.loginOTP("ann@example.org", testPassword, ""))
		res = e.do(request{method: "GET", path: "/user/me", token: ann.token})
		assert.Contains(t, string(res.body), `"totp":false`)

		// A wrong code (and the old secret's code) is a 400; it stays pending.
		for _, c := range []string{e.wrongCode(secret), e.code(first, 0)} {
			res = e.do(request{method: "POST", path: "/user/me/totp/confirm", token: ann.token, body: map[string]string{"code": c}})
			assert.Equal(t, http.StatusBadRequest, res.status, "%s", res.body)
			assert.Equal(t, "the code is not correct", res.message(t))
		}
		stored, _ = e.user(ann.user.ID)
		assert.False(t, stored.TOTP.Active)

		res = e.do(request{method: "POST", path: "/user/me/totp/confirm", token: ann.token,
			body: map[string]string{"code": e.code(secret, 0)}})
		require.Equal(t, http.StatusOK, res.status, "%s", res.body)
		var conf struct {
			Data struct {
				RecoveryCodes []string `json:"recovery_codes"`
			} `json:"data"`
		}
		res.json(t, &conf)
		recovery := conf.Data.RecoveryCodes
		require.Len(t, recovery, 10)
		stored, _ = e.user(ann.user.ID)
		assert.True(t, stored.TOTP.Active)
		for i, c := range recovery {
			assert.Equal(t, auth.HashRecoveryCode(c), stored.TOTP.Recovery[i], "stored hashed")
		}
		// The token of the enrolment stays valid; the record says true
		// and holds no secret.
		res = e.do(request{method: "GET", path: "/user/me", token: ann.token})
		require.Equal(t, http.StatusOK, res.status)
		assert.Contains(t, string(res.body), `"totp":true`)
		assert.NotContains(t, string(res.body), secret)
		res = e.do(request{method: "POST", path: "/user/me/totp", token: ann.token})
		assert.Equal(t, http.StatusConflict, res.status, "already active")

		// The right password alone gets no token, and says so; a wrong
		// password without a code says nothing about codes.
		res = e.loginOTP("ann@example.org", testPassword, "")
		assert.Equal(t, http.StatusUnauthorized, res.status)
		assert.Equal(t, "one-time code required", res.message(t))
		res = e.loginOTP("ann@example.org", "wrong password!", "")
		assert.Equal(t, http.StatusUnauthorized, res.status)
		assert.Equal(t, "invalid credentials", res.message(t))
		res = e.loginOTP("ann@example.org", "wrong password!", e.code(secret, 1))
		assert.Equal(t, "invalid credentials", res.message(t), "a right code with a wrong password")

		// The confirming code was accepted once already.
		res = e.loginOTP("ann@example.org", testPassword, e.code(secret, 0))
		assert.Equal(t, http.StatusUnauthorized, res.status)
		assert.Equal(t, "invalid credentials", res.message(t))
		// The next step's code (one step of skew) works once.
		next := e.code(secret, 1)
		token(t, e.loginOTP("ann@example.org", testPassword, next))
		res = e.loginOTP("ann@example.org", testPassword, next)
		assert.Equal(t, "invalid credentials", res.message(t), "replay")
		// Two steps later, the code of then works once, an older code never.
		e.clock.Advance(60 * time.Second)
		assert.Equal(t, "invalid credentials", e.loginOTP("ann@example.org", testPassword, e.code(secret, -2)).message(t))
		token(t, e.loginOTP("ann@example.org", testPassword, e.code(secret, 0)))

		// A recovery code works once, in any spelling.
		token(t, e.loginOTP("ann@example.org", testPassword, strings.ToLower(recovery[3])))
		res = e.loginOTP("ann@example.org", testPassword, recovery[3])
		assert.Equal(t, "invalid credentials", res.message(t), "recovery code reused")
		stored, _ = e.user(ann.user.ID)
		assert.Len(t, idm.RecoveryList(stored.TOTP.Recovery), 9)

		assert.Equal(t, []string{users.ActionTOTPEnrol, users.ActionTOTPEnrol, users.ActionTOTPWrongCode, users.ActionTOTPWrongCode,
			users.ActionTOTPConfirm, auth.ActionRecoveryCodeUsed}, e.actions(ann.user.ID))
		checkNoSecretAudited(t, s, secret, recovery...)
		checkNoSecretAudited(t, s, first)
	})
}

// Wrong codes with the right password count toward the account's limit:
// after five, even the right code gets 429.
func TestTOTPWrongCodesAreThrottled(t *testing.T) {
	onAllStores(t, func(t *testing.T, s idm.Store) {
		e := newTOTPEnv(t, s, false)
		ann := e.addUser("ann@example.org", false)
		secret, _ := e.enrol(ann)
		e.clock.Advance(30 * time.Second)
		for i := range auth.DefaultMaxFailures {
			res := e.loginOTP("ann@example.org", testPassword, e.wrongCode(secret))
			require.Equal(t, http.StatusUnauthorized, res.status, "attempt %d", i+1)
			assert.Equal(t, "invalid credentials", res.message(t))
		}
		res := e.loginOTP("ann@example.org", testPassword, e.code(secret, 0))
		assert.Equal(t, http.StatusTooManyRequests, res.status, "%s", res.body)
		assert.NotEmpty(t, res.header.Get("Retry-After"))
		// The window ends: the code works.
		e.clock.Advance(auth.DefaultFailureWindow)
		token(t, e.loginOTP("ann@example.org", testPassword, e.code(secret, 0)))
	})
}

// Of concurrent logins with one code, exactly one gets a token (on
// mongostore: within one process, see mongostore's notes on FerretDB).
func TestTOTPConcurrentLoginsWithOneCode(t *testing.T) {
	onAllStores(t, func(t *testing.T, s idm.Store) {
		e := newTOTPEnv(t, s, false)
		ann := e.addUser("ann@example.org", false)
		secret, _ := e.enrol(ann)
		code := e.code(secret, 1)
		const n = auth.DefaultMaxFailures // all of them reach the code check
		statuses := make([]int, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				statuses[i] = e.loginOTP("ann@example.org", testPassword, code).status
			})
		}
		close(start)
		wg.Wait()
		ok := 0
		for _, st := range statuses {
			if st == http.StatusOK {
				ok++
			} else {
				assert.Equal(t, http.StatusUnauthorized, st)
			}
		}
		assert.Equal(t, 1, ok, "statuses %v", statuses)
	})
}

// Removing one's own second factor needs the password, checked under the
// login throttling; then the password alone logs in again.
func TestTOTPRemovalNeedsThePassword(t *testing.T) {
	onAllStores(t, func(t *testing.T, s idm.Store) {
		e := newTOTPEnv(t, s, false)
		ann := e.addUser("ann@example.org", false)
		e.enrol(ann)
		res := e.do(request{method: "DELETE", path: "/user/me/totp", token: ann.token, body: map[string]string{}})
		assert.Equal(t, http.StatusBadRequest, res.status, "%s", res.body)
		res = e.do(request{method: "DELETE", path: "/user/me/totp", token: ann.token, body: `{"password":"x","password":"y"}`})
		assert.Equal(t, http.StatusBadRequest, res.status, "duplicate key: %s", res.body)
		res = e.do(request{method: "DELETE", path: "/user/me/totp", token: ann.token, body: map[string]string{"password": "wrong password!"}})
		assert.Equal(t, http.StatusForbidden, res.status, "%s", res.body)
		assert.Equal(t, "password is not correct", res.message(t))
		stored, _ := e.user(ann.user.ID)
		assert.True(t, stored.TOTP.Active)
		res = e.do(request{method: "DELETE", path: "/user/me/totp", token: ann.token, body: map[string]string{"password": testPassword}})
		require.Equal(t, http.StatusNoContent, res.status, "%s", res.body)
		stored, _ = e.user(ann.user.ID)
		assert.Equal(t, idm.TOTP{}, stored.TOTP)
		token(t, e.loginOTP("ann@example.org", testPassword, ""))
		assert.Equal(t, []string{users.ActionTOTPEnrol, users.ActionTOTPConfirm, users.ActionTOTPWrongPassword, users.ActionTOTPRemove},
			e.actions(ann.user.ID))

		// Wrong passwords here count toward the account's limit too.
		for range auth.DefaultMaxFailures {
			e.do(request{method: "DELETE", path: "/user/me/totp", token: ann.token, body: map[string]string{"password": "wrong password!"}})
		}
		res = e.do(request{method: "DELETE", path: "/user/me/totp", token: ann.token, body: map[string]string{"password": testPassword}})
		assert.Equal(t, http.StatusTooManyRequests, res.status, "%s", res.body)
	})
}

// An admin resets another user's second factor (revoking their tokens);
// a user cannot reset their own without the password.
func TestTOTPAdminReset(t *testing.T) {
	onAllStores(t, func(t *testing.T, s idm.Store) {
		e := newTOTPEnv(t, s, false)
		admin := e.addUser("admin@example.org", true)
		ann := e.addUser("ann@example.org", false)
		e.enrol(ann)
		res := e.do(request{method: "PUT", path: "/user/me", token: ann.token, body: map[string]any{"reset_totp": true}})
		assert.Equal(t, http.StatusForbidden, res.status, "%s", res.body)
		res = e.do(request{method: "PUT", path: "/user/" + ann.user.ID, token: admin.token, body: map[string]any{"reset_totp": true}})
		require.Equal(t, http.StatusOK, res.status, "%s", res.body)
		assert.Contains(t, string(res.body), `"totp":false`)
		stored, _ := e.user(ann.user.ID)
		assert.Equal(t, idm.TOTP{}, stored.TOTP)
		res = e.do(request{method: "GET", path: "/user/me", token: ann.token})
		assert.Equal(t, http.StatusUnauthorized, res.status, "the reset revokes the user's tokens")
		token(t, e.loginOTP("ann@example.org", testPassword, ""))
		var last idm.AuditEvent
		for _, ev := range e.audits() {
			if ev.Document == ann.user.ID {
				last = ev
			}
		}
		assert.Equal(t, users.ActionTOTPReset, last.Action)
		assert.Equal(t, admin.user.ID, last.ActorID)
		assert.JSONEq(t, `{"username":"ann@example.org","totp":"active"}`, string(last.Old))
		assert.JSONEq(t, `{"username":"ann@example.org","totp":"none"}`, string(last.New))
	})
}

// With RequireTOTP, a user without an active second factor reaches only
// /user/me, the TOTP endpoints and logout; after enrolling, everything.
func TestRequireTOTPGatesOtherEndpoints(t *testing.T) {
	e := newTOTPEnv(t, memstore.New(), true)
	ann := e.addUser("ann@example.org", false)
	res := e.do(request{method: "GET", path: "/subject", token: ann.token})
	assert.Equal(t, http.StatusForbidden, res.status)
	assert.Equal(t, "second factor enrolment required", res.message(t))
	res = e.do(request{method: "GET", path: "/user/" + ann.user.ID, token: ann.token})
	assert.Equal(t, http.StatusForbidden, res.status, "only /user/me")
	res = e.do(request{method: "GET", path: "/user/me", token: ann.token})
	assert.Equal(t, http.StatusOK, res.status)
	res = e.do(request{method: "GET", path: "/subject"})
	assert.Equal(t, http.StatusUnauthorized, res.status, "no token: 401 as before")

	secret, _ := e.enrol(ann)
	res = e.do(request{method: "GET", path: "/subject", token: ann.token})
	assert.Equal(t, http.StatusOK, res.status, "%s", res.body)
	tok := token(t, e.loginOTP("ann@example.org", testPassword, e.code(secret, 1)))
	res = e.do(request{method: "GET", path: "/subject", token: tok})
	assert.Equal(t, http.StatusOK, res.status)

	bob := e.addUser("bob@example.org", false)
	res = e.do(request{method: "POST", path: "/logout", token: bob.token})
	assert.Equal(t, http.StatusNoContent, res.status, "logout is allowed")
}

// POST /auth takes otp besides username and password: for a user without a
// second factor it is ignored; a malformed otp, or another extra field,
// makes the attempt invalid (401, counted), as a malformed password does.
func TestLoginOTPField(t *testing.T) {
	e := newTOTPEnv(t, memstore.New(), false)
	e.addUser("ann@example.org", false)
	for _, tc := range []struct {
		name   string
		body   string
		status int
	}{
		{"otp ignored without a second factor", `{"username":"ann@example.org","password":"` + testPassword + `","otp":"123456"}`, http.StatusOK},
		{"empty otp", `{"username":"ann@example.org","password":"` + testPassword + `","otp":""}`, http.StatusUnauthorized},
		{"numeric otp", `{"username":"ann@example.org","password":"` + testPassword + `","otp":123456}`, http.StatusUnauthorized},
		{"over-long otp", `{"username":"ann@example.org","password":"` + testPassword + `","otp":"` + strings.Repeat("1", 65) + `"}`, http.StatusUnauthorized},
		{"another field", `{"username":"ann@example.org","password":"` + testPassword + `","code":"123456"}`, http.StatusUnauthorized},
		{"otp and another field", `{"username":"ann@example.org","password":"` + testPassword + `","otp":"123456","x":1}`, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := e.do(request{method: "POST", path: "/auth", body: tc.body})
			assert.Equal(t, tc.status, res.status, "%s", res.body)
			if tc.status != http.StatusOK {
				assert.Equal(t, "invalid credentials", res.message(t))
			}
		})
	}
}
