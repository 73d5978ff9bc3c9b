package resetflow

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
)

// Defaults of [Config].
const (
	defaultTokenTTL      = 2 * time.Hour
	defaultInviteTTL     = 72 * time.Hour
	defaultMaxRequests   = 3
	defaultRequestWindow = time.Hour
	defaultJobTimeout    = time.Minute
	defaultMaxPending    = 64
	defaultServiceName   = "C3-PRO IDM"
)

// Purposes of reset tokens ([idm.ResetToken.Purpose]).
const (
	purposeReset  = "reset"
	purposeInvite = "invite"
)

// Audit actions recorded by the flow. A change that fails after its record
// was written gets a compensating record: the action followed by
// [idm.AuditFailed].
const (
	actionRequestReset   = "request password reset"
	actionResetThrottled = "password reset throttled"
	actionInvite         = "send invitation"
	actionResetPassword  = "reset password"
	actionSetPassword    = "set password" // through an invitation link
	actionFailedSuffix   = idm.AuditFailed
)

// Events passed to [Config.OnEvent], for metrics.
const (
	eventRequested   = "requested"    // POST /iforgot answered, whatever the username
	eventIssued      = "issued"       // a link was stored for a known, enabled user
	eventThrottled   = "throttled"    // refused by the address limit or the per-account limit
	eventMailSent    = "mail_sent"    // a mail was handed to the mail server
	eventMailFailed  = "mail_failed"  // a mail could not be sent
	eventReset       = "reset"        // a password was set through a link
	eventInvalidLink = "invalid_link" // a link was refused
	eventDropped     = "dropped"      // a background job was not started (closed or too busy)
)

// Texts the visitor sees (API.md, "Password reset").
const (
	msgSent         = "if the address is known, a link is on its way"
	msgInvalidLink  = "invalid or expired link"
	msgMismatch     = "passwords do not match"
	msgPasswordSet  = "your password has been set"
	msgCrossOrigin  = "cross-origin request refused"
	msgTooMany      = "too many requests; try again later"
	msgNeedUsername = "username is required"
)

// Limits of form and JSON fields.
const (
	maxUsernameBytes = 254
	maxFieldBytes    = 4096
)

// Store is what the flow needs from the store: reading users, reset
// tokens, the audit trail and a windowed counter for the per-account
// request limit. Every [idm.Store] has these methods. The flow writes no
// user record itself: it sets passwords through [Accounts].
type Store interface {
	FindUserByID(ctx context.Context, id string) (idm.User, error)
	FindUserByUsername(ctx context.Context, username string) (idm.User, error)
	AppendAudit(ctx context.Context, e idm.AuditEvent) error
	CreateResetToken(ctx context.Context, t idm.ResetToken) error
	FindResetToken(ctx context.Context, hash string, now time.Time) (idm.ResetToken, error)
	ConsumeResetToken(ctx context.Context, hash string, now time.Time) (idm.ResetToken, error)
	DeleteResetTokens(ctx context.Context, userID string) error
	RecordLoginFailure(ctx context.Context, key string, now time.Time, window time.Duration) (idm.LoginFailures, error)
}

// Accounts sets passwords; package users' *Service implements it, with
// the side effects every password change has (audit record first, tokens
// and links revoked, login throttling cleared, the "your password was
// changed" notice through its notifier, which is typically this Handler:
// call the Service's SetMail with it).
type Accounts interface {
	// SetPasswordHash stores hash as the password of the user with the
	// given ID on behalf of actor, recorded under the audit action action.
	SetPasswordHash(ctx context.Context, actor idm.User, id, hash, action string) (idm.User, error)
}

var _ Store = idm.Store(nil)

// Passwords hashes new passwords and applies the password policy; package
// auth's *Passwords implements it. Check returns an error wrapping
// idm.ErrInvalid whose message says why a password is refused. If it also
// has a MinLength() int method, the form shows that minimum.
type Passwords interface {
	Hash(ctx context.Context, password string) (string, error)
	Check(password string) error
}

// AddressLimiter limits requests per client address; package auth's
// *AddressLimiter implements it.
type AddressLimiter interface {
	// Allow reports whether r may proceed; when it may not, retryAfter says
	// when the client may try again.
	Allow(r *http.Request) (ok bool, retryAfter time.Duration)
}

