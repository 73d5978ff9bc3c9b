package idm_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/c3-pro/idm/idm"
)

// fuzzPayload is a request shape like the handlers' own: a struct whose
// unknown fields are refused.
type fuzzPayload struct {
	Username string         `json:"username"`
	Password string         `json:"password"`
	Admin    *bool          `json:"admin"`
	N        int            `json:"n"`
	Tags     []string       `json:"tags"`
	Extra    map[string]any `json:"extra"`
}

// fuzzPayloadFields are the JSON names of fuzzPayload's fields.
var fuzzPayloadFields = []string{"username", "password", "admin", "n", "tags", "extra"}

// jsonDepth returns the deepest nesting of arrays and objects in b, which
// must be valid JSON, by walking its tokens (independently of
// idm.UnmarshalJSON's own byte scan).
func jsonDepth(b []byte) int {
	dec := json.NewDecoder(bytes.NewReader(b))
	depth, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return deepest
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				depth++
				deepest = max(deepest, depth)
			default:
				depth--
			}
		}
	}
}

// hasDuplicateKey reports whether an object in b, which must be valid JSON,
// holds a key twice (keys compared after decoding their escapes).
func hasDuplicateKey(b []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	type frame struct {
		keys   map[string]bool
		object bool
		key    bool // the next string token of an object is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if top != nil && top.object {
					top.key = true
				}
				stack = append(stack, &frame{keys: map[string]bool{}, object: d == '{', key: d == '{'})
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if top == nil || !top.object {
			continue
		}
		if top.key {
			k := tok.(string)
			if top.keys[k] {
				return true
			}
			top.keys[k] = true
			top.key = false
			continue
		}
		top.key = true
	}
}

// hasLoneSurrogate reports whether a string in b, which must be valid JSON,
// has a \u escape of a UTF-16 surrogate that is not part of an escaped
// pair (a high one directly followed by a low one).
func hasLoneSurrogate(b []byte) bool {
	inString := false
	pendingHigh := false // the previous escape was a high surrogate
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !inString {
			inString = c == '"'
			continue
		}
		switch c {
		case '"':
			if pendingHigh {
				return true
			}
			inString = false
		case '\\':
			if b[i+1] != 'u' {
				if pendingHigh {
					return true
				}
				i++
				continue
			}
			var u uint64
			for _, h := range b[i+2 : i+6] {
				u <<= 4
				switch {
				case h >= '0' && h <= '9':
					u |= uint64(h - '0')
				case h >= 'a' && h <= 'f':
					u |= uint64(h-'a') + 10
				default:
					u |= uint64(h-'A') + 10
				}
			}
			i += 5
			high, low := u >= 0xd800 && u < 0xdc00, u >= 0xdc00 && u < 0xe000
			switch {
			case pendingHigh && low:
				pendingHigh = false
			case pendingHigh || low:
				return true
			default:
				pendingHigh = high
			}
		default:
			if pendingHigh {
				return true
			}
		}
	}
	return false
}

// checkClientError checks that err is a client error with the given status
// whose message is for humans, not encoding/json's own text.
func checkClientError(t *testing.T, err error, status int, body []byte) {
	t.Helper()
	var e *idm.Error
	if !errors.As(err, &e) {
		t.Fatalf("%q: error %v (%T) is not an *idm.Error", body, err, err)
	}
	if got := idm.StatusOf(err); got != status {
		t.Fatalf("%q: status %d, want %d (%v)", body, got, status, err)
	}
	msg := idm.MessageOf(err)
	if msg == "" || strings.Contains(msg, "json: ") || !utf8.ValidString(msg) {
		t.Fatalf("%q: message %q", body, msg)
	}
}

