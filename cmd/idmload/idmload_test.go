package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/boltstore"
	"github.com/c3-pro/idm/idm"
)

func durations(ms ...int) []time.Duration {
	out := make([]time.Duration, len(ms))
	for i, m := range ms {
		out[i] = time.Duration(m) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	thousand := make([]time.Duration, 1000)
	for i := range thousand {
		thousand[i] = time.Duration(i+1) * time.Microsecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"none", nil, 50, 0},
		{"one value", durations(7), 99.9, 7 * time.Millisecond},
		{"two values, p50 is the first", durations(1, 2), 50, time.Millisecond},
		{"two values, p51 is the second", durations(1, 2), 51, 2 * time.Millisecond},
		{"p50 of 1..100", hundred, 50, 50 * time.Millisecond},
		{"p99 of 1..100", hundred, 99, 99 * time.Millisecond},
		{"p99.9 of 1..100 is the maximum", hundred, 99.9, 100 * time.Millisecond},
		{"p100 is the maximum", hundred, 100, 100 * time.Millisecond},
		{"tiny p is the minimum", hundred, 0.001, time.Millisecond},
		{"p99.9 of 1000 values", thousand, 99.9, 999 * time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, percentile(tt.sorted, tt.p))
		})
	}
}

func TestResultRate(t *testing.T) {
	tests := []struct {
		name    string
		r       result
		rate    float64
		cpuPer  time.Duration
		errorsN int
	}{
		{"counted", result{ok: 500, elapsed: 2 * time.Second, cpu: time.Second}, 250, 2 * time.Millisecond, 0},
		{"work measured", result{ok: 3, work: 4.5, elapsed: 3 * time.Second, cpu: -1}, 1.5, -1, 0},
		{"nothing measured", result{}, 0, -1, 0},
		{"errors of every kind", result{ok: 1, bad: 1, throttled: 2, transport: 3, shed: 4, elapsed: time.Second}, 1, 0, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.InDelta(t, tt.rate, tt.r.rate(), 1e-9)
			assert.Equal(t, tt.cpuPer, tt.r.cpuPerRequest())
			assert.Equal(t, tt.errorsN, tt.r.errors())
		})
	}
	t.Run("add merges and forgets an unknown CPU time", func(t *testing.T) {
		r := result{}
		r.add(result{ok: 2, elapsed: time.Second, cpu: time.Millisecond, lat: durations(3, 1)})
		r.add(result{ok: 1, elapsed: time.Second, cpu: 2 * time.Millisecond, lat: durations(2)})
		assert.Equal(t, 3*time.Millisecond, r.cpu)
		assert.Equal(t, durations(1, 2, 3), r.sorted())
		r.add(result{cpu: -1})
		assert.Equal(t, time.Duration(-1), r.cpu)
		assert.InDelta(t, 1.5, r.rate(), 1e-9)
	})
}

func TestOverlap(t *testing.T) {
	s := time.Second
	tests := []struct {
		name       string
		span       span
		t0, t1     time.Duration
		wantFrac   float64
		wantInside bool
	}{
		{"inside", span{2 * s, 3 * s}, s, 5 * s, 1, true},
		{"before", span{0, s}, 2 * s, 3 * s, 0, false},
		{"after", span{4 * s, 5 * s}, 2 * s, 3 * s, 0, false},
		{"straddles the start", span{0, 4 * s}, s, 10 * s, 0.75, false},
		{"straddles the end", span{8 * s, 12 * s}, s, 10 * s, 0.5, false},
		{"covers the window", span{0, 10 * s}, 4 * s, 5 * s, 0.1, false},
		{"empty span", span{s, s}, 0, 2 * s, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.InDelta(t, tt.wantFrac, overlap(tt.span, tt.t0, tt.t1), 1e-9)
		})
	}
}

func TestFormatTable(t *testing.T) {
	got := formatTable([]string{"NAME", "N", "LAT", ""}, [][]string{
		{"first", "1", "12µs", "ok"},
		{"  vs a longer name", "1234", "3.50ms", ""},
		{"short"},
	})
	want := "" +
		"NAME                   N     LAT\n" +
		"first                  1    12µs  ok\n" +
		"  vs a longer name  1234  3.50ms\n" +
		"short\n"
	assert.Equal(t, want, got)
}

