package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// maxAPIBody bounds what the console reads of one in-process API answer.
const maxAPIBody = 8 << 20

// result is the answer of one in-process API request.
type result struct {
	Status int
	Header http.Header
	Body   []byte
}

// OK reports a 2xx answer.
func (res result) OK() bool { return res.Status >= 200 && res.Status < 300 }

// Message returns the message of a JSON error answer
// ({"error":{"status","message"}}), or a generic one.
func (res result) Message() string {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(res.Body, &e) == nil && e.Error.Message != "" {
		return e.Error.Message
	}
	return http.StatusText(res.Status)
}

// Data decodes the payload of a {"data": ...} answer into v.
func (res result) Data(v any) error {
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(res.Body, &env); err != nil {
		return fmt.Errorf("console: decoding an API answer: %w", err)
	}
	if err := json.Unmarshal(env.Data, v); err != nil {
		return fmt.Errorf("console: decoding an API answer's data: %w", err)
	}
	return nil
}

// recorder is the http.ResponseWriter of an in-process API request.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.body.Len()+len(b) > maxAPIBody {
		return 0, fmt.Errorf("console: API answer over %d bytes", maxAPIBody)
	}
	return w.body.Write(b)
}

// callAPI sends one request to the API handler in-process, on behalf of
// the browser's request r: the same client address (the API's
// per-address limits and audit records see the browser), and token, when
// not "", as the staff token. body, when not nil, is sent as JSON.
func (h *Handler) callAPI(r *http.Request, token, method, path string, query url.Values, body any) (result, error) {
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return result{}, fmt.Errorf("console: encoding an API request: %w", err)
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	target := path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(r.Context(), method, target, rd)
	if err != nil {
		return result{}, fmt.Errorf("console: building an API request: %w", err)
	}
	req.RemoteAddr = r.RemoteAddr
	for _, k := range []string{"X-Forwarded-For", "User-Agent"} {
		if v := r.Header.Values(k); len(v) > 0 {
			req.Header[k] = v
		}
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := &recorder{header: http.Header{}}
	h.api.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return result{Status: rec.status, Header: rec.header, Body: rec.body.Bytes()}, nil
}
