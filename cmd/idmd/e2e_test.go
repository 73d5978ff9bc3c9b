package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/boltstore"
	"github.com/c3-pro/idm/internal/smtptest"
	"github.com/c3-pro/idm/internal/testmongo"
)

// idmdBin is the idmd binary that TestMain builds once for every test.
var idmdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "idmd-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	idmdBin = filepath.Join(dir, "idmd")
	build := exec.Command("go", "build", "-o", idmdBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building idmd:", err)
		os.Exit(1)
	}
	code := m.Run()
	testmongo.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running idmd process.
type proc struct {
	t   *testing.T
	cmd *exec.Cmd
	url string
	// metricsURL is the base URL of the metrics listener ("" when off).
	metricsURL string
	mu         sync.Mutex
	log        bytes.Buffer
	exited     chan struct{}
	err        error
}

// baseEnv is the environment every idmd of the tests gets: a data file in a
// temporary directory, a free loopback port and nothing from the test's own
// environment but PATH and HOME.
func baseEnv(t *testing.T) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		"IDM_DB=" + filepath.Join(t.TempDir(), "idm.db"),
		"IDM_ADDR=127.0.0.1:0",
		"IDM_METRICS_ADDR=127.0.0.1:0",
		"IDM_LOG_FORMAT=json",
	}
}

var (
	listening      = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)
	metricsServing = regexp.MustCompile(`"msg":"serving metrics","addr":"([^"]+)"`)
)

// start runs idmd serve with env and waits until it listens.
func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, exited: make(chan struct{})}
	p.cmd = exec.Command(idmdBin, append([]string{"serve"}, args...)...)
	p.cmd.Env = env
	stderr, err := p.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	addr, metricsAddr := make(chan string, 1), make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			p.mu.Unlock()
			if m := metricsServing.FindStringSubmatch(line); m != nil {
				metricsAddr <- m[1] // logged before "listening"
			}
			if m := listening.FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
		}
	}()
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("idmd log:\n%s", p.logs())
		}
	})
	select {
	case a := <-addr:
		p.url = "http://" + a
		select {
		case m := <-metricsAddr:
			p.metricsURL = "http://" + m
		default:
		}
	case <-p.exited:
		t.Fatalf("idmd exited before listening: %v\n%s", p.err, p.logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("idmd did not listen within 30 s\n%s", p.logs())
	}
	return p
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(d):
		p.t.Fatalf("idmd did not exit within %v", d)
	}
	return p.cmd.ProcessState.ExitCode()
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body: %s", r.body)
	return m
}

