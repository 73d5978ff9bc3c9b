package auditlog_test

import (
	"flag"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/c3-pro/idm/auditlog"
	"github.com/c3-pro/idm/boltstore"
	"github.com/c3-pro/idm/idm"
)

var benchRecords = flag.Int("auditlog.records", 10_000, "records in the log of BenchmarkVerify")

// BenchmarkVerify measures auditlog.Verify of a bbolt log of
// -auditlog.records records (checkpointed every 10 000), per record.
// `go test ./auditlog -run '^$' -bench Verify -benchtime 1x -timeout 60m -args -auditlog.records=1000000` is the 1 000 000-record run of
// docs/audit-log.md (TMPDIR=/dev/shm makes the seeding quicker).
func BenchmarkVerify(b *testing.B) {
	n := *benchRecords
	s, err := boltstore.Open(filepath.Join(b.TempDir(), "idm.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := b.Context()
	key, err := auditlog.LoadOrCreateKey(ctx, s, t0)
	if err != nil {
		b.Fatal(err)
	}
	l, err := auditlog.New(auditlog.Config{Store: s, Key: key})
	if err != nil {
		b.Fatal(err)
	}
	began := time.Now()
	for i := range n {
		e := idm.AuditEvent{ID: idm.NewID(), Time: t0.Add(time.Duration(i) * time.Millisecond), Document: idm.NewID(),
			DocType: idm.DocSubject, ActorID: "aaaaaaaaaaaaaaaaaaaaaaa1", Actor: "alice@example.org",
			Action: fmt.Sprintf(`name: "Subject %d"; email: "s%d@example.org"`, i, i),
			New:    []byte(fmt.Sprintf(`{"name":"Subject %d","email":"s%d@example.org"}`, i, i))}
		if err := s.AppendAudit(ctx, e); err != nil {
			b.Fatal(err)
		}
		if (i+1)%10_000 == 0 || i == n-1 {
			if _, err := l.Checkpoint(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Logf("seeded %d records with checkpoints in %v", n, time.Since(began).Round(time.Millisecond))
	b.ResetTimer()
	for range b.N {
		rep, err := auditlog.Verify(ctx, s, l.VerifierKey(), nil)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Records != int64(n) {
			b.Fatalf("verified %d records", rep.Records)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/record")
}
