package migrate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/c3-pro/idm/idm"
)

// This file turns one document of the original collection into the idm
// record it becomes. Each conversion returns the record and notes about it
// (things kept in another form, or left out), or an error that says why the
// document cannot be brought over.

// Field names of the original's documents.
const (
	fID        = "_id"
	fType      = "type"
	fCreated   = "created"
	fChanged   = "changed"
	fUsername  = "username"
	fPassword  = "password"
	fAdmin     = "admin"
	fTemporary = "temporary"
	fSSSID     = "sssid"
	fSub       = "sub"
	fIss       = "iss"
	fAud       = "aud"
	fSecret    = "secret"
	fAlgorithm = "algorithm"
	fExp       = "exp"
	fJWT       = "_jwt"
	fLinkedTo  = "linked_to"
	fLinkedSys = "linked_system"
	fLinkedOn  = "linked_on"
	fWithdrawn = "withdrawn_on"
	fDocument  = "document"
	fActorID   = "actor_id"
	fActor     = "actor"
	fDatetime  = "datetime"
	fEpoch     = "epoch"
	fAction    = "action"
)

// Record types of the original.
const (
	typeUser    = "user"
	typeSubject = "subject"
	typeLink    = "link"
	typeAudit   = "audit"
)

// recordTime returns the time in a created/changed field, or fallback when
// the field is absent or does not hold a time (then with a note).
func recordTime(doc bson.Raw, key string, fallback time.Time, what string) (time.Time, string) {
	t, ok, err := timeField(doc, key)
	switch {
	case err != nil:
		return fallback, fmt.Sprintf("%v; used %s %s instead", err, what, formatTime(fallback))
	case !ok:
		return fallback, ""
	}
	return t, ""
}

// droppedFields returns a note naming the fields of doc that are neither in
// known nor kept elsewhere, or "".
func droppedFields(doc bson.Raw, known ...string) string {
	elems, err := doc.Elements()
	if err != nil {
		return ""
	}
	var out []string
	for _, e := range elems {
		if !slices.Contains(known, e.Key()) {
			out = append(out, e.Key())
		}
	}
	if len(out) == 0 {
		return ""
	}
	return "fields left out: " + strings.Join(out, ", ")
}

// appendNote appends n to notes unless it is empty.
func appendNote(notes []string, n string) []string {
	if n == "" {
		return notes
	}
	return append(notes, n)
}

// bcryptPrefixes are the hash formats package auth verifies as they are.
var bcryptPrefixes = []string{"$2a$", "$2b$", "$2y$"}

// legacyUser is a user document of the original, converted.
type legacyUser struct {
	user       idm.User
	spelt      string // the username as the source held it
	resetToken bool   // a pending reset token (dropped)
	notes      []string
}

// toUser converts a user document. The username is stored in its normal
// form, idm.UsernameKey (lower-cased, NFC, plain width).
func toUser(id bson.ObjectID, doc bson.Raw) (legacyUser, error) {
	var out legacyUser
	name, err := str(doc, fUsername)
	if err != nil {
		return out, err
	}
	if name == "" {
		return out, errors.New("no username")
	}
	hash, err := strOrBytes(doc, fPassword)
	if err != nil {
		return out, err
	}
	switch {
	case hash == "":
		out.notes = append(out.notes, "no password hash: the user must set a password through /iforgot")
	case !slices.ContainsFunc(bcryptPrefixes, func(p string) bool { return strings.HasPrefix(hash, p) }):
		return out, errors.New("the password is not a bcrypt hash ($2a$, $2b$ or $2y$)")
	}
	admin, err := boolean(doc, fAdmin)
	if err != nil {
		return out, err
	}
	born := id.Timestamp().UTC()
	created, n1 := recordTime(doc, fCreated, born, "the ObjectId time")
	changed, n2 := recordTime(doc, fChanged, created, "the creation time")
	out.notes = appendNote(appendNote(out.notes, n1), n2)
	out.spelt = name
	if key := idm.UsernameKey(name); key != name {
		if key == strings.ToLower(name) {
			out.notes = append(out.notes, fmt.Sprintf("username %q lower-cased", clip(name)))
		} else {
			out.notes = append(out.notes, fmt.Sprintf("username %+q stored in its normal form %+q", clip(name), clip(key)))
		}
		name = key
	}
	out.resetToken = !absent(doc.Lookup(fTemporary))
	out.notes = appendNote(out.notes, droppedFields(doc, fID, fType, fUsername, fPassword, fAdmin, fTemporary, fCreated, fChanged))
	out.user = idm.User{
		ID:           id.Hex(),
		Username:     name,
		PasswordHash: hash,
		Admin:        admin,
		Created:      idm.Timestamp(created),
		Changed:      idm.Timestamp(changed),
	}
	return out, nil
}

