package users

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
)

// Limits and messages of the /user API.
const (
	maxStringBytes = 4096 // any string without a tighter limit
	defaultPerPage = 50
	maxPerPage     = 1000

	msgTaken     = "this username has already been taken"
	msgLastAdmin = "this would leave no enabled admin: the last admin cannot be deleted, disabled or lose the admin role"
	msgNotFound  = "user not found"
	msgBusy      = "the user was changed by another request at the same time; try again"
	msgThrottled = "too many failed password attempts; try again later"
)

// createInput is the body of POST /user.
type createInput struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Admin    bool   `json:"admin"`
}

// updateInput is the body of PUT /user/{id}; nil fields stay as they are.
type updateInput struct {
	Username        *string `json:"username"`
	Admin           *bool   `json:"admin"`
	Disabled        *bool   `json:"disabled"`
	Password        *string `json:"password"`
	CurrentPassword *string `json:"current_password"`
	Unlock          *bool   `json:"unlock"`
}

// deleteInput is the body of DELETE /user.
type deleteInput struct {
	Username string `json:"username"`
}

// listBody is the answer of GET /user.
type listBody struct {
	Data  []idm.UserView `json:"data"`
	Total int            `json:"total"`
}

func requireAdmin(actor idm.User) error {
	if !actor.Admin {
		return idm.E(idm.ErrForbidden, "admin rights required")
	}
	return nil
}

// enabledAdmin reports whether u counts as an admin for CountAdmins.
func enabledAdmin(u idm.User) bool { return u.Admin && !u.Disabled }

// isSelf reports whether the {id} of a path names the caller: "me", the
// caller's ID or the caller's username.
func isSelf(actor idm.User, id string) bool {
	return id == "me" || id == actor.ID || idm.UsernameKey(id) == idm.UsernameKey(actor.Username)
}

// resolve finds the user an {id} of a path names: "me" (the caller), a user
// ID, or a username. Anything else is not found.
func (h *Handler) resolve(ctx context.Context, actor idm.User, id string) (idm.User, error) {
	var (
		u   idm.User
		err error
	)
	switch {
	case id == "me":
		return actor, nil
	case idm.ValidID(id):
		u, err = h.store.FindUserByID(ctx, id)
	default:
		u, err = idm.FindUserByUsername(ctx, h.store, id)
	}
	if errors.Is(err, idm.ErrNotFound) {
		return idm.User{}, idm.Wrap(idm.ErrNotFound, msgNotFound, err)
	}
	if err != nil {
		return idm.User{}, fmt.Errorf("users: looking up user %q: %w", id, err)
	}
	return u, nil
}

// findByName finds the user a username of a request body names (any
// spelling of a stored name, see idm.FindUserByUsername): a 400 when it is
// empty, a 404 when there is no such user.
func (h *Handler) findByName(ctx context.Context, name string) (idm.User, error) {
	if strings.TrimSpace(name) == "" {
		return idm.User{}, idm.E(idm.ErrInvalid, "username is required")
	}
	u, err := idm.FindUserByUsername(ctx, h.store, name)
	if errors.Is(err, idm.ErrNotFound) {
		return idm.User{}, idm.Wrap(idm.ErrNotFound, msgNotFound, err)
	}
	if err != nil {
		return idm.User{}, fmt.Errorf("users: looking up user %q: %w", name, err)
	}
	return u, nil
}

// createUser serves POST /user.
func (h *Handler) createUser(w http.ResponseWriter, r *http.Request, actor idm.User) {
	if err := requireAdmin(actor); err != nil {
		idm.WriteError(w, r, h.log, err)
		return
	}
	var in createInput
	if err := idm.DecodeJSON(w, r, h.maxBody, &in); err != nil {
		idm.WriteError(w, r, h.log, err)
		return
	}
	u, err := h.create(r.Context(), actor, in)
	if err != nil {
		idm.WriteError(w, r, h.log, err)
		return
	}
	idm.WriteData(w, http.StatusCreated, u.View())
}

