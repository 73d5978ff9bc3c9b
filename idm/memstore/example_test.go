package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
)

func Example() {
	ctx := context.Background()
	store := memstore.New()
	defer store.Close()

	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, s := range []idm.Subject{
		{ID: idm.NewID(), SSSID: "S-002", Name: "Bob", Bday: "1975-01-02", Created: now},
		{ID: idm.NewID(), SSSID: "S-001", Name: "Alice", Bday: "1980-05-17", Created: now},
		{ID: idm.NewID(), SSSID: "S-003", Name: "Carol", Bday: "1980-12-24", Created: now},
	} {
		if err := store.CreateSubject(ctx, s); err != nil {
			fmt.Println(err)
		}
	}

	// Subjects born in 1980, sorted by name in descending order.
	page, total, err := store.ListSubjects(ctx, idm.SubjectFilter{Search: "1980", OrderCol: "name", Desc: true, Limit: 10})
	if err != nil {
		fmt.Println(err)
	}
	fmt.Println(total, "found")
	for _, s := range page {
		fmt.Println(s.SSSID, s.Name)
	}

	// Store errors are classified by the idm error kinds.
	err = store.CreateSubject(ctx, idm.Subject{ID: idm.NewID(), SSSID: "S-001"})
	fmt.Println(errors.Is(err, idm.ErrConflict))
	_, err = store.FindSubject(ctx, "S-404")
	fmt.Println(errors.Is(err, idm.ErrNotFound))
	// Output:
	// 2 found
	// S-003 Carol
	// S-001 Alice
	// true
	// true
}
