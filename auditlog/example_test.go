package auditlog_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/c3-pro/idm/auditlog"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
)

// Example keeps a store's audit log: records appended as usual enter the
// tree, a checkpoint signs it, and Verify checks the whole log.
func Example() {
	ctx := context.Background()
	store := memstore.New()
	now := time.Date(2026, time.December, 1, 9, 0, 0, 0, time.UTC)
	key, err := auditlog.LoadOrCreateKey(ctx, store, now) // kept in the store
	if err != nil {
		log.Fatal(err)
	}
	l, err := auditlog.New(auditlog.Config{Store: store, Key: key})
	if err != nil {
		log.Fatal(err)
	}
	for i := range 3 {
		err := store.AppendAudit(ctx, idm.AuditEvent{
			ID: idm.NewID(), Time: now.Add(time.Duration(i) * time.Second), Document: "S-1",
			DocType: idm.DocSubject, Actor: "alice@example.org", Action: fmt.Sprintf("change %d", i),
		})
		if err != nil {
			log.Fatal(err)
		}
	}
	cp, err := l.Checkpoint(ctx) // idmd does this every IDM_AUDIT_CHECKPOINT (Log.Run)
	if err != nil {
		log.Fatal(err)
	}
	rep, err := auditlog.Verify(ctx, store, l.VerifierKey(), nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("checkpoint of", cp.Size, "records;", rep.Records, "records verified against", rep.Checkpoints, "checkpoint")
	// Output: checkpoint of 3 records; 3 records verified against 1 checkpoint
}
