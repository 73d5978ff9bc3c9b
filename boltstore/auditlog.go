package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/c3-pro/idm/idm"
)

// The audit log (see [idm.AuditLogStore]): bucket audits_by_seq maps
// seqKey(seq) to the record's key in bucket audits, and its bbolt sequence
// is the number of records; audit_tree maps seqKey(index) to a stored tree
// hash, and meta's audit_tree_size is the number of records they cover;
// audit_checkpoints maps seqKey(size) to a checkpointRec.

// seqKey is the key of a seq (or tree index, or size): 8 bytes big endian.
func seqKey(n int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)) }

type checkpointRec struct {
	Note []byte `json:"note"`
	Time *int64 `json:"time,omitempty"`
}

// numberAudits gives the records of a file written before the audit log
// their seqs, in the order of their keys (time, then ID), once: when the
// by-seq index is empty and records exist.
func numberAudits(tx *bolt.Tx) error {
	bySeq := bucket(tx, bAuditsBySeq)
	if bySeq.Sequence() != 0 {
		return nil
	}
	audits := bucket(tx, bAudits)
	var seq int64
	type rewrite struct{ key, val []byte }
	var rewrites []rewrite
	err := audits.ForEach(func(k, v []byte) error {
		var r auditRec
		if err := decode(v, &r, k); err != nil {
			return err
		}
		r.Seq = &seq
		val, err := encode(r)
		if err != nil {
			return err
		}
		rewrites = append(rewrites, rewrite{slices.Clone(k), val})
		if err := bySeq.Put(seqKey(seq), slices.Clone(k)); err != nil {
			return err
		}
		seq++
		return nil
	})
	if err != nil {
		return fmt.Errorf("numbering the audit records: %w", err)
	}
	for _, rw := range rewrites {
		if err := audits.Put(rw.key, rw.val); err != nil {
			return err
		}
	}
	return bySeq.SetSequence(uint64(seq))
}

// AuditCount implements [idm.AuditLogStore].
func (s *Store) AuditCount(ctx context.Context) (int64, error) {
	var n int64
	err := s.view(ctx, "audit count", func(tx *bolt.Tx) error {
		n = int64(bucket(tx, bAuditsBySeq).Sequence())
		return nil
	})
	return n, err
}

