package users

import (
	"encoding/json"
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

	// The second factor: a new (pending) enrolment, its confirmation, its
	// removal by the user and its reset by an admin. Each use of a
	// recovery code at login is recorded as auth.ActionRecoveryCodeUsed.
	ActionTOTPEnrol   = "enrol totp"
	ActionTOTPConfirm = "confirm totp"
	ActionTOTPRemove  = "remove totp"
	ActionTOTPReset   = "reset totp"
	// ActionTOTPWrongPassword and ActionTOTPThrottled record a refused
	// removal; ActionTOTPWrongCode and ActionTOTPCodeThrottled a refused
	// confirmation.
	ActionTOTPWrongPassword = "remove totp refused: wrong password"
	ActionTOTPThrottled     = "remove totp refused: too many failed attempts"
	ActionTOTPWrongCode     = "confirm totp refused: wrong code"
	ActionTOTPCodeThrottled = "confirm totp refused: too many failed attempts"

	// The suffixes are idm's, which every package uses.
	ActionFailedSuffix = idm.AuditFailed
	ActionUndoneSuffix = idm.AuditUndone
)

// auditState is what audit records show of a user: never a secret.
type auditState struct {
	Username        string     `json:"username,omitempty"`
	Admin           *bool      `json:"admin,omitempty"`
	Role            string     `json:"role,omitempty"`
	Sites           []string   `json:"sites,omitempty"`
	Disabled        *bool      `json:"disabled,omitempty"`
	PasswordSet     *bool      `json:"password_set,omitempty"`
	PasswordChanged *time.Time `json:"password_changed,omitempty"`
	LoginFailures   *int       `json:"login_failures,omitempty"`
	Invited         bool       `json:"invited,omitempty"`
	// TOTP is the state of the second factor: "none", "pending" or
	// "active" (never the secret); RecoveryCodes how many unused recovery
	// codes there are.
	TOTP          string `json:"totp,omitempty"`
	RecoveryCodes *int   `json:"recovery_codes,omitempty"`
	Bootstrap     bool   `json:"bootstrap,omitempty"`
}

// snapshot is the audit form of a whole user record.
func snapshot(u idm.User) *auditState {
	role, sites := u.Access()
	return &auditState{
		Username:    u.Username,
		Admin:       ptr(u.Admin),
		Role:        string(role),
		Sites:       sites,
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

func marshalState(s *auditState) (json.RawMessage, error) {
	if s == nil {
		return nil, nil
	}
	return json.Marshal(s)
}
