//go:build !linux

package boltstore

// releaseMapped does nothing where MADV_DONTNEED does not have Linux's
// semantics for shared file mappings.
func releaseMapped(uintptr, int64) error { return nil }
