package auditlog_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/c3-pro/idm/auditlog"
	"github.com/c3-pro/idm/boltstore"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
	"github.com/c3-pro/idm/internal/testmongo"
	"github.com/c3-pro/idm/mongostore"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testmongo.Stop()
	os.Exit(code)
}

var t0 = time.Date(2026, time.November, 30, 9, 0, 0, 0, time.UTC)

// fixture is a store of one kind, with raw access for tampering.
type fixture struct {
	store idm.Store
	// reopen closes the store, runs edit on its raw data (nil: none), and
	// opens it again; tamperers use it.
	reopen func(t *testing.T, edit func()) idm.Store
	bolt   string          // the bbolt file, for boltstore
	mongo  *mongo.Database // the database, for mongostore
	audits *mongo.Collection
}

type storeKind struct {
	name string
	new  func(t *testing.T) *fixture
}

func kinds() []storeKind {
	return []storeKind{
		{"memstore", func(t *testing.T) *fixture {
			s := memstore.New()
			return &fixture{store: s, reopen: func(t *testing.T, edit func()) idm.Store {
				require.Nil(t, edit, "memstore has no raw data")
				return s
			}}
		}},
		{"boltstore", func(t *testing.T) *fixture {
			path := filepath.Join(t.TempDir(), "idm.db")
			f := &fixture{bolt: path}
			open := func() idm.Store {
				s, err := boltstore.Open(path)
				require.NoError(t, err)
				t.Cleanup(func() { _ = s.Close() })
				return s
			}
			f.store = open()
			f.reopen = func(t *testing.T, edit func()) idm.Store {
				require.NoError(t, f.store.Close())
				if edit != nil {
					edit()
				}
				f.store = open()
				return f.store
			}
			return f
		}},
		{"mongostore", func(t *testing.T) *fixture {
			client := testmongo.Client(t, testmongo.URI(t))
			db := client.Database(testmongo.NewDatabaseName(t))
			t.Cleanup(func() { _ = db.Drop(context.Background()) })
			s, err := mongostore.New(t.Context(), db)
			require.NoError(t, err)
			f := &fixture{store: s, mongo: db, audits: db.Collection("audits")}
			f.reopen = func(t *testing.T, edit func()) idm.Store {
				if edit != nil {
					edit()
				}
				return f.store
			}
			return f
		}},
	}
}

func onEachStore(t *testing.T, fn func(t *testing.T, k storeKind)) {
	for _, k := range kinds() {
		t.Run(k.name, func(t *testing.T) { fn(t, k) })
	}
}

// clock is a settable clock.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func newLog(t *testing.T, s idm.Store, c *clock) *auditlog.Log {
	t.Helper()
	key, err := auditlog.LoadOrCreateKey(t.Context(), s, t0)
	require.NoError(t, err)
	l, err := auditlog.New(auditlog.Config{Store: s, Key: key, Now: c.Now, Authenticate: asAdmin})
	require.NoError(t, err)
	return l
}

// asAdmin authenticates every request as an admin, or as a non-admin with
// the header X-Role: staff, or not at all with X-Role: none.
func asAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("X-Role") {
		case "none":
		case "staff":
			r = r.WithContext(idm.WithPrincipal(r.Context(), &idm.Principal{UserID: idm.NewID(), Username: "staff@example.org"}))
		default:
			r = r.WithContext(idm.WithPrincipal(r.Context(), &idm.Principal{UserID: idm.NewID(), Username: "admin@example.org", Admin: true}))
		}
		next.ServeHTTP(w, r)
	})
}

// appendN appends n records about doc (actions "a<i>").
func appendN(t *testing.T, s idm.Store, c *clock, doc string, n int) {
	t.Helper()
	for i := range n {
		c.now = c.now.Add(time.Second)
		require.NoError(t, s.AppendAudit(t.Context(), idm.AuditEvent{
			ID: idm.NewID(), Time: c.now, Document: doc, DocType: idm.DocSubject,
			ActorID: "aaaaaaaaaaaaaaaaaaaaaaa1", Actor: "alice@example.org", Action: fmt.Sprintf("a%d", i),
			New: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)),
		}))
	}
}

// seeded is a log of 50 records with checkpoints at 40 and 50.
func seeded(t *testing.T, s idm.Store) (*auditlog.Log, *clock) {
	t.Helper()
	c := &clock{now: t0}
	l := newLog(t, s, c)
	appendN(t, s, c, "doc-1", 40)
	cp, err := l.Checkpoint(t.Context())
	require.NoError(t, err)
	require.Equal(t, int64(40), cp.Size)
	appendN(t, s, c, "doc-2", 10)
	cp, err = l.Checkpoint(t.Context())
	require.NoError(t, err)
	require.Equal(t, int64(50), cp.Size)
	return l, c
}

