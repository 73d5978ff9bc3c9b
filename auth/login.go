package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/c3-pro/idm/idm"
)

// Limits on the credentials of POST /auth; longer values are refused as
// invalid credentials.
const (
	maxUsernameBytes = 254
	maxPasswordBytes = 4096
	maxOTPBytes      = 64
)

// LoginKey returns the key of an account's login-failure counter:
// [idm.UsernameKey] of the username, the form in which usernames are stored
// and looked up, so that every spelling of a name counts against the one
// account it finds. Unknown accounts are counted under the same kind of
// key, so throttling never tells whether an account exists.
func LoginKey(username string) string { return idm.UsernameKey(username) }

// tokenResponse is the body of a successful POST /auth.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// loginAttempt carries one POST /auth through its steps.
type loginAttempt struct {
	addr     netip.Addr
	username string // as sent; "" when missing or unusable
	password string
	otp      string // the one-time or recovery code; "" when not sent
	key      string // LoginKey(username); "" when there is none
	valid    bool   // the two fields (and otp, if sent), non-empty strings within limits
}

// invalidCredentials is the one answer to every failed login.
func invalidCredentials() error { return idm.E(idm.ErrUnauthorized, "invalid credentials") }

// msgOTPRequired answers the right password of a user with an active second
// factor when no code came with it.
const msgOTPRequired = "one-time code required"

// serveAuth is POST /auth: {"username", "password"} for a token, and "otp"
// (a one-time or recovery code) for a user with an active second factor.
func (h *Handler) serveAuth(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	a := loginAttempt{addr: h.limiter.ClientAddr(r)}
	if ok, retry := h.limiter.AllowAddr(a.addr); !ok {
		h.outcome(OutcomeThrottled)
		h.log.InfoContext(ctx, "login throttled", "reason", "client address", "address", a.addr.String())
		WriteTooMany(w, r, retry, "too many login attempts; try again later")
		return
	}
	var body json.RawMessage
	if err := idm.DecodeJSON(w, r, 0, &body); err != nil {
		idm.WriteError(w, r, h.log, err)
		return
	}
	if err := a.parse(body); err != nil {
		idm.WriteError(w, r, h.log, err)
		return
	}
	now := h.now()

	// The attempt takes its place in the account's failure count before
	// its password is checked, so that concurrent attempts (on any instance
	// that shares the store) check at most maxFailures passwords per
	// window. The place stays as a failure unless the password is right.
	if a.key != "" {
		f, ok, err := h.store.ReserveLoginAttempt(ctx, a.key, now, h.window, h.maxFailures)
		if err != nil {
			// Fail closed: without the count, no password is checked.
			idm.WriteError(w, r, h.log, counterUnavailable(err))
			return
		}
		if !ok {
			h.throttled(w, r, a, f.Since.Add(h.window).Sub(now))
			return
		}
	}

	var user *idm.User
	if a.valid {
		u, err := idm.FindUserByUsername(ctx, h.store, a.username)
		switch {
		case err == nil:
			user = &u
		case !errors.Is(err, idm.ErrNotFound):
			idm.WriteError(w, r, h.log, err)
			return
		}
	}
	var ok, rehash bool
	var err error
	if user != nil {
		ok, rehash, err = h.pw.Verify(ctx, user.PasswordHash, a.password)
		if errors.Is(err, ErrHashFormat) {
			h.log.ErrorContext(ctx, "stored password hash is unusable", "user", user.ID, "err", err)
			ok, err = false, nil
		}
	} else {
		err = h.pw.DummyVerify(ctx, a.password)
	}
	if err != nil {
		h.writeHashError(w, r, err)
		return
	}
	if !ok || user.Disabled {
		h.failed(w, r, a, user)
		return
	}
	if user.TOTP.Active {
		// The reserved place stays unless the code is right too, so that
		// the right password cannot clear the count for guesses of codes.
		if a.otp == "" {
			h.otpRequired(w, r, a, *user)
			return
		}
		ok, err := h.secondFactor(ctx, a, *user, now)
		if err != nil {
			idm.WriteError(w, r, h.log, err)
			return
		}
		if !ok {
			h.failed(w, r, a, user)
			return
		}
	}
	h.succeeded(w, r, a, *user, rehash)
}

