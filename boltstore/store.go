// Package boltstore is the embedded default [idm.Store]: it keeps everything
// the service stores in one go.etcd.io/bbolt file.
//
// A bbolt file can be open in one process only. [Open] waits for the file
// lock for a bounded time (two seconds by default, see [WithTimeout]) and
// then fails with an error that wraps [ErrLocked], so that an admin command
// started next to a running idmd stops with a clear message instead of
// hanging. Every write is part of a bbolt transaction that is synced to
// disk before the method returns (concurrent writes share one, see
// commit.go); the multi-step operations of the contract
// (EstablishLink, ConsumeResetToken, MarkBootstrapped, and every write that
// keeps an index) are atomic. The revision check of an update (see
// [idm.Store], "Revisions") reads the stored record in the same read-write
// transaction that writes the new one; bbolt runs one such transaction at a
// time, so of concurrent updates from one revision exactly one succeeds.
//
// Subjects, users and links are also held in memory: they are loaded when
// the store opens and updated only after a write has committed, so reading
// a subject, a user or the links of a page of subjects, or listing a sorted,
// filtered page of thousands of subjects needs no disk access and no
// decoding. Subject sort orders are built on first use and then kept up to
// date with every write. The in-memory copies are compact (see pack.go),
// and the pages of the file that loading read through bbolt's memory map are
// released afterwards (see [Store.ReleaseMemory]), so that the process keeps
// little more than the records' own size resident.
//
// [Store.Backup] writes a consistent copy of the database while the store
// serves requests.
//
//	s, err := boltstore.Open("/var/lib/idm/idm.db")
//	if errors.Is(err, boltstore.ErrLocked) {
//		// another process (a running idmd) holds the file
//	}
//	defer s.Close()
package boltstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/c3-pro/idm/idm"
)

// DefaultTimeout is how long [Open] waits for the file lock by default.
const DefaultTimeout = 2 * time.Second

// ErrLocked is wrapped by the error that [Open] returns when another process
// holds the database file open.
var ErrLocked = errors.New("database file is in use by another process")

// schemaVersion is the layout of the buckets and records this package
// writes; a file written by a later layout is refused.
const schemaVersion = 1

// fileMode is the permission of a newly created database file.
const fileMode = 0o600

// Bucket names.
const (
	bMeta          = "meta"
	bUsers         = "users"
	bUsersByName   = "users_by_name"
	bSubjects      = "subjects"
	bLinks         = "links"
	bLinksBySubj   = "links_by_subject"
	bLinksByJWT    = "links_by_jwt_hash"
	bAudits        = "audits"
	bAuditsByID    = "audits_by_id"
	bAuditsByDoc   = "audits_by_document"
	bAuditsByActor = "audits_by_actor"
	bAuditsBySeq   = "audits_by_seq"
	bAuditTree     = "audit_tree"
	bCheckpoints   = "audit_checkpoints"
	bAuditCounts   = "audit_counts"
	bResetTokens   = "reset_tokens"
	bResetByUser   = "reset_tokens_by_user"
	bKeys          = "signing_keys"
	bLoginFailures = "login_failures"
	bSessions      = "console_sessions"
	bSessionsByUsr = "console_sessions_by_user"
)

func allBuckets() []string {
	return []string{
		bMeta, bUsers, bUsersByName, bSubjects, bLinks, bLinksBySubj, bLinksByJWT,
		bAudits, bAuditsByID, bAuditsByDoc, bAuditsByActor, bResetTokens, bResetByUser,
		bKeys, bLoginFailures, bAuditsBySeq, bAuditTree, bCheckpoints, bAuditCounts,
		bSessions, bSessionsByUsr,
	}
}

// bucket returns the named bucket, which init created.
func bucket(tx *bolt.Tx, name string) *bolt.Bucket {
	return tx.Bucket([]byte(name))
}

