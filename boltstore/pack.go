package boltstore

import (
	"strings"
	"time"
)

// The in-memory copies of subjects and links are kept compact: a record's
// strings are packed into one string (one allocation, no size-class
// rounding per string, adjacent in memory for the CPU's caches) and its
// times are kept as seconds and nanoseconds (12 bytes where a time.Time
// takes 24; the store holds UTC times only, so no location is lost). The
// records are materialised as idm values when a read returns them; their
// strings are then substrings of the packed one and cost nothing to copy.

// nilValue marks, in the end offset of a packed value, a nil value (as
// opposed to an empty one). Packed strings are far shorter than 2 GiB.
const nilValue = 1 << 31

// packer packs strings back to back into one string.
type packer struct{ b strings.Builder }

// grow reserves room for n more bytes.
func (p *packer) grow(n int) { p.b.Grow(n) }

// add appends s and returns where it ends in the packed string.
func (p *packer) add(s string) uint32 {
	p.b.WriteString(s)
	return uint32(p.b.Len())
}

// addBytes appends v and returns where it ends in the packed string, with
// [nilValue] set when v is nil.
func (p *packer) addBytes(v []byte) uint32 {
	p.b.Write(v)
	end := uint32(p.b.Len())
	if v == nil {
		end |= nilValue
	}
	return end
}

// String returns the packed string.
func (p *packer) String() string { return p.b.String() }

// unpack returns string i of a packed string whose strings end at ends.
func unpack(packed string, ends []uint32, i int) string {
	var start uint32
	if i > 0 {
		start = ends[i-1] &^ nilValue
	}
	return packed[start : ends[i]&^nilValue]
}

// stampOf returns t as Unix seconds and nanoseconds.
func stampOf(t time.Time) (int64, int32) {
	return t.Unix(), int32(t.Nanosecond())
}

// timeOf returns the UTC time of Unix seconds and nanoseconds given by
// [stampOf]; the zero time.Time comes back as the zero time.Time.
func timeOf(sec int64, nsec int32) time.Time {
	return time.Unix(sec, int64(nsec)).UTC()
}
