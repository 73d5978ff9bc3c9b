package storetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/idm"
)

// totpUser returns a new user with an active second factor whose last
// accepted step is 100 and whose recovery codes are r0 … r9.
func totpUser(username string) idm.User {
	u := newUser(username)
	u.TOTP = idm.TOTP{Secret: "JBSWY3DPEHPK3PXP", Active: true, LastStep: 100}
	for i := range u.TOTP.Recovery {
		u.TOTP.Recovery[i] = fmt.Sprintf("r%d", i)
	}
	return u
}

func totpTests() []test {
	return []test{
		{"RoundTrip", func(t *testing.T, s idm.Store) {
			u := totpUser("a@example.org")
			createUsers(t, s, u)
			got, err := s.FindUserByID(t.Context(), u.ID)
			require.NoError(t, err)
			assert.Equal(t, u.TOTP, got.TOTP)
			pending := newUser("b@example.org")
			pending.TOTP.Secret = "KRSXG5A"
			createUsers(t, s, pending)
			got, err = s.FindUserByUsername(t.Context(), pending.Username)
			require.NoError(t, err)
			assert.Equal(t, pending.TOTP, got.TOTP)
			got.TOTP = idm.TOTP{}
			updateUser(t, s, &got)
			got, err = s.FindUserByID(t.Context(), pending.ID)
			require.NoError(t, err)
			assert.Equal(t, idm.TOTP{}, got.TOTP, "cleared by UpdateUser")
		}},
		{"AcceptStep", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			u := totpUser("a@example.org")
			createUsers(t, s, u)
			for _, step := range []int64{99, 100} {
				assert.ErrorIs(t, s.AcceptTOTPStep(ctx, u.ID, step), idm.ErrConflict, "step %d", step)
				assert.NotErrorIs(t, s.AcceptTOTPStep(ctx, u.ID, step), idm.ErrStale, "step %d", step)
			}
			require.NoError(t, s.AcceptTOTPStep(ctx, u.ID, 101))
			assert.ErrorIs(t, s.AcceptTOTPStep(ctx, u.ID, 101), idm.ErrConflict, "the same step again")
			got, err := s.FindUserByID(ctx, u.ID)
			require.NoError(t, err)
			assert.Equal(t, int64(101), got.TOTP.LastStep)
			assert.Equal(t, int64(2), got.Rev, "Rev raised")
			want := u.TOTP
			want.LastStep = 101
			assert.Equal(t, want, got.TOTP, "nothing else changed")
			assert.ErrorIs(t, s.UpdateUser(ctx, u), idm.ErrStale, "an update read before the step is stale")
			assert.ErrorIs(t, s.AcceptTOTPStep(ctx, idm.NewID(), 200), idm.ErrNotFound)
		}},
		{"AcceptStepNeedsActive", func(t *testing.T, s idm.Store) {
			u := newUser("a@example.org")
			u.TOTP.Secret = "JBSWY3DPEHPK3PXP" // pending
			createUsers(t, s, u)
			assert.ErrorIs(t, s.AcceptTOTPStep(t.Context(), u.ID, 5), idm.ErrConflict)
		}},
		{"AcceptStepConcurrent", func(t *testing.T, s idm.Store) {
			u := totpUser("a@example.org")
			createUsers(t, s, u)
			const n = 8
			errs := concurrently(n, func(int) error { return s.AcceptTOTPStep(t.Context(), u.ID, 150) })
			ok := 0
			for _, err := range errs {
				if err == nil {
					ok++
				} else {
					assert.ErrorIs(t, err, idm.ErrConflict)
				}
			}
			assert.Equal(t, 1, ok, "exactly one of %d concurrent callers", n)
		}},
		{"ConsumeRecovery", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			u := totpUser("a@example.org")
			createUsers(t, s, u)
			require.NoError(t, s.ConsumeTOTPRecovery(ctx, u.ID, "r3"))
			assert.ErrorIs(t, s.ConsumeTOTPRecovery(ctx, u.ID, "r3"), idm.ErrNotFound, "used once")
			assert.ErrorIs(t, s.ConsumeTOTPRecovery(ctx, u.ID, "nope"), idm.ErrNotFound)
			assert.ErrorIs(t, s.ConsumeTOTPRecovery(ctx, u.ID, ""), idm.ErrNotFound)
			assert.ErrorIs(t, s.ConsumeTOTPRecovery(ctx, idm.NewID(), "r1"), idm.ErrNotFound)
			got, err := s.FindUserByID(ctx, u.ID)
			require.NoError(t, err)
			assert.Equal(t, []string{"r0", "r1", "r2", "r4", "r5", "r6", "r7", "r8", "r9"}, idm.RecoveryList(got.TOTP.Recovery))
			assert.Equal(t, "", got.TOTP.Recovery[idm.RecoveryCodeCount-1])
			assert.Equal(t, int64(2), got.Rev)
			assert.Equal(t, u.TOTP.LastStep, got.TOTP.LastStep)
			got.TOTP.Active = false
			updateUser(t, s, &got)
			assert.ErrorIs(t, s.ConsumeTOTPRecovery(ctx, u.ID, "r0"), idm.ErrNotFound, "TOTP not active")
		}},
		{"ConsumeRecoveryConcurrent", func(t *testing.T, s idm.Store) {
			u := totpUser("a@example.org")
			createUsers(t, s, u)
			const n = 8
			errs := concurrently(n, func(int) error { return s.ConsumeTOTPRecovery(t.Context(), u.ID, "r5") })
			ok := 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case !errors.Is(err, idm.ErrNotFound):
					t.Errorf("unexpected error: %v", err)
				}
			}
			assert.Equal(t, 1, ok, "exactly one of %d concurrent callers", n)
		}},
	}
}
