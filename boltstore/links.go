package boltstore

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/c3-pro/idm/idm"
)

// Links live in bucket links (ID -> linkRec) with two indexes:
// links_by_subject holds the key str(SSSID) time(Created) ID for every link,
// so that a subject's links are one range in creation order, and
// links_by_jwt_hash maps a JWTHash to the link's ID (and keeps it unique).
// Decoded, links are also kept in a linkCache with the same two indexes,
// which answers every read. Like the subjects' cache it is loaded when the
// store opens and changed only after a write has committed, under s.wmu, so
// it always equals the committed state.

// Strings of a link, in the order they are packed into its cache entry.
const (
	lID = iota
	lSSSID
	lIssuer
	lAudience
	lAlgorithm
	lJWT
	lJWTHash
	lLinkedTo
	lLinkedSystem
	lWithdrawnOn
	numLinkFields
)

// linkEntry is one link in the cache, kept compact (see pack.go). It is
// never modified: an update replaces the entry.
type linkEntry struct {
	str  string // the strings, in the order of the l* constants
	ends [numLinkFields]uint32
	sec  [4]int64 // Created, Changed, LinkedOn, Revoked
	nsec [4]int32
	exp  int64
	rev  int64
}

func newLinkEntry(l idm.Link) *linkEntry {
	fields := [numLinkFields]string{l.ID, l.SSSID, l.Issuer, l.Audience, l.Algorithm, l.JWT, l.JWTHash,
		l.LinkedTo, l.LinkedSystem, l.WithdrawnOn}
	n := 0
	for _, f := range fields {
		n += len(f)
	}
	e := &linkEntry{exp: l.Exp, rev: l.Rev}
	var p packer
	p.grow(n)
	for i, f := range fields {
		e.ends[i] = p.add(f)
	}
	e.str = p.String()
	for i, t := range [...]time.Time{l.Created, l.Changed, l.LinkedOn, l.Revoked} {
		e.sec[i], e.nsec[i] = stampOf(t)
	}
	return e
}

// field returns string f (an l* constant) of the link.
func (e *linkEntry) field(f int) string { return unpack(e.str, e.ends[:], f) }

// link returns the entry's link.
func (e *linkEntry) link() idm.Link {
	return idm.Link{
		ID: e.field(lID), SSSID: e.field(lSSSID), Issuer: e.field(lIssuer), Audience: e.field(lAudience),
		Algorithm: e.field(lAlgorithm), JWT: e.field(lJWT), JWTHash: e.field(lJWTHash),
		LinkedTo: e.field(lLinkedTo), LinkedSystem: e.field(lLinkedSystem), WithdrawnOn: e.field(lWithdrawnOn),
		Created: timeOf(e.sec[0], e.nsec[0]), Changed: timeOf(e.sec[1], e.nsec[1]),
		LinkedOn: timeOf(e.sec[2], e.nsec[2]), Revoked: timeOf(e.sec[3], e.nsec[3]),
		Exp: e.exp, Rev: e.rev,
	}
}

// compareLinks orders links by creation time and then ID, as the keys of
// links_by_subject do.
func compareLinks(a, b *linkEntry) int {
	return cmp.Or(cmp.Compare(a.sec[0], b.sec[0]), cmp.Compare(a.nsec[0], b.nsec[0]),
		strings.Compare(a.field(lID), b.field(lID)))
}

// linkCache holds all links.
type linkCache struct {
	byID  map[string]*linkEntry
	byJWT map[string]*linkEntry // by JWTHash; links without one are not in it
	// bySubject holds each subject's links, sorted by compareLinks.
	bySubject map[string][]*linkEntry
}

func newLinkCache() *linkCache {
	return &linkCache{
		byID:      map[string]*linkEntry{},
		byJWT:     map[string]*linkEntry{},
		bySubject: map[string][]*linkEntry{},
	}
}

