package console

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/c3-pro/idm/idm"
)

// msgOTPRequired is POST /auth's answer to the right password of a user
// with an active second factor when no code came with it.
const msgOTPRequired = "one-time code required"

// signinPage is GET /console/signin.
func (h *Handler) signinPage(w http.ResponseWriter, r *http.Request) {
	v := view{Title: "Sign in", Flash: flashes[r.URL.Query().Get("done")]}
	h.render(w, r, http.StatusOK, "signin", v)
}

// signin is POST /console/signin: the form's username, password and
// one-time code go to POST /auth in-process, so that the sign-in is the
// API's login exactly (per-account and per-address throttling, the second
// factor, the audit records, the rehash of old hashes). Its token is only
// read for the user and token version of the new session, never kept.
func (h *Handler) signin(w http.ResponseWriter, r *http.Request) {
	f, err := readForm(w, r)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	v := view{Title: "Sign in", Form: map[string]string{"username": f["username"]}, Errors: map[string]string{}}
	body := map[string]string{"username": f["username"], "password": f["password"]}
	if f["otp"] != "" {
		body["otp"] = f["otp"]
	}
	res, err := h.callAPI(r, "", http.MethodPost, "/auth", nil, body)
	if err != nil {
		h.log.ErrorContext(r.Context(), "console sign-in", "err", err)
		h.fail(w, r, http.StatusInternalServerError, "Something went wrong. Try again shortly.")
		return
	}
	switch {
	case res.OK():
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.Unmarshal(res.Body, &tok); err != nil {
			h.log.ErrorContext(r.Context(), "console sign-in: reading the token", "err", err)
			h.fail(w, r, http.StatusInternalServerError, "Something went wrong. Try again shortly.")
			return
		}
		claims, err := h.tokens.VerifyToken(tok.AccessToken)
		if err != nil {
			h.log.ErrorContext(r.Context(), "console sign-in: verifying the token", "err", err)
			h.fail(w, r, http.StatusInternalServerError, "Something went wrong. Try again shortly.")
			return
		}
		if err := h.start(w, r, claims.UserID, claims.Version); err != nil {
			h.log.ErrorContext(r.Context(), "console sign-in", "err", err)
			h.fail(w, r, http.StatusServiceUnavailable, "The service is unavailable just now. Try again shortly.")
			return
		}
		redirect(w, "./")
		return
	case res.Status == http.StatusUnauthorized && res.Message() == msgOTPRequired:
		v.Form["otp_needed"] = "1"
		v.Errors["otp"] = "Enter the one-time code from your authenticator app, or a recovery code."
	case res.Status == http.StatusUnauthorized:
		v.Error = "Invalid credentials: the username, the password or the one-time code is wrong."
	case res.Status == http.StatusTooManyRequests:
		if ra := res.Header.Get("Retry-After"); ra != "" {
			w.Header().Set("Retry-After", ra)
		}
		v.Error = "Too many sign-in attempts. Try again later."
	case res.Status >= 500:
		v.Error = "The service is unavailable just now. Try again shortly."
	default:
		v.Error = res.Message()
	}
	h.render(w, r, res.Status, "signin", v)
}

// signout is POST /console/signout: the session is deleted from the store
// (so it has ended everywhere) and its cookie removed.
func (h *Handler) signout(w http.ResponseWriter, r *http.Request) {
	if id := h.cookieID(r); id != "" {
		if err := h.auditSignOut(r, hashID(id)); err != nil {
			h.log.ErrorContext(r.Context(), "console sign-out", "err", err)
			h.fail(w, r, http.StatusServiceUnavailable, "The service is unavailable just now; you are not signed out yet. Try again shortly.")
			return
		}
		if err := h.store.DeleteSession(r.Context(), hashID(id)); err != nil {
			h.log.ErrorContext(r.Context(), "console sign-out", "err", err)
			h.fail(w, r, http.StatusServiceUnavailable, "The service is unavailable just now; you are not signed out yet. Try again shortly.")
			return
		}
	}
	http.SetCookie(w, h.sessionCookie(""))
	redirect(w, "signin?done=signedout")
}

// auditSignOut records the sign-out of the session stored under hash, if
// there is one, before it is deleted (a change is never without its
// record).
func (h *Handler) auditSignOut(r *http.Request, hash string) error {
	ctx := r.Context()
	s, err := h.store.FindSession(ctx, hash)
	switch {
	case errors.Is(err, idm.ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	e := idm.AuditEvent{DocType: idm.DocAuth, Document: s.UserID, ActorID: s.UserID, Action: "console sign-out"}
	if u, err := h.store.FindUserByID(ctx, s.UserID); err == nil {
		e.Actor = u.Username
	}
	_, err = h.audits.Append(ctx, e)
	return err
}