func TestVerifyPassesOnAnUntouchedLog(t *testing.T) {
	onEachStore(t, func(t *testing.T, k storeKind) {
		f := k.new(t)
		l, c := seeded(t, f.store)
		appendN(t, f.store, c, "doc-3", 3) // not yet in the tree: fine
		var calls int
		rep, err := auditlog.Verify(t.Context(), f.store, l.VerifierKey(), func(done, total int64) { calls++ })
		require.NoError(t, err)
		assert.Equal(t, int64(53), rep.Records)
		assert.Equal(t, 2, rep.Checkpoints)
		assert.Positive(t, calls)
		assert.Contains(t, rep.String(), "ok: 53 records, 2 checkpoints, root ")
	})
}

// TestTamperingIsNamed: changing one byte of a record, deleting one,
// swapping two or inserting one makes Verify fail naming that record.
func TestTamperingIsNamed(t *testing.T) {
	for _, k := range kinds()[1:] {
		t.Run(k.name, func(t *testing.T) {
			for _, tc := range []struct {
				name string
				seq  int64
				edit func(t *testing.T, f *fixture)
			}{
				{"one byte of a record's action", 17, func(t *testing.T, f *fixture) { flipAction(t, f, 17) }},
				{"one byte of a record after the last checkpoint", 45, func(t *testing.T, f *fixture) { flipAction(t, f, 45) }},
				{"a byte that breaks the record's encoding", 8, func(t *testing.T, f *fixture) { breakRecord(t, f, 8) }},
				{"a record removed", 23, func(t *testing.T, f *fixture) { deleteRecord(t, f, 23) }},
				{"two records swapped", 30, func(t *testing.T, f *fixture) { swapRecords(t, f, 30, 31) }},
				{"a record inserted", 12, func(t *testing.T, f *fixture) { insertRecord(t, f, 12) }},
			} {
				t.Run(tc.name, func(t *testing.T) {
					f := k.new(t)
					l, _ := seeded(t, f.store)
					s := f.reopen(t, func() { tc.edit(t, f) })
					_, err := auditlog.Verify(t.Context(), s, l.VerifierKey(), nil)
					var ve *auditlog.Error
					require.ErrorAs(t, err, &ve, "%v", err)
					assert.Equal(t, tc.seq, ve.Seq, "%v", err)
					t.Logf("verify: %v", err)
				})
			}
			t.Run("a record hidden beside the log", func(t *testing.T) {
				f := k.new(t)
				l, _ := seeded(t, f.store)
				id := idm.NewID()
				s := f.reopen(t, func() { hideRecord(t, f, id) })
				_, err := auditlog.Verify(t.Context(), s, l.VerifierKey(), nil)
				var ve *auditlog.Error
				require.ErrorAs(t, err, &ve)
				assert.Contains(t, err.Error(), id)
			})
		})
	}
}

// boltEdit runs fn in a read-write transaction on the fixture's bbolt file.
func boltEdit(t *testing.T, f *fixture, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(f.bolt, 0o600, nil)
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.Update(fn))
}

func seqKey(n int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)) }

func flipAction(t *testing.T, f *fixture, seq int64) {
	if f.bolt != "" {
		boltEdit(t, f, func(tx *bolt.Tx) error {
			key := tx.Bucket([]byte("audits_by_seq")).Get(seqKey(seq))
			b := tx.Bucket([]byte("audits"))
			v := append([]byte(nil), b.Get(key)...)
			i := strings.Index(string(v), `"action":"a`) + len(`"action":"`)
			v[i] ^= 0x02 // "a" becomes "c"
			return b.Put(key, v)
		})
		return
	}
	_, err := f.audits.UpdateOne(context.Background(), bson.M{"seq": seq}, bson.M{"$set": bson.M{"action": "c" + fmt.Sprint(seq)}})
	require.NoError(t, err)
}

func breakRecord(t *testing.T, f *fixture, seq int64) {
	if f.bolt != "" {
		boltEdit(t, f, func(tx *bolt.Tx) error {
			key := tx.Bucket([]byte("audits_by_seq")).Get(seqKey(seq))
			b := tx.Bucket([]byte("audits"))
			v := append([]byte(nil), b.Get(key)...)
			v[0] ^= 0x01 // "{" becomes "z"
			return b.Put(key, v)
		})
		return
	}
	_, err := f.audits.UpdateOne(context.Background(), bson.M{"seq": seq}, bson.M{"$set": bson.M{"time": "not a time"}})
	require.NoError(t, err)
}

