package mongostore

import (
	"context"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/c3-pro/idm/idm"
)

// CreateSubject implements [idm.SubjectStore].
func (s *Store) CreateSubject(ctx context.Context, sub idm.Subject) error {
	sub.Rev = 1
	r, err := toSubjectRecord(sub)
	if err != nil {
		return err
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	_, err = s.subjects.InsertOne(ctx, r)
	return translateWrite("create subject", err)
}

// FindSubject implements [idm.SubjectStore].
func (s *Store) FindSubject(ctx context.Context, sssid string) (idm.Subject, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	var r subjectRecord
	if err := s.subjects.FindOne(ctx, bson.M{"sssid": sssid}).Decode(&r); err != nil {
		return idm.Subject{}, translate("find subject", err)
	}
	sub, err := r.subject()
	if err != nil {
		return idm.Subject{}, translate("find subject", err)
	}
	return sub, nil
}

// UpdateSubject implements [idm.SubjectStore] with one UpdateOne whose
// filter requires the given revision (see revFilter); a stale revision
// matches nothing, and a second read tells a missing subject from a changed
// one. The subject keeps its stored ID; s.ID is ignored.
func (s *Store) UpdateSubject(ctx context.Context, sub idm.Subject) error {
	const op = "update subject"
	r, err := toSubjectRecord(sub)
	if err != nil {
		return err
	}
	set := bson.M{
		"site":           r.Site,
		"name":           r.Name,
		"bday":           r.Bday,
		"email":          r.Email,
		"date_invited":   r.DateInvited,
		"date_consented": r.DateConsented,
		"date_enrolled":  r.DateEnrolled,
		"date_withdrawn": r.DateWithdrawn,
		"created":        r.Created,
		"changed":        r.Changed,
		"extra":          r.Extra,
		"rev":            sub.Rev + 1,
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	res, err := s.subjects.UpdateOne(ctx, revFilter("sssid", sub.SSSID, sub.Rev), bson.M{"$set": set})
	if err != nil {
		return translateWrite(op, err)
	}
	if res.MatchedCount == 0 {
		return whyNoMatch(ctx, s.subjects, fmt.Sprintf("%s %q", op, sub.SSSID), bson.M{"sssid": sub.SSSID}, sub.Rev)
	}
	return nil
}

// DeleteSubject implements [idm.SubjectStore].
func (s *Store) DeleteSubject(ctx context.Context, sssid string) error {
	return s.deleteOne(ctx, s.subjects, "delete subject "+sssid, bson.M{"sssid": sssid})
}

// ListSubjects implements [idm.SubjectStore]. Strings sort by their bytes
// (no collation), "" first.
func (s *Store) ListSubjects(ctx context.Context, f idm.SubjectFilter) ([]idm.Subject, int, error) {
	if err := checkPage(f.Offset, f.Limit); err != nil {
		return nil, 0, err
	}
	col := f.OrderCol
	if col == "" {
		col = "sssid"
	}
	// The record's field names are the column names; only listed ones are
	// accepted, so a client never picks an arbitrary field.
	if !slices.Contains(idm.SubjectColumns(), col) {
		return nil, 0, idm.E(idm.ErrInvalid, "unknown order column "+col)
	}
	dir := 1
	if f.Desc {
		dir = -1
	}
	sort := bson.D{{Key: col, Value: dir}}
	if col != "sssid" {
		sort = append(sort, bson.E{Key: "sssid", Value: 1})
	}
	filter := bson.M{}
	if f.Sites != nil {
		filter["site"] = bson.M{"$in": f.Sites}
	}
	if f.Search != "" {
		filter["$or"] = bson.A{
			bson.M{"sssid": containsFold(f.Search)},
			bson.M{"name": containsFold(f.Search)},
			bson.M{"bday": hasPrefixFold(f.Search)},
		}
	}
	records, total, err := findPage[subjectRecord](ctx, s, s.subjects, "list subjects", filter, sort, f.Offset, f.Limit)
	if err != nil {
		return nil, 0, err
	}
	subjects := make([]idm.Subject, len(records))
	for i, r := range records {
		if subjects[i], err = r.subject(); err != nil {
			return nil, 0, translate("list subjects", err)
		}
	}
	return subjects, total, nil
}
