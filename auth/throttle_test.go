package auth_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/boltstore"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
)

// throttleStores are the stores the throttling tests run on.
var throttleStores = []struct {
	name string
	open func(t *testing.T) idm.Store
}{
	{"memstore", func(*testing.T) idm.Store { return memstore.New() }},
	{"boltstore", func(t *testing.T) idm.Store {
		s, err := boltstore.Open(filepath.Join(t.TempDir(), "idm.db"))
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}},
}

// countingEnv is an env on store whose Passwords count every password check
// (hash comparisons, the dummy one for unknown accounts included) and hold
// each for delay, so that concurrent attempts overlap.
func countingEnv(t *testing.T, store idm.Store, delay time.Duration) (*env, *atomic.Int64) {
	t.Helper()
	pw, err := auth.NewPasswords(auth.PasswordConfig{Cost: bcrypt.MinCost, Workers: 8})
	require.NoError(t, err)
	e := newEnv(t, func(c *auth.Config) { c.Store = store; c.Passwords = pw })
	e.store, e.pw = store, pw
	u := e.addUser(alice, alicePW) // hashes before the counting starts
	_ = u
	checks := new(atomic.Int64)
	auth.SetRunHook(pw, func() {
		checks.Add(1)
		time.Sleep(delay)
	})
	return e, checks
}

// statusCounts counts answers by status.
func statusCounts(statuses []int) map[int]int {
	m := map[int]int{}
	for _, s := range statuses {
		m[s]++
	}
	return m
}

