package mongostore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/c3-pro/idm/idm"
)

// The record types below are the documents the store keeps. Strings that are
// empty are stored as "" (not left out), so that sorting treats them as
// every other store does: "" before any other string. Optional times are
// left out while zero. Times are BSON dates (UTC, milliseconds).

type userRecord struct {
	ID              string    `bson:"_id"`
	Username        string    `bson:"username"`
	UsernameKey     string    `bson:"username_key"` // unique index; see usernameKey
	PasswordHash    string    `bson:"password_hash"`
	Admin           bool      `bson:"admin"`
	Role            string    `bson:"role,omitempty"`
	Sites           []string  `bson:"sites,omitempty"`
	Disabled        bool      `bson:"disabled"`
	TokenVersion    int64     `bson:"token_version"`
	Created         time.Time `bson:"created"`
	Changed         time.Time `bson:"changed"`
	PasswordChanged time.Time `bson:"password_changed,omitempty"`
	Rev             int64     `bson:"rev"` // see revFilter
	// The second factor (idm.TOTP); TOTPRecovery holds the unused codes.
	TOTPSecret   string   `bson:"totp_secret,omitempty"`
	TOTPActive   bool     `bson:"totp_active"`
	TOTPLastStep int64    `bson:"totp_last_step"`
	TOTPRecovery []string `bson:"totp_recovery"`
}

// usernameKey is the unique index key of a username: the username as
// given. Callers normalise usernames (idm.UsernameKey) before they store or
// look them up; the store applies no rule of its own. (Records written
// before kept the lower-cased username here, which callers had lower-cased
// already.)
func usernameKey(username string) string { return username }

func toUserRecord(u idm.User) userRecord {
	return userRecord{
		ID:              u.ID,
		Username:        u.Username,
		UsernameKey:     usernameKey(u.Username),
		PasswordHash:    u.PasswordHash,
		Admin:           u.Admin,
		Role:            string(u.Role),
		Sites:           slices.Clone(u.Sites),
		Disabled:        u.Disabled,
		TokenVersion:    u.TokenVersion,
		Created:         idm.Timestamp(u.Created),
		Changed:         idm.Timestamp(u.Changed),
		PasswordChanged: idm.Timestamp(u.PasswordChanged),
		Rev:             u.Rev,
		TOTPSecret:      u.TOTP.Secret,
		TOTPActive:      u.TOTP.Active,
		TOTPLastStep:    u.TOTP.LastStep,
		TOTPRecovery:    idm.RecoveryList(u.TOTP.Recovery),
	}
}

func (r userRecord) user() idm.User {
	return idm.User{
		ID:              r.ID,
		Username:        r.Username,
		PasswordHash:    r.PasswordHash,
		Admin:           r.Admin,
		Role:            idm.Role(r.Role),
		Sites:           slices.Clone(r.Sites),
		Disabled:        r.Disabled,
		TokenVersion:    r.TokenVersion,
		Created:         fromDate(r.Created),
		Changed:         fromDate(r.Changed),
		PasswordChanged: fromDate(r.PasswordChanged),
		Rev:             r.Rev,
		TOTP: idm.TOTP{Secret: r.TOTPSecret, Active: r.TOTPActive, LastStep: r.TOTPLastStep,
			Recovery: idm.RecoveryArray(r.TOTPRecovery)},
	}
}

type subjectRecord struct {
	ID            string    `bson:"_id"`
	SSSID         string    `bson:"sssid"`
	Site          string    `bson:"site"`
	Name          string    `bson:"name"`
	Bday          string    `bson:"bday"`
	Email         string    `bson:"email"`
	DateInvited   string    `bson:"date_invited"`
	DateConsented string    `bson:"date_consented"`
	DateEnrolled  string    `bson:"date_enrolled"`
	DateWithdrawn string    `bson:"date_withdrawn"`
	Created       time.Time `bson:"created"`
	Changed       time.Time `bson:"changed"`
	// Extra is the subject's extra fields as one JSON object, "" when there
	// are none. One encoded value, rather than a sub-document, because
	// client-chosen keys could hold '.' or '$' and values nested arrays,
	// which FerretDB rejects.
	Extra string `bson:"extra"`
	Rev   int64  `bson:"rev"` // see revFilter
}

// The field names of subjectRecord are the API's column names, so that
// idm.SubjectColumns can be used for sorting as they are.

func toSubjectRecord(s idm.Subject) (subjectRecord, error) {
	extra, err := encodeExtra(s.Extra)
	if err != nil {
		return subjectRecord{}, err
	}
	return subjectRecord{
		ID:            s.ID,
		SSSID:         s.SSSID,
		Site:          s.Site,
		Name:          s.Name,
		Bday:          s.Bday,
		Email:         s.Email,
		DateInvited:   s.DateInvited,
		DateConsented: s.DateConsented,
		DateEnrolled:  s.DateEnrolled,
		DateWithdrawn: s.DateWithdrawn,
		Created:       idm.Timestamp(s.Created),
		Changed:       idm.Timestamp(s.Changed),
		Extra:         extra,
		Rev:           s.Rev,
	}, nil
}

