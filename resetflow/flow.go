package resetflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/c3-pro/idm/idm"
)

// Page titles.
const (
	titleIforgot = "Forgot your password?"
	titleSent    = "Check your email"
	titleReset   = "Set a new password"
	titleInvite  = "Choose your password"
	titleDone    = "Password set"
	titleLink    = "This link does not work"
	titleRefused = "Request refused"
)

// linkView is the JSON answer of GET /reset.
type linkView struct {
	Purpose  string `json:"purpose"`
	Username string `json:"username"`
	Expires  string `json:"expires"` // idm.FormatTime
}

// messageView is the JSON answer of POST /iforgot and POST /reset.
type messageView struct {
	Message string `json:"message"`
}

func invalidLink() error { return idm.E(idm.ErrInvalid, msgInvalidLink) }

// isInvalidLink reports whether err is the one error for every token failure.
func isInvalidLink(err error) bool {
	var e *idm.Error
	return errors.As(err, &e) && e.Message == msgInvalidLink && errors.Is(e.Kind, idm.ErrInvalid)
}

// getIforgot serves the form asking for the username.
func (h *Handler) getIforgot(w http.ResponseWriter, r *http.Request) {
	h.page(w, r, http.StatusOK, pageIforgot, PageData{Title: titleIforgot})
}

// postIforgot answers every well-formed request the same way and looks the
// user up, stores a token and sends the mail in the background.
func (h *Handler) postIforgot(w http.ResponseWriter, r *http.Request) {
	form := PageData{Title: titleIforgot}
	if err := h.guard(w, r); err != nil {
		h.fail(w, r, err, pageError, PageData{Title: titleRefused})
		return
	}
	var in struct {
		Username string `json:"username"`
	}
	if idm.IsJSONBody(r) {
		if err := idm.DecodeJSON(w, r, h.maxBody, &in); err != nil {
			h.fail(w, r, err, pageIforgot, form)
			return
		}
	} else {
		f, err := h.readForm(w, r)
		if err != nil {
			h.fail(w, r, err, pageIforgot, form)
			return
		}
		in.Username = f.Get("username")
	}
	username := strings.TrimSpace(in.Username)
	form.Username = username
	switch {
	case !utf8.ValidString(username):
		form.Username = ""
		h.fail(w, r, idm.E(idm.ErrInvalid, "username is not valid UTF-8"), pageIforgot, form)
		return
	case username == "":
		h.fail(w, r, idm.E(idm.ErrInvalid, msgNeedUsername), pageIforgot, form)
		return
	case len(username) > maxUsernameBytes:
		form.Username = ""
		h.fail(w, r, idm.E(idm.ErrInvalid, fmt.Sprintf("username must be at most %d bytes long", maxUsernameBytes)), pageIforgot, form)
		return
	}

	// Nothing below depends on whether the user exists: the work happens in
	// the background, after the answer.
	h.onEvent(eventRequested)
	h.background(r.Context(), "reset request", func(ctx context.Context) { h.requestReset(ctx, username) })
	if idm.WantsJSON(r) {
		idm.WriteData(w, http.StatusAccepted, messageView{Message: msgSent})
		return
	}
	h.page(w, r, http.StatusOK, pageSent, PageData{Title: titleSent})
}

// requestReset is the background part of POST /iforgot.
func (h *Handler) requestReset(ctx context.Context, username string) {
	u, err := idm.FindUserByUsername(ctx, h.store, username)
	switch {
	case errors.Is(err, idm.ErrNotFound):
		h.log.DebugContext(ctx, "resetflow: reset requested for an unknown username")
		return
	case err != nil:
		h.log.ErrorContext(ctx, "resetflow: looking up a username for a reset", "err", err)
		return
	case u.Disabled:
		h.log.InfoContext(ctx, "resetflow: reset requested for a disabled user; no mail sent", "user", u.ID)
		return
	}
	now := idm.Timestamp(h.now())
	lf, err := h.store.RecordLoginFailure(ctx, requestKey(u.ID), now, h.window)
	if err != nil {
		h.log.ErrorContext(ctx, "resetflow: counting reset requests", "user", u.ID, "err", err)
		return
	}
	if lf.Count > h.maxRequests {
		h.onEvent(eventThrottled)
		h.log.InfoContext(ctx, "resetflow: reset requests of a user throttled; no mail sent", "user", u.ID, "count", lf.Count)
		if lf.Count == h.maxRequests+1 { // one record per window, however long the flood
			_, _ = h.audit(ctx, u, idm.User{}, now, actionResetThrottled, map[string]any{
				"username": u.Username, "requests": lf.Count, "since": lf.Since,
			})
		}
		return
	}
	token, _, exp, err := h.issue(ctx, u, idm.User{}, purposeReset, h.tokenTTL, actionRequestReset)
	if err != nil {
		h.log.ErrorContext(ctx, "resetflow: storing a reset token", "user", u.ID, "err", err)
		return
	}
	_ = h.sendMail(ctx, mailReset, u, MailData{Link: h.link(token), ValidFor: humanDuration(h.tokenTTL), Expires: exp})
}

