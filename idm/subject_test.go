package idm_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/c3-pro/idm/idm"
)

// TestSubjectJSON checks the subject's JSON form: known keys in a fixed
// order, then additional keys sorted, keys only when set, never an ID, dates
// stored as sent, server times in RFC 3339 UTC with fractional seconds.
func TestSubjectJSON(t *testing.T) { onEachStore(t, testSubjectJSON) }

func testSubjectJSON(t *testing.T, newStore newStoreFunc) {
	env := newTestEnvOn(t, newStore(t))
	created := env.must(t, http.StatusCreated, "POST", "/subject",
		`{"zeta": [1, {"b": true}], "bday": "1980-05-17T00:00:00+02:00", "name": "Alice", "sssid": "S-1", "email": "", "alpha": "x", "created": "1999-01-01T00:00:00Z", "nothing": null}`)
	want := `{"data":{"sssid":"S-1","site":"main","name":"Alice","bday":"1980-05-17T00:00:00+02:00","created":"2026-11-29T12:00:00.001000Z","changed":"2026-11-29T12:00:00.001000Z","alpha":"x","zeta":[1,{"b":true}]}}` + "\n"
	if string(created.body) != want {
		t.Errorf("POST answer\n got %s\nwant %s", created.body, want)
	}
	got := env.must(t, http.StatusOK, "GET", "/subject/S-1", "")
	if string(got.body) != want {
		t.Errorf("GET answer\n got %s\nwant %s", got.body, want)
	}
}

// TestListSubjects checks paging, sorting (ties by sssid), literal search,
// the total count and the empty page.
func TestListSubjects(t *testing.T) { onEachStore(t, testListSubjects) }

func testListSubjects(t *testing.T, newStore newStoreFunc) {
	env := newTestEnvOn(t, newStore(t))
	for i, s := range []struct{ sssid, name, bday string }{
		{"A-3", "Carol", "1990-01-01"}, {"A-1", "alice", "1980-05-17"}, {"A-2", "Bob", "1980-05-18"},
		{"B.1", "Dora (B)", "1970-01-01"}, {"B-1", "Eve", "1980-05-17"},
	} {
		env.must(t, http.StatusCreated, "POST", "/subject", fmt.Sprintf(`{"sssid": %q, "name": %q, "bday": %q, "n": %d}`, s.sssid, s.name, s.bday, i))
	}
	list := func(t *testing.T, query string) ([]string, int) {
		t.Helper()
		var page struct {
			Data []struct {
				SSSID string `json:"sssid"`
			} `json:"data"`
			Total *int `json:"total"`
		}
		env.must(t, http.StatusOK, "GET", "/subject?"+query, "").decode(t, &page)
		if page.Data == nil || page.Total == nil {
			t.Fatalf("GET /subject?%s: data or total missing", query)
		}
		var ids []string
		for _, s := range page.Data {
			ids = append(ids, s.SSSID)
		}
		return ids, *page.Total
	}
	tests := []struct {
		query     string
		want      []string
		wantTotal int
	}{
		{"", []string{"A-1", "A-2", "A-3", "B-1", "B.1"}, 5},
		{"offset=1&perpage=2&ordercol=sssid&orderdir=ASC", []string{"A-2", "A-3"}, 5},
		{"ordercol=bday&orderdir=desc", []string{"A-3", "A-2", "A-1", "B-1", "B.1"}, 5}, // ties by sssid, ascending
		{"ordercol=bday&orderdir=asc", []string{"B.1", "A-1", "B-1", "A-2", "A-3"}, 5},
		{"ordercol=name", []string{"A-2", "A-3", "B.1", "B-1", "A-1"}, 5},
		{"search=ALICE", []string{"A-1"}, 1},
		{"search=" + url.QueryEscape("B."), []string{"B.1"}, 1},
		{"search=" + url.QueryEscape("(B)"), []string{"B.1"}, 1},
		{"search=.*", nil, 0},
		{"search=1980-05", []string{"A-1", "A-2", "B-1"}, 3},
		{"offset=10", nil, 5},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			got, total := list(t, tt.query)
			if !slices.Equal(got, tt.want) || total != tt.wantTotal {
				t.Errorf("got %v (total %d), want %v (total %d)", got, total, tt.want, tt.wantTotal)
			}
		})
	}
	if r := env.must(t, http.StatusOK, "GET", "/subject?search=nobody", ""); string(r.body) != `{"data":[],"total":0}`+"\n" {
		t.Errorf("empty page: %s", r.body)
	}
}

