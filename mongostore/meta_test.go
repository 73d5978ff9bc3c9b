package mongostore_test

import (
	"sync"
	"testing"
	"time"

	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/internal/testmongo"
	"github.com/c3-pro/idm/mongostore"
)

// storesOnOneDatabase returns n stores on one fresh database, each on a
// client of its own (so each on its own connection, as separate processes
// would be; on FerretDB each client's pool holds one connection).
func storesOnOneDatabase(t *testing.T, n int) []*mongostore.Store {
	t.Helper()
	_, db := testmongo.DB(t) // drops the database at cleanup
	stores := make([]*mongostore.Store, n)
	for i := range stores {
		c := testmongo.Client(t, testmongo.URI(t))
		s, err := mongostore.New(t.Context(), c.Database(db.Name()))
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
	}
	return stores
}

// TestLoginGuardAcrossConnections checks the login-failure guard with
// concurrent callers spread over two clients on one database, the way two
// idmd processes share a MongoDB: exactly max attempts get a place, and no
// recorded failure is lost. On FerretDB, conditional updates from different
// connections are not atomic, so this holds only because the guard writes
// by inserting (unique indexes are enforced across connections).
func TestLoginGuardAcrossConnections(t *testing.T) {
	const (
		n      = 40
		max    = 5
		window = time.Hour
	)
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	stores := storesOnOneDatabase(t, 2)
	// concurrently runs f for 0..n-1 at once on alternating stores.
	concurrently := func(f func(s *mongostore.Store, i int) error) {
		t.Helper()
		start := make(chan struct{})
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				errs[i] = f(stores[i%len(stores)], i)
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("caller %d: %v", i, err)
			}
		}
	}
	for round, now := range []time.Time{base, base.Add(window), base.Add(window + time.Minute)} {
		if round == 2 {
			// A success clears the counter: max places again.
			if err := stores[1].ResetLoginFailures(t.Context(), "alice@example.org"); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		granted := 0
		concurrently(func(s *mongostore.Store, _ int) error {
			_, ok, err := s.ReserveLoginAttempt(t.Context(), "alice@example.org", now, window, max)
			if ok {
				mu.Lock()
				granted++
				mu.Unlock()
			}
			return err
		})
		if granted != max {
			t.Errorf("round %d: %d of %d concurrent attempts got a place, want exactly %d", round, granted, n, max)
		}
		got, err := stores[round%2].LoginFailures(t.Context(), "alice@example.org")
		if err != nil {
			t.Fatal(err)
		}
		if want := (idm.LoginFailures{Key: "alice@example.org", Count: max, Since: now, Last: now}); got != want {
			t.Errorf("round %d: counter %+v, want %+v", round, got, want)
		}
	}

	concurrently(func(s *mongostore.Store, _ int) error {
		_, err := s.RecordLoginFailure(t.Context(), "bob@example.org", base, window)
		return err
	})
	got, err := stores[0].LoginFailures(t.Context(), "bob@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if want := (idm.LoginFailures{Key: "bob@example.org", Count: n, Since: base, Last: base}); got != want {
		t.Errorf("after %d concurrent failures: counter %+v, want %+v", n, got, want)
	}
}
