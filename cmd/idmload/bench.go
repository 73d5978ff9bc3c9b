package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/c3-pro/idm/auth"
)

// Targets of the issue, each a ratio to a reference measured in the same
// run, or an absolute bound.
const (
	targetGetSubject   = 0.50 // of the HTTP floor
	targetGetAtScale   = 0.60 // of the HTTP floor, at scaleSubjects and more
	targetPage         = 0.20 // of the HTTP floor
	targetSearch       = 0.10 // of the HTTP floor
	targetDeepPage     = 0.20 // of the HTTP floor
	targetMixedP99     = 50 * time.Millisecond
	targetIdleAtScale  = 400 * mb // above smallSubjects
	targetStartPeak    = 1.5      // start-up peak over idle RSS, at scaleSubjects and more
	targetReady        = 10 * time.Second
	smallSubjects      = 10_000    // the memory targets of docs/performance.md hold up to this
	scaleSubjects      = 1_000_000 // the targets of the cohort scale hold from this
	targetLogin        = 0.90      // of raw bcrypt on every core
	targetReadsP99     = 50 * time.Millisecond
	targetIdleRSS      = 30 * mb
	targetPeakRSS      = 100 * mb
	loginWarmup        = 500 * time.Millisecond
	idleWait           = 5 * time.Second
	soakSlice          = 10 * time.Second
	soakGoroutineSlack = 5
)

// Workload names.
const (
	nameGet    = "GET /subject/{sssid}"
	namePage   = "GET /subject (page of 50 by name)"
	nameSearch = "GET /subject?search=<surname> (page of 50)"
	nameDeep   = "GET /subject (page of 50 at offset N/2)"
	nameAudits = "GET /subject/{sssid}/audits"
	nameMixed  = "mixed staff workload"
	nameLogin  = "POST /auth"
	nameBeside = "GET /subject/{sssid} beside a login flood"
)

var (
	idmdListening  = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)
	idmdMetrics    = regexp.MustCompile(`"msg":"serving metrics","addr":"([^"]+)"`)
	floorListening = regexp.MustCompile(`(?m)^listening (\S+)$`)
)

// bench is one run of idmload.
type bench struct {
	cfg *config
	out io.Writer
	log io.Writer

	dir       string
	idmd      *server
	floor     *server
	fx        *fixture
	tokens    []string // one per account
	hash      []byte   // bcrypt hash and input of the login floor
	input     []byte
	locals    []net.IP // source addresses for the workers; nil: any
	nextLocal int
	loadStart float64 // the machine's load average before the run
	seed      uint64
	runID     string
	ready     time.Duration // from starting idmd to its listening; 0 with -url
	rows      []row
	checks    []check
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "idmload: "+format+"\n", args...)
}

