package auth

import (
	_ "embed"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/c3-pro/idm/idm"
)

// commonPasswordList is the embedded list of the 10 000 most common
// passwords (see commonpasswords.txt for its source and licence).
//
//go:embed commonpasswords.txt
var commonPasswordList string

// commonPasswords returns the passwords of the embedded list, one per line,
// each line ending in a newline: a lookup is a substring search in the
// embedded data, so the list costs no heap memory (a set of it would keep
// about 0.4 MB alive), and a search of its 80 kB takes microseconds, next
// to the hash that follows every check.
func commonPasswords() string {
	list := commonPasswordList
	// The comment lines come first.
	for strings.HasPrefix(list, "#") {
		_, list, _ = strings.Cut(list, "\n")
	}
	return list
}

// Check applies the password policy to a new password: after NFC
// normalisation it must be valid UTF-8 of MinLength (default 8) to
// [MaxPasswordLength] (128) characters, counted in Unicode code points, and
// must not be one of the 10 000 most common passwords (compared without
// regard to letter case). Any characters are allowed and there are no
// composition rules. A refusal is an [*idm.Error] of kind idm.ErrInvalid
// whose message says what is wrong.
func (p *Passwords) Check(pw string) error {
	if !utf8.ValidString(pw) {
		return idm.E(idm.ErrInvalid, "password is not valid UTF-8")
	}
	n := utf8.RuneCountInString(norm.NFC.String(pw))
	switch {
	case n < p.minLength:
		return idm.E(idm.ErrInvalid, fmt.Sprintf("password must be at least %d characters long", p.minLength))
	case n > MaxPasswordLength:
		return idm.E(idm.ErrInvalid, fmt.Sprintf("password must be at most %d characters long", MaxPasswordLength))
	}
	if p.IsCommon(pw) {
		return idm.E(idm.ErrInvalid, "password is too common; choose one that is harder to guess")
	}
	return nil
}

// IsCommon reports whether pw (after NFC normalisation, in any letter case)
// is one of the 10 000 most common passwords.
func (p *Passwords) IsCommon(pw string) bool {
	pw = strings.ToLower(norm.NFC.String(pw))
	if pw == "" || strings.ContainsAny(pw, "\r\n") {
		return false // not a line of the list
	}
	line := pw + "\n"
	return strings.HasPrefix(p.common, line) || strings.Contains(p.common, "\n"+line)
}
