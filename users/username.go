package users

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode/utf8"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
)

// MaxUsernameBytes is the longest username, in bytes, that the service
// accepts (the longest an email address can be).
const MaxUsernameBytes = 254

// NormalizeUsername checks that s (with surrounding white space removed) is
// a plain email address - an addr-spec such as "alice@example.org", without
// a display name, angle brackets, comments, quoted local part or domain
// literal - of at most [MaxUsernameBytes] bytes, and returns it in the form
// in which usernames are stored and compared: NFC-normalised and lower-cased
// ([auth.LoginKey], so that logins and their failure counters use the very
// same form). An invalid s
// gives an [*idm.Error] of kind [idm.ErrInvalid] that says what is wrong.
func NormalizeUsername(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", idm.E(idm.ErrInvalid, "username is required")
	case len(s) > MaxUsernameBytes:
		return "", idm.E(idm.ErrInvalid, fmt.Sprintf("username must be at most %d bytes long", MaxUsernameBytes))
	}
	if !utf8.ValidString(s) { // lower-casing would replace the bad bytes
		return "", idm.E(idm.ErrInvalid, "username must be an email address such as name@example.org")
	}
	// Normalise first and check what is stored: NFC can turn a letter into
	// one that an address may not hold (U+037E becomes ';').
	lower := auth.LoginKey(s)
	if len(lower) > MaxUsernameBytes { // normalising may lengthen some letters
		return "", idm.E(idm.ErrInvalid, fmt.Sprintf("username must be at most %d bytes long", MaxUsernameBytes))
	}
	a, err := mail.ParseAddress(lower)
	if err != nil || a.Name != "" || a.Address != lower || strings.ContainsAny(lower, "[]") {
		return "", idm.E(idm.ErrInvalid, "username must be an email address such as name@example.org")
	}
	return lower, nil
}
