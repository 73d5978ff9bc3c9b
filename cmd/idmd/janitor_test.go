package main

import (
	"flag"
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

	const idleAfter = 20 * time.Minute
	sessions := map[string]idm.Session{
		"active":  {IDHash: "active", UserID: "u1", Created: now.Add(-time.Hour), LastSeen: now.Add(-idleAfter), Expires: now.Add(time.Hour)},
		"idle":    {IDHash: "idle", UserID: "u1", Created: now.Add(-time.Hour), LastSeen: now.Add(-idleAfter - time.Millisecond), Expires: now.Add(time.Hour)},
		"expired": {IDHash: "expired", UserID: "u2", Created: now.Add(-time.Hour), LastSeen: now, Expires: now},
	}
	for _, x := range sessions {
		require.NoError(t, s.CreateSession(ctx, x))
	}

	sweep(ctx, s, slog.New(slog.DiscardHandler), now, idleAfter)

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
	for hash, kept := range map[string]bool{"active": true, "idle": false, "expired": false} {
		_, err := s.FindSession(ctx, hash)
		if kept {
			require.NoError(t, err, "session %s stays", hash)
		} else {
			require.ErrorIs(t, err, idm.ErrNotFound, "session %s is purged", hash)
		}
	}
}

func TestSweepWithoutIdleTimeoutKeepsActiveSessions(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	s := memstore.New()
	x := idm.Session{IDHash: "recent", UserID: "u1", Created: now.Add(-time.Hour), LastSeen: now.Add(-time.Minute), Expires: now.Add(time.Hour)}
	require.NoError(t, s.CreateSession(ctx, x))
	sweep(ctx, s, slog.New(slog.DiscardHandler), now, 0)
	_, err := s.FindSession(ctx, x.IDHash)
	require.NoError(t, err, "a zero idle timeout means the default, not zero")
}

func TestConsoleIdleSetting(t *testing.T) {
	for _, tc := range []struct {
		env  string // "" for unset
		want time.Duration
		bad  bool
	}{
		{"", 30 * time.Minute, false},
		{"45m", 45 * time.Minute, false},
		{"1m", time.Minute, false},
		{"24h", 24 * time.Hour, false},
		{"59s", 0, true},
		{"25h", 0, true},
		{"soon", 0, true},
	} {
		t.Run(tc.env, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			build := configFlags(fs, func(k string) string {
				if k == "IDM_CONSOLE_IDLE" {
					return tc.env
				}
				return ""
			})
			require.NoError(t, fs.Parse(nil))
			cfg, err := build()
			if tc.bad {
				require.ErrorContains(t, err, "IDM_CONSOLE_IDLE")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, cfg.ConsoleIdle)
		})
	}
}
