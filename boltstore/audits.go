package boltstore

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/c3-pro/idm/idm"
)

// Audit records live in bucket audits under the key time(Time) ID, so that
// the bucket is in the order the queries need (oldest first, ties by ID) and
// a time range is one key range. Indexes, all pointing at that key:
// audits_by_id (ID -> key) keeps IDs unique; audits_by_document holds
// str(Document) key; audits_by_actor holds str(actor) key for the actor's ID
// and for their username.

// auditKey is the key of a record in bucket audits.
func auditKey(e idm.AuditEvent) []byte {
	return append(appendTime(make([]byte, 0, timeKeyLen+len(e.ID)), e.Time), e.ID...)
}

// AppendAudit stores e; e.ID must be set and unique (a taken ID gives an
// error that wraps [idm.ErrConflict]).
func (s *Store) AppendAudit(ctx context.Context, e idm.AuditEvent) error {
	if e.ID == "" {
		return invalid("audit record without ID")
	}
	e.Time = idm.Timestamp(e.Time)
	key := auditKey(e)
	return s.update(ctx, "append audit", func(tx *bolt.Tx) error { return putAudit(tx, e, key) })
}

// putAudit stores e, whose time is normalised, under key (its auditKey)
// with the next seq, and keeps the indexes, in tx. A taken ID gives an error
// that wraps [idm.ErrConflict].
func putAudit(tx *bolt.Tx, e idm.AuditEvent, key []byte) error {
	ids := bucket(tx, bAuditsByID)
	if ids.Get([]byte(e.ID)) != nil {
		return fmt.Errorf("audit record %s: %w", e.ID, idm.ErrConflict)
	}
	// The next seq is the by-seq index's sequence, raised in the same
	// transaction: bbolt has one writer at a time.
	bySeq := bucket(tx, bAuditsBySeq)
	e.Seq = int64(bySeq.Sequence())
	val, err := encode(toAuditRec(e))
	if err != nil {
		return err
	}
	if err := bucket(tx, bAudits).Put(key, val); err != nil {
		return err
	}
	if err := bySeq.Put(seqKey(e.Seq), key); err != nil {
		return err
	}
	if err := bySeq.SetSequence(uint64(e.Seq) + 1); err != nil {
		return err
	}
	if err := ids.Put([]byte(e.ID), key); err != nil {
		return err
	}
	if err := bucket(tx, bAuditsByDoc).Put(append(appendStr(nil, e.Document), key...), nil); err != nil {
		return err
	}
	counts := bucket(tx, bAuditCounts)
	if err := addCount(counts, "", key, 1); err != nil {
		return err
	}
	byActor := bucket(tx, bAuditsByActor)
	for i, actor := range []string{e.ActorID, e.Actor} {
		if actor == "" || (i == 1 && actor == e.ActorID) {
			continue
		}
		if err := byActor.Put(append(appendStr(nil, actor), key...), nil); err != nil {
			return err
		}
		if err := addCount(counts, actor, key, 1); err != nil {
			return err
		}
	}
	return nil
}

// AuditsFor returns the records about any of the given documents, oldest
// first (ties by ID); an empty slice when there are none.
func (s *Store) AuditsFor(ctx context.Context, documents ...string) ([]idm.AuditEvent, error) {
	out := []idm.AuditEvent{}
	err := s.view(ctx, "audits for documents", func(tx *bolt.Tx) error {
		var keys [][]byte
		c := bucket(tx, bAuditsByDoc).Cursor()
		seen := make(map[string]bool, len(documents))
		for _, doc := range documents {
			if seen[doc] {
				continue
			}
			seen[doc] = true
			prefix := appendStr(nil, doc)
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				keys = append(keys, k[len(prefix):])
			}
		}
		if len(documents) > 1 {
			slices.SortFunc(keys, bytes.Compare)
		}
		audits := bucket(tx, bAudits)
		out = slices.Grow(out, len(keys))
		for _, k := range keys {
			e, err := getAudit(audits, k)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListAudits returns a page of the records that match f, oldest first (ties
// by ID), and the number of records that match in all. f.Actor matches the
// actor's ID or username exactly; f.Since and f.Until are taken at
// millisecond precision, like the stored times. The counts of the records
// by hour (see auditcounts.go) give the total and skip to the offset, so
// that only the records of the page and of the hours at the ends of the
// range are read.
func (s *Store) ListAudits(ctx context.Context, f idm.AuditFilter) ([]idm.AuditEvent, int, error) {
	lo, hi, err := window(f.Offset, f.Limit)
	if err != nil {
		return nil, 0, fmt.Errorf("boltstore: list audits: %w", err)
	}
	var since, until []byte
	if !f.Since.IsZero() {
		since = appendTime(nil, f.Since)
	}
	if !f.Until.IsZero() {
		until = appendTime(nil, f.Until)
	}
	out := []idm.AuditEvent{}
	total := 0
	err = s.view(ctx, "list audits", func(tx *bolt.Tx) error {
		r := auditRange{counts: bucket(tx, bAuditCounts), actor: f.Actor, since: since, until: until}
		if f.Actor == "" {
			r.keys = bucket(tx, bAudits).Cursor()
		} else {
			r.keys = bucket(tx, bAuditsByActor).Cursor()
			r.prefix = appendStr(nil, f.Actor)
		}
		var keys [][]byte
		keys, total = r.page(lo, hi)
		audits := bucket(tx, bAudits)
		for _, k := range keys {
			e, err := getAudit(audits, k)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

func getAudit(audits *bolt.Bucket, key []byte) (idm.AuditEvent, error) {
	v := audits.Get(key)
	if v == nil {
		return idm.AuditEvent{}, fmt.Errorf("audit index names a missing record %q", key)
	}
	return decodeAudit(key, v)
}

func decodeAudit(key, v []byte) (idm.AuditEvent, error) {
	var r auditRec
	if err := decode(v, &r, key); err != nil {
		return idm.AuditEvent{}, err
	}
	return r.event(), nil
}
