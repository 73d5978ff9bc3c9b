package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/internal/testmongo"
)

// runSplit runs an idmd admin subcommand and returns its exit code, its
// standard output and its standard error apart.
func runSplit(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(idmdBin, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("running idmd %v: %v", args, err)
		}
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// writeFile writes a file into a temporary directory and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// importFile returns a CSV file of n valid subjects <prefix>-0 onwards.
func importFile(prefix string, n int) string {
	var b strings.Builder
	b.WriteString("sssid,name,bday,email,site,cohort\n")
	for i := range n {
		fmt.Fprintf(&b, "%s-%d,Imported Person %d,1980-05-%02d,p%d@example.org,basel,A\n", prefix, i, i, 1+i%28, i)
	}
	return b.String()
}

// subjectTotal returns GET /subject's total.
func subjectTotal(t *testing.T, base, tok string) int {
	t.Helper()
	r := call(t, "GET", base+"/subject?perpage=1", tok, "")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var page struct {
		Total int `json:"total"`
	}
	require.NoError(t, json.Unmarshal(r.body, &page))
	return page.Total
}

// TestSubjectImport imports over HTTP (POST /subject/import) and with
// `idmd subject import` (dry run, rejected rows, a re-run, --actor) on
// boltstore and mongostore, and checks that `idmd audit verify` passes
// after each.
func TestSubjectImport(t *testing.T) {
	for _, kind := range []string{"boltstore", "mongostore"} {
		t.Run(kind, func(t *testing.T) {
			env := append(baseEnv(t), "IDM_AUDIT_CHECKPOINT=200ms")
			if kind == "mongostore" {
				env = mongoEnv(t, testmongo.NewDatabaseName(t))
			}
			p := start(t, env)
			r := call(t, "POST", p.url+"/init", "", fmt.Sprintf(`{"username":%q,"password":%q}`, adminUser, adminPass))
			require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
			tok := login(t, p.url, adminUser, adminPass)

			// Over HTTP: JSON lines, streamed.
			var jsonl strings.Builder
			for i := range 40 {
				fmt.Fprintf(&jsonl, `{"sssid":"H-%d","name":"Over HTTP %d","bday":"1979-01-02"}`+"\n", i, i)
			}
			jsonl.WriteString(`{"sssid":"H-bad","name":"X","bday":"02.01.1979"}` + "\n")
			req, err := http.NewRequest("POST", p.url+"/subject/import", strings.NewReader(jsonl.String()))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/x-ndjson")
			req.Header.Set("Authorization", "JWT "+tok)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			var answer struct {
				Data struct {
					Created, Existing, RejectedCount int64
					Rejected                         []struct {
						Line   int64
						SSSID  string
						Reason string
					}
				}
			}
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&answer))
			resp.Body.Close()
			assert.EqualValues(t, 40, answer.Data.Created)
			require.Len(t, answer.Data.Rejected, 1)
			assert.EqualValues(t, 41, answer.Data.Rejected[0].Line)
			assert.Equal(t, "H-bad", answer.Data.Rejected[0].SSSID)
			assert.Equal(t, 40, subjectTotal(t, p.url, tok))
			if kind == "boltstore" {
				// The import's body may be larger than every other one.
				var big strings.Builder
				for i := 0; big.Len() < 3<<19; i++ {
					fmt.Fprintf(&big, `{"sssid":"BIG-%d","name":"A name long enough to fill a megabyte and a half","bday":"1979-01-02"}`+"\n", i)
				}
				req, err := http.NewRequest("POST", p.url+"/subject/import?dry_run=1", strings.NewReader(big.String()))
				require.NoError(t, err)
				req.Header.Set("Content-Type", "application/x-ndjson")
				req.Header.Set("Authorization", "JWT "+tok)
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				resp.Body.Close()
				assert.Equal(t, http.StatusOK, resp.StatusCode, "a 1.5 MiB import")
				r = call(t, "POST", p.url+"/subject", tok, `{"sssid":"X","name":"`+strings.Repeat("x", 3<<19)+`"}`)
				assert.Equal(t, http.StatusRequestEntityTooLarge, r.status, "control: a 1.5 MiB POST /subject")
			}
			require.NoError(t, p.cmd.Process.Kill())
			<-p.exited

			code, out, errOut := runSplit(t, env, "audit", "verify")
			require.Equal(t, 0, code, "%s%s", out, errOut)
			assert.Contains(t, out, "ok: 42 records", "the records of /init and 40 subjects")

			// On the command line: a file with rejected rows, first as a
			// dry run.
			bad := writeFile(t, "subjects.csv", importFile("C", 25)+
				"C-3,Twice,1980-01-01,,,\n"+
				"C-bad,No Date,,,,\n"+
				"H-7,Over HTTP 7,1979-01-02,,,\n")
			code, out, errOut = runSplit(t, env, "subject", "import", "--dry-run", bad)
			require.Equal(t, 3, code, "%s%s", out, errOut)
			assert.Equal(t, "line,sssid,reason\n"+
				"27,C-3,\"the SSSID \"\"C-3\"\" appears before, on line 5\"\n"+
				"28,C-bad,missing or empty `bday`\n"+
				"29,H-7,exists\n", out)
			assert.Contains(t, errOut, "28 rows: 25 to create (dry run), 1 existing, 2 rejected")
			code, out, errOut = runSplit(t, env, "subject", "import", bad)
			require.Equal(t, 3, code, "%s%s", out, errOut)
			assert.Contains(t, errOut, "28 rows: 25 created, 1 existing, 2 rejected")
			assert.Contains(t, out, "29,H-7,exists\n")

			// A clean file, acting as the admin, twice: the second run
			// creates nothing and exits 0.
			good := writeFile(t, "more.jsonl", `{"sssid":"A-1","name":"By Admin","bday":"1990-01-01"}`+"\n")
			code, out, errOut = runSplit(t, env, "subject", "import", "--actor", adminUser, good)
			require.Equal(t, 0, code, "%s%s", out, errOut)
			assert.Equal(t, "line,sssid,reason\n", out)
			code, out, errOut = runSplit(t, env, "subject", "import", "--actor", adminUser, good)
			require.Equal(t, 0, code, "%s%s", out, errOut)
			assert.Equal(t, "line,sssid,reason\n1,A-1,exists\n", out)
			assert.Contains(t, errOut, "1 rows: 0 created, 1 existing, 0 rejected")

			code, out, errOut = runSplit(t, env, "subject", "import", "--actor", "nobody@example.org", good)
			assert.Equal(t, 1, code)
			assert.Contains(t, errOut, `--actor: there is no user "nobody@example.org"`, out)
			code, _, errOut = runSplit(t, env, "subject", "import", writeFile(t, "subjects.txt", "x"))
			assert.Equal(t, 2, code)
			assert.Contains(t, errOut, "give --format csv or jsonl")

			code, out, errOut = runSplit(t, env, "audit", "verify")
			require.Equal(t, 0, code, "%s%s", out, errOut)
			assert.Contains(t, out, "ok: 68 records")

			// The service serves what was imported, with its audit trail.
			p = start(t, env)
			tok = login(t, p.url, adminUser, adminPass)
			assert.Equal(t, 66, subjectTotal(t, p.url, tok))
			r = call(t, "GET", p.url+"/subject/C-3", tok, "")
			require.Equal(t, http.StatusOK, r.status)
			assert.Equal(t, "Imported Person 3", r.json(t)["data"].(map[string]any)["name"], "the first row of an SSSID wins")
			assert.Equal(t, "basel", r.json(t)["data"].(map[string]any)["site"])
			r = call(t, "GET", p.url+"/subject/A-1/audits", tok, "")
			require.Equal(t, http.StatusOK, r.status)
			var trail struct {
				Data []struct{ Action, Actor string }
			}
			require.NoError(t, json.Unmarshal(r.body, &trail))
			require.Len(t, trail.Data, 1)
			assert.Equal(t, "create", trail.Data[0].Action)
			assert.Equal(t, adminUser, trail.Data[0].Actor)
			r = call(t, "GET", p.url+"/subject/C-0/audits", tok, "")
			require.NoError(t, json.Unmarshal(r.body, &trail))
			require.Len(t, trail.Data, 1)
			assert.Equal(t, "idmd (command line)", trail.Data[0].Actor)
		})
	}
}
