package idm_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/c3-pro/idm/idm"
)

// New SSSIDs may not hold invisible characters (zero-width spaces, bidi
// controls): "S-9\u200b" would sit beside "S-9" looking the same.
func TestNewSSSIDsWithFormatCharactersRefused(t *testing.T) {
	onEachStore(t, func(t *testing.T, newStore newStoreFunc) {
		e := newTestEnvOn(t, newStore(t), withAuth)
		e.must(t, http.StatusCreated, "POST", "/subject", `{"sssid": "S-9", "name": "N", "bday": "1980-05-17"}`)
		for _, sssid := range []string{"S-9\u200b", "S\u200d-9", "S-9\u202e", "\ufeffS-9", "S\u00ad-9", "S-9\u2066"} {
			r := e.staff(t, "POST", "/subject", `{"sssid": `+jsonString(t, sssid)+`, "name": "N", "bday": "1980-05-17"}`)
			if r.status != http.StatusBadRequest || !strings.Contains(r.message(), "invisible formatting characters") {
				t.Errorf("sssid %q: %d %s", sssid, r.status, r.body)
			}
		}
		var list struct {
			Data []struct {
				SSSID string `json:"sssid"`
			} `json:"data"`
		}
		if err := json.Unmarshal(e.must(t, http.StatusOK, "GET", "/subject", "").body, &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Data) != 1 {
			t.Errorf("subjects: %+v", list.Data)
		}
	})
}

// A subject stored with an SSSID that POST /subject refuses (a migrated
// one, such as "S/1") is reachable through its percent-encoded path
// segment (idm.SSSIDPathSegment), and can be read, changed and given links.
func TestStoredUnusualSSSIDsReachableEscaped(t *testing.T) {
	onEachStore(t, func(t *testing.T, newStore newStoreFunc) {
		e := newTestEnvOn(t, newStore(t), withAuth)
		for _, sssid := range []string{"S/1", "S?1", "S#1", "S%41", " S-1", "S-1\t", "S-9\u200b", "a/../b"} {
			t.Run(sssid, func(t *testing.T) {
				if err := idm.CheckSSSID(sssid); err == nil {
					t.Fatalf("CheckSSSID(%q) accepts it", sssid)
				}
				if err := e.store.CreateSubject(t.Context(), idm.Subject{ID: idm.NewID(), SSSID: sssid, Name: "N", Bday: "1980-05-17", DateConsented: "2020-01-02"}); err != nil {
					t.Fatal(err)
				}
				seg, ok := idm.SSSIDPathSegment(sssid)
				if !ok {
					t.Fatalf("no path segment for %q", sssid)
				}
				var got struct {
					Data struct {
						SSSID string `json:"sssid"`
						Name  string `json:"name"`
					} `json:"data"`
				}
				e.must(t, http.StatusNoContent, "PUT", "/subject/"+seg, `{"sssid": `+jsonString(t, sssid)+`, "name": "M"}`)
				if err := json.Unmarshal(e.must(t, http.StatusOK, "GET", "/subject/"+seg, "").body, &got); err != nil {
					t.Fatal(err)
				}
				if got.Data.SSSID != sssid || got.Data.Name != "M" {
					t.Errorf("GET /subject/%s: %+v", seg, got.Data)
				}
				e.must(t, http.StatusCreated, "POST", "/subject/"+seg+"/links", "")
				e.must(t, http.StatusOK, "GET", "/subject/"+seg+"/links", "")
				// Another SSSID in the body is still refused for what it is.
				r := e.staff(t, "PUT", "/subject/"+seg, `{"sssid": "S/2", "name": "M"}`)
				if r.status != http.StatusBadRequest {
					t.Errorf("PUT with another unusable sssid: %d %s", r.status, r.body)
				}
			})
		}
		for _, sssid := range []string{".", "..", ""} {
			if _, ok := idm.SSSIDPathSegment(sssid); ok {
				t.Errorf("SSSIDPathSegment(%q) claims a segment", sssid)
			}
		}
	})
}
