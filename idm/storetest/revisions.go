package storetest

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/c3-pro/idm/idm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// revOps adapts one kind of record that carries a revision (users,
// subjects, links) to the revision tests, which are the same for all three.
type revOps[R any] struct {
	kind string
	// fresh returns a new record, distinct for every i, with Rev 1.
	fresh  func(i int) R
	create func(ctx context.Context, s idm.Store, r R) error
	// find reads r back by its key; reads reads it back through every
	// other method that returns it.
	find   func(ctx context.Context, s idm.Store, r R) (R, error)
	reads  func(ctx context.Context, s idm.Store, r R) ([]R, error)
	update func(ctx context.Context, s idm.Store, r R) error
	delete func(ctx context.Context, s idm.Store, r R) error
	rev    func(r *R) *int64
	// mark sets a field that an update stores; marked returns it.
	mark   func(r *R, v string)
	marked func(r R) string
}

func userRevOps() revOps[idm.User] {
	return revOps[idm.User]{
		kind:   "User",
		fresh:  func(i int) idm.User { return newUser(fmt.Sprintf("user%d@example.org", i)) },
		create: func(ctx context.Context, s idm.Store, u idm.User) error { return s.CreateUser(ctx, u) },
		find: func(ctx context.Context, s idm.Store, u idm.User) (idm.User, error) {
			return s.FindUserByID(ctx, u.ID)
		},
		reads: func(ctx context.Context, s idm.Store, u idm.User) ([]idm.User, error) {
			byName, err := s.FindUserByUsername(ctx, u.Username)
			if err != nil {
				return nil, err
			}
			list, _, err := s.ListUsers(ctx, idm.UserFilter{Search: u.Username})
			return append([]idm.User{byName}, list...), err
		},
		update: func(ctx context.Context, s idm.Store, u idm.User) error { return s.UpdateUser(ctx, u) },
		delete: func(ctx context.Context, s idm.Store, u idm.User) error { return s.DeleteUser(ctx, u.ID) },
		rev:    func(u *idm.User) *int64 { return &u.Rev },
		mark:   func(u *idm.User, v string) { u.PasswordHash = v },
		marked: func(u idm.User) string { return u.PasswordHash },
	}
}

func subjectRevOps() revOps[idm.Subject] {
	return revOps[idm.Subject]{
		kind:   "Subject",
		fresh:  func(i int) idm.Subject { return newSubject(fmt.Sprintf("S-REV-%03d", i)) },
		create: func(ctx context.Context, s idm.Store, sub idm.Subject) error { return s.CreateSubject(ctx, sub) },
		find: func(ctx context.Context, s idm.Store, sub idm.Subject) (idm.Subject, error) {
			return s.FindSubject(ctx, sub.SSSID)
		},
		reads: func(ctx context.Context, s idm.Store, sub idm.Subject) ([]idm.Subject, error) {
			list, _, err := s.ListSubjects(ctx, idm.SubjectFilter{Search: sub.SSSID})
			return list, err
		},
		update: func(ctx context.Context, s idm.Store, sub idm.Subject) error { return s.UpdateSubject(ctx, sub) },
		delete: func(ctx context.Context, s idm.Store, sub idm.Subject) error {
			return s.DeleteSubject(ctx, sub.SSSID)
		},
		rev:    func(sub *idm.Subject) *int64 { return &sub.Rev },
		mark:   func(sub *idm.Subject, v string) { sub.Name = v },
		marked: func(sub idm.Subject) string { return sub.Name },
	}
}

func linkRevOps() revOps[idm.Link] {
	return revOps[idm.Link]{
		kind:   "Link",
		fresh:  func(i int) idm.Link { return minted(newLink(fmt.Sprintf("S-REV-%03d", i))) },
		create: func(ctx context.Context, s idm.Store, l idm.Link) error { return s.CreateLink(ctx, l) },
		find: func(ctx context.Context, s idm.Store, l idm.Link) (idm.Link, error) {
			return s.FindLink(ctx, l.ID)
		},
		reads: func(ctx context.Context, s idm.Store, l idm.Link) ([]idm.Link, error) {
			byHash, err := s.FindLinkByJWTHash(ctx, l.JWTHash)
			if err != nil {
				return nil, err
			}
			list, err := s.LinksForSubjects(ctx, l.SSSID)
			return append([]idm.Link{byHash}, list...), err
		},
		update: func(ctx context.Context, s idm.Store, l idm.Link) error { return s.UpdateLink(ctx, l) },
		delete: func(ctx context.Context, s idm.Store, l idm.Link) error { return s.DeleteLink(ctx, l.ID) },
		rev:    func(l *idm.Link) *int64 { return &l.Rev },
		mark:   func(l *idm.Link, v string) { l.WithdrawnOn = v },
		marked: func(l idm.Link) string { return l.WithdrawnOn },
	}
}

