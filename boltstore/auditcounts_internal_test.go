package boltstore

import (
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/c3-pro/idm/idm"
)

// TestAuditCountsRebuilt checks that a file without the counts (written
// before they existed) or with counts that do not add up gets them again
// when it is opened, and that ReplaceAudits takes a record out of the
// count of an actor it no longer names.
func TestAuditCountsRebuilt(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "idm.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 3, 4, 5, 0, 0, 0, time.UTC)
	var events []idm.AuditEvent
	for i := range 30 {
		e := idm.AuditEvent{ID: idm.NewID(), Time: t0.Add(time.Duration(i*13) * time.Minute), Document: "D", Action: "x",
			ActorID: "id-alice", Actor: "alice@example.org"}
		if i%3 == 0 {
			e.ActorID, e.Actor = "id-bob", "bob@example.org"
		}
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
		e.Seq = int64(i)
		events = append(events, e)
	}
	totals := func(s *Store) [3]int {
		t.Helper()
		var out [3]int
		for i, f := range []idm.AuditFilter{{}, {Actor: "alice@example.org", Since: t0.Add(20 * time.Minute)}, {Actor: "id-bob", Until: t0.Add(5 * time.Hour)}} {
			_, n, err := s.ListAudits(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			out[i] = n
		}
		return out
	}
	want := totals(s)
	if want != [3]int{30, 19, 8} {
		t.Fatalf("totals %v, want [30 19 8]", want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for name, spoil := range map[string]func(tx *bolt.Tx) error{
		"no counts":    func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte(bAuditCounts)) },
		"wrong counts": func(tx *bolt.Tx) error { return addCount(bucket(tx, bAuditCounts), "", appendTime(nil, t0), 5) },
	} {
		db, err := bolt.Open(path, fileMode, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(spoil); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		s, err = Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := totals(s); got != want {
			t.Errorf("%s: totals after opening %v, want %v", name, got, want)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	erased := events[10] // alice's, in an hour in the middle of the range
	erased.ActorID, erased.Actor = "", ""
	if err := s.ReplaceAudits(ctx, []idm.AuditEvent{erased}); err != nil {
		t.Fatal(err)
	}
	if got := totals(s); got != [3]int{30, 18, 8} {
		t.Errorf("totals after erasing an actor %v, want [30 18 8]", got)
	}
}
