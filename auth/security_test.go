package auth_test

import (
	"crypto/x509"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
)

// TestSecurity05RevocationByTokenVersion: a staff token issued before a
// password change, reset, disable, admin-flag change, delete or POST /logout
// gets 401 afterwards, within the same second (the clock never moves here).
// The user-management and reset handlers make those changes by raising the
// user's token version; the changes are made on the store directly here, as
// they do. (The "password changed" email belongs to resetflow and users.)
func TestSecurity05RevocationByTokenVersion(t *testing.T) {
	tests := []struct {
		name   string
		revoke func(e *env, u idm.User, token string)
	}{
		{"password change", func(e *env, u idm.User, _ string) {
			hash, err := e.pw.Hash(e.t.Context(), "a-brand-new-password")
			require.NoError(e.t, err)
			e.update(u.ID, func(u *idm.User) { u.PasswordHash = hash; u.TokenVersion++ })
		}},
		{"password reset", func(e *env, u idm.User, _ string) {
			hash, err := e.pw.Hash(e.t.Context(), "a-reset-password-1")
			require.NoError(e.t, err)
			e.update(u.ID, func(u *idm.User) { u.PasswordHash = hash; u.PasswordChanged = t0; u.TokenVersion++ })
		}},
		{"disable", func(e *env, u idm.User, _ string) {
			e.update(u.ID, func(u *idm.User) { u.Disabled = true; u.TokenVersion++ })
		}},
		{"disable without a version change", func(e *env, u idm.User, _ string) {
			e.update(u.ID, func(u *idm.User) { u.Disabled = true })
		}},
		{"admin flag change", func(e *env, u idm.User, _ string) {
			e.update(u.ID, func(u *idm.User) { u.Admin = true; u.TokenVersion++ })
		}},
		{"delete", func(e *env, u idm.User, _ string) {
			require.NoError(e.t, e.store.DeleteUser(e.t.Context(), u.ID))
		}},
		{"POST /logout", func(e *env, _ idm.User, token string) {
			r := e.do(http.MethodPost, "/logout", "", "Authorization", "Bearer "+token)
			require.Equal(e.t, http.StatusNoContent, r.status, r.body)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			u := e.addUser(alice, alicePW)
			token := e.token(alice, alicePW)
			other := e.token(alice, alicePW)
			require.Equal(t, http.StatusOK, e.me("JWT "+token).status)

			tt.revoke(e, u, token)

			for _, tok := range []string{token, other} {
				r := e.me("JWT " + tok)
				assert.Equal(t, http.StatusUnauthorized, r.status)
				assert.Equal(t, "Invalid token", r.errorMessage(t))
			}
			assert.Equal(t, t0, e.clock.Now(), "all within the same instant")
		})
	}
	t.Run("a token issued after the change works", func(t *testing.T) {
		e := newEnv(t)
		u := e.addUser(alice, alicePW)
		old := e.token(alice, alicePW)
		e.update(u.ID, func(u *idm.User) { u.TokenVersion++ })
		fresh := e.token(alice, alicePW)
		assert.Equal(t, http.StatusUnauthorized, e.me("JWT "+old).status)
		assert.Equal(t, http.StatusOK, e.me("JWT "+fresh).status)
	})
}

// TestSecurity06NoUserEnumeration: POST /auth for a wrong password, an
// unknown user and a disabled user answers the same status, body and
// header names, and the unknown-user path runs a hash comparison too, so
// it takes about as long. (The /iforgot part belongs to resetflow.)
func TestSecurity06NoUserEnumeration(t *testing.T) {
	// A cost high enough that one comparison dwarfs everything else.
	const cost = 8
	pw, err := auth.NewPasswords(auth.PasswordConfig{Cost: cost})
	require.NoError(t, err)
	e := newEnv(t, func(c *auth.Config) { c.Passwords = pw })
	e.pw = pw
	e.addUser(alice, alicePW)
	disabled := e.addUser("bob@example.org", alicePW)
	e.update(disabled.ID, func(u *idm.User) { u.Disabled = true })

	cases := []struct{ name, username, password string }{
		{"wrong password", alice, "not-the-password"},
		{"unknown user", "nobody@example.org", "not-the-password"},
		{"disabled user", "bob@example.org", alicePW},
	}
	// Four rounds (below the lockout of five failures), each trying every
	// case once, so that load on the machine slows all cases alike; the
	// fastest attempt of each case counts.
	durations := map[string]time.Duration{}
	replies := map[string]reply{}
	for round := range 4 {
		for _, c := range cases {
			start := time.Now()
			r := e.login(c.username, c.password)
			d := time.Since(start)
			if round == 0 || d < durations[c.name] {
				durations[c.name] = d
			}
			replies[c.name] = r
		}
	}
	first := replies[cases[0].name]
	for _, c := range cases {
		r := replies[c.name]
		assert.Equal(t, http.StatusUnauthorized, r.status, c.name)
		assert.Equal(t, first.body, r.body, c.name)
		assert.Equal(t, headerNames(first.header), headerNames(r.header), c.name)
	}
	// Without the dummy comparison the unknown user would answer in well
	// under a tenth of the time of a comparison.
	known, unknown := durations["wrong password"], durations["unknown user"]
	t.Logf("fastest of 4: wrong password %v, unknown user %v, disabled %v", known, unknown, durations["disabled user"])
	assert.Greater(t, unknown, known/2, "the unknown-user path must cost a hash comparison")
	assert.Greater(t, durations["disabled user"], known/2)
}

