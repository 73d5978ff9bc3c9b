package auth

import (
	"errors"
	"net/http"
	"strings"

	"github.com/c3-pro/idm/idm"
)

// maxTokenBytes bounds the token in an Authorization header; longer ones are
// refused before parsing.
const maxTokenBytes = 8 << 10

// Require returns next guarded by staff-token authentication (see
// [Handler.Authenticate]): a request without an Authorization header gets 401
// "Authorization Required" with WWW-Authenticate, one with any kind of bad
// token 401 "Invalid token"; otherwise next runs with the caller's
// *idm.Principal in the request context (see idm.PrincipalFrom).
//
// With [Config.RequireTOTP], this is also the one place where a user
// without an active second factor is kept to enrolling one: such a caller
// reaches only the paths of the enrolment paths (/user/me, /user/me/totp, /user/me/totp/confirm and POST /logout) and gets 403 "second factor
// enrolment required" elsewhere.
func (h *Handler) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := h.Authenticate(r)
		if err != nil {
			idm.WriteError(w, r, h.log, err)
			return
		}
		if h.requireTOTP && !p.TOTP && !enrolmentPath(r) {
			idm.WriteError(w, r, h.log, idm.E(idm.ErrForbidden, MsgEnrolmentRequired))
			return
		}
		next.ServeHTTP(w, r.WithContext(idm.WithPrincipal(r.Context(), p)))
	})
}

// MsgEnrolmentRequired answers a caller without an active second factor
// outside the enrolment paths (/user/me, /user/me/totp, /user/me/totp/confirm and POST /logout) when [Config.RequireTOTP] is set.
const MsgEnrolmentRequired = "second factor enrolment required"

// enrolmentPaths are the paths (with their methods, "" for any) that a
// user without an active second factor reaches when [Config.RequireTOTP]
// is set: their own record (to read it or change their password), the TOTP
// enrolment endpoints and logout.
var enrolmentPaths = []struct{ method, path string }{
	{"", "/user/me"},
	{"", "/user/me/totp"},
	{"", "/user/me/totp/confirm"},
	{http.MethodPost, "/logout"},
}

// enrolmentPath reports whether r is for one of enrolmentPaths.
func enrolmentPath(r *http.Request) bool {
	for _, e := range enrolmentPaths {
		if r.URL.Path == e.path && (e.method == "" || r.Method == e.method) {
			return true
		}
	}
	return false
}

// Authenticate checks the staff token in r's Authorization header
// ("JWT <token>" or "Bearer <token>", scheme in any letter case) and loads
// its user, on every request, so that a deleted or disabled user, or a token
// whose version is no longer the user's, is refused at once. Failures are
// [*idm.Error]s of kind idm.ErrUnauthorized ("Authorization Required" when
// there is no header, "Invalid token" otherwise), or store errors.
func (h *Handler) Authenticate(r *http.Request) (*idm.Principal, error) {
	token, err := bearerToken(r.Header)
	if err != nil {
		return nil, err
	}
	c, err := h.tokens.verifyStaff(token)
	if err != nil {
		return nil, err
	}
	u, err := h.store.FindUserByID(r.Context(), c.UserID)
	switch {
	case errors.Is(err, idm.ErrNotFound):
		return nil, idm.Wrap(idm.ErrUnauthorized, "Invalid token", err)
	case err != nil:
		return nil, err
	case u.Disabled:
		return nil, idm.E(idm.ErrUnauthorized, "Invalid token")
	case u.TokenVersion != c.Version:
		return nil, idm.E(idm.ErrUnauthorized, "Invalid token")
	}
	return PrincipalOf(u), nil
}

// bearerToken extracts the token from the Authorization header.
func bearerToken(hdr http.Header) (string, error) {
	values := hdr.Values("Authorization")
	if len(values) == 0 || (len(values) == 1 && strings.TrimSpace(values[0]) == "") {
		return "", idm.E(idm.ErrUnauthorized, "Authorization Required")
	}
	invalid := idm.E(idm.ErrUnauthorized, "Invalid token")
	if len(values) > 1 {
		return "", invalid
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(values[0]), " ")
	if !ok || !(strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "JWT")) {
		return "", invalid
	}
	token = strings.TrimLeft(token, " ")
	if token == "" || len(token) > maxTokenBytes || strings.ContainsAny(token, " \t") {
		return "", invalid
	}
	return token, nil
}

// serveLogout is POST /logout (behind Require): it raises the caller's token
// version, which revokes every token issued to them so far, removes their
// password-reset and invitation links (as every revocation does), and
// answers 204.
func (h *Handler) serveLogout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p, ok := idm.PrincipalFrom(ctx)
	if !ok {
		idm.WriteError(w, r, h.log, idm.E(idm.ErrUnauthorized, "Authorization Required"))
		return
	}
	e := idm.AuditEvent{DocType: idm.DocAuth, Document: p.UserID, ActorID: p.UserID, Actor: p.Username, Action: "logout"}
	if _, err := h.audits.Append(ctx, e); err != nil {
		idm.WriteError(w, r, h.log, err)
		return
	}
	err := h.store.DeleteResetTokens(ctx, p.UserID)
	// Revoking must not fail because the record changed meanwhile (a
	// concurrent logout or admin edit): re-read and retry on ErrStale.
	if err == nil {
		err = idm.RetryStale(ctx, idm.DefaultStaleAttempts, func() error {
			u, err := h.store.FindUserByID(ctx, p.UserID)
			if err != nil {
				return err
			}
			u.TokenVersion = max(u.TokenVersion, p.TokenVersion) + 1
			return h.store.UpdateUser(ctx, u)
		})
	}
	if err != nil {
		e.Action = "logout failed"
		h.audit(ctx, e)
		if errors.Is(err, idm.ErrNotFound) {
			err = idm.Wrap(idm.ErrUnauthorized, "Invalid token", err)
		}
		idm.WriteError(w, r, h.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
