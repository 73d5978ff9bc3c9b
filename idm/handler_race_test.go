package idm_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/c3-pro/idm/idm"
)

// hookStore is a store that runs a hook right before it passes on an
// UpdateLink or UpdateSubject: a way to land another change between a
// handler's read of a record and its write, deterministically.
type hookStore struct {
	idm.Store
	mu     sync.Mutex
	hooks  map[string]func() // by method name
	always bool              // keep the hooks after they ran
	writes atomic.Int32      // UpdateLink and UpdateSubject calls
}

// arm makes fn run before the next call of method ("UpdateLink" or
// "UpdateSubject"), or before every one when always is set.
func (s *hookStore) arm(method string, fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hooks == nil {
		s.hooks = map[string]func(){}
	}
	s.hooks[method] = fn
}

func (s *hookStore) before(method string) {
	s.writes.Add(1)
	s.mu.Lock()
	fn := s.hooks[method]
	if !s.always {
		delete(s.hooks, method)
	}
	s.mu.Unlock()
	if fn != nil {
		fn()
	}
}

func (s *hookStore) UpdateLink(ctx context.Context, l idm.Link) error {
	s.before("UpdateLink")
	return s.Store.UpdateLink(ctx, l)
}

func (s *hookStore) UpdateSubject(ctx context.Context, sub idm.Subject) error {
	s.before("UpdateSubject")
	return s.Store.UpdateSubject(ctx, sub)
}

// newHookEnv returns a test environment on store whose handler uses a
// hookStore over it.
func newHookEnv(t *testing.T, store idm.Store) (*testEnv, *hookStore) {
	t.Helper()
	var hs *hookStore
	env := newTestEnvOn(t, store, func(c *envConfig) {
		hs = &hookStore{Store: c.Store.(idm.Store)}
		c.Store = hs
	})
	return env, hs
}

// trail returns the actions of the subject's audit trail.
func (e *testEnv) trail(t *testing.T, sssid string) []string {
	t.Helper()
	var trail struct{ Data []struct{ Action string } }
	e.must(t, http.StatusOK, "GET", "/subject/"+sssid+"/audits", "").decode(t, &trail)
	var actions []string
	for _, a := range trail.Data {
		actions = append(actions, a.Action)
	}
	return actions
}

