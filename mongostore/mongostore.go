// Package mongostore is an [idm.Store] on MongoDB (a standalone server, a
// replica set, or FerretDB v1), built on go.mongodb.org/mongo-driver/v2.
//
//	store, err := mongostore.Open(ctx, "mongodb://db.example:27017/?replicaSet=rs0", "idm")
//	if err != nil { ... }
//	defer store.Close()
//
// # Data model
//
// Each aggregate has its own collection (names may carry a prefix, see
// [WithCollectionPrefix]): users, subjects, links, audits, reset_tokens,
// console_sessions, keys, meta, login_windows and login_attempts. The documents are this package's own record
// types; their field names are part of the on-disk format. Open and [New]
// create the indexes they need, idempotently:
//
//   - users: unique on the username as given ("username_key");
//   - subjects: unique on "sssid", and ("site", "sssid") for the lists of
//     a user's sites;
//   - links: unique and sparse on "jwt_hash" (links without a JWT leave the
//     field out), and ("sssid", "created") for a subject's links;
//   - audits: ("document", "time"), ("time"), the actor fields, and unique
//     and sparse on "seq" (the audit log's order);
//   - audit_tree: the log's stored tree hashes by index as _id;
//     audit_checkpoints: signed checkpoints by tree size as _id;
//   - reset_tokens: keyed by the token hash as _id, plus ("user_id",
//     "created") and ("expires");
//   - console_sessions: staff console sessions, unique on "id_hash" (the
//     hash of the session ID), plus ("user_id"), ("expires") and
//     ("last_seen") for DeleteUserSessions and PurgeSessions;
//   - keys: keyed by name as _id; meta: the bootstrap marker document with
//     _id "bootstrap";
//   - login_windows: the windows of the login-failure counters, unique on
//     ("key", "n"), plus ("since"); login_attempts: the failures, one
//     document each, unique on ("window", "i") (see "Login failures").
//     Earlier versions kept one document per key in login_failures, which
//     is no longer read and may be dropped (counters then start afresh).
//
// # Consistency without transactions
//
// The store uses no multi-document transactions, no TTL indexes, no partial
// indexes and no collations, so it runs on a standalone server and on
// FerretDB. Every operation that must be atomic is a single-document
// operation: EstablishLink is one FindOneAndUpdate whose filter requires an
// unlinked, unrevoked link; ConsumeResetToken is one FindOneAndDelete whose
// filter requires an unexpired token; MarkBootstrapped inserts the one marker
// document, and a second insert fails on its _id; unique usernames and SSSIDs
// are unique indexes. Expired reset tokens are filtered out on read
// ("expires" > now) and deleted by PurgeExpiredResetTokens; likewise ended
// console sessions are told apart by their caller and deleted by
// PurgeSessions. TouchSession is one UpdateOne with $max, so "last_seen"
// never moves back. Writes use
// majority write concern with journaling.
//
// Users, subjects and links carry a revision (see [idm.Store],
// "Revisions") in the field "rev": an update is one conditional write whose
// filter requires the revision the caller read and which stores the next
// one, and when it matches nothing a second read tells a missing record
// (ErrNotFound) from a changed one (ErrStale). Documents without "rev" count
// as revision 0.
//
// The second factor's accepted step and recovery codes live in the user's
// document: AcceptTOTPStep is one UpdateOne whose filter requires an active
// second factor and a last accepted step below the new one, and
// ConsumeTOTPRecovery one UpdateOne whose filter requires the code's hash
// in the list, which it pulls; both raise "rev". Like revisions they are
// atomic across processes on MongoDB, and on FerretDB over one connection
// (see below).
//
// # Login failures
//
// The login-failure counters are written only by inserts (and by the
// purge's deletes), never by updates, because they must bound password
// checks across processes: on FerretDB a conditional update is atomic only
// among the requests of one connection, while a unique index holds across
// all connections, as on MongoDB. A key's counter is a chain of windows
// (login_windows, numbered n = 0, 1, 2, ... per key, unique on key and n);
// the one with the highest n is current. A caller that finds no window, or
// one that has ended or was cleared, starts the next by inserting n+1: one
// concurrent caller wins and the others use its window. A failure takes the
// next free place i of the current window by inserting {window, i} (unique):
// a reservation tries places count..max-1 and is refused when all are
// taken, so at most max attempts get a place per window whichever process
// they reach. Places are taken in order, so the highest place gives the
// count and the latest failure. A success or an unlock inserts a cleared
// window on top (deleting the places could let callers that had read the
// window take them again). The purge removes idle windows with their
// places; it removes a key's last windows only behind a tombstone window
// that callers wait for, so that nobody starts window n+1 on top of a
// removed window n while another starts the key afresh at window 0.
//
// On FerretDB, single-document updates are atomic only when they reach the
// server over one connection: give such a store a client whose pool is capped
// at one connection (maxPoolSize=1), as internal/testmongo does. Over a
// larger pool, concurrent conditional writes on FerretDB v1 can all match,
// so revision checks (and EstablishLink, AcceptTOTPStep and
// ConsumeTOTPRecovery) hold only on MongoDB itself.
//
// # Errors
//
// Errors are translated at the boundary: a missing document wraps
// [idm.ErrNotFound], a duplicate key [idm.ErrConflict], and a server that
// cannot be reached, or does not answer in time, [idm.ErrUnavailable]; every
// error also wraps the driver's error. With the default timeouts a call fails
// within about two seconds when the server is down (see
// [WithServerSelectionTimeout] and [WithTimeout]).
package mongostore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/c3-pro/idm/idm"
)