// subjectStrings maps the string fields of a subject to where they go.
func subjectStrings(s *idm.Subject) []struct {
	key string
	dst *string
} {
	return []struct {
		key string
		dst *string
	}{
		{fSSSID, &s.SSSID}, {"name", &s.Name}, {"bday", &s.Bday}, {"email", &s.Email},
		{"date_invited", &s.DateInvited}, {"date_consented", &s.DateConsented},
		{"date_enrolled", &s.DateEnrolled}, {"date_withdrawn", &s.DateWithdrawn},
	}
}

// toSubject converts a subject document. Its known fields are kept as they
// were stored (dates are not validated); every other field, apart from _id
// and type, goes to Extra as JSON.
func toSubject(id bson.ObjectID, doc bson.Raw) (idm.Subject, []string, error) {
	s := idm.Subject{ID: id.Hex()}
	var notes []string
	known := []string{fID, fType, fCreated, fChanged}
	for _, f := range subjectStrings(&s) {
		known = append(known, f.key)
		v, note, err := strOrDate(doc, f.key)
		if err != nil {
			return idm.Subject{}, nil, err
		}
		*f.dst = v
		notes = appendNote(notes, note)
	}
	if s.SSSID == "" {
		return idm.Subject{}, nil, errors.New("no sssid")
	}
	born := id.Timestamp().UTC()
	created, n1 := recordTime(doc, fCreated, born, "the ObjectId time")
	changed, n2 := recordTime(doc, fChanged, created, "the creation time")
	notes = appendNote(appendNote(notes, n1), n2)
	s.Created, s.Changed = idm.Timestamp(created), idm.Timestamp(changed)

	elems, err := doc.Elements()
	if err != nil {
		return idm.Subject{}, nil, fmt.Errorf("malformed document: %w", err)
	}
	for _, e := range elems {
		if slices.Contains(known, e.Key()) {
			continue
		}
		raw, err := toJSON(e.Value())
		if err != nil {
			return idm.Subject{}, nil, fmt.Errorf("field %s: %w", e.Key(), err)
		}
		if s.Extra == nil {
			s.Extra = make(map[string]json.RawMessage)
		}
		s.Extra[e.Key()] = raw
	}
	return s, append(notes, apiRemarks(s)...), nil
}

// apiRemarks returns notes about the parts of a subject that today's API
// would not take: they are kept, but staff may be unable to see or change
// them until they are fixed.
func apiRemarks(s idm.Subject) []string {
	var notes []string
	if len(s.SSSID) > idm.MaxSSSIDLen {
		notes = append(notes, fmt.Sprintf("the sssid is longer than the API's limit of %d bytes: the subject cannot be changed through the API", idm.MaxSSSIDLen))
	}
	if len(s.Name) > idm.MaxNameLen {
		notes = append(notes, fmt.Sprintf("the name is longer than the API's limit of %d bytes", idm.MaxNameLen))
	}
	size := 2
	for _, k := range slices.Sorted(maps.Keys(s.Extra)) {
		size += len(k) + len(s.Extra[k]) + 4
		if !apiFieldName(k) {
			notes = append(notes, fmt.Sprintf("field %q is kept, but the API does not show fields so named", clip(k)))
		}
	}
	if len(s.Extra) > 0 && size > idm.MaxExtraBytes {
		notes = append(notes, fmt.Sprintf("the additional fields take %d bytes, more than the API's limit of %d: the subject cannot be changed through the API until some are removed", size, idm.MaxExtraBytes))
	}
	return notes
}