func (e *testEnv) link(t *testing.T, jti string) idm.Link {
	t.Helper()
	l, err := e.store.FindLink(t.Context(), jti)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (e *testEnv) subject(t *testing.T, sssid string) idm.Subject {
	t.Helper()
	s, err := e.store.FindSubject(t.Context(), sssid)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const consentedAlice = `{"sssid": "S-1", "name": "Alice", "bday": "1980-05-17", "date_consented": "2024-05-01"}`

// TestRevokeRacingEstablish checks that a DELETE /link whose write comes
// after an establish that it did not see never undoes it: the revoke
// answers 409, the establish stays (it was acknowledged with 204), and the
// trail says that the revoke failed.
func TestRevokeRacingEstablish(t *testing.T) { onEachStore(t, testRevokeRacingEstablish) }

func testRevokeRacingEstablish(t *testing.T, newStore newStoreFunc) {
	env, hs := newHookEnv(t, newStore(t))
	env.must(t, http.StatusCreated, "POST", "/subject", consentedAlice)
	jti := env.createLink(t, "S-1")
	tok := env.mint(t, jti)
	hs.arm("UpdateLink", func() {
		if r := env.establish(t, tok, "P-1"); r.status != http.StatusNoContent {
			t.Errorf("establish between the revoke's read and write: %d %s", r.status, r.body)
		}
	})
	r := env.staff(t, "DELETE", "/link/"+jti, "")
	if r.status != http.StatusConflict || r.message() != "this link has already been established" {
		t.Errorf("revoke of a link established meanwhile: %d %s, want 409", r.status, r.body)
	}
	l := env.link(t, jti)
	if l.LinkedTo != "P-1" || !l.Revoked.IsZero() {
		t.Errorf("the establish was lost: linked to %q, revoked %v", l.LinkedTo, l.Revoked)
	}
	if env.subject(t, "S-1").DateEnrolled == "" {
		t.Error("the subject's date_enrolled was not stored")
	}
	got := env.trail(t, "S-1")
	want := []string{"[Link] revoke", "[Link] link to P-1"}
	if i := slices.Index(got, "[Link] revoke"); i < 0 || !slices.Contains(got[i:], "[Link] link to P-1") || got[len(got)-1] != "[Link] revoke failed" {
		t.Errorf("trail %q: want %q and then the compensating record last", got, want)
	}
	// The link still establishes nothing more and is not revoked.
	if r := env.establish(t, tok, "P-2"); r.status != http.StatusConflict {
		t.Errorf("second establish: %d %s, want 409", r.status, r.body)
	}
}

// TestRevokeAndEstablishConcurrently runs revokes and establishes of the
// same links at the same time: exactly one of each pair succeeds, and what
// was acknowledged is what is stored.
func TestRevokeAndEstablishConcurrently(t *testing.T) {
	onEachStore(t, testRevokeAndEstablishConcurrently)
}

func testRevokeAndEstablishConcurrently(t *testing.T, newStore newStoreFunc) {
	env := newTestEnvOn(t, newStore(t))
	env.must(t, http.StatusCreated, "POST", "/subject", consentedAlice)
	const n = 20
	jtis, toks := make([]string, n), make([]string, n)
	for i := range n {
		jtis[i] = env.createLink(t, "S-1")
		toks[i] = env.mint(t, jtis[i])
	}
	revoked, established := make([]response, n), make([]response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { revoked[i] = env.staff(t, "DELETE", "/link/"+jtis[i], "") })
		wg.Go(func() { established[i] = env.establish(t, toks[i], fmt.Sprintf("P-%d", i)) })
	}
	wg.Wait()
	for i := range n {
		l := env.link(t, jtis[i])
		rs, es := revoked[i].status, established[i].status
		switch {
		case rs == http.StatusNoContent && es == http.StatusNoContent:
			t.Errorf("link %d: revoke and establish both succeeded; stored %+v", i, l)
		case es == http.StatusNoContent:
			if rs != http.StatusConflict || l.LinkedTo != fmt.Sprintf("P-%d", i) || !l.Revoked.IsZero() {
				t.Errorf("link %d: establish acknowledged, revoke %d %s; stored linked %q revoked %v", i, rs, revoked[i].body, l.LinkedTo, l.Revoked)
			}
		case rs == http.StatusNoContent:
			if es != http.StatusForbidden || l.LinkedTo != "" || l.Revoked.IsZero() {
				t.Errorf("link %d: revoke acknowledged, establish %d %s; stored linked %q revoked %v", i, es, established[i].body, l.LinkedTo, l.Revoked)
			}
		default:
			t.Errorf("link %d: neither succeeded: revoke %d %s, establish %d %s", i, rs, revoked[i].body, es, established[i].body)
		}
	}
}

// TestReadModifyWriteRetries checks the handlers' read-modify-write paths
// when another change lands between their read and their write: a change
// that still applies is written on top of the fresh record (nothing is
// lost, and the trail shows one record for it), one that no longer applies
// gets its 409 and a compensating record.
func TestReadModifyWriteRetries(t *testing.T) { onEachStore(t, testReadModifyWriteRetries) }

func testReadModifyWriteRetries(t *testing.T, newStore newStoreFunc) {
	tests := []struct {
		name string
		// hook is the concurrent change, armed before method.
		method string
		hook   func(t *testing.T, env *testEnv, jti, tok string)
		// request is the change under test.
		req        func(env *testEnv, jti string) (method, target, body string)
		wantStatus int
		wantMsg    string
		check      func(t *testing.T, env *testEnv, jti string)
		wantTrail  []string // records the trail holds in this order, among others
	}{
		{
			name:   "PutSubjectKeepsOtherField",
			method: "UpdateSubject",
			hook: func(t *testing.T, env *testEnv, _, _ string) {
				env.must(t, http.StatusNoContent, "PUT", "/subject/S-1", `{"sssid": "S-1", "email": "alice@example.org"}`)
			},
			req: func(*testEnv, string) (string, string, string) {
				return "PUT", "/subject/S-1", `{"sssid": "S-1", "name": "Alice Renamed"}`
			},
			wantStatus: http.StatusNoContent,
			check: func(t *testing.T, env *testEnv, _ string) {
				if s := env.subject(t, "S-1"); s.Name != "Alice Renamed" || s.Email != "alice@example.org" {
					t.Errorf("subject %+v, want both changes", s)
				}
			},
			wantTrail: []string{`name: "Alice Renamed"`, `email: "alice@example.org"`},
		},
		{
			name:   "PutSubjectStatusSetMeanwhile",
			method: "UpdateSubject",
			hook: func(t *testing.T, env *testEnv, _, _ string) {
				env.must(t, http.StatusNoContent, "PUT", "/subject/S-1", `{"sssid": "S-1", "date_invited": "2024-04-02"}`)
			},
			req: func(*testEnv, string) (string, string, string) {
				return "PUT", "/subject/S-1", `{"sssid": "S-1", "date_invited": "2024-04-01"}`
			},
			wantStatus: http.StatusConflict,
			wantMsg:    "Subject has already been invited",
			check: func(t *testing.T, env *testEnv, _ string) {
				if s := env.subject(t, "S-1"); s.DateInvited != "2024-04-02" {
					t.Errorf("date_invited %q, want the first write's", s.DateInvited)
				}
			},
			wantTrail: []string{"invited: 2024-04-01", "invited: 2024-04-02", "invited: 2024-04-01 failed"},
		},
		{
			name:   "PutLinkWithdrawnAfterEstablish",
			method: "UpdateLink",
			hook: func(t *testing.T, env *testEnv, _, tok string) {
				if r := env.establish(t, tok, "P-1"); r.status != http.StatusNoContent {
					t.Errorf("establish: %d %s", r.status, r.body)
				}
			},
			req: func(_ *testEnv, jti string) (string, string, string) {
				return "PUT", "/link/" + jti, `{"withdrawn_on": "2025-01-01"}`
			},
			wantStatus: http.StatusNoContent,
			check: func(t *testing.T, env *testEnv, jti string) {
				if l := env.link(t, jti); l.LinkedTo != "P-1" || l.WithdrawnOn != "2025-01-01" {
					t.Errorf("link linked to %q, withdrawn %q: want both changes", l.LinkedTo, l.WithdrawnOn)
				}
			},
			wantTrail: []string{`[Link] withdrawn_on: "2025-01-01"`, "[Link] link to P-1", "withdrawn: 2025-01-01"},
		},
		{
			name:   "PutLinkLinkingAfterEstablish",
			method: "UpdateLink",
			hook: func(t *testing.T, env *testEnv, _, tok string) {
				if r := env.establish(t, tok, "P-1"); r.status != http.StatusNoContent {
					t.Errorf("establish: %d %s", r.status, r.body)
				}
			},
			req: func(_ *testEnv, jti string) (string, string, string) {
				return "PUT", "/link/" + jti, `{"linked_to": "P-2"}`
			},
			wantStatus: http.StatusConflict,
			wantMsg:    "`linked_to` cannot be changed once set",
			check: func(t *testing.T, env *testEnv, jti string) {
				if l := env.link(t, jti); l.LinkedTo != "P-1" {
					t.Errorf("link linked to %q, want the establish's P-1", l.LinkedTo)
				}
			},
			wantTrail: []string{"[Link] link to P-2", "[Link] link to P-1", "[Link] link to P-2 failed"},
		},
		{
			name:   "MintAfterRevoke",
			method: "UpdateLink",
			hook: func(t *testing.T, env *testEnv, jti, _ string) {
				env.must(t, http.StatusNoContent, "DELETE", "/link/"+jti, "")
			},
			req: func(env *testEnv, jti string) (string, string, string) {
				env.clock.Advance(48 * 3600e9) // the minted token has expired
				return "GET", "/link/" + jti + "/jwt", ""
			},
			wantStatus: http.StatusConflict,
			wantMsg:    "this link has been revoked",
			check: func(t *testing.T, env *testEnv, jti string) {
				if l := env.link(t, jti); l.Revoked.IsZero() {
					t.Error("the revoke was lost")
				}
			},
			wantTrail: []string{"[Link] create JWT", "[Link] revoke", "[Link] create JWT failed"},
		},
		{
			name:   "EstablishThenDateSync",
			method: "UpdateSubject",
			hook: func(t *testing.T, env *testEnv, _, _ string) {
				env.must(t, http.StatusNoContent, "PUT", "/subject/S-1", `{"sssid": "S-1", "email": "alice@example.org"}`)
			},
			req: func(_ *testEnv, jti string) (string, string, string) {
				return "POST", "/establish", ""
			},
			wantStatus: http.StatusNoContent,
			check: func(t *testing.T, env *testEnv, _ string) {
				if s := env.subject(t, "S-1"); s.DateEnrolled == "" || s.Email != "alice@example.org" {
					t.Errorf("subject enrolled %q, email %q: want both changes", s.DateEnrolled, s.Email)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, hs := newHookEnv(t, newStore(t))
			env.must(t, http.StatusCreated, "POST", "/subject", consentedAlice)
			jti := env.createLink(t, "S-1")
			tok := env.mint(t, jti)
			hs.arm(tt.method, func() { tt.hook(t, env, jti, tok) })
			method, target, body := tt.req(env, jti)
			var r response
			if target == "/establish" {
				r = env.establish(t, tok, "P-1")
			} else {
				r = env.staff(t, method, target, body)
			}
			if r.status != tt.wantStatus || (tt.wantMsg != "" && r.message() != tt.wantMsg) {
				t.Fatalf("%s %s: %d %s, want %d %q", method, target, r.status, r.body, tt.wantStatus, tt.wantMsg)
			}
			tt.check(t, env, jti)
			got := env.trail(t, "S-1")
			if !inOrder(got, tt.wantTrail) {
				t.Errorf("trail %q, want %q in this order", got, tt.wantTrail)
			}
			if tt.wantStatus < 300 {
				for _, a := range got {
					if strings.HasSuffix(a, idm.AuditFailed) {
						t.Errorf("a change that was retried left a compensating record: %q", got)
					}
				}
			}
		})
	}
}

// inOrder reports whether all holds the elements of want in their order
// (not necessarily next to each other).
func inOrder(all, want []string) bool {
	for _, a := range all {
		if len(want) > 0 && a == want[0] {
			want = want[1:]
		}
	}
	return len(want) == 0
}

// TestRetriesAreBounded checks that a change that keeps losing to
// concurrent changes gives up after a few writes with a 409 and a
// compensating record, and changes nothing.
func TestRetriesAreBounded(t *testing.T) { onEachStore(t, testRetriesAreBounded) }

func testRetriesAreBounded(t *testing.T, newStore newStoreFunc) {
	env, hs := newHookEnv(t, newStore(t))
	env.must(t, http.StatusCreated, "POST", "/subject", consentedAlice)
	jti := env.createLink(t, "S-1")
	hs.always = true
	n := 0
	hs.arm("UpdateLink", func() {
		// Another writer changes the link every time, just before.
		n++
		l := env.link(t, jti)
		l.WithdrawnOn = fmt.Sprintf("2025-01-%02d", n)
		if err := env.store.UpdateLink(t.Context(), l); err != nil {
			t.Error(err)
		}
	})
	before := hs.writes.Load()
	r := env.staff(t, "DELETE", "/link/"+jti, "")
	if r.status != http.StatusConflict || !strings.Contains(r.message(), "changed by someone else") {
		t.Fatalf("revoke under constant contention: %d %s, want a 409", r.status, r.body)
	}
	if got := hs.writes.Load() - before; got != idm.DefaultStaleAttempts {
		t.Errorf("%d writes tried, want %d", got, idm.DefaultStaleAttempts)
	}
	if l := env.link(t, jti); !l.Revoked.IsZero() {
		t.Error("the link was revoked")
	}
	if got := env.trail(t, "S-1"); got[len(got)-1] != "[Link] revoke failed" {
		t.Errorf("trail %q, want a compensating record last", got)
	}
}
