package mongostore

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/c3-pro/idm/idm"
)

// CreateSubjects implements [idm.SubjectStore] without a transaction (the
// store does not need a replica set, and FerretDB has none), so "stored
// whole or not at all" holds in this sense:
//
//   - The subjects are inserted first, in one ordered InsertMany. When
//     that fails (a taken SSSID: ErrConflict), the subjects of the batch
//     that it inserted are deleted again (compensating deletes, matched by
//     ID and SSSID, so that only the batch's own are removed) and no audit
//     record is written: nothing of the batch is kept.
//   - The audit records are then appended in one ordered InsertMany, with
//     the next seqs in their order; a seq taken meanwhile by another
//     process is skipped as [Store.AppendAudit] does, and the rest retried.
//     When appending fails otherwise (the database goes away), the batch's
//     subjects are deleted again and the error wraps [idm.ErrAmbiguous]:
//     records of the batch appended before the failure stay in the log (it
//     is append-only), about subjects that are no longer there.
//   - A compensating delete that fails too leaves subjects of the batch in
//     place; the error then says so and wraps [idm.ErrAmbiguous].
//
// While a batch is written, readers may see part of it.
func (s *Store) CreateSubjects(ctx context.Context, subjects []idm.Subject, audits []idm.AuditEvent) error {
	const op = "create subjects"
	if len(subjects) == 0 && len(audits) == 0 {
		return nil
	}
	docs := make([]any, len(subjects))
	sssids := make(map[string]bool, len(subjects))
	mine := make(bson.A, len(subjects))
	for i, sub := range subjects {
		if sssids[sub.SSSID] {
			return fmt.Errorf("mongostore: %s: SSSID %q appears twice in the batch: %w", op, sub.SSSID, idm.ErrConflict)
		}
		sssids[sub.SSSID] = true
		sub.Rev = 1
		r, err := toSubjectRecord(sub)
		if err != nil {
			return err
		}
		docs[i] = r
		mine[i] = bson.M{"_id": sub.ID, "sssid": sub.SSSID}
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	// One batch at a time takes seqs in this process, so that its records
	// are contiguous.
	s.seqMu.Lock()
	defer s.seqMu.Unlock()
	undo := func(cause error) error {
		if len(mine) == 0 {
			return cause
		}
		dctx, cancel := s.op(context.WithoutCancel(ctx))
		defer cancel()
		if _, err := s.subjects.DeleteMany(dctx, bson.M{"$or": mine}); err != nil {
			return fmt.Errorf("mongostore: %s: %w (removing the batch's subjects again failed too, some may be stored: %w): %w",
				op, cause, translate(op, err), idm.ErrAmbiguous)
		}
		return cause
	}
	// A taken record ID is the caller's conflict: refused before anything
	// is written.
	if len(audits) > 0 {
		ids := make(bson.A, len(audits))
		seen := make(map[string]bool, len(audits))
		for i, e := range audits {
			if seen[e.ID] {
				return fmt.Errorf("mongostore: %s: audit record %s appears twice in the batch: %w", op, e.ID, idm.ErrConflict)
			}
			seen[e.ID] = true
			ids[i] = e.ID
		}
		switch n, err := s.audits.CountDocuments(ctx, bson.M{"_id": bson.M{"$in": ids}}); {
		case err != nil:
			return translate(op, err)
		case n > 0:
			return fmt.Errorf("mongostore: %s: %w", op, errIDTaken)
		}
	}
	if len(docs) > 0 {
		if _, err := s.subjects.InsertMany(ctx, docs, options.InsertMany().SetOrdered(true)); err != nil {
			return undo(translateWrite(op, err))
		}
	}
	if err := s.appendAudits(ctx, audits); err != nil {
		err = fmt.Errorf("mongostore: %s: appending the audit records (some may be stored): %w: %w", op, idm.ErrAmbiguous, err)
		return undo(err)
	}
	return nil
}

// appendAudits appends records with the next seqs, in order; the caller
// holds s.seqMu. A seq that another process takes meanwhile is read again
// and the remaining records retried; a taken record ID gives errIDTaken.
func (s *Store) appendAudits(ctx context.Context, audits []idm.AuditEvent) error {
	for claims := 0; len(audits) > 0; claims++ {
		if claims >= maxSeqClaims {
			return fmt.Errorf("no free seq after %d attempts: %w", maxSeqClaims, idm.ErrUnavailable)
		}
		if !s.seqKnown {
			seq, err := s.nextSeq(ctx)
			if err != nil {
				return translate("append audits", err)
			}
			s.seq, s.seqKnown = seq, true
		}
		docs := make([]any, len(audits))
		for i, e := range audits {
			e.Seq = s.seq + int64(i)
			docs[i] = toAuditRecord(e)
		}
		_, err := s.audits.InsertMany(ctx, docs, options.InsertMany().SetOrdered(true))
		if err == nil {
			s.seq += int64(len(audits))
			return nil
		}
		var bwe mongo.BulkWriteException
		if !errors.As(err, &bwe) || !onlyDuplicates(err) || len(bwe.WriteErrors) != 1 {
			s.seqKnown = false
			return translateWrite("append audits", err)
		}
		// An ordered insert stops at its first failure: the records before
		// it are stored.
		at := bwe.WriteErrors[0].Index
		if n, cerr := s.audits.CountDocuments(ctx, bson.M{"_id": audits[at].ID}); cerr == nil && n > 0 {
			s.seqKnown = false
			return fmt.Errorf("audit record %s: %w", audits[at].ID, errIDTaken)
		}
		audits = audits[at:]
		s.seqKnown = false // taken by another process: read the next one again
	}
	return nil
}