// Keys in the meta bucket.
const (
	kSchema       = "schema_version"
	kBootstrapped = "bootstrapped"
	kTreeSize     = "audit_tree_size"
)

// Option configures [Open].
type Option func(*options)

type options struct {
	timeout time.Duration
}

// WithTimeout sets how long [Open] waits for the file lock before it fails
// with [ErrLocked]; it must be positive. The default is [DefaultTimeout].
func WithTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

// Store is an [idm.Store] on a bbolt file. It is safe for concurrent use.
type Store struct {
	db     *bolt.DB
	commit *committer // runs every write (see commit.go)
	closed atomic.Bool
	// closeMu makes Close idempotent.
	closeMu sync.Mutex

	// wmu serialises the writes of subjects, users and links together with
	// the update of the in-memory copy that follows their commit, so that the
	// copies change in the order of the commits.
	wmu sync.Mutex
	// mu guards subjects.
	mu       sync.RWMutex
	subjects *subjectCache
	// umu guards users.
	umu   sync.RWMutex
	users *userCache
	// lmu guards links.
	lmu   sync.RWMutex
	links *linkCache
}

var _ idm.Store = (*Store)(nil)

// Open opens the database file at path, creating it (mode 0600) and its
// buckets if needed, and loads the subjects, users and links into memory.
// If another process holds the file, Open gives up after the timeout (see
// [WithTimeout]) with an error that wraps [ErrLocked].
func Open(path string, opts ...Option) (*Store, error) {
	o := options{timeout: DefaultTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if o.timeout <= 0 {
		return nil, fmt.Errorf("boltstore: open %s: lock timeout %v is not positive", path, o.timeout)
	}
	db, err := bolt.Open(path, fileMode, &bolt.Options{
		Timeout:      o.timeout,
		FreelistType: bolt.FreelistMapType,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("boltstore: open %s: %w (no lock within %v)", path, ErrLocked, o.timeout)
	}
	if err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	s := &Store{db: db}
	if err := s.init(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	s.commit = newCommitter(db)
	return s, nil
}

// init creates the buckets, checks the schema version and loads the
// subjects, users and links.
func (s *Store) init() error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets() {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		meta := bucket(tx, bMeta)
		v := meta.Get([]byte(kSchema))
		if v == nil {
			return meta.Put([]byte(kSchema), fmt.Appendf(nil, "%d", schemaVersion))
		}
		var version int
		if _, err := fmt.Sscanf(string(v), "%d", &version); err != nil {
			return fmt.Errorf("bad schema version %q: %w", v, err)
		}
		if version > schemaVersion {
			return fmt.Errorf("database has schema version %d; this program knows up to %d", version, schemaVersion)
		}
		if err := numberAudits(tx); err != nil {
			return err
		}
		return initAuditCounts(tx)
	})
	if err != nil {
		return err
	}
	if err := s.loadSubjects(); err != nil {
		return err
	}
	if err := s.loadUsers(); err != nil {
		return err
	}
	if err := s.loadLinks(); err != nil {
		return err
	}
	// Loading read every page of those records through the memory map;
	// requests answer from memory, so the pages need not stay resident.
	// Only the memory accounting depends on it, so a failure is ignored.
	_ = s.ReleaseMemory(context.Background())
	return nil
}

// Close closes the database file. Later calls do nothing and return nil;
// methods called after Close fail with an error that wraps
// [idm.ErrUnavailable].
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed.Load() {
		return nil
	}
	s.closed.Store(true)
	s.commit.stop()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("boltstore: close: %w", err)
	}
	return nil
}

// Ping reports whether the database is open.
func (s *Store) Ping(ctx context.Context) error {
	return s.view(ctx, "ping", func(*bolt.Tx) error { return nil })
}

// Path returns the path of the database file.
func (s *Store) Path() string { return s.db.Path() }