func deleteRecord(t *testing.T, f *fixture, seq int64) {
	if f.bolt != "" {
		boltEdit(t, f, func(tx *bolt.Tx) error {
			key := tx.Bucket([]byte("audits_by_seq")).Get(seqKey(seq))
			return tx.Bucket([]byte("audits")).Delete(key)
		})
		return
	}
	_, err := f.audits.DeleteOne(context.Background(), bson.M{"seq": seq})
	require.NoError(t, err)
}

func swapRecords(t *testing.T, f *fixture, a, b int64) {
	if f.bolt != "" {
		boltEdit(t, f, func(tx *bolt.Tx) error {
			bySeq, audits := tx.Bucket([]byte("audits_by_seq")), tx.Bucket([]byte("audits"))
			ka, kb := bySeq.Get(seqKey(a)), bySeq.Get(seqKey(b))
			va, vb := append([]byte(nil), audits.Get(ka)...), append([]byte(nil), audits.Get(kb)...)
			if err := audits.Put(ka, vb); err != nil {
				return err
			}
			return audits.Put(kb, va)
		})
		return
	}
	ctx := context.Background()
	for _, step := range [][2]int64{{a, -1}, {b, a}, {-1, b}} {
		_, err := f.audits.UpdateOne(ctx, bson.M{"seq": step[0]}, bson.M{"$set": bson.M{"seq": step[1]}})
		require.NoError(t, err)
	}
}

// insertRecord puts a new record at seq, moving the later ones up by one.
func insertRecord(t *testing.T, f *fixture, seq int64) {
	if f.bolt != "" {
		boltEdit(t, f, func(tx *bolt.Tx) error {
			bySeq, audits := tx.Bucket([]byte("audits_by_seq")), tx.Bucket([]byte("audits"))
			n := int64(bySeq.Sequence())
			for s := n - 1; s >= seq; s-- {
				key := append([]byte(nil), bySeq.Get(seqKey(s))...)
				var m map[string]any
				if err := json.Unmarshal(audits.Get(key), &m); err != nil {
					return err
				}
				m["seq"] = s + 1
				v, _ := json.Marshal(m)
				if err := audits.Put(key, v); err != nil {
					return err
				}
				if err := bySeq.Put(seqKey(s+1), key); err != nil {
					return err
				}
			}
			id := idm.NewID()
			key := append(binary.BigEndian.AppendUint64(nil, uint64(t0.UnixMilli())^(1<<63)), id...)
			v, _ := json.Marshal(map[string]any{"seq": seq, "id": id, "action": "a forged record", "old": nil, "new": nil})
			if err := audits.Put(key, v); err != nil {
				return err
			}
			if err := bySeq.Put(seqKey(seq), key); err != nil {
				return err
			}
			return bySeq.SetSequence(uint64(n + 1))
		})
		return
	}
	ctx := context.Background()
	cur, err := f.audits.Find(ctx, bson.M{"seq": bson.M{"$gte": seq}}, options.Find().SetSort(bson.D{{Key: "seq", Value: -1}}))
	require.NoError(t, err)
	var docs []struct {
		ID  string `bson:"_id"`
		Seq int64  `bson:"seq"`
	}
	require.NoError(t, cur.All(ctx, &docs))
	for _, d := range docs {
		_, err := f.audits.UpdateOne(ctx, bson.M{"_id": d.ID}, bson.M{"$set": bson.M{"seq": d.Seq + 1}})
		require.NoError(t, err)
	}
	_, err = f.audits.InsertOne(ctx, bson.M{"_id": idm.NewID(), "seq": seq, "time": t0, "document": "doc-1", "doc_type": "subject",
		"actor_id": "", "actor": "", "action": "a forged record"})
	require.NoError(t, err)
}

// hideRecord adds a record that the trails list but that has no seq.
func hideRecord(t *testing.T, f *fixture, id string) {
	if f.bolt != "" {
		boltEdit(t, f, func(tx *bolt.Tx) error {
			key := append(binary.BigEndian.AppendUint64(nil, uint64(t0.UnixMilli())^(1<<63)), id...)
			v, _ := json.Marshal(map[string]any{"id": id, "action": "hidden", "old": nil, "new": nil})
			return tx.Bucket([]byte("audits")).Put(key, v)
		})
		return
	}
	_, err := f.audits.InsertOne(context.Background(), bson.M{"_id": id, "time": t0, "document": "doc-1", "doc_type": "subject",
		"actor_id": "", "actor": "", "action": "hidden"})
	require.NoError(t, err)
}

