package idm

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// NewID returns a fresh identifier: 24 lowercase hexadecimal characters
// encoding 12 bytes from crypto/rand, the same shape as a MongoDB ObjectId so
// that records migrated from the original service keep their identifiers.
func NewID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	return hex.EncodeToString(b[:])
}

// ValidID reports whether s has the shape of an identifier made by [NewID]:
// exactly 24 lowercase hexadecimal characters.
func ValidID(s string) bool {
	if len(s) != 24 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Timestamp normalises t the way every store keeps times: in UTC, truncated
// to millisecond precision. Code that writes a time into a store should pass
// it through Timestamp so that what it holds equals what it reads back.
func Timestamp(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Millisecond)
}