// revisionTests checks the optimistic concurrency of users, subjects and
// links (see idm.Store, "Revisions").
func revisionTests() []test {
	var tests []test
	tests = append(tests, revTests(userRevOps())...)
	tests = append(tests, revTests(subjectRevOps())...)
	tests = append(tests, revTests(linkRevOps())...)
	return append(tests, establishRevTests()...)
}

func revTests[R any](o revOps[R]) []test {
	mustFind := func(t *testing.T, s idm.Store, r R) R {
		t.Helper()
		got, err := o.find(t.Context(), s, r)
		require.NoError(t, err)
		return got
	}
	rev := func(r R) int64 { return *o.rev(&r) }
	return []test{
		{o.kind + "CreateSetsRev1", func(t *testing.T, s idm.Store) {
			for i, given := range []int64{0, 1, 42, -3} {
				r := o.fresh(i)
				*o.rev(&r) = given
				require.NoError(t, o.create(t.Context(), s, r))
				assert.Equal(t, int64(1), rev(mustFind(t, s, r)), "created with Rev %d", given)
			}
		}},
		{o.kind + "UpdateRaisesRev", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			r := o.fresh(0)
			require.NoError(t, o.create(ctx, s, r))
			cur := mustFind(t, s, r)
			// Reading before every update.
			for i := 1; i <= 3; i++ {
				o.mark(&cur, fmt.Sprintf("read-%d", i))
				require.NoError(t, o.update(ctx, s, cur), "update %d", i)
				got := mustFind(t, s, r)
				assert.Equal(t, int64(1+i), rev(got), "after update %d", i)
				assert.Equal(t, fmt.Sprintf("read-%d", i), o.marked(got))
				cur = got
			}
			// Updating again without reading: the next Rev is Rev+1.
			for i := 1; i <= 2; i++ {
				o.mark(&cur, fmt.Sprintf("blind-%d", i))
				require.NoError(t, o.update(ctx, s, cur), "blind update %d", i)
				*o.rev(&cur)++
			}
			got := mustFind(t, s, r)
			assertSame(t, cur, got)
			assert.Equal(t, int64(6), rev(got))
			// Every read returns the current Rev.
			all, err := o.reads(ctx, s, r)
			require.NoError(t, err)
			require.NotEmpty(t, all)
			for i, g := range all {
				assertSame(t, cur, g, "read %d", i)
			}
		}},
		{o.kind + "UpdateStale", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			r := o.fresh(0)
			require.NoError(t, o.create(ctx, s, r))
			first := mustFind(t, s, r)
			second := first
			o.mark(&second, "second")
			require.NoError(t, o.update(ctx, s, second))
			want := mustFind(t, s, r)
			require.Equal(t, int64(2), rev(want))
			for _, given := range []int64{1, 0, 3, -1} {
				stale := first
				*o.rev(&stale) = given
				o.mark(&stale, "stale")
				err := o.update(ctx, s, stale)
				require.ErrorIs(t, err, idm.ErrStale, "update from Rev %d of a record at Rev 2", given)
				assert.ErrorIs(t, err, idm.ErrConflict, "ErrStale is a conflict")
				assert.NotErrorIs(t, err, idm.ErrNotFound)
				assert.Equal(t, 409, idm.StatusOf(err))
				assertSame(t, want, mustFind(t, s, r), "a stale update changed the record")
			}
		}},
		{o.kind + "UpdateMissingIsNotStale", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			other, gone, never := o.fresh(0), o.fresh(1), o.fresh(2)
			require.NoError(t, o.create(ctx, s, other))
			require.NoError(t, o.create(ctx, s, gone))
			gone = mustFind(t, s, gone)
			require.NoError(t, o.delete(ctx, s, gone))
			for name, r := range map[string]R{"deleted": gone, "never created": never} {
				for _, given := range []int64{0, 1, 2} {
					*o.rev(&r) = given
					err := o.update(ctx, s, r)
					assert.ErrorIs(t, err, idm.ErrNotFound, "%s, Rev %d", name, given)
					assert.NotErrorIs(t, err, idm.ErrStale, "%s, Rev %d", name, given)
					_, err = o.find(ctx, s, r)
					assert.ErrorIs(t, err, idm.ErrNotFound, "an update of a %s record created it", name)
				}
			}
		}},
		// On FerretDB this holds because the test client's pool has one
		// connection (see internal/testmongo): FerretDB v1 does not apply
		// conditional single-document writes atomically across connections.
		{o.kind + "ConcurrentUpdatesOneWinner", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			r := o.fresh(0)
			require.NoError(t, o.create(ctx, s, r))
			base := mustFind(t, s, r)
			const n = 50
			errs := concurrently(n, func(i int) error {
				mine := base
				o.mark(&mine, strconv.Itoa(i))
				return o.update(ctx, s, mine)
			})
			w := requireOneWinner(t, errs, idm.ErrStale)
			got := mustFind(t, s, r)
			assert.Equal(t, strconv.Itoa(w), o.marked(got), "the stored record is not the winner's")
			assert.Equal(t, int64(2), rev(got))
		}},
		// Read-modify-write updaters that retry on ErrStale: every one of
		// them ends up applied, none is lost.
		{o.kind + "ConcurrentRetriesLoseNothing", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			r := o.fresh(0)
			o.mark(&r, "0")
			require.NoError(t, o.create(ctx, s, r))
			const n = 10
			errs := concurrently(n, func(int) error {
				// Of the writers from one revision one always wins, so n
				// attempts are enough for each.
				return idm.RetryStale(ctx, n, func() error {
					cur, err := o.find(ctx, s, r)
					if err != nil {
						return err
					}
					count, err := strconv.Atoi(o.marked(cur))
					if err != nil {
						return err
					}
					o.mark(&cur, strconv.Itoa(count+1))
					return o.update(ctx, s, cur)
				})
			})
			for i, err := range errs {
				require.NoError(t, err, "updater %d", i)
			}
			got := mustFind(t, s, r)
			assert.Equal(t, strconv.Itoa(n), o.marked(got), "updates were lost")
			assert.Equal(t, int64(n+1), rev(got))
		}},
	}
}

