package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/c3-pro/idm/auditlog"
	"github.com/c3-pro/idm/boltstore"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/internal/testmongo"
	"github.com/c3-pro/idm/mongostore"
)

// Crash rounds: each round puts idmd under concurrent write load, kills it
// with SIGKILL at a random moment, restarts it on the same store and checks
// that every write it acknowledged is there.
const (
	crashRounds         = 5
	crashSubjectWorkers = 6
	crashUserWorkers    = 2
	// crashGroupWorkers is the number of subject writers of the group
	// commit case: enough that many writes wait for each commit.
	crashGroupWorkers = 48
	crashMinLoad      = 300 * time.Millisecond // before the kill
	crashMaxLoad      = 1200 * time.Millisecond
	crashMaxPerWorker = 2000 // a bound on requests per worker and round
)

func TestCrashSafetyBolt(t *testing.T) {
	crashSafetyBolt(t, crashSubjectWorkers)
}

// TestCrashSafetyBoltGroupCommit kills idmd while many concurrent writes
// share bbolt transactions (the store's group commit): every write it
// acknowledged must be there all the same.
func TestCrashSafetyBoltGroupCommit(t *testing.T) {
	crashSafetyBolt(t, crashGroupWorkers)
}

func crashSafetyBolt(t *testing.T, subjectWorkers int) {
	env := baseEnv(t)
	var dbPath string
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "IDM_DB="); ok {
			dbPath = v
		}
	}
	l := crashLoop(t, env, subjectWorkers)

	// The file is consistent (bbolt's own check of pages and freelist) and
	// every acknowledged write is in it, with its audit records.
	db, err := bolt.Open(dbPath, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	require.NoError(t, err, "the bbolt file does not open after the crashes")
	var problems []error
	require.NoError(t, db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() { // drained to the end: Check reads the tx until it closes the channel
			problems = append(problems, err)
		}
		return nil
	}))
	require.Empty(t, problems, "bbolt consistency check")
	require.NoError(t, db.Close())
	store, err := boltstore.Open(dbPath, boltstore.WithTimeout(5*time.Second))
	require.NoError(t, err)
	defer store.Close()
	n := checkStore(t, store, l)
	t.Logf("bbolt file %s: consistent; %d acknowledged records and their audits checked in the store", filepath.Base(dbPath), n)
}

func TestCrashSafetyMongo(t *testing.T) {
	dbName := testmongo.NewDatabaseName(t)
	client := testmongo.Client(t, testmongo.URI(t))
	t.Cleanup(func() { _ = client.Database(dbName).Drop(context.Background()) })
	l := crashLoop(t, mongoEnv(t, dbName), crashSubjectWorkers)

	store, err := mongostore.Open(t.Context(), testmongo.URI(t), dbName)
	require.NoError(t, err)
	defer store.Close()
	n := checkStore(t, store, l)
	t.Logf("mongodb %s: %d acknowledged records and their audits checked in the store", dbName, n)
}

// crashLoop runs the crash rounds against idmd with env and subjectWorkers
// concurrent subject writers, and returns the ledger of acknowledged
// writes; idmd is stopped when it returns.
func crashLoop(t *testing.T, env []string, subjectWorkers int) *ledger {
	t.Helper()
	p := start(t, env)
	token := bootstrap(t, p.url)
	l := newLedger()
	for round := 1; round <= crashRounds; round++ {
		c := newClient(t, 10*time.Second)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		before, _, _, _ := l.counts()
		delay := crashMinLoad + rand.N(crashMaxLoad-crashMinLoad)
		var wg sync.WaitGroup
		for w := range subjectWorkers {
			wg.Go(func() { subjectWriter(ctx, c, p.url, token, fmt.Sprintf("r%d-w%d", round, w), l) })
		}
		for w := range crashUserWorkers {
			wg.Go(func() { userWriter(ctx, c, p.url, token, fmt.Sprintf("r%d-w%d", round, w), l) })
		}
		time.Sleep(delay)
		// Kill mid-load: once writes of this round are being acknowledged.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if n, _, _, _ := l.counts(); n > before {
				break
			}
			require.True(t, time.Now().Before(deadline), "round %d: no write acknowledged within 5 s", round)
		}
		require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
		require.Equal(t, -1, p.wait(10*time.Second), "idmd was not killed by the signal")
		wg.Wait()
		cancel()

		p = start(t, env) // the store opens cleanly after the kill
		checked, landed := checkOverHTTP(t, p.url, token, l)
		subjects, users, emails, unknown := l.counts()
		t.Logf("round %d: SIGKILL after at least %v of load (%d subjects created this round); restarted; %d acknowledged writes checked "+
			"(%d subjects, %d subject updates, %d users); %d writes unanswered so far, %d of them stored",
			round, delay.Round(time.Millisecond), subjects-before, checked, subjects, emails, users, unknown, landed)
	}
	subjects, _, _, _ := l.counts()
	require.Positive(t, subjects, "no write was acknowledged at all")
	// Stop the last idmd the hard way too; the caller then opens the store.
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	p.wait(10 * time.Second)
	return l
}