// run sets up, measures (or soaks), reports and cleans up.
func (b *bench) run(ctx context.Context) (int, error) {
	dir, err := os.MkdirTemp("", "idmload-")
	if err != nil {
		return exitSetup, err
	}
	b.dir = dir
	defer func() {
		if b.cfg.Keep {
			b.logf("kept %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}()
	defer b.stopServers()
	if err := b.setup(ctx); err != nil {
		return exitSetup, err
	}
	if b.cfg.Soak > 0 {
		return b.soak(ctx)
	}
	return b.measure(ctx)
}

func (b *bench) stopServers() {
	for _, s := range []*server{b.idmd, b.floor} {
		if s != nil {
			s.stop()
		}
	}
}

// setup prepares idmd (built, seeded and started, or reached at -url), the
// floor server, the tokens and the login floor's hash, and checks that the
// endpoints answer as they should.
func (b *bench) setup(ctx context.Context) error {
	b.loadStart = loadAverage()
	if cpus := runtime.NumCPU(); b.loadStart > float64(cpus)/2 {
		b.logf("warning: the machine is busy before the run (load average %.2f on %d CPUs): the figures will be noisy", b.loadStart, cpus)
	}
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	for _, c := range seed {
		b.seed = b.seed<<8 | uint64(c)
	}
	b.runID = fmt.Sprintf("%04x", b.seed&0xffff)
	password := rand.Text()
	passwords, err := auth.NewPasswords(auth.PasswordConfig{})
	if err != nil {
		return err
	}
	hash, err := passwords.Hash(ctx, password)
	if err != nil {
		return err
	}
	// The login floor compares this hash, of idmd's cost and scheme, with
	// its password; with -url, logins use the given account instead.
	if b.hash, b.input, err = bcryptInput(hash, password); err != nil {
		return err
	}
	// Every worker connects from an address of its own where it can, so
	// that idmd's per-address limit on POST /auth (a flood guard, 20 at once
	// and 1 per second by default) sees many clients and the login
	// workloads measure hashing, not the flood guard; idmd keeps its
	// default configuration.
	if b.cfg.URL == "" || isLoopback(b.cfg.URL) {
		if b.locals, err = localAddrs(2 * b.cfg.Conns); err != nil {
			b.logf("warning: %v", err)
		}
	}
	if b.cfg.URL != "" {
		err = b.setupRemote(ctx)
	} else {
		err = b.setupChild(ctx, hash, password)
	}
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this program to start the floor server: %w", err)
	}
	b.floor, err = startChild(ctx, "floor server", exe, []string{"floor-server"},
		[]string{"PATH=" + os.Getenv("PATH"), "HOME=" + b.dir}, filepath.Join(b.dir, "floor.log"), floorListening)
	if err != nil {
		return err
	}
	return b.probe(ctx)
}

// setupChild builds or takes idmd, seeds its database directly and starts
// it, then logs in every staff account.
func (b *bench) setupChild(ctx context.Context, hash, password string) error {
	accounts := make([]string, b.cfg.Accounts)
	for i := range accounts {
		accounts[i] = fmt.Sprintf("staff%02d@load.test", i)
	}
	b.fx = &fixture{prefix: "S-", n: b.cfg.Subjects, accounts: accounts, password: password}
	path := b.cfg.IdmdPath
	if path == "" {
		path = filepath.Join(b.dir, "idmd")
		// As deploy/DEPLOY.md builds it: a static binary, without the C
		// library (which a dynamically linked one maps, about 1.8 MB of its
		// resident memory).
		b.logf("building idmd (CGO_ENABLED=0 go build -o %s github.com/c3-pro/idm/cmd/idmd)", path)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", path, "github.com/c3-pro/idm/cmd/idmd")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		cmd.Stdout, cmd.Stderr = b.log, b.log
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building idmd (run idmload inside the module, or give -idmd): %w", err)
		}
	}
	db := filepath.Join(b.dir, "idm.db")
	start := time.Now()
	b.logf("seeding %d subjects and %d staff accounts directly into %s", b.fx.n, len(accounts), db)
	if err := prepareDB(ctx, db, b.fx, hash, time.Now(), b.log); err != nil {
		return err
	}
	b.logf("seeded in %v", time.Since(start).Round(time.Millisecond))
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + b.dir,
		"IDM_DB=" + db, "IDM_ADDR=127.0.0.1:0", "IDM_METRICS_ADDR=127.0.0.1:0", "IDM_LOG_FORMAT=json", "IDM_SHUTDOWN_GRACE=5s",
	}
	if b.locals == nil {
		// Without addresses of their own, all workers are one client:
		// lift idmd's per-address limit instead (unless -idmd-env sets it).
		b.logf("starting idmd with IDM_RATE_LIMIT=off, as all connections come from one address")
		env = append(env, "IDM_RATE_LIMIT=off")
	}
	env = append(env, b.cfg.IdmdEnv...)
	var err error
	started := time.Now()
	b.idmd, err = startChild(ctx, "idmd", path, []string{"serve"}, env, filepath.Join(b.dir, "idmd.log"), idmdListening)
	if err != nil {
		return err
	}
	b.ready = time.Since(started)
	b.logf("idmd ready %v after its start", b.ready.Round(time.Millisecond))
	// idmd logs its metrics listener before "listening" (unless -idmd-env
	// turned it off).
	if log, err := os.ReadFile(b.idmd.logPath); err == nil {
		if m := idmdMetrics.FindSubmatch(log); m != nil {
			b.idmd.metrics = "http://" + string(m[1])
		}
	}
	a := newAPI(b.idmd.base)
	for _, acct := range accounts {
		tok, err := a.login(ctx, acct, password)
		if err != nil {
			return err
		}
		b.tokens = append(b.tokens, tok)
	}
	return nil
}

