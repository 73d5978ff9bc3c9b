package main_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/c3-pro/idm/internal/testmongo"
)

// waitCheckpoint polls GET /audit/checkpoint until it covers at least n
// records, and returns the note's verified tree size and root.
func waitCheckpoint(t *testing.T, base, token string, v note.Verifier, n int64) (int64, tlog.Hash) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		r := call(t, "GET", base+"/audit/checkpoint", token, "")
		if r.status == http.StatusOK {
			nt, err := note.Open(r.body, note.VerifierList(v))
			require.NoError(t, err)
			lines := strings.Split(nt.Text, "\n")
			var size int64
			fmt.Sscan(lines[1], &size)
			if size >= n {
				root, err := tlog.ParseHash(lines[2])
				require.NoError(t, err)
				return size, root
			}
		}
		require.True(t, time.Now().Before(deadline), "no checkpoint of %d records within 20 s: %d %s", n, r.status, r.body)
	}
}

func dbPathOf(env []string) string {
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "IDM_DB="); ok {
			return v
		}
	}
	return ""
}

// TestAuditLogCommands: a running idmd checkpoints its audit log; GET /audit
// carries seq; proofs verify with tlog; `idmd audit verify` passes, an
// export verifies offline, `idmd subject erase` keeps it verifiable and
// removes the name from the file's bytes, and one changed byte of a record
// makes verify fail naming its seq (exit 1).
func TestAuditLogCommands(t *testing.T) {
	env := append(baseEnv(t), "IDM_AUDIT_CHECKPOINT=200ms")
	p := start(t, env)
	r := call(t, "POST", p.url+"/init", "", fmt.Sprintf(`{"username":%q,"password":%q}`, adminUser, adminPass))
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	tok := login(t, p.url, adminUser, adminPass)
	for i := range 5 {
		r = call(t, "POST", p.url+"/subject", tok, fmt.Sprintf(`{"sssid":"S-%d","name":"Ottilie Vanderbrook %d","bday":"1980-05-17","email":"ov%d@example.org"}`, i, i, i))
		require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	}
	r = call(t, "PUT", p.url+"/subject/S-2", tok, `{"sssid":"S-2","name":"Ottilie Renamed"}`)
	require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)

	r = call(t, "GET", p.url+"/audit", tok, "")
	require.Equal(t, http.StatusOK, r.status)
	var list struct {
		Data []struct {
			Seq *int64 `json:"seq"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(r.body, &list))
	require.NotEmpty(t, list.Data)
	seen := map[int64]bool{}
	for _, d := range list.Data {
		require.NotNil(t, d.Seq, "GET /audit records carry seq")
		seen[*d.Seq] = true
	}
	count := int64(len(list.Data))
	for i := range count {
		require.True(t, seen[i], "seq %d", i)
	}

	vr := call(t, "GET", p.url+"/audit/verifier", "", "")
	require.Equal(t, http.StatusOK, vr.status)
	vkey := strings.TrimSpace(string(vr.body))
	v, err := note.NewVerifier(vkey)
	require.NoError(t, err)
	size, root := waitCheckpoint(t, p.url, tok, v, count)
	r = call(t, "GET", p.url+fmt.Sprintf("/audit/proof?seq=3&size=%d", size), tok, "")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var proof struct {
		Data struct {
			Leaf  tlog.Hash   `json:"leaf"`
			Proof []tlog.Hash `json:"proof"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(r.body, &proof))
	require.NoError(t, tlog.CheckRecord(proof.Data.Proof, size, root, 3, proof.Data.Leaf))
	r = call(t, "GET", p.url+"/status", "", "")
	require.Equal(t, "ok", r.json(t)["data"].(map[string]any)["audit_log"])

	require.NoError(t, p.cmd.Process.Kill())
	<-p.exited

	code, out := runCmd(t, env, "", "audit", "verify")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "ok: ")

	export := filepath.Join(t.TempDir(), "audit.jsonl")
	code, out = runCmd(t, env, "", "audit", "export", "-o", export)
	require.Equal(t, 0, code, out)
	code, out = runCmd(t, []string{"PATH=" + os.Getenv("PATH")}, "", "audit", "verify", "--export", export, "--verifier", vkey)
	require.Equal(t, 0, code, "offline, without a store: %s", out)
	csvExport := filepath.Join(t.TempDir(), "audit.csv")
	code, out = runCmd(t, env, "", "audit", "export", "--format", "csv", "--since", "2000-01-01T00:00:00Z", "-o", csvExport)
	require.Equal(t, 0, code, out)
	code, out = runCmd(t, []string{"PATH=" + os.Getenv("PATH")}, "", "audit", "verify", "--export", csvExport, "--verifier", vkey)
	require.Equal(t, 0, code, out)

	code, out = runCmd(t, env, "", "subject", "erase", "S-2", "--reason", "GDPR Art. 17 request 2026-12")
	require.Equal(t, 0, code, out)
	code, out = runCmd(t, env, "", "audit", "verify")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "erased: seq ")
	require.Contains(t, out, "GDPR Art. 17 request 2026-12")
	raw, err := os.ReadFile(dbPathOf(env))
	require.NoError(t, err)
	require.NotContains(t, string(raw), "Ottilie Vanderbrook 2", "the erased name is gone from the file's bytes")
	require.NotContains(t, string(raw), "Ottilie Renamed")
	require.Contains(t, string(raw), "Ottilie Vanderbrook 3", "control: others stay")

	// One byte of record seq 4 (S-2's creation, erased above: erased
	// records stay tamper-evident) changed in the file.
	db, err := bolt.Open(dbPathOf(env), 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		key := tx.Bucket([]byte("audits_by_seq")).Get(binary.BigEndian.AppendUint64(nil, 4))
		b := tx.Bucket([]byte("audits"))
		val := append([]byte(nil), b.Get(key)...)
		i := strings.Index(string(val), `"action":"`) + len(`"action":"`)
		val[i] ^= 0x01
		return b.Put(key, val)
	}))
	require.NoError(t, db.Close())
	code, out = runCmd(t, env, "", "audit", "verify")
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "FAILED: record seq 4: ")
	t.Logf("idmd audit verify on a tampered store:\n%s", out)
}

