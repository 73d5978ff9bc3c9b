package idm_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/c3-pro/idm/idm"
)

// renderSubjects are stored subjects whose JSON the API's answers must
// render byte for byte as pinned in renderGolden: every field, none,
// unicode, HTML characters and U+2028/U+2029 (escaped as encoding/json
// does), nested and spaced additional values (compacted), big and odd
// numbers, empty strings, invalid UTF-8, and additional fields that are
// not shown (bad or clashing keys, values that are not JSON).
func renderSubjects() []idm.Subject {
	loc := time.FixedZone("X", 5*3600+30*60)
	at := time.Date(2026, 3, 4, 5, 6, 7, 891234567, loc)
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	return []idm.Subject{
		{ID: idm.NewID()},
		{
			ID: idm.NewID(), SSSID: "S-all", Name: "All Fields", Bday: "1980-05-17", Email: "all@example.org",
			DateInvited: "2024-01-02", DateConsented: "2024-01-03T04:05:06Z", DateEnrolled: "2024-01-04",
			DateWithdrawn: "2024-01-05", Created: at, Changed: at.Add(time.Hour),
			Extra: map[string]json.RawMessage{"zeta": raw(`1`), "alpha": raw(`"a"`), "Mid-1_x": raw(`true`)},
		},
		{ID: idm.NewID(), SSSID: "S-created", Created: at},
		{ID: idm.NewID(), SSSID: "S-changed", Changed: at},
		{
			ID: idm.NewID(), SSSID: "S-unicode", Name: "Zoë 日本語 😀 \u00e9", Email: "zoë@exämple.org",
			Extra: map[string]json.RawMessage{"u": raw(`"caf\u00e9 \ud83d\ude00 ü"`), "v": raw(`"日本"`)},
		},
		{
			ID: idm.NewID(), SSSID: "S-<html>&", Name: `<script>alert("x&y")</script> ` + "\u2028\u2029",
			Email: "a>b@example.org",
			Extra: map[string]json.RawMessage{
				"h":   raw(`"<b>&amp;</b>"`),
				"ls":  raw("\"a\u2028b\u2029c\""),
				"esc": raw(`"\u003c\/\"\\\b\f\n\r\t\u0000"`),
			},
		},
		{
			ID: idm.NewID(), SSSID: "S-nested",
			Extra: map[string]json.RawMessage{
				"obj":   raw(" {\n \"z\" : [ 1 , {\"y\": null, \"x\": \"< >\"} ],\t\"a\" : true, \"e\": {}, \"l\": [ ] } "),
				"arr":   raw(`[ [ [ "deep" ] ] , -1.5e-3 ]`),
				"null":  raw(`null`),
				"false": raw(`false`),
			},
		},
		{
			ID: idm.NewID(), SSSID: "S-numbers",
			Extra: map[string]json.RawMessage{
				"big": raw(`1e400`), "neg0": raw(`-0.0`), "exp": raw(`1E+2`),
				"long": raw(`123456789012345678901234567890`), "frac": raw(`0.1000`),
			},
		},
		{
			ID: idm.NewID(), SSSID: "S-empty", Name: "", Bday: "", Email: "",
			Extra: map[string]json.RawMessage{"e": raw(`""`), "o": raw(`{}`), "a": raw(`[]`)},
		},
		{
			ID: idm.NewID(), SSSID: "S-hidden", Name: "Hidden extras",
			Extra: map[string]json.RawMessage{
				"_x": raw(`1`), "name": raw(`"clash"`), "created": raw(`"c"`), "changed": raw(`"c"`),
				"sssid": raw(`"s"`), "bad key": raw(`1`), "broken": raw(`{`), "empty": raw(``),
				"trailing": raw(`1 2`), "ok": raw(`2`),
			},
		},
		{
			ID: idm.NewID(), SSSID: "S-utf8", Name: "bad \xff\xfe utf8",
			Extra: map[string]json.RawMessage{"r": raw("\"raw \xff bytes\"")},
		},
		{ID: idm.NewID(), SSSID: "S-noextra", Name: "No extras", Extra: map[string]json.RawMessage{}},
	}
}

