package boltstore

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"maps"
	"slices"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/ngram"
)

// Subjects live in bucket subjects (SSSID -> subjectRec) and, decoded, in a
// subjectCache that answers every read. The cache is loaded when the store
// opens and changed only after a write has committed, in commit order (see
// commit.go), so it always equals the committed state; as this process is the only one that
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

// Strings of a subject, in the order they are packed into its cache entry.
const (
	fSSSID = iota
	fName
	fBday
	fEmail
	fInvited
	fConsented
	fEnrolled
	fWithdrawn
	fID
	numSubjFields
)

// subjEntry is one subject in the cache, kept compact (see pack.go). It is
// never modified: an update replaces the entry.
type subjEntry struct {
	// str holds the strings of the subject in the order of the f*
	// constants, then the keys and values of its additional fields,
	// alternating, sorted by key.
	str  string
	ends [numSubjFields]uint32
	// xends holds where the additional keys and values end in str; it is
	// nil when Extra is nil and empty when Extra is empty.
	xends []uint32
	sec   [2]int64 // Created, Changed
	nsec  [2]int32
	// ord is the entry's ordinal: its place in subjectCache.byOrd and
	// its name in the search index.
	ord uint32
	rev int64
	// site is the subject's site, kept apart from str so that a site
	// filter compares it without unpacking.
	site string
}

func newSubjEntry(s idm.Subject) *subjEntry {
	keys := slices.Sorted(maps.Keys(s.Extra))
	n := len(s.SSSID) + len(s.Name) + len(s.Bday) + len(s.Email) + len(s.DateInvited) + len(s.DateConsented) +
		len(s.DateEnrolled) + len(s.DateWithdrawn) + len(s.ID)
	for _, k := range keys {
		n += len(k) + len(s.Extra[k])
	}
	e := &subjEntry{rev: s.Rev, site: s.Site}
	var p packer
	p.grow(n)
	for i, f := range [...]string{s.SSSID, s.Name, s.Bday, s.Email, s.DateInvited, s.DateConsented,
		s.DateEnrolled, s.DateWithdrawn, s.ID} {
		e.ends[i] = p.add(f)
	}
	if s.Extra != nil {
		e.xends = make([]uint32, 0, 2*len(keys))
		for _, k := range keys {
			e.xends = append(e.xends, p.add(k), p.addBytes(s.Extra[k]))
		}
	}
	e.str = p.String()
	e.sec[0], e.nsec[0] = stampOf(s.Created)
	e.sec[1], e.nsec[1] = stampOf(s.Changed)
	return e
}

// field returns string f (an f* constant) of the subject.
func (e *subjEntry) field(f int) string { return unpack(e.str, e.ends[:], f) }

// subject returns the entry's subject; its Extra, if any, is a new map
// with new values, which the caller may change.
func (e *subjEntry) subject() idm.Subject {
	return idm.Subject{
		ID: e.field(fID), SSSID: e.field(fSSSID), Name: e.field(fName), Bday: e.field(fBday),
		Email: e.field(fEmail), DateInvited: e.field(fInvited), DateConsented: e.field(fConsented),
		DateEnrolled: e.field(fEnrolled), DateWithdrawn: e.field(fWithdrawn),
		Created: timeOf(e.sec[0], e.nsec[0]), Changed: timeOf(e.sec[1], e.nsec[1]),
		Extra: e.extra(), Rev: e.rev, Site: e.site,
	}
}

// extra returns the additional fields in a new map, their values copied
// into one new buffer, each capped so that appending to one cannot
// overwrite the next.
func (e *subjEntry) extra() map[string]json.RawMessage {
	if e.xends == nil {
		return nil
	}
	// The keys and values follow the last field.
	all := slices.Concat(e.ends[numSubjFields-1:], e.xends)
	n := 0
	for j := 2; j < len(all); j += 2 {
		n += len(unpack(e.str, all, j))
	}
	m := make(map[string]json.RawMessage, len(e.xends)/2)
	buf := make([]byte, 0, n)
	for j := 1; j < len(all); j += 2 {
		k := unpack(e.str, all, j)
		if all[j+1]&nilValue != 0 {
			m[k] = nil
			continue
		}
		start := len(buf)
		buf = append(buf, unpack(e.str, all, j+1)...)
		m[k] = buf[start:len(buf):len(buf)]
	}
	return m
}