// TestTwoInstancesAppendOneAuditSequence: two idmd instances writing at
// once on one MongoDB-wire server give one gap-free sequence of seqs, and
// the log verifies.
func TestTwoInstancesAppendOneAuditSequence(t *testing.T) {
	db := testmongo.NewDatabaseName(t)
	env := append(mongoEnv(t, db), "IDM_AUDIT_CHECKPOINT=200ms")
	a := start(t, env)
	r := call(t, "POST", a.url+"/init", "", fmt.Sprintf(`{"username":%q,"password":%q}`, adminUser, adminPass))
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	b := start(t, env)
	tok := login(t, a.url, adminUser, adminPass)
	var wg sync.WaitGroup
	const each = 15
	for i, base := range []string{a.url, b.url, a.url, b.url} {
		wg.Go(func() {
			for j := range each {
				rr := call(t, "POST", base+"/subject", tok, fmt.Sprintf(`{"sssid":"S-%d-%d","name":"N","bday":"1980-05-17"}`, i, j))
				require.Equal(t, http.StatusCreated, rr.status, "%s", rr.body)
			}
		})
	}
	wg.Wait()
	r = call(t, "GET", a.url+"/audit?perpage=1000", tok, "")
	require.Equal(t, http.StatusOK, r.status)
	var list struct {
		Data []struct {
			Seq int64 `json:"seq"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(r.body, &list))
	seqs := map[int64]int{}
	for _, d := range list.Data {
		seqs[d.Seq]++
	}
	n := int64(len(list.Data))
	require.GreaterOrEqual(t, n, int64(4*each))
	for i := range n {
		require.Equal(t, 1, seqs[i], "seq %d once", i)
	}
	t.Logf("%d audit records from two instances: seqs 0..%d, each once", n, n-1)
	vr := call(t, "GET", b.url+"/audit/verifier", "", "")
	v, err := note.NewVerifier(strings.TrimSpace(string(vr.body)))
	require.NoError(t, err)
	waitCheckpoint(t, b.url, tok, v, n)
	code, out := runCmd(t, env, "", "audit", "verify")
	require.Equal(t, 0, code, out)
}
