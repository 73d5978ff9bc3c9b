package idm

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// subjectJSON renders subjects as the API's JSON objects in one pass, into
// a buffer that is written out as it is: the known fields in a fixed order,
// then the additional fields sorted by key; keys appear only when set, and
// the internal ID never. The output is exactly what encoding/json makes of
// a [subjectDoc] (strings escaped by encoding/json, HTML characters and
// U+2028/U+2029 included; additional values compacted and HTML-escaped,
// bytes that are not UTF-8 written as \ufffd),
// without encoding/json parsing every object again as it does with the
// output of a MarshalJSON method. A string that encoding/json would write
// as it is, between quotes, is written so directly (see [jsonVerbatim]).
type subjectJSON struct {
	buf     bytes.Buffer
	enc     *json.Encoder // writes JSON strings into buf; made on first use
	scratch bytes.Buffer  // an additional value, compacted
	keys    []string      // the additional keys of the current subject
	first   bool          // no member written yet in the current object
}

func newSubjectJSON(sizeHint int) *subjectJSON {
	j := &subjectJSON{}
	j.buf.Grow(sizeHint)
	return j
}

// The bytes that encoding/json writes as they are in a string (see
// [jsonVerbatim]): bit c of verbatimLow for c < 64, bit c-64 of
// verbatimHigh for 64 <= c < 128.
const (
	verbatimLow  uint64 = 0xFFFFFFFF_00000000 &^ (1<<'"' | 1<<'&' | 1<<'<' | 1<<'>') // 0x20-0x3F
	verbatimHigh uint64 = (1<<63 - 1) &^ (1 << ('\\' - 64))                          // 0x40-0x7E
)

// jsonVerbatim reports whether encoding/json writes s as it is between
// quotes: whether every byte of s is printable ASCII (0x20 to 0x7E) other
// than '"' and the backslash, which JSON escapes, and '<', '>' and '&',
// which encoding/json escapes for HTML. Strings with any other byte
// (control characters, DEL, any byte of a multi-byte or invalid UTF-8
// sequence) are left to encoding/json. It only decides that nothing needs
// escaping; it never escapes anything itself.
func jsonVerbatim(s string) bool {
	for i := range len(s) {
		c := s[i]
		m := verbatimLow
		if c >= 64 {
			m = verbatimHigh
		}
		if c >= 128 || m>>(c&63)&1 == 0 {
			return false
		}
	}
	return true
}

// appendKey appends the start of a member to b: a separator, then key,
// which must need no escaping (the known field names and valid additional
// keys are made of A-Z, a-z, 0-9, '_' and '-').
func (j *subjectJSON) appendKey(b []byte, key string) []byte {
	if j.first {
		j.first = false
	} else {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, key...)
	return append(b, '"', ':')
}

// key starts a member (see [subjectJSON.appendKey]).
func (j *subjectJSON) key(key string) {
	j.buf.Write(j.appendKey(j.buf.AvailableBuffer(), key))
}

// string writes s as a JSON string, escaped by encoding/json unless it
// needs no escaping (see [jsonVerbatim]).
func (j *subjectJSON) string(s string) {
	if jsonVerbatim(s) {
		j.buf.Write(appendQuoted(j.buf.AvailableBuffer(), s))
		return
	}
	j.escaped(s)
}

// escaped writes s as a JSON string escaped by encoding/json.
func (j *subjectJSON) escaped(s string) {
	if j.enc == nil {
		j.enc = json.NewEncoder(&j.buf)
	}
	// Encoding a string cannot fail, and writing to a bytes.Buffer neither.
	_ = j.enc.Encode(s)
	j.buf.Truncate(j.buf.Len() - 1) // the Encoder's newline
}

// member writes the string member key: s when s is set. A value that needs
// no escaping is written with its key in one step, which is most of what a
// page writes.
func (j *subjectJSON) member(key, s string) {
	switch {
	case s == "":
	case jsonVerbatim(s):
		j.buf.Write(appendQuoted(j.appendKey(j.buf.AvailableBuffer(), key), s))
	default:
		j.key(key)
		j.escaped(s)
	}
}

// appendQuoted appends s between quotes to b; s must need no escaping (see
// [jsonVerbatim]).
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// time writes the member key: t as [FormatTime] renders it, when t is set.
// [appendTimeDigits] writes only digits, '-', 'T', ':', '.' and 'Z', which
// need no escaping; a time it leaves to [time.Time.AppendFormat] is written
// with [subjectJSON.string].
func (j *subjectJSON) time(key string, t time.Time) {
	if t.IsZero() {
		return
	}
	b := j.appendKey(j.buf.AvailableBuffer(), key)
	if tb, ok := appendTimeDigits(append(b, '"'), t); ok {
		j.buf.Write(append(tb, '"'))
		return
	}
	j.buf.Write(b)
	j.string(FormatTime(t))
}

