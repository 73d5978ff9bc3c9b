package memstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/ngram"
)

// cloneRaw returns a copy of m that shares no memory with it; nil when m
// is empty.
func cloneRaw(m json.RawMessage) json.RawMessage {
	if len(m) == 0 {
		return nil
	}
	return slices.Clone(m)
}

// cloneExtra returns a deep copy of m; nil when m is empty.
func cloneExtra(m map[string]json.RawMessage) map[string]json.RawMessage {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		out[k] = slices.Clone(v)
		if out[k] == nil {
			out[k] = json.RawMessage{}
		}
	}
	return out
}

func newSubjectRec(sub idm.Subject) *subjectRec {
	sub.Created = idm.Timestamp(sub.Created)
	sub.Changed = idm.Timestamp(sub.Changed)
	sub.Extra = cloneExtra(sub.Extra)
	return &subjectRec{
		s:        sub,
		lowSSSID: strings.ToLower(sub.SSSID),
		lowName:  strings.ToLower(sub.Name),
		lowBday:  strings.ToLower(sub.Bday),
	}
}

// subject returns a copy of the stored subject that the caller may change.
func (r *subjectRec) subject() idm.Subject {
	sub := r.s
	sub.Extra = cloneExtra(sub.Extra)
	return sub
}

// matches reports whether the record matches a lower-cased search.
func (r *subjectRec) matches(search string) bool {
	return search == "" || strings.Contains(r.lowSSSID, search) ||
		strings.Contains(r.lowName, search) || strings.HasPrefix(r.lowBday, search)
}

// CreateSubject implements [idm.SubjectStore].
func (s *Store) CreateSubject(_ context.Context, sub idm.Subject) error {
	sub.Rev = 1
	rec := newSubjectRec(sub)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if _, ok := s.subjects[sub.SSSID]; ok {
		return conflict("subject", sub.SSSID)
	}
	s.subjects[sub.SSSID] = rec
	s.index(rec)
	s.order = nil
	return nil
}

// index gives rec the next ordinal and puts it into the search index. The
// caller holds s.mu.
func (s *Store) index(rec *subjectRec) {
	rec.ord = uint32(len(s.byOrd))
	s.byOrd = append(s.byOrd, rec)
	s.search.Add(rec.ord, rec.lowSSSID, rec.lowName, rec.lowBday)
}

// unindex drops rec's ordinal, and renumbers the ordinals when more than
// half are dead. The caller holds s.mu.
func (s *Store) unindex(rec *subjectRec) {
	s.byOrd[rec.ord] = nil
	s.dead++
	if s.dead > 64 && s.dead > len(s.byOrd)/2 {
		live := slices.DeleteFunc(s.byOrd, func(r *subjectRec) bool { return r == nil })
		s.byOrd, s.dead, s.search = nil, 0, ngram.Index{}
		for _, r := range live {
			s.index(r)
		}
	}
}

// FindSubject implements [idm.SubjectStore].
func (s *Store) FindSubject(_ context.Context, sssid string) (idm.Subject, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return idm.Subject{}, errClosed
	}
	r, ok := s.subjects[sssid]
	if !ok {
		return idm.Subject{}, notFound("subject", sssid)
	}
	return r.subject(), nil
}

// UpdateSubject implements [idm.SubjectStore].
func (s *Store) UpdateSubject(_ context.Context, sub idm.Subject) error {
	rec := newSubjectRec(sub)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	old, ok := s.subjects[sub.SSSID]
	if !ok {
		return notFound("subject", sub.SSSID)
	}
	if old.s.Rev != sub.Rev {
		return stale("subject", sub.SSSID, old.s.Rev, sub.Rev)
	}
	rec.s.ID = old.s.ID
	rec.s.Rev++
	s.subjects[sub.SSSID] = rec
	if rec.lowName == old.lowName && rec.lowBday == old.lowBday {
		rec.ord = old.ord
		s.byOrd[rec.ord] = rec
	} else {
		s.unindex(old)
		s.index(rec)
	}
	s.order = nil
	return nil
}

// DeleteSubject implements [idm.SubjectStore].
func (s *Store) DeleteSubject(_ context.Context, sssid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	old, ok := s.subjects[sssid]
	if !ok {
		return notFound("subject", sssid)
	}
	delete(s.subjects, sssid)
	s.unindex(old)
	s.order = nil
	return nil
}

