package boltstore

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/c3-pro/idm/idm"
)

// Links live in bucket links (ID -> linkRec) with two indexes:
// links_by_subject holds the key str(SSSID) time(Created) ID for every link,
// so that a subject's links are one range in creation order, and
// links_by_jwt_hash maps a JWTHash to the link's ID (and keeps it unique).

// linkSubjectKey is the key of a link in links_by_subject.
func linkSubjectKey(sssid string, created time.Time, id string) []byte {
	k := appendStr(make([]byte, 0, 2+len(sssid)+timeKeyLen+len(id)), sssid)
	k = appendTime(k, created)
	return append(k, id...)
}

// CreateLink stores a new link with Rev 1; l.ID must be set. A taken ID or JWTHash gives
// an error that wraps [idm.ErrConflict].
func (s *Store) CreateLink(ctx context.Context, l idm.Link) error {
	if l.ID == "" {
		return invalid("link without ID")
	}
	return s.update(ctx, "create link", func(tx *bolt.Tx) error {
		links := bucket(tx, bLinks)
		if links.Get([]byte(l.ID)) != nil {
			return fmt.Errorf("link %s: %w", l.ID, idm.ErrConflict)
		}
		l.Rev = 1
		return putLink(tx, nil, l)
	})
}

// FindLink returns the link with the given ID, or an error that wraps
// [idm.ErrNotFound].
func (s *Store) FindLink(ctx context.Context, id string) (idm.Link, error) {
	var l idm.Link
	err := s.view(ctx, "find link", func(tx *bolt.Tx) error {
		var err error
		l, err = getLink(bucket(tx, bLinks), []byte(id))
		return err
	})
	return l, err
}

// FindLinkByJWTHash returns the link whose JWTHash is hash, or an error that
// wraps [idm.ErrNotFound].
func (s *Store) FindLinkByJWTHash(ctx context.Context, hash string) (idm.Link, error) {
	var l idm.Link
	err := s.view(ctx, "find link by JWT hash", func(tx *bolt.Tx) error {
		var id []byte
		if hash != "" {
			id = bucket(tx, bLinksByJWT).Get([]byte(hash))
		}
		if id == nil {
			return fmt.Errorf("link with JWT hash %q: %w", hash, idm.ErrNotFound)
		}
		var err error
		l, err = getLink(bucket(tx, bLinks), id)
		return err
	})
	return l, err
}

// UpdateLink replaces the link with l.ID by l, provided the stored link has
// revision l.Rev, and stores it with Rev l.Rev+1. It returns an error that
// wraps [idm.ErrNotFound] when there is no such link and one that wraps
// [idm.ErrStale] when its revision is another. A JWTHash of another link
// gives an error that wraps [idm.ErrConflict].
func (s *Store) UpdateLink(ctx context.Context, l idm.Link) error {
	return s.update(ctx, "update link", func(tx *bolt.Tx) error {
		old, err := getLink(bucket(tx, bLinks), []byte(l.ID))
		if err != nil {
			return err
		}
		if old.Rev != l.Rev {
			return stale("link", l.ID, old.Rev, l.Rev)
		}
		l.Rev++
		return putLink(tx, &old, l)
	})
}

// DeleteLink removes a link, or returns an error that wraps
// [idm.ErrNotFound].
func (s *Store) DeleteLink(ctx context.Context, id string) error {
	return s.update(ctx, "delete link", func(tx *bolt.Tx) error {
		links := bucket(tx, bLinks)
		old, err := getLink(links, []byte(id))
		if err != nil {
			return err
		}
		if err := bucket(tx, bLinksBySubj).Delete(linkSubjectKey(old.SSSID, old.Created, old.ID)); err != nil {
			return err
		}
		if old.JWTHash != "" {
			if err := bucket(tx, bLinksByJWT).Delete([]byte(old.JWTHash)); err != nil {
				return err
			}
		}
		return links.Delete([]byte(id))
	})
}