// setupRemote logs in at -url and seeds the subjects that are missing over
// HTTP.
func (b *bench) setupRemote(ctx context.Context) error {
	b.idmd = remoteServer(b.cfg.URL, b.cfg.MetricsURL)
	b.fx = &fixture{prefix: "LOAD-", n: b.cfg.Subjects, accounts: []string{b.cfg.User}, password: b.cfg.Password}
	a := newAPI(b.cfg.URL)
	tok, err := a.login(ctx, b.cfg.User, b.cfg.Password)
	if err != nil {
		return err
	}
	b.tokens = []string{tok}
	start := time.Now()
	b.logf("seeding %d subjects over HTTP (those that exist are kept)", b.fx.n)
	if err := seedHTTP(ctx, a, tok, b.fx, b.log); err != nil {
		return err
	}
	b.logf("seeded in %v", time.Since(start).Round(time.Millisecond))
	return nil
}

// isLoopback reports whether base names a loopback host.
func isLoopback(base string) bool {
	u, err := url.Parse(base)
	if err != nil {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}

// probe checks that every measured endpoint gives the answer it should, so
// that no workload measures error pages.
func (b *bench) probe(ctx context.Context) error {
	a := newAPI(b.idmd.base)
	authz := "JWT " + b.tokens[0]
	s0 := b.fx.sssid(0)
	var one struct {
		Data struct {
			SSSID string `json:"sssid"`
		} `json:"data"`
	}
	if err := getJSON(ctx, a, "/subject/"+url.PathEscape(s0), authz, &one); err != nil || one.Data.SSSID != s0 {
		return fmt.Errorf("probing GET /subject/%s: %v (sssid %q)", s0, err, one.Data.SSSID)
	}
	var page struct {
		Data  []json.RawMessage `json:"data"`
		Total int               `json:"total"`
	}
	if err := getJSON(ctx, a, "/subject?offset=0&perpage=50&ordercol=name&orderdir=asc", authz, &page); err != nil ||
		len(page.Data) != 50 || page.Total < b.fx.n {
		return fmt.Errorf("probing GET /subject: %v (%d subjects of %d)", err, len(page.Data), page.Total)
	}
	if err := getJSON(ctx, a, "/subject?perpage=50&search="+url.QueryEscape(lastNames[0]), authz, &page); err != nil ||
		len(page.Data) == 0 || page.Total < len(page.Data) {
		return fmt.Errorf("probing GET /subject?search=%s: %v (%d subjects of %d)", lastNames[0], err, len(page.Data), page.Total)
	}
	var audits struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := getJSON(ctx, a, "/subject/"+url.PathEscape(s0)+"/audits", authz, &audits); err != nil || len(audits.Data) < 2 {
		return fmt.Errorf("probing GET /subject/%s/audits: %v (%d records)", s0, err, len(audits.Data))
	}
	if status, _, err := newAPI(b.floor.base).do(ctx, http.MethodGet, "/", "", nil); err != nil || status != http.StatusOK {
		return fmt.Errorf("probing the floor server: status %d, %v", status, err)
	}
	return nil
}

func getJSON(ctx context.Context, a *api, path, authz string, v any) error {
	status, b, err := a.do(ctx, http.MethodGet, path, authz, nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("status %d: %s", status, strings.TrimSpace(string(b)))
	}
	return json.Unmarshal(b, v)
}

// newWorkload returns a workload of n workers on srv; with tokens set they
// send the staff tokens, round robin.
func (b *bench) newWorkload(name string, srv *server, n int, tokens bool, next func(*worker) call, abort bool) *workload {
	wl := &workload{name: name, srv: srv, next: next, abort: abort}
	for i := range n {
		var local net.IP
		if b.locals != nil {
			local = b.locals[b.nextLocal%len(b.locals)]
			b.nextLocal++
		}
		w := newWorker(i, local, b.seed)
		if tokens {
			w.token = b.tokens[i%len(b.tokens)]
		}
		wl.workers = append(wl.workers, w)
	}
	return wl
}

// floorTwin returns the reference workload of an HTTP workload: the same
// requests, from the same kind of workers, to the floor server, which
// answers every one with 200.
func (b *bench) floorTwin(n int, next func(*worker) call) *workload {
	return b.newWorkload("floor: minimal net/http JSON", b.floor, n, true, func(w *worker) call {
		c := next(w)
		c.want = http.StatusOK
		return c
	}, false)
}

// Request generators.

func (b *bench) getSubject(w *worker) call {
	return call{method: http.MethodGet, path: "/subject/" + b.fx.sssid(w.rng.IntN(b.fx.n)), want: http.StatusOK}
}

func (b *bench) page(w *worker) call {
	off := w.rng.IntN(b.fx.n - 50 + 1)
	return call{method: http.MethodGet, path: fmt.Sprintf("/subject?offset=%d&perpage=50&ordercol=name&orderdir=asc", off), want: http.StatusOK}
}

// search asks for the first page of the subjects with a random surname of
// the seeded ones: about one in thirty subjects match.
func (b *bench) search(w *worker) call {
	q := url.QueryEscape(lastNames[w.rng.IntN(len(lastNames))])
	return call{method: http.MethodGet, path: "/subject?search=" + q + "&perpage=50", want: http.StatusOK}
}

// deepPage asks for the page of 50 in the middle of all subjects, in the
// default order (by SSSID).
func (b *bench) deepPage(*worker) call {
	return call{method: http.MethodGet, path: fmt.Sprintf("/subject?offset=%d&perpage=50", b.fx.n/2), want: http.StatusOK}
}

func (b *bench) audits(w *worker) call {
	return call{method: http.MethodGet, path: "/subject/" + b.fx.sssid(w.rng.IntN(b.fx.n)) + "/audits", want: http.StatusOK}
}

// loginCall returns the generator of POST /auth, each worker with its
// account.
func (b *bench) loginCall() func(w *worker) call {
	bodies := make([][]byte, len(b.fx.accounts))
	for i, a := range b.fx.accounts {
		bodies[i], _ = json.Marshal(map[string]string{"username": a, "password": b.fx.password})
	}
	return func(w *worker) call {
		return call{method: http.MethodPost, path: "/auth", body: bodies[w.id%len(bodies)], want: http.StatusOK}
	}
}

var (
	orderCols   = []string{"name", "sssid", "bday", "changed", "date_consented"}
	searchTerms = []string{"mei", "anna", "S-01", "1975", "er", "rossi", "zoe", "k m"}
)

// mixed returns the generator of the mixed staff workload of n workers,
// what the frontend does all day: mostly lists, subjects, links and audit
// trails, some edits, new subjects and new links. Each worker edits its
// own share of the subjects, so that edits never race. Without creates,
// edits take the place of new subjects and links, so that the data idmd
// holds in memory stays the same size (for soaking).
func (b *bench) mixed(n int, creates bool) func(w *worker) call {
	return func(w *worker) call {
		f := b.fx
		i := w.rng.IntN(f.n)
		s := f.sssid(i)
		x := w.rng.IntN(100)
		dir := []string{"ASC", "DESC"}[w.rng.IntN(2)]
		switch {
		case x < 30:
			return call{method: http.MethodGet, want: http.StatusOK, path: fmt.Sprintf("/subject?offset=%d&perpage=50&ordercol=%s&orderdir=%s",
				w.rng.IntN(f.n/50)*50, orderCols[w.rng.IntN(len(orderCols))], dir)}
		case x < 40:
			return call{method: http.MethodGet, want: http.StatusOK, path: fmt.Sprintf("/subject?offset=0&perpage=50&ordercol=name&orderdir=%s&search=%s",
				dir, url.QueryEscape(searchTerms[w.rng.IntN(len(searchTerms))]))}
		case x < 65:
			return call{method: http.MethodGet, path: "/subject/" + s, want: http.StatusOK}
		case x < 73:
			return call{method: http.MethodGet, path: "/subject/" + s + "/links", want: http.StatusOK}
		case x < 81:
			return call{method: http.MethodGet, path: "/subject/" + s + "/audits", want: http.StatusOK}
		case x < 86:
			return call{method: http.MethodGet, path: "/user/me", want: http.StatusOK}
		case x < 94 || !creates:
			j := w.id + n*w.rng.IntN(f.n/n)
			w.seq++
			body, _ := json.Marshal(map[string]string{"sssid": f.sssid(j), "email": fmt.Sprintf("subject%05d+%d@example.org", j, w.seq)})
			return call{method: http.MethodPut, path: "/subject/" + f.sssid(j), body: body, want: http.StatusNoContent}
		case x < 97:
			w.seq++
			doc := f.subjectOf(i)
			doc["sssid"] = fmt.Sprintf("M%s-%03d-%06d", b.runID, w.id, w.seq)
			body, _ := json.Marshal(doc)
			return call{method: http.MethodPost, path: "/subject", body: body, want: http.StatusCreated}
		default:
			return call{method: http.MethodPost, path: "/subject/" + f.sssid(i-i%10) + "/links", want: http.StatusCreated}
		}
	}
}

// alternate measures target and its reference ref alternately, rounds
// times for Duration/rounds each, starting and ending with the reference
// (ref, target, ref, …, target, ref). It returns the totals and, per
// round, the ratio of the target's rate to the mean of the two reference
// slices around it.
func (b *bench) alternate(ctx context.Context, target, ref *workload) (t, r result, ratios []float64, err error) {
	slice := b.cfg.Duration / time.Duration(b.cfg.Rounds)
	prev, err := runSlice(ctx, []*workload{ref}, b.cfg.Warmup, slice)
	if err != nil {
		return result{}, result{}, nil, err
	}
	r.add(prev[0])
	for range b.cfg.Rounds {
		tr, err := runSlice(ctx, []*workload{target}, b.cfg.Warmup, slice)
		if err != nil {
			return result{}, result{}, nil, err
		}
		next, err := runSlice(ctx, []*workload{ref}, b.cfg.Warmup, slice)
		if err != nil {
			return result{}, result{}, nil, err
		}
		t.add(tr[0])
		r.add(next[0])
		ratios = append(ratios, pairRatio(tr[0], prev[0], next[0]))
		prev = next
	}
	closeIdle(target, ref)
	return t, r, ratios, nil
}

// pairRatio is the rate of a target slice over the mean rate of the
// reference slices before and after it.
func pairRatio(t, before, after result) float64 {
	ref := (before.rate() + after.rate()) / 2
	if ref <= 0 {
		return math.NaN()
	}
	return t.rate() / ref
}

// median returns the median of xs (the mean of the middle two for an even
// count), NaN for none. It does not change xs.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// httpPair measures an idmd workload against the floor and adds both rows.
func (b *bench) httpPair(ctx context.Context, name string, next func(*worker) call, target float64) error {
	b.logf("measuring %s against the floor", name)
	c := b.cfg.Conns
	t, r, ratios, err := b.alternate(ctx, b.newWorkload(name, b.idmd, c, true, next, false), b.floorTwin(c, next))
	if err != nil {
		return err
	}
	b.addPair(name, c, t, "floor: minimal net/http JSON", c, r, median(ratios), target)
	return nil
}

// getTarget is the target of GET /subject/{sssid} at the seeded size.
func (b *bench) getTarget() float64 {
	if b.fx.n >= scaleSubjects {
		return targetGetAtScale
	}
	return targetGetSubject
}

// mixedPair measures the mixed staff workload against the floor, with its
// p99 as the target, and adds a row for its writes alone (their rate and
// latency).
func (b *bench) mixedPair(ctx context.Context) error {
	if err := b.httpPair(ctx, nameMixed, b.mixed(b.cfg.Conns, true), 0); err != nil {
		return err
	}
	i := len(b.rows) - 2
	m := &b.rows[i]
	m.target = "p99 < " + formatDur(targetMixedP99)
	m.pass = percentile(m.res.sorted(), 99) < targetMixedP99
	writes := result{ok: len(m.res.writeLat), elapsed: m.res.elapsed, cpu: -1, lat: slices.Clone(m.res.writeLat)}
	b.rows = slices.Insert(b.rows, i+1, row{name: "  of which writes (PUT, POST)", conns: m.conns, res: writes, ratio: math.NaN()})
	return nil
}

// addPair adds a workload's row, with its ratio to the reference, and the
// reference's row.
func (b *bench) addPair(name string, conns int, t result, refName string, refConns int, r result, ratio, target float64) {
	tr := row{name: name, conns: conns, res: t, ratio: ratio}
	if target > 0 {
		tr.target = fmt.Sprintf(">= %.0f%%", 100*target)
		tr.pass = ratio >= target // false for NaN
	}
	b.rows = append(b.rows, tr, row{name: refName, conns: refConns, res: r, ref: true, ratio: math.NaN()})
}

// loginRounds is how often the login workload alternates with raw bcrypt.
const loginRounds = 2

// logins measures POST /auth against raw bcrypt, alternating: reference,
// logins, reference, logins, reference. A login slice ends by cancelling
// the queued logins; the next slice starts once idmd is idle again.
func (b *bench) logins(ctx context.Context) error {
	cpus := runtime.NumCPU()
	name := fmt.Sprintf("%s (bcrypt cost %d)", nameLogin, auth.DefaultCost)
	b.logf("measuring %s against raw bcrypt on %d cores", name, cpus)
	refSlice := b.cfg.LoginDuration / (2 * loginRounds)
	wl := b.newWorkload(name, b.idmd, b.cfg.Conns, false, b.loginCall(), true)
	var (
		t, ref result
		ratios []float64
	)
	prev, err := bcryptSlice(ctx, b.hash, b.input, cpus, b.cfg.Warmup, refSlice)
	if err != nil {
		return err
	}
	ref.add(prev)
	for range loginRounds {
		res, err := runSlice(ctx, []*workload{wl}, loginWarmup, b.cfg.LoginDuration/loginRounds)
		if err != nil {
			return err
		}
		closeIdle(wl)
		waitIdle(ctx, b.idmd, idleWait)
		next, err := bcryptSlice(ctx, b.hash, b.input, cpus, b.cfg.Warmup, refSlice)
		if err != nil {
			return err
		}
		t.add(res[0])
		ref.add(next)
		ratios = append(ratios, pairRatio(res[0], prev, next))
		prev = next
	}
	b.addPair(name, b.cfg.Conns, t, fmt.Sprintf("raw bcrypt, %d goroutines", cpus), cpus, ref, median(ratios), targetLogin)
	return nil
}

// besideFlood measures reads while half the connections flood POST /auth.
func (b *bench) besideFlood(ctx context.Context) error {
	half := max(b.cfg.Conns/2, 1)
	name := nameBeside
	b.logf("measuring %s", name)
	reads := b.newWorkload(name, b.idmd, half, true, b.getSubject, false)
	flood := b.newWorkload("POST /auth flood beside the reads", b.idmd, half, false, b.loginCall(), true)
	res, err := runSlice(ctx, []*workload{reads, flood}, loginWarmup, b.cfg.LoginDuration)
	if err != nil {
		return err
	}
	closeIdle(reads, flood)
	waitIdle(ctx, b.idmd, idleWait)
	p99 := percentile(res[0].sorted(), 99)
	b.rows = append(b.rows,
		row{name: reads.name, conns: half, res: res[0], ratio: math.NaN(), target: "p99 < " + formatDur(targetReadsP99), pass: p99 < targetReadsP99},
		row{name: flood.name, conns: half, res: res[1], ratio: math.NaN()})
	return nil
}

// peakSampler samples the resident memory of a server that reports no
// peak of its own (one reached with -url) while the load runs.
type peakSampler struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	peak uint64
}

