package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/c3-pro/idm/idm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newSession returns a session of userID created at created, valid for 12
// hours, last seen when it was created.
func newSession(userID string, created time.Time) idm.Session {
	return idm.Session{
		IDHash:       hexSHA256(idm.NewID()),
		UserID:       userID,
		TokenVersion: 3,
		Created:      created,
		LastSeen:     created,
		Expires:      created.Add(12 * time.Hour),
	}
}

func createSessions(t *testing.T, s idm.Store, sessions ...idm.Session) {
	t.Helper()
	for _, x := range sessions {
		require.NoError(t, s.CreateSession(t.Context(), x), "CreateSession")
	}
}

// sessionExists reports whether the session with idHash can be found.
func sessionExists(t *testing.T, s idm.Store, idHash string) bool {
	t.Helper()
	_, err := s.FindSession(t.Context(), idHash)
	if err != nil {
		require.ErrorIs(t, err, idm.ErrNotFound)
		return false
	}
	return true
}

func sessionTests() []test {
	return []test{
		{"RoundTrip", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			x := newSession(idm.NewID(), at(0))
			x.LastSeen = at(time.Minute)
			createSessions(t, s, x)
			got, err := s.FindSession(ctx, x.IDHash)
			require.NoError(t, err)
			assertSame(t, x, got)
			for _, h := range []string{"", hexSHA256("other"), x.IDHash[:63], ".*"} {
				_, err := s.FindSession(ctx, h)
				assert.ErrorIs(t, err, idm.ErrNotFound, "hash %q", h)
			}
		}},
		{"TimesNormalised", func(t *testing.T, s idm.Store) {
			x := newSession(idm.NewID(), messy(0))
			x.LastSeen, x.Expires = messy(time.Minute), messy(time.Hour)
			createSessions(t, s, x)
			got, err := s.FindSession(t.Context(), x.IDHash)
			require.NoError(t, err)
			checkTime(t, "session created", x.Created, got.Created)
			checkTime(t, "session last seen", x.LastSeen, got.LastSeen)
			checkTime(t, "session expires", x.Expires, got.Expires)
			require.NoError(t, s.TouchSession(t.Context(), x.IDHash, messy(2*time.Minute)))
			got, err = s.FindSession(t.Context(), x.IDHash)
			require.NoError(t, err)
			checkTime(t, "session touched", messy(2*time.Minute), got.LastSeen)
		}},
		{"DuplicateHash", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			x := newSession(idm.NewID(), at(0))
			createSessions(t, s, x)
			dup := newSession(idm.NewID(), at(time.Hour))
			dup.IDHash = x.IDHash
			assert.ErrorIs(t, s.CreateSession(ctx, dup), idm.ErrConflict)
			got, err := s.FindSession(ctx, x.IDHash)
			require.NoError(t, err)
			assertSame(t, x, got, "the first session is left as it was")
			n, err := s.DeleteUserSessions(ctx, dup.UserID)
			require.NoError(t, err)
			assert.Zero(t, n, "the refused session was not stored under its user")
		}},
		{"TouchNeverMovesBack", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			x := newSession(idm.NewID(), at(0))
			createSessions(t, s, x)
			for _, c := range []struct {
				at, want time.Time
			}{
				{at(10 * time.Minute), at(10 * time.Minute)},
				{at(5 * time.Minute), at(10 * time.Minute)},
				{at(10 * time.Minute), at(10 * time.Minute)},
				{at(-time.Hour), at(10 * time.Minute)},
				{at(11 * time.Minute), at(11 * time.Minute)},
			} {
				require.NoError(t, s.TouchSession(ctx, x.IDHash, c.at), "touch at %v", c.at)
				got, err := s.FindSession(ctx, x.IDHash)
				require.NoError(t, err)
				want := x
				want.LastSeen = c.want
				assertSame(t, want, got, "after a touch at %v only LastSeen changes, to the latest", c.at)
			}
			for _, h := range []string{"", hexSHA256("other")} {
				assert.ErrorIs(t, s.TouchSession(ctx, h, at(time.Hour)), idm.ErrNotFound, "hash %q", h)
				assert.False(t, sessionExists(t, s, h), "a touch creates no session")
			}
		}},
		{"ConcurrentTouches", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			x := newSession(idm.NewID(), at(0))
			createSessions(t, s, x)
			const n = 30
			errs := concurrently(n, func(i int) error {
				// The latest touch is neither first nor last in i order.
				return s.TouchSession(ctx, x.IDHash, at(time.Duration((i*7)%n+1)*time.Second))
			})
			for i, err := range errs {
				require.NoError(t, err, "touch %d", i)
			}
			got, err := s.FindSession(ctx, x.IDHash)
			require.NoError(t, err)
			checkTime(t, "last seen", at(n*time.Second), got.LastSeen)
		}},
		{"DeleteIsIdempotent", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			x, y := newSession(idm.NewID(), at(0)), newSession(idm.NewID(), at(0))
			createSessions(t, s, x, y)
			for range 2 {
				require.NoError(t, s.DeleteSession(ctx, x.IDHash))
				assert.False(t, sessionExists(t, s, x.IDHash))
			}
			require.NoError(t, s.DeleteSession(ctx, ""))
			require.NoError(t, s.DeleteSession(ctx, hexSHA256("never")))
			assert.True(t, sessionExists(t, s, y.IDHash), "another session stays")
			assert.ErrorIs(t, s.TouchSession(ctx, x.IDHash, at(time.Hour)), idm.ErrNotFound)
			createSessions(t, s, x) // its hash is free again
		}},
		{"DeleteUserSessions", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			alice, bob := idm.NewID(), idm.NewID()
			var mine []idm.Session
			for i := range 3 {
				mine = append(mine, newSession(alice, at(time.Duration(i)*time.Minute)))
			}
			other := newSession(bob, at(0))
			createSessions(t, s, append(mine, other)...)
			n, err := s.DeleteUserSessions(ctx, alice)
			require.NoError(t, err)
			assert.Equal(t, 3, n)
			for i, x := range mine {
				assert.False(t, sessionExists(t, s, x.IDHash), "alice's session %d", i)
			}
			got, err := s.FindSession(ctx, other.IDHash)
			require.NoError(t, err)
			assertSame(t, other, got, "bob's session stays as it was")
			n, err = s.DeleteUserSessions(ctx, alice)
			require.NoError(t, err)
			assert.Zero(t, n, "none left")
			n, err = s.DeleteUserSessions(ctx, "")
			require.NoError(t, err)
			assert.Zero(t, n)
		}},
		{"PurgeBoundaries", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			now := at(24 * time.Hour)
			idleBefore := now.Add(-30 * time.Minute)
			mk := func(lastSeen, expires time.Time) idm.Session {
				x := newSession(idm.NewID(), at(0))
				x.LastSeen, x.Expires = lastSeen, expires
				return x
			}
			later := now.Add(time.Hour)
			cases := []struct {
				name string
				x    idm.Session
				kept bool
			}{
				{"idle a millisecond too long", mk(idleBefore.Add(-time.Millisecond), later), false},
				{"idle exactly the timeout", mk(idleBefore, later), true},
				{"recently seen", mk(now, later), true},
				{"expires now", mk(now, now), false},
				{"expired", mk(now, now.Add(-time.Hour)), false},
				{"expires a millisecond from now", mk(now, now.Add(time.Millisecond)), true},
				{"idle and expired", mk(at(0), at(time.Hour)), false},
			}
			for _, c := range cases {
				createSessions(t, s, c.x)
			}
			// Sub-millisecond parts and zones of the arguments do not matter.
			zone := time.FixedZone("UTC-03:00", -3*3600)
			n, err := s.PurgeSessions(ctx, idleBefore.Add(999*time.Microsecond).In(zone), now.Add(999*time.Microsecond).In(zone))
			require.NoError(t, err)
			removed := 0
			for _, c := range cases {
				if !c.kept {
					removed++
				}
				assert.Equal(t, c.kept, sessionExists(t, s, c.x.IDHash), c.name)
			}
			assert.Equal(t, removed, n, "PurgeSessions counts what it removed")
			n, err = s.PurgeSessions(ctx, idleBefore, now)
			require.NoError(t, err)
			assert.Zero(t, n, "a second purge finds nothing")
		}},
		{"PurgeKeepsUserIndex", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			user := idm.NewID()
			old, fresh := newSession(user, at(0)), newSession(user, at(time.Hour))
			createSessions(t, s, old, fresh)
			n, err := s.PurgeSessions(ctx, at(30*time.Minute), at(time.Hour))
			require.NoError(t, err)
			require.Equal(t, 1, n)
			n, err = s.DeleteUserSessions(ctx, user)
			require.NoError(t, err)
			assert.Equal(t, 1, n, "the purged session is no longer counted as the user's")
			assert.False(t, sessionExists(t, s, fresh.IDHash))
		}},
		{"ManyUsers", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			users := []string{idm.NewID(), idm.NewID(), idm.NewID()}
			for i, u := range users {
				for j := range i + 1 {
					x := newSession(u, at(time.Duration(j)*time.Second))
					createSessions(t, s, x)
				}
			}
			for i, u := range users {
				n, err := s.DeleteUserSessions(ctx, u)
				require.NoError(t, err)
				assert.Equal(t, i+1, n, fmt.Sprintf("user %d", i))
			}
		}},
	}
}