// Config configures [New]. Store, Accounts, Passwords, Mailer and
// PublicURL are required; everything else has a default.
type Config struct {
	// Store keeps users, reset tokens and the audit trail.
	Store Store
	// Accounts sets the passwords chosen through links.
	Accounts Accounts
	// Passwords hashes new passwords and applies the policy.
	Passwords Passwords
	// Mailer sends the links and notices (see [NewSMTPMailer]).
	Mailer Mailer
	// PublicURL is the service's public base URL (http or https, possibly
	// with a path prefix); links are <PublicURL>/reset?k=<token>, never
	// built from a request's Host header.
	PublicURL string
	// LoginURL, if set, is linked from the success page ("Sign in"): an
	// absolute http(s) URL or a path starting with "/".
	LoginURL string
	// ServiceName appears in pages and mails. Default "C3-PRO IDM".
	ServiceName string
	// TokenTTL is how long a reset link is valid (default 2 h); InviteTTL
	// how long an invitation link is (default 72 h).
	TokenTTL  time.Duration
	InviteTTL time.Duration
	// MaxRequests links are sent to one account within RequestWindow;
	// further requests get the same answer but no mail (defaults 3 and
	// 1 h). The counter lives in the store (under "reset-request/<user
	// id>"), so several instances share it.
	MaxRequests   int
	RequestWindow time.Duration
	// Limiter limits POST /iforgot, GET and POST /reset per client address
	// (429 with Retry-After): nil means an auth.AddressLimiter with its
	// defaults (a bucket of 20 requests, refilled at 1 per second, keyed by
	// the direct peer's address), as in users.Config.
	Limiter AddressLimiter
	// TrustedOrigins are origins (such as "https://idm.example.org")
	// besides the request's own from which a browser may POST the forms;
	// other cross-origin POSTs are refused (403).
	TrustedOrigins []string
	// Templates, if set, replaces any of the embedded page and mail
	// templates; files it lacks keep their defaults. Page templates are
	// html/template files that define "content" (and may redefine "layout")
	// and get a [PageData]: pages/layout.html, pages/iforgot.html,
	// pages/sent.html, pages/reset.html, pages/done.html, pages/error.html,
	// and the stylesheet pages/style.css (inlined into every page). Mail
	// templates get a [MailData]: mail/{reset,invite,changed}.subject.txt
	// and .txt (text/template) and .html (html/template).
	Templates fs.FS
	// JobTimeout bounds each background job (store work and sending one
	// mail) and Invite's mail. Default 1 min.
	JobTimeout time.Duration
	// MaxPending bounds the background jobs running at once; requests
	// beyond it get the usual answer but no mail (and are logged). Default
	// 64.
	MaxPending int
	// MaxBodyBytes limits request bodies (413 above). Default 1 MiB.
	MaxBodyBytes int64
	// Logger receives the flow's log lines; nil discards them. Tokens and
	// links are never logged.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnEvent, if set, is called with each event as it happens (for
	// metrics): "requested", "issued", "throttled", "mail_sent",
	// "mail_failed", "reset", "invalid_link" or "dropped". It must be safe
	// for concurrent use and quick.
	OnEvent func(event string)
}

// Handler serves GET/POST /iforgot and GET/POST /reset, and issues
// invitation links and password-changed notices for package users. Create it
// with [New]; call [Handler.Close] when shutting down so that mails being
// sent in the background are finished.
type Handler struct {
	store       Store
	accounts    Accounts
	pw          Passwords
	mailer      Mailer
	public      *url.URL
	loginURL    string
	service     string
	tokenTTL    time.Duration
	inviteTTL   time.Duration
	maxRequests int
	window      time.Duration
	limiter     AddressLimiter
	cop         *http.CrossOriginProtection
	tmpl        *templates
	jobTimeout  time.Duration
	maxBody     int64
	minLength   int
	log         *slog.Logger
	now         func() time.Time
	onEvent     func(string)
	mux         *idm.Mux
	jobs        jobs
	audits      *idm.AuditWriter
}

// New validates c, fills in its defaults, parses the templates and returns a
// Handler.
func New(c Config) (*Handler, error) {
	if c.Store == nil {
		return nil, errors.New("resetflow: Config.Store is required")
	}
	if c.Accounts == nil {
		return nil, errors.New("resetflow: Config.Accounts is required")
	}
	if c.Passwords == nil {
		return nil, errors.New("resetflow: Config.Passwords is required")
	}
	if c.Mailer == nil {
		return nil, errors.New("resetflow: Config.Mailer is required")
	}
	public, err := parsePublicURL(c.PublicURL)
	if err != nil {
		return nil, err
	}
	if c.LoginURL != "" {
		u, err := url.Parse(c.LoginURL)
		ok := err == nil && ((u.Scheme == "http" || u.Scheme == "https") && u.Host != "" ||
			u.Scheme == "" && u.Host == "" && strings.HasPrefix(u.Path, "/") && !strings.HasPrefix(c.LoginURL, "//"))
		if !ok {
			return nil, fmt.Errorf("resetflow: LoginURL %q must be an absolute http(s) URL or a path starting with /", c.LoginURL)
		}
	}
	if c.ServiceName == "" {
		c.ServiceName = defaultServiceName
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"TokenTTL", &c.TokenTTL, defaultTokenTTL},
		{"InviteTTL", &c.InviteTTL, defaultInviteTTL},
		{"RequestWindow", &c.RequestWindow, defaultRequestWindow},
		{"JobTimeout", &c.JobTimeout, defaultJobTimeout},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
		if *d.v < time.Second {
			return nil, fmt.Errorf("resetflow: %s %v is less than a second", d.name, *d.v)
		}
	}
	if c.MaxRequests == 0 {
		c.MaxRequests = defaultMaxRequests
	}
	if c.MaxPending == 0 {
		c.MaxPending = defaultMaxPending
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = idm.DefaultMaxBodyBytes
	}
	if c.MaxRequests < 0 || c.MaxPending < 0 || c.MaxBodyBytes < 0 {
		return nil, errors.New("resetflow: MaxRequests, MaxPending and MaxBodyBytes must not be negative")
	}
	cop := http.NewCrossOriginProtection()
	for _, o := range c.TrustedOrigins {
		if err := cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("resetflow: trusted origin: %w", err)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Limiter == nil {
		lim, err := auth.NewAddressLimiter(auth.AddressLimiterConfig{Now: c.Now, Logger: c.Logger})
		if err != nil {
			return nil, fmt.Errorf("resetflow: the address limiter: %w", err)
		}
		c.Limiter = lim
	}
	if c.OnEvent == nil {
		c.OnEvent = func(string) {}
	}
	tmpl, err := loadTemplates(c.Templates)
	if err != nil {
		return nil, err
	}
	h := &Handler{
		store: c.Store, accounts: c.Accounts, pw: c.Passwords, mailer: c.Mailer, public: public, loginURL: c.LoginURL,
		service: c.ServiceName, tokenTTL: c.TokenTTL, inviteTTL: c.InviteTTL,
		maxRequests: c.MaxRequests, window: c.RequestWindow, limiter: c.Limiter, cop: cop,
		tmpl: tmpl, jobTimeout: c.JobTimeout, maxBody: c.MaxBodyBytes,
		log: c.Logger, now: c.Now, onEvent: c.OnEvent, mux: idm.NewMux(),
		jobs: jobs{max: c.MaxPending},
	}
	h.audits = idm.NewAuditWriter(c.Store, c.Now, c.Logger)
	if ml, ok := c.Passwords.(interface{ MinLength() int }); ok {
		h.minLength = ml.MinLength()
	}
	h.mux.HandleFunc("GET /iforgot", h.getIforgot)
	h.mux.HandleFunc("POST /iforgot", h.postIforgot)
	h.mux.HandleFunc("GET /reset", h.getReset)
	h.mux.HandleFunc("POST /reset", h.postReset)
	return h, nil
}

