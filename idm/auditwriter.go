package idm

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"
)

// Suffixes of compensating audit records: the action of the record they
// compensate followed by one of these (for example "create failed").
const (
	// AuditFailed marks a change that was not made.
	AuditFailed = " failed"
	// AuditUndone marks a change that was made and then taken back.
	AuditUndone = " undone"
	// AuditOutcomeUnknown marks a change whose write was sent but whose
	// outcome could not be found out (see [ErrAmbiguous]): whether it was
	// made shows in the record itself, later.
	AuditOutcomeUnknown = " outcome unknown"
)

// AuditAppender appends audit records; every [AuditStore] is one.
type AuditAppender interface {
	AppendAudit(ctx context.Context, e AuditEvent) error
}

// AuditWriter writes the audit records of one writer (a handler, a command)
// in one shape, so that every package records alike: each record gets a
// fresh, time-ordered ID (see [AuditWriter.NewID]), and a change that does not
// go through as recorded gets a compensating record (see
// [AuditWriter.Compensate]). An AuditWriter is safe for concurrent use.
type AuditWriter struct {
	store   AuditAppender
	now     func() time.Time
	log     *slog.Logger
	process [5]byte
	counter atomic.Uint32
}

// NewAuditWriter returns an AuditWriter that appends to store. now is the clock
// (nil means time.Now); log receives the failures of compensating records
// (nil discards them).
func NewAuditWriter(store AuditAppender, now func() time.Time, log *slog.Logger) *AuditWriter {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &AuditWriter{store: store, now: now, log: log}
	_, _ = rand.Read(l.process[:]) // crypto/rand.Read never fails (Go 1.24+)
	return l
}

// NewID returns a fresh ID for a record written at t. IDs have the shape
// of MongoDB ObjectIds - 4 bytes of Unix seconds, 5 random bytes fixed per
// AuditWriter and a 3-byte counter - so that, as stores order records of the
// same time by ID, the records one AuditWriter writes at the same time keep
// the order in which they were written.
func (l *AuditWriter) NewID(t time.Time) string {
	var b [12]byte
	binary.BigEndian.PutUint32(b[:4], uint32(t.Unix()))
	copy(b[4:9], l.process[:])
	c := l.counter.Add(1)
	b[9], b[10], b[11] = byte(c>>16), byte(c>>8), byte(c)
	return hex.EncodeToString(b[:])
}

// Append writes e with a fresh ID; a zero e.Time becomes the current time.
// It returns the record as written.
func (l *AuditWriter) Append(ctx context.Context, e AuditEvent) (AuditEvent, error) {
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	e.Time = Timestamp(e.Time)
	e.ID = l.NewID(e.Time)
	return e, l.store.AppendAudit(ctx, e)
}

// Compensate writes the record that says how the change recorded by e
// ended when it did not go through as recorded: a copy of e (document,
// actor, old and new values) whose action is e's followed by suffix
// ([AuditFailed], [AuditUndone] or [AuditOutcomeUnknown]), at the current
// time but never before e's, and with a later ID than e when e was written
// by l: stores order records by time and then ID, so it always sorts after
// e (and before a record l writes later at the same time). It writes even when
// ctx has been cancelled, so that the trail stays true; a failure is logged
// with cause (the change's error) and returned.
func (l *AuditWriter) Compensate(ctx context.Context, e AuditEvent, suffix string, cause error) (AuditEvent, error) {
	at := Timestamp(l.now())
	if at.Before(e.Time) {
		at = e.Time // a clock that went back
	}
	e.Time = at
	e.ID = l.NewID(at)
	e.Action += suffix
	ctx = context.WithoutCancel(ctx)
	if err := l.store.AppendAudit(ctx, e); err != nil {
		l.log.ErrorContext(ctx, "writing a compensating audit record", "doctype", e.DocType, "document", e.Document,
			"action", e.Action, "err", err, "cause", cause)
		return e, err
	}
	return e, nil
}

// Settle writes what is true of the changes recorded by records, whose
// write returned err, and returns the error the caller should answer with.
// Nothing is written for a nil err. When err wraps [ErrAmbiguous] the write
// may have been applied: applied (when not nil) reads the store again to
// tell. If it was applied, nothing is written and Settle returns nil: the
// change is made. If it was not, or err is any other error, each record
// gets its [AuditFailed] record. If it cannot be told (applied is nil or
// fails), each gets an [AuditOutcomeUnknown] record. In both cases err is
// returned.
func (l *AuditWriter) Settle(ctx context.Context, records []AuditEvent, err error, applied func(ctx context.Context) (bool, error)) error {
	if err == nil {
		return nil
	}
	suffix := AuditFailed
	if errors.Is(err, ErrAmbiguous) {
		suffix = AuditOutcomeUnknown
		if applied != nil {
			done, aerr := applied(context.WithoutCancel(ctx))
			switch {
			case aerr != nil:
				l.log.ErrorContext(ctx, "reading back a write of unknown outcome", "err", aerr, "cause", err)
			case done:
				return nil
			default:
				suffix = AuditFailed
			}
		}
	}
	for _, e := range records {
		_, _ = l.Compensate(ctx, e, suffix, err)
	}
	return err
}
