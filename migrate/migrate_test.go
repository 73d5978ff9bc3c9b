package migrate_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"golang.org/x/crypto/bcrypt"

	"github.com/c3-pro/idm/boltstore"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/internal/testmongo"
	"github.com/c3-pro/idm/migrate"
	"github.com/c3-pro/idm/mongostore"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testmongo.Stop()
	os.Exit(code)
}

// Legacy bcrypt hashes as the original's Python bcrypt wrote them (cost 12).
const (
	alicePassword = "alice-secret-1"
	aliceHash     = "$2b$12$umPqidKlkTVqMfzgV/ZosOWCiz2iOCUPYs0NxGoqQkkgUw9oBlNya"
	bobHash       = "$2b$12$fhrxFMe7z3hyhr7FxGIb9OPy1ZmzyI/qA.pR0vqpLJ6iyZCbV/AB6"
	linkSecret    = "super-duper-secret"
)

// base is the time of the first ObjectId of the fixture.
var base = time.Date(2019, 3, 4, 10, 0, 0, 0, time.UTC)

// oid returns an ObjectId made at base + sec seconds, with n in its counter.
func oid(sec int, n byte) bson.ObjectID {
	var id bson.ObjectID
	binary.BigEndian.PutUint32(id[:4], uint32(base.Unix()+int64(sec)))
	copy(id[4:9], "pymgo")
	id[11] = n
	return id
}

// oidTime is the time an ObjectId carries, as stores keep it.
func oidTime(id bson.ObjectID) time.Time { return idm.Timestamp(id.Timestamp()) }

// fixture is a database of the original service: documents in the shapes
// pymongo wrote, a few of them broken.
type fixture struct {
	alice, bob, carol, aliceDup, noName, plain            bson.ObjectID
	s1, s2, s3, s4, sDup, sNoSSSID, sRegex                bson.ObjectID
	l1, l2, l3, l4, lNoSub, lBadLinkedOn                  bson.ObjectID
	a1, a2, a3, a4, a5, a6, a7, aNoDoc, unknownDoc, ghost bson.ObjectID
	other, noType                                         bson.ObjectID
	jwt2, jwt3                                            string
	seen                                                  time.Time
	l3LinkedOn                                            time.Time
	s4Withdrawn                                           time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{
		alice: oid(0, 1), bob: oid(10, 2), carol: oid(20, 3), aliceDup: oid(30, 4), noName: oid(40, 5), plain: oid(50, 6),
		s1: oid(100, 11), s2: oid(110, 12), s3: oid(120, 13), s4: oid(130, 14), sDup: oid(140, 15), sNoSSSID: oid(150, 16), sRegex: oid(160, 17),
		l1: oid(200, 21), l2: oid(210, 22), l3: oid(220, 23), l4: oid(230, 24), lNoSub: oid(240, 25), lBadLinkedOn: oid(250, 26),
		a1: oid(300, 31), a2: oid(310, 32), a3: oid(320, 33), a4: oid(330, 34), a5: oid(340, 35), a6: oid(350, 36), a7: oid(360, 37),
		aNoDoc: oid(370, 38), unknownDoc: oid(380, 39), ghost: oid(390, 40),
		other: oid(400, 41), noType: oid(410, 42),
		seen:        time.Date(2019, 3, 4, 11, 0, 0, 250_000_000, time.UTC),
		l3LinkedOn:  time.Date(2019, 3, 7, 9, 30, 0, 0, time.UTC),
		s4Withdrawn: time.Date(2019, 5, 1, 0, 0, 0, 0, time.UTC),
	}
	f.jwt2 = linkJWT(t, f.l2, "Bea Beispiel", "17.05.1980", 1551900000)
	f.jwt3 = linkJWT(t, f.l3, "Bea Beispiel", "17.05.1980", 1551800000)
	return f
}

// linkJWT signs a link token as the original (PyJWT) did.
func linkJWT(t *testing.T, id bson.ObjectID, name, bday string, exp int64) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"jti": id.Hex(), "iss": "https://idm.example", "aud": "https://app.example",
		"exp": exp, "sub": name, "birthdate": bday,
	}).SignedString([]byte(linkSecret))
	require.NoError(t, err)
	return s
}

