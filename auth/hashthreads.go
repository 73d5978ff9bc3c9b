package auth

import (
	"runtime"
	"sync/atomic"
	"time"
)

// DefaultHashNiceness is the scheduling niceness that idmd gives the
// threads that compute password hashes (see [PasswordConfig.Niceness]).
const DefaultHashNiceness = 10

// hashThreadIdle is how long a hashing thread waits for work before it ends.
const hashThreadIdle = time.Minute

// hashThreads runs hashing jobs on goroutines that are locked to OS threads
// of their own whose scheduling priority is lowered (a nice value). A flood
// of logins keeps every hashing worker busy for as long as it lasts; on
// threads of lower priority that work takes whatever CPU time the rest of
// the service leaves, so other requests keep their latency, while logins
// still get every core when nothing else runs. Threads start when work
// comes and end after hashThreadIdle without work; a thread whose priority
// was lowered is never handed back to the Go runtime (its goroutine ends
// locked to it), since raising it again takes a privilege.
type hashThreads struct {
	nice int
	idle time.Duration
	jobs chan func() // unbuffered: a send succeeds when an idle thread takes it
	live atomic.Int64
}

func newHashThreads(nice int) *hashThreads {
	return &hashThreads{nice: nice, idle: hashThreadIdle, jobs: make(chan func())}
}

// do runs f on a hashing thread and returns when it has run. A panic in f
// is raised again in the caller's goroutine.
func (h *hashThreads) do(f func()) {
	done := make(chan struct{})
	var panicked any
	job := func() {
		defer func() {
			panicked = recover()
			close(done)
		}()
		f()
	}
	select {
	case h.jobs <- job:
	default:
		go h.thread(job)
	}
	<-done
	if panicked != nil {
		panic(panicked)
	}
}

// thread runs first and then the jobs it receives, on a locked OS thread of
// lowered priority, until it has been idle for h.idle.
func (h *hashThreads) thread(first func()) {
	h.live.Add(1)
	defer h.live.Add(-1)
	runtime.LockOSThread()
	// No UnlockOSThread: the thread ends with this goroutine.
	lowerThreadPriority(h.nice)
	first()
	idle := time.NewTimer(h.idle)
	defer idle.Stop()
	for {
		select {
		case job := <-h.jobs:
			job()
			idle.Reset(h.idle)
		case <-idle.C:
			return
		}
	}
}
