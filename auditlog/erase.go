package auditlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/c3-pro/idm/idm"
)

// Tombstone replaces erased personal data.
const Tombstone = "[erased]"

// EraseStore is what [Log.Erase] needs of the store.
type EraseStore interface {
	idm.AuditLogStore
	AppendAudit(ctx context.Context, e idm.AuditEvent) error
	AuditsFor(ctx context.Context, documents ...string) ([]idm.AuditEvent, error)
	FindSubject(ctx context.Context, sssid string) (idm.Subject, error)
	UpdateSubject(ctx context.Context, s idm.Subject) error
	LinksForSubjects(ctx context.Context, sssids ...string) ([]idm.Link, error)
	FindLink(ctx context.Context, id string) (idm.Link, error)
	UpdateLink(ctx context.Context, l idm.Link) error
}

// Erasure is what [Log.Erase] did.
type Erasure struct {
	SSSID   string
	Records []int64 // the seqs of the audit records whose personal data was replaced
	Seq     int64   // the seq of the erasure record (-1 when nothing was left to erase)
}

// notPersonal are the keys of a subject (as the API and the audit trail
// write it) that are no personal data: everything else (name, bday,
// email and every additional field) is.
var notPersonal = map[string]bool{
	"sssid": true, "id": true, "_id": true, "created": true, "changed": true, "site": true, "status": true,
	"date_invited": true, "date_consented": true, "date_enrolled": true, "date_withdrawn": true,
	"invited": true, "consented": true, "enrolled": true, "withdrawn": true, // action keys of the dates
}

// Erase replaces the personal data of the subject sssid (name, bday,
// email and additional fields) by [Tombstone] in the subject and in the
// audit records about it, drops the link tokens that carry them (keeping
// their hashes), and first appends an erasure record (actor as given) that
// names the changed records and keeps their leaf hashes, so that [Verify]
// accepts them as erased. The SSSID, dates, links and the shape of the
// history stay. Erasing again erases what was added since.
//
// On a bbolt store the old bytes stay in the file's free pages until the
// file is compacted (boltstore.Compact), which `idmd subject erase` does.
func (l *Log) Erase(ctx context.Context, store EraseStore, sssid, reason string, actor idm.Principal) (Erasure, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return Erasure{}, errors.New("auditlog: an erasure needs a reason")
	}
	s, err := store.FindSubject(ctx, sssid)
	if err != nil {
		return Erasure{}, fmt.Errorf("auditlog: subject %q: %w", sssid, err)
	}
	links, err := store.LinksForSubjects(ctx, s.SSSID)
	if err != nil {
		return Erasure{}, fmt.Errorf("auditlog: links of %q: %w", sssid, err)
	}
	docs := []string{s.ID}
	for _, ln := range links {
		docs = append(docs, ln.ID)
	}
	// Every record to change must be in the tree, with its leaf stored.
	if _, err := l.Sync(ctx); err != nil {
		return Erasure{}, err
	}
	records, err := store.AuditsFor(ctx, docs...)
	if err != nil {
		return Erasure{}, fmt.Errorf("auditlog: audit records of %q: %w", sssid, err)
	}
	var (
		changed []idm.AuditEvent
		named   []erasedRecord
	)
	for _, e := range records {
		if _, ok := erasureOf(e); ok || e.DocType != idm.DocSubject {
			continue // link records hold no personal data of the subject
		}
		t := tombstoned(e)
		if bytes.Equal(idm.CanonicalAudit(t), idm.CanonicalAudit(e)) {
			continue
		}
		leaf, err := l.store.TreeHashes(ctx, []int64{tlog.StoredHashIndex(0, e.Seq)})
		if err != nil {
			return Erasure{}, fmt.Errorf("auditlog: leaf of seq %d: %w", e.Seq, err)
		}
		changed = append(changed, t)
		named = append(named, erasedRecord{Seq: e.Seq, Leaf: tlog.Hash(leaf[0]), Now: leafHash(t)})
	}
	res := Erasure{SSSID: s.SSSID, Seq: -1}
	if len(changed) > 0 {
		doc, _ := json.Marshal(erasureDoc{SSSID: s.SSSID, Reason: reason, Erased: named})
		rec := idm.AuditEvent{
			ID: idm.NewID(), Time: l.now(), Document: s.ID, DocType: idm.DocSubject,
			ActorID: actor.UserID, Actor: actor.Username, Action: erasureAction + ": " + reason, New: doc,
		}
		// The erasure record first: a crash after it leaves records that a
		// second run erases, never erased records without their record.
		if err := store.AppendAudit(ctx, rec); err != nil {
			return Erasure{}, fmt.Errorf("auditlog: appending the erasure record: %w", err)
		}
		if err := store.ReplaceAudits(ctx, changed); err != nil {
			return Erasure{}, fmt.Errorf("auditlog: replacing the erased records: %w", err)
		}
		for _, n := range named {
			res.Records = append(res.Records, n.Seq)
		}
		if all, err := store.AuditsFor(ctx, s.ID); err == nil {
			for _, e := range all {
				if e.ID == rec.ID {
					res.Seq = e.Seq
				}
			}
		}
	}
	if err := eraseSubject(ctx, store, s); err != nil {
		return res, err
	}
	return res, nil
}