// LinksForSubjects returns the links of the given subjects, ordered by
// creation time and then ID; an empty slice when there are none.
func (s *Store) LinksForSubjects(ctx context.Context, sssids ...string) ([]idm.Link, error) {
	out := []idm.Link{}
	err := s.view(ctx, "links for subjects", func(tx *bolt.Tx) error {
		type ref struct {
			order []byte // time(Created) ID
			id    []byte
		}
		var refs []ref
		c := bucket(tx, bLinksBySubj).Cursor()
		seen := make(map[string]bool, len(sssids))
		for _, sssid := range sssids {
			if seen[sssid] {
				continue
			}
			seen[sssid] = true
			prefix := appendStr(nil, sssid)
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				rest := k[len(prefix):]
				if len(rest) < timeKeyLen {
					return fmt.Errorf("bad links_by_subject key %q", k)
				}
				refs = append(refs, ref{order: rest, id: rest[timeKeyLen:]})
			}
		}
		slices.SortFunc(refs, func(a, b ref) int { return bytes.Compare(a.order, b.order) })
		links := bucket(tx, bLinks)
		for _, r := range refs {
			l, err := getLink(links, r.id)
			if err != nil {
				return fmt.Errorf("links_by_subject names a missing link: %w", err)
			}
			out = append(out, l)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// EstablishLink atomically binds the link to linkedTo/system at on (which
// also becomes its Changed time), provided it is neither linked nor revoked,
// raises its revision and returns the updated link. A link that is already linked gives an error
// that wraps [idm.ErrConflict]; a missing or revoked one, [idm.ErrNotFound];
// an empty linkedTo, [idm.ErrInvalid].
func (s *Store) EstablishLink(ctx context.Context, id, linkedTo, system string, on time.Time) (idm.Link, error) {
	if linkedTo == "" {
		return idm.Link{}, invalid("establishing link %s without linked_to", id)
	}
	var l idm.Link
	err := s.update(ctx, "establish link", func(tx *bolt.Tx) error {
		old, err := getLink(bucket(tx, bLinks), []byte(id))
		if err != nil {
			return err
		}
		if !old.Revoked.IsZero() {
			return fmt.Errorf("link %s is revoked: %w", id, idm.ErrNotFound)
		}
		if old.LinkedTo != "" || !old.LinkedOn.IsZero() {
			return fmt.Errorf("link %s is already established: %w", id, idm.ErrConflict)
		}
		l = old
		l.LinkedTo, l.LinkedSystem = linkedTo, system
		l.LinkedOn = idm.Timestamp(on)
		l.Changed = l.LinkedOn
		l.Rev++
		return putLink(tx, &old, l)
	})
	if err != nil {
		return idm.Link{}, err
	}
	return l, nil
}

func getLink(links *bolt.Bucket, id []byte) (idm.Link, error) {
	v := links.Get(id)
	if v == nil {
		return idm.Link{}, fmt.Errorf("link %q: %w", id, idm.ErrNotFound)
	}
	var r linkRec
	if err := decode(v, &r, id); err != nil {
		return idm.Link{}, err
	}
	return r.link(), nil
}

// putLink writes l and its index entries, replacing old (nil for a new
// link).
func putLink(tx *bolt.Tx, old *idm.Link, l idm.Link) error {
	bySubj, byJWT := bucket(tx, bLinksBySubj), bucket(tx, bLinksByJWT)
	var oldHash string
	if old != nil {
		oldHash = old.JWTHash
	}
	if l.JWTHash != oldHash {
		if l.JWTHash != "" {
			if other := byJWT.Get([]byte(l.JWTHash)); other != nil && string(other) != l.ID {
				return fmt.Errorf("JWT hash of link %s: %w", other, idm.ErrConflict)
			}
		}
		if oldHash != "" {
			if err := byJWT.Delete([]byte(oldHash)); err != nil {
				return err
			}
		}
		if l.JWTHash != "" {
			if err := byJWT.Put([]byte(l.JWTHash), []byte(l.ID)); err != nil {
				return err
			}
		}
	}
	newKey := linkSubjectKey(l.SSSID, l.Created, l.ID)
	if old != nil {
		if oldKey := linkSubjectKey(old.SSSID, old.Created, old.ID); !bytes.Equal(oldKey, newKey) {
			if err := bySubj.Delete(oldKey); err != nil {
				return err
			}
		}
	}
	if err := bySubj.Put(newKey, nil); err != nil {
		return err
	}
	v, err := encode(toLinkRec(l))
	if err != nil {
		return err
	}
	return bucket(tx, bLinks).Put([]byte(l.ID), v)
}
