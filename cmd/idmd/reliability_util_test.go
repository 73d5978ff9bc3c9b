package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The reliability tests (crash, outage, hostile input) share these helpers.
// Requests sent from worker goroutines go through send, which reports
// failures instead of failing the test, and through a client with a
// timeout, so that a request that hangs shows up as an error instead of
// blocking the test.

// newClient returns an HTTP client of its own (own connection pool) whose
// requests give up after timeout.
func newClient(t *testing.T, timeout time.Duration) *http.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 32, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: timeout}
}

// send sends one request; token, when set, goes into Authorization. It
// returns the status and body, or the transport error.
func send(ctx context.Context, c *http.Client, method, url, token, body string) (int, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "JWT "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, b, nil
}

// bootstrap creates the first admin through /init and returns a staff token
// of theirs.
func bootstrap(t *testing.T, base string) string {
	t.Helper()
	r := call(t, "POST", base+"/init", "", fmt.Sprintf(`{"username":%q,"password":%q}`, adminUser, adminPass))
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	return login(t, base, adminUser, adminPass)
}

// ledger records the writes idmd acknowledged with a 2xx, and those whose
// outcome is unknown because the answer never came.
type ledger struct {
	mu        sync.Mutex
	subjects  map[string]string // sssid -> name, acknowledged creates
	emails    map[string]string // sssid -> email, acknowledged updates
	users     map[string]string // username -> id, acknowledged creates
	attempted map[string]bool   // every sssid and username ever sent
	unknown   map[string]bool   // sssids and usernames sent without an answer
	refused   map[int]int       // status -> count of non-2xx answers
}

func newLedger() *ledger {
	return &ledger{
		subjects: map[string]string{}, emails: map[string]string{}, users: map[string]string{},
		attempted: map[string]bool{}, unknown: map[string]bool{}, refused: map[int]int{},
	}
}

func (l *ledger) attempt(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.attempted[key] = true
}

// result records the answer to a write of key: ack is called for a 2xx.
func (l *ledger) result(key string, status int, err error, ack func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err != nil:
		l.unknown[key] = true
	case status >= 200 && status < 300:
		ack()
	default:
		l.refused[status]++
	}
}

// counts returns how many creates of subjects and users and updates of
// subjects were acknowledged, and how many writes had no answer.
func (l *ledger) counts() (subjects, users, emails, unknown int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.subjects), len(l.users), len(l.emails), len(l.unknown)
}

// listAll pages through a list endpoint (GET /subject or GET /user) and
// returns every record.
func listAll(t *testing.T, base, path, token, extra string) []map[string]any {
	t.Helper()
	var all []map[string]any
	const per = 1000
	for offset := 0; ; offset += per {
		r := call(t, "GET", fmt.Sprintf("%s%s?offset=%d&perpage=%d%s", base, path, offset, per, extra), token, "")
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		var page struct {
			Data []map[string]any `json:"data"`
		}
		require.NoError(t, json.Unmarshal(r.body, &page))
		all = append(all, page.Data...)
		if len(page.Data) < per {
			return all
		}
	}
}

// checkOverHTTP checks through idmd's API that every acknowledged write is
// there, and that no subject or user exists that was never sent. It returns
// how many records it checked and how many of the unanswered writes were
// stored after all.
func checkOverHTTP(t *testing.T, base, token string, l *ledger) (checked, landed int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()

	subjects := map[string]map[string]any{}
	for _, s := range listAll(t, base, "/subject", token, "&ordercol=sssid&orderdir=asc") {
		sssid, _ := s["sssid"].(string)
		require.NotContains(t, subjects, sssid, "subject %q listed twice", sssid)
		subjects[sssid] = s
	}
	for sssid, name := range l.subjects {
		s, ok := subjects[sssid]
		require.True(t, ok, "acknowledged subject %q is missing", sssid)
		require.Equal(t, name, s["name"], "subject %q", sssid)
		checked++
	}
	for sssid, email := range l.emails {
		require.Equal(t, email, subjects[sssid]["email"], "acknowledged update of subject %q is missing", sssid)
		checked++
	}

	users := map[string]string{}
	for _, u := range listAll(t, base, "/user", token, "") {
		name, _ := u["username"].(string)
		id, _ := u["id"].(string)
		require.NotContains(t, users, name, "user %q listed twice", name)
		users[name] = id
	}
	for name, id := range l.users {
		require.Equal(t, id, users[name], "acknowledged user %q is missing", name)
		checked++
	}

	// Nothing appears that nobody asked for.
	for _, k := range append(slices.Collect(maps.Keys(subjects)), slices.Collect(maps.Keys(users))...) {
		if k == adminUser || strings.HasPrefix(k, "fixture-") { // set up by the test itself
			continue
		}
		require.True(t, l.attempted[k], "record %q was never sent", k)
		if l.unknown[k] {
			landed++
		}
	}
	return checked, landed
}
