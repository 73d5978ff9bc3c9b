// Package memstore is an in-memory [idm.Store]: for examples, handler tests
// and benchmarks. It keeps nothing across restarts.
//
// A Store is safe for concurrent use. It copies values in and out, so a
// caller never shares a map or slice with it, and it normalises every time
// with [idm.Timestamp], like the durable stores, so that tests see the same
// values on every store. Revision checks (see [idm.Store], "Revisions")
// happen under the store's one lock, together with the write. It passes the
// storetest conformance suite.
package memstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/ngram"
)

var _ idm.Store = (*Store)(nil)

// Store is an in-memory [idm.Store]. Make one with [New]; the zero value is
// not usable.
type Store struct {
	mu sync.RWMutex // guards everything below except order

	closed       bool
	users        map[string]userRec     // by ID
	userIDs      map[string]string      // username (as given) -> ID
	subjects     map[string]*subjectRec // by SSSID; records are never changed in place
	links        map[string]idm.Link    // by ID
	audits       []idm.AuditEvent       // sorted by Time, then ID
	log          []idm.AuditEvent       // the same records in Seq order
	byDoc        map[string][]int64     // document -> Seqs of its records, in the order of audits
	auditIDs     map[string]bool
	tree         map[int64][32]byte // stored tree hashes by index
	treeSize     int64
	checkpoints  []idm.Checkpoint          // by Size
	tokens       map[string]idm.ResetToken // by hash
	sessions     map[string]idm.Session    // by IDHash
	keys         map[string]idm.SigningKey // by name
	bootstrapped bool
	failures     map[string]idm.LoginFailures // by key

	// order caches the subjects sorted for each order, so that listing a
	// page costs no sort. Writers (holding mu for writing) drop it; readers
	// (holding mu for reading) fill it under orderMu.
	orderMu sync.Mutex
	order   map[orderKey][]*subjectRec

	// search indexes the subjects' lower-cased SSSIDs, names and birthdays
	// by ordinal, the place of their record in byOrd (see package ngram);
	// a removed record leaves nil there, counted by dead, until the
	// ordinals are renumbered. Guarded by mu like the records.
	search ngram.Index
	byOrd  []*subjectRec
	dead   int
}

type userRec struct {
	u   idm.User
	key string // u.Username, the key of userIDs
}

type subjectRec struct {
	s                          idm.Subject
	lowSSSID, lowName, lowBday string
	ord                        uint32 // its place in Store.byOrd
}

type orderKey struct {
	col  string
	desc bool
}

// New returns an empty store.
func New() *Store {
	return &Store{
		users:    map[string]userRec{},
		userIDs:  map[string]string{},
		subjects: map[string]*subjectRec{},
		links:    map[string]idm.Link{},
		tokens:   map[string]idm.ResetToken{},
		sessions: map[string]idm.Session{},
		keys:     map[string]idm.SigningKey{},
		tree:     map[int64][32]byte{},
		auditIDs: map[string]bool{},
		byDoc:    map[string][]int64{},
		failures: map[string]idm.LoginFailures{},
	}
}

var errClosed = fmt.Errorf("memstore: store is closed: %w", idm.ErrUnavailable)

func notFound(what, id string) error {
	return fmt.Errorf("memstore: %s %q: %w", what, id, idm.ErrNotFound)
}

func conflict(what, id string) error {
	return fmt.Errorf("memstore: %s %q exists: %w", what, id, idm.ErrConflict)
}

func stale(what, id string, stored, given int64) error {
	return fmt.Errorf("memstore: %s %q has revision %d, not %d: %w", what, id, stored, given, idm.ErrStale)
}

func checkPage(offset, limit int) error {
	if offset < 0 || limit < 0 {
		return fmt.Errorf("memstore: negative offset or limit: %w", idm.ErrInvalid)
	}
	return nil
}

// page returns the bounds of the page [offset, offset+limit) of n items.
func page(n, offset, limit int) (lo, hi int) {
	lo = min(offset, n)
	hi = n
	if limit > 0 && limit < n-lo {
		hi = lo + limit
	}
	return lo, hi
}

// Ping reports whether the store can serve requests: it can until Close.
func (s *Store) Ping(_ context.Context) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return errClosed
	}
	return nil
}

// Close marks the store closed: afterwards every method returns an error
// that wraps [idm.ErrUnavailable], which lets tests simulate a database
// outage. Close itself always returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// Users.

func normUser(u idm.User) idm.User {
	u.Created = idm.Timestamp(u.Created)
	u.Changed = idm.Timestamp(u.Changed)
	u.PasswordChanged = idm.Timestamp(u.PasswordChanged)
	return idm.CloneUser(u)
}

