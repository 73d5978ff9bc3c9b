// Command idmload measures idmd under load, side by side with references
// measured in the same run, and exits non-zero when a target is missed.
//
// By default it builds idmd (CGO_ENABLED=0 go build ./cmd/idmd, as
// deploy/DEPLOY.md does) into a temporary directory, seeds a bbolt
// database there directly (10 000 subjects with their links and audit
// trails, and staff accounts), starts idmd on it as a child process and drives each workload with 64 connections, alternating
// with its reference so that both see the same machine:
//
//   - GET /subject/{sssid}, GET /subject?offset&perpage=50&ordercol=name,
//     GET /subject/{sssid}/audits and a mixed staff workload, each against a
//     minimal net/http server answering a small JSON body ("idmload
//     floor-server", a child process too): the HTTP floor of the machine;
//   - POST /auth against raw bcrypt comparisons at the same cost on every
//     core: the login floor;
//   - reads beside a login flood, whose p99 latency must stay low.
//
// It prints, per workload, requests per second, p50/p99/p99.9 latency, the
// server's CPU time per request and the ratio to the reference, then
// idmd's idle and peak resident memory, and the targets.
//
// Usage:
//
//	idmload [flags]                  run the benchmark (see -h)
//	idmload -soak 30m                run the mixed load for 30 minutes and report growth
//	idmload -url http://host:9096 -metrics-url http://host:9097 -user staff@example.org   benchmark a running idmd
//	idmload floor-server [-addr A]   the reference server (started by idmload itself)
//
// With -url, the password of -user comes from the environment variable
// IDMLOAD_PASSWORD, subjects are seeded over HTTP (SSSIDs LOAD-00000 and
// up, skipped when they exist) and memory figures come from the server's
// /metrics on its metrics listener, given with -metrics-url (idmd serves
// no /metrics on its public address).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// Exit codes.
const (
	exitOK     = 0
	exitMissed = 1 // a target was missed, or a workload saw errors
	exitUsage  = 2
	exitSetup  = 3 // the benchmark could not run
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// run runs idmload with args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(args) > 0 && args[0] == "floor-server" {
		return floorServer(ctx, args[1:], stdout, stderr)
	}
	cfg, err := parseFlags(args, stderr, getenv)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		if !errors.Is(err, errFlagPrinted) {
			fmt.Fprintln(stderr, "idmload:", err)
		}
		return exitUsage
	}
	b := &bench{cfg: cfg, out: stdout, log: stderr}
	code, err := b.run(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "idmload:", err)
	}
	return code
}

// config is what the flags say.
type config struct {
	IdmdPath      string         // idmd binary; "" builds one
	URL           string         // an existing idmd; "" starts one
	MetricsURL    string         // with URL: its metrics listener (IDM_METRICS_ADDR); "" for none
	User          string         // staff account for -url
	Password      string         // its password (IDMLOAD_PASSWORD)
	Subjects      int            // subjects to seed
	Accounts      int            // staff accounts to seed (child mode)
	Conns         int            // connections per workload
	Duration      time.Duration  // measured time of each side of a read workload
	LoginDuration time.Duration  // measured time of the login workload
	Rounds        int            // alternations of a read workload with its reference
	Warmup        time.Duration  // unmeasured start of every slice
	Settle        time.Duration  // idle time before each reading of the idle RSS
	Soak          time.Duration  // > 0: soak mode
	IdmdEnv       []string       // extra environment of the idmd child
	Run           *regexp.Regexp // selects the workloads by name
	Keep          bool           // keep the temporary directory
}