// TestConcurrentGuessesCheckAtMostMaxFailures: 40 simultaneous wrong
// passwords for one account (the per-address guard off, as behind a proxy)
// get at most 5 password checks; the rest are 429, and so is the right
// password afterwards.
func TestConcurrentGuessesCheckAtMostMaxFailures(t *testing.T) {
	for _, st := range throttleStores {
		t.Run(st.name, func(t *testing.T) {
			e, checks := countingEnv(t, st.open(t), 20*time.Millisecond)
			const n = 40
			statuses := make([]int, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range statuses {
				wg.Go(func() {
					<-start
					statuses[i] = e.login(alice, fmt.Sprintf("wrong-password-%d", i)).status
				})
			}
			close(start)
			wg.Wait()
			got := statusCounts(statuses)
			t.Logf("%s: %d attempts sent, %d passwords checked, answers %v", st.name, n, checks.Load(), got)
			assert.LessOrEqual(t, checks.Load(), int64(auth.DefaultMaxFailures), "password checks")
			assert.Equal(t, map[int]int{http.StatusUnauthorized: auth.DefaultMaxFailures, http.StatusTooManyRequests: n - auth.DefaultMaxFailures}, got)

			before := checks.Load()
			r := e.login(alice, alicePW)
			assert.Equal(t, http.StatusTooManyRequests, r.status, "the right password once the limit is reached")
			assert.Equal(t, before, checks.Load(), "a throttled attempt is not checked")
			lf, err := e.store.LoginFailures(t.Context(), auth.LoginKey(alice))
			require.NoError(t, err)
			assert.Equal(t, auth.DefaultMaxFailures, lf.Count)
		})
	}
}

// TestRightPasswordBehindPendingGuesses: while 5 wrong guesses are being
// checked (none has failed yet), the right password is refused unchecked:
// the limit counts attempts from the moment they take their place.
func TestRightPasswordBehindPendingGuesses(t *testing.T) {
	for _, st := range throttleStores {
		t.Run(st.name, func(t *testing.T) {
			store := st.open(t)
			pw, err := auth.NewPasswords(auth.PasswordConfig{Cost: bcrypt.MinCost, Workers: 8})
			require.NoError(t, err)
			e := newEnv(t, func(c *auth.Config) { c.Store = store; c.Passwords = pw })
			e.store, e.pw = store, pw
			e.addUser(alice, alicePW)
			held := make(chan struct{}, 8)
			release := make(chan struct{})
			auth.SetRunHook(pw, func() {
				held <- struct{}{}
				<-release
			})
			var wg sync.WaitGroup
			wrong := make([]int, auth.DefaultMaxFailures)
			for i := range wrong {
				wg.Go(func() { wrong[i] = e.login(alice, "wrong-password").status })
			}
			for range wrong {
				<-held // every wrong guess is being checked
			}
			right := make(chan int, 1)
			go func() { right <- e.login(alice, alicePW).status }()
			var status int
			select {
			case status = <-right: // answered while the guesses are held
			case <-time.After(2 * time.Second): // it waits for a check
				close(release)
				status = <-right
				release = nil
			}
			if release != nil {
				close(release)
			}
			wg.Wait()
			assert.Equal(t, http.StatusTooManyRequests, status, "the right password does not slip through")
			for i, s := range wrong {
				assert.Equal(t, http.StatusUnauthorized, s, "guess %d", i)
			}
		})
	}
}

// TestSuccessFreesThePlaces: a right password within the limit succeeds
// and clears the count, so the next attempts have every place again.
func TestSuccessFreesThePlaces(t *testing.T) {
	e, checks := countingEnv(t, memstore.New(), 0)
	for range auth.DefaultMaxFailures - 1 {
		require.Equal(t, http.StatusUnauthorized, e.login(alice, "wrong-password").status)
	}
	require.Equal(t, http.StatusOK, e.login(alice, alicePW).status, "the last place")
	lf, err := e.store.LoginFailures(t.Context(), auth.LoginKey(alice))
	require.NoError(t, err)
	assert.Zero(t, lf.Count)
	assert.EqualValues(t, auth.DefaultMaxFailures, checks.Load())
}

// failingCounter is a store whose login-failure counter fails.
type failingCounter struct {
	idm.Store
	reserve, reset bool
}

var errCounterDown = fmt.Errorf("counter is down: %w", errors.New("i/o timeout"))

func (s failingCounter) ReserveLoginAttempt(ctx context.Context, key string, now time.Time, window time.Duration, max int) (idm.LoginFailures, bool, error) {
	if s.reserve {
		return idm.LoginFailures{}, false, errCounterDown
	}
	return s.Store.ReserveLoginAttempt(ctx, key, now, window, max)
}

func (s failingCounter) ResetLoginFailures(ctx context.Context, key string) error {
	if s.reset {
		return errCounterDown
	}
	return s.Store.ResetLoginFailures(ctx, key)
}

// TestThrottleStoreErrorRefuses: when the failure count cannot be read or
// written, the attempt is refused with 503 (fail closed), no password is
// checked when the count could not be taken, and the cause is logged.
func TestThrottleStoreErrorRefuses(t *testing.T) {
	for _, tc := range []struct {
		name       string
		store      failingCounter
		password   string
		wantChecks int64
	}{
		{"reserving fails, wrong password", failingCounter{reserve: true}, "wrong-password", 0},
		{"reserving fails, right password", failingCounter{reserve: true}, alicePW, 0},
		{"clearing after success fails", failingCounter{reset: true}, alicePW, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := memstore.New()
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			tc.store.Store = base
			pw, err := auth.NewPasswords(auth.PasswordConfig{Cost: bcrypt.MinCost})
			require.NoError(t, err)
			e := newEnv(t, func(c *auth.Config) { c.Store = tc.store; c.Passwords = pw; c.Logger = log })
			e.store, e.pw = base, pw
			e.addUser(alice, alicePW)
			var checks atomic.Int64
			auth.SetRunHook(pw, func() { checks.Add(1) })
			r := e.login(alice, tc.password)
			assert.Equal(t, http.StatusServiceUnavailable, r.status, r.body)
			assert.Equal(t, "service unavailable", r.errorMessage(t))
			assert.Equal(t, tc.wantChecks, checks.Load(), "password checks")
			assert.Contains(t, logs.String(), "counter is down", "the cause is logged")
		})
	}
}
