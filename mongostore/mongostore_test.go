package mongostore_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/storetest"
	"github.com/c3-pro/idm/internal/testmongo"
	"github.com/c3-pro/idm/mongostore"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testmongo.Stop()
	os.Exit(code)
}

// newStore returns a store on a fresh database of the test server, on the
// test client (one connection on FerretDB), closed at cleanup.
func newStore(tb testing.TB, opts ...mongostore.Option) *mongostore.Store {
	tb.Helper()
	_, db := testmongo.DB(tb)
	s, err := mongostore.New(tb.Context(), db, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) idm.Store { return newStore(t) })
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) idm.Store { return newStore(b) })
}

// closedAddr returns a loopback address on which nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// silentAddr returns a loopback address that accepts connections and never
// answers.
func silentAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

func TestOpen(t *testing.T) {
	admin := testmongo.Client(t, testmongo.URI(t))
	ctx := t.Context()

	t.Run("DatabaseFromURI", func(t *testing.T) {
		name := testmongo.NewDatabaseName(t)
		t.Cleanup(func() { _ = admin.Database(name).Drop(context.Background()) })
		u, err := url.Parse(testmongo.URI(t))
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/" + name
		s, err := mongostore.Open(ctx, u.String(), "")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if got := s.Database().Name(); got != name {
			t.Errorf("database = %q, want %q from the URI", got, name)
		}
		if err := s.CreateUser(ctx, idm.User{ID: idm.NewID(), Username: "a@example.org"}); err != nil {
			t.Fatal(err)
		}
		n, err := admin.Database(name).Collection("users").CountDocuments(ctx, bson.M{})
		if err != nil || n != 1 {
			t.Errorf("users in %s: %d, %v; want 1", name, n, err)
		}
	})

	t.Run("CloseDisconnectsOwnClient", func(t *testing.T) {
		name := testmongo.NewDatabaseName(t)
		t.Cleanup(func() { _ = admin.Database(name).Drop(context.Background()) })
		s, err := mongostore.Open(ctx, testmongo.URI(t), name)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		err = s.Ping(ctx)
		if !errors.Is(err, idm.ErrUnavailable) {
			t.Errorf("Ping after Close = %v, want ErrUnavailable", err)
		}
	})

	t.Run("WithClientKeepsClient", func(t *testing.T) {
		c, db := testmongo.DB(t)
		s, err := mongostore.Open(ctx, "", db.Name(), mongostore.WithClient(c))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CreateSubject(ctx, idm.Subject{ID: idm.NewID(), SSSID: "S-1"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.Ping(ctx, nil); err != nil {
			t.Errorf("the caller's client was disconnected by Close: %v", err)
		}
	})

	t.Run("NewKeepsClient", func(t *testing.T) {
		c, db := testmongo.DB(t)
		s, err := mongostore.New(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.Ping(ctx, nil); err != nil {
			t.Errorf("the caller's client was disconnected by Close: %v", err)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		c := testmongo.Client(t, testmongo.URI(t))
		for _, tc := range []struct {
			name, uri, db string
			opts          []mongostore.Option
		}{
			{"no URI", "", "idm", nil},
			{"URI and client", testmongo.URI(t), "idm", []mongostore.Option{mongostore.WithClient(c)}},
			{"client without database", "", "", []mongostore.Option{mongostore.WithClient(c)}},
			{"no database", "mongodb://127.0.0.1:1/", "", nil},
			{"not a MongoDB URI", "http://127.0.0.1/", "idm", nil},
			{"bad prefix", testmongo.URI(t), "idm", []mongostore.Option{mongostore.WithCollectionPrefix("a$b")}},
			{"prefix with space", testmongo.URI(t), "idm", []mongostore.Option{mongostore.WithCollectionPrefix("a b")}},
			{"system prefix", testmongo.URI(t), "idm", []mongostore.Option{mongostore.WithCollectionPrefix("system.")}},
			{"zero selection timeout", testmongo.URI(t), "idm", []mongostore.Option{mongostore.WithServerSelectionTimeout(0)}},
			{"negative timeout", testmongo.URI(t), "idm", []mongostore.Option{mongostore.WithTimeout(-time.Second)}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s, err := mongostore.Open(ctx, tc.uri, tc.db, tc.opts...)
				if err == nil {
					_ = s.Close()
					t.Fatal("Open succeeded")
				}
				if errors.Is(err, idm.ErrUnavailable) {
					t.Errorf("a configuration error reads as unavailable: %v", err)
				}
			})
		}
		if _, err := mongostore.New(ctx, nil); err == nil {
			t.Error("New(nil) succeeded")
		}
	})
}

func TestCollectionPrefix(t *testing.T) {
	ctx := t.Context()
	_, db := testmongo.DB(t)
	s, err := mongostore.New(ctx, db, mongostore.WithCollectionPrefix("idm_"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, idm.User{ID: idm.NewID(), Username: "a@example.org"}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkBootstrapped(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	names, err := db.ListCollectionNames(ctx, bson.M{})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	for _, n := range names {
		if !strings.HasPrefix(n, "idm_") {
			t.Errorf("collection %q lacks the prefix", n)
		}
	}
	for _, want := range []string{"idm_users", "idm_meta", "idm_subjects", "idm_links"} {
		if !slices.Contains(names, want) {
			t.Errorf("collections %v lack %s", names, want)
		}
	}
}

// TestReopen checks that index creation is idempotent and that a second
// store on the same database sees the data and keeps its constraints.
func TestReopen(t *testing.T) {
	ctx := t.Context()
	_, db := testmongo.DB(t)
	s1, err := mongostore.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	u := idm.User{ID: idm.NewID(), Username: "alice@example.org"}
	if err := s1.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	s2, err := mongostore.New(ctx, db)
	if err != nil {
		t.Fatalf("second New on the same database: %v", err)
	}
	if _, err := s2.FindUserByUsername(ctx, "alice@example.org"); err != nil {
		t.Error(err)
	}
	err = s2.CreateUser(ctx, idm.User{ID: idm.NewID(), Username: "alice@example.org"})
	if !errors.Is(err, idm.ErrConflict) {
		t.Errorf("duplicate through the second store = %v, want ErrConflict", err)
	}
}

// TestDuplicateThroughUpdate checks the translation of unique-index
// violations caused by updates and replacements, which FerretDB reports
// differently from inserts (not as a duplicate-key error).
func TestDuplicateThroughUpdate(t *testing.T) {
	ctx := t.Context()
	c, db := testmongo.DB(t)
	s, err := mongostore.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	alice := idm.User{ID: idm.NewID(), Username: "alice@example.org"}
	bob := idm.User{ID: idm.NewID(), Username: "bob@example.org"}
	for _, u := range []idm.User{alice, bob} {
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if testmongo.IsFerretDB(ctx, c) {
		// The raw driver error is the one the store must recognise.
		_, err := db.Collection("users").UpdateOne(ctx, bson.M{"_id": bob.ID}, bson.M{"$set": bson.M{"username_key": "alice@example.org"}})
		switch {
		case err == nil:
			t.Fatal("FerretDB accepted a duplicate username_key through an update")
		case mongo.IsDuplicateKeyError(err):
			t.Logf("FerretDB now reports a duplicate through an update as a duplicate key: %v", err)
		default:
			t.Logf("FerretDB reports a duplicate through an update as: %v", err)
		}
	}

	bob.Username, bob.Rev = "alice@example.org", 1
	err = s.UpdateUser(ctx, bob)
	if !errors.Is(err, idm.ErrConflict) || errors.Is(err, idm.ErrStale) {
		t.Errorf("UpdateUser to a taken username = %v, want ErrConflict (not stale)", err)
	}

	a := idm.Link{ID: idm.NewID(), SSSID: "S-1", JWT: "a", JWTHash: strings.Repeat("a", 64)}
	b := idm.Link{ID: idm.NewID(), SSSID: "S-1"}
	for _, l := range []idm.Link{a, b} {
		if err := s.CreateLink(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	b.JWT, b.JWTHash, b.Rev = "a", a.JWTHash, 1
	err = s.UpdateLink(ctx, b)
	if !errors.Is(err, idm.ErrConflict) || errors.Is(err, idm.ErrStale) {
		t.Errorf("UpdateLink to a taken JWT hash = %v, want ErrConflict (not stale)", err)
	}
	got, err := s.FindLink(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.JWTHash != "" {
		t.Errorf("refused update changed the link: hash %q", got.JWTHash)
	}
	// Links without a JWT do not collide on the sparse index.
	for range 3 {
		if err := s.CreateLink(ctx, idm.Link{ID: idm.NewID(), SSSID: "S-2"}); err != nil {
			t.Errorf("second link without JWT: %v", err)
		}
	}
}

// TestStoredFormat pins the shape of the stored documents, which other tools
// (migrations, backups) rely on.
func TestStoredFormat(t *testing.T) {
	ctx := t.Context()
	_, db := testmongo.DB(t)
	s, err := mongostore.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.FixedZone("x", 3600))
	u := idm.User{ID: idm.NewID(), Username: "Alice@Example.org", Created: at}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	sub := idm.Subject{ID: idm.NewID(), SSSID: "S-1", Extra: map[string]json.RawMessage{"a.b": json.RawMessage(`{"$x": [[1]]}`)}}
	if err := s.CreateSubject(ctx, sub); err != nil {
		t.Fatal(err)
	}
	l := idm.Link{ID: idm.NewID(), SSSID: "S-1"}
	if err := s.CreateLink(ctx, l); err != nil {
		t.Fatal(err)
	}

	raw := func(coll, id string) bson.M {
		t.Helper()
		var m bson.M
		if err := db.Collection(coll).FindOne(ctx, bson.M{"_id": id}).Decode(&m); err != nil {
			t.Fatalf("%s %s: %v", coll, id, err)
		}
		return m
	}
	user := raw("users", u.ID)
	if user["username"] != "Alice@Example.org" || user["username_key"] != "Alice@Example.org" {
		t.Errorf("user username fields = %q, %q", user["username"], user["username_key"])
	}
	if created, ok := user["created"].(bson.DateTime); !ok || created.Time().UnixMilli() != at.UnixMilli() {
		t.Errorf("user created = %#v, want the date %v", user["created"], at)
	}
	if _, ok := user["password_changed"]; ok {
		t.Error("a zero password_changed is stored")
	}
	subject := raw("subjects", sub.ID)
	if extra, ok := subject["extra"].(string); !ok || extra != `{"a.b":{"$x": [[1]]}}` {
		t.Errorf("subject extra = %#v, want one JSON string", subject["extra"])
	}
	if subject["email"] != "" {
		t.Errorf("empty email stored as %#v, want \"\"", subject["email"])
	}
	link := raw("links", l.ID)
	for _, f := range []string{"jwt_hash", "revoked", "linked_on"} {
		if _, ok := link[f]; ok {
			t.Errorf("link without %s stores it", f)
		}
	}
	if link["linked_to"] != "" {
		t.Errorf("link linked_to = %#v, want \"\"", link["linked_to"])
	}
	for coll, doc := range map[string]bson.M{"users": user, "subjects": subject, "links": link} {
		if rev, ok := doc["rev"].(int64); !ok || rev != 1 {
			t.Errorf("%s rev = %#v, want int64 1", coll, doc["rev"])
		}
	}
}

// TestDocumentsWithoutRev checks that documents without a "rev" field (or
// with a null one), as another tool may have written them, read back with
// Rev 0 and take part in revision checks from there.
func TestDocumentsWithoutRev(t *testing.T) {
	ctx := t.Context()
	_, db := testmongo.DB(t)
	s, err := mongostore.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	u := idm.User{ID: idm.NewID(), Username: "alice@example.org"}
	sub := idm.Subject{ID: idm.NewID(), SSSID: "S-1", Name: "Alice"}
	l := idm.Link{ID: idm.NewID(), SSSID: "S-1"}
	nullRev := idm.Link{ID: idm.NewID(), SSSID: "S-1"}
	if err := errors.Join(s.CreateUser(ctx, u), s.CreateSubject(ctx, sub), s.CreateLink(ctx, l), s.CreateLink(ctx, nullRev)); err != nil {
		t.Fatal(err)
	}
	for coll, id := range map[string]string{"users": u.ID, "subjects": sub.ID, "links": l.ID} {
		if _, err := db.Collection(coll).UpdateOne(ctx, bson.M{"_id": id}, bson.M{"$unset": bson.M{"rev": ""}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Collection("links").UpdateOne(ctx, bson.M{"_id": nullRev.ID}, bson.M{"$set": bson.M{"rev": nil}}); err != nil {
		t.Fatal(err)
	}
	if u, err = s.FindUserByID(ctx, u.ID); err != nil || u.Rev != 0 {
		t.Fatalf("user without rev: Rev %d, %v; want 0", u.Rev, err)
	}
	if sub, err = s.FindSubject(ctx, sub.SSSID); err != nil || sub.Rev != 0 {
		t.Fatalf("subject without rev: Rev %d, %v; want 0", sub.Rev, err)
	}
	for _, id := range []string{l.ID, nullRev.ID} {
		if got, err := s.FindLink(ctx, id); err != nil || got.Rev != 0 {
			t.Fatalf("link without rev: Rev %d, %v; want 0", got.Rev, err)
		}
	}
	for name, update := range map[string]func(rev int64) error{
		"user":    func(rev int64) error { u.Rev = rev; return s.UpdateUser(ctx, u) },
		"subject": func(rev int64) error { sub.Rev = rev; return s.UpdateSubject(ctx, sub) },
		"link":    func(rev int64) error { l.Rev = rev; return s.UpdateLink(ctx, l) },
		"null link": func(rev int64) error {
			nullRev.Rev = rev
			return s.UpdateLink(ctx, nullRev)
		},
	} {
		if err := update(1); !errors.Is(err, idm.ErrStale) {
			t.Errorf("%s: update from Rev 1 of a document without rev = %v, want ErrStale", name, err)
		}
		if err := update(0); err != nil {
			t.Errorf("%s: update from Rev 0: %v", name, err)
		}
		if err := update(0); !errors.Is(err, idm.ErrStale) {
			t.Errorf("%s: second update from Rev 0 = %v, want ErrStale", name, err)
		}
		if err := update(1); err != nil {
			t.Errorf("%s: update from Rev 1: %v", name, err)
		}
	}
	// EstablishLink's $inc starts a missing rev at 1.
	bare := idm.Link{ID: idm.NewID(), SSSID: "S-1"}
	if err := s.CreateLink(ctx, bare); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Collection("links").UpdateOne(ctx, bson.M{"_id": bare.ID}, bson.M{"$unset": bson.M{"rev": ""}}); err != nil {
		t.Fatal(err)
	}
	est, err := s.EstablishLink(ctx, bare.ID, "P-1", "", time.Now())
	if err != nil || est.Rev != 1 {
		t.Errorf("establishing a link without rev: Rev %d, %v; want 1", est.Rev, err)
	}
}

func TestExtraVerbatim(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	extra := map[string]json.RawMessage{
		"html":   json.RawMessage(`"<b>&amp;</b>"`),
		"spaced": json.RawMessage(`{ "a" : [ 1, 2 ] }`),
		"float":  json.RawMessage(`1.50`),
	}
	if err := s.CreateSubject(ctx, idm.Subject{ID: idm.NewID(), SSSID: "S-1", Extra: extra}); err != nil {
		t.Fatal(err)
	}
	got, err := s.FindSubject(ctx, "S-1")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range extra {
		if string(got.Extra[k]) != string(v) {
			t.Errorf("extra %q = %s, want %s byte for byte", k, got.Extra[k], v)
		}
	}
	err = s.CreateSubject(ctx, idm.Subject{ID: idm.NewID(), SSSID: "S-2", Extra: map[string]json.RawMessage{"bad": json.RawMessage(`{`)}})
	if !errors.Is(err, idm.ErrInvalid) {
		t.Errorf("invalid extra JSON = %v, want ErrInvalid", err)
	}
}

func TestUnavailable(t *testing.T) {
	const limit = 3 * time.Second // "within a couple of seconds", with slack for -race
	short := []mongostore.Option{mongostore.WithServerSelectionTimeout(500 * time.Millisecond)}

	t.Run("OpenClosedPort", func(t *testing.T) {
		start := time.Now()
		_, err := mongostore.Open(t.Context(), "mongodb://"+closedAddr(t)+"/", "idm", short...)
		checkUnavailable(t, err, time.Since(start), limit)
	})
	t.Run("OpenClosedPortDefaults", func(t *testing.T) {
		start := time.Now()
		_, err := mongostore.Open(t.Context(), "mongodb://"+closedAddr(t)+"/", "idm")
		checkUnavailable(t, err, time.Since(start), mongostore.DefaultServerSelectionTimeout+limit)
	})
	t.Run("OpenSilentServer", func(t *testing.T) {
		start := time.Now()
		_, err := mongostore.Open(t.Context(), "mongodb://"+silentAddr(t)+"/", "idm", short...)
		checkUnavailable(t, err, time.Since(start), limit)
	})
	t.Run("OperationTimeout", func(t *testing.T) {
		// With a generous server selection, the store's own bound ends the
		// call.
		start := time.Now()
		_, err := mongostore.Open(t.Context(), "mongodb://"+silentAddr(t)+"/", "idm",
			mongostore.WithServerSelectionTimeout(time.Minute), mongostore.WithTimeout(500*time.Millisecond))
		checkUnavailable(t, err, time.Since(start), limit)
	})
	t.Run("ContextDeadline", func(t *testing.T) {
		s := newStore(t)
		ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
		defer cancel()
		_, err := s.FindUserByID(ctx, idm.NewID())
		if !errors.Is(err, idm.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("call with an expired deadline = %v, want ErrUnavailable and DeadlineExceeded", err)
		}
	})
	t.Run("ContextCanceled", func(t *testing.T) {
		s := newStore(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := s.FindUserByID(ctx, idm.NewID())
		if !errors.Is(err, context.Canceled) || errors.Is(err, idm.ErrUnavailable) || errors.Is(err, idm.ErrNotFound) {
			t.Errorf("call with a cancelled context = %v, want context.Canceled only", err)
		}
	})

	t.Run("ServerStopsAndReturns", func(t *testing.T) {
		srv := testmongo.StartServer(t, "", "")
		ctx := t.Context()
		s, err := mongostore.Open(ctx, srv.URI()+"?maxPoolSize=1", "idm", short...)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		u := idm.User{ID: idm.NewID(), Username: "alice@example.org"}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}

		srv.Stop()
		calls := []struct {
			name string
			call func() error
		}{
			{"FindUserByID", func() error { _, err := s.FindUserByID(ctx, u.ID); return err }},
			{"CreateUser", func() error { return s.CreateUser(ctx, idm.User{ID: idm.NewID(), Username: "b@example.org"}) }},
			{"ListSubjects", func() error { _, _, err := s.ListSubjects(ctx, idm.SubjectFilter{}); return err }},
			{"EstablishLink", func() error { _, err := s.EstablishLink(ctx, idm.NewID(), "P-1", "", time.Now()); return err }},
			{"RecordLoginFailure", func() error {
				_, err := s.RecordLoginFailure(ctx, "k", time.Now(), time.Minute)
				return err
			}},
			{"PurgeLoginFailures", func() error { _, err := s.PurgeLoginFailures(ctx, time.Now()); return err }},
			{"Ping", func() error { return s.Ping(ctx) }},
		}
		for _, c := range calls {
			start := time.Now()
			err := c.call()
			checkUnavailable(t, err, time.Since(start), limit, c.name)
		}

		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			got, err := s.FindUserByID(ctx, u.ID)
			if err == nil {
				if got.Username != u.Username {
					t.Errorf("after restart: user %q, want %q", got.Username, u.Username)
				}
				break
			}
			if !errors.Is(err, idm.ErrUnavailable) {
				t.Fatalf("after restart: %v, want success or ErrUnavailable while reconnecting", err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("store did not recover after the server came back: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

func checkUnavailable(t *testing.T, err error, took, limit time.Duration, what ...string) {
	t.Helper()
	if !errors.Is(err, idm.ErrUnavailable) {
		t.Errorf("%v: error = %v, want one wrapping idm.ErrUnavailable", what, err)
	}
	if took > limit {
		t.Errorf("%v: failing took %v, want at most %v", what, took, limit)
	}
	if got := idm.StatusOf(err); err != nil && got != 503 {
		t.Errorf("%v: StatusOf = %d, want 503", what, got)
	}
}
