package mongostore

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/c3-pro/idm/idm"
)

// CreateSession implements [idm.SessionStore]. The unique index on
// "id_hash" turns a taken hash into ErrConflict.
func (s *Store) CreateSession(ctx context.Context, x idm.Session) error {
	if x.IDHash == "" {
		return fmt.Errorf("mongostore: create session: no ID hash: %w", idm.ErrInvalid)
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	_, err := s.sessions.InsertOne(ctx, toSessionRecord(x))
	return translateWrite("create session", err)
}

// FindSession implements [idm.SessionStore].
func (s *Store) FindSession(ctx context.Context, idHash string) (idm.Session, error) {
	if idHash == "" {
		return idm.Session{}, fmt.Errorf("mongostore: find session: %w", idm.ErrNotFound)
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	var r sessionRecord
	if err := s.sessions.FindOne(ctx, bson.M{"id_hash": idHash}).Decode(&r); err != nil {
		return idm.Session{}, translate("find session", err)
	}
	return r.session(), nil
}

// TouchSession implements [idm.SessionStore] with one UpdateOne whose $max
// never moves "last_seen" back, whatever the order of concurrent calls.
func (s *Store) TouchSession(ctx context.Context, idHash string, at time.Time) error {
	if idHash == "" {
		return fmt.Errorf("mongostore: touch session: %w", idm.ErrNotFound)
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	res, err := s.sessions.UpdateOne(ctx, bson.M{"id_hash": idHash},
		bson.M{"$max": bson.M{"last_seen": idm.Timestamp(at)}})
	if err != nil {
		return translateWrite("touch session", err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("mongostore: touch session: %w", idm.ErrNotFound)
	}
	return nil
}

// DeleteSession implements [idm.SessionStore].
func (s *Store) DeleteSession(ctx context.Context, idHash string) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	_, err := s.sessions.DeleteOne(ctx, bson.M{"id_hash": idHash})
	return translateWrite("delete session", err)
}

// DeleteUserSessions implements [idm.SessionStore].
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) (int, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	res, err := s.sessions.DeleteMany(ctx, bson.M{"user_id": userID})
	if err != nil {
		return 0, translateWrite("delete user sessions", err)
	}
	return int(res.DeletedCount), nil
}

// PurgeSessions implements [idm.SessionStore].
func (s *Store) PurgeSessions(ctx context.Context, idleBefore, now time.Time) (int, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	res, err := s.sessions.DeleteMany(ctx, bson.M{"$or": bson.A{
		bson.M{"last_seen": bson.M{"$lt": idm.Timestamp(idleBefore)}},
		bson.M{"expires": bson.M{"$lte": idm.Timestamp(now)}},
	}})
	if err != nil {
		return 0, translateWrite("purge sessions", err)
	}
	return int(res.DeletedCount), nil
}
