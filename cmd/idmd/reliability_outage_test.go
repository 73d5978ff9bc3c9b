package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/internal/testmongo"
	"github.com/c3-pro/idm/mongostore"
)

// Outage bounds. mongostore waits 2 s for a usable server
// (mongostore.DefaultServerSelectionTimeout) and /readyz pings with a 2 s
// timeout; the bounds add slack for a loaded machine and the race detector.
const (
	outageFailFast  = 2*mongostore.DefaultServerSelectionTimeout + time.Second // a request during the outage ends within this
	outageLength    = 5 * time.Second                                          // how long the database stays down
	outageRecovery  = 20 * time.Second                                         // idmd serves writes again within this after the database is back
	outageLoadAfter = 500 * time.Millisecond                                   // load after recovery
)

// sample is one request of the outage test's load.
type sample struct {
	op         string
	begin, end time.Time
	status     int
	body       string
	err        error
}

func TestStoreOutageMongo(t *testing.T) {
	srv := testmongo.StartServer(t, "", "")
	env := append(baseEnv(t), "IDM_MONGO_URI="+srv.URI(), "IDM_MONGO_DB=idm")
	p := start(t, env)
	token := bootstrap(t, p.url)
	r := call(t, "POST", p.url+"/subject", token, `{"sssid":"fixture-1","name":"Fixture","bday":"1970-01-01"}`)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)

	// A client timeout far above the bound: a request that hangs shows up
	// as a long duration (or this error), not as a stuck test.
	c := newClient(t, 30*time.Second)
	l := newLedger()
	var (
		mu      sync.Mutex
		samples []sample
		stop    atomic.Bool
		wg      sync.WaitGroup
	)
	record := func(op string, begin time.Time, status int, body []byte, err error) {
		mu.Lock()
		defer mu.Unlock()
		samples = append(samples, sample{op: op, begin: begin, end: time.Now(), status: status, body: string(body), err: err})
	}
	ctx := t.Context()
	for w := range 2 { // writers
		wg.Go(func() {
			for i := 0; !stop.Load() && i < 5000; i++ {
				sssid := fmt.Sprintf("w%d-%04d", w, i)
				name := "Name " + sssid
				l.attempt(sssid)
				begin := time.Now()
				status, body, err := send(ctx, c, "POST", p.url+"/subject", token,
					fmt.Sprintf(`{"sssid":%q,"name":%q,"bday":"1980-05-17"}`, sssid, name))
				l.result(sssid, status, err, func() { l.subjects[sssid] = name })
				record("POST /subject", begin, status, body, err)
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	for _, op := range []struct{ name, method, path, token, body string }{
		{"GET /subject/{sssid}", "GET", "/subject/fixture-1", token, ""},
		{"GET /readyz", "GET", "/readyz", "", ""},
		{"POST /auth", "POST", "/auth", "", fmt.Sprintf(`{"username":%q,"password":%q}`, adminUser, adminPass)},
	} {
		wg.Go(func() {
			for i := 0; !stop.Load() && i < 5000; i++ {
				begin := time.Now()
				status, body, err := send(ctx, c, op.method, p.url+op.path, op.token, op.body)
				record(op.name, begin, status, body, err)
				time.Sleep(50 * time.Millisecond)
			}
		})
	}

	time.Sleep(700 * time.Millisecond)
	downBegin := time.Now()
	srv.Stop() // drops every connection to the database at once
	down := time.Now()

	// While the database is down the process stays alive and says so.
	time.Sleep(outageLength / 2)
	r = call(t, "GET", p.url+"/healthz", "", "")
	require.Equal(t, http.StatusOK, r.status, "liveness during the outage")
	r = call(t, "GET", p.url+"/status", "", "")
	require.JSONEq(t, `{"data":{"db":"error","mail":"disabled","link_secret":"ok","audit_log":"error"}}`, string(r.body))
	time.Sleep(outageLength - outageLength/2)

	upBegin := time.Now()
	require.NoError(t, srv.Start())
	up := time.Now()

	// idmd recovers without a restart: a write and /readyz succeed again.
	var writeBack, readyBack time.Duration
	for deadline := up.Add(outageRecovery); writeBack == 0 || readyBack == 0; {
		require.True(t, time.Now().Before(deadline), "idmd did not recover within %v of the database's return", outageRecovery)
		mu.Lock()
		for _, s := range samples {
			if s.begin.After(up) && s.status/100 == 2 {
				switch s.op {
				case "POST /subject":
					if writeBack == 0 || s.end.Sub(up) < writeBack {
						writeBack = s.end.Sub(up)
					}
				case "GET /readyz":
					if readyBack == 0 || s.end.Sub(up) < readyBack {
						readyBack = s.end.Sub(up)
					}
				}
			}
		}
		mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(outageLoadAfter)
	stop.Store(true)
	wg.Wait()
	select {
	case <-p.exited:
		t.Fatal("idmd exited during the outage")
	default:
	}

	// Every answer was a success or a 503 envelope; during the outage
	// every request failed fast with 503.
	var (
		failFast  []time.Duration // requests wholly inside the outage
		readyDown time.Duration   // first /readyz 503 after the stop
		readyMax  time.Duration   // slowest /readyz 503 wholly inside the outage
		counts    = map[string]map[int]int{}
	)
	for _, s := range samples {
		require.NoError(t, s.err, "%s at %v: transport error", s.op, s.begin.Sub(downBegin))
		if counts[s.op] == nil {
			counts[s.op] = map[int]int{}
		}
		counts[s.op][s.status]++
		d := s.end.Sub(s.begin)
		require.LessOrEqual(t, d, outageFailFast, "%s at %v took %v", s.op, s.begin.Sub(downBegin), d)
		if s.status/100 == 2 {
			continue
		}
		require.Equal(t, http.StatusServiceUnavailable, s.status, "%s at %v: %s", s.op, s.begin.Sub(downBegin), s.body)
		var env struct {
			Error struct {
				Status  int    `json:"status"`
				Message string `json:"message"`
			} `json:"error"`
		}
		require.NoError(t, json.Unmarshal([]byte(s.body), &env), "%s: %s", s.op, s.body)
		require.Equal(t, http.StatusServiceUnavailable, env.Error.Status)
		if s.begin.After(down) && s.end.Before(upBegin) {
			failFast = append(failFast, d)
			if s.op == "GET /readyz" {
				if readyDown == 0 || s.end.Sub(down) < readyDown {
					readyDown = s.end.Sub(down)
				}
				readyMax = max(readyMax, d)
			}
		}
		require.False(t, s.begin.After(down) && s.end.Before(upBegin) && s.status/100 == 2,
			"%s succeeded while the database was down", s.op)
	}
	require.NotEmpty(t, failFast, "no request fell wholly inside the outage")
	require.NotZero(t, readyDown, "/readyz never answered 503 during the outage")
	for op, byStatus := range counts {
		require.Positive(t, byStatus[http.StatusServiceUnavailable]+byStatus[http.StatusOK]+byStatus[http.StatusCreated], op)
	}
	slices.Sort(failFast)

	// Nothing acknowledged was lost, as seen by idmd and in the database.
	checked, landed := checkOverHTTP(t, p.url, token, l)
	store, err := mongostore.Open(ctx, srv.URI(), "idm")
	require.NoError(t, err)
	defer store.Close()
	n := checkStore(t, store, l)
	t.Logf("outage of %v (stopping the database took %v): %d requests failed with 503 wholly inside it, latency median %v, max %v (bound %v); "+
		"first /readyz 503 %v after the stop, each /readyz 503 within %v; back: first write %v, /readyz %v after the database returned; "+
		"answers by route and status %v; %d acknowledged writes checked over HTTP, %d in the store, %d unanswered (%d stored)",
		upBegin.Sub(downBegin).Round(time.Millisecond), down.Sub(downBegin).Round(time.Millisecond), len(failFast), failFast[len(failFast)/2].Round(time.Millisecond),
		failFast[len(failFast)-1].Round(time.Millisecond), outageFailFast, readyDown.Round(time.Millisecond), readyMax.Round(time.Millisecond),
		writeBack.Round(time.Millisecond), readyBack.Round(time.Millisecond), counts, checked, n, len(l.unknown), landed)
}
