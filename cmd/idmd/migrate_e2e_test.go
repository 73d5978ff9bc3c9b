package main_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/c3-pro/idm/internal/testmongo"
)

// A user of the original service: its password hash was made by Python's
// bcrypt (bcrypt.hashpw(b"correct horse battery staple", bcrypt.gensalt(12))).
const (
	legacyUser     = "legacy.admin@example.org"
	legacyPassword = "correct horse battery staple"
	legacyHash     = "$2b$12$vwuGX.5zS204Eyez0DnBa../DZU/f67Bdg2.vONsIffmloPRwhPva"
)

// seedOriginal writes documents in the original service's shapes into the
// collection c3pro_idm of a fresh database and returns the database's name
// and the JWT of a link that was handed out before the migration.
func seedOriginal(t *testing.T) (db, printedJWT string, ids map[string]bson.ObjectID) {
	t.Helper()
	ctx := context.Background()
	client := testmongo.Client(t, testmongo.URI(t))
	db = testmongo.NewDatabaseName(t)
	t.Cleanup(func() { _ = client.Database(db).Drop(context.Background()) })
	coll := client.Database(db).Collection("c3pro_idm")

	ids = map[string]bson.ObjectID{}
	for _, k := range []string{"admin", "staff", "subject", "openLink", "usedLink", "audit1", "audit2", "audit3"} {
		ids[k] = bson.NewObjectID()
	}
	exp := time.Now().Add(20 * time.Hour).Unix()
	// The original signed link JWTs with its own secret; idmd never needs it.
	printedJWT, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"jti": ids["openLink"].Hex(), "iss": "https://idm.example.org", "aud": "https://idm.example.org",
		"exp": exp, "sub": "Ada Lovelace", "birthdate": "1915-12-10",
	}).SignedString([]byte("super-duper-secret"))
	require.NoError(t, err)
	docs := []any{
		bson.D{{Key: "_id", Value: ids["admin"]}, {Key: "type", Value: "user"}, {Key: "username", Value: legacyUser},
			{Key: "password", Value: bson.Binary{Data: []byte(legacyHash)}}, {Key: "admin", Value: true},
			{Key: "temporary", Value: bson.D{{Key: "hash", Value: "1f0e2d3c-aaaa-4bbb-8ccc-123456789abc"}, {Key: "time", Value: int64(1551700800)}}}},
		bson.D{{Key: "_id", Value: ids["staff"]}, {Key: "type", Value: "user"}, {Key: "username", Value: "staff@example.org"},
			{Key: "password", Value: legacyHash}, {Key: "admin", Value: false}, {Key: "temporary", Value: nil}},
		bson.D{{Key: "_id", Value: ids["subject"]}, {Key: "type", Value: "subject"}, {Key: "sssid", Value: "SSS-001"},
			{Key: "name", Value: "Ada Lovelace"}, {Key: "bday", Value: "1915-12-10"}, {Key: "email", Value: "ada@example.org"},
			{Key: "date_consented", Value: "2019-03-04T10:11:12+01:00"}, {Key: "date_invited", Value: "04/03/2019"},
			{Key: "created", Value: "2019-03-04T10:11:12.123456+00:00"}, {Key: "changed", Value: "2019-03-05T09:00:00.000000+00:00"},
			{Key: "study_arm", Value: "B"}, {Key: "site", Value: bson.D{{Key: "id", Value: int32(7)}, {Key: "name", Value: "Basel"}}}},
		bson.D{{Key: "_id", Value: ids["openLink"]}, {Key: "type", Value: "link"}, {Key: "sub", Value: "SSS-001"},
			{Key: "iss", Value: "https://idm.example.org"}, {Key: "aud", Value: "https://idm.example.org"},
			{Key: "secret", Value: "super-duper-secret"}, {Key: "algorithm", Value: "HS256"},
			{Key: "created", Value: "2019-03-05T09:00:00.000000+00:00"}, {Key: "exp", Value: exp},
			{Key: "_jwt", Value: bson.Binary{Data: []byte(printedJWT)}}},
		bson.D{{Key: "_id", Value: ids["usedLink"]}, {Key: "type", Value: "link"}, {Key: "sub", Value: "SSS-001"},
			{Key: "iss", Value: "https://idm.example.org"}, {Key: "aud", Value: "https://idm.example.org"},
			{Key: "secret", Value: "super-duper-secret"}, {Key: "algorithm", Value: "HS256"},
			{Key: "created", Value: "2019-03-04T12:00:00.000000+00:00"}, {Key: "exp", Value: int64(1551830400)},
			{Key: "_jwt", Value: "eyJhbGciOiJIUzI1NiJ9.eyJqdGkiOiJvbGQifQ.c2ln"},
			{Key: "linked_to", Value: "P-OLD-1"}, {Key: "linked_system", Value: "urn:c3pro"},
			{Key: "linked_on", Value: "2019-03-04T13:00:00.000000+00:00"}, {Key: "withdrawn_on", Value: "2019-04-01"}},
		bson.D{{Key: "_id", Value: ids["audit1"]}, {Key: "type", Value: "audit"}, {Key: "document", Value: ids["subject"]},
			{Key: "actor_id", Value: ids["admin"]}, {Key: "datetime", Value: "2019-03-04T10:11:12.200000+00:00"}, {Key: "action", Value: "create"}},
		bson.D{{Key: "_id", Value: ids["audit2"]}, {Key: "type", Value: "audit"}, {Key: "document", Value: ids["usedLink"]},
			{Key: "actor_id", Value: ids["staff"]}, {Key: "datetime", Value: "2019-03-04T12:00:00.100000+00:00"}, {Key: "action", Value: "create JWT"}},
		bson.D{{Key: "_id", Value: ids["audit3"]}, {Key: "type", Value: "audit"}, {Key: "document", Value: ids["usedLink"]},
			{Key: "datetime", Value: "2019-03-04T13:00:00.000000+00:00"}, {Key: "action", Value: "link to P-OLD-1"}},
	}
	_, err = coll.InsertMany(ctx, docs)
	require.NoError(t, err)
	return db, printedJWT, ids
}

