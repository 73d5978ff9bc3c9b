package auth_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/internal/testclock"
)

// TestVerifiedTokensFollowTheClock: a token that was verified once (and is
// remembered as verified) is accepted or refused at every later clock
// reading exactly as a handler that never saw it decides: expiry, issue time
// and the leeway are checked on every request.
func TestVerifiedTokensFollowTheClock(t *testing.T) {
	const leeway = 30 * time.Second
	ttl := auth.DefaultTokenTTL
	tests := []struct {
		name string
		at   time.Duration // from the issue time
		ok   bool
	}{
		{"at issue", 0, true},
		{"an hour later", time.Hour, true},
		{"last second of the leeway after exp", ttl + leeway - time.Second, true},
		{"end of the leeway after exp", ttl + leeway, false},
		{"a day after exp", ttl + 24*time.Hour, false},
		{"clock set back within the leeway", -leeway, true},
		{"clock set back beyond the leeway", -leeway - time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := testclock.New(t0)
			e := newEnv(t, func(c *auth.Config) { c.Now = clk.Now })
			e.addUser(alice, alicePW)
			tok := e.token(alice, alicePW)
			require.Equal(t, http.StatusOK, e.me("JWT "+tok).status, "verified once, so remembered")

			clk.Set(t0.Add(tt.at))
			fresh, err := auth.New(e.cfg) // the same configuration, nothing remembered
			require.NoError(t, err)
			_, freshErr := fresh.VerifyToken(tok)
			_, err = e.h.VerifyToken(tok)
			if tt.ok {
				assert.NoError(t, freshErr, "control")
				assert.NoError(t, err)
				assert.Equal(t, http.StatusOK, e.me("JWT "+tok).status)
				return
			}
			assert.ErrorIs(t, freshErr, idm.ErrUnauthorized, "control")
			assert.ErrorIs(t, err, idm.ErrUnauthorized)
			r := e.me("JWT " + tok)
			assert.Equal(t, http.StatusUnauthorized, r.status)
			assert.Equal(t, "Invalid token", r.errorMessage(t))
			// And it stays refused when the clock comes back: a refused
			// token is verified again from scratch.
			clk.Set(t0)
			assert.Equal(t, http.StatusOK, e.me("JWT "+tok).status)
		})
	}
}

// TestVerifiedTokensAreRevokedAtOnce: remembering a token's signature
// never delays a revocation; the next request after it is refused.
func TestVerifiedTokensAreRevokedAtOnce(t *testing.T) {
	tests := []struct {
		name   string
		revoke func(e *env, u idm.User, tok string)
	}{
		{"logout", func(e *env, _ idm.User, tok string) {
			require.Equal(e.t, http.StatusNoContent, e.do(http.MethodPost, "/logout", "", "Authorization", "JWT "+tok).status)
		}},
		{"token version raised", func(e *env, u idm.User, _ string) { e.update(u.ID, func(u *idm.User) { u.TokenVersion++ }) }},
		{"disabled", func(e *env, u idm.User, _ string) { e.update(u.ID, func(u *idm.User) { u.Disabled = true }) }},
		{"deleted", func(e *env, u idm.User, _ string) { require.NoError(e.t, e.store.DeleteUser(e.t.Context(), u.ID)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			u := e.addUser(alice, alicePW)
			tok := e.token(alice, alicePW)
			for range 3 {
				require.Equal(t, http.StatusOK, e.me("JWT "+tok).status)
			}
			tt.revoke(e, u, tok)
			r := e.me("JWT " + tok)
			assert.Equal(t, http.StatusUnauthorized, r.status)
			assert.Equal(t, "Invalid token", r.errorMessage(t))
		})
	}
}
