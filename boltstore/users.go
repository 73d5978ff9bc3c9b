package boltstore

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/c3-pro/idm/idm"
)

// Users live in bucket users (ID -> userRec); bucket users_by_name maps the
// username (as given: see nameKey) to the ID and makes usernames unique. Decoded, they are also kept in a userCache that answers every
// read. Like the subjects' cache it is loaded when the store opens and
// changed only after a write has committed, under s.wmu, so it always equals
// the committed state.

// userCache holds all users. idm.User holds no slices or maps, so copying a
// value copies it entirely.
type userCache struct {
	byID   map[string]idm.User
	byName map[string]string // username -> ID
	// names holds the keys of byName, sorted byte-wise, for ListUsers.
	names []string
}

func newUserCache() *userCache {
	return &userCache{byID: map[string]idm.User{}, byName: map[string]string{}}
}

// add puts a user into the cache; no user with its ID or name may be in it.
func (c *userCache) add(u idm.User) {
	c.byID[u.ID] = u
	name := u.Username
	c.byName[name] = u.ID
	i, found := slices.BinarySearch(c.names, name)
	if !found {
		c.names = slices.Insert(c.names, i, name)
	}
}

// remove takes a user, as the cache holds it, out of the cache.
func (c *userCache) remove(u idm.User) {
	delete(c.byID, u.ID)
	name := u.Username
	if c.byName[name] != u.ID {
		return
	}
	delete(c.byName, name)
	if i, found := slices.BinarySearch(c.names, name); found {
		c.names = slices.Delete(c.names, i, i+1)
	}
}

