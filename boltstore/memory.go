package boltstore

import (
	"context"

	bolt "go.etcd.io/bbolt"
)

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
