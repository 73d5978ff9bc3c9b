package boltstore

import (
	"fmt"
	"syscall"
)

// releaseMapped drops the resident pages of the first size bytes of the
// file mapping at addr. MADV_DONTNEED on a shared file mapping only unmaps
// the pages from this process: their contents stay in the page cache (and
// on disk), and the next access maps them again.
func releaseMapped(addr uintptr, size int64) error {
	if size <= 0 {
		return nil
	}
	if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, addr, uintptr(size), syscall.MADV_DONTNEED); errno != 0 {
		return fmt.Errorf("madvise: %w", errno)
	}
	return nil
}
