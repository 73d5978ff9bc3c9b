package migrate

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// This file turns BSON values, as pymongo wrote them, into the Go values the
// idm types hold. Every conversion either succeeds faithfully or says why it
// cannot; none of them guesses.

// absent reports whether a field is missing, null or undefined.
func absent(v bson.RawValue) bool {
	return v.Type == 0 || v.Type == bson.TypeNull || v.Type == bson.TypeUndefined
}

// typeName names the BSON type of v for a message.
func typeName(v bson.RawValue) string {
	return v.Type.String()
}

// str returns a string field: "" when it is absent, an error when it holds
// another type.
func str(doc bson.Raw, key string) (string, error) {
	v := doc.Lookup(key)
	if absent(v) {
		return "", nil
	}
	if s, ok := v.StringValueOK(); ok {
		return s, nil
	}
	return "", fmt.Errorf("field %s is a %s, not a string", key, typeName(v))
}

// strOrDate returns a string field kept as it is, or a BSON date rendered as
// an RFC 3339 string; note is set in the second case.
func strOrDate(doc bson.Raw, key string) (s string, note string, err error) {
	v := doc.Lookup(key)
	if t, ok := v.TimeOK(); ok {
		s = formatTime(t)
		return s, fmt.Sprintf("%s was a BSON date; kept as the string %q", key, s), nil
	}
	s, err = str(doc, key)
	return s, "", err
}

// strOrBytes returns a field that pymongo stored as a string or (Python
// bytes) as BSON binary, as a string; "" when it is absent.
func strOrBytes(doc bson.Raw, key string) (string, error) {
	v := doc.Lookup(key)
	if absent(v) {
		return "", nil
	}
	if s, ok := v.StringValueOK(); ok {
		return s, nil
	}
	if _, data, ok := v.BinaryOK(); ok {
		return string(data), nil
	}
	return "", fmt.Errorf("field %s is a %s, not a string or binary", key, typeName(v))
}

// boolean returns a boolean field: false when it is absent.
func boolean(doc bson.Raw, key string) (bool, error) {
	v := doc.Lookup(key)
	if absent(v) {
		return false, nil
	}
	if b, ok := v.BooleanOK(); ok {
		return b, nil
	}
	return false, fmt.Errorf("field %s is a %s, not a boolean", key, typeName(v))
}

// hexID returns the ID a field refers to: an ObjectId, or a string of 24
// hexadecimal digits (in any case), as 24 lowercase hex characters. ok is
// false when the field is absent; err is set when it holds anything else.
func hexID(doc bson.Raw, key string) (id string, ok bool, err error) {
	v := doc.Lookup(key)
	if absent(v) {
		return "", false, nil
	}
	if oid, isOID := v.ObjectIDOK(); isOID {
		return oid.Hex(), true, nil
	}
	if s, isStr := v.StringValueOK(); isStr {
		if oid, perr := bson.ObjectIDFromHex(strings.ToLower(s)); perr == nil {
			return oid.Hex(), true, nil
		}
		return "", false, fmt.Errorf("field %s is the string %q, not an ObjectId", key, clip(s))
	}
	return "", false, fmt.Errorf("field %s is a %s, not an ObjectId", key, typeName(v))
}

// unixInt returns an integer Unix time: 0 when the field is absent.
func unixInt(doc bson.Raw, key string) (int64, error) {
	v := doc.Lookup(key)
	switch {
	case absent(v):
		return 0, nil
	case v.Type == bson.TypeInt32 || v.Type == bson.TypeInt64:
		return v.AsInt64(), nil
	case v.Type == bson.TypeDouble:
		f := v.Double()
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f), nil
		}
		return 0, fmt.Errorf("field %s is %v, not a whole number of seconds", key, f)
	}
	return 0, fmt.Errorf("field %s is a %s, not a number", key, typeName(v))
}

// timeField returns a time field: a BSON date, an ISO 8601 string as Python
// writes them (see [parseISO]), or a number of Unix seconds. ok is false
// when the field is absent; err is set when it holds something that is not
// a time.
func timeField(doc bson.Raw, key string) (t time.Time, ok bool, err error) {
	v := doc.Lookup(key)
	switch {
	case absent(v):
		return time.Time{}, false, nil
	case v.Type == bson.TypeDateTime:
		return v.Time().UTC(), true, nil
	case v.Type == bson.TypeString:
		t, err := parseISO(v.StringValue())
		if err != nil {
			return time.Time{}, false, fmt.Errorf("field %s: %w", key, err)
		}
		return t, true, nil
	case v.IsNumber() && v.Type != bson.TypeDecimal128:
		f := v.AsFloat64()
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e11 {
			return time.Time{}, false, fmt.Errorf("field %s is %v, not a Unix time", key, f)
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), true, nil
	}
	return time.Time{}, false, fmt.Errorf("field %s is a %s, not a time", key, typeName(v))
}

