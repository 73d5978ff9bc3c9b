package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// call is one request of a workload.
type call struct {
	method string
	path   string // with the query
	body   []byte // nil for none; sent as application/json
	want   int    // the expected status
}

// outcome classifies a finished request.
type outcome uint8

const (
	outOK          outcome = iota
	outStatus              // another status than expected
	outThrottled           // 429
	outTransport           // no answer
	outUnavailable         // 503: shed
)

// sample is one finished request: when it ended (since the slice started)
// and how long it took.
type sample struct {
	end, lat time.Duration
	out      outcome
	write    bool // a request that changes data (not a GET)
}

// worker is one connection of a workload, with its own transport so that it
// holds exactly one keep-alive connection, optionally from its own local
// address.
type worker struct {
	id      int
	client  *http.Client
	rng     *rand.Rand
	token   string // sent as "Authorization: JWT <token>" when not empty
	seq     int    // for names the worker makes up
	samples []sample
	lastErr string
}

// newWorker returns a worker whose connection comes from local (nil: any
// address).
func newWorker(id int, local net.IP, seed uint64) *worker {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if local != nil {
		d.LocalAddr = &net.TCPAddr{IP: local}
	}
	tr := &http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConns:        1,
		MaxIdleConnsPerHost: 1,
		MaxConnsPerHost:     1,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &worker{id: id, client: &http.Client{Transport: tr, Timeout: 2 * time.Minute}, rng: rand.New(rand.NewPCG(seed, uint64(id)))}
}

// do sends c to base and reads the whole answer.
func (w *worker) do(ctx context.Context, base string, c call) outcome {
	var body io.Reader
	if c.body != nil {
		body = bytes.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, base+c.path, body)
	if err != nil {
		w.lastErr = err.Error()
		return outTransport
	}
	if c.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if w.token != "" {
		req.Header.Set("Authorization", "JWT "+w.token)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		w.lastErr = err.Error()
		return outTransport
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		w.lastErr = err.Error()
		return outTransport
	case resp.StatusCode == c.want:
		return outOK
	case resp.StatusCode == http.StatusTooManyRequests:
		return outThrottled
	case resp.StatusCode == http.StatusServiceUnavailable:
		w.lastErr = fmt.Sprintf("%s %s: status 503", c.method, c.path)
		return outUnavailable
	default:
		w.lastErr = fmt.Sprintf("%s %s: status %d, want %d", c.method, c.path, resp.StatusCode, c.want)
		return outStatus
	}
}

// workload is a set of workers sending the calls next makes to a server.
type workload struct {
	name    string
	srv     *server
	workers []*worker
	next    func(w *worker) call
	// abort cancels the requests in flight when a slice ends (for slow
	// requests such as logins, whose queue would take long to drain).
	abort bool
}

// result is what one or more slices of a workload measured.
type result struct {
	ok, bad, throttled, transport, shed int
	elapsed                             time.Duration // measured time
	cpu                                 time.Duration // server CPU time in it; -1 when unknown
	work                                float64       // requests' worth of work done (for rate when set)
	lat                                 []time.Duration
	writeLat                            []time.Duration // of the successful writes among lat
	lastErr                             string
}

// add merges o into r.
func (r *result) add(o result) {
	r.ok += o.ok
	r.bad += o.bad
	r.throttled += o.throttled
	r.transport += o.transport
	r.shed += o.shed
	r.elapsed += o.elapsed
	if r.cpu >= 0 && o.cpu >= 0 {
		r.cpu += o.cpu
	} else {
		r.cpu = -1
	}
	r.work += o.work
	r.lat = append(r.lat, o.lat...)
	r.writeLat = append(r.writeLat, o.writeLat...)
	if o.lastErr != "" {
		r.lastErr = o.lastErr
	}
}

// errors is the number of requests that did not get the expected answer.
func (r *result) errors() int { return r.bad + r.throttled + r.transport + r.shed }

// rate returns the requests per second: successful requests in the
// measured time, or the work done when that was measured.
func (r *result) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	if r.work > 0 {
		return r.work / r.elapsed.Seconds()
	}
	return float64(r.ok) / r.elapsed.Seconds()
}

// cpuPerRequest returns the server's CPU time per successful request, or -1.
func (r *result) cpuPerRequest() time.Duration {
	if r.cpu < 0 || r.ok == 0 {
		return -1
	}
	return r.cpu / time.Duration(r.ok)
}

