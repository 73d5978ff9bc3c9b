package users

import (
	"context"
	"encoding/json"
	"fmt"
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

	// The suffixes are idm's, which every package uses.
	ActionFailedSuffix = idm.AuditFailed
	ActionUndoneSuffix = idm.AuditUndone
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
		if e, err = h.audits.Append(ctx, e); err != nil {
			return written, fmt.Errorf("users: writing the audit record %q for user %s: %w", c.action, target.ID, err)
		}
		written = append(written, e)
	}
	return written, nil
}

// compensate appends, for each record, a record saying that its change
// failed (suffix ActionFailedSuffix) or was undone (ActionUndoneSuffix),
// through idm.AuditWriter.Compensate: it runs even when ctx has been
// cancelled, so that the trail stays true; failures are logged.
func (h *Handler) compensate(ctx context.Context, records []idm.AuditEvent, suffix string, cause error) {
	for _, e := range records {
		_, _ = h.audits.Compensate(ctx, e, suffix, cause)
	}
}

// settle writes what is true of the changes recorded by records after
// their write returned err (see idm.AuditWriter.Settle): nothing when err is
// nil or when applied finds that an ambiguous write was made after all (it
// then returns nil), else a compensating record for each.
func (h *Handler) settle(ctx context.Context, records []idm.AuditEvent, err error, applied func(context.Context) (bool, error)) error {
	return h.audits.Settle(ctx, records, err, applied)
}

func marshalState(s *auditState) (json.RawMessage, error) {
	if s == nil {
		return nil, nil
	}
	return json.Marshal(s)
}
