package boltstore_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c3-pro/idm/boltstore"
	"github.com/c3-pro/idm/idm"
)

// mappedRSS returns how many bytes of the file at path this process's
// mappings hold resident, from /proc/self/smaps.
func mappedRSS(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var total int64
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":"):
			// A mapping's header: address range, perms, offset, dev, inode[, path].
			in = len(fields) >= 6 && fields[5] == path
		case in && len(fields) == 3 && fields[0] == "Rss:":
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				t.Fatalf("smaps: %q: %v", sc.Text(), err)
			}
			total += kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return total
}

// TestReleaseMemory checks that the pages of the file that reads mapped in
// stop counting as resident after Open and after ReleaseMemory, that reads
// give the same records afterwards, and that a release may run while other
// goroutines read and write.
func TestReleaseMemory(t *testing.T) {
	ctx := t.Context()
	path, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(path, "idm.db")
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	// 200 audit records of 8 KiB each: 1.6 MB of pages that AuditsFor reads
	// through the mapping (and Open does not).
	const n = 200
	doc := idm.NewID()
	payload, _ := json.Marshal(strings.Repeat("x", 8<<10))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		e := idm.AuditEvent{ID: idm.NewID(), Time: t0.Add(time.Duration(i) * time.Second), Document: doc,
			DocType: idm.DocSubject, Action: "update", New: payload}
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// And 100 subjects of 8 KiB, which Open reads to hold them in memory.
	for i := range 100 {
		sub := idm.Subject{ID: idm.NewID(), SSSID: fmt.Sprintf("S-%03d", i), Created: t0, Changed: t0,
			Extra: map[string]json.RawMessage{"notes": payload}}
		if err := s.CreateSubject(ctx, sub); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	const fewPages = 256 << 10 // the meta pages and fault-around at most
	if rss := mappedRSS(t, path); rss > fewPages {
		t.Errorf("after Open, %d bytes of the file are resident; want at most %d", rss, fewPages)
	}
	want, err := s.AuditsFor(ctx, doc)
	if err != nil || len(want) != n {
		t.Fatalf("AuditsFor: %d records, %v; want %d", len(want), err, n)
	}
	if rss := mappedRSS(t, path); rss < n*(8<<10) {
		t.Fatalf("after reading every record, %d bytes of the file are resident; want at least %d (is the measurement broken?)", rss, n*(8<<10))
	}
	if err := s.ReleaseMemory(ctx); err != nil {
		t.Fatalf("ReleaseMemory: %v", err)
	}
	if rss := mappedRSS(t, path); rss > fewPages {
		t.Errorf("after ReleaseMemory, %d bytes of the file are resident; want at most %d", rss, fewPages)
	}
	got, err := s.AuditsFor(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Error("the records read after ReleaseMemory differ from those read before")
	}

	// Releases beside readers and a writer whose records make the file
	// grow (and bbolt map it anew).
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			e := idm.AuditEvent{ID: idm.NewID(), Time: t0.Add(time.Hour), Document: idm.NewID(),
				DocType: idm.DocSubject, Action: "update", New: payload}
			if err := s.AppendAudit(ctx, e); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				got, err := s.AuditsFor(ctx, doc)
				if err != nil || len(got) != n || string(got[n-1].New) != string(payload) {
					t.Errorf("AuditsFor during releases: %d records, %v", len(got), err)
					return
				}
			}
		})
	}
	for range 50 {
		if err := s.ReleaseMemory(ctx); err != nil {
			t.Error(err)
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseMemory(ctx); !errors.Is(err, idm.ErrUnavailable) {
		t.Errorf("ReleaseMemory after Close: %v; want an error wrapping idm.ErrUnavailable", err)
	}
}