// ListSubjects implements [idm.SubjectStore].
func (s *Store) ListSubjects(_ context.Context, f idm.SubjectFilter) ([]idm.Subject, int, error) {
	if err := checkPage(f.Offset, f.Limit); err != nil {
		return nil, 0, err
	}
	col := f.OrderCol
	if col == "" {
		col = "sssid"
	}
	compare := subjectOrder(col)
	if compare == nil {
		return nil, 0, fmt.Errorf("memstore: unknown subject column %q: %w", f.OrderCol, idm.ErrInvalid)
	}
	search := strings.ToLower(f.Search)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, 0, errClosed
	}
	if cands, ok := s.search.Candidates(search); ok {
		out, total := s.searchPage(cands, search, f, compare)
		return out, total, nil
	}
	sorted := s.sortedSubjects(orderKey{col, f.Desc}, compare)
	if search == "" && f.Sites == nil {
		lo, hi := page(len(sorted), f.Offset, f.Limit)
		out := make([]idm.Subject, 0, hi-lo)
		for _, r := range sorted[lo:hi] {
			out = append(out, r.subject())
		}
		return out, len(sorted), nil
	}
	out := []idm.Subject{}
	total := 0
	for _, r := range sorted {
		if !r.matches(search) || f.Sites != nil && !slices.Contains(f.Sites, r.s.Site) {
			continue
		}
		if total >= f.Offset && (f.Limit == 0 || len(out) < f.Limit) {
			out = append(out, r.subject())
		}
		total++
	}
	return out, total, nil
}

// searchPage answers ListSubjects for a search that the search index gave
// the candidates for: it tests only those, then sorts the matches. The
// caller holds s.mu for reading.
func (s *Store) searchPage(cands []uint32, search string, f idm.SubjectFilter, compare func(a, b *subjectRec) int) ([]idm.Subject, int) {
	var matched []*subjectRec
	for _, o := range cands {
		r := s.byOrd[o]
		if r != nil && r.matches(search) && (f.Sites == nil || slices.Contains(f.Sites, r.s.Site)) {
			matched = append(matched, r)
		}
	}
	slices.SortFunc(matched, func(a, b *subjectRec) int {
		c := compare(a, b)
		if f.Desc {
			c = -c
		}
		if c != 0 {
			return c
		}
		return strings.Compare(a.s.SSSID, b.s.SSSID)
	})
	lo, hi := page(len(matched), f.Offset, f.Limit)
	out := make([]idm.Subject, 0, hi-lo)
	for _, r := range matched[lo:hi] {
		out = append(out, r.subject())
	}
	return out, len(matched)
}

// sortedSubjects returns the subjects in the order k, from the cache or
// sorted afresh. The caller holds s.mu for reading; the result must not be
// changed.
func (s *Store) sortedSubjects(k orderKey, compare func(a, b *subjectRec) int) []*subjectRec {
	s.orderMu.Lock()
	defer s.orderMu.Unlock()
	if sorted, ok := s.order[k]; ok {
		return sorted
	}
	sorted := make([]*subjectRec, 0, len(s.subjects))
	for _, r := range s.subjects {
		sorted = append(sorted, r)
	}
	slices.SortFunc(sorted, func(a, b *subjectRec) int {
		c := compare(a, b)
		if k.desc {
			c = -c
		}
		if c != 0 {
			return c
		}
		return strings.Compare(a.s.SSSID, b.s.SSSID)
	})
	if s.order == nil {
		s.order = map[orderKey][]*subjectRec{}
	}
	s.order[k] = sorted
	return sorted
}

// subjectOrder returns the comparison of a column of [idm.SubjectColumns],
// or nil for an unknown column. Strings compare byte-wise and times
// chronologically, so "" and the zero time come first.
func subjectOrder(col string) func(a, b *subjectRec) int {
	str := func(field func(*idm.Subject) string) func(a, b *subjectRec) int {
		return func(a, b *subjectRec) int { return strings.Compare(field(&a.s), field(&b.s)) }
	}
	switch col {
	case "sssid":
		return str(func(s *idm.Subject) string { return s.SSSID })
	case "name":
		return str(func(s *idm.Subject) string { return s.Name })
	case "bday":
		return str(func(s *idm.Subject) string { return s.Bday })
	case "email":
		return str(func(s *idm.Subject) string { return s.Email })
	case "date_invited":
		return str(func(s *idm.Subject) string { return s.DateInvited })
	case "date_consented":
		return str(func(s *idm.Subject) string { return s.DateConsented })
	case "date_enrolled":
		return str(func(s *idm.Subject) string { return s.DateEnrolled })
	case "date_withdrawn":
		return str(func(s *idm.Subject) string { return s.DateWithdrawn })
	case "created":
		return func(a, b *subjectRec) int { return a.s.Created.Compare(b.s.Created) }
	case "changed":
		return func(a, b *subjectRec) int { return a.s.Changed.Compare(b.s.Changed) }
	}
	return nil
}
