package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/c3-pro/idm/idm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newUser(username string) idm.User {
	return idm.User{
		ID:              idm.NewID(),
		Username:        username,
		PasswordHash:    "$2b$04$abcdefghijklmnopqrstuu" + strings.Repeat("x", 31),
		TokenVersion:    1,
		Created:         at(0),
		Changed:         at(time.Minute),
		PasswordChanged: at(time.Minute),
		Rev:             1,
	}
}

func createUsers(t *testing.T, s idm.Store, users ...idm.User) {
	t.Helper()
	for _, u := range users {
		require.NoError(t, s.CreateUser(t.Context(), u), "CreateUser %q", u.Username)
	}
}

func userTests() []test {
	return []test{
		{"CreateAndFind", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			u := newUser("alice@example.org")
			u.Admin = true
			u.TokenVersion = 7
			u.PasswordChanged = time.Time{}
			require.NoError(t, s.CreateUser(ctx, u))
			got, err := s.FindUserByID(ctx, u.ID)
			require.NoError(t, err)
			assertSame(t, u, got)
			got, err = s.FindUserByUsername(ctx, "alice@example.org")
			require.NoError(t, err)
			assertSame(t, u, got)
		}},
		{"FindMissing", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			createUsers(t, s, newUser("alice@example.org"))
			_, err := s.FindUserByID(ctx, idm.NewID())
			assert.ErrorIs(t, err, idm.ErrNotFound)
			_, err = s.FindUserByUsername(ctx, "bob@example.org")
			assert.ErrorIs(t, err, idm.ErrNotFound)
			// A prefix, or a pattern, is not a match.
			_, err = s.FindUserByUsername(ctx, "alice@example.or")
			assert.ErrorIs(t, err, idm.ErrNotFound)
			_, err = s.FindUserByUsername(ctx, "alice@example.org.")
			assert.ErrorIs(t, err, idm.ErrNotFound)
			_, err = s.FindUserByUsername(ctx, ".*")
			assert.ErrorIs(t, err, idm.ErrNotFound)
			_, err = s.FindUserByUsername(ctx, "")
			assert.ErrorIs(t, err, idm.ErrNotFound)
		}},
		{"FindByUsernameAsGiven", func(t *testing.T, s idm.Store) {
			// Callers normalise usernames (idm.UsernameKey); a store
			// applies no rule of its own, not even lower-casing.
			ctx := t.Context()
			alice := newUser("alice@example.org")
			plus := newUser("a+b.c@example.org")
			jose := newUser("jos\u00e9@example.org")
			createUsers(t, s, alice, plus, jose)
			for _, u := range []idm.User{alice, plus, jose} {
				got, err := s.FindUserByUsername(ctx, u.Username)
				if assert.NoError(t, err, u.Username) {
					assert.Equal(t, u.ID, got.ID, u.Username)
				}
			}
			for _, name := range []string{"ALICE@EXAMPLE.ORG", "Alice@example.org", "A+B.C@example.org", "jose\u0301@example.org", "JOS\u00c9@example.org"} {
				_, err := s.FindUserByUsername(ctx, name)
				assert.ErrorIs(t, err, idm.ErrNotFound, name)
			}
			var err error
			// Taken literally, not as a pattern.
			_, err = s.FindUserByUsername(ctx, "aab.c@example.org")
			assert.ErrorIs(t, err, idm.ErrNotFound)
			_, err = s.FindUserByUsername(ctx, "a+b-c@example.org")
			assert.ErrorIs(t, err, idm.ErrNotFound)
		}},
		{"UsernameKeptAsGiven", func(t *testing.T, s idm.Store) {
			u := newUser("Mixed.Case@Example.org")
			createUsers(t, s, u)
			got, err := s.FindUserByUsername(t.Context(), "Mixed.Case@Example.org")
			require.NoError(t, err)
			assert.Equal(t, "Mixed.Case@Example.org", got.Username)
			_, err = s.FindUserByUsername(t.Context(), "mixed.case@example.org")
			assert.ErrorIs(t, err, idm.ErrNotFound, "the store lower-cased a username")
		}},
		{"DuplicateUsername", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			alice := newUser("alice@example.org")
			createUsers(t, s, alice)
			dup := newUser("alice@example.org")
			assert.ErrorIs(t, s.CreateUser(ctx, dup), idm.ErrConflict)
			_, err := s.FindUserByID(ctx, dup.ID)
			assert.ErrorIs(t, err, idm.ErrNotFound, "the refused user was stored")
			got, err := s.FindUserByUsername(ctx, "alice@example.org")
			require.NoError(t, err)
			assertSame(t, alice, got)
			// Another spelling is another key to a store.
			createUsers(t, s, newUser("ALICE@example.org"))
		}},
		{"DuplicateID", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			alice := newUser("alice@example.org")
			createUsers(t, s, alice)
			dup := newUser("bob@example.org")
			dup.ID = alice.ID
			assert.ErrorIs(t, s.CreateUser(ctx, dup), idm.ErrConflict)
			got, err := s.FindUserByID(ctx, alice.ID)
			require.NoError(t, err)
			assertSame(t, alice, got)
			_, err = s.FindUserByUsername(ctx, "bob@example.org")
			assert.ErrorIs(t, err, idm.ErrNotFound)
		}},
		{"ConcurrentCreateSameUsername", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			const n = 20
			users := make([]idm.User, n)
			for i := range users {
				users[i] = newUser("race@example.org")
			}
			errs := concurrently(n, func(i int) error { return s.CreateUser(ctx, users[i]) })
			w := requireOneWinner(t, errs, idm.ErrConflict)
			got, err := s.FindUserByUsername(ctx, "race@example.org")
			require.NoError(t, err)
			assert.Equal(t, users[w].ID, got.ID)
			list, total, err := s.ListUsers(ctx, idm.UserFilter{})
			require.NoError(t, err)
			assert.Equal(t, 1, total)
			assert.Len(t, list, 1)
		}},
		{"Update", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			u := newUser("alice@example.org")
			createUsers(t, s, u)
			u.Username = "alice.new@example.org"
			u.PasswordHash = "new-hash"
			u.Admin = true
			u.Disabled = true
			u.TokenVersion = 42
			u.Changed = at(time.Hour)
			u.PasswordChanged = at(2 * time.Hour)
			updateUser(t, s, &u)
			got, err := s.FindUserByID(ctx, u.ID)
			require.NoError(t, err)
			assertSame(t, u, got)
			got, err = s.FindUserByUsername(ctx, "alice.new@example.org")
			require.NoError(t, err)
			assertSame(t, u, got)
			// The old name is free again.
			_, err = s.FindUserByUsername(ctx, "alice@example.org")
			assert.ErrorIs(t, err, idm.ErrNotFound)
			createUsers(t, s, newUser("alice@example.org"))
			// Clearing a time and the hash.
			u.PasswordHash = ""
			u.PasswordChanged = time.Time{}
			updateUser(t, s, &u)
			got, err = s.FindUserByID(ctx, u.ID)
			require.NoError(t, err)
			assertSame(t, u, got)
		}},
		{"UpdateOwnUsernameCase", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			u := newUser("alice@example.org")
			createUsers(t, s, u)
			u.TokenVersion++
			updateUser(t, s, &u) // keeping the username
			u.Username = "Alice@Example.org"
			updateUser(t, s, &u) // changing its case
			got, err := s.FindUserByUsername(ctx, "Alice@Example.org")
			require.NoError(t, err)
			assertSame(t, u, got)
			_, err = s.FindUserByUsername(ctx, "alice@example.org")
			assert.ErrorIs(t, err, idm.ErrNotFound, "the old name is free again")
		}},
		{"UpdateToTakenUsername", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			alice, bob := newUser("alice@example.org"), newUser("bob@example.org")
			createUsers(t, s, alice, bob)
			for _, name := range []string{"alice@example.org"} {
				changed := bob
				changed.Username = name
				changed.TokenVersion = 99
				err := s.UpdateUser(ctx, changed)
				assert.ErrorIs(t, err, idm.ErrConflict, name)
				assert.NotErrorIs(t, err, idm.ErrStale, "%s: a taken username is no stale revision", name)
			}
			got, err := s.FindUserByID(ctx, bob.ID)
			require.NoError(t, err)
			assertSame(t, bob, got, "bob was changed by a refused update")
			got, err = s.FindUserByUsername(ctx, "alice@example.org")
			require.NoError(t, err)
			assertSame(t, alice, got)
		}},
		{"UpdateMissing", func(t *testing.T, s idm.Store) {
			createUsers(t, s, newUser("alice@example.org"))
			assert.ErrorIs(t, s.UpdateUser(t.Context(), newUser("bob@example.org")), idm.ErrNotFound)
			_, err := s.FindUserByUsername(t.Context(), "bob@example.org")
			assert.ErrorIs(t, err, idm.ErrNotFound, "an update of a missing user created it")
		}},
		{"Delete", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			alice, bob := newUser("alice@example.org"), newUser("bob@example.org")
			createUsers(t, s, alice, bob)
			require.NoError(t, s.DeleteUser(ctx, alice.ID))
			_, err := s.FindUserByID(ctx, alice.ID)
			assert.ErrorIs(t, err, idm.ErrNotFound)
			_, err = s.FindUserByUsername(ctx, alice.Username)
			assert.ErrorIs(t, err, idm.ErrNotFound)
			assert.ErrorIs(t, s.DeleteUser(ctx, alice.ID), idm.ErrNotFound, "second delete")
			assert.ErrorIs(t, s.DeleteUser(ctx, idm.NewID()), idm.ErrNotFound)
			got, err := s.FindUserByID(ctx, bob.ID)
			require.NoError(t, err)
			assertSame(t, bob, got)
			// The username can be taken again.
			createUsers(t, s, newUser("alice@example.org"))
		}},
		{"ListOrderedByUsername", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			names := []string{"dave@example.org", "carol@example.org", "alice@example.org", "eve@test.org", "bob@example.org", "zed@example.org"}
			for _, n := range names {
				createUsers(t, s, newUser(n))
			}
			list, total, err := s.ListUsers(ctx, idm.UserFilter{})
			require.NoError(t, err)
			assert.Equal(t, 6, total)
			assert.Equal(t, []string{"alice@example.org", "bob@example.org", "carol@example.org", "dave@example.org", "eve@test.org", "zed@example.org"}, usernames(list))
			// Every field comes back.
			u := newUser("full@example.org")
			u.Admin, u.Disabled, u.TokenVersion = true, true, 3
			createUsers(t, s, u)
			list, _, err = s.ListUsers(ctx, idm.UserFilter{Search: "full"})
			require.NoError(t, err)
			if assert.Len(t, list, 1) {
				assertSame(t, u, list[0])
			}
		}},
		{"ListPages", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			var want []string
			for i := range 7 {
				n := fmt.Sprintf("user%02d@example.org", i)
				want = append(want, n)
				createUsers(t, s, newUser(n))
			}
			for _, tc := range []struct {
				offset, limit int
				want          []string
			}{
				{0, 0, want},
				{0, 3, want[0:3]},
				{3, 3, want[3:6]},
				{6, 3, want[6:7]},
				{7, 3, nil},
				{100, 0, nil},
				{2, 0, want[2:]},
				{0, 100, want},
			} {
				list, total, err := s.ListUsers(ctx, idm.UserFilter{Offset: tc.offset, Limit: tc.limit})
				require.NoError(t, err)
				assert.Equal(t, 7, total, "offset %d limit %d", tc.offset, tc.limit)
				assert.Equal(t, tc.want, usernames(list), "offset %d limit %d", tc.offset, tc.limit)
			}
		}},
		{"ListSearch", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			for _, n := range []string{"alice@example.org", "bob@EXAMPLE.org", "carol@test.org", "dave.smith@example.org", "dadsmith@test.org", "x+y@test.org"} {
				createUsers(t, s, newUser(n))
			}
			for _, tc := range []struct {
				search string
				want   []string
			}{
				{"", []string{"alice@example.org", "bob@EXAMPLE.org", "carol@test.org", "dadsmith@test.org", "dave.smith@example.org", "x+y@test.org"}},
				{"example", []string{"alice@example.org", "bob@EXAMPLE.org", "dave.smith@example.org"}},
				{"ExAmPlE.ORG", []string{"alice@example.org", "bob@EXAMPLE.org", "dave.smith@example.org"}},
				{"test", []string{"carol@test.org", "dadsmith@test.org", "x+y@test.org"}},
				{"e.smith", []string{"dave.smith@example.org"}},
				{"d.s", nil},
				{"x+y", []string{"x+y@test.org"}},
				{"smith", []string{"dadsmith@test.org", "dave.smith@example.org"}},
				{".*", nil},
				{"(", nil},
				{"[a-z]", nil},
				{"^a", nil},
				{"nobody", nil},
			} {
				list, total, err := s.ListUsers(ctx, idm.UserFilter{Search: tc.search})
				require.NoError(t, err)
				assert.Equal(t, tc.want, usernames(list), "search %q", tc.search)
				assert.Equal(t, len(tc.want), total, "search %q", tc.search)
			}
			list, total, err := s.ListUsers(ctx, idm.UserFilter{Search: "EXAMPLE", Offset: 1, Limit: 1})
			require.NoError(t, err)
			assert.Equal(t, 3, total)
			assert.Equal(t, []string{"bob@EXAMPLE.org"}, usernames(list))
		}},
		{"ListInvalidPage", func(t *testing.T, s idm.Store) {
			createUsers(t, s, newUser("alice@example.org"))
			_, _, err := s.ListUsers(t.Context(), idm.UserFilter{Offset: -1})
			assert.ErrorIs(t, err, idm.ErrInvalid)
			_, _, err = s.ListUsers(t.Context(), idm.UserFilter{Limit: -1})
			assert.ErrorIs(t, err, idm.ErrInvalid)
		}},
		{"ListEmpty", func(t *testing.T, s idm.Store) {
			list, total, err := s.ListUsers(t.Context(), idm.UserFilter{Limit: 10})
			require.NoError(t, err)
			assert.Equal(t, 0, total)
			assert.Empty(t, list)
		}},
		{"CountAdmins", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			n, err := s.CountAdmins(ctx)
			require.NoError(t, err)
			assert.Equal(t, 0, n, "empty store")
			admin1, admin2, disabledAdmin, plain := newUser("a1@example.org"), newUser("a2@example.org"), newUser("a3@example.org"), newUser("p@example.org")
			admin1.Admin, admin2.Admin = true, true
			disabledAdmin.Admin, disabledAdmin.Disabled = true, true
			createUsers(t, s, admin1, admin2, disabledAdmin, plain)
			n, err = s.CountAdmins(ctx)
			require.NoError(t, err)
			assert.Equal(t, 2, n)
			admin2.Disabled = true
			updateUser(t, s, &admin2)
			n, err = s.CountAdmins(ctx)
			require.NoError(t, err)
			assert.Equal(t, 1, n, "after disabling an admin")
			disabledAdmin.Disabled = false
			updateUser(t, s, &disabledAdmin)
			require.NoError(t, s.DeleteUser(ctx, admin1.ID))
			n, err = s.CountAdmins(ctx)
			require.NoError(t, err)
			assert.Equal(t, 1, n, "after enabling one and deleting another")
		}},
	}
}

func usernames(users []idm.User) []string {
	var names []string
	for _, u := range users {
		names = append(names, u.Username)
	}
	return names
}