// Defaults of the options.
const (
	// DefaultServerSelectionTimeout is how long a call waits for a usable
	// server before it fails with [idm.ErrUnavailable], unless the URI sets
	// serverSelectionTimeoutMS or [WithServerSelectionTimeout] is given.
	DefaultServerSelectionTimeout = 2 * time.Second
	// DefaultTimeout bounds every call of the store (see [WithTimeout]).
	DefaultTimeout = 10 * time.Second
)

// Collection names, before the prefix.
const (
	collUsers    = "users"
	collSubjects = "subjects"
	collLinks    = "links"
	collAudits   = "audits"
	collResets   = "reset_tokens"
	collKeys     = "keys"
	collMeta     = "meta"
	collWindows  = "login_windows"
	collAttempts = "login_attempts"
	collTree     = "audit_tree"
	collChecks   = "audit_checkpoints"
	collSessions = "console_sessions"
)

// Store is an [idm.Store] on a MongoDB database. It is safe for concurrent
// use.
type Store struct {
	client  *mongo.Client
	owned   bool // Close disconnects the client
	db      *mongo.Database
	timeout time.Duration

	users, subjects, links, audits, resets, keys, meta *mongo.Collection
	windows, attempts, tree, checkpoints, sessions     *mongo.Collection

	closeOnce sync.Once
	closeErr  error

	// seqMu serialises this process's claims of audit seqs; seq is the
	// next one to try when seqKnown (see claimSeq).
	seqMu    sync.Mutex
	seq      int64
	seqKnown bool
}

var _ idm.Store = (*Store)(nil)

// Option configures [Open] or [New].
type Option func(*config)

type config struct {
	prefix    string
	client    *mongo.Client
	selection time.Duration
	selectSet bool // the selection timeout overrides the URI's
	timeout   time.Duration
}

// WithCollectionPrefix puts prefix in front of every collection name (for
// example "idm_" gives "idm_users"), so that the store can share a database
// with other data. The prefix may hold letters, digits, '_', '-' and '.',
// and may not start with "system.".
func WithCollectionPrefix(prefix string) Option {
	return func(c *config) { c.prefix = prefix }
}

// WithClient makes [Open] use c instead of connecting to a URI (the uri
// argument must then be empty). Close leaves such a client connected: its
// owner disconnects it. Tests on FerretDB use this to share a client whose
// pool is capped at one connection. [New] ignores this option.
func WithClient(c *mongo.Client) Option {
	return func(cfg *config) { cfg.client = c }
}

// WithServerSelectionTimeout sets how long a call waits for a usable server
// before it fails with [idm.ErrUnavailable]; it overrides the URI's
// serverSelectionTimeoutMS. The default is [DefaultServerSelectionTimeout].
// It applies only when [Open] connects the client itself.
func WithServerSelectionTimeout(d time.Duration) Option {
	return func(c *config) { c.selection, c.selectSet = d, true }
}

