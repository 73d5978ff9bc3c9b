package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/c3-pro/idm/auditlog"
	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/console"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/qrpng"
	"github.com/c3-pro/idm/resetflow"
	"github.com/c3-pro/idm/users"
)

// Server limits.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
	pingTimeout       = 2 * time.Second
	mailCheckTTL      = 30 * time.Second // /status checks the mail server at most this often
	mailCheckTimeout  = 10 * time.Second
)

// service is a wired idmd: its root handler and what must be closed.
type service struct {
	handler http.Handler       // the public API
	metrics http.Handler       // Prometheus /metrics, for the metrics listener only
	reset   *resetflow.Handler // nil without mail
	audit   *auditlog.Log      // checkpointed in the background while serving
}

// newService wires every handler package onto one root mux over store.
func newService(ctx context.Context, cfg *config, store idm.Store, log *slog.Logger) (*service, error) {
	m := newMetrics()
	store = &observedStore{Store: store, errors: m.storeErrors}
	keys, err := loadKeys(ctx, cfg, store)
	if err != nil {
		return nil, err
	}
	linkKeys, linkStatus, err := loadLinkKeys(cfg, log)
	if err != nil {
		return nil, err
	}
	passwords, err := newPasswords()
	if err != nil {
		return nil, err
	}
	authH, err := auth.New(auth.Config{
		Store: store, Keys: keys, Passwords: passwords, LinkKeys: linkKeys,
		Issuer: cfg.Issuer, Audience: cfg.Audience, LinkIssuer: cfg.LinkIssuer, LinkAudience: cfg.LinkAudience, TokenTTL: cfg.TokenTTL,
		RateLimit: cfg.RateLimit, RateBurst: cfg.RateBurst,
		TrustedProxies: cfg.TrustedProxies, Logger: log, OnLogin: m.login, RequireTOTP: cfg.RequireTOTP,
	})
	if err != nil {
		return nil, err
	}
	// One set of per-address buckets for every public form.
	limiter := authH.AddressLimiter()
	accounts, resetH, mailer, err := newAccounts(cfg, store, passwords, log, limiter, m.reset)
	if err != nil {
		return nil, err
	}
	var mail resetflow.Mailer // nil: disabled
	if mailer != nil {
		mail = &cachedPing{Mailer: mailer, p: mailer, ttl: mailCheckTTL, timeout: mailCheckTimeout, now: time.Now}
	}
	usersCfg := users.Config{
		Store: store, Passwords: passwords, Accounts: accounts, Authenticate: authH.Require, Limiter: limiter, Logger: log,
	}
	usersH, err := users.New(usersCfg)
	if err != nil {
		return nil, err
	}
	apiH, err := idm.NewHandler(idm.Config{
		Store: store, LinkTokens: authH.LinkTokens(), Authenticate: authH.Require, Logger: log,
		MaxActiveLinks: cfg.MaxLinks, DefaultSite: cfg.DefaultSite, MaxImportBytes: cfg.MaxImportBytes,
		QRCode: func(text string) ([]byte, error) { return qrpng.Encode(text) },
	})
	if err != nil {
		return nil, err
	}

	audit, err := loadAuditLog(ctx, cfg, store, log, authH.Require)
	if err != nil {
		return nil, err
	}
	m.auditLog(audit, time.Now)

	mux := idm.NewMux()
	authH.Install(mux.Handle)
	audit.Install(mux.Handle)
	usersH.Install(mux.Handle)
	if resetH != nil {
		resetH.Install(mux.Handle)
	}
	apiH.Install(mux.Handle)
	(&health{store: store, mail: mail, linkSecret: linkStatus, audit: audit, timeout: pingTimeout}).install(mux.Handle)

	// The staff console calls this very mux in-process for every action,
	// so the API's rules (roles, sites, validation, audit, throttling) are
	// the console's.
	consoleH, err := console.New(console.Config{
		Store: store, API: mux, Tokens: authH, PublicURL: cfg.PublicURL, Idle: cfg.ConsoleIdle,
		RequireTOTP: cfg.RequireTOTP, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	consoleH.Install(mux.Handle)

	// observe must hand the mux the very request whose Pattern it logs, so
	// the body limit (which copies the request) goes outside it.
	// GET /link/{jti}/qr.png takes a console session as well as a token.
	limit := bodyLimit(cfg.MaxImportBytes)
	h := limitBodies(observe(refuseLargeBodies(consoleH.SessionAuth(mux), limit), log, m, time.Now), limit)
	return &service{handler: h, metrics: metricsHandler(m.handler(), cfg.MetricsToken), reset: resetH, audit: audit}, nil
}

// newPasswords returns the password hasher and policy of idmd.
func newPasswords() (*auth.Passwords, error) {
	// Hashing yields the CPU to the other requests under a flood of logins.
	return auth.NewPasswords(auth.PasswordConfig{Niceness: auth.DefaultHashNiceness})
}

// newAccounts returns the user-lifecycle service over store that every
// writer of users (the /init and /user routes, the reset flow, idmd user)
// goes through and, when mail is configured, the reset flow that mails its
// invitations and notices, and the flow's mailer. The caller closes the flow.
func newAccounts(cfg *config, store idm.Store, passwords *auth.Passwords, log *slog.Logger,
	limiter resetflow.AddressLimiter, onEvent func(string)) (*users.Service, *resetflow.Handler, *resetflow.SMTPMailer, error) {
	accounts, err := users.NewService(users.ServiceConfig{
		Store: store, Passwords: passwords, UsernameRule: cfg.Usernames, Logger: log, TOTPIssuer: cfg.TOTPIssuer,
	})
	if err != nil || cfg.SMTPURL == "" {
		return accounts, nil, nil, err
	}
	mailer, err := resetflow.NewSMTPMailer(cfg.SMTPURL, cfg.MailFrom)
	if err != nil {
		return nil, nil, nil, &configError{s: find(settings(), "IDM_SMTP_URL"), err: errors.New("the value is not valid")}
	}
	resetH, err := resetflow.New(resetflow.Config{
		Store: store, Accounts: accounts, Passwords: passwords, Mailer: mailer, PublicURL: cfg.PublicURL,
		Limiter: limiter, Logger: log, OnEvent: onEvent,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	accounts.SetMail(resetH, resetH)
	return accounts, resetH, mailer, nil
}

// loadKeys returns the signing keys the configuration names: PEM key files,
// an HMAC secret, or else the key generated once and kept in the store.
func loadKeys(ctx context.Context, cfg *config, store idm.Store) (*auth.KeySet, error) {
	var ks []*auth.Key
	for _, f := range cfg.KeyFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, &configError{s: find(settings(), "IDM_KEY_FILE"), err: fmt.Errorf("cannot read %s: %w", f, errors.Unwrap(err))}
		}
		k, err := auth.ParsePrivateKeyPEM(b)
		if err != nil {
			return nil, &configError{s: find(settings(), "IDM_KEY_FILE"), err: fmt.Errorf("%s: %w", f, err)}
		}
		ks = append(ks, k)
	}
	if cfg.Secret != nil {
		k, err := auth.NewHMACKey(cfg.Secret)
		if err != nil {
			// The error says why (too short, a known default), never the value.
			return nil, &configError{s: find(settings(), "IDM_SECRET"), err: err}
		}
		ks = append(ks, k)
	}
	if len(ks) == 0 {
		return auth.LoadOrCreateKeys(ctx, store, time.Now())
	}
	return auth.NewKeySet(ks[0], ks[1:]...)
}

// loadLinkKeys returns the keys of enrolment-link tokens that the
// configuration names (none: link tokens use the service's HS256 key) and
// what GET /status says of them: "weak" when the link secret would be too
// weak for staff tokens, which idmd also logs once, else "ok".
func loadLinkKeys(cfg *config, log *slog.Logger) ([]*auth.LinkKey, string, error) {
	if cfg.LinkSecret == nil {
		return nil, "ok", nil
	}
	var keys []*auth.LinkKey
	for i, secret := range append([][]byte{cfg.LinkSecret}, cfg.PrevLinkSecret...) {
		k, err := auth.NewLinkKey(secret)
		if err != nil {
			name := "IDM_LINK_SECRET"
			if i > 0 {
				name = "IDM_LINK_SECRET_PREVIOUS_FILE"
			}
			return nil, "", &configError{s: find(settings(), name), err: err}
		}
		keys = append(keys, k)
	}
	if weak, why := keys[0].Weak(); weak {
		log.Warn("IDM_LINK_SECRET is weak: it signs enrolment-link tokens only, never staff tokens; expected when it is the secret compiled into a published C3-PRO app build",
			"reason", why)
		return keys, "weak", nil
	}
	return keys, "ok", nil
}

// serve runs the service until SIGINT or SIGTERM, then stops accepting
// connections, drains in-flight requests and closes the store.
func serve(ctx context.Context, args []string, std stdio) int {
	cfg, pos, code := parse("serve", args, std, nil)
	if code >= 0 {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(std.err, "idmd: serve takes no arguments, got %q\n", pos)
		return exitConfig
	}
	log := newLogger(cfg, std.err)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	store, err := openStore(ctx, cfg)
	if err != nil {
		fmt.Fprintf(std.err, "idmd: %v\n", err)
		return exitFail
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("closing the store", "err", err)
		}
	}()
	svc, err := newService(ctx, cfg, store, log)
	if err != nil {
		fmt.Fprintf(std.err, "idmd: %v\n", err)
		var ce *configError
		if errors.As(err, &ce) {
			return exitConfig
		}
		return exitFail
	}
	// Housekeeping and the idle memory release stop before the store
	// closes (deferred calls run in reverse order).
	bg, stopBackground := context.WithCancel(ctx)
	var background sync.WaitGroup
	defer func() { stopBackground(); background.Wait() }()
	background.Go(func() { runJanitor(bg, store, log, janitorEvery, cfg.ConsoleIdle, time.Now) })
	// The audit log's tree follows the records, and is checkpointed; at
	// start it takes up what was appended before a crash.
	background.Go(func() { svc.audit.Run(bg) })
	idle := newIdleTracker(time.Now)
	background.Go(func() {
		tick := time.NewTicker(idleReleaseAfter / 4)
		defer tick.Stop()
		idle.run(bg, idleReleaseAfter, tick.C, func(ctx context.Context) { releaseMemory(ctx, store, log) })
	})
	if b, ok := store.(backuper); ok && cfg.MongoURI == "" {
		stopAdmin, err := serveAdminSocket(adminSocketPath(cfg.DB), b, store, log)
		if err != nil {
			fmt.Fprintf(std.err, "idmd: cannot serve the admin socket %s: %v\n", adminSocketPath(cfg.DB), err)
			return exitFail
		}
		defer stopAdmin()
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		fmt.Fprintf(std.err, "idmd: cannot listen on IDM_ADDR (-addr) %s: %v\n", cfg.Addr, err)
		return exitFail
	}
	if cfg.MetricsAddr != "" {
		stopMetrics, err := serveMetrics(cfg.MetricsAddr, svc.metrics, log)
		if err != nil {
			ln.Close()
			fmt.Fprintf(std.err, "idmd: cannot listen on IDM_METRICS_ADDR (-metrics-addr) %s: %v\n", cfg.MetricsAddr, err)
			return exitFail
		}
		defer stopMetrics()
	}
	// What opening the store and wiring the service allocated and no longer
	// needs goes back to the system before the first request.
	releaseMemory(ctx, store, log)
	srv := newHTTPServer(idle.wrap(svc.handler), log)
	srv.BaseContext = func(net.Listener) context.Context { return context.WithoutCancel(ctx) }
	store_ := "bbolt " + cfg.DB
	if cfg.MongoURI != "" {
		store_ = "mongodb database " + cfg.MongoDB
	}
	log.Info("listening", "addr", ln.Addr().String(), "store", store_, "public_url", cfg.PublicURL,
		"mail", cfg.SMTPURL != "", "version", version())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		log.Error("server stopped", "err", err)
		return exitFail
	case <-ctx.Done():
		stop() // a second signal ends the process at once
	}
	log.Info("shutting down: draining in-flight requests", "grace", cfg.ShutdownGrace)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	code = exitOK
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("shutdown did not finish in time", "err", err)
		code = exitFail
	}
	if svc.reset != nil {
		if err := svc.reset.Close(); err != nil {
			log.Error("waiting for mail to go out", "err", err)
		}
	}
	log.Info("stopped")
	return code
}

// newHTTPServer returns a server of h with idmd's limits and timeouts.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// serveMetrics serves h (Prometheus /metrics) on a listener of its own at
// addr, apart from the public API, and returns a function that stops it.
func serveMetrics(addr string, h http.Handler, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := newHTTPServer(h, log)
	log.Info("serving metrics", "addr", ln.Addr().String())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}
