package boltstore

import (
	"strings"
	"testing"
	"time"
)

func TestPacker(t *testing.T) {
	tests := [][]string{
		{},
		{""},
		{"", "", ""},
		{"a"},
		{"S-00001", "", "Jane Doe", "1980-05-17", "", "ü€😀"},
		{strings.Repeat("x", 70000), "y", ""},
	}
	for _, fields := range tests {
		var p packer
		ends := make([]uint32, len(fields))
		for i, f := range fields {
			ends[i] = p.add(f)
		}
		packed := p.String()
		if want := strings.Join(fields, ""); packed != want {
			t.Errorf("packed %q = %q, want %q", fields, packed, want)
		}
		for i, f := range fields {
			if got := unpack(packed, ends, i); got != f {
				t.Errorf("unpack(%q, %d) = %q, want %q", fields, i, got, f)
			}
		}
	}
	t.Run("nil values", func(t *testing.T) {
		var p packer
		ends := []uint32{p.addBytes(nil), p.addBytes([]byte{}), p.addBytes([]byte("ab")), p.addBytes(nil), p.addBytes([]byte("c"))}
		packed := p.String()
		for i, want := range []struct {
			s     string
			isNil bool
		}{{"", true}, {"", false}, {"ab", false}, {"", true}, {"c", false}} {
			if got := unpack(packed, ends, i); got != want.s || (ends[i]&nilValue != 0) != want.isNil {
				t.Errorf("value %d: %q, nil %v; want %q, nil %v", i, got, ends[i]&nilValue != 0, want.s, want.isNil)
			}
		}
	})
}

func TestStamp(t *testing.T) {
	for _, tm := range []time.Time{
		{},
		time.Unix(0, 0).UTC(),
		time.Date(2026, 11, 29, 12, 24, 5, 645000000, time.UTC),
		time.Date(2026, 11, 29, 12, 24, 5, 999999999, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(-400, 3, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(292277026596, 12, 4, 15, 30, 7, 0, time.UTC),
	} {
		got := timeOf(stampOf(tm))
		if got != tm { // the representation, not only the instant
			t.Errorf("timeOf(stampOf(%v)) = %v (%#v), want %#v", tm, got, got, tm)
		}
	}
}
