package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/internal/testclock"
)

func TestIdleTracker(t *testing.T) {
	clock := testclock.New(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	idle := newIdleTracker(clock.Now)
	entered, proceed := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(idle.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-proceed
		}
	})))
	defer srv.Close()
	get := func(path string) {
		t.Helper()
		resp, err := srv.Client().Get(srv.URL + path)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
	}
	const after = 2 * time.Second

	require.False(t, idle.due(after), "no request served yet")
	get("/")
	clock.Advance(after - time.Millisecond)
	require.False(t, idle.due(after), "idle for less than after")
	clock.Advance(time.Millisecond)
	require.True(t, idle.due(after), "idle for after, having served a request")
	clock.Advance(time.Hour)
	require.False(t, idle.due(after), "released once per busy period")

	done := make(chan struct{})
	go func() { defer close(done); get("/slow") }()
	<-entered
	clock.Advance(time.Hour)
	require.False(t, idle.due(after), "a request in flight")
	close(proceed)
	<-done
	require.False(t, idle.due(after), "the request just ended")
	clock.Advance(after)
	require.True(t, idle.due(after), "idle for after since the request ended")

	t.Run("run", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		tick := make(chan time.Time)
		released := make(chan struct{}, 10)
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			idle.run(ctx, after, tick, func(context.Context) { released <- struct{}{} })
		}()
		get("/")
		clock.Advance(after)
		tick <- clock.Now()
		tick <- clock.Now() // run has handled the first tick once it takes the second
		require.Len(t, released, 1, "one release for one idle period")
		cancel()
		<-stopped
	})
}
