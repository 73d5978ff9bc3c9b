package auth

import (
	"context"
	"net/http"

	"github.com/c3-pro/idm/idm"
)

// SetRunHook makes p call f on a hashing worker before each hash or
// comparison (the dummy comparison of an unknown account included), so that
// tests can count password checks or hold them. Call it before p is used.
func SetRunHook(p *Passwords, f func()) { p.onRun = f }

// Unlock clears the login throttling of the account username.
func (h *Handler) Unlock(ctx context.Context, username string) error { return h.unlock(ctx, username) }

// Middleware returns next guarded by the limiter.
func (l *AddressLimiter) Middleware(next http.Handler) http.Handler { return l.middleware(next) }

// NeedsRehash reports whether an encoded hash is of a legacy scheme or
// below the configured cost.
func (p *Passwords) NeedsRehash(encoded string) bool { return p.needsRehash(encoded) }

// IssueToken signs a staff token for u (sub = identity = u.ID, ver =
// u.TokenVersion) as a successful POST /auth does, without checking u's
// password or state.
func (h *Handler) IssueToken(u idm.User) (string, StaffClaims, error) { return h.tokens.issueStaff(u) }