// add puts a new entry into the cache and its indexes.
func (c *linkCache) add(e *linkEntry) {
	c.byID[e.field(lID)] = e
	if e.field(lJWTHash) != "" {
		c.byJWT[e.field(lJWTHash)] = e
	}
	list := c.bySubject[e.field(lSSSID)]
	i, _ := slices.BinarySearchFunc(list, e, compareLinks)
	c.bySubject[e.field(lSSSID)] = slices.Insert(list, i, e)
}

// remove takes an entry of the cache out of it and its indexes.
func (c *linkCache) remove(e *linkEntry) {
	delete(c.byID, e.field(lID))
	if e.field(lJWTHash) != "" && c.byJWT[e.field(lJWTHash)] == e {
		delete(c.byJWT, e.field(lJWTHash))
	}
	list := c.bySubject[e.field(lSSSID)]
	if i, found := slices.BinarySearchFunc(list, e, compareLinks); found {
		list = slices.Delete(list, i, i+1)
	}
	if len(list) == 0 {
		delete(c.bySubject, e.field(lSSSID))
	} else {
		c.bySubject[e.field(lSSSID)] = list
	}
}

// loadLinks fills the links' cache from the links bucket.
func (s *Store) loadLinks() error {
	c := newLinkCache()
	err := s.db.View(func(tx *bolt.Tx) error {
		w := readWindow{tx: tx}
		return bucket(tx, bLinks).ForEach(func(k, v []byte) error {
			w.release(len(k) + len(v))
			var r linkRec
			if err := decode(v, &r, k); err != nil {
				return err
			}
			e := newLinkEntry(r.link())
			c.byID[e.field(lID)] = e
			if e.field(lJWTHash) != "" {
				c.byJWT[e.field(lJWTHash)] = e
			}
			c.bySubject[e.field(lSSSID)] = append(c.bySubject[e.field(lSSSID)], e)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("load links: %w", err)
	}
	for _, list := range c.bySubject {
		slices.SortFunc(list, compareLinks)
	}
	s.lmu.Lock()
	s.links = c
	s.lmu.Unlock()
	return nil
}

// storedLink returns l as a read gives it back after l was written: with
// its times passed through the record encoding.
func storedLink(l idm.Link) idm.Link { return toLinkRec(l).link() }

// cacheLink replaces the cached link with ID old.ID (none for nil) by l,
// which has just been committed; the caller holds s.wmu.
func (s *Store) cacheLink(old *idm.Link, l *idm.Link) {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	if old != nil {
		if e := s.links.byID[old.ID]; e != nil {
			s.links.remove(e)
		}
	}
	if l != nil {
		s.links.add(newLinkEntry(*l))
	}
}

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
	l.Rev = 1
	l = storedLink(l)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	err := s.update(ctx, "create link", func(tx *bolt.Tx) error {
		links := bucket(tx, bLinks)
		if links.Get([]byte(l.ID)) != nil {
			return fmt.Errorf("link %s: %w", l.ID, idm.ErrConflict)
		}
		return putLink(tx, nil, l)
	})
	if err != nil {
		return err
	}
	s.cacheLink(nil, &l)
	return nil
}

// FindLink returns the link with the given ID, or an error that wraps
// [idm.ErrNotFound].
func (s *Store) FindLink(ctx context.Context, id string) (idm.Link, error) {
	const op = "find link"
	if err := s.checkOpen(ctx, op); err != nil {
		return idm.Link{}, err
	}
	s.lmu.RLock()
	e := s.links.byID[id]
	s.lmu.RUnlock()
	if e == nil {
		return idm.Link{}, fmt.Errorf("boltstore: %s: link %q: %w", op, id, idm.ErrNotFound)
	}
	return e.link(), nil
}

// FindLinkByJWTHash returns the link whose JWTHash is hash, or an error that
// wraps [idm.ErrNotFound].
func (s *Store) FindLinkByJWTHash(ctx context.Context, hash string) (idm.Link, error) {
	const op = "find link by JWT hash"
	if err := s.checkOpen(ctx, op); err != nil {
		return idm.Link{}, err
	}
	var e *linkEntry
	if hash != "" {
		s.lmu.RLock()
		e = s.links.byJWT[hash]
		s.lmu.RUnlock()
	}
	if e == nil {
		return idm.Link{}, fmt.Errorf("boltstore: %s: link with JWT hash %q: %w", op, hash, idm.ErrNotFound)
	}
	return e.link(), nil
}

// UpdateLink replaces the link with l.ID by l, provided the stored link has
// revision l.Rev, and stores it with Rev l.Rev+1. It returns an error that
// wraps [idm.ErrNotFound] when there is no such link and one that wraps
// [idm.ErrStale] when its revision is another. A JWTHash of another link
// gives an error that wraps [idm.ErrConflict].
func (s *Store) UpdateLink(ctx context.Context, l idm.Link) error {
	given := l.Rev
	l.Rev++
	l = storedLink(l)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var old idm.Link
	err := s.update(ctx, "update link", func(tx *bolt.Tx) error {
		var err error
		old, err = getLink(bucket(tx, bLinks), []byte(l.ID))
		if err != nil {
			return err
		}
		if old.Rev != given {
			return stale("link", l.ID, old.Rev, given)
		}
		return putLink(tx, &old, l)
	})
	if err != nil {
		return err
	}
	s.cacheLink(&old, &l)
	return nil
}

// DeleteLink removes a link, or returns an error that wraps
// [idm.ErrNotFound].
func (s *Store) DeleteLink(ctx context.Context, id string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var old idm.Link
	err := s.update(ctx, "delete link", func(tx *bolt.Tx) error {
		links := bucket(tx, bLinks)
		var err error
		old, err = getLink(links, []byte(id))
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
	if err != nil {
		return err
	}
	s.cacheLink(&old, nil)
	return nil
}

// LinksForSubjects returns the links of the given subjects, ordered by
// creation time and then ID; an empty slice when there are none. It answers
// from memory.
func (s *Store) LinksForSubjects(ctx context.Context, sssids ...string) ([]idm.Link, error) {
	if err := s.checkOpen(ctx, "links for subjects"); err != nil {
		return nil, err
	}
	// A subject given twice counts once. Few SSSIDs (a page) are looked up
	// as they come, and a subject's entries given twice are dropped after
	// the sort, where they are next to each other (entries are unique
	// pointers, and compareLinks orders distinct links strictly, as IDs are
	// unique); many are checked against a set first, so that a long list of
	// repeated SSSIDs cannot multiply the entries.
	const fewSSSIDs = 64
	var seen map[string]struct{}
	if len(sssids) > fewSSSIDs {
		seen = make(map[string]struct{}, len(sssids))
	}
	var entries []*linkEntry
	s.lmu.RLock()
	for _, sssid := range sssids {
		list := s.links.bySubject[sssid]
		if len(list) == 0 {
			continue
		}
		if seen != nil {
			if _, dup := seen[sssid]; dup {
				continue
			}
			seen[sssid] = struct{}{}
		}
		if entries == nil {
			// About one link per subject, as a guess.
			entries = make([]*linkEntry, 0, max(len(list), min(len(sssids), fewSSSIDs)))
		}
		entries = append(entries, list...)
	}
	s.lmu.RUnlock()
	// The entries are never modified, so they can be read without the lock.
	if !slices.IsSortedFunc(entries, compareLinks) {
		slices.SortFunc(entries, compareLinks)
	}
	if seen == nil {
		entries = slices.Compact(entries)
	}
	out := make([]idm.Link, len(entries))
	for i, e := range entries {
		out[i] = e.link()
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
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var old, l idm.Link
	err := s.update(ctx, "establish link", func(tx *bolt.Tx) error {
		var err error
		old, err = getLink(bucket(tx, bLinks), []byte(id))
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
		l = storedLink(l)
		return putLink(tx, &old, l)
	})
	if err != nil {
		return idm.Link{}, err
	}
	s.cacheLink(&old, &l)
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