// call sends one request; token, when set, goes into Authorization.
func call(t *testing.T, method, url, token, body string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "JWT "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

func login(t *testing.T, base, user, pass string) string {
	t.Helper()
	r := call(t, "POST", base+"/auth", "", fmt.Sprintf(`{"username":%q,"password":%q}`, user, pass))
	require.Equal(t, http.StatusOK, r.status, "login: %s", r.body)
	tok, _ := r.json(t)["access_token"].(string)
	require.NotEmpty(t, tok)
	return tok
}

const (
	adminUser = "admin@example.org"
	adminPass = "correct horse battery staple"
)

// runCmd runs an idmd admin subcommand and returns its exit code and output.
func runCmd(t *testing.T, env []string, stdin string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(idmdBin, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("running idmd %v: %v", args, err)
		}
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

func TestEndToEnd(t *testing.T) {
	mail := smtptest.Start(t)
	env := append(baseEnv(t), "IDM_SMTP_URL="+mail.URL(), "IDM_MAIL_FROM=idm@example.org",
		"IDM_PUBLIC_URL=https://idm.example.org")
	p := start(t, env)
	base := p.url

	r := call(t, "GET", base+"/readyz", "", "")
	require.Equal(t, http.StatusOK, r.status)
	r = call(t, "GET", base+"/", "", "")
	require.JSONEq(t, `{"status":"ready"}`, string(r.body))

	// users: bootstrap the first admin.
	r = call(t, "GET", base+"/init", "", "")
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, string(r.body), `name="password"`)
	r = call(t, "POST", base+"/init", "", fmt.Sprintf(`{"username":%q,"password":%q}`, adminUser, adminPass))
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	r = call(t, "POST", base+"/init", "", `{"username":"second@example.org","password":"another long passphrase"}`)
	require.Equal(t, http.StatusConflict, r.status)

	// auth: log in; the token works on /user/me.
	tok := login(t, base, adminUser, adminPass)
	r = call(t, "GET", base+"/user/me", tok, "")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.Equal(t, adminUser, r.json(t)["data"].(map[string]any)["username"])
	require.NotContains(t, string(r.body), "$2")

	// idm: create and read a subject.
	r = call(t, "POST", base+"/subject", tok, `{"sssid":"S-1","name":"Alice","bday":"1980-05-17"}`)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	r = call(t, "GET", base+"/subject?offset=0&perpage=10&ordercol=name&orderdir=ASC", tok, "")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.Contains(t, string(r.body), `"sssid":"S-1"`)

	// Errors are JSON envelopes everywhere.
	r = call(t, "GET", base+"/no/such/path", "", "")
	require.Equal(t, http.StatusNotFound, r.status)
	require.JSONEq(t, `{"error":{"status":404,"message":"Not Found"}}`, string(r.body))
	r = call(t, "DELETE", base+"/auth", "", "")
	require.Equal(t, http.StatusMethodNotAllowed, r.status)
	require.NotEmpty(t, r.header.Get("Allow"))

	// resetflow: a reset link goes out by mail, built from the public URL.
	r = call(t, "POST", base+"/iforgot", "", fmt.Sprintf(`{"username":%q}`, adminUser))
	require.Equal(t, http.StatusAccepted, r.status, "%s", r.body)
	msgs := mail.Wait(t, 1)
	require.Equal(t, []string{adminUser}, msgs[0].To)
	require.Contains(t, msgs[0].Text, "https://idm.example.org/reset?k=")

	// Operations: status and metrics.
	r = call(t, "GET", base+"/status", "", "")
	require.JSONEq(t, `{"data":{"db":"ok","mail":"ok","link_secret":"ok","audit_log":"ok"}}`, string(r.body))
	// Metrics are on their own listener; the public one has no /metrics.
	r = call(t, "GET", base+"/metrics", "", "")
	require.Equal(t, http.StatusNotFound, r.status)
	require.JSONEq(t, `{"error":{"status":404,"message":"Not Found"}}`, string(r.body))
	require.NotEmpty(t, p.metricsURL)
	r = call(t, "GET", p.metricsURL+"/metrics", "", "")
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, string(r.body), `idm_logins_total{outcome="success"} 1`)
	require.Contains(t, string(r.body), `idm_reset_events_total{event="requested"} 1`)
	require.Contains(t, string(r.body), `idm_http_requests_total{method="POST",route="POST /subject",status="201"} 1`)
	require.Contains(t, string(r.body), `idm_audit_log_checkpoint_size `)
	require.Contains(t, string(r.body), `idm_audit_log_checkpoint_age_seconds `)

	// Request logs carry the route pattern and never names, emails or tokens.
	logs := p.logs()
	require.Contains(t, logs, `"route":"POST /subject"`)
	for _, secret := range []string{adminUser, adminPass, tok, "Alice"} {
		require.NotContains(t, logs, secret)
	}

	// SIGTERM during a slow request: the request completes, then idmd exits 0.
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	body := `{"sssid":"S-2","name":"Bob","bday":"1975-01-02"}`
	fmt.Fprintf(conn, "POST /subject HTTP/1.1\r\nHost: x\r\nAuthorization: JWT %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		tok, len(body), body[:10])
	time.Sleep(300 * time.Millisecond) // the request is now in flight, its body half sent
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	time.Sleep(300 * time.Millisecond)
	_, err = io.WriteString(conn, body[10:])
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, 0, p.wait(30*time.Second), "exit code after SIGTERM")
	require.Contains(t, p.logs(), `"msg":"stopped"`)
}

