package main

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestJSONOnlyEndpointsRequireJSONContentType checks that a JSON-only
// endpoint reads a body only with "Content-Type: application/json"
// (charset UTF-8 allowed): a cross-site no-cors request (a form, text/plain,
// or a Blob body without a type, which has no Content-Type at all) gets a
// 415 and changes nothing, so it cannot count failed logins against an
// account. The endpoints that take forms keep taking them, and /establish
// takes the FHIR media types.
func TestJSONOnlyEndpointsRequireJSONContentType(t *testing.T) {
	const unsupported = `{"error":{"status":415,"message":"the request body must be JSON (Content-Type: application/json)"}}`
	for _, st := range storeEnvs() {
		t.Run(st.name, func(t *testing.T) {
			s := newTestService(t, st.env(t))
			// /init takes a form.
			form := url.Values{"username": {testAdmin}, "password": {testPassword}}.Encode()
			s.must(http.StatusOK, "POST", "/init", form, "Content-Type", "application/x-www-form-urlencoded")

			// POST /auth: wrong passwords without the JSON media type are
			// never checked, so they do not throttle the account (the limit
			// is 5 failures).
			wrong := fmt.Sprintf(`{"username":%q,"password":"wrong password here"}`, testAdmin)
			for _, ct := range []string{"", "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
				"multipart/form-data; boundary=x", "application/jsonx", "application/merge-patch+json", "application/json; charset=latin1"} {
				for range 2 {
					a := s.do("POST", "/auth", wrong, "Content-Type", ct)
					require.Equal(t, http.StatusUnsupportedMediaType, a.status, "Content-Type %q: %s", ct, a.body)
					if ct != "application/json; charset=latin1" {
						require.JSONEq(t, unsupported, a.body, "Content-Type %q", ct)
					}
				}
			}
			s.must(http.StatusOK, "POST", "/auth", fmt.Sprintf(`{"username":%q,"password":%q}`, testAdmin, testPassword),
				"Content-Type", "application/json; charset=utf-8")
			tok := s.login(testAdmin, testPassword)

			// The staff endpoints that take a JSON body.
			s.staff(tok, http.StatusCreated, "POST", "/subject", `{"sssid":"S-1","name":"Alice","bday":"1980-05-17","date_consented":"2024-05-01"}`,
				"Content-Type", "application/json;charset=UTF-8")
			a := s.staff(tok, http.StatusCreated, "POST", "/subject/S-1/links", "")
			jti := jsonField(t, a.body, "data", "_id")
			a = s.staff(tok, http.StatusCreated, "POST", "/user", `{"username":"m@example.org","password":"another long passphrase"}`)
			uid := jsonField(t, a.body, "data", "id")
			for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded"} {
				for _, req := range []struct{ method, path, body string }{
					{"POST", "/subject", `{"sssid":"S-2","name":"Bob","bday":"1980-05-17"}`},
					{"PUT", "/subject/S-1", `{"sssid":"S-1","name":"Mallory"}`},
					{"PUT", "/link/" + jti, `{"withdrawn_on":"2024-06-01"}`},
					{"POST", "/user", `{"username":"x@example.org","password":"another long passphrase","admin":true}`},
					{"PUT", "/user/" + uid, `{"admin":true}`},
					{"DELETE", "/user", `{"username":"m@example.org"}`},
				} {
					a := s.staff(tok, http.StatusUnsupportedMediaType, req.method, req.path, req.body, "Content-Type", ct)
					require.JSONEq(t, unsupported, a.body, "%s %s, Content-Type %q", req.method, req.path, ct)
				}
			}
			a = s.staff(tok, http.StatusOK, "GET", "/subject/S-1", "")
			require.Contains(t, a.body, `"name":"Alice"`)
			a = s.staff(tok, http.StatusOK, "GET", "/user/"+uid, "")
			require.Contains(t, a.body, `"admin":false`)
			s.staff(tok, http.StatusNotFound, "GET", "/subject/S-2", "")

			// /iforgot and /reset keep taking forms.
			s.must(http.StatusOK, "POST", "/iforgot", url.Values{"username": {"m@example.org"}}.Encode(),
				"Content-Type", "application/x-www-form-urlencoded")
			a = s.do("POST", "/reset", url.Values{"key": {"nonsense"}, "password": {"x"}, "password2": {"x"}}.Encode(),
				"Content-Type", "application/x-www-form-urlencoded")
			require.NotEqual(t, http.StatusUnsupportedMediaType, a.status, a.body)

			// /establish: the FHIR media types and application/json; nothing
			// else.
			patient := `{"resourceType":"Patient","identifier":[{"system":"urn:x","value":"P-1"}]}`
			linkToken := func() string {
				a := s.staff(tok, http.StatusCreated, "POST", "/subject/S-1/links", "")
				a = s.staff(tok, http.StatusOK, "GET", "/link/"+jsonField(t, a.body, "data", "_id")+"/jwt", "")
				return a.body
			}
			for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "application/xml"} {
				a := s.must(http.StatusUnsupportedMediaType, "POST", "/establish", patient, "Authorization", "Bearer "+linkToken(), "Content-Type", ct)
				require.Contains(t, a.message(), "application/fhir+json", "Content-Type %q", ct)
			}
			for _, ct := range []string{"application/fhir+json", "application/json+fhir; charset=UTF-8", "application/json"} {
				s.must(http.StatusNoContent, "POST", "/establish", patient, "Authorization", "Bearer "+linkToken(), "Content-Type", ct)
			}
		})
	}
}
