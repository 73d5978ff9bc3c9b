package users

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
)

// Messages of the second factor's endpoints.
const (
	msgTOTPActive    = "TOTP is already active; remove it first"
	msgTOTPNoPending = "there is no pending TOTP enrolment; start one with POST /user/me/totp"
	msgTOTPChanged   = "the TOTP enrolment was changed by another request; start again"
	msgTOTPWrongCode = "the code is not correct"
)

// The kinds of [totpEdit].
const (
	totpEnrol = iota + 1
	totpConfirm
	totpRemove
	totpReset
)

// totpEdit is a change of a user's second factor, made by [Service.apply].
type totpEdit struct {
	kind   int
	secret string                        // enrol: the new secret; confirm: the one the code was checked with
	step   int64                         // confirm: the step of the code
	hashes [idm.RecoveryCodeCount]string // confirm: the recovery codes' hashes
}

// totpState names a second factor's state for the audit trail.
func totpState(t idm.TOTP) string {
	switch {
	case t.Active:
		return "active"
	case t.Secret != "":
		return "pending"
	}
	return "none"
}

// apply makes the change to next, read as cur, and returns its audit
// change, or nil when nothing changes.
func (e *totpEdit) apply(cur idm.User, next *idm.User) (*change, error) {
	var action string
	switch e.kind {
	case totpEnrol:
		if cur.TOTP.Active {
			return nil, idm.E(idm.ErrConflict, msgTOTPActive)
		}
		next.TOTP = idm.TOTP{Secret: e.secret}
		action = ActionTOTPEnrol
	case totpConfirm:
		switch {
		case cur.TOTP.Active:
			return nil, idm.E(idm.ErrConflict, msgTOTPActive)
		case cur.TOTP.Secret != e.secret:
			return nil, idm.E(idm.ErrConflict, msgTOTPChanged)
		}
		next.TOTP = idm.TOTP{Secret: e.secret, Active: true, LastStep: e.step, Recovery: e.hashes}
		action = ActionTOTPConfirm
	case totpRemove, totpReset:
		if cur.TOTP == (idm.TOTP{}) {
			return nil, nil
		}
		next.TOTP = idm.TOTP{}
		action = ActionTOTPRemove
		if e.kind == totpReset {
			action = ActionTOTPReset
		}
	default:
		return nil, fmt.Errorf("users: unknown TOTP change %d", e.kind)
	}
	c := &change{action: action,
		old: &auditState{Username: cur.Username, TOTP: totpState(cur.TOTP)},
		new: &auditState{Username: cur.Username, TOTP: totpState(next.TOTP)}}
	if next.TOTP.Active {
		c.new.RecoveryCodes = ptr(len(idm.RecoveryList(next.TOTP.Recovery)))
	}
	return c, nil
}

// passwordCheck says what a check of a user's password is for: the request
// field that carries it and the audit actions of a wrong one and of a
// refusal under throttling.
type passwordCheck struct {
	field, wrongAction, throttledAction string
}

var (
	changePasswordCheck = passwordCheck{"current_password", ActionWrongPassword, ActionPasswordThrottled}
	removeTOTPCheck     = passwordCheck{"password", ActionTOTPWrongPassword, ActionTOTPThrottled}
)

// EnrolTOTP starts a new enrolment of actor's second factor: a new random
// key, kept pending (it replaces a pending one) until [Service.ConfirmTOTP].
// It returns the key with its otpauth:// URI and QR code, which are shown
// this once. An active second factor gives a 409.
func (s *Service) EnrolTOTP(ctx context.Context, actor idm.User) (auth.TOTPEnrolment, error) {
	if actor.ID == "" {
		return auth.TOTPEnrolment{}, idm.E(idm.ErrInvalid, "a second factor is enrolled by its user")
	}
	if actor.TOTP.Active {
		return auth.TOTPEnrolment{}, idm.E(idm.ErrConflict, msgTOTPActive)
	}
	key, err := auth.NewTOTPKey(s.issuer, actor.Username)
	if err != nil {
		return auth.TOTPEnrolment{}, err
	}
	if _, err := s.apply(ctx, actor, actor.ID, edit{totp: &totpEdit{kind: totpEnrol, secret: key.Secret}}, false); err != nil {
		return auth.TOTPEnrolment{}, err
	}
	return key, nil
}

