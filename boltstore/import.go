package boltstore

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/c3-pro/idm/idm"
)

// CreateSubjects implements [idm.SubjectStore]: the subjects and the audit
// records are written in one bbolt transaction, synced before it returns,
// so the batch is stored whole or not at all; the records take the next
// seqs in their order, as [Store.AppendAudit] gives them. The in-memory
// copy takes the subjects after the commit, under the same lock as every
// write of subjects, with one merge per built sort order.
func (s *Store) CreateSubjects(ctx context.Context, subjects []idm.Subject, audits []idm.AuditEvent) error {
	const op = "create subjects"
	if len(subjects) == 0 && len(audits) == 0 {
		return s.checkOpen(ctx, op)
	}
	norm := make([]idm.Subject, len(subjects))
	vals := make([][]byte, len(subjects))
	for i, sub := range subjects {
		if sub.ID == "" || sub.SSSID == "" {
			return invalid("subject without ID or SSSID")
		}
		n := normSubject(sub)
		n.Rev = 1
		val, err := encode(toSubjectRec(n))
		if err != nil {
			return wrapErr(op, err)
		}
		norm[i], vals[i] = n, val
	}
	events := make([]idm.AuditEvent, len(audits))
	for i, e := range audits {
		if e.ID == "" {
			return invalid("audit record without ID")
		}
		e.Time = idm.Timestamp(e.Time)
		events[i] = e
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	// Only writers, which hold s.wmu, change the cache.
	ids := make(map[string]bool, len(norm))
	for _, n := range norm {
		if _, taken := s.subjects.ids[n.ID]; taken || ids[n.ID] {
			return fmt.Errorf("boltstore: %s: subject ID %s: %w", op, n.ID, idm.ErrConflict)
		}
		ids[n.ID] = true
	}
	// Subjects go in in key order, which touches each page once.
	order := make([]int, len(norm))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(norm[a].SSSID, norm[b].SSSID) })
	err := s.update(ctx, op, func(tx *bolt.Tx) error {
		// The audit buckets' keys start with the time or a sequence, and
		// an import makes its IDs in order too: its records go at the end
		// of each, where full pages waste no room.
		for _, name := range []string{bAudits, bAuditsBySeq, bAuditsByID, bAuditsByDoc} {
			bucket(tx, name).FillPercent = appendFill
		}
		b := bucket(tx, bSubjects)
		for _, i := range order {
			n := norm[i]
			if b.Get([]byte(n.SSSID)) != nil {
				return fmt.Errorf("SSSID %q: %w", n.SSSID, idm.ErrConflict)
			}
			if err := b.Put([]byte(n.SSSID), vals[i]); err != nil {
				return err
			}
		}
		for _, e := range events {
			if err := putAudit(tx, e, auditKey(e)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	entries := make([]*subjEntry, len(norm))
	for i, n := range norm {
		entries[i] = newSubjEntry(n)
	}
	s.mu.Lock()
	s.subjects.addAll(entries)
	s.mu.Unlock()
	return nil
}

// appendFill is how full bbolt fills the pages of a bucket that an import
// appends to (bbolt's default, 0.5, suits random inserts).
const appendFill = 0.9

// addAll puts new entries into the cache as add does, but a built sort
// order takes a large batch by one merge instead of one insertion (which
// moves the rest of the order) per entry.
func (c *subjectCache) addAll(es []*subjEntry) {
	if len(es) < 64 {
		for _, e := range es {
			c.add(e)
		}
		return
	}
	// add keeps everything but the orders; the orders, set aside, then
	// take the batch.
	built, siteOrders := c.built, c.siteOrders
	c.built, c.siteOrders = [numCols]bool{}, map[siteCol][]*subjEntry{}
	for _, e := range es {
		c.add(e)
	}
	c.built, c.siteOrders = built, siteOrders
	for col := range numCols {
		if c.built[col] {
			c.orders[col] = mergeInto(c.orders[col], es, col)
		}
	}
	for k, idx := range c.siteOrders {
		var of []*subjEntry
		for _, e := range es {
			if e.site == k.site {
				of = append(of, e)
			}
		}
		if len(of) > 0 {
			c.siteOrders[k] = mergeInto(idx, of, k.col)
		}
	}
}

// mergeInto returns idx, in the ascending order of col, with es merged in.
// It goes from the back: each new entry's place among the old ones is
// found by binary search, and the old entries after it move in one copy,
// so that a batch costs a few comparisons per new entry and one memmove of
// the order, not a comparison per entry of the order.
func mergeInto(idx, es []*subjEntry, col int) []*subjEntry {
	cmpf := compareOrder(col)
	add := slices.SortedFunc(slices.Values(es), cmpf)
	n, m := len(idx), len(add)
	if cap(idx) < n+m {
		idx = slices.Grow(idx, m+(n+m)/64+16)
	}
	idx = idx[:n+m]
	hi, k := n, n+m // idx[:hi] holds the old entries not yet moved, idx[k:] the merged end
	for j := m - 1; j >= 0; j-- {
		p := sort.Search(hi, func(i int) bool { return cmpf(idx[i], add[j]) > 0 })
		k -= hi - p
		copy(idx[k:], idx[p:hi])
		hi = p
		k--
		idx[k] = add[j]
	}
	return idx
}
