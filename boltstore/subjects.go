package boltstore

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/c3-pro/idm/idm"
)

// Subjects live in bucket subjects (SSSID -> subjectRec) and, decoded, in a
// subjectCache that answers every read. The cache is loaded when the store
// opens and changed only after a write has committed, under s.wmu, so it
// always equals the committed state; as this process is the only one that
// can write the file, it is authoritative.

// Sortable columns, in the order of [idm.SubjectColumns].
const (
	colSSSID = iota
	colName
	colBday
	colEmail
	colCreated
	colChanged
	colInvited
	colConsented
	colEnrolled
	colWithdrawn
	numCols
)

// column returns the column of an [idm.SubjectFilter] OrderCol.
func column(name string) (int, bool) {
	switch name {
	case "", "sssid":
		return colSSSID, true
	case "name":
		return colName, true
	case "bday":
		return colBday, true
	case "email":
		return colEmail, true
	case "created":
		return colCreated, true
	case "changed":
		return colChanged, true
	case "date_invited":
		return colInvited, true
	case "date_consented":
		return colConsented, true
	case "date_enrolled":
		return colEnrolled, true
	case "date_withdrawn":
		return colWithdrawn, true
	}
	return 0, false
}

// subjEntry is one subject in the cache. It is never modified: an update
// replaces the entry.
type subjEntry struct {
	s idm.Subject
	// lsearch is the lower-cased SSSID and name, joined by a NUL byte (at
	// lsep) so that one substring search covers both; lbday is the
	// lower-cased birthday.
	lsearch, lbday   string
	lsep             int
	created, changed int64 // Unix milliseconds, for sorting
	extraLen         int   // the bytes of all values of s.Extra
}

// subject returns a deep copy of the entry's subject.
func (e *subjEntry) subject() idm.Subject { return cloneExtra(e.s, e.extraLen) }

// newSubjEntry returns the cache entry of s, with s laid out as
// [contiguousSubject] does.
func newSubjEntry(s idm.Subject) *subjEntry {
	s = contiguousSubject(s)
	lsssid := strings.ToLower(s.SSSID)
	return &subjEntry{
		s:        s,
		lsearch:  lsssid + "\x00" + strings.ToLower(s.Name),
		lsep:     len(lsssid),
		lbday:    strings.ToLower(s.Bday),
		extraLen: extraLen(s.Extra),
		created:  s.Created.UnixMilli(),
		changed:  s.Changed.UnixMilli(),
	}
}

// contiguousSubject returns s with its strings and the keys of its
// additional fields copied next to each other into one string, in the order
// a page shows them (the additional fields' keys sorted, the internal ID
// last), and the values of its additional fields into one buffer, each
// value capped as [cloneExtra] caps them, in a new map. A subject read for
// a page then touches a few adjacent cache lines rather than one for each
// string, wherever the decoder put it; with many subjects in memory and
// pages from all over them, those misses were much of a page's cost.
func contiguousSubject(s idm.Subject) idm.Subject {
	fields := [...]*string{&s.SSSID, &s.Name, &s.Bday, &s.Email, &s.DateInvited, &s.DateConsented,
		&s.DateEnrolled, &s.DateWithdrawn, &s.ID}
	keys := slices.Sorted(maps.Keys(s.Extra))
	n := 0
	for _, f := range fields {
		n += len(*f)
	}
	for _, k := range keys {
		n += len(k)
	}
	var b strings.Builder
	b.Grow(n)
	for _, f := range fields {
		b.WriteString(*f)
	}
	for _, k := range keys {
		b.WriteString(k)
	}
	all := b.String()
	for _, f := range fields {
		*f, all = all[:len(*f)], all[len(*f):]
	}
	if s.Extra == nil {
		return s
	}
	extra := make(map[string]json.RawMessage, len(keys))
	vals := make([]byte, 0, extraLen(s.Extra))
	for _, k := range keys {
		key := all[:len(k)]
		all = all[len(k):]
		v := s.Extra[k]
		if v == nil {
			extra[key] = nil
			continue
		}
		start := len(vals)
		vals = append(vals, v...)
		extra[key] = vals[start:len(vals):len(vals)]
	}
	s.Extra = extra
	return s
}

