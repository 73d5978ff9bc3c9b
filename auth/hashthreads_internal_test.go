package auth

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// threadNice returns the nice value of the calling OS thread (Linux).
func threadNice(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/thread-self/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	n, err := strconv.Atoi(f[16]) // field 19
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestHashThreadsRunAtLowerPriority: jobs run on threads of the configured
// niceness, and no thread of lowered priority ever runs other goroutines.
func TestHashThreadsRunAtLowerPriority(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("niceness is per thread on Linux only")
	}
	base := threadNice(t)
	if base >= 7 {
		t.Skipf("the test already runs at niceness %d", base)
	}
	h := newHashThreads(7)
	var wg sync.WaitGroup
	nices := make([]int, 8)
	for i := range nices {
		wg.Go(func() { h.do(func() { nices[i] = threadNice(t) }) })
	}
	wg.Wait()
	for i, n := range nices {
		if n != 7 {
			t.Errorf("job %d ran at niceness %d, want 7", i, n)
		}
	}
	// Goroutines that are not hashing never land on such a thread.
	for range 50 {
		wg.Go(func() {
			runtime.Gosched()
			if n := threadNice(t); n != base {
				t.Errorf("an ordinary goroutine ran at niceness %d", n)
			}
		})
	}
	wg.Wait()
}

func TestHashThreadsPassPanicsOn(t *testing.T) {
	h := newHashThreads(DefaultHashNiceness)
	defer func() {
		if v := recover(); v != "boom" {
			t.Fatalf("recovered %v, want boom", v)
		}
	}()
	h.do(func() { panic("boom") })
	t.Fatal("no panic")
}

// TestHashThreadsEndWhenIdle: threads start with work and end without it.
func TestHashThreadsEndWhenIdle(t *testing.T) {
	h := newHashThreads(DefaultHashNiceness)
	h.idle = 20 * time.Millisecond
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			h.do(func() {
				if h.live.Load() == 0 {
					t.Error("a job ran while no thread was live")
				}
				time.Sleep(5 * time.Millisecond)
			})
		})
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for h.live.Load() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d threads still live after the idle time", h.live.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	ran := false
	h.do(func() { ran = true })
	if !ran {
		t.Fatal("no job ran after the threads had ended")
	}
}

// TestHashThreadsOnlyWhenAsked leaves a host program's threads at their
// priority unless PasswordConfig.Niceness asks for lowered ones.
func TestHashThreadsOnlyWhenAsked(t *testing.T) {
	for _, tc := range []struct {
		niceness int
		threads  bool
	}{{0, false}, {-1, false}, {DefaultHashNiceness, true}} {
		p, err := NewPasswords(PasswordConfig{Cost: 4, Niceness: tc.niceness})
		if err != nil {
			t.Fatal(err)
		}
		if got := p.threads != nil; got != tc.threads {
			t.Errorf("Niceness %d: hash threads %v, want %v", tc.niceness, got, tc.threads)
		}
	}
}
