package testmongo_test

import (
	"context"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/c3-pro/idm/internal/testmongo"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testmongo.Stop()
	os.Exit(code)
}

func TestURI(t *testing.T) {
	uri := testmongo.URI(t)
	if !strings.HasPrefix(uri, "mongodb://") && !strings.HasPrefix(uri, "mongodb+srv://") {
		t.Fatalf("URI() = %q, want a mongodb:// URI", uri)
	}
	if again := testmongo.URI(t); again != uri {
		t.Errorf("second URI() = %q, want the same server %q", again, uri)
	}
}

func TestIsFerretDB(t *testing.T) {
	if os.Getenv(testmongo.EnvURI) != "" {
		t.Skip("the server is " + testmongo.EnvURI + ", not necessarily FerretDB")
	}
	c := testmongo.Client(t, testmongo.URI(t))
	if !testmongo.IsFerretDB(t.Context(), c) {
		t.Error("IsFerretDB = false for the embedded server")
	}
}

func TestIsFerretDBUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	c, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + addr + "/").SetServerSelectionTimeout(200 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Disconnect(context.Background()) }()
	if testmongo.IsFerretDB(t.Context(), c) {
		t.Error("IsFerretDB = true for a closed port")
	}
}

func TestDB(t *testing.T) {
	var name string
	t.Run("Use", func(t *testing.T) {
		_, db := testmongo.DB(t)
		name = db.Name()
		coll := db.Collection("things")
		if _, err := coll.InsertOne(t.Context(), bson.D{{Key: "_id", Value: "a"}, {Key: "n", Value: 1}}); err != nil {
			t.Fatal(err)
		}
		n, err := coll.CountDocuments(t.Context(), bson.D{})
		if err != nil || n != 1 {
			t.Fatalf("CountDocuments = %d, %v; want 1", n, err)
		}
	})
	t.Run("Fresh", func(t *testing.T) {
		_, db := testmongo.DB(t)
		if db.Name() == name {
			t.Fatalf("two DB calls gave the same database %q", name)
		}
		names, err := db.ListCollectionNames(t.Context(), bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		if len(names) != 0 {
			t.Errorf("fresh database has collections %v", names)
		}
	})
	t.Run("DroppedAtCleanup", func(t *testing.T) {
		c := testmongo.Client(t, testmongo.URI(t))
		names, err := c.ListDatabaseNames(t.Context(), bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(names, name) {
			t.Errorf("database %q still exists after its test ended", name)
		}
	})
}

// TestDBAtomicUpdates checks that the client from DB serialises updates, so
// that concurrent single-document updates are atomic even on FerretDB.
func TestDBAtomicUpdates(t *testing.T) {
	_, db := testmongo.DB(t)
	coll := db.Collection("counters")
	ctx := t.Context()
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "c"}, {Key: "n", Value: 0}}); err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for range workers {
		wg.Go(func() {
			for range each {
				_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: "c"}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var doc struct {
		N int `bson:"n"`
	}
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: "c"}}).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.N != workers*each {
		t.Errorf("counter = %d after %d concurrent increments", doc.N, workers*each)
	}
}

func TestNewDatabaseName(t *testing.T) {
	valid := regexp.MustCompile(`^t_[A-Za-z0-9_]{1,40}_[0-9a-f]{8}$`)
	for _, name := range []string{
		"plain",
		"with spaces/and.dots$and*stars",
		strings.Repeat("long", 30),
		"ünïcödé",
	} {
		t.Run(name, func(t *testing.T) {
			a, b := testmongo.NewDatabaseName(t), testmongo.NewDatabaseName(t)
			if !valid.MatchString(a) {
				t.Errorf("NewDatabaseName = %q, want it to match %s", a, valid)
			}
			if len(a) >= 64 {
				t.Errorf("NewDatabaseName = %q is %d bytes, want < 64", a, len(a))
			}
			if a == b {
				t.Errorf("two calls gave the same name %q", a)
			}
		})
	}
}

func TestServerStopStart(t *testing.T) {
	dir := t.TempDir()
	srv := testmongo.StartServer(t, dir, "")
	addr := srv.Addr()
	if srv.Dir() != dir {
		t.Errorf("Dir() = %q, want %q", srv.Dir(), dir)
	}
	c := testmongo.Client(t, srv.URI(), options.Client().SetServerSelectionTimeout(time.Second))
	coll := c.Database("keep").Collection("docs")
	ctx := t.Context()
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "x"}}); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	if srv.Running() {
		t.Error("Running() = true after Stop")
	}
	start := time.Now()
	_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "y"}})
	if err == nil {
		t.Fatal("InsertOne on a stopped server succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("InsertOne on a stopped server took %v", d)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("a stopped server accepts connections")
	}
	srv.Stop() // idempotent

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if srv.Addr() != addr {
		t.Errorf("address after restart = %s, want %s", srv.Addr(), addr)
	}
	if err := srv.Start(); err != nil { // no-op while running
		t.Fatal(err)
	}
	// The same client reconnects by itself and finds the data kept.
	var n int64
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err = coll.CountDocuments(ctx, bson.D{{Key: "_id", Value: "x"}})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || n != 1 {
		t.Fatalf("after restart CountDocuments = %d, %v; want 1", n, err)
	}
}

func TestServerFixedAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	srv := testmongo.StartServer(t, "", addr)
	if srv.Addr() != addr {
		t.Fatalf("Addr() = %s, want %s", srv.Addr(), addr)
	}
	c := testmongo.Client(t, srv.URI())
	if !testmongo.IsFerretDB(t.Context(), c) {
		t.Error("IsFerretDB = false for StartServer's server")
	}
}

func TestTwoServers(t *testing.T) {
	srvs := []*testmongo.Server{testmongo.StartServer(t, "", ""), testmongo.StartServer(t, "", "")}
	if srvs[0].Addr() == srvs[1].Addr() {
		t.Fatalf("two servers on one address %s", srvs[0].Addr())
	}
	for _, s := range srvs {
		if err := testmongo.Client(t, s.URI()).Ping(t.Context(), nil); err != nil {
			t.Error(err)
		}
	}
}
