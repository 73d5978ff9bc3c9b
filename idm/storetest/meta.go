package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/c3-pro/idm/idm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newResetToken(userID string, created time.Time, valid time.Duration) idm.ResetToken {
	return idm.ResetToken{
		Hash:    hexSHA256(idm.NewID()),
		UserID:  userID,
		Purpose: "reset",
		Created: created,
		Expires: created.Add(valid),
	}
}

func createResetTokens(t *testing.T, s idm.Store, tokens ...idm.ResetToken) {
	t.Helper()
	for _, tok := range tokens {
		require.NoError(t, s.CreateResetToken(t.Context(), tok), "CreateResetToken")
	}
}

func countResetTokens(t *testing.T, s idm.Store, userID string, since time.Time) int {
	t.Helper()
	n, err := s.CountResetTokens(t.Context(), userID, since)
	require.NoError(t, err)
	return n
}

func resetTokenTests() []test {
	return []test{
		{"CreateAndFind", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			tok := newResetToken(idm.NewID(), at(0), 2*time.Hour)
			tok.Purpose = "invite"
			createResetTokens(t, s, tok)
			for range 3 { // finding does not consume
				got, err := s.FindResetToken(ctx, tok.Hash, at(time.Hour))
				require.NoError(t, err)
				assertSame(t, tok, got)
			}
			for _, h := range []string{"", hexSHA256("other"), tok.Hash[:63], ".*"} {
				_, err := s.FindResetToken(ctx, h, at(time.Hour))
				assert.ErrorIs(t, err, idm.ErrNotFound, "hash %q", h)
			}
			got, err := s.ConsumeResetToken(ctx, tok.Hash, at(time.Hour))
			require.NoError(t, err)
			assertSame(t, tok, got)
		}},
		{"DuplicateHash", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			tok := newResetToken(idm.NewID(), at(0), time.Hour)
			createResetTokens(t, s, tok)
			dup := newResetToken(idm.NewID(), at(time.Minute), 2*time.Hour)
			dup.Hash = tok.Hash
			assert.ErrorIs(t, s.CreateResetToken(ctx, dup), idm.ErrConflict)
			got, err := s.FindResetToken(ctx, tok.Hash, at(0))
			require.NoError(t, err)
			assertSame(t, tok, got)
			assert.Equal(t, 0, countResetTokens(t, s, dup.UserID, time.Time{}))
		}},
		{"Expiry", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			tok := newResetToken(idm.NewID(), at(0), 2*time.Hour)
			createResetTokens(t, s, tok)
			expires := at(2 * time.Hour)
			_, err := s.FindResetToken(ctx, tok.Hash, expires.Add(-time.Millisecond))
			require.NoError(t, err, "a millisecond before expiry")
			for _, now := range []time.Time{expires, expires.Add(time.Millisecond), expires.Add(24 * time.Hour)} {
				_, err = s.FindResetToken(ctx, tok.Hash, now)
				assert.ErrorIs(t, err, idm.ErrNotFound, "find at %v", now)
				_, err = s.ConsumeResetToken(ctx, tok.Hash, now)
				assert.ErrorIs(t, err, idm.ErrNotFound, "consume at %v", now)
			}
			// Not yet purged: still counted.
			assert.Equal(t, 1, countResetTokens(t, s, tok.UserID, time.Time{}))
		}},
		{"ConsumeOnce", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			tok, other := newResetToken("u1", at(0), time.Hour), newResetToken("u1", at(0), time.Hour)
			createResetTokens(t, s, tok, other)
			got, err := s.ConsumeResetToken(ctx, tok.Hash, at(time.Minute))
			require.NoError(t, err)
			assertSame(t, tok, got)
			_, err = s.ConsumeResetToken(ctx, tok.Hash, at(time.Minute))
			assert.ErrorIs(t, err, idm.ErrNotFound, "second consume")
			_, err = s.FindResetToken(ctx, tok.Hash, at(time.Minute))
			assert.ErrorIs(t, err, idm.ErrNotFound, "find after consume")
			got, err = s.FindResetToken(ctx, other.Hash, at(time.Minute))
			require.NoError(t, err, "the user's other token")
			assertSame(t, other, got)
			assert.Equal(t, 1, countResetTokens(t, s, "u1", time.Time{}))
		}},
		{"ConsumeConcurrent", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			tok := newResetToken(idm.NewID(), at(0), time.Hour)
			createResetTokens(t, s, tok)
			const n = 50
			results := make([]idm.ResetToken, n)
			errs := concurrently(n, func(i int) error {
				var err error
				results[i], err = s.ConsumeResetToken(ctx, tok.Hash, at(time.Minute))
				return err
			})
			w := requireOneWinner(t, errs, idm.ErrNotFound)
			assertSame(t, tok, results[w])
			assert.Equal(t, 0, countResetTokens(t, s, tok.UserID, time.Time{}))
		}},
		{"DeleteForUser", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			a1, a2, expired := newResetToken("ua", at(0), time.Hour), newResetToken("ua", at(time.Minute), time.Hour), newResetToken("ua", at(-3*time.Hour), time.Hour)
			b1 := newResetToken("ub", at(0), time.Hour)
			createResetTokens(t, s, a1, a2, expired, b1)
			require.NoError(t, s.DeleteResetTokens(ctx, "ua"))
			for _, tok := range []idm.ResetToken{a1, a2} {
				_, err := s.FindResetToken(ctx, tok.Hash, at(2*time.Minute))
				assert.ErrorIs(t, err, idm.ErrNotFound)
			}
			assert.Equal(t, 0, countResetTokens(t, s, "ua", time.Time{}), "expired ones are deleted too")
			got, err := s.FindResetToken(ctx, b1.Hash, at(2*time.Minute))
			require.NoError(t, err, "another user's token")
			assertSame(t, b1, got)
			require.NoError(t, s.DeleteResetTokens(ctx, "ua"), "a user without tokens")
			require.NoError(t, s.DeleteResetTokens(ctx, "nobody"))
			assert.Equal(t, 1, countResetTokens(t, s, "ub", time.Time{}))
		}},
		{"Count", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			createResetTokens(t, s,
				newResetToken("u", at(-2*time.Hour), time.Hour), // expired at 0
				newResetToken("u", at(0), time.Hour),
				newResetToken("u", at(30*time.Minute), time.Hour),
				newResetToken("u", at(time.Hour), time.Hour),
				newResetToken("v", at(time.Hour), time.Hour),
			)
			for _, tc := range []struct {
				user  string
				since time.Time
				want  int
			}{
				{"u", time.Time{}, 4},
				{"u", at(-3 * time.Hour), 4},
				{"u", at(-2 * time.Hour), 4},
				{"u", at(-2*time.Hour + time.Millisecond), 3},
				{"u", at(0), 3},
				{"u", messy(0), 3},
				{"u", at(time.Hour), 1},
				{"u", at(2 * time.Hour), 0},
				{"v", time.Time{}, 1},
				{"U", time.Time{}, 0},
				{"w", time.Time{}, 0},
			} {
				n, err := s.CountResetTokens(ctx, tc.user, tc.since)
				require.NoError(t, err)
				assert.Equal(t, tc.want, n, "user %q since %v", tc.user, tc.since)
			}
		}},
		{"PurgeExpired", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			gone1 := newResetToken("u", at(-2*time.Hour), time.Hour) // expires -1h
			gone2 := newResetToken("v", at(-time.Hour), time.Hour)   // expires 0: at now
			kept := newResetToken("u", at(-time.Hour), time.Hour+time.Millisecond)
			kept2 := newResetToken("w", at(0), time.Hour)
			createResetTokens(t, s, gone1, gone2, kept, kept2)
			n, err := s.PurgeExpiredResetTokens(ctx, at(0))
			require.NoError(t, err)
			assert.Equal(t, 2, n)
			assert.Equal(t, 1, countResetTokens(t, s, "u", time.Time{}))
			assert.Equal(t, 0, countResetTokens(t, s, "v", time.Time{}))
			for _, tok := range []idm.ResetToken{kept, kept2} {
				got, err := s.FindResetToken(ctx, tok.Hash, at(0))
				require.NoError(t, err)
				assertSame(t, tok, got)
			}
			n, err = s.PurgeExpiredResetTokens(ctx, at(0))
			require.NoError(t, err)
			assert.Equal(t, 0, n, "nothing left to purge")
			n, err = s.PurgeExpiredResetTokens(ctx, at(24*time.Hour))
			require.NoError(t, err)
			assert.Equal(t, 2, n)
		}},
	}
}

