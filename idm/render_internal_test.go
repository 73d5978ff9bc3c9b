package idm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

// TestRenderMarshalJSONAgrees checks that json.Marshal of a [subjectDoc]
// (as audit records use it) gives what the answers write, so that
// encoding/json's re-parsing of the MarshalJSON output changes nothing.
func TestRenderMarshalJSONAgrees(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.FixedZone("X", 3600))
	for name, s := range map[string]Subject{
		"empty": {},
		"all": {SSSID: "S-1", Name: "A <&> \u2028", Bday: "1980-05-17", Email: "a@b", DateInvited: "2024-01-02",
			DateConsented: "2024-01-03", DateEnrolled: "2024-01-04", DateWithdrawn: "2024-01-05", Created: at, Changed: at},
		"extra": {SSSID: "S-2", Extra: map[string]json.RawMessage{
			"n": json.RawMessage(` { "a" : [ 1e400 , "<\u2029>" ] } `), "bad": json.RawMessage(`[`), "_x": json.RawMessage(`1`),
		}},
		"invalid utf8": {SSSID: "S-\xff", Extra: map[string]json.RawMessage{"r": json.RawMessage("\"\xfe\"")}},
	} {
		t.Run(name, func(t *testing.T) {
			viaMarshal, err := json.Marshal(subjectDoc(s))
			if err != nil {
				t.Fatal(err)
			}
			direct := appendSubjectJSON([]byte("prefix"), s)
			if !bytes.Equal(viaMarshal, direct[len("prefix"):]) || string(direct[:len("prefix")]) != "prefix" {
				t.Errorf("json.Marshal %q\n     direct %q", viaMarshal, direct)
			}
			rec := httptest.NewRecorder()
			writeSubject(rec, 201, s)
			want := `{"data":` + string(viaMarshal) + "}\n"
			if rec.Code != 201 || rec.Body.String() != want {
				t.Errorf("writeSubject: %d %q, want 201 %q", rec.Code, rec.Body, want)
			}
		})
	}
}

// BenchmarkRenderSubjectPage50 renders a page of 50 subjects, as
// GET /subject answers it.
func BenchmarkRenderSubjectPage50(b *testing.B) {
	subjects := benchSubjects()
	b.ReportAllocs()
	for b.Loop() {
		writeSubjectPage(httptest.NewRecorder(), subjects, 10000)
	}
}

// referenceSubjectDoc is the MarshalJSON of subjectDoc as it was before
// answers were rendered in one pass (an object built member by member,
// which encoding/json then parses again); kept to compare with it.
type referenceSubjectDoc Subject

func (s referenceSubjectDoc) MarshalJSON() ([]byte, error) {
	var o orderedJSON
	_, legacy := s.Extra[keySite] // the original's additional field `site` is shown instead
	site := s.Site
	if legacy {
		site = ""
	}
	for _, kv := range [...]struct{ k, v string }{
		{keySSSID, s.SSSID}, {keySite, site}, {keyName, s.Name}, {keyBday, s.Bday}, {keyEmail, s.Email},
		{keyDateInvited, s.DateInvited}, {keyDateConsented, s.DateConsented},
		{keyDateEnrolled, s.DateEnrolled}, {keyDateWithdrawn, s.DateWithdrawn},
	} {
		if kv.v != "" {
			o.addString(kv.k, kv.v)
		}
	}
	if !s.Created.IsZero() {
		o.addString(keyCreated, FormatTime(s.Created))
	}
	if !s.Changed.IsZero() {
		o.addString(keyChanged, FormatTime(s.Changed))
	}
	for _, k := range slices.Sorted(maps.Keys(s.Extra)) {
		if !validExtraKey(k) || stringField(&Subject{}, k) != nil && k != keySite || k == keyCreated || k == keyChanged {
			continue
		}
		var v bytes.Buffer
		if json.Compact(&v, s.Extra[k]) != nil {
			continue
		}
		o.add(k, v.Bytes())
	}
	if b := o.bytes(); b != nil {
		return b, nil
	}
	return []byte("{}"), nil
}

// benchSubjects returns 50 subjects like those of a page.
func benchSubjects() []Subject {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	subjects := make([]Subject, 50)
	for i := range subjects {
		subjects[i] = Subject{
			SSSID: fmt.Sprintf("S-%05d", i), Name: fmt.Sprintf("Subject %d", i), Bday: "1980-05-17",
			DateConsented: "2024-05-01", Created: at, Changed: at,
			Extra: map[string]json.RawMessage{"site": json.RawMessage(`"Zürich <1>"`), "arm": json.RawMessage(`{"n": 2}`)},
		}
	}
	return subjects
}

// TestRenderPageAgreesWithReference compares a rendered page with the
// page encoding/json makes with the former MarshalJSON.
func TestRenderPageAgreesWithReference(t *testing.T) {
	subjects := append(benchSubjects(), Subject{}, Subject{SSSID: "<\u2028>", Extra: map[string]json.RawMessage{"x": json.RawMessage("[\"\u2029&\" , 1e400]")}})
	docs := make([]referenceSubjectDoc, len(subjects))
	for i, s := range subjects {
		docs[i] = referenceSubjectDoc(s)
	}
	want, err := json.Marshal(pageBody[referenceSubjectDoc]{Data: docs, Total: 12345})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	writeSubjectPage(rec, subjects, 12345)
	if got := rec.Body.String(); got != string(want)+"\n" {
		t.Errorf("page\n got %q\nwant %q", got, want)
	}
}

// BenchmarkRenderSubjectPage50Reference renders the page of
// [BenchmarkRenderSubjectPage50] as before, with MarshalJSON.
func BenchmarkRenderSubjectPage50Reference(b *testing.B) {
	subjects := benchSubjects()
	b.ReportAllocs()
	for b.Loop() {
		docs := make([]referenceSubjectDoc, len(subjects))
		for i, s := range subjects {
			docs[i] = referenceSubjectDoc(s)
		}
		WriteJSON(httptest.NewRecorder(), 200, pageBody[referenceSubjectDoc]{Data: docs, Total: 10000})
	}
}