// matches reports whether the entry matches a lower-cased search term.
func (e *subjEntry) matches(q string) bool {
	if strings.HasPrefix(e.lbday, q) {
		return true
	}
	if strings.IndexByte(q, 0) < 0 {
		// q cannot match across the separator.
		return strings.Contains(e.lsearch, q)
	}
	return strings.Contains(e.lsearch[:e.lsep], q) || strings.Contains(e.lsearch[e.lsep+1:], q)
}

// compareCol compares two entries by one column.
func compareCol(col int, a, b *subjEntry) int {
	switch col {
	case colName:
		return strings.Compare(a.s.Name, b.s.Name)
	case colBday:
		return strings.Compare(a.s.Bday, b.s.Bday)
	case colEmail:
		return strings.Compare(a.s.Email, b.s.Email)
	case colCreated:
		return cmp.Compare(a.created, b.created)
	case colChanged:
		return cmp.Compare(a.changed, b.changed)
	case colInvited:
		return strings.Compare(a.s.DateInvited, b.s.DateInvited)
	case colConsented:
		return strings.Compare(a.s.DateConsented, b.s.DateConsented)
	case colEnrolled:
		return strings.Compare(a.s.DateEnrolled, b.s.DateEnrolled)
	case colWithdrawn:
		return strings.Compare(a.s.DateWithdrawn, b.s.DateWithdrawn)
	}
	return strings.Compare(a.s.SSSID, b.s.SSSID)
}

// orderFunc returns the comparison of a sort order: by col, descending if
// desc, ties broken by SSSID ascending. As SSSIDs are unique, no two
// entries compare equal.
func orderFunc(col int, desc bool) func(a, b *subjEntry) int {
	return func(a, b *subjEntry) int {
		c := compareCol(col, a, b)
		if desc {
			c = -c
		}
		if c != 0 {
			return c
		}
		return strings.Compare(a.s.SSSID, b.s.SSSID)
	}
}

// subjectCache holds all subjects. Sort orders are built on first use and
// kept up to date by add and remove from then on.
type subjectCache struct {
	bySSSID map[string]*subjEntry
	ids     map[string]struct{} // the subjects' IDs, which are unique too
	orders  [numCols][2][]*subjEntry
	built   [numCols][2]bool
}

func newSubjectCache() *subjectCache {
	return &subjectCache{bySSSID: map[string]*subjEntry{}, ids: map[string]struct{}{}}
}

func dirIndex(desc bool) int {
	if desc {
		return 1
	}
	return 0
}

// order returns the entries in a sort order, if that order is built.
func (c *subjectCache) order(col int, desc bool) ([]*subjEntry, bool) {
	d := dirIndex(desc)
	return c.orders[col][d], c.built[col][d]
}

// build builds a sort order.
func (c *subjectCache) build(col int, desc bool) {
	d := dirIndex(desc)
	if c.built[col][d] {
		return
	}
	idx := make([]*subjEntry, 0, len(c.bySSSID))
	for _, e := range c.bySSSID {
		idx = append(idx, e)
	}
	slices.SortFunc(idx, orderFunc(col, desc))
	c.orders[col][d] = idx
	c.built[col][d] = true
}

// add puts a new entry into the cache and into the built sort orders.
func (c *subjectCache) add(e *subjEntry) {
	c.bySSSID[e.s.SSSID] = e
	c.ids[e.s.ID] = struct{}{}
	for col := range numCols {
		for d := range 2 {
			if !c.built[col][d] {
				continue
			}
			idx := c.orders[col][d]
			i, _ := slices.BinarySearchFunc(idx, e, orderFunc(col, d == 1))
			c.orders[col][d] = slices.Insert(idx, i, e)
		}
	}
}

// remove takes an entry out of the cache and the built sort orders.
func (c *subjectCache) remove(e *subjEntry) {
	delete(c.bySSSID, e.s.SSSID)
	delete(c.ids, e.s.ID)
	for col := range numCols {
		for d := range 2 {
			if !c.built[col][d] {
				continue
			}
			idx := c.orders[col][d]
			if i, ok := slices.BinarySearchFunc(idx, e, orderFunc(col, d == 1)); ok {
				c.orders[col][d] = slices.Delete(idx, i, i+1)
			}
		}
	}
}

