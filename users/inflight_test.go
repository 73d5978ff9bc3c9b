package users_test

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/c3-pro/idm/boltstore"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
	"github.com/c3-pro/idm/internal/testmongo"
	"github.com/c3-pro/idm/mongostore"
	"github.com/c3-pro/idm/users"
)

// gatedPasswords is a users.Passwords whose Hash, once armed, tells the
// test that it has started and waits until the test releases it: the race
// of a request that waits for the hashing queue.
type gatedPasswords struct {
	users.Passwords
	started chan struct{}
	release chan struct{}
}

func (p *gatedPasswords) Hash(ctx context.Context, password string) (string, error) {
	p.started <- struct{}{}
	<-p.release
	return p.Passwords.Hash(ctx, password)
}

// TestCallerRecheckedAfterHashing: an admin's POST /user or PUT /user/{id}
// with a password that waits for hashing while another admin disables,
// demotes or deletes the caller does not go through: the caller is read
// again after hashing, just before the write.
func TestCallerRecheckedAfterHashing(t *testing.T) {
	stores := []struct {
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
		{"mongostore", func(t *testing.T) idm.Store {
			_, db := testmongo.DB(t)
			s, err := mongostore.New(t.Context(), db)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		}},
	}
	changes := []struct {
		name string
		body map[string]any // PUT by the other admin on the caller; nil: DELETE
		want int
	}{
		{"disabled", map[string]any{"disabled": true}, http.StatusUnauthorized},
		{"demoted", map[string]any{"admin": false}, http.StatusUnauthorized}, // every change revokes tokens
		{"deleted", nil, http.StatusUnauthorized},
	}
	requests := []struct {
		name    string
		request func(e *env, caller account, staff idm.User) request
		check   func(t *testing.T, e *env, staff idm.User)
	}{
		{"POST /user admin", func(_ *env, caller account, _ idm.User) request {
			return request{method: "POST", path: "/user", token: caller.token,
				body: map[string]any{"username": "second@example.org", "password": "a brand new passphrase", "admin": true}}
		}, func(t *testing.T, e *env, _ idm.User) {
			if _, ok := e.userByName("second@example.org"); ok {
				t.Error("the user was created")
			}
		}},
		{"PUT /user/{id} password", func(_ *env, caller account, staff idm.User) request {
			return request{method: "PUT", path: "/user/" + staff.ID, token: caller.token,
				body: map[string]any{"password": "a brand new passphrase"}}
		}, func(t *testing.T, e *env, staff idm.User) {
			u, _ := e.user(staff.ID)
			if u.PasswordHash != staff.PasswordHash {
				t.Error("the password was changed")
			}
		}},
	}
	for _, st := range stores {
		for _, rq := range requests {
			for _, ch := range changes {
				t.Run(st.name+"/"+rq.name+"/"+ch.name, func(t *testing.T) {
					gate := &gatedPasswords{started: make(chan struct{}, 1), release: make(chan struct{})}
					e := newEnvOn(t, st.open(t), func(c *users.Config) {
						gate.Passwords = c.Passwords
						c.Passwords = gate
					})
					caller := e.addUser("caller@example.org", true)
					other := e.addUser("other@example.org", true)
					staff := e.addUser("staff@example.org", false)

					done := make(chan response, 1)
					go func() { done <- e.do(rq.request(e, caller, staff.user)) }()
					select {
					case <-gate.started: // the caller's request is hashing
					case <-time.After(5 * time.Second):
						t.Fatal("the request did not hash")
					}
					var res response
					if ch.body == nil {
						res = e.do(request{method: "DELETE", path: "/user/" + caller.user.ID, token: other.token})
					} else {
						res = e.do(request{method: "PUT", path: "/user/" + caller.user.ID, token: other.token, body: ch.body})
					}
					if res.status/100 != 2 {
						t.Fatalf("the other admin's change: %d %s", res.status, res.body)
					}
					close(gate.release)
					res = <-done
					if res.status != ch.want {
						t.Errorf("the caller's request after being %s: %d %s, want %d", ch.name, res.status, res.body, ch.want)
					}
					rq.check(t, e, staff.user)
					for _, ev := range e.audits() {
						if ev.ActorID == caller.user.ID {
							t.Errorf("an audit record by the caller: %q", ev.Action)
						}
					}
				})
			}
		}
	}
}