// ConfirmTOTP activates actor's pending second factor with a current code
// of it and returns the new recovery codes, which are shown this once (the
// store keeps their hashes). The check of the code counts under the login
// throttling of the account, as a password check does: a wrong code keeps
// its place as a failure and is a 400 (the enrolment stays pending); a
// throttled account gets a 429. The code's step is the last accepted one,
// so that it cannot also be used to log in.
func (s *Service) ConfirmTOTP(ctx context.Context, actor idm.User, code string) ([]string, error) {
	switch {
	case actor.ID == "":
		return nil, idm.E(idm.ErrInvalid, "a second factor is confirmed by its user")
	case code == "":
		return nil, idm.E(idm.ErrInvalid, "code is required")
	case actor.TOTP.Active:
		return nil, idm.E(idm.ErrConflict, msgTOTPActive)
	case actor.TOTP.Secret == "":
		return nil, idm.E(idm.ErrConflict, msgTOTPNoPending)
	}
	key := auth.LoginKey(actor.Username)
	now := s.now()
	lf, ok, err := s.store.ReserveLoginAttempt(ctx, key, now, s.window, s.maxFails)
	if err != nil {
		return nil, counterUnavailable(actor, err)
	}
	if !ok {
		return nil, s.throttled(ctx, actor, actor, lf, now, ActionTOTPCodeThrottled)
	}
	step, ok := auth.MatchTOTP(actor.TOTP.Secret, code, now, 0)
	if !ok {
		if _, err := s.audit(context.WithoutCancel(ctx), actor, actor, s.timestamp(), change{action: ActionTOTPWrongCode,
			new: &auditState{Username: actor.Username, LoginFailures: ptr(lf.Count)}}); err != nil {
			s.log.ErrorContext(ctx, "users: auditing a wrong TOTP code", "user", actor.ID, "err", err)
		}
		return nil, idm.E(idm.ErrInvalid, msgTOTPWrongCode)
	}
	codes, hashes, err := auth.NewRecoveryCodes()
	if err != nil {
		return nil, err
	}
	e := edit{totp: &totpEdit{kind: totpConfirm, secret: actor.TOTP.Secret, step: step, hashes: hashes}}
	if _, err := s.apply(ctx, actor, actor.ID, e, false); err != nil {
		return nil, err
	}
	if err := s.store.ResetLoginFailures(ctx, key); err != nil {
		s.log.ErrorContext(ctx, "users: clearing login failures after a TOTP confirmation", "user", actor.ID, "err", err)
	}
	return codes, nil
}

// RemoveTOTP removes actor's own second factor (pending or active), given
// their password, which is checked under the login throttling of the
// account as a current_password is (a wrong one is a 403, a throttled
// account gets a 429). Removing none is no change.
func (s *Service) RemoveTOTP(ctx context.Context, actor idm.User, password string) error {
	switch {
	case actor.ID == "":
		return idm.E(idm.ErrInvalid, "a second factor is removed by its user; admins reset it")
	case password == "":
		return idm.E(idm.ErrInvalid, "password is required")
	case len(password) > maxStringBytes:
		return idm.E(idm.ErrInvalid, fmt.Sprintf("password must be at most %d bytes long", maxStringBytes))
	}
	if err := s.checkCurrentPassword(ctx, actor, actor, password, removeTOTPCheck); err != nil {
		return err
	}
	_, err := s.apply(ctx, actor, actor.ID, edit{totp: &totpEdit{kind: totpRemove}}, false)
	return err
}

// totpBody is the answer of POST /user/me/totp.
type totpBody struct {
	Secret string `json:"secret"`
	URI    string `json:"uri"`
	QRPNG  []byte `json:"qr_png"` // base64, as encoding/json writes []byte
}

// confirmInput is the body of POST /user/me/totp/confirm.
type confirmInput struct {
	Code string `json:"code"`
}

// removeTOTPInput is the body of DELETE /user/me/totp.
type removeTOTPInput struct {
	Password string `json:"password"`
}

// enrolTOTP serves POST /user/me/totp. It reads no body.
func (h *Handler) enrolTOTP(w http.ResponseWriter, r *http.Request, actor idm.User) {
	key, err := h.svc.EnrolTOTP(r.Context(), actor)
	if err != nil {
		idm.WriteError(w, r, h.log, err)
		return
	}
	idm.WriteData(w, http.StatusCreated, totpBody{Secret: key.Secret, URI: key.URI, QRPNG: key.QRPNG})
}

// confirmTOTP serves POST /user/me/totp/confirm.
func (h *Handler) confirmTOTP(w http.ResponseWriter, r *http.Request, actor idm.User) {
	var in confirmInput
	if err := idm.DecodeJSON(w, r, h.maxBody, &in); err != nil {
		idm.WriteError(w, r, h.log, err)
		return
	}
	codes, err := h.svc.ConfirmTOTP(r.Context(), actor, in.Code)
	if h.writeThrottled(w, r, err) {
		return
	}
	if err != nil {
		idm.WriteError(w, r, h.log, err)
		return
	}
	idm.WriteData(w, http.StatusOK, struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}{codes})
}

// removeTOTP serves DELETE /user/me/totp.
func (h *Handler) removeTOTP(w http.ResponseWriter, r *http.Request, actor idm.User) {
	var in removeTOTPInput
	if err := idm.DecodeJSON(w, r, h.maxBody, &in); err != nil {
		idm.WriteError(w, r, h.log, err)
		return
	}
	err := h.svc.RemoveTOTP(r.Context(), actor, in.Password)
	if h.writeThrottled(w, r, err) {
		return
	}
	if err != nil {
		idm.WriteError(w, r, h.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// writeThrottled answers a check refused under the login throttling (429
// with Retry-After) and reports whether err was one.
func (h *Handler) writeThrottled(w http.ResponseWriter, r *http.Request, err error) bool {
	var throttled *throttledError
	if !errors.As(err, &throttled) {
		return false
	}
	auth.WriteTooMany(w, r, throttled.retryAfter, msgThrottled)
	return true
}