// sorted sorts the latencies (once) and returns them.
func (r *result) sorted() []time.Duration {
	if !slices.IsSorted(r.lat) {
		slices.Sort(r.lat)
	}
	return r.lat
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest value that at least p percent of the
// values do not exceed. It returns 0 for no values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// The epsilon keeps float rounding (99.9/100*1000 = 999.0000000000001)
	// from moving the rank up by one.
	rank := int(math.Ceil(p/100*float64(n) - 1e-9))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// runSlice runs the workloads at once: a warm-up, then d measured, then
// it stops them (each worker finishes its request, or has it cancelled
// when the workload aborts). Requests that end within the measured time
// count. It returns one result per workload.
func runSlice(ctx context.Context, wls []*workload, warm, d time.Duration) ([]result, error) {
	for _, wl := range wls {
		if err := wl.srv.alive(); err != nil {
			return nil, err
		}
	}
	var stop atomic.Bool
	actx, abort := context.WithCancel(ctx)
	defer abort()
	start := time.Now()
	var wg sync.WaitGroup
	for _, wl := range wls {
		for _, w := range wl.workers {
			w.samples = w.samples[:0]
			w.lastErr = ""
			rctx := ctx
			if wl.abort {
				rctx = actx
			}
			wg.Go(func() {
				for !stop.Load() && rctx.Err() == nil {
					c := wl.next(w)
					t := time.Now()
					out := w.do(rctx, wl.srv.base, c)
					end := time.Now()
					w.samples = append(w.samples, sample{end: end.Sub(start), lat: end.Sub(t), out: out, write: c.method != http.MethodGet})
				}
			})
		}
	}
	sleepCtx(ctx, warm)
	cpu0 := cpuTimes(ctx, wls)
	t0 := time.Since(start)
	sleepCtx(ctx, d)
	cpu1 := cpuTimes(ctx, wls)
	t1 := time.Since(start)
	stop.Store(true)
	for _, wl := range wls {
		if wl.abort {
			abort()
		}
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// A server's CPU time belongs to one workload only when no other
	// workload ran on it.
	onServer := map[*server]int{}
	for _, wl := range wls {
		onServer[wl.srv]++
	}
	out := make([]result, len(wls))
	for i, wl := range wls {
		r := &out[i]
		r.elapsed = t1 - t0
		r.cpu = -1
		if cpu0[i] >= 0 && cpu1[i] >= 0 && onServer[wl.srv] == 1 {
			r.cpu = cpu1[i] - cpu0[i]
		}
		for _, w := range wl.workers {
			for _, s := range w.samples {
				if s.end < t0 || s.end >= t1 {
					continue
				}
				switch s.out {
				case outOK:
					r.ok++
					r.lat = append(r.lat, s.lat)
					if s.write {
						r.writeLat = append(r.writeLat, s.lat)
					}
				case outStatus:
					r.bad++
				case outThrottled:
					r.throttled++
				case outTransport:
					r.transport++
				case outUnavailable:
					r.shed++
				}
			}
			if w.lastErr != "" && r.errors() > 0 {
				r.lastErr = w.lastErr
			}
		}
	}
	return out, nil
}

// cpuTimes returns each workload's server CPU time, -1 where unknown.
func cpuTimes(ctx context.Context, wls []*workload) []time.Duration {
	out := make([]time.Duration, len(wls))
	for i, wl := range wls {
		c, err := wl.srv.cpu(ctx)
		if err != nil {
			c = -1
		}
		out[i] = c
	}
	return out
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// waitIdle waits until srv uses less than 5 % of a core over 100 ms (twice
// in a row), at most max: after an aborted slice the server may still be
// finishing requests that nobody waits for.
func waitIdle(ctx context.Context, srv *server, max time.Duration) {
	deadline := time.Now().Add(max)
	quiet := 0
	prev, err := srv.cpu(ctx)
	if err != nil {
		sleepCtx(ctx, max/4)
		return
	}
	for time.Now().Before(deadline) && ctx.Err() == nil {
		sleepCtx(ctx, 100*time.Millisecond)
		cur, err := srv.cpu(ctx)
		if err != nil {
			return
		}
		if cur-prev < 5*time.Millisecond {
			quiet++
			if quiet == 2 {
				return
			}
		} else {
			quiet = 0
		}
		prev = cur
	}
}

// closeIdle closes the workers' idle connections.
func closeIdle(wls ...*workload) {
	for _, wl := range wls {
		for _, w := range wl.workers {
			w.client.CloseIdleConnections()
		}
	}
}

// errNoLocalAddrs says that the loopback addresses beyond 127.0.0.1 cannot
// be used as source addresses.
var errNoLocalAddrs = errors.New("127.0.0.2 is not usable as a source address")

// localAddrs returns n distinct loopback source addresses 127.0.1.1 to
// 127.0.1.250, 127.0.2.1, ... (Linux routes all of 127.0.0.0/8 to the loopback
// interface), so that n connections count as n clients for idmd's
// per-address limits, or errNoLocalAddrs when the system does not allow it.
func localAddrs(n int) ([]net.IP, error) {
	ln, err := net.Listen("tcp", "127.0.1.1:0")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoLocalAddrs, err)
	}
	ln.Close()
	out := make([]net.IP, n)
	for i := range out {
		out[i] = net.IPv4(127, 0, byte(1+i/250), byte(1+i%250)).To4()
	}
	return out, nil
}