func TestRowCells(t *testing.T) {
	r := row{name: "GET /x", conns: 64, res: result{ok: 3, elapsed: time.Second, cpu: 3 * time.Millisecond,
		lat: durations(30, 10, 20)}, ratio: 0.5123, target: ">= 50%", pass: true}
	assert.Equal(t, []string{"GET /x", "64", "3.00", "20.0ms", "30.0ms", "30.0ms", "0", "1.00ms", "51.2%", ">= 50%", "ok"}, r.cells())
	r.pass = false
	assert.Equal(t, "MISSED", r.cells()[10])
	ref := row{name: "floor", conns: 64, ref: true, ratio: math.NaN(), res: result{cpu: -1}}
	c := ref.cells()
	assert.Equal(t, "  vs floor", c[0])
	assert.Equal(t, []string{"-", "", "", ""}, c[7:])
}

func TestFormatValues(t *testing.T) {
	durs := []struct {
		d    time.Duration
		want string
	}{
		{-1, "-"}, {0, "0µs"}, {999 * time.Microsecond, "999µs"}, {1500 * time.Microsecond, "1.50ms"},
		{25 * time.Millisecond, "25.0ms"}, {250 * time.Millisecond, "250ms"}, {2500 * time.Millisecond, "2.50s"},
	}
	for _, d := range durs {
		assert.Equal(t, d.want, formatDur(d.d), "%v", d.d)
	}
	assert.Equal(t, "12345", formatRate(12345.4))
	assert.Equal(t, "7.81", formatRate(7.8149))
	assert.Equal(t, "30.0 MB", formatMB(30*mb))
	assert.Equal(t, "70.6 MB (anonymous 13.6, mapped files 57.0)", formatMem(memory{RSS: 70_600_000, Anon: 13_600_000, File: 57_000_000}))
	assert.Equal(t, "1.0 MB", formatMem(memory{RSS: mb}))
}

func TestFormatChecks(t *testing.T) {
	text, all := formatChecks([]check{{what: "a", got: "1", target: "<= 2", pass: true}})
	assert.True(t, all)
	assert.Contains(t, text, "ok")
	text, all = formatChecks([]check{{what: "a", pass: true}, {what: "b", got: "3", target: "<= 2"}})
	assert.False(t, all)
	assert.Contains(t, text, "MISSED")
}

const procStatus = `Name:	idmd
Umask:	0022
State:	S (sleeping)
Tgid:	18949
VmPeak:	 1795588 kB
VmSize:	 1795588 kB
VmHWM:	   65540 kB
VmRSS:	   65536 kB
RssAnon:	   13108 kB
RssFile:	   52428 kB
RssShmem:	       0 kB
Threads:	9
`

func TestParseProcStatus(t *testing.T) {
	m, err := parseProcStatus(strings.NewReader(procStatus))
	require.NoError(t, err)
	assert.Equal(t, memory{RSS: 65536 << 10, Peak: 65540 << 10, Anon: 13108 << 10, File: 52428 << 10}, m)

	bad := []struct{ name, text string }{
		{"zombie (no Vm lines)", "Name:\tidmd\nState:\tZ (zombie)\n"},
		{"no unit", strings.Replace(procStatus, "65536 kB", "65536", 1)},
		{"not a number", strings.Replace(procStatus, "65536 kB", "lots kB", 1)},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseProcStatus(strings.NewReader(tt.text))
			assert.Error(t, err)
		})
	}
}