// secondFactor checks the code of a login whose password was right for a
// user with an active second factor: a one-time code of a step within the
// skew that is later than the last accepted one, or an unused recovery
// code. Either is accepted once, by a conditional write to the store that
// of concurrent logins with one code lets exactly one through. A store
// error is an error (the login fails closed).
func (h *Handler) secondFactor(ctx context.Context, a loginAttempt, user idm.User, now time.Time) (bool, error) {
	if IsTOTPCode(a.otp) {
		step, ok := MatchTOTP(user.TOTP.Secret, a.otp, now, user.TOTP.LastStep)
		if !ok {
			return false, nil
		}
		err := h.store.AcceptTOTPStep(ctx, user.ID, step)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, idm.ErrConflict), errors.Is(err, idm.ErrNotFound):
			return false, nil // used already, or TOTP removed meanwhile
		}
		return false, fmt.Errorf("auth: accepting a one-time code: %w", err)
	}
	err := h.store.ConsumeTOTPRecovery(ctx, user.ID, HashRecoveryCode(a.otp))
	switch {
	case errors.Is(err, idm.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("auth: consuming a recovery code: %w", err)
	}
	left := len(idm.RecoveryList(user.TOTP.Recovery)) - 1
	v, _ := json.Marshal(struct {
		Username string `json:"username"`
		Left     int    `json:"recovery_codes_left"`
	}{user.Username, max(left, 0)}) // a string and an int never fail
	h.audit(ctx, idm.AuditEvent{Document: user.ID, DocType: idm.DocUser, ActorID: user.ID, Actor: user.Username,
		Action: ActionRecoveryCodeUsed, New: v})
	return true, nil
}

// ActionRecoveryCodeUsed is the audit action of a login with a recovery
// code.
const ActionRecoveryCodeUsed = "use recovery code"

// otpRequired answers the right password of a user with an active second
// factor that came without a code: a 401 that says so. The attempt's place
// in the failure count stays.
func (h *Handler) otpRequired(w http.ResponseWriter, r *http.Request, a loginAttempt, user idm.User) {
	ctx := r.Context()
	h.outcome(OutcomeFailure)
	h.audit(ctx, idm.AuditEvent{DocType: idm.DocAuth, Document: user.ID, Action: "login refused: one-time code required",
		New: attemptJSON(a)})
	idm.WriteError(w, r, h.log, idm.E(idm.ErrUnauthorized, msgOTPRequired))
}

// parse checks the body of POST /auth. A body that is not a JSON object is
// a 400; missing, extra (other than otp), empty, non-string or over-long
// fields make the
// attempt invalid (a 401 like a wrong password), but a usable username is
// still counted against its account.
func (a *loginAttempt) parse(body []byte) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return idm.E(idm.ErrInvalid, "the request body must be a JSON object")
	}
	_, hasOTP := fields["otp"]
	a.valid = len(fields) == 2 || (len(fields) == 3 && hasOTP)
	str := func(name string, limit int) string {
		raw, ok := fields[name]
		var s string
		if !ok || json.Unmarshal(raw, &s) != nil || s == "" || len(s) > limit {
			a.valid = false
			return ""
		}
		return s
	}
	a.username = str("username", maxUsernameBytes)
	a.password = str("password", maxPasswordBytes)
	if hasOTP {
		a.otp = str("otp", maxOTPBytes)
	}
	if a.username != "" {
		a.key = LoginKey(a.username)
	}
	return nil
}

// counterUnavailable is the error of an attempt refused because the
// account's failure count could not be read or written: a 503, whose cause
// is logged.
func counterUnavailable(err error) error {
	return idm.Wrap(idm.ErrUnavailable, "service unavailable", fmt.Errorf("auth: login-failure counter: %w", err))
}

// writeHashError answers when no hashing worker could be had.
func (h *Handler) writeHashError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		// The client went away while queueing; nobody reads the answer.
		h.log.DebugContext(r.Context(), "login abandoned while waiting for a hashing worker")
		idm.WriteError(w, r, nil, idm.Wrap(idm.ErrUnavailable, "service unavailable", err))
		return
	}
	if errors.Is(err, idm.ErrUnavailable) {
		w.Header().Set("Retry-After", "1")
	}
	idm.WriteError(w, r, h.log, err)
}

// throttled answers an attempt on a throttled account.
func (h *Handler) throttled(w http.ResponseWriter, r *http.Request, a loginAttempt, retry time.Duration) {
	ctx := r.Context()
	h.outcome(OutcomeThrottled)
	h.log.InfoContext(ctx, "login throttled", "reason", "account", "address", a.addr.String())
	h.audit(ctx, idm.AuditEvent{DocType: idm.DocAuth, Action: "login throttled", New: attemptJSON(a)})
	WriteTooMany(w, r, retry, "too many login attempts; try again later")
}