// AuditsBySeq implements [idm.AuditLogStore].
func (s *Store) AuditsBySeq(ctx context.Context, from, to int64) ([]idm.AuditEvent, error) {
	out := []idm.AuditEvent{}
	err := s.view(ctx, "audits by seq", func(tx *bolt.Tx) error {
		audits := bucket(tx, bAudits)
		c := bucket(tx, bAuditsBySeq).Cursor()
		for k, key := c.Seek(seqKey(max(from, 0))); k != nil && int64(binary.BigEndian.Uint64(k)) < to; k, key = c.Next() {
			seq := int64(binary.BigEndian.Uint64(k))
			v := audits.Get(key)
			if v == nil {
				continue // a missing record: the caller sees the gap
			}
			var r auditRec
			if err := decode(v, &r, key); err != nil {
				return &idm.BadAuditRecordError{Seq: seq, Err: err}
			}
			e := r.event()
			if r.Seq == nil {
				e.Seq = seq
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		var bad *idm.BadAuditRecordError
		if errors.As(err, &bad) {
			return nil, bad
		}
		return nil, err
	}
	return out, nil
}

// TreeSize implements [idm.AuditLogStore].
func (s *Store) TreeSize(ctx context.Context) (int64, error) {
	var n int64
	err := s.view(ctx, "tree size", func(tx *bolt.Tx) error {
		if v := bucket(tx, bMeta).Get([]byte(kTreeSize)); len(v) == 8 {
			n = int64(binary.BigEndian.Uint64(v))
		}
		return nil
	})
	return n, err
}

// TreeHashes implements [idm.AuditLogStore].
func (s *Store) TreeHashes(ctx context.Context, indexes []int64) ([][32]byte, error) {
	out := make([][32]byte, len(indexes))
	err := s.view(ctx, "tree hashes", func(tx *bolt.Tx) error {
		tree := bucket(tx, bAuditTree)
		for i, x := range indexes {
			v := tree.Get(seqKey(x))
			if len(v) != 32 {
				return fmt.Errorf("tree hash %d: %w", x, idm.ErrNotFound)
			}
			copy(out[i][:], v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AddTreeHashes implements [idm.AuditLogStore].
func (s *Store) AddTreeHashes(ctx context.Context, start int64, hashes [][32]byte, size int64) error {
	return s.update(ctx, "add tree hashes", func(tx *bolt.Tx) error {
		tree := bucket(tx, bAuditTree)
		for i, h := range hashes {
			if err := tree.Put(seqKey(start+int64(i)), bytes.Clone(h[:])); err != nil {
				return err
			}
		}
		meta := bucket(tx, bMeta)
		if v := meta.Get([]byte(kTreeSize)); len(v) == 8 && int64(binary.BigEndian.Uint64(v)) >= size {
			return nil
		}
		return meta.Put([]byte(kTreeSize), seqKey(size))
	})
}

// AddCheckpoint implements [idm.AuditLogStore].
func (s *Store) AddCheckpoint(ctx context.Context, c idm.Checkpoint) error {
	val, err := encode(checkpointRec{Note: c.Note, Time: encTime(c.Time)})
	if err != nil {
		return wrapErr("add checkpoint", err)
	}
	return s.update(ctx, "add checkpoint", func(tx *bolt.Tx) error {
		b := bucket(tx, bCheckpoints)
		if b.Get(seqKey(c.Size)) != nil {
			return fmt.Errorf("checkpoint of size %d: %w", c.Size, idm.ErrConflict)
		}
		return b.Put(seqKey(c.Size), val)
	})
}

// Checkpoints implements [idm.AuditLogStore].
func (s *Store) Checkpoints(ctx context.Context) ([]idm.Checkpoint, error) {
	out := []idm.Checkpoint{}
	err := s.view(ctx, "checkpoints", func(tx *bolt.Tx) error {
		return bucket(tx, bCheckpoints).ForEach(func(k, v []byte) error {
			c, err := decodeCheckpoint(k, v)
			out = append(out, c)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// LatestCheckpoint implements [idm.AuditLogStore].
func (s *Store) LatestCheckpoint(ctx context.Context) (idm.Checkpoint, error) {
	var c idm.Checkpoint
	err := s.view(ctx, "latest checkpoint", func(tx *bolt.Tx) error {
		k, v := bucket(tx, bCheckpoints).Cursor().Last()
		if k == nil {
			return fmt.Errorf("no checkpoint: %w", idm.ErrNotFound)
		}
		var err error
		c, err = decodeCheckpoint(k, v)
		return err
	})
	return c, err
}

func decodeCheckpoint(k, v []byte) (idm.Checkpoint, error) {
	var r checkpointRec
	if err := decode(v, &r, k); err != nil {
		return idm.Checkpoint{}, err
	}
	return idm.Checkpoint{Size: int64(binary.BigEndian.Uint64(k)), Note: r.Note, Time: decTime(r.Time)}, nil
}

// ReplaceAudits implements [idm.AuditLogStore]. The records keep their key
// (time and ID) and so their place in every index; an index entry of the
// actor that a record no longer names is removed.
func (s *Store) ReplaceAudits(ctx context.Context, records []idm.AuditEvent) error {
	return s.update(ctx, "replace audits", func(tx *bolt.Tx) error {
		audits, bySeq, byActor := bucket(tx, bAudits), bucket(tx, bAuditsBySeq), bucket(tx, bAuditsByActor)
		counts := bucket(tx, bAuditCounts)
		for _, e := range records {
			key := bySeq.Get(seqKey(e.Seq))
			v := audits.Get(key)
			if v == nil {
				return fmt.Errorf("audit record seq %d: %w", e.Seq, idm.ErrNotFound)
			}
			var old auditRec
			if err := decode(v, &old, key); err != nil {
				return err
			}
			if old.ID != e.ID {
				return fmt.Errorf("audit record seq %d is %s, not %s: %w", e.Seq, old.ID, e.ID, idm.ErrNotFound)
			}
			e.Time = decTime(old.Time)
			val, err := encode(toAuditRec(e))
			if err != nil {
				return err
			}
			if err := audits.Put(slices.Clone(key), val); err != nil {
				return err
			}
			for _, actor := range []string{old.ActorID, old.Actor} {
				if actor != "" && actor != e.ActorID && actor != e.Actor {
					k := append(appendStr(nil, actor), key...)
					if byActor.Get(k) == nil {
						continue // named twice (ID and username), removed once
					}
					if err := byActor.Delete(k); err != nil {
						return err
					}
					if err := addCount(counts, actor, key, -1); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
}
