package idm

import (
	"encoding"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf16"
)

// The strict rules every request body follows (see [UnmarshalJSON]), on top
// of what encoding/json checks:
//   - no object holds a key twice, at any depth: which one would win is
//     not obvious (encoding/json takes the last);
//   - an object decoded into a struct names its fields exactly, in their
//     case: encoding/json matches keys case-insensitively, so
//     {"admin": false, "ADMIN": true} would set admin;
//   - numbers are finite in float64 (1e999 is refused, not kept as text);
//   - string escapes are valid UTF-16: no lone surrogates ("\ud800"),
//     which encoding/json silently turns into U+FFFD.

var (
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// checkStrict checks body, one well-formed JSON value nested no deeper
// than [MaxJSONDepth], against the strict rules for a value decoded into a
// value of type t (nil: any value, no field names to match).
func checkStrict(body []byte, t reflect.Type) error {
	s := strictScanner{b: body}
	s.space()
	return s.value(t)
}

// strictScanner walks well-formed JSON (json.Valid holds), so it needs no
// syntax checks of its own.
type strictScanner struct {
	b []byte
	i int
}

func (s *strictScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// target reduces t to what constrains the keys of the value decoded into
// it: nil when the type decodes itself or takes any value.
func target(t reflect.Type) reflect.Type {
	for t != nil {
		if t.Implements(jsonUnmarshalerType) || reflect.PointerTo(t).Implements(jsonUnmarshalerType) ||
			t.Implements(textUnmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType) {
			return nil
		}
		switch t.Kind() {
		case reflect.Pointer:
			t = t.Elem()
		case reflect.Struct, reflect.Map, reflect.Slice, reflect.Array:
			return t
		default:
			return nil
		}
	}
	return nil
}

func (s *strictScanner) value(t reflect.Type) error {
	t = target(t)
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(t)
	case c == '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		return s.array(elem)
	case c == '"':
		_, err := s.str()
		return err
	case c == 't':
		s.i += len("true")
	case c == 'f':
		s.i += len("false")
	case c == 'n':
		s.i += len("null")
	default:
		return s.number()
	}
	return nil
}

func (s *strictScanner) array(elem reflect.Type) error {
	s.i++ // [
	s.space()
	if s.b[s.i] == ']' {
		s.i++
		return nil
	}
	for {
		s.space()
		if err := s.value(elem); err != nil {
			return err
		}
		s.space()
		c := s.b[s.i]
		s.i++ // , or ]
		if c == ']' {
			return nil
		}
	}
}

func (s *strictScanner) object(t reflect.Type) error {
	var fields map[string]reflect.Type // of a struct: exact JSON names
	var elem reflect.Type              // of a map: its values
	switch {
	case t != nil && t.Kind() == reflect.Struct:
		fields = structFields(t)
	case t != nil && t.Kind() == reflect.Map:
		elem = t.Elem()
	}
	s.i++ // {
	s.space()
	if s.b[s.i] == '}' {
		s.i++
		return nil
	}
	var seen keySet
	for {
		s.space()
		key, err := s.str()
		if err != nil {
			return err
		}
		if !seen.add(key) {
			return E(ErrInvalid, fmt.Sprintf("field %q appears more than once", clip(key)))
		}
		vt := elem
		if fields != nil {
			ft, ok := fields[key]
			if !ok {
				return unknownField(key, fields)
			}
			vt = ft
		}
		s.space()
		s.i++ // :
		s.space()
		if err := s.value(vt); err != nil {
			return err
		}
		s.space()
		c := s.b[s.i]
		s.i++ // , or }
		if c == '}' {
			return nil
		}
	}
}

// unknownField is the error for a key that names no field of a struct; a
// key that differs from a field only in case says so.
func unknownField(key string, fields map[string]reflect.Type) error {
	for name := range fields {
		if strings.EqualFold(name, key) {
			return E(ErrInvalid, fmt.Sprintf("unknown field %q (field names are case-sensitive: %q)", clip(key), name))
		}
	}
	return E(ErrInvalid, fmt.Sprintf("unknown field %q", clip(key)))
}

// keySet is the set of keys of one object; small objects need no map.
type keySet struct {
	list []string
	m    map[string]struct{}
}

// add adds k and reports whether it was new.
func (ks *keySet) add(k string) bool {
	if ks.m != nil {
		if _, dup := ks.m[k]; dup {
			return false
		}
		ks.m[k] = struct{}{}
		return true
	}
	for _, x := range ks.list {
		if x == k {
			return false
		}
	}
	ks.list = append(ks.list, k)
	if len(ks.list) > 16 {
		ks.m = make(map[string]struct{}, 2*len(ks.list))
		for _, x := range ks.list {
			ks.m[x] = struct{}{}
		}
		ks.list = nil
	}
	return true
}

// str reads a string and returns its value. Escapes must be valid UTF-16:
// a high surrogate is followed by an escaped low one, and no low surrogate
// stands alone.
func (s *strictScanner) str() (string, error) {
	start := s.i
	s.i++ // "
	escaped := false
	for {
		c := s.b[s.i]
		if c == '"' {
			break
		}
		if c != '\\' {
			s.i++
			continue
		}
		escaped = true
		if s.b[s.i+1] != 'u' {
			s.i += 2
			continue
		}
		r := hex4(s.b[s.i+2 : s.i+6])
		s.i += 6
		switch {
		case utf16.IsSurrogate(r) && r < 0xdc00: // high: a low one must follow
			if s.i+6 <= len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
				if lo := hex4(s.b[s.i+2 : s.i+6]); lo >= 0xdc00 && lo <= 0xdfff {
					s.i += 6
					continue
				}
			}
			return "", E(ErrInvalid, "malformed JSON: a string holds an unpaired UTF-16 surrogate escape (\\u"+strings.ToLower(string(s.b[s.i-4:s.i]))+")")
		case utf16.IsSurrogate(r):
			return "", E(ErrInvalid, "malformed JSON: a string holds an unpaired UTF-16 surrogate escape (\\u"+strings.ToLower(string(s.b[s.i-4:s.i]))+")")
		}
	}
	s.i++ // "
	raw := s.b[start:s.i]
	if !escaped {
		return string(raw[1 : len(raw)-1]), nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", jsonError(err)
	}
	return v, nil
}

// hex4 decodes four hexadecimal digits (valid JSON has them after \u).
func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case '0' <= c && c <= '9':
			r |= rune(c - '0')
		case 'a' <= c && c <= 'f':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

// number reads a number, which must be finite as a float64.
func (s *strictScanner) number() error {
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if !('0' <= c && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
			break
		}
		s.i++
	}
	n := string(s.b[start:s.i])
	if f, _ := strconv.ParseFloat(n, 64); math.IsInf(f, 0) {
		return E(ErrInvalid, fmt.Sprintf("number %s is out of range", clip(n)))
	}
	return nil
}

// structFields returns the JSON names of t's fields as encoding/json
// decodes them (tag names, else Go names; embedded structs' fields
// promoted), each with its type.
func structFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type, t.NumField())
	var walk func(t reflect.Type, depth int)
	walk = func(t reflect.Type, depth int) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			if f.Anonymous && name == "" {
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct && depth < 8 {
					walk(ft, depth+1)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if _, ok := fields[name]; !ok || depth == 0 {
				fields[name] = f.Type
			}
		}
	}
	walk(t, 0)
	return fields
}