// requestKey is the store counter key of an account's reset requests; it
// contains no "@", so it never equals a username's login counter.
func requestKey(userID string) string { return "reset-request/" + userID }

// issue writes the audit record, replaces u's tokens by a new one for
// purpose and returns the token, the audit record and the token's expiry.
func (h *Handler) issue(ctx context.Context, u, actor idm.User, purpose string, ttl time.Duration, action string) (token string, rec idm.AuditEvent, exp time.Time, err error) {
	token, hash := newToken()
	now := idm.Timestamp(h.now())
	exp = idm.Timestamp(now.Add(ttl))
	rec, err = h.audit(ctx, u, actor, now, action, map[string]any{"username": u.Username, "expires": exp})
	if err != nil {
		return "", idm.AuditEvent{}, time.Time{}, err
	}
	err = h.store.DeleteResetTokens(ctx, u.ID)
	if err == nil {
		err = h.store.CreateResetToken(ctx, idm.ResetToken{
			Hash: hash, UserID: u.ID, Purpose: purpose, Created: now, Expires: exp,
		})
		err = h.audits.Settle(ctx, []idm.AuditEvent{rec}, err, func(ctx context.Context) (bool, error) {
			_, err := h.store.FindResetToken(ctx, hash, now)
			if errors.Is(err, idm.ErrNotFound) {
				return false, nil
			}
			return err == nil, err
		})
	} else {
		_ = h.audits.Settle(ctx, []idm.AuditEvent{rec}, err, nil)
	}
	if err != nil {
		return "", idm.AuditEvent{}, time.Time{}, fmt.Errorf("resetflow: storing a %s token for %s: %w", purpose, u.ID, err)
	}
	h.onEvent(eventIssued)
	return token, rec, exp, nil
}

// audit appends one record about user u made by actor (zero for an
// anonymous visitor) and returns it; failures are logged and returned.
func (h *Handler) audit(ctx context.Context, u, actor idm.User, at time.Time, action string, newValues map[string]any) (idm.AuditEvent, error) {
	e := idm.AuditEvent{
		Time: at, Document: u.ID, DocType: idm.DocUser,
		ActorID: actor.ID, Actor: actor.Username, Action: action,
	}
	if newValues != nil {
		b, err := json.Marshal(newValues)
		if err != nil {
			return e, fmt.Errorf("resetflow: audit values: %w", err)
		}
		e.New = b
	}
	e, err := h.audits.Append(ctx, e)
	if err != nil {
		h.log.ErrorContext(ctx, "resetflow: writing an audit record", "user", u.ID, "action", action, "err", err)
		return e, fmt.Errorf("resetflow: audit %q for %s: %w", action, u.ID, err)
	}
	return e, nil
}

// sendMail renders and sends one of the mails to u. Errors are logged,
// counted and returned; the link is never logged.
func (h *Handler) sendMail(ctx context.Context, kind mailKind, u idm.User, d MailData) error {
	d.Service = h.service
	d.Username = u.Username
	d.Time = d.Time.UTC()
	if d.Time.IsZero() {
		d.Time = idm.Timestamp(h.now())
	}
	d.Expires = d.Expires.UTC()
	d.ResetURL = h.public.JoinPath("iforgot").String()
	msg, err := h.tmpl.renderMail(kind, u.Username, d)
	if err == nil {
		err = h.mailer.Send(ctx, msg)
	}
	if err != nil {
		h.onEvent(eventMailFailed)
		h.log.ErrorContext(ctx, "resetflow: sending a mail failed", "user", u.ID, "mail", kindName(kind), "err", err)
		return err
	}
	h.onEvent(eventMailSent)
	h.log.InfoContext(ctx, "resetflow: mail sent", "user", u.ID, "mail", kindName(kind))
	return nil
}

