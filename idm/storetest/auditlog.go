package storetest

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/idm"
)

func auditLogTests() []test {
	return []test{
		{"SeqInAppendOrder", testSeqInAppendOrder},
		{"SeqWithoutGapsUnderConcurrency", testSeqConcurrent},
		{"AuditsBySeqRanges", testAuditsBySeqRanges},
		{"CanonicalBytesRoundTrip", testCanonicalRoundTrip},
		{"TreeHashes", testTreeHashes},
		{"Checkpoints", testCheckpoints},
		{"ReplaceAuditsKeepsSeqAndTime", testReplaceAudits},
	}
}

// testSeqInAppendOrder: seqs are 0, 1, 2, … in the order of appending,
// whatever the records' times, and every read returns them.
func testSeqInAppendOrder(t *testing.T, s idm.Store) {
	ctx := t.Context()
	n, err := s.AuditCount(ctx)
	require.NoError(t, err)
	assert.Zero(t, n)
	events := []idm.AuditEvent{
		newAudit("A", at(2*time.Hour), "", "", "late"),
		newAudit("A", at(0), "", "", "early"),
		newAudit("B", at(time.Hour), "", "", "middle"),
	}
	for i, e := range events {
		e.Seq = 99 // ignored
		require.NoError(t, s.AppendAudit(ctx, e))
		n, err := s.AuditCount(ctx)
		require.NoError(t, err)
		assert.Equal(t, int64(i+1), n)
	}
	bySeq, err := s.AuditsBySeq(ctx, 0, 10)
	require.NoError(t, err)
	require.Len(t, bySeq, 3)
	for i, e := range bySeq {
		assert.Equal(t, int64(i), e.Seq)
		assert.Equal(t, events[i].ID, e.ID)
	}
	seqOf := map[string]int64{events[0].ID: 0, events[1].ID: 1, events[2].ID: 2}
	listed, _, err := s.ListAudits(ctx, idm.AuditFilter{})
	require.NoError(t, err)
	for _, e := range listed {
		assert.Equal(t, seqOf[e.ID], e.Seq, "ListAudits carries seq")
	}
	forA, err := s.AuditsFor(ctx, "A")
	require.NoError(t, err)
	for _, e := range forA {
		assert.Equal(t, seqOf[e.ID], e.Seq, "AuditsFor carries seq")
	}
	// A taken ID takes no seq.
	dup := events[0]
	require.ErrorIs(t, s.AppendAudit(ctx, dup), idm.ErrConflict)
	n, err = s.AuditCount(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(3), n)
}

