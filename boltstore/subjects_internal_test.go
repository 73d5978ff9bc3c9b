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
