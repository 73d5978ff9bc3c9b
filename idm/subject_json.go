package idm

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
)

// subjectJSON renders subjects as the API's JSON objects in one pass, into
// a buffer that is written out as it is: the known fields in a fixed order,
// then the additional fields sorted by key; keys appear only when set, and
// the internal ID never. The output is exactly what encoding/json makes of
// a [subjectDoc] (strings escaped by encoding/json, HTML characters and
// U+2028/U+2029 included; additional values compacted and HTML-escaped),
// without encoding/json parsing every object again as it does with the
// output of a MarshalJSON method.
type subjectJSON struct {
	buf     bytes.Buffer
	enc     *json.Encoder // writes JSON strings into buf
	scratch bytes.Buffer  // an additional value, compacted
	keys    []string      // the additional keys of the current subject
	first   bool          // no member written yet in the current object
}

func newSubjectJSON(sizeHint int) *subjectJSON {
	j := &subjectJSON{}
	j.buf.Grow(sizeHint)
	j.enc = json.NewEncoder(&j.buf)
	return j
}

// key starts a member: a separator, then key, which must need no escaping
// (the known field names and valid additional keys are made of
// A-Z, a-z, 0-9, '_' and '-').
func (j *subjectJSON) key(key string) {
	if j.first {
		j.first = false
	} else {
		j.buf.WriteByte(',')
	}
	j.buf.WriteByte('"')
	j.buf.WriteString(key)
	j.buf.WriteString(`":`)
}

// string writes s as a JSON string, escaped by encoding/json.
func (j *subjectJSON) string(s string) {
	// Encoding a string cannot fail, and writing to a bytes.Buffer neither.
	_ = j.enc.Encode(s)
	j.buf.Truncate(j.buf.Len() - 1) // the Encoder's newline
}

// member writes the string member key: s when s is set.
func (j *subjectJSON) member(key, s string) {
	if s != "" {
		j.key(key)
		j.string(s)
	}
}

// subject writes s as a JSON object.
func (j *subjectJSON) subject(s Subject) {
	j.buf.WriteByte('{')
	j.first = true
	j.member(keySSSID, s.SSSID)
	j.member(keyName, s.Name)
	j.member(keyBday, s.Bday)
	j.member(keyEmail, s.Email)
	j.member(keyDateInvited, s.DateInvited)
	j.member(keyDateConsented, s.DateConsented)
	j.member(keyDateEnrolled, s.DateEnrolled)
	j.member(keyDateWithdrawn, s.DateWithdrawn)
	if !s.Created.IsZero() {
		j.member(keyCreated, FormatTime(s.Created))
	}
	if !s.Changed.IsZero() {
		j.member(keyChanged, FormatTime(s.Changed))
	}
	if len(s.Extra) > 0 {
		j.keys = slices.AppendSeq(j.keys[:0], maps.Keys(s.Extra))
		slices.Sort(j.keys)
		for _, k := range j.keys {
			// Keys a store may hold from elsewhere (a migration) that clash
			// with known or internal names, and values that are not valid
			// JSON, are not shown rather than breaking the whole answer.
			if !validExtraKey(k) || stringField(&Subject{}, k) != nil || k == keyCreated || k == keyChanged {
				continue
			}
			j.scratch.Reset()
			if json.Compact(&j.scratch, s.Extra[k]) != nil {
				continue
			}
			j.key(k)
			json.HTMLEscape(&j.buf, j.scratch.Bytes())
		}
	}
	j.buf.WriteByte('}')
}

// appendSubjectJSON appends the API's JSON object for s to dst.
func appendSubjectJSON(dst []byte, s Subject) []byte {
	j := newSubjectJSON(256)
	j.subject(s)
	return append(dst, j.buf.Bytes()...)
}

// writeSubject writes {"data": s} with the given status.
func writeSubject(w http.ResponseWriter, status int, s Subject) {
	j := newSubjectJSON(512)
	j.buf.WriteString(`{"data":`)
	j.subject(s)
	j.buf.WriteString("}\n")
	writeJSONBytes(w, status, j.buf.Bytes())
}

// writeSubjectPage writes a page of subjects and the total count,
// {"data":[...],"total":N}, with status 200.
func writeSubjectPage(w http.ResponseWriter, subjects []Subject, total int) {
	j := newSubjectJSON(64 + 320*len(subjects))
	j.buf.WriteString(`{"data":[`)
	for i, s := range subjects {
		if i > 0 {
			j.buf.WriteByte(',')
		}
		j.subject(s)
	}
	j.buf.WriteString(`],"total":`)
	j.buf.Write(strconv.AppendInt(j.buf.AvailableBuffer(), int64(total), 10))
	j.buf.WriteString("}\n")
	writeJSONBytes(w, http.StatusOK, j.buf.Bytes())
}