// TestCheckpointSignedByAnotherKeyIsRefused: a checkpoint in the store
// whose signature is not the log's makes Verify fail naming it.
func TestCheckpointSignedByAnotherKeyIsRefused(t *testing.T) {
	onEachStore(t, func(t *testing.T, k storeKind) {
		f := k.new(t)
		l, c := seeded(t, f.store)
		appendN(t, f.store, c, "doc-3", 5)
		_, err := l.Sync(t.Context())
		require.NoError(t, err)
		// Another key signs a checkpoint of the real tree.
		otherSkey, err := auditlog.GenerateKey()
		require.NoError(t, err)
		other, err := auditlog.ParseKey(otherSkey)
		require.NoError(t, err)
		ol, err := auditlog.New(auditlog.Config{Store: f.store, Key: other})
		require.NoError(t, err)
		forged, err := ol.Checkpoint(t.Context())
		require.NoError(t, err)
		require.Equal(t, int64(55), forged.Size)
		_, err = auditlog.Verify(t.Context(), f.store, l.VerifierKey(), nil)
		var ve *auditlog.Error
		require.ErrorAs(t, err, &ve)
		assert.Equal(t, int64(55), ve.Checkpoint, "%v", err)
		// And the verifier of the other key refuses the log's own.
		_, err = auditlog.Verify(t.Context(), f.store, other.VerifierKey(), nil)
		require.ErrorAs(t, err, &ve)
		assert.Equal(t, int64(40), ve.Checkpoint, "%v", err)
	})
}

// TestEndpointsProofsVerifyWithTlog: the checkpoint, proof and consistency
// endpoints over real HTTP give what tlog's CheckRecord and CheckTree
// accept, against the checkpoint's root checked with the verifier key.
func TestEndpointsProofsVerifyWithTlog(t *testing.T) {
	onEachStore(t, func(t *testing.T, k storeKind) {
		f := k.new(t)
		l, _ := seeded(t, f.store)
		mux := idm.NewMux()
		l.Install(mux.Handle)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		get := func(path string, role string) (int, string) {
			req, _ := http.NewRequest("GET", srv.URL+path, nil)
			if role != "" {
				req.Header.Set("X-Role", role)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			var b strings.Builder
			_, _ = fmt.Fprint(&b, mustRead(t, resp))
			return resp.StatusCode, b.String()
		}
		code, vkey := get("/audit/verifier", "none")
		require.Equal(t, http.StatusOK, code)
		assert.Equal(t, l.VerifierKey(), strings.TrimSpace(vkey))
		verifier, err := note.NewVerifier(strings.TrimSpace(vkey))
		require.NoError(t, err)

		code, cp := get("/audit/checkpoint", "")
		require.Equal(t, http.StatusOK, code, cp)
		n, err := note.Open([]byte(cp), note.VerifierList(verifier))
		require.NoError(t, err)
		lines := strings.Split(n.Text, "\n")
		require.Len(t, lines, 4)
		assert.Equal(t, auditlog.DefaultOrigin, lines[0])
		assert.Equal(t, "50", lines[1])
		root, err := tlog.ParseHash(lines[2])
		require.NoError(t, err)

		var proof struct {
			Data struct {
				Leaf  tlog.Hash   `json:"leaf"`
				Proof []tlog.Hash `json:"proof"`
			} `json:"data"`
		}
		for _, seq := range []int64{0, 17, 39, 49} {
			code, body := get(fmt.Sprintf("/audit/proof?seq=%d&size=50", seq), "")
			require.Equal(t, http.StatusOK, code, body)
			require.NoError(t, json.Unmarshal([]byte(body), &proof))
			require.NoError(t, tlog.CheckRecord(proof.Data.Proof, 50, root, seq, proof.Data.Leaf), "seq %d", seq)
			recs, err := f.store.AuditsBySeq(t.Context(), seq, seq+1)
			require.NoError(t, err)
			assert.Equal(t, tlog.RecordHash(idm.CanonicalAudit(recs[0])), proof.Data.Leaf, "the leaf is the record's")
		}
		code, body := get("/audit/proof?seq=3", "")
		require.Equal(t, http.StatusOK, code, "size defaults to the latest checkpoint: %s", body)

		code, body = get("/audit/consistency?old=40&new=50", "")
		require.Equal(t, http.StatusOK, code, body)
		require.NoError(t, json.Unmarshal([]byte(body), &proof))
		old, err := tlog.TreeHash(40, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			hs, err := f.store.TreeHashes(t.Context(), idx)
			out := make([]tlog.Hash, len(hs))
			for i := range hs {
				out[i] = hs[i]
			}
			return out, err
		}))
		require.NoError(t, err)
		require.NoError(t, tlog.CheckTree(proof.Data.Proof, 50, root, 40, old))

		for _, tc := range []struct {
			path, role string
			status     int
		}{
			{"/audit/checkpoint", "staff", http.StatusForbidden},
			{"/audit/checkpoint", "none", http.StatusUnauthorized},
			{"/audit/proof?seq=3", "staff", http.StatusForbidden},
			{"/audit/consistency?old=1", "none", http.StatusUnauthorized},
			{"/audit/proof", "", http.StatusBadRequest},
			{"/audit/proof?seq=50&size=50", "", http.StatusBadRequest},
			{"/audit/proof?seq=1&size=51", "", http.StatusBadRequest},
			{"/audit/proof?seq=-1", "", http.StatusBadRequest},
			{"/audit/proof?seq=x", "", http.StatusBadRequest},
			{"/audit/consistency?old=0&new=50", "", http.StatusBadRequest},
			{"/audit/consistency?old=50&new=40", "", http.StatusBadRequest},
		} {
			code, body := get(tc.path, tc.role)
			assert.Equal(t, tc.status, code, "%s as %q: %s", tc.path, tc.role, body)
			if code >= 400 {
				var e struct {
					Error struct {
						Status  int    `json:"status"`
						Message string `json:"message"`
					} `json:"error"`
				}
				require.NoError(t, json.Unmarshal([]byte(body), &e), body)
				assert.Equal(t, code, e.Error.Status)
			}
		}
	})
}