func TestParseProcStat(t *testing.T) {
	// Fields 14 and 15 (utime, stime) are 250 and 150 ticks.
	line := "18949 (idmd (a) b) S 1 18949 18949 0 -1 4194560 1234 0 0 0 250 150 0 0 20 0 9 0 12345 1838682112 16384 18446744073709551615\n"
	got, err := parseProcStat([]byte(line))
	require.NoError(t, err)
	assert.Equal(t, 4*time.Second, got)

	for _, bad := range []string{"", "18949 idmd S 1", "18949 (idmd) S 1 2 3", "18949 (idmd) S 1 18949 18949 0 -1 4194560 1234 0 0 0 x 150 0"} {
		_, err := parseProcStat([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
}

func TestParseMetric(t *testing.T) {
	const text = `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines_extra 99
go_goroutines 42
go_gc_duration_seconds{quantile="0.5"} 1.5e-05
process_resident_memory_bytes 2.4567808e+07
process_cpu_seconds_total 12.5
`
	tests := []struct {
		name   string
		metric string
		want   float64
		found  bool
	}{
		{"integer gauge, not its longer namesake", "go_goroutines", 42, true},
		{"scientific notation", "process_resident_memory_bytes", 24567808, true},
		{"counter", "process_cpu_seconds_total", 12.5, true},
		{"only labelled samples", "go_gc_duration_seconds", 0, false},
		{"absent", "nothing_here", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok, err := parseMetric(strings.NewReader(text), tt.metric)
			require.NoError(t, err)
			assert.Equal(t, tt.found, ok)
			assert.InDelta(t, tt.want, v, 1e-6)
		})
	}
	_, _, err := parseMetric(strings.NewReader("go_goroutines many\n"), "go_goroutines")
	assert.Error(t, err)
}

func TestSoakVerdict(t *testing.T) {
	p := func(rssMB float64, g int) soakPoint {
		return soakPoint{mem: memory{RSS: uint64(rssMB * mb)}, goroutines: g}
	}
	tests := []struct {
		name                              string
		before, warm, end, after          soakPoint
		wantIdleGor, wantLoadGor, wantRSS bool
	}{
		{"steady", p(30, 12), p(60, 140), p(62, 141), p(40, 13), true, true, true},
		{"goroutines leak while idle", p(30, 12), p(60, 140), p(62, 141), p(40, 30), false, true, true},
		{"goroutines pile up under load", p(30, 12), p(60, 140), p(62, 400), p(40, 13), true, false, true},
		{"memory grows under load", p(30, 12), p(60, 140), p(95, 141), p(40, 13), true, true, false},
		{"small growth is noise", p(30, 12), p(20, 140), p(29, 141), p(40, 13), true, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := soakVerdict(tt.before, tt.warm, tt.end, tt.after)
			require.Len(t, cs, 3)
			assert.Equal(t, []bool{tt.wantIdleGor, tt.wantLoadGor, tt.wantRSS}, []bool{cs[0].pass, cs[1].pass, cs[2].pass})
		})
	}
	t.Run("mapped files may grow with the database, the heap may not", func(t *testing.T) {
		warm := soakPoint{mem: memory{RSS: 60 * mb, Anon: 20 * mb, File: 40 * mb}}
		end := soakPoint{mem: memory{RSS: 95 * mb, Anon: 22 * mb, File: 73 * mb}}
		assert.True(t, soakVerdict(warm, warm, end, warm)[2].pass)
		end.mem.Anon = 40 * mb
		assert.False(t, soakVerdict(warm, warm, end, warm)[2].pass)
	})
}

func TestBcryptInputMatchesAuth(t *testing.T) {
	p, err := auth.NewPasswords(auth.PasswordConfig{Cost: bcrypt.MinCost})
	require.NoError(t, err)
	hash, err := p.Hash(t.Context(), "Ünïcode password of some length")
	require.NoError(t, err)
	h, in, err := bcryptInput(hash, "Ünïcode password of some length")
	require.NoError(t, err)
	assert.NoError(t, bcrypt.CompareHashAndPassword(h, in))
	h, in, err = bcryptInput(hash, "another password")
	require.NoError(t, err)
	assert.ErrorIs(t, bcrypt.CompareHashAndPassword(h, in), bcrypt.ErrMismatchedHashAndPassword)
	_, _, err = bcryptInput("$2b$12$legacy", "pw")
	assert.Error(t, err)
}

func TestParseFlags(t *testing.T) {
	env := func(pw string) func(string) string {
		return func(k string) string {
			if k == "IDMLOAD_PASSWORD" {
				return pw
			}
			return ""
		}
	}
	c, err := parseFlags(nil, io.Discard, env(""))
	require.NoError(t, err)
	assert.Equal(t, 10000, c.Subjects)
	assert.Equal(t, 64, c.Conns)
	assert.True(t, c.Run.MatchString(nameGet))

	c, err = parseFlags([]string{"-url", "http://127.0.0.1:9096/", "-user", "a@b.org"}, io.Discard, env("pw"))
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:9096", c.URL)
	assert.Equal(t, "pw", c.Password)

	bad := []struct {
		name string
		args []string
		pw   string
	}{
		{"unknown flag", []string{"-nope"}, ""},
		{"positional argument", []string{"extra"}, ""},
		{"too few subjects", []string{"-subjects", "10"}, ""},
		{"one connection", []string{"-conns", "1"}, ""},
		{"short duration", []string{"-duration", "100ms"}, ""},
		{"no rounds", []string{"-rounds", "0"}, ""},
		{"bad env", []string{"-idmd-env", "NOEQUALS"}, ""},
		{"bad regexp", []string{"-run", "("}, ""},
		{"url without user", []string{"-url", "http://127.0.0.1:1"}, "pw"},
		{"url without password", []string{"-url", "http://127.0.0.1:1", "-user", "a@b.org"}, ""},
		{"url not http", []string{"-url", "ftp://x", "-user", "a@b.org"}, "pw"},
		{"url with idmd", []string{"-url", "http://127.0.0.1:1", "-user", "a@b.org", "-idmd", "/bin/true"}, "pw"},
		{"user without url", []string{"-user", "a@b.org"}, "pw"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(tt.args, io.Discard, env(tt.pw))
			assert.Error(t, err)
		})
	}
}