func keyTests() []test {
	return []test{
		{"CreateAndFind", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			k := idm.SigningKey{Name: "default", KID: "kid-1", Alg: "HS256", Secret: []byte{0, 1, 2, 0xff, 0xfe, 'a', 0}, Created: messy(0)}
			other := idm.SigningKey{Name: "link", KID: "kid-2", Alg: "EdDSA", Secret: make([]byte, 48), Created: at(time.Hour)}
			require.NoError(t, s.CreateSigningKey(ctx, k))
			require.NoError(t, s.CreateSigningKey(ctx, other))
			got, err := s.FindSigningKey(ctx, "default")
			require.NoError(t, err)
			assertSame(t, k, got)
			got, err = s.FindSigningKey(ctx, "link")
			require.NoError(t, err)
			assertSame(t, other, got)
			for _, name := range []string{"Default", "missing", "", ".*"} {
				_, err = s.FindSigningKey(ctx, name)
				assert.ErrorIs(t, err, idm.ErrNotFound, "%q", name)
			}
		}},
		{"DuplicateName", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			k := idm.SigningKey{Name: "default", KID: "kid-1", Alg: "HS256", Secret: []byte("first secret, 32 bytes long....."), Created: at(0)}
			require.NoError(t, s.CreateSigningKey(ctx, k))
			dup := idm.SigningKey{Name: "default", KID: "kid-2", Alg: "HS256", Secret: []byte("second secret"), Created: at(time.Hour)}
			assert.ErrorIs(t, s.CreateSigningKey(ctx, dup), idm.ErrConflict)
			got, err := s.FindSigningKey(ctx, "default")
			require.NoError(t, err)
			assertSame(t, k, got)
		}},
		{"ConcurrentCreate", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			const n = 20
			errs := concurrently(n, func(i int) error {
				return s.CreateSigningKey(ctx, idm.SigningKey{Name: "default", KID: fmt.Sprint(i), Alg: "HS256", Secret: []byte{byte(i)}, Created: at(0)})
			})
			w := requireOneWinner(t, errs, idm.ErrConflict)
			got, err := s.FindSigningKey(ctx, "default")
			require.NoError(t, err)
			assert.Equal(t, fmt.Sprint(w), got.KID)
			assert.Equal(t, []byte{byte(w)}, got.Secret)
		}},
		{"NoAliasing", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			secret := []byte("secret")
			require.NoError(t, s.CreateSigningKey(ctx, idm.SigningKey{Name: "default", KID: "k", Alg: "HS256", Secret: secret, Created: at(0)}))
			secret[0] = 'X'
			got, err := s.FindSigningKey(ctx, "default")
			require.NoError(t, err)
			assert.Equal(t, []byte("secret"), got.Secret)
			got.Secret[0] = 'Y'
			got, err = s.FindSigningKey(ctx, "default")
			require.NoError(t, err)
			assert.Equal(t, []byte("secret"), got.Secret)
		}},
	}
}