// establishRevTests checks that EstablishLink takes part in revisions: an
// update read before an establish can never undo it.
func establishRevTests() []test {
	return []test{
		{"LinkEstablishRaisesRev", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			l := minted(newLink("S-001"))
			createLinks(t, s, l)
			est, err := s.EstablishLink(ctx, l.ID, "P-1", "sys", at(time.Hour))
			require.NoError(t, err)
			assert.Equal(t, int64(2), est.Rev, "returned link")
			assertSame(t, est, findLink(t, s, l.ID))
			est.WithdrawnOn = "2024-12-31"
			require.NoError(t, s.UpdateLink(ctx, est), "an update from the Rev that EstablishLink returned")
			assert.Equal(t, int64(3), findLink(t, s, l.ID).Rev)
		}},
		{"LinkUpdateAfterEstablishIsStale", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			l := minted(newLink("S-001"))
			createLinks(t, s, l)
			read := findLink(t, s, l.ID)
			est, err := s.EstablishLink(ctx, l.ID, "P-1", "sys", at(time.Hour))
			require.NoError(t, err)
			// A revoke (or any change) from what was read before.
			read.Revoked, read.Changed = at(2*time.Hour), at(2*time.Hour)
			err = s.UpdateLink(ctx, read)
			require.ErrorIs(t, err, idm.ErrStale)
			got := findLink(t, s, l.ID)
			assertSame(t, est, got, "the establish was lost")
			assert.Equal(t, "P-1", got.LinkedTo)
			assert.True(t, got.Revoked.IsZero())
		}},
		// See ConcurrentUpdatesOneWinner on FerretDB.
		{"LinkUpdateRacesEstablish", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			for round := range 20 {
				l := minted(newLink("S-001"))
				createLinks(t, s, l)
				read := findLink(t, s, l.ID)
				read.Revoked, read.Changed = at(2*time.Hour), at(2*time.Hour)
				errs := concurrently(2, func(i int) error {
					if i == 0 {
						_, err := s.EstablishLink(ctx, l.ID, "P-1", "sys", at(time.Hour))
						return err
					}
					return s.UpdateLink(ctx, read)
				})
				got := findLink(t, s, l.ID)
				switch {
				case errs[0] == nil && errs[1] == nil:
					t.Fatalf("round %d: both the establish and the revoke succeeded: %+v", round, got)
				case errs[0] == nil:
					require.ErrorIs(t, errs[1], idm.ErrStale, "round %d: revoke after establish", round)
					assert.Equal(t, "P-1", got.LinkedTo, "round %d: establish lost", round)
					assert.True(t, got.Revoked.IsZero(), "round %d", round)
				case errs[1] == nil:
					require.ErrorIs(t, errs[0], idm.ErrNotFound, "round %d: establish after revoke", round)
					assert.Empty(t, got.LinkedTo, "round %d", round)
					assert.False(t, got.Revoked.IsZero(), "round %d: revoke lost", round)
				default:
					t.Fatalf("round %d: neither succeeded: %v, %v", round, errs[0], errs[1])
				}
				assert.Equal(t, int64(2), got.Rev, "round %d", round)
			}
		}},
	}
}
