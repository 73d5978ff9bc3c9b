package idm_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
)

// TestLinkJWT checks minting: the raw JWT as application/jwt with the
// claims the mobile app reads, exp = now + LinkTTL stored on the link with
// the token's hash, the same token while it is valid, a new one after it
// expired, and one `create JWT` audit record per mint.
func TestLinkJWT(t *testing.T) { onEachStore(t, testLinkJWT) }

func testLinkJWT(t *testing.T, newStore newStoreFunc) {
	env := newTestEnvOn(t, newStore(t), func(c *envConfig) { c.LinkTTL = 2 * time.Hour })
	env.must(t, http.StatusCreated, "POST", "/subject", `{"sssid": "S-1", "name": "Alice", "bday": "1980-05-17", "date_consented": "2024-05-01"}`)
	jti := env.createLink(t, "S-1")

	r := env.do(t, "GET", "/link/"+jti+"/jwt", "", "Authorization", "JWT "+staffToken, "Accept", "application/jwt")
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/jwt" {
		t.Fatalf("GET jwt: %d %q %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	token := string(r.body)
	claims, err := env.tokens.VerifyLinkToken(t.Context(), token)
	if err != nil {
		t.Fatalf("minted token does not verify: %v", err)
	}
	if claims.ID != jti || claims.Subject != "Alice" || claims.Birthdate != "1980-05-17" || claims.Audience != linkIssuer {
		t.Errorf("claims %+v", claims)
	}
	l, err := env.store.FindLink(t.Context(), jti)
	if err != nil {
		t.Fatal(err)
	}
	if l.JWT != token || l.JWTHash != sha256Hex(token) || l.Exp != claims.Expires.Unix() {
		t.Errorf("stored link %+v", l)
	}
	if d := time.Until(time.Unix(l.Exp, 0)) - time.Until(env.clock.Now().Add(2*time.Hour)); d < -2*time.Second || d > 2*time.Second {
		t.Errorf("exp %v, want now + 2h", time.Unix(l.Exp, 0))
	}
	if !l.Changed.After(l.Created) || l.Algorithm != "HS256" || l.Issuer != linkIssuer || l.Audience != linkIssuer {
		t.Errorf("link after minting: %+v", l)
	}
	var doc struct{ Data map[string]any }
	env.must(t, http.StatusOK, "GET", "/link/"+jti, "").decode(t, &doc)
	for _, key := range []string{"_id", "sub", "iss", "aud", "algorithm", "created", "changed", "exp"} {
		if _, ok := doc.Data[key]; !ok {
			t.Errorf("link JSON has no %q: %v", key, doc.Data)
		}
	}
	for _, key := range []string{"jwt", "JWT", "jwt_hash", "linked_to", "linked_on", "withdrawn_on"} {
		if _, ok := doc.Data[key]; ok {
			t.Errorf("link JSON has %q: %v", key, doc.Data)
		}
	}

	if again := env.mint(t, jti); again != token {
		t.Error("second call minted another token")
	}
	env.clock.Advance(2 * time.Hour)
	renewed := env.mint(t, jti)
	if renewed == token {
		t.Error("expired token served again")
	}

	var trail struct{ Data []struct{ Action string } }
	env.must(t, http.StatusOK, "GET", "/subject/S-1/audits", "").decode(t, &trail)
	n := 0
	for _, a := range trail.Data {
		if a.Action == "[Link] create JWT" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d create JWT records, want 2: %v", n, trail.Data)
	}
}

// TestLinkJWTConcurrent checks that concurrent first calls all answer with
// the one token that was kept.
func TestLinkJWTConcurrent(t *testing.T) { onEachStore(t, testLinkJWTConcurrent) }

func testLinkJWTConcurrent(t *testing.T, newStore newStoreFunc) {
	env := newTestEnvOn(t, newStore(t))
	env.must(t, http.StatusCreated, "POST", "/subject", `{"sssid": "S-1", "name": "Alice", "bday": "1980-05-17", "date_consented": "2024-05-01"}`)
	jti := env.createLink(t, "S-1")
	const n = 8
	tokens := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { tokens[i] = string(env.staff(t, "GET", "/link/"+jti+"/jwt", "").body) })
	}
	wg.Wait()
	l, err := env.store.FindLink(t.Context(), jti)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range tokens {
		if tok != l.JWT {
			t.Fatalf("a caller got %q, the link keeps %q", tok, l.JWT)
		}
	}
}

