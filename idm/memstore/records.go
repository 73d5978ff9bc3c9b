package memstore

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/c3-pro/idm/idm"
)

// Links.

func normLink(l idm.Link) idm.Link {
	l.Created = idm.Timestamp(l.Created)
	l.Changed = idm.Timestamp(l.Changed)
	l.LinkedOn = idm.Timestamp(l.LinkedOn)
	l.Revoked = idm.Timestamp(l.Revoked)
	return l
}

func compareLinks(a, b idm.Link) int {
	return cmp.Or(a.Created.Compare(b.Created), strings.Compare(a.ID, b.ID))
}

// CreateLink implements [idm.LinkStore].
func (s *Store) CreateLink(_ context.Context, l idm.Link) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if _, ok := s.links[l.ID]; ok {
		return conflict("link", l.ID)
	}
	l.Rev = 1
	s.links[l.ID] = normLink(l)
	return nil
}

// FindLink implements [idm.LinkStore].
func (s *Store) FindLink(_ context.Context, id string) (idm.Link, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return idm.Link{}, errClosed
	}
	l, ok := s.links[id]
	if !ok {
		return idm.Link{}, notFound("link", id)
	}
	return l, nil
}

// FindLinkByJWTHash implements [idm.LinkStore]. Should several links have
// the same hash, the one created first wins.
func (s *Store) FindLinkByJWTHash(_ context.Context, hash string) (idm.Link, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return idm.Link{}, errClosed
	}
	var found *idm.Link
	if hash != "" {
		for _, l := range s.links {
			if l.JWTHash == hash && (found == nil || compareLinks(l, *found) < 0) {
				found = &l
			}
		}
	}
	if found == nil {
		return idm.Link{}, notFound("link with JWT hash", hash)
	}
	return *found, nil
}

// UpdateLink implements [idm.LinkStore].
func (s *Store) UpdateLink(_ context.Context, l idm.Link) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	old, ok := s.links[l.ID]
	if !ok {
		return notFound("link", l.ID)
	}
	if old.Rev != l.Rev {
		return stale("link", l.ID, old.Rev, l.Rev)
	}
	l.Rev++
	s.links[l.ID] = normLink(l)
	return nil
}

// DeleteLink implements [idm.LinkStore].
func (s *Store) DeleteLink(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if _, ok := s.links[id]; !ok {
		return notFound("link", id)
	}
	delete(s.links, id)
	return nil
}

// LinksForSubjects implements [idm.LinkStore].
func (s *Store) LinksForSubjects(_ context.Context, sssids ...string) ([]idm.Link, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, errClosed
	}
	out := []idm.Link{}
	if len(sssids) == 0 {
		return out, nil
	}
	want := make(map[string]struct{}, len(sssids))
	for _, id := range sssids {
		want[id] = struct{}{}
	}
	for _, l := range s.links {
		if _, ok := want[l.SSSID]; ok {
			out = append(out, l)
		}
	}
	slices.SortFunc(out, compareLinks)
	return out, nil
}

