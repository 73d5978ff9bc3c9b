package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/c3-pro/idm/idm"
)

// errIDTaken marks an append whose record ID is taken (not its seq).
var errIDTaken = fmt.Errorf("record ID taken: %w", idm.ErrConflict)

// maxSeqClaims bounds the attempts of one append to take a seq: each
// failed attempt means another append took that seq, so the bound is only
// reached under a contention far beyond what the service produces.
const maxSeqClaims = 1000

// treeSizeID is the _id of the meta document that holds the tree size.
const treeSizeID = "audit_tree"

// nextSeq returns the seq after the largest stored one (0 for none).
func (s *Store) nextSeq(ctx context.Context) (int64, error) {
	var r struct {
		Seq int64 `bson:"seq"`
	}
	err := s.audits.FindOne(ctx, bson.M{"seq": bson.M{"$exists": true}},
		options.FindOne().SetSort(bson.D{{Key: "seq", Value: -1}}).SetProjection(bson.M{"seq": 1})).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return r.Seq + 1, nil
}

// claimSeq calls write with the next seq until a write does not fail with a
// duplicate key (another process took that seq first). The appends of one
// process take their seqs one at a time, from a seq kept in memory, so that
// they do not race each other: only appends of other processes sharing the
// database can take a seq first, and then the next seq is read again.
func (s *Store) claimSeq(ctx context.Context, op string, write func(seq int64) error) error {
	s.seqMu.Lock()
	defer s.seqMu.Unlock()
	for range maxSeqClaims {
		if !s.seqKnown {
			seq, err := s.nextSeq(ctx)
			if err != nil {
				return translate(op, err)
			}
			s.seq, s.seqKnown = seq, true
		}
		err := write(s.seq)
		switch {
		case err == nil:
			s.seq++
			return nil
		case errors.Is(err, errIDTaken):
			return fmt.Errorf("mongostore: %s: %w", op, err)
		case isDuplicate(err):
			s.seqKnown = false // taken by another process: read the next one again
		default:
			// A write whose answer was lost may have taken the seq.
			s.seqKnown = false
			return translateWrite(op, err)
		}
	}
	return fmt.Errorf("mongostore: %s: no free seq after %d attempts: %w", op, maxSeqClaims, idm.ErrUnavailable)
}

// numberAudits gives the records written before the audit log their seqs,
// oldest first (time, then ID); it does nothing once all have one.
func (s *Store) numberAudits(ctx context.Context) error {
	cur, err := s.audits.Find(ctx, bson.M{"seq": bson.M{"$exists": false}},
		options.Find().SetSort(auditOrder).SetProjection(bson.M{"_id": 1}))
	if err != nil {
		return translate("number audit records", err)
	}
	var ids []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &ids); err != nil {
		return translate("number audit records", err)
	}
	for _, r := range ids {
		err := s.claimSeq(ctx, "number audit records", func(seq int64) error {
			_, err := s.audits.UpdateOne(ctx, bson.M{"_id": r.ID, "seq": bson.M{"$exists": false}}, bson.M{"$set": bson.M{"seq": seq}})
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// AuditCount implements [idm.AuditLogStore].
func (s *Store) AuditCount(ctx context.Context) (int64, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	n, err := s.nextSeq(ctx)
	return n, translate("audit count", err)
}

// AuditsBySeq implements [idm.AuditLogStore].
func (s *Store) AuditsBySeq(ctx context.Context, from, to int64) ([]idm.AuditEvent, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	cur, err := s.audits.Find(ctx, bson.M{"seq": bson.M{"$gte": max(from, 0), "$lt": to}},
		options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}))
	if err != nil {
		return nil, translate("audits by seq", err)
	}
	defer cur.Close(ctx)
	out := []idm.AuditEvent{}
	for cur.Next(ctx) {
		var r auditRecord
		if err := cur.Decode(&r); err != nil {
			// Name the record that cannot be read, for verification.
			seq, _ := cur.Current.Lookup("seq").AsInt64OK()
			return nil, &idm.BadAuditRecordError{Seq: seq, Err: err}
		}
		out = append(out, r.event())
	}
	if err := cur.Err(); err != nil {
		return nil, translate("audits by seq", err)
	}
	return out, nil
}

type treeRecord struct {
	Index int64  `bson:"_id"`
	Hash  []byte `bson:"h"`
}

// TreeSize implements [idm.AuditLogStore].
func (s *Store) TreeSize(ctx context.Context) (int64, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	var r struct {
		Size int64 `bson:"size"`
	}
	err := s.meta.FindOne(ctx, bson.M{"_id": treeSizeID}).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	return r.Size, translate("tree size", err)
}

// onlyDuplicates reports whether err is a bulk insert's error whose every
// failure is a duplicate key.
func onlyDuplicates(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if !isDuplicate(mongo.WriteException{WriteErrors: []mongo.WriteError{we.WriteError}}) {
			return false
		}
	}
	return true
}

