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

// MarkBootstrapped implements [idm.MetaStore] by inserting the one marker
// document: a second insert fails on its _id, so exactly one caller wins.
func (s *Store) MarkBootstrapped(ctx context.Context, at time.Time) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	_, err := s.meta.InsertOne(ctx, markerRecord{ID: bootstrapID, At: idm.Timestamp(at)})
	return translate("mark bootstrapped", err)
}

// Bootstrapped implements [idm.MetaStore].
func (s *Store) Bootstrapped(ctx context.Context) (bool, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	n, err := s.meta.CountDocuments(ctx, bson.M{"_id": bootstrapID})
	if err != nil {
		return false, translate("bootstrapped", err)
	}
	return n > 0, nil
}

// RecordLoginFailure implements [idm.MetaStore]. Each step is one atomic
// single-document operation: count in the current window, else restart an
// expired window, else insert the first counter; when a concurrent caller
// wins the insert, it starts over, so that no failure is lost.
func (s *Store) RecordLoginFailure(ctx context.Context, key string, now time.Time, window time.Duration) (idm.LoginFailures, error) {
	now = idm.Timestamp(now)
	// A window has passed when Since + window <= now, i.e. Since <= cutoff.
	cutoff := now.Add(-window)
	after := options.FindOneAndUpdate().SetReturnDocument(options.After)
	ctx, cancel := s.op(ctx)
	defer cancel()
	for range 5 {
		var r loginFailuresRecord
		err := s.failures.FindOneAndUpdate(ctx,
			bson.M{"_id": key, "since": bson.M{"$gt": cutoff}},
			bson.M{"$inc": bson.M{"count": int64(1)}, "$set": bson.M{"last": now}},
			after).Decode(&r)
		if err == nil {
			return r.failures(), nil
		}
		if !errors.Is(err, mongo.ErrNoDocuments) {
			return idm.LoginFailures{}, translate("record login failure", err)
		}

		err = s.failures.FindOneAndUpdate(ctx,
			bson.M{"_id": key, "since": bson.M{"$lte": cutoff}},
			bson.M{"$set": bson.M{"count": int64(1), "since": now, "last": now}},
			after).Decode(&r)
		if err == nil {
			return r.failures(), nil
		}
		if !errors.Is(err, mongo.ErrNoDocuments) {
			return idm.LoginFailures{}, translate("record login failure", err)
		}

		r = loginFailuresRecord{Key: key, Count: 1, Since: now, Last: now}
		_, err = s.failures.InsertOne(ctx, r)
		if err == nil {
			return r.failures(), nil
		}
		if err = translate("record login failure", err); !errors.Is(err, idm.ErrConflict) {
			return idm.LoginFailures{}, err
		}
		// Someone else inserted the counter first: count in it.
	}
	return idm.LoginFailures{}, fmt.Errorf("mongostore: record login failure: counter keeps changing: %w", idm.ErrConflict)
}

// ReserveLoginAttempt implements [idm.MetaStore]. Each step is one atomic
// single-document operation, so the server's atomicity bounds the count
// across every process that shares the database: count in the current
// window when the count is below max (the filter says so), else restart an
// expired window, else insert the first counter. When none applies the
// counter is at max within its window: the attempt is refused. When a
// concurrent caller wins the insert, it starts over.
//
// On FerretDB v1 a filtered update is atomic only among the requests of one
// connection (see the package documentation): processes with a connection
// each can then exceed max by about one per extra connection.
func (s *Store) ReserveLoginAttempt(ctx context.Context, key string, now time.Time, window time.Duration, max int) (idm.LoginFailures, bool, error) {
	if max < 1 {
		return idm.LoginFailures{}, false, fmt.Errorf("mongostore: reserve login attempt with max %d: %w", max, idm.ErrInvalid)
	}
	now = idm.Timestamp(now)
	cutoff := now.Add(-window) // the window has passed when Since <= cutoff
	after := options.FindOneAndUpdate().SetReturnDocument(options.After)
	ctx, cancel := s.op(ctx)
	defer cancel()
	for range 5 {
		var r loginFailuresRecord
		err := s.failures.FindOneAndUpdate(ctx,
			bson.M{"_id": key, "since": bson.M{"$gt": cutoff}, "count": bson.M{"$lt": int64(max)}},
			bson.M{"$inc": bson.M{"count": int64(1)}, "$set": bson.M{"last": now}},
			after).Decode(&r)
		if err == nil {
			return r.failures(), true, nil
		}
		if !errors.Is(err, mongo.ErrNoDocuments) {
			return idm.LoginFailures{}, false, translate("reserve login attempt", err)
		}

		err = s.failures.FindOneAndUpdate(ctx,
			bson.M{"_id": key, "since": bson.M{"$lte": cutoff}},
			bson.M{"$set": bson.M{"count": int64(1), "since": now, "last": now}},
			after).Decode(&r)
		if err == nil {
			return r.failures(), true, nil
		}
		if !errors.Is(err, mongo.ErrNoDocuments) {
			return idm.LoginFailures{}, false, translate("reserve login attempt", err)
		}

		err = s.failures.FindOne(ctx, bson.M{"_id": key}).Decode(&r)
		if err == nil {
			if r.Since.After(cutoff) && r.Count >= int64(max) {
				return r.failures(), false, nil
			}
			continue // changed meanwhile (reset, or a window ended): try again
		}
		if !errors.Is(err, mongo.ErrNoDocuments) {
			return idm.LoginFailures{}, false, translate("reserve login attempt", err)
		}

		r = loginFailuresRecord{Key: key, Count: 1, Since: now, Last: now}
		_, err = s.failures.InsertOne(ctx, r)
		if err == nil {
			return r.failures(), true, nil
		}
		if err = translate("reserve login attempt", err); !errors.Is(err, idm.ErrConflict) {
			return idm.LoginFailures{}, false, err
		}
		// Someone else inserted the counter first: count in it.
	}
	return idm.LoginFailures{}, false, fmt.Errorf("mongostore: reserve login attempt: counter keeps changing: %w", idm.ErrConflict)
}

// LoginFailures implements [idm.MetaStore].
func (s *Store) LoginFailures(ctx context.Context, key string) (idm.LoginFailures, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	var r loginFailuresRecord
	err := s.failures.FindOne(ctx, bson.M{"_id": key}).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return idm.LoginFailures{Key: key}, nil
	}
	if err != nil {
		return idm.LoginFailures{}, translate("login failures", err)
	}
	return r.failures(), nil
}

// ResetLoginFailures implements [idm.MetaStore].
func (s *Store) ResetLoginFailures(ctx context.Context, key string) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	_, err := s.failures.DeleteOne(ctx, bson.M{"_id": key})
	return translate("reset login failures", err)
}

// PurgeLoginFailures implements [idm.MetaStore] with one DeleteMany on the
// "last" field.
func (s *Store) PurgeLoginFailures(ctx context.Context, before time.Time) (int, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	res, err := s.failures.DeleteMany(ctx, bson.M{"last": bson.M{"$lt": idm.Timestamp(before)}})
	if err != nil {
		return 0, translate("purge login failures", err)
	}
	return int(res.DeletedCount), nil
}
