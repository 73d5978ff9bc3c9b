package users

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
)

// Store is the part of [idm.Store] that the handler uses.
type Store interface {
	idm.UserStore
	idm.AuditStore
	// MarkBootstrapped sets the one-time bootstrap marker; ErrConflict when
	// it is set already (see [idm.MetaStore]).
	MarkBootstrapped(ctx context.Context, at time.Time) error
	// Bootstrapped reports whether the bootstrap marker is set.
	Bootstrapped(ctx context.Context) (bool, error)
	// LoginFailures returns the login-failure counter of an account.
	LoginFailures(ctx context.Context, key string) (idm.LoginFailures, error)
	// ResetLoginFailures clears the login-failure counter of an account.
	ResetLoginFailures(ctx context.Context, key string) error
	// ReserveLoginAttempt takes a place for one password check of an
	// account before the check (see [idm.MetaStore]); the counter is the
	// one POST /auth keeps.
	ReserveLoginAttempt(ctx context.Context, key string, now time.Time, window time.Duration, max int) (idm.LoginFailures, bool, error)
	// DeleteResetTokens removes all password-reset tokens of a user.
	DeleteResetTokens(ctx context.Context, userID string) error
	// DeleteUserSessions removes all staff console sessions of a user (see
	// [idm.SessionStore]).
	DeleteUserSessions(ctx context.Context, userID string) (int, error)
}

// Passwords hashes and verifies passwords and applies the password policy.
// Package auth's *Passwords implements it.
type Passwords interface {
	// Hash returns the encoded hash of a password.
	Hash(ctx context.Context, password string) (string, error)
	// Verify reports whether password matches the encoded hash.
	Verify(ctx context.Context, encoded, password string) (ok, needsRehash bool, err error)
	// Check applies the password policy; a password that fails it gives an
	// error wrapping idm.ErrInvalid whose message says why.
	Check(password string) error
}

// Inviter sends a new user who was created without a password a link to set
// one. Package resetflow implements it.
type Inviter interface {
	// Invite issues a set-password link for u and sends it to u.Username.
	Invite(ctx context.Context, u idm.User) error
}

// Notifier tells a user that their password was changed. Package resetflow
// implements it.
type Notifier interface {
	// PasswordChanged notifies u that their password was changed.
	PasswordChanged(ctx context.Context, u idm.User) error
}

// AddressLimiter limits requests per client address. Package auth's
// *AddressLimiter implements it.
type AddressLimiter interface {
	// Allow reports whether r may proceed; when it may not, retryAfter says
	// when the client may try again.
	Allow(r *http.Request) (ok bool, retryAfter time.Duration)
}

// The store, auth's passwords and its limiter fit the interfaces above.
var (
	_ Store          = idm.Store(nil)
	_ Passwords      = (*auth.Passwords)(nil)
	_ AddressLimiter = (*auth.AddressLimiter)(nil)
)