// docs returns the documents, as pymongo would have written them (Python
// ints below 2^31 become int32, bytes become binary, str stays string).
func (f *fixture) docs() []any {
	bin := func(s string) bson.Binary { return bson.Binary{Subtype: 0, Data: []byte(s)} }
	return []any{
		// Users.
		bson.D{{Key: "_id", Value: f.alice}, {Key: "type", Value: "user"}, {Key: "username", Value: "alice@example.org"},
			{Key: "password", Value: bin(aliceHash)}, {Key: "admin", Value: true}, {Key: "temporary", Value: nil}},
		bson.D{{Key: "_id", Value: f.bob}, {Key: "type", Value: "user"}, {Key: "username", Value: "bob@example.org"},
			{Key: "password", Value: bobHash}, {Key: "admin", Value: false},
			{Key: "temporary", Value: bson.D{{Key: "hash", Value: "0b9e6f8e-5a4e-4a8e-9d51-4c1f1f4c2a10"}, {Key: "time", Value: int32(1551700800)}}}},
		bson.D{{Key: "_id", Value: f.carol}, {Key: "type", Value: "user"}, {Key: "username", Value: "Carol@Example.org"},
			{Key: "password", Value: bin(bobHash)}, {Key: "admin", Value: false},
			{Key: "created", Value: "2019-03-01T09:00:00+00:00"}},
		bson.D{{Key: "_id", Value: f.aliceDup}, {Key: "type", Value: "user"}, {Key: "username", Value: "ALICE@example.org"},
			{Key: "password", Value: bin(aliceHash)}, {Key: "admin", Value: false}},
		bson.D{{Key: "_id", Value: f.noName}, {Key: "type", Value: "user"}, {Key: "password", Value: bin(aliceHash)}},
		bson.D{{Key: "_id", Value: f.plain}, {Key: "type", Value: "user"}, {Key: "username", Value: "plain@example.org"},
			{Key: "password", Value: "hunter2hunter2"}},

		// Subjects; the duplicate SSSID comes first in the collection but has
		// the later ObjectId.
		bson.D{{Key: "_id", Value: f.sDup}, {Key: "type", Value: "subject"}, {Key: "sssid", Value: "S-001"},
			{Key: "name", Value: "Someone Else"}, {Key: "bday", Value: "1990-01-01"}},
		bson.D{{Key: "_id", Value: f.s1}, {Key: "type", Value: "subject"}, {Key: "sssid", Value: "S-001"},
			{Key: "name", Value: "Anna Alpha"}, {Key: "bday", Value: "1980-05-17"}, {Key: "email", Value: "anna@example.org"},
			{Key: "date_invited", Value: "2019-03-04T10:11:12+01:00"}, {Key: "date_consented", Value: "2019-03-05T09:00:00+01:00"},
			{Key: "created", Value: "2019-03-04T10:11:12.123456+00:00"}, {Key: "changed", Value: "2019-03-05T08:00:00.5+00:00"},
			{Key: "phone", Value: "555-0100"},
			{Key: "tags", Value: bson.A{"a", "b"}},
			{Key: "nested", Value: bson.D{{Key: "x", Value: int32(1)}, {Key: "y", Value: bson.A{true, nil, 2.5}}, {Key: "z", Value: bson.D{{Key: "deep", Value: "v"}}}}},
			{Key: "visits", Value: int64(3_000_000_000)},
			{Key: "seen", Value: bson.NewDateTimeFromTime(f.seen)},
			{Key: "ref", Value: f.alice},
			{Key: "html", Value: "<b>&</b>"},
			{Key: "empty", Value: nil}},
		bson.D{{Key: "_id", Value: f.s2}, {Key: "type", Value: "subject"}, {Key: "sssid", Value: "S-002"},
			{Key: "name", Value: "Bea Beispiel"}, {Key: "bday", Value: "17.05.1980"}, {Key: "email", Value: nil},
			{Key: "date_consented", Value: "2019-03-05"},
			{Key: "created", Value: "2019-03-04T10:13:00+00:00"}, {Key: "changed", Value: "2019-03-05T10:00:00+00:00"}},
		bson.D{{Key: "_id", Value: f.s3}, {Key: "type", Value: "subject"}, {Key: "sssid", Value: "S-003"},
			{Key: "name", Value: "Cem Ceylan"}, {Key: "bday", Value: "1975-12-01"}, {Key: "_rev", Value: int32(2)}},
		bson.D{{Key: "_id", Value: f.s4}, {Key: "type", Value: "subject"}, {Key: "sssid", Value: "S-004"},
			{Key: "name", Value: "Dana Delta"}, {Key: "bday", Value: "1966-06-06T00:00:00+02:00"},
			{Key: "date_withdrawn", Value: bson.NewDateTimeFromTime(f.s4Withdrawn)},
			{Key: "created", Value: int32(1551700000)}, {Key: "changed", Value: 1551700000.5}},
		bson.D{{Key: "_id", Value: f.sNoSSSID}, {Key: "type", Value: "subject"}, {Key: "name", Value: "No Id"}, {Key: "bday", Value: "1970-01-01"}},
		bson.D{{Key: "_id", Value: f.sRegex}, {Key: "type", Value: "subject"}, {Key: "sssid", Value: "S-RGX"},
			{Key: "name", Value: "Reg Ex"}, {Key: "bday", Value: "1970-01-01"}, {Key: "pattern", Value: bson.Regex{Pattern: "^a", Options: "i"}}},
		bson.D{{Key: "_id", Value: "legacy-1"}, {Key: "type", Value: "subject"}, {Key: "sssid", Value: "S-STR"},
			{Key: "name", Value: "String Id"}, {Key: "bday", Value: "1970-01-01"}},

		// Links.
		bson.D{{Key: "_id", Value: f.l1}, {Key: "type", Value: "link"}, {Key: "sub", Value: "S-001"},
			{Key: "iss", Value: "https://idm.example"}, {Key: "aud", Value: "https://app.example"},
			{Key: "secret", Value: linkSecret}, {Key: "algorithm", Value: "HS256"}, {Key: "created", Value: int32(1551695000)}},
		bson.D{{Key: "_id", Value: f.l2}, {Key: "type", Value: "link"}, {Key: "sub", Value: "S-002"},
			{Key: "iss", Value: "https://idm.example"}, {Key: "aud", Value: "https://app.example"},
			{Key: "secret", Value: linkSecret}, {Key: "algorithm", Value: "HS256"},
			{Key: "created", Value: int32(1551696000)}, {Key: "changed", Value: int32(1551859200)},
			{Key: "exp", Value: int32(1551900000)}, {Key: "_jwt", Value: bin(f.jwt2)},
			{Key: "linked_to", Value: "P-123"}, {Key: "linked_system", Value: "urn:example:mrn"},
			{Key: "linked_on", Value: "2019-03-06T08:00:00.500000+00:00"}},
		bson.D{{Key: "_id", Value: f.l3}, {Key: "type", Value: "link"}, {Key: "sub", Value: "S-002"},
			{Key: "iss", Value: "https://idm.example"}, {Key: "aud", Value: "https://app.example"},
			{Key: "secret", Value: linkSecret}, {Key: "algorithm", Value: "HS256"},
			{Key: "created", Value: int32(1551697000)}, {Key: "exp", Value: int64(1551800000)}, {Key: "_jwt", Value: f.jwt3},
			{Key: "linked_to", Value: "P-456"}, {Key: "linked_on", Value: bson.NewDateTimeFromTime(f.l3LinkedOn)},
			{Key: "withdrawn_on", Value: "2019-04-01"}},
		bson.D{{Key: "_id", Value: f.l4}, {Key: "type", Value: "link"}, {Key: "sub", Value: "S-404"},
			{Key: "iss", Value: "https://idm.example"}, {Key: "aud", Value: "https://app.example"},
			{Key: "secret", Value: linkSecret}, {Key: "algorithm", Value: "HS256"}, {Key: "created", Value: int32(1551698000)}},
		bson.D{{Key: "_id", Value: f.lNoSub}, {Key: "type", Value: "link"}, {Key: "iss", Value: "https://idm.example"}},
		bson.D{{Key: "_id", Value: f.lBadLinkedOn}, {Key: "type", Value: "link"}, {Key: "sub", Value: "S-003"},
			{Key: "linked_to", Value: "P-789"}, {Key: "linked_on", Value: "yesterday"}},

		// Audits, in both shapes the original wrote.
		bson.D{{Key: "_id", Value: f.a1}, {Key: "type", Value: "audit"}, {Key: "document", Value: f.s1},
			{Key: "actor_id", Value: f.alice}, {Key: "datetime", Value: "2019-03-04T10:11:12.123456+00:00"}, {Key: "action", Value: "create"}},
		bson.D{{Key: "_id", Value: f.a2}, {Key: "type", Value: "audit"}, {Key: "document", Value: f.l2},
			{Key: "datetime", Value: "2019-03-06T08:00:00.500000+00:00"}, {Key: "action", Value: "link to P-123"}},
		bson.D{{Key: "_id", Value: f.a3}, {Key: "type", Value: "audit"}, {Key: "document", Value: f.bob},
			{Key: "actor_id", Value: f.alice}, {Key: "datetime", Value: "2019-03-04T10:00:10+00:00"}, {Key: "action", Value: "create"}},
		bson.D{{Key: "_id", Value: f.a4}, {Key: "type", Value: "audit"}, {Key: "document", Value: f.l1},
			{Key: "actor", Value: f.bob}, {Key: "epoch", Value: int32(1551695000)}, {Key: "action", Value: "create"}},
		bson.D{{Key: "_id", Value: f.a5}, {Key: "type", Value: "audit"}, {Key: "document", Value: f.unknownDoc},
			{Key: "actor_id", Value: f.alice}, {Key: "datetime", Value: "2019-03-04T12:00:00+00:00"}, {Key: "action", Value: "update"}},
		bson.D{{Key: "_id", Value: f.a6}, {Key: "type", Value: "audit"}, {Key: "document", Value: f.s2.Hex()},
			{Key: "actor", Value: "Bob@Example.org"}, {Key: "datetime", Value: "2019-03-05T10:00:00+00:00"}, {Key: "action", Value: "consented: 2019-03-05"}},
		bson.D{{Key: "_id", Value: f.a7}, {Key: "type", Value: "audit"}, {Key: "document", Value: f.s2},
			{Key: "actor_id", Value: f.ghost}, {Key: "datetime", Value: "2019-03-05T11:00:00+00:00"}, {Key: "action", Value: "update"}},
		bson.D{{Key: "_id", Value: f.aNoDoc}, {Key: "type", Value: "audit"}, {Key: "actor_id", Value: f.alice},
			{Key: "datetime", Value: "2019-03-05T12:00:00+00:00"}, {Key: "action", Value: "update"}},

		// Something else.
		bson.D{{Key: "_id", Value: f.other}, {Key: "type", Value: "session"}, {Key: "data", Value: "x"}},
		bson.D{{Key: "_id", Value: f.noType}, {Key: "username", Value: "stray@example.org"}},
	}
}