func (r subjectRecord) subject() (idm.Subject, error) {
	extra, err := decodeExtra(r.Extra)
	if err != nil {
		return idm.Subject{}, fmt.Errorf("subject %q: %w", r.SSSID, err)
	}
	return idm.Subject{
		ID:            r.ID,
		SSSID:         r.SSSID,
		Site:          r.Site,
		Name:          r.Name,
		Bday:          r.Bday,
		Email:         r.Email,
		DateInvited:   r.DateInvited,
		DateConsented: r.DateConsented,
		DateEnrolled:  r.DateEnrolled,
		DateWithdrawn: r.DateWithdrawn,
		Created:       fromDate(r.Created),
		Changed:       fromDate(r.Changed),
		Extra:         extra,
		Rev:           r.Rev,
	}, nil
}

// encodeExtra encodes extra fields as one JSON object whose values are the
// given JSON texts byte for byte; "" for none. Keys are sorted, so equal maps
// give equal texts.
func encodeExtra(extra map[string]json.RawMessage) (string, error) {
	if len(extra) == 0 {
		return "", nil
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	b.WriteByte('{')
	for i, k := range keys {
		v := extra[k]
		if !json.Valid(v) {
			return "", idm.E(idm.ErrInvalid, fmt.Sprintf("extra field %q holds invalid JSON", k))
		}
		if i > 0 {
			b.WriteByte(',')
		}
		if err := enc.Encode(k); err != nil { // a string always encodes
			return "", err
		}
		b.Truncate(b.Len() - 1) // Encode's newline
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.String(), nil
}

// decodeExtra is the inverse of encodeExtra; nil for "".
func decodeExtra(s string) (map[string]json.RawMessage, error) {
	if s == "" {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("stored extra fields: %w", err)
	}
	return m, nil
}

type linkRecord struct {
	ID        string    `bson:"_id"`
	SSSID     string    `bson:"sssid"`
	Issuer    string    `bson:"iss"`
	Audience  string    `bson:"aud"`
	Algorithm string    `bson:"algorithm"`
	Created   time.Time `bson:"created"`
	Changed   time.Time `bson:"changed"`
	Exp       int64     `bson:"exp"`
	JWT       string    `bson:"jwt"`
	// JWTHash is left out while empty: its unique index is sparse, so that
	// any number of links without a JWT can exist.
	JWTHash      string    `bson:"jwt_hash,omitempty"`
	LinkedTo     string    `bson:"linked_to"`
	LinkedSystem string    `bson:"linked_system"`
	LinkedOn     time.Time `bson:"linked_on,omitempty"`
	WithdrawnOn  string    `bson:"withdrawn_on"`
	Revoked      time.Time `bson:"revoked,omitempty"` // absent unless revoked
	Rev          int64     `bson:"rev"`               // see revFilter
}

func toLinkRecord(l idm.Link) linkRecord {
	return linkRecord{
		ID:           l.ID,
		SSSID:        l.SSSID,
		Issuer:       l.Issuer,
		Audience:     l.Audience,
		Algorithm:    l.Algorithm,
		Created:      idm.Timestamp(l.Created),
		Changed:      idm.Timestamp(l.Changed),
		Exp:          l.Exp,
		JWT:          l.JWT,
		JWTHash:      l.JWTHash,
		LinkedTo:     l.LinkedTo,
		LinkedSystem: l.LinkedSystem,
		LinkedOn:     idm.Timestamp(l.LinkedOn),
		WithdrawnOn:  l.WithdrawnOn,
		Revoked:      idm.Timestamp(l.Revoked),
		Rev:          l.Rev,
	}
}

func (r linkRecord) link() idm.Link {
	return idm.Link{
		ID:           r.ID,
		SSSID:        r.SSSID,
		Issuer:       r.Issuer,
		Audience:     r.Audience,
		Algorithm:    r.Algorithm,
		Created:      fromDate(r.Created),
		Changed:      fromDate(r.Changed),
		Exp:          r.Exp,
		JWT:          r.JWT,
		JWTHash:      r.JWTHash,
		LinkedTo:     r.LinkedTo,
		LinkedSystem: r.LinkedSystem,
		LinkedOn:     fromDate(r.LinkedOn),
		WithdrawnOn:  r.WithdrawnOn,
		Revoked:      fromDate(r.Revoked),
		Rev:          r.Rev,
	}
}

type auditRecord struct {
	// Seq is the record's place in the audit log; nil only in records
	// written before the log, until Open numbers them.
	Seq      *int64    `bson:"seq,omitempty"`
	ID       string    `bson:"_id"`
	Time     time.Time `bson:"time"`
	Document string    `bson:"document"`
	DocType  string    `bson:"doc_type"`
	ActorID  string    `bson:"actor_id"`
	Actor    string    `bson:"actor"`
	Action   string    `bson:"action"`
	// Old and New are JSON texts, kept as strings for the same reason as
	// subjectRecord.Extra; left out when empty.
	Old string `bson:"old,omitempty"`
	New string `bson:"new,omitempty"`
}

func toAuditRecord(e idm.AuditEvent) auditRecord {
	return auditRecord{
		Seq:      &e.Seq,
		ID:       e.ID,
		Time:     idm.Timestamp(e.Time),
		Document: e.Document,
		DocType:  e.DocType,
		ActorID:  e.ActorID,
		Actor:    e.Actor,
		Action:   e.Action,
		Old:      string(e.Old),
		New:      string(e.New),
	}
}

func (r auditRecord) event() idm.AuditEvent {
	e := idm.AuditEvent{
		Seq:      -1,
		ID:       r.ID,
		Time:     fromDate(r.Time),
		Document: r.Document,
		DocType:  r.DocType,
		ActorID:  r.ActorID,
		Actor:    r.Actor,
		Action:   r.Action,
	}
	if r.Seq != nil {
		e.Seq = *r.Seq
	}
	if r.Old != "" {
		e.Old = json.RawMessage(r.Old)
	}
	if r.New != "" {
		e.New = json.RawMessage(r.New)
	}
	return e
}

type resetTokenRecord struct {
	Hash    string    `bson:"_id"`
	UserID  string    `bson:"user_id"`
	Purpose string    `bson:"purpose"`
	Created time.Time `bson:"created"`
	Expires time.Time `bson:"expires"`
}

func toResetTokenRecord(t idm.ResetToken) resetTokenRecord {
	return resetTokenRecord{
		Hash:    t.Hash,
		UserID:  t.UserID,
		Purpose: t.Purpose,
		Created: idm.Timestamp(t.Created),
		Expires: idm.Timestamp(t.Expires),
	}
}

func (r resetTokenRecord) token() idm.ResetToken {
	return idm.ResetToken{
		Hash:    r.Hash,
		UserID:  r.UserID,
		Purpose: r.Purpose,
		Created: fromDate(r.Created),
		Expires: fromDate(r.Expires),
	}
}

type sessionRecord struct {
	IDHash       string    `bson:"id_hash"`
	UserID       string    `bson:"user_id"`
	TokenVersion int64     `bson:"token_version"`
	Created      time.Time `bson:"created"`
	LastSeen     time.Time `bson:"last_seen"`
	Expires      time.Time `bson:"expires"`
}

func toSessionRecord(x idm.Session) sessionRecord {
	return sessionRecord{
		IDHash:       x.IDHash,
		UserID:       x.UserID,
		TokenVersion: x.TokenVersion,
		Created:      idm.Timestamp(x.Created),
		LastSeen:     idm.Timestamp(x.LastSeen),
		Expires:      idm.Timestamp(x.Expires),
	}
}

func (r sessionRecord) session() idm.Session {
	return idm.Session{
		IDHash:       r.IDHash,
		UserID:       r.UserID,
		TokenVersion: r.TokenVersion,
		Created:      fromDate(r.Created),
		LastSeen:     fromDate(r.LastSeen),
		Expires:      fromDate(r.Expires),
	}
}

type signingKeyRecord struct {
	Name    string    `bson:"_id"`
	KID     string    `bson:"kid"`
	Alg     string    `bson:"alg"`
	Secret  []byte    `bson:"secret"`
	Created time.Time `bson:"created"`
}

func toSigningKeyRecord(k idm.SigningKey) signingKeyRecord {
	return signingKeyRecord{
		Name:    k.Name,
		KID:     k.KID,
		Alg:     k.Alg,
		Secret:  slices.Clone(k.Secret),
		Created: idm.Timestamp(k.Created),
	}
}

func (r signingKeyRecord) key() idm.SigningKey {
	return idm.SigningKey{
		Name:    r.Name,
		KID:     r.KID,
		Alg:     r.Alg,
		Secret:  r.Secret,
		Created: fromDate(r.Created),
	}
}

// bootstrapID is the _id of the bootstrap marker in the meta collection.
const bootstrapID = "bootstrap"

type markerRecord struct {
	ID string    `bson:"_id"`
	At time.Time `bson:"at"`
}

// fromDate returns a time read from the database in UTC, and the zero time
// for the zero date (and for a field that was left out).
func fromDate(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}
