package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/c3-pro/idm/idm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// importTests check CreateSubjects, the batch write of the bulk import.
func importTests() []test {
	return []test{
		{"BatchStoresSubjectsAndRecords", testBatchStores},
		{"BatchSeqsContiguousInOrder", testBatchSeqs},
		{"BatchTakenSSSIDWritesNothing", testBatchTakenSSSID},
		{"BatchDuplicateInBatchWritesNothing", testBatchDuplicateInBatch},
		{"BatchTakenAuditIDWritesNothing", testBatchTakenAuditID},
		{"BatchEmpty", testBatchEmpty},
		{"BatchListedAndSearched", testBatchListed},
	}
}

// importBatch returns n new subjects named prefix0, prefix1, … and the
// audit records of their creation.
func importBatch(prefix string, n int) ([]idm.Subject, []idm.AuditEvent) {
	subjects := make([]idm.Subject, n)
	audits := make([]idm.AuditEvent, n)
	for i := range n {
		sub := newSubject(fmt.Sprintf("%s%03d", prefix, i))
		sub.Site = "main"
		sub.Extra = map[string]json.RawMessage{"cohort": json.RawMessage(`"A"`)}
		subjects[i] = sub
		audits[i] = newAudit(sub.ID, at(time.Duration(i)*time.Millisecond), "", "importer", "create")
		audits[i].New = json.RawMessage(fmt.Sprintf(`{"sssid":%q}`, sub.SSSID))
	}
	return subjects, audits
}

// requireNothingOf checks that none of the subjects and records is stored,
// and that the log holds count records.
func requireNothingOf(t *testing.T, s idm.Store, subjects []idm.Subject, audits []idm.AuditEvent, count int64) {
	t.Helper()
	for _, sub := range subjects {
		got, err := s.FindSubject(t.Context(), sub.SSSID)
		if err == nil {
			assert.NotEqual(t, sub.ID, got.ID, "subject %q of the failed batch is stored", sub.SSSID)
		} else {
			assert.ErrorIs(t, err, idm.ErrNotFound, "FindSubject %q", sub.SSSID)
		}
	}
	n, err := s.AuditCount(t.Context())
	require.NoError(t, err)
	assert.Equal(t, count, n, "audit records after a failed batch")
	docs := make([]string, len(audits))
	for i, e := range audits {
		docs[i] = e.Document
	}
	got, err := s.AuditsFor(t.Context(), docs...)
	require.NoError(t, err)
	assert.Empty(t, got, "records of the failed batch")
}

func testBatchStores(t *testing.T, s idm.Store) {
	subjects, audits := importBatch("B", 20)
	subjects[3].Rev = 7 // stored with Rev 1 anyway
	require.NoError(t, s.CreateSubjects(t.Context(), subjects, audits))
	for _, want := range subjects {
		got, err := s.FindSubject(t.Context(), want.SSSID)
		require.NoError(t, err, "FindSubject %q", want.SSSID)
		want.Rev = 1
		assertSame(t, want, got)
	}
	got, err := s.AuditsFor(t.Context(), subjects[5].ID)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, audits[5].ID, got[0].ID)
	assert.JSONEq(t, string(audits[5].New), string(got[0].New))
}

func testBatchSeqs(t *testing.T, s idm.Store) {
	before := newAudit("doc", at(0), "", "x", "before")
	appendAudits(t, s, before)
	subjects, audits := importBatch("S", 30)
	// Records out of time order keep the order given in their seqs.
	audits[0].Time, audits[29].Time = audits[29].Time, audits[0].Time
	require.NoError(t, s.CreateSubjects(t.Context(), subjects, audits))
	after := newAudit("doc", at(time.Hour), "", "x", "after")
	appendAudits(t, s, after)
	n, err := s.AuditCount(t.Context())
	require.NoError(t, err)
	require.EqualValues(t, 32, n)
	got, err := s.AuditsBySeq(t.Context(), 0, n)
	require.NoError(t, err)
	require.Len(t, got, 32)
	assert.Equal(t, before.ID, got[0].ID)
	for i, e := range audits {
		assert.Equal(t, e.ID, got[1+i].ID, "seq %d", 1+i)
		assert.EqualValues(t, 1+i, got[1+i].Seq)
	}
	assert.Equal(t, after.ID, got[31].ID)
}