func mustRead(t *testing.T, resp *http.Response) string {
	t.Helper()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}

// TestSyncRepairsAfterACrash: records appended while no log ran (a crash
// before the tree followed them), and hashes stored without the tree size
// (a crash between the two), are taken up by the next Sync.
func TestSyncRepairsAfterACrash(t *testing.T) {
	onEachStore(t, func(t *testing.T, k storeKind) {
		f := k.new(t)
		c := &clock{now: t0}
		appendN(t, f.store, c, "doc-1", 7)
		l := newLog(t, f.store, c)
		size, err := l.Sync(t.Context())
		require.NoError(t, err)
		assert.Equal(t, int64(7), size)
		// Hashes of the next records stored, the size not raised.
		appendN(t, f.store, c, "doc-1", 3)
		other := newLog(t, f.store, c)
		_, err = other.Sync(t.Context())
		require.NoError(t, err)
		hs, err := f.store.TreeHashes(t.Context(), []int64{tlog.StoredHashIndex(0, 9)})
		require.NoError(t, err)
		require.NoError(t, f.store.AddTreeHashes(t.Context(), tlog.StoredHashCount(9), [][32]byte{hs[0]}, 9))
		appendN(t, f.store, c, "doc-1", 2)
		size, err = l.Sync(t.Context())
		require.NoError(t, err)
		assert.Equal(t, int64(12), size)
		_, err = l.Checkpoint(t.Context())
		require.NoError(t, err)
		_, err = auditlog.Verify(t.Context(), f.store, l.VerifierKey(), nil)
		require.NoError(t, err)
	})
}

func TestExportVerifiesOffline(t *testing.T) {
	onEachStore(t, func(t *testing.T, k storeKind) {
		f := k.new(t)
		l, c := seeded(t, f.store)
		appendN(t, f.store, c, "doc-3", 4) // the export checkpoints them
		for _, format := range []string{auditlog.FormatJSONL, auditlog.FormatCSV} {
			for _, window := range []struct {
				name         string
				since, until time.Time
				want         int64
			}{
				{"all", time.Time{}, time.Time{}, 54},
				{"a window", t0.Add(10 * time.Second), t0.Add(20 * time.Second), 10},
			} {
				t.Run(format+"/"+window.name, func(t *testing.T) {
					var buf strings.Builder
					n, err := l.Export(t.Context(), &buf, auditlog.ExportOptions{Format: format, Since: window.since, Until: window.until})
					require.NoError(t, err)
					assert.Equal(t, window.want, n)
					rep, err := auditlog.VerifyExport(strings.NewReader(buf.String()), l.VerifierKey())
					require.NoError(t, err)
					assert.Equal(t, window.want, rep.Records)

					// One changed character anywhere in a record is found.
					tampered := strings.Replace(buf.String(), "alice@example.org", "alicf@example.org", 1)
					require.NotEqual(t, buf.String(), tampered)
					_, err = auditlog.VerifyExport(strings.NewReader(tampered), l.VerifierKey())
					assert.Error(t, err)

					other, err := auditlog.GenerateKey()
					require.NoError(t, err)
					ok, err := auditlog.ParseKey(other)
					require.NoError(t, err)
					_, err = auditlog.VerifyExport(strings.NewReader(buf.String()), ok.VerifierKey())
					assert.Error(t, err, "another verifier key")
				})
			}
		}
	})
}

