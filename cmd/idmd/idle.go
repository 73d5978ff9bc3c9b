package main

import (
	"context"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// idleReleaseAfter is how long idmd must have had no request in flight
// before it gives memory back to the operating system.
const idleReleaseAfter = 2 * time.Second

// memoryReleaser is a store that can give memory back (boltstore: the
// resident pages of its file mapping).
type memoryReleaser interface {
	ReleaseMemory(ctx context.Context) error
}

// idleTracker notices when the service falls idle after serving requests.
// Under load, the Go heap grows to what the load needs and the store's file
// mapping keeps the pages requests read; the Go runtime returns heap memory
// only slowly, so an idle idmd would go on holding what its busiest minute
// needed. Once no request has been in flight for a while after some were
// served, run releases it: the store's mapped pages (which stay in the page
// cache, so nothing is read from disk again), then garbage collections that
// free what sync.Pools keep and return the free heap to the system. It runs
// once per busy period, never while a request is being served.
type idleTracker struct {
	now      func() time.Time
	inflight atomic.Int64
	served   atomic.Bool  // a request ended since the last release
	lastEnd  atomic.Int64 // when the latest request ended, Unix nanoseconds
}

func newIdleTracker(now func() time.Time) *idleTracker {
	return &idleTracker{now: now}
}

// wrap counts next's requests in flight.
func (t *idleTracker) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.inflight.Add(1)
		defer func() {
			t.lastEnd.Store(t.now().UnixNano())
			t.served.Store(true)
			t.inflight.Add(-1)
		}()
		next.ServeHTTP(w, r)
	})
}

// due reports whether requests were served since the last release and none
// has been in flight for at least after; it then counts the release as
// done.
func (t *idleTracker) due(after time.Duration) bool {
	if !t.served.Load() || t.inflight.Load() > 0 {
		return false
	}
	if t.now().Sub(time.Unix(0, t.lastEnd.Load())) < after {
		return false
	}
	// A request that ends from here on sets served again and leads to the
	// next release.
	t.served.Store(false)
	return t.inflight.Load() == 0
}

// run checks every tick whether the service has been idle for after, and
// then calls release, until ctx ends.
func (t *idleTracker) run(ctx context.Context, after time.Duration, tick <-chan time.Time, release func(context.Context)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			if t.due(after) {
				release(ctx)
			}
		}
	}
}

// releaseMemory gives back to the system the store's mapped file pages (when
// the store can) and the Go heap that is not in use.
func releaseMemory(ctx context.Context, store any, log *slog.Logger) {
	if m, ok := store.(memoryReleaser); ok {
		if err := m.ReleaseMemory(ctx); err != nil {
			log.DebugContext(ctx, "releasing the store's mapped pages", "err", err)
		}
	}
	// The first collection moves what sync.Pools hold (net/http's
	// connection buffers, encoders) to their victim caches; the second,
	// FreeOSMemory's, frees it and returns the free heap to the system.
	runtime.GC()
	debug.FreeOSMemory()
	log.DebugContext(ctx, "idle: released memory")
}