// renderGolden pins the answers: the path, then the exact body.
var renderGolden = []struct{ path, body string }{
	{"/subject/S-all", "{\"data\":{\"sssid\":\"S-all\",\"name\":\"All Fields\",\"bday\":\"1980-05-17\",\"email\":\"all@example.org\",\"date_invited\":\"2024-01-02\",\"date_consented\":\"2024-01-03T04:05:06Z\",\"date_enrolled\":\"2024-01-04\",\"date_withdrawn\":\"2024-01-05\",\"created\":\"2026-03-03T23:36:07.891000Z\",\"changed\":\"2026-03-04T00:36:07.891000Z\",\"Mid-1_x\":true,\"alpha\":\"a\",\"zeta\":1}}\n"},
	{"/subject/S-created", "{\"data\":{\"sssid\":\"S-created\",\"created\":\"2026-03-03T23:36:07.891000Z\"}}\n"},
	{"/subject/S-changed", "{\"data\":{\"sssid\":\"S-changed\",\"changed\":\"2026-03-03T23:36:07.891000Z\"}}\n"},
	{"/subject/S-unicode", "{\"data\":{\"sssid\":\"S-unicode\",\"name\":\"Zoë 日本語 😀 é\",\"email\":\"zoë@exämple.org\",\"u\":\"caf\\u00e9 \\ud83d\\ude00 ü\",\"v\":\"日本\"}}\n"},
	{"/subject/S-%3Chtml%3E&", "{\"data\":{\"sssid\":\"S-\\u003chtml\\u003e\\u0026\",\"name\":\"\\u003cscript\\u003ealert(\\\"x\\u0026y\\\")\\u003c/script\\u003e \\u2028\\u2029\",\"email\":\"a\\u003eb@example.org\",\"esc\":\"\\u003c\\/\\\"\\\\\\b\\f\\n\\r\\t\\u0000\",\"h\":\"\\u003cb\\u003e\\u0026amp;\\u003c/b\\u003e\",\"ls\":\"a\\u2028b\\u2029c\"}}\n"},
	{"/subject/S-nested", "{\"data\":{\"sssid\":\"S-nested\",\"date_enrolled\":\"2023-12-31T23:00:00.000000Z\",\"arr\":[[[\"deep\"]],-1.5e-3],\"false\":false,\"null\":null,\"obj\":{\"z\":[1,{\"y\":null,\"x\":\"\\u003c \\u003e\"}],\"a\":true,\"e\":{},\"l\":[]}}}\n"},
	{"/subject/S-numbers", "{\"data\":{\"sssid\":\"S-numbers\",\"big\":1e400,\"exp\":1E+2,\"frac\":0.1000,\"long\":123456789012345678901234567890,\"neg0\":-0.0}}\n"},
	{"/subject/S-empty", "{\"data\":{\"sssid\":\"S-empty\",\"a\":[],\"e\":\"\",\"o\":{}}}\n"},
	{"/subject/S-hidden", "{\"data\":{\"sssid\":\"S-hidden\",\"name\":\"Hidden extras\",\"ok\":2}}\n"},
	{"/subject/S-utf8", "{\"data\":{\"sssid\":\"S-utf8\",\"name\":\"bad \\ufffd\\ufffd utf8\",\"r\":\"raw \\ufffd bytes\"}}\n"},
	{"/subject/S-noextra", "{\"data\":{\"sssid\":\"S-noextra\",\"name\":\"No extras\"}}\n"},
	{"/subject?ordercol=sssid", "{\"data\":[{},{\"sssid\":\"S-\\u003chtml\\u003e\\u0026\",\"name\":\"\\u003cscript\\u003ealert(\\\"x\\u0026y\\\")\\u003c/script\\u003e \\u2028\\u2029\",\"email\":\"a\\u003eb@example.org\",\"esc\":\"\\u003c\\/\\\"\\\\\\b\\f\\n\\r\\t\\u0000\",\"h\":\"\\u003cb\\u003e\\u0026amp;\\u003c/b\\u003e\",\"ls\":\"a\\u2028b\\u2029c\"},{\"sssid\":\"S-all\",\"name\":\"All Fields\",\"bday\":\"1980-05-17\",\"email\":\"all@example.org\",\"date_invited\":\"2024-01-02\",\"date_consented\":\"2024-01-03T04:05:06Z\",\"date_enrolled\":\"2024-01-04\",\"date_withdrawn\":\"2024-01-05\",\"created\":\"2026-03-03T23:36:07.891000Z\",\"changed\":\"2026-03-04T00:36:07.891000Z\",\"Mid-1_x\":true,\"alpha\":\"a\",\"zeta\":1},{\"sssid\":\"S-changed\",\"changed\":\"2026-03-03T23:36:07.891000Z\"},{\"sssid\":\"S-created\",\"created\":\"2026-03-03T23:36:07.891000Z\"},{\"sssid\":\"S-empty\",\"a\":[],\"e\":\"\",\"o\":{}},{\"sssid\":\"S-hidden\",\"name\":\"Hidden extras\",\"ok\":2},{\"sssid\":\"S-nested\",\"date_enrolled\":\"2023-12-31T23:00:00.000000Z\",\"arr\":[[[\"deep\"]],-1.5e-3],\"false\":false,\"null\":null,\"obj\":{\"z\":[1,{\"y\":null,\"x\":\"\\u003c \\u003e\"}],\"a\":true,\"e\":{},\"l\":[]}},{\"sssid\":\"S-noextra\",\"name\":\"No extras\"},{\"sssid\":\"S-numbers\",\"big\":1e400,\"exp\":1E+2,\"frac\":0.1000,\"long\":123456789012345678901234567890,\"neg0\":-0.0},{\"sssid\":\"S-unicode\",\"name\":\"Zoë 日本語 😀 é\",\"email\":\"zoë@exämple.org\",\"u\":\"caf\\u00e9 \\ud83d\\ude00 ü\",\"v\":\"日本\"},{\"sssid\":\"S-utf8\",\"name\":\"bad \\ufffd\\ufffd utf8\",\"r\":\"raw \\ufffd bytes\"}],\"total\":12}\n"},
	{"/subject?ordercol=sssid&orderdir=desc&offset=2&perpage=3", "{\"data\":[{\"sssid\":\"S-numbers\",\"big\":1e400,\"exp\":1E+2,\"frac\":0.1000,\"long\":123456789012345678901234567890,\"neg0\":-0.0},{\"sssid\":\"S-noextra\",\"name\":\"No extras\"},{\"sssid\":\"S-nested\",\"date_enrolled\":\"2023-12-31T23:00:00.000000Z\",\"arr\":[[[\"deep\"]],-1.5e-3],\"false\":false,\"null\":null,\"obj\":{\"z\":[1,{\"y\":null,\"x\":\"\\u003c \\u003e\"}],\"a\":true,\"e\":{},\"l\":[]}}],\"total\":12}\n"},
	{"/subject?offset=100&perpage=5", "{\"data\":[],\"total\":12}\n"},
	{"/subject?search=nomatch", "{\"data\":[],\"total\":0}\n"},
}

