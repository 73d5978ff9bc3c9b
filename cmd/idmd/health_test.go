package main

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// countingPinger counts checks; each takes a little while and fails while
// fail is set.
type countingPinger struct {
	n    atomic.Int32
	fail atomic.Bool
}

func (p *countingPinger) Ping(ctx context.Context) error {
	p.n.Add(1)
	time.Sleep(20 * time.Millisecond)
	if p.fail.Load() {
		return errors.New("mail server down")
	}
	return nil
}

func TestCachedPing(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	p := &countingPinger{}
	c := &cachedPing{p: p, ttl: 30 * time.Second, timeout: time.Second, now: clock}

	// 50 concurrent callers share one check.
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { require.NoError(t, c.Ping(t.Context())) })
	}
	wg.Wait()
	require.EqualValues(t, 1, p.n.Load())

	// Within the TTL the result is reused, failure or not.
	p.fail.Store(true)
	advance(29 * time.Second)
	require.NoError(t, c.Ping(t.Context()))
	require.EqualValues(t, 1, p.n.Load())
	advance(2 * time.Second)
	require.Error(t, c.Ping(t.Context()))
	require.EqualValues(t, 2, p.n.Load())
	require.Error(t, c.Ping(t.Context()))
	require.EqualValues(t, 2, p.n.Load())
}

func TestMetricMethodIsBounded(t *testing.T) {
	for _, m := range []string{"GET", "POST", "DELETE"} {
		require.Equal(t, m, metricMethod(m))
	}
	for _, m := range []string{"M123", "get", "BREW", ""} {
		require.Equal(t, "other", metricMethod(m))
	}
}