// Config configures [New].
type Config struct {
	// Store keeps users, the audit trail and the bootstrap marker. Required.
	Store Store
	// Passwords hashes passwords and applies the password policy. Required.
	Passwords Passwords
	// Authenticate is the staff-token middleware (package auth's
	// (*Handler).Require), as in idm.Config: it answers 401 without a valid
	// token and puts an *idm.Principal into the request context. Every
	// /user route is wrapped in it. Required.
	Authenticate func(http.Handler) http.Handler
	// Accounts is the user-lifecycle service that makes every change to
	// users; it must use the same Store. Nil means a new [Service] made of
	// Store, Passwords, UsernameRule, MaxFailures, FailureWindow, Now and
	// Logger, which sends mail through Inviter and Notifier.
	Accounts *Service
	// Inviter, when set, lets POST /user create a user without a password
	// and send them a set-password link. Without it a password is required.
	// Only without Accounts (see [Service.SetMail]).
	Inviter Inviter
	// Notifier, when set, is told about every password change made here.
	// Only without Accounts (see [Service.SetMail]).
	Notifier Notifier
	// Limiter limits requests to /init per client address: nil means
	// an auth.AddressLimiter with its defaults (a bucket of 20 requests,
	// refilled at 1 per second, keyed by the direct peer's address), as in
	// resetflow.Config.
	Limiter AddressLimiter
	// TrustedOrigins are origins (such as "https://idm.example.org") besides
	// the request's own from which a browser may POST the /init form.
	TrustedOrigins []string
	// UsernameRule is the rule for the usernames of new users (POST /user
	// and /init); its zero value refuses mixed-script names. Existing users
	// are found and can log in whatever their names.
	UsernameRule idm.UsernameRule
	// MaxBodyBytes limits request bodies: 0 means idm.DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxFailures wrong current passwords (PUT /user/{id} with
	// current_password) within FailureWindow throttle further password
	// checks of that account until the window ends; they count in the same
	// store counter as failed logins at POST /auth (key auth.LoginKey of
	// the username), so set them as auth.Config's. 0 means
	// auth.DefaultMaxFailures (5) and auth.DefaultFailureWindow (15 min).
	MaxFailures   int
	FailureWindow time.Duration
	// Now returns the current time: nil means time.Now.
	Now func() time.Time
	// Logger receives server errors and notable events: nil discards them.
	Logger *slog.Logger
	// TOTPIssuer names the service in TOTP keys' otpauth:// URIs: ""
	// means auth.DefaultTOTPIssuer. Only without Accounts (see
	// [ServiceConfig.TOTPIssuer]).
	TOTPIssuer string
}

// Handler serves /init and /user. It is an [http.Handler]; create it with
// [New].
type Handler struct {
	store     Store
	svc       *Service
	passwords Passwords
	require   func(http.Handler) http.Handler
	limiter   AddressLimiter
	maxBody   int64
	now       func() time.Time
	log       *slog.Logger

	cop    *http.CrossOriginProtection
	page   *template.Template
	style  template.CSS
	csp    string
	mux    *idm.Mux
	routes []route
}

type route struct {
	pattern string
	handler http.Handler
}

//go:embed templates
var templateFS embed.FS

