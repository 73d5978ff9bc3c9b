package boltstore

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/c3-pro/idm/idm"
)

// TestSubjEntry checks that a cache entry gives back the subject it was
// made of (nil and empty maps and values kept apart), every value capped,
// sharing no map or value with the subject given or with another read.
func TestSubjEntry(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for name, s := range map[string]idm.Subject{
		"zero":      {},
		"strings":   {ID: "0123", SSSID: "S-1", Name: "Zoë 日本", Bday: "1980-05-17", Email: "a@b", DateWithdrawn: "2024-01-05", Created: at, Changed: at, Rev: 3},
		"empty_map": {SSSID: "S-2", Extra: map[string]json.RawMessage{}},
		"extra": {SSSID: "S-3", Name: "x", Extra: map[string]json.RawMessage{
			"zeta": json.RawMessage(`1`), "alpha": json.RawMessage(`"a"`), "nil": nil, "empty": json.RawMessage{},
			"obj": json.RawMessage(`{"k": [1, 2]}`),
		}},
	} {
		t.Run(name, func(t *testing.T) {
			e := newSubjEntry(s)
			got := e.subject()
			if !reflect.DeepEqual(got, s) {
				t.Fatalf("got %+v\nwant %+v", got, s)
			}
			for k, v := range got.Extra {
				if cap(v) != len(v) {
					t.Errorf("value %q has room for %d more bytes", k, cap(v)-len(v))
				}
				if len(v) > 0 {
					v[0] = '#'
					if s.Extra[k][0] == '#' {
						t.Errorf("value %q shares memory with the given subject", k)
					}
					if again := e.subject().Extra[k]; again[0] == '#' {
						t.Errorf("value %q shares memory with the cache entry", k)
					}
				}
			}
			if s.Extra != nil {
				s.Extra["added"] = json.RawMessage(`1`)
				if _, ok := got.Extra["added"]; ok {
					t.Error("the map is the given subject's")
				}
			}
		})
	}
}

// TestDescendingOrders checks descPage and descAll against a descending
// sort (ties by SSSID ascending) of subjects with many ties and empty
// values, for every window of a few sizes.
func TestDescendingOrders(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	c := newSubjectCache()
	for i := range 300 {
		s := idm.Subject{ID: fmt.Sprintf("id-%d", i), SSSID: fmt.Sprintf("S-%03d", rng.IntN(1000)),
			Name: []string{"", "Ann", "Bob", "Cy"}[rng.IntN(4)], Bday: fmt.Sprintf("1980-01-%02d", rng.IntN(3)),
			Created: time.Unix(int64(rng.IntN(5)), int64(rng.IntN(2))).UTC()}
		if _, dup := c.bySSSID[s.SSSID]; !dup {
			c.add(newSubjEntry(s))
		}
	}
	n := len(c.bySSSID)
	for col := range numCols {
		c.build(col)
		asc, _ := c.order(col)
		want := slices.Clone(asc)
		slices.SortFunc(want, func(a, b *subjEntry) int {
			return cmp.Or(-compareCol(col, a, b), strings.Compare(a.field(fSSSID), b.field(fSSSID)))
		})
		if got := slices.Collect(descAll(asc, col)); !slices.Equal(got, want) {
			t.Fatalf("column %d: descAll differs from a descending sort", col)
		}
		for _, size := range []int{1, 7, 50, n} {
			for lo := 0; lo <= n+1; lo++ {
				got := descPage(asc, col, lo, lo+size)
				if w := want[min(lo, n):min(lo+size, n)]; !slices.Equal(got, w) {
					t.Fatalf("column %d, positions %d to %d: descPage differs from a descending sort", col, lo, lo+size)
				}
			}
		}
	}
}

// TestSearchIndexAgainstScan checks the indexed search (searchPage on the
// candidates of the trigram index) against testing every subject, through
// creates, renames, deletes (enough to renumber the ordinals several times)
// and site moves, for searches of every length, both directions and a few
// windows.
func TestSearchIndexAgainstScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	names := []string{"Meier", "Müller", "MEYER", "Keller", "Wyss", "Graf", "Åsa", "Zoë"}
	sites := []string{"", "Basel", "Bern"}
	c := newSubjectCache()
	subject := func(i int) idm.Subject {
		return idm.Subject{ID: fmt.Sprintf("id-%d-%d", i, rng.Int()), SSSID: fmt.Sprintf("S-%04d", i),
			Name: names[rng.IntN(len(names))] + " " + names[rng.IntN(len(names))],
			Bday: fmt.Sprintf("19%02d-0%d-1%d", rng.IntN(100), rng.IntN(10), rng.IntN(10)), Site: sites[rng.IntN(len(sites))]}
	}
	renumbered := 0
	check := func(round int) {
		for _, q := range []string{"m", "me", "mei", "meier", "ü", "müll", "s-00", "s-0012", "19", "1950-0", "r m", "zzz", "yer k"} {
			for _, siteFilter := range [][]string{nil, {"Bern"}, {"Basel", ""}} {
				for _, desc := range []bool{false, true} {
					col := []int{colSSSID, colName, colBday}[rng.IntN(3)]
					var want []*subjEntry
					for _, e := range c.bySSSID {
						if (siteFilter == nil || slices.Contains(siteFilter, e.site)) && e.matches(q) {
							want = append(want, e)
						}
					}
					slices.SortFunc(want, func(a, b *subjEntry) int {
						c := compareCol(col, a, b)
						if desc {
							c = -c
						}
						return cmp.Or(c, strings.Compare(a.field(fSSSID), b.field(fSSSID)))
					})
					for _, w := range [][2]int{{0, 50}, {3, 10}, {0, 1 << 30}, {len(want) - 2, len(want) + 5}} {
						lo, hi := max(w[0], 0), w[1]
						got, total, ok := c.searchPage(q, siteFilter, col, desc, lo, hi)
						if !ok {
							if len(q) >= 3 {
								t.Fatalf("no candidates for %q", q)
							}
							break
						}
						if total != len(want) {
							t.Fatalf("round %d: search %q in %v: total %d, want %d", round, q, siteFilter, total, len(want))
						}
						if exp := want[min(lo, len(want)):min(hi, len(want))]; !slices.Equal(got, exp) && len(got)+len(exp) > 0 {
							t.Fatalf("round %d: search %q in %v, col %d desc %v, %d to %d: wrong page", round, q, siteFilter, col, desc, lo, hi)
						}
					}
				}
			}
		}
	}
	next := 0
	for round := range 6 {
		for range 1500 {
			c.add(newSubjEntry(subject(next)))
			next++
		}
		var all []*subjEntry
		for _, e := range c.bySSSID {
			all = append(all, e)
		}
		for i, e := range all {
			before := len(c.byOrd)
			switch i % 4 {
			case 0:
				c.remove(e)
			case 1:
				s := e.subject()
				s.Name = names[rng.IntN(len(names))]
				c.replace(e, newSubjEntry(s))
			case 2:
				s := e.subject()
				s.Site = sites[rng.IntN(len(sites))]
				c.replace(e, newSubjEntry(s))
			}
			if len(c.byOrd) < before {
				renumbered++
			}
		}
		check(round)
	}
	if renumbered == 0 {
		t.Error("the ordinals were never renumbered")
	}
}