func TestStartup(t *testing.T) {
	env := baseEnv(t)
	began := time.Now()
	p := start(t, env)
	r := call(t, "GET", p.url+"/readyz", "", "")
	require.Equal(t, http.StatusOK, r.status)
	t.Logf("idmd answered /readyz %v after exec", time.Since(began).Round(time.Millisecond))
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"bad duration", []string{"IDM_TOKEN_TTL=soon"}, nil, "invalid IDM_TOKEN_TTL (-token-ttl)"},
		{"console idle too short", []string{"IDM_CONSOLE_IDLE=5s"}, nil, "invalid IDM_CONSOLE_IDLE (-console-idle)"},
		{"flag wins over env", []string{"IDM_TOKEN_TTL=12h"}, []string{"-token-ttl", "soon"}, "invalid IDM_TOKEN_TTL (-token-ttl)"},
		{"short secret", []string{"IDM_SECRET=too-short-a-secret"}, nil, "invalid IDM_SECRET (-secret)"},
		{"known default secret", []string{"IDM_SECRET=super-duper-secret"}, nil, "invalid IDM_SECRET (-secret)"},
		{"bad public url", []string{"IDM_PUBLIC_URL=localhost:9096"}, nil, "invalid IDM_PUBLIC_URL (-public-url)"},
		{"bad log format", []string{"IDM_LOG_FORMAT=xml"}, nil, "invalid IDM_LOG_FORMAT (-log-format)"},
		{"same audiences", []string{"IDM_AUDIENCE=x", "IDM_LINK_AUDIENCE=x"}, nil, "invalid IDM_LINK_AUDIENCE (-link-audience)"},
		{"smtp without from", []string{"IDM_SMTP_URL=smtp://127.0.0.1:2525"}, nil, "invalid IDM_MAIL_FROM (-mail-from)"},
		{"secret twice", []string{"IDM_SECRET=an-hmac-secret-of-more-than-32-bytes!!", "IDM_SECRET_FILE=/dev/null"}, nil, "invalid IDM_SECRET_FILE (-secret-file)"},
		{"public url with credentials", []string{"IDM_PUBLIC_URL=https://u:p@idm.example.org"}, nil, "invalid IDM_PUBLIC_URL (-public-url)"},
		{"bad mail from", []string{"IDM_SMTP_URL=smtp://127.0.0.1:2525", "IDM_MAIL_FROM=not an address"}, nil, "invalid IDM_MAIL_FROM (-mail-from)"},
		{"bad proxies", []string{"IDM_TRUSTED_PROXIES=10.0.0.0/8,nonsense"}, nil, "invalid IDM_TRUSTED_PROXIES (-trusted-proxies)"},
		{"key file without link secret", []string{"IDM_KEY_FILE=/etc/idm/staff.pem"}, nil, "invalid IDM_LINK_SECRET (-link-secret)"},
		{"link secret equal to the staff secret", []string{"IDM_SECRET=an-hmac-secret-of-more-than-32-bytes!!", "IDM_LINK_SECRET=an-hmac-secret-of-more-than-32-bytes!!"}, nil, "invalid IDM_LINK_SECRET (-link-secret)"},
		{"link secret twice", []string{"IDM_LINK_SECRET=super-duper-secret", "IDM_LINK_SECRET_FILE=/dev/null"}, nil, "invalid IDM_LINK_SECRET_FILE (-link-secret-file)"},
		{"previous link secrets without a link secret", []string{"IDM_LINK_SECRET_PREVIOUS_FILE=/etc/hostname"}, nil, "invalid IDM_LINK_SECRET_PREVIOUS_FILE (-link-secret-previous-file)"},
		{"bad metrics address", []string{"IDM_METRICS_ADDR=9097"}, nil, "invalid IDM_METRICS_ADDR (-metrics-addr)"},
		{"short metrics token", []string{"IDM_METRICS_TOKEN=short"}, nil, "invalid IDM_METRICS_TOKEN (-metrics-token)"},
		{"metrics token without listener", []string{"IDM_METRICS_ADDR=off", "IDM_METRICS_TOKEN=0123456789abcdef0123"}, nil, "invalid IDM_METRICS_TOKEN (-metrics-token)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := append(baseEnv(t), tc.env...)
			code, out := runCmd(t, env, "", append([]string{"serve"}, tc.args...)...)
			require.Equal(t, 2, code, "output: %s", out)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			require.Len(t, lines, 1, "one clear line: %q", out)
			require.Contains(t, lines[0], tc.want)
			for _, e := range tc.env {
				for _, name := range []string{"IDM_SECRET=", "IDM_LINK_SECRET="} {
					if v, ok := strings.CutPrefix(e, name); ok {
						require.NotContains(t, out, v, "the secret is echoed")
					}
				}
			}
		})
	}
}