// parsePublicURL checks that s is an absolute http(s) URL without query,
// fragment or credentials.
func parsePublicURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("resetflow: Config.PublicURL is required")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("resetflow: PublicURL %q must be an absolute http(s) URL without credentials, query or fragment", s)
	}
	return u, nil
}

// Install registers the handler's paths on a host mux: "/iforgot" and
// "/reset" (the handler answers wrong methods with a JSON 405). Pass e.g.
// mux.Handle.
func (h *Handler) Install(handle func(pattern string, h http.Handler)) {
	handle("/iforgot", h)
	handle("/reset", h)
}

// ServeHTTP serves GET/POST /iforgot and GET/POST /reset; other paths get a
// JSON 404 and wrong methods a JSON 405. Every answer carries
// Referrer-Policy: no-referrer, a restrictive Content-Security-Policy,
// X-Content-Type-Options, X-Frame-Options and Cache-Control: no-store.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", h.tmpl.csp)
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

// link returns the link for token: <PublicURL>/reset?k=<token>.
func (h *Handler) link(token string) string {
	u := h.public.JoinPath("reset")
	u.RawQuery = url.Values{"k": {token}}.Encode()
	return u.String()
}

// Wait blocks until no background job (a mail being prepared or sent) is
// running.
func (h *Handler) Wait() { h.jobs.wait() }

// Close stops starting background jobs and waits for the running ones, each
// bounded by Config.JobTimeout. Requests keep their answers after Close, but
// no further mail goes out. It always returns nil.
func (h *Handler) Close() error {
	h.jobs.close()
	h.jobs.wait()
	return nil
}

// jobs tracks background goroutines, bounds their number and lets Close
// wait for them.
type jobs struct {
	mu     sync.Mutex
	n      int
	max    int
	closed bool
	idle   chan struct{} // closed when n drops to 0; nil while n == 0
}

func (j *jobs) start() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed || j.n >= j.max {
		return false
	}
	if j.n == 0 {
		j.idle = make(chan struct{})
	}
	j.n++
	return true
}

func (j *jobs) done() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.n--
	if j.n == 0 {
		close(j.idle)
		j.idle = nil
	}
}

func (j *jobs) close() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.closed = true
}

func (j *jobs) wait() {
	j.mu.Lock()
	ch := j.idle
	j.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// background runs f in a goroutine with a context that keeps ctx's values
// but not its cancellation, bounded by the job timeout. It reports false
// (and logs) when the job could not be started.
func (h *Handler) background(ctx context.Context, what string, f func(ctx context.Context)) bool {
	if !h.jobs.start() {
		h.onEvent(eventDropped)
		h.log.WarnContext(ctx, "resetflow: background job not started (closed or too many pending)", "job", what)
		return false
	}
	ctx = context.WithoutCancel(ctx)
	go func() {
		defer h.jobs.done()
		ctx, cancel := context.WithTimeout(ctx, h.jobTimeout)
		defer cancel()
		defer func() {
			if v := recover(); v != nil {
				h.log.ErrorContext(ctx, "resetflow: background job panicked", "job", what, "panic", fmt.Sprint(v))
			}
		}()
		f(ctx)
	}()
	return true
}
