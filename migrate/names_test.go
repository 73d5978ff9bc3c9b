package migrate_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/internal/testmongo"
	"github.com/c3-pro/idm/migrate"
)

// Usernames that collide after normalisation, or break today's username
// rule, and SSSIDs that the API refuses for new subjects are reported one
// by one (id, value, why); an SSSID that no path can address comes over
// under a reported new one, and its links follow.
func TestUnusualNamesAreReported(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			ctx := t.Context()
			_, db := testmongo.DB(t)
			src := db.Collection(migrate.DefaultCollection)
			user := func(n byte, name string) (bson.ObjectID, bson.D) {
				id := oid(int(n), n)
				return id, bson.D{{Key: "_id", Value: id}, {Key: "type", Value: "user"}, {Key: "username", Value: name},
					{Key: "password", Value: bobHash}, {Key: "admin", Value: false}}
			}
			subject := func(n byte, sssid string) (bson.ObjectID, bson.D) {
				id := oid(100+int(n), n)
				return id, bson.D{{Key: "_id", Value: id}, {Key: "type", Value: "subject"}, {Key: "sssid", Value: sssid},
					{Key: "name", Value: "N"}, {Key: "bday", Value: "1980-05-17"}}
			}
			alice, dAlice := user(1, "alice@example.org")
			wide, dWide := user(2, "\uff21lice@example.org") // fullwidth A: alice after normalisation
			cyr, dCyr := user(3, "r\u043eot@example.org")
			jose, dJose := user(4, "Jose\u0301@example.org")
			slash, dSlash := subject(1, "S/1")
			dots, dDots := subject(2, "..")
			zw, dZW := subject(3, "S-9\u200b")
			link := oid(200, 9)
			dLink := bson.D{{Key: "_id", Value: link}, {Key: "type", Value: "link"}, {Key: "sub", Value: ".."},
				{Key: "iss", Value: "https://idm.example"}, {Key: "aud", Value: "https://app.example"},
				{Key: "secret", Value: linkSecret}, {Key: "algorithm", Value: "HS256"}, {Key: "created", Value: int32(1551695000)}}
			_, err := src.InsertMany(ctx, []any{dAlice, dWide, dCyr, dJose, dSlash, dDots, dZW, dLink})
			require.NoError(t, err)
			store := st.open(t)

			rep, err := migrate.Run(ctx, config(src, store))
			require.NoError(t, err)
			t.Logf("report:\n%s", rep)
			problems := map[string]string{}
			for _, p := range append(rep.Skipped, rep.Notes...) {
				problems[p.ID] += p.Reason + "\n"
			}
			for id, want := range map[bson.ObjectID][]string{
				wide:  {`username "\uff21lice@example.org" collides after normalisation with user ` + alice.Hex(), `both are "alice@example.org"`},
				cyr:   {`username "r\u043eot@example.org" breaks the username rule`, "mixes the scripts Cyrillic and Latin", "can still log in"},
				jose:  {`username "Jose\u0301@example.org" stored in its normal form "jos\u00e9@example.org"`},
				slash: {"invalid `sssid` \"S/1\"", "'/'", "reachable as /subject/S%2F1"},
				zw:    {"invalid `sssid` \"S-9\\u200b\"", "invisible formatting characters", "reachable as /subject/S-9%E2%80%8B"},
				dots:  {"invalid `sssid` \"..\"", `brought over as sssid "migrated-` + dots.Hex() + `"`},
				link:  {`its subject's sssid ".." was brought over as "migrated-` + dots.Hex() + `"`},
			} {
				for _, w := range want {
					assert.Contains(t, problems[id.Hex()], w, "document %s", id.Hex())
				}
			}
			assert.Equal(t, migrate.Counts{Read: 4, Written: 3, Skipped: 1}, rep.Users)

			// What came over can be found as the API finds it.
			for name, id := range map[string]bson.ObjectID{"r\u043eot@example.org": cyr, "jose\u0301@example.org": jose, "JOS\u00c9@example.org": jose} {
				u, err := idm.FindUserByUsername(ctx, store, name)
				if assert.NoError(t, err, name) {
					assert.Equal(t, id.Hex(), u.ID, name)
				}
			}
			for sssid, id := range map[string]bson.ObjectID{"S/1": slash, "S-9\u200b": zw, "migrated-" + dots.Hex(): dots} {
				s, err := store.FindSubject(ctx, sssid)
				if assert.NoError(t, err, sssid) {
					assert.Equal(t, id.Hex(), s.ID)
				}
			}
			l, err := store.FindLink(ctx, link.Hex())
			require.NoError(t, err)
			assert.Equal(t, "migrated-"+dots.Hex(), l.SSSID)

			// A second run finds everything in place.
			again, err := migrate.Run(ctx, config(src, store))
			require.NoError(t, err)
			assert.False(t, again.Changed(), "second run:\n%s", again)
			assert.Equal(t, 1, strings.Count(again.String(), "collides after normalisation"))
		})
	}
}
