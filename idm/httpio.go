package idm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// DefaultMaxBodyBytes is the default limit on the size of a request body.
const DefaultMaxBodyBytes = 1 << 20

// MaxJSONDepth is the deepest nesting of arrays and objects that
// [DecodeJSON] accepts.
const MaxJSONDepth = 32

// ErrorBody is the JSON error envelope: {"error":{"status":N,"message":"..."}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inner part of [ErrorBody].
type ErrorDetail struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
}

// DataBody is the envelope of successful JSON answers: {"data": ...}.
type DataBody[T any] struct {
	Data T `json:"data"`
}

// WriteJSON writes v as a JSON body with the given status. Answers carry
// patient and staff data, so they are marked "Cache-Control: no-store"
// unless the handler has set a Cache-Control of its own (e.g. a public key
// set).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only programming errors (unsupported types) end up here.
		b, status = []byte(`{"error":{"status":500,"message":"internal error"}}`), http.StatusInternalServerError
	}
	writeJSONBytes(w, status, append(b, '\n'))
}

// writeJSONBytes writes body, JSON the caller encoded, with the headers of
// every JSON answer: the content type, nosniff, and no-store unless the
// handler chose its own caching. An answer is always valid UTF-8: bytes
// that are not (a stored value from a migrated or hand-edited record,
// written verbatim as a subject's additional field or an audit record's
// old and new values) become \ufffd, as encoding/json writes them in
// strings (see [validUTF8JSON]).
func writeJSONBytes(w http.ResponseWriter, status int, body []byte) {
	if !utf8.Valid(body) {
		body = validUTF8JSON(body)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// validUTF8JSON returns b, JSON, with every byte that is not part of a
// valid UTF-8 sequence replaced by the escape \ufffd, one per byte, as
// encoding/json replaces them in the strings it writes. JSON's own syntax
// is ASCII, so such bytes stand inside strings, where the escape keeps the
// JSON valid.
func validUTF8JSON(b []byte) []byte {
	out := make([]byte, 0, len(b)+16)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size == 1 {
			out = append(out, `\ufffd`...)
		} else {
			out = append(out, b[:size]...)
		}
		b = b[size:]
	}
	return out
}

// WriteData writes {"data": v} with the given status.
func WriteData[T any](w http.ResponseWriter, status int, v T) {
	WriteJSON(w, status, DataBody[T]{Data: v})
}

// WriteError writes the JSON error envelope for err with the status from
// [StatusOf] and the message from [MessageOf]. Server errors (5xx) are logged
// once, here, with their cause and the request's context; client errors are
// logged at debug level. log may be nil.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status := StatusOf(err)
	if log != nil {
		ctx := r.Context()
		attrs := []any{"method", r.Method, "pattern", r.Pattern, "status", status, "err", err}
		if status >= 500 {
			log.ErrorContext(ctx, "request failed", attrs...)
		} else {
			log.DebugContext(ctx, "request refused", attrs...)
		}
	}
	if status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `JWT realm="idm"`)
	}
	WriteJSON(w, status, ErrorBody{Error: ErrorDetail{Status: status, Message: MessageOf(err)}})
}

// DecodeJSON reads r's body as one JSON value into dst. The body may be at
// most maxBytes long (0 means [DefaultMaxBodyBytes]); it must follow the
// rules of [UnmarshalJSON] (valid UTF-8, nesting no deeper than
// [MaxJSONDepth], no duplicate keys, exact field names, finite numbers, no
// lone surrogates, nothing after the value). The request must say
// "Content-Type: application/json" (see [RequireMediaType]); any other or
// none is refused with [ErrUnsupportedMedia] before the body is read, so
// that a cross-site form post (which can only send form and text/plain
// bodies without a preflight) is never acted upon. Every failure is an
// [*Error] whose message says what is wrong.
func DecodeJSON(w http.ResponseWriter, r *http.Request, maxBytes int64, dst any) error {
	if err := RequireMediaType(r, "application/json"); err != nil {
		return err
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBodyBytes
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBytes))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return E(ErrTooLarge, fmt.Sprintf("request body too large (limit %d bytes)", mb.Limit))
		}
		return Wrap(ErrInvalid, "could not read the request body", err)
	}
	return UnmarshalJSON(body, dst)
}

