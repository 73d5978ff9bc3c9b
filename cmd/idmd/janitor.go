package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/c3-pro/idm/idm"
)

// Housekeeping intervals.
const (
	janitorEvery = 10 * time.Minute
	// failureCounterTTL is how long a login-failure counter is kept after its
	// latest failure: far longer than any throttling window (auth's 15 min,
	// resetflow's 1 h), so purging never lifts a throttle early.
	failureCounterTTL = 24 * time.Hour
	// defaultConsoleIdle is IDM_CONSOLE_IDLE's default; sweep falls back
	// to it when given no idle timeout, so that a zero never purges every
	// session.
	defaultConsoleIdle = 30 * time.Minute
)

// janitorStore is what housekeeping needs from the store.
type janitorStore interface {
	PurgeExpiredResetTokens(ctx context.Context, now time.Time) (int, error)
	PurgeLoginFailures(ctx context.Context, before time.Time) (int, error)
	PurgeSessions(ctx context.Context, idleBefore, now time.Time) (int, error)
}

// sweep removes what has expired from the store once: reset tokens past
// their expiry (never returned anyway), login-failure counters idle for
// failureCounterTTL (one is made for every username a client tries, known
// or not, so without this the store would grow with every guess), and
// staff console sessions idle for consoleIdle or past their absolute end
// (which the console refuses anyway).
func sweep(ctx context.Context, s janitorStore, log *slog.Logger, now time.Time, consoleIdle time.Duration) {
	if consoleIdle <= 0 {
		consoleIdle = defaultConsoleIdle
	}
	if n, err := s.PurgeExpiredResetTokens(ctx, now); err != nil {
		log.WarnContext(ctx, "housekeeping: purging expired reset tokens", "err", err)
	} else if n > 0 {
		log.InfoContext(ctx, "housekeeping: purged expired reset tokens", "count", n)
	}
	if n, err := s.PurgeLoginFailures(ctx, now.Add(-failureCounterTTL)); err != nil {
		log.WarnContext(ctx, "housekeeping: purging idle login-failure counters", "err", err)
	} else if n > 0 {
		log.InfoContext(ctx, "housekeeping: purged idle login-failure counters", "count", n)
	}
	if n, err := s.PurgeSessions(ctx, now.Add(-consoleIdle), now); err != nil {
		log.WarnContext(ctx, "housekeeping: purging ended console sessions", "err", err)
	} else if n > 0 {
		log.InfoContext(ctx, "housekeeping: purged ended console sessions", "count", n)
	}
}

// runJanitor sweeps at start and then every interval until ctx ends;
// consoleIdle is the console's idle timeout (config ConsoleIdle). Several
// instances on one MongoDB may all sweep: the purges are idempotent.
func runJanitor(ctx context.Context, s janitorStore, log *slog.Logger, every, consoleIdle time.Duration, now func() time.Time) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		sweep(ctx, s, log, now(), consoleIdle)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

var _ janitorStore = idm.Store(nil)