func metaTests() []test {
	return []test{
		{"Bootstrap", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			done, err := s.Bootstrapped(ctx)
			require.NoError(t, err)
			assert.False(t, done, "a new store")
			require.NoError(t, s.MarkBootstrapped(ctx, messy(0)))
			done, err = s.Bootstrapped(ctx)
			require.NoError(t, err)
			assert.True(t, done)
			assert.ErrorIs(t, s.MarkBootstrapped(ctx, at(time.Hour)), idm.ErrConflict)
			done, err = s.Bootstrapped(ctx)
			require.NoError(t, err)
			assert.True(t, done)
		}},
		{"BootstrapConcurrent", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			const n = 50
			errs := concurrently(n, func(i int) error { return s.MarkBootstrapped(ctx, at(time.Duration(i)*time.Second)) })
			requireOneWinner(t, errs, idm.ErrConflict)
			done, err := s.Bootstrapped(ctx)
			require.NoError(t, err)
			assert.True(t, done)
		}},
		{"LoginFailuresCount", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			const window = 15 * time.Minute
			got, err := s.LoginFailures(ctx, "alice@example.org")
			require.NoError(t, err)
			assertSame(t, idm.LoginFailures{Key: "alice@example.org"}, got, "unknown key")

			got, err = s.RecordLoginFailure(ctx, "alice@example.org", messy(0), window)
			require.NoError(t, err)
			assertSame(t, idm.LoginFailures{Key: "alice@example.org", Count: 1, Since: messy(0), Last: messy(0)}, got)
			got, err = s.RecordLoginFailure(ctx, "alice@example.org", at(time.Minute), window)
			require.NoError(t, err)
			assertSame(t, idm.LoginFailures{Key: "alice@example.org", Count: 2, Since: at(0), Last: at(time.Minute)}, got)
			// The last moment inside the window.
			got, err = s.RecordLoginFailure(ctx, "alice@example.org", at(window-time.Millisecond), window)
			require.NoError(t, err)
			want := idm.LoginFailures{Key: "alice@example.org", Count: 3, Since: at(0), Last: at(window - time.Millisecond)}
			assertSame(t, want, got)
			got, err = s.LoginFailures(ctx, "alice@example.org")
			require.NoError(t, err)
			assertSame(t, want, got)
			// The window has ended: a new one starts.
			got, err = s.RecordLoginFailure(ctx, "alice@example.org", at(window), window)
			require.NoError(t, err)
			assertSame(t, idm.LoginFailures{Key: "alice@example.org", Count: 1, Since: at(window), Last: at(window)}, got)
			got, err = s.RecordLoginFailure(ctx, "alice@example.org", at(window+time.Second), window)
			require.NoError(t, err)
			assertSame(t, idm.LoginFailures{Key: "alice@example.org", Count: 2, Since: at(window), Last: at(window + time.Second)}, got)
			got, err = s.RecordLoginFailure(ctx, "alice@example.org", at(10*window), window)
			require.NoError(t, err)
			assertSame(t, idm.LoginFailures{Key: "alice@example.org", Count: 1, Since: at(10 * window), Last: at(10 * window)}, got)
		}},
		{"LoginFailuresKeysIndependent", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			const window = time.Hour
			for i := range 3 {
				_, err := s.RecordLoginFailure(ctx, "alice@example.org", at(time.Duration(i)*time.Minute), window)
				require.NoError(t, err)
			}
			got, err := s.RecordLoginFailure(ctx, "bob@example.org", at(5*time.Minute), window)
			require.NoError(t, err)
			assertSame(t, idm.LoginFailures{Key: "bob@example.org", Count: 1, Since: at(5 * time.Minute), Last: at(5 * time.Minute)}, got)
			got, err = s.LoginFailures(ctx, "alice@example.org")
			require.NoError(t, err)
			assertSame(t, idm.LoginFailures{Key: "alice@example.org", Count: 3, Since: at(0), Last: at(2 * time.Minute)}, got)
			got, err = s.LoginFailures(ctx, "ALICE@example.org")
			require.NoError(t, err)
			assert.Equal(t, 0, got.Count, "keys are compared exactly")
			// Resetting one key leaves the other.
			require.NoError(t, s.ResetLoginFailures(ctx, "alice@example.org"))
			got, err = s.LoginFailures(ctx, "alice@example.org")
			require.NoError(t, err)
			assertSame(t, idm.LoginFailures{Key: "alice@example.org"}, got)
			got, err = s.LoginFailures(ctx, "bob@example.org")
			require.NoError(t, err)
			assert.Equal(t, 1, got.Count)
			require.NoError(t, s.ResetLoginFailures(ctx, "alice@example.org"), "resetting again")
			require.NoError(t, s.ResetLoginFailures(ctx, "nobody"))
			// After a reset counting starts again.
			got, err = s.RecordLoginFailure(ctx, "alice@example.org", at(10*time.Minute), window)
			require.NoError(t, err)
			assertSame(t, idm.LoginFailures{Key: "alice@example.org", Count: 1, Since: at(10 * time.Minute), Last: at(10 * time.Minute)}, got)
		}},
		{"LoginFailuresPurge", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			const window = time.Hour
			record := func(key string, times ...time.Time) idm.LoginFailures {
				t.Helper()
				var f idm.LoginFailures
				for _, now := range times {
					var err error
					f, err = s.RecordLoginFailure(ctx, key, now, window)
					require.NoError(t, err, "RecordLoginFailure %q at %v", key, now)
				}
				return f
			}
			purge := func(before time.Time) int {
				t.Helper()
				n, err := s.PurgeLoginFailures(ctx, before)
				require.NoError(t, err, "PurgeLoginFailures before %v", before)
				return n
			}
			// Purged: Last before at(0), whatever Count and Since are.
			record("old", at(-2*time.Hour))
			record("old-many", at(-3*time.Hour), at(-3*time.Hour+time.Minute), at(-2*time.Hour-time.Minute))
			record("just-before", at(-time.Millisecond))
			record("messy-before", messy(-time.Millisecond)) // kept as at(-1ms)
			// Kept: Last at or after at(0), even with an old Since.
			kept := []idm.LoginFailures{
				record("boundary", at(0)),
				record("boundary-messy", messy(0)), // kept as at(0)
				record("since-old", at(-50*time.Minute), at(-40*time.Minute), at(time.Minute)),
				record("future", at(time.Hour)),
			}
			assert.Equal(t, 3, kept[2].Count)

			// before is compared at millisecond precision: messy(0) is at(0).
			assert.Equal(t, 4, purge(messy(0)))
			for _, key := range []string{"old", "old-many", "just-before", "messy-before"} {
				got, err := s.LoginFailures(ctx, key)
				require.NoError(t, err)
				assertSame(t, idm.LoginFailures{Key: key}, got, "purged %q", key)
			}
			for _, want := range kept {
				got, err := s.LoginFailures(ctx, want.Key)
				require.NoError(t, err)
				assertSame(t, want, got, "kept %q unchanged", want.Key)
			}
			assert.Equal(t, 0, purge(at(0)), "nothing left before at(0)")
			assert.Equal(t, 0, purge(time.Time{}), "nothing is before the zero time")

			// A purged key starts again at 1, although its old window
			// (Since at(-3h) plus 24h) would not have ended yet.
			got, err := s.RecordLoginFailure(ctx, "old-many", at(2*time.Minute), 24*time.Hour)
			require.NoError(t, err)
			assertSame(t, idm.LoginFailures{Key: "old-many", Count: 1, Since: at(2 * time.Minute), Last: at(2 * time.Minute)}, got)
			// A kept counter goes on counting in its window.
			got, err = s.RecordLoginFailure(ctx, "since-old", at(2*time.Minute), window)
			require.NoError(t, err)
			assertSame(t, idm.LoginFailures{Key: "since-old", Count: 4, Since: at(-50 * time.Minute), Last: at(2 * time.Minute)}, got)

			// Last at(0) and at(0)+1ms: the boundary moves with before.
			assert.Equal(t, 2, purge(at(time.Millisecond)), "the two counters with Last at(0)")
			assert.Equal(t, 2, purge(at(time.Hour)), "since-old and old-many (Last at(2m))")
			got, err = s.LoginFailures(ctx, "future")
			require.NoError(t, err)
			assertSame(t, kept[3], got, "Last equal to before is kept")
			assert.Equal(t, 1, purge(at(time.Hour+time.Millisecond)))
			assert.Equal(t, 0, purge(at(24*time.Hour)), "all gone")
		}},
		{"LoginFailuresConcurrent", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			const n = 20
			errs := concurrently(n, func(int) error {
				_, err := s.RecordLoginFailure(ctx, "alice@example.org", at(time.Minute), time.Hour)
				return err
			})
			for _, err := range errs {
				require.NoError(t, err)
			}
			got, err := s.LoginFailures(ctx, "alice@example.org")
			require.NoError(t, err)
			assertSame(t, idm.LoginFailures{Key: "alice@example.org", Count: n, Since: at(time.Minute), Last: at(time.Minute)}, got)
		}},
		{"ReserveLoginAttemptCount", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			const (
				window = 15 * time.Minute
				max    = 3
			)
			reserve := func(now time.Time) (idm.LoginFailures, bool) {
				t.Helper()
				f, ok, err := s.ReserveLoginAttempt(ctx, "alice@example.org", now, window, max)
				require.NoError(t, err)
				return f, ok
			}
			got, ok := reserve(messy(0))
			assert.True(t, ok, "the first attempt")
			assertSame(t, idm.LoginFailures{Key: "alice@example.org", Count: 1, Since: messy(0), Last: messy(0)}, got)
			got, ok = reserve(at(time.Minute))
			assert.True(t, ok)
			assertSame(t, idm.LoginFailures{Key: "alice@example.org", Count: 2, Since: at(0), Last: at(time.Minute)}, got)
			got, ok = reserve(at(2 * time.Minute))
			assert.True(t, ok, "the last place")
			full := idm.LoginFailures{Key: "alice@example.org", Count: 3, Since: at(0), Last: at(2 * time.Minute)}
			assertSame(t, full, got)
			got, ok = reserve(at(window - time.Millisecond))
			assert.False(t, ok, "no place left within the window")
			assertSame(t, full, got, "a refused attempt changes nothing")
			got, err := s.LoginFailures(ctx, "alice@example.org")
			require.NoError(t, err)
			assertSame(t, full, got)
			// RecordLoginFailure and ReserveLoginAttempt share the counter.
			_, err = s.RecordLoginFailure(ctx, "bob@example.org", at(0), window)
			require.NoError(t, err)
			f, ok, err := s.ReserveLoginAttempt(ctx, "bob@example.org", at(time.Second), window, 2)
			require.NoError(t, err)
			assert.True(t, ok)
			assert.Equal(t, 2, f.Count)
			_, ok, err = s.ReserveLoginAttempt(ctx, "bob@example.org", at(time.Second), window, 2)
			require.NoError(t, err)
			assert.False(t, ok, "counted failures take places")
			// The window has ended: a new one starts.
			got, ok = reserve(at(window))
			assert.True(t, ok)
			assertSame(t, idm.LoginFailures{Key: "alice@example.org", Count: 1, Since: at(window), Last: at(window)}, got)
			// A success clears the counter: every place is free again.
			reserve(at(window + time.Second))
			reserve(at(window + time.Second))
			_, ok = reserve(at(window + time.Second))
			require.False(t, ok)
			require.NoError(t, s.ResetLoginFailures(ctx, "alice@example.org"))
			got, ok = reserve(at(window + 2*time.Second))
			assert.True(t, ok)
			assert.Equal(t, 1, got.Count)
			// A lower max refuses at once; a max below 1 is invalid.
			_, ok, err = s.ReserveLoginAttempt(ctx, "alice@example.org", at(window+3*time.Second), window, 1)
			require.NoError(t, err)
			assert.False(t, ok)
			_, _, err = s.ReserveLoginAttempt(ctx, "alice@example.org", at(window+3*time.Second), window, 0)
			assert.ErrorIs(t, err, idm.ErrInvalid)
		}},
		{"ReserveLoginAttemptConcurrent", func(t *testing.T, s idm.Store) {
			// 40 simultaneous attempts on one account: exactly max get a
			// place, and the counter says max.
			ctx := t.Context()
			const (
				n   = 40
				max = 5
			)
			granted := make([]bool, n)
			errs := concurrently(n, func(i int) error {
				var err error
				_, granted[i], err = s.ReserveLoginAttempt(ctx, "alice@example.org", at(time.Minute), time.Hour, max)
				return err
			})
			ok := 0
			for i, err := range errs {
				require.NoError(t, err, "attempt %d", i)
				if granted[i] {
					ok++
				}
			}
			assert.Equal(t, max, ok, "attempts given a place")
			got, err := s.LoginFailures(ctx, "alice@example.org")
			require.NoError(t, err)
			assertSame(t, idm.LoginFailures{Key: "alice@example.org", Count: max, Since: at(time.Minute), Last: at(time.Minute)}, got)
		}},
	}
}

