package main

import (
	"context"
	"fmt"
	"math"
	"time"
)

// soakPoint is idmd's state at one moment of a soak.
type soakPoint struct {
	label      string
	mem        memory
	goroutines int
}

// heap returns the part of the resident memory that a leak would grow: the
// anonymous memory where it is known, else all of it. (Mapped files grow
// with the database, which the workload's edits make longer.)
func (p soakPoint) heap() uint64 {
	if p.mem.Anon > 0 {
		return p.mem.Anon
	}
	return p.mem.RSS
}

// soakVerdict compares the soak's points: goroutines idle after the load
// against idle before it, and the resident memory (anonymous where known)
// at the end of the load against the memory once the load had warmed up (a
// quarter in). Growth within the noise (a few goroutines; 20 % or 10 MB of
// memory, which the garbage collector's pacing alone can account for)
// passes.
func soakVerdict(idleBefore, warm, loadEnd, idleAfter soakPoint) []check {
	gorOK := idleAfter.goroutines <= idleBefore.goroutines+soakGoroutineSlack
	growth := int64(loadEnd.heap()) - int64(warm.heap())
	rssOK := growth <= 10*mb || float64(loadEnd.heap()) <= 1.2*float64(warm.heap())
	what := "RSS under load, end vs warm"
	if warm.mem.Anon > 0 {
		what = "anonymous RSS under load, end vs warm"
	}
	loadGorOK := loadEnd.goroutines <= warm.goroutines+soakGoroutineSlack+warm.goroutines/10
	return []check{
		{what: "goroutines idle after vs before the soak", got: fmt.Sprintf("%d -> %d", idleBefore.goroutines, idleAfter.goroutines),
			target: fmt.Sprintf("<= +%d", soakGoroutineSlack), pass: gorOK},
		{what: "goroutines under load, end vs warm", got: fmt.Sprintf("%d -> %d", warm.goroutines, loadEnd.goroutines),
			target: fmt.Sprintf("<= +%d +10%%", soakGoroutineSlack), pass: loadGorOK},
		{what: what, got: fmt.Sprintf("%s -> %s", formatMB(warm.heap()), formatMB(loadEnd.heap())),
			target: "<= +20% or +10 MB", pass: rssOK},
	}
}

// soak runs the mixed workload for -soak and reports idmd's memory and
// goroutines at the start and the end, flagging growth beyond the noise.
func (b *bench) soak(ctx context.Context) (int, error) {
	c := b.cfg.Conns
	wl := b.newWorkload("mixed staff workload", b.idmd, c, true, b.mixed(c, false), false)
	point := func(label string) (soakPoint, error) {
		m, err := b.idmd.memory(ctx)
		if err != nil {
			return soakPoint{}, err
		}
		g, err := b.idmd.goroutines(ctx)
		if err != nil {
			return soakPoint{}, err
		}
		return soakPoint{label: label, mem: m, goroutines: g}, nil
	}
	sleepCtx(ctx, b.cfg.Settle)
	before, err := point(fmt.Sprintf("idle %v before the load", b.cfg.Settle))
	if err != nil {
		return exitSetup, err
	}
	b.logf("soak: the mixed workload (edits instead of new records) for %v with %d connections; idle before: RSS %s, %d goroutines",
		b.cfg.Soak, c, formatMem(before.mem), before.goroutines)
	var (
		total, minute result
		warm, last    soakPoint
	)
	start := time.Now()
	lastPrint := start
	for elapsed := time.Duration(0); elapsed < b.cfg.Soak; elapsed = time.Since(start) {
		res, err := runSlice(ctx, []*workload{wl}, 0, min(soakSlice, b.cfg.Soak-elapsed))
		if err != nil {
			return exitSetup, err
		}
		total.add(res[0])
		minute.add(res[0])
		if last, err = point("under load"); err != nil {
			return exitSetup, err
		}
		if warm.label == "" && time.Since(start) >= b.cfg.Soak/4 {
			warm = last
			warm.label = "under load, warm (a quarter in)"
		}
		if time.Since(lastPrint) >= time.Minute || time.Since(start) >= b.cfg.Soak {
			b.logf("soak %v: %s req/s, p99 %s, %d failed; RSS %s, %d goroutines",
				time.Since(start).Round(time.Second), formatRate(minute.rate()), formatDur(percentile(minute.sorted(), 99)),
				minute.errors(), formatMem(last.mem), last.goroutines)
			minute, lastPrint = result{}, time.Now()
		}
	}
	if warm.label == "" {
		warm = last
	}
	last.label = "under load, end"
	closeIdle(wl)
	sleepCtx(ctx, b.cfg.Settle)
	after, err := point(fmt.Sprintf("idle %v after the load", b.cfg.Settle))
	if err != nil {
		return exitSetup, err
	}
	if err := b.idmd.alive(); err != nil {
		return exitSetup, err
	}

	fmt.Fprintf(b.out, "\nidmload soak: %v of the mixed staff workload (edits instead of new records), %d connections, %d subjects\n\n", b.cfg.Soak, c, b.fx.n)
	fmt.Fprint(b.out, formatTable(tableHeader[:8], [][]string{row{name: "mixed staff workload", conns: c, res: total, ratio: math.NaN()}.cells()[:8]}))
	fmt.Fprintln(b.out)
	var pts [][]string
	for _, p := range []soakPoint{before, warm, last, after} {
		pts = append(pts, []string{p.label, formatMem(p.mem), fmt.Sprint(p.goroutines)})
	}
	fmt.Fprint(b.out, formatTable([]string{"IDMD", "RSS", "GOROUTINES"}, pts))
	fmt.Fprintln(b.out)
	checks := soakVerdict(before, warm, last, after)
	if n := total.errors(); n > 0 {
		checks = append(checks, check{what: "no failed requests", got: fmt.Sprintf("%d failed: %s", n, total.lastErr), target: "0"})
	}
	text, all := formatChecks(checks)
	fmt.Fprint(b.out, text)
	if !all {
		return exitMissed, nil
	}
	return exitOK, nil
}
