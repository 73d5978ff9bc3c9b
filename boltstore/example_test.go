package boltstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/c3-pro/idm/boltstore"
	"github.com/c3-pro/idm/idm"
)

func Example() {
	dir, err := os.MkdirTemp("", "boltstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := boltstore.Open(filepath.Join(dir, "idm.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	ctx := context.Background()
	now := time.Date(2024, time.May, 1, 12, 0, 0, 0, time.UTC)
	for _, sub := range []idm.Subject{
		{ID: idm.NewID(), SSSID: "S-002", Name: "Bob", Bday: "1975-01-02", Created: now, Changed: now},
		{ID: idm.NewID(), SSSID: "S-001", Name: "Alice", Bday: "1980-05-17", Created: now, Changed: now},
	} {
		if err := s.CreateSubject(ctx, sub); err != nil {
			log.Fatal(err)
		}
	}
	err = s.CreateSubject(ctx, idm.Subject{ID: idm.NewID(), SSSID: "S-001", Name: "Impostor"})
	fmt.Println("duplicate SSSID is a conflict:", errors.Is(err, idm.ErrConflict))

	page, total, err := s.ListSubjects(ctx, idm.SubjectFilter{OrderCol: "name", Limit: 50})
	if err != nil {
		log.Fatal(err)
	}
	for _, sub := range page {
		fmt.Println(sub.SSSID, sub.Name)
	}
	fmt.Println("total:", total)
	// Output:
	// duplicate SSSID is a conflict: true
	// S-001 Alice
	// S-002 Bob
	// total: 2
}

// A second Open of a file that a store holds fails after the timeout with
// an error that wraps ErrLocked.
func ExampleOpen_locked() {
	dir, err := os.MkdirTemp("", "boltstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "idm.db")

	s, err := boltstore.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	_, err = boltstore.Open(path, boltstore.WithTimeout(100*time.Millisecond))
	fmt.Println(errors.Is(err, boltstore.ErrLocked))
	// Output:
	// true
}