// source returns a fresh database holding the fixture in the original's
// collection.
func source(t *testing.T, f *fixture) *mongo.Collection {
	t.Helper()
	_, db := testmongo.DB(t)
	coll := db.Collection(migrate.DefaultCollection)
	_, err := coll.InsertMany(t.Context(), f.docs())
	require.NoError(t, err)
	return coll
}

// stores are the targets every test runs against.
var stores = []struct {
	name string
	open func(t *testing.T) idm.Store
}{
	{"bolt", func(t *testing.T) idm.Store {
		s, err := boltstore.Open(filepath.Join(t.TempDir(), "idm.db"))
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}},
	{"mongo", func(t *testing.T) idm.Store {
		_, db := testmongo.DB(t)
		s, err := mongostore.New(t.Context(), db)
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}},
}

// clock is a fake clock that advances by step on every reading.
type clock struct {
	now  time.Time
	step time.Duration
}

func (c *clock) Now() time.Time {
	t := c.now
	c.now = c.now.Add(c.step)
	return t
}

var migrationTime = time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)

func config(src *mongo.Collection, dst migrate.Target) migrate.Config {
	c := &clock{now: migrationTime}
	return migrate.Config{Source: src, Target: dst, Now: c.Now}
}

func TestRun(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			f := newFixture(t)
			src := source(t, f)
			store := st.open(t)
			ctx := t.Context()

			rep, err := migrate.Run(ctx, config(src, store))
			require.NoError(t, err)
			t.Logf("report:\n%s", rep)
			checkReport(t, f, rep)
			checkUsers(t, f, store)
			checkSubjects(t, f, store)
			checkLinks(t, f, store)
			checkAudits(t, f, store)

			set, err := store.Bootstrapped(ctx)
			require.NoError(t, err)
			assert.True(t, set, "bootstrap marker")

			t.Run("SecondRunChangesNothing", func(t *testing.T) {
				again, err := migrate.Run(ctx, config(src, store))
				require.NoError(t, err)
				assert.Zero(t, again.Written())
				assert.False(t, again.Changed())
				for _, c := range []struct {
					name        string
					first, then migrate.Counts
				}{
					{"users", rep.Users, again.Users}, {"subjects", rep.Subjects, again.Subjects},
					{"links", rep.Links, again.Links}, {"audits", rep.Audits, again.Audits}, {"other", rep.Other, again.Other},
				} {
					assert.Equal(t, migrate.Counts{Read: c.first.Read, Existing: c.first.Written, Skipped: c.first.Skipped}, c.then, c.name)
				}
				assert.Equal(t, rep.Skipped, again.Skipped)
				assert.Empty(t, again.Notes)
				assert.Zero(t, again.DroppedResetTokens)
				assert.Zero(t, again.UnknownAuditDocuments)
				// Nothing was overwritten.
				checkUsers(t, f, store)
				checkSubjects(t, f, store)
				checkLinks(t, f, store)
				checkAudits(t, f, store)
			})

			t.Run("ExistingRecordsAreNotOverwritten", func(t *testing.T) {
				u, err := store.FindUserByID(ctx, f.bob.Hex())
				require.NoError(t, err)
				u.PasswordHash, u.TokenVersion = "$idm-sha256-bcrypt$changed", 7
				require.NoError(t, store.UpdateUser(ctx, u))
				u.Rev++ // an update raises the revision by one
				s, err := store.FindSubject(ctx, "S-002")
				require.NoError(t, err)
				s.Name = "Bea Renamed"
				require.NoError(t, store.UpdateSubject(ctx, s))

				again, err := migrate.Run(ctx, config(src, store))
				require.NoError(t, err)
				assert.False(t, again.Changed())
				got, err := store.FindUserByID(ctx, f.bob.Hex())
				require.NoError(t, err)
				assert.Equal(t, u, got)
				gs, err := store.FindSubject(ctx, "S-002")
				require.NoError(t, err)
				assert.Equal(t, "Bea Renamed", gs.Name)
			})
		})
	}
}

