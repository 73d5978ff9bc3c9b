package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
)

// sessionIDBytes is the size of a session ID: 256 bits from crypto/rand.
const sessionIDBytes = 32

// errNoSession means a request carries no live session: none, unknown,
// idle too long, past its lifetime, or of a user whose tokens were
// revoked, who was disabled or deleted. The request is sent to sign in.
var errNoSession = errors.New("console: no live session")

// newSessionID returns a fresh random session ID (the cookie value) and
// the hash under which it is stored.
func newSessionID() (id, hash string, err error) {
	b := make([]byte, sessionIDBytes)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("console: session ID: %w", err)
	}
	id = base64.RawURLEncoding.EncodeToString(b)
	return id, hashID(id), nil
}

// hashID is the stored form of a session ID: hex SHA-256.
func hashID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// sessionCookie returns the session cookie of h carrying value, or one
// that removes it when value is "". The browser keeps it for the
// session's lifetime (Max-Age, so that the browser's clock does not
// matter); the server decides when the session has ended.
func (h *Handler) sessionCookie(value string) *http.Cookie {
	c := &http.Cookie{
		Name: h.cookie, Value: value, Path: "/", HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteStrictMode,
		MaxAge: int(h.lifetime / time.Second),
	}
	if value == "" {
		c.MaxAge = -1
	}
	return c
}

// cookieID returns the session ID r's cookie carries, "" when none (or
// one that cannot be a session ID).
func (h *Handler) cookieID(r *http.Request) string {
	c, err := r.Cookie(h.cookie)
	if err != nil || len(c.Value) != base64.RawURLEncoding.EncodedLen(sessionIDBytes) {
		return ""
	}
	return c.Value
}

// live is a request's checked session: the session, its user, and what
// the user acts as.
type live struct {
	session   idm.Session
	user      idm.User
	principal *idm.Principal
}

// check returns r's live session and records its use. It fails closed:
// any store error is an error (the request is refused with a 503), never
// a session. An ended session is deleted and gives errNoSession.
func (h *Handler) check(r *http.Request) (live, error) {
	ctx := r.Context()
	id := h.cookieID(r)
	if id == "" {
		return live{}, errNoSession
	}
	hash := hashID(id)
	s, err := h.store.FindSession(ctx, hash)
	switch {
	case errors.Is(err, idm.ErrNotFound):
		return live{}, errNoSession
	case err != nil:
		return live{}, fmt.Errorf("console: finding a session: %w", err)
	}
	now := h.now()
	if ended(s, now, h.idle) {
		return live{}, h.end(ctx, hash)
	}
	u, err := h.store.FindUserByID(ctx, s.UserID)
	switch {
	case errors.Is(err, idm.ErrNotFound):
		return live{}, h.end(ctx, hash)
	case err != nil:
		return live{}, fmt.Errorf("console: finding a session's user: %w", err)
	case u.Disabled || u.TokenVersion != s.TokenVersion:
		// A password change, disabling, a role change or a logout raised
		// the user's token version: their sessions end with their tokens.
		return live{}, h.end(ctx, hash)
	}
	switch err := h.store.TouchSession(ctx, hash, now); {
	case errors.Is(err, idm.ErrNotFound):
		return live{}, errNoSession // signed out meanwhile
	case err != nil:
		return live{}, fmt.Errorf("console: recording a session's use: %w", err)
	}
	return live{session: s, user: u, principal: auth.PrincipalOf(u)}, nil
}

// ended reports whether s has ended at now: idle for idle or longer, or
// past its absolute end.
func ended(s idm.Session, now time.Time, idle time.Duration) bool {
	return !now.Before(s.Expires) || !now.Before(s.LastSeen.Add(idle))
}

// end deletes an ended session and returns errNoSession, or the store's
// error.
func (h *Handler) end(ctx context.Context, hash string) error {
	if err := h.store.DeleteSession(ctx, hash); err != nil {
		return fmt.Errorf("console: deleting an ended session: %w", err)
	}
	return errNoSession
}

// start creates a session for the user and token version a sign-in
// answered with and sets its cookie on w. A session the request still
// carried is deleted first, so that no ID outlives a sign-in.
func (h *Handler) start(w http.ResponseWriter, r *http.Request, userID string, version int64) error {
	ctx := r.Context()
	if old := h.cookieID(r); old != "" {
		if err := h.store.DeleteSession(ctx, hashID(old)); err != nil {
			return fmt.Errorf("console: deleting the previous session: %w", err)
		}
	}
	id, hash, err := newSessionID()
	if err != nil {
		return err
	}
	now := h.now()
	s := idm.Session{IDHash: hash, UserID: userID, TokenVersion: version, Created: now, LastSeen: now,
		Expires: now.Add(h.lifetime)}
	if err := h.store.CreateSession(ctx, s); err != nil {
		return fmt.Errorf("console: creating a session: %w", err)
	}
	http.SetCookie(w, h.sessionCookie(id))
	return nil
}

// SessionAuth wraps the API handler for GET /link/{jti}/qr.png, which
// API.md opens to a console session as well as to a staff token: such a
// request with the console's session cookie and no Authorization header
// is passed on with a short-lived staff token of the session's user (so
// the API's own checks decide). Every other request passes unchanged; a
// request whose session has ended or cannot be checked passes without a
// token and gets the API's 401.
func (h *Handler) SessionAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isQRPath(r) || r.Header.Get("Authorization") != "" || h.cookieID(r) == "" {
			next.ServeHTTP(w, r)
			return
		}
		l, err := h.check(r)
		if err != nil {
			if !errors.Is(err, errNoSession) {
				h.log.ErrorContext(r.Context(), "checking a console session", "err", err)
				idm.WriteError(w, r, nil, idm.Wrap(idm.ErrUnavailable, "service unavailable", err))
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		token, err := h.tokens.IssueSessionToken(l.user, tokenTTL)
		if err != nil {
			idm.WriteError(w, r, h.log, err)
			return
		}
		// The header is set on this very request (a copy of its header
		// map), not on a clone: the host's request logging reads the
		// route pattern the mux sets on it.
		r.Header = r.Header.Clone()
		r.Header.Set("Authorization", "Bearer "+token)
		next.ServeHTTP(w, r)
	})
}

// isQRPath reports whether r is GET (or HEAD) /link/{jti}/qr.png.
func isQRPath(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/link/")
	if !ok {
		return false
	}
	jti, ok := strings.CutSuffix(rest, "/qr.png")
	return ok && jti != "" && !strings.Contains(jti, "/")
}
