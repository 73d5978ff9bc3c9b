package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/internal/testmongo"
)

// Hostile-input bounds: every answer comes within hostileAnswer; requests of
// well-behaved clients sent meanwhile are answered within canaryAnswer.
const (
	hostileAnswer   = 10 * time.Second
	canaryAnswer    = 5 * time.Second
	hostileParallel = 4 // hostile requests in flight at once
	maxBody         = 1 << 20
	maxHeader       = 64 << 10
)

// hostileServer is an idmd under attack, with the fixtures the cases use.
type hostileServer struct {
	p       *proc
	addr    string // host:port
	token   string // an admin's staff token
	staffID string // a second user
	linkID  string
	linkJWT string
}

// setupHostile starts idmd with env (mail configured, to a port where
// nothing listens, so that /iforgot and /reset exist) and creates the
// fixtures.
func setupHostile(t *testing.T, env []string) *hostileServer {
	t.Helper()
	// Loopback is a trusted proxy, so that each case can come from an
	// address of its own (X-Forwarded-For) and reach the decoders instead
	// of the per-address throttles of /auth, /init, /iforgot and /reset.
	env = append(env, "IDM_SMTP_URL=smtp://127.0.0.1:1", "IDM_MAIL_FROM=idm@example.org", "IDM_TRUSTED_PROXIES=127.0.0.1")
	p := start(t, env)
	h := &hostileServer{p: p, addr: strings.TrimPrefix(p.url, "http://"), token: bootstrap(t, p.url)}
	r := call(t, "POST", p.url+"/user", h.token, fmt.Sprintf(`{"username":"fixture-staff@example.org","password":%q}`, adminPass))
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	h.staffID = r.json(t)["data"].(map[string]any)["id"].(string)
	r = call(t, "POST", p.url+"/subject", h.token,
		`{"sssid":"fixture-1","name":"Fixture","bday":"1970-01-01","date_consented":"2024-05-01T12:00:00+02:00"}`)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	r = call(t, "POST", p.url+"/subject/fixture-1/links", h.token, "")
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	h.linkID = r.json(t)["data"].(map[string]any)["_id"].(string)
	r = call(t, "GET", p.url+"/link/"+h.linkID+"/jwt", h.token, "")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	h.linkJWT = string(r.body)
	return h
}

// rawReply is what came back for a raw request.
type rawReply struct {
	status int
	header http.Header
	body   []byte
	closed bool // the server closed the connection without an answer
	took   time.Duration
}

// exchange sends req, the bytes of one HTTP/1.1 request, on a new
// connection and reads the answer. The request is written while the answer
// is read, so a server that answers early (413, 431) and closes is seen as
// it is.
func exchange(addr string, req []byte) (rawReply, error) {
	began := time.Now()
	conn, err := net.DialTimeout("tcp", addr, hostileAnswer)
	if err != nil {
		return rawReply{}, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(began.Add(hostileAnswer))
	go func() { _, _ = conn.Write(req) }()
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	for err == nil && resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
		resp, err = http.ReadResponse(br, nil) // skip interim answers (100 Continue)
	}
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return rawReply{}, fmt.Errorf("no answer within %v: %w", hostileAnswer, err)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
			return rawReply{closed: true, took: time.Since(began)}, nil
		}
		return rawReply{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		return rawReply{}, fmt.Errorf("reading the body of a %d: %w", resp.StatusCode, err)
	}
	return rawReply{status: resp.StatusCode, header: resp.Header, body: body, took: time.Since(began)}, nil
}