func headerNames(h http.Header) []string {
	var names []string
	for k := range h {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// TestSecurity07BruteForceLimits: per-account failure counters in the store
// throttle an account after 5 failures in 15 minutes (429 with Retry-After,
// even for the right password, known account or not); success resets the
// count; an admin can unlock; per-client-address token buckets guard
// against floods; logins queue for the hashing workers.
func TestSecurity07BruteForceLimits(t *testing.T) {
	t.Run("account throttled after 5 failures until the window passes", func(t *testing.T) {
		e := newEnv(t)
		e.addUser(alice, alicePW)
		for i := range 5 {
			r := e.login(alice, "wrong-password-"+strconv.Itoa(i))
			require.Equal(t, http.StatusUnauthorized, r.status, "attempt %d", i+1)
		}
		r := e.login(alice, alicePW)
		require.Equal(t, http.StatusTooManyRequests, r.status, "the right password is refused too")
		assert.Equal(t, "900", r.header.Get("Retry-After"))
		assert.Equal(t, "too many login attempts; try again later", r.errorMessage(t))

		e.clock.Advance(10 * time.Minute)
		r = e.login("ALICE@example.org", alicePW)
		require.Equal(t, http.StatusTooManyRequests, r.status)
		assert.Equal(t, "300", r.header.Get("Retry-After"))

		e.clock.Advance(5*time.Minute + time.Second)
		assert.Equal(t, http.StatusOK, e.login(alice, alicePW).status, "the window has passed")
		assert.Contains(t, e.loginOutcomes(), auth.OutcomeThrottled)
		var throttled int
		for _, ev := range e.audits() {
			if ev.Action == "login throttled" {
				throttled++
			}
		}
		assert.Equal(t, 2, throttled, "throttled attempts are audited")
	})
	t.Run("unknown accounts are throttled alike", func(t *testing.T) {
		e := newEnv(t)
		e.addUser(alice, alicePW)
		var known, unknown reply
		for range 5 {
			e.login(alice, "wrong-password")
			e.login("nobody@example.org", "wrong-password")
		}
		known = e.login(alice, "wrong-password")
		unknown = e.login("nobody@example.org", "wrong-password")
		assert.Equal(t, http.StatusTooManyRequests, unknown.status)
		assert.Equal(t, known.status, unknown.status)
		assert.Equal(t, known.body, unknown.body)
		assert.Equal(t, known.header.Get("Retry-After"), unknown.header.Get("Retry-After"))
		assert.Equal(t, headerNames(known.header), headerNames(unknown.header))
	})
	t.Run("success resets the count", func(t *testing.T) {
		e := newEnv(t)
		e.addUser(alice, alicePW)
		for range 4 {
			require.Equal(t, http.StatusUnauthorized, e.login(alice, "wrong-password").status)
		}
		require.Equal(t, http.StatusOK, e.login(alice, alicePW).status)
		for range 4 {
			require.Equal(t, http.StatusUnauthorized, e.login(alice, "wrong-password").status)
		}
		assert.Equal(t, http.StatusOK, e.login(alice, alicePW).status)
	})
	t.Run("admin unlock", func(t *testing.T) {
		e := newEnv(t)
		e.addUser(alice, alicePW)
		for range 5 {
			e.login(alice, "wrong-password")
		}
		require.Equal(t, http.StatusTooManyRequests, e.login(alice, alicePW).status)
		require.NoError(t, e.h.Unlock(t.Context(), "Alice@Example.org"))
		assert.Equal(t, http.StatusOK, e.login(alice, alicePW).status)
	})
	t.Run("counters are shared by instances on one store", func(t *testing.T) {
		a := newEnv(t)
		a.addUser(alice, alicePW)
		b := newEnv(t, func(c *auth.Config) { c.Store = a.store; c.Now = a.clock.Now })
		b.store = a.store
		for i := range 5 {
			env := a
			if i%2 == 1 {
				env = b
			}
			require.Equal(t, http.StatusUnauthorized, env.login(alice, "wrong-password").status)
		}
		assert.Equal(t, http.StatusTooManyRequests, a.login(alice, alicePW).status)
		assert.Equal(t, http.StatusTooManyRequests, b.login(alice, alicePW).status)
	})
	t.Run("per-address bucket of 20 refilled at 1 per second", func(t *testing.T) {
		e := newEnv(t, func(c *auth.Config) { c.RateLimit = 0; c.RateBurst = 0 }) // the defaults
		for i := range 20 {
			r := e.login("user"+strconv.Itoa(i)+"@example.org", "wrong-password")
			require.Equal(t, http.StatusUnauthorized, r.status, "request %d", i+1)
		}
		r := e.login("another@example.org", "wrong-password")
		require.Equal(t, http.StatusTooManyRequests, r.status)
		assert.Equal(t, "1", r.header.Get("Retry-After"))
		e.clock.Advance(time.Second)
		assert.Equal(t, http.StatusUnauthorized, e.login("another@example.org", "wrong-password").status)
		assert.Equal(t, http.StatusTooManyRequests, e.login("another@example.org", "wrong-password").status)
	})
	t.Run("X-Forwarded-For only from trusted proxies", func(t *testing.T) {
		loopback := netip.MustParsePrefix("127.0.0.0/8")
		trusted := newEnv(t, func(c *auth.Config) { c.RateLimit = 1; c.RateBurst = 2; c.TrustedProxies = []netip.Prefix{loopback} })
		untrusted := newEnv(t, func(c *auth.Config) { c.RateLimit = 1; c.RateBurst = 2 })
		body := `{"username":"x@example.org","password":"wrong-password"}`
		post := func(e *env, xff string) int {
			return e.do(http.MethodPost, "/auth", body, "X-Forwarded-For", xff).status
		}
		// Behind a trusted proxy each client has its own bucket.
		assert.Equal(t, http.StatusUnauthorized, post(trusted, "203.0.113.7"))
		assert.Equal(t, http.StatusUnauthorized, post(trusted, "198.51.100.1, 203.0.113.7"))
		assert.Equal(t, http.StatusTooManyRequests, post(trusted, "203.0.113.7"))
		assert.Equal(t, http.StatusUnauthorized, post(trusted, "203.0.113.8"))
		// Otherwise the header is ignored: spoofed addresses do not help.
		assert.Equal(t, http.StatusUnauthorized, post(untrusted, "203.0.113.7"))
		assert.Equal(t, http.StatusUnauthorized, post(untrusted, "203.0.113.8"))
		assert.Equal(t, http.StatusTooManyRequests, post(untrusted, "203.0.113.9"))
	})
	t.Run("logins queue for the hashing workers and are not shed", func(t *testing.T) {
		pw, err := auth.NewPasswords(auth.PasswordConfig{Cost: bcrypt.MinCost, Workers: 1})
		require.NoError(t, err)
		e := newEnv(t, func(c *auth.Config) { c.Passwords = pw })
		e.pw = pw
		// One account each: more than MaxFailures concurrent attempts on
		// one account are refused before their check, right password or
		// not (see "concurrent guesses" below).
		statuses := make([]int, 30)
		names := make([]string, len(statuses))
		for i := range names {
			names[i] = "user" + strconv.Itoa(i) + "@example.org"
			e.addUser(names[i], alicePW)
		}
		var wg sync.WaitGroup
		for i := range statuses {
			wg.Go(func() { statuses[i] = e.login(names[i], alicePW).status })
		}
		wg.Wait()
		for i, s := range statuses {
			assert.Equal(t, http.StatusOK, s, "login %d", i)
		}
	})
}

// TestSecurity08PasswordPolicy: at least 8 characters (configurable), up to
// 128, any Unicode counted after NFC, no composition rules, the 10 000 most
// common passwords refused; new hashes pre-hash the password so that
// characters beyond bcrypt's 72 bytes count.
func TestSecurity08PasswordPolicy(t *testing.T) {
	p := fastPasswords(t)
	for _, tt := range []struct {
		pw string
		ok bool
	}{
		{"seven77", false},
		{"eight888", true},
		{"alllowercaseletters", true}, // no composition rules
		{strings.Repeat("й", 128), true},
		{strings.Repeat("й", 129), false},
		{"Ω≈ç√∫˜µ≤", true},
		{"password", false},
		{"PASSWORD", false},
		{"qwertyuiop", false},
		{"iloveyou1", false},
	} {
		err := p.Check(tt.pw)
		assert.Equal(t, tt.ok, err == nil, "%q: %v", tt.pw, err)
		if err != nil {
			assert.Equal(t, http.StatusBadRequest, idm.StatusOf(err))
		}
	}

	// Two 100-byte passwords that differ only after byte 72.
	base := strings.Repeat("long-passphrase-", 5) // 80 bytes
	a, b := base+"-alpha-00000000000", base+"-bravo-00000000000"
	hash, err := p.Hash(t.Context(), a)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(hash, auth.SchemePrefix))
	ok, _, err := p.Verify(t.Context(), hash, b)
	require.NoError(t, err)
	assert.False(t, ok, "bytes beyond 72 count")
	ok, _, err = p.Verify(t.Context(), hash, a)
	require.NoError(t, err)
	assert.True(t, ok)

	// 128 characters of 4 bytes each: 512 bytes, all of them count.
	emoji := strings.Repeat("🔑", 127)
	hash, err = p.Hash(t.Context(), emoji+"🐝")
	require.NoError(t, err)
	ok, _, err = p.Verify(t.Context(), hash, emoji+"🦉")
	require.NoError(t, err)
	assert.False(t, ok)
}

// TestSecurity09PasswordHashing: new hashes are bcrypt with cost 12 by
// default; a legacy $2b$12$ hash made by the original (Python) service
// verifies as it is and is rewritten in the current scheme at the next
// successful login, as is a hash below the configured cost. Comparisons are
// constant time: bcrypt.CompareHashAndPassword compares with
// crypto/subtle.ConstantTimeCompare.
func TestSecurity09PasswordHashing(t *testing.T) {
	t.Run("default cost is 12", func(t *testing.T) {
		t.Parallel()
		p, err := auth.NewPasswords(auth.PasswordConfig{})
		require.NoError(t, err)
		assert.Equal(t, 12, p.Cost())
		hash, err := p.Hash(t.Context(), "cost twelve password")
		require.NoError(t, err)
		cost, err := bcrypt.Cost([]byte(strings.TrimPrefix(hash, auth.SchemePrefix)))
		require.NoError(t, err)
		assert.Equal(t, 12, cost)
	})
	t.Run("legacy Python hashes verify as they are", func(t *testing.T) {
		t.Parallel()
		p := fastPasswords(t)
		for _, tt := range []struct {
			name, hash, pw string
			ok             bool
		}{
			{"ASCII", legacyHash, legacyPassword, true},
			{"wrong password", legacyHash, legacyPassword + ".", false},
			{"UTF-8", legacyUTF8Hash, legacyUTF8Password, true},
			{"80 bytes (bcrypt read 72)", legacyLongHash, strings.Repeat("x", 80), true},
		} {
			ok, rehash, err := p.Verify(t.Context(), tt.hash, tt.pw)
			require.NoError(t, err, tt.name)
			assert.Equal(t, tt.ok, ok, tt.name)
			assert.Equal(t, tt.ok, rehash, "%s: a legacy hash needs a rehash", tt.name)
		}
	})
	t.Run("legacy hash rewritten at the next login", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		u := e.addUserWithHash(alice, legacyHash)
		require.Equal(t, http.StatusOK, e.login(alice, legacyPassword).status)
		stored := e.user(u.ID)
		require.True(t, strings.HasPrefix(stored.PasswordHash, auth.SchemePrefix), stored.PasswordHash)
		assert.False(t, e.pw.NeedsRehash(stored.PasswordHash))
		assert.Equal(t, u.TokenVersion, stored.TokenVersion, "nothing else changed")
		assert.Equal(t, u.Changed, stored.Changed)
		ok, rehash, err := e.pw.Verify(t.Context(), stored.PasswordHash, legacyPassword)
		require.NoError(t, err)
		assert.True(t, ok)
		assert.False(t, rehash)
		require.Equal(t, http.StatusOK, e.login(alice, legacyPassword).status, "the new hash works")
		var actions []string
		for _, ev := range e.audits() {
			actions = append(actions, ev.Action)
		}
		assert.ElementsMatch(t, []string{"login", "upgrade password hash", "login"}, actions)
	})
	t.Run("hash below the configured cost rewritten at the next login", func(t *testing.T) {
		higher, err := auth.NewPasswords(auth.PasswordConfig{Cost: bcrypt.MinCost + 1})
		require.NoError(t, err)
		e := newEnv(t)
		u := e.addUser(alice, alicePW) // at MinCost
		e2 := newEnv(t, func(c *auth.Config) { c.Store = e.store; c.Passwords = higher })
		require.Equal(t, http.StatusOK, e2.login(alice, alicePW).status)
		cost, err := bcrypt.Cost([]byte(strings.TrimPrefix(e.user(u.ID).PasswordHash, auth.SchemePrefix)))
		require.NoError(t, err)
		assert.Equal(t, bcrypt.MinCost+1, cost)
	})
	t.Run("a failed login rewrites nothing", func(t *testing.T) {
		e := newEnv(t)
		u := e.addUserWithHash(alice, "$2b$04$"+strings.Repeat("a", 53))
		require.Equal(t, http.StatusUnauthorized, e.login(alice, "not-it-at-all").status)
		assert.Equal(t, u.PasswordHash, e.user(u.ID).PasswordHash)
	})
}

