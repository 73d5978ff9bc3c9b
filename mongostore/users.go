package mongostore

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/c3-pro/idm/idm"
)

// CreateUser implements [idm.UserStore].
func (s *Store) CreateUser(ctx context.Context, u idm.User) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	u.Rev = 1
	_, err := s.users.InsertOne(ctx, toUserRecord(u))
	return translateWrite("create user", err)
}

// FindUserByID implements [idm.UserStore].
func (s *Store) FindUserByID(ctx context.Context, id string) (idm.User, error) {
	return s.findUser(ctx, bson.M{"_id": id})
}

// FindUserByUsername implements [idm.UserStore].
func (s *Store) FindUserByUsername(ctx context.Context, username string) (idm.User, error) {
	return s.findUser(ctx, bson.M{"username_key": usernameKey(username)})
}

func (s *Store) findUser(ctx context.Context, filter bson.M) (idm.User, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	var r userRecord
	if err := s.users.FindOne(ctx, filter).Decode(&r); err != nil {
		return idm.User{}, translate("find user", err)
	}
	return r.user(), nil
}

// UpdateUser implements [idm.UserStore] with one ReplaceOne whose filter
// requires the given revision (see revFilter). A taken username is a unique
// index violation ([idm.ErrConflict]); a stale revision matches nothing, and
// a second read tells a missing user from a changed one.
func (s *Store) UpdateUser(ctx context.Context, u idm.User) error {
	const op = "update user"
	ctx, cancel := s.op(ctx)
	defer cancel()
	given := u.Rev
	u.Rev++
	res, err := s.users.ReplaceOne(ctx, revFilter("_id", u.ID, given), toUserRecord(u))
	if err != nil {
		return translateWrite(op, err)
	}
	if res.MatchedCount == 0 {
		return whyNoMatch(ctx, s.users, op+" "+u.ID, bson.M{"_id": u.ID}, given)
	}
	return nil
}

// DeleteUser implements [idm.UserStore].
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return s.deleteOne(ctx, s.users, "delete user "+id, bson.M{"_id": id})
}

// ListUsers implements [idm.UserStore]. Users are ordered by their
// username ("username_key").
func (s *Store) ListUsers(ctx context.Context, f idm.UserFilter) ([]idm.User, int, error) {
	if err := checkPage(f.Offset, f.Limit); err != nil {
		return nil, 0, err
	}
	filter := bson.M{}
	if f.Search != "" {
		filter["username"] = containsFold(f.Search)
	}
	sort := bson.D{{Key: "username_key", Value: 1}, {Key: "_id", Value: 1}}
	records, total, err := findPage[userRecord](ctx, s, s.users, "list users", filter, sort, f.Offset, f.Limit)
	if err != nil {
		return nil, 0, err
	}
	users := make([]idm.User, len(records))
	for i, r := range records {
		users[i] = r.user()
	}
	return users, total, nil
}

// CountAdmins implements [idm.UserStore].
func (s *Store) CountAdmins(ctx context.Context) (int, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	n, err := s.users.CountDocuments(ctx, bson.M{"admin": true, "disabled": false})
	if err != nil {
		return 0, translate("count admins", err)
	}
	return int(n), nil
}

// notFound returns an error that wraps idm.ErrNotFound.
func notFound(format string, args ...any) error {
	return fmt.Errorf("mongostore: "+format+": %w", append(args, idm.ErrNotFound)...)
}

// deleteOne deletes the document that filter selects, or returns
// idm.ErrNotFound.
func (s *Store) deleteOne(ctx context.Context, coll *mongo.Collection, op string, filter bson.M) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	res, err := coll.DeleteOne(ctx, filter)
	if err != nil {
		return translateWrite(op, err)
	}
	if res.DeletedCount == 0 {
		return notFound("%s", op)
	}
	return nil
}

// checkPage refuses a negative offset or limit.
func checkPage(offset, limit int) error {
	switch {
	case offset < 0:
		return idm.E(idm.ErrInvalid, "offset must not be negative")
	case limit < 0:
		return idm.E(idm.ErrInvalid, "limit must not be negative")
	}
	return nil
}

