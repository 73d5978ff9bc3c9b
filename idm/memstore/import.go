package memstore

import (
	"context"
	"fmt"

	"github.com/c3-pro/idm/idm"
)

// CreateSubjects implements [idm.SubjectStore]: the batch is checked and
// stored under the store's lock, so it is stored whole or not at all and
// no reader sees part of it.
func (s *Store) CreateSubjects(_ context.Context, subjects []idm.Subject, audits []idm.AuditEvent) error {
	recs := make([]*subjectRec, len(subjects))
	for i, sub := range subjects {
		sub.Rev = 1
		recs[i] = newSubjectRec(sub)
	}
	events := make([]idm.AuditEvent, len(audits))
	for i, e := range audits {
		e = cloneAudit(e)
		e.Time = idm.Timestamp(e.Time)
		events[i] = e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	batch := make(map[string]bool, len(recs))
	for _, r := range recs {
		if _, ok := s.subjects[r.s.SSSID]; ok || batch[r.s.SSSID] {
			return conflict("subject", r.s.SSSID)
		}
		batch[r.s.SSSID] = true
	}
	ids := make(map[string]bool, len(events))
	for _, e := range events {
		if s.auditIDs[e.ID] || ids[e.ID] {
			return fmt.Errorf("memstore: audit record %s: %w", e.ID, idm.ErrConflict)
		}
		ids[e.ID] = true
	}
	for _, r := range recs {
		s.subjects[r.s.SSSID] = r
		s.index(r)
	}
	if len(recs) > 0 {
		s.order = nil
	}
	for _, e := range events {
		s.appendAudit(e)
	}
	return nil
}
