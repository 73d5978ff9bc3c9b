package memstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/c3-pro/idm/idm"
)

// AuditCount implements [idm.AuditLogStore].
func (s *Store) AuditCount(context.Context) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, errClosed
	}
	return int64(len(s.log)), nil
}

// AuditsBySeq implements [idm.AuditLogStore].
func (s *Store) AuditsBySeq(_ context.Context, from, to int64) ([]idm.AuditEvent, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, errClosed
	}
	from, to = max(from, 0), min(to, int64(len(s.log)))
	out := []idm.AuditEvent{}
	for i := from; i < to; i++ {
		out = append(out, cloneAudit(s.log[i]))
	}
	return out, nil
}

// TreeSize implements [idm.AuditLogStore].
func (s *Store) TreeSize(context.Context) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, errClosed
	}
	return s.treeSize, nil
}

// TreeHashes implements [idm.AuditLogStore].
func (s *Store) TreeHashes(_ context.Context, indexes []int64) ([][32]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, errClosed
	}
	out := make([][32]byte, len(indexes))
	for i, x := range indexes {
		h, ok := s.tree[x]
		if !ok {
			return nil, fmt.Errorf("memstore: tree hash %d: %w", x, idm.ErrNotFound)
		}
		out[i] = h
	}
	return out, nil
}

// AddTreeHashes implements [idm.AuditLogStore].
func (s *Store) AddTreeHashes(_ context.Context, start int64, hashes [][32]byte, size int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	for i, h := range hashes {
		s.tree[start+int64(i)] = h
	}
	s.treeSize = max(s.treeSize, size)
	return nil
}

// AddCheckpoint implements [idm.AuditLogStore].
func (s *Store) AddCheckpoint(_ context.Context, c idm.Checkpoint) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	i, found := slices.BinarySearchFunc(s.checkpoints, c.Size, func(x idm.Checkpoint, size int64) int { return cmp.Compare(x.Size, size) })
	if found {
		return fmt.Errorf("memstore: checkpoint of size %d: %w", c.Size, idm.ErrConflict)
	}
	c.Note = slices.Clone(c.Note)
	c.Time = idm.Timestamp(c.Time)
	s.checkpoints = slices.Insert(s.checkpoints, i, c)
	return nil
}

// Checkpoints implements [idm.AuditLogStore].
func (s *Store) Checkpoints(context.Context) ([]idm.Checkpoint, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, errClosed
	}
	out := make([]idm.Checkpoint, len(s.checkpoints))
	for i, c := range s.checkpoints {
		c.Note = slices.Clone(c.Note)
		out[i] = c
	}
	return out, nil
}

// LatestCheckpoint implements [idm.AuditLogStore].
func (s *Store) LatestCheckpoint(context.Context) (idm.Checkpoint, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return idm.Checkpoint{}, errClosed
	}
	if len(s.checkpoints) == 0 {
		return idm.Checkpoint{}, fmt.Errorf("memstore: no checkpoint: %w", idm.ErrNotFound)
	}
	c := s.checkpoints[len(s.checkpoints)-1]
	c.Note = slices.Clone(c.Note)
	return c, nil
}

// ReplaceAudits implements [idm.AuditLogStore].
func (s *Store) ReplaceAudits(_ context.Context, records []idm.AuditEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	for _, e := range records {
		if e.Seq < 0 || e.Seq >= int64(len(s.log)) || s.log[e.Seq].ID != e.ID {
			return fmt.Errorf("memstore: audit record seq %d id %s: %w", e.Seq, e.ID, idm.ErrNotFound)
		}
	}
	for _, e := range records {
		e = cloneAudit(e)
		old := s.log[e.Seq]
		e.Time = old.Time // the time orders the records; it is not personal data
		s.log[e.Seq] = e
		if e.Document != old.Document {
			s.unindexDoc(old.Document, e.Seq)
			s.indexDoc(e)
		}
		i, found := slices.BinarySearchFunc(s.audits, old, compareAudits)
		if found {
			s.audits[i] = e
		}
	}
	return nil
}