// TreeHashes implements [idm.AuditLogStore].
func (s *Store) TreeHashes(ctx context.Context, indexes []int64) ([][32]byte, error) {
	if len(indexes) == 0 {
		return [][32]byte{}, nil
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	records, err := findAll[treeRecord](ctx, s.tree, bson.M{"_id": bson.M{"$in": indexes}}, options.Find())
	if err != nil {
		return nil, translate("tree hashes", err)
	}
	byIndex := make(map[int64][]byte, len(records))
	for _, r := range records {
		byIndex[r.Index] = r.Hash
	}
	out := make([][32]byte, len(indexes))
	for i, x := range indexes {
		h := byIndex[x]
		if len(h) != 32 {
			return nil, fmt.Errorf("mongostore: tree hash %d: %w", x, idm.ErrNotFound)
		}
		copy(out[i][:], h)
	}
	return out, nil
}

// AddTreeHashes implements [idm.AuditLogStore]: the hashes first (upserts,
// so storing one again is harmless), then the size, raised with $max.
func (s *Store) AddTreeHashes(ctx context.Context, start int64, hashes [][32]byte, size int64) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	if len(hashes) > 0 {
		docs := make([]any, len(hashes))
		for i, h := range hashes {
			docs[i] = treeRecord{Index: start + int64(i), Hash: h[:]}
		}
		// A hash stored before (by another instance, or by a run cut short
		// before it raised the size) has the same value: a duplicate is
		// fine, any other failure is not.
		if _, err := s.tree.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false)); err != nil && !onlyDuplicates(err) {
			return translate("add tree hashes", err)
		}
	}
	_, err := s.meta.UpdateOne(ctx, bson.M{"_id": treeSizeID}, bson.M{"$max": bson.M{"size": size}}, options.UpdateOne().SetUpsert(true))
	if isDuplicate(err) {
		// Two first upserts at once: the other one created the document.
		_, err = s.meta.UpdateOne(ctx, bson.M{"_id": treeSizeID}, bson.M{"$max": bson.M{"size": size}})
	}
	return translate("set tree size", err)
}

type checkpointRecord struct {
	Size int64     `bson:"_id"`
	Note []byte    `bson:"note"`
	Time time.Time `bson:"time"`
}

// AddCheckpoint implements [idm.AuditLogStore].
func (s *Store) AddCheckpoint(ctx context.Context, c idm.Checkpoint) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	_, err := s.checkpoints.InsertOne(ctx, checkpointRecord{Size: c.Size, Note: c.Note, Time: idm.Timestamp(c.Time)})
	return translate("add checkpoint", err)
}

func (r checkpointRecord) checkpoint() idm.Checkpoint {
	return idm.Checkpoint{Size: r.Size, Note: r.Note, Time: fromDate(r.Time)}
}

// Checkpoints implements [idm.AuditLogStore].
func (s *Store) Checkpoints(ctx context.Context) ([]idm.Checkpoint, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	records, err := findAll[checkpointRecord](ctx, s.checkpoints, bson.M{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, translate("checkpoints", err)
	}
	out := make([]idm.Checkpoint, len(records))
	for i, r := range records {
		out[i] = r.checkpoint()
	}
	return out, nil
}

// LatestCheckpoint implements [idm.AuditLogStore].
func (s *Store) LatestCheckpoint(ctx context.Context) (idm.Checkpoint, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	var r checkpointRecord
	err := s.checkpoints.FindOne(ctx, bson.M{}, options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}})).Decode(&r)
	if err != nil {
		return idm.Checkpoint{}, translate("latest checkpoint", err)
	}
	return r.checkpoint(), nil
}

// ReplaceAudits implements [idm.AuditLogStore]: one update per record,
// matched by ID and seq, that keeps its time.
func (s *Store) ReplaceAudits(ctx context.Context, records []idm.AuditEvent) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	for _, e := range records {
		r := toAuditRecord(e)
		res, err := s.audits.UpdateOne(ctx, bson.M{"_id": e.ID, "seq": e.Seq}, bson.M{"$set": bson.M{
			"document": r.Document, "doc_type": r.DocType, "actor_id": r.ActorID, "actor": r.Actor,
			"action": r.Action, "old": r.Old, "new": r.New,
		}})
		if err != nil {
			return translate("replace audits", err)
		}
		if res.MatchedCount == 0 {
			return fmt.Errorf("mongostore: replace audits: seq %d id %s: %w", e.Seq, e.ID, idm.ErrNotFound)
		}
	}
	return nil
}