func TestRunRefusesBadFlags(t *testing.T) {
	var stderr bytes.Buffer
	code := run(t.Context(), []string{"-conns", "1"}, io.Discard, &stderr, func(string) string { return "" })
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr.String(), "-conns")
}

// TestRunSlice drives the floor handler over real HTTP for a short slice and
// checks what the slice counts.
func TestRunSlice(t *testing.T) {
	srv := httptest.NewServer(floorHandler())
	t.Cleanup(srv.Close)
	s := &server{name: "floor", base: srv.URL}
	next := func(w *worker) call { return call{method: http.MethodGet, path: "/x", want: http.StatusOK} }
	wl := &workload{name: "floor", srv: s, next: next}
	for i := range 4 {
		wl.workers = append(wl.workers, newWorker(i, nil, 1))
	}
	res, err := runSlice(t.Context(), []*workload{wl}, 50*time.Millisecond, 300*time.Millisecond)
	require.NoError(t, err)
	require.Len(t, res, 1)
	r := res[0]
	assert.Positive(t, r.ok)
	assert.Zero(t, r.errors(), r.lastErr)
	assert.Len(t, r.lat, r.ok)
	assert.Equal(t, time.Duration(-1), r.cpu, "an httptest server has no CPU figures")
	assert.InDelta(t, 300*time.Millisecond, r.elapsed, float64(100*time.Millisecond))

	assert.Empty(t, r.writeLat, "GETs are no writes")

	// Writes (any other method) count in writeLat as well as in lat.
	wl.next = func(w *worker) call {
		if w.rng.IntN(2) == 0 {
			return call{method: http.MethodPut, path: "/x", body: []byte(`{}`), want: http.StatusOK}
		}
		return call{method: http.MethodGet, path: "/x", want: http.StatusOK}
	}
	res, err = runSlice(t.Context(), []*workload{wl}, 0, 200*time.Millisecond)
	require.NoError(t, err)
	assert.Positive(t, len(res[0].writeLat))
	assert.Less(t, len(res[0].writeLat), res[0].ok)

	wl.next = func(w *worker) call { return call{method: http.MethodGet, path: "/x", want: http.StatusCreated} }
	res, err = runSlice(t.Context(), []*workload{wl}, 0, 100*time.Millisecond)
	require.NoError(t, err)
	assert.Zero(t, res[0].ok)
	assert.Positive(t, res[0].bad)
	assert.Contains(t, res[0].lastErr, "status 200, want 201")
	closeIdle(wl)
}

func TestFloorHandler(t *testing.T) {
	rec := httptest.NewRecorder()
	floorHandler().ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/subject/S-1", nil))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	assert.True(t, json.Valid(rec.Body.Bytes()))
}