// matches reports whether the entry matches a lower-cased search term.
func (e *subjEntry) matches(q string) bool {
	return ngram.HasPrefixFold(e.field(fBday), q) || ngram.ContainsFold(e.field(fSSSID), q) ||
		ngram.ContainsFold(e.field(fName), q)
}

// keys returns the entry's keys in the search index.
func (e *subjEntry) keys() [3]string {
	return ngram.Keys(e.field(fSSSID), e.field(fName), e.field(fBday))
}

// sameKeys reports whether two entries have the same keys in the search
// index.
func (e *subjEntry) sameKeys(o *subjEntry) bool {
	return e.field(fSSSID) == o.field(fSSSID) && e.field(fName) == o.field(fName) && e.field(fBday) == o.field(fBday)
}

// compareCol compares two entries by one column.
func compareCol(col int, a, b *subjEntry) int {
	var f int
	switch col {
	case colCreated, colChanged:
		i := col - colCreated
		return cmp.Or(cmp.Compare(a.sec[i], b.sec[i]), cmp.Compare(a.nsec[i], b.nsec[i]))
	case colName:
		f = fName
	case colBday:
		f = fBday
	case colEmail:
		f = fEmail
	case colInvited:
		f = fInvited
	case colConsented:
		f = fConsented
	case colEnrolled:
		f = fEnrolled
	case colWithdrawn:
		f = fWithdrawn
	default:
		f = fSSSID
	}
	return strings.Compare(a.field(f), b.field(f))
}

// compareOrder is the comparison of an ascending sort order: by col, ties
// broken by SSSID. As SSSIDs are unique, no two entries compare equal.
func compareOrder(col int) func(a, b *subjEntry) int {
	return func(a, b *subjEntry) int {
		if c := compareCol(col, a, b); c != 0 {
			return c
		}
		return strings.Compare(a.field(fSSSID), b.field(fSSSID))
	}
}

// subjectCache holds all subjects. Sort orders are built on first use and
// kept up to date by add and remove from then on. Only ascending orders
// are kept: a descending order (by col descending, ties still by SSSID
// ascending) is the ascending one with its runs of equal values taken from
// the last to the first, each run in its own order (see descPage and
// descAll), which halves the memory the orders take.
type subjectCache struct {
	bySSSID map[string]*subjEntry
	ids     map[string]struct{} // the subjects' IDs, which are unique too
	orders  [numCols][]*subjEntry
	built   [numCols]bool
	// siteOrders holds, once built, the ascending order of a column among
	// the subjects of one site, so that a page of one site's subjects
	// costs what an unfiltered page does.
	siteOrders map[siteCol][]*subjEntry
	// byOrd holds the entries by ordinal; a removed entry leaves nil
	// behind, counted by dead, until the ordinals are renumbered.
	byOrd []*subjEntry
	dead  int
	// search indexes the lower-cased SSSIDs, names and birthdays by
	// ordinal (see package ngram).
	search ngram.Index
	// results holds the results of recent searches (see searchcache.go).
	results searchCache
}

// siteCol names the order of a column among one site's subjects.
type siteCol struct {
	site string
	col  int
}

func newSubjectCache() *subjectCache {
	return &subjectCache{bySSSID: map[string]*subjEntry{}, ids: map[string]struct{}{}, siteOrders: map[siteCol][]*subjEntry{}}
}

// siteOrder returns the entries of site in the ascending order of col, if
// that order is built.
func (c *subjectCache) siteOrder(site string, col int) ([]*subjEntry, bool) {
	idx, ok := c.siteOrders[siteCol{site, col}]
	return idx, ok
}

