package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"golang.org/x/time/rate"

	"github.com/c3-pro/idm/idm"
)

// Defaults of [Config].
const (
	DefaultIssuer        = "http://localhost:9096"
	DefaultAudience      = "idm"
	DefaultTokenTTL      = 12 * time.Hour
	DefaultLeeway        = 30 * time.Second
	MaxLeeway            = 30 * time.Second
	DefaultMaxFailures   = 5
	DefaultFailureWindow = 15 * time.Minute
)

// Login outcomes passed to [Config.OnLogin].
const (
	OutcomeSuccess   = "success"
	OutcomeFailure   = "failure"
	OutcomeThrottled = "throttled"
)

// Store is what the auth handler needs from the store: users, the audit
// trail and the login-failure counters. Every idm.Store has these methods.
type Store interface {
	FindUserByID(ctx context.Context, id string) (idm.User, error)
	FindUserByUsername(ctx context.Context, username string) (idm.User, error)
	UpdateUser(ctx context.Context, u idm.User) error
	AppendAudit(ctx context.Context, e idm.AuditEvent) error
	ReserveLoginAttempt(ctx context.Context, key string, now time.Time, window time.Duration, max int) (idm.LoginFailures, bool, error)
	ResetLoginFailures(ctx context.Context, key string) error
	// AcceptTOTPStep and ConsumeTOTPRecovery accept a one-time or recovery
	// code once (see [idm.UserStore]).
	AcceptTOTPStep(ctx context.Context, id string, step int64) error
	ConsumeTOTPRecovery(ctx context.Context, id, hash string) error
	// RecordLogin records a successful login for access reviews.
	RecordLogin(ctx context.Context, id string, at time.Time) error
	// DeleteResetTokens removes a user's password-reset and invitation
	// links, which POST /logout revokes with the tokens.
	DeleteResetTokens(ctx context.Context, userID string) error
}

var _ Store = idm.Store(nil)

// Config configures [New]. Store and Keys are required; everything else has
// a default.
type Config struct {
	// Store keeps users, audit records and login-failure counters.
	Store Store
	// Keys sign and verify tokens: from configured secrets or PEM keys
	// ([NewHMACKey], [ParsePrivateKeyPEM], [NewKeySet]) or from the store
	// ([LoadOrCreateKeys]).
	Keys *KeySet
	// Passwords hashes and checks passwords; nil means NewPasswords with
	// the defaults (bcrypt cost 12).
	Passwords *Passwords
	// Issuer is the iss of every token: the service's public URL. Default
	// "http://localhost:9096".
	Issuer string
	// Audience is the aud of staff tokens. Default "idm".
	Audience string
	// LinkKeys sign and verify enrolment-link tokens (HS256): the first
	// signs, the others (previous link secrets) still verify, so that QR
	// codes printed before a rotation keep establishing. They never verify
	// a staff token, and no link key may be a staff key. Empty: link tokens
	// are signed with the HS256 signing key of Keys and verified with its
	// HS256 keys, and New fails when Keys signs with another algorithm (the
	// mobile app verifies link tokens with HS256 only).
	LinkKeys []*LinkKey
	// LinkIssuer is the iss of new link tokens, kept byte for byte (the
	// mobile app compares it so, trailing slash included). Default: Issuer.
	LinkIssuer string
	// LinkAudience is the aud of new link tokens; the mobile app posts to
	// LinkAudience + "/establish", so it is the service's public base URL.
	// It must differ from Audience. Default: the Issuer.
	LinkAudience string
	// TokenTTL is how long a staff token is valid. Default 12 h.
	TokenTTL time.Duration
	// Leeway is the clock skew allowed when checking exp, nbf and iat: 0
	// means 30 s, the most allowed; negative means none.
	Leeway time.Duration
	// AcceptMissingKID lets a token without a kid header be verified with
	// the signing key. By default such tokens are refused.
	AcceptMissingKID bool
	// MaxFailures failed logins of one account within FailureWindow throttle
	// further logins of that account until the window ends. Defaults 5 and
	// 15 min.
	MaxFailures   int
	FailureWindow time.Duration
	// RateLimit and RateBurst size the token bucket of each client address
	// for POST /auth: default 1 per second and 20. rate.Inf turns it off.
	RateLimit rate.Limit
	RateBurst int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed when finding a client's address.
	TrustedProxies []netip.Prefix
	// RequireTOTP keeps users without an active second factor to enrolling
	// one (see [Handler.Require]): their tokens reach only /user/me, the
	// TOTP endpoints and POST /logout (IDM_REQUIRE_TOTP).
	RequireTOTP bool
	// Logger receives the service's log lines; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnLogin, if set, is called once per POST /auth with the outcome:
	// "success", "failure" or "throttled" (for metrics).
	OnLogin func(outcome string)
}

// Handler serves POST /auth, POST /logout and GET /.well-known/jwks.json,
// issues and verifies staff tokens, and guards other handlers with
// [Handler.Require]. Create it with [New].
type Handler struct {
	store       Store
	keys        *KeySet
	pw          *Passwords
	tokens      *tokens
	limiter     *AddressLimiter
	maxFailures int
	window      time.Duration
	log         *slog.Logger
	now         func() time.Time
	onLogin     func(string)
	mux         *idm.Mux
	audits      *idm.AuditWriter
	requireTOTP bool
}

