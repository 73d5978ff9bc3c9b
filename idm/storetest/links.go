package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/c3-pro/idm/idm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newLink(sssid string) idm.Link {
	return idm.Link{
		ID:        idm.NewID(),
		SSSID:     sssid,
		Issuer:    "http://localhost:9096",
		Audience:  "http://localhost:9096",
		Algorithm: "HS256",
		Created:   at(0),
		Changed:   at(0),
		Rev:       1,
	}
}

// minted returns l with a JWT and its hash, as after GET /link/{id}/jwt.
func minted(l idm.Link) idm.Link {
	l.Exp = at(24 * time.Hour).Unix()
	l.JWT = "eyJhbGciOiJIUzI1NiJ9.eyJqdGkiOiI" + l.ID + "In0.sig"
	l.JWTHash = hexSHA256(l.JWT)
	l.Changed = at(time.Minute)
	return l
}

func hexSHA256(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func createLinks(t *testing.T, s idm.Store, links ...idm.Link) {
	t.Helper()
	for _, l := range links {
		require.NoError(t, s.CreateLink(t.Context(), l), "CreateLink %s", l.ID)
	}
}

func linkIDs(links []idm.Link) []string {
	var ids []string
	for _, l := range links {
		ids = append(ids, l.ID)
	}
	return ids
}

func findLink(t *testing.T, s idm.Store, id string) idm.Link {
	t.Helper()
	l, err := s.FindLink(t.Context(), id)
	require.NoError(t, err)
	return l
}

func linkTests() []test {
	return []test{
		{"CreateAndFind", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			l := minted(newLink("S-001"))
			l.Algorithm = "EdDSA"
			l.LinkedTo, l.LinkedSystem, l.LinkedOn = "P-1", "urn:sys", at(time.Hour)
			l.WithdrawnOn = "2024-06-30"
			l.Revoked = at(2 * time.Hour)
			bare := newLink("S-001")
			createLinks(t, s, l, bare)
			assertSame(t, l, findLink(t, s, l.ID))
			assertSame(t, bare, findLink(t, s, bare.ID))
			_, err := s.FindLink(ctx, idm.NewID())
			assert.ErrorIs(t, err, idm.ErrNotFound)
			_, err = s.FindLink(ctx, "")
			assert.ErrorIs(t, err, idm.ErrNotFound)
		}},
		{"DuplicateID", func(t *testing.T, s idm.Store) {
			orig := newLink("S-001")
			createLinks(t, s, orig)
			dup := newLink("S-002")
			dup.ID = orig.ID
			assert.ErrorIs(t, s.CreateLink(t.Context(), dup), idm.ErrConflict)
			assertSame(t, orig, findLink(t, s, orig.ID))
			links, err := s.LinksForSubjects(t.Context(), "S-002")
			require.NoError(t, err)
			assert.Empty(t, links)
		}},
		{"Update", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			l, other := newLink("S-001"), newLink("S-001")
			createLinks(t, s, l, other)
			l = minted(l)
			l.WithdrawnOn = "2024-07-01"
			l.Revoked = at(3 * time.Hour)
			updateLink(t, s, &l)
			assertSame(t, l, findLink(t, s, l.ID))
			got, err := s.FindLinkByJWTHash(ctx, l.JWTHash)
			require.NoError(t, err)
			assertSame(t, l, got)
			assertSame(t, other, findLink(t, s, other.ID))
			// Back to zero values.
			l.WithdrawnOn, l.Revoked = "", time.Time{}
			updateLink(t, s, &l)
			assertSame(t, l, findLink(t, s, l.ID))
		}},
		{"UpdateMissing", func(t *testing.T, s idm.Store) {
			createLinks(t, s, newLink("S-001"))
			missing := newLink("S-001")
			assert.ErrorIs(t, s.UpdateLink(t.Context(), missing), idm.ErrNotFound)
			_, err := s.FindLink(t.Context(), missing.ID)
			assert.ErrorIs(t, err, idm.ErrNotFound, "an update of a missing link created it")
		}},
		{"Delete", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			a, b := minted(newLink("S-001")), newLink("S-001")
			createLinks(t, s, a, b)
			require.NoError(t, s.DeleteLink(ctx, a.ID))
			_, err := s.FindLink(ctx, a.ID)
			assert.ErrorIs(t, err, idm.ErrNotFound)
			_, err = s.FindLinkByJWTHash(ctx, a.JWTHash)
			assert.ErrorIs(t, err, idm.ErrNotFound)
			assert.ErrorIs(t, s.DeleteLink(ctx, a.ID), idm.ErrNotFound, "second delete")
			assert.ErrorIs(t, s.DeleteLink(ctx, idm.NewID()), idm.ErrNotFound)
			links, err := s.LinksForSubjects(ctx, "S-001")
			require.NoError(t, err)
			assert.Equal(t, []string{b.ID}, linkIDs(links))
		}},
		{"FindByJWTHash", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			a, b, unminted := minted(newLink("S-001")), minted(newLink("S-002")), newLink("S-003")
			createLinks(t, s, a, b, unminted)
			for _, l := range []idm.Link{a, b} {
				got, err := s.FindLinkByJWTHash(ctx, l.JWTHash)
				require.NoError(t, err)
				assertSame(t, l, got)
			}
			for _, h := range []string{"", strings.ToUpper(a.JWTHash), a.JWTHash[:63], a.JWTHash + "0", ".*", hexSHA256("nothing")} {
				_, err := s.FindLinkByJWTHash(ctx, h)
				assert.ErrorIs(t, err, idm.ErrNotFound, "hash %q", h)
			}
		}},
		{"ForSubjectsOrder", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			// Three links of S-1 with the same creation time, created in
			// descending ID order, one earlier, one later; links of S-2 in
			// between; one of S-3 and one of s-1.
			tieIDs := []string{idm.NewID(), idm.NewID(), idm.NewID()}
			slices.Sort(tieIDs)
			var ties []idm.Link
			for _, id := range slices.Backward(tieIDs) {
				l := newLink("S-1")
				l.ID, l.Created = id, at(time.Hour)
				ties = append(ties, l)
			}
			early, late := newLink("S-1"), newLink("S-1")
			early.Created, late.Created = at(-time.Hour), messy(3*time.Hour)
			late.Revoked = at(4 * time.Hour) // revoked links are listed too
			s2a, s2b := newLink("S-2"), newLink("S-2")
			s2a.Created, s2b.Created = at(30*time.Minute), at(2*time.Hour)
			s3, lower := newLink("S-3"), newLink("s-1")
			createLinks(t, s, late, s2b, ties[0], s3, ties[1], early, s2a, ties[2], lower)

			wantS1 := []string{early.ID, tieIDs[0], tieIDs[1], tieIDs[2], late.ID}
			links, err := s.LinksForSubjects(ctx, "S-1")
			require.NoError(t, err)
			require.Equal(t, wantS1, linkIDs(links))
			assertSame(t, late, links[4])

			wantS1S2 := []string{early.ID, s2a.ID, tieIDs[0], tieIDs[1], tieIDs[2], s2b.ID, late.ID}
			links, err = s.LinksForSubjects(ctx, "S-1", "S-2")
			require.NoError(t, err)
			assert.Equal(t, wantS1S2, linkIDs(links))
			links, err = s.LinksForSubjects(ctx, "S-2", "nobody", "S-1")
			require.NoError(t, err)
			assert.Equal(t, wantS1S2, linkIDs(links), "order of arguments")

			links, err = s.LinksForSubjects(ctx, "s-1")
			require.NoError(t, err)
			assert.Equal(t, []string{lower.ID}, linkIDs(links))
		}},
		{"ForSubjectsEmpty", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			createLinks(t, s, newLink("S-1"))
			for _, args := range [][]string{nil, {}, {"S-2"}, {"S-2", "S-3"}, {""}, {"S-"}} {
				links, err := s.LinksForSubjects(ctx, args...)
				require.NoError(t, err, "%q", args)
				assert.Empty(t, links, "%q", args)
			}
		}},
		{"Establish", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			l, noSystem := minted(newLink("S-001")), minted(newLink("S-001"))
			l.WithdrawnOn = "2024-12-31"
			createLinks(t, s, l, noSystem)
			on := messy(5 * time.Hour)
			got, err := s.EstablishLink(ctx, l.ID, "P-123", "http://hospital.example/patients", on)
			require.NoError(t, err)
			want := l
			want.LinkedTo, want.LinkedSystem, want.LinkedOn, want.Changed = "P-123", "http://hospital.example/patients", on, on
			want.Rev = 2
			assertSame(t, want, got, "returned link")
			assertSame(t, want, findLink(t, s, l.ID), "stored link")
			got, err = s.FindLinkByJWTHash(ctx, l.JWTHash)
			require.NoError(t, err)
			assertSame(t, want, got, "found by hash")

			got, err = s.EstablishLink(ctx, noSystem.ID, "P-9", "", at(time.Hour))
			require.NoError(t, err)
			want = noSystem
			want.LinkedTo, want.LinkedOn, want.Changed = "P-9", at(time.Hour), at(time.Hour)
			want.Rev = 2
			assertSame(t, want, got)
		}},
		{"EstablishTwice", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			l := minted(newLink("S-001"))
			createLinks(t, s, l)
			first, err := s.EstablishLink(ctx, l.ID, "P-1", "sys", at(time.Hour))
			require.NoError(t, err)
			for _, to := range []string{"P-2", "P-1"} {
				_, err = s.EstablishLink(ctx, l.ID, to, "sys", at(2*time.Hour))
				assert.ErrorIs(t, err, idm.ErrConflict, to)
			}
			assertSame(t, first, findLink(t, s, l.ID))
			// A link stored as linked is linked, too.
			linked := newLink("S-001")
			linked.LinkedTo, linked.LinkedOn = "P-0", at(0)
			createLinks(t, s, linked)
			_, err = s.EstablishLink(ctx, linked.ID, "P-3", "sys", at(time.Hour))
			assert.ErrorIs(t, err, idm.ErrConflict)
			assertSame(t, linked, findLink(t, s, linked.ID))
		}},
		{"EstablishRevokedOrMissing", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			revoked, revokedLinked := minted(newLink("S-001")), minted(newLink("S-001"))
			revoked.Revoked = at(time.Hour)
			revokedLinked.Revoked = at(time.Hour)
			revokedLinked.LinkedTo, revokedLinked.LinkedOn = "P-1", at(30*time.Minute)
			createLinks(t, s, revoked, revokedLinked)
			for _, l := range []idm.Link{revoked, revokedLinked} {
				_, err := s.EstablishLink(ctx, l.ID, "P-2", "sys", at(2*time.Hour))
				assert.ErrorIs(t, err, idm.ErrNotFound)
				assertSame(t, l, findLink(t, s, l.ID))
			}
			_, err := s.EstablishLink(ctx, idm.NewID(), "P-2", "sys", at(2*time.Hour))
			assert.ErrorIs(t, err, idm.ErrNotFound)
		}},
		{"EstablishEmptyLinkedTo", func(t *testing.T, s idm.Store) {
			l := minted(newLink("S-001"))
			createLinks(t, s, l)
			_, err := s.EstablishLink(t.Context(), l.ID, "", "sys", at(time.Hour))
			assert.ErrorIs(t, err, idm.ErrInvalid)
			assertSame(t, l, findLink(t, s, l.ID))
		}},
		{"EstablishConcurrent", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			l := minted(newLink("S-001"))
			createLinks(t, s, l)
			const n = 50
			results := make([]idm.Link, n)
			errs := concurrently(n, func(i int) error {
				var err error
				results[i], err = s.EstablishLink(ctx, l.ID, fmt.Sprintf("P-%d", i), "sys", at(time.Duration(i)*time.Second))
				return err
			})
			w := requireOneWinner(t, errs, idm.ErrConflict)
			want := l
			want.LinkedTo, want.LinkedSystem = fmt.Sprintf("P-%d", w), "sys"
			want.LinkedOn, want.Changed = at(time.Duration(w)*time.Second), at(time.Duration(w)*time.Second)
			want.Rev = 2
			assertSame(t, want, results[w])
			assertSame(t, want, findLink(t, s, l.ID))
		}},
	}
}