// TestListLinks checks the link list: oldest first, revoked links left out,
// [] when there are none.
func TestListLinks(t *testing.T) { onEachStore(t, testListLinks) }

func testListLinks(t *testing.T, newStore newStoreFunc) {
	env := newTestEnvOn(t, newStore(t))
	env.must(t, http.StatusCreated, "POST", "/subject", `{"sssid": "S-1", "name": "Alice", "bday": "1980-05-17", "date_consented": "2024-05-01"}`)
	if r := env.must(t, http.StatusOK, "GET", "/subject/S-1/links", ""); string(r.body) != `{"data":[]}`+"\n" {
		t.Errorf("no links: %s", r.body)
	}
	a, b, c := env.createLink(t, "S-1"), env.createLink(t, "S-1"), env.createLink(t, "S-1")
	env.must(t, http.StatusNoContent, "DELETE", "/link/"+b, "")
	var got struct {
		Data []struct {
			ID  string `json:"_id"`
			Sub string `json:"sub"`
		} `json:"data"`
	}
	env.must(t, http.StatusOK, "GET", "/subject/S-1/links", "").decode(t, &got)
	if len(got.Data) != 2 || got.Data[0].ID != a || got.Data[1].ID != c || got.Data[0].Sub != "S-1" {
		t.Errorf("links %+v, want %s and %s", got.Data, a, c)
	}
	// A revoked link's token no longer establishes and no new one is minted.
	if r := env.staff(t, "GET", "/link/"+b+"/jwt", ""); r.status != http.StatusConflict {
		t.Errorf("JWT of a revoked link: %d %s", r.status, r.body)
	}
}

// TestEstablishConcurrent checks that of concurrent establishes of one
// link exactly one succeeds and the others get 409.
func TestEstablishConcurrent(t *testing.T) { onEachStore(t, testEstablishConcurrent) }

func testEstablishConcurrent(t *testing.T, newStore newStoreFunc) {
	env := newTestEnvOn(t, newStore(t))
	env.must(t, http.StatusCreated, "POST", "/subject", `{"sssid": "S-1", "name": "Alice", "bday": "1980-05-17", "date_consented": "2024-05-01"}`)
	tok := env.mint(t, env.createLink(t, "S-1"))
	const n = 10
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { statuses[i] = env.establish(t, tok, "P-"+strings.Repeat("x", i)).status })
	}
	wg.Wait()
	won := 0
	for _, s := range statuses {
		switch s {
		case http.StatusNoContent:
			won++
		case http.StatusConflict:
		default:
			t.Errorf("status %d", s)
		}
	}
	if won != 1 {
		t.Errorf("%d establishes succeeded, want 1: %v", won, statuses)
	}
}

// TestEstablishAudit checks what an establish records: `link to <id>`
// without an actor, the link bound to the first identifier, and the
// subject's date_enrolled.
func TestEstablishAudit(t *testing.T) { onEachStore(t, testEstablishAudit) }

func testEstablishAudit(t *testing.T, newStore newStoreFunc) {
	env := newTestEnvOn(t, newStore(t))
	env.must(t, http.StatusCreated, "POST", "/subject", `{"sssid": "S-1", "name": "Alice", "bday": "1980-05-17", "date_consented": "2024-05-01"}`)
	jti := env.createLink(t, "S-1")
	tok := env.mint(t, jti)
	body := `{"resourceType": "Patient", "identifier": [{"system": "urn:a", "value": "P-123"}, {"system": "urn:b", "value": "P-456"}]}`
	if r := env.do(t, "POST", "/establish", body, "Authorization", "JWT "+tok); r.status != http.StatusNoContent {
		t.Fatalf("establish: %d %s", r.status, r.body)
	}
	var link struct {
		Data struct {
			LinkedTo     string `json:"linked_to"`
			LinkedSystem string `json:"linked_system"`
			LinkedOn     string `json:"linked_on"`
		}
	}
	env.must(t, http.StatusOK, "GET", "/link/"+jti, "").decode(t, &link)
	if link.Data.LinkedTo != "P-123" || link.Data.LinkedSystem != "urn:a" || link.Data.LinkedOn == "" {
		t.Errorf("link after establish: %+v", link.Data)
	}
	var trail struct {
		Data []map[string]string `json:"data"`
	}
	env.must(t, http.StatusOK, "GET", "/subject/S-1/audits", "").decode(t, &trail)
	var found bool
	for _, a := range trail.Data {
		if a["action"] == "[Link] link to P-123" {
			found = true
			if _, ok := a["actor"]; ok {
				t.Errorf("establish record has an actor: %v", a)
			}
		}
	}
	if !found {
		t.Errorf("no establish record in %v", trail.Data)
	}
}

