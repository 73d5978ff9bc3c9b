package idm

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/language"
	"golang.org/x/text/secure/precis"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/width"
)

// MaxUsernameBytes is the longest username, in bytes, that the service
// accepts (the longest an email address can be).
const MaxUsernameBytes = 254

// usernameMapping is the mapping of the PRECIS UsernameCaseMapped profile
// (RFC 8265 section 3.4): width mapping, case mapping (Unicode toLowerCase,
// as golang.org/x/text/secure/precis does it), then NFC.
func usernameMapping() transform.Transformer {
	return transform.Chain(width.Fold, cases.Lower(language.Und, cases.HandleFinalSigma(false)), norm.NFC)
}

// UsernameKey returns the form in which a username is stored, looked up and
// throttled: s without surrounding white space, mapped as the PRECIS
// UsernameCaseMapped profile maps it (fullwidth and halfwidth letters to
// their plain forms, lower case, NFC). It never fails and checks nothing:
// every spelling of an account's name that a person may type gives the same
// key, so that logins, lookups and the login-failure counters of the
// account agree. [NormalizeUsername] is the check for new names; it returns
// this same key.
func UsernameKey(s string) string {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		return s // no name that passed NormalizeUsername; matches nothing else
	}
	// Mapping is applied until the result is stable: lower-casing can leave
	// a sequence that NFC composes further, and the key must be a fixed
	// point, or the same user would get two keys.
	for range 4 {
		k, _, err := transform.String(usernameMapping(), s)
		if err != nil || k == s {
			return s
		}
		s = k
	}
	return s
}

// UsernameRule is the rule for new usernames (created, or given at /init or
// on the command line). Its zero value is the default rule.
type UsernameRule struct {
	// AllowMixedScripts accepts usernames whose parts mix scripts beyond
	// what UTS #39's "highly restrictive" level allows (such as a Cyrillic
	// letter among Latin ones). Off by default.
	AllowMixedScripts bool
}

// NormalizeUsername checks s under the default [UsernameRule]; see
// [UsernameRule.Normalize].
func NormalizeUsername(s string) (string, error) { return UsernameRule{}.Normalize(s) }

// Normalize checks that s (with surrounding white space removed) is a
// usable username and returns its [UsernameKey], the form in which it is
// stored. A usable username is a plain email address - an addr-spec such
// as "alice@example.org", without a display name, angle brackets, comments,
// quoted local part or domain literal - of at most [MaxUsernameBytes]
// bytes, that the PRECIS UsernameCaseMapped profile (RFC 8265) accepts,
// with no format characters (Unicode category Cf: zero-width characters,
// bidirectional controls), and whose local part and each domain label are
// written in one script or one of the combinations of UTS #39's "highly
// restrictive" level (unless r.AllowMixedScripts). An unusable s gives an
// [*Error] of kind [ErrInvalid] that says what is wrong.
func (r UsernameRule) Normalize(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", E(ErrInvalid, "username is required")
	case len(s) > MaxUsernameBytes:
		return "", E(ErrInvalid, fmt.Sprintf("username must be at most %d bytes long", MaxUsernameBytes))
	case !utf8.ValidString(s):
		return "", E(ErrInvalid, msgUsernameForm)
	}
	if err := checkFormatChars("username", s); err != nil {
		return "", err
	}
	key := UsernameKey(s)
	if len(key) > MaxUsernameBytes { // mapping may lengthen some letters
		return "", E(ErrInvalid, fmt.Sprintf("username must be at most %d bytes long", MaxUsernameBytes))
	}
	// Check what is stored: NFC can turn a letter into one that an address
	// may not hold (U+037E becomes ';').
	a, err := mail.ParseAddress(key)
	if err != nil || a.Name != "" || a.Address != key || strings.ContainsAny(key, "[]") {
		return "", E(ErrInvalid, msgUsernameForm)
	}
	// The profile's own enforcement checks what the key holds (disallowed
	// code points, the bidi rule); it must agree with the key.
	if p, err := precis.UsernameCaseMapped.String(key); err != nil || p != key {
		return "", E(ErrInvalid, "username contains characters that are not allowed in usernames")
	}
	if !r.AllowMixedScripts {
		if err := checkScripts(key); err != nil {
			return "", err
		}
	}
	return key, nil
}

const msgUsernameForm = "username must be an email address such as name@example.org"

// checkFormatChars refuses a value that holds a format character (Unicode
// category Cf: zero-width spaces and joiners, bidirectional controls, soft
// hyphens): they are invisible, so two values that look the same could
// differ. what names the value in the message.
func checkFormatChars(what, s string) error {
	for _, c := range s {
		if unicode.Is(unicode.Cf, c) {
			return E(ErrInvalid, fmt.Sprintf("%s may not contain invisible formatting characters (found U+%04X)", what, c))
		}
	}
	return nil
}

