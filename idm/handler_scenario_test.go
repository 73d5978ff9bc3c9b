package idm_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestScenario walks the frontend's flow and the mobile app's, against the
// real auth package: log in, create subjects, page and sort, update,
// consent, create a link, fetch its JWT, establish as the app does, read
// the audit trail; and the app-side failures.
func TestScenario(t *testing.T) { onEachStore(t, testScenario) }

func testScenario(t *testing.T, newStore newStoreFunc) {
	env, password := newTestEnvOn(t, newStore(t), withAuth), envStaffPassword
	login := func(t *testing.T) string {
		t.Helper()
		r := env.do(t, "POST", "/auth", `{"username": "Staff@Example.org", "password": "`+password+`"}`)
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		r.decode(t, &tok)
		if r.status != http.StatusOK || tok.AccessToken == "" {
			t.Fatalf("login: %d %s", r.status, r.body)
		}
		return tok.AccessToken
	}
	token := login(t)
	// as sends a request the way the frontend does: Authorization: JWT.
	as := func(t *testing.T, want int, method, target, body string, headers ...string) response {
		t.Helper()
		r := env.do(t, method, target, body, append([]string{"Authorization", "JWT " + token}, headers...)...)
		if r.status != want {
			t.Fatalf("%s %s: %d, want %d; %s", method, target, r.status, want, r.body)
		}
		return r
	}

	// Create subjects, with dates as moment().format() writes them.
	for _, body := range []string{
		`{"sssid": "S-100", "name": "Alice Example", "bday": "1980-05-17", "email": "alice@example.org", "date_invited": "2026-11-01T09:30:00+01:00"}`,
		`{"sssid": "S-101", "name": "Bob Example", "bday": "1975-01-02"}`,
		`{"sssid": "S-102", "name": "Carol Example", "bday": "1990-12-31", "study_arm": "B"}`,
	} {
		as(t, http.StatusCreated, "POST", "/subject", body)
	}

	// Page and sort as the frontend does.
	var page struct {
		Data []struct {
			SSSID string `json:"sssid"`
			Name  string `json:"name"`
		} `json:"data"`
		Total int `json:"total"`
	}
	as(t, http.StatusOK, "GET", "/subject?offset=0&perpage=2&ordercol=name&orderdir=DESC", "").decode(t, &page)
	if page.Total != 3 || len(page.Data) != 2 || page.Data[0].SSSID != "S-102" || page.Data[1].SSSID != "S-101" {
		t.Fatalf("first page: %+v", page)
	}
	as(t, http.StatusOK, "GET", "/subject?offset=2&perpage=2&ordercol=name&orderdir=DESC", "").decode(t, &page)
	if len(page.Data) != 1 || page.Data[0].SSSID != "S-100" {
		t.Fatalf("second page: %+v", page)
	}

	// Update, then consent; links need consent.
	as(t, http.StatusNoContent, "PUT", "/subject/S-100", `{"sssid": "S-100", "name": "Alice Renamed", "email": "a@x.org"}`)
	as(t, http.StatusPreconditionFailed, "POST", "/subject/S-100/links", "")
	as(t, http.StatusNoContent, "PUT", "/subject/S-100", `{"sssid": "S-100", "name": "Alice Renamed", "date_consented": "2026-11-29T13:00:00+01:00"}`)
	if r := as(t, http.StatusConflict, "PUT", "/subject/S-100", `{"sssid": "S-100", "date_consented": "2026-11-30"}`); r.message() != "Subject has already been consented" {
		t.Fatalf("second consent: %s", r.body)
	}

	// Create a link and fetch its JWT as the frontend does.
	var created struct {
		Data struct {
			ID  string `json:"_id"`
			Sub string `json:"sub"`
		} `json:"data"`
	}
	as(t, http.StatusCreated, "POST", "/subject/S-100/links", "", "Accept", "application/json").decode(t, &created)
	jti := created.Data.ID
	var links struct {
		Data []struct {
			ID  string `json:"_id"`
			Exp int64  `json:"exp"`
		} `json:"data"`
	}
	as(t, http.StatusOK, "GET", "/subject/S-100/links", "", "Accept", "application/json").decode(t, &links)
	if len(links.Data) != 1 || links.Data[0].ID != jti || links.Data[0].Exp != 0 {
		t.Fatalf("links: %+v", links)
	}
	linkJWT := string(as(t, http.StatusOK, "GET", "/link/"+jti+"/jwt", "", "Accept", "application/jwt").body)
	if strings.Count(linkJWT, ".") != 2 {
		t.Fatalf("link JWT %q", linkJWT)
	}

	// The link JWT is not a staff token, and a staff token does not
	// establish.
	if r := env.do(t, "GET", "/subject", "", "Authorization", "JWT "+linkJWT); r.status != http.StatusUnauthorized || r.message() != "Invalid token" {
		t.Errorf("link JWT as a staff token: %d %s", r.status, r.body)
	}

	// The app's failures, in the order of the checks.
	patient := patientJSON("P-123")
	for _, tt := range []struct {
		name        string
		authz, body string
		want        int
		wantMessage string
	}{
		{"NoToken", "", patient, 401, "Unauthorized"},
		{"WrongScheme", "Basic " + linkJWT, patient, 406, "only `Bearer` and `JWT` type authorization is acceptable"},
		{"Forged", "Bearer " + linkJWT[:len(linkJWT)-4] + "AAAA", patient, 403, "Forbidden"},
		{"StaffToken", "Bearer " + token, patient, 403, "Forbidden"},
		{"NotPatient", "Bearer " + linkJWT, `{"resourceType": "Practitioner", "identifier": [{"value": "P-1"}]}`, 406, "you must provide a FHIR `Patient` resource"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := env.do(t, "POST", "/establish", tt.body, "Authorization", tt.authz)
			if r.status != tt.want || r.message() != tt.wantMessage {
				t.Errorf("got %d %q, want %d %q", r.status, r.message(), tt.want, tt.wantMessage)
			}
		})
	}

	// Establish as the app does, then again.
	if r := env.establish(t, linkJWT, "P-123"); r.status != http.StatusNoContent {
		t.Fatalf("establish: %d %s", r.status, r.body)
	}
	if r := env.establish(t, linkJWT, "P-123"); r.status != http.StatusConflict || r.message() != "this link has already been established" {
		t.Fatalf("second establish: %d %s", r.status, r.body)
	}
	var subject struct {
		Data map[string]any `json:"data"`
	}
	as(t, http.StatusOK, "GET", "/subject/S-100", "").decode(t, &subject)
	if subject.Data["date_enrolled"] == nil || subject.Data["name"] != "Alice Renamed" {
		t.Errorf("subject after establish: %v", subject.Data)
	}

	// The audit trail: oldest first, staff username as actor, none for the
	// app.
	var trail struct {
		Data []map[string]string `json:"data"`
	}
	as(t, http.StatusOK, "GET", "/subject/S-100/audits", "").decode(t, &trail)
	var actions []string
	for _, a := range trail.Data {
		actions = append(actions, a["action"]+" by "+a["actor"])
	}
	enrolled, _ := subject.Data["date_enrolled"].(string)
	want := []string{
		"create by " + staffName,
		`name: "Alice Renamed"; email: "a@x.org" by ` + staffName,
		"consented: 2026-11-29T13:00:00+01:00 by " + staffName,
		"[Link] create by " + staffName,
		"[Link] create JWT by " + staffName,
		"[Link] link to P-123 by ",
		"enrolled: " + enrolled + " by ",
	}
	if !slices.Equal(actions, want) {
		t.Errorf("audit trail\n got %q\nwant %q", actions, want)
	}

	// A revoked link's JWT no longer establishes.
	as(t, http.StatusNoContent, "PUT", "/subject/S-101", `{"sssid": "S-101", "date_consented": "2026-11-29"}`)
	as(t, http.StatusCreated, "POST", "/subject/S-101/links", "").decode(t, &created)
	revokedJWT := string(as(t, http.StatusOK, "GET", "/link/"+created.Data.ID+"/jwt", "").body)
	as(t, http.StatusNoContent, "DELETE", "/link/"+created.Data.ID, "")
	if r := env.establish(t, revokedJWT, "P-124"); r.status != http.StatusForbidden || r.message() != "Forbidden" {
		t.Errorf("revoked link: %d %s", r.status, r.body)
	}

	// An expired link: 403, whatever the body.
	as(t, http.StatusCreated, "POST", "/subject/S-101/links", "").decode(t, &created)
	expiredJWT := string(as(t, http.StatusOK, "GET", "/link/"+created.Data.ID+"/jwt", "").body)
	env.clock.Advance(24*time.Hour + time.Second)
	if r := env.do(t, "POST", "/establish", `{}`, "Authorization", "JWT "+expiredJWT); r.status != http.StatusForbidden || r.message() != "this link has expired" {
		t.Errorf("expired link: %d %s", r.status, r.body)
	}
	// Staff tokens expire too (12 h); log in again and see everything.
	if r := env.do(t, "GET", "/subject", "", "Authorization", "JWT "+token); r.status != http.StatusUnauthorized {
		t.Errorf("staff token after a day: %d", r.status)
	}
	token = login(t)
	var audits json.RawMessage
	as(t, http.StatusOK, "GET", "/subject/S-101/audits", "").decode(t, &audits)
	if !strings.Contains(string(audits), `"action":"[Link] revoke"`) {
		t.Errorf("revocation not in the audit trail: %s", audits)
	}
}