// subjectWriter creates subjects and, for each acknowledged one, sets its
// email, until ctx ends or idmd stops answering.
func subjectWriter(ctx context.Context, c *http.Client, base, token, tag string, l *ledger) {
	for i := range crashMaxPerWorker {
		if ctx.Err() != nil {
			return
		}
		sssid := fmt.Sprintf("%s-%04d", tag, i)
		name := "Name " + sssid
		l.attempt(sssid)
		status, _, err := send(ctx, c, "POST", base+"/subject", token,
			fmt.Sprintf(`{"sssid":%q,"name":%q,"bday":"1980-05-17"}`, sssid, name))
		l.result(sssid, status, err, func() { l.subjects[sssid] = name })
		if err != nil {
			return
		}
		if status != http.StatusCreated {
			continue
		}
		email := sssid + "@example.org"
		status, _, err = send(ctx, c, "PUT", base+"/subject/"+sssid, token,
			fmt.Sprintf(`{"sssid":%q,"email":%q}`, sssid, email))
		l.result(sssid, status, err, func() { l.emails[sssid] = email })
		if err != nil {
			return
		}
	}
}

// userWriter creates users until ctx ends or idmd stops answering.
func userWriter(ctx context.Context, c *http.Client, base, token, tag string, l *ledger) {
	for i := range crashMaxPerWorker {
		if ctx.Err() != nil {
			return
		}
		name := fmt.Sprintf("u-%s-%04d@example.org", tag, i)
		l.attempt(name)
		status, body, err := send(ctx, c, "POST", base+"/user", token,
			fmt.Sprintf(`{"username":%q,"password":%q}`, name, adminPass))
		var created struct {
			Data struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		if status == http.StatusCreated && json.Unmarshal(body, &created) != nil {
			status = 0 // a 201 without a user: treated as refused, and fails the check below
		}
		l.result(name, status, err, func() { l.users[name] = created.Data.ID })
		if err != nil {
			return
		}
	}
}

// checkStore checks directly in the store that every acknowledged write is
// there with its audit records (written before the change, so a record
// without them is a broken promise); it returns the number of records
// checked.
func checkStore(t *testing.T, store idm.Store, l *ledger) int {
	t.Helper()
	ctx := t.Context()
	l.mu.Lock()
	defer l.mu.Unlock()
	// The audit log takes up, as idmd does at start, what was appended
	// before the last kill; then every record is in the tree and the whole
	// log verifies.
	key, err := auditlog.LoadOrCreateKey(ctx, store, time.Now())
	require.NoError(t, err)
	alog, err := auditlog.New(auditlog.Config{Store: store, Key: key})
	require.NoError(t, err)
	_, err = alog.Checkpoint(ctx)
	require.NoError(t, err)
	count, err := store.AuditCount(ctx)
	require.NoError(t, err)
	size, err := store.TreeSize(ctx)
	require.NoError(t, err)
	require.Equal(t, count, size, "every audit record is in the tree")
	rep, err := auditlog.Verify(ctx, store, alog.VerifierKey(), nil)
	require.NoError(t, err, "the audit log verifies after the crashes")
	t.Logf("audit log: %s", rep)
	n := 0
	for sssid, name := range l.subjects {
		s, err := store.FindSubject(ctx, sssid)
		require.NoError(t, err, "subject %q", sssid)
		require.Equal(t, name, s.Name)
		want := 1
		if email, ok := l.emails[sssid]; ok {
			require.Equal(t, email, s.Email, "subject %q", sssid)
			want = 2
		}
		events, err := store.AuditsFor(ctx, s.ID)
		require.NoError(t, err)
		require.GreaterOrEqual(t, len(events), want, "audit records of subject %q", sssid)
		n++
	}
	for name, id := range l.users {
		u, err := store.FindUserByID(ctx, id)
		require.NoError(t, err, "user %q", name)
		require.Equal(t, name, u.Username)
		events, err := store.AuditsFor(ctx, id)
		require.NoError(t, err)
		require.NotEmpty(t, events, "audit records of user %q", name)
		n++
	}
	return n
}
