package main_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/boltstore"
	"github.com/c3-pro/idm/idm"
)

// `idmd user add` applies the username rule (IDM_USERNAME_MIXED_SCRIPTS
// relaxes its script part), and `idmd user list --check` reports the
// existing users whose names break it, without changing them; such users
// can still be found by the other subcommands.
func TestUserListCheck(t *testing.T) {
	env := baseEnv(t)
	var dbPath string
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "IDM_DB="); ok {
			dbPath = v
		}
	}
	// Users stored by earlier versions, directly in the file.
	s, err := boltstore.Open(dbPath)
	require.NoError(t, err)
	now := idm.Timestamp(time.Now())
	legacy := map[string]string{}
	for _, name := range []string{"alice@example.org", "ro\u200bot@example.org", "\uff41lice@example.org", "r\u043eot@example.org"} {
		u := idm.User{ID: idm.NewID(), Username: name, Created: now, Changed: now}
		require.NoError(t, s.CreateUser(t.Context(), u))
		legacy[name] = u.ID
	}
	require.NoError(t, s.Close())

	code, out := runCmd(t, env, adminPass+"\n", "user", "add", "B\u043eb@example.org", "--password-stdin")
	assert.NotEqual(t, 0, code, out)
	assert.Contains(t, out, "mixes the scripts Cyrillic and Latin")
	code, out = runCmd(t, env, adminPass+"\n", "user", "add", "ro\u200bbert@example.org", "--password-stdin")
	assert.NotEqual(t, 0, code, out)
	assert.Contains(t, out, "invisible formatting characters")
	code, out = runCmd(t, append(env, "IDM_USERNAME_MIXED_SCRIPTS=allow"), adminPass+"\n", "user", "add", "B\u043eb@example.org", "--password-stdin")
	assert.Equal(t, 0, code, out)

	code, out = runCmd(t, env, "", "user", "list", "--check")
	require.Equal(t, 0, code, out)
	t.Logf("user list --check:\n%s", out)
	for _, want := range []string{
		legacy["ro\u200bot@example.org"] + ` "ro\u200bot@example.org": refused by the username rule: username may not contain invisible formatting characters`,
		legacy["\uff41lice@example.org"] + ` "\uff41lice@example.org": not in normal form: it normalises to "alice@example.org"`,
		legacy["\uff41lice@example.org"] + ` "\uff41lice@example.org": collides after normalisation with user ` + legacy["alice@example.org"],
		legacy["alice@example.org"] + ` "alice@example.org": collides after normalisation with user ` + legacy["\uff41lice@example.org"],
		legacy["r\u043eot@example.org"] + ` "r\u043eot@example.org": refused by the username rule: username mixes the scripts Cyrillic and Latin`,
		`"b\u043eb@example.org": refused by the username rule`,
		"5 users checked, 6 problems",
	} {
		assert.Contains(t, out, want)
	}
	// Nothing was changed, and such users are still found by name.
	code, out = runCmd(t, env, "", "user", "delete", "ro\u200bot@example.org")
	assert.Equal(t, 0, code, out)
	code, out = runCmd(t, env, "", "user", "list", "--check")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "4 users checked, 5 problems")
}
