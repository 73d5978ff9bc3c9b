package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"

	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/qrpng"
)

// The second factor: TOTP (RFC 6238) as authenticator apps use it, with
// SHA-1, 6 digits and 30 s steps, through github.com/pquerna/otp; its QR
// codes come from package qrpng, which also draws the enrolment links'.
const (
	// TOTPPeriod is the length of a time step.
	TOTPPeriod = 30 * time.Second
	// TOTPSkew is how many steps before and after the current one a code
	// may be of.
	TOTPSkew = 1
	// DefaultTOTPIssuer names the service in authenticator apps.
	DefaultTOTPIssuer = "idm"
	// recoveryCodeBytes is the entropy of a recovery code (80 bits).
	recoveryCodeBytes = 10
)

// totpOpts are the parameters of every code.
var totpOpts = hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// TOTPEnrolment is a new TOTP key, as POST /user/me/totp shows it once.
type TOTPEnrolment struct {
	Secret string // base32, without padding
	URI    string // the otpauth:// URI
	QRPNG  []byte // a PNG of the QR code of URI
}

// NewTOTPKey makes a new random TOTP key for account (a username) of
// issuer, with the QR code of its URI.
func NewTOTPKey(issuer, account string) (TOTPEnrolment, error) {
	if issuer == "" {
		issuer = DefaultTOTPIssuer
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: issuer, AccountName: account, Period: uint(TOTPPeriod / time.Second),
		Digits: totpOpts.Digits, Algorithm: totpOpts.Algorithm,
	})
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("auth: generating a TOTP key: %w", err)
	}
	// Level M with qrpng's default module size: an otpauth:// URI (about
	// 100 bytes) makes a code of 41 modules, some 400 pixels with its quiet
	// zone.
	img, err := qrpng.Encode(key.URL())
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("auth: drawing a TOTP QR code: %w", err)
	}
	return TOTPEnrolment{Secret: key.Secret(), URI: key.URL(), QRPNG: img}, nil
}

// TOTPStep returns the time step of t.
func TOTPStep(t time.Time) int64 { return t.Unix() / int64(TOTPPeriod/time.Second) }

// MatchTOTP reports whether code is the code of secret for a step within
// TOTPSkew steps of now's and after the step after (the latest accepted
// one, which makes every earlier code a replay), and returns that step.
// Codes are compared in constant time.
func MatchTOTP(secret, code string, now time.Time, after int64) (step int64, ok bool) {
	if !IsTOTPCode(code) || secret == "" {
		return 0, false
	}
	cur := TOTPStep(now)
	for s := cur - TOTPSkew; s <= cur+TOTPSkew; s++ {
		if s <= after || s < 0 {
			continue
		}
		if match, err := hotp.ValidateCustom(code, uint64(s), secret, totpOpts); err == nil && match {
			return s, true
		}
	}
	return 0, false
}

// IsTOTPCode reports whether s has the form of a one-time code (six
// digits) rather than of a recovery code.
func IsTOTPCode(s string) bool {
	if len(s) != totpOpts.Digits.Length() {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// recoveryEncoding writes recovery codes: base32 without padding, which
// has no characters that look alike in upper case.
var recoveryEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewRecoveryCodes makes idm.RecoveryCodeCount random recovery codes (80
// bits each, shown as XXXX-XXXX-XXXX-XXXX) and their hashes
// (HashRecoveryCode), which the store keeps.
func NewRecoveryCodes() (codes []string, hashes [idm.RecoveryCodeCount]string, err error) {
	codes = make([]string, idm.RecoveryCodeCount)
	for i := range codes {
		b := make([]byte, recoveryCodeBytes)
		if _, err := rand.Read(b); err != nil {
			return nil, hashes, fmt.Errorf("auth: making recovery codes: %w", err)
		}
		s := recoveryEncoding.EncodeToString(b) // 16 characters
		codes[i] = s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
		hashes[i] = HashRecoveryCode(codes[i])
	}
	return codes, hashes, nil
}

// HashRecoveryCode returns the lowercase hex SHA-256 of a recovery code as
// typed, in its normal form: without dashes and white space, upper case.
// (A fast hash is enough for 80 random bits.)
func HashRecoveryCode(code string) string {
	norm := strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, strings.ToUpper(code))
	sum := sha256.Sum256([]byte(norm))
	return hex.EncodeToString(sum[:])
}
