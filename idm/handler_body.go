package idm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// objectField is one member of a JSON object, in the order of the body.
type objectField struct {
	key string
	raw json.RawMessage // the value, compacted
}

// decodeObject reads the request body (with [DecodeJSON]'s checks: media
// type, size, UTF-8, nesting, nothing trailing) and splits it into the
// members of one JSON object, keeping their order.
func (h *Handler) decodeObject(w http.ResponseWriter, r *http.Request) ([]objectField, error) {
	var raw json.RawMessage
	if err := DecodeJSON(w, r, h.maxBody, &raw); err != nil {
		return nil, err
	}
	return splitObject(raw)
}

// splitObject splits body, one JSON object, into its members in order.
// Duplicate keys are refused: which one would win is not obvious.
func splitObject(body []byte) ([]objectField, error) {
	if err := UnmarshalJSON(body, new(json.RawMessage)); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, E(ErrInvalid, "the request body must be a JSON object")
	}
	var fields []objectField
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonError(err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, E(ErrInvalid, "malformed JSON: object key is not a string")
		}
		if seen[key] {
			return nil, E(ErrInvalid, fmt.Sprintf("field %q appears more than once", clip(key)))
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, jsonError(err)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return nil, jsonError(err)
		}
		fields = append(fields, objectField{key: key, raw: buf.Bytes()})
	}
	if _, err := dec.Token(); err != nil {
		return nil, jsonError(err)
	}
	return fields, nil
}

// isNull reports whether the field's value is JSON null.
func (f objectField) isNull() bool { return string(f.raw) == "null" }

// str decodes the field's value as a string of at most max bytes; null
// gives "".
func (f objectField) str(max int) (string, error) {
	if f.isNull() {
		return "", nil
	}
	if len(f.raw) == 0 || f.raw[0] != '"' {
		return "", E(ErrInvalid, fmt.Sprintf("field %q must be a string, not %s", f.key, jsonType(f.raw)))
	}
	var s string
	if n := len(f.raw); n >= 2 && f.raw[n-1] == '"' && jsonVerbatim(string(f.raw[1:n-1])) {
		// Nothing escaped (most values): the string is what is between
		// the quotes.
		s = string(f.raw[1 : n-1])
	} else if err := json.Unmarshal(f.raw, &s); err != nil {
		return "", Wrap(ErrInvalid, fmt.Sprintf("field %q must be a string", f.key), err)
	}
	if len(s) > max {
		return "", E(ErrInvalid, fmt.Sprintf("field %q is longer than %d bytes", f.key, max))
	}
	return s, nil
}

// jsonType names the type of a JSON value for error messages.
func jsonType(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// jsonText renders v as JSON without HTML escaping, for audit action texts
// (`name: "Alice & Bob"`).
func jsonText(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// orderedJSON builds a JSON object whose members keep the order in which
// they were added (for audit old/new values).
type orderedJSON struct {
	buf bytes.Buffer
}

func (o *orderedJSON) add(key string, raw json.RawMessage) {
	if o.buf.Len() == 0 {
		o.buf.WriteByte('{')
	} else {
		o.buf.WriteByte(',')
	}
	k, _ := json.Marshal(key)
	o.buf.Write(k)
	o.buf.WriteByte(':')
	if len(raw) == 0 {
		raw = json.RawMessage("null")
	}
	o.buf.Write(raw)
}

func (o *orderedJSON) addString(key, s string) {
	b, _ := json.Marshal(s)
	o.add(key, b)
}

func (o *orderedJSON) bytes() json.RawMessage {
	if o.buf.Len() == 0 {
		return nil
	}
	return append(bytes.Clone(o.buf.Bytes()), '}')
}