func checkReport(t *testing.T, f *fixture, rep migrate.Report) {
	t.Helper()
	assert.False(t, rep.DryRun)
	assert.Equal(t, migrate.Counts{Read: 6, Written: 3, Skipped: 3}, rep.Users, "users")
	assert.Equal(t, migrate.Counts{Read: 8, Written: 4, Skipped: 4}, rep.Subjects, "subjects")
	assert.Equal(t, migrate.Counts{Read: 6, Written: 4, Skipped: 2}, rep.Links, "links")
	assert.Equal(t, migrate.Counts{Read: 8, Written: 7, Skipped: 1}, rep.Audits, "audits")
	assert.Equal(t, migrate.Counts{Read: 2, Skipped: 2}, rep.Other, "other")
	assert.Equal(t, 18, rep.Written())
	assert.Equal(t, 30, rep.Read())
	assert.Equal(t, 1, rep.DroppedResetTokens)
	assert.Equal(t, 1, rep.UnknownAuditDocuments)
	assert.True(t, rep.BootstrapMarked)
	assert.True(t, rep.Changed())

	want := []struct{ typ, id, reason string }{
		{"user", f.aliceDup.Hex(), `username "ALICE@example.org" collides after normalisation with user ` + f.alice.Hex() + ` ("alice@example.org"): both are "alice@example.org"`},
		{"user", f.noName.Hex(), "no username"},
		{"user", f.plain.Hex(), "not a bcrypt hash"},
		{"subject", `"legacy-1"`, "_id is not an ObjectId"},
		{"subject", f.sDup.Hex(), `sssid "S-001" is already held by subject ` + f.s1.Hex()},
		{"subject", f.sNoSSSID.Hex(), "no sssid"},
		{"subject", f.sRegex.Hex(), "field pattern: a BSON regex has no JSON form"},
		{"link", f.lNoSub.Hex(), "no sub"},
		{"link", f.lBadLinkedOn.Hex(), `field linked_on: "yesterday" is not an ISO 8601 time`},
		{"audit", f.aNoDoc.Hex(), "no document"},
		{"session", f.other.Hex(), "unknown type"},
		{"(none)", f.noType.Hex(), "no type"},
	}
	if assert.Len(t, rep.Skipped, len(want), "skipped: %v", rep.Skipped) {
		for _, w := range want {
			found := false
			for _, p := range rep.Skipped {
				if p.Type == w.typ && p.ID == w.id {
					found = true
					assert.Contains(t, p.Reason, w.reason, "%s %s", w.typ, w.id)
				}
			}
			assert.True(t, found, "no skip of %s %s in %v", w.typ, w.id, rep.Skipped)
		}
	}

	wantNotes := []struct{ typ, id, text string }{
		{"user", f.carol.Hex(), `username "Carol@Example.org" lower-cased`},
		{"subject", f.s4.Hex(), `date_withdrawn was a BSON date; kept as the string "2019-05-01T00:00:00Z"`},
		{"subject", f.s3.Hex(), `field "_rev" is kept, but the API does not show fields so named`},
		{"link", f.l4.Hex(), `its subject "S-404" is not in the target`},
		{"audit", f.a5.Hex(), "none of the users, subjects and links"},
		{"audit", f.a7.Hex(), "actor " + f.ghost.Hex() + " is not among the users"},
	}
	for _, w := range wantNotes {
		found := false
		for _, p := range rep.Notes {
			if p.Type == w.typ && p.ID == w.id && strings.Contains(p.Reason, w.text) {
				found = true
			}
		}
		assert.True(t, found, "no note %q on %s %s in %v", w.text, w.typ, w.id, rep.Notes)
	}
	for _, p := range rep.Notes {
		assert.NotContains(t, p.Reason, linkSecret, "a note shows the link secret")
	}

	s := rep.String()
	for _, line := range []string{
		"users:    6 read, 3 written, 0 existing, 3 skipped",
		"subjects: 8 read, 4 written, 0 existing, 4 skipped",
		"links:    6 read, 4 written, 0 existing, 2 skipped",
		"audits:   8 read, 7 written, 0 existing, 1 skipped",
		"other:    2 read, 0 written, 0 existing, 2 skipped",
		"dropped reset tokens: 1",
		"bootstrap marker: set",
		"skipped: 12",
	} {
		assert.Contains(t, s, line)
	}
}