// Backup writes a consistent copy of the whole database to w while the
// store keeps serving requests (readers and writers are not blocked), and
// returns the number of bytes written. The copy is a bbolt file that [Open]
// can open. Cancelling ctx stops the copy at the next write to w.
func (s *Store) Backup(ctx context.Context, w io.Writer) (int64, error) {
	var n int64
	err := s.view(ctx, "backup", func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(ctxWriter{ctx: ctx, w: w})
		return err
	})
	return n, err
}

// ctxWriter stops writing once its context is done.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// view runs fn in a read transaction.
func (s *Store) view(ctx context.Context, op string, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: %s: %w", op, err)
	}
	return wrapErr(op, s.db.View(fn))
}

// update runs fn in a read-write transaction, which is synced to disk when
// update returns nil. The transaction may hold other writes too, and fn may
// run more than once (see commit.go).
func (s *Store) update(ctx context.Context, op string, fn func(*bolt.Tx) error) error {
	return s.write(ctx, op, func(tx *bolt.Tx, _ *batch) error { return fn(tx) }, nil)
}

// write runs fn in a read-write transaction shared with other writes, and
// apply (if not nil) once that has committed, in commit order; the
// transaction is synced to disk when write returns nil (see commit.go).
func (s *Store) write(ctx context.Context, op string, fn func(*bolt.Tx, *batch) error, apply func()) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: %s: %w", op, err)
	}
	return wrapErr(op, s.commit.do(fn, apply))
}

// checkOpen fails like a bbolt transaction would on a closed store; it is
// used by the methods that answer from memory.
func (s *Store) checkOpen(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: %s: %w", op, err)
	}
	if s.closed.Load() {
		return wrapErr(op, berrors.ErrDatabaseNotOpen)
	}
	return nil
}

// wrapErr adds the operation to err and classifies a closed database as
// [idm.ErrUnavailable].
func wrapErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return fmt.Errorf("boltstore: %s: %w: %w", op, idm.ErrUnavailable, err)
	default:
		return fmt.Errorf("boltstore: %s: %w", op, err)
	}
}

// stale returns an error of kind [idm.ErrStale] for an update of a record
// whose stored revision is not the given one.
func stale(what, id string, stored, given int64) error {
	return fmt.Errorf("%s %q has revision %d, not %d: %w", what, id, stored, given, idm.ErrStale)
}

// invalid returns an error of kind [idm.ErrInvalid] for a programming error
// of the caller, such as a record without an ID.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", idm.ErrInvalid, fmt.Sprintf(format, args...))
}

// Compact rewrites the database file at path into a fresh file holding only
// the live records, and puts it in place of the old one. bbolt reuses freed
// pages but never clears them, so bytes of deleted or overwritten records
// (such as erased personal data) stay in the file until it is compacted.
// The file must not be open (Compact takes its lock like [Open]).
func Compact(path string, opts ...Option) error {
	o := options{timeout: DefaultTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	src, err := bolt.Open(path, fileMode, &bolt.Options{Timeout: o.timeout, ReadOnly: true})
	if errors.Is(err, berrors.ErrTimeout) {
		return fmt.Errorf("boltstore: compact %s: %w (no lock within %v)", path, ErrLocked, o.timeout)
	}
	if err != nil {
		return fmt.Errorf("boltstore: compact %s: %w", path, err)
	}
	defer src.Close()
	tmp := path + ".compact"
	_ = os.Remove(tmp)
	dst, err := bolt.Open(tmp, fileMode, &bolt.Options{Timeout: o.timeout, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return fmt.Errorf("boltstore: compact %s: %w", path, err)
	}
	if err := bolt.Compact(dst, src, 64<<20); err != nil {
		_ = dst.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("boltstore: compact %s: %w", path, err)
	}
	if err := dst.Sync(); err != nil {
		_ = dst.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("boltstore: compact %s: %w", path, err)
	}
	if err := dst.Close(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("boltstore: compact %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("boltstore: compact %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