func testBatchTakenSSSID(t *testing.T, s idm.Store) {
	taken := newSubject("T005")
	createSubjects(t, s, taken)
	subjects, audits := importBatch("T", 10)
	err := s.CreateSubjects(t.Context(), subjects, audits)
	require.ErrorIs(t, err, idm.ErrConflict)
	got, ferr := s.FindSubject(t.Context(), "T005")
	require.NoError(t, ferr)
	assert.Equal(t, taken.ID, got.ID, "the taken subject is left as it was")
	requireNothingOf(t, s, subjects, audits, 0)
	// The batch without the taken one goes through.
	subjects = append(subjects[:5], subjects[6:]...)
	audits = append(audits[:5], audits[6:]...)
	require.NoError(t, s.CreateSubjects(t.Context(), subjects, audits))
}

func testBatchDuplicateInBatch(t *testing.T, s idm.Store) {
	subjects, audits := importBatch("D", 6)
	subjects[4].SSSID = subjects[1].SSSID
	err := s.CreateSubjects(t.Context(), subjects, audits)
	require.ErrorIs(t, err, idm.ErrConflict)
	requireNothingOf(t, s, subjects, audits, 0)
}

func testBatchTakenAuditID(t *testing.T, s idm.Store) {
	old := newAudit("doc", at(0), "", "x", "old")
	appendAudits(t, s, old)
	subjects, audits := importBatch("A", 6)
	audits[3].ID = old.ID
	err := s.CreateSubjects(t.Context(), subjects, audits)
	require.ErrorIs(t, err, idm.ErrConflict)
	requireNothingOf(t, s, subjects, audits[:3], 1)
}

func testBatchEmpty(t *testing.T, s idm.Store) {
	require.NoError(t, s.CreateSubjects(t.Context(), nil, nil))
	n, err := s.AuditCount(t.Context())
	require.NoError(t, err)
	assert.Zero(t, n)
}

func testBatchListed(t *testing.T, s idm.Store) {
	// A sorted page read before the batch (stores may keep sort orders)
	// and one after it both see every subject.
	createSubjects(t, s, newSubject("L050"), newSubject("L150"))
	_, total, err := s.ListSubjects(t.Context(), idm.SubjectFilter{OrderCol: "name", Limit: 10})
	require.NoError(t, err)
	require.Equal(t, 2, total)
	_, total, err = s.ListSubjects(t.Context(), idm.SubjectFilter{OrderCol: "bday", Sites: []string{"main"}, Limit: 10})
	require.NoError(t, err)
	require.Equal(t, 0, total)
	subjects, audits := importBatch("L", 100)
	subjects = append(subjects[:50], subjects[51:]...)
	audits = append(audits[:50], audits[51:]...)
	require.NoError(t, s.CreateSubjects(t.Context(), subjects, audits))
	for _, col := range []string{"sssid", "name", "created"} {
		page, total, err := s.ListSubjects(t.Context(), idm.SubjectFilter{OrderCol: col, Limit: 200})
		require.NoError(t, err)
		require.Equal(t, 101, total, col)
		assert.Equal(t, "L000", page[0].SSSID, col)
		// Equal names and times tie by SSSID: every order is the SSSIDs'.
		assert.Equal(t, "L150", page[100].SSSID, col)
		for i := 1; i < len(page); i++ {
			assert.Less(t, page[i-1].SSSID, page[i].SSSID, "%s order at %d", col, i)
		}
	}
	page, total, err := s.ListSubjects(t.Context(), idm.SubjectFilter{OrderCol: "bday", Sites: []string{"main"}, Limit: 200})
	require.NoError(t, err)
	require.Equal(t, 99, total, "the batch's site")
	require.Len(t, page, 99)
	for i := 1; i < len(page); i++ {
		assert.Less(t, page[i-1].SSSID, page[i].SSSID, "site order at %d", i)
	}
	page, total, err = s.ListSubjects(t.Context(), idm.SubjectFilter{Search: "subject l05", Limit: 50})
	require.NoError(t, err)
	assert.Equal(t, 10, total, "search finds imported subjects")
	assert.Len(t, page, 10)
}
