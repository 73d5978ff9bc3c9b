package users

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

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
	Username string   `json:"username"`
	Password string   `json:"password"`
	Admin    bool     `json:"admin"`
	Role     idm.Role `json:"role"`
	Sites    []string `json:"sites"`
}

// updateInput is the body of PUT /user/{id}; nil fields stay as they are.
type updateInput struct {
	Username        *string   `json:"username"`
	Admin           *bool     `json:"admin"`
	Role            *idm.Role `json:"role"`
	Sites           []string  `json:"sites"`
	Disabled        *bool     `json:"disabled"`
	Password        *string   `json:"password"`
	CurrentPassword *string   `json:"current_password"`
	Unlock          *bool     `json:"unlock"`
	ResetTOTP       *bool     `json:"reset_totp"`
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
	u, err := h.svc.Create(r.Context(), actor, NewUser(in))
	if err != nil {
		idm.WriteError(w, r, h.log, err)
		return
	}
	idm.WriteData(w, http.StatusCreated, u.View())
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
	u, err := h.svc.resolve(r.Context(), actor, id)
	if err != nil {
		idm.WriteError(w, r, h.log, err)
		return
	}
	idm.WriteData(w, http.StatusOK, u.View())
}

// deleteUserByID serves DELETE /user/{id}.
func (h *Handler) deleteUserByID(w http.ResponseWriter, r *http.Request, actor idm.User) {
	if err := h.svc.Delete(r.Context(), actor, r.PathValue("id")); err != nil {
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
		target, err = h.svc.findByName(r.Context(), in.Username)
	}
	if err == nil {
		err = h.svc.remove(r.Context(), actor, target)
	}
	if err != nil {
		idm.WriteError(w, r, h.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
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
	u, err := h.svc.Update(r.Context(), actor, id, Changes{Username: in.Username, Admin: in.Admin, Role: in.Role, Sites: in.Sites, Disabled: in.Disabled,
		Password: in.Password, CurrentPassword: in.CurrentPassword, Unlock: in.Unlock != nil && *in.Unlock,
		ResetTOTP: in.ResetTOTP != nil && *in.ResetTOTP})
	if h.writeThrottled(w, r, err) {
		return
	}
	if err != nil {
		idm.WriteError(w, r, h.log, err)
		return
	}
	idm.WriteData(w, http.StatusOK, u.View())
}

// needsAdmin reports whether a PUT /user/{id} rests on the caller's admin
// rights: anything but a change of one's own password with the current
// one.
func needsAdmin(actor, target idm.User, in Changes) bool {
	own := target.ID == actor.ID && in.Admin == nil && in.Role == nil && in.Sites == nil && in.Disabled == nil && !in.Unlock && !in.ResetTOTP &&
		(in.Password == nil || in.CurrentPassword != nil)
	return actor.Admin && !own
}

// throttledError answers a password check of a throttled account: a 429
// whose Retry-After is the rest of the account's failure window.
type throttledError struct {
	retryAfter time.Duration
}

func (e *throttledError) Error() string { return msgThrottled }

// Unwrap makes the error a 429 for idm.StatusOf.
func (e *throttledError) Unwrap() error { return idm.E(idm.ErrTooMany, msgThrottled) }

// counterUnavailable is the error of a password check refused because the
// account's failure counter could not be read or written: a 503 (the check
// fails closed), whose cause is logged.
func counterUnavailable(target idm.User, err error) error {
	return idm.Wrap(idm.ErrUnavailable, "service unavailable",
		fmt.Errorf("users: the login-failure counter of %s: %w", target.ID, err))
}
