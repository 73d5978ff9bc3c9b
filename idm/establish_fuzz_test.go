package idm

import (
	"net/http"
	"testing"
)

// FuzzPatient checks the FHIR Patient decoder of POST /establish: it never
// panics, refuses with 400 or 406 only, and accepts only a Patient with a
// non-empty first identifier value.
func FuzzPatient(f *testing.F) {
	for _, s := range []string{
		`{"resourceType": "Patient", "identifier": [{"system": "urn:a", "value": "P-1"}]}`,
		`{"resourceType": "Patient", "identifier": [{"value": 5}]}`,
		`{"resourceType": "Patient", "identifier": {"value": "P-1"}}`,
		`{"resourceType": ["Patient"]}`,
		`[]`, `null`, `"Patient"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		value, _, err := parsePatient(body)
		if err != nil {
			if s := StatusOf(err); s != http.StatusNotAcceptable && s != http.StatusBadRequest {
				t.Fatalf("status %d for %q: %v", s, body, err)
			}
			return
		}
		if value == "" {
			t.Fatalf("accepted %q without an identifier value", body)
		}
	})
}