// loadSubjects fills the cache from the subjects bucket.
func (s *Store) loadSubjects() error {
	c := newSubjectCache()
	err := s.db.View(func(tx *bolt.Tx) error {
		return bucket(tx, bSubjects).ForEach(func(k, v []byte) error {
			var r subjectRec
			if err := decode(v, &r, k); err != nil {
				return err
			}
			e := newSubjEntry(r.subject())
			c.bySSSID[e.s.SSSID] = e
			c.ids[e.s.ID] = struct{}{}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("load subjects: %w", err)
	}
	s.mu.Lock()
	s.subjects = c
	s.mu.Unlock()
	return nil
}

// CreateSubject stores a new subject with Rev 1; sub.ID and sub.SSSID must
// be set. A taken SSSID or ID gives an error that wraps [idm.ErrConflict].
func (s *Store) CreateSubject(ctx context.Context, sub idm.Subject) error {
	const op = "create subject"
	if sub.ID == "" || sub.SSSID == "" {
		return invalid("subject without ID or SSSID")
	}
	n := normSubject(sub)
	n.Rev = 1
	val, err := encode(toSubjectRec(n))
	if err != nil {
		return wrapErr(op, err)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	// Only writers, which hold s.wmu, change the cache.
	if _, taken := s.subjects.ids[n.ID]; taken {
		return fmt.Errorf("boltstore: %s: subject ID %s: %w", op, n.ID, idm.ErrConflict)
	}
	err = s.update(ctx, op, func(tx *bolt.Tx) error {
		b := bucket(tx, bSubjects)
		if b.Get([]byte(n.SSSID)) != nil {
			return fmt.Errorf("SSSID %q: %w", n.SSSID, idm.ErrConflict)
		}
		return b.Put([]byte(n.SSSID), val)
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.subjects.add(newSubjEntry(n))
	s.mu.Unlock()
	return nil
}

// FindSubject returns the subject with the given SSSID, or an error that
// wraps [idm.ErrNotFound].
func (s *Store) FindSubject(ctx context.Context, sssid string) (idm.Subject, error) {
	const op = "find subject"
	if err := s.checkOpen(ctx, op); err != nil {
		return idm.Subject{}, err
	}
	s.mu.RLock()
	e := s.subjects.bySSSID[sssid]
	s.mu.RUnlock()
	if e == nil {
		return idm.Subject{}, fmt.Errorf("boltstore: %s: SSSID %q: %w", op, sssid, idm.ErrNotFound)
	}
	return e.subject(), nil
}

// UpdateSubject replaces the subject with sub.SSSID by sub, keeping its ID,
// provided the stored subject has revision sub.Rev, and stores it with Rev
// sub.Rev+1. It returns an error that wraps [idm.ErrNotFound] when there is
// no such subject and one that wraps [idm.ErrStale] when its revision is
// another. The revision is checked against the stored record in the write
// transaction; the in-memory copy, which changes only after a commit and
// under s.wmu, then follows.
func (s *Store) UpdateSubject(ctx context.Context, sub idm.Subject) error {
	const op = "update subject"
	n := normSubject(sub)
	given := n.Rev
	n.Rev++
	s.wmu.Lock()
	defer s.wmu.Unlock()
	old := s.subjects.bySSSID[n.SSSID]
	if old == nil {
		if err := s.checkOpen(ctx, op); err != nil {
			return err
		}
		return fmt.Errorf("boltstore: %s: SSSID %q: %w", op, n.SSSID, idm.ErrNotFound)
	}
	n.ID = old.s.ID
	val, err := encode(toSubjectRec(n))
	if err != nil {
		return wrapErr(op, err)
	}
	err = s.update(ctx, op, func(tx *bolt.Tx) error {
		b := bucket(tx, bSubjects)
		key := []byte(n.SSSID)
		v := b.Get(key)
		if v == nil {
			return fmt.Errorf("SSSID %q: %w", n.SSSID, idm.ErrNotFound)
		}
		var stored struct {
			Rev int64 `json:"rev"`
		}
		if err := decode(v, &stored, key); err != nil {
			return err
		}
		if stored.Rev != given {
			return stale("subject", n.SSSID, stored.Rev, given)
		}
		return b.Put(key, val)
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.subjects.remove(old)
	s.subjects.add(newSubjEntry(n))
	s.mu.Unlock()
	return nil
}

// DeleteSubject removes a subject, or returns an error that wraps
// [idm.ErrNotFound]. The subject's links and audit records stay.
func (s *Store) DeleteSubject(ctx context.Context, sssid string) error {
	const op = "delete subject"
	s.wmu.Lock()
	defer s.wmu.Unlock()
	old := s.subjects.bySSSID[sssid]
	if old == nil {
		if err := s.checkOpen(ctx, op); err != nil {
			return err
		}
		return fmt.Errorf("boltstore: %s: SSSID %q: %w", op, sssid, idm.ErrNotFound)
	}
	err := s.update(ctx, op, func(tx *bolt.Tx) error {
		b := bucket(tx, bSubjects)
		if b.Get([]byte(sssid)) == nil {
			return fmt.Errorf("SSSID %q: %w", sssid, idm.ErrNotFound)
		}
		return b.Delete([]byte(sssid))
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.subjects.remove(old)
	s.mu.Unlock()
	return nil
}

// ListSubjects returns a page of the subjects that match f.Search, in the
// order of f.OrderCol (ties broken by SSSID, ascending), and the number of
// subjects that match in all. An unknown OrderCol gives an error that wraps
// [idm.ErrInvalid]. It answers from memory and copies only the page.
func (s *Store) ListSubjects(ctx context.Context, f idm.SubjectFilter) ([]idm.Subject, int, error) {
	const op = "list subjects"
	if err := s.checkOpen(ctx, op); err != nil {
		return nil, 0, err
	}
	col, ok := column(f.OrderCol)
	if !ok {
		return nil, 0, fmt.Errorf("boltstore: %s: %w", op, invalid("unknown order column %q", f.OrderCol))
	}
	lo, hi, err := window(f.Offset, f.Limit)
	if err != nil {
		return nil, 0, fmt.Errorf("boltstore: %s: %w", op, err)
	}
	q := strings.ToLower(f.Search)

	s.mu.RLock()
	idx, built := s.subjects.order(col, f.Desc)
	if !built {
		s.mu.RUnlock()
		s.mu.Lock()
		s.subjects.build(col, f.Desc)
		s.mu.Unlock()
		s.mu.RLock()
		idx, _ = s.subjects.order(col, f.Desc)
	}
	defer s.mu.RUnlock()

	var page []*subjEntry
	total := 0
	if q == "" {
		total = len(idx)
		page = idx[min(lo, total):min(hi, total)]
	} else {
		for _, e := range idx {
			if !e.matches(q) {
				continue
			}
			if total >= lo && total < hi {
				page = append(page, e)
			}
			total++
		}
	}
	out := make([]idm.Subject, len(page))
	for i, e := range page {
		out[i] = e.subject()
	}
	return out, total, nil
}

// normSubject returns a copy of sub, which the caller may go on to change,
// with its times normalised.
func normSubject(sub idm.Subject) idm.Subject {
	n := cloneSubject(sub)
	n.Created = idm.Timestamp(n.Created)
	n.Changed = idm.Timestamp(n.Changed)
	return n
}

// cloneSubject returns a deep copy of sub.
func cloneSubject(sub idm.Subject) idm.Subject {
	return cloneExtra(sub, extraLen(sub.Extra))
}

// extraLen returns the number of bytes of all values of extra.
func extraLen(extra map[string]json.RawMessage) int {
	n := 0
	for _, v := range extra {
		n += len(v)
	}
	return n
}

// cloneExtra returns sub with a deep copy of its Extra, whose values hold n
// bytes in all. The copied values share one new buffer, each capped so that
// appending to one cannot overwrite the next.
func cloneExtra(sub idm.Subject, n int) idm.Subject {
	if sub.Extra == nil {
		return sub
	}
	buf := make([]byte, 0, n)
	extra := make(map[string]json.RawMessage, len(sub.Extra))
	for k, v := range sub.Extra {
		if v == nil {
			extra[k] = nil
			continue
		}
		start := len(buf)
		buf = append(buf, v...)
		extra[k] = buf[start:len(buf):len(buf)]
	}
	sub.Extra = extra
	return sub
}