func TestUserAddThenLogin(t *testing.T) {
	env := baseEnv(t)
	code, out := runCmd(t, env, adminPass+"\n", "user", "add", "Admin@Example.org", "--admin", "--password-stdin")
	require.Equal(t, 0, code, out)
	code, out = runCmd(t, env, "", "user", "list")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, adminUser)

	// Offline, backup copies the file itself.
	offline := filepath.Join(t.TempDir(), "offline.db")
	code, out = runCmd(t, env, "", "backup", offline)
	require.Equal(t, 0, code, out)
	require.FileExists(t, offline)

	p := start(t, env)
	tok := login(t, p.url, adminUser, adminPass)
	r := call(t, "GET", p.url+"/user/me", tok, "")
	require.Equal(t, true, r.json(t)["data"].(map[string]any)["admin"])
	// user add --admin closed the bootstrap.
	r = call(t, "POST", p.url+"/init", "", `{"username":"x@example.org","password":"another long passphrase"}`)
	require.Equal(t, http.StatusConflict, r.status)

	// An online backup through the running idmd's admin socket is a bbolt
	// file holding the data; nothing of it is served over HTTP.
	backup := filepath.Join(t.TempDir(), "backup.db")
	code, out = runCmd(t, env, "", "backup", backup)
	require.Equal(t, 0, code, out)
	copyStore, err := boltstore.Open(backup)
	require.NoError(t, err)
	u, err := copyStore.FindUserByUsername(context.Background(), adminUser)
	require.NoError(t, err)
	require.True(t, u.Admin)
	require.NoError(t, copyStore.Close())
	r = call(t, "GET", p.url+"/admin/backup", tok, "")
	require.Equal(t, http.StatusNotFound, r.status)
	for _, e := range env {
		if db, ok := strings.CutPrefix(e, "IDM_DB="); ok {
			fi, err := os.Stat(db + ".sock")
			require.NoError(t, err)
			require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "only idmd's own user may use the admin socket")
		}
	}

	// Next to the running idmd, admin commands fail fast with a clear message.
	began := time.Now()
	code, out = runCmd(t, env, "", "user", "list")
	require.NotEqual(t, 0, code)
	require.Contains(t, out, "in use by another process")
	require.Less(t, time.Since(began), 10*time.Second)
}

// mongoEnv is baseEnv with IDM_MONGO_URI set to a fresh database on the
// test's MongoDB-wire server.
func mongoEnv(t *testing.T, db string) []string {
	return append(baseEnv(t), "IDM_MONGO_URI="+testmongo.URI(t), "IDM_MONGO_DB="+db)
}

func TestMongoStore(t *testing.T) {
	db := testmongo.NewDatabaseName(t)
	p := start(t, mongoEnv(t, db))
	require.Contains(t, p.logs(), `"store":"mongodb database `+db+`"`)
	r := call(t, "POST", p.url+"/init", "", fmt.Sprintf(`{"username":%q,"password":%q}`, adminUser, adminPass))
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	tok := login(t, p.url, adminUser, adminPass)

	// The record is in MongoDB, not in the bbolt file.
	client := testmongo.Client(t, testmongo.URI(t))
	n, err := client.Database(db).Collection("users").CountDocuments(context.Background(), map[string]any{})
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	r = call(t, "GET", p.url+"/user/me", tok, "")
	require.Equal(t, http.StatusOK, r.status)
}

func TestTwoInstancesShareMongo(t *testing.T) {
	db := testmongo.NewDatabaseName(t)
	a := start(t, mongoEnv(t, db))
	r := call(t, "POST", a.url+"/init", "", fmt.Sprintf(`{"username":%q,"password":%q}`, adminUser, adminPass))
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	b := start(t, mongoEnv(t, db)) // started after a: it reads the key a generated

	// A token issued by one instance is accepted by the other.
	tok := login(t, a.url, adminUser, adminPass)
	r = call(t, "GET", b.url+"/user/me", tok, "")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)

	// Failed logins counted on a throttle the account on b, even with the
	// right password.
	for range 5 {
		r = call(t, "POST", a.url+"/auth", "", fmt.Sprintf(`{"username":%q,"password":"wrong password here"}`, adminUser))
		require.Equal(t, http.StatusUnauthorized, r.status)
	}
	r = call(t, "POST", b.url+"/auth", "", fmt.Sprintf(`{"username":%q,"password":%q}`, adminUser, adminPass))
	require.Equal(t, http.StatusTooManyRequests, r.status, "%s", r.body)
	require.NotEmpty(t, r.header.Get("Retry-After"))

	// A logout on b revokes the token on a.
	r = call(t, "POST", b.url+"/logout", tok, "")
	require.Equal(t, http.StatusNoContent, r.status)
	r = call(t, "GET", a.url+"/user/me", tok, "")
	require.Equal(t, http.StatusUnauthorized, r.status)
}