// checkScripts applies UTS #39's "highly restrictive" level to the local
// part and to each label of the domain of an address: the letters of each
// come from a single script, or only from Latin with Han, Hiragana and
// Katakana; Latin with Han and Bopomofo; or Latin with Han and Hangul.
// Characters of the Common and Inherited scripts (digits, punctuation,
// combining marks) go with any script.
func checkScripts(addr string) error {
	at := strings.LastIndexByte(addr, '@')
	parts := append([]string{addr[:at]}, strings.Split(addr[at+1:], ".")...)
	for _, p := range parts {
		if s, ok := mixedScripts(p); !ok {
			return E(ErrInvalid, fmt.Sprintf("username mixes the scripts %s in %+q; use letters of one script", strings.Join(s, " and "), p))
		}
	}
	return nil
}

// restrictiveSets are the combinations of several scripts that UTS #39's
// "highly restrictive" level allows in one identifier.
var restrictiveSets = [][]string{
	{"Latin", "Han", "Hiragana", "Katakana"},
	{"Latin", "Han", "Bopomofo"},
	{"Latin", "Han", "Hangul"},
}

// mixedScripts returns the scripts of the letters of s, sorted, and whether
// they are a single script or a combination in restrictiveSets.
func mixedScripts(s string) ([]string, bool) {
	var seen []string
	for _, c := range s {
		name := scriptOf(c)
		if name == "" || name == "Common" || name == "Inherited" || slices.Contains(seen, name) {
			continue
		}
		seen = append(seen, name)
	}
	if len(seen) <= 1 {
		return seen, true
	}
	slices.Sort(seen)
	for _, set := range restrictiveSets {
		if !slices.ContainsFunc(seen, func(n string) bool { return !slices.Contains(set, n) }) {
			return seen, true
		}
	}
	return seen, false
}

// scriptOf returns the name of the Unicode script of c ("" when none).
func scriptOf(c rune) string {
	switch {
	case c < utf8.RuneSelf && ('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'):
		return "Latin"
	case c < utf8.RuneSelf:
		return "Common"
	}
	for name, table := range unicode.Scripts {
		if unicode.Is(table, c) {
			return name
		}
	}
	return ""
}

// UsernameFinder is the lookup that [FindUserByUsername] needs: a store's
// FindUserByUsername, which compares usernames as stored.
type UsernameFinder interface {
	FindUserByUsername(ctx context.Context, username string) (User, error)
}

// FindUserByUsername returns the user that name, as a person typed it,
// names: the user stored under [UsernameKey](name), or else one stored by
// an earlier version of the service under the form that version made of
// name (lower-cased, or NFC-normalised and lower-cased), so that accounts
// made before the current rule can still log in (`idmd user list --check`
// reports them). It gives an error that wraps ErrNotFound when there is no
// such user.
func FindUserByUsername(ctx context.Context, s UsernameFinder, name string) (User, error) {
	key := UsernameKey(name)
	u, err := s.FindUserByUsername(ctx, key)
	if err == nil || !errors.Is(err, ErrNotFound) {
		return u, err
	}
	trimmed := strings.TrimSpace(name)
	for _, legacy := range []string{
		norm.NFC.String(strings.ToLower(norm.NFC.String(trimmed))),
		strings.ToLower(trimmed),
	} {
		if legacy == key {
			continue
		}
		lu, lerr := s.FindUserByUsername(ctx, legacy)
		if lerr == nil || !errors.Is(lerr, ErrNotFound) {
			return lu, lerr
		}
	}
	return u, err
}

// UsernameProblem says how a stored username breaks the current rule.
type UsernameProblem struct {
	UserID   string // the user's ID
	Username string // as stored
	Reason   string
}

// String renders the problem on one line.
func (p UsernameProblem) String() string {
	return fmt.Sprintf("user %s %+q: %s", p.UserID, p.Username, p.Reason)
}

// Check returns the problems of stored users' usernames under r, in the
// order of us: names that r would refuse today, names that are not in their
// normal form ([UsernameKey]), and names that another's normalises to. Such
// users can still log in (see [FindUserByUsername]); an admin may want to
// replace them by users with usable names.
func (r UsernameRule) Check(us []User) []UsernameProblem {
	byKey := map[string][]User{}
	for _, u := range us {
		k := UsernameKey(u.Username)
		byKey[k] = append(byKey[k], u)
	}
	var out []UsernameProblem
	for _, u := range us {
		add := func(reason string) {
			out = append(out, UsernameProblem{UserID: u.ID, Username: u.Username, Reason: reason})
		}
		key, err := r.Normalize(u.Username)
		if err != nil {
			add("refused by the username rule: " + MessageOf(err))
			key = UsernameKey(u.Username)
		}
		if key != u.Username {
			add(fmt.Sprintf("not in normal form: it normalises to %+q", key))
		}
		for _, o := range byKey[key] {
			if o.ID != u.ID {
				add(fmt.Sprintf("collides after normalisation with user %s %+q", o.ID, o.Username))
			}
		}
	}
	return out
}