// TestUpdateSubjectAudit checks that PUT lists the changed keys in the order
// of the request body, with plain values in JSON string form and status
// dates unquoted, keeps old and new values for admins, and records
// `update` when nothing changed.
func TestUpdateSubjectAudit(t *testing.T) { onEachStore(t, testUpdateSubjectAudit) }

func testUpdateSubjectAudit(t *testing.T, newStore newStoreFunc) {
	env := newTestEnvOn(t, newStore(t))
	env.must(t, http.StatusCreated, "POST", "/subject", `{"sssid": "S-1", "name": "Alice", "bday": "1980-05-17", "email": "old@example.org", "notes": "n", "drop": 1}`)
	env.must(t, http.StatusNoContent, "PUT", "/subject/S-1",
		`{"sssid": "S-1", "name": "Alice Renamed", "bday": "1980-05-17", "email": "a@x.org", "date_consented": "2024-05-01T12:00:00+02:00", "tags": ["a", "b"], "drop": null, "quote": "say \"hi\" & <go>"}`)
	env.must(t, http.StatusNoContent, "PUT", "/subject/S-1", `{"sssid": "S-1", "name": "Alice Renamed", "date_consented": "2024-05-01T12:00:00+02:00"}`)

	var trail struct {
		Data []struct {
			Datetime string `json:"datetime"`
			Action   string `json:"action"`
			Actor    string `json:"actor"`
		} `json:"data"`
	}
	env.must(t, http.StatusOK, "GET", "/subject/S-1/audits", "").decode(t, &trail)
	var actions []string
	for _, a := range trail.Data {
		actions = append(actions, a.Action)
		if a.Actor != staffName {
			t.Errorf("actor %q, want %q", a.Actor, staffName)
		}
	}
	want := []string{
		"create",
		`name: "Alice Renamed"; email: "a@x.org"; consented: 2024-05-01T12:00:00+02:00; tags: ["a","b"]; drop: null; quote: "say \"hi\" & <go>"`,
		"update",
	}
	if !slices.Equal(actions, want) {
		t.Fatalf("actions\n got %q\nwant %q", actions, want)
	}

	var subject map[string]any
	env.must(t, http.StatusOK, "GET", "/subject/S-1", "").decode(t, &subject)
	data := subject["data"].(map[string]any)
	if _, ok := data["drop"]; ok {
		t.Error("a key set to null is still there")
	}
	if data["email"] != "a@x.org" || data["date_consented"] != "2024-05-01T12:00:00+02:00" {
		t.Errorf("subject after PUT: %v", data)
	}

	var all struct {
		Data []struct {
			Action string          `json:"action"`
			Old    json.RawMessage `json:"old"`
			New    json.RawMessage `json:"new"`
		} `json:"data"`
	}
	env.do(t, "GET", "/audit?actor="+staffName, "", "Authorization", "JWT "+adminToken).decode(t, &all)
	if len(all.Data) != 3 {
		t.Fatalf("GET /audit: %d records, want 3", len(all.Data))
	}
	rec := all.Data[1]
	wantOld := `{"name":"Alice","email":"old@example.org","date_consented":null,"tags":null,"drop":1,"quote":null}`
	wantNew := `{"name":"Alice Renamed","email":"a@x.org","date_consented":"2024-05-01T12:00:00+02:00","tags":["a","b"],"drop":null,"quote":"say \"hi\" \u0026 \u003cgo\u003e"}`
	if string(rec.Old) != wantOld || string(rec.New) != wantNew {
		t.Errorf("old/new values\n got %s\n     %s\nwant %s\n     %s", rec.Old, rec.New, wantOld, wantNew)
	}
}