// apiFieldName reports whether the API takes key as the name of an
// additional subject field: 1 to 64 characters from A-Z, a-z, 0-9, '_' and
// '-', not starting with '_' (see the subject rules in API.md).
func apiFieldName(key string) bool {
	if len(key) == 0 || len(key) > 64 || key[0] == '_' {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// toLink converts a link document. The issued JWT is kept only as its
// SHA-256; the old per-link secret is left out.
func toLink(id bson.ObjectID, doc bson.Raw) (idm.Link, []string, error) {
	l := idm.Link{ID: id.Hex()}
	var notes []string
	for _, f := range []struct {
		key string
		dst *string
	}{
		{fSub, &l.SSSID}, {fIss, &l.Issuer}, {fAud, &l.Audience}, {fAlgorithm, &l.Algorithm},
		{fLinkedTo, &l.LinkedTo}, {fLinkedSys, &l.LinkedSystem},
	} {
		v, err := str(doc, f.key)
		if err != nil {
			return idm.Link{}, nil, err
		}
		*f.dst = v
	}
	if l.SSSID == "" {
		return idm.Link{}, nil, errors.New("no sub (the subject's sssid)")
	}
	withdrawn, note, err := strOrDate(doc, fWithdrawn)
	if err != nil {
		return idm.Link{}, nil, err
	}
	l.WithdrawnOn = withdrawn
	notes = appendNote(notes, note)

	born := id.Timestamp().UTC()
	created, n1 := recordTime(doc, fCreated, born, "the ObjectId time")
	notes = appendNote(notes, n1)
	l.Created = idm.Timestamp(created)
	if !absent(doc.Lookup(fChanged)) {
		changed, n2 := recordTime(doc, fChanged, created, "the creation time")
		notes = appendNote(notes, n2)
		l.Changed = idm.Timestamp(changed)
	}
	linkedOn, ok, err := timeField(doc, fLinkedOn)
	if err != nil {
		return idm.Link{}, nil, err
	}
	if ok {
		l.LinkedOn = idm.Timestamp(linkedOn)
	}
	if l.Exp, err = unixInt(doc, fExp); err != nil {
		return idm.Link{}, nil, err
	}
	token, err := strOrBytes(doc, fJWT)
	if err != nil {
		return idm.Link{}, nil, err
	}
	if token != "" {
		sum := sha256.Sum256([]byte(token))
		l.JWTHash = hex.EncodeToString(sum[:])
	}
	notes = appendNote(notes, droppedFields(doc, fID, fType, fSub, fIss, fAud, fSecret, fAlgorithm,
		fCreated, fChanged, fExp, fJWT, fLinkedTo, fLinkedSys, fLinkedOn, fWithdrawn))
	return l, notes, nil
}

// actors resolves the actors of audit records: the original stored the
// acting user's ObjectId (in actor_id, or in older versions in actor) and
// sometimes the spelt-out username (in actor).
type actors interface {
	usernameOf(id string) (string, bool)
	idOf(username string) (string, bool)
}

// toAudit converts an audit document. DocType is left for the caller, who
// knows the migrated records.
func toAudit(id bson.ObjectID, doc bson.Raw, who actors) (idm.AuditEvent, []string, error) {
	e := idm.AuditEvent{ID: id.Hex()}
	var notes []string
	document, ok, err := hexID(doc, fDocument)
	if err != nil {
		return idm.AuditEvent{}, nil, err
	}
	if !ok {
		return idm.AuditEvent{}, nil, errors.New("no document (the ID of the record it is about)")
	}
	e.Document = document
	if e.Action, err = str(doc, fAction); err != nil {
		return idm.AuditEvent{}, nil, err
	}

	// The time: datetime (newer versions) or epoch (older ones), falling
	// back to the ObjectId's time, which pymongo set when it wrote the
	// record.
	at, ok, err := timeField(doc, fDatetime)
	if !ok {
		epoch, eok, eerr := timeField(doc, fEpoch)
		switch {
		case eok:
			at = epoch
			if err != nil {
				notes = append(notes, fmt.Sprintf("%v; used the epoch field %s instead", err, formatTime(epoch)))
			}
		default:
			at = id.Timestamp().UTC()
			if err == nil {
				err = eerr
			}
			if err != nil {
				notes = append(notes, fmt.Sprintf("%v; used the ObjectId time %s instead", err, formatTime(at)))
			}
		}
	}
	e.Time = idm.Timestamp(at)

	// The actor: its ID in actor_id (newer versions) or in actor (older
	// ones); actor may also hold the spelt-out username.
	actorID, hasID, err := hexID(doc, fActorID)
	if err != nil {
		return idm.AuditEvent{}, nil, err
	}
	var spelt string
	switch v := doc.Lookup(fActor); {
	case absent(v):
	case v.Type == bson.TypeObjectID:
		if !hasID {
			actorID, hasID = v.ObjectID().Hex(), true
		}
	case v.Type == bson.TypeString && isHexID(v.StringValue()):
		if !hasID {
			actorID, hasID = strings.ToLower(v.StringValue()), true
		}
	case v.Type == bson.TypeString:
		spelt = v.StringValue()
	default:
		return idm.AuditEvent{}, nil, fmt.Errorf("field %s is a %s, not a string or ObjectId", fActor, typeName(v))
	}
	switch {
	case hasID:
		e.ActorID = actorID
		if name, ok := who.usernameOf(actorID); ok {
			e.Actor = name
		} else if spelt != "" {
			e.Actor = spelt
		} else {
			notes = append(notes, fmt.Sprintf("actor %s is not among the users: kept without a username", actorID))
		}
	case spelt != "":
		e.Actor = spelt
		if uid, ok := who.idOf(idm.UsernameKey(spelt)); ok {
			e.ActorID = uid
		}
	}
	notes = appendNote(notes, droppedFields(doc, fID, fType, fDocument, fActorID, fActor, fDatetime, fEpoch, fAction))
	return e, notes, nil
}

// isHexID reports whether s is an ObjectId in hex (in any case).
func isHexID(s string) bool {
	_, err := bson.ObjectIDFromHex(strings.ToLower(s))
	return err == nil
}
