package auditlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/c3-pro/idm/idm"
)

// DefaultInterval is how often at most [Log.Run] writes a checkpoint after
// appends.
const DefaultInterval = 10 * time.Second

// syncBatch is how many records [Log.Sync] hashes per store round trip.
const syncBatch = 2000

// Store is what the log needs of the store.
type Store interface {
	idm.AuditLogStore
}

// Config configures [New]. Store and Key are required.
type Config struct {
	Store Store
	// Key signs checkpoints ([LoadOrCreateKey] or [ParseKey]).
	Key *Key
	// Origin is the first line of checkpoints; default [DefaultOrigin].
	Origin string
	// Interval: after appends, a checkpoint is written at most this often
	// by [Log.Run]; default [DefaultInterval].
	Interval time.Duration
	// Authenticate puts the caller's *idm.Principal into the request
	// context (e.g. auth.Handler.Require); required for [Log.Install].
	Authenticate func(http.Handler) http.Handler
	// Logger receives the log's lines; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Log keeps the audit log's tree and checkpoints up to date and serves
// them. Create it with [New].
type Log struct {
	store    Store
	key      *Key
	origin   string
	interval time.Duration
	authn    func(http.Handler) http.Handler
	log      *slog.Logger
	now      func() time.Time

	mu       sync.Mutex          // one Sync at a time in this process
	frontier map[int64]tlog.Hash // the hashes the next append needs, for the tree size syncedTo
	syncedTo int64               // tree size the frontier is for; -1 when unknown

	// latestMu guards latest, the latest checkpoint, for Stats: apart from
	// mu, so that a long Sync does not hold up a metrics scrape.
	latestMu sync.Mutex
	latest   struct {
		size int64
		at   time.Time
	}
}

// New validates c and returns a Log.
func New(c Config) (*Log, error) {
	switch {
	case c.Store == nil:
		return nil, errors.New("auditlog: Config.Store is required")
	case c.Key == nil:
		return nil, errors.New("auditlog: Config.Key is required (see LoadOrCreateKey)")
	case c.Interval < 0:
		return nil, fmt.Errorf("auditlog: negative checkpoint interval %v", c.Interval)
	}
	if c.Origin == "" {
		c.Origin = DefaultOrigin
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return &Log{
		store: c.Store, key: c.Key, origin: c.Origin, interval: c.Interval, authn: c.Authenticate,
		log: c.Logger, now: c.Now, syncedTo: -1,
	}, nil
}

// VerifierKey returns the note verifier key of the log's checkpoints.
func (l *Log) VerifierKey() string { return l.key.VerifierKey() }

// Sync extends the stored tree to every record appended so far, and
// returns the tree size. It is safe to run in several processes at once
// (they store the same hashes); a record that is missing, or whose seq is
// not the next one, stops it with an error that names the seq.
func (l *Log) Sync(ctx context.Context) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	size, err := l.store.TreeSize(ctx)
	if err != nil {
		return 0, fmt.Errorf("auditlog: tree size: %w", err)
	}
	count, err := l.store.AuditCount(ctx)
	if err != nil {
		return 0, fmt.Errorf("auditlog: record count: %w", err)
	}
	if size >= count {
		return size, nil
	}
	if l.syncedTo != size {
		if l.frontier, err = l.readFrontier(ctx, size); err != nil {
			return 0, err
		}
		l.syncedTo = size
	}
	for size < count {
		records, err := l.store.AuditsBySeq(ctx, size, min(count, size+syncBatch))
		if err != nil {
			return 0, fmt.Errorf("auditlog: reading records from seq %d: %w", size, err)
		}
		if len(records) == 0 {
			return 0, fmt.Errorf("auditlog: record seq %d is missing", size)
		}
		start := tlog.StoredHashCount(size)
		var added []tlog.Hash
		pending := l.frontier
		read := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(indexes))
			for i, x := range indexes {
				h, ok := pending[x]
				if !ok {
					return nil, fmt.Errorf("auditlog: tree hash %d not at hand", x)
				}
				out[i] = h
			}
			return out, nil
		})
		n := size
		for _, e := range records {
			if e.Seq != n {
				return 0, fmt.Errorf("auditlog: record seq %d is missing (found seq %d)", n, e.Seq)
			}
			hs, err := tlog.StoredHashesForRecordHash(n, leafHash(e), read)
			if err != nil {
				return 0, fmt.Errorf("auditlog: hashing record seq %d: %w", n, err)
			}
			for i, h := range hs {
				pending[start+int64(len(added)+i)] = h
			}
			added = append(added, hs...)
			n++
			pending = keepFrontier(pending, n)
		}
		if err := l.store.AddTreeHashes(ctx, start, rawHashes(added), n); err != nil {
			l.syncedTo = -1
			return 0, fmt.Errorf("auditlog: storing tree hashes: %w", err)
		}
		l.frontier, l.syncedTo, size = pending, n, n
	}
	return size, nil
}