// create makes a new user; without a password it invites them.
func (h *Handler) create(ctx context.Context, actor idm.User, in createInput) (idm.User, error) {
	username, err := h.usernames.Normalize(in.Username)
	if err != nil {
		return idm.User{}, err
	}
	invite := in.Password == ""
	if invite && h.inviter == nil {
		return idm.User{}, idm.E(idm.ErrInvalid, "password is required (no mail is configured to invite the user to set one)")
	}
	if !invite {
		if err := h.checkPassword(in.Password); err != nil {
			return idm.User{}, err
		}
	}
	// Also an account stored under an earlier rule, by a form of the name
	// as typed, holds it.
	if _, err := idm.FindUserByUsername(ctx, h.store, in.Username); err == nil {
		return idm.User{}, idm.E(idm.ErrConflict, msgTaken)
	} else if !errors.Is(err, idm.ErrNotFound) {
		return idm.User{}, fmt.Errorf("users: looking up %q: %w", username, err)
	}
	var hash string
	if !invite {
		if hash, err = h.passwords.Hash(ctx, in.Password); err != nil {
			return idm.User{}, fmt.Errorf("users: hashing a password: %w", err)
		}
	}
	// Hashing may have waited long: the caller must still be an enabled
	// admin with the same token version now, just before the write.
	if err := h.recheckActor(ctx, actor, true); err != nil {
		return idm.User{}, err
	}
	now := h.timestamp()
	u := idm.User{
		ID:           idm.NewID(),
		Username:     username,
		PasswordHash: hash,
		Admin:        in.Admin,
		Created:      now,
		Changed:      now,
	}
	created := snapshot(u)
	created.Invited = invite
	recs, err := h.audit(ctx, actor, u, now, change{action: ActionCreate, new: created})
	if err == nil {
		err = h.store.CreateUser(context.WithoutCancel(ctx), u)
		err = h.settle(ctx, recs, err, func(ctx context.Context) (bool, error) {
			return h.exists(ctx, u.ID)
		})
	} else {
		h.compensate(ctx, recs, ActionFailedSuffix, err)
	}
	if err != nil {
		if errors.Is(err, idm.ErrConflict) {
			return idm.User{}, idm.Wrap(idm.ErrConflict, msgTaken, err)
		}
		return idm.User{}, fmt.Errorf("users: creating %q: %w", username, err)
	}
	if invite {
		if err := h.inviter.Invite(ctx, u); err != nil {
			// A user nobody can log in as is of no use: take it back, so
			// the admin can simply try again.
			h.undoCreate(ctx, actor, u, err)
			// The mail server is a dependency: its failure is an outage
			// (503, try again later), not a fault of this service.
			return idm.User{}, idm.Wrap(idm.ErrUnavailable, "the invitation could not be sent; try again later",
				fmt.Errorf("users: inviting %q: %w", username, err))
		}
	}
	return u, nil
}

// undoCreate deletes a user whose invitation failed.
func (h *Handler) undoCreate(ctx context.Context, actor, u idm.User, cause error) {
	ctx = context.WithoutCancel(ctx)
	recs, err := h.audit(ctx, actor, u, h.timestamp(), change{action: ActionDelete, old: snapshot(u)})
	if err == nil {
		err = h.store.DeleteUser(ctx, u.ID)
	}
	if err != nil {
		h.compensate(ctx, recs, ActionFailedSuffix, err)
		h.log.ErrorContext(ctx, "users: could not delete a user whose invitation failed",
			"user", u.ID, "username", u.Username, "err", err, "cause", cause)
	}
}

// listUsers serves GET /user.
func (h *Handler) listUsers(w http.ResponseWriter, r *http.Request, actor idm.User) {
	if err := requireAdmin(actor); err != nil {
		idm.WriteError(w, r, h.log, err)
		return
	}
	f, err := parseUserFilter(r.URL.Query())
	if err != nil {
		idm.WriteError(w, r, h.log, err)
		return
	}
	list, total, err := h.store.ListUsers(r.Context(), f)
	if err != nil {
		idm.WriteError(w, r, h.log, fmt.Errorf("users: listing users: %w", err))
		return
	}
	views := make([]idm.UserView, 0, len(list))
	for _, u := range list {
		views = append(views, u.View())
	}
	idm.WriteJSON(w, http.StatusOK, listBody{Data: views, Total: total})
}

