package mongostore

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/c3-pro/idm/idm"
)

// auditOrder is the order of audit records: oldest first, ties by ID.
var auditOrder = bson.D{{Key: "time", Value: 1}, {Key: "_id", Value: 1}}

// AppendAudit implements [idm.AuditStore].
func (s *Store) AppendAudit(ctx context.Context, e idm.AuditEvent) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	_, err := s.audits.InsertOne(ctx, toAuditRecord(e))
	return translateWrite("append audit", err)
}

// AuditsFor implements [idm.AuditStore].
func (s *Store) AuditsFor(ctx context.Context, documents ...string) ([]idm.AuditEvent, error) {
	if len(documents) == 0 {
		return []idm.AuditEvent{}, nil
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	records, err := findAll[auditRecord](ctx, s.audits, bson.M{"document": bson.M{"$in": documents}}, options.Find().SetSort(auditOrder))
	if err != nil {
		return nil, translate("audits for documents", err)
	}
	return events(records), nil
}

// ListAudits implements [idm.AuditStore]. Actor matches the actor's ID or
// username exactly.
func (s *Store) ListAudits(ctx context.Context, f idm.AuditFilter) ([]idm.AuditEvent, int, error) {
	if err := checkPage(f.Offset, f.Limit); err != nil {
		return nil, 0, err
	}
	filter := bson.M{}
	if f.Actor != "" {
		filter["$or"] = bson.A{bson.M{"actor_id": f.Actor}, bson.M{"actor": f.Actor}}
	}
	between := bson.M{}
	if !f.Since.IsZero() {
		between["$gte"] = idm.Timestamp(f.Since)
	}
	if !f.Until.IsZero() {
		between["$lt"] = idm.Timestamp(f.Until)
	}
	if len(between) > 0 {
		filter["time"] = between
	}
	records, total, err := findPage[auditRecord](ctx, s, s.audits, "list audits", filter, auditOrder, f.Offset, f.Limit)
	if err != nil {
		return nil, 0, err
	}
	return events(records), total, nil
}

func events(records []auditRecord) []idm.AuditEvent {
	out := make([]idm.AuditEvent, len(records))
	for i, r := range records {
		out[i] = r.event()
	}
	return out
}
