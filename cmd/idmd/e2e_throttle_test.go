package main_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/internal/testmongo"
)

// TestTwoInstancesShareTheGuessLimit runs two idmd processes on one
// MongoDB-wire database (the embedded FerretDB unless IDM_TEST_MONGO_URI
// names a MongoDB) with the per-address limit off, as behind a proxy, and
// sends 40 simultaneous wrong passwords for one account, alternating
// between them. Each password check leaves one audit record ("login
// failed"), so the trail counts the checks: at most 5, the rest 429, and
// the right password is refused afterwards on both instances. An admin's
// unlock (on one instance) gives 5 places again to both; the test runs
// three such rounds.
//
// Each instance talks to the database over one connection
// (maxPoolSize=1), as FerretDB v1 needs for atomic updates within one
// client. The bound holds on FerretDB too, although its conditional updates
// are not atomic between connections (mongo-test-server.md): mongostore
// reserves an attempt by inserting it at one of the 5 places of the
// account's current window, under a unique index, and unique inserts are
// atomic between connections on FerretDB as on MongoDB. (When the reserve
// was one FindOneAndUpdate whose filter required count < 5, two instances
// on FerretDB checked 5-11 passwords per round here.)
func TestTwoInstancesShareTheGuessLimit(t *testing.T) {
	db := testmongo.NewDatabaseName(t)
	uri := testmongo.URI(t)
	sep := "?"
	if strings.Contains(uri, "?") {
		sep = "&"
	}
	env := append(baseEnv(t), "IDM_MONGO_URI="+uri+sep+"maxPoolSize=1", "IDM_MONGO_DB="+db, "IDM_RATE_LIMIT=off")
	a := start(t, env)
	token := bootstrap(t, a.url)
	b := start(t, env)
	ferret := testmongo.IsFerretDB(t.Context(), testmongo.Client(t, uri))

	const victim, victimPass = "victim@example.org", "a long and right password"
	r := call(t, "POST", a.url+"/user", token, fmt.Sprintf(`{"username":%q,"password":%q}`, victim, victimPass))
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)

	const n = 40
	checkedBefore := 0
	for round := range 3 {
		statuses := make([]int, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range statuses {
			base := a.url
			if i%2 == 1 {
				base = b.url
			}
			wg.Go(func() {
				<-start
				statuses[i] = call(t, "POST", base+"/auth", "", fmt.Sprintf(`{"username":%q,"password":"wrong guess %d"}`, victim, i)).status
			})
		}
		close(start)
		wg.Wait()
		answers := map[int]int{}
		for _, s := range statuses {
			answers[s]++
		}

		checked := -checkedBefore
		for _, rec := range listAll(t, a.url, "/audit", token, "") {
			if rec["action"] == "login failed" && strings.Contains(fmt.Sprint(rec["new"]), victim) {
				checked++
			}
		}
		checkedBefore += checked
		t.Logf("round %d, two instances (FerretDB %v): %d attempts sent, %d passwords checked, answers %v", round, ferret, n, checked, answers)
		assert.LessOrEqual(t, checked, 5, "round %d: password checks", round)
		assert.Equal(t, checked, answers[http.StatusUnauthorized], "round %d: every check answered 401", round)
		assert.Equal(t, n-checked, answers[http.StatusTooManyRequests], "round %d: the rest 429", round)

		for _, base := range []string{a.url, b.url} {
			r := call(t, "POST", base+"/auth", "", fmt.Sprintf(`{"username":%q,"password":%q}`, victim, victimPass))
			assert.Equal(t, http.StatusTooManyRequests, r.status, "round %d: the right password once the limit is reached: %s", round, r.body)
		}
		unlockAt := []string{a.url, b.url}[round%2]
		r := call(t, "PUT", unlockAt+"/user/"+victim, token, `{"unlock":true}`)
		require.Equal(t, http.StatusOK, r.status, "unlock: %s", r.body)
	}
	r = call(t, "POST", b.url+"/auth", "", fmt.Sprintf(`{"username":%q,"password":%q}`, victim, victimPass))
	assert.Equal(t, http.StatusOK, r.status, "the right password after an unlock: %s", r.body)
}
