package boltstore

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/c3-pro/idm/idm"
)

// TestMergeIntoKeepsTheOrder checks that merging a batch into a sorted
// order gives the order a full sort gives, for batches before, among and
// after the old entries, on columns with many ties.
func TestMergeIntoKeepsTheOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// SSSIDs are unique (ties of a column go by SSSID), in random order.
	ids := rng.Perm(1_000_000)
	entry := func() *subjEntry {
		id := ids[0]
		ids = ids[1:]
		return newSubjEntry(idm.Subject{ID: idm.NewID(), SSSID: fmt.Sprintf("S%06d", id),
			Name: []string{"Anna", "Ben", "Clara"}[rng.IntN(3)], Bday: fmt.Sprintf("19%02d-01-01", rng.IntN(100))})
	}
	for _, c := range []struct{ old, add int }{{0, 5}, {5, 0}, {1, 1}, {100, 3}, {3, 100}, {1000, 1000}} {
		for _, col := range []int{colSSSID, colName, colBday} {
			old := make([]*subjEntry, c.old)
			for i := range old {
				old[i] = entry()
			}
			add := make([]*subjEntry, c.add)
			for i := range add {
				add[i] = entry()
			}
			slices.SortFunc(old, compareOrder(col))
			want := slices.SortedFunc(slices.Values(slices.Concat(old, add)), compareOrder(col))
			got := mergeInto(old, add, col)
			if !slices.Equal(got, want) {
				t.Errorf("%d old, %d new, column %d: the merged order differs from a sort", c.old, c.add, col)
			}
		}
	}
}