func checkUsers(t *testing.T, f *fixture, store idm.Store) {
	t.Helper()
	ctx := t.Context()
	for _, want := range []idm.User{
		{ID: f.alice.Hex(), Username: "alice@example.org", PasswordHash: aliceHash, Admin: true,
			Created: oidTime(f.alice), Changed: oidTime(f.alice)},
		{ID: f.bob.Hex(), Username: "bob@example.org", PasswordHash: bobHash,
			Created: oidTime(f.bob), Changed: oidTime(f.bob)},
		{ID: f.carol.Hex(), Username: "carol@example.org", PasswordHash: bobHash,
			Created: time.Date(2019, 3, 1, 9, 0, 0, 0, time.UTC), Changed: time.Date(2019, 3, 1, 9, 0, 0, 0, time.UTC)},
	} {
		got, err := store.FindUserByID(ctx, want.ID)
		if !assert.NoError(t, err, want.Username) {
			continue
		}
		// The revision is the store's (1 for a new record); the migration never sets it.
		assert.Positive(t, got.Rev)
		got.Rev = 0
		assert.Equal(t, want, got)
	}
	for _, id := range []bson.ObjectID{f.aliceDup, f.noName, f.plain} {
		_, err := store.FindUserByID(ctx, id.Hex())
		assert.ErrorIs(t, err, idm.ErrNotFound, id.Hex())
	}
	n, err := store.CountAdmins(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
}

func checkSubjects(t *testing.T, f *fixture, store idm.Store) {
	t.Helper()
	ctx := t.Context()
	for _, want := range []idm.Subject{
		{ID: f.s1.Hex(), SSSID: "S-001", Name: "Anna Alpha", Bday: "1980-05-17", Email: "anna@example.org",
			DateInvited: "2019-03-04T10:11:12+01:00", DateConsented: "2019-03-05T09:00:00+01:00",
			Created: time.Date(2019, 3, 4, 10, 11, 12, 123_000_000, time.UTC),
			Changed: time.Date(2019, 3, 5, 8, 0, 0, 500_000_000, time.UTC),
			Extra: map[string]json.RawMessage{
				"phone":  json.RawMessage(`"555-0100"`),
				"tags":   json.RawMessage(`["a","b"]`),
				"nested": json.RawMessage(`{"x":1,"y":[true,null,2.5],"z":{"deep":"v"}}`),
				"visits": json.RawMessage(`3000000000`),
				"seen":   json.RawMessage(`"2019-03-04T11:00:00.25Z"`),
				"ref":    json.RawMessage(`"` + f.alice.Hex() + `"`),
				"html":   json.RawMessage(`"<b>&</b>"`),
				"empty":  json.RawMessage(`null`),
			}},
		{ID: f.s2.Hex(), SSSID: "S-002", Name: "Bea Beispiel", Bday: "17.05.1980", DateConsented: "2019-03-05",
			Created: time.Date(2019, 3, 4, 10, 13, 0, 0, time.UTC), Changed: time.Date(2019, 3, 5, 10, 0, 0, 0, time.UTC)},
		{ID: f.s3.Hex(), SSSID: "S-003", Name: "Cem Ceylan", Bday: "1975-12-01",
			Created: oidTime(f.s3), Changed: oidTime(f.s3), Extra: map[string]json.RawMessage{"_rev": json.RawMessage(`2`)}},
		{ID: f.s4.Hex(), SSSID: "S-004", Name: "Dana Delta", Bday: "1966-06-06T00:00:00+02:00",
			DateWithdrawn: "2019-05-01T00:00:00Z",
			Created:       time.Unix(1551700000, 0).UTC(), Changed: time.Unix(1551700000, 500_000_000).UTC()},
	} {
		got, err := store.FindSubject(ctx, want.SSSID)
		if !assert.NoError(t, err, want.SSSID) {
			continue
		}
		assertJSONMap(t, want.Extra, got.Extra, want.SSSID)
		want.Extra, got.Extra = nil, nil
		// The revision is the store's (1 for a new record); the migration never sets it.
		assert.Positive(t, got.Rev)
		got.Rev = 0
		assert.Equal(t, want, got)
	}
	for _, sssid := range []string{"S-RGX", "S-STR"} {
		_, err := store.FindSubject(ctx, sssid)
		assert.ErrorIs(t, err, idm.ErrNotFound, sssid)
	}
	_, total, err := store.ListSubjects(ctx, idm.SubjectFilter{})
	require.NoError(t, err)
	assert.Equal(t, 4, total)
}

// assertJSONMap checks that two Extra maps hold equivalent JSON.
func assertJSONMap(t *testing.T, want, got map[string]json.RawMessage, msg string) {
	t.Helper()
	if len(want) == 0 {
		assert.Empty(t, got, msg)
		return
	}
	decode := func(m map[string]json.RawMessage) map[string]any {
		out := make(map[string]any, len(m))
		for k, v := range m {
			var x any
			require.NoError(t, json.Unmarshal(v, &x), "%s: %s", k, v)
			out[k] = x
		}
		return out
	}
	assert.Equal(t, decode(want), decode(got), msg)
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func checkLinks(t *testing.T, f *fixture, store idm.Store) {
	t.Helper()
	ctx := t.Context()
	iss, aud := "https://idm.example", "https://app.example"
	for _, want := range []idm.Link{
		{ID: f.l1.Hex(), SSSID: "S-001", Issuer: iss, Audience: aud, Algorithm: "HS256",
			Created: time.Unix(1551695000, 0).UTC()},
		{ID: f.l2.Hex(), SSSID: "S-002", Issuer: iss, Audience: aud, Algorithm: "HS256",
			Created: time.Unix(1551696000, 0).UTC(), Changed: time.Unix(1551859200, 0).UTC(),
			Exp: 1551900000, JWTHash: sha(f.jwt2), LinkedTo: "P-123", LinkedSystem: "urn:example:mrn",
			LinkedOn: time.Date(2019, 3, 6, 8, 0, 0, 500_000_000, time.UTC)},
		{ID: f.l3.Hex(), SSSID: "S-002", Issuer: iss, Audience: aud, Algorithm: "HS256",
			Created: time.Unix(1551697000, 0).UTC(), Exp: 1551800000, JWTHash: sha(f.jwt3),
			LinkedTo: "P-456", LinkedOn: f.l3LinkedOn, WithdrawnOn: "2019-04-01"},
		{ID: f.l4.Hex(), SSSID: "S-404", Issuer: iss, Audience: aud, Algorithm: "HS256",
			Created: time.Unix(1551698000, 0).UTC()},
	} {
		got, err := store.FindLink(ctx, want.ID)
		if assert.NoError(t, err, want.ID) {
			// The revision is the store's (1 for a new record); the migration never sets it.
			assert.Positive(t, got.Rev)
			got.Rev = 0
			assert.Equal(t, want, got)
		}
	}
	// The tokens handed out still find their links.
	for _, c := range []struct {
		token string
		id    bson.ObjectID
	}{{f.jwt2, f.l2}, {f.jwt3, f.l3}} {
		got, err := store.FindLinkByJWTHash(ctx, sha(c.token))
		if assert.NoError(t, err) {
			assert.Equal(t, c.id.Hex(), got.ID)
		}
	}
	links, err := store.LinksForSubjects(ctx, "S-002")
	require.NoError(t, err)
	if assert.Len(t, links, 2) {
		assert.Equal(t, f.l2.Hex(), links[0].ID)
		assert.Equal(t, f.l3.Hex(), links[1].ID)
	}
	for _, id := range []bson.ObjectID{f.lNoSub, f.lBadLinkedOn} {
		_, err := store.FindLink(ctx, id.Hex())
		assert.ErrorIs(t, err, idm.ErrNotFound)
	}
}

func checkAudits(t *testing.T, f *fixture, store idm.Store) {
	t.Helper()
	ctx := t.Context()
	ev := func(id, doc bson.ObjectID, docType string, at time.Time, actor bson.ObjectID, actorName, action string) idm.AuditEvent {
		e := idm.AuditEvent{ID: id.Hex(), Time: at, Document: doc.Hex(), DocType: docType, Actor: actorName, Action: action}
		if !actor.IsZero() {
			e.ActorID = actor.Hex()
		}
		return e
	}
	none := bson.ObjectID{}
	for _, c := range []struct {
		name string
		docs []bson.ObjectID
		want []idm.AuditEvent
	}{
		// What GET /subject/S-002/audits reads: the subject's and its links'.
		{"subject S-002 and its links", []bson.ObjectID{f.s2, f.l2, f.l3}, []idm.AuditEvent{
			ev(f.a6, f.s2, idm.DocSubject, time.Date(2019, 3, 5, 10, 0, 0, 0, time.UTC), f.bob, "Bob@Example.org", "consented: 2019-03-05"),
			ev(f.a7, f.s2, idm.DocSubject, time.Date(2019, 3, 5, 11, 0, 0, 0, time.UTC), f.ghost, "", "update"),
			ev(f.a2, f.l2, idm.DocLink, time.Date(2019, 3, 6, 8, 0, 0, 500_000_000, time.UTC), none, "", "link to P-123"),
		}},
		{"subject S-001 and its link", []bson.ObjectID{f.s1, f.l1}, []idm.AuditEvent{
			ev(f.a1, f.s1, idm.DocSubject, time.Date(2019, 3, 4, 10, 11, 12, 123_000_000, time.UTC), f.alice, "alice@example.org", "create"),
			ev(f.a4, f.l1, idm.DocLink, time.Unix(1551695000, 0).UTC(), f.bob, "bob@example.org", "create"),
		}},
		{"user bob", []bson.ObjectID{f.bob}, []idm.AuditEvent{
			ev(f.a3, f.bob, idm.DocUser, time.Date(2019, 3, 4, 10, 0, 10, 0, time.UTC), f.alice, "alice@example.org", "create"),
		}},
		{"unknown document", []bson.ObjectID{f.unknownDoc}, []idm.AuditEvent{
			ev(f.a5, f.unknownDoc, "", time.Date(2019, 3, 4, 12, 0, 0, 0, time.UTC), f.alice, "alice@example.org", "update"),
		}},
	} {
		docs := make([]string, len(c.docs))
		for i, d := range c.docs {
			docs[i] = d.Hex()
		}
		got, err := store.AuditsFor(ctx, docs...)
		if !assert.NoError(t, err, c.name) {
			continue
		}
		for i := range got {
			assert.Empty(t, got[i].Old)
			assert.Empty(t, got[i].New)
			got[i].Old, got[i].New, got[i].Seq = nil, nil, 0 // seq: below
		}
		assert.Equal(t, c.want, got, c.name)
	}
	_, total, err := store.ListAudits(ctx, idm.AuditFilter{})
	require.NoError(t, err)
	assert.Equal(t, 7, total)
	// The records entered the audit log in the original's order: that of
	// their ObjectIds.
	bySeq, err := store.AuditsBySeq(ctx, 0, 100)
	require.NoError(t, err)
	require.Len(t, bySeq, 7)
	assert.True(t, slices.IsSortedFunc(bySeq, func(a, b idm.AuditEvent) int { return strings.Compare(a.ID, b.ID) }),
		"log order is ObjectId order: %v", auditIDsOf(bySeq))
}

// The binary hash that came over still verifies the user's password.
func TestLegacyHashVerifies(t *testing.T) {
	f := newFixture(t)
	src := source(t, f)
	store := stores[0].open(t)
	_, err := migrate.Run(t.Context(), config(src, store))
	require.NoError(t, err)
	u, err := store.FindUserByUsername(t.Context(), "alice@example.org")
	require.NoError(t, err)
	assert.NoError(t, bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(alicePassword)))
}

func TestDryRun(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			f := newFixture(t)
			src := source(t, f)
			store := st.open(t)
			ctx := t.Context()

			cfg := config(src, store)
			cfg.DryRun = true
			dry, err := migrate.Run(ctx, cfg)
			require.NoError(t, err)
			assert.True(t, dry.DryRun)
			assert.Contains(t, dry.String(), "dry run: nothing was written")

			// Nothing was written.
			set, err := store.Bootstrapped(ctx)
			require.NoError(t, err)
			assert.False(t, set)
			users, n, err := store.ListUsers(ctx, idm.UserFilter{})
			require.NoError(t, err)
			assert.Zero(t, n, "%v", users)
			_, n, err = store.ListSubjects(ctx, idm.SubjectFilter{})
			require.NoError(t, err)
			assert.Zero(t, n)
			links, err := store.LinksForSubjects(ctx, "S-001", "S-002", "S-404")
			require.NoError(t, err)
			assert.Empty(t, links)
			_, n, err = store.ListAudits(ctx, idm.AuditFilter{})
			require.NoError(t, err)
			assert.Zero(t, n)

			// The real run does what the dry run announced.
			done, err := migrate.Run(ctx, config(src, store))
			require.NoError(t, err)
			dry.DryRun = false
			assert.Equal(t, done, dry)
		})
	}
}

