// Package testmongo gives tests a real MongoDB-wire server without any setup
// step: an embedded FerretDB (SQLite storage in a temporary directory) that
// starts once per test binary, or the MongoDB named by $IDM_TEST_MONGO_URI.
//
// Typical use, in any package whose tests need MongoDB:
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		testmongo.Stop()
//		os.Exit(code)
//	}
//
//	func TestSomething(t *testing.T) {
//		client, db := testmongo.DB(t) // a fresh database, dropped at cleanup
//		store, err := mongostore.New(t.Context(), db)
//		...
//	}
//
// # FerretDB and concurrency
//
// FerretDB v1 does not make single-document updates atomic across
// connections: concurrent $inc or conditional updates sent over several
// connections lose updates, and concurrent upserts give spurious duplicate
// key errors. [Client] and [DB] therefore cap the connection pool at one
// connection when the server is FerretDB, which serialises the commands and
// restores single-document atomicity. Tests that exercise concurrency must
// share such a client (for example, an HTTP handler under test should use a
// store built on the client from [DB]), and tests of behaviour FerretDB lacks
// (transactions, TTL indexes) should call [IsFerretDB] and skip. Claims about
// concurrency across processes hold only on a real MongoDB.
//
// Other FerretDB v1 limits worth knowing: with SQLite storage only filters
// on _id alone use an index, so every other query scans its collection
// (benchmarks measure FerretDB, not the store); a unique-index violation
// caused by an update is error code 1 ("UNIQUE constraint failed"), not
// 11000; and one createIndexes command that names two or more existing
// indexes crashes the connection (create indexes one at a time).
//
// # A server of one's own
//
// [StartServer] starts a separate FerretDB that a test can stop and restart on
// the same address and data directory, to test what happens when the database
// goes away and comes back. It is always FerretDB, whatever
// $IDM_TEST_MONGO_URI says.
//
// # Environment
//
//   - IDM_TEST_MONGO_URI: use this MongoDB (or FerretDB) instead of the
//     embedded server, e.g. mongodb://127.0.0.1:27017/. Every [DB] call still
//     creates and drops its own database there.
//   - IDM_TEST_FERRETDB_LOG: when non-empty, embedded FerretDB servers log
//     warnings and errors to standard error.
package testmongo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// EnvURI is the environment variable that names a MongoDB server to use
// instead of the embedded FerretDB.
const EnvURI = "IDM_TEST_MONGO_URI"

// EnvLog is the environment variable that, when non-empty, makes embedded
// FerretDB servers log to standard error.
const EnvLog = "IDM_TEST_FERRETDB_LOG"

// The embedded server is shared by every test of one test binary, which is
// what makes package-level state unavoidable here: tests have no common
// object to hang it on. It is set once and torn down by Stop.
var shared struct {
	once sync.Once
	srv  *ferret
	err  error
	mu   sync.Mutex // guards stopped
	stop bool
}

// URI returns the MongoDB connection string for tests: $IDM_TEST_MONGO_URI if
// it is set, or else the address of an embedded FerretDB that is started on
// 127.0.0.1 by the first call in the test binary and shared by all later ones.
// It fails the test if the server cannot start. Call [Stop] from TestMain to
// shut the embedded server down and remove its data.
func URI(tb testing.TB) string {
	tb.Helper()
	if u := os.Getenv(EnvURI); u != "" {
		return u
	}
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "idm-ferretdb-")
		if err != nil {
			shared.err = err
			return
		}
		f, err := startFerret(dir, "127.0.0.1:0")
		if err != nil {
			_ = os.RemoveAll(dir)
			shared.err = err
			return
		}
		shared.srv = f
	})
	if shared.err != nil {
		tb.Fatalf("testmongo: embedded FerretDB: %v", shared.err)
	}
	shared.mu.Lock()
	stopped := shared.stop
	shared.mu.Unlock()
	if stopped {
		tb.Fatal("testmongo: URI called after Stop")
	}
	return shared.srv.uri
}

// Stop shuts down the embedded FerretDB, if one was started, and removes its
// data directory. Call it from TestMain after m.Run; it is safe to call when
// no server was started and more than once. Clients still connected to the
// server delay its shutdown by a few seconds, so tests should disconnect
// theirs (as [Client] and [DB] do at cleanup).
func Stop() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.stop || shared.srv == nil {
		shared.stop = true
		return
	}
	shared.stop = true
	shared.srv.stop()
	_ = os.RemoveAll(shared.srv.dir)
}

