package boltstore

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/c3-pro/idm/idm"
)

// The records below are what the buckets hold, encoded as JSON. Times are
// Unix milliseconds in UTC, absent for the zero time. The revision "rev" of
// users, subjects and links is at least 1 once written by this version;
// records written before revisions existed lack it and read as Rev 0. Byte slices (JSON
// values kept verbatim, secrets) are base64 in JSON, which keeps them
// byte-for-byte, including the difference between nil and empty.

type userRec struct {
	ID              string   `json:"id"`
	Username        string   `json:"username"`
	PasswordHash    string   `json:"password_hash,omitempty"`
	Admin           bool     `json:"admin,omitempty"`
	Role            string   `json:"role,omitempty"`
	Sites           []string `json:"sites,omitempty"`
	Disabled        bool     `json:"disabled,omitempty"`
	TokenVersion    int64    `json:"token_version,omitempty"`
	Created         *int64   `json:"created,omitempty"`
	Changed         *int64   `json:"changed,omitempty"`
	PasswordChanged *int64   `json:"password_changed,omitempty"`
	Rev             int64    `json:"rev,omitempty"`
	// The second factor (idm.TOTP); absent when there is none.
	TOTPSecret   string   `json:"totp_secret,omitempty"`
	TOTPActive   bool     `json:"totp_active,omitempty"`
	TOTPLastStep int64    `json:"totp_last_step,omitempty"`
	TOTPRecovery []string `json:"totp_recovery,omitempty"`
}

func toUserRec(u idm.User) userRec {
	return userRec{
		ID: u.ID, Username: u.Username, PasswordHash: u.PasswordHash,
		Admin: u.Admin, Role: string(u.Role), Sites: slices.Clone(u.Sites), Disabled: u.Disabled, TokenVersion: u.TokenVersion,
		Created: encTime(u.Created), Changed: encTime(u.Changed), PasswordChanged: encTime(u.PasswordChanged),
		Rev: u.Rev, TOTPSecret: u.TOTP.Secret, TOTPActive: u.TOTP.Active, TOTPLastStep: u.TOTP.LastStep,
		TOTPRecovery: idm.RecoveryList(u.TOTP.Recovery),
	}
}

func (r userRec) user() idm.User {
	return idm.User{
		ID: r.ID, Username: r.Username, PasswordHash: r.PasswordHash,
		Admin: r.Admin, Role: idm.Role(r.Role), Sites: slices.Clone(r.Sites), Disabled: r.Disabled, TokenVersion: r.TokenVersion,
		Created: decTime(r.Created), Changed: decTime(r.Changed), PasswordChanged: decTime(r.PasswordChanged),
		Rev: r.Rev, TOTP: idm.TOTP{Secret: r.TOTPSecret, Active: r.TOTPActive, LastStep: r.TOTPLastStep,
			Recovery: idm.RecoveryArray(r.TOTPRecovery)},
	}
}

type subjectRec struct {
	ID            string `json:"id"`
	SSSID         string `json:"sssid"`
	Site          string `json:"site,omitempty"`
	Name          string `json:"name,omitempty"`
	Bday          string `json:"bday,omitempty"`
	Email         string `json:"email,omitempty"`
	DateInvited   string `json:"date_invited,omitempty"`
	DateConsented string `json:"date_consented,omitempty"`
	DateEnrolled  string `json:"date_enrolled,omitempty"`
	DateWithdrawn string `json:"date_withdrawn,omitempty"`
	Created       *int64 `json:"created,omitempty"`
	Changed       *int64 `json:"changed,omitempty"`
	// Extra has no omitempty so that nil and empty maps stay apart.
	Extra map[string][]byte `json:"extra"`
	Rev   int64             `json:"rev,omitempty"`
}

func toSubjectRec(s idm.Subject) subjectRec {
	r := subjectRec{
		ID: s.ID, SSSID: s.SSSID, Site: s.Site, Name: s.Name, Bday: s.Bday, Email: s.Email,
		DateInvited: s.DateInvited, DateConsented: s.DateConsented,
		DateEnrolled: s.DateEnrolled, DateWithdrawn: s.DateWithdrawn,
		Created: encTime(s.Created), Changed: encTime(s.Changed), Rev: s.Rev,
	}
	if s.Extra != nil {
		r.Extra = make(map[string][]byte, len(s.Extra))
		for k, v := range s.Extra {
			r.Extra[k] = v
		}
	}
	return r
}

