package boltstore_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/c3-pro/idm/idm"
)

// TestLinksForSubjectsRepeated checks LinksForSubjects with SSSIDs given
// many times, up to and past the count where it switches from dropping
// repeated links after sorting to a set of SSSIDs: every link comes once,
// in creation order and then by ID (links created at the same time
// included), and the answer is a copy the caller may change.
func TestLinksForSubjectsRepeated(t *testing.T) {
	s, _ := openStore(t)
	ctx := t.Context()
	var all []idm.Link
	for i := range 12 {
		// Subjects S-0 to S-3, three links each; every other link is
		// created at the same time as the one before it.
		l := idm.Link{
			ID: fmt.Sprintf("%024x", (i*7919)%1000), SSSID: fmt.Sprintf("S-%d", i%4), Issuer: "iss",
			Created: t0.Add(time.Duration(i/2) * time.Minute), Changed: t0,
		}
		must(t, s.CreateLink(ctx, l))
		l.Rev = 1
		all = append(all, l)
	}
	slices.SortFunc(all, func(a, b idm.Link) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	of := func(sssids ...string) []idm.Link {
		out := []idm.Link{}
		for _, l := range all {
			if slices.Contains(sssids, l.SSSID) {
				out = append(out, l)
			}
		}
		return out
	}
	repeat := func(n int, sssids ...string) []string {
		var out []string
		for len(out) < n {
			out = append(out, sssids[len(out)%len(sssids)])
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		sssids []string
	}{
		{"one_twice", []string{"S-1", "S-1"}},
		{"two_alternating", []string{"S-2", "S-0", "S-2", "S-0", "S-2"}},
		{"64", repeat(64, "S-3", "S-404", "S-1", "S-1")},
		{"65", repeat(65, "S-3", "S-404", "S-1", "S-1")},
		{"1000_one", repeat(1000, "S-2")},
		{"1000_all", repeat(1000, "S-0", "S-1", "S-2", "S-3", "S-404")},
		{"missing_twice", []string{"S-404", "S-404"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.LinksForSubjects(ctx, tc.sssids...)
			must(t, err)
			want := of(tc.sssids...)
			equal(t, "links", want, got)
			if got == nil {
				t.Fatal("nil, want an empty slice")
			}
			for i := range got {
				got[i].SSSID, got[i].Issuer = "changed", "changed"
			}
			again, err := s.LinksForSubjects(ctx, tc.sssids...)
			must(t, err)
			equal(t, "links after changing the answer", want, again)
		})
	}
}
