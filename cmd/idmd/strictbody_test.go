package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestStrictBodies checks the one decoder rule of every JSON body over the
// wired service (users, /init, /auth, /iforgot, /reset, subjects, links):
// exact key names, no key twice, finite numbers, valid UTF-16 escapes, no
// additional subject field that shadows a known one in another case, and
// date offsets only as RFC 3339 allows. Each refused body is a 400 that
// changes nothing.
func TestStrictBodies(t *testing.T) {
	for _, st := range storeEnvs() {
		t.Run(st.name, func(t *testing.T) {
			s := newTestService(t, st.env(t))
			// /init: a duplicate or case-variant key is refused.
			for _, body := range []string{
				fmt.Sprintf(`{"username":"x@example.org","password":%q,"username":%q}`, testPassword, testAdmin),
				fmt.Sprintf(`{"username":%q,"Password":%q}`, testAdmin, testPassword),
			} {
				a := s.must(http.StatusBadRequest, "POST", "/init", body)
				require.NotEmpty(t, a.message())
			}
			tok := s.bootstrap()

			// /auth: the last of two passwords does not win.
			a := s.must(http.StatusBadRequest, "POST", "/auth",
				fmt.Sprintf(`{"username":%q,"password":"wrong password","password":%q}`, testAdmin, testPassword))
			require.Contains(t, a.message(), `"password" appears more than once`)

			// POST /user: {"admin": false, "ADMIN": true} makes no admin,
			// and no user at all.
			for _, tc := range []struct{ body, msg string }{
				{`{"username":"m@example.org","password":"another long passphrase","admin":false,"ADMIN":true}`, `unknown field "ADMIN" (field names are case-sensitive: "admin")`},
				{`{"username":"m@example.org","password":"another long passphrase","admin":false,"admin":true}`, `field "admin" appears more than once`},
				{`{"username":"m@example.org","password":"another long passphrase","Admin":true}`, `unknown field "Admin"`},
				{`{"username":"m@example.org","password":"another long passphrase\ud800"}`, "unpaired UTF-16 surrogate"},
			} {
				a := s.staff(tok, http.StatusBadRequest, "POST", "/user", tc.body)
				require.Contains(t, a.message(), tc.msg)
			}
			a = s.staff(tok, http.StatusOK, "GET", "/user", "")
			require.NotContains(t, a.body, "m@example.org")

			// PUT /user/{id}: the same rule.
			a = s.staff(tok, http.StatusCreated, "POST", "/user", `{"username":"m@example.org","password":"another long passphrase"}`)
			id := jsonField(t, a.body, "data", "id")
			for _, body := range []string{`{"Admin":true}`, `{"admin":false,"admin":true}`, `{"disabled":false,"DISABLED":true}`} {
				s.staff(tok, http.StatusBadRequest, "PUT", "/user/"+id, body)
			}
			a = s.staff(tok, http.StatusOK, "GET", "/user/"+id, "")
			require.Contains(t, a.body, `"admin":false`)
			require.Contains(t, a.body, `"disabled":false`)

			// /iforgot and /reset (JSON): no mail goes out for a body
			// that is refused.
			s.must(http.StatusBadRequest, "POST", "/iforgot", `{"username":"nobody@example.org","USERNAME":"m@example.org"}`)
			s.must(http.StatusBadRequest, "POST", "/reset", `{"key":"k","password":"another long passphrase","Key":"k2"}`)
			s.must(http.StatusBadRequest, "POST", "/reset", `{"key":"k","password":"a","password":"another long passphrase"}`)
			require.Empty(t, s.mail.Messages())

			// Subjects.
			const subject = `"sssid":"S-1","name":"Alice","bday":"1980-05-17"`
			for _, tc := range []struct{ body, msg string }{
				{`{` + subject + `,"Name":"Mallory"}`, `"Name": it differs from the field "name" only in case`},
				{`{` + subject + `,"SSSID":"S-2"}`, `"SSSID": it differs from the field "sssid" only in case`},
				{`{` + subject + `,"id":"000000000000000000000001"}`, `"id": the name is reserved`},
				{`{` + subject + `,"Rev":7}`, `"Rev": it differs from the field "rev" only in case`},
				{`{` + subject + `,"Date_Consented":"2024-05-01"}`, `only in case`},
				{`{` + subject + `,"score":1e999}`, "number 1e999 is out of range"},
				{`{` + subject + `,"score":-1E400}`, "out of range"},
				{`{` + subject + `,"note":"\ud800"}`, "unpaired UTF-16 surrogate"},
				{`{` + subject + `,"note":"\udc00\ud800"}`, "unpaired UTF-16 surrogate"},
				{`{` + subject + `,"x":{"a":1,"a":2}}`, `field "a" appears more than once`},
				{`{` + subject + `,"date_consented":"2024-05-01T12:00:00+24:00"}`, "date_consented"},
				{`{` + subject + `,"date_consented":"2024-05-01T12:00:00+00:60"}`, "date_consented"},
				{`{"sssid":"S-1","name":"Alice","bday":"1980-05-17T00:00:00-24:00"}`, "bday"},
			} {
				a := s.staff(tok, http.StatusBadRequest, "POST", "/subject", tc.body)
				require.Contains(t, a.message(), tc.msg, "body %s", tc.body)
			}
			s.staff(tok, http.StatusNotFound, "GET", "/subject/S-1", "")
			// A surrogate pair is a character like any other.
			s.staff(tok, http.StatusCreated, "POST", "/subject", `{`+subject+`,"note":"\ud83d\ude00","date_consented":"2024-05-01T12:00:00-23:59"}`)
			s.staff(tok, http.StatusBadRequest, "PUT", "/subject/S-1", `{"sssid":"S-1","Name":"Mallory"}`)
			s.staff(tok, http.StatusBadRequest, "PUT", "/subject/S-1", `{"sssid":"S-1","name":"Bob","name":"Mallory"}`)
			a = s.staff(tok, http.StatusOK, "GET", "/subject/S-1", "")
			require.Contains(t, a.body, `"name":"Alice"`)
			require.Contains(t, a.body, `"note":"\ud83d\ude00"`) // kept as sent
			require.False(t, strings.Contains(a.body, "Mallory"))

			// Links: the withdrawal date follows RFC 3339 too.
			a = s.staff(tok, http.StatusCreated, "POST", "/subject/S-1/links", "")
			jti := jsonField(t, a.body, "data", "_id")
			s.staff(tok, http.StatusBadRequest, "PUT", "/link/"+jti, `{"withdrawn_on":"2024-06-01T12:00:00+24:00"}`)
			s.staff(tok, http.StatusBadRequest, "PUT", "/link/"+jti, `{"withdrawn_on":"2024-06-01","withdrawn_on":"2024-06-02"}`)
		})
	}
}