// failingTarget is a real store whose CreateLink fails after a number of
// links, as a target that goes away mid-migration.
type failingTarget struct {
	idm.Store
	links int
}

var errGone = errors.New("target went away")

func (f *failingTarget) CreateLink(ctx context.Context, l idm.Link) error {
	if f.links == 0 {
		return errGone
	}
	f.links--
	return f.Store.CreateLink(ctx, l)
}

func TestInterruptedRunResumes(t *testing.T) {
	f := newFixture(t)
	src := source(t, f)
	store := stores[0].open(t)
	ctx := t.Context()

	rep, err := migrate.Run(ctx, config(src, &failingTarget{Store: store, links: 2}))
	require.ErrorIs(t, err, errGone)
	assert.Equal(t, migrate.Counts{Read: 3, Written: 2, Skipped: 0}, rep.Links)
	assert.Equal(t, 4, rep.Subjects.Written)
	assert.Zero(t, rep.Audits.Read)

	rest, err := migrate.Run(ctx, config(src, store))
	require.NoError(t, err)
	assert.Equal(t, migrate.Counts{Read: 6, Written: 2, Existing: 2, Skipped: 2}, rest.Links)
	assert.Equal(t, migrate.Counts{Read: 8, Existing: 4, Skipped: 4}, rest.Subjects)
	assert.Equal(t, 7, rest.Audits.Written)
	assert.False(t, rest.BootstrapMarked, "the first run set it")
	checkLinks(t, f, store)
	checkAudits(t, f, store)
}

