package boltstore

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/c3-pro/idm/idm"
)

// Users live in bucket users (ID -> userRec); bucket users_by_name maps the
// lower-cased username to the ID and makes usernames unique regardless of
// letter case.

// nameKey is the key of a username in the users_by_name index.
func nameKey(username string) []byte { return []byte(strings.ToLower(username)) }

// CreateUser stores a new user with Rev 1; u.ID must be set. A taken
// username (in any letter case) or ID gives an error that wraps
// [idm.ErrConflict].
func (s *Store) CreateUser(ctx context.Context, u idm.User) error {
	if u.ID == "" || u.Username == "" {
		return invalid("user without ID or username")
	}
	return s.update(ctx, "create user", func(tx *bolt.Tx) error {
		users, names := bucket(tx, bUsers), bucket(tx, bUsersByName)
		if users.Get([]byte(u.ID)) != nil {
			return fmt.Errorf("user ID %s: %w", u.ID, idm.ErrConflict)
		}
		nk := nameKey(u.Username)
		if names.Get(nk) != nil {
			return fmt.Errorf("username %q: %w", u.Username, idm.ErrConflict)
		}
		u.Rev = 1
		if err := putUser(users, u); err != nil {
			return err
		}
		return names.Put(nk, []byte(u.ID))
	})
}

// FindUserByID returns the user with the given ID, or an error that wraps
// [idm.ErrNotFound].
func (s *Store) FindUserByID(ctx context.Context, id string) (idm.User, error) {
	var u idm.User
	err := s.view(ctx, "find user", func(tx *bolt.Tx) error {
		var err error
		u, err = getUser(bucket(tx, bUsers), []byte(id))
		return err
	})
	return u, err
}

// FindUserByUsername returns the user with the given username, compared
// case-insensitively, or an error that wraps [idm.ErrNotFound].
func (s *Store) FindUserByUsername(ctx context.Context, username string) (idm.User, error) {
	var u idm.User
	err := s.view(ctx, "find user by username", func(tx *bolt.Tx) error {
		id := bucket(tx, bUsersByName).Get(nameKey(username))
		if id == nil {
			return fmt.Errorf("username %q: %w", username, idm.ErrNotFound)
		}
		var err error
		u, err = getUser(bucket(tx, bUsers), id)
		return err
	})
	return u, err
}

// UpdateUser replaces the user with u.ID by u, provided the stored user has
// revision u.Rev, and stores it with Rev u.Rev+1. It returns an error that
// wraps [idm.ErrNotFound] when there is no such user, one that wraps
// [idm.ErrStale] when its revision is another, and one that wraps
// [idm.ErrConflict] when the new username is taken by another user.
func (s *Store) UpdateUser(ctx context.Context, u idm.User) error {
	if u.Username == "" {
		return invalid("user without username")
	}
	return s.update(ctx, "update user", func(tx *bolt.Tx) error {
		users, names := bucket(tx, bUsers), bucket(tx, bUsersByName)
		old, err := getUser(users, []byte(u.ID))
		if err != nil {
			return err
		}
		if old.Rev != u.Rev {
			return stale("user", u.ID, old.Rev, u.Rev)
		}
		u.Rev++
		oldKey, newKey := nameKey(old.Username), nameKey(u.Username)
		if !bytes.Equal(oldKey, newKey) {
			if names.Get(newKey) != nil {
				return fmt.Errorf("username %q: %w", u.Username, idm.ErrConflict)
			}
			if err := names.Delete(oldKey); err != nil {
				return err
			}
			if err := names.Put(newKey, []byte(u.ID)); err != nil {
				return err
			}
		}
		return putUser(users, u)
	})
}

// DeleteUser removes a user, or returns an error that wraps
// [idm.ErrNotFound].
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return s.update(ctx, "delete user", func(tx *bolt.Tx) error {
		users := bucket(tx, bUsers)
		u, err := getUser(users, []byte(id))
		if err != nil {
			return err
		}
		if err := bucket(tx, bUsersByName).Delete(nameKey(u.Username)); err != nil {
			return err
		}
		return users.Delete([]byte(id))
	})
}

// ListUsers returns a page of the users whose username contains f.Search
// (case-insensitively), ordered by username, and the number of users that
// match in all.
func (s *Store) ListUsers(ctx context.Context, f idm.UserFilter) ([]idm.User, int, error) {
	lo, hi, err := window(f.Offset, f.Limit)
	if err != nil {
		return nil, 0, fmt.Errorf("boltstore: list users: %w", err)
	}
	search := []byte(strings.ToLower(f.Search))
	out := []idm.User{}
	total := 0
	err = s.view(ctx, "list users", func(tx *bolt.Tx) error {
		users := bucket(tx, bUsers)
		c := bucket(tx, bUsersByName).Cursor()
		for k, id := c.First(); k != nil; k, id = c.Next() {
			if !bytes.Contains(k, search) {
				continue
			}
			if total >= lo && total < hi {
				u, err := getUser(users, id)
				if err != nil {
					return err
				}
				out = append(out, u)
			}
			total++
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// CountAdmins returns the number of enabled admins.
func (s *Store) CountAdmins(ctx context.Context) (int, error) {
	n := 0
	err := s.view(ctx, "count admins", func(tx *bolt.Tx) error {
		return bucket(tx, bUsers).ForEach(func(k, v []byte) error {
			var r userRec
			if err := decode(v, &r, k); err != nil {
				return err
			}
			if r.Admin && !r.Disabled {
				n++
			}
			return nil
		})
	})
	return n, err
}

func getUser(users *bolt.Bucket, id []byte) (idm.User, error) {
	v := users.Get(id)
	if v == nil {
		return idm.User{}, fmt.Errorf("user %q: %w", id, idm.ErrNotFound)
	}
	var r userRec
	if err := decode(v, &r, id); err != nil {
		return idm.User{}, err
	}
	return r.user(), nil
}

func putUser(users *bolt.Bucket, u idm.User) error {
	b, err := encode(toUserRec(u))
	if err != nil {
		return err
	}
	return users.Put([]byte(u.ID), b)
}

// window returns the half-open range [lo, hi) of the positions of a page at
// offset with at most limit entries (0 for no limit). A negative offset or
// limit gives an error that wraps [idm.ErrInvalid].
func window(offset, limit int) (lo, hi int, err error) {
	if offset < 0 || limit < 0 {
		return 0, 0, invalid("negative offset %d or limit %d", offset, limit)
	}
	if limit == 0 || offset > math.MaxInt-limit {
		return offset, math.MaxInt, nil
	}
	return offset, offset + limit, nil
}
