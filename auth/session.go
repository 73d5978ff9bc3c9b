package auth

import (
	"fmt"
	"time"

	"github.com/c3-pro/idm/idm"
)

// IssueSessionToken returns a staff token for u with u.TokenVersion that
// is valid for ttl (at most the configured token TTL): what a server-side
// client such as the staff console hands to the API handler in-process on
// behalf of a signed-in user. Such a token never leaves the process; it
// passes [Handler.Require] exactly as a token from POST /auth does, so the
// API's revocation, role and site rules apply to it unchanged.
func (h *Handler) IssueSessionToken(u idm.User, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		return "", fmt.Errorf("auth: session token TTL %v is not positive", ttl)
	}
	token, _, err := h.tokens.issueStaffTTL(u, min(ttl, h.tokens.ttl))
	return token, err
}

// VerifyToken checks a staff token as [Handler.Require] does before it
// loads the user (signature, algorithm, key ID, issuer, audience, time
// claims and shape) and returns its claims. Every failure wraps
// idm.ErrUnauthorized with the message "Invalid token".
func (h *Handler) VerifyToken(token string) (StaffClaims, error) {
	return h.tokens.verifyStaff(token)
}

// PrincipalOf returns the principal that u acts as, as [Handler.Authenticate]
// builds it for a valid token of u: u's role and sites (see
// [idm.User.Access]), token version and second-factor state.
func PrincipalOf(u idm.User) *idm.Principal {
	role, sites := u.Access()
	return &idm.Principal{UserID: u.ID, Username: u.Username, Admin: role == idm.RoleAdmin, Role: role, Sites: sites,
		TokenVersion: u.TokenVersion, TOTP: u.TOTP.Active}
}
