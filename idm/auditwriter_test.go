package idm_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
)

// TestAuditLogCompensationSortsAfterItsRecord: records written in the same
// millisecond keep their order, a compensating record always sorts after
// its record (also when the clock went back) and copies its payload, and
// every compensation reads "<action> <suffix>".
func TestAuditLogCompensationSortsAfterItsRecord(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		clock  []time.Time // times the log's clock returns, in turn
		suffix string
	}{
		{"same millisecond", []time.Time{t0, t0, t0}, idm.AuditFailed},
		{"clock went back", []time.Time{t0, t0.Add(-time.Second), t0.Add(-time.Second)}, idm.AuditUndone},
		{"later", []time.Time{t0, t0.Add(time.Second), t0.Add(2 * time.Second)}, idm.AuditOutcomeUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := memstore.New()
			i := 0
			now := func() time.Time { i++; return tc.clock[i-1] }
			log := idm.NewAuditWriter(store, now, nil)
			for n := range 50 { // many pairs, so that random IDs would misorder some
				orig, err := log.Append(t.Context(), idm.AuditEvent{Time: t0, Document: "d", DocType: idm.DocUser,
					Action: fmt.Sprintf("change %d", n), New: []byte(`{"username":"a@example.org"}`)})
				if err != nil {
					t.Fatal(err)
				}
				i = 1
				if _, err := log.Compensate(t.Context(), orig, tc.suffix, errors.New("cause")); err != nil {
					t.Fatal(err)
				}
				i = 0
			}
			evs, err := store.AuditsFor(t.Context(), "d")
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 100 {
				t.Fatalf("%d records", len(evs))
			}
			at := map[string]int{}
			for k, e := range evs {
				at[e.Action] = k
			}
			for n := range 50 {
				action := fmt.Sprintf("change %d", n)
				o, ok1 := at[action]
				c, ok2 := at[action+tc.suffix]
				if !ok1 || !ok2 || c < o {
					t.Fatalf("%q at %d, its compensation at %d (%v %v)", action, o, c, ok1, ok2)
				}
				orig, comp := evs[o], evs[c]
				if !bytes.Equal(comp.New, orig.New) || comp.Document != orig.Document || comp.DocType != orig.DocType {
					t.Errorf("compensation %+v does not copy %+v", comp, orig)
				}
				if !idm.ValidID(comp.ID) || comp.ID == orig.ID {
					t.Errorf("IDs %q and %q", orig.ID, comp.ID)
				}
			}
		})
	}
}
