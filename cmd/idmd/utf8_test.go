package main

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/idm"
)

// TestStoredInvalidUTF8AnswersValidJSON checks that a record holding bytes
// that are not UTF-8 (as a migrated or hand-edited record can: additional
// subject fields and audit values are written out verbatim) still gets
// answers that are valid JSON in UTF-8, each such byte shown as U+FFFD, as
// encoding/json does in strings.
func TestStoredInvalidUTF8AnswersValidJSON(t *testing.T) {
	for _, st := range storeEnvs() {
		t.Run(st.name, func(t *testing.T) {
			s := newTestService(t, st.env(t))
			tok := s.bootstrap()
			ctx := t.Context()
			now := idm.Timestamp(time.Now())
			sub := idm.Subject{
				ID: idm.NewID(), SSSID: "S-1", Name: "Al\xffce", Bday: "1980-05-17", Email: "a\xc3@example.org",
				DateConsented: "2024-05-01", Created: now, Changed: now,
				Extra: map[string]json.RawMessage{
					"note":   json.RawMessage("\"bad \xff\xfe bytes\""),
					"nested": json.RawMessage("{\"k\":[\"\xc0\xaf\",1]}"),
					"ok":     json.RawMessage(`"fine é"`),
				},
			}
			require.NoError(t, s.store.CreateSubject(ctx, sub))
			link := idm.Link{ID: idm.NewID(), SSSID: "S-1", Issuer: "i\xff", Audience: "a", Algorithm: "HS256",
				Created: now, Changed: now, LinkedTo: "P-\xff", LinkedOn: now}
			require.NoError(t, s.store.CreateLink(ctx, link))
			require.NoError(t, s.store.AppendAudit(ctx, idm.AuditEvent{
				ID: idm.NewID(), Time: now, Document: sub.ID, DocType: idm.DocSubject, Actor: "staff\xff", Action: "edit \xff",
				Old: json.RawMessage("{\"name\":\"\xff\"}"), New: json.RawMessage("{\"name\":\"x\xe2\x82\"}"),
			}))

			for _, path := range []string{"/subject/S-1", "/subject?offset=0&perpage=10&ordercol=name&orderdir=ASC", "/subject?search=S",
				"/subject/S-1/links", "/link/" + link.ID, "/subject/S-1/audits", "/audit"} {
				a := s.staff(tok, http.StatusOK, "GET", path, "")
				require.True(t, utf8.ValidString(a.body), "%s: not UTF-8: %q", path, a.body)
				require.True(t, json.Valid([]byte(a.body)), "%s: not JSON: %q", path, a.body)
			}
			a := s.staff(tok, http.StatusOK, "GET", "/subject/S-1", "")
			var got struct {
				Data map[string]any `json:"data"`
			}
			require.NoError(t, json.Unmarshal([]byte(a.body), &got))
			require.Equal(t, "Al\ufffdce", got.Data["name"])
			require.Equal(t, "bad \ufffd\ufffd bytes", got.Data["note"])
			require.Equal(t, map[string]any{"k": []any{"\ufffd\ufffd", 1.0}}, got.Data["nested"])
			require.Equal(t, "fine é", got.Data["ok"])
			if st.name == "boltstore" { // MongoDB keeps the bytes as U+FFFD already
				require.Contains(t, a.body, `"note":"bad \ufffd\ufffd bytes"`, "escaped as encoding/json does")
			}

			a = s.staff(tok, http.StatusOK, "GET", "/audit", "")
			var audits struct {
				Data []struct {
					Action string         `json:"action"`
					Actor  string         `json:"actor"`
					Old    map[string]any `json:"old"`
					New    map[string]any `json:"new"`
				} `json:"data"`
			}
			require.NoError(t, json.Unmarshal([]byte(a.body), &audits))
			var found bool
			for _, e := range audits.Data {
				if e.Action == "edit \ufffd" {
					found = true
					require.Equal(t, "staff\ufffd", e.Actor)
					require.Equal(t, map[string]any{"name": "\ufffd"}, e.Old)
					require.Equal(t, map[string]any{"name": "x\ufffd\ufffd"}, e.New)
				}
			}
			require.True(t, found, "%s", a.body)
		})
	}
}