// isoLayouts are the forms of an ISO 8601 time that Python and the arrow
// library write: with a "T" or a space, with an offset as "+00:00", "+0000"
// or "Z", or without an offset (then UTC is meant). Fractional seconds are
// accepted after the seconds in every layout.
var isoLayouts = []struct {
	layout string
	utc    bool
}{
	{time.RFC3339, false},
	{"2006-01-02T15:04:05-0700", false},
	{"2006-01-02 15:04:05Z07:00", false},
	{"2006-01-02 15:04:05-0700", false},
	{"2006-01-02T15:04:05", true},
	{"2006-01-02 15:04:05", true},
	{"2006-01-02", true},
}

// parseISO parses an ISO 8601 time as Python's isoformat() and arrow write
// it, e.g. "2019-03-04T10:11:12.123456+00:00".
func parseISO(s string) (time.Time, error) {
	for _, l := range isoLayouts {
		var (
			t   time.Time
			err error
		)
		if l.utc {
			t, err = time.ParseInLocation(l.layout, s, time.UTC)
		} else {
			t, err = time.Parse(l.layout, s)
		}
		if err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an ISO 8601 time", clip(s))
}

// formatTime renders a time as the API does: RFC 3339 in UTC.
func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// clip shortens s for a message.
func clip(s string) string {
	const maxLen = 64
	if len(s) <= maxLen {
		return s
	}
	cut := maxLen
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// toJSON renders a BSON value as JSON: strings, numbers, booleans, null,
// documents (keys in their order) and arrays as they are; dates as RFC 3339
// strings, ObjectIds as hex strings, binary data as standard base64 strings,
// symbols as strings. Other BSON types (regular expressions, code,
// timestamps, min/max keys, DB pointers) and non-finite numbers have no
// faithful JSON form and give an error.
func toJSON(v bson.RawValue) (json.RawMessage, error) {
	b, err := appendJSON(nil, v)
	if err != nil {
		return nil, err
	}
	return json.RawMessage(b), nil
}

func appendJSON(b []byte, v bson.RawValue) ([]byte, error) {
	switch v.Type {
	case bson.TypeNull, bson.TypeUndefined:
		return append(b, "null"...), nil
	case bson.TypeBoolean:
		return strconv.AppendBool(b, v.Boolean()), nil
	case bson.TypeInt32:
		return strconv.AppendInt(b, int64(v.Int32()), 10), nil
	case bson.TypeInt64:
		return strconv.AppendInt(b, v.Int64(), 10), nil
	case bson.TypeDouble:
		f := v.Double()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("the number %v has no JSON form", f)
		}
		num, err := json.Marshal(f)
		if err != nil {
			return nil, err
		}
		return append(b, num...), nil
	case bson.TypeDecimal128:
		s := v.Decimal128().String()
		if !json.Valid([]byte(s)) {
			return nil, fmt.Errorf("the decimal %s has no JSON form", s)
		}
		return append(b, s...), nil
	case bson.TypeString:
		return appendJSONString(b, v.StringValue()), nil
	case bson.TypeSymbol:
		return appendJSONString(b, v.Symbol()), nil
	case bson.TypeObjectID:
		return appendJSONString(b, v.ObjectID().Hex()), nil
	case bson.TypeDateTime:
		return appendJSONString(b, formatTime(v.Time())), nil
	case bson.TypeBinary:
		_, data := v.Binary()
		return appendJSONString(b, base64.StdEncoding.EncodeToString(data)), nil
	case bson.TypeEmbeddedDocument:
		elems, err := v.Document().Elements()
		if err != nil {
			return nil, err
		}
		b = append(b, '{')
		for i, e := range elems {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, e.Key())
			b = append(b, ':')
			if b, err = appendJSON(b, e.Value()); err != nil {
				return nil, fmt.Errorf("%s: %w", e.Key(), err)
			}
		}
		return append(b, '}'), nil
	case bson.TypeArray:
		vals, err := v.Array().Values()
		if err != nil {
			return nil, err
		}
		b = append(b, '[')
		for i, e := range vals {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendJSON(b, e); err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
		}
		return append(b, ']'), nil
	}
	return nil, fmt.Errorf("a BSON %s has no JSON form", typeName(v))
}

// appendJSONString appends s as a JSON string, without the HTML escapes of
// json.Marshal.
func appendJSONString(b []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // encoding a string cannot fail
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}
