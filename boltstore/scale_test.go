package boltstore

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/c3-pro/idm/idm"
)

// Measurements at cohort scale, run by hand (they are skipped otherwise):
//
//	IDM_SCALE_SUBJECTS=1000000 IDM_SCALE_FILE=/dev/shm/scale.db go test -run TestScaleLoad -count=1 -timeout 30m ./boltstore/
//	IDM_SCALE_FILE=/dev/shm/scale.db go test -run TestScaleOpen -count=1 -v ./boltstore/
//
// TestScaleLoad writes a file of that many subjects (like idmload's: names,
// birthdays, e-mail, dates, a site and additional fields for every fourth)
// and a link for nine in ten, straight into bbolt in large transactions. It
// is a test-only bulk loader: it writes no audit records. TestScaleOpen, in
// a process of its own, opens the file as idmd does and reports the time to
// open, the heap and resident memory (and their peak), and the cost of the
// reads that the targets of docs/performance.md name.

var (
	scaleFirst = []string{"Alice", "Bruno", "Chiara", "David", "Elena", "Felix", "Gita", "Hugo", "Ines", "Jonas",
		"Karin", "Luca", "Mara", "Nils", "Olga", "Paul", "Rosa", "Simon", "Tara", "Urs", "Vera", "Walter", "Yara", "Zoe"}
	scaleLast = []string{"Meier", "Müller", "Schmid", "Keller", "Weber", "Huber", "Schneider", "Meyer", "Steiner",
		"Fischer", "Gerber", "Brunner", "Baumann", "Frei", "Zimmermann", "Moser", "Widmer", "Wyss", "Graf", "Roth",
		"Rossi", "Bianchi", "Favre", "Girard", "Nguyen", "Okafor", "Silva", "Novak", "Kowalski", "Andersen"}
)

// scaleSubject returns the i-th subject of the scale file.
func scaleSubject(i int, now time.Time) idm.Subject {
	rng := rand.New(rand.NewPCG(uint64(i), 42))
	s := idm.Subject{
		ID: fmt.Sprintf("%024x", uint64(i)*2654435761), SSSID: fmt.Sprintf("S-%07d", i),
		Name:  fmt.Sprintf("%s %c %s", scaleFirst[rng.IntN(len(scaleFirst))], 'A'+rng.IntN(26), scaleLast[rng.IntN(len(scaleLast))]),
		Bday:  time.Date(1940, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rng.IntN(65*365)).Format(time.DateOnly),
		Email: fmt.Sprintf("subject%07d@example.org", i), DateInvited: "2024-04-02T09:30:00+02:00",
		Created: now, Changed: now, Rev: 1,
	}
	if i%10 != 9 {
		s.DateConsented = "2024-05-01T12:00:00+02:00"
	}
	if i%4 == 0 {
		s.Site = []string{"Zurich", "Basel", "Bern", "Geneva"}[i/4%4]
		s.Extra = map[string]json.RawMessage{"arm": fmt.Appendf(nil, `{"name":"A","cohort":%d}`, i%7)}
	}
	return s
}