// TestDerivedDates checks date_enrolled (earliest linked_on of links that
// are not withdrawn) and date_withdrawn (latest withdrawn_on) on single
// subjects and on list pages, and that they are stored on the subject.
func TestDerivedDates(t *testing.T) { onEachStore(t, testDerivedDates) }

func testDerivedDates(t *testing.T, newStore newStoreFunc) {
	env := newTestEnvOn(t, newStore(t))
	env.must(t, http.StatusCreated, "POST", "/subject", `{"sssid": "S-1", "name": "Alice", "bday": "1980-05-17", "date_consented": "2024-05-01"}`)
	first := env.createLink(t, "S-1")
	second := env.createLink(t, "S-1")
	tok := env.mint(t, first)
	if r := env.establish(t, tok, "P-1"); r.status != http.StatusNoContent {
		t.Fatalf("establish: %d %s", r.status, r.body)
	}
	linked, err := env.store.FindLink(t.Context(), first)
	if err != nil {
		t.Fatal(err)
	}
	enrolled := idm.FormatTime(linked.LinkedOn)

	type subj struct {
		SSSID         string `json:"sssid"`
		DateEnrolled  string `json:"date_enrolled"`
		DateWithdrawn string `json:"date_withdrawn"`
	}
	check := func(t *testing.T, wantEnrolled, wantWithdrawn string) {
		t.Helper()
		var one struct{ Data subj }
		env.must(t, http.StatusOK, "GET", "/subject/S-1", "").decode(t, &one)
		var page struct{ Data []subj }
		env.must(t, http.StatusOK, "GET", "/subject?ordercol=date_enrolled", "").decode(t, &page)
		for _, got := range []subj{one.Data, page.Data[0]} {
			if got.DateEnrolled != wantEnrolled || got.DateWithdrawn != wantWithdrawn {
				t.Errorf("got enrolled %q withdrawn %q, want %q and %q", got.DateEnrolled, got.DateWithdrawn, wantEnrolled, wantWithdrawn)
			}
		}
		stored, err := env.store.FindSubject(t.Context(), "S-1")
		if err != nil {
			t.Fatal(err)
		}
		if stored.DateEnrolled != wantEnrolled || stored.DateWithdrawn != wantWithdrawn {
			t.Errorf("stored enrolled %q withdrawn %q, want %q and %q", stored.DateEnrolled, stored.DateWithdrawn, wantEnrolled, wantWithdrawn)
		}
	}
	check(t, enrolled, "")

	// The shown date_enrolled may be sent back unchanged.
	env.must(t, http.StatusNoContent, "PUT", "/subject/S-1", `{"sssid": "S-1", "date_enrolled": "`+enrolled+`"}`)

	env.must(t, http.StatusNoContent, "PUT", "/link/"+second, `{"withdrawn_on": "2025-02-01T00:00:00Z"}`)
	env.must(t, http.StatusNoContent, "PUT", "/link/"+first, `{"withdrawn_on": "2025-03-01T00:00:00+01:00"}`)
	check(t, enrolled, "2025-03-01T00:00:00+01:00")

	var trail struct{ Data []struct{ Action string } }
	env.must(t, http.StatusOK, "GET", "/subject/S-1/audits", "").decode(t, &trail)
	var actions []string
	for _, a := range trail.Data {
		actions = append(actions, a.Action)
	}
	want := []string{
		"create", "[Link] create", "[Link] create", "[Link] create JWT", "[Link] link to P-1",
		"enrolled: " + enrolled, "update",
		`[Link] withdrawn_on: "2025-02-01T00:00:00Z"`, "withdrawn: 2025-02-01T00:00:00Z",
		`[Link] withdrawn_on: "2025-03-01T00:00:00+01:00"`, "withdrawn: 2025-03-01T00:00:00+01:00",
	}
	if !slices.Equal(actions, want) {
		t.Errorf("audit trail\n got %q\nwant %q", actions, want)
	}
}