// subject writes s as a JSON object.
func (j *subjectJSON) subject(s *Subject) {
	j.buf.WriteByte('{')
	j.first = true
	j.member(keySSSID, s.SSSID)
	legacy := legacySite(s)
	if !legacy {
		j.member(keySite, s.Site)
	}
	j.member(keyName, s.Name)
	j.member(keyBday, s.Bday)
	j.member(keyEmail, s.Email)
	j.member(keyDateInvited, s.DateInvited)
	j.member(keyDateConsented, s.DateConsented)
	j.member(keyDateEnrolled, s.DateEnrolled)
	j.member(keyDateWithdrawn, s.DateWithdrawn)
	j.time(keyCreated, s.Created)
	j.time(keyChanged, s.Changed)
	if len(s.Extra) > 0 {
		j.keys = slices.AppendSeq(j.keys[:0], maps.Keys(s.Extra))
		slices.Sort(j.keys)
		for _, k := range j.keys {
			// Keys a store may hold from elsewhere (a migration) that clash
			// with known or internal names, and values that are not valid
			// JSON, are not shown rather than breaking the whole answer.
			if !validExtraKey(k) || stringField(&Subject{}, k) != nil && !(k == keySite && legacy) || k == keyCreated || k == keyChanged {
				continue
			}
			j.scratch.Reset()
			if json.Compact(&j.scratch, s.Extra[k]) != nil {
				continue
			}
			v := j.scratch.Bytes()
			if !utf8.Valid(v) {
				// Bytes that are not UTF-8 become \ufffd, as encoding/json
				// writes them in strings.
				v = validUTF8JSON(v)
			}
			j.key(k)
			json.HTMLEscape(&j.buf, v)
		}
	}
	j.buf.WriteByte('}')
}

// renderedSize returns the size of s as [subjectJSON.subject] renders it,
// plus one, when no string needs escaping, every time has a four-digit year
// and the additional values are compact and shown: buffers are made that
// large at once. (Escaping makes the rendering larger, white space in
// additional values and hidden additional fields smaller; the buffer grows
// when needed.)
func renderedSize(s *Subject) int {
	n := 2 // {}
	for _, f := range [...]struct{ key, val string }{
		{keySSSID, s.SSSID}, {keySite, s.Site}, {keyName, s.Name}, {keyBday, s.Bday}, {keyEmail, s.Email},
		{keyDateInvited, s.DateInvited}, {keyDateConsented, s.DateConsented},
		{keyDateEnrolled, s.DateEnrolled}, {keyDateWithdrawn, s.DateWithdrawn},
	} {
		if f.val != "" {
			n += len(f.key) + len(f.val) + 6 // "key":"val",
		}
	}
	const timeLen = len("2006-01-02T15:04:05.000000Z")
	if !s.Created.IsZero() {
		n += len(keyCreated) + timeLen + 6
	}
	if !s.Changed.IsZero() {
		n += len(keyChanged) + timeLen + 6
	}
	for k, v := range s.Extra {
		n += len(k) + len(v) + 4 // "k":v,
	}
	return n
}

// appendSubjectJSON appends the API's JSON object for s to dst.
func appendSubjectJSON(dst []byte, s Subject) []byte {
	j := newSubjectJSON(renderedSize(&s))
	j.subject(&s)
	return append(dst, j.buf.Bytes()...)
}

// writeSubject writes {"data": s} with the given status.
func writeSubject(w http.ResponseWriter, status int, s Subject) {
	j := newSubjectJSON(len(`{"data":}`+"\n") + renderedSize(&s))
	j.buf.WriteString(`{"data":`)
	j.subject(&s)
	j.buf.WriteString("}\n")
	writeJSONBytes(w, status, j.buf.Bytes())
}

// writeSubjectPage writes a page of subjects and the total count,
// {"data":[...],"total":N}, with status 200.
func writeSubjectPage(w http.ResponseWriter, subjects []Subject, total int) {
	size := len(`{"data":[],"total":}`+"\n") + 20 + len(subjects)
	for i := range subjects {
		size += renderedSize(&subjects[i])
	}
	j := newSubjectJSON(size)
	j.buf.WriteString(`{"data":[`)
	for i := range subjects {
		if i > 0 {
			j.buf.WriteByte(',')
		}
		j.subject(&subjects[i])
	}
	j.buf.WriteString(`],"total":`)
	j.buf.Write(strconv.AppendInt(j.buf.AvailableBuffer(), int64(total), 10))
	j.buf.WriteString("}\n")
	writeJSONBytes(w, http.StatusOK, j.buf.Bytes())
}