// rawRequest builds an HTTP/1.1 request. Headers are "Name: value" lines;
// a body gets a Content-Length.
func rawRequest(method, target string, headers []string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", method, target)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	if body != nil {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// hostileCase is one hostile request and what its answer must be.
type hostileCase struct {
	name     string
	req      []byte
	want     int  // exact status wanted; 0 for any below 500 (or want4xx)
	want4xx  bool // the answer must be a client error
	redirect bool // the answer must be a redirect (a path that is cleaned)
	mayClose bool // closing the connection without an answer is fine (broken HTTP)
}

// leaks are texts that must never reach a client: internal error texts,
// stack traces, files.
var leaks = []string{"goroutine ", "runtime.", ".go:", "json: ", "bbolt", "mongo", "panic", "root:x:0:0", "internal error"}

// checkReply checks the answer to one hostile case.
func checkReply(t assert.TestingT, c hostileCase, r rawReply) {
	if r.closed {
		assert.True(t, c.mayClose, "the server closed the connection without an answer")
		return
	}
	if c.want < 500 {
		assert.Less(t, r.status, 500, "server error: %s", clipBytes(r.body))
	}
	assert.LessOrEqual(t, r.took, hostileAnswer)
	switch {
	case c.want != 0:
		assert.Equal(t, c.want, r.status, "%s", clipBytes(r.body))
	case c.redirect:
		assert.Contains(t, []int{http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect}, r.status)
	case c.want4xx:
		assert.True(t, r.status >= 400 && r.status < 500, "status %d for a bad request: %s", r.status, clipBytes(r.body))
	}
	for _, s := range leaks {
		assert.NotContains(t, string(r.body), s)
	}
	// Errors from idmd (not from net/http's own refusals, which are plain
	// text) are the JSON envelope.
	if r.status >= 400 && strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		var env struct {
			Error *struct {
				Status  int    `json:"status"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if assert.NoError(t, json.Unmarshal(r.body, &env), "%s", clipBytes(r.body)) && assert.NotNil(t, env.Error, "%s", r.body) {
			assert.Equal(t, r.status, env.Error.Status)
			assert.NotEmpty(t, env.Error.Message)
			assert.LessOrEqual(t, len(env.Error.Message), 512, "an error message echoes too much input")
		}
	}
}

func clipBytes(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// endpoint is a route that takes a body, with a body to mutate (valid, or
// nearly so: one that must not change anything the cases rely on).
type endpoint struct {
	method, path, auth string
	form               bool // also takes form bodies
	hashes             bool // every body that decodes costs a password hash: fewer variants
	store              bool // what the body holds reaches the store
	base               []keyValue
}

type keyValue struct {
	key   string
	value any
}

func objectJSON(kvs []keyValue) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, kv := range kvs {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(kv.key)
		b.Write(k)
		b.WriteByte(':')
		switch v := kv.value.(type) {
		case json.RawMessage:
			b.Write(v)
		default:
			enc, err := json.Marshal(v)
			if err != nil {
				panic(err) // the test's own values
			}
			b.Write(enc)
		}
	}
	b.WriteByte('}')
	return b.Bytes()
}

func (h *hostileServer) endpoints() []endpoint {
	staff := "JWT " + h.token
	return []endpoint{
		{method: "POST", path: "/auth", hashes: true, store: true, base: []keyValue{{"username", "nobody@example.org"}, {"password", "a wrong password 123"}}},
		{method: "POST", path: "/init", form: true, base: []keyValue{{"username", "second@example.org"}, {"password", adminPass}}},
		{method: "POST", path: "/user", auth: staff, store: true, base: []keyValue{{"username", "hostile-N@example.org"}, {"password", adminPass}, {"admin", false}}},
		{method: "PUT", path: "/user/" + h.staffID, auth: staff, store: true, base: []keyValue{{"admin", false}, {"disabled", false}, {"unlock", true}}},
		{method: "DELETE", path: "/user", auth: staff, store: true, base: []keyValue{{"username", "nobody@example.org"}}},
		{method: "POST", path: "/iforgot", form: true, store: true, base: []keyValue{{"username", "nobody@example.org"}}},
		{method: "POST", path: "/reset", form: true, store: true, base: []keyValue{{"key", "not-a-key"}, {"password", adminPass}}},
		{method: "POST", path: "/subject", auth: staff, store: true, base: []keyValue{{"sssid", "H-1"}, {"name", "Hostile"}, {"bday", "1980-05-17"},
			{"email", "h@example.org"}, {"date_consented", "2024-05-01T12:00:00+02:00"}, {"study_arm", "B"}}},
		{method: "PUT", path: "/subject/fixture-1", auth: staff, store: true, base: []keyValue{{"sssid", "fixture-1"}, {"name", "Fixture"},
			{"email", "f@example.org"}}},
		{method: "PUT", path: "/link/" + h.linkID, auth: staff, store: true, base: []keyValue{{"linked_system", "urn:x"}}},
		// The identifier has no value: the link is never established, so
		// every case reaches the body's decoder.
		{method: "POST", path: "/establish", auth: "Bearer " + h.linkJWT, base: []keyValue{{"resourceType", "Patient"},
			{"identifier", []map[string]string{{"system": "urn:x", "value": ""}}}}},
	}
}

// badBodies are bodies no endpoint may accept; build takes the endpoint's
// base body.
var badBodies = []struct {
	name  string
	build func(base []byte) []byte
	want  int
}{
	{"empty", func([]byte) []byte { return []byte{} }, 0},
	{"whitespace", func([]byte) []byte { return []byte(" \r\n\t ") }, 0},
	{"open brace", func([]byte) []byte { return []byte("{") }, 0},
	{"truncated half", func(b []byte) []byte { return b[:len(b)/2] }, 0},
	{"truncated last byte", func(b []byte) []byte { return b[:len(b)-1] }, 0},
	{"truncated in escape", func(b []byte) []byte { return append(bytes.Clone(b[:len(b)-2]), `\u00`...) }, 0},
	{"trailing garbage", func(b []byte) []byte { return append(bytes.Clone(b), " garbage"...) }, 0},
	{"two values", func(b []byte) []byte { return append(bytes.Clone(b), b...) }, 0},
	{"missing colon", func([]byte) []byte { return []byte(`{"a" 1}`) }, 0},
	{"single quotes", func([]byte) []byte { return []byte(`{'a':1}`) }, 0},
	{"trailing comma", func(b []byte) []byte { return append(bytes.Clone(b[:len(b)-1]), ",}"...) }, 0},
	{"NaN", func([]byte) []byte { return []byte(`{"a":NaN}`) }, 0},
	{"comment", func(b []byte) []byte { return append([]byte("/* x */"), b...) }, 0},
	{"array", func([]byte) []byte { return []byte(`[]`) }, 0},
	{"array of the body", func(b []byte) []byte { return append(append([]byte("["), b...), ']') }, 0},
	{"string", func([]byte) []byte { return []byte(`"x"`) }, 0},
	{"number", func([]byte) []byte { return []byte(`12`) }, 0},
	{"null", func([]byte) []byte { return []byte(`null`) }, 0},
	{"true", func([]byte) []byte { return []byte(`true`) }, 0},
	{"nested 33 levels", func([]byte) []byte { return []byte(strings.Repeat("[", 33) + strings.Repeat("]", 33)) }, 0},
	{"nested 100000 arrays", func([]byte) []byte { return []byte(strings.Repeat("[", 100000) + strings.Repeat("]", 100000)) }, 0},
	{"nested 20000 objects", func([]byte) []byte {
		return []byte(strings.Repeat(`{"a":`, 20000) + "1" + strings.Repeat("}", 20000))
	}, 0},
	{"500000 open brackets", func([]byte) []byte { return []byte(strings.Repeat("[", 500000)) }, 0},
	{"deep value in the body", func(b []byte) []byte {
		return append(bytes.Clone(b[:len(b)-1]), (`,"deep":` + strings.Repeat("[", 1000) + strings.Repeat("]", 1000) + "}")...)
	}, 0},
	{"invalid UTF-8 in a value", func([]byte) []byte { return []byte("{\"username\":\"\xff\xfe\",\"sssid\":\"\xc3\x28\"}") }, 0},
	{"invalid UTF-8 in a key", func([]byte) []byte { return []byte("{\"\xc3\x28\":1}") }, 0},
	{"overlong UTF-8", func([]byte) []byte { return []byte("{\"sssid\":\"\xc0\xaf\xe0\x80\xaf\"}") }, 0},
	{"UTF-16 body", func([]byte) []byte { return []byte("\xfe\xff\x00{\x00}") }, 0},
	{"byte-order mark", func(b []byte) []byte { return append([]byte("\xef\xbb\xbf"), b...) }, 0},
	{"NUL byte", func([]byte) []byte { return []byte{0} }, 0},
	{"NUL before the body", func(b []byte) []byte { return append([]byte{0}, b...) }, 0},
	{"raw NUL in a string", func([]byte) []byte { return []byte("{\"sssid\":\"a\x00b\",\"username\":\"a\x00b\"}") }, 0},
	{"raw control characters", func([]byte) []byte { return []byte("{\"sssid\":\"a\x01\x1f\"}") }, 0},
	{"huge number in an unknown field", func(b []byte) []byte {
		return append(bytes.Clone(b[:len(b)-1]), (`,"zz":1` + strings.Repeat("0", 500000) + "}")...)
	}, 0},
	{"body over the limit (1 MiB + 1)", func(b []byte) []byte {
		pad := maxBody + 1 - len(b) - len(`,"pad":""`)
		return append(bytes.Clone(b[:len(b)-1]), (`,"pad":"` + strings.Repeat("a", pad) + `"}`)...)
	}, http.StatusRequestEntityTooLarge},
	{"body of 4 MiB", func([]byte) []byte { return bytes.Repeat([]byte("["), 4<<20) }, http.StatusRequestEntityTooLarge},
}

// valueVariants replace one member's value; the answer may be anything but
// a server error. Endpoints that hash every body get only the variants
// marked few.
var valueVariants = []struct {
	name  string
	value any
	few   bool
}{
	{"string of 100000 bytes", strings.Repeat("a", 100000), true},
	{"email of 300 bytes", strings.Repeat("a", 288) + "@example.org", false},
	{"string of 900000 bytes", strings.Repeat("é", 450000), false},
	{"number", 12, true},
	{"huge number", json.RawMessage("1e400"), false},
	{"long integer", json.RawMessage("123456789012345678901234567890"), false},
	{"negative zero", json.RawMessage("-0"), false},
	{"boolean", true, false},
	{"null", nil, true},
	{"array", []string{"a", "b"}, false},
	{"object", map[string]any{"a": 1}, false},
	{"query operator", map[string]any{"$ne": nil}, true},
	{"regex operator", map[string]any{"$regex": ".*"}, false},
	{"NUL escape", "a\u0000b", true},
	{"lone surrogate", json.RawMessage(`"\ud800"`), true},
	{"control characters", "\u0001\u001f\u007f", false},
	{"right-to-left override", "\u202egpj.exe", false},
	{"path traversal", "../../../../etc/passwd", false},
	{"encoded traversal", "..%2f..%2fetc%2fpasswd", false},
	{"dotted", "a.b.$c", false},
	{"markup", `<script>alert(1)</script>"'&`, false},
	{"SQL", `' OR 1=1 --`, false},
	{"empty", "", true},
	{"spaces", "   ", false},
	{"nested 30 levels", json.RawMessage(strings.Repeat(`{"a":`, 30) + "1" + strings.Repeat("}", 30)), false},
}

// extraMembers are members added to the base body.
var extraMembers = []struct {
	name string
	kv   keyValue
}{
	{"unknown field", keyValue{"zz", "x"}},
	{"key of 100000 bytes", keyValue{strings.Repeat("k", 100000), 1}},
	{"empty key", keyValue{"", 1}},
	{"key _id", keyValue{"_id", "000000000000000000000000"}},
	{"key __proto__", keyValue{"__proto__", map[string]any{"admin": true}}},
	{"key $where", keyValue{"$where", "sleep(10000)"}},
	{"dotted key", keyValue{"a.b", 1}},
	{"key with NUL", keyValue{"a\u0000b", 1}},
	{"value of 20 KiB", keyValue{"notes", strings.Repeat("n", 20<<10)}},
	{"admin true", keyValue{"admin", true}},
}

// invitesByMail are the cases that create a user without a password, which
// sends an invitation through the (unreachable) mail server.
var invitesByMail = map[string]bool{"POST user/password null": true, "POST user/password empty": true}

// bodyCases builds the body cases of every endpoint; unless full, only
// those whose content reaches the store (for a second store).
func (h *hostileServer) bodyCases(full bool) []hostileCase {
	var cases []hostileCase
	for _, ep := range h.endpoints() {
		if !full && (!ep.store || ep.hashes) {
			continue
		}
		var headers []string
		if ep.auth != "" {
			headers = append(headers, "Authorization: "+ep.auth)
		}
		jsonH := append(slices.Clone(headers), "Content-Type: application/json")
		add := func(name string, hs []string, body []byte, want int, want4xx bool) {
			n := len(cases) + 1 // an address of its own, see setupHostile
			hs = append(slices.Clone(hs), fmt.Sprintf("X-Forwarded-For: 10.%d.%d.%d", n>>16&255, n>>8&255, n&255))
			name = ep.method + " " + strings.SplitN(ep.path[1:], "/", 2)[0] + "/" + name
			if invitesByMail[name] {
				// No password means an invitation by mail, and the mail
				// server is down: an outage of a dependency, not a fault.
				want, want4xx = http.StatusServiceUnavailable, false
			}
			// A username of its own, so that no case finds it taken.
			body = bytes.ReplaceAll(body, []byte("hostile-N@"), fmt.Appendf(nil, "hostile-%d@", n))
			cases = append(cases, hostileCase{
				name: name, req: rawRequest(ep.method, ep.path, hs, body), want: want, want4xx: want4xx,
			})
		}
		base := objectJSON(ep.base)
		for _, b := range badBodies {
			if full {
				add(b.name, jsonH, b.build(base), b.want, true)
			}
		}
		// The same bodies as form posts: a form field may hold anything,
		// so only the size limit is certain.
		if ep.form && full {
			for _, b := range badBodies {
				hs := append(slices.Clone(headers), "Content-Type: application/x-www-form-urlencoded")
				add("form "+b.name, hs, b.build(base), b.want, false)
			}
			formHs := append(slices.Clone(headers), "Content-Type: application/x-www-form-urlencoded")
			for name, body := range map[string]string{
				"bad escapes":    "username=%zz%&password=%",
				"NUL":            "username=a%00b&password=a%00b",
				"20000 fields":   strings.Repeat("a=1&", 20000),
				"field of 1 MiB": "username=" + strings.Repeat("a", maxBody-9),
				"semicolons":     "username=a;password=b",
			} {
				add("form "+name, formHs, []byte(body), 0, false)
			}
		}
		for _, ct := range []string{"text/plain", "application/xml", "multipart/form-data", "multipart/form-data; boundary=x",
			"application/json; charset=utf-16", ";;;", "application/json\x01", "*/*"} {
			if !full {
				break
			}
			add("content type "+ct, append(slices.Clone(headers), "Content-Type: "+ct), base, 0, false)
		}
		for i, kv := range ep.base {
			for _, v := range valueVariants {
				if ep.hashes && !v.few {
					continue
				}
				kvs := slices.Clone(ep.base)
				kvs[i].value = v.value
				add(kv.key+" "+v.name, jsonH, objectJSON(kvs), 0, false)
			}
			dup := append(slices.Clone(ep.base), kv)
			add(kv.key+" twice", jsonH, objectJSON(dup), 0, false)
		}
		for _, x := range extraMembers {
			add(x.name, jsonH, objectJSON(append(slices.Clone(ep.base), x.kv)), 0, false)
		}
		if !full {
			continue
		}
		many := slices.Clone(ep.base)
		for i := range 5000 {
			many = append(many, keyValue{fmt.Sprintf("k%d", i), i})
		}
		add("5000 members", jsonH, objectJSON(many), 0, true)
	}
	return cases
}

// protocolCases are hostile requests at the HTTP level.
func (h *hostileServer) protocolCases() []hostileCase {
	auth := "Authorization: JWT " + h.token
	long := strings.Repeat("a", 100000)
	cases := []hostileCase{
		// Unknown and odd methods.
		{name: "method FOO", req: rawRequest("FOO", "/subject", []string{auth}, nil), want: http.StatusMethodNotAllowed},
		{name: "method PROPFIND", req: rawRequest("PROPFIND", "/", nil, nil), want4xx: true},
		{name: "method TRACE", req: rawRequest("TRACE", "/subject", []string{auth}, nil), want4xx: true},
		{name: "method OPTIONS", req: rawRequest("OPTIONS", "/subject", nil, nil)},
		{name: "method CONNECT", req: rawRequest("CONNECT", "127.0.0.1:1", nil, nil), want4xx: true},
		{name: "lower-case method", req: rawRequest("get", "/subject", []string{auth}, nil), want4xx: true},
		{name: "method with a NUL", req: rawRequest("G\x00T", "/", nil, nil), want4xx: true, mayClose: true},
		{name: "method of 10000 bytes", req: rawRequest(strings.Repeat("M", 10000), "/", nil, nil), want4xx: true},
		{name: "DELETE /subject/{sssid} (no such route)", req: rawRequest("DELETE", "/subject/fixture-1", []string{auth}, nil), want: http.StatusMethodNotAllowed},
		// Path traversal: cleaned paths are redirected, never served.
		{name: "traversal dot-dot", req: rawRequest("GET", "/subject/../../../../etc/passwd", []string{auth}, nil)},
		{name: "traversal encoded", req: rawRequest("GET", "/subject/%2e%2e/%2e%2e/etc/passwd", []string{auth}, nil)},
		{name: "traversal encoded slash", req: rawRequest("GET", "/subject/..%2f..%2fetc%2fpasswd", []string{auth}, nil)},
		{name: "traversal backslash", req: rawRequest("GET", "/subject/..%5c..%5cetc%5cpasswd", []string{auth}, nil)},
		{name: "traversal to admin route", req: rawRequest("GET", "/subject/fixture-1/../../admin/backup", []string{auth}, nil), redirect: true},
		{name: "traversal double slash", req: rawRequest("GET", "//etc/passwd", nil, nil)},
		{name: "traversal absolute URL", req: rawRequest("GET", "http://evil.example/../../etc/passwd", nil, nil)},
		{name: "traversal in link jwt", req: rawRequest("GET", "/link/..%2f..%2fetc%2fpasswd/jwt", []string{auth}, nil)},
		{name: "NUL in the path", req: rawRequest("GET", "/subject/a%00b", []string{auth}, nil)},
		{name: "raw NUL in the path", req: rawRequest("GET", "/subject/a\x00b", []string{auth}, nil), want4xx: true, mayClose: true},
		{name: "invalid UTF-8 in the path", req: rawRequest("GET", "/subject/%ff%fe", []string{auth}, nil), want: http.StatusNotFound},
		{name: "bad escape in the path", req: rawRequest("GET", "/subject/%zz", []string{auth}, nil), want4xx: true},
		{name: "asterisk target", req: rawRequest("GET", "*", nil, nil)},
		// Long identifiers in paths and queries.
		{name: "sssid of 60000 bytes", req: rawRequest("GET", "/subject/"+long[:60000], []string{auth}, nil), want: http.StatusNotFound},
		{name: "PUT sssid of 60000 bytes", req: rawRequest("PUT", "/subject/"+long[:60000], []string{auth, "Content-Type: application/json"},
			[]byte(`{"sssid":"`+long[:60000]+`"}`)), want4xx: true},
		{name: "audits of sssid of 60000 bytes", req: rawRequest("GET", "/subject/"+long[:60000]+"/audits", []string{auth}, nil), want: http.StatusNotFound},
		{name: "links of sssid of 60000 bytes", req: rawRequest("POST", "/subject/"+long[:60000]+"/links", []string{auth}, nil), want4xx: true},
		{name: "user id of 60000 bytes", req: rawRequest("GET", "/user/"+long[:60000], []string{auth}, nil), want4xx: true},
		{name: "username of 300 bytes", req: rawRequest("GET", "/user/"+long[:288]+"@example.org", []string{auth}, nil), want4xx: true},
		{name: "delete user id of 60000 bytes", req: rawRequest("DELETE", "/user/"+long[:60000], []string{auth}, nil), want4xx: true},
		{name: "link id of 60000 bytes", req: rawRequest("GET", "/link/"+long[:60000], []string{auth}, nil), want4xx: true},
		{name: "link jwt of id of 60000 bytes", req: rawRequest("GET", "/link/"+long[:60000]+"/jwt", []string{auth}, nil), want4xx: true},
		{name: "search of 60000 bytes", req: rawRequest("GET", "/subject?search="+long[:60000], []string{auth}, nil)},
		{name: "search with regex", req: rawRequest("GET", "/subject?search="+url.QueryEscape(`.*(a+)+$[`), []string{auth}, nil), want: http.StatusOK},
		{name: "query with bad escapes", req: rawRequest("GET", "/subject?offset=%zz&perpage=%", []string{auth}, nil), want4xx: true},
		{name: "negative offset", req: rawRequest("GET", "/subject?offset=-1&perpage=99999999999999999999", []string{auth}, nil), want4xx: true},
		{name: "ordercol injection", req: rawRequest("GET", "/subject?ordercol=%24where&orderdir=sideways", []string{auth}, nil), want4xx: true},
		{name: "audit since garbage", req: rawRequest("GET", "/audit?since=yesterday&until=%00", []string{auth}, nil), want4xx: true},
		{name: "reset key of 60000 bytes", req: rawRequest("GET", "/reset?k="+long[:60000], nil, nil), want4xx: true},
		{name: "user search of 60000 bytes", req: rawRequest("GET", "/user?search="+long[:60000], []string{auth}, nil)},
		// Headers.
		{name: "header over the limit", req: rawRequest("GET", "/readyz", []string{"X-Big: " + strings.Repeat("h", 2*maxHeader)}, nil), want: http.StatusRequestHeaderFieldsTooLarge},
		{name: "many headers", req: rawRequest("GET", "/readyz", slices.Repeat([]string{"X-A: b"}, 20000), nil), want: http.StatusRequestHeaderFieldsTooLarge},
		{name: "URL over the header limit", req: rawRequest("GET", "/subject/"+strings.Repeat("a", 2*maxHeader), nil, nil), want: http.StatusRequestHeaderFieldsTooLarge},
		{name: "Authorization over the limit", req: rawRequest("GET", "/user/me", []string{"Authorization: JWT " + strings.Repeat("a", 2*maxHeader)}, nil), want: http.StatusRequestHeaderFieldsTooLarge},
		{name: "Authorization of 60000 bytes", req: rawRequest("GET", "/user/me", []string{"Authorization: JWT " + long[:60000]}, nil), want: http.StatusUnauthorized},
		{name: "Authorization with three parts of garbage", req: rawRequest("GET", "/user/me", []string{"Authorization: Bearer a.b.c"}, nil), want: http.StatusUnauthorized},
		{name: "Authorization alg none", req: rawRequest("GET", "/user/me", []string{"Authorization: Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4In0."}, nil), want: http.StatusUnauthorized},
		{name: "Authorization with invalid UTF-8", req: rawRequest("GET", "/user/me", []string{"Authorization: JWT \xff\xfe"}, nil), want: http.StatusUnauthorized},
		{name: "Authorization scheme only", req: rawRequest("GET", "/user/me", []string{"Authorization: JWT"}, nil), want: http.StatusUnauthorized},
		{name: "Authorization twice", req: rawRequest("GET", "/user/me", []string{auth, "Authorization: JWT x"}, nil), want4xx: true},
		{name: "NUL in a header", req: rawRequest("GET", "/readyz", []string{"X-A: a\x00b"}, nil), want4xx: true, mayClose: true},
		{name: "header without a colon", req: rawRequest("GET", "/readyz", []string{"Broken"}, nil), want4xx: true},
		{name: "X-Request-ID hostile", req: rawRequest("GET", "/readyz", []string{"X-Request-ID: \"\n<script>" + long[:1000]}, nil), want4xx: true},
		{name: "X-Forwarded-For spoofed", req: rawRequest("GET", "/readyz", []string{"X-Forwarded-For: " + long[:5000]}, nil), want: http.StatusOK},
		{name: "Host of 10000 bytes", req: []byte("GET /readyz HTTP/1.1\r\nHost: " + long[:10000] + "\r\nConnection: close\r\n\r\n")},
		{name: "X-Forwarded-For of 5000 bytes at /auth", req: rawRequest("POST", "/auth", []string{"X-Forwarded-For: " + long[:5000], "Content-Type: application/json"},
			[]byte(`{"username":"nobody@example.org","password":"wrong"}`)), want4xx: true},
		{name: "X-Forwarded-For garbage at /auth", req: rawRequest("POST", "/auth", []string{"X-Forwarded-For: ::ffff:1.2.3.4%eth0, [::1]:80, 999.1.1.1, \x7f", "Content-Type: application/json"},
			[]byte(`{"username":"nobody@example.org","password":"wrong"}`)), want4xx: true},
		{name: "no Host", req: []byte("GET /readyz HTTP/1.1\r\nConnection: close\r\n\r\n"), want: http.StatusBadRequest},
		// Broken HTTP and framing.
		{name: "garbage", req: []byte("GARBAGE\r\n\r\n"), want4xx: true, mayClose: true},
		{name: "binary", req: []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"), want4xx: true, mayClose: true},
		{name: "HTTP/2 preface", req: []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), mayClose: true},
		{name: "HTTP/0.9", req: []byte("GET /\r\n\r\n"), want4xx: true, mayClose: true},
		// net/http's own refusals: 505 and 501 are the right codes here.
		{name: "HTTP/9.9", req: []byte("GET / HTTP/9.9\r\nHost: x\r\n\r\n"), want: http.StatusHTTPVersionNotSupported},
		{name: "bare LF", req: []byte("GET /readyz HTTP/1.1\nHost: x\nConnection: close\n\n"), mayClose: true},
		{name: "Content-Length and chunked", req: []byte("POST /subject HTTP/1.1\r\nHost: x\r\n" + auth + "\r\nContent-Type: application/json\r\n" +
			"Content-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"), want4xx: true, mayClose: true},
		{name: "two Content-Lengths", req: []byte("POST /auth HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 40\r\nConnection: close\r\n\r\n{}"), want4xx: true, mayClose: true},
		{name: "negative Content-Length", req: []byte("POST /auth HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\nConnection: close\r\n\r\n{}"), want4xx: true, mayClose: true},
		{name: "Content-Length over the limit, no body", req: []byte("POST /auth HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 99999999999\r\nConnection: close\r\n\r\n"), want: http.StatusRequestEntityTooLarge},
		{name: "chunked body over the limit", req: chunked("POST", "/subject", []string{auth, "Content-Type: application/json"}, 2<<20), want: http.StatusRequestEntityTooLarge},
		{name: "bad chunk size", req: []byte("POST /auth HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"), want4xx: true, mayClose: true},
		{name: "chunk size overflow", req: []byte("POST /auth HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\nConnection: close\r\n\r\nffffffffffffffffffff\r\n{}\r\n0\r\n\r\n"), want4xx: true, mayClose: true},
		{name: "unknown transfer encoding", req: []byte("POST /auth HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n{}"), want: http.StatusNotImplemented},
		{name: "Expect 100-continue over the limit", req: []byte("POST /subject HTTP/1.1\r\nHost: x\r\n" + auth + "\r\nContent-Type: application/json\r\n" +
			"Expect: 100-continue\r\nContent-Length: 5000000\r\nConnection: close\r\n\r\n"), want: http.StatusRequestEntityTooLarge},
		{name: "unknown Expect", req: rawRequest("GET", "/readyz", []string{"Expect: 200-ok"}, nil), want: http.StatusExpectationFailed},
		{name: "gzip body", req: rawRequest("POST", "/subject", []string{auth, "Content-Type: application/json", "Content-Encoding: gzip"},
			[]byte("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")), want4xx: true},
		{name: "upgrade to websocket", req: rawRequest("GET", "/readyz", []string{"Upgrade: websocket", "Connection: Upgrade"}, nil)},
	}
	return cases
}

// chunked builds a request whose body of n bytes ("[" repeated) is sent in
// chunks of 32 KiB.
func chunked(method, target string, headers []string, n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n", method, target)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	chunk := bytes.Repeat([]byte("["), 32<<10)
	for sent := 0; sent < n; sent += len(chunk) {
		fmt.Fprintf(&b, "%x\r\n%s\r\n", len(chunk), chunk)
	}
	b.WriteString("0\r\n\r\n")
	return b.Bytes()
}

// canary sends well-behaved requests to h until stop is closed and returns
// how many it sent and the slowest answer; every one must succeed.
func canary(t *testing.T, h *hostileServer, stop <-chan struct{}) (wait func() (int, time.Duration)) {
	c := newClient(t, hostileAnswer)
	var (
		n       int
		slowest time.Duration
		fails   []string
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			path := []string{"/readyz", "/subject/fixture-1", "/user/me"}[i%3]
			began := time.Now()
			status, body, err := send(t.Context(), c, "GET", h.p.url+path, h.token, "")
			d := time.Since(began)
			n++
			slowest = max(slowest, d)
			if err != nil || status != http.StatusOK || d > canaryAnswer {
				fails = append(fails, fmt.Sprintf("GET %s: %d %v after %v: %s", path, status, err, d, clipBytes(body)))
			}
		}
	}()
	return func() (int, time.Duration) {
		<-done
		require.Empty(t, fails, "well-behaved requests failed while hostile ones were served")
		return n, slowest
	}
}

// runHostile sends every case with a few in flight at once, while a canary
// checks that idmd keeps serving others.
func runHostile(t *testing.T, h *hostileServer, cases []hostileCase) {
	stop := make(chan struct{})
	wait := canary(t, h, stop)
	began := time.Now()
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		mu      sync.Mutex
		replies = make([]rawReply, len(cases))
		errs    = make([]error, len(cases))
	)
	for range hostileParallel {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(cases); i = int(next.Add(1) - 1) {
				r, err := exchange(h.addr, cases[i].req)
				mu.Lock()
				replies[i], errs[i] = r, err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(stop)
	n, slowest := wait()

	statuses := map[int]int{}
	var slowestCase time.Duration
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !assert.NoError(t, errs[i]) {
				return
			}
			checkReply(t, c, replies[i])
		})
		statuses[replies[i].status]++
		slowestCase = max(slowestCase, replies[i].took)
	}
	// No panic, and no 500 that a client did not see (each one it saw
	// failed its case above).
	logs := h.p.logs()
	assert.Zero(t, strings.Count(logs, "panic serving request"), "panics in the idmd log")
	assert.Equal(t, statuses[http.StatusInternalServerError], strings.Count(logs, `"status":500,"duration"`), "500s in the idmd log")
	t.Logf("%d hostile requests in %v (answers by status %v, slowest %v); %d well-behaved requests meanwhile, slowest %v",
		len(cases), time.Since(began).Round(time.Millisecond), statuses, slowestCase.Round(time.Millisecond), n, slowest.Round(time.Millisecond))
}

func TestHostileInput(t *testing.T) {
	t.Run("bolt", func(t *testing.T) {
		h := setupHostile(t, baseEnv(t))
		runHostile(t, h, append(h.bodyCases(true), h.protocolCases()...))
		// idmd still works normally afterwards.
		r := call(t, "POST", h.p.url+"/subject", h.token, `{"sssid":"after-1","name":"After","bday":"1990-01-01"}`)
		require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	})
	t.Run("mongo", func(t *testing.T) {
		db := testmongo.NewDatabaseName(t)
		client := testmongo.Client(t, testmongo.URI(t))
		t.Cleanup(func() { _ = client.Database(db).Drop(context.Background()) })
		h := setupHostile(t, mongoEnv(t, db))
		runHostile(t, h, h.bodyCases(false))
		r := call(t, "POST", h.p.url+"/subject", h.token, `{"sssid":"after-1","name":"After","bday":"1990-01-01"}`)
		require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	})
}