// failingStore is a store that fails one method with an internal error.
type failingStore struct {
	idm.Store
	fail string
}

var errBroken = errors.New("disk on fire")

func (s failingStore) UpdateSubject(ctx context.Context, subj idm.Subject) error {
	if s.fail == "UpdateSubject" {
		return errBroken
	}
	return s.Store.UpdateSubject(ctx, subj)
}

func (s failingStore) EstablishLink(ctx context.Context, id, to, system string, on time.Time) (idm.Link, error) {
	if s.fail == "EstablishLink" {
		return idm.Link{}, errBroken
	}
	return s.Store.EstablishLink(ctx, id, to, system, on)
}

func (s failingStore) AppendAudit(ctx context.Context, e idm.AuditEvent) error {
	if s.fail == "AppendAudit" {
		return errBroken
	}
	return s.Store.AppendAudit(ctx, e)
}

// TestFailedChangeIsCompensated checks that a change that fails after its
// audit record was written gets a compensating record, answers a generic
// 500, and that a change whose audit record cannot be written does not
// happen.
func TestFailedChangeIsCompensated(t *testing.T) { onEachStore(t, testFailedChangeIsCompensated) }

func testFailedChangeIsCompensated(t *testing.T, newStore newStoreFunc) {
	tests := []struct {
		name       string
		fail       string
		method     string
		target     string
		body       string
		wantAction string // the compensating record, "" for none
	}{
		{"UpdateSubject", "UpdateSubject", "PUT", "/subject/S-1", `{"sssid": "S-1", "name": "Renamed"}`, `name: "Renamed" failed`},
		{"Establish", "EstablishLink", "POST", "/establish", patientJSON("P-1"), "[Link] link to P-1 failed"},
		{"NoAudit", "AppendAudit", "PUT", "/subject/S-1", `{"sssid": "S-1", "name": "Renamed"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnvOn(t, newStore(t))
			env.must(t, http.StatusCreated, "POST", "/subject", `{"sssid": "S-1", "name": "Alice", "bday": "1980-05-17", "date_consented": "2024-05-01"}`)
			tok := env.mint(t, env.createLink(t, "S-1"))
			broken := newTestEnvOn(t, env.store, func(c *envConfig) {
				c.Store = failingStore{Store: env.store, fail: tt.fail}
				c.Now = env.clock.Now
			})
			r := broken.do(t, tt.method, tt.target, tt.body, "Authorization", "JWT "+staffToken)
			if tt.target == "/establish" {
				r = broken.establish(t, tok, "P-1")
			}
			if r.status != http.StatusInternalServerError || r.message() != "internal error" || strings.Contains(string(r.body), "fire") {
				t.Fatalf("got %d %s, want a generic 500", r.status, r.body)
			}
			var trail struct{ Data []struct{ Action string } }
			env.must(t, http.StatusOK, "GET", "/subject/S-1/audits", "").decode(t, &trail)
			last := trail.Data[len(trail.Data)-1].Action
			if tt.wantAction == "" {
				if last != "[Link] create JWT" {
					t.Errorf("last record %q, want none after the failed change", last)
				}
				s, err := env.store.FindSubject(t.Context(), "S-1")
				if err != nil || s.Name != "Alice" {
					t.Errorf("subject changed without an audit record: %+v %v", s, err)
				}
				return
			}
			if last != tt.wantAction || trail.Data[len(trail.Data)-2].Action != strings.TrimSuffix(tt.wantAction, idm.AuditFailed) {
				t.Errorf("trail ends with %v, want the record and %q", trail.Data, tt.wantAction)
			}
		})
	}
}

// countingStore counts the store calls a request makes.
type countingStore struct {
	idm.Store
	mu    sync.Mutex
	calls map[string]int
}

func (s *countingStore) count(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[name]++
}

func (s *countingStore) reset() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls
	s.calls = map[string]int{}
	return c
}

func (s *countingStore) FindSubject(ctx context.Context, sssid string) (idm.Subject, error) {
	s.count("FindSubject")
	return s.Store.FindSubject(ctx, sssid)
}

func (s *countingStore) ListSubjects(ctx context.Context, f idm.SubjectFilter) ([]idm.Subject, int, error) {
	s.count("ListSubjects")
	return s.Store.ListSubjects(ctx, f)
}

func (s *countingStore) LinksForSubjects(ctx context.Context, sssids ...string) ([]idm.Link, error) {
	s.count("LinksForSubjects")
	return s.Store.LinksForSubjects(ctx, sssids...)
}

func (s *countingStore) FindLink(ctx context.Context, id string) (idm.Link, error) {
	s.count("FindLink")
	return s.Store.FindLink(ctx, id)
}

func (s *countingStore) AuditsFor(ctx context.Context, docs ...string) ([]idm.AuditEvent, error) {
	s.count("AuditsFor")
	return s.Store.AuditsFor(ctx, docs...)
}

// TestListStoreCalls checks that a page of 50 subjects, each with links,
// costs a fixed number of store calls (no call per subject).
func TestListStoreCalls(t *testing.T) { onEachStore(t, testListStoreCalls) }

func testListStoreCalls(t *testing.T, newStore newStoreFunc) {
	env := newTestEnvOn(t, newStore(t))
	counting := &countingStore{Store: env.store, calls: map[string]int{}}
	env = newTestEnvOn(t, env.store, func(c *envConfig) { c.Store = counting })
	ctx := t.Context()
	for i := range 60 {
		sssid := fmt.Sprintf("S-%03d", i)
		s := idm.Subject{ID: idm.NewID(), SSSID: sssid, Name: "N", Bday: "1980-01-01", DateConsented: "2024-01-01"}
		if err := env.store.CreateSubject(ctx, s); err != nil {
			t.Fatal(err)
		}
		l := idm.Link{ID: idm.NewID(), SSSID: sssid, Created: time.Unix(1700000000, 0).UTC()}
		if err := env.store.CreateLink(ctx, l); err != nil {
			t.Fatal(err)
		}
		if _, err := env.store.EstablishLink(ctx, l.ID, "P", "", time.Unix(1700000100, 0).UTC()); err != nil {
			t.Fatal(err)
		}
	}
	counting.reset()
	var page struct {
		Data []struct {
			DateEnrolled string `json:"date_enrolled"`
		}
	}
	env.must(t, http.StatusOK, "GET", "/subject?perpage=50&ordercol=sssid&orderdir=asc", "").decode(t, &page)
	calls := counting.reset()
	if len(page.Data) != 50 || page.Data[49].DateEnrolled == "" {
		t.Fatalf("page of %d subjects, last %+v", len(page.Data), page.Data[len(page.Data)-1])
	}
	total := 0
	for _, n := range calls {
		total += n
	}
	if total != 2 || calls["ListSubjects"] != 1 || calls["LinksForSubjects"] != 1 {
		t.Errorf("store calls for a page of 50: %v, want one ListSubjects and one LinksForSubjects", calls)
	}
	// A single subject and its audit trail are bounded too.
	env.must(t, http.StatusOK, "GET", "/subject/S-001/audits", "")
	if calls := counting.reset(); calls["FindSubject"] != 1 || calls["LinksForSubjects"] != 1 || calls["AuditsFor"] != 1 {
		t.Errorf("store calls for an audit trail: %v", calls)
	}
}

// panickingStore panics in ListSubjects, like a store with a bug.
type panickingStore struct{ idm.Store }

func (panickingStore) ListSubjects(context.Context, idm.SubjectFilter) ([]idm.Subject, int, error) {
	panic("bug in the store")
}

// TestPanicIsInternalError checks that a panic below a handler becomes a
// logged, generic JSON 500 instead of a dropped connection.
func TestPanicIsInternalError(t *testing.T) {
	logged := &syncBuffer{}
	env := newTestEnv(t, func(c *envConfig) {
		c.Store = panickingStore{memstore.New()}
		c.Logger = slog.New(slog.NewTextHandler(logged, nil))
	})
	r := env.staff(t, "GET", "/subject", "")
	if r.status != http.StatusInternalServerError || r.message() != "internal error" || strings.Contains(string(r.body), "bug") {
		t.Fatalf("got %d %s, want a generic 500", r.status, r.body)
	}
	if !strings.Contains(logged.String(), "bug in the store") {
		t.Errorf("panic not logged: %q", logged.String())
	}
}

// syncBuffer is a buffer that the server's goroutines may write while a
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