// loadUsers fills the users' cache from the users bucket.
func (s *Store) loadUsers() error {
	c := newUserCache()
	err := s.db.View(func(tx *bolt.Tx) error {
		return bucket(tx, bUsers).ForEach(func(k, v []byte) error {
			var r userRec
			if err := decode(v, &r, k); err != nil {
				return err
			}
			c.byID[r.ID] = r.user()
			c.byName[r.Username] = r.ID
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("load users: %w", err)
	}
	c.names = slices.Sorted(maps.Keys(c.byName))
	s.umu.Lock()
	s.users = c
	s.umu.Unlock()
	return nil
}

// storedUser returns u as a read gives it back after u was written: with
// its times passed through the record encoding.
func storedUser(u idm.User) idm.User { return toUserRec(u).user() }

// nameKey is the key of a username in the users_by_name index: the username
// as given. Callers normalise usernames (idm.UsernameKey) before they store
// or look them up; the store applies no rule of its own. (Files written
// before keyed the lower-cased username, which callers had lower-cased
// already.)
func nameKey(username string) []byte { return []byte(username) }

// CreateUser stores a new user with Rev 1; u.ID must be set. A taken
// username or ID gives an error that wraps
// [idm.ErrConflict].
func (s *Store) CreateUser(ctx context.Context, u idm.User) error {
	if u.ID == "" || u.Username == "" {
		return invalid("user without ID or username")
	}
	u.Rev = 1
	u = storedUser(u)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	err := s.update(ctx, "create user", func(tx *bolt.Tx) error {
		users, names := bucket(tx, bUsers), bucket(tx, bUsersByName)
		if users.Get([]byte(u.ID)) != nil {
			return fmt.Errorf("user ID %s: %w", u.ID, idm.ErrConflict)
		}
		nk := nameKey(u.Username)
		if names.Get(nk) != nil {
			return fmt.Errorf("username %q: %w", u.Username, idm.ErrConflict)
		}
		if err := putUser(users, u); err != nil {
			return err
		}
		return names.Put(nk, []byte(u.ID))
	})
	if err != nil {
		return err
	}
	s.umu.Lock()
	s.users.add(u)
	s.umu.Unlock()
	return nil
}

// FindUserByID returns the user with the given ID, or an error that wraps
// [idm.ErrNotFound].
func (s *Store) FindUserByID(ctx context.Context, id string) (idm.User, error) {
	const op = "find user"
	if err := s.checkOpen(ctx, op); err != nil {
		return idm.User{}, err
	}
	s.umu.RLock()
	u, ok := s.users.byID[id]
	s.umu.RUnlock()
	if !ok {
		return idm.User{}, fmt.Errorf("boltstore: %s: user %q: %w", op, id, idm.ErrNotFound)
	}
	return idm.CloneUser(u), nil
}

// FindUserByUsername returns the user with the given username, compared
// as given, or an error that wraps [idm.ErrNotFound].
func (s *Store) FindUserByUsername(ctx context.Context, username string) (idm.User, error) {
	const op = "find user by username"
	if err := s.checkOpen(ctx, op); err != nil {
		return idm.User{}, err
	}
	s.umu.RLock()
	id, ok := s.users.byName[username]
	u := s.users.byID[id]
	s.umu.RUnlock()
	if !ok {
		return idm.User{}, fmt.Errorf("boltstore: %s: username %q: %w", op, username, idm.ErrNotFound)
	}
	return idm.CloneUser(u), nil
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
	given := u.Rev
	u.Rev++
	u = storedUser(u)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var old idm.User
	err := s.update(ctx, "update user", func(tx *bolt.Tx) error {
		users, names := bucket(tx, bUsers), bucket(tx, bUsersByName)
		var err error
		old, err = getUser(users, []byte(u.ID))
		if err != nil {
			return err
		}
		if old.Rev != given {
			return stale("user", u.ID, old.Rev, given)
		}
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
	if err != nil {
		return err
	}
	s.umu.Lock()
	s.users.remove(old)
	s.users.add(u)
	s.umu.Unlock()
	return nil
}

// DeleteUser removes a user, or returns an error that wraps
// [idm.ErrNotFound].
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var old idm.User
	err := s.update(ctx, "delete user", func(tx *bolt.Tx) error {
		users := bucket(tx, bUsers)
		var err error
		old, err = getUser(users, []byte(id))
		if err != nil {
			return err
		}
		if err := bucket(tx, bUsersByName).Delete(nameKey(old.Username)); err != nil {
			return err
		}
		return users.Delete([]byte(id))
	})
	if err != nil {
		return err
	}
	s.umu.Lock()
	s.users.remove(old)
	s.umu.Unlock()
	return nil
}

// ListUsers returns a page of the users whose username contains f.Search
// (case-insensitively), ordered by the username, and the number
// of users that match in all. It answers from memory.
func (s *Store) ListUsers(ctx context.Context, f idm.UserFilter) ([]idm.User, int, error) {
	const op = "list users"
	lo, hi, err := window(f.Offset, f.Limit)
	if err != nil {
		return nil, 0, fmt.Errorf("boltstore: %s: %w", op, err)
	}
	if err := s.checkOpen(ctx, op); err != nil {
		return nil, 0, err
	}
	search := strings.ToLower(f.Search)
	out := []idm.User{}
	total := 0
	s.umu.RLock()
	defer s.umu.RUnlock()
	for _, name := range s.users.names {
		if !strings.Contains(strings.ToLower(name), search) {
			continue
		}
		if total >= lo && total < hi {
			out = append(out, idm.CloneUser(s.users.byID[s.users.byName[name]]))
		}
		total++
	}
	return out, total, nil
}

// CountAdmins returns the number of enabled admins. It answers from memory.
func (s *Store) CountAdmins(ctx context.Context) (int, error) {
	if err := s.checkOpen(ctx, "count admins"); err != nil {
		return 0, err
	}
	n := 0
	s.umu.RLock()
	defer s.umu.RUnlock()
	for _, u := range s.users.byID {
		if u.Admin && !u.Disabled {
			n++
		}
	}
	return n, nil
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

// AcceptTOTPStep implements [idm.UserStore]: one write transaction checks
// and raises the user's last accepted step.
func (s *Store) AcceptTOTPStep(ctx context.Context, id string, step int64) error {
	return s.changeUser(ctx, "accept totp step", id, func(u *idm.User) error {
		if !u.TOTP.Active || u.TOTP.LastStep >= step {
			return fmt.Errorf("totp step %d of user %s: %w", step, id, idm.ErrConflict)
		}
		u.TOTP.LastStep = step
		return nil
	})
}

// RecordLogin implements [idm.UserStore]: one write transaction raises the
// user's LastLogin.
func (s *Store) RecordLogin(ctx context.Context, id string, at time.Time) error {
	at = idm.Timestamp(at)
	return s.changeUser(ctx, "record login", id, func(u *idm.User) error {
		if at.After(u.LastLogin) {
			u.LastLogin = at
		}
		return nil
	})
}

// ConsumeTOTPRecovery implements [idm.UserStore]: one write transaction
// finds and removes the code.
func (s *Store) ConsumeTOTPRecovery(ctx context.Context, id, hash string) error {
	return s.changeUser(ctx, "consume recovery code", id, func(u *idm.User) error {
		if hash != "" && u.TOTP.Active {
			for i, h := range u.TOTP.Recovery {
				if h == hash {
					u.TOTP.Recovery = idm.CompactRecovery(u.TOTP.Recovery, i)
					return nil
				}
			}
		}
		return fmt.Errorf("recovery code of user %s: %w", id, idm.ErrNotFound)
	})
}

// changeUser applies change to the stored user with the given ID and stores
// it with Rev one more, in one write transaction; an error from change
// leaves the user as it was.
func (s *Store) changeUser(ctx context.Context, op, id string, change func(*idm.User) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var old, u idm.User
	err := s.update(ctx, op, func(tx *bolt.Tx) error {
		users := bucket(tx, bUsers)
		var err error
		if old, err = getUser(users, []byte(id)); err != nil {
			return err
		}
		u = old
		if err := change(&u); err != nil {
			return err
		}
		u.Rev++
		return putUser(users, u)
	})
	if err != nil {
		return err
	}
	s.umu.Lock()
	s.users.remove(old)
	s.users.add(u)
	s.umu.Unlock()
	return nil
}
