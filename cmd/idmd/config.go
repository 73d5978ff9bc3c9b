package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/c3-pro/idm/idm"
)

// config is idmd's configuration, read from flags and environment
// variables; a flag that is given wins over its variable.
type config struct {
	Addr           string
	DB             string
	MongoURI       string
	MongoDB        string
	Secret         []byte
	KeyFiles       []string
	Issuer         string
	Audience       string
	LinkSecret     []byte
	PrevLinkSecret [][]byte // previous link secrets: they verify, never sign
	LinkIssuer     string
	LinkAudience   string
	AuditKeyFile   string
	AuditEvery     time.Duration // IDM_AUDIT_CHECKPOINT
	TokenTTL       time.Duration
	// ConsoleIdle is how long a staff console session lasts without a
	// request (IDM_CONSOLE_IDLE).
	ConsoleIdle    time.Duration
	PublicURL      string
	SMTPURL        string
	MailFrom       string
	TrustedProxies []netip.Prefix
	LogFormat      string
	LogLevel       slog.Level
	ShutdownGrace  time.Duration
	RateLimit      rate.Limit
	RateBurst      int
	// Usernames is the rule for new usernames (IDM_USERNAME_MIXED_SCRIPTS).
	Usernames    idm.UsernameRule
	MetricsAddr  string // "" when metrics are off
	MetricsToken []byte // nil: no bearer token required on the metrics listener
	MaxLinks     int    // active enrolment links per subject
	RequireTOTP  bool   // users without an active second factor may only enrol one
	DefaultSite  string // the site of a subject created without one by a user without exactly one site
	TOTPIssuer   string // the issuer in TOTP keys' otpauth:// URIs
}

// setting is one configuration value: its environment variable, its flag,
// its default and how to apply it.
type setting struct {
	env, flag, def, usage string
	secret                bool // never echoed back in errors
	multi                 bool // repeatable flag; comma-separated variable
	apply                 func(c *config, v []string) error
}

// configError names the setting that is wrong, as the one line idmd prints
// before it refuses to start.
type configError struct {
	s   *setting
	err error
}

func (e *configError) Error() string {
	return fmt.Sprintf("invalid %s (-%s): %v", e.s.env, e.s.flag, e.err)
}

func (e *configError) Unwrap() error { return e.err }

func one(f func(c *config, v string) error) func(c *config, v []string) error {
	return func(c *config, v []string) error { return f(c, v[len(v)-1]) }
}

