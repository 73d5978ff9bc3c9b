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
)

// janitorStore is what housekeeping needs from the store.
type janitorStore interface {
	PurgeExpiredResetTokens(ctx context.Context, now time.Time) (int, error)
	PurgeLoginFailures(ctx context.Context, before time.Time) (int, error)
}

// sweep removes what has expired from the store once: reset tokens past
// their expiry (never returned anyway) and login-failure counters idle for
// failureCounterTTL (one is made for every username a client tries, known
// or not, so without this the store would grow with every guess).
func sweep(ctx context.Context, s janitorStore, log *slog.Logger, now time.Time) {
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
}

// runJanitor sweeps at start and then every interval until ctx ends. Several
// instances on one MongoDB may all sweep: the purges are idempotent.
func runJanitor(ctx context.Context, s janitorStore, log *slog.Logger, every time.Duration, now func() time.Time) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		sweep(ctx, s, log, now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

var _ janitorStore = idm.Store(nil)
