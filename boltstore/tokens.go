package boltstore

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/c3-pro/idm/idm"
)

// Reset tokens live in bucket reset_tokens (hash -> resetRec);
// reset_tokens_by_user holds str(UserID) hash for each token. A token is
// expired at now when its Expires is not after now.

// resetUserKey is the key of a token in reset_tokens_by_user.
func resetUserKey(userID, hash string) []byte {
	return append(appendStr(nil, userID), hash...)
}

// CreateResetToken stores t; a taken hash gives an error that wraps
// [idm.ErrConflict].
func (s *Store) CreateResetToken(ctx context.Context, t idm.ResetToken) error {
	if t.Hash == "" {
		return invalid("reset token without hash")
	}
	val, err := encode(toResetRec(t))
	if err != nil {
		return wrapErr("create reset token", err)
	}
	return s.update(ctx, "create reset token", func(tx *bolt.Tx) error {
		tokens := bucket(tx, bResetTokens)
		if tokens.Get([]byte(t.Hash)) != nil {
			return fmt.Errorf("reset token: %w", idm.ErrConflict)
		}
		if err := tokens.Put([]byte(t.Hash), val); err != nil {
			return err
		}
		return bucket(tx, bResetByUser).Put(resetUserKey(t.UserID, t.Hash), nil)
	})
}

// FindResetToken returns the token with the given hash that has not expired
// at now, or an error that wraps [idm.ErrNotFound]. It does not consume the
// token.
func (s *Store) FindResetToken(ctx context.Context, hash string, now time.Time) (idm.ResetToken, error) {
	var t idm.ResetToken
	err := s.view(ctx, "find reset token", func(tx *bolt.Tx) error {
		var err error
		t, err = getResetToken(bucket(tx, bResetTokens), hash, now)
		return err
	})
	return t, err
}

// ConsumeResetToken atomically removes and returns the token with the given
// hash if it has not expired at now, or returns an error that wraps
// [idm.ErrNotFound]. Of several concurrent callers exactly one succeeds.
func (s *Store) ConsumeResetToken(ctx context.Context, hash string, now time.Time) (idm.ResetToken, error) {
	var t idm.ResetToken
	err := s.update(ctx, "consume reset token", func(tx *bolt.Tx) error {
		var err error
		if t, err = getResetToken(bucket(tx, bResetTokens), hash, now); err != nil {
			return err
		}
		return deleteResetToken(tx, t)
	})
	if err != nil {
		return idm.ResetToken{}, err
	}
	return t, nil
}

// DeleteResetTokens removes all tokens of a user.
func (s *Store) DeleteResetTokens(ctx context.Context, userID string) error {
	return s.update(ctx, "delete reset tokens", func(tx *bolt.Tx) error {
		tokens, byUser := bucket(tx, bResetTokens), bucket(tx, bResetByUser)
		prefix := appendStr(nil, userID)
		var keys [][]byte
		c := byUser.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			keys = append(keys, k)
		}
		for _, k := range keys {
			if err := tokens.Delete(k[len(prefix):]); err != nil {
				return err
			}
			if err := byUser.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// CountResetTokens returns how many tokens of a user were created at or
// after since (taken at millisecond precision), expired ones included until
// they are purged.
func (s *Store) CountResetTokens(ctx context.Context, userID string, since time.Time) (int, error) {
	since = idm.Timestamp(since)
	n := 0
	err := s.view(ctx, "count reset tokens", func(tx *bolt.Tx) error {
		tokens := bucket(tx, bResetTokens)
		prefix := appendStr(nil, userID)
		c := bucket(tx, bResetByUser).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			hash := k[len(prefix):]
			v := tokens.Get(hash)
			if v == nil {
				return fmt.Errorf("reset_tokens_by_user names a missing token")
			}
			var r resetRec
			if err := decode(v, &r, nil); err != nil {
				return err
			}
			if !decTime(r.Created).Before(since) {
				n++
			}
		}
		return nil
	})
	return n, err
}

// PurgeExpiredResetTokens removes the tokens that expired at or before now
// and returns how many it removed.
func (s *Store) PurgeExpiredResetTokens(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := s.update(ctx, "purge reset tokens", func(tx *bolt.Tx) error {
		n = 0
		var expired []idm.ResetToken
		err := bucket(tx, bResetTokens).ForEach(func(k, v []byte) error {
			var r resetRec
			if err := decode(v, &r, nil); err != nil {
				return err
			}
			if t := r.token(); expiredAt(t, now) {
				expired = append(expired, t)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, t := range expired {
			if err := deleteResetToken(tx, t); err != nil {
				return err
			}
		}
		n = len(expired)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// expiredAt reports whether t has expired at now.
func expiredAt(t idm.ResetToken, now time.Time) bool {
	return !t.Expires.After(now)
}

func getResetToken(tokens *bolt.Bucket, hash string, now time.Time) (idm.ResetToken, error) {
	var v []byte
	if hash != "" {
		v = tokens.Get([]byte(hash))
	}
	if v == nil {
		return idm.ResetToken{}, fmt.Errorf("reset token: %w", idm.ErrNotFound)
	}
	var r resetRec
	if err := decode(v, &r, nil); err != nil {
		return idm.ResetToken{}, err
	}
	t := r.token()
	if expiredAt(t, now) {
		return idm.ResetToken{}, fmt.Errorf("reset token expired: %w", idm.ErrNotFound)
	}
	return t, nil
}

func deleteResetToken(tx *bolt.Tx, t idm.ResetToken) error {
	if err := bucket(tx, bResetByUser).Delete(resetUserKey(t.UserID, t.Hash)); err != nil {
		return err
	}
	return bucket(tx, bResetTokens).Delete([]byte(t.Hash))
}
