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

// CreateLink implements [idm.LinkStore].
func (s *Store) CreateLink(ctx context.Context, l idm.Link) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	l.Rev = 1
	_, err := s.links.InsertOne(ctx, toLinkRecord(l))
	return translateWrite("create link", err)
}

// FindLink implements [idm.LinkStore].
func (s *Store) FindLink(ctx context.Context, id string) (idm.Link, error) {
	return s.findLink(ctx, bson.M{"_id": id})
}

// FindLinkByJWTHash implements [idm.LinkStore].
func (s *Store) FindLinkByJWTHash(ctx context.Context, hash string) (idm.Link, error) {
	if hash == "" {
		return idm.Link{}, notFound("find link by JWT hash: empty hash")
	}
	return s.findLink(ctx, bson.M{"jwt_hash": hash})
}

func (s *Store) findLink(ctx context.Context, filter bson.M) (idm.Link, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	var r linkRecord
	if err := s.links.FindOne(ctx, filter).Decode(&r); err != nil {
		return idm.Link{}, translate("find link", err)
	}
	return r.link(), nil
}

// UpdateLink implements [idm.LinkStore] with one ReplaceOne whose filter
// requires the given revision (see revFilter); a stale revision, such as one
// read before a concurrent EstablishLink, matches nothing, and a second read
// tells a missing link from a changed one.
func (s *Store) UpdateLink(ctx context.Context, l idm.Link) error {
	const op = "update link"
	ctx, cancel := s.op(ctx)
	defer cancel()
	given := l.Rev
	l.Rev++
	res, err := s.links.ReplaceOne(ctx, revFilter("_id", l.ID, given), toLinkRecord(l))
	if err != nil {
		return translateWrite(op, err)
	}
	if res.MatchedCount == 0 {
		return whyNoMatch(ctx, s.links, op+" "+l.ID, bson.M{"_id": l.ID}, given)
	}
	return nil
}

// DeleteLink implements [idm.LinkStore].
func (s *Store) DeleteLink(ctx context.Context, id string) error {
	return s.deleteOne(ctx, s.links, "delete link "+id, bson.M{"_id": id})
}

// LinksForSubjects implements [idm.LinkStore].
func (s *Store) LinksForSubjects(ctx context.Context, sssids ...string) ([]idm.Link, error) {
	if len(sssids) == 0 {
		return []idm.Link{}, nil
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	opts := options.Find().SetSort(bson.D{{Key: "created", Value: 1}, {Key: "_id", Value: 1}})
	records, err := findAll[linkRecord](ctx, s.links, bson.M{"sssid": bson.M{"$in": sssids}}, opts)
	if err != nil {
		return nil, translate("links for subjects", err)
	}
	links := make([]idm.Link, len(records))
	for i, r := range records {
		links[i] = r.link()
	}
	return links, nil
}

// EstablishLink implements [idm.LinkStore] with one FindOneAndUpdate whose
// filter matches only an unlinked, unrevoked link, so that of several
// concurrent callers exactly one changes it; it also raises the link's
// revision ($inc creates "rev" as 1 on a document without it). When nothing matched, a second
// read tells a missing or revoked link (ErrNotFound) from a linked one
// (ErrConflict).
func (s *Store) EstablishLink(ctx context.Context, id, linkedTo, system string, on time.Time) (idm.Link, error) {
	if linkedTo == "" {
		return idm.Link{}, idm.E(idm.ErrInvalid, "a link must be established to a patient identifier")
	}
	on = idm.Timestamp(on)
	ctx, cancel := s.op(ctx)
	defer cancel()
	filter := bson.M{
		"_id":       id,
		"linked_to": bson.M{"$in": bson.A{"", nil}}, // nil: also a missing field
		"revoked":   nil,                            // missing or null
	}
	update := bson.M{
		"$set": bson.M{
			"linked_to":     linkedTo,
			"linked_system": system,
			"linked_on":     on,
			"changed":       on,
		},
		"$inc": bson.M{"rev": int64(1)},
	}
	opts := options.FindOneAndUpdate().SetReturnDocument(options.After)
	for attempt := 0; ; attempt++ {
		var r linkRecord
		err := s.links.FindOneAndUpdate(ctx, filter, update, opts).Decode(&r)
		if err == nil {
			return r.link(), nil
		}
		if !errors.Is(err, mongo.ErrNoDocuments) {
			return idm.Link{}, translateWrite("establish link", err)
		}
		// Nothing matched: find out why.
		cur, err := s.findLink(ctx, bson.M{"_id": id})
		switch {
		case err != nil:
			return idm.Link{}, err
		case !cur.Revoked.IsZero():
			return idm.Link{}, notFound("establish link %s: revoked", id)
		case cur.LinkedTo != "":
			return idm.Link{}, fmt.Errorf("mongostore: establish link %s: already linked: %w", id, idm.ErrConflict)
		case attempt >= 2:
			return idm.Link{}, fmt.Errorf("mongostore: establish link %s: keeps changing: %w", id, idm.ErrConflict)
		}
		// The link was created, or replaced, between the two reads: try
		// again.
	}
}
