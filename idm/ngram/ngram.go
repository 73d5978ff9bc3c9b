// Package ngram is a compact in-memory trigram index for substring search,
// used by the stores to answer [idm.SubjectFilter] searches without testing
// every subject.
//
// Records are named by ordinals (small integers the caller assigns, in
// increasing order). For every trigram (three consecutive bytes) of a
// record's keys the index keeps a posting list of the ordinals whose keys
// contain it, delta- and varint-encoded: about one to two bytes per trigram
// of a record. A string of three bytes or more can only be a substring of a
// key whose trigrams include all of its own, so [Index.Candidates] returns
// the intersection of their posting lists: a superset of the matches, which
// the caller verifies. Shorter strings have no trigram; the caller falls back
// to testing the records.
//
// Lists are append-only: the index forgets nothing. A caller that changes
// or removes a record gives its new keys a new ordinal (or none) and ignores
// the old one, whose candidates then fail its verification, and rebuilds the
// index when too many ordinals are dead. The index is not safe for
// concurrent use on its own: the caller's lock guards it like the records.
//
// Keys are indexed and searched as given (byte-wise); a case-insensitive
// search passes lower-cased keys and lower-cased search strings.
package ngram

import (
	"encoding/binary"
	"slices"
	"strings"
	"unicode/utf8"
)

// Gram is the length in bytes of the grams the index keeps: search strings
// shorter than that have no candidates from the index.
const Gram = 3

// Index maps trigrams to posting lists of ordinals. The zero value is an
// empty index, ready to use.
type Index struct {
	lists map[uint32]*postings
	// last is the greatest ordinal added, plus one (0: none yet).
	last uint32
}

// postings is the list of the ordinals that hold one trigram, each stored
// as the uvarint of its difference to the one before (the first as itself).
type postings struct {
	buf  []byte
	last uint32 // the greatest ordinal in buf
	n    uint32 // how many ordinals buf holds
}

// gram returns the trigram of s at i as a map key.
func gram(s string, i int) uint32 {
	return uint32(s[i])<<16 | uint32(s[i+1])<<8 | uint32(s[i+2])
}

// Add indexes the keys of record ord. Ordinals must be added in increasing
// order: ord is greater than every ordinal added before (Add panics
// otherwise, as the lists could no longer be encoded).
func (x *Index) Add(ord uint32, keys ...string) {
	if x.last > 0 && ord < x.last {
		panic("ngram: ordinals added out of order")
	}
	x.last = ord + 1
	if x.lists == nil {
		x.lists = map[uint32]*postings{}
	}
	for _, k := range keys {
		for i := 0; i+Gram <= len(k); i++ {
			g := gram(k, i)
			p := x.lists[g]
			if p == nil {
				p = &postings{}
				x.lists[g] = p
			} else if p.n > 0 && p.last == ord {
				continue // the record holds this trigram more than once
			}
			delta := ord
			if p.n > 0 {
				delta = ord - p.last
			}
			p.buf = binary.AppendUvarint(p.buf, uint64(delta))
			p.last = ord
			p.n++
		}
	}
}

// Trim gives back the spare capacity that growing the lists left, for
// example after a bulk load.
func (x *Index) Trim() {
	for _, p := range x.lists {
		p.buf = slices.Clip(p.buf)
		if cap(p.buf) > len(p.buf) {
			p.buf = slices.Clone(p.buf)
		}
	}
}

// Bytes returns the memory the posting lists take (their capacity), for
// tests and measurements.
func (x *Index) Bytes() int {
	n := 0
	for _, p := range x.lists {
		n += cap(p.buf)
	}
	return n
}

// Candidates returns, in increasing order, the ordinals whose keys contain
// every trigram of q, a superset of the records that have q as a
// substring of a key. ok is false when q is shorter than [Gram] bytes: the
// index then cannot narrow the search. Lists much longer than the
// candidates found so far are not decoded (verifying the candidates costs
// less), so the result may hold more non-matches than a full intersection.
func (x *Index) Candidates(q string) (ords []uint32, ok bool) {
	if len(q) < Gram {
		return nil, false
	}
	var lists []*postings
	for i := 0; i+Gram <= len(q); i++ {
		p := x.lists[gram(q, i)]
		if p == nil {
			return []uint32{}, true
		}
		if !slices.Contains(lists, p) {
			lists = append(lists, p)
		}
	}
	slices.SortFunc(lists, func(a, b *postings) int { return int(a.n) - int(b.n) })
	ords = lists[0].decode(make([]uint32, 0, lists[0].n))
	for _, p := range lists[1:] {
		if len(ords) == 0 || int(p.n) > 32*len(ords) {
			break
		}
		ords = p.intersect(ords)
	}
	return ords, true
}

// decode appends the list's ordinals to dst.
func (p *postings) decode(dst []uint32) []uint32 {
	var ord uint32
	for b := p.buf; len(b) > 0; {
		d, n := binary.Uvarint(b)
		b = b[n:]
		ord += uint32(d)
		dst = append(dst, ord)
	}
	return dst
}

// intersect keeps, of ords (increasing), those that are in the list, in
// place.
func (p *postings) intersect(ords []uint32) []uint32 {
	out := ords[:0]
	var ord uint32
	b := p.buf
	i := 0
	for len(b) > 0 && i < len(ords) {
		d, n := binary.Uvarint(b)
		b = b[n:]
		ord += uint32(d)
		for i < len(ords) && ords[i] < ord {
			i++
		}
		if i < len(ords) && ords[i] == ord {
			out = append(out, ord)
			i++
		}
	}
	return out
}

// Keys returns the lower-cased keys of a subject as the stores index them:
// its SSSID, its name and its birthday.
func Keys(sssid, name, bday string) [3]string {
	return [3]string{strings.ToLower(sssid), strings.ToLower(name), strings.ToLower(bday)}
}

// ContainsFold reports whether lower, a lower-cased string, is a substring
// of strings.ToLower(s), without building that string when s is ASCII.
func ContainsFold(s, lower string) bool {
	if !isASCII(s) {
		return strings.Contains(strings.ToLower(s), lower)
	}
	n := len(lower)
	for i := 0; i+n <= len(s); i++ {
		if equalFoldASCII(s[i:i+n], lower) {
			return true
		}
	}
	return false
}

// HasPrefixFold reports whether lower, a lower-cased string, is a prefix of
// strings.ToLower(s), without building that string when s is ASCII.
func HasPrefixFold(s, lower string) bool {
	if !isASCII(s) {
		return strings.HasPrefix(strings.ToLower(s), lower)
	}
	return len(lower) <= len(s) && equalFoldASCII(s[:len(lower)], lower)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// equalFoldASCII reports whether the ASCII string s, lower-cased, equals
// lower.
func equalFoldASCII(s, lower string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
