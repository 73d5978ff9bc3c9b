package main

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// row is one line of the results table: a workload, or (ref set) the
// reference measured alongside the workload above it.
type row struct {
	name   string
	conns  int
	res    result
	ref    bool
	ratio  float64 // to the reference; NaN when none
	target string  // e.g. ">= 50%"; "" when none
	pass   bool
}

// tableHeader names the columns of the results table.
var tableHeader = []string{"WORKLOAD", "CONNS", "REQ/S", "P50", "P99", "P99.9", "ERRORS", "SRV CPU/REQ", "RATIO", "TARGET", ""}

// cells returns the table cells of a row.
func (r row) cells() []string {
	name := r.name
	if r.ref {
		name = "  vs " + name
	}
	lat := r.res.sorted()
	ratio, target, verdict := "", "", ""
	if !math.IsNaN(r.ratio) {
		ratio = fmt.Sprintf("%.1f%%", 100*r.ratio)
	}
	if r.target != "" {
		target = r.target
		verdict = "ok"
		if !r.pass {
			verdict = "MISSED"
		}
	}
	return []string{
		name, fmt.Sprint(r.conns), formatRate(r.res.rate()),
		formatDur(percentile(lat, 50)), formatDur(percentile(lat, 99)), formatDur(percentile(lat, 99.9)),
		fmt.Sprint(r.res.errors()), formatDur(r.res.cpuPerRequest()), ratio, target, verdict,
	}
}

// formatTable lays out rows under header in columns separated by two
// spaces; the first column is aligned left, the others right. Trailing
// blanks are trimmed.
func formatTable(header []string, rows [][]string) string {
	widths := make([]int, len(header))
	for _, r := range append([][]string{header}, rows...) {
		for i, c := range r {
			if i < len(widths) {
				widths[i] = max(widths[i], len([]rune(c)))
			}
		}
	}
	var b strings.Builder
	for _, r := range append([][]string{header}, rows...) {
		var line strings.Builder
		for i := range widths {
			c := ""
			if i < len(r) {
				c = r[i]
			}
			pad := strings.Repeat(" ", widths[i]-len([]rune(c)))
			if i > 0 {
				line.WriteString("  ")
			}
			if i == 0 {
				line.WriteString(c + pad)
			} else {
				line.WriteString(pad + c)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteByte('\n')
	}
	return b.String()
}

// formatDur formats a latency with three significant digits; "-" for a
// negative (unknown) one.
func formatDur(d time.Duration) string {
	switch {
	case d < 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

// formatRate formats requests per second: whole numbers from 100 up,
// two decimals below.
func formatRate(r float64) string {
	if r >= 100 {
		return fmt.Sprintf("%.0f", r)
	}
	return fmt.Sprintf("%.2f", r)
}

// mb is a megabyte as the targets count them: 10^6 bytes.
const mb = 1_000_000

// formatMB formats a size in MB (10^6 bytes).
func formatMB(b uint64) string { return fmt.Sprintf("%.1f MB", float64(b)/mb) }

// formatMem formats a resident size with its anonymous and file-backed
// parts when they are known.
func formatMem(m memory) string {
	if m.Anon == 0 && m.File == 0 {
		return formatMB(m.RSS)
	}
	return fmt.Sprintf("%s (anonymous %.1f, mapped files %.1f)", formatMB(m.RSS), float64(m.Anon)/mb, float64(m.File)/mb)
}

// check is one acceptance criterion and how the run fared.
type check struct {
	what, got, target string
	pass              bool
}

// formatChecks lists the checks, one per line, and says whether all passed.
func formatChecks(cs []check) (string, bool) {
	rows := make([][]string, 0, len(cs))
	all := true
	for _, c := range cs {
		v := "ok"
		if !c.pass {
			v, all = "MISSED", false
		}
		rows = append(rows, []string{c.what, c.got, c.target, v})
	}
	return formatTable([]string{"TARGET", "MEASURED", "REQUIRED", ""}, rows), all
}