// erasable sets up a subject with personal data in its record and trail.
func erasable(t *testing.T, s idm.Store, c *clock) idm.Subject {
	t.Helper()
	ctx := t.Context()
	subj := idm.Subject{ID: idm.NewID(), SSSID: "S-ERASE", Name: "Zacharias Quennell", Bday: "1971-02-03", Email: "zq@example.org",
		DateConsented: "2026-01-02", Created: c.now, Changed: c.now, Extra: map[string]json.RawMessage{"phone": json.RawMessage(`"+41 79 555 01 02"`)}}
	require.NoError(t, s.CreateSubject(ctx, subj))
	created, _ := json.Marshal(map[string]any{"sssid": subj.SSSID, "name": subj.Name, "bday": subj.Bday, "email": subj.Email, "phone": "+41 79 555 01 02", "date_consented": "2026-01-02"})
	for _, e := range []idm.AuditEvent{
		{ID: idm.NewID(), Time: c.now, Document: subj.ID, DocType: idm.DocSubject, Actor: "alice@example.org", Action: "create", New: created},
		{ID: idm.NewID(), Time: c.now.Add(time.Second), Document: subj.ID, DocType: idm.DocSubject, Actor: "alice@example.org",
			Action: `name: "Zacharias Quennell"; consented: 2026-01-02; email: "zq@example.org"`,
			Old:    json.RawMessage(`{"name":"Zach Q"}`), New: json.RawMessage(`{"name":"Zacharias Quennell","email":"zq@example.org"}`)},
	} {
		require.NoError(t, s.AppendAudit(ctx, e))
	}
	return subj
}

// TestEraseKeepsTheLogVerifiable: after an erasure the log verifies, names
// the erased records, and the personal data is gone from the records (and,
// for bbolt, from the file's bytes after Compact).
func TestEraseKeepsTheLogVerifiable(t *testing.T) {
	onEachStore(t, func(t *testing.T, k storeKind) {
		f := k.new(t)
		l, c := seeded(t, f.store)
		subj := erasable(t, f.store, c)
		_, err := l.Checkpoint(t.Context())
		require.NoError(t, err)
		c.now = c.now.Add(time.Minute)
		actor := idm.Principal{Username: "idmd (operator)"}
		res, err := l.Erase(t.Context(), f.store, subj.SSSID, "GDPR Art. 17 request 2026-77", actor)
		require.NoError(t, err)
		assert.Equal(t, []int64{50, 51}, res.Records)
		assert.Equal(t, int64(52), res.Seq)
		_, err = l.Checkpoint(t.Context())
		require.NoError(t, err)

		rep, err := auditlog.Verify(t.Context(), f.store, l.VerifierKey(), nil)
		require.NoError(t, err)
		require.Len(t, rep.Erased, 2)
		assert.Equal(t, "GDPR Art. 17 request 2026-77", rep.Erased[0].Reason)
		assert.Equal(t, "idmd (operator)", rep.Erased[0].By)

		got, err := f.store.FindSubject(t.Context(), subj.SSSID)
		require.NoError(t, err)
		assert.Equal(t, auditlog.Tombstone, got.Name)
		assert.Empty(t, got.Bday)
		assert.Equal(t, "2026-01-02", got.DateConsented, "dates stay")
		trail, err := f.store.AuditsFor(t.Context(), subj.ID)
		require.NoError(t, err)
		require.Len(t, trail, 3)
		assert.Equal(t, `name: "[erased]"; consented: 2026-01-02; email: "[erased]"`, trail[1].Action)
		for _, e := range trail {
			for _, secret := range []string{"Zacharias", "Quennell", "zq@example.org", "1971-02-03", "555 01 02", "Zach Q"} {
				assert.NotContains(t, e.Action+string(e.Old)+string(e.New), secret)
			}
		}
		// Exports of the erased log verify too.
		var buf strings.Builder
		_, err = l.Export(t.Context(), &buf, auditlog.ExportOptions{})
		require.NoError(t, err)
		_, err = auditlog.VerifyExport(strings.NewReader(buf.String()), l.VerifierKey())
		require.NoError(t, err)
		assert.NotContains(t, buf.String(), "Quennell")

		if f.bolt != "" {
			s := f.reopen(t, func() { require.NoError(t, boltstore.Compact(f.bolt)) })
			raw, err := os.ReadFile(f.bolt)
			require.NoError(t, err)
			for _, secret := range []string{"Zacharias", "Quennell", "zq@example.org", "1971-02-03", "555 01 02"} {
				assert.NotContains(t, string(raw), secret, "the bbolt file's bytes, free pages included")
			}
			_, err = auditlog.Verify(t.Context(), s, l.VerifierKey(), nil)
			require.NoError(t, err, "after compaction")
		}
		if f.mongo != nil {
			for _, coll := range []string{"subjects", "audits", "links"} {
				cur, err := f.mongo.Collection(coll).Find(t.Context(), bson.M{})
				require.NoError(t, err)
				var docs []bson.M
				require.NoError(t, cur.All(t.Context(), &docs))
				b, _ := json.Marshal(docs)
				assert.NotContains(t, string(b), "Quennell", coll)
			}
		}
	})
}

