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

// CreateSigningKey stores k under k.Name; a taken name gives an error that
// wraps [idm.ErrConflict].
func (s *Store) CreateSigningKey(ctx context.Context, k idm.SigningKey) error {
	if k.Name == "" {
		return invalid("signing key without name")
	}
	val, err := encode(toKeyRec(k))
	if err != nil {
		return wrapErr("create signing key", err)
	}
	return s.update(ctx, "create signing key", func(tx *bolt.Tx) error {
		keys := bucket(tx, bKeys)
		if keys.Get([]byte(k.Name)) != nil {
			return fmt.Errorf("signing key %q: %w", k.Name, idm.ErrConflict)
		}
		return keys.Put([]byte(k.Name), val)
	})
}

// FindSigningKey returns the key stored under name, or an error that wraps
// [idm.ErrNotFound].
func (s *Store) FindSigningKey(ctx context.Context, name string) (idm.SigningKey, error) {
	var k idm.SigningKey
	err := s.view(ctx, "find signing key", func(tx *bolt.Tx) error {
		var v []byte
		if name != "" {
			v = bucket(tx, bKeys).Get([]byte(name))
		}
		if v == nil {
			return fmt.Errorf("signing key %q: %w", name, idm.ErrNotFound)
		}
		var r keyRec
		if err := decode(v, &r, []byte(name)); err != nil {
			return err
		}
		k = r.key()
		return nil
	})
	return k, err
}

// MarkBootstrapped sets the one-time bootstrap marker. It returns an error
// that wraps [idm.ErrConflict] if the marker is already set: of several
// concurrent callers exactly one succeeds.
func (s *Store) MarkBootstrapped(ctx context.Context, at time.Time) error {
	return s.update(ctx, "mark bootstrapped", func(tx *bolt.Tx) error {
		meta := bucket(tx, bMeta)
		if meta.Get([]byte(kBootstrapped)) != nil {
			return fmt.Errorf("already bootstrapped: %w", idm.ErrConflict)
		}
		return meta.Put([]byte(kBootstrapped), appendTime(nil, idm.Timestamp(at)))
	})
}

// Bootstrapped reports whether the bootstrap marker is set.
func (s *Store) Bootstrapped(ctx context.Context) (bool, error) {
	var set bool
	err := s.view(ctx, "bootstrapped", func(tx *bolt.Tx) error {
		set = bucket(tx, bMeta).Get([]byte(kBootstrapped)) != nil
		return nil
	})
	return set, err
}

// RecordLoginFailure counts one failed login for key at now and returns the
// counter. A counter whose window (Since + window) has passed at now starts
// again at 1.
func (s *Store) RecordLoginFailure(ctx context.Context, key string, now time.Time, window time.Duration) (idm.LoginFailures, error) {
	if key == "" {
		return idm.LoginFailures{}, invalid("login failure without key")
	}
	now = idm.Timestamp(now)
	var f idm.LoginFailures
	err := s.update(ctx, "record login failure", func(tx *bolt.Tx) error {
		b := bucket(tx, bLoginFailures)
		var err error
		if f, err = getFailures(b, key); err != nil {
			return err
		}
		if f.Count == 0 || !now.Before(f.Since.Add(window)) {
			f = idm.LoginFailures{Key: key, Since: now}
		}
		f.Count++
		f.Last = now
		val, err := encode(toFailRec(f))
		if err != nil {
			return err
		}
		return b.Put([]byte(key), val)
	})
	if err != nil {
		return idm.LoginFailures{}, err
	}
	return f, nil
}

// ReserveLoginAttempt takes a place for one password check of key at now in
// one write transaction: it counts it unless the counter is at max within
// its window, and reports whether it did (see [idm.MetaStore]).
func (s *Store) ReserveLoginAttempt(ctx context.Context, key string, now time.Time, window time.Duration, max int) (idm.LoginFailures, bool, error) {
	switch {
	case key == "":
		return idm.LoginFailures{}, false, invalid("login attempt without key")
	case max < 1:
		return idm.LoginFailures{}, false, invalid("login attempt reserved with max %d", max)
	}
	now = idm.Timestamp(now)
	var (
		f  idm.LoginFailures
		ok bool
	)
	err := s.update(ctx, "reserve login attempt", func(tx *bolt.Tx) error {
		ok = false // the function may run again (see commit.go)
		b := bucket(tx, bLoginFailures)
		var err error
		if f, err = getFailures(b, key); err != nil {
			return err
		}
		if f.Count == 0 || !now.Before(f.Since.Add(window)) {
			f = idm.LoginFailures{Key: key, Since: now}
		} else if f.Count >= max {
			return errRefused // roll back: nothing to write, nothing to sync
		}
		f.Count++
		f.Last = now
		ok = true
		val, err := encode(toFailRec(f))
		if err != nil {
			return err
		}
		return b.Put([]byte(key), val)
	})
	if err != nil && !errors.Is(err, errRefused) {
		return idm.LoginFailures{}, false, err
	}
	return f, ok, nil
}

// errRefused ends the write transaction of a refused reservation.
var errRefused = errors.New("boltstore: login attempt refused")

// LoginFailures returns the counter for key; a zero counter (Count 0, Key
// set) when there is none.
func (s *Store) LoginFailures(ctx context.Context, key string) (idm.LoginFailures, error) {
	var f idm.LoginFailures
	err := s.view(ctx, "login failures", func(tx *bolt.Tx) error {
		var err error
		f, err = getFailures(bucket(tx, bLoginFailures), key)
		return err
	})
	return f, err
}

// ResetLoginFailures removes the counter for key.
func (s *Store) ResetLoginFailures(ctx context.Context, key string) error {
	return s.update(ctx, "reset login failures", func(tx *bolt.Tx) error {
		return bucket(tx, bLoginFailures).Delete([]byte(key))
	})
}

// PurgeLoginFailures removes, in one transaction, the counters whose latest
// failure (Last) is before before, and returns how many it removed; a
// counter with Last equal to before is kept.
func (s *Store) PurgeLoginFailures(ctx context.Context, before time.Time) (int, error) {
	before = idm.Timestamp(before)
	n := 0
	err := s.update(ctx, "purge login failures", func(tx *bolt.Tx) error {
		b := bucket(tx, bLoginFailures)
		var stale [][]byte
		err := b.ForEach(func(k, v []byte) error {
			var r failRec
			if err := decode(v, &r, k); err != nil {
				return err
			}
			if r.failures().Last.Before(before) {
				// k may point into the database's pages: copy it
				// before deleting (bbolt forbids deleting in ForEach).
				stale = append(stale, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range stale {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(stale)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

func getFailures(b *bolt.Bucket, key string) (idm.LoginFailures, error) {
	var v []byte
	if key != "" {
		v = b.Get([]byte(key))
	}
	if v == nil {
		return idm.LoginFailures{Key: key}, nil
	}
	var r failRec
	if err := decode(v, &r, []byte(key)); err != nil {
		return idm.LoginFailures{}, err
	}
	return r.failures(), nil
}
