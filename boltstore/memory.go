package boltstore

import (
	"context"

	bolt "go.etcd.io/bbolt"
)

// releaseWindow is how much of the file loading reads through the memory
// map before it releases the pages it has read (see readWindow.release): the
// resident part of the file stays within about this much while the store
// opens, whatever the size of the file.
const releaseWindow = 64 << 20

// readWindow counts what a read transaction has read through the memory map
// and releases the mapped pages each time it has read releaseWindow more.
type readWindow struct {
	tx   *bolt.Tx
	read int
}

// release counts n bytes read and releases the mapped pages once the
// window is full. Only memory accounting depends on it, so a failure is
// ignored.
func (w *readWindow) release(n int) {
	w.read += n
	if w.read < releaseWindow {
		return
	}
	w.read = 0
	_ = releaseMapped(w.tx.DB().Info().Data, w.tx.Size())
}

// ReleaseMemory lets the operating system take back the pages of the
// database file that the store's memory map holds resident. bbolt reads
// through a read-only shared mapping of the file, so the pages a read
// touches count towards the process's resident memory until the kernel
// needs them elsewhere; the data stay in the kernel's page cache after the
// release, and a later read maps them again at the cost of a minor page
// fault. Reads and writes may run at the same time. [Open] calls it once
// the subjects, users and links are in memory; a server may call it again
// when it has been idle for a while. On systems other than Linux it does
// nothing.
func (s *Store) ReleaseMemory(ctx context.Context) error {
	// A read transaction holds bbolt's mapping lock, so the mapping cannot
	// be replaced (when the file grows) while its pages are released.
	return s.view(ctx, "release memory", func(tx *bolt.Tx) error {
		return releaseMapped(tx.DB().Info().Data, tx.Size())
	})
}