// signed returns a token signed with method and key, with the given header
// fields added and claims.
func signed(t *testing.T, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

// staffClaims returns valid staff-token claims for u at now.
func staffClaims(u idm.User, now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"sub": u.ID, "identity": u.ID, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"iss": auth.DefaultIssuer, "aud": "idm", "jti": idm.NewID(), "ver": u.TokenVersion,
	}
}

// with returns a copy of c with changes applied (nil values delete).
func with(c jwt.MapClaims, changes jwt.MapClaims) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// TestSecurity10StrictJWTValidation: alg none, an algorithm outside the
// allowlist, HS/RS key confusion, jku/jwk/x5u headers, unknown kid, bad
// signature, expired exp, future nbf, wrong iss or aud: all 401. Weak or
// default HMAC secrets are refused; with no secret configured a random key
// is generated once and kept in the store.
func TestSecurity10StrictJWTValidation(t *testing.T) {
	e := newEnv(t)
	u := e.addUser(alice, alicePW)
	now := e.clock.Now()
	secret := []byte(testSecret)
	kid := e.cfg.Keys.Signing().KID()
	good := staffClaims(u, now)
	hdr := map[string]any{"kid": kid}
	hdrWith := func(k string, v any) map[string]any { return map[string]any{"kid": kid, k: v} }

	noneToken := signed(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, hdr, good)
	tests := []struct {
		name  string
		token string
		ok    bool
	}{
		{"control: valid", signed(t, jwt.SigningMethodHS256, secret, hdr, good), true},
		{"control: expired within the 30 s leeway", signed(t, jwt.SigningMethodHS256, secret, hdr, with(good, jwt.MapClaims{"exp": now.Add(-29 * time.Second).Unix()})), true},
		{"alg none", noneToken, false},
		{"alg none, empty signature stripped", strings.TrimSuffix(noneToken, "."), false},
		{"HS384 (not allowed)", signed(t, jwt.SigningMethodHS384, secret, hdr, good), false},
		{"HS512 (not allowed)", signed(t, jwt.SigningMethodHS512, secret, hdr, good), false},
		{"jku header", signed(t, jwt.SigningMethodHS256, secret, hdrWith("jku", "https://evil.example/jwks.json"), good), false},
		{"jwk header", signed(t, jwt.SigningMethodHS256, secret, hdrWith("jwk", map[string]any{"kty": "oct", "k": "AAAA"}), good), false},
		{"x5u header", signed(t, jwt.SigningMethodHS256, secret, hdrWith("x5u", "https://evil.example/cert.pem"), good), false},
		{"x5c header", signed(t, jwt.SigningMethodHS256, secret, hdrWith("x5c", []string{"MIIB"}), good), false},
		{"crit header", signed(t, jwt.SigningMethodHS256, secret, hdrWith("crit", []string{"exp"}), good), false},
		{"unknown kid", signed(t, jwt.SigningMethodHS256, secret, map[string]any{"kid": "someone-elses-key"}, good), false},
		{"missing kid", signed(t, jwt.SigningMethodHS256, secret, nil, good), false},
		{"kid not a string", signed(t, jwt.SigningMethodHS256, secret, map[string]any{"kid": 7}, good), false},
		{"typ not JWT", signed(t, jwt.SigningMethodHS256, secret, hdrWith("typ", "at+jwt+evil"), good), false},
		{"bad signature (other secret)", signed(t, jwt.SigningMethodHS256, []byte(strings.ToUpper(testSecret)), hdr, good), false},
		{"expired", signed(t, jwt.SigningMethodHS256, secret, hdr, with(good, jwt.MapClaims{"exp": now.Add(-31 * time.Second).Unix()})), false},
		{"no exp", signed(t, jwt.SigningMethodHS256, secret, hdr, with(good, jwt.MapClaims{"exp": nil})), false},
		{"future nbf", signed(t, jwt.SigningMethodHS256, secret, hdr, with(good, jwt.MapClaims{"nbf": now.Add(time.Minute).Unix()})), false},
		{"future iat", signed(t, jwt.SigningMethodHS256, secret, hdr, with(good, jwt.MapClaims{"iat": now.Add(time.Minute).Unix()})), false},
		{"wrong iss", signed(t, jwt.SigningMethodHS256, secret, hdr, with(good, jwt.MapClaims{"iss": "https://evil.example"})), false},
		{"no iss", signed(t, jwt.SigningMethodHS256, secret, hdr, with(good, jwt.MapClaims{"iss": nil})), false},
		{"wrong aud", signed(t, jwt.SigningMethodHS256, secret, hdr, with(good, jwt.MapClaims{"aud": "other"})), false},
		{"link audience", signed(t, jwt.SigningMethodHS256, secret, hdr, with(good, jwt.MapClaims{"aud": auth.DefaultIssuer})), false},
		{"no ver", signed(t, jwt.SigningMethodHS256, secret, hdr, with(good, jwt.MapClaims{"ver": nil})), false},
		{"ver of wrong type", signed(t, jwt.SigningMethodHS256, secret, hdr, with(good, jwt.MapClaims{"ver": "0"})), false},
		{"identity differs from sub", signed(t, jwt.SigningMethodHS256, secret, hdr, with(good, jwt.MapClaims{"identity": idm.NewID()})), false},
		{"sub not a user ID", signed(t, jwt.SigningMethodHS256, secret, hdr, with(good, jwt.MapClaims{"sub": "admin", "identity": "admin"})), false},
		{"unknown user", signed(t, jwt.SigningMethodHS256, secret, hdr, with(good, jwt.MapClaims{"sub": idm.NewID(), "identity": nil})), false},
		{"link-token claims", signed(t, jwt.SigningMethodHS256, secret, hdr, with(good, jwt.MapClaims{"birthdate": "1980-05-17"})), false},
		{"two segments", "eyJhbGciOiJIUzI1NiJ9.e30", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.me("Bearer " + tt.token)
			if tt.ok {
				assert.Equal(t, http.StatusOK, r.status, r.body)
				return
			}
			assert.Equal(t, http.StatusUnauthorized, r.status, r.body)
			assert.Equal(t, "Invalid token", r.errorMessage(t))
			_, err := e.h.VerifyToken(tt.token)
			assert.ErrorIs(t, err, idm.ErrUnauthorized)
		})
	}

	t.Run("HS/RS key confusion", func(t *testing.T) {
		keys := newTestKeys(t)
		rk, err := auth.ParsePrivateKeyPEM(pkcs8(t, keys.rsa))
		require.NoError(t, err)
		ks, err := auth.NewKeySet(rk)
		require.NoError(t, err)
		re := newEnv(t, func(c *auth.Config) {
			c.Keys, c.LinkKeys, c.Store, c.Now = ks, linkKeys(t, appSecret), e.store, e.clock.Now
		})
		re.store = e.store
		require.Equal(t, http.StatusOK, re.me("Bearer "+re.token(alice, alicePW)).status, "control: RS256 login token")

		pubDER, err := x509.MarshalPKIXPublicKey(&keys.rsa.PublicKey)
		require.NoError(t, err)
		for name, hmacKey := range map[string][]byte{
			"public key PEM as HMAC secret": pemBlock("PUBLIC KEY", pubDER),
			"public key DER as HMAC secret": pubDER,
			"PKCS#1 public key as secret":   x509.MarshalPKCS1PublicKey(&keys.rsa.PublicKey),
		} {
			tok := signed(t, jwt.SigningMethodHS256, hmacKey, map[string]any{"kid": rk.KID()}, good)
			r := re.me("Bearer " + tok)
			assert.Equal(t, http.StatusUnauthorized, r.status, name)
		}
		other := newTestKeys(t)
		tok := signed(t, jwt.SigningMethodRS256, other.rsa, map[string]any{"kid": rk.KID()}, good)
		assert.Equal(t, http.StatusUnauthorized, re.me("Bearer "+tok).status, "RS256 by another key")
		tok = signed(t, jwt.SigningMethodPS256, keys.rsa, map[string]any{"kid": rk.KID()}, good)
		assert.Equal(t, http.StatusUnauthorized, re.me("Bearer "+tok).status, "PS256 with the right key is not RS256")
		// And the reverse: an HS256 key set refuses an RS256 token naming its kid.
		tok = signed(t, jwt.SigningMethodRS256, keys.rsa, hdr, good)
		assert.Equal(t, http.StatusUnauthorized, e.me("Bearer "+tok).status)
	})

	t.Run("a token without kid only when configured, and only with the signing key", func(t *testing.T) {
		lax := newEnv(t, func(c *auth.Config) { c.AcceptMissingKID = true; c.Store = e.store; c.Now = e.clock.Now })
		assert.Equal(t, http.StatusOK, lax.me("JWT "+signed(t, jwt.SigningMethodHS256, secret, nil, good)).status)
		other := signed(t, jwt.SigningMethodHS256, []byte(strings.ToUpper(testSecret)), nil, good)
		assert.Equal(t, http.StatusUnauthorized, lax.me("JWT "+other).status)
		assert.Equal(t, http.StatusUnauthorized, e.me("JWT "+signed(t, jwt.SigningMethodHS256, secret, nil, good)).status)
	})

	t.Run("weak or default secrets refused", func(t *testing.T) {
		for _, s := range []string{"super-duper-secret", strings.Repeat("super-duper-secret", 2), "secret", "changeme", strings.Repeat("changeme", 4), testSecret[:31]} {
			_, err := auth.NewHMACKey([]byte(s))
			assert.Error(t, err, "%q", s)
		}
	})

	t.Run("without a configured secret a random key is generated once and kept", func(t *testing.T) {
		ks, err := auth.LoadOrCreateKeys(t.Context(), e.store, t0)
		require.NoError(t, err)
		stored, err := e.store.FindSigningKey(t.Context(), auth.DefaultKeyName)
		require.NoError(t, err)
		assert.Len(t, stored.Secret, 32)
		again, err := auth.LoadOrCreateKeys(t.Context(), e.store, t0.Add(time.Hour))
		require.NoError(t, err)
		assert.Equal(t, ks.Signing().KID(), again.Signing().KID())
	})
}