// TestErasedRecordNotNamedFailsVerify: a record changed like an erasure
// but named by no erasure record is a tampered record.
func TestErasedRecordNotNamedFailsVerify(t *testing.T) {
	f := kinds()[0].new(t)
	l, c := seeded(t, f.store)
	subj := erasable(t, f.store, c)
	_, err := l.Checkpoint(t.Context())
	require.NoError(t, err)
	trail, err := f.store.AuditsFor(t.Context(), subj.ID)
	require.NoError(t, err)
	e := trail[1]
	e.Action = `name: "[erased]"`
	require.NoError(t, f.store.ReplaceAudits(t.Context(), []idm.AuditEvent{e}))
	_, err = auditlog.Verify(t.Context(), f.store, l.VerifierKey(), nil)
	var ve *auditlog.Error
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, e.Seq, ve.Seq)
	assert.False(t, errors.Is(err, idm.ErrNotFound))
}

// TestBehindWhenCheckpointsStop: /status's "behind" turns true when
// records older than twice the interval are not checkpointed, and false
// once a checkpoint covers them.
func TestBehindWhenCheckpointsStop(t *testing.T) {
	s := memstore.New()
	c := &clock{now: t0}
	l := newLog(t, s, c)
	behind, err := l.Behind(t.Context())
	require.NoError(t, err)
	assert.False(t, behind, "an empty log")
	appendN(t, s, c, "doc-1", 3)
	_, err = l.Checkpoint(t.Context())
	require.NoError(t, err)
	appendN(t, s, c, "doc-1", 2)
	behind, err = l.Behind(t.Context())
	require.NoError(t, err)
	assert.False(t, behind, "within the interval")
	c.now = c.now.Add(3 * auditlog.DefaultInterval)
	behind, err = l.Behind(t.Context())
	require.NoError(t, err)
	assert.True(t, behind, "no checkpoint for three intervals")
	_, err = l.Checkpoint(t.Context())
	require.NoError(t, err)
	behind, err = l.Behind(t.Context())
	require.NoError(t, err)
	assert.False(t, behind)
	size, at := l.Stats()
	assert.Equal(t, int64(5), size)
	assert.Equal(t, c.now, at)
}

