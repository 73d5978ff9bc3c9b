package idm

import "context"

// Principal is the authenticated staff user on whose behalf a request runs.
// The auth package's Require middleware puts it into the request context.
type Principal struct {
	UserID   string
	Username string
	Admin    bool
	// Role and Sites are what the user acts with (see [User.Access]); a
	// principal without a role reads as a coordinator of every site.
	Role         Role
	Sites        []string
	TokenVersion int64
	// TOTP tells whether the user's second factor is active.
	TOTP bool
}

type principalKey struct{}

// WithPrincipal returns a copy of ctx that carries p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal that ctx carries, if any.
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}
