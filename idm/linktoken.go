package idm

import (
	"context"
	"time"
)

// LinkClaims are the claims of an enrolment-link JWT as the mobile app reads
// them.
type LinkClaims struct {
	ID        string    // jti: the link's ID
	Issuer    string    // iss
	Audience  string    // aud: the link audience, never the staff audience
	Subject   string    // sub: the subject's name
	Birthdate string    // birthdate: the subject's bday
	Expires   time.Time // exp
	Algorithm string    // the JWS alg the token is signed with
}

// LinkTokens issues and verifies enrolment-link JWTs. Package idm imports no
// JWT library: the host passes an implementation (package auth has one).
type LinkTokens interface {
	// LinkDefaults returns the Issuer, Audience and Algorithm of new link
	// tokens. A new link record carries them from its creation on, and
	// they never change after.
	LinkDefaults() LinkClaims
	// IssueLinkToken signs a link token with the claims c. Empty Issuer and
	// Audience are filled in with the service's link issuer and audience. It
	// returns the token and the claims as signed, Algorithm included.
	IssueLinkToken(ctx context.Context, c LinkClaims) (string, LinkClaims, error)
	// VerifyLinkToken checks the token's signature, algorithm and shape,
	// and returns its claims. It checks neither the issuer and audience,
	// which the caller compares with the link's record, nor the expiry,
	// which the caller checks against the record too. A token that fails a
	// check gives an error that wraps ErrForbidden; a staff token always
	// fails.
	VerifyLinkToken(ctx context.Context, token string) (LinkClaims, error)
}