// EstablishLink implements [idm.LinkStore].
func (s *Store) EstablishLink(_ context.Context, id, linkedTo, system string, on time.Time) (idm.Link, error) {
	if linkedTo == "" {
		return idm.Link{}, fmt.Errorf("memstore: establishing link %q: empty linked_to: %w", id, idm.ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return idm.Link{}, errClosed
	}
	l, ok := s.links[id]
	switch {
	case !ok:
		return idm.Link{}, notFound("link", id)
	case !l.Revoked.IsZero():
		return idm.Link{}, fmt.Errorf("memstore: link %q is revoked: %w", id, idm.ErrNotFound)
	case l.LinkedTo != "":
		return idm.Link{}, fmt.Errorf("memstore: link %q is already established: %w", id, idm.ErrConflict)
	}
	on = idm.Timestamp(on)
	l.LinkedTo, l.LinkedSystem, l.LinkedOn, l.Changed = linkedTo, system, on, on
	l.Rev++
	s.links[id] = l
	return l, nil
}

// Audits.

func compareAudits(a, b idm.AuditEvent) int {
	return cmp.Or(a.Time.Compare(b.Time), strings.Compare(a.ID, b.ID))
}

func cloneAudit(e idm.AuditEvent) idm.AuditEvent {
	e.Old = cloneRaw(e.Old)
	e.New = cloneRaw(e.New)
	return e
}

// AppendAudit implements [idm.AuditStore].
func (s *Store) AppendAudit(_ context.Context, e idm.AuditEvent) error {
	e = cloneAudit(e)
	e.Time = idm.Timestamp(e.Time)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if s.auditIDs[e.ID] {
		return fmt.Errorf("memstore: audit record %s: %w", e.ID, idm.ErrConflict)
	}
	s.appendAudit(e)
	return nil
}

// appendAudit stores e, whose ID is not taken, with the next Seq and keeps
// the indexes. The caller holds s.mu.
func (s *Store) appendAudit(e idm.AuditEvent) {
	s.auditIDs[e.ID] = true
	e.Seq = int64(len(s.log))
	s.log = append(s.log, e)
	// Records mostly arrive in order: this is an append then.
	i, _ := slices.BinarySearchFunc(s.audits, e, compareAudits)
	s.audits = slices.Insert(s.audits, i, e)
	s.indexDoc(e)
}

// indexDoc puts the record e (in s.log) into its document's list. The
// caller holds s.mu.
func (s *Store) indexDoc(e idm.AuditEvent) {
	seqs := s.byDoc[e.Document]
	i, _ := slices.BinarySearchFunc(seqs, e, func(seq int64, e idm.AuditEvent) int { return compareAudits(s.log[seq], e) })
	s.byDoc[e.Document] = slices.Insert(seqs, i, e.Seq)
}

// unindexDoc takes the record with the given Seq out of its document's
// list. The caller holds s.mu.
func (s *Store) unindexDoc(doc string, seq int64) {
	seqs := slices.DeleteFunc(s.byDoc[doc], func(q int64) bool { return q == seq })
	if len(seqs) == 0 {
		delete(s.byDoc, doc)
		return
	}
	s.byDoc[doc] = seqs
}

// AuditsFor implements [idm.AuditStore].
func (s *Store) AuditsFor(_ context.Context, documents ...string) ([]idm.AuditEvent, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, errClosed
	}
	out := []idm.AuditEvent{}
	seen := map[string]bool{}
	for _, doc := range documents {
		if seen[doc] {
			continue
		}
		seen[doc] = true
		for _, seq := range s.byDoc[doc] {
			out = append(out, cloneAudit(s.log[seq]))
		}
	}
	if len(seen) > 1 {
		slices.SortFunc(out, compareAudits)
	}
	return out, nil
}

// ListAudits implements [idm.AuditStore].
func (s *Store) ListAudits(_ context.Context, f idm.AuditFilter) ([]idm.AuditEvent, int, error) {
	if err := checkPage(f.Offset, f.Limit); err != nil {
		return nil, 0, err
	}
	since, until := idm.Timestamp(f.Since), idm.Timestamp(f.Until)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, 0, errClosed
	}
	// The records are sorted by time: skip to the window.
	lo := 0
	if !since.IsZero() {
		lo, _ = slices.BinarySearchFunc(s.audits, since, func(e idm.AuditEvent, t time.Time) int { return e.Time.Compare(t) })
	}
	out := []idm.AuditEvent{}
	if f.Actor == "" {
		// No scan: the window is found by its two ends.
		hi := len(s.audits)
		if !until.IsZero() {
			hi, _ = slices.BinarySearchFunc(s.audits, until, func(e idm.AuditEvent, t time.Time) int { return e.Time.Compare(t) })
		}
		hi = max(hi, lo)
		from, to := page(hi-lo, f.Offset, f.Limit)
		for _, e := range s.audits[lo+from : lo+to] {
			out = append(out, cloneAudit(e))
		}
		return out, hi - lo, nil
	}
	total := 0
	for _, e := range s.audits[lo:] {
		if !until.IsZero() && !e.Time.Before(until) {
			break
		}
		if f.Actor != "" && e.ActorID != f.Actor && e.Actor != f.Actor {
			continue
		}
		if total >= f.Offset && (f.Limit == 0 || len(out) < f.Limit) {
			out = append(out, cloneAudit(e))
		}
		total++
	}
	return out, total, nil
}

// Reset tokens.

// CreateResetToken implements [idm.ResetTokenStore].
func (s *Store) CreateResetToken(_ context.Context, t idm.ResetToken) error {
	t.Created = idm.Timestamp(t.Created)
	t.Expires = idm.Timestamp(t.Expires)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if _, ok := s.tokens[t.Hash]; ok {
		return conflict("reset token", "")
	}
	s.tokens[t.Hash] = t
	return nil
}

// validToken returns the token with hash that has not expired at now. The
// caller holds s.mu.
func (s *Store) validToken(hash string, now time.Time) (idm.ResetToken, error) {
	t, ok := s.tokens[hash]
	if !ok || !t.Expires.After(idm.Timestamp(now)) {
		return idm.ResetToken{}, fmt.Errorf("memstore: reset token: %w", idm.ErrNotFound)
	}
	return t, nil
}

// FindResetToken implements [idm.ResetTokenStore].
func (s *Store) FindResetToken(_ context.Context, hash string, now time.Time) (idm.ResetToken, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return idm.ResetToken{}, errClosed
	}
	return s.validToken(hash, now)
}

