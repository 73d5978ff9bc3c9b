package users

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/c3-pro/idm/idm"
)

// Audit actions recorded for changes to users. A change that fails after
// its record was written gets a compensating record whose action is the
// original action followed by [ActionFailedSuffix]; one that is taken back
// (because it would have left no enabled admin) gets one followed by
// [ActionUndoneSuffix].
const (
	ActionCreate         = "create"
	ActionDelete         = "delete"
	ActionSetAdmin       = "set admin"
	ActionUnsetAdmin     = "unset admin"
	ActionDisable        = "disable"
	ActionEnable         = "enable"
	ActionChangePassword = "change password"
	ActionUnlock         = "unlock"
	// ActionWrongPassword records a refused password change: the
	// current_password was wrong (the failure counts towards the account's
	// login throttling). ActionPasswordThrottled records one refused
	// unchecked because the account is throttled.
	ActionWrongPassword     = "change password refused: wrong current password"
	ActionPasswordThrottled = "change password refused: too many failed attempts"

	ActionFailedSuffix = " failed"
	ActionUndoneSuffix = " undone"
)

// auditState is what audit records show of a user: never a secret.
type auditState struct {
	Username        string     `json:"username,omitempty"`
	Admin           *bool      `json:"admin,omitempty"`
	Disabled        *bool      `json:"disabled,omitempty"`
	PasswordSet     *bool      `json:"password_set,omitempty"`
	PasswordChanged *time.Time `json:"password_changed,omitempty"`
	LoginFailures   *int       `json:"login_failures,omitempty"`
	Invited         bool       `json:"invited,omitempty"`
	Bootstrap       bool       `json:"bootstrap,omitempty"`
}

// snapshot is the audit form of a whole user record.
func snapshot(u idm.User) *auditState {
	return &auditState{
		Username:    u.Username,
		Admin:       ptr(u.Admin),
		Disabled:    ptr(u.Disabled),
		PasswordSet: ptr(u.PasswordHash != ""),
	}
}

func ptr[T any](v T) *T { return &v }

// change is one audited change of a user.
type change struct {
	action   string
	old, new *auditState
}

// audit appends the records of changes to the user target made by actor, in
// order, before the changes are made. It returns the records written so far
// even when it fails, so that the caller can compensate them.
func (h *Handler) audit(ctx context.Context, actor, target idm.User, at time.Time, changes ...change) ([]idm.AuditEvent, error) {
	var written []idm.AuditEvent
	for _, c := range changes {
		e := idm.AuditEvent{
			ID:       h.ids.next(at),
			Time:     at,
			Document: target.ID,
			DocType:  idm.DocUser,
			ActorID:  actor.ID,
			Actor:    actor.Username,
			Action:   c.action,
		}
		var err error
		if e.Old, err = marshalState(c.old); err == nil {
			e.New, err = marshalState(c.new)
		}
		if err != nil {
			return written, fmt.Errorf("users: encoding audit values: %w", err)
		}
		if err := h.store.AppendAudit(ctx, e); err != nil {
			return written, fmt.Errorf("users: writing the audit record %q for user %s: %w", c.action, target.ID, err)
		}
		written = append(written, e)
	}
	return written, nil
}

// compensate appends, for each record, a record saying that its change
// failed (suffix ActionFailedSuffix) or was undone (ActionUndoneSuffix).
// It runs even when ctx has been cancelled, so that the trail stays true;
// failures are logged.
func (h *Handler) compensate(ctx context.Context, records []idm.AuditEvent, suffix string, cause error) {
	ctx = context.WithoutCancel(ctx)
	at := h.timestamp()
	for _, e := range records {
		e.ID = h.ids.next(at)
		e.Time = at
		e.Action += suffix
		if err := h.store.AppendAudit(ctx, e); err != nil {
			h.log.ErrorContext(ctx, "users: writing a compensating audit record failed",
				"user", e.Document, "action", e.Action, "err", err, "cause", cause)
		}
	}
}

func marshalState(s *auditState) (json.RawMessage, error) {
	if s == nil {
		return nil, nil
	}
	return json.Marshal(s)
}

// auditIDs mints the IDs of audit records. They have the shape of MongoDB
// ObjectIds - 4 bytes of Unix seconds, 5 random bytes fixed per handler, and
// a 3-byte counter - so that, as stores order records of the same time by
// ID, records written by one handler in the same millisecond (a change and
// its compensation, or several changes of one request) keep the order in
// which they were written.
type auditIDs struct {
	process [5]byte
	counter atomic.Uint32
}

func newAuditIDs() *auditIDs {
	s := &auditIDs{}
	_, _ = rand.Read(s.process[:]) // crypto/rand.Read never fails (Go 1.24+)
	return s
}

// next returns a fresh ID for a record written at t.
func (s *auditIDs) next(t time.Time) string {
	var b [12]byte
	binary.BigEndian.PutUint32(b[:4], uint32(t.Unix()))
	copy(b[4:9], s.process[:])
	c := s.counter.Add(1)
	b[9], b[10], b[11] = byte(c>>16), byte(c>>8), byte(c)
	return hex.EncodeToString(b[:])
}