// TestSecurity11KeysAndPurposes: with keys {new (signing), old
// (verify-only)} old tokens still verify and new ones carry the new kid;
// removing the old key makes them fail. A link JWT is refused as a staff
// token and a staff token is refused as a link token (at /establish).
func TestSecurity11KeysAndPurposes(t *testing.T) {
	keys := newTestKeys(t)
	oldKey, err := auth.NewHMACKey([]byte(testSecret))
	require.NoError(t, err)
	newKey, err := auth.ParsePrivateKeyPEM(pkcs8(t, keys.ed))
	require.NoError(t, err)
	oldSet, err := auth.NewKeySet(oldKey)
	require.NoError(t, err)
	rotated, err := auth.NewKeySet(newKey, oldKey)
	require.NoError(t, err)
	newOnly, err := auth.NewKeySet(newKey)
	require.NoError(t, err)

	before := newEnv(t, func(c *auth.Config) { c.Keys = oldSet })
	u := before.addUser(alice, alicePW)
	oldToken := before.token(alice, alicePW)
	share := func(ks *auth.KeySet) func(*auth.Config) {
		return func(c *auth.Config) {
			c.Keys, c.LinkKeys, c.Store, c.Now = ks, linkKeys(t, appSecret), before.store, before.clock.Now
		}
	}
	after := newEnv(t, share(rotated))
	after.store = before.store
	removed := newEnv(t, share(newOnly))
	removed.store = before.store

	t.Run("old tokens verify after rotation", func(t *testing.T) {
		assert.Equal(t, http.StatusOK, after.me("JWT "+oldToken).status)
		c, err := after.h.VerifyToken(oldToken)
		require.NoError(t, err)
		assert.Equal(t, oldKey.KID(), c.KeyID)
	})
	t.Run("new tokens carry the new kid", func(t *testing.T) {
		tok := after.token(alice, alicePW)
		c, err := after.h.VerifyToken(tok)
		require.NoError(t, err)
		assert.Equal(t, newKey.KID(), c.KeyID)
		assert.Equal(t, auth.EdDSA, c.Algorithm)
		assert.Equal(t, http.StatusOK, removed.me("JWT "+tok).status)
	})
	t.Run("removing the old key makes old tokens fail", func(t *testing.T) {
		r := removed.me("JWT " + oldToken)
		assert.Equal(t, http.StatusUnauthorized, r.status)
		assert.Equal(t, "Invalid token", r.errorMessage(t))
	})

	link, linkClaims, err := after.h.LinkTokens().IssueLinkToken(t.Context(), idm.LinkClaims{
		ID: idm.NewID(), Subject: "Alice Example", Birthdate: "1980-05-17", Expires: t0.Add(24 * time.Hour),
	})
	require.NoError(t, err)
	t.Run("a link token has the documented shape", func(t *testing.T) {
		assert.Equal(t, auth.HS256, linkClaims.Algorithm, "link tokens are HS256 whatever signs staff tokens")
		assert.Equal(t, auth.DefaultIssuer, linkClaims.Issuer)
		assert.Equal(t, auth.DefaultIssuer, linkClaims.Audience, "link audience = issuer by default")
		claims := jwt.MapClaims{}
		tok, err := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(func() time.Time { return t0 })).ParseWithClaims(link, claims,
			func(*jwt.Token) (any, error) { return []byte(appSecret), nil })
		require.NoError(t, err, "verifies with the app's secret")
		assert.Equal(t, "JWT", tok.Header["typ"])
		assert.Equal(t, linkKeys(t, appSecret)[0].KID(), tok.Header["kid"])
		assert.ElementsMatch(t, []string{"jti", "iss", "aud", "exp", "sub", "birthdate"}, claimNames(claims))
		assert.Equal(t, auth.DefaultIssuer, claims["aud"], "aud is a plain string")
		got, err := after.h.LinkTokens().VerifyLinkToken(t.Context(), link)
		require.NoError(t, err)
		assert.Equal(t, linkClaims, got)
		assert.Equal(t, idm.LinkClaims{Issuer: auth.DefaultIssuer, Audience: auth.DefaultIssuer, Algorithm: auth.HS256},
			after.h.LinkTokens().LinkDefaults())
	})
	t.Run("link tokens verify past their expiry (the caller checks it)", func(t *testing.T) {
		later := newEnv(t, func(c *auth.Config) {
			c.Keys, c.LinkKeys = rotated, linkKeys(t, appSecret)
			c.Now = func() time.Time { return t0.Add(48 * time.Hour) }
		})
		_, err := later.h.LinkTokens().VerifyLinkToken(t.Context(), link)
		assert.NoError(t, err)
	})
	t.Run("a link token is refused as a staff token", func(t *testing.T) {
		r := after.me("Bearer " + link)
		assert.Equal(t, http.StatusUnauthorized, r.status)
		assert.Equal(t, "Invalid token", r.errorMessage(t))
		// Even one whose aud was forged to the staff audience, if it were
		// ever signed, lacks ver and identity.
		forged := signed(t, jwt.SigningMethodHS256, []byte(testSecret), map[string]any{"kid": oldKey.KID()}, jwt.MapClaims{
			"jti": idm.NewID(), "iss": auth.DefaultIssuer, "aud": "idm", "exp": t0.Add(time.Hour).Unix(),
			"sub": u.ID, "birthdate": "1980-05-17",
		})
		assert.Equal(t, http.StatusUnauthorized, after.me("Bearer "+forged).status)
	})
	t.Run("a staff-shaped token signed with the link secret is refused as a staff token", func(t *testing.T) {
		lk := linkKeys(t, appSecret)[0]
		for name, hdr := range map[string]map[string]any{"with the link kid": {"kid": lk.KID()}, "without kid": nil} {
			forged := signed(t, jwt.SigningMethodHS256, []byte(appSecret), hdr, staffClaims(u, t0))
			r := after.me("Bearer " + forged)
			assert.Equal(t, http.StatusUnauthorized, r.status, name)
			assert.Equal(t, "Invalid token", r.errorMessage(t), name)
		}
		lax := newEnv(t, func(c *auth.Config) {
			c.Keys, c.LinkKeys, c.Store, c.Now = oldSet, linkKeys(t, appSecret), before.store, before.clock.Now
			c.AcceptMissingKID = true
		})
		forged := signed(t, jwt.SigningMethodHS256, []byte(appSecret), nil, staffClaims(u, t0))
		assert.Equal(t, http.StatusUnauthorized, lax.me("Bearer "+forged).status, "not even where tokens without kid are accepted")
	})
	t.Run("a staff token is refused as a link token", func(t *testing.T) {
		staff := after.token(alice, alicePW)
		for _, tok := range []string{staff, oldToken} {
			_, err := after.h.LinkTokens().VerifyLinkToken(t.Context(), tok)
			require.ErrorIs(t, err, idm.ErrForbidden)
			assert.Equal(t, "Forbidden", idm.MessageOf(err))
		}
		// Even one re-signed with the link audience still has ver and identity.
		forged := signed(t, jwt.SigningMethodHS256, []byte(appSecret), map[string]any{"kid": linkKeys(t, appSecret)[0].KID()},
			with(staffClaims(u, t0), jwt.MapClaims{"aud": auth.DefaultIssuer}))
		_, err := after.h.LinkTokens().VerifyLinkToken(t.Context(), forged)
		require.ErrorIs(t, err, idm.ErrForbidden)
	})
	t.Run("a link-shaped token signed with a staff key is refused as a link token", func(t *testing.T) {
		linkShaped := jwt.MapClaims{
			"jti": idm.NewID(), "iss": auth.DefaultIssuer, "aud": auth.DefaultIssuer, "exp": t0.Add(time.Hour).Unix(),
			"sub": "Alice Example", "birthdate": "1980-05-17",
		}
		for name, tok := range map[string]string{
			"HS256 staff key, its kid":    signed(t, jwt.SigningMethodHS256, []byte(testSecret), map[string]any{"kid": oldKey.KID()}, linkShaped),
			"HS256 staff key, no kid":     signed(t, jwt.SigningMethodHS256, []byte(testSecret), nil, linkShaped),
			"EdDSA staff key, its kid":    signed(t, jwt.SigningMethodEdDSA, keys.ed, map[string]any{"kid": newKey.KID()}, linkShaped),
			"HS256 staff key, link's kid": signed(t, jwt.SigningMethodHS256, []byte(testSecret), map[string]any{"kid": linkKeys(t, appSecret)[0].KID()}, linkShaped),
		} {
			_, err := after.h.LinkTokens().VerifyLinkToken(t.Context(), tok)
			require.ErrorIs(t, err, idm.ErrForbidden, name)
		}
	})
	t.Run("a link token with the staff audience is never issued nor accepted", func(t *testing.T) {
		_, _, err = after.h.LinkTokens().IssueLinkToken(t.Context(), idm.LinkClaims{ID: idm.NewID(), Audience: "idm", Expires: t0})
		assert.Error(t, err)
		forged := signed(t, jwt.SigningMethodHS256, []byte(appSecret), map[string]any{"kid": linkKeys(t, appSecret)[0].KID()}, jwt.MapClaims{
			"jti": idm.NewID(), "iss": auth.DefaultIssuer, "aud": "idm", "exp": t0.Add(time.Hour).Unix(),
			"sub": "Alice Example", "birthdate": "1980-05-17",
		})
		_, err := after.h.LinkTokens().VerifyLinkToken(t.Context(), forged)
		require.ErrorIs(t, err, idm.ErrForbidden)
	})
	t.Run("staff and link audiences must differ", func(t *testing.T) {
		_, err := auth.New(auth.Config{Store: before.store, Keys: rotated, LinkKeys: linkKeys(t, appSecret), Passwords: before.pw, Audience: "same", LinkAudience: "same"})
		assert.Error(t, err)
	})
}