// buildSite builds the ascending order of col among the entries of site.
func (c *subjectCache) buildSite(site string, col int) {
	k := siteCol{site, col}
	if _, ok := c.siteOrders[k]; ok {
		return
	}
	idx := []*subjEntry{}
	for _, e := range c.bySSSID {
		if e.site == site {
			idx = append(idx, e)
		}
	}
	slices.SortFunc(idx, compareOrder(col))
	c.siteOrders[k] = idx
}

// order returns the entries in the ascending order of col, if that order
// is built.
func (c *subjectCache) order(col int) ([]*subjEntry, bool) {
	return c.orders[col], c.built[col]
}

// build builds the ascending order of col.
func (c *subjectCache) build(col int) {
	if c.built[col] {
		return
	}
	idx := make([]*subjEntry, 0, len(c.bySSSID))
	for _, e := range c.bySSSID {
		idx = append(idx, e)
	}
	slices.SortFunc(idx, compareOrder(col))
	c.orders[col] = idx
	c.built[col] = true
}

// add puts a new entry into the cache, the search index and the built sort
// orders.
func (c *subjectCache) add(e *subjEntry) {
	c.bySSSID[e.field(fSSSID)] = e
	c.ids[e.field(fID)] = struct{}{}
	c.index(e)
	c.addOrders(e)
}

// index gives e the next ordinal and indexes its keys.
func (c *subjectCache) index(e *subjEntry) {
	e.ord = uint32(len(c.byOrd))
	c.byOrd = append(c.byOrd, e)
	k := e.keys()
	c.search.Add(e.ord, k[:]...)
}

// unindex drops e's ordinal; the search index is renumbered when more
// than half of the ordinals are dead.
func (c *subjectCache) unindex(e *subjEntry) {
	c.byOrd[e.ord] = nil
	c.dead++
	if c.dead > 1024 && c.dead > len(c.byOrd)/2 {
		c.renumber()
	}
}

// renumber gives the entries consecutive ordinals and rebuilds the search
// index.
func (c *subjectCache) renumber() {
	live := make([]*subjEntry, 0, len(c.byOrd)-c.dead)
	for _, e := range c.byOrd {
		if e != nil {
			live = append(live, e)
		}
	}
	c.byOrd, c.dead, c.search = live[:0], 0, ngram.Index{}
	for _, e := range live {
		c.index(e)
	}
	c.search.Trim()
}

// replace puts e in the place of old, which has the same SSSID. e keeps
// old's ordinal when its keys in the search index are the same.
func (c *subjectCache) replace(old, e *subjEntry) {
	if !old.sameKeys(e) {
		c.remove(old)
		c.add(e)
		return
	}
	c.removeOrders(old)
	e.ord = old.ord
	c.byOrd[e.ord] = e
	c.bySSSID[e.field(fSSSID)] = e
	delete(c.ids, old.field(fID))
	c.ids[e.field(fID)] = struct{}{}
	c.addOrders(e)
}

// addOrders puts e into the built sort orders and the kept search results.
func (c *subjectCache) addOrders(e *subjEntry) {
	c.results.add(e)
	for col := range numCols {
		if !c.built[col] {
			continue
		}
		idx := c.orders[col]
		if len(idx) == cap(idx) {
			// Room for a few more: append's growth (a quarter of a long
			// slice) would leave much unused in every order.
			idx = slices.Grow(idx, len(idx)/64+16)
		}
		i, _ := slices.BinarySearchFunc(idx, e, compareOrder(col))
		c.orders[col] = slices.Insert(idx, i, e)
	}
	for col := range numCols {
		k := siteCol{e.site, col}
		if idx, ok := c.siteOrders[k]; ok {
			i, _ := slices.BinarySearchFunc(idx, e, compareOrder(col))
			c.siteOrders[k] = slices.Insert(idx, i, e)
		}
	}
}

