package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBoundedLinksAndPaging checks that staff actions cannot make a
// subject's active links grow without bound (20 by default, IDM_MAX_LINKS;
// a 409 past it; revoked, established and expired links do not count), and
// that GET /subject/{sssid}/links and /audits page with offset and perpage
// (with a total) while answering everything, without a total, when no
// paging parameter is given, as the frontend expects.
func TestBoundedLinksAndPaging(t *testing.T) {
	for _, st := range storeEnvs() {
		t.Run(st.name, func(t *testing.T) {
			s := newTestService(t, st.env(t))
			tok := s.bootstrap()
			s.staff(tok, http.StatusCreated, "POST", "/subject", `{"sssid":"S-1","name":"Alice","bday":"1980-05-17","date_consented":"2024-05-01"}`)
			var jtis []string
			for range 20 {
				a := s.staff(tok, http.StatusCreated, "POST", "/subject/S-1/links", "")
				jtis = append(jtis, jsonField(t, a.body, "data", "_id"))
			}
			a := s.staff(tok, http.StatusConflict, "POST", "/subject/S-1/links", "")
			require.Equal(t, "this subject has 20 active links, the most allowed; revoke one or let one expire first", a.message())

			// A revoked link frees its place, and so does an established one.
			s.staff(tok, http.StatusNoContent, "DELETE", "/link/"+jtis[0], "")
			a = s.staff(tok, http.StatusCreated, "POST", "/subject/S-1/links", "")
			jtis = append(jtis, jsonField(t, a.body, "data", "_id"))
			s.staff(tok, http.StatusConflict, "POST", "/subject/S-1/links", "")
			jwt := s.staff(tok, http.StatusOK, "GET", "/link/"+jtis[1]+"/jwt", "").body
			s.must(http.StatusNoContent, "POST", "/establish", `{"resourceType":"Patient","identifier":[{"value":"P-1"}]}`,
				"Authorization", "Bearer "+jwt, "Content-Type", "application/fhir+json")
			s.staff(tok, http.StatusCreated, "POST", "/subject/S-1/links", "")
			s.staff(tok, http.StatusConflict, "POST", "/subject/S-1/links", "")
			// 22 links, one revoked: 21 listed.

			// Links: everything without paging parameters (no total).
			var all struct {
				Data []map[string]any `json:"data"`
			}
			a = s.staff(tok, http.StatusOK, "GET", "/subject/S-1/links", "")
			decodeStrict(t, a.body, &all)
			require.Len(t, all.Data, 21)
			a = s.staff(tok, http.StatusOK, "GET", "/subject/S-1/links?page=2", "") // an older frontend's parameter
			decodeStrict(t, a.body, &all)
			require.Len(t, all.Data, 21)
			for _, tc := range []struct {
				query       string
				first, size int
			}{
				{"offset=0&perpage=5", 0, 5},
				{"offset=18&perpage=5", 18, 3},
				{"perpage=1", 0, 1},
				{"offset=20", 20, 1},
				{"offset=21", 0, 0},
				{"offset=1000&perpage=1000", 0, 0},
			} {
				var pg struct {
					Data  []map[string]any `json:"data"`
					Total *int             `json:"total"`
				}
				a = s.staff(tok, http.StatusOK, "GET", "/subject/S-1/links?"+tc.query, "")
				decodeStrict(t, a.body, &pg)
				require.NotNil(t, pg.Total, tc.query)
				require.Equal(t, 21, *pg.Total, tc.query)
				require.Len(t, pg.Data, tc.size, tc.query)
				require.NotNil(t, pg.Data, "%s: [] rather than null", tc.query)
				if tc.size > 0 {
					require.Equal(t, all.Data[tc.first:tc.first+tc.size], pg.Data, tc.query)
				}
			}

			// Audits: the same.
			var audits struct {
				Data []map[string]any `json:"data"`
			}
			a = s.staff(tok, http.StatusOK, "GET", "/subject/S-1/audits", "")
			decodeStrict(t, a.body, &audits)
			n := len(audits.Data)
			require.Greater(t, n, 25)
			var pg struct {
				Data  []map[string]any `json:"data"`
				Total int              `json:"total"`
			}
			a = s.staff(tok, http.StatusOK, "GET", fmt.Sprintf("/subject/S-1/audits?offset=%d&perpage=10", n-3), "")
			decodeStrict(t, a.body, &pg)
			require.Equal(t, n, pg.Total)
			require.Equal(t, audits.Data[n-3:], pg.Data)

			// Bad paging parameters are refused, as on GET /subject.
			for _, q := range []string{"perpage=0", "perpage=1001", "offset=-1", "offset=x", "offset=1&offset=2"} {
				s.staff(tok, http.StatusBadRequest, "GET", "/subject/S-1/links?"+q, "")
				s.staff(tok, http.StatusBadRequest, "GET", "/subject/S-1/audits?"+q, "")
			}
		})
	}
}

// TestLinkLimitIsConfigurable checks IDM_MAX_LINKS.
func TestLinkLimitIsConfigurable(t *testing.T) {
	s := newTestService(t, map[string]string{"IDM_DB": t.TempDir() + "/idm.db", "IDM_MAX_LINKS": "2"})
	tok := s.bootstrap()
	s.staff(tok, http.StatusCreated, "POST", "/subject", `{"sssid":"S-1","name":"Alice","bday":"1980-05-17","date_consented":"2024-05-01"}`)
	s.staff(tok, http.StatusCreated, "POST", "/subject/S-1/links", "")
	s.staff(tok, http.StatusCreated, "POST", "/subject/S-1/links", "")
	a := s.staff(tok, http.StatusConflict, "POST", "/subject/S-1/links", "")
	require.Contains(t, a.message(), "2 active links")
}

// decodeStrict decodes body into v, refusing keys v lacks.
func decodeStrict(t *testing.T, body string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(v), body)
}
