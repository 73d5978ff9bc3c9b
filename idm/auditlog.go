package idm

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// AuditLogStore keeps what makes the audit trail tamper-evident (see
// package auditlog): every record's Seq, the stored hashes of the Merkle
// tree whose leaves are the records in Seq order, and signed checkpoints
// of that tree. Tree hashes are numbered as golang.org/x/mod/sumdb/tlog
// numbers its stored hashes (tlog.StoredHashIndex); the store keeps them as
// opaque 32-byte values.
type AuditLogStore interface {
	// AuditCount returns the number of audit records: the Seq that the next
	// appended record gets.
	AuditCount(ctx context.Context) (int64, error)
	// AuditsBySeq returns the records with from <= Seq < to in Seq order,
	// as they are stored (a log that was tampered with may miss some or
	// hold duplicates: callers check). A record that cannot be decoded
	// gives a [*BadAuditRecordError] naming its Seq.
	AuditsBySeq(ctx context.Context, from, to int64) ([]AuditEvent, error)
	// TreeSize returns how many records the stored tree hashes cover.
	TreeSize(ctx context.Context) (int64, error)
	// TreeHashes returns the stored tree hashes at the given indexes; an
	// index that is not stored gives an error that wraps ErrNotFound.
	TreeHashes(ctx context.Context, indexes []int64) ([][32]byte, error)
	// AddTreeHashes stores hashes at the indexes start, start+1, … and
	// then raises the tree size to size (never lowers it). Storing a hash
	// again with the same value is harmless, so several processes may
	// extend the tree at once.
	AddTreeHashes(ctx context.Context, start int64, hashes [][32]byte, size int64) error
	// AddCheckpoint stores a signed checkpoint; one of the same Size
	// exists already gives an error that wraps ErrConflict.
	AddCheckpoint(ctx context.Context, c Checkpoint) error
	// Checkpoints returns every stored checkpoint, smallest Size first.
	Checkpoints(ctx context.Context) ([]Checkpoint, error)
	// LatestCheckpoint returns the checkpoint of the largest Size, or an
	// error that wraps ErrNotFound when there is none.
	LatestCheckpoint(ctx context.Context) (Checkpoint, error)
	// ReplaceAudits rewrites stored records in place, each matched by its
	// Seq and ID (ErrNotFound when either does not match), keeping the Seq
	// and the Time.
	// It exists for erasure (GDPR Art. 17) only: the log stays verifiable
	// because an erasure record names each rewritten record's leaf hash.
	ReplaceAudits(ctx context.Context, records []AuditEvent) error
}

// Checkpoint is a signed statement of the audit log's tree: its Size (the
// number of records) and root, as a signed note (golang.org/x/mod/sumdb/note)
// whose text is a tree note: origin line, size, base64 root hash.
type Checkpoint struct {
	Size int64
	Note []byte // the signed note, as served at GET /audit/checkpoint
	Time time.Time
}

// BadAuditRecordError reports a stored audit record that cannot be read.
type BadAuditRecordError struct {
	Seq int64
	Err error
}

// Error implements error.
func (e *BadAuditRecordError) Error() string {
	return fmt.Sprintf("audit record seq %d cannot be read: %v", e.Seq, e.Err)
}

// Unwrap returns the cause.
func (e *BadAuditRecordError) Unwrap() error { return e.Err }

// CanonicalRecord holds the members of an audit record's canonical form
// (see [CanonicalAudit]), in their order: time as [FormatTime] writes it,
// Old and New as the stored JSON texts ("" when empty). Exports of the
// audit log write records in this shape.
type CanonicalRecord struct {
	Seq      int64  `json:"seq"`
	ID       string `json:"id"`
	Time     string `json:"time"`
	Document string `json:"document"`
	DocType  string `json:"doctype"`
	ActorID  string `json:"actor_id"`
	Actor    string `json:"actor"`
	Action   string `json:"action"`
	Old      string `json:"old"`
	New      string `json:"new"`
}

// Canonical returns the members of e's canonical form.
func (e AuditEvent) Canonical() CanonicalRecord {
	return CanonicalRecord{
		Seq: e.Seq, ID: e.ID, Time: FormatTime(Timestamp(e.Time)), Document: e.Document, DocType: e.DocType,
		ActorID: e.ActorID, Actor: e.Actor, Action: e.Action, Old: string(e.Old), New: string(e.New),
	}
}

// Event returns the audit record that c is the canonical form of; a time
// that is not RFC 3339 is an error.
func (c CanonicalRecord) Event() (AuditEvent, error) {
	t, err := time.Parse(time.RFC3339Nano, c.Time)
	if err != nil {
		return AuditEvent{}, fmt.Errorf("bad time %q", c.Time)
	}
	e := AuditEvent{Seq: c.Seq, ID: c.ID, Time: t, Document: c.Document, DocType: c.DocType,
		ActorID: c.ActorID, Actor: c.Actor, Action: c.Action}
	if c.Old != "" {
		e.Old = json.RawMessage(c.Old)
	}
	if c.New != "" {
		e.New = json.RawMessage(c.New)
	}
	return e, nil
}

// CanonicalAudit returns the canonical bytes of an audit record, whose
// tlog.RecordHash is the record's leaf in the audit log: the JSON object
//
//	{"seq":…,"id":"…","time":"…","document":"…","doctype":"…","actor_id":"…","actor":"…","action":"…","old":"…","new":"…"}
//
// with exactly these members in this order, as encoding/json writes them
// (no spaces; "<", ">" and "&" escaped as \u003c, \u003e, \u0026; invalid
// UTF-8 replaced by U+FFFD), time as [FormatTime] writes e.Time (UTC, RFC
// 3339 with fractional seconds), and old and new as strings holding the
// stored JSON texts ("" when empty).
func CanonicalAudit(e AuditEvent) []byte {
	b, err := json.Marshal(e.Canonical())
	if err != nil {
		panic(err) // strings and an integer always encode
	}
	return b
}