// containsFold matches strings that contain s, compared case-insensitively
// and taken literally (regular-expression characters in s are escaped).
func containsFold(s string) bson.Regex {
	return bson.Regex{Pattern: regexp.QuoteMeta(s), Options: "i"}
}

// hasPrefixFold matches strings that start with s, compared
// case-insensitively and taken literally.
func hasPrefixFold(s string) bson.Regex {
	return bson.Regex{Pattern: "^" + regexp.QuoteMeta(s), Options: "i"}
}

// findPage returns the documents that filter selects, in the given order,
// from offset on and at most limit of them (0: no limit), and how many
// documents the filter selects in all.
func findPage[R any](ctx context.Context, s *Store, coll *mongo.Collection, op string, filter any, sort bson.D, offset, limit int) ([]R, int, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	total, err := coll.CountDocuments(ctx, filter)
	if err != nil {
		return nil, 0, translate(op, err)
	}
	if int64(offset) >= total {
		return []R{}, int(total), nil
	}
	opts := options.Find().SetSort(sort).SetSkip(int64(offset))
	if limit > 0 {
		opts.SetLimit(int64(limit))
	}
	records, err := findAll[R](ctx, coll, filter, opts)
	if err != nil {
		return nil, 0, translate(op, err)
	}
	return records, int(total), nil
}

// findAll decodes every document that a find returns. ctx should already
// carry the store's timeout.
func findAll[R any](ctx context.Context, coll *mongo.Collection, filter any, opts *options.FindOptionsBuilder) ([]R, error) {
	cur, err := coll.Find(ctx, filter, opts)
	if err != nil {
		return nil, err
	}
	records := []R{}
	if err := cur.All(ctx, &records); err != nil {
		return nil, err
	}
	return records, nil
}

// AcceptTOTPStep implements [idm.UserStore] with one conditional
// UpdateOne, which is atomic on one document on MongoDB. (FerretDB does not
// make conditional updates atomic across connections; see the package
// documentation.) When nothing matches, a second read tells a missing user
// from a refused step.
func (s *Store) AcceptTOTPStep(ctx context.Context, id string, step int64) error {
	const op = "accept totp step"
	ctx, cancel := s.op(ctx)
	defer cancel()
	res, err := s.users.UpdateOne(ctx,
		bson.M{"_id": id, "totp_active": true, "totp_last_step": bson.M{"$lt": step}},
		bson.M{"$set": bson.M{"totp_last_step": step}, "$inc": bson.M{"rev": int64(1)}})
	if err != nil {
		return translateWrite(op, err)
	}
	if res.MatchedCount == 0 {
		if _, err := s.FindUserByID(ctx, id); err != nil {
			return err
		}
		return fmt.Errorf("mongostore: %s %d of user %s: %w", op, step, id, idm.ErrConflict)
	}
	return nil
}

// RecordLogin implements [idm.UserStore] with one UpdateOne whose $max
// never moves last_login back (atomic on one document).
func (s *Store) RecordLogin(ctx context.Context, id string, at time.Time) error {
	const op = "record login"
	ctx, cancel := s.op(ctx)
	defer cancel()
	res, err := s.users.UpdateOne(ctx, bson.M{"_id": id},
		bson.M{"$max": bson.M{"last_login": idm.Timestamp(at)}, "$inc": bson.M{"rev": int64(1)}})
	if err != nil {
		return translateWrite(op, err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("mongostore: %s of user %s: %w", op, id, idm.ErrNotFound)
	}
	return nil
}

// ConsumeTOTPRecovery implements [idm.UserStore] with one conditional
// UpdateOne that pulls the code from the user's list (atomic on one
// document, as AcceptTOTPStep).
func (s *Store) ConsumeTOTPRecovery(ctx context.Context, id, hash string) error {
	const op = "consume recovery code"
	if hash == "" {
		return fmt.Errorf("mongostore: %s of user %s: %w", op, id, idm.ErrNotFound)
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	res, err := s.users.UpdateOne(ctx,
		bson.M{"_id": id, "totp_active": true, "totp_recovery": hash},
		bson.M{"$pull": bson.M{"totp_recovery": hash}, "$inc": bson.M{"rev": int64(1)}})
	if err != nil {
		return translateWrite(op, err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("mongostore: %s of user %s: %w", op, id, idm.ErrNotFound)
	}
	return nil
}