func TestProgress(t *testing.T) {
	f := newFixture(t)
	src := source(t, f)
	store := stores[0].open(t)

	var out bytes.Buffer
	c := &clock{now: migrationTime, step: time.Second}
	rep, err := migrate.Run(t.Context(), migrate.Config{
		Source: src, Target: store, Now: c.Now, Progress: &out, ProgressEvery: 5 * time.Second,
	})
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	// 30 documents, one clock reading each (plus one for the start and one
	// for the bootstrap marker): a line every 5 readings, and a last one.
	assert.GreaterOrEqual(t, len(lines), 6, out.String())
	assert.LessOrEqual(t, len(lines), 8, out.String())
	assert.Equal(t, "migrate: users 6 read, 3 written, 0 existing, 3 skipped; subjects 8 read, 4 written, 0 existing, 4 skipped; "+
		"links 6 read, 4 written, 0 existing, 2 skipped; audits 8 read, 7 written, 0 existing, 1 skipped; "+
		"other 2 read, 0 written, 0 existing, 2 skipped", lines[len(lines)-1])
	assert.True(t, strings.HasPrefix(lines[0], "migrate: users 5 read"), lines[0])
	assert.Equal(t, 18, rep.Written())
}

func TestConfig(t *testing.T) {
	store := stores[0].open(t)
	_, db := testmongo.DB(t)
	src := db.Collection(migrate.DefaultCollection)
	for _, c := range []struct {
		name string
		cfg  migrate.Config
	}{
		{"no source", migrate.Config{Target: store}},
		{"no target", migrate.Config{Source: src}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := migrate.Run(t.Context(), c.cfg)
			assert.Error(t, err)
		})
	}
	t.Run("empty source", func(t *testing.T) {
		rep, err := migrate.Run(t.Context(), migrate.Config{Source: src, Target: store})
		require.NoError(t, err)
		assert.Equal(t, migrate.Report{}, rep)
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := migrate.Run(ctx, migrate.Config{Source: src, Target: store})
		assert.ErrorIs(t, err, context.Canceled)
	})
}