// ConsumeResetToken implements [idm.ResetTokenStore].
func (s *Store) ConsumeResetToken(_ context.Context, hash string, now time.Time) (idm.ResetToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return idm.ResetToken{}, errClosed
	}
	t, err := s.validToken(hash, now)
	if err != nil {
		return idm.ResetToken{}, err
	}
	delete(s.tokens, hash)
	return t, nil
}

// DeleteResetTokens implements [idm.ResetTokenStore].
func (s *Store) DeleteResetTokens(_ context.Context, userID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	maps.DeleteFunc(s.tokens, func(_ string, t idm.ResetToken) bool { return t.UserID == userID })
	return nil
}

// CountResetTokens implements [idm.ResetTokenStore].
func (s *Store) CountResetTokens(_ context.Context, userID string, since time.Time) (int, error) {
	since = idm.Timestamp(since)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, errClosed
	}
	n := 0
	for _, t := range s.tokens {
		if t.UserID == userID && !t.Created.Before(since) {
			n++
		}
	}
	return n, nil
}

// PurgeExpiredResetTokens implements [idm.ResetTokenStore].
func (s *Store) PurgeExpiredResetTokens(_ context.Context, now time.Time) (int, error) {
	now = idm.Timestamp(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errClosed
	}
	before := len(s.tokens)
	maps.DeleteFunc(s.tokens, func(_ string, t idm.ResetToken) bool { return !t.Expires.After(now) })
	return before - len(s.tokens), nil
}

// Keys.

// CreateSigningKey implements [idm.KeyStore].
func (s *Store) CreateSigningKey(_ context.Context, k idm.SigningKey) error {
	k.Secret = slices.Clone(k.Secret)
	k.Created = idm.Timestamp(k.Created)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if _, ok := s.keys[k.Name]; ok {
		return conflict("signing key", k.Name)
	}
	s.keys[k.Name] = k
	return nil
}

// FindSigningKey implements [idm.KeyStore].
func (s *Store) FindSigningKey(_ context.Context, name string) (idm.SigningKey, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return idm.SigningKey{}, errClosed
	}
	k, ok := s.keys[name]
	if !ok {
		return idm.SigningKey{}, notFound("signing key", name)
	}
	k.Secret = slices.Clone(k.Secret)
	return k, nil
}

// Meta.

// MarkBootstrapped implements [idm.MetaStore].
func (s *Store) MarkBootstrapped(_ context.Context, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if s.bootstrapped {
		return fmt.Errorf("memstore: already bootstrapped: %w", idm.ErrConflict)
	}
	s.bootstrapped = true
	return nil
}

// Bootstrapped implements [idm.MetaStore].
func (s *Store) Bootstrapped(_ context.Context) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return false, errClosed
	}
	return s.bootstrapped, nil
}

// RecordLoginFailure implements [idm.MetaStore].
func (s *Store) RecordLoginFailure(_ context.Context, key string, now time.Time, window time.Duration) (idm.LoginFailures, error) {
	now = idm.Timestamp(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return idm.LoginFailures{}, errClosed
	}
	f, ok := s.failures[key]
	if !ok || f.Count == 0 || !now.Before(f.Since.Add(window)) {
		f = idm.LoginFailures{Key: key, Since: now}
	}
	f.Count++
	f.Last = now
	s.failures[key] = f
	return f, nil
}

// ReserveLoginAttempt implements [idm.MetaStore].
func (s *Store) ReserveLoginAttempt(_ context.Context, key string, now time.Time, window time.Duration, max int) (idm.LoginFailures, bool, error) {
	if max < 1 {
		return idm.LoginFailures{}, false, fmt.Errorf("memstore: reserve a login attempt with max %d: %w", max, idm.ErrInvalid)
	}
	now = idm.Timestamp(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return idm.LoginFailures{}, false, errClosed
	}
	f, ok := s.failures[key]
	if !ok || f.Count == 0 || !now.Before(f.Since.Add(window)) {
		f = idm.LoginFailures{Key: key, Since: now}
	} else if f.Count >= max {
		return f, false, nil
	}
	f.Count++
	f.Last = now
	s.failures[key] = f
	return f, true, nil
}

// LoginFailures implements [idm.MetaStore].
func (s *Store) LoginFailures(_ context.Context, key string) (idm.LoginFailures, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return idm.LoginFailures{}, errClosed
	}
	if f, ok := s.failures[key]; ok {
		return f, nil
	}
	return idm.LoginFailures{Key: key}, nil
}

// ResetLoginFailures implements [idm.MetaStore].
func (s *Store) ResetLoginFailures(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	delete(s.failures, key)
	return nil
}

// PurgeLoginFailures implements [idm.MetaStore].
func (s *Store) PurgeLoginFailures(_ context.Context, before time.Time) (int, error) {
	before = idm.Timestamp(before)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errClosed
	}
	n := len(s.failures)
	maps.DeleteFunc(s.failures, func(_ string, f idm.LoginFailures) bool { return f.Last.Before(before) })
	return n - len(s.failures), nil
}