func kindName(k mailKind) string {
	switch k {
	case mailReset:
		return "reset"
	case mailInvite:
		return "invite"
	default:
		return "password changed"
	}
}

// getReset shows the form for a valid link without consuming it.
func (h *Handler) getReset(w http.ResponseWriter, r *http.Request) {
	if err := h.allow(w, r); err != nil {
		h.fail(w, r, err, pageError, PageData{Title: titleRefused})
		return
	}
	key := r.URL.Query().Get("k")
	t, u, err := h.lookup(r.Context(), key)
	if err != nil {
		h.failLink(w, r, err)
		return
	}
	if idm.WantsJSON(r) {
		idm.WriteData(w, http.StatusOK, linkView{Purpose: t.Purpose, Username: u.Username, Expires: idm.FormatTime(t.Expires)})
		return
	}
	h.page(w, r, http.StatusOK, pageReset, h.resetForm(key, t, u))
}

func (h *Handler) resetForm(key string, t idm.ResetToken, u idm.User) PageData {
	d := PageData{Title: titleReset, Key: key, Purpose: t.Purpose, Username: u.Username}
	if t.Purpose == purposeInvite {
		d.Title = titleInvite
	}
	return d
}

// lookup finds the unexpired token key and its user without consuming it;
// every token failure is [invalidLink].
func (h *Handler) lookup(ctx context.Context, key string) (idm.ResetToken, idm.User, error) {
	if !wellFormed(key) {
		return idm.ResetToken{}, idm.User{}, invalidLink()
	}
	t, err := h.store.FindResetToken(ctx, HashToken(key), idm.Timestamp(h.now()))
	if errors.Is(err, idm.ErrNotFound) {
		return idm.ResetToken{}, idm.User{}, invalidLink()
	}
	if err != nil {
		return idm.ResetToken{}, idm.User{}, fmt.Errorf("resetflow: finding a reset token: %w", err)
	}
	u, err := h.userOf(ctx, t)
	return t, u, err
}

// userOf returns the user of token t if the token may still set their
// password: the user exists and is enabled, the token's purpose is known,
// and it was made after the user's last password change.
func (h *Handler) userOf(ctx context.Context, t idm.ResetToken) (idm.User, error) {
	u, err := h.store.FindUserByID(ctx, t.UserID)
	if errors.Is(err, idm.ErrNotFound) {
		return idm.User{}, invalidLink()
	}
	if err != nil {
		return idm.User{}, fmt.Errorf("resetflow: finding the user of a reset token: %w", err)
	}
	if u.Disabled || (t.Purpose != purposeReset && t.Purpose != purposeInvite) ||
		(!u.PasswordChanged.IsZero() && t.Created.Before(u.PasswordChanged)) {
		return idm.User{}, invalidLink()
	}
	return u, nil
}

