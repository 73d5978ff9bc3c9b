package idm_test

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
)

func TestNormalizeUsernameRefusesInvisibleAndLookalikeNames(t *testing.T) {
	for _, tc := range []struct {
		name, in, want, err string
	}{
		{"plain", "Alice@Example.org", "alice@example.org", ""},
		{"white space around", "  bob@example.org\t", "bob@example.org", ""},
		{"decomposed accent composes", "Jose\u0301@example.org", "jos\u00e9@example.org", ""},
		{"dotted capital I", "\u0130x@example.org", "i\u0307x@example.org", ""},
		{"fullwidth letter maps to its plain form", "\uff52oot@example.org", "root@example.org", ""},
		{"fullwidth everywhere", "\uff32\uff2f\uff2f\uff34@example.org", "root@example.org", ""},
		{"one script, not Latin", "\u0438\u0432\u0430\u043d@example.org", "\u0438\u0432\u0430\u043d@example.org", ""},
		{"Latin and Han", "li\u674e@example.org", "li\u674e@example.org", ""},
		{"Greek sigma", "\u03a3\u03c9\u03c3\u03c4\u03b7\u03c2@example.org", "\u03c3\u03c9\u03c3\u03c4\u03b7\u03c2@example.org", ""},
		{"zero-width space at the end", "root@example.org\u200b", "", "invisible"},
		{"zero-width space inside", "ro\u200bot@example.org", "", "invisible"},
		{"zero-width joiner", "ro\u200dot@example.org", "", "invisible"},
		{"right-to-left override", "root\u202e@example.org", "", "invisible"},
		{"soft hyphen", "ro\u00adot@example.org", "", "invisible"},
		{"Cyrillic o among Latin", "r\u043eot@example.org", "", "mixes the scripts Cyrillic and Latin"},
		{"Cyrillic a in the domain", "root@ex\u0430mple.org", "", "mixes the scripts"},
		{"Greek and Latin", "\u03b1lice@example.org", "", "mixes the scripts"},
		{"symbol", "a\u2665b@example.org", "", "not allowed"},
		{"no address", "alice", "", "email address"},
		{"display name", "Alice <alice@example.org>", "", "email address"},
		{"empty", "  ", "", "required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := idm.NormalizeUsername(tc.in)
			if tc.err != "" {
				require.Error(t, err)
				assert.ErrorIs(t, err, idm.ErrInvalid)
				assert.Contains(t, idm.MessageOf(err), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, got, idm.UsernameKey(tc.in), "NormalizeUsername returns the key")
			assert.Equal(t, got, idm.UsernameKey(got), "the key is a fixed point")
		})
	}
}

func TestUsernameRuleAllowsMixedScriptsWhenConfigured(t *testing.T) {
	got, err := idm.UsernameRule{AllowMixedScripts: true}.Normalize("R\u043eot@example.org")
	require.NoError(t, err)
	assert.Equal(t, "r\u043eot@example.org", got)
	_, err = idm.UsernameRule{AllowMixedScripts: true}.Normalize("ro\u200bot@example.org")
	assert.ErrorIs(t, err, idm.ErrInvalid, "format characters stay refused")
}

func TestUsernameKeyIsAFixedPointForEveryLetter(t *testing.T) {
	// Runes go in batches, between letters that combine with nothing; a
	// batch that fails is checked rune by rune to name the culprit.
	check := func(rs []rune) bool {
		var b strings.Builder
		for _, c := range rs {
			b.WriteString("a" + string(c) + "b-")
		}
		k := idm.UsernameKey(b.String())
		return idm.UsernameKey(k) == k
	}
	var batch []rune
	flush := func() {
		if !check(batch) {
			for _, c := range batch {
				if !check([]rune{c}) {
					t.Errorf("U+%04X: the key of a%cb is no fixed point", c, c)
				}
			}
		}
		batch = batch[:0]
	}
	for c := rune(0x20); c < 0x30000; c++ {
		if utf8.ValidRune(c) {
			batch = append(batch, c)
		}
		if len(batch) == 512 {
			flush()
		}
	}
	flush()
}

func TestFindUserByUsernameFindsAccountsStoredUnderEarlierRules(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	legacy := []idm.User{
		{ID: idm.NewID(), Username: "\uff52oot@example.org"},  // fullwidth, lower-cased by the old rule
		{ID: idm.NewID(), Username: "jose\u0301@example.org"}, // decomposed, as migrate stored it
	}
	for _, u := range legacy {
		require.NoError(t, s.CreateUser(ctx, u))
	}
	for _, tc := range []struct{ typed, want string }{
		{"\uff52oot@example.org", legacy[0].ID},
		{"\uff32oot@Example.org", legacy[0].ID},
		{"jose\u0301@example.org", legacy[1].ID},
		{"JOSE\u0301@example.org", legacy[1].ID},
	} {
		u, err := idm.FindUserByUsername(ctx, s, tc.typed)
		if assert.NoError(t, err, tc.typed) {
			assert.Equal(t, tc.want, u.ID, tc.typed)
		}
	}
	_, err := idm.FindUserByUsername(ctx, s, "root@example.org")
	assert.ErrorIs(t, err, idm.ErrNotFound)
}