// parseUserFilter reads search, offset and perpage of GET /user.
func parseUserFilter(q url.Values) (idm.UserFilter, error) {
	f := idm.UserFilter{Search: q.Get("search"), Limit: defaultPerPage}
	if len(f.Search) > idm.MaxUsernameBytes {
		return f, idm.E(idm.ErrInvalid, fmt.Sprintf("search must be at most %d bytes long", idm.MaxUsernameBytes))
	}
	if s := q.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return f, idm.E(idm.ErrInvalid, fmt.Sprintf("offset must be a non-negative integer, not %q", truncate(s)))
		}
		f.Offset = n
	}
	if s := q.Get("perpage"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPerPage {
			return f, idm.E(idm.ErrInvalid, fmt.Sprintf("perpage must be an integer from 1 to %d, not %q", maxPerPage, truncate(s)))
		}
		f.Limit = n
	}
	return f, nil
}

// truncate shortens a client's value for an error message.
func truncate(s string) string {
	const max = 32
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + "…"
}

// getMe serves GET /user/me.
func (h *Handler) getMe(w http.ResponseWriter, r *http.Request, actor idm.User) {
	idm.WriteData(w, http.StatusOK, actor.View())
}

// getUser serves GET /user/{id}: admins read anyone, others themselves.
func (h *Handler) getUser(w http.ResponseWriter, r *http.Request, actor idm.User) {
	id := r.PathValue("id")
	if !actor.Admin && !isSelf(actor, id) {
		idm.WriteError(w, r, h.log, idm.E(idm.ErrForbidden, "you may only read your own user record"))
		return
	}
	if !actor.Admin {
		idm.WriteData(w, http.StatusOK, actor.View())
		return
	}
	u, err := h.resolve(r.Context(), actor, id)
	if err != nil {
		idm.WriteError(w, r, h.log, err)
		return
	}
	idm.WriteData(w, http.StatusOK, u.View())
}