// testSeqConcurrent: concurrent appends get distinct seqs without gaps.
func testSeqConcurrent(t *testing.T, s idm.Store) {
	const workers, each = 8, 6
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, workers*each)
	for range workers {
		wg.Go(func() {
			<-start
			for range each {
				errs <- s.AppendAudit(t.Context(), newAudit("A", at(0), "", "", "x"))
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	all, err := s.AuditsBySeq(t.Context(), 0, workers*each+10)
	require.NoError(t, err)
	require.Len(t, all, workers*each)
	ids := map[string]bool{}
	for i, e := range all {
		assert.Equal(t, int64(i), e.Seq)
		ids[e.ID] = true
	}
	assert.Len(t, ids, workers*each)
}

func testAuditsBySeqRanges(t *testing.T, s idm.Store) {
	ctx := t.Context()
	for i := range 5 {
		appendAudits(t, s, newAudit("A", at(time.Duration(i)*time.Minute), "", "", "x"))
	}
	for _, tt := range []struct {
		from, to int64
		want     []int64
	}{
		{0, 5, []int64{0, 1, 2, 3, 4}},
		{2, 4, []int64{2, 3}},
		{4, 100, []int64{4}},
		{5, 10, nil},
		{-3, 1, []int64{0}},
		{3, 3, nil},
	} {
		got, err := s.AuditsBySeq(ctx, tt.from, tt.to)
		require.NoError(t, err)
		require.NotNil(t, got, "an empty slice, not nil")
		var seqs []int64
		for _, e := range got {
			seqs = append(seqs, e.Seq)
		}
		assert.Equal(t, tt.want, seqs, "[%d, %d)", tt.from, tt.to)
	}
}

// testCanonicalRoundTrip: a record read back has the canonical bytes of the
// record appended (with its seq and stored time), Old and New byte for byte.
func testCanonicalRoundTrip(t *testing.T, s idm.Store) {
	ctx := t.Context()
	e := newAudit("A", messy(0), "aaaaaaaaaaaaaaaaaaaaaaa1", "alice@example.org", `name: "Zoë <b>&"`)
	e.Old = json.RawMessage(`{"name": "Zoë",  "n": 1.50}`)
	e.New = json.RawMessage(`{"name":"Zoë <b>&"}`)
	plain := newAudit("B", at(0), "", "", "update")
	appendAudits(t, s, plain, e)
	got, err := s.AuditsBySeq(ctx, 0, 2)
	require.NoError(t, err)
	require.Len(t, got, 2)
	want := e
	want.Seq, want.Time = 1, idm.Timestamp(e.Time)
	assert.Equal(t, string(idm.CanonicalAudit(want)), string(idm.CanonicalAudit(got[1])))
	plain.Seq = 0
	assert.Equal(t, string(idm.CanonicalAudit(plain)), string(idm.CanonicalAudit(got[0])))
	assert.Contains(t, string(idm.CanonicalAudit(got[1])), `"old":"{\"name\": \"Zoë\",  \"n\": 1.50}"`)
}

func testTreeHashes(t *testing.T, s idm.Store) {
	ctx := t.Context()
	size, err := s.TreeSize(ctx)
	require.NoError(t, err)
	assert.Zero(t, size)
	h := func(b byte) [32]byte { var x [32]byte; x[0], x[31] = b, b; return x }
	require.NoError(t, s.AddTreeHashes(ctx, 0, [][32]byte{h(1), h(2), h(3)}, 2))
	require.NoError(t, s.AddTreeHashes(ctx, 3, [][32]byte{h(4)}, 3))
	got, err := s.TreeHashes(ctx, []int64{3, 0, 2})
	require.NoError(t, err)
	assert.Equal(t, [][32]byte{h(4), h(1), h(3)}, got)
	_, err = s.TreeHashes(ctx, []int64{0, 4})
	assert.ErrorIs(t, err, idm.ErrNotFound)
	size, err = s.TreeSize(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(3), size)
	// Another process storing the same hashes again with a smaller size
	// changes nothing.
	require.NoError(t, s.AddTreeHashes(ctx, 0, [][32]byte{h(1), h(2)}, 1))
	size, err = s.TreeSize(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(3), size, "the size is never lowered")
}

func testCheckpoints(t *testing.T, s idm.Store) {
	ctx := t.Context()
	_, err := s.LatestCheckpoint(ctx)
	require.ErrorIs(t, err, idm.ErrNotFound)
	all, err := s.Checkpoints(ctx)
	require.NoError(t, err)
	assert.Empty(t, all)
	for _, size := range []int64{10, 2, 7} {
		require.NoError(t, s.AddCheckpoint(ctx, idm.Checkpoint{Size: size, Note: []byte("note " + string(rune('0'+size))), Time: messy(time.Duration(size) * time.Minute)}))
	}
	require.ErrorIs(t, s.AddCheckpoint(ctx, idm.Checkpoint{Size: 7, Note: []byte("other")}), idm.ErrConflict)
	all, err = s.Checkpoints(ctx)
	require.NoError(t, err)
	require.Len(t, all, 3)
	for i, size := range []int64{2, 7, 10} {
		assert.Equal(t, size, all[i].Size)
		assert.Equal(t, "note "+string(rune('0'+size)), string(all[i].Note))
		assert.True(t, all[i].Time.Equal(idm.Timestamp(messy(time.Duration(size)*time.Minute))))
	}
	latest, err := s.LatestCheckpoint(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(10), latest.Size)
}

func testReplaceAudits(t *testing.T, s idm.Store) {
	ctx := t.Context()
	a := newAudit("S-1", at(0), "aaaaaaaaaaaaaaaaaaaaaaa1", "alice@example.org", `name: "Alice"`)
	a.New = json.RawMessage(`{"name":"Alice"}`)
	b := newAudit("S-2", at(time.Minute), "", "", "create")
	appendAudits(t, s, a, b)
	erased := a
	erased.Seq = 0
	erased.Action = `name: "[erased]"`
	erased.New = json.RawMessage(`{"name":"[erased]"}`)
	erased.Time = at(time.Hour) // ignored: the stored time stays
	require.NoError(t, s.ReplaceAudits(ctx, []idm.AuditEvent{erased}))
	got, err := s.AuditsBySeq(ctx, 0, 2)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, erased.Action, got[0].Action)
	assert.JSONEq(t, string(erased.New), string(got[0].New))
	assert.Equal(t, int64(0), got[0].Seq)
	assert.True(t, got[0].Time.Equal(idm.Timestamp(at(0))), "time kept")
	forDoc, err := s.AuditsFor(ctx, "S-1")
	require.NoError(t, err)
	require.Len(t, forDoc, 1)
	assert.Equal(t, erased.Action, forDoc[0].Action)

	wrongID := erased
	wrongID.ID = idm.NewID()
	require.ErrorIs(t, s.ReplaceAudits(ctx, []idm.AuditEvent{wrongID}), idm.ErrNotFound)
	wrongSeq := erased
	wrongSeq.Seq = 1
	require.ErrorIs(t, s.ReplaceAudits(ctx, []idm.AuditEvent{wrongSeq}), idm.ErrNotFound)
	missing := erased
	missing.Seq = 7
	require.ErrorIs(t, s.ReplaceAudits(ctx, []idm.AuditEvent{missing}), idm.ErrNotFound)
}
