package main_test

import (
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/boltstore"
	"github.com/c3-pro/idm/idm"
)

// TestUserListAccessReview checks that `idmd user list --format csv` gives
// each user's role, sites, second factor, disabled state and last
// successful login for a periodic access review; a user stored without a
// role reads as a coordinator of every site.
func TestUserListAccessReview(t *testing.T) {
	env := baseEnv(t)
	var dbPath string
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "IDM_DB="); ok {
			dbPath = v
		}
	}
	s, err := boltstore.Open(dbPath)
	require.NoError(t, err)
	now := idm.Timestamp(time.Now())
	monitor := idm.User{ID: idm.NewID(), Username: "monitor@example.org", Role: idm.RoleMonitor, Sites: []string{"A", "B"}, Disabled: true, Created: now, Changed: now}
	for _, u := range []idm.User{
		{ID: idm.NewID(), Username: "legacy@example.org", Created: now, Changed: now},
		monitor,
		{ID: idm.NewID(), Username: "boss@example.org", Admin: true, Created: now, Changed: now},
	} {
		require.NoError(t, s.CreateUser(t.Context(), u))
	}
	lastLogin := time.Date(2026, 11, 30, 8, 15, 0, 0, time.UTC)
	require.NoError(t, s.RecordLogin(t.Context(), monitor.ID, lastLogin))
	require.NoError(t, s.Close())

	code, out := runCmd(t, env, "", "user", "list", "--format", "csv")
	require.Equal(t, 0, code, out)
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	require.NoError(t, err, out)
	require.Len(t, rows, 4, out)
	assert.Equal(t, []string{"id", "username", "role", "sites", "admin", "totp", "disabled", "created", "last_login"}, rows[0])
	got := map[string][]string{}
	for _, r := range rows[1:] {
		got[r[1]] = append(r[2:7:7], r[8])
	}
	assert.Equal(t, []string{"coordinator", "*", "false", "false", "false", "never"}, got["legacy@example.org"])
	assert.Equal(t, []string{"monitor", "A B", "false", "false", "true", "2026-11-30T08:15:00Z"}, got["monitor@example.org"])
	assert.Equal(t, []string{"admin", "*", "true", "false", "false", "never"}, got["boss@example.org"])

	code, out = runCmd(t, env, "", "user", "list", "--format", "xml")
	assert.NotEqual(t, 0, code, out)
	code, out = runCmd(t, env, "", "user", "list")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "ROLE")
	assert.Contains(t, out, "monitor")
	assert.Contains(t, out, "LAST_LOGIN")
}
