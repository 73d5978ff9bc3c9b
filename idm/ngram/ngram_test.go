package ngram

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestCandidatesHoldEveryMatch(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := "abcde-0123é"
	word := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteByte(alphabet[r.IntN(len(alphabet))])
		}
		return b.String()
	}
	var x Index
	keys := map[uint32][]string{}
	ord := uint32(0)
	for range 3000 {
		ord += uint32(1 + r.IntN(300)) // gaps of every size of varint
		ks := []string{word(r.IntN(12)), word(r.IntN(12))}
		keys[ord] = ks
		x.Add(ord, ks...)
	}
	x.Trim()
	for range 2000 {
		q := word(3 + r.IntN(4))
		if r.IntN(2) == 0 {
			// a substring of a stored key, so that there are matches
			for _, ks := range keys {
				if len(ks[0]) >= 5 {
					q = ks[0][1:4]
					break
				}
			}
		}
		got, ok := x.Candidates(q)
		if !ok {
			t.Fatalf("Candidates(%q) not ok", q)
		}
		if !slices.IsSorted(got) {
			t.Fatalf("Candidates(%q) not sorted: %v", q, got)
		}
		for o, ks := range keys {
			if (strings.Contains(ks[0], q) || strings.Contains(ks[1], q)) && !slices.Contains(got, o) {
				t.Fatalf("Candidates(%q) misses %d (%q)", q, o, ks)
			}
		}
		for _, o := range got {
			if _, known := keys[o]; !known {
				t.Fatalf("Candidates(%q) gives %d, which was never added", q, o)
			}
		}
	}
}

func TestCandidatesIntersect(t *testing.T) {
	var x Index
	x.Add(1, "alice", "s-001")
	x.Add(2, "bob", "s-002")
	x.Add(300, "alicia", "s-300")
	x.Add(301, "lice")
	for _, tc := range []struct {
		q    string
		want []uint32
	}{
		{"ali", []uint32{1, 300}},
		{"alice", []uint32{1}},
		{"lic", []uint32{1, 300, 301}},
		{"s-0", []uint32{1, 2}},
		{"zzz", []uint32{}},
		{"s-3", []uint32{300}},
	} {
		got, ok := x.Candidates(tc.q)
		if !ok || !slices.Equal(got, tc.want) {
			t.Errorf("Candidates(%q) = %v, %v; want %v", tc.q, got, ok, tc.want)
		}
	}
	if _, ok := x.Candidates("al"); ok {
		t.Error("a search shorter than a trigram gave candidates")
	}
}

func TestAddOutOfOrderPanics(t *testing.T) {
	var x Index
	x.Add(5, "abc")
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	x.Add(4, "abc")
}

func TestFoldMatchesToLower(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	alphabet := []string{"a", "B", "c", "Z", "-", "É", "é", "İ", "ß", "K", "1"}
	word := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		return b.String()
	}
	for range 20000 {
		s, q := word(r.IntN(8)), strings.ToLower(word(r.IntN(3)))
		if got, want := ContainsFold(s, q), strings.Contains(strings.ToLower(s), q); got != want {
			t.Fatalf("ContainsFold(%q, %q) = %v, want %v", s, q, got, want)
		}
		if got, want := HasPrefixFold(s, q), strings.HasPrefix(strings.ToLower(s), q); got != want {
			t.Fatalf("HasPrefixFold(%q, %q) = %v, want %v", s, q, got, want)
		}
	}
}