// FuzzUnmarshalJSON checks idm.UnmarshalJSON, the decoder under every JSON
// request body, against encoding/json: it accepts exactly the bodies that
// are one JSON value other than null, valid UTF-8, nested at most
// idm.MaxJSONDepth deep, free of duplicate keys and of lone surrogate
// escapes, and decodable into the destination, decodes them as
// json.Unmarshal does, refuses unknown fields of a struct and fields named
// in another case, and answers everything else with a 400 whose message is
// its own.
func FuzzUnmarshalJSON(f *testing.F) {
	// More seeds, one per edge, are in testdata/fuzz/FuzzUnmarshalJSON.
	for _, s := range []string{
		`{"username":"a@example.org","password":"pw","admin":true,"n":3,"tags":["x"],"extra":{"k":[1,null]}}`,
		`{"n":"not a number"}`, `null`, `[]`, `{"a":1}{"b":2}`, `{"a":"\ud800"}`, "{\"a\":\"\xff\"}",
		strings.Repeat("[", 33) + strings.Repeat("]", 33), `{"a":"\\\"[{"}`, ``, `{"a":1,}`, "\x00",
		`{"admin":false,"ADMIN":true}`, `{"admin":false,"admin":true}`, `{"extra":{"k":1,"k":2}}`, `{"n":1e999}`,
		`{"a":"\ud83d\ude00"}`, `{"a":"\udc00"}`, `{"a":"\ud800\u0041"}`, `{"a\u0064min":true,"admin":false}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		// Into any: the same result as json.Unmarshal, within the limits.
		var got, ref any
		err := idm.UnmarshalJSON(body, &got)
		refErr := json.Unmarshal(body, &ref)
		// A top-level null is refused: a struct would stay untouched.
		null := bytes.Equal(bytes.TrimSpace(body), []byte("null"))
		want := len(bytes.TrimSpace(body)) > 0 && !null && utf8.Valid(body) && refErr == nil && jsonDepth(body) <= idm.MaxJSONDepth &&
			!hasDuplicateKey(body) && !hasLoneSurrogate(body)
		switch {
		case err == nil && !want:
			t.Fatalf("%q accepted (json.Unmarshal: %v, depth %d)", body, refErr, jsonDepth(body))
		case err != nil && want:
			t.Fatalf("%q refused: %v", body, err)
		case err != nil:
			checkClientError(t, err, http.StatusBadRequest, body)
		case !reflect.DeepEqual(got, ref):
			t.Fatalf("%q decoded as %#v, json.Unmarshal gives %#v", body, got, ref)
		}

		// Into a struct: nothing accepted that has unknown fields or that
		// json.Unmarshal would decode differently.
		var p, refP fuzzPayload
		err = idm.UnmarshalJSON(body, &p)
		if err != nil {
			checkClientError(t, err, http.StatusBadRequest, body)
			return
		}
		if !want {
			t.Fatalf("%q accepted into a struct but not into any", body)
		}
		if err := json.Unmarshal(body, &refP); err != nil || !reflect.DeepEqual(p, refP) {
			t.Fatalf("%q decoded as %+v, json.Unmarshal gives %+v (%v)", body, p, refP, err)
		}
		var members map[string]json.RawMessage
		if json.Unmarshal(body, &members) == nil {
			for k := range members {
				known := false
				for _, f := range fuzzPayloadFields {
					known = known || k == f // exactly: no case variants
				}
				if !known {
					t.Fatalf("%q accepted with the unknown field %q", body, k)
				}
			}
		}
	})
}

// FuzzDecodeJSON checks idm.DecodeJSON, which reads a request body: a
// Content-Type other than application/json (or none, with a body) is a 415
// before anything is read, a body
// over the limit is a 413, and any other body gets exactly
// idm.UnmarshalJSON's answer.
func FuzzDecodeJSON(f *testing.F) {
	// More seeds are in testdata/fuzz/FuzzDecodeJSON.
	f.Add([]byte(`{"username":"a@example.org"}`), "application/json", uint16(0))
	f.Add([]byte(`{"username":"a@example.org"}`), "text/plain", uint16(0))
	f.Add([]byte(`{"username":"a@example.org"}`), "application/json", uint16(10))
	f.Add([]byte(`{"username":"a@example.org"}`), "", uint16(0))
	f.Add([]byte(``), "", uint16(0))
	f.Add([]byte(`{"username":"a@example.org"}`), "application/json; charset=UTF-8", uint16(0))
	f.Add([]byte(`{"username":"a@example.org"}`), "application/json; charset=latin1", uint16(0))
	f.Add([]byte(`{"username":"a@example.org"}`), "application/fhir+json", uint16(0))
	f.Add([]byte(`username=a`), "application/x-www-form-urlencoded", uint16(0))
	f.Fuzz(func(t *testing.T, body []byte, contentType string, limit uint16) {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		w := httptest.NewRecorder()
		var got fuzzPayload
		err := idm.DecodeJSON(w, r, int64(limit), &got)

		// Only application/json (charset UTF-8 at most) is read; a body
		// without a Content-Type is refused too, an empty one is not.
		mt, params, perr := mime.ParseMediaType(contentType)
		cs, hasCharset := params["charset"]
		badType := contentType == "" && len(body) > 0 ||
			contentType != "" && (perr != nil || mt != "application/json" ||
				hasCharset && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8"))
		if badType {
			checkClientError(t, err, http.StatusUnsupportedMediaType, body)
			if rest, _ := io.ReadAll(r.Body); len(rest) != len(body) {
				t.Fatalf("Content-Type %q: the body was read before it was refused", contentType)
			}
			return
		}
		max := int(limit)
		if max == 0 {
			max = idm.DefaultMaxBodyBytes
		}
		if len(body) > max {
			checkClientError(t, err, http.StatusRequestEntityTooLarge, body)
			return
		}
		var want fuzzPayload
		wantErr := idm.UnmarshalJSON(body, &want)
		switch {
		case (err == nil) != (wantErr == nil):
			t.Fatalf("%q (Content-Type %q, limit %d): DecodeJSON %v, UnmarshalJSON %v", body, contentType, limit, err, wantErr)
		case err != nil:
			checkClientError(t, err, http.StatusBadRequest, body)
			if idm.MessageOf(err) != idm.MessageOf(wantErr) {
				t.Fatalf("%q: DecodeJSON says %q, UnmarshalJSON %q", body, idm.MessageOf(err), idm.MessageOf(wantErr))
			}
		case !reflect.DeepEqual(got, want):
			t.Fatalf("%q: DecodeJSON gives %+v, UnmarshalJSON %+v", body, got, want)
		}
	})
}