func samplePeak(ctx context.Context, srv *server) *peakSampler {
	p := &peakSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			if m, err := srv.memory(ctx); err == nil {
				p.mu.Lock()
				p.peak = max(p.peak, m.RSS, m.Peak)
				p.mu.Unlock()
			}
			select {
			case <-t.C:
			case <-p.stop:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return p
}

func (p *peakSampler) end() uint64 {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peak
}

// measure runs every workload, prints the table and the targets, and
// returns exitMissed when a target was missed.
func (b *bench) measure(ctx context.Context) (int, error) {
	// Setting up sent requests of every kind; idle memory is read once idmd
	// has been idle for as long as after the load.
	b.logf("idling %v before reading idmd's idle memory", b.cfg.Settle)
	sleepCtx(ctx, b.cfg.Settle)
	idleStart, err := b.idmd.memory(ctx)
	if err != nil {
		return exitSetup, fmt.Errorf("reading idmd's memory: %w", err)
	}
	sampler := samplePeak(ctx, b.idmd)
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{nameGet, func(ctx context.Context) error { return b.httpPair(ctx, nameGet, b.getSubject, b.getTarget()) }},
		{namePage, func(ctx context.Context) error { return b.httpPair(ctx, namePage, b.page, targetPage) }},
		{nameSearch, func(ctx context.Context) error { return b.httpPair(ctx, nameSearch, b.search, targetSearch) }},
		{nameDeep, func(ctx context.Context) error { return b.httpPair(ctx, nameDeep, b.deepPage, targetDeepPage) }},
		{nameAudits, func(ctx context.Context) error { return b.httpPair(ctx, nameAudits, b.audits, 0) }},
		{nameMixed, b.mixedPair},
		{nameLogin, b.logins},
		{nameBeside, b.besideFlood},
	}
	for _, step := range steps {
		if !b.cfg.Run.MatchString(step.name) {
			continue
		}
		if err := step.run(ctx); err != nil {
			sampler.end()
			return exitSetup, err
		}
	}
	peak := sampler.end()
	b.logf("idling %v before reading idmd's idle memory", b.cfg.Settle)
	sleepCtx(ctx, b.cfg.Settle)
	idleEnd, err := b.idmd.memory(ctx)
	if err != nil {
		return exitSetup, fmt.Errorf("reading idmd's memory: %w", err)
	}
	peak = max(peak, idleEnd.Peak)
	if err := b.idmd.alive(); err != nil {
		return exitSetup, err
	}
	b.report(idleStart, idleEnd, peak)
	if _, all := formatChecks(b.checks); !all {
		return exitMissed, nil
	}
	return exitOK, nil
}

