package boltstore

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/c3-pro/idm/idm"
)

// TestGroupCommitSharesTransactions checks that concurrent writes share
// transactions, and that every acknowledged one is in the file when it is
// opened again and in the in-memory copy before.
func TestGroupCommitSharesTransactions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idm.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 32, 8
	var wg sync.WaitGroup
	errs := make(chan error, workers*each*2)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				sssid := fmt.Sprintf("G-%02d-%d", w, i)
				errs <- s.AppendAudit(t.Context(), idm.AuditEvent{ID: idm.NewID(), Document: sssid, Action: "create"})
				errs <- s.CreateSubject(t.Context(), idm.Subject{ID: idm.NewID(), SSSID: sssid, Name: "Group " + sssid})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	commits := s.commit.commits.Load()
	t.Logf("%d writes in %d transactions", workers*each*2, commits)
	if commits >= workers*each*2 {
		t.Errorf("%d writes took %d transactions: none were shared", workers*each*2, commits)
	}
	_, total, err := s.ListSubjects(t.Context(), idm.SubjectFilter{Search: "group g-"})
	if err != nil || total != workers*each {
		t.Fatalf("the in-memory copy lists %d subjects (%v), want %d", total, err, workers*each)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, total, err = s.ListSubjects(t.Context(), idm.SubjectFilter{})
	if err != nil || total != workers*each {
		t.Fatalf("the file holds %d subjects (%v), want %d", total, err, workers*each)
	}
	audits, err := s.AuditCount(t.Context())
	if err != nil || audits != workers*each {
		t.Fatalf("the file holds %d audit records (%v), want %d", audits, err, workers*each)
	}
}

// TestGroupCommitFailedWrites checks that writes that fail (conflicts and
// stale revisions) among concurrent ones that succeed get their own error
// and change nothing, while the others commit: of each pair of creates of
// one SSSID exactly one wins, of each pair of updates from one revision
// exactly one, and the file and the in-memory copy agree.
func TestGroupCommitFailedWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idm.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	const pairs = 24
	for round := range 3 {
		var wg sync.WaitGroup
		results := make([]error, 2*pairs)
		for i := range 2 * pairs {
			wg.Go(func() {
				sub := idm.Subject{ID: idm.NewID(), SSSID: fmt.Sprintf("F-%02d", i/2), Name: fmt.Sprintf("writer %d", i), Rev: int64(round)}
				if round == 0 {
					results[i] = s.CreateSubject(t.Context(), sub)
				} else {
					results[i] = s.UpdateSubject(t.Context(), sub)
				}
			})
		}
		wg.Wait()
		for p := range pairs {
			a, b := results[2*p], results[2*p+1]
			want := idm.ErrConflict
			if round > 0 {
				want = idm.ErrStale
			}
			if (a == nil) == (b == nil) || !errors.Is(a, want) && !errors.Is(b, want) {
				t.Fatalf("round %d, pair %d: %v and %v; want one success and one %v", round, p, a, b, want)
			}
		}
	}
	cached, _, err := s.ListSubjects(t.Context(), idm.SubjectFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stored, _, err := s.ListSubjects(t.Context(), idm.SubjectFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != pairs || fmt.Sprint(stored) != fmt.Sprint(cached) {
		t.Fatalf("the file holds %d subjects, which differ from the in-memory copy before:\n%v\n%v", len(stored), stored, cached)
	}
	for _, sub := range stored {
		if sub.Rev != 3 {
			t.Errorf("%s has revision %d, want 3", sub.SSSID, sub.Rev)
		}
	}
}