func (r subjectRec) subject() idm.Subject {
	s := idm.Subject{
		ID: r.ID, SSSID: r.SSSID, Site: r.Site, Name: r.Name, Bday: r.Bday, Email: r.Email,
		DateInvited: r.DateInvited, DateConsented: r.DateConsented,
		DateEnrolled: r.DateEnrolled, DateWithdrawn: r.DateWithdrawn,
		Created: decTime(r.Created), Changed: decTime(r.Changed), Rev: r.Rev,
	}
	if r.Extra != nil {
		s.Extra = make(map[string]json.RawMessage, len(r.Extra))
		for k, v := range r.Extra {
			s.Extra[k] = v
		}
	}
	return s
}

type linkRec struct {
	ID           string `json:"id"`
	SSSID        string `json:"sssid"`
	Issuer       string `json:"iss,omitempty"`
	Audience     string `json:"aud,omitempty"`
	Algorithm    string `json:"alg,omitempty"`
	Created      *int64 `json:"created,omitempty"`
	Changed      *int64 `json:"changed,omitempty"`
	Exp          int64  `json:"exp,omitempty"`
	JWT          string `json:"jwt,omitempty"`
	JWTHash      string `json:"jwt_hash,omitempty"`
	LinkedTo     string `json:"linked_to,omitempty"`
	LinkedSystem string `json:"linked_system,omitempty"`
	LinkedOn     *int64 `json:"linked_on,omitempty"`
	WithdrawnOn  string `json:"withdrawn_on,omitempty"`
	Revoked      *int64 `json:"revoked,omitempty"`
	Rev          int64  `json:"rev,omitempty"`
}

func toLinkRec(l idm.Link) linkRec {
	return linkRec{
		ID: l.ID, SSSID: l.SSSID, Issuer: l.Issuer, Audience: l.Audience, Algorithm: l.Algorithm,
		Created: encTime(l.Created), Changed: encTime(l.Changed), Exp: l.Exp,
		JWT: l.JWT, JWTHash: l.JWTHash, LinkedTo: l.LinkedTo, LinkedSystem: l.LinkedSystem,
		LinkedOn: encTime(l.LinkedOn), WithdrawnOn: l.WithdrawnOn, Revoked: encTime(l.Revoked),
		Rev: l.Rev,
	}
}

func (r linkRec) link() idm.Link {
	return idm.Link{
		ID: r.ID, SSSID: r.SSSID, Issuer: r.Issuer, Audience: r.Audience, Algorithm: r.Algorithm,
		Created: decTime(r.Created), Changed: decTime(r.Changed), Exp: r.Exp,
		JWT: r.JWT, JWTHash: r.JWTHash, LinkedTo: r.LinkedTo, LinkedSystem: r.LinkedSystem,
		LinkedOn: decTime(r.LinkedOn), WithdrawnOn: r.WithdrawnOn, Revoked: decTime(r.Revoked),
		Rev: r.Rev,
	}
}

type auditRec struct {
	Seq      *int64 `json:"seq,omitempty"` // nil in records written before the audit log
	ID       string `json:"id"`
	Time     *int64 `json:"time,omitempty"`
	Document string `json:"document,omitempty"`
	DocType  string `json:"doc_type,omitempty"`
	ActorID  string `json:"actor_id,omitempty"`
	Actor    string `json:"actor,omitempty"`
	Action   string `json:"action,omitempty"`
	Old      []byte `json:"old"`
	New      []byte `json:"new"`
}

func toAuditRec(e idm.AuditEvent) auditRec {
	return auditRec{
		Seq: &e.Seq, ID: e.ID, Time: encTime(e.Time), Document: e.Document, DocType: e.DocType,
		ActorID: e.ActorID, Actor: e.Actor, Action: e.Action, Old: e.Old, New: e.New,
	}
}

func (r auditRec) event() idm.AuditEvent {
	var seq int64 = -1
	if r.Seq != nil {
		seq = *r.Seq
	}
	return idm.AuditEvent{
		Seq: seq, ID: r.ID, Time: decTime(r.Time), Document: r.Document, DocType: r.DocType,
		ActorID: r.ActorID, Actor: r.Actor, Action: r.Action, Old: r.Old, New: r.New,
	}
}

