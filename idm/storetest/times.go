package storetest

import (
	"testing"
	"time"

	"github.com/c3-pro/idm/idm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// roundTripAll writes a record of every kind with the times that when
// returns, reads them back and checks that each time equals idm.Timestamp
// of the time written, in UTC.
func roundTripAll(t *testing.T, s idm.Store, when func(i int) time.Time) {
	t.Helper()
	ctx := t.Context()

	u := newUser("alice@example.org")
	u.Created, u.Changed, u.PasswordChanged = when(0), when(1), when(2)
	createUsers(t, s, u)
	gotU, err := s.FindUserByID(ctx, u.ID)
	require.NoError(t, err)
	assertSame(t, u, gotU, "user")
	checkTime(t, "user created", u.Created, gotU.Created)

	sub := newSubject("S-001")
	sub.Created, sub.Changed = when(3), when(4)
	createSubjects(t, s, sub)
	gotS, err := s.FindSubject(ctx, sub.SSSID)
	require.NoError(t, err)
	assertSame(t, sub, gotS, "subject")
	checkTime(t, "subject changed", sub.Changed, gotS.Changed)

	l := newLink("S-001")
	l.Created, l.Changed, l.Revoked = when(5), when(6), when(7)
	createLinks(t, s, l)
	gotL, err := s.FindLink(ctx, l.ID)
	require.NoError(t, err)
	assertSame(t, l, gotL, "link")
	checkTime(t, "link revoked", l.Revoked, gotL.Revoked)
	est := newLink("S-001")
	createLinks(t, s, est)
	gotL, err = s.EstablishLink(ctx, est.ID, "P-1", "sys", when(8))
	require.NoError(t, err)
	checkTime(t, "link linked_on (returned)", when(8), gotL.LinkedOn)
	gotL, err = s.FindLink(ctx, est.ID)
	require.NoError(t, err)
	checkTime(t, "link linked_on", when(8), gotL.LinkedOn)
	checkTime(t, "link changed", when(8), gotL.Changed)

	e := newAudit("A", when(9), "", "", "x")
	appendAudits(t, s, e)
	gotA, err := s.AuditsFor(ctx, "A")
	require.NoError(t, err)
	require.Len(t, gotA, 1)
	assertSame(t, e, gotA[0], "audit")
	checkTime(t, "audit time", e.Time, gotA[0].Time)

	tok := idm.ResetToken{Hash: hexSHA256("tok"), UserID: u.ID, Purpose: "reset", Created: when(10), Expires: when(11)}
	createResetTokens(t, s, tok)
	gotT, err := s.FindResetToken(ctx, tok.Hash, idm.Timestamp(tok.Expires).Add(-time.Millisecond))
	require.NoError(t, err)
	assertSame(t, tok, gotT, "reset token")
	checkTime(t, "token expires", tok.Expires, gotT.Expires)

	k := idm.SigningKey{Name: "default", KID: "k", Alg: "HS256", Secret: []byte("s"), Created: when(12)}
	require.NoError(t, s.CreateSigningKey(ctx, k))
	gotK, err := s.FindSigningKey(ctx, "default")
	require.NoError(t, err)
	assertSame(t, k, gotK, "signing key")

	gotF, err := s.RecordLoginFailure(ctx, "alice@example.org", when(13), time.Hour)
	require.NoError(t, err)
	checkTime(t, "failures since (returned)", when(13), gotF.Since)
	gotF, err = s.LoginFailures(ctx, "alice@example.org")
	require.NoError(t, err)
	checkTime(t, "failures since", when(13), gotF.Since)
	checkTime(t, "failures last", when(13), gotF.Last)
}

// checkTime checks one time explicitly: equal to idm.Timestamp(written)
// and in UTC.
func checkTime(t *testing.T, what string, written, got time.Time) {
	t.Helper()
	want := idm.Timestamp(written)
	assert.True(t, got.Equal(want), "%s: got %v, want %v", what, got, want)
	assert.Equal(t, time.UTC, got.Location(), "%s: location", what)
}

func timeTests() []test {
	return []test{
		{"UTCMilliseconds", func(t *testing.T, s idm.Store) {
			roundTripAll(t, s, func(i int) time.Time { return messy(time.Duration(i) * time.Hour) })
		}},
		{"NanosecondsRoundDown", func(t *testing.T, s idm.Store) {
			// 999999 ns past a millisecond is still that millisecond.
			zone := time.FixedZone("UTC-08:00", -8*3600)
			roundTripAll(t, s, func(i int) time.Time {
				return at(time.Duration(i)*time.Minute + 999999*time.Nanosecond).In(zone)
			})
		}},
		{"BeforeEpoch", func(t *testing.T, s idm.Store) {
			zone := time.FixedZone("UTC+01:00", 3600)
			roundTripAll(t, s, func(i int) time.Time {
				return time.Date(1969, time.December, 31, 23, 59, i, 500600700, zone)
			})
		}},
		{"ZeroTimesStayZero", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			u := newUser("alice@example.org")
			u.PasswordChanged = time.Time{}
			createUsers(t, s, u)
			gotU, err := s.FindUserByID(ctx, u.ID)
			require.NoError(t, err)
			assert.True(t, gotU.PasswordChanged.IsZero(), "user password_changed: %v", gotU.PasswordChanged)

			sub := newSubject("S-001")
			sub.Created, sub.Changed = time.Time{}, time.Time{}
			createSubjects(t, s, sub)
			gotS, err := s.FindSubject(ctx, sub.SSSID)
			require.NoError(t, err)
			assert.True(t, gotS.Created.IsZero(), "subject created: %v", gotS.Created)
			assert.True(t, gotS.Changed.IsZero(), "subject changed: %v", gotS.Changed)

			l := newLink("S-001")
			createLinks(t, s, l)
			gotL, err := s.FindLink(ctx, l.ID)
			require.NoError(t, err)
			assert.True(t, gotL.LinkedOn.IsZero(), "link linked_on: %v", gotL.LinkedOn)
			assert.True(t, gotL.Revoked.IsZero(), "link revoked: %v", gotL.Revoked)
			links, err := s.LinksForSubjects(ctx, "S-001")
			require.NoError(t, err)
			require.Len(t, links, 1)
			assert.True(t, links[0].Revoked.IsZero(), "listed link revoked: %v", links[0].Revoked)

			e := newAudit("A", time.Time{}, "", "", "x")
			appendAudits(t, s, e)
			gotA, err := s.AuditsFor(ctx, "A")
			require.NoError(t, err)
			require.Len(t, gotA, 1)
			assert.True(t, gotA[0].Time.IsZero(), "audit time: %v", gotA[0].Time)
		}},
	}
}
