package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/c3-pro/idm/idm"
)

// Console sessions live in bucket console_sessions (IDHash -> sessionRec);
// console_sessions_by_user holds str(UserID) IDHash for each session.

// sessionUserKey is the key of a session in console_sessions_by_user.
func sessionUserKey(userID, idHash string) []byte {
	return append(appendStr(nil, userID), idHash...)
}

// CreateSession implements [idm.SessionStore].
func (s *Store) CreateSession(ctx context.Context, x idm.Session) error {
	if x.IDHash == "" {
		return invalid("session without ID hash")
	}
	val, err := encode(toSessionRec(x))
	if err != nil {
		return wrapErr("create session", err)
	}
	return s.update(ctx, "create session", func(tx *bolt.Tx) error {
		sessions := bucket(tx, bSessions)
		if sessions.Get([]byte(x.IDHash)) != nil {
			return fmt.Errorf("session: %w", idm.ErrConflict)
		}
		if err := sessions.Put([]byte(x.IDHash), val); err != nil {
			return err
		}
		return bucket(tx, bSessionsByUsr).Put(sessionUserKey(x.UserID, x.IDHash), nil)
	})
}

// FindSession implements [idm.SessionStore].
func (s *Store) FindSession(ctx context.Context, idHash string) (idm.Session, error) {
	var x idm.Session
	err := s.view(ctx, "find session", func(tx *bolt.Tx) error {
		var err error
		x, err = getSession(bucket(tx, bSessions), idHash)
		return err
	})
	if err != nil {
		return idm.Session{}, err
	}
	return x, nil
}

// TouchSession implements [idm.SessionStore].
func (s *Store) TouchSession(ctx context.Context, idHash string, at time.Time) error {
	at = idm.Timestamp(at)
	return s.update(ctx, "touch session", func(tx *bolt.Tx) error {
		sessions := bucket(tx, bSessions)
		x, err := getSession(sessions, idHash)
		if err != nil {
			return err
		}
		if !at.After(x.LastSeen) {
			return nil
		}
		x.LastSeen = at
		val, err := encode(toSessionRec(x))
		if err != nil {
			return err
		}
		return sessions.Put([]byte(idHash), val)
	})
}

// DeleteSession implements [idm.SessionStore].
func (s *Store) DeleteSession(ctx context.Context, idHash string) error {
	return s.update(ctx, "delete session", func(tx *bolt.Tx) error {
		x, err := getSession(bucket(tx, bSessions), idHash)
		if errors.Is(err, idm.ErrNotFound) {
			return nil // none: nothing to do
		}
		if err != nil {
			return err
		}
		return deleteSession(tx, x)
	})
}

// DeleteUserSessions implements [idm.SessionStore].
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) (int, error) {
	n := 0
	err := s.update(ctx, "delete user sessions", func(tx *bolt.Tx) error {
		sessions, byUser := bucket(tx, bSessions), bucket(tx, bSessionsByUsr)
		prefix := appendStr(nil, userID)
		var keys [][]byte
		c := byUser.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			keys = append(keys, k)
		}
		for _, k := range keys {
			if err := sessions.Delete(k[len(prefix):]); err != nil {
				return err
			}
			if err := byUser.Delete(k); err != nil {
				return err
			}
		}
		n = len(keys)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// PurgeSessions implements [idm.SessionStore]. It reads every session: there
// are as many as staff members signed in, a few hundred at most.
func (s *Store) PurgeSessions(ctx context.Context, idleBefore, now time.Time) (int, error) {
	idleBefore, now = idm.Timestamp(idleBefore), idm.Timestamp(now)
	n := 0
	err := s.update(ctx, "purge sessions", func(tx *bolt.Tx) error {
		var ended []idm.Session
		err := bucket(tx, bSessions).ForEach(func(k, v []byte) error {
			var r sessionRec
			if err := decode(v, &r, k); err != nil {
				return err
			}
			if x := r.session(); x.LastSeen.Before(idleBefore) || !x.Expires.After(now) {
				ended = append(ended, x)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, x := range ended {
			if err := deleteSession(tx, x); err != nil {
				return err
			}
		}
		n = len(ended)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

func getSession(sessions *bolt.Bucket, idHash string) (idm.Session, error) {
	var v []byte
	if idHash != "" {
		v = sessions.Get([]byte(idHash))
	}
	if v == nil {
		return idm.Session{}, fmt.Errorf("session: %w", idm.ErrNotFound)
	}
	var r sessionRec
	if err := decode(v, &r, nil); err != nil {
		return idm.Session{}, err
	}
	return r.session(), nil
}

func deleteSession(tx *bolt.Tx, x idm.Session) error {
	if err := bucket(tx, bSessionsByUsr).Delete(sessionUserKey(x.UserID, x.IDHash)); err != nil {
		return err
	}
	return bucket(tx, bSessions).Delete([]byte(x.IDHash))
}