// New validates c, fills in its defaults and returns a Handler.
func New(c Config) (*Handler, error) {
	switch {
	case c.Store == nil:
		return nil, errors.New("users: Config.Store is required")
	case c.Passwords == nil:
		return nil, errors.New("users: Config.Passwords is required")
	case c.Authenticate == nil:
		return nil, errors.New("users: Config.Authenticate (the staff-token middleware) is required")
	case c.MaxBodyBytes < 0:
		return nil, fmt.Errorf("users: Config.MaxBodyBytes %d is negative", c.MaxBodyBytes)
	case c.Accounts != nil && (c.Inviter != nil || c.Notifier != nil):
		return nil, errors.New("users: Config.Inviter and Notifier are for a handler without Accounts; use Accounts.SetMail")
	}
	h := &Handler{
		store:     c.Store,
		svc:       c.Accounts,
		passwords: c.Passwords,
		require:   c.Authenticate,
		limiter:   c.Limiter,
		maxBody:   c.MaxBodyBytes,
		now:       c.Now,
		log:       c.Logger,
		cop:       http.NewCrossOriginProtection(),
	}
	if h.maxBody == 0 {
		h.maxBody = idm.DefaultMaxBodyBytes
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.svc == nil {
		svc, err := NewService(ServiceConfig{
			Store: c.Store, Passwords: c.Passwords, UsernameRule: c.UsernameRule,
			MaxFailures: c.MaxFailures, FailureWindow: c.FailureWindow, Now: c.Now, Logger: c.Logger,
			TOTPIssuer: c.TOTPIssuer,
		})
		if err != nil {
			return nil, err
		}
		svc.SetMail(c.Inviter, c.Notifier)
		h.svc = svc
	}
	if h.limiter == nil {
		lim, err := auth.NewAddressLimiter(auth.AddressLimiterConfig{Now: h.now, Logger: h.log})
		if err != nil {
			return nil, fmt.Errorf("users: the /init limiter: %w", err)
		}
		h.limiter = lim
	}
	for _, o := range c.TrustedOrigins {
		if err := h.cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("users: trusted origin: %w", err)
		}
	}
	h.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		idm.WriteError(w, r, h.log, idm.E(idm.ErrForbidden, "cross-origin request refused"))
	}))
	style, err := templateFS.ReadFile("templates/style.css")
	if err != nil {
		return nil, fmt.Errorf("users: reading the stylesheet: %w", err)
	}
	h.style = template.CSS(style)
	sum := sha256.Sum256(style)
	h.csp = "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	h.page, err = template.ParseFS(templateFS, "templates/init.html")
	if err != nil {
		return nil, fmt.Errorf("users: parsing the page template: %w", err)
	}

	initH := h.pageHeaders(h.cop.Handler(h.limit(http.HandlerFunc(h.serveInit))))
	h.routes = []route{
		{"GET /init", initH},
		{"POST /init", initH},
		{"POST /user", h.staff(h.createUser)},
		{"GET /user", h.staff(h.listUsers)},
		{"DELETE /user", h.staff(h.deleteUserByBody)},
		{"GET /user/me", h.staff(h.getMe)},
		{"POST /user/me/totp", h.staff(h.enrolTOTP)},
		{"DELETE /user/me/totp", h.staff(h.removeTOTP)},
		{"POST /user/me/totp/confirm", h.staff(h.confirmTOTP)},
		{"GET /user/{id}", h.staff(h.getUser)},
		{"PUT /user/{id}", h.staff(h.updateUser)},
		{"DELETE /user/{id}", h.staff(h.deleteUserByID)},
	}
	h.mux = idm.NewMux()
	h.Install(h.mux.Handle)
	return h, nil
}

// ServeHTTP serves /init and the /user routes; other paths get the JSON 404
// and wrong methods the JSON 405 of [idm.Mux].
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

// Install registers the handler's routes (Go 1.22 ServeMux patterns such as
// "PUT /user/{id}") with handle, for example a host's
// (*http.ServeMux).Handle. The /user routes are wrapped in
// [Config.Authenticate]; /init is not.
func (h *Handler) Install(handle func(pattern string, h http.Handler)) {
	for _, rt := range h.routes {
		handle(rt.pattern, rt.handler)
	}
}

// staff wraps a /user handler: no caching of answers, the staff-token
// middleware, and the handler's own check for the principal (so that a
// host that mounts the handler without Authenticate still fails closed).
func (h *Handler) staff(f func(w http.ResponseWriter, r *http.Request, actor idm.User)) http.Handler {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		actor, err := h.actor(r)
		if err != nil {
			idm.WriteError(w, r, h.log, err)
			return
		}
		f(w, r, actor)
	})
	wrapped := h.require(inner)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		wrapped.ServeHTTP(w, r)
	})
}

// actor returns the current record of the user the request runs for. A
// request without a principal, or whose user is gone, disabled or holds an
// outdated token version, gets 401.
func (h *Handler) actor(r *http.Request) (idm.User, error) {
	p, ok := idm.PrincipalFrom(r.Context())
	if !ok {
		return idm.User{}, idm.E(idm.ErrUnauthorized, "Authorization Required")
	}
	u, err := h.store.FindUserByID(r.Context(), p.UserID)
	if errors.Is(err, idm.ErrNotFound) {
		return idm.User{}, idm.E(idm.ErrUnauthorized, "Invalid token")
	}
	if err != nil {
		return idm.User{}, fmt.Errorf("users: loading the caller %s: %w", p.UserID, err)
	}
	if u.Disabled || u.TokenVersion != p.TokenVersion {
		return idm.User{}, idm.E(idm.ErrUnauthorized, "Invalid token")
	}
	return u, nil
}