// TestSeedBolt seeds a small fixture and reads it back through boltstore.
func TestSeedBolt(t *testing.T) {
	ctx := t.Context()
	p, err := auth.NewPasswords(auth.PasswordConfig{Cost: bcrypt.MinCost})
	require.NoError(t, err)
	hash, err := p.Hash(ctx, "seed password")
	require.NoError(t, err)
	f := &fixture{prefix: "S-", n: 30, accounts: []string{"staff00@load.test", "staff01@load.test"}, password: "seed password"}
	path := filepath.Join(t.TempDir(), "idm.db")
	require.NoError(t, prepareDB(ctx, path, f, hash, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), io.Discard))

	st, err := boltstore.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	subjects, total, err := st.ListSubjects(ctx, idm.SubjectFilter{})
	require.NoError(t, err)
	assert.Equal(t, f.n, total)
	sssids := make([]string, len(subjects))
	wantLinks, wantEstablished := 0, 0
	for i, s := range subjects {
		assert.Equal(t, f.sssid(i), s.SSSID)
		assert.NotEmpty(t, s.Name)
		sssids[i] = s.SSSID
		if consented(i) {
			assert.NotEmpty(t, s.DateConsented)
			wantLinks++
			if i%3 == 0 {
				wantEstablished++
			}
		}
	}
	links, err := st.LinksForSubjects(ctx, sssids...)
	require.NoError(t, err)
	assert.Len(t, links, wantLinks)
	established := 0
	for _, l := range links {
		if l.LinkedTo != "" {
			established++
		}
	}
	assert.Equal(t, wantEstablished, established)
	audits, err := st.AuditsFor(ctx, subjects[0].ID, links[0].ID)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(audits), 4, "create, email, consented, link create, link to")
	u, err := st.FindUserByUsername(ctx, "staff01@load.test")
	require.NoError(t, err)
	ok, _, err := p.Verify(ctx, u.PasswordHash, f.password)
	require.NoError(t, err)
	assert.True(t, ok)
	done, err := st.Bootstrapped(ctx)
	require.NoError(t, err)
	assert.True(t, done)
}

// TestLocalAddrs checks the source addresses idmload spreads workers over.
func TestLocalAddrs(t *testing.T) {
	addrs, err := localAddrs(600)
	if err != nil {
		t.Skipf("this system has no usable 127.0.1.1: %v", err)
	}
	require.Len(t, addrs, 600)
	seen := map[string]bool{}
	for _, a := range addrs {
		require.True(t, a.IsLoopback(), a.String())
		require.False(t, seen[a.String()], "%s twice", a)
		seen[a.String()] = true
	}
	assert.Equal(t, "127.0.1.1", addrs[0].String())
	assert.Equal(t, "127.0.2.1", addrs[250].String())
	// And a worker can use one to reach a server.
	srv := httptest.NewServer(floorHandler())
	t.Cleanup(srv.Close)
	w := newWorker(0, addrs[3], 1)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	assert.Equal(t, outOK, w.do(ctx, srv.URL, call{method: http.MethodGet, path: "/", want: http.StatusOK}), w.lastErr)
}

func TestParseLoadavg(t *testing.T) {
	v, err := parseLoadavg("0.52 0.58 0.59 1/467 30120\n")
	require.NoError(t, err)
	assert.InDelta(t, 0.52, v, 1e-9)
	_, err = parseLoadavg("")
	assert.Error(t, err)
	_, err = parseLoadavg("x 1 2")
	assert.Error(t, err)
}

func TestMedianAndPairRatio(t *testing.T) {
	assert.True(t, math.IsNaN(median(nil)))
	assert.InDelta(t, 2, median([]float64{3, 1, 2}), 1e-9)
	xs := []float64{0.9, 0.1, 0.5, 0.6}
	assert.InDelta(t, 0.55, median(xs), 1e-9)
	assert.Equal(t, []float64{0.9, 0.1, 0.5, 0.6}, xs, "median sorts a copy")

	sec := time.Second
	target := result{ok: 500, elapsed: sec}
	assert.InDelta(t, 0.5, pairRatio(target, result{ok: 800, elapsed: sec}, result{ok: 1200, elapsed: sec}), 1e-9)
	assert.True(t, math.IsNaN(pairRatio(target, result{}, result{})))
}