// TestRenderSubjectsPinned checks that subjects and pages of subjects are
// rendered exactly as pinned, with the JSON headers.
func TestRenderSubjectsPinned(t *testing.T) {
	e := newTestEnv(t)
	for _, s := range renderSubjects() {
		if err := e.store.CreateSubject(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	linked := time.Date(2023, 12, 31, 23, 0, 0, 0, time.UTC)
	if err := e.store.CreateLink(t.Context(), idm.Link{
		ID: idm.NewID(), SSSID: "S-nested", Created: linked, Changed: linked, Exp: linked.Add(time.Hour).Unix(),
		JWTHash: idm.NewID(), LinkedTo: "P-1", LinkedSystem: "urn:p", LinkedOn: linked,
	}); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, s := range renderSubjects() {
		if s.SSSID != "" {
			paths = append(paths, "/subject/"+url.PathEscape(s.SSSID))
		}
	}
	paths = append(paths,
		"/subject?ordercol=sssid",
		"/subject?ordercol=sssid&orderdir=desc&offset=2&perpage=3",
		"/subject?offset=100&perpage=5",
		"/subject?search=nomatch",
	)
	if os.Getenv("IDM_RENDER_PRINT") != "" {
		for _, p := range paths {
			r := e.must(t, http.StatusOK, "GET", p, "")
			t.Logf("{%q, %q},", p, r.body)
		}
		return
	}
	if len(renderGolden) != len(paths) {
		t.Fatalf("%d pinned answers for %d paths", len(renderGolden), len(paths))
	}
	for i, g := range renderGolden {
		t.Run(g.path, func(t *testing.T) {
			if g.path != paths[i] {
				t.Fatalf("pinned path %q, want %q", g.path, paths[i])
			}
			r := e.must(t, http.StatusOK, "GET", g.path, "")
			if string(r.body) != g.body {
				t.Errorf("body\n got %q\nwant %q", r.body, g.body)
			}
			checkJSONHeaders(t, r.header)
		})
	}
}

// TestRenderCreatedSubjectPinned checks the answer of POST /subject.
func TestRenderCreatedSubjectPinned(t *testing.T) {
	e := newTestEnv(t)
	body := `{"sssid":"S-<1>","name":"A & B \u2028","bday":"1990-01-02","x":{ "b" : [1, 2], "a":"<>" },"y":1E300}`
	r := e.must(t, http.StatusCreated, "POST", "/subject", body)
	want := "{\"data\":{\"sssid\":\"S-\\u003c1\\u003e\",\"site\":\"main\",\"name\":\"A \\u0026 B \\u2028\",\"bday\":\"1990-01-02\",\"created\":\"2026-11-29T12:00:00.001000Z\",\"changed\":\"2026-11-29T12:00:00.001000Z\",\"x\":{\"b\":[1,2],\"a\":\"\\u003c\\u003e\"},\"y\":1E300}}\n"
	if string(r.body) != want {
		t.Errorf("body\n got %q\nwant %q", r.body, want)
	}
	checkJSONHeaders(t, r.header)
}

func checkJSONHeaders(t *testing.T, h http.Header) {
	t.Helper()
	for k, v := range map[string]string{
		"Content-Type": "application/json", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
	} {
		if got := strings.Join(h.Values(k), ", "); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
}