// IsFerretDB reports whether the server that c talks to is FerretDB (its
// buildInfo carries "ferretdbVersion"). It returns false when the server
// cannot be asked.
func IsFerretDB(ctx context.Context, c *mongo.Client) bool {
	var info bson.M
	if err := c.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return false
	}
	_, ok := info["ferretdbVersion"]
	return ok
}

// Client connects to uri and returns a client that is disconnected when the
// test ends. When the server is FerretDB the client's pool is capped at one
// connection, so that single-document updates are atomic (see the package
// documentation). Options in opts are applied after uri; the server-selection
// timeout defaults to 10 seconds so that a broken setup fails quickly. The
// test fails if the server does not answer a ping.
func Client(tb testing.TB, uri string, opts ...*options.ClientOptions) *mongo.Client {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	all := append([]*options.ClientOptions{
		options.Client().ApplyURI(uri).SetServerSelectionTimeout(10 * time.Second),
	}, opts...)
	c, err := mongo.Connect(all...)
	if err != nil {
		tb.Fatalf("testmongo: connect to %s: %v", uri, err)
	}
	if err := c.Ping(ctx, nil); err != nil {
		_ = c.Disconnect(ctx)
		tb.Fatalf("testmongo: ping %s: %v", uri, err)
	}
	if IsFerretDB(ctx, c) {
		if err := c.Disconnect(ctx); err != nil {
			tb.Fatalf("testmongo: disconnect: %v", err)
		}
		c, err = mongo.Connect(append(all, options.Client().SetMaxPoolSize(1))...)
		if err != nil {
			tb.Fatalf("testmongo: connect to %s: %v", uri, err)
		}
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Disconnect(ctx)
	})
	return c
}

// DB returns a client for [URI] (see [Client]: its pool is capped at one
// connection on FerretDB) and a fresh, empty database named by
// [NewDatabaseName]. At cleanup the database is dropped and the client
// disconnected. Tests that need several stores or handlers on one database
// should share the returned client and database.
func DB(tb testing.TB) (*mongo.Client, *mongo.Database) {
	tb.Helper()
	c := Client(tb, URI(tb))
	db := c.Database(NewDatabaseName(tb))
	// Registered after Client's cleanup, so it runs first (cleanups run last
	// in, first out) while the client is still connected.
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := db.Drop(ctx); err != nil {
			tb.Logf("testmongo: drop database %s: %v", db.Name(), err)
		}
	})
	return c, db
}

// NewDatabaseName returns a database name that no other test uses: "t_", the
// test's name reduced to at most 40 letters, digits and underscores, "_", and
// 8 random hex digits. It is valid on MongoDB and FerretDB (under 64 bytes,
// no special characters).
func NewDatabaseName(tb testing.TB) string {
	tb.Helper()
	var b strings.Builder
	for _, r := range tb.Name() {
		if b.Len() >= 40 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:]) // crypto/rand.Read never fails (Go 1.24+).
	return "t_" + b.String() + "_" + hex.EncodeToString(rnd[:])
}

// newMu serialises ferretdb.New, which writes a package-level variable of
// FerretDB's (its version information) and would race when two servers start
// at once.
var newMu sync.Mutex

// ferret is one running embedded FerretDB.
type ferret struct {
	dir  string
	uri  string // mongodb://host:port/
	addr string // host:port it listens on
	stop func() // stops the server and waits until it has stopped
}

// startFerret starts FerretDB with SQLite storage in dir, listening on addr.
func startFerret(dir, addr string) (*ferret, error) {
	// Silent by default: FerretDB warns about every connection a client drops.
	var w io.Writer = io.Discard
	if os.Getenv(EnvLog) != "" {
		w = os.Stderr
	}
	logger := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))

	newMu.Lock()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Handler:   "sqlite",
		SQLiteURL: "file:" + strings.TrimSuffix(dir, "/") + "/",
		Logger:    logger,
	})
	newMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("start FerretDB on %s in %s: %w", addr, dir, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(ctx)
	}()
	uri := f.MongoDBURI() // the listener is up once New has returned
	host := strings.TrimSuffix(strings.TrimPrefix(uri, "mongodb://"), "/")
	return &ferret{
		dir:  dir,
		uri:  uri,
		addr: host,
		stop: func() { cancel(); <-done },
	}, nil
}