// eraseSubject replaces the subject's personal data and drops the link
// tokens, which carry its name and birth date.
func eraseSubject(ctx context.Context, store EraseStore, s idm.Subject) error {
	err := idm.RetryStale(ctx, 5, func() error {
		cur, err := store.FindSubject(ctx, s.SSSID)
		if err != nil {
			return err
		}
		cur.Name, cur.Bday, cur.Email = Tombstone, "", ""
		cur.Extra = nil
		return store.UpdateSubject(ctx, cur)
	})
	if err != nil {
		return fmt.Errorf("auditlog: erasing subject %q: %w", s.SSSID, err)
	}
	// The links are read now, after the records: a token minted since the
	// erasure began carries the name too.
	links, err := store.LinksForSubjects(ctx, s.SSSID)
	if err != nil {
		return fmt.Errorf("auditlog: links of %q: %w", s.SSSID, err)
	}
	for _, ln := range links {
		id := ln.ID
		err := idm.RetryStale(ctx, 5, func() error {
			cur, err := store.FindLink(ctx, id)
			if err != nil || cur.JWT == "" {
				return err
			}
			cur.JWT = "" // its hash stays: a printed QR code establishes as a migrated link's
			return store.UpdateLink(ctx, cur)
		})
		if err != nil {
			return fmt.Errorf("auditlog: dropping the token of link %s: %w", id, err)
		}
	}
	return nil
}

// tombstoned returns e with the personal data in its action, old and new
// values replaced by [Tombstone].
func tombstoned(e idm.AuditEvent) idm.AuditEvent {
	e.Action = tombstoneAction(e.Action)
	e.Old = tombstoneJSON(e.Old)
	e.New = tombstoneJSON(e.New)
	return e
}

// tombstoneJSON replaces the values of personal keys in a JSON object.
func tombstoneJSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return raw
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		if json.Valid(raw) {
			return raw // not an object: no keys to judge
		}
		out, _ := json.Marshal(Tombstone)
		return out
	}
	erased, _ := json.Marshal(Tombstone)
	changed := false
	for k, v := range m {
		if !notPersonal[k] && !bytes.Equal(v, erased) {
			m[k] = erased
			changed = true
		}
	}
	if !changed {
		return raw
	}
	out, _ := json.Marshal(m)
	return out
}

// tombstoneAction replaces the values of personal keys in an action text
// of the form `key: value; key: value` (values as JSON, or dates as they
// are); other actions ("create", "update", …) stay.
func tombstoneAction(action string) string {
	var parts []string
	rest := action
	for rest != "" {
		key, after, ok := strings.Cut(rest, ": ")
		if !ok || strings.ContainsAny(key, " ;\"") {
			return action // not a list of changes
		}
		value, next := splitValue(after)
		if !notPersonal[key] {
			value = `"` + Tombstone + `"`
		}
		parts = append(parts, key+": "+value)
		rest = next
	}
	return strings.Join(parts, "; ")
}

// splitValue splits off the first value of a change list: a JSON value, or
// text up to the next "; ".
func splitValue(s string) (value, rest string) {
	dec := json.NewDecoder(strings.NewReader(s))
	var v json.RawMessage
	if err := dec.Decode(&v); err == nil {
		n := int(dec.InputOffset())
		if tail := s[n:]; tail == "" || strings.HasPrefix(tail, "; ") {
			return s[:n], strings.TrimPrefix(tail, "; ")
		}
	}
	value, rest, _ = strings.Cut(s, "; ")
	return value, rest
}
