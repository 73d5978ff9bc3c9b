package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat: 100
// on every Linux architecture Go supports.
const clockTicks = 100

// server is a server under measurement: a child process this program
// started, or (pid 0) a running idmd reached over the network.
type server struct {
	name    string
	base    string // http://host:port
	metrics string // base URL of the listener that serves Prometheus /metrics (idmd's IDM_METRICS_ADDR); "" for none
	cmd     *exec.Cmd
	pid     int
	logPath string
	exited  chan struct{}
	waitErr error
	client  *http.Client // for /metrics
}

// startChild starts path with args and env, its stdout and stderr going to
// logPath, and waits until the log shows the address it listens on, which
// addrRE's first group captures.
func startChild(ctx context.Context, name, path string, args, env []string, logPath string, addrRE *regexp.Regexp) (*server, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(path, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	s := &server{name: name, cmd: cmd, pid: cmd.Process.Pid, logPath: logPath, exited: make(chan struct{}),
		client: &http.Client{Timeout: 5 * time.Second}}
	go func() { s.waitErr = cmd.Wait(); close(s.exited) }()
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(logPath); err == nil {
			if m := addrRE.FindSubmatch(b); m != nil {
				s.base = "http://" + string(m[1])
				return s, nil
			}
		}
		select {
		case <-tick.C:
		case <-s.exited:
			return nil, fmt.Errorf("%s exited before it listened (%v); its log:\n%s", name, s.waitErr, tail(logPath, 20))
		case <-deadline.C:
			s.stop()
			return nil, fmt.Errorf("%s did not listen within 60 s; its log:\n%s", name, tail(logPath, 20))
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		}
	}
}

// remoteServer is a running idmd at base, its metrics listener at
// metrics ("" when unknown).
func remoteServer(base, metrics string) *server {
	return &server{name: "idmd", base: base, metrics: metrics, client: &http.Client{Timeout: 5 * time.Second}}
}

// stop ends a child: SIGTERM, then SIGKILL after 10 s.
func (s *server) stop() {
	if s.cmd == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// alive reports an error if a child has exited.
func (s *server) alive() error {
	if s.cmd == nil {
		return nil
	}
	select {
	case <-s.exited:
		return fmt.Errorf("%s exited (%v); its log:\n%s", s.name, s.waitErr, tail(s.logPath, 20))
	default:
		return nil
	}
}

// cpu returns the CPU time (user and system) the server has used so far.
func (s *server) cpu(ctx context.Context) (time.Duration, error) {
	if s.pid != 0 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.pid))
		if err != nil {
			return 0, err
		}
		return parseProcStat(b)
	}
	if s.metrics == "" {
		return 0, errors.New("no CPU figures")
	}
	v, err := s.metric(ctx, "process_cpu_seconds_total")
	return time.Duration(v * float64(time.Second)), err
}

// memory is a server's resident memory, in bytes.
type memory struct {
	RSS  uint64 // now (VmRSS)
	Peak uint64 // the most so far (VmHWM); 0 when unknown
	Anon uint64 // of RSS: anonymous memory (heap, stacks; RssAnon); 0 when unknown
	File uint64 // of RSS: mapped files (the binary, the bbolt file; RssFile); 0 when unknown
}

// memory returns the server's resident memory: from /proc for a child,
// from /metrics otherwise (without a peak).
func (s *server) memory(ctx context.Context) (memory, error) {
	if s.pid != 0 {
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.pid))
		if err != nil {
			return memory{}, err
		}
		defer f.Close()
		return parseProcStatus(f)
	}
	v, err := s.metric(ctx, "process_resident_memory_bytes")
	return memory{RSS: uint64(v)}, err
}

// goroutines returns idmd's go_goroutines.
func (s *server) goroutines(ctx context.Context) (int, error) {
	v, err := s.metric(ctx, "go_goroutines")
	return int(v), err
}

// metric scrapes /metrics and returns the value of an unlabelled metric.
func (s *server) metric(ctx context.Context, name string) (float64, error) {
	if s.metrics == "" {
		return 0, fmt.Errorf("%s has no /metrics (see -metrics-url)", s.name)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.metrics+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("reading %s/metrics: %w", s.metrics, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("reading %s/metrics: status %d", s.metrics, resp.StatusCode)
	}
	v, ok, err := parseMetric(resp.Body, name)
	if err != nil {
		return 0, fmt.Errorf("reading %s/metrics: %w", s.metrics, err)
	}
	if !ok {
		return 0, fmt.Errorf("%s/metrics has no %s", s.metrics, name)
	}
	return v, nil
}

// parseProcStatus reads VmRSS, VmHWM, RssAnon and RssFile from a
// /proc/<pid>/status file; the first two must be there.
func parseProcStatus(r io.Reader) (memory, error) {
	var m memory
	var seen int
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		var dst *uint64
		switch key {
		case "VmRSS":
			dst = &m.RSS
			seen++
		case "VmHWM":
			dst = &m.Peak
			seen++
		case "RssAnon":
			dst = &m.Anon
		case "RssFile":
			dst = &m.File
		}
		if !ok || dst == nil {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return memory{}, fmt.Errorf("/proc status: unexpected %s line %q", key, sc.Text())
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return memory{}, fmt.Errorf("/proc status: %s: %w", key, err)
		}
		*dst = kb << 10
	}
	if err := sc.Err(); err != nil {
		return memory{}, err
	}
	if seen != 2 {
		return memory{}, errors.New("/proc status: no VmRSS and VmHWM (a zombie process?)")
	}
	return m, nil
}

// parseProcStat returns the user plus system CPU time of a /proc/<pid>/stat
// line (fields 14 and 15, in clock ticks).
func parseProcStat(b []byte) (time.Duration, error) {
	// The command name (field 2) is in parentheses and may contain spaces
	// and parentheses itself: the fields proper start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("/proc stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: %d fields", len(f)+2)
	}
	var ticks uint64
	for _, s := range f[11:13] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// parseMetric returns the value of the sample of the unlabelled metric name
// in a Prometheus text exposition.
func parseMetric(r io.Reader, name string) (float64, bool, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || len(line) == len(name) || line[len(name)] != ' ' {
			continue
		}
		f := strings.Fields(line[len(name):])
		if len(f) < 1 {
			return 0, false, fmt.Errorf("metric %s has no value", name)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, false, fmt.Errorf("metric %s: %w", name, err)
		}
		return v, true, nil
	}
	return 0, false, sc.Err()
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// loadAverage returns the machine's one-minute load average, or -1 where
// /proc/loadavg cannot be read.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	v, err := parseLoadavg(string(b))
	if err != nil {
		return -1
	}
	return v
}

// parseLoadavg returns the first field of /proc/loadavg.
func parseLoadavg(s string) (float64, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, errors.New("/proc/loadavg is empty")
	}
	return strconv.ParseFloat(f[0], 64)
}
