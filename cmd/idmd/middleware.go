package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/c3-pro/idm/idm"
)

type requestIDKey struct{}

// requestIDFrom returns the request ID that ctx carries, or "".
func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// validRequestID accepts a caller's X-Request-ID only when it is short and
// plain, so that it is safe to log.
func validRequestID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// contextHandler adds the request ID of a record's context to the record.
type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := requestIDFrom(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(as)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}

// statusWriter records the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe is the outermost middleware: it gives every request an ID, recovers
// panics into a 500 envelope and a log line, logs one line per request
// (method, route pattern, status, duration, request ID: never bodies, query
// strings, names, emails or tokens) and feeds the metrics.
func observe(next http.Handler, log *slog.Logger, m *metrics, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := now()
		id := r.Header.Get("X-Request-ID")
		if !validRequestID(id) {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-ID", id)
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(r.Context(), "panic serving request",
					"method", r.Method, "route", route(r), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if sw.status == 0 {
					idm.WriteError(sw, r, nil, errors.New("panic"))
				}
				m.panics.Inc()
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			d := now().Sub(start)
			m.observe(r.Method, route(r), status, d)
			log.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("method", r.Method), slog.String("route", route(r)),
				slog.Int("status", status), slog.Duration("duration", d))
		}()
		next.ServeHTTP(sw, r)
	})
}

// route is the pattern that matched r, or "unmatched": a label of bounded
// cardinality that never holds path parameters.
func route(r *http.Request) string {
	if r.Pattern != "" {
		return r.Pattern
	}
	return "unmatched"
}

// refuseLargeBodies answers 413 at once, without reading the body, when a
// request announces a body longer than max. Without it the server would
// wait for (or, after "Expect: 100-continue", invite) a body it will refuse
// anyway. Bodies without a length are bounded by limitBodies around the
// whole service.
func refuseLargeBodies(next http.Handler, limit func(*http.Request) int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if max := limit(r); r.ContentLength > max {
			w.Header().Set("Connection", "close")
			idm.WriteError(w, r, nil, idm.E(idm.ErrTooLarge, fmt.Sprintf("request body too large (limit %d bytes)", max)))
			return
		}
		next.ServeHTTP(w, r)
	})
}