func TestScaleLoad(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("IDM_SCALE_SUBJECTS"))
	path := os.Getenv("IDM_SCALE_FILE")
	if n <= 0 || path == "" {
		t.Skip("set IDM_SCALE_SUBJECTS and IDM_SCALE_FILE to write a scale file")
	}
	_ = os.Remove(path)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, fileMode, &bolt.Options{NoSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	start := time.Now()
	const per = 20000
	for lo := 0; lo < n; lo += per {
		err := db.Update(func(tx *bolt.Tx) error {
			b := bucket(tx, bSubjects)
			b.FillPercent = 1 // keys come in order
			for i := lo; i < min(lo+per, n); i++ {
				sub := scaleSubject(i, now)
				val, err := encode(toSubjectRec(sub))
				if err != nil {
					return err
				}
				if err := b.Put([]byte(sub.SSSID), val); err != nil {
					return err
				}
				if i%10 == 9 {
					continue
				}
				l := storedLink(idm.Link{ID: fmt.Sprintf("%024x", uint64(i)*40503+7), SSSID: sub.SSSID, Issuer: "https://idm.example.org",
					Audience: "https://app.example.org", Algorithm: "HS256", Created: now, Changed: now, Rev: 1})
				if err := bucket(tx, bLinks).Put([]byte(l.ID), mustEncode(t, toLinkRec(l))); err != nil {
					return err
				}
				if err := putLink(tx, nil, l); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	t.Logf("%d subjects written to %s in %v: %d MB", n, path, time.Since(start).Round(time.Millisecond), fi.Size()/1e6)
}

func mustEncode(t *testing.T, v any) []byte {
	b, err := encode(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// procStatus returns VmRSS and VmHWM of this process in bytes.
func procStatus(t *testing.T) (rss, hwm uint64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = kb * 1024
		case "VmHWM":
			hwm = kb * 1024
		}
	}
	return rss, hwm
}

// cpuTime returns the CPU time (user and system) of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestScaleOpen(t *testing.T) {
	path := os.Getenv("IDM_SCALE_FILE")
	if path == "" {
		t.Skip("set IDM_SCALE_FILE to a file that TestScaleLoad wrote")
	}
	ctx := t.Context()
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	rss0, _ := procStatus(t)
	cpu0 := cpuTime()
	start := time.Now()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	opened := time.Since(start)
	openCPU := cpuTime() - cpu0
	_, hwm := procStatus(t)
	runtime.GC()
	debug.FreeOSMemory()
	runtime.ReadMemStats(&m1)
	rss1, _ := procStatus(t)
	_, n, err := s.ListSubjects(ctx, idm.SubjectFilter{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	heap := m1.HeapAlloc - m0.HeapAlloc
	s.mu.RLock()
	index := s.subjects.search.Bytes()
	s.mu.RUnlock()
	t.Logf("%d subjects: opened in %v (%v of CPU); heap %d MB (%d bytes per subject; search index %d MB, %.0f bytes per subject); "+
		"RSS %d MB idle (test process before Open: %d MB), peak %d MB during Open",
		n, opened.Round(time.Millisecond), openCPU.Round(time.Millisecond), heap/1e6, heap/uint64(n), index/1e6, float64(index)/float64(n), rss1/1e6, rss0/1e6, hwm/1e6)

	time1 := func(name string, reps int, fn func(i int)) {
		fn(0) // the first call builds what it needs (a sort order)
		var lat []time.Duration
		for i := range reps {
			t0 := time.Now()
			fn(i + 1)
			lat = append(lat, time.Since(t0))
		}
		sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
		t.Logf("%-45s median %8v  p90 %8v", name, lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*9/10].Round(time.Microsecond))
	}
	list := func(f idm.SubjectFilter) {
		if _, _, err := s.ListSubjects(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	time1("GET /subject/{sssid}", 2000, func(i int) {
		if _, err := s.FindSubject(ctx, fmt.Sprintf("S-%07d", (i*7919)%n)); err != nil {
			t.Fatal(err)
		}
	})
	time1("page of 50 at offset N/2 (by SSSID)", 200, func(int) { list(idm.SubjectFilter{Offset: n / 2, Limit: 50}) })
	time1("page of 50 at offset N/2 (by name, desc)", 200, func(int) { list(idm.SubjectFilter{Offset: n / 2, Limit: 50, OrderCol: "name", Desc: true}) })
	time1("page of 50 at offset N/2 of one site (by bday)", 200, func(int) {
		list(idm.SubjectFilter{Offset: n / 32, Limit: 50, OrderCol: "bday", Sites: []string{"Basel"}})
	})
	time1("search=<surname>, page of 50", 100, func(i int) { list(idm.SubjectFilter{Search: scaleLast[i%len(scaleLast)], Limit: 50}) })
	time1("search=<surname>, page of 50 by name", 100, func(i int) {
		list(idm.SubjectFilter{Search: scaleLast[i%len(scaleLast)], Limit: 50, OrderCol: "name"})
	})
	time1("search=<first name + initial>, page of 50", 100, func(i int) {
		list(idm.SubjectFilter{Search: scaleFirst[i%len(scaleFirst)] + " " + string(rune('A'+i%26)), Limit: 50})
	})
	time1("search=<sssid>", 200, func(i int) { list(idm.SubjectFilter{Search: fmt.Sprintf("s-%07d", (i*7919)%n), Limit: 50}) })
	time1("search=\"er\" (2 letters: no index)", 10, func(int) { list(idm.SubjectFilter{Search: "er", Limit: 50}) })
	time1("links of a page of 50", 500, func(i int) {
		ids := make([]string, 50)
		for j := range ids {
			ids[j] = fmt.Sprintf("S-%07d", (i*50+j)%n)
		}
		if _, err := s.LinksForSubjects(ctx, ids...); err != nil {
			t.Fatal(err)
		}
	})
	runtime.GC()
	runtime.ReadMemStats(&m1)
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "heap after the reads (three sort orders built): %d MB", (m1.HeapAlloc-m0.HeapAlloc)/1e6)
	t.Log(buf.String())
}