// CreateUser implements [idm.UserStore].
func (s *Store) CreateUser(_ context.Context, u idm.User) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	key := u.Username
	if _, ok := s.users[u.ID]; ok {
		return conflict("user", u.ID)
	}
	if _, ok := s.userIDs[key]; ok {
		return conflict("username", u.Username)
	}
	u.Rev = 1
	s.users[u.ID] = userRec{u: normUser(u), key: key}
	s.userIDs[key] = u.ID
	return nil
}

// FindUserByID implements [idm.UserStore].
func (s *Store) FindUserByID(_ context.Context, id string) (idm.User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return idm.User{}, errClosed
	}
	r, ok := s.users[id]
	if !ok {
		return idm.User{}, notFound("user", id)
	}
	return idm.CloneUser(r.u), nil
}

// FindUserByUsername implements [idm.UserStore].
func (s *Store) FindUserByUsername(_ context.Context, username string) (idm.User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return idm.User{}, errClosed
	}
	id, ok := s.userIDs[username]
	if !ok {
		return idm.User{}, notFound("username", username)
	}
	return idm.CloneUser(s.users[id].u), nil
}

// UpdateUser implements [idm.UserStore].
func (s *Store) UpdateUser(_ context.Context, u idm.User) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	old, ok := s.users[u.ID]
	if !ok {
		return notFound("user", u.ID)
	}
	if old.u.Rev != u.Rev {
		return stale("user", u.ID, old.u.Rev, u.Rev)
	}
	key := u.Username
	if id, ok := s.userIDs[key]; ok && id != u.ID {
		return conflict("username", u.Username)
	}
	u.Rev++
	delete(s.userIDs, old.key)
	s.userIDs[key] = u.ID
	s.users[u.ID] = userRec{u: normUser(u), key: key}
	return nil
}

// DeleteUser implements [idm.UserStore].
func (s *Store) DeleteUser(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	r, ok := s.users[id]
	if !ok {
		return notFound("user", id)
	}
	delete(s.userIDs, r.key)
	delete(s.users, id)
	return nil
}

// ListUsers implements [idm.UserStore].
func (s *Store) ListUsers(_ context.Context, f idm.UserFilter) ([]idm.User, int, error) {
	if err := checkPage(f.Offset, f.Limit); err != nil {
		return nil, 0, err
	}
	search := strings.ToLower(f.Search)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, 0, errClosed
	}
	var matches []userRec
	for _, r := range s.users {
		if strings.Contains(strings.ToLower(r.key), search) {
			matches = append(matches, r)
		}
	}
	slices.SortFunc(matches, func(a, b userRec) int { return strings.Compare(a.key, b.key) })
	lo, hi := page(len(matches), f.Offset, f.Limit)
	out := make([]idm.User, 0, hi-lo)
	for _, r := range matches[lo:hi] {
		out = append(out, idm.CloneUser(r.u))
	}
	return out, len(matches), nil
}

// CountAdmins implements [idm.UserStore].
func (s *Store) CountAdmins(_ context.Context) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, errClosed
	}
	n := 0
	for _, r := range s.users {
		if r.u.Admin && !r.u.Disabled {
			n++
		}
	}
	return n, nil
}

// AcceptTOTPStep implements [idm.UserStore].
func (s *Store) AcceptTOTPStep(_ context.Context, id string, step int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	r, ok := s.users[id]
	if !ok {
		return notFound("user", id)
	}
	if !r.u.TOTP.Active || r.u.TOTP.LastStep >= step {
		return conflict("totp step of user", id)
	}
	r.u.TOTP.LastStep = step
	r.u.Rev++
	s.users[id] = r
	return nil
}

// RecordLogin implements [idm.UserStore].
func (s *Store) RecordLogin(_ context.Context, id string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	r, ok := s.users[id]
	if !ok {
		return notFound("user", id)
	}
	if at = idm.Timestamp(at); at.After(r.u.LastLogin) {
		r.u.LastLogin = at
	}
	r.u.Rev++
	s.users[id] = r
	return nil
}

// ConsumeTOTPRecovery implements [idm.UserStore].
func (s *Store) ConsumeTOTPRecovery(_ context.Context, id, hash string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	r, ok := s.users[id]
	if !ok {
		return notFound("user", id)
	}
	if hash == "" || !r.u.TOTP.Active {
		return notFound("recovery code of user", id)
	}
	for i, h := range r.u.TOTP.Recovery {
		if h == hash {
			r.u.TOTP.Recovery = idm.CompactRecovery(r.u.TOTP.Recovery, i)
			r.u.Rev++
			s.users[id] = r
			return nil
		}
	}
	return notFound("recovery code of user", id)
}
