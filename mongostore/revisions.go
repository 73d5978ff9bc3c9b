package mongostore

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/c3-pro/idm/idm"
)

// Users, subjects and links keep their revision (see [idm.Store],
// "Revisions") in the field "rev". An update is one conditional write whose
// filter names the record and the revision the caller read, and which
// stores that revision plus one; MongoDB applies a single-document write
// atomically, so of concurrent updates from one revision exactly one matches
// and the others match nothing. A document without "rev" (written before
// revisions existed, or by another tool) counts as revision 0: it reads
// back with Rev 0 and an update from Rev 0 matches it, or one whose "rev"
// is null.

// revFilter returns a filter on key = value and revision rev.
func revFilter(key string, value any, rev int64) bson.M {
	if rev == 0 {
		return bson.M{key: value, "rev": bson.M{"$in": bson.A{int64(0), nil}}} // nil: also a missing field
	}
	return bson.M{key: value, "rev": rev}
}

// whyNoMatch explains a conditional write that matched no document: it reads
// the document that filter selects without its revision and returns an error
// that wraps [idm.ErrNotFound] when there is none and one that wraps
// [idm.ErrStale] when there is one (which, then, had another revision than
// given when the write ran). ctx should already carry the store's timeout.
func whyNoMatch(ctx context.Context, coll *mongo.Collection, op string, filter bson.M, given int64) error {
	var cur struct {
		Rev int64 `bson:"rev"`
	}
	opts := options.FindOne().SetProjection(bson.M{"rev": 1})
	if err := coll.FindOne(ctx, filter, opts).Decode(&cur); err != nil {
		return translate(op, err)
	}
	return fmt.Errorf("mongostore: %s: stored revision %d, not %d: %w", op, cur.Rev, given, idm.ErrStale)
}