// errFlagPrinted marks a flag error that the flag package already printed.
var errFlagPrinted = errors.New("invalid flags")

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func parseFlags(args []string, stderr io.Writer, getenv func(string) string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("idmload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.IdmdPath, "idmd", "", "idmd binary to run (default: CGO_ENABLED=0 go build ./cmd/idmd into a temporary directory)")
	fs.StringVar(&c.URL, "url", "", "benchmark the idmd at this URL instead of starting one (password of -user in IDMLOAD_PASSWORD)")
	fs.StringVar(&c.MetricsURL, "metrics-url", "", "with -url: the idmd's metrics listener (IDM_METRICS_ADDR), e.g. http://127.0.0.1:9097, for its memory figures")
	fs.StringVar(&c.User, "user", "", "with -url: the staff account to log in with")
	fs.IntVar(&c.Subjects, "subjects", 10000, "subjects to seed")
	fs.IntVar(&c.Accounts, "accounts", 8, "staff accounts to seed (not with -url)")
	fs.IntVar(&c.Conns, "conns", 64, "concurrent connections of each workload")
	fs.DurationVar(&c.Duration, "duration", 6*time.Second, "measured time of each read workload (its reference gets one slice more)")
	fs.DurationVar(&c.LoginDuration, "login-duration", 8*time.Second, "measured time of the login workload")
	fs.IntVar(&c.Rounds, "rounds", 6, "how often a read workload alternates with its reference")
	fs.DurationVar(&c.Warmup, "warmup", 200*time.Millisecond, "unmeasured start of every measured slice")
	fs.DurationVar(&c.Settle, "settle", 5*time.Second, "idle time before idmd's idle memory is read, before and after the load")
	fs.DurationVar(&c.Soak, "soak", 0, "run the mixed workload this long and report idmd's memory and goroutines at start and end (instead of the table)")
	var env multiFlag
	fs.Var(&env, "idmd-env", "extra KEY=VALUE in the environment of the idmd child (repeatable)")
	fs.BoolVar(&c.Keep, "keep", false, "keep the temporary directory (database, logs)")
	run := fs.String("run", "", "run only the workloads whose names match this regular expression")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, errFlagPrinted
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c.IdmdEnv = env
	var err error
	if c.Run, err = regexp.Compile(*run); err != nil {
		return nil, fmt.Errorf("-run: %w", err)
	}
	switch {
	case c.Subjects < 100:
		return nil, errors.New("-subjects must be at least 100")
	case c.Conns < 2 || c.Conns > 10000:
		return nil, errors.New("-conns must be from 2 to 10000")
	case c.Accounts < 1:
		return nil, errors.New("-accounts must be at least 1")
	case c.Duration < time.Second || c.LoginDuration < time.Second:
		return nil, errors.New("-duration and -login-duration must be at least 1s")
	case c.Rounds < 1:
		return nil, errors.New("-rounds must be at least 1")
	case c.Warmup < 0 || c.Settle < 0 || c.Soak < 0:
		return nil, errors.New("-warmup, -settle and -soak must not be negative")
	}
	for _, kv := range c.IdmdEnv {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return nil, fmt.Errorf("-idmd-env %q is not KEY=VALUE", kv)
		}
	}
	if c.MetricsURL != "" && c.URL == "" {
		return nil, errors.New("-metrics-url goes with -url (a started idmd's metrics listener is found in its log)")
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("-url %q is not an http(s) URL", c.URL)
		}
		c.URL = strings.TrimRight(c.URL, "/")
		if c.MetricsURL != "" {
			u, err := url.Parse(c.MetricsURL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, fmt.Errorf("-metrics-url %q is not an http(s) URL", c.MetricsURL)
			}
			c.MetricsURL = strings.TrimRight(c.MetricsURL, "/")
		}
		if c.IdmdPath != "" || len(c.IdmdEnv) > 0 {
			return nil, errors.New("-url cannot be combined with -idmd or -idmd-env")
		}
		if c.User == "" {
			return nil, errors.New("-url needs -user (and its password in IDMLOAD_PASSWORD)")
		}
		c.Password = getenv("IDMLOAD_PASSWORD")
		if c.Password == "" {
			return nil, errors.New("-url needs the password of -user in IDMLOAD_PASSWORD")
		}
	} else if c.User != "" {
		return nil, errors.New("-user is only for -url")
	}
	return c, nil
}