// WithTimeout bounds every call of the store, including the index creation
// of [Open] and [New]: a call that has not finished after d fails with
// [idm.ErrUnavailable]. A context with an earlier deadline still wins; 0
// means no bound besides the context. The default is [DefaultTimeout].
func WithTimeout(d time.Duration) Option {
	return func(c *config) { c.timeout = d }
}

var validPrefix = regexp.MustCompile(`^[A-Za-z0-9_.-]*$`)

func newConfig(opts []Option) (config, error) {
	cfg := config{selection: DefaultServerSelectionTimeout, timeout: DefaultTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	switch {
	case !validPrefix.MatchString(cfg.prefix):
		return cfg, fmt.Errorf("mongostore: invalid collection prefix %q: letters, digits, '_', '-' and '.' only", cfg.prefix)
	case strings.HasPrefix(cfg.prefix, "system."):
		return cfg, fmt.Errorf("mongostore: invalid collection prefix %q: system collections are reserved", cfg.prefix)
	case cfg.selection <= 0:
		return cfg, fmt.Errorf("mongostore: server selection timeout must be positive, not %v", cfg.selection)
	case cfg.timeout < 0:
		return cfg, fmt.Errorf("mongostore: timeout must not be negative, not %v", cfg.timeout)
	}
	return cfg, nil
}

// Open connects to the MongoDB server at uri, checks that it answers, and
// returns a store on database dbName ("" for the database named in uri's
// path), creating its indexes. With [WithClient] it uses the given client
// and uri must be empty. Unless the URI or an option says otherwise, a call
// waits at most [DefaultServerSelectionTimeout] for a usable server and runs
// at most [DefaultTimeout]. A server that cannot be reached gives an error
// that wraps [idm.ErrUnavailable]. Close disconnects the client that Open
// connected.
func Open(ctx context.Context, uri, dbName string, opts ...Option) (*Store, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	client := cfg.client
	owned := client == nil
	switch {
	case !owned && uri != "":
		return nil, errors.New("mongostore: Open with WithClient takes no URI")
	case owned && uri == "":
		return nil, errors.New("mongostore: no MongoDB URI")
	}
	if dbName == "" && owned {
		cs, err := connstring.ParseAndValidate(uri)
		if err != nil {
			return nil, fmt.Errorf("mongostore: invalid MongoDB URI: %w", err)
		}
		dbName = cs.Database
	}
	if dbName == "" {
		return nil, errors.New("mongostore: no database name (neither given nor in the URI)")
	}
	if owned {
		co := options.Client().ApplyURI(uri)
		if co.ServerSelectionTimeout == nil || cfg.selectSet {
			co.SetServerSelectionTimeout(cfg.selection)
		}
		client, err = mongo.Connect(co)
		if err != nil {
			return nil, fmt.Errorf("mongostore: connect: %w", err)
		}
	}
	s := newStore(client.Database(dbName), cfg)
	err = s.Ping(ctx)
	if err == nil {
		err = s.ensureIndexes(ctx)
	}
	if err == nil {
		err = s.numberAudits(ctx)
	}
	if err != nil {
		if owned {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = client.Disconnect(dctx)
		}
		return nil, err
	}
	s.owned = owned
	return s, nil
}

// New returns a store on db, an existing database of a connected client, and
// creates the store's indexes. The client stays the caller's: Close does not
// disconnect it. Options that configure a connection ([WithClient],
// [WithServerSelectionTimeout]) have no effect here.
func New(ctx context.Context, db *mongo.Database, opts ...Option) (*Store, error) {
	if db == nil {
		return nil, errors.New("mongostore: nil database")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	s := newStore(db, cfg)
	if err := s.ensureIndexes(ctx); err != nil {
		return nil, err
	}
	if err := s.numberAudits(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func newStore(db *mongo.Database, cfg config) *Store {
	journal := true
	wc := options.Collection().SetWriteConcern(&writeconcern.WriteConcern{W: "majority", Journal: &journal})
	coll := func(name string) *mongo.Collection { return db.Collection(cfg.prefix+name, wc) }
	s := &Store{
		client:      db.Client(),
		db:          db,
		timeout:     cfg.timeout,
		users:       coll(collUsers),
		subjects:    coll(collSubjects),
		links:       coll(collLinks),
		audits:      coll(collAudits),
		resets:      coll(collResets),
		keys:        coll(collKeys),
		meta:        coll(collMeta),
		windows:     coll(collWindows),
		attempts:    coll(collAttempts),
		tree:        coll(collTree),
		checkpoints: coll(collChecks),
		sessions:    coll(collSessions),
	}
	return s
}

// index returns an index model over keys (alternating names and 1/-1).
func index(name string, unique, sparse bool, keys ...any) mongo.IndexModel {
	var d bson.D
	for i := 0; i+1 < len(keys); i += 2 {
		d = append(d, bson.E{Key: keys[i].(string), Value: keys[i+1]})
	}
	o := options.Index().SetName(name)
	if unique {
		o.SetUnique(true)
	}
	if sparse {
		o.SetSparse(true)
	}
	return mongo.IndexModel{Keys: d, Options: o}
}

// ensureIndexes creates the store's indexes; creating an existing index
// again is a no-op.
func (s *Store) ensureIndexes(ctx context.Context) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	for _, ix := range []struct {
		coll   *mongo.Collection
		models []mongo.IndexModel
	}{
		{s.users, []mongo.IndexModel{
			index("username_key_unique", true, false, "username_key", 1),
		}},
		{s.subjects, []mongo.IndexModel{
			index("sssid_unique", true, false, "sssid", 1),
			// Site-filtered lists (a user's sites), in SSSID order.
			index("site_sssid", false, false, "site", 1, "sssid", 1),
		}},
		{s.links, []mongo.IndexModel{
			// Sparse: links without a minted JWT have no jwt_hash.
			index("jwt_hash_unique", true, true, "jwt_hash", 1),
			index("sssid_created", false, false, "sssid", 1, "created", 1, "_id", 1),
		}},
		{s.audits, []mongo.IndexModel{
			index("document_time", false, false, "document", 1, "time", 1, "_id", 1),
			index("time", false, false, "time", 1, "_id", 1),
			index("actor_id", false, false, "actor_id", 1),
			index("actor", false, false, "actor", 1),
			// An actor's records in time order (GET /audit?actor=...):
			// each branch of the $or on actor_id and actor reads its
			// records already sorted, so the server merges them instead of
			// sorting all of an actor's records for every page.
			index("actor_id_time", false, false, "actor_id", 1, "time", 1, "_id", 1),
			index("actor_time", false, false, "actor", 1, "time", 1, "_id", 1),
			// Sparse: records written before the audit log have no seq
			// until numberAudits gives them one.
			index("seq_unique", true, true, "seq", 1),
		}},
		{s.resets, []mongo.IndexModel{
			index("user_id_created", false, false, "user_id", 1, "created", 1),
			index("expires", false, false, "expires", 1),
		}},
		{s.windows, []mongo.IndexModel{
			index("key_n_unique", true, false, "key", 1, "n", 1),
			index("since", false, false, "since", 1),
		}},
		{s.attempts, []mongo.IndexModel{
			index("window_i_unique", true, false, "window", 1, "i", 1),
		}},
		{s.sessions, []mongo.IndexModel{
			index("id_hash_unique", true, false, "id_hash", 1),
			index("user_id", false, false, "user_id", 1),
			// For PurgeSessions; expiry is checked by the caller, not
			// by a TTL index (see "Consistency without transactions").
			index("expires", false, false, "expires", 1),
			index("last_seen", false, false, "last_seen", 1),
		}},
	} {
		// One index per command: FerretDB v1 panics (and drops the
		// connection) when one createIndexes command names two or more
		// indexes that all exist already.
		for _, m := range ix.models {
			if _, err := ix.coll.Indexes().CreateOne(ctx, m); err != nil {
				return translate("create indexes on "+ix.coll.Name(), err)
			}
		}
	}
	return nil
}

// op bounds a call by the store's timeout.
func (s *Store) op(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.timeout)
}

// Database returns the database the store keeps its collections in.
func (s *Store) Database() *mongo.Database { return s.db }

// Ping reports whether the server answers; an unreachable server gives an
// error that wraps [idm.ErrUnavailable].
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	return translate("ping", s.client.Ping(ctx, readpref.Primary()))
}

// Close disconnects the client if [Open] connected it, and does nothing
// otherwise. Calling it again is harmless. The store must not be used after
// Close.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if !s.owned {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.client.Disconnect(ctx); err != nil {
			s.closeErr = fmt.Errorf("mongostore: disconnect: %w", err)
		}
	})
	return s.closeErr
}