// failed answers a failed attempt and audits it. The failure is counted
// against the account (known or not) already: the place the attempt
// reserved before its check stays.
func (h *Handler) failed(w http.ResponseWriter, r *http.Request, a loginAttempt, user *idm.User) {
	ctx := r.Context()
	h.outcome(OutcomeFailure)
	e := idm.AuditEvent{DocType: idm.DocAuth, Action: "login failed", New: attemptJSON(a)}
	if user != nil {
		e.Document = user.ID
	}
	h.audit(ctx, e)
	idm.WriteError(w, r, h.log, invalidCredentials())
}

// succeeded answers a successful login with a token, after resetting the
// account's failures, writing the audit record and recording the user's
// last login, and upgrades the stored
// hash when it is of a legacy scheme or cost.
func (h *Handler) succeeded(w http.ResponseWriter, r *http.Request, a loginAttempt, user idm.User, rehash bool) {
	ctx := r.Context()
	if err := h.store.ResetLoginFailures(ctx, a.key); err != nil {
		idm.WriteError(w, r, h.log, counterUnavailable(err))
		return
	}
	if _, err := h.audits.Append(ctx, idm.AuditEvent{
		Document: user.ID, DocType: idm.DocAuth,
		ActorID: user.ID, Actor: user.Username, Action: "login", New: attemptJSON(a),
	}); err != nil {
		idm.WriteError(w, r, h.log, err)
		return
	}
	// Every login that gets a token is recorded, for access reviews.
	if err := h.store.RecordLogin(ctx, user.ID, h.now()); err != nil {
		idm.WriteError(w, r, h.log, err)
		return
	}
	token, claims, err := h.tokens.issueStaff(user)
	if err != nil {
		idm.WriteError(w, r, h.log, err)
		return
	}
	if rehash {
		h.upgradeHash(ctx, user, a.password)
	}
	h.outcome(OutcomeSuccess)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	idm.WriteJSON(w, http.StatusOK, tokenResponse{
		AccessToken: token, TokenType: "Bearer", ExpiresIn: int64(claims.Expires.Sub(claims.IssuedAt) / time.Second),
	})
}

// upgradeHash replaces the user's verified hash by one of the current scheme
// and cost. It writes only if the stored hash is still the verified one, and
// changes nothing else of the freshly read record. Failures are logged; the
// next login tries again.
func (h *Handler) upgradeHash(ctx context.Context, user idm.User, password string) {
	hash, err := h.pw.Hash(ctx, password)
	if err != nil {
		h.log.WarnContext(ctx, "rehashing a password", "user", user.ID, "err", err)
		return
	}
	cur, err := h.store.FindUserByID(ctx, user.ID)
	if err != nil || cur.PasswordHash != user.PasswordHash {
		return // gone or changed meanwhile: nothing to upgrade
	}
	e := idm.AuditEvent{DocType: idm.DocUser, Document: user.ID, ActorID: user.ID, Actor: user.Username,
		Action: "upgrade password hash"}
	e, err = h.audits.Append(ctx, e)
	if err != nil {
		h.log.ErrorContext(ctx, "auditing a password-hash upgrade", "user", user.ID, "err", err)
		return
	}
	cur.PasswordHash = hash
	err = h.store.UpdateUser(ctx, cur)
	if err = h.audits.Settle(ctx, []idm.AuditEvent{e}, err, func(ctx context.Context) (bool, error) {
		u, err := h.store.FindUserByID(ctx, user.ID)
		return err == nil && u.PasswordHash == hash, nil
	}); err != nil {
		h.log.ErrorContext(ctx, "storing an upgraded password hash", "user", user.ID, "err", err)
	}
}

// audit appends e with a fresh ID at the current time; a failure is
// logged.
func (h *Handler) audit(ctx context.Context, e idm.AuditEvent) {
	if _, err := h.audits.Append(ctx, e); err != nil {
		h.log.ErrorContext(ctx, "writing an audit record", "action", e.Action, "err", err)
	}
}

// attemptJSON describes a login attempt for the audit trail.
func attemptJSON(a loginAttempt) json.RawMessage {
	v := struct {
		Username string `json:"username,omitempty"`
		Address  string `json:"address,omitempty"`
	}{Username: a.username}
	if a.addr.IsValid() {
		v.Address = a.addr.String()
	}
	b, _ := json.Marshal(v) // two strings never fail
	return b
}
