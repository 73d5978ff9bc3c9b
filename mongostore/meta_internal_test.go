package mongostore

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/internal/testmongo"
)

// TestLoginWindowChain checks the chain of login windows behind the
// counters: purges remove idle windows with their places, a key's last
// windows only behind a tombstone that callers wait for.
func TestLoginWindowChain(t *testing.T) {
	const key, window = "alice@example.org", time.Hour
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	newStore := func(t *testing.T) *Store {
		t.Helper()
		_, db := testmongo.DB(t)
		s, err := New(t.Context(), db)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	reserve := func(t *testing.T, s *Store, now time.Time) idm.LoginFailures {
		t.Helper()
		f, ok, err := s.ReserveLoginAttempt(t.Context(), key, now, window, 5)
		if err != nil || !ok {
			t.Fatalf("reserve at %v: ok %v, err %v", now, ok, err)
		}
		return f
	}
	windows := func(t *testing.T, s *Store) (ns []int64) {
		t.Helper()
		cur, err := s.windows.Find(t.Context(), bson.M{"key": key})
		if err != nil {
			t.Fatal(err)
		}
		var ws []loginWindowRecord
		if err := cur.All(t.Context(), &ws); err != nil {
			t.Fatal(err)
		}
		for _, w := range ws {
			ns = append(ns, w.N)
		}
		return ns
	}
	count := func(t *testing.T, s *Store) int64 {
		t.Helper()
		n, err := s.attempts.CountDocuments(t.Context(), bson.M{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	tombstone := func(t *testing.T, s *Store, n int64, at time.Time) {
		t.Helper()
		if _, err := s.windows.InsertOne(t.Context(), loginWindowRecord{ID: bson.NewObjectID(), Key: key, N: n, Since: at, State: windowPurging}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("PurgeKeepsTheCurrentWindow", func(t *testing.T) {
		s := newStore(t)
		reserve(t, s, t0)
		reserve(t, s, t0.Add(window)) // window 1; window 0 idle since t0
		n, err := s.PurgeLoginFailures(t.Context(), t0.Add(time.Minute))
		if err != nil || n != 0 {
			t.Fatalf("purge: %d, %v; want 0 counters removed", n, err)
		}
		if got := windows(t, s); len(got) != 1 || got[0] != 1 {
			t.Errorf("windows left %v, want [1]", got)
		}
		if got := count(t, s); got != 1 {
			t.Errorf("%d places left, want 1", got)
		}
	})
	t.Run("PurgeRemovesTheChainAndItsTombstone", func(t *testing.T) {
		s := newStore(t)
		reserve(t, s, t0)
		if err := s.ResetLoginFailures(t.Context(), key); err != nil {
			t.Fatal(err)
		}
		reserve(t, s, t0.Add(time.Minute)) // window 2 after the cleared window 1
		n, err := s.PurgeLoginFailures(t.Context(), t0.Add(2*time.Minute))
		if err != nil || n != 1 {
			t.Fatalf("purge: %d, %v; want 1 counter removed", n, err)
		}
		if got := windows(t, s); len(got) != 0 {
			t.Errorf("windows left %v, want none", got)
		}
		if got := count(t, s); got != 0 {
			t.Errorf("%d places left, want none", got)
		}
	})
	t.Run("PurgeLeavesAKeyToAnotherPurge", func(t *testing.T) {
		s := newStore(t)
		reserve(t, s, t0)
		tombstone(t, s, 1, time.Now())
		n, err := s.PurgeLoginFailures(t.Context(), time.Now().Add(time.Hour))
		if err != nil || n != 0 {
			t.Fatalf("purge: %d, %v; want 0", n, err)
		}
		if got := windows(t, s); len(got) != 2 {
			t.Errorf("windows left %v, want [0 1]", got)
		}
	})
	t.Run("CallersWaitForAPurge", func(t *testing.T) {
		s := newStore(t)
		reserve(t, s, t0)
		tombstone(t, s, 1, time.Now())
		done := make(chan idm.LoginFailures)
		go func() {
			f, _, _ := s.ReserveLoginAttempt(t.Context(), key, t0.Add(2*window), window, 5)
			done <- f
		}()
		select {
		case f := <-done:
			t.Fatalf("a reservation went ahead during a purge: %+v", f)
		case <-time.After(100 * time.Millisecond):
		}
		// The purge ends: every window of the key is gone.
		if _, err := s.windows.DeleteMany(t.Context(), bson.M{"key": key}); err != nil {
			t.Fatal(err)
		}
		f := <-done
		if want := (idm.LoginFailures{Key: key, Count: 1, Since: t0.Add(2 * window), Last: t0.Add(2 * window)}); f != want {
			t.Errorf("after the purge: %+v, want %+v", f, want)
		}
		if got := windows(t, s); len(got) != 1 || got[0] != 0 {
			t.Errorf("windows %v, want the key afresh at [0]", got)
		}
	})
	t.Run("AnAbandonedTombstoneCountsAsCleared", func(t *testing.T) {
		s := newStore(t)
		reserve(t, s, t0)
		tombstone(t, s, 1, time.Now().Add(-purgeGrace-time.Second))
		if f := reserve(t, s, t0.Add(time.Second)); f.Count != 1 {
			t.Errorf("count %d, want 1 in a new window", f.Count)
		}
		if got := windows(t, s); len(got) != 3 {
			t.Errorf("windows %v, want [0 1 2]", got)
		}
	})
}
