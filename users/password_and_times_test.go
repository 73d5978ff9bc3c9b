package users_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/internal/testclock"
	"github.com/c3-pro/idm/users"
)

// countingPasswords counts the password verifications (bcrypt runs) of
// the users handler.
type countingPasswords struct {
	users.Passwords
	verifies atomic.Int64
}

func (p *countingPasswords) Verify(ctx context.Context, encoded, password string) (bool, bool, error) {
	p.verifies.Add(1)
	return p.Passwords.Verify(ctx, encoded, password)
}

// TestCurrentPasswordThrottled checks that wrong current passwords at PUT
// /user/{id} count in the login-failure counter of POST /auth, with its
// limit: a throttled account gets 429 with Retry-After, also for the right
// password and without a hash comparison, until the window ends; a right
// password clears the counter; every failure and refusal is audited.
func TestCurrentPasswordThrottled(t *testing.T) {
	const newPassword = "a brand new passphrase"
	change := func(f *fixture, current string) response {
		f.t.Helper()
		return f.do(request{method: "PUT", path: "/user/me", token: f.staff.token,
			body: map[string]any{"password": newPassword, "current_password": current}})
	}
	failures := func(t *testing.T, f *fixture) int {
		t.Helper()
		lf, err := f.store.LoginFailures(t.Context(), auth.LoginKey(f.staff.user.Username))
		if err != nil {
			t.Fatal(err)
		}
		return lf.Count
	}
	withCounter := func(p **countingPasswords) setup {
		return func(c *users.Config) {
			*p = &countingPasswords{Passwords: c.Passwords}
			c.Passwords = *p
		}
	}
	checkThrottled := func(t *testing.T, f *fixture, pw *countingPasswords, maxRetry int) {
		t.Helper()
		before := pw.verifies.Load()
		res := change(f, testPassword)
		if res.status != http.StatusTooManyRequests || res.message(t) != "too many failed password attempts; try again later" {
			t.Fatalf("the right password on a throttled account: %d %s", res.status, res.body)
		}
		if n, err := strconv.Atoi(res.header.Get("Retry-After")); err != nil || n < 1 || n > maxRetry {
			t.Errorf("Retry-After %q, want 1 to %d seconds", res.header.Get("Retry-After"), maxRetry)
		}
		if pw.verifies.Load() != before {
			t.Error("a throttled attempt ran a hash comparison")
		}
		if u, _ := f.user(f.staff.user.ID); u.PasswordHash != f.staff.user.PasswordHash || !u.PasswordChanged.IsZero() {
			t.Error("the password of a throttled account changed")
		}
	}

	t.Run("Defaults", func(t *testing.T) {
		var pw *countingPasswords
		f := newFixture(t, withCounter(&pw))
		for i := range auth.DefaultMaxFailures {
			if res := change(f, "wrong password"); res.status != http.StatusForbidden {
				t.Fatalf("attempt %d: %d %s", i+1, res.status, res.body)
			}
		}
		if n := failures(t, f); n != auth.DefaultMaxFailures {
			t.Errorf("%d failures counted, want %d", n, auth.DefaultMaxFailures)
		}
		checkThrottled(t, f, pw, int(auth.DefaultFailureWindow/time.Second))
		// The counter is the one of POST /auth: logins are throttled too.
		if status, _ := f.login(f.staff.user.Username, testPassword); status != http.StatusTooManyRequests {
			t.Errorf("login of the throttled account: %d", status)
		}
		want := append(slices.Repeat([]string{users.ActionWrongPassword}, auth.DefaultMaxFailures), users.ActionPasswordThrottled)
		checkActions(t, f, f.staff.user.ID, want...)
		for _, ev := range f.audits() {
			if ev.ActorID != f.staff.user.ID || ev.Document != f.staff.user.ID {
				t.Errorf("audit record %+v", ev)
			}
		}
		// An admin's unlock clears it.
		if res := f.do(request{method: "PUT", path: "/user/" + f.staff.user.ID, token: f.admin.token, body: map[string]any{"unlock": true}}); res.status != http.StatusOK {
			t.Fatalf("unlock: %d %s", res.status, res.body)
		}
		if res := change(f, testPassword); res.status != http.StatusOK {
			t.Errorf("after unlock: %d %s", res.status, res.body)
		}
	})

	t.Run("LoginFailuresCount", func(t *testing.T) {
		var pw *countingPasswords
		f := newFixture(t, withCounter(&pw))
		for range auth.DefaultMaxFailures {
			if status, _ := f.login(f.staff.user.Username, "wrong password"); status != http.StatusUnauthorized {
				t.Fatalf("login: %d", status)
			}
		}
		checkThrottled(t, f, pw, int(auth.DefaultFailureWindow/time.Second))
	})

	t.Run("SuccessResets", func(t *testing.T) {
		f := newFixture(t)
		for range auth.DefaultMaxFailures - 1 {
			if res := change(f, "wrong password"); res.status != http.StatusForbidden {
				t.Fatalf("%d %s", res.status, res.body)
			}
		}
		if res := change(f, testPassword); res.status != http.StatusOK {
			t.Fatalf("the right password: %d %s", res.status, res.body)
		}
		if n := failures(t, f); n != 0 {
			t.Errorf("%d failures left after a right password", n)
		}
	})

	t.Run("Configured", func(t *testing.T) {
		clock := testclock.New(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
		var pw *countingPasswords
		f := newFixture(t, withCounter(&pw), func(c *users.Config) {
			c.MaxFailures, c.FailureWindow, c.Now = 2, time.Hour, clock.Now
		})
		for range 2 {
			if res := change(f, "wrong password"); res.status != http.StatusForbidden {
				t.Fatalf("%d %s", res.status, res.body)
			}
		}
		clock.Advance(10 * time.Minute)
		checkThrottled(t, f, pw, 50*60)
		clock.Advance(50 * time.Minute) // the window has ended
		if res := change(f, testPassword); res.status != http.StatusOK {
			t.Fatalf("after the window: %d %s", res.status, res.body)
		}
	})
}

// TestUserViewTimes checks that user records show their times in the API's
// one layout, with six fractional digits also on whole seconds.
func TestUserViewTimes(t *testing.T) {
	clock := testclock.New(time.Date(2026, 11, 29, 12, 24, 5, 0, time.UTC))
	f := newFixture(t, func(c *users.Config) { c.Now = clock.Now })
	type view struct {
		Created         string  `json:"created"`
		Changed         string  `json:"changed"`
		PasswordChanged *string `json:"password_changed"`
	}
	var created struct{ Data view }
	res := f.do(request{method: "POST", path: "/user", token: f.admin.token, body: map[string]any{"username": "new@example.org", "password": testPassword}})
	if res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	res.json(t, &created)
	if created.Data.Created != "2026-11-29T12:24:05.000000Z" || created.Data.Changed != created.Data.Created || created.Data.PasswordChanged != nil {
		t.Errorf("created %+v", created.Data)
	}
	clock.Advance(55*time.Second + 640*time.Millisecond)
	res = f.do(request{method: "PUT", path: "/user/new@example.org", token: f.admin.token, body: map[string]any{"password": "another fine passphrase"}})
	if res.status != http.StatusOK {
		t.Fatalf("set password: %d %s", res.status, res.body)
	}
	var changed struct{ Data view }
	res.json(t, &changed)
	const want = "2026-11-29T12:25:00.640000Z"
	if changed.Data.Changed != want || changed.Data.PasswordChanged == nil || *changed.Data.PasswordChanged != want {
		t.Errorf("changed %+v, want changed and password_changed %s", changed.Data, want)
	}
	// The list shows the same, and the view still decodes as an idm.UserView.
	var list struct {
		Data []json.RawMessage `json:"data"`
	}
	f.do(request{method: "GET", path: "/user?search=new@", token: f.admin.token}).json(t, &list)
	if len(list.Data) != 1 {
		t.Fatalf("list %s", list.Data)
	}
	var v idm.UserView
	if err := json.Unmarshal(list.Data[0], &v); err != nil || !v.Created.Equal(clock.Now().Add(-55*time.Second-640*time.Millisecond)) || v.PasswordChanged == nil {
		t.Errorf("decoded %+v, %v", v, err)
	}
}
