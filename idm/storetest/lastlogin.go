package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/idm"
)

func lastLoginTests() []test {
	return []test{
		{"RecordedAndKept", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			u := newUser("a@example.org")
			createUsers(t, s, u)
			got, err := s.FindUserByID(ctx, u.ID)
			require.NoError(t, err)
			assert.True(t, got.LastLogin.IsZero(), "none yet")

			require.NoError(t, s.RecordLogin(ctx, u.ID, at(time.Hour).Add(123456*time.Nanosecond)))
			got, err = s.FindUserByID(ctx, u.ID)
			require.NoError(t, err)
			assert.Equal(t, idm.Timestamp(at(time.Hour).Add(123456*time.Nanosecond)), got.LastLogin)
			assert.Equal(t, u.Rev+1, got.Rev, "Rev one more")
			want := u
			want.LastLogin, want.Rev = got.LastLogin, got.Rev
			assert.Equal(t, want, got, "nothing else changed")
			assert.ErrorIs(t, s.UpdateUser(ctx, u), idm.ErrStale, "an update read before the login is stale")

			require.NoError(t, s.RecordLogin(ctx, u.ID, at(time.Minute)))
			got, err = s.FindUserByID(ctx, u.ID)
			require.NoError(t, err)
			assert.Equal(t, idm.Timestamp(at(time.Hour)), got.LastLogin, "never moved back")

			got.Role, got.Sites = idm.RoleMonitor, []string{"a"}
			updateUser(t, s, &got)
			again, err := s.FindUserByUsername(ctx, u.Username)
			require.NoError(t, err)
			assert.Equal(t, got.LastLogin, again.LastLogin, "kept by UpdateUser")

			assert.ErrorIs(t, s.RecordLogin(ctx, idm.NewID(), at(0)), idm.ErrNotFound)
		}},
		{"Concurrent", func(t *testing.T, s idm.Store) {
			u := newUser("a@example.org")
			createUsers(t, s, u)
			const n = 8
			errs := concurrently(n, func(i int) error { return s.RecordLogin(t.Context(), u.ID, at(time.Duration(i)*time.Second)) })
			for _, err := range errs {
				require.NoError(t, err)
			}
			got, err := s.FindUserByID(t.Context(), u.ID)
			require.NoError(t, err)
			assert.Equal(t, at((n-1)*time.Second), got.LastLogin, "the latest wins whatever the order")
		}},
	}
}