func settings() []*setting {
	return []*setting{
		{env: "IDM_ADDR", flag: "addr", def: ":9096", usage: "address to listen on",
			apply: one(func(c *config, v string) error { c.Addr = v; return nil })},
		{env: "IDM_DB", flag: "db", def: "idm.db", usage: "bbolt database file (the default store)",
			apply: one(func(c *config, v string) error { c.DB = v; return nonEmpty(v) })},
		{env: "IDM_MONGO_URI", flag: "mongo-uri", usage: "MongoDB URI; when set, idmd uses MongoDB instead of the bbolt file", secret: true,
			apply: one(func(c *config, v string) error {
				if v != "" && !strings.HasPrefix(v, "mongodb://") && !strings.HasPrefix(v, "mongodb+srv://") {
					return errors.New("must start with mongodb:// or mongodb+srv://")
				}
				c.MongoURI = v
				return nil
			})},
		{env: "IDM_MONGO_DB", flag: "mongo-db", def: "idm", usage: "MongoDB database name",
			apply: one(func(c *config, v string) error { c.MongoDB = v; return nonEmpty(v) })},
		{env: "IDM_SECRET", flag: "secret", usage: "HMAC secret for signing tokens (at least 32 bytes); prefer IDM_SECRET_FILE", secret: true,
			apply: one(func(c *config, v string) error {
				if v != "" {
					c.Secret = []byte(v)
				}
				return nil
			})},
		{env: "IDM_SECRET_FILE", flag: "secret-file", usage: "file holding the HMAC secret",
			apply: one(func(c *config, v string) error {
				if v == "" {
					return nil
				}
				if c.Secret != nil {
					return errors.New("set either IDM_SECRET or IDM_SECRET_FILE, not both")
				}
				b, err := os.ReadFile(v)
				if err != nil {
					return fmt.Errorf("cannot read the file: %w", errors.Unwrap(err))
				}
				c.Secret = []byte(strings.TrimRight(string(b), "\r\n"))
				return nil
			})},
		{env: "IDM_KEY_FILE", flag: "key-file", multi: true, usage: "PEM private key file(s) for signing (repeatable or comma-separated; the first signs)",
			apply: func(c *config, v []string) error {
				for _, f := range v {
					for _, p := range strings.Split(f, ",") {
						if p = strings.TrimSpace(p); p != "" {
							c.KeyFiles = append(c.KeyFiles, p)
						}
					}
				}
				return nil
			}},
		{env: "IDM_PUBLIC_URL", flag: "public-url", def: "http://localhost:9096", usage: "public base URL, used in emailed links",
			apply: one(func(c *config, v string) error {
				u, err := url.Parse(v)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
					return errors.New("must be an absolute http(s) URL without credentials, query or fragment")
				}
				c.PublicURL = strings.TrimRight(v, "/")
				return nil
			})},
		{env: "IDM_ISSUER", flag: "issuer", usage: "token issuer (default: the public URL)",
			apply: one(func(c *config, v string) error { c.Issuer = v; return nil })},
		{env: "IDM_AUDIENCE", flag: "audience", def: "idm", usage: "audience of staff tokens",
			apply: one(func(c *config, v string) error { c.Audience = v; return nonEmpty(v) })},
		{env: "IDM_LINK_SECRET", flag: "link-secret", usage: "HS256 secret of enrolment-link tokens, as compiled into the C3-PRO app build (may be weak); prefer IDM_LINK_SECRET_FILE", secret: true,
			apply: one(func(c *config, v string) error {
				if v != "" {
					c.LinkSecret = []byte(v)
				}
				return nil
			})},
		{env: "IDM_LINK_SECRET_FILE", flag: "link-secret-file", usage: "file holding the link secret",
			apply: one(func(c *config, v string) error {
				if v == "" {
					return nil
				}
				if c.LinkSecret != nil {
					return errors.New("set either IDM_LINK_SECRET or IDM_LINK_SECRET_FILE, not both")
				}
				secrets, err := readSecrets(v)
				if err != nil {
					return err
				}
				if len(secrets) != 1 {
					return errors.New("the file must hold one secret")
				}
				c.LinkSecret = secrets[0]
				return nil
			})},
		{env: "IDM_LINK_SECRET_PREVIOUS_FILE", flag: "link-secret-previous-file", usage: "file holding previous link secrets, one per line: links printed before a rotation keep establishing",
			apply: one(func(c *config, v string) error {
				if v == "" {
					return nil
				}
				secrets, err := readSecrets(v)
				if err != nil {
					return err
				}
				c.PrevLinkSecret = secrets
				return nil
			})},
		{env: "IDM_LINK_ISSUER", flag: "link-issuer", usage: "iss of enrolment-link tokens, byte for byte as the app build expects it (default: the issuer)",
			apply: one(func(c *config, v string) error { c.LinkIssuer = v; return nil })},
		{env: "IDM_LINK_AUDIENCE", flag: "link-audience", usage: "aud of enrolment-link tokens, the base URL the app posts /establish to (default: the public URL)",
			apply: one(func(c *config, v string) error { c.LinkAudience = v; return nil })},
		{env: "IDM_AUDIT_KEY_FILE", flag: "audit-key-file", usage: "file holding the audit log's checkpoint signing key (a note signer key); default: a key generated once and kept in the store",
			apply: one(func(c *config, v string) error { c.AuditKeyFile = v; return nil })},
		{env: "IDM_AUDIT_CHECKPOINT", flag: "audit-checkpoint", def: "10s", usage: "how often at most the audit log is checkpointed after appends",
			apply: one(func(c *config, v string) error {
				d, err := time.ParseDuration(v)
				if err != nil || d < 100*time.Millisecond || d > 24*time.Hour {
					return errors.New("must be a duration between 100ms and 24h, such as 10s")
				}
				c.AuditEvery = d
				return nil
			})},
		{env: "IDM_TOKEN_TTL", flag: "token-ttl", def: "12h", usage: "lifetime of staff tokens",
			apply: one(func(c *config, v string) error {
				d, err := time.ParseDuration(v)
				if err != nil || d < time.Minute || d > 30*24*time.Hour {
					return errors.New("must be a duration between 1m and 720h, such as 12h")
				}
				c.TokenTTL = d
				return nil
			})},
		{env: "IDM_CONSOLE_IDLE", flag: "console-idle", def: "30m", usage: "how long a staff console session lasts without a request",
			apply: one(func(c *config, v string) error {
				d, err := time.ParseDuration(v)
				if err != nil || d < time.Minute || d > 24*time.Hour {
					return errors.New("must be a duration between 1m and 24h, such as 30m")
				}
				c.ConsoleIdle = d
				return nil
			})},
		{env: "IDM_SMTP_URL", flag: "smtp-url", usage: "SMTP server for mail, e.g. smtp://user:pass@host:587 (unset: no mail)", secret: true,
			apply: one(func(c *config, v string) error {
				if v == "" {
					return nil
				}
				u, err := url.Parse(v)
				if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
					return errors.New("must be an smtp:// or smtps:// URL with a host")
				}
				c.SMTPURL = v
				return nil
			})},
		{env: "IDM_MAIL_FROM", flag: "mail-from", usage: "From address of mail (required with IDM_SMTP_URL)",
			apply: one(func(c *config, v string) error {
				if v != "" {
					if _, err := mail.ParseAddress(v); err != nil {
						return errors.New("must be an email address, optionally with a name: IDM <idm@example.org>")
					}
				}
				c.MailFrom = v
				return nil
			})},
		{env: "IDM_TRUSTED_PROXIES", flag: "trusted-proxies", usage: "comma-separated addresses or CIDR prefixes of proxies whose X-Forwarded-For is trusted",
			apply: one(func(c *config, v string) error {
				c.TrustedProxies = nil
				for _, p := range strings.Split(v, ",") {
					if p = strings.TrimSpace(p); p == "" {
						continue
					}
					pre, err := netip.ParsePrefix(p)
					if err != nil {
						a, aerr := netip.ParseAddr(p)
						if aerr != nil {
							return fmt.Errorf("%q is neither an address nor a CIDR prefix", p)
						}
						pre = netip.PrefixFrom(a, a.BitLen())
					}
					c.TrustedProxies = append(c.TrustedProxies, pre.Masked())
				}
				return nil
			})},
		{env: "IDM_RATE_LIMIT", flag: "rate-limit", def: "1", usage: "requests per second each client address may make on /auth, /init, /iforgot and /reset in the long run, or off",
			apply: one(func(c *config, v string) error {
				if v == "off" {
					c.RateLimit = rate.Inf
					return nil
				}
				f, err := strconv.ParseFloat(v, 64)
				if err != nil || f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) {
					return errors.New("must be a positive number of requests per second, or off")
				}
				c.RateLimit = rate.Limit(f)
				return nil
			})},
		{env: "IDM_RATE_BURST", flag: "rate-burst", def: "20", usage: "requests each client address may make at once on /auth, /init, /iforgot and /reset",
			apply: one(func(c *config, v string) error {
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 || n > 1_000_000 {
					return errors.New("must be a whole number from 1 to 1000000")
				}
				c.RateBurst = n
				return nil
			})},
		{env: "IDM_LOG_FORMAT", flag: "log-format", def: "text", usage: "log format: text or json",
			apply: one(func(c *config, v string) error {
				if v != "text" && v != "json" {
					return errors.New("must be text or json")
				}
				c.LogFormat = v
				return nil
			})},
		{env: "IDM_LOG_LEVEL", flag: "log-level", def: "info", usage: "log level: debug, info, warn or error",
			apply: one(func(c *config, v string) error {
				return c.LogLevel.UnmarshalText([]byte(v))
			})},
		{env: "IDM_SHUTDOWN_GRACE", flag: "shutdown-grace", def: "30s", usage: "how long a shutdown waits for in-flight requests",
			apply: one(func(c *config, v string) error {
				d, err := time.ParseDuration(v)
				if err != nil || d < 0 {
					return errors.New("must be a duration such as 30s")
				}
				c.ShutdownGrace = d
				return nil
			})},
		{env: "IDM_USERNAME_MIXED_SCRIPTS", flag: "username-mixed-scripts", def: "refuse", usage: "new usernames that mix scripts (a Cyrillic letter among Latin ones): refuse or allow",
			apply: one(func(c *config, v string) error {
				if v != "refuse" && v != "allow" {
					return errors.New("must be refuse or allow")
				}
				c.Usernames.AllowMixedScripts = v == "allow"
				return nil
			})},
		{env: "IDM_METRICS_ADDR", flag: "metrics-addr", def: "127.0.0.1:9097", usage: "address of the separate listener that serves Prometheus /metrics (never the public one), or off",
			apply: one(func(c *config, v string) error {
				if v == "off" {
					c.MetricsAddr = ""
					return nil
				}
				if _, _, err := net.SplitHostPort(v); err != nil {
					return errors.New("must be host:port (e.g. 127.0.0.1:9097), or off")
				}
				c.MetricsAddr = v
				return nil
			})},
		{env: "IDM_METRICS_TOKEN", flag: "metrics-token", usage: "bearer token Prometheus must send to the metrics listener (at least 16 bytes; unset: none); prefer IDM_METRICS_TOKEN_FILE", secret: true,
			apply: one(func(c *config, v string) error { return setMetricsToken(c, v) })},
		{env: "IDM_METRICS_TOKEN_FILE", flag: "metrics-token-file", usage: "file holding the metrics bearer token",
			apply: one(func(c *config, v string) error {
				if v == "" {
					return nil
				}
				if c.MetricsToken != nil {
					return errors.New("set either IDM_METRICS_TOKEN or IDM_METRICS_TOKEN_FILE, not both")
				}
				b, err := os.ReadFile(v)
				if err != nil {
					return fmt.Errorf("cannot read the file: %w", errors.Unwrap(err))
				}
				if err := setMetricsToken(c, strings.TrimRight(string(b), "\r\n")); err != nil {
					return fmt.Errorf("the file's token is not valid: %w", err)
				}
				return nil
			})},
		{env: "IDM_MAX_LINKS", flag: "max-links", def: "20", usage: "enrolment links of one subject that may be active (not revoked, established or expired) at once",
			apply: one(func(c *config, v string) error {
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 || n > 10_000 {
					return errors.New("must be a whole number from 1 to 10000")
				}
				c.MaxLinks = n
				return nil
			})},
		{env: "IDM_REQUIRE_TOTP", flag: "require-totp", def: "false", usage: "require a second factor (TOTP): a user without an active one can only enrol it (true or false)",
			apply: one(func(c *config, v string) error {
				switch v {
				case "true":
					c.RequireTOTP = true
				case "false":
					c.RequireTOTP = false
				default:
					return errors.New("must be true or false")
				}
				return nil
			})},
		{env: "IDM_TOTP_ISSUER", flag: "totp-issuer", def: "idm", usage: "the name of the service in authenticator apps (the issuer of TOTP keys)",
			apply: one(func(c *config, v string) error { c.TOTPIssuer = v; return nonEmpty(v) })},
		{env: "IDM_DEFAULT_SITE", flag: "default-site", def: idm.DefaultSiteCode, usage: "the site of a subject created without one by a user who has not exactly one site (1 to 64 characters of A-Z, a-z, 0-9, _ and -)",
			apply: one(func(c *config, v string) error {
				if !idm.ValidSite(v) {
					return errors.New("must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -")
				}
				c.DefaultSite = v
				return nil
			})},
	}
}

