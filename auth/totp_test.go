package auth_test

import (
	"encoding/base32"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/internal/qrtest"
)

// rfcSecret is the SHA-1 seed of RFC 6238 appendix B ("12345678901234567890"),
// base32 as otpauth:// URIs carry secrets.
var rfcSecret = base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte("12345678901234567890"))

// rfcVectors are the SHA-1 rows of RFC 6238 appendix B: Unix time and the
// 8-digit TOTP.
var rfcVectors = []struct {
	unix int64
	code string
}{
	{59, "94287082"},
	{1111111109, "07081804"},
	{1111111111, "14050471"},
	{1234567890, "89005924"},
	{2000000000, "69279037"},
	{20000000000, "65353130"},
}

// The library that checks codes gives RFC 6238's test vectors (SHA-1, 8
// digits, 30 s steps), and so does MatchTOTP for their 6-digit form (the
// same value modulo 10^6), which also reports the RFC's step (T).
func TestTOTPRFC6238Vectors(t *testing.T) {
	for _, v := range rfcVectors {
		t.Run(fmt.Sprint(v.unix), func(t *testing.T) {
			at := time.Unix(v.unix, 0).UTC()
			ok, err := totp.ValidateCustom(v.code, rfcSecret, at, totp.ValidateOpts{
				Period: 30, Digits: otp.DigitsEight, Algorithm: otp.AlgorithmSHA1})
			require.NoError(t, err)
			assert.True(t, ok, "8-digit code at %v", at)
			ok, err = totp.ValidateCustom(v.code, rfcSecret, at.Add(time.Hour), totp.ValidateOpts{
				Period: 30, Digits: otp.DigitsEight, Algorithm: otp.AlgorithmSHA1})
			require.NoError(t, err)
			assert.False(t, ok, "an hour later")

			six := v.code[2:]
			step, ok := auth.MatchTOTP(rfcSecret, six, at, 0)
			assert.True(t, ok, "6-digit code %s", six)
			assert.Equal(t, v.unix/30, step)
			assert.Equal(t, v.unix/30, auth.TOTPStep(at))
		})
	}
}

// MatchTOTP accepts a code one step before or after the current one, not
// two; and never a code of a step at or before the last accepted one.
func TestMatchTOTPSkewAndReplay(t *testing.T) {
	at := time.Unix(1234567890, 0)
	code := "005924" // of step 41152263
	const step = 1234567890 / 30
	for _, tc := range []struct {
		name  string
		shift time.Duration
		after int64
		ok    bool
	}{
		{"now", 0, 0, true},
		{"one step later", 30 * time.Second, 0, true},
		{"one step earlier", -30 * time.Second, 0, true},
		{"two steps later", 60 * time.Second, 0, false},
		{"two steps earlier", -60 * time.Second, 0, false},
		{"step already accepted", 0, step, false},
		{"later step accepted", 0, step + 1, false},
		{"earlier step accepted", 0, step - 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := auth.MatchTOTP(rfcSecret, code, at.Add(tc.shift), tc.after)
			assert.Equal(t, tc.ok, ok)
			if ok {
				assert.Equal(t, int64(step), got)
			}
		})
	}
	for _, bad := range []string{"", "00592", "0059244", "abcdef", " 05924"} {
		_, ok := auth.MatchTOTP(rfcSecret, bad, at, 0)
		assert.False(t, ok, "%q", bad)
	}
	_, ok := auth.MatchTOTP("", code, at, 0)
	assert.False(t, ok, "no secret")
}

// A new key has a random secret, an otpauth:// URI with the issuer and the
// account, and a PNG QR code; codes made from its secret match.
func TestNewTOTPKey(t *testing.T) {
	k, err := auth.NewTOTPKey("", "ann@example.org")
	require.NoError(t, err)
	u, err := url.Parse(k.URI)
	require.NoError(t, err)
	assert.Equal(t, "otpauth", u.Scheme)
	assert.Equal(t, "totp", u.Host)
	assert.Equal(t, "/idm:ann@example.org", u.Path)
	assert.Equal(t, auth.DefaultTOTPIssuer, u.Query().Get("issuer"))
	assert.Equal(t, k.Secret, u.Query().Get("secret"))
	code, err := qrtest.Decode(k.QRPNG)
	require.NoError(t, err)
	assert.Equal(t, k.URI, code.Text, "the QR code holds the URI")
	assert.Equal(t, "M", code.Level)
	now := time.Now()
	otpCode, err := totp.GenerateCode(k.Secret, now)
	require.NoError(t, err)
	_, ok := auth.MatchTOTP(k.Secret, otpCode, now, 0)
	assert.True(t, ok)
	k2, err := auth.NewTOTPKey("Study X", "ann@example.org")
	require.NoError(t, err)
	assert.NotEqual(t, k.Secret, k2.Secret)
	assert.Contains(t, k2.URI, "issuer=Study%20X")
}

// Recovery codes are distinct, 80-bit, hashed whatever their spelling.
func TestRecoveryCodes(t *testing.T) {
	codes, hashes, err := auth.NewRecoveryCodes()
	require.NoError(t, err)
	require.Len(t, codes, idm.RecoveryCodeCount)
	seen := map[string]bool{}
	for i, c := range codes {
		assert.Len(t, c, 19, "XXXX-XXXX-XXXX-XXXX")
		assert.False(t, seen[c], "distinct")
		seen[c] = true
		assert.Equal(t, hashes[i], auth.HashRecoveryCode(c))
		assert.Equal(t, hashes[i], auth.HashRecoveryCode(strings.ToLower(strings.ReplaceAll(c, "-", " "))))
		assert.NotContains(t, hashes[i], strings.ReplaceAll(c, "-", ""))
		assert.False(t, auth.IsTOTPCode(c))
	}
}
