package mongostore

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/c3-pro/idm/idm"
)

// unexpired selects the token with the given hash that has not expired at
// now. Expiry is checked on every read; nothing relies on a TTL index.
func unexpired(hash string, now time.Time) bson.M {
	return bson.M{"_id": hash, "expires": bson.M{"$gt": idm.Timestamp(now)}}
}

// CreateResetToken implements [idm.ResetTokenStore].
func (s *Store) CreateResetToken(ctx context.Context, t idm.ResetToken) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	_, err := s.resets.InsertOne(ctx, toResetTokenRecord(t))
	return translate("create reset token", err)
}

// FindResetToken implements [idm.ResetTokenStore].
func (s *Store) FindResetToken(ctx context.Context, hash string, now time.Time) (idm.ResetToken, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	var r resetTokenRecord
	if err := s.resets.FindOne(ctx, unexpired(hash, now)).Decode(&r); err != nil {
		return idm.ResetToken{}, translate("find reset token", err)
	}
	return r.token(), nil
}

// ConsumeResetToken implements [idm.ResetTokenStore] with one
// FindOneAndDelete, so that of several concurrent callers exactly one gets
// the token.
func (s *Store) ConsumeResetToken(ctx context.Context, hash string, now time.Time) (idm.ResetToken, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	var r resetTokenRecord
	if err := s.resets.FindOneAndDelete(ctx, unexpired(hash, now)).Decode(&r); err != nil {
		return idm.ResetToken{}, translate("consume reset token", err)
	}
	return r.token(), nil
}

// DeleteResetTokens implements [idm.ResetTokenStore].
func (s *Store) DeleteResetTokens(ctx context.Context, userID string) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	_, err := s.resets.DeleteMany(ctx, bson.M{"user_id": userID})
	return translate("delete reset tokens", err)
}

// CountResetTokens implements [idm.ResetTokenStore].
func (s *Store) CountResetTokens(ctx context.Context, userID string, since time.Time) (int, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	n, err := s.resets.CountDocuments(ctx, bson.M{"user_id": userID, "created": bson.M{"$gte": idm.Timestamp(since)}})
	if err != nil {
		return 0, translate("count reset tokens", err)
	}
	return int(n), nil
}

// PurgeExpiredResetTokens implements [idm.ResetTokenStore].
func (s *Store) PurgeExpiredResetTokens(ctx context.Context, now time.Time) (int, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	res, err := s.resets.DeleteMany(ctx, bson.M{"expires": bson.M{"$lte": idm.Timestamp(now)}})
	if err != nil {
		return 0, translate("purge expired reset tokens", err)
	}
	return int(res.DeletedCount), nil
}

// CreateSigningKey implements [idm.KeyStore].
func (s *Store) CreateSigningKey(ctx context.Context, k idm.SigningKey) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	_, err := s.keys.InsertOne(ctx, toSigningKeyRecord(k))
	return translate("create signing key", err)
}

// FindSigningKey implements [idm.KeyStore].
func (s *Store) FindSigningKey(ctx context.Context, name string) (idm.SigningKey, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	var r signingKeyRecord
	if err := s.keys.FindOne(ctx, bson.M{"_id": name}).Decode(&r); err != nil {
		return idm.SigningKey{}, translate("find signing key", err)
	}
	return r.key(), nil
}