// A target that already holds records in the way: another user with a
// source username, another subject with a source SSSID, a subject with a
// source ID under another SSSID, an audit record with a source ID about
// another document, a bootstrap marker. Those source records are skipped
// and the target's are left as they are.
func TestTargetConflicts(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			f := newFixture(t)
			src := source(t, f)
			store := st.open(t)
			ctx := t.Context()

			at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			// Rev 1: what a store gives a record it creates.
			otherBob := idm.User{ID: idm.NewID(), Username: "bob@example.org", PasswordHash: "$idm-sha256-bcrypt$x", Created: at, Changed: at, Rev: 1}
			otherS3 := idm.Subject{ID: idm.NewID(), SSSID: "S-003", Name: "Not Cem", Bday: "2000-01-01", Created: at, Changed: at, Rev: 1}
			s4Squatter := idm.Subject{ID: f.s4.Hex(), SSSID: "S-XYZ", Name: "Squatter", Bday: "2000-01-01", Created: at, Changed: at, Rev: 1}
			auditSquatter := idm.AuditEvent{ID: f.a3.Hex(), Time: at, Document: otherS3.ID, DocType: idm.DocSubject, Action: "create"}
			require.NoError(t, store.CreateUser(ctx, otherBob))
			require.NoError(t, store.CreateSubject(ctx, otherS3))
			require.NoError(t, store.CreateSubject(ctx, s4Squatter))
			require.NoError(t, store.AppendAudit(ctx, auditSquatter))
			require.NoError(t, store.MarkBootstrapped(ctx, at))

			rep, err := migrate.Run(ctx, config(src, store))
			require.NoError(t, err)
			assert.False(t, rep.BootstrapMarked)
			assert.Equal(t, migrate.Counts{Read: 6, Written: 2, Skipped: 4}, rep.Users)
			assert.Equal(t, migrate.Counts{Read: 8, Written: 2, Skipped: 6}, rep.Subjects)
			assert.Equal(t, migrate.Counts{Read: 8, Written: 6, Skipped: 2}, rep.Audits)
			reasons := map[string]string{}
			for _, p := range rep.Skipped {
				reasons[p.ID] = p.Reason
			}
			assert.Equal(t, `username "bob@example.org" is already held by user `+otherBob.ID, reasons[f.bob.Hex()])
			assert.Equal(t, `sssid "S-003" is already held by subject `+otherS3.ID, reasons[f.s3.Hex()])
			assert.Contains(t, reasons[f.s4.Hex()], "the target refused the subject as a duplicate")
			assert.Contains(t, reasons[f.a3.Hex()], "the target refused the audit record as a duplicate")

			gotBob, err := store.FindUserByUsername(ctx, "bob@example.org")
			require.NoError(t, err)
			assert.Equal(t, otherBob, gotBob)
			gotS3, err := store.FindSubject(ctx, "S-003")
			require.NoError(t, err)
			assert.Equal(t, otherS3, gotS3)
			gotS4, err := store.FindSubject(ctx, "S-XYZ")
			require.NoError(t, err)
			assert.Equal(t, s4Squatter, gotS4)
			_, err = store.FindSubject(ctx, "S-004")
			assert.ErrorIs(t, err, idm.ErrNotFound)
			audits, err := store.AuditsFor(ctx, otherS3.ID)
			require.NoError(t, err)
			require.Len(t, audits, 1)
			assert.Equal(t, "create", audits[0].Action)
			assert.Equal(t, at, audits[0].Time)

			// The actor of audits by the skipped bob still has his name.
			audits, err = store.AuditsFor(ctx, f.l1.Hex())
			require.NoError(t, err)
			require.Len(t, audits, 1)
			assert.Equal(t, f.bob.Hex(), audits[0].ActorID)
			assert.Equal(t, "bob@example.org", audits[0].Actor)
		})
	}
}

func auditIDsOf(events []idm.AuditEvent) []string {
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	return ids
}