// remove takes an entry out of the cache, the search index and the built
// sort orders.
func (c *subjectCache) remove(e *subjEntry) {
	delete(c.bySSSID, e.field(fSSSID))
	delete(c.ids, e.field(fID))
	c.unindex(e)
	c.removeOrders(e)
}

// removeOrders takes e out of the built sort orders and the kept search
// results.
func (c *subjectCache) removeOrders(e *subjEntry) {
	c.results.remove(e)
	for col := range numCols {
		if !c.built[col] {
			continue
		}
		idx := c.orders[col]
		if i, ok := slices.BinarySearchFunc(idx, e, compareOrder(col)); ok {
			c.orders[col] = slices.Delete(idx, i, i+1)
		}
	}
	for col := range numCols {
		k := siteCol{e.site, col}
		if idx, ok := c.siteOrders[k]; ok {
			if i, found := slices.BinarySearchFunc(idx, e, compareOrder(col)); found {
				c.siteOrders[k] = slices.Delete(idx, i, i+1)
			}
		}
	}
}

// runOf returns the run of entries around idx[j] whose col equals that of
// idx[j], as idx[start:end]; idx is in the ascending order of col.
func runOf(idx []*subjEntry, col, j int) (start, end int) {
	e := idx[j]
	start = sort.Search(j, func(i int) bool { return compareCol(col, idx[i], e) >= 0 })
	rest := idx[j+1:]
	end = j + 1 + sort.Search(len(rest), func(i int) bool { return compareCol(col, rest[i], e) > 0 })
	return start, end
}

// descPage returns the entries at positions lo to hi-1 of the descending
// order of col; idx is the ascending order.
func descPage(idx []*subjEntry, col, lo, hi int) []*subjEntry {
	n := len(idx)
	hi = min(hi, n)
	if lo >= hi {
		return nil
	}
	page := make([]*subjEntry, 0, hi-lo)
	for k := lo; k < hi; {
		// Position k of the descending order lies in the run that holds
		// idx[n-1-k], which takes positions n-end to n-1-start there.
		start, end := runOf(idx, col, n-1-k)
		for ; k < hi && k < n-start; k++ {
			page = append(page, idx[start+k-(n-end)])
		}
	}
	return page
}

// descAll yields the entries in the descending order of col; idx is the
// ascending order.
func descAll(idx []*subjEntry, col int) iter.Seq[*subjEntry] {
	return func(yield func(*subjEntry) bool) {
		for end := len(idx); end > 0; {
			start, _ := runOf(idx, col, end-1)
			for _, e := range idx[start:end] {
				if !yield(e) {
					return
				}
			}
			end = start
		}
	}
}