// postReset sets the password: it validates the link (without consuming
// it) and the password first, then consumes the token atomically.
func (h *Handler) postReset(w http.ResponseWriter, r *http.Request) {
	if err := h.guard(w, r); err != nil {
		h.fail(w, r, err, pageError, PageData{Title: titleRefused})
		return
	}
	var key, pass1, pass2 string
	if idm.IsJSONBody(r) {
		var in struct {
			Key      string `json:"key"`
			Password string `json:"password"`
		}
		if err := idm.DecodeJSON(w, r, h.maxBody, &in); err != nil {
			h.fail(w, r, err, pageError, PageData{Title: titleRefused})
			return
		}
		key, pass1, pass2 = in.Key, in.Password, in.Password
	} else {
		f, err := h.readForm(w, r)
		if err != nil {
			h.fail(w, r, err, pageError, PageData{Title: titleRefused})
			return
		}
		key, pass1, pass2 = f.Get("key"), f.Get("pass1"), f.Get("pass2")
	}
	ctx := r.Context()
	t, u, err := h.lookup(ctx, key)
	if err != nil {
		h.failLink(w, r, err)
		return
	}
	form := h.resetForm(key, t, u)
	switch {
	case pass1 == "":
		h.fail(w, r, idm.E(idm.ErrInvalid, "password is required"), pageReset, form)
		return
	case len(pass1) > maxFieldBytes:
		h.fail(w, r, idm.E(idm.ErrInvalid, fmt.Sprintf("password must be at most %d bytes long", maxFieldBytes)), pageReset, form)
		return
	case pass1 != pass2:
		h.fail(w, r, idm.E(idm.ErrInvalid, msgMismatch), pageReset, form)
		return
	}
	if err := h.pw.Check(pass1); err != nil {
		h.fail(w, r, err, pageReset, form)
		return
	}
	hash, err := h.pw.Hash(ctx, pass1)
	if err != nil {
		h.fail(w, r, fmt.Errorf("resetflow: hashing a password: %w", err), pageReset, form)
		return
	}

	// Validated: now consume. Of concurrent requests exactly one gets here.
	t, err = h.store.ConsumeResetToken(ctx, t.Hash, idm.Timestamp(h.now()))
	if errors.Is(err, idm.ErrNotFound) {
		h.failLink(w, r, invalidLink())
		return
	}
	if err != nil {
		h.fail(w, r, fmt.Errorf("resetflow: consuming a reset token: %w", err), pageError, PageData{Title: titleRefused})
		return
	}
	// The token is spent: finish even if the client goes away.
	ctx = context.WithoutCancel(ctx)
	if u, err = h.userOf(ctx, t); err != nil {
		h.failLink(w, r, err)
		return
	}
	if err := h.setPassword(ctx, u, t.Purpose, hash); err != nil {
		h.fail(w, r, err, pageError, PageData{Title: titleRefused})
		return
	}
	if idm.WantsJSON(r) {
		idm.WriteData(w, http.StatusOK, messageView{Message: msgPasswordSet})
		return
	}
	h.page(w, r, http.StatusOK, pageDone, PageData{Title: titleDone, LoginURL: h.loginURL})
}

// setPassword stores hash as u's password through Accounts, which
// records it, revokes u's tokens and other links, clears u's login
// throttling and has the password-changed notice sent.
func (h *Handler) setPassword(ctx context.Context, u idm.User, purpose, hash string) error {
	action := actionResetPassword
	if purpose == purposeInvite {
		action = actionSetPassword
	}
	if _, err := h.accounts.SetPasswordHash(ctx, u, u.ID, hash, action); err != nil {
		return fmt.Errorf("resetflow: setting the password of %s: %w", u.ID, err)
	}
	h.onEvent(eventReset)
	h.log.InfoContext(ctx, "resetflow: password set through a link", "user", u.ID, "purpose", purpose)
	return nil
}

// notify sends the password-changed notice to u in the background.
func (h *Handler) notify(ctx context.Context, u idm.User) bool {
	if u.Disabled {
		return true
	}
	return h.background(ctx, "password-changed notice", func(ctx context.Context) {
		_ = h.sendMail(ctx, mailChanged, u, MailData{Time: u.PasswordChanged})
	})
}

// Invite issues a set-password link for u, valid for Config.InviteTTL,
// replacing u's earlier links, and mails it to u.Username (waiting for the
// mail server, at most Config.JobTimeout). The actor in the audit record is
// the principal in ctx, if any. A disabled user gets no link (an error
// wrapping idm.ErrPrecondition); a link that cannot be stored or mailed is
// an error, and a link that could not be mailed is removed again.
func (h *Handler) Invite(ctx context.Context, u idm.User) error {
	if u.ID == "" || u.Username == "" {
		return idm.E(idm.ErrInvalid, "an invitation needs a user with an ID and a username")
	}
	if u.Disabled {
		return idm.E(idm.ErrPrecondition, "a disabled user cannot be invited")
	}
	var actor idm.User
	if p, ok := idm.PrincipalFrom(ctx); ok {
		actor = idm.User{ID: p.UserID, Username: p.Username}
	}
	token, rec, exp, err := h.issue(ctx, u, actor, purposeInvite, h.inviteTTL, actionInvite)
	if err != nil {
		return err
	}
	mctx, cancel := context.WithTimeout(ctx, h.jobTimeout)
	defer cancel()
	if err := h.sendMail(mctx, mailInvite, u, MailData{Link: h.link(token), ValidFor: humanDuration(h.inviteTTL), Expires: exp}); err != nil {
		// The invitation's record is written: remove the link and say in
		// the trail that it did not go out, even if ctx has ended.
		dctx := context.WithoutCancel(ctx)
		if derr := h.store.DeleteResetTokens(dctx, u.ID); derr != nil {
			h.log.ErrorContext(ctx, "resetflow: removing an invitation that could not be sent", "user", u.ID, "err", derr)
		}
		_, _ = h.audits.Compensate(dctx, rec, actionFailedSuffix, err)
		return fmt.Errorf("resetflow: sending the invitation to user %s: %w", u.ID, err)
	}
	return nil
}

