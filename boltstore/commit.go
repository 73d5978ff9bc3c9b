package boltstore

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Group commit. bbolt syncs the file twice per write transaction, and runs
// one such transaction at a time, so writes that each commit alone queue
// behind each other's syncs. Every write of the store instead goes to one
// committer goroutine, which runs all the writes that are waiting in one
// transaction, one after the other, and commits (and syncs) them together:
// under concurrent load the syncs are shared; alone, a write commits at
// once, with no delay to wait for others. A write is acknowledged (its
// method returns nil) only after the transaction that holds it has been
// committed and synced, so an acknowledged write is durable as before.
//
// bbolt cannot roll back part of a transaction, so a write whose function
// fails (a conflict, a stale revision, or anything else) makes the committer
// roll back the whole transaction and run the others again without it, in
// the same order; the failed write then runs alone, and its own outcome is
// returned. A write's function may therefore run more than once: it must
// derive everything from the transaction (and its arguments) and set every
// variable it shares with its caller on each run. This is what bbolt's own
// DB.Batch does, without its wait (MaxBatchDelay) for more writes to come.
//
// A write may also give an apply function, which the committer runs after
// the commit, before the write is acknowledged, in the order of the
// transaction: the in-memory copies of subjects follow the file in commit
// order this way without a lock held across the commit.

// maxBatch bounds the writes in one transaction, so that one failing write
// costs a bounded amount of work to redo.
const maxBatch = 256

// write is one write waiting for the committer.
type write struct {
	fn    func(*bolt.Tx, *batch) error
	apply func()
	done  chan error
}

// batch is what the writes of one transaction attempt share: names they
// claimed that no index in the file shows yet (such as a new subject's ID).
// It is empty at the start of every attempt.
type batch struct {
	claimed map[string]bool
}

// claim records name for this transaction; it reports false when another
// write of the transaction claimed it already.
func (b *batch) claim(name string) bool {
	if b.claimed[name] {
		return false
	}
	if b.claimed == nil {
		b.claimed = map[string]bool{}
	}
	b.claimed[name] = true
	return true
}

// committer runs the writes of a store in group transactions.
type committer struct {
	db *bolt.DB
	// mu guards closed and sending on queue.
	mu     sync.RWMutex
	closed bool
	queue  chan *write
	// stopped is closed when the committer goroutine has finished.
	stopped chan struct{}
	// commits counts the transactions committed, for tests.
	commits atomic.Int64
}

func newCommitter(db *bolt.DB) *committer {
	c := &committer{db: db, queue: make(chan *write, maxBatch), stopped: make(chan struct{})}
	go c.loop()
	return c
}

// do runs fn in a write transaction, shared with other writes, and apply
// (if not nil) after its commit; it returns once the transaction has been
// committed and synced, with fn's error or the commit's.
func (c *committer) do(fn func(*bolt.Tx, *batch) error, apply func()) error {
	w := &write{fn: fn, apply: apply, done: make(chan error, 1)}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return berrors.ErrDatabaseNotOpen
	}
	c.queue <- w
	c.mu.RUnlock()
	return <-w.done
}

// stop lets the committer finish the writes it has been given and waits
// for it to end; later writes fail as on a closed database.
func (c *committer) stop() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.queue)
	}
	c.mu.Unlock()
	<-c.stopped
}

func (c *committer) loop() {
	defer close(c.stopped)
	for w := range c.queue {
		ws := []*write{w}
	more:
		for len(ws) < maxBatch {
			select {
			case w, ok := <-c.queue:
				if !ok {
					break more
				}
				ws = append(ws, w)
			default:
				break more
			}
		}
		c.commit(ws)
	}
}

// commit runs ws in one transaction. A write whose function fails is taken
// out, the transaction rolled back and the others run again; the failed
// ones then run alone, after the others have committed.
func (c *committer) commit(ws []*write) {
	var failed []*write
	for len(ws) > 0 {
		bad := -1
		var b batch
		err := c.db.Update(func(tx *bolt.Tx) error {
			for i, w := range ws {
				if err := call(w.fn, tx, &b); err != nil {
					bad = i
					return err
				}
			}
			return nil
		})
		if err == nil {
			c.commits.Add(1)
		}
		if bad >= 0 && len(ws) > 1 {
			failed = append(failed, ws[bad])
			ws = slices.Delete(ws, bad, bad+1)
			continue
		}
		for _, w := range ws {
			if err == nil && w.apply != nil {
				w.apply()
			}
			w.done <- err
		}
		break
	}
	for _, w := range failed {
		c.commit([]*write{w})
	}
}

// call runs fn, turning a panic into an error so that one faulty write
// cannot stop the committer.
func call(fn func(*bolt.Tx, *batch) error, tx *bolt.Tx, b *batch) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in a write: %v", p)
		}
	}()
	return fn(tx, b)
}