// New validates c, fills in its defaults and returns a Handler.
func New(c Config) (*Handler, error) {
	if c.Store == nil {
		return nil, errors.New("auth: Config.Store is required")
	}
	if c.Keys == nil {
		return nil, errors.New("auth: Config.Keys is required (see LoadOrCreateKeys)")
	}
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
	if c.LinkIssuer == "" {
		c.LinkIssuer = c.Issuer
	}
	if c.LinkAudience == "" {
		c.LinkAudience = c.Issuer
	}
	linkKeys, err := linkKeySet(c.Keys, c.LinkKeys)
	if err != nil {
		return nil, err
	}
	if c.LinkAudience == c.Audience {
		return nil, fmt.Errorf("auth: the staff and link audiences are both %q; they must differ", c.Audience)
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = DefaultTokenTTL
	}
	if c.TokenTTL < 0 {
		return nil, fmt.Errorf("auth: token TTL %v is negative", c.TokenTTL)
	}
	switch {
	case c.Leeway == 0:
		c.Leeway = DefaultLeeway
	case c.Leeway < 0:
		c.Leeway = 0
	case c.Leeway > MaxLeeway:
		return nil, fmt.Errorf("auth: leeway %v exceeds %v", c.Leeway, MaxLeeway)
	}
	if c.MaxFailures == 0 {
		c.MaxFailures = DefaultMaxFailures
	}
	if c.FailureWindow == 0 {
		c.FailureWindow = DefaultFailureWindow
	}
	if c.MaxFailures < 1 || c.FailureWindow < 0 {
		return nil, fmt.Errorf("auth: login throttling of %d failures in %v", c.MaxFailures, c.FailureWindow)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Passwords == nil {
		p, err := NewPasswords(PasswordConfig{})
		if err != nil {
			return nil, err
		}
		c.Passwords = p
	}
	lim, err := NewAddressLimiter(AddressLimiterConfig{
		Rate: c.RateLimit, Burst: c.RateBurst, TrustedProxies: c.TrustedProxies, Now: c.Now, Logger: c.Logger,
	})
	if err != nil {
		return nil, err
	}
	h := &Handler{
		store: c.Store, keys: c.Keys, pw: c.Passwords, limiter: lim,
		tokens: newTokens(tokenConfig{
			keys: c.Keys, linkKeys: linkKeys, issuer: c.Issuer, audience: c.Audience,
			linkIssuer: c.LinkIssuer, linkAudience: c.LinkAudience, ttl: c.TokenTTL, leeway: c.Leeway,
			acceptMissingKID: c.AcceptMissingKID, now: c.Now,
		}),
		maxFailures: c.MaxFailures, window: c.FailureWindow, log: c.Logger, now: c.Now, onLogin: c.OnLogin,
		mux: idm.NewMux(), requireTOTP: c.RequireTOTP,
	}
	h.audits = idm.NewAuditWriter(c.Store, c.Now, c.Logger)
	h.Install(h.mux.Handle)
	return h, nil
}

// linkKeySet returns the keys of link tokens: the configured link keys, or
// else the HS256 keys of the staff key set (signing with its signing key).
func linkKeySet(staff *KeySet, link []*LinkKey) (*KeySet, error) {
	if len(link) == 0 {
		if staff.Signing().alg != HS256 {
			return nil, fmt.Errorf("auth: the staff tokens are signed %s, but the mobile app verifies link tokens with HS256: configure a link secret (Config.LinkKeys)", staff.Signing().alg)
		}
		var others []*Key
		for _, k := range staff.keys[1:] {
			if k.alg == HS256 {
				others = append(others, k)
			}
		}
		return NewKeySet(staff.Signing(), others...)
	}
	keys := make([]*Key, len(link))
	for i, lk := range link {
		if lk == nil {
			return nil, errors.New("auth: nil link key")
		}
		if _, ok := staff.Lookup(lk.key.kid); ok {
			// Every app build ships the link secret: were it also a staff
			// secret, anyone could sign staff tokens.
			return nil, errors.New("auth: a link secret is also a staff-token secret; they must differ")
		}
		keys[i] = lk.key
	}
	return NewKeySet(keys[0], keys[1:]...)
}

// Install registers the handler's routes on a host mux: "POST /auth",
// "POST /logout" (behind [Handler.Require]) and
// "GET /.well-known/jwks.json". Pass e.g. mux.Handle.
func (h *Handler) Install(handle func(pattern string, h http.Handler)) {
	handle("POST /auth", http.HandlerFunc(h.serveAuth))
	handle("POST /logout", h.Require(http.HandlerFunc(h.serveLogout)))
	handle("GET /.well-known/jwks.json", http.HandlerFunc(h.serveJWKS))
}

// ServeHTTP serves the handler's routes; other paths get a JSON 404 and
// wrong methods a JSON 405.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

// Passwords returns the password hasher and policy the handler uses.
func (h *Handler) Passwords() *Passwords { return h.pw }

// AddressLimiter returns the per-client-address limiter of POST /auth, so
// that a host can guard its other public forms (/init, /iforgot, /reset)
// with the same buckets: one flood budget per client address in all.
func (h *Handler) AddressLimiter() *AddressLimiter { return h.limiter }

// LinkTokens returns the issuer and verifier of enrolment-link tokens for
// idm's handler. Link tokens carry the link audience and no token version,
// so a link token never passes as a staff token and a staff token never
// passes as a link token.
func (h *Handler) LinkTokens() idm.LinkTokens { return h.tokens }

// unlock clears the login throttling of the account username, as an admin's
// "unlock" does. The caller writes the audit record of the change.
func (h *Handler) unlock(ctx context.Context, username string) error {
	if err := h.store.ResetLoginFailures(ctx, LoginKey(username)); err != nil {
		return fmt.Errorf("auth: unlocking %q: %w", username, err)
	}
	return nil
}

// serveJWKS serves the public keys of the asymmetric keys as a JWK Set.
func (h *Handler) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	idm.WriteJSON(w, http.StatusOK, h.keys.JWKS())
}

// outcome reports a login outcome to the metrics hook.
func (h *Handler) outcome(o string) {
	if h.onLogin != nil {
		h.onLogin(o)
	}
}
