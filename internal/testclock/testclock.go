// Package testclock is a fake clock for tests: it stands still until a test
// sets it or moves it on (or, made with [NewTicking], moves on by a step on
// every reading). Pass its Now method wherever a Config takes a
// clock. It is safe for concurrent use.
package testclock

import (
	"sync"
	"time"
)

// Clock is a settable clock.
type Clock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

// New returns a clock that reads t until it is set or moved.
func New(t time.Time) *Clock { return &Clock{t: t} }

// NewTicking returns a clock that starts at t and moves on by step on every
// reading, so that records written one after the other get distinct times.
func NewTicking(t time.Time, step time.Duration) *Clock { return &Clock{t: t, step: step} }

// Now returns the clock's time (after moving it on by its step).
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

// Set sets the clock to t, also backwards.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
