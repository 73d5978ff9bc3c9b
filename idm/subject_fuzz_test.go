package idm

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzSubjectBody checks the subject body decoder: it never panics, refuses
// with a 400 or 413-free client error, and what it accepts renders as valid
// JSON that decodes to the same fields again.
func FuzzSubjectBody(f *testing.F) {
	for _, s := range []string{
		`{"sssid": "S-1", "name": "Alice", "bday": "1980-05-17", "email": "a@x.org", "date_consented": "2024-05-01T12:00:00+02:00", "site": {"city": "Zurich"}, "tags": [1, 2.5, null, true]}`,
		`{"sssid": "S-1", "sssid": "S-2"}`,
		`{"_id": "x"}`,
		`{"name": null, "created": 5, "x-y_Z": "\u00e9\ud83d\ude00"}`,
		`[{"sssid": "S-1"}]`,
		`{"a": {"b": {"c": [[[[]]]]}}}`,
		`{"sssid": 12}`,
		`"just a string"`,
		`{"a":1}{"b":2}`,
		`{"sssid": "S-1", "SSSID": "S-2"}`, `{"Name": "x"}`, `{"id": "x", "Rev": 3}`, `{"x": 1e999}`, `{"x": "\ud800"}`,
		`{"x": {"k": 1, "k": 2}}`, `{"Date_Consented": "2024-05-01"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fields, err := parseSubjectBody(body)
		if err != nil {
			if StatusOf(err) != 400 || MessageOf(err) == "" {
				t.Fatalf("error %v has status %d", err, StatusOf(err))
			}
			return
		}
		for _, f := range fields {
			if !f.known && reservedExtraKey(f.key) != "" {
				t.Fatalf("additional field %q accepted: it shadows %q", f.key, reservedExtraKey(f.key))
			}
		}
		s := newSubjectFromBody(fields)
		out, err := json.Marshal(subjectDoc(s))
		if err != nil || !json.Valid(out) {
			t.Fatalf("rendering %+v: %s, %v", s, out, err)
		}
		again, err := parseSubjectBody(out)
		if err != nil {
			t.Fatalf("rendered subject %s does not decode: %v", out, err)
		}
		s2 := newSubjectFromBody(again)
		if s2.SSSID != s.SSSID || s2.Name != s.Name || s2.Bday != s.Bday || s2.Email != s.Email ||
			s2.DateInvited != s.DateInvited || s2.DateConsented != s.DateConsented ||
			s2.DateEnrolled != s.DateEnrolled || s2.DateWithdrawn != s.DateWithdrawn || len(s2.Extra) != len(s.Extra) {
			t.Fatalf("round trip changed the subject:\n%+v\n%+v", s, s2)
		}
		for k, v := range s.Extra {
			// The same JSON value, though the rendering may spell it
			// otherwise ("&" is written as "\u0026", as encoding/json does).
			a, aerr := decodeExact(v)
			b, berr := decodeExact(s2.Extra[k])
			if aerr != nil || berr != nil || !reflect.DeepEqual(a, b) {
				t.Fatalf("extra %q changed: %s -> %s", k, v, s2.Extra[k])
			}
		}
	})
}

// decodeExact decodes one JSON value, keeping numbers as their text.
func decodeExact(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}