type resetRec struct {
	Hash    string `json:"hash"`
	UserID  string `json:"user_id"`
	Purpose string `json:"purpose,omitempty"`
	Created *int64 `json:"created,omitempty"`
	Expires *int64 `json:"expires,omitempty"`
}

func toResetRec(t idm.ResetToken) resetRec {
	return resetRec{Hash: t.Hash, UserID: t.UserID, Purpose: t.Purpose, Created: encTime(t.Created), Expires: encTime(t.Expires)}
}

func (r resetRec) token() idm.ResetToken {
	return idm.ResetToken{Hash: r.Hash, UserID: r.UserID, Purpose: r.Purpose, Created: decTime(r.Created), Expires: decTime(r.Expires)}
}

type sessionRec struct {
	IDHash       string `json:"id_hash"`
	UserID       string `json:"user_id"`
	TokenVersion int64  `json:"token_version,omitempty"`
	Created      *int64 `json:"created,omitempty"`
	LastSeen     *int64 `json:"last_seen,omitempty"`
	Expires      *int64 `json:"expires,omitempty"`
}

func toSessionRec(x idm.Session) sessionRec {
	return sessionRec{IDHash: x.IDHash, UserID: x.UserID, TokenVersion: x.TokenVersion,
		Created: encTime(x.Created), LastSeen: encTime(x.LastSeen), Expires: encTime(x.Expires)}
}

func (r sessionRec) session() idm.Session {
	return idm.Session{IDHash: r.IDHash, UserID: r.UserID, TokenVersion: r.TokenVersion,
		Created: decTime(r.Created), LastSeen: decTime(r.LastSeen), Expires: decTime(r.Expires)}
}

type keyRec struct {
	Name    string `json:"name"`
	KID     string `json:"kid,omitempty"`
	Alg     string `json:"alg,omitempty"`
	Secret  []byte `json:"secret"`
	Created *int64 `json:"created,omitempty"`
}

func toKeyRec(k idm.SigningKey) keyRec {
	return keyRec{Name: k.Name, KID: k.KID, Alg: k.Alg, Secret: k.Secret, Created: encTime(k.Created)}
}

func (r keyRec) key() idm.SigningKey {
	return idm.SigningKey{Name: r.Name, KID: r.KID, Alg: r.Alg, Secret: r.Secret, Created: decTime(r.Created)}
}

type failRec struct {
	Key   string `json:"key"`
	Count int    `json:"count"`
	Since *int64 `json:"since,omitempty"`
	Last  *int64 `json:"last,omitempty"`
}

func toFailRec(f idm.LoginFailures) failRec {
	return failRec{Key: f.Key, Count: f.Count, Since: encTime(f.Since), Last: encTime(f.Last)}
}

func (r failRec) failures() idm.LoginFailures {
	return idm.LoginFailures{Key: r.Key, Count: r.Count, Since: decTime(r.Since), Last: decTime(r.Last)}
}

// encTime returns t as Unix milliseconds (see [idm.Timestamp]), or nil for
// the zero time.
func encTime(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	ms := t.UnixMilli()
	return &ms
}

// decTime is the inverse of encTime: a UTC time, or the zero time for nil.
func decTime(ms *int64) time.Time {
	if ms == nil {
		return time.Time{}
	}
	return time.UnixMilli(*ms).UTC()
}

// encode marshals a record.
func encode(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return b, nil
}

// decode unmarshals a record; key names it in the error.
func decode(b []byte, v any, key []byte) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %T %q: %w", v, key, err)
	}
	return nil
}

// Index keys are built from these parts so that they sort the way the
// queries need and no part can run into the next one.

// appendStr appends s with a length prefix, so that the keys of one string
// form a contiguous range that no other string's keys fall into.
func appendStr(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// timeKeyLen is the length of a time in a key.
const timeKeyLen = 8

// appendTime appends the Unix milliseconds of t as 8 bytes that sort like
// the times (big endian with the sign bit flipped, so that times before 1970
// sort first).
func appendTime(dst []byte, t time.Time) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(t.UnixMilli())^(1<<63))
}