// report prints the table, the memory figures and the targets.
func (b *bench) report(idleStart, idleEnd memory, peak uint64) {
	mode := "idmd child on bbolt (seeded directly)"
	if b.cfg.URL != "" {
		mode = "idmd at " + b.cfg.URL
	}
	fmt.Fprintf(b.out, "\nidmload: %s, %d subjects, %d connections, %d CPUs, %s; read workloads %v each alternating with the floor in %d rounds, logins %v\n",
		mode, b.fx.n, b.cfg.Conns, runtime.NumCPU(), runtime.Version(), b.cfg.Duration, b.cfg.Rounds, b.cfg.LoginDuration)
	fmt.Fprintf(b.out, "machine load average (1 min): %.2f before the run, %.2f after it (this run's own load included)\n\n", b.loadStart, loadAverage())
	cells := make([][]string, 0, len(b.rows))
	for _, r := range b.rows {
		cells = append(cells, r.cells())
	}
	fmt.Fprint(b.out, formatTable(tableHeader, cells))
	fmt.Fprintf(b.out, "\nidmd resident memory, each after %v idle: before the load %s; after it %s; peak %s\n\n",
		b.cfg.Settle, formatMem(idleStart), formatMem(idleEnd), formatMB(peak))

	for _, r := range b.rows {
		if r.target != "" {
			got := fmt.Sprintf("%.1f%% of the reference", 100*r.ratio)
			if strings.HasPrefix(r.target, "p99") {
				got = "p99 " + formatDur(percentile(r.res.sorted(), 99))
			}
			b.checks = append(b.checks, check{what: r.name, got: got, target: r.target, pass: r.pass})
		}
	}
	idle := max(idleStart.RSS, idleEnd.RSS)
	idleTarget := uint64(targetIdleRSS)
	if b.fx.n > smallSubjects {
		idleTarget = targetIdleAtScale
	}
	b.checks = append(b.checks,
		check{what: "idle RSS (before and after the load)", got: formatMB(idle), target: "<= " + formatMB(idleTarget), pass: idle <= idleTarget})
	if b.fx.n <= smallSubjects {
		b.checks = append(b.checks,
			check{what: "peak RSS", got: formatMB(peak), target: "<= " + formatMB(targetPeakRSS), pass: peak > 0 && peak <= targetPeakRSS})
	}
	if idleStart.Peak > 0 && idleStart.RSS > 0 {
		// The peak before the load is that of the start: reading the
		// file, then the probes and logins of the setup.
		ratio := float64(idleStart.Peak) / float64(idleStart.RSS)
		c := check{what: "start-up peak RSS over idle RSS", got: fmt.Sprintf("%.2f (%s)", ratio, formatMB(idleStart.Peak)), target: "(reported)", pass: true}
		if b.fx.n >= scaleSubjects {
			c.target, c.pass = fmt.Sprintf("<= %.1f", targetStartPeak), ratio <= targetStartPeak
		}
		b.checks = append(b.checks, c)
	}
	if b.ready > 0 {
		b.checks = append(b.checks, check{what: "idmd ready after its start", got: formatDur(b.ready), target: "<= " + formatDur(targetReady), pass: b.ready <= targetReady})
	}
	b.checks = append(b.checks, b.errorChecks()...)
	text, _ := formatChecks(b.checks)
	fmt.Fprint(b.out, text)
}

// errorChecks fails every workload that saw requests without the expected
// answer: a benchmark of error pages, throttled or shed logins proves
// nothing.
func (b *bench) errorChecks() []check {
	var out []check
	failed := 0
	for _, r := range b.rows {
		if n := r.res.errors(); n > 0 {
			failed++
			why := r.res.lastErr
			if r.res.throttled > 0 {
				why = fmt.Sprintf("%d answered 429: idmd's per-address limit on POST /auth (run it with IDM_RATE_LIMIT=off)", r.res.throttled)
			}
			if r.res.shed > 0 {
				why = fmt.Sprintf("%d answered 503 (shed)", r.res.shed)
			}
			out = append(out, check{what: "no failed requests: " + strings.TrimSpace(r.name), got: fmt.Sprintf("%d failed: %s", n, why), target: "0"})
		}
	}
	if failed == 0 {
		out = append(out, check{what: "no failed requests (any workload)", got: "0", target: "0", pass: true})
	}
	return out
}
