package idm_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/c3-pro/idm/idm"
)

// TestListAudits checks GET /audit for admins: every record (other
// document types too), oldest first, filtered by actor (username or ID)
// and time, paged, with a total and the old/new values.
func TestListAudits(t *testing.T) { onEachStore(t, testListAudits) }

func testListAudits(t *testing.T, newStore newStoreFunc) {
	env := newTestEnvOn(t, newStore(t))
	env.must(t, http.StatusCreated, "POST", "/subject", `{"sssid": "S-1", "name": "Alice", "bday": "1980-05-17", "date_consented": "2024-05-01"}`)
	mid := env.clock.Now()
	env.do(t, "PUT", "/subject/S-1", `{"sssid": "S-1", "name": "Alicia"}`, "Authorization", "JWT "+adminToken)
	// A record about a user, as package users would write it.
	userEvent := idm.AuditEvent{ID: idm.NewID(), Time: idm.Timestamp(env.clock.Now()), Document: adminID, DocType: idm.DocUser,
		ActorID: adminID, Actor: adminName, Action: "login"}
	if err := env.store.AppendAudit(t.Context(), userEvent); err != nil {
		t.Fatal(err)
	}

	type record struct {
		ID       string          `json:"id"`
		Datetime string          `json:"datetime"`
		DocType  string          `json:"doctype"`
		Document string          `json:"document"`
		ActorID  string          `json:"actor_id"`
		Actor    string          `json:"actor"`
		Action   string          `json:"action"`
		Old      json.RawMessage `json:"old"`
		New      json.RawMessage `json:"new"`
	}
	list := func(t *testing.T, query string) ([]record, int) {
		t.Helper()
		var page struct {
			Data  []record `json:"data"`
			Total int      `json:"total"`
		}
		r := env.do(t, "GET", "/audit?"+query, "", "Authorization", "JWT "+adminToken)
		if r.status != http.StatusOK {
			t.Fatalf("GET /audit?%s: %d %s", query, r.status, r.body)
		}
		r.decode(t, &page)
		return page.Data, page.Total
	}
	all, total := list(t, "")
	if total != 3 || len(all) != 3 {
		t.Fatalf("all records: %d (total %d), want 3", len(all), total)
	}
	if all[0].Action != "create" || all[0].Actor != staffName || all[0].ActorID != staffID || all[0].DocType != "subject" ||
		len(all[0].New) == 0 || all[0].Old != nil {
		t.Errorf("first record %+v", all[0])
	}
	if all[1].Action != `name: "Alicia"` || string(all[1].Old) != `{"name":"Alice"}` || string(all[1].New) != `{"name":"Alicia"}` {
		t.Errorf("second record %+v", all[1])
	}
	if all[2].DocType != "user" || all[2].Action != "login" {
		t.Errorf("third record %+v", all[2])
	}
	if _, err := time.Parse(time.RFC3339Nano, all[0].Datetime); err != nil {
		t.Errorf("datetime %q: %v", all[0].Datetime, err)
	}

	tests := []struct {
		query     string
		wantFirst string
		wantN     int
		wantTotal int
	}{
		{"actor=" + url.QueryEscape(adminName), `name: "Alicia"`, 2, 2},
		{"actor=" + staffID, "create", 1, 1},
		{"since=" + url.QueryEscape(mid.Format(time.RFC3339Nano)), `name: "Alicia"`, 2, 2},
		{"until=" + url.QueryEscape(mid.Format(time.RFC3339Nano)), "create", 1, 1},
		{"offset=1&perpage=1", `name: "Alicia"`, 1, 3},
		{"actor=nobody", "", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			got, total := list(t, tt.query)
			if len(got) != tt.wantN || total != tt.wantTotal || (len(got) > 0 && got[0].Action != tt.wantFirst) {
				t.Errorf("got %d records (total %d) %+v; want %d (total %d) starting with %q", len(got), total, got, tt.wantN, tt.wantTotal, tt.wantFirst)
			}
		})
	}
}