// loadSubjects fills the cache from the subjects bucket.
func (s *Store) loadSubjects() error {
	c := newSubjectCache()
	err := s.db.View(func(tx *bolt.Tx) error {
		w := readWindow{tx: tx}
		return bucket(tx, bSubjects).ForEach(func(k, v []byte) error {
			w.release(len(k) + len(v))
			var r subjectRec
			if err := decode(v, &r, k); err != nil {
				return err
			}
			c.add(newSubjEntry(r.subject()))
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("load subjects: %w", err)
	}
	c.search.Trim()
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
	e := newSubjEntry(n)
	return s.write(ctx, op, func(tx *bolt.Tx, b *batch) error {
		subjects := bucket(tx, bSubjects)
		if subjects.Get([]byte(n.SSSID)) != nil {
			return fmt.Errorf("SSSID %q: %w", n.SSSID, idm.ErrConflict)
		}
		// No index of the file holds subject IDs: the cache has those of
		// the committed subjects, the batch those of this transaction.
		s.mu.RLock()
		_, taken := s.subjects.ids[n.ID]
		s.mu.RUnlock()
		if taken || !b.claim("subject ID "+n.ID) {
			return fmt.Errorf("subject ID %s: %w", n.ID, idm.ErrConflict)
		}
		return subjects.Put([]byte(n.SSSID), val)
	}, func() {
		s.mu.Lock()
		s.subjects.add(e)
		s.mu.Unlock()
	})
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
// transaction; the in-memory copy follows after the commit, in commit
// order.
func (s *Store) UpdateSubject(ctx context.Context, sub idm.Subject) error {
	const op = "update subject"
	n := normSubject(sub)
	given := n.Rev
	n.Rev++
	var e *subjEntry
	return s.write(ctx, op, func(tx *bolt.Tx, _ *batch) error {
		b := bucket(tx, bSubjects)
		key := []byte(n.SSSID)
		v := b.Get(key)
		if v == nil {
			return fmt.Errorf("SSSID %q: %w", n.SSSID, idm.ErrNotFound)
		}
		var stored struct {
			ID  string `json:"id"`
			Rev int64  `json:"rev"`
		}
		if err := decode(v, &stored, key); err != nil {
			return err
		}
		if stored.Rev != given {
			return stale("subject", n.SSSID, stored.Rev, given)
		}
		n.ID = stored.ID
		val, err := encode(toSubjectRec(n))
		if err != nil {
			return err
		}
		e = newSubjEntry(n)
		return b.Put(key, val)
	}, func() {
		s.mu.Lock()
		if old := s.subjects.bySSSID[n.SSSID]; old != nil {
			s.subjects.replace(old, e)
		} else {
			s.subjects.add(e)
		}
		s.mu.Unlock()
	})
}

// DeleteSubject removes a subject, or returns an error that wraps
// [idm.ErrNotFound]. The subject's links and audit records stay.
func (s *Store) DeleteSubject(ctx context.Context, sssid string) error {
	const op = "delete subject"
	return s.write(ctx, op, func(tx *bolt.Tx, _ *batch) error {
		b := bucket(tx, bSubjects)
		if b.Get([]byte(sssid)) == nil {
			return fmt.Errorf("SSSID %q: %w", sssid, idm.ErrNotFound)
		}
		return b.Delete([]byte(sssid))
	}, func() {
		s.mu.Lock()
		if old := s.subjects.bySSSID[sssid]; old != nil {
			s.subjects.remove(old)
		}
		s.mu.Unlock()
	})
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
	if q != "" {
		if page, total, ok := s.subjects.searchPage(q, f.Sites, col, f.Desc, lo, hi); ok {
			out := make([]idm.Subject, len(page))
			for i, e := range page {
				out[i] = e.subject()
			}
			s.mu.RUnlock()
			return out, total, nil
		}
		// A search shorter than a trigram tests every subject below.
	}
	idx, built := s.subjects.order(col)
	if !built {
		s.mu.RUnlock()
		s.mu.Lock()
		s.subjects.build(col)
		s.mu.Unlock()
		s.mu.RLock()
		idx, _ = s.subjects.order(col)
	}
	sites := f.Sites
	if len(sites) == 1 {
		// One site (a user of one site): its own order, paged like all.
		idx, built = s.subjects.siteOrder(sites[0], col)
		if !built {
			s.mu.RUnlock()
			s.mu.Lock()
			s.subjects.buildSite(sites[0], col)
			s.mu.Unlock()
			s.mu.RLock()
			idx, _ = s.subjects.siteOrder(sites[0], col)
		}
		sites = nil
	}
	defer s.mu.RUnlock()

	var page []*subjEntry
	total := 0
	switch {
	case sites != nil:
		all := slices.Values(idx)
		if f.Desc {
			all = descAll(idx, col)
		}
		for e := range all {
			if !slices.Contains(sites, e.site) || q != "" && !e.matches(q) {
				continue
			}
			if total >= lo && total < hi {
				page = append(page, e)
			}
			total++
		}
	case q == "" && f.Desc:
		total = len(idx)
		page = descPage(idx, col, lo, hi)
	case q == "":
		total = len(idx)
		page = idx[min(lo, total):min(hi, total)]
	default:
		all := slices.Values(idx)
		if f.Desc {
			all = descAll(idx, col)
		}
		for e := range all {
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

// maxSelect is the end of the deepest page of search results that
// searchPage selects without sorting all of them.
const maxSelect = 4096

// searchPage returns the entries at positions lo to hi-1 of the subjects
// that match the lower-cased search q, in the order of col (descending if
// desc, ties by SSSID ascending), and how many match in all; ok is false
// when q is too short for the search index. Only sites' subjects match
// when sites is not nil. It answers from the kept results of the search,
// or tests the candidates the index gives and keeps the results when they
// are many. The caller holds the store's s.mu for reading.
func (c *subjectCache) searchPage(q string, sites []string, col int, desc bool, lo, hi int) (page []*subjEntry, total int, ok bool) {
	key := searchKey{q: q, sites: sitesKey(sites), col: col}
	if r := c.results.get(key); r != nil {
		page, total = pageOf(r.idx, col, desc, lo, hi)
		return page, total, true
	}
	cands, ok := c.search.Candidates(q)
	if !ok {
		return nil, 0, false
	}
	page, total = c.candidatesPage(cands, key, desc, lo, hi)
	return page, total, true
}

// pageOf returns positions lo to hi-1 of idx, which is in the ascending
// order of col, in that order or (desc) the descending one, and len(idx).
func pageOf(idx []*subjEntry, col int, desc bool, lo, hi int) ([]*subjEntry, int) {
	if desc {
		return descPage(idx, col, lo, hi), len(idx)
	}
	return idx[min(lo, len(idx)):min(hi, len(idx))], len(idx)
}

// candidatesPage tests the candidates of a search and returns the page of
// the matches and their number, keeping the matches (see searchcache.go)
// when there are many.
func (c *subjectCache) candidatesPage(cands []uint32, key searchKey, desc bool, lo, hi int) ([]*subjEntry, int) {
	q, col := key.q, key.col
	var matched []*subjEntry
	for _, o := range cands {
		e := c.byOrd[o]
		if e == nil || !inSites(key.sites, e.site) || !e.matches(q) {
			continue
		}
		matched = append(matched, e)
	}
	total := len(matched)
	if total >= minCachedMatches {
		slices.SortFunc(matched, compareOrder(col))
		c.results.put(key, matched, len(c.bySSSID))
		return pageOf(matched, col, desc, lo, hi)
	}
	hi = min(hi, total)
	if lo >= hi {
		return nil, total
	}
	order := compareOrder(col)
	if desc {
		order = func(a, b *subjEntry) int {
			if c := compareCol(col, a, b); c != 0 {
				return -c
			}
			return strings.Compare(a.field(fSSSID), b.field(fSSSID))
		}
	}
	if hi > maxSelect || hi == total {
		slices.SortFunc(matched, order)
		return matched[lo:hi], total
	}
	return smallest(matched, hi, order)[lo:], total
}

// smallest returns the k first of entries in the order cmp, sorted: one
// comparison for most entries when k is far below their number.
func smallest(entries []*subjEntry, k int, cmp func(a, b *subjEntry) int) []*subjEntry {
	buf := make([]*subjEntry, 0, k+1)
	for _, e := range entries {
		if len(buf) == k && cmp(e, buf[k-1]) >= 0 {
			continue
		}
		i, _ := slices.BinarySearchFunc(buf, e, cmp)
		buf = slices.Insert(buf, i, e)
		if len(buf) > k {
			buf = buf[:k]
		}
	}
	return buf
}

// normSubject returns sub with its times normalised. It shares sub's
// Extra: the writes that use it encode it and pack it into a cache entry
// (which copies every value) and keep no reference to it.
func normSubject(sub idm.Subject) idm.Subject {
	sub.Created = idm.Timestamp(sub.Created)
	sub.Changed = idm.Timestamp(sub.Changed)
	return sub
}