// PasswordChanged tells the flow that u's password was changed elsewhere
// (package users): it removes u's outstanding reset and invitation links and
// sends u the "your password was changed" notice in the background (errors
// are logged). A disabled user gets no mail. It returns an error when the
// links could not be removed or the notice could not be queued.
func (h *Handler) PasswordChanged(ctx context.Context, u idm.User) error {
	var errs []error
	if err := h.store.DeleteResetTokens(ctx, u.ID); err != nil {
		errs = append(errs, fmt.Errorf("resetflow: removing the reset tokens of %s: %w", u.ID, err))
	}
	if !h.notify(ctx, u) {
		errs = append(errs, idm.E(idm.ErrUnavailable, "resetflow: the password-changed notice was not queued"))
	}
	return errors.Join(errs...)
}

// guard refuses cross-origin POSTs and requests over the address limit.
func (h *Handler) guard(w http.ResponseWriter, r *http.Request) error {
	if err := h.cop.Check(r); err != nil {
		h.log.InfoContext(r.Context(), "resetflow: cross-origin request refused", "path", r.URL.Path, "err", err)
		return idm.Wrap(idm.ErrForbidden, msgCrossOrigin, err)
	}
	return h.allow(w, r)
}

// allow applies the address limiter; a refusal sets Retry-After.
func (h *Handler) allow(w http.ResponseWriter, r *http.Request) error {
	ok, retry := h.limiter.Allow(r)
	if ok {
		return nil
	}
	h.onEvent(eventThrottled)
	secs := int64((retry + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	return idm.E(idm.ErrTooMany, msgTooMany)
}

// readForm parses an application/x-www-form-urlencoded body of at most
// maxBody bytes and checks that every value is valid UTF-8 and not too long.
func (h *Handler) readForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, idm.E(idm.ErrUnsupportedMedia, "the request body must be a form (application/x-www-form-urlencoded) or JSON")
	}
	r.Body = http.MaxBytesReader(w, r.Body, h.maxBody)
	if err := r.ParseForm(); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, idm.E(idm.ErrTooLarge, fmt.Sprintf("request body too large (limit %d bytes)", mb.Limit))
		}
		return nil, idm.Wrap(idm.ErrInvalid, "malformed form data", err)
	}
	for name, vs := range r.PostForm {
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return nil, idm.E(idm.ErrInvalid, fmt.Sprintf("field %q is not valid UTF-8", name))
			}
			if len(v) > maxFieldBytes {
				return nil, idm.E(idm.ErrInvalid, fmt.Sprintf("field %q is longer than %d bytes", name, maxFieldBytes))
			}
		}
	}
	return r.PostForm, nil
}

// failLink answers a token failure: 400 "invalid or expired link".
func (h *Handler) failLink(w http.ResponseWriter, r *http.Request, err error) {
	d := PageData{Title: titleRefused}
	if isInvalidLink(err) {
		h.onEvent(eventInvalidLink)
		d = PageData{Title: titleLink, LinkProblem: true}
	}
	h.fail(w, r, err, pageError, d)
}

// fail answers err: the JSON error envelope for JSON clients, otherwise the
// page name showing the message, with the status of err. 5xx causes are
// logged, never shown.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error, name string, d PageData) {
	if idm.WantsJSON(r) {
		idm.WriteError(w, r, h.log, err)
		return
	}
	status := idm.StatusOf(err)
	if status >= 500 {
		h.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "pattern", r.Pattern, "status", status, "err", err)
		name, d = pageError, PageData{Title: "Something went wrong"}
	}
	d.Error = idm.MessageOf(err)
	h.page(w, r, status, name, d)
}

// page renders the page template name with d and status.
func (h *Handler) page(w http.ResponseWriter, r *http.Request, status int, name string, d PageData) {
	d.Service = h.service
	d.ValidFor = humanDuration(h.tokenTTL)
	d.MinLength = h.minLength
	b, err := h.tmpl.renderPage(name, d)
	if err != nil {
		idm.WriteError(w, r, h.log, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