// setMetricsToken sets the metrics bearer token from v ("" leaves it unset).
func setMetricsToken(c *config, v string) error {
	if v == "" {
		return nil
	}
	if len(v) < 16 {
		return errors.New("must be at least 16 bytes long")
	}
	for _, r := range v {
		if r <= ' ' || r == 0x7f {
			return errors.New("must not contain spaces or control characters")
		}
	}
	c.MetricsToken = []byte(v)
	return nil
}

// multiFlag collects a repeatable flag's values.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// configFlags registers the configuration flags on fs and returns a function
// that, after fs was parsed, builds the configuration from the flags, the
// environment (getenv) and the defaults.
func configFlags(fs *flag.FlagSet, getenv func(string) string) func() (*config, error) {
	ss := settings()
	vals := make(map[*setting]*multiFlag, len(ss))
	for _, s := range ss {
		m := new(multiFlag)
		vals[s] = m
		usage := s.usage + " (env " + s.env
		if s.def != "" {
			usage += ", default " + s.def
		}
		fs.Var(m, s.flag, usage+")")
	}
	return func() (*config, error) {
		c := &config{}
		for _, s := range ss {
			v := []string(*vals[s])
			if len(v) == 0 {
				if e, ok := lookup(getenv, s.env); ok {
					v = []string{e}
				} else {
					v = []string{s.def}
				}
			}
			if err := s.apply(c, v); err != nil {
				if s.secret {
					err = errors.New("the value is not valid")
				}
				return nil, &configError{s: s, err: err}
			}
		}
		if c.Issuer == "" {
			c.Issuer = c.PublicURL
		}
		if c.LinkIssuer == "" {
			c.LinkIssuer = c.Issuer
		}
		if c.LinkAudience == "" {
			c.LinkAudience = c.PublicURL
		}
		if len(c.KeyFiles) > 0 && c.LinkSecret == nil {
			return nil, &configError{s: find(ss, "IDM_LINK_SECRET"), err: errors.New("is required with IDM_KEY_FILE: the C3-PRO app verifies link tokens with HS256 and the secret of its build")}
		}
		if c.LinkSecret == nil && len(c.PrevLinkSecret) > 0 {
			return nil, &configError{s: find(ss, "IDM_LINK_SECRET_PREVIOUS_FILE"), err: errors.New("needs IDM_LINK_SECRET (or IDM_LINK_SECRET_FILE)")}
		}
		for _, ls := range append([][]byte{c.LinkSecret}, c.PrevLinkSecret...) {
			if ls != nil && bytes.Equal(ls, c.Secret) {
				// Every app build ships the link secret.
				return nil, &configError{s: find(ss, "IDM_LINK_SECRET"), err: errors.New("must differ from IDM_SECRET: app builds ship the link secret")}
			}
		}
		if c.LinkAudience == c.Audience {
			return nil, &configError{s: find(ss, "IDM_LINK_AUDIENCE"), err: errors.New("must differ from IDM_AUDIENCE")}
		}
		if c.MetricsToken != nil && c.MetricsAddr == "" {
			return nil, &configError{s: find(ss, "IDM_METRICS_TOKEN"), err: errors.New("is set but IDM_METRICS_ADDR is off")}
		}
		if c.SMTPURL != "" && c.MailFrom == "" {
			return nil, &configError{s: find(ss, "IDM_MAIL_FROM"), err: errors.New("is required when IDM_SMTP_URL is set")}
		}
		return c, nil
	}
}

func lookup(getenv func(string) string, key string) (string, bool) {
	v := getenv(key)
	return v, v != ""
}

func find(ss []*setting, env string) *setting {
	for _, s := range ss {
		if s.env == env {
			return s
		}
	}
	panic("no setting " + env) // programming error: a constant name above
}

// readSecrets reads a secrets file: one secret per line, without the line
// ends; empty lines are skipped. Errors never quote the file's content.
func readSecrets(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the file: %w", errors.Unwrap(err))
	}
	var secrets [][]byte
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimRight(line, "\r"); line != "" {
			secrets = append(secrets, []byte(line))
		}
	}
	if len(secrets) == 0 {
		return nil, errors.New("the file holds no secret")
	}
	return secrets, nil
}

func nonEmpty(v string) error {
	if v == "" {
		return errors.New("must not be empty")
	}
	return nil
}

// parseInterspersed parses args with fs, allowing flags before and after
// positional arguments, and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
