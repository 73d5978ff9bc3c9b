package boltstore

import (
	"slices"
	"strings"
	"sync"
)

// Search results. The trigram index narrows a search to the subjects that
// hold all of its trigrams, but each of those must still be tested, and a
// common surname matches one subject in thirty: tens of thousands at a
// million subjects, milliseconds of work per request. Staff search for the
// same names again and again (paging through the results, or several
// people at once), so the results of recent searches with many matches are
// kept, in the ascending order of the column they were sorted by, and kept
// up to date by every write like the sort orders: a later page of the same
// search, in either direction, costs what a page of all subjects does.
// Their size is bounded (see searchCache.limit); the least recently used
// go first.

// minCachedMatches is the number of matches from which a search's results
// are kept: fewer are found again quickly.
const minCachedMatches = 256

// maxCachedSearches bounds the number of searches kept.
const maxCachedSearches = 64

// searchKey names the results of a search: the lower-cased search, the
// sites it was limited to, and the column they are sorted by (ascending).
type searchKey struct {
	q     string
	sites string // "" for all sites, else "\x00" and the sites, sorted, each followed by "\x00"
	col   int
}

// sitesKey returns the searchKey.sites of a filter's Sites.
func sitesKey(sites []string) string {
	if sites == nil {
		return ""
	}
	s := slices.Sorted(slices.Values(sites))
	return "\x00" + strings.Join(slices.Compact(s), "\x00") + "\x00"
}

// inSites reports whether site is among the sites of a searchKey.sites.
func inSites(key, site string) bool {
	return key == "" || strings.Contains(key, "\x00"+site+"\x00")
}

// searchResult holds the entries that match a search in the ascending
// order of its column.
type searchResult struct {
	idx  []*subjEntry
	used uint64 // when it was last used (searchCache.tick)
}

// searchCache holds the results of recent searches. Its map is guarded by
// mu; the results themselves, like the sort orders, by the store's s.mu:
// readers hold it for reading, writers (which change results in place) for
// writing.
type searchCache struct {
	mu      sync.Mutex
	results map[searchKey]*searchResult
	entries int // in all results
	tick    uint64
	// limit bounds entries: the number of subjects (at least 1<<16), so
	// that the results take at most a pointer per subject.
	limit int
}

// get returns the kept results of a search, or nil.
func (sc *searchCache) get(k searchKey) *searchResult {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	r := sc.results[k]
	if r != nil {
		sc.tick++
		r.used = sc.tick
	}
	return r
}

// put keeps idx as the results of a search, dropping the least recently
// used ones when it would hold too many; there are n subjects.
func (sc *searchCache) put(k searchKey, idx []*subjEntry, n int) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.limit = n
	if sc.results == nil {
		sc.results = map[searchKey]*searchResult{}
	}
	if old := sc.results[k]; old != nil {
		sc.entries -= len(old.idx)
	}
	sc.tick++
	sc.results[k] = &searchResult{idx: idx, used: sc.tick}
	sc.entries += len(idx)
	for len(sc.results) > maxCachedSearches || sc.entries > max(sc.limit, 1<<16) {
		var oldest searchKey
		var first = true
		var at uint64
		for key, r := range sc.results {
			if first || r.used < at {
				oldest, at, first = key, r.used, false
			}
		}
		sc.entries -= len(sc.results[oldest].idx)
		delete(sc.results, oldest)
	}
}

// add puts a new or changed entry into the results it matches; the caller
// holds the store's s.mu for writing.
func (sc *searchCache) add(e *subjEntry) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for k, r := range sc.results {
		if inSites(k.sites, e.site) && e.matches(k.q) {
			i, _ := slices.BinarySearchFunc(r.idx, e, compareOrder(k.col))
			r.idx = slices.Insert(r.idx, i, e)
			sc.entries++
		}
	}
}

// remove takes an entry out of the results it is in; the caller holds the
// store's s.mu for writing.
func (sc *searchCache) remove(e *subjEntry) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for k, r := range sc.results {
		if !inSites(k.sites, e.site) || !e.matches(k.q) {
			continue
		}
		if i, ok := slices.BinarySearchFunc(r.idx, e, compareOrder(k.col)); ok && r.idx[i] == e {
			r.idx = slices.Delete(r.idx, i, i+1)
			sc.entries--
		}
	}
}