func TestMigrateThenServe(t *testing.T) {
	for _, target := range []string{"bbolt", "mongodb"} {
		t.Run(target, func(t *testing.T) {
			source, printedJWT, ids := seedOriginal(t)
			env := baseEnv(t)
			if target == "mongodb" {
				env = mongoEnv(t, testmongo.NewDatabaseName(t))
			}
			from := strings.TrimSuffix(testmongo.URI(t), "/") + "/"
			code, out := runCmd(t, env, "", "migrate", "--from", from, "--from-db", source, "--dry-run")
			require.Equal(t, 0, code, out)
			code, out = runCmd(t, env, "", "migrate", "--from", from, "--from-db", source)
			require.Equal(t, 0, code, out)
			t.Logf("first run:\n%s", out)
			code, out = runCmd(t, env, "", "migrate", "--from-db", source, "--from", from) // flags in any order
			require.Equal(t, 0, code, out)
			require.Regexp(t, `(?i)written:?\s*0\b|0 written`, out, "the second run changes nothing")
			t.Logf("second run:\n%s", out)

			p := start(t, env)
			base := p.url
			// The legacy admin logs in with the old password; /init stays closed.
			tok := login(t, base, legacyUser, legacyPassword)
			r := call(t, "POST", base+"/init", "", `{"username":"x@example.org","password":"another long passphrase"}`)
			require.Equal(t, http.StatusConflict, r.status)

			// The subject reads back with its fields as they were.
			r = call(t, "GET", base+"/subject/SSS-001", tok, "")
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			subj := r.json(t)["data"].(map[string]any)
			require.Equal(t, "Ada Lovelace", subj["name"])
			require.Equal(t, "04/03/2019", subj["date_invited"], "dates today's API would refuse are kept")
			require.Equal(t, "B", subj["study_arm"])
			require.Equal(t, map[string]any{"id": float64(7), "name": "Basel"}, subj["site"])
			require.NotContains(t, string(r.body), "_id")

			// Links keep their ids, state and expiry.
			r = call(t, "GET", base+"/link/"+ids["usedLink"].Hex(), tok, "")
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			used := r.json(t)["data"].(map[string]any)
			require.Equal(t, "P-OLD-1", used["linked_to"])
			require.EqualValues(t, 1551830400, used["exp"])

			// The audit trail, oldest first, with actors and [Link] entries.
			r = call(t, "GET", base+"/subject/SSS-001/audits", tok, "")
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			var trail struct {
				Data []struct{ Datetime, Action, Actor string }
			}
			require.NoError(t, json.Unmarshal(r.body, &trail))
			require.GreaterOrEqual(t, len(trail.Data), 3)
			require.Equal(t, "create", trail.Data[0].Action)
			require.Equal(t, legacyUser, trail.Data[0].Actor)
			require.Equal(t, "[Link] create JWT", trail.Data[1].Action)
			require.Equal(t, "staff@example.org", trail.Data[1].Actor)
			require.Equal(t, "[Link] link to P-OLD-1", trail.Data[2].Action)
			require.Empty(t, trail.Data[2].Actor)

			// A QR code printed before the migration still establishes.
			patient := `{"resourceType":"Patient","identifier":[{"system":"urn:app","value":"P-NEW-7"}]}`
			req, err := http.NewRequest("POST", base+"/establish", strings.NewReader(patient))
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+printedJWT)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusNoContent, resp.StatusCode)
			r = call(t, "GET", base+"/link/"+ids["openLink"].Hex(), tok, "")
			require.Equal(t, "P-NEW-7", r.json(t)["data"].(map[string]any)["linked_to"])
			sum := sha256.Sum256([]byte(printedJWT))
			require.NotContains(t, string(r.body), hex.EncodeToString(sum[:]), "no hash or token in link JSON")
			require.NotContains(t, string(r.body), "super-duper-secret")
		})
	}
}