// RequireMediaType checks that r's Content-Type is one of the media types
// given (lower case), optionally with a UTF-8 charset parameter
// ("application/json; charset=utf-8"). A missing or other Content-Type,
// or another charset, is a 415 [*Error] naming the first type; only a
// request without a body (Content-Length: 0) may omit it, so that the
// decoder answers that the body is empty.
func RequireMediaType(r *http.Request, types ...string) error {
	refused := func() error {
		return E(ErrUnsupportedMedia, fmt.Sprintf("the request body must be JSON (Content-Type: %s)", types[0]))
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		if r.ContentLength == 0 {
			return nil
		}
		return refused()
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || !slices.Contains(types, mt) {
		return refused()
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return E(ErrUnsupportedMedia, fmt.Sprintf("the request body must be UTF-8, not charset %q", clip(cs)))
	}
	return nil
}

// UnmarshalJSON decodes body into dst with the rules of [DecodeJSON], the
// one decoder rule of every request body: valid UTF-8, bounded nesting,
// nothing trailing, no key twice in an object (at any depth), struct
// fields named exactly (no case variants, no unknown fields), finite
// numbers, and string escapes that are valid UTF-16 (no lone surrogates).
func UnmarshalJSON(body []byte, dst any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return E(ErrInvalid, "request body is empty")
	}
	if _, raw := dst.(*json.RawMessage); !raw && bytes.Equal(bytes.TrimSpace(body), []byte("null")) {
		// encoding/json leaves a struct untouched for null: refuse it
		// rather than act on an empty request.
		return E(ErrInvalid, "the request body must be a JSON object, not null")
	}
	if !utf8.Valid(body) {
		return E(ErrInvalid, "request body is not valid UTF-8")
	}
	if err := checkDepth(body, MaxJSONDepth); err != nil {
		return err
	}
	if json.Valid(body) { // else the decoder below says what is malformed
		if err := checkStrict(body, reflect.TypeOf(dst)); err != nil {
			return err
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return E(ErrInvalid, "malformed JSON: unexpected data after the JSON value")
	}
	return nil
}

// jsonError turns an encoding/json error into a client-facing *Error.
func jsonError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn):
		return Wrap(ErrInvalid, fmt.Sprintf("malformed JSON at byte %d", syn.Offset), err)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return Wrap(ErrInvalid, "malformed JSON: unexpected end of input", err)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return Wrap(ErrInvalid, fmt.Sprintf("field %q must be %s, not %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value), err)
		}
		return Wrap(ErrInvalid, fmt.Sprintf("the request body must be %s, not %s", jsonKind(typ.Type.Kind().String()), typ.Value), err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for unknown fields; its text is
		// stable and documented ("json: unknown field \"x\"").
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		if unq, uerr := strconv.Unquote(name); uerr == nil {
			name = strconv.Quote(clip(unq)) // a client's key is echoed only in part
		}
		return Wrap(ErrInvalid, "unknown field "+name, err)
	default:
		return Wrap(ErrInvalid, "malformed JSON", err)
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	default:
		return "of another type"
	}
}

// checkDepth refuses JSON nested deeper than max without decoding it.
func checkDepth(b []byte, max int) error {
	depth, inString, escaped := 0, false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > max {
				return E(ErrInvalid, fmt.Sprintf("JSON nested deeper than %d levels", max))
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

// Mux is an [http.ServeMux] whose own answers are the JSON error envelope
// too: unknown paths (404) and wrong methods (405, with Allow) with the
// original's messages "Not Found" and "Method Not Allowed", and the
// redirects to a cleaned path ("//subject", "/subject/../user") or to a
// pattern's trailing slash, which keep their status and Location but carry
// {"error":{"status":3xx,"message":"..."}} instead of ServeMux's HTML.
// Every handler package serves its routes through a Mux, and a host may
// use one as its root mux.
type Mux struct {
	*http.ServeMux
}

// NewMux returns an empty [Mux].
func NewMux() *Mux { return &Mux{ServeMux: http.NewServeMux()} }

// ServeHTTP dispatches the request to the handler whose pattern matches it;
// what ServeMux answers itself (no pattern matches) is a JSON envelope.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, pattern := m.Handler(r)
	if pattern != "" && reflect.TypeOf(h) != redirectHandlerType {
		m.ServeMux.ServeHTTP(w, r)
		return
	}
	// No pattern, or ServeMux's redirect to a cleaned path or a trailing
	// slash (which comes with the pattern of its target): ServeMux would
	// answer 404, 405 or the redirect with a text or HTML body. Let it
	// write into a recorder and answer in JSON with the same status.
	rec := &fallbackRecorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	switch status := rec.status; {
	case status == http.StatusNotFound:
		WriteError(w, r, nil, E(ErrNotFound, "Not Found"))
	case status == http.StatusMethodNotAllowed:
		if allow := rec.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		WriteError(w, r, nil, E(ErrMethodNotAllowed, "Method Not Allowed"))
	case status >= 300 && status < 400:
		msg := http.StatusText(status)
		if loc := rec.header.Get("Location"); loc != "" {
			w.Header().Set("Location", loc)
			msg = fmt.Sprintf("%s: the canonical path is %s", msg, clip(loc))
		}
		WriteJSON(w, status, ErrorBody{Error: ErrorDetail{Status: status, Message: msg}})
	default: // ServeMux answers nothing else today
		if status < 400 {
			status = http.StatusInternalServerError
		}
		msg := http.StatusText(status)
		if status >= 500 {
			msg = "internal error"
		}
		WriteJSON(w, status, ErrorBody{Error: ErrorDetail{Status: status, Message: msg}})
	}
}

// redirectHandlerType is the type of the handlers [http.RedirectHandler]
// returns, which ServeMux uses for its redirects.
var redirectHandlerType = reflect.TypeOf(http.RedirectHandler("/", http.StatusFound))

// fallbackRecorder captures what ServeMux's built-in 404/405/redirect
// handlers write.
type fallbackRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (f *fallbackRecorder) Header() http.Header { return f.header }
func (f *fallbackRecorder) WriteHeader(code int) {
	if f.status == 0 {
		f.status = code
	}
}
func (f *fallbackRecorder) Write(b []byte) (int, error) {
	if f.status == 0 {
		f.status = http.StatusOK
	}
	return f.body.Write(b)
}