// frontierIndexes returns the stored-hash indexes of the complete subtrees
// that a tree of size n is made of: what hashing record n and computing
// the root of size n read.
func frontierIndexes(n int64) []int64 {
	var out []int64
	for level := 0; n>>level > 0; level++ {
		if (n>>level)&1 == 1 {
			out = append(out, tlog.StoredHashIndex(level, (n>>level)-1))
		}
	}
	return out
}

// keepFrontier drops from m every hash but the frontier of size n.
func keepFrontier(m map[int64]tlog.Hash, n int64) map[int64]tlog.Hash {
	keep := frontierIndexes(n)
	if len(m) <= 2*len(keep)+8 {
		return m
	}
	out := make(map[int64]tlog.Hash, len(keep)+64)
	for _, x := range keep {
		out[x] = m[x]
	}
	return out
}

// readFrontier reads the frontier of size n from the store.
func (l *Log) readFrontier(ctx context.Context, n int64) (map[int64]tlog.Hash, error) {
	idx := frontierIndexes(n)
	hs, err := l.store.TreeHashes(ctx, idx)
	if err != nil {
		return nil, fmt.Errorf("auditlog: reading the tree of size %d: %w", n, err)
	}
	m := make(map[int64]tlog.Hash, len(idx)+64)
	for i, x := range idx {
		m[x] = tlog.Hash(hs[i])
	}
	return m, nil
}

// storeReader reads tree hashes from the store.
func storeReader(ctx context.Context, s Store) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		hs, err := s.TreeHashes(ctx, indexes)
		if err != nil {
			return nil, err
		}
		return hashesOf(hs), nil
	})
}

// Checkpoint extends the tree and, when it has grown since the latest
// checkpoint, signs and stores a checkpoint of its new size. It returns
// the latest checkpoint (ErrNotFound wrapped when the log is empty).
func (l *Log) Checkpoint(ctx context.Context) (idm.Checkpoint, error) {
	size, err := l.Sync(ctx)
	if err != nil {
		return idm.Checkpoint{}, err
	}
	latest, err := l.store.LatestCheckpoint(ctx)
	switch {
	case err == nil && latest.Size >= size:
		l.noteLatest(latest)
		return latest, nil
	case err != nil && !errors.Is(err, idm.ErrNotFound):
		return idm.Checkpoint{}, fmt.Errorf("auditlog: latest checkpoint: %w", err)
	case size == 0:
		return idm.Checkpoint{}, fmt.Errorf("auditlog: the log is empty: %w", idm.ErrNotFound)
	}
	root, err := tlog.TreeHash(size, storeReader(ctx, l.store))
	if err != nil {
		return idm.Checkpoint{}, fmt.Errorf("auditlog: root of size %d: %w", size, err)
	}
	msg, err := l.key.sign(tree{origin: l.origin, size: size, root: root})
	if err != nil {
		return idm.Checkpoint{}, fmt.Errorf("auditlog: signing a checkpoint: %w", err)
	}
	c := idm.Checkpoint{Size: size, Note: msg, Time: idm.Timestamp(l.now())}
	err = l.store.AddCheckpoint(ctx, c)
	if errors.Is(err, idm.ErrConflict) {
		// Another instance checkpointed the same size first.
		return l.store.LatestCheckpoint(ctx)
	}
	if err != nil {
		return idm.Checkpoint{}, fmt.Errorf("auditlog: storing a checkpoint: %w", err)
	}
	l.noteLatest(c)
	l.log.Debug("audit log checkpoint", "size", size)
	return c, nil
}

func (l *Log) noteLatest(c idm.Checkpoint) {
	l.latestMu.Lock()
	defer l.latestMu.Unlock()
	if c.Size >= l.latest.size {
		l.latest.size, l.latest.at = c.Size, c.Time
	}
}

// Stats returns the size and time of the latest checkpoint this process
// wrote or saw (zero before the first).
func (l *Log) Stats() (size int64, at time.Time) {
	l.latestMu.Lock()
	defer l.latestMu.Unlock()
	return l.latest.size, l.latest.at
}

// Behind reports whether records appended more than twice the interval ago
// are not yet covered by a checkpoint (the checkpointing has fallen
// behind, for instance because the store fails).
func (l *Log) Behind(ctx context.Context) (bool, error) {
	count, err := l.store.AuditCount(ctx)
	if err != nil {
		return false, err
	}
	size, at := l.Stats()
	if count <= size {
		return false, nil
	}
	if at.IsZero() {
		latest, err := l.store.LatestCheckpoint(ctx)
		if err != nil && !errors.Is(err, idm.ErrNotFound) {
			return false, err
		}
		at = latest.Time
		if err != nil {
			return false, nil // nothing checkpointed yet: Run writes the first one
		}
	}
	return l.now().Sub(at) > 2*l.interval+time.Second, nil
}

// Run checkpoints the log until ctx ends: at once when records are not yet
// covered, then at most every interval after appends. Failures are logged
// and retried at the next tick.
func (l *Log) Run(ctx context.Context) {
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		if _, err := l.Checkpoint(ctx); err != nil && !errors.Is(err, idm.ErrNotFound) && ctx.Err() == nil {
			l.log.Warn("audit log checkpoint failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
