package users_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/boltstore"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
	"github.com/c3-pro/idm/users"
)

// slowPasswords is a users.Passwords that counts password checks and
// holds each for delay, so that concurrent requests overlap.
type slowPasswords struct {
	users.Passwords
	delay    time.Duration
	verifies atomic.Int64
}

func (p *slowPasswords) Verify(ctx context.Context, encoded, password string) (bool, bool, error) {
	p.verifies.Add(1)
	time.Sleep(p.delay)
	return p.Passwords.Verify(ctx, encoded, password)
}

// TestConcurrentWrongCurrentPasswords: 40 simultaneous password changes
// with a wrong current_password get at most 5 password checks (403 each);
// the rest are 429, and so is the right current password afterwards.
func TestConcurrentWrongCurrentPasswords(t *testing.T) {
	for _, st := range []struct {
		name string
		open func(t *testing.T) idm.Store
	}{
		{"memstore", func(*testing.T) idm.Store { return memstore.New() }},
		{"boltstore", func(t *testing.T) idm.Store {
			s, err := boltstore.Open(filepath.Join(t.TempDir(), "idm.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		}},
	} {
		t.Run(st.name, func(t *testing.T) {
			var pw *slowPasswords
			e := newEnvOn(t, st.open(t), func(c *users.Config) {
				pw = &slowPasswords{Passwords: c.Passwords, delay: 20 * time.Millisecond}
				c.Passwords = pw
			})
			staff := e.addUser("staff@example.org", false)
			const n = 40
			statuses := make([]int, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range statuses {
				wg.Go(func() {
					<-start
					statuses[i] = e.do(request{method: "PUT", path: "/user/me", token: staff.token,
						body: map[string]any{"password": "a new password 123", "current_password": fmt.Sprintf("wrong %d", i)}}).status
				})
			}
			close(start)
			wg.Wait()
			got := map[int]int{}
			for _, s := range statuses {
				got[s]++
			}
			t.Logf("%s: %d attempts sent, %d passwords checked, answers %v", st.name, n, pw.verifies.Load(), got)
			if v := pw.verifies.Load(); v > auth.DefaultMaxFailures {
				t.Errorf("%d password checks, want at most %d", v, auth.DefaultMaxFailures)
			}
			want := map[int]int{http.StatusForbidden: auth.DefaultMaxFailures, http.StatusTooManyRequests: n - auth.DefaultMaxFailures}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("answers %v, want %v", got, want)
			}
			before := pw.verifies.Load()
			res := e.do(request{method: "PUT", path: "/user/me", token: staff.token,
				body: map[string]any{"password": "a new password 123", "current_password": testPassword}})
			if res.status != http.StatusTooManyRequests {
				t.Errorf("the right current password once the limit is reached: %d %s", res.status, res.body)
			}
			if pw.verifies.Load() != before {
				t.Error("a throttled attempt was checked")
			}
		})
	}
}

// failingCounter is a store whose login-failure counter fails.
type failingCounter struct {
	idm.Store
	reserve, reset bool
}

var errCounterDown = errors.New("counter is down")

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

// TestCurrentPasswordCounterErrorRefuses: when the failure counter cannot
// be written, a password change with current_password is refused with 503
// and the password stays as it was; no password is checked when the count
// could not be taken.
func TestCurrentPasswordCounterErrorRefuses(t *testing.T) {
	for _, tc := range []struct {
		name       string
		fail       failingCounter
		current    string
		wantChecks int64
	}{
		{"reserving fails, wrong password", failingCounter{reserve: true}, "wrong password", 0},
		{"reserving fails, right password", failingCounter{reserve: true}, testPassword, 0},
		{"clearing fails, right password", failingCounter{reset: true}, testPassword, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := memstore.New()
			// The staff user logs in through an env on the working store
			// (envs on one store accept each other's tokens).
			staff := newEnvOn(t, base).addUser("staff@example.org", false)
			store := tc.fail
			store.Store = base
			var pw *countingPasswords
			e := newEnvOn(t, store, func(c *users.Config) {
				pw = &countingPasswords{Passwords: c.Passwords}
				c.Passwords = pw
			})
			e.store = base
			res := e.do(request{method: "PUT", path: "/user/me", token: staff.token,
				body: map[string]any{"password": "a new password 123", "current_password": tc.current}})
			if res.status != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503: %s", res.status, res.body)
			}
			if got := pw.verifies.Load(); got != tc.wantChecks {
				t.Errorf("%d password checks, want %d", got, tc.wantChecks)
			}
			u, _ := e.user(staff.user.ID)
			if u.PasswordHash != staff.user.PasswordHash {
				t.Error("the password was changed")
			}
		})
	}
}
