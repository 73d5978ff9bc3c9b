package main

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
)

func TestSweep(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	s := memstore.New()
	for _, tok := range []idm.ResetToken{
		{Hash: "expired", UserID: "u1", Purpose: "reset", Created: now.Add(-3 * time.Hour), Expires: now.Add(-time.Hour)},
		{Hash: "valid", UserID: "u1", Purpose: "reset", Created: now.Add(-time.Hour), Expires: now.Add(time.Hour)},
	} {
		require.NoError(t, s.CreateResetToken(ctx, tok))
	}
	_, err := s.RecordLoginFailure(ctx, "idle@example.org", now.Add(-failureCounterTTL-time.Minute), 15*time.Minute)
	require.NoError(t, err)
	_, err = s.RecordLoginFailure(ctx, "recent@example.org", now.Add(-time.Hour), 15*time.Minute)
	require.NoError(t, err)

	sweep(ctx, s, slog.New(slog.DiscardHandler), now)

	_, err = s.FindResetToken(ctx, "valid", now)
	require.NoError(t, err)
	n, err := s.CountResetTokens(ctx, "u1", time.Time{})
	require.NoError(t, err)
	require.Equal(t, 1, n, "the expired token is gone")
	idle, err := s.LoginFailures(ctx, "idle@example.org")
	require.NoError(t, err)
	require.Zero(t, idle.Count, "a counter idle for a day is gone")
	recent, err := s.LoginFailures(ctx, "recent@example.org")
	require.NoError(t, err)
	require.Equal(t, 1, recent.Count, "a recent counter stays")
}
