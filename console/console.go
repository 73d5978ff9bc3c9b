package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
)

// Defaults of [Config].
const (
	// DefaultIdle is how long a session lasts without a request
	// (IDM_CONSOLE_IDLE).
	DefaultIdle = 30 * time.Minute
	// DefaultLifetime is how long a session lasts at most, however busy.
	DefaultLifetime = 12 * time.Hour
)

// tokenTTL is the lifetime of the staff token minted for one console
// request; it never leaves the process.
const tokenTTL = 2 * time.Minute

// maxFormBytes bounds a console form's body.
const maxFormBytes = 64 << 10

// Store is what the console needs of the store: the signed-in user and
// the sessions. Every idm.Store has these methods. Everything else goes
// through the API handler.
type Store interface {
	FindUserByID(ctx context.Context, id string) (idm.User, error)
	CreateSession(ctx context.Context, s idm.Session) error
	FindSession(ctx context.Context, idHash string) (idm.Session, error)
	TouchSession(ctx context.Context, idHash string, at time.Time) error
	DeleteSession(ctx context.Context, idHash string) error
	// AppendAudit records sign-outs (sign-ins are POST /auth's).
	AppendAudit(ctx context.Context, e idm.AuditEvent) error
}

var _ Store = idm.Store(nil)

// Tokens mints the short-lived staff tokens with which the console calls
// the API handler on behalf of a session's user, and reads the token a
// sign-in (POST /auth) answered with. *auth.Handler implements it.
type Tokens interface {
	IssueSessionToken(u idm.User, ttl time.Duration) (string, error)
	VerifyToken(token string) (auth.StaffClaims, error)
}

var _ Tokens = (*auth.Handler)(nil)

// Config configures [New]. Store, API and Tokens are required.
type Config struct {
	// Store keeps the users and the sessions.
	Store Store
	// API is the handler that serves idmd's JSON API (POST /auth, /user,
	// /subject, /link, /audit, ...), the very one the service serves: the
	// console calls it in-process for every action, so that the API's
	// authentication, role and site checks, validation, audit and
	// throttling apply unchanged.
	API http.Handler
	// Tokens mints the console's in-process staff tokens.
	Tokens Tokens
	// PublicURL is the service's public base URL; https makes the session
	// cookie Secure (and __Host- prefixed).
	PublicURL string
	// Idle ends a session that saw no request for this long. Default 30 min.
	Idle time.Duration
	// Lifetime ends a session this long after sign-in. Default 12 h.
	Lifetime time.Duration
	// RequireTOTP sends a user without an active second factor to the
	// account page to enrol one (IDM_REQUIRE_TOTP); the API refuses them
	// everything else anyway.
	RequireTOTP bool
	// TrustedOrigins are other origins whose form posts are accepted (see
	// [http.CrossOriginProtection.AddTrustedOrigin]); normally none.
	TrustedOrigins []string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the console's log lines; nil discards them.
	Logger *slog.Logger
}

// Handler serves the staff console under /console/. Create it with [New].
type Handler struct {
	store       Store
	api         http.Handler
	tokens      Tokens
	idle        time.Duration
	lifetime    time.Duration
	requireTOTP bool
	secure      bool
	cookie      string
	now         func() time.Time
	log         *slog.Logger

	audits *idm.AuditWriter

	cop   *http.CrossOriginProtection
	pages map[string]*template.Template
	style []byte
	mux   *http.ServeMux
	root  http.Handler
}

//go:embed templates static
var files embed.FS

// New validates c, fills in its defaults and returns a Handler.
func New(c Config) (*Handler, error) {
	switch {
	case c.Store == nil:
		return nil, errors.New("console: Config.Store is required")
	case c.API == nil:
		return nil, errors.New("console: Config.API (the API handler) is required")
	case c.Tokens == nil:
		return nil, errors.New("console: Config.Tokens is required")
	case c.Idle < 0 || c.Lifetime < 0:
		return nil, fmt.Errorf("console: idle timeout %v and lifetime %v must not be negative", c.Idle, c.Lifetime)
	}
	h := &Handler{
		store: c.Store, api: c.API, tokens: c.Tokens, idle: c.Idle, lifetime: c.Lifetime,
		requireTOTP: c.RequireTOTP, now: c.Now, log: c.Logger, cop: http.NewCrossOriginProtection(),
	}
	if h.idle == 0 {
		h.idle = DefaultIdle
	}
	if h.lifetime == 0 {
		h.lifetime = DefaultLifetime
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.audits = idm.NewAuditWriter(c.Store, h.now, h.log)
	h.cookie = "idm_console"
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil {
			return nil, fmt.Errorf("console: public URL: %w", err)
		}
		if u.Scheme == "https" {
			// A __Host- cookie is Secure, has Path=/ and no Domain: no
			// other host or insecure page can set or shadow it.
			h.secure, h.cookie = true, "__Host-idm_console"
		}
	}
	for _, o := range c.TrustedOrigins {
		if err := h.cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("console: trusted origin: %w", err)
		}
	}
	h.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, http.StatusForbidden, "This form was sent from another site and has been refused.")
	}))
	var err error
	if h.style, err = files.ReadFile("static/style.css"); err != nil {
		return nil, fmt.Errorf("console: reading the stylesheet: %w", err)
	}
	if h.pages, err = parsePages(); err != nil {
		return nil, err
	}
	h.routes()
	return h, nil
}

// Install registers the console on a host mux under /console/. Pass e.g.
// mux.Handle.
func (h *Handler) Install(handle func(pattern string, h http.Handler)) {
	handle("/console/", h)
}

// ServeHTTP serves the console's pages. Every answer carries a strict
// Content-Security-Policy (no script at all, the console's own stylesheet
// and images only), no referrer, no framing, no caching; every
// state-changing request from another origin is refused.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	if !strings.HasPrefix(r.URL.Path, "/console/static/") {
		hd.Set("Cache-Control", "no-store")
	}
	h.root.ServeHTTP(w, r)
}

// csp is the console's Content-Security-Policy: no script, styles and
// images from the service itself only (and data: images, the TOTP
// enrolment's QR code), forms posting to the service only.
const csp = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

// RedirectBrowsers wraps the handler of GET / (idmd's {"status":"ready"}):
// a browser's request (Accept: text/html) is redirected to the console,
// every other request goes to next unchanged.
func RedirectBrowsers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.URL.Path == "/" && acceptsHTML(r) {
			w.Header().Set("Location", "console/")
			w.Header().Add("Vary", "Accept")
			w.WriteHeader(http.StatusSeeOther)
			return
		}
		w.Header().Add("Vary", "Accept")
		next.ServeHTTP(w, r)
	})
}

// acceptsHTML reports whether r's Accept header names text/html.
func acceptsHTML(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if strings.EqualFold(strings.TrimSpace(mt), "text/html") && qualityAbove0(params) {
				return true
			}
		}
	}
	return false
}

// qualityAbove0 reports whether the parameters of an Accept entry leave
// its quality above 0 ("q=0" refuses the type).
func qualityAbove0(params string) bool {
	for p := range strings.SplitSeq(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return err == nil && q > 0
		}
	}
	return true
}
