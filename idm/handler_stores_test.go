package idm_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/c3-pro/idm/boltstore"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
	"github.com/c3-pro/idm/internal/testmongo"
	"github.com/c3-pro/idm/mongostore"
)

// TestMain stops the embedded FerretDB that the mongostore subtests start.
func TestMain(m *testing.M) {
	code := m.Run()
	testmongo.Stop()
	os.Exit(code)
}

// newStoreFunc makes a fresh, empty store for one test; the store is closed
// (and its data removed) when that test ends.
type newStoreFunc func(t testing.TB) idm.Store

// storeKind is a store implementation the handler tests run on.
type storeKind struct {
	name string
	// setup prepares what the kind's stores share for the duration of t
	// (the MongoDB client) and returns the function that makes them.
	setup func(t testing.TB) newStoreFunc
}

// storeKinds returns the stores the handler tests run on: memstore,
// boltstore (a file in the test's t.TempDir) and mongostore on a real
// MongoDB-wire server (the embedded FerretDB of internal/testmongo, or
// $IDM_TEST_MONGO_URI), a fresh database per store.
func storeKinds() []storeKind {
	return []storeKind{
		{name: "memstore", setup: func(testing.TB) newStoreFunc {
			return func(testing.TB) idm.Store { return memstore.New() }
		}},
		{name: "boltstore", setup: func(testing.TB) newStoreFunc { return newBoltStore }},
		{name: "mongostore", setup: func(t testing.TB) newStoreFunc {
			// One client for all the kind's stores: connecting costs more
			// than a test case, and on FerretDB its single connection is
			// what makes single-document updates atomic.
			client := testmongo.Client(t, testmongo.URI(t))
			return func(t testing.TB) idm.Store { return newMongoStore(t, client) }
		}},
	}
}

// onEachStore runs fn as a subtest per store kind (named memstore,
// boltstore, mongostore), with the kind's store maker.
func onEachStore(t *testing.T, fn func(t *testing.T, newStore newStoreFunc)) {
	t.Helper()
	for _, k := range storeKinds() {
		t.Run(k.name, func(t *testing.T) { fn(t, k.setup(t)) })
	}
}

// newBoltStore opens a boltstore in a file of t.TempDir().
func newBoltStore(t testing.TB) idm.Store {
	t.Helper()
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "idm.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close boltstore: %v", err)
		}
	})
	return s
}

// newMongoStore returns a mongostore on a fresh database of client's
// server, dropped when t ends.
func newMongoStore(t testing.TB, client *mongo.Client) idm.Store {
	t.Helper()
	db := client.Database(testmongo.NewDatabaseName(t))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := db.Drop(ctx); err != nil {
			t.Logf("drop database %s: %v", db.Name(), err)
		}
	})
	s, err := mongostore.New(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close mongostore: %v", err)
		}
	})
	return s
}