func storeTests() []test {
	return []test{
		{"Ping", func(t *testing.T, s idm.Store) {
			require.NoError(t, s.Ping(t.Context()))
		}},
		{"CloseTwice", func(t *testing.T, s idm.Store) {
			require.NoError(t, s.Close())
			require.NoError(t, s.Close())
		}},
		{"Empty", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			users, n, err := s.ListUsers(ctx, idm.UserFilter{})
			require.NoError(t, err)
			assert.Empty(t, users)
			assert.Zero(t, n)
			subjects, n, err := s.ListSubjects(ctx, idm.SubjectFilter{})
			require.NoError(t, err)
			assert.Empty(t, subjects)
			assert.Zero(t, n)
			audits, n, err := s.ListAudits(ctx, idm.AuditFilter{})
			require.NoError(t, err)
			assert.Empty(t, audits)
			assert.Zero(t, n)
			n, err = s.CountAdmins(ctx)
			require.NoError(t, err)
			assert.Zero(t, n)
			n, err = s.PurgeExpiredResetTokens(ctx, at(0))
			require.NoError(t, err)
			assert.Zero(t, n)
			n, err = s.PurgeLoginFailures(ctx, at(0))
			require.NoError(t, err)
			assert.Zero(t, n)
			done, err := s.Bootstrapped(ctx)
			require.NoError(t, err)
			assert.False(t, done)
		}},
	}
}
