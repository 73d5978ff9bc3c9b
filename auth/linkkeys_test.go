package auth_test

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
)

func TestNewLinkKeyAcceptsWhatAppBuildsShipAndSaysWhenItIsWeak(t *testing.T) {
	tests := []struct {
		secret string
		weak   bool
	}{
		{appSecret, true},
		{"short", true},
		{strings.Repeat("ab", 20), true},
		{testSecret, false},
	}
	for _, tt := range tests {
		t.Run(tt.secret, func(t *testing.T) {
			k, err := auth.NewLinkKey([]byte(tt.secret))
			require.NoError(t, err)
			weak, why := k.Weak()
			assert.Equal(t, tt.weak, weak)
			assert.Equal(t, tt.weak, why != "", "a weak key says why")
			assert.NotContains(t, why, tt.secret, "the reason never repeats the secret")
		})
	}
	_, err := auth.NewLinkKey(nil)
	assert.Error(t, err, "an empty link secret")
}

func TestNewRefusesLinkConfigurationsTheAppCannotUseOrThatWeakenStaffTokens(t *testing.T) {
	keys := newTestKeys(t)
	ed, err := auth.ParsePrivateKeyPEM(pkcs8(t, keys.ed))
	require.NoError(t, err)
	edSet, err := auth.NewKeySet(ed)
	require.NoError(t, err)
	staffHS, err := auth.NewHMACKey([]byte(testSecret))
	require.NoError(t, err)
	edAndHS, err := auth.NewKeySet(ed, staffHS)
	require.NoError(t, err)
	base := func() auth.Config {
		return auth.Config{Store: newEnv(t).store, Keys: hmacKeys(t, testSecret), Passwords: fastPasswords(t)}
	}
	tests := []struct {
		name    string
		change  func(*auth.Config)
		wantErr string
	}{
		{"asymmetric staff keys and no link secret", func(c *auth.Config) { c.Keys = edSet }, "link secret"},
		{"link secret equal to the staff secret", func(c *auth.Config) { c.LinkKeys = linkKeys(t, testSecret) }, "must differ"},
		{"a previous link secret equal to a staff secret", func(c *auth.Config) {
			c.Keys = edAndHS
			c.LinkKeys = linkKeys(t, appSecret, testSecret)
		}, "must differ"},
		{"a nil link key", func(c *auth.Config) { c.LinkKeys = []*auth.LinkKey{nil} }, "nil link key"},
		{"asymmetric staff keys and a link secret", func(c *auth.Config) { c.Keys = edSet; c.LinkKeys = linkKeys(t, appSecret) }, ""},
		{"an HMAC staff key and no link secret (as before link secrets)", func(*auth.Config) {}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.change(&c)
			_, err := auth.New(c)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.NotContains(t, err.Error(), appSecret)
			assert.NotContains(t, err.Error(), testSecret)
		})
	}
}

func TestLinkTokensWithoutLinkSecretUseTheStaffHMACKey(t *testing.T) {
	e := newEnv(t)
	tok, c, err := e.h.LinkTokens().IssueLinkToken(t.Context(), idm.LinkClaims{ID: idm.NewID(), Expires: t0.Add(time.Hour)})
	require.NoError(t, err)
	assert.Equal(t, auth.HS256, c.Algorithm)
	_, err = jwt.Parse(tok, func(*jwt.Token) (any, error) { return []byte(testSecret), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(func() time.Time { return t0 }))
	assert.NoError(t, err, "signed with exactly the bytes of the staff secret, as before link secrets existed")
}

func TestPreviousLinkSecretsKeepPrintedLinksVerifying(t *testing.T) {
	const newSecret = "the app build of 2027"
	issue := func(secrets ...string) (auth.Config, string) {
		e := newEnv(t, func(c *auth.Config) { c.LinkKeys = linkKeys(t, secrets...) })
		tok, _, err := e.h.LinkTokens().IssueLinkToken(t.Context(), idm.LinkClaims{ID: idm.NewID(), Expires: t0.Add(time.Hour)})
		require.NoError(t, err)
		return e.cfg, tok
	}
	_, printed := issue(appSecret)
	verify := func(token string, secrets ...string) error {
		e := newEnv(t, func(c *auth.Config) { c.LinkKeys = linkKeys(t, secrets...) })
		_, err := e.h.LinkTokens().VerifyLinkToken(t.Context(), token)
		return err
	}
	assert.NoError(t, verify(printed, newSecret, appSecret), "a link printed before the rotation")
	assert.ErrorIs(t, verify(printed, newSecret), idm.ErrForbidden, "once the previous secret is removed")

	_, fresh := issue(newSecret, appSecret)
	_, err := jwt.Parse(fresh, func(*jwt.Token) (any, error) { return []byte(newSecret), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(func() time.Time { return t0 }))
	assert.NoError(t, err, "new links are signed with the first secret")

	// A link token without kid (minted elsewhere with the same secret) is
	// checked against every link key.
	noKID := signed(t, jwt.SigningMethodHS256, []byte(appSecret), nil, jwt.MapClaims{
		"jti": idm.NewID(), "iss": auth.DefaultIssuer, "aud": auth.DefaultIssuer, "exp": t0.Add(time.Hour).Unix(),
		"sub": "Alice Example", "birthdate": "1980-05-17",
	})
	assert.NoError(t, verify(noKID, newSecret, appSecret))
	assert.ErrorIs(t, verify(noKID, newSecret), idm.ErrForbidden)
}