// deleteUserByID serves DELETE /user/{id}.
func (h *Handler) deleteUserByID(w http.ResponseWriter, r *http.Request, actor idm.User) {
	if err := requireAdmin(actor); err != nil {
		idm.WriteError(w, r, h.log, err)
		return
	}
	target, err := h.resolve(r.Context(), actor, r.PathValue("id"))
	if err == nil {
		err = h.remove(r.Context(), actor, target)
	}
	if err != nil {
		idm.WriteError(w, r, h.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// deleteUserByBody serves DELETE /user with {"username"}, as the original
// service did.
func (h *Handler) deleteUserByBody(w http.ResponseWriter, r *http.Request, actor idm.User) {
	if err := requireAdmin(actor); err != nil {
		idm.WriteError(w, r, h.log, err)
		return
	}
	var in deleteInput
	err := idm.DecodeJSON(w, r, h.maxBody, &in)
	var target idm.User
	if err == nil {
		target, err = h.findByName(r.Context(), in.Username)
	}
	if err == nil {
		err = h.remove(r.Context(), actor, target)
	}
	if err != nil {
		idm.WriteError(w, r, h.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// remove deletes target, unless it is the last enabled admin. A change of
// the user by someone else while this runs (a stale revision) makes it
// start over, a few times.
func (h *Handler) remove(ctx context.Context, actor, target idm.User) error {
	h.mutation.Lock()
	defer h.mutation.Unlock()
	err := idm.RetryStale(ctx, idm.DefaultStaleAttempts, func() error { return h.removeOnce(ctx, actor, target.ID) })
	if errors.Is(err, idm.ErrStale) {
		return idm.Wrap(idm.ErrConflict, msgBusy, err)
	}
	return err
}

// removeOnce is one attempt of remove.
func (h *Handler) removeOnce(ctx context.Context, actor idm.User, id string) error {
	cur, err := h.store.FindUserByID(ctx, id)
	if errors.Is(err, idm.ErrNotFound) {
		return idm.Wrap(idm.ErrNotFound, msgNotFound, err)
	} else if err != nil {
		return fmt.Errorf("users: loading user %s: %w", id, err)
	}
	if enabledAdmin(cur) {
		if err := h.keepsAnAdmin(ctx); err != nil {
			return err
		}
	}
	now := h.timestamp()
	recs, err := h.audit(ctx, actor, cur, now, change{action: ActionDelete, old: snapshot(cur)})
	if err != nil {
		h.compensate(ctx, recs, ActionFailedSuffix, err)
		return err
	}
	// The record is written: carry the change through even if the client
	// goes away. Revoke the user's tokens first, so that they stay revoked
	// even if the deletion itself fails; this also makes sure that nobody
	// changed the user since it was read.
	ctx = context.WithoutCancel(ctx)
	revoked := cur
	revoked.TokenVersion++
	revoked.Changed = now
	err = h.store.UpdateUser(ctx, revoked)
	if err == nil {
		err = h.store.DeleteResetTokens(ctx, cur.ID)
	}
	if err == nil {
		err = h.store.DeleteUser(ctx, cur.ID)
	}
	err = h.settle(ctx, recs, err, func(ctx context.Context) (bool, error) {
		ok, err := h.exists(ctx, cur.ID)
		return !ok, err
	})
	if err != nil {
		if errors.Is(err, idm.ErrNotFound) { // deleted meanwhile, by another process
			return idm.Wrap(idm.ErrNotFound, msgNotFound, err)
		}
		return fmt.Errorf("users: deleting user %s: %w", cur.ID, err)
	}
	if enabledAdmin(cur) && h.noAdminLeft(ctx) {
		// Another process removed the other admin at the same time: put
		// this one back (its tokens stay revoked).
		if err := h.store.CreateUser(ctx, revoked); err != nil {
			h.log.ErrorContext(ctx, "users: could not restore the last admin after a concurrent change",
				"user", cur.ID, "username", cur.Username, "err", err)
			return nil
		}
		h.compensate(ctx, recs, ActionUndoneSuffix, errors.New("no enabled admin left"))
		return idm.E(idm.ErrConflict, msgLastAdmin)
	}
	return nil
}

// keepsAnAdmin returns a 409 error unless there is more than one enabled
// admin, so that one may go.
func (h *Handler) keepsAnAdmin(ctx context.Context) error {
	n, err := h.store.CountAdmins(ctx)
	if err != nil {
		return fmt.Errorf("users: counting admins: %w", err)
	}
	if n <= 1 {
		return idm.E(idm.ErrConflict, msgLastAdmin)
	}
	return nil
}

// noAdminLeft reports whether a change just made left no enabled admin
// (several processes may have demoted different admins at once). It errs on
// the side of "there is one" when the store cannot tell.
func (h *Handler) noAdminLeft(ctx context.Context) bool {
	n, err := h.store.CountAdmins(ctx)
	if err != nil {
		h.log.ErrorContext(ctx, "users: counting admins after a change", "err", err)
		return false
	}
	return n == 0
}

// updateUser serves PUT /user/{id}.
func (h *Handler) updateUser(w http.ResponseWriter, r *http.Request, actor idm.User) {
	id := r.PathValue("id")
	self := isSelf(actor, id)
	if !self && !actor.Admin {
		idm.WriteError(w, r, h.log, idm.E(idm.ErrForbidden, "admin rights required"))
		return
	}
	var in updateInput
	if err := idm.DecodeJSON(w, r, h.maxBody, &in); err != nil {
		idm.WriteError(w, r, h.log, err)
		return
	}
	u, err := h.update(r.Context(), actor, id, in)
	var throttled *throttledError
	if errors.As(err, &throttled) {
		auth.WriteTooMany(w, r, throttled.retryAfter, msgThrottled)
		return
	}
	if err != nil {
		idm.WriteError(w, r, h.log, err)
		return
	}
	idm.WriteData(w, http.StatusOK, u.View())
}

// update applies a PUT /user/{id}. Only admins reach it for other users.
func (h *Handler) update(ctx context.Context, actor idm.User, id string, in updateInput) (idm.User, error) {
	target := actor // a non-admin can only be here for themself
	if actor.Admin {
		var err error
		if target, err = h.resolve(ctx, actor, id); err != nil {
			return idm.User{}, err
		}
	} else if (in.Admin != nil && *in.Admin != actor.Admin) ||
		(in.Disabled != nil && *in.Disabled != actor.Disabled) ||
		(in.Unlock != nil && *in.Unlock) {
		return idm.User{}, idm.E(idm.ErrForbidden, "admin rights required")
	}
	if in.Username != nil {
		// Compared by their keys: a user whose stored name the current
		// rule refuses may still send it back unchanged.
		if idm.UsernameKey(*in.Username) != idm.UsernameKey(target.Username) {
			return idm.User{}, idm.E(idm.ErrInvalid, "usernames cannot be changed; create a new user instead")
		}
	}
	var hash string
	if in.Password != nil {
		if err := h.checkPassword(*in.Password); err != nil {
			return idm.User{}, err
		}
		// Your own password needs your current one, admins included, so
		// that a stolen token alone cannot take an account over; another
		// user's needs admin rights only.
		switch {
		case in.CurrentPassword != nil:
			if err := h.checkCurrentPassword(ctx, actor, target, *in.CurrentPassword); err != nil {
				return idm.User{}, err
			}
		case target.ID == actor.ID:
			return idm.User{}, idm.E(idm.ErrInvalid, "current_password is required to change your password")
		}
		var err error
		if hash, err = h.passwords.Hash(ctx, *in.Password); err != nil {
			return idm.User{}, fmt.Errorf("users: hashing a password: %w", err)
		}
	} else if in.CurrentPassword != nil {
		return idm.User{}, idm.E(idm.ErrInvalid, "current_password is only used together with password")
	}
	return h.apply(ctx, actor, target.ID, in, hash, needsAdmin(actor, target, in))
}

// needsAdmin reports whether a PUT /user/{id} rests on the caller's admin
// rights: anything but a change of one's own password with the current
// one.
func needsAdmin(actor, target idm.User, in updateInput) bool {
	own := target.ID == actor.ID && in.Admin == nil && in.Disabled == nil && in.Unlock == nil &&
		(in.Password == nil || in.CurrentPassword != nil)
	return actor.Admin && !own
}

// recheckActor reads the caller again just before a change is written, so
// that a request that waited (for a hashing worker, or for the lock) does
// not finish for a caller who was deleted, disabled, logged out or (when
// needAdmin) demoted meanwhile: such a request gets the 401 or 403 it would
// get if it came now.
func (h *Handler) recheckActor(ctx context.Context, actor idm.User, needAdmin bool) error {
	cur, err := h.store.FindUserByID(ctx, actor.ID)
	switch {
	case errors.Is(err, idm.ErrNotFound):
		return idm.E(idm.ErrUnauthorized, "Invalid token")
	case err != nil:
		return fmt.Errorf("users: reloading the caller %s: %w", actor.ID, err)
	case cur.Disabled || cur.TokenVersion != actor.TokenVersion:
		return idm.E(idm.ErrUnauthorized, "Invalid token")
	case needAdmin && !cur.Admin:
		return idm.E(idm.ErrForbidden, "admin rights required")
	}
	return nil
}

// throttledError answers a password check of a throttled account: a 429
// whose Retry-After is the rest of the account's failure window.
type throttledError struct {
	retryAfter time.Duration
}

func (e *throttledError) Error() string { return msgThrottled }

// Unwrap makes the error a 429 for idm.StatusOf.
func (e *throttledError) Unwrap() error { return idm.E(idm.ErrTooMany, msgThrottled) }

// checkCurrentPassword verifies the current_password that actor gave to
// change target's password, under the brute-force limits of POST /auth and
// in the same store counter (key auth.LoginKey of the username): the check
// takes its place in the count before any hashing, so that concurrent
// checks (on any instance sharing the store) hash at most MaxFailures
// passwords per window; a throttled account gets a 429; a wrong password
// keeps its place as a failure, is audited and gets a 403; the right one
// clears the counter, as a successful login does. A store error on the
// counter refuses the change with a 503.
func (h *Handler) checkCurrentPassword(ctx context.Context, actor, target idm.User, password string) error {
	key := auth.LoginKey(target.Username)
	now := h.now()
	lf, ok, err := h.store.ReserveLoginAttempt(ctx, key, now, h.window, h.maxFails)
	if err != nil {
		return counterUnavailable(target, err)
	}
	if !ok {
		return h.throttled(ctx, actor, target, lf, now)
	}
	ok, _, err = h.passwords.Verify(ctx, target.PasswordHash, password)
	if err != nil {
		return fmt.Errorf("users: verifying the current password: %w", err)
	}
	if !ok {
		// The failure is counted already (the reserved place stays).
		// Audit it even if the client has gone.
		if _, err := h.audit(context.WithoutCancel(ctx), actor, target, h.timestamp(), change{action: ActionWrongPassword,
			new: &auditState{Username: target.Username, LoginFailures: ptr(lf.Count)}}); err != nil {
			h.log.ErrorContext(ctx, "users: auditing a wrong current password", "user", target.ID, "err", err)
		}
		return idm.E(idm.ErrForbidden, "current_password is not correct")
	}
	if err := h.store.ResetLoginFailures(ctx, key); err != nil {
		return counterUnavailable(target, err)
	}
	return nil
}

// counterUnavailable is the error of a password check refused because the
// account's failure counter could not be read or written: a 503 (the check
// fails closed), whose cause is logged.
func counterUnavailable(target idm.User, err error) error {
	return idm.Wrap(idm.ErrUnavailable, "service unavailable",
		fmt.Errorf("users: the login-failure counter of %s: %w", target.ID, err))
}

// throttled returns a *throttledError for an account whose counter lf has
// no place left in its window, and audits the refusal.
func (h *Handler) throttled(ctx context.Context, actor, target idm.User, lf idm.LoginFailures, now time.Time) error {
	if _, err := h.audit(context.WithoutCancel(ctx), actor, target, h.timestamp(), change{action: ActionPasswordThrottled,
		new: &auditState{Username: target.Username, LoginFailures: ptr(lf.Count)}}); err != nil {
		h.log.ErrorContext(ctx, "users: auditing a throttled password change", "user", target.ID, "err", err)
	}
	h.log.InfoContext(ctx, "users: password change throttled", "user", target.ID)
	return &throttledError{retryAfter: lf.Since.Add(h.window).Sub(now)}
}

// apply makes the changes of a validated PUT to the user with the given ID:
// the audit records first, then the change. A change of the user by someone
// else while this runs (a stale revision) makes it start over, a few times.
// The caller is read again first (see recheckActor).
func (h *Handler) apply(ctx context.Context, actor idm.User, id string, in updateInput, hash string, needAdmin bool) (idm.User, error) {
	h.mutation.Lock()
	defer h.mutation.Unlock()
	var u idm.User
	err := idm.RetryStale(ctx, idm.DefaultStaleAttempts, func() error {
		if err := h.recheckActor(ctx, actor, needAdmin); err != nil {
			return err
		}
		var err error
		u, err = h.applyOnce(ctx, actor, id, in, hash)
		return err
	})
	if errors.Is(err, idm.ErrStale) {
		return idm.User{}, idm.Wrap(idm.ErrConflict, msgBusy, err)
	}
	return u, err
}

// applyOnce is one attempt of apply.
func (h *Handler) applyOnce(ctx context.Context, actor idm.User, id string, in updateInput, hash string) (idm.User, error) {
	cur, err := h.store.FindUserByID(ctx, id)
	if errors.Is(err, idm.ErrNotFound) {
		return idm.User{}, idm.Wrap(idm.ErrNotFound, msgNotFound, err)
	} else if err != nil {
		return idm.User{}, fmt.Errorf("users: loading user %s: %w", id, err)
	}
	now := h.timestamp()
	next := cur
	var changes []change
	if in.Admin != nil && *in.Admin != cur.Admin {
		next.Admin = *in.Admin
		action := ActionSetAdmin
		if !next.Admin {
			action = ActionUnsetAdmin
		}
		changes = append(changes, change{action: action,
			old: &auditState{Username: cur.Username, Admin: ptr(cur.Admin)},
			new: &auditState{Username: cur.Username, Admin: ptr(next.Admin)}})
	}
	if in.Disabled != nil && *in.Disabled != cur.Disabled {
		next.Disabled = *in.Disabled
		action := ActionDisable
		if !next.Disabled {
			action = ActionEnable
		}
		changes = append(changes, change{action: action,
			old: &auditState{Username: cur.Username, Disabled: ptr(cur.Disabled)},
			new: &auditState{Username: cur.Username, Disabled: ptr(next.Disabled)}})
	}
	passwordChanged := in.Password != nil
	if passwordChanged {
		next.PasswordHash = hash
		next.PasswordChanged = now
		changes = append(changes, change{action: ActionChangePassword,
			old: &auditState{Username: cur.Username, PasswordSet: ptr(cur.PasswordHash != "")},
			new: &auditState{Username: cur.Username, PasswordChanged: ptr(now)}})
	}
	userChanges := len(changes)
	demotes := enabledAdmin(cur) && !enabledAdmin(next)
	if demotes {
		if err := h.keepsAnAdmin(ctx); err != nil {
			return idm.User{}, err
		}
	}
	if in.Unlock != nil && *in.Unlock {
		lf, err := h.store.LoginFailures(ctx, auth.LoginKey(cur.Username))
		if err != nil {
			return idm.User{}, fmt.Errorf("users: reading the login failures of %s: %w", cur.ID, err)
		}
		changes = append(changes, change{action: ActionUnlock,
			old: &auditState{Username: cur.Username, LoginFailures: ptr(lf.Count)},
			new: &auditState{Username: cur.Username, LoginFailures: ptr(0)}})
	}
	if len(changes) == 0 {
		return cur, nil
	}
	recs, err := h.audit(ctx, actor, cur, now, changes...)
	if err != nil {
		h.compensate(ctx, recs, ActionFailedSuffix, err)
		return idm.User{}, err
	}
	// The records are written: carry the changes through even if the
	// client goes away.
	ctx = context.WithoutCancel(ctx)
	if userChanges > 0 {
		next.Changed = now
		next.TokenVersion++ // every change here revokes the user's tokens
		// ... and their reset and invitation links, so that none survives
		// a disable and re-enable (or a change of role).
		err = h.store.DeleteResetTokens(ctx, cur.ID)
		if err == nil {
			err = h.store.UpdateUser(ctx, next)
			err = h.settle(ctx, recs, err, func(ctx context.Context) (bool, error) {
				return h.updated(ctx, next)
			})
		} else {
			h.compensate(ctx, recs, ActionFailedSuffix, err)
		}
		if err != nil {
			if errors.Is(err, idm.ErrNotFound) {
				return idm.User{}, idm.Wrap(idm.ErrNotFound, msgNotFound, err)
			}
			return idm.User{}, fmt.Errorf("users: updating user %s: %w", cur.ID, err)
		}
		next.Rev++
		if demotes && h.noAdminLeft(ctx) {
			// Another process demoted the other admin at the same time:
			// take this request's changes back (the tokens stay revoked).
			if err := h.restore(ctx, cur, next); err != nil {
				h.log.ErrorContext(ctx, "users: could not restore the last admin after a concurrent change",
					"user", cur.ID, "username", cur.Username, "err", err)
			} else {
				h.compensate(ctx, recs[:userChanges], ActionUndoneSuffix, errors.New("no enabled admin left"))
				if userChanges < len(recs) {
					h.compensate(ctx, recs[userChanges:], ActionFailedSuffix, errors.New("request refused"))
				}
				return idm.User{}, idm.E(idm.ErrConflict, msgLastAdmin)
			}
		}
	}
	if userChanges < len(recs) {
		if err := h.store.ResetLoginFailures(ctx, auth.LoginKey(cur.Username)); err != nil {
			h.compensate(ctx, recs[userChanges:], ActionFailedSuffix, err)
			return idm.User{}, fmt.Errorf("users: unlocking user %s: %w", cur.ID, err)
		}
	}
	if passwordChanged && h.notifier != nil {
		if err := h.notifier.PasswordChanged(ctx, next); err != nil {
			h.log.ErrorContext(ctx, "users: could not notify a user of their password change",
				"user", next.ID, "err", err)
		}
	}
	return next, nil
}

// exists reads the user with the given ID back: after a write of unknown
// outcome (idm.ErrAmbiguous) it tells whether a create or delete was made.
func (h *Handler) exists(ctx context.Context, id string) (bool, error) {
	_, err := h.store.FindUserByID(ctx, id)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, idm.ErrNotFound):
		return false, nil
	}
	return false, err
}

// updated reads a user back after an UpdateUser of unknown outcome that
// would have stored next (with next.Rev + 1): it was made if the stored
// record is at that revision and holds what next holds.
func (h *Handler) updated(ctx context.Context, next idm.User) (bool, error) {
	u, err := h.store.FindUserByID(ctx, next.ID)
	switch {
	case errors.Is(err, idm.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return u.Rev == next.Rev+1 && u.TokenVersion == next.TokenVersion && u.PasswordHash == next.PasswordHash &&
		u.Admin == next.Admin && u.Disabled == next.Disabled, nil
}

// restore takes back the changes that updated a user from prev to next,
// where they still hold; the raised token version stays.
func (h *Handler) restore(ctx context.Context, prev, next idm.User) error {
	return idm.RetryStale(ctx, idm.DefaultStaleAttempts, func() error {
		u, err := h.store.FindUserByID(ctx, prev.ID)
		if err != nil {
			return err
		}
		if u.Admin == next.Admin {
			u.Admin = prev.Admin
		}
		if u.Disabled == next.Disabled {
			u.Disabled = prev.Disabled
		}
		if u.PasswordHash == next.PasswordHash {
			u.PasswordHash, u.PasswordChanged = prev.PasswordHash, prev.PasswordChanged
		}
		u.Changed = h.timestamp()
		return h.store.UpdateUser(ctx, u)
	})
}