// TestRunCheckpointsAfterAppends: Run writes a checkpoint at start when
// records are not covered, and another after appends, every interval.
func TestRunCheckpointsAfterAppends(t *testing.T) {
	s := memstore.New()
	key, err := auditlog.LoadOrCreateKey(t.Context(), s, t0)
	require.NoError(t, err)
	c := &clock{now: t0}
	appendN(t, s, c, "doc-1", 4)
	l, err := auditlog.New(auditlog.Config{Store: s, Key: key, Interval: 20 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	waitSize := func(n int64) {
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if cp, err := s.LatestCheckpoint(t.Context()); err == nil && cp.Size >= n {
				return
			}
			require.True(t, time.Now().Before(deadline), "no checkpoint of %d records", n)
		}
	}
	waitSize(4)
	appendN(t, s, c, "doc-1", 3)
	waitSize(7)
	cancel()
	<-done
	cps, err := s.Checkpoints(t.Context())
	require.NoError(t, err)
	assert.Len(t, cps, 2, "one checkpoint per growth, none while idle")
}

// forgedErasure returns an erasure record that names record e (whose leaf
// in the tree is leaf) as erased into forged.
func forgedErasure(t *testing.T, c *clock, doc string, e idm.AuditEvent, leaf [32]byte, forged idm.AuditEvent) idm.AuditEvent {
	t.Helper()
	now := tlog.RecordHash(idm.CanonicalAudit(forged))
	body, err := json.Marshal(map[string]any{"sssid": "S-1", "reason": "forged", "erased": []map[string]any{
		{"seq": e.Seq, "leaf": tlog.Hash(leaf), "now": now},
	}})
	require.NoError(t, err)
	c.now = c.now.Add(time.Minute)
	return idm.AuditEvent{ID: idm.NewID(), Time: c.now, Document: doc, DocType: idm.DocSubject, Action: "erase: forged", New: body}
}

// TestForgedErasureCannotRewriteHistory: someone with write access to the
// database rewrites a checkpointed record and appends an erasure record
// naming it. Verify accepts an erased record only when it is a subject
// record of the erasure's subject and holds no personal data any more, so
// a rewritten user record, or a subject record with new values, is named.
func TestForgedErasureCannotRewriteHistory(t *testing.T) {
	for _, tc := range []struct {
		name    string
		doc     string // the erasure record's document
		doctype string // of the rewritten record
		action  string
		newVal  string
	}{
		{"a user record", "doc-1", idm.DocUser, "admin: true", `{"admin":true}`},
		{"a subject record with new values", "doc-1", idm.DocSubject, `name: "Someone Else"`, `{"name":"Someone Else"}`},
		{"a record of another subject", "doc-2", idm.DocSubject, `name: "[erased]"`, `{"name":"[erased]"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := memstore.New()
			l, c := seeded(t, s)
			recs, err := s.AuditsBySeq(t.Context(), 10, 11)
			require.NoError(t, err)
			orig := recs[0] // about doc-1
			leaf, err := s.TreeHashes(t.Context(), []int64{tlog.StoredHashIndex(0, orig.Seq)})
			require.NoError(t, err)
			forged := orig
			forged.DocType, forged.Action, forged.New = tc.doctype, tc.action, json.RawMessage(tc.newVal)
			require.NoError(t, s.ReplaceAudits(t.Context(), []idm.AuditEvent{forged}))
			require.NoError(t, s.AppendAudit(t.Context(), forgedErasure(t, c, tc.doc, orig, leaf[0], forged)))
			_, err = l.Checkpoint(t.Context()) // the running service signs the tail
			require.NoError(t, err)
			_, err = auditlog.Verify(t.Context(), s, l.VerifierKey(), nil)
			var ve *auditlog.Error
			require.ErrorAs(t, err, &ve, "a forged erasure passed")
			assert.Equal(t, int64(10), ve.Seq, "%v", err)
		})
	}
}

// TestPartialExportRefusesAnErasureRecordThatIsNotInTheTree: in a partial
// export, an erasure record whose own content is not its leaf in the tree
// vouches for nothing.
func TestPartialExportRefusesAnErasureRecordThatIsNotInTheTree(t *testing.T) {
	s := memstore.New()
	l, _ := seeded(t, s)
	var buf strings.Builder
	_, err := l.Export(t.Context(), &buf, auditlog.ExportOptions{Since: t0.Add(5 * time.Second), Until: t0.Add(20 * time.Second)})
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	// Rewrite the record of seq 9 into an erasure record that names itself
	// and seq 10, both rewritten, keeping its leaf and proof.
	var e9, e10 map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[6]), &e9))
	require.NoError(t, json.Unmarshal([]byte(lines[7]), &e10))
	require.EqualValues(t, 9, e9["seq"])
	require.EqualValues(t, 10, e10["seq"])
	e10["action"] = "forged"
	var ev10 exportedEvent
	b10, _ := json.Marshal(e10)
	require.NoError(t, json.Unmarshal(b10, &ev10))
	e9["action"] = "erase: forged"
	e9["doctype"] = idm.DocSubject
	erased, _ := json.Marshal(map[string]any{"sssid": "S-1", "reason": "forged", "erased": []map[string]any{
		{"seq": 10, "leaf": e10["leaf"], "now": tlog.RecordHash(idm.CanonicalAudit(ev10.event(t)))},
	}})
	e9["new"] = string(erased)
	b9, _ := json.Marshal(e9)
	b10, _ = json.Marshal(e10)
	lines[6], lines[7] = string(b9), string(b10)
	_, err = auditlog.VerifyExport(strings.NewReader(strings.Join(lines, "\n")+"\n"), l.VerifierKey())
	var ve *auditlog.Error
	require.ErrorAs(t, err, &ve, "a forged erasure record passed")
	assert.Equal(t, int64(9), ve.Seq, "%v", err)
}

// exportedEvent reads an export line back into a record.
type exportedEvent struct{ idm.CanonicalRecord }

func (x exportedEvent) event(t *testing.T) idm.AuditEvent {
	t.Helper()
	e, err := x.Event()
	require.NoError(t, err)
	return e
}
