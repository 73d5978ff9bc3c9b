package idm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// Error kinds. Every error that a handler returns is classified by the first
// of these that it wraps (see [StatusOf]); stores translate their own errors
// into [ErrNotFound], [ErrConflict] and [ErrUnavailable] at their boundary.
var (
	ErrInvalid          = errors.New("invalid request")          // 400
	ErrUnauthorized     = errors.New("unauthorized")             // 401
	ErrForbidden        = errors.New("forbidden")                // 403
	ErrNotFound         = errors.New("not found")                // 404
	ErrMethodNotAllowed = errors.New("method not allowed")       // 405
	ErrNotAcceptable    = errors.New("not acceptable")           // 406
	ErrConflict         = errors.New("conflict")                 // 409
	ErrPrecondition     = errors.New("precondition failed")      // 412
	ErrTooLarge         = errors.New("request entity too large") // 413
	ErrUnsupportedMedia = errors.New("unsupported media type")   // 415
	ErrTooMany          = errors.New("too many requests")        // 429
	ErrUnavailable      = errors.New("service unavailable")      // 503
)

// ErrStale is wrapped by the error that an Update method of a [Store]
// returns when the record changed after the caller read it: the stored
// revision is not the Rev the caller passed (see [Store], "Revisions").
// Nothing was written. It wraps [ErrConflict], so that one left unhandled
// is a 409, and errors.Is(err, ErrConflict) holds for it too: test for
// ErrStale first. A caller that gets it reads the record again and retries
// its change, or refuses it when it no longer applies; see [RetryStale].
var ErrStale = fmt.Errorf("record changed since it was read: %w", ErrConflict)

// ErrAmbiguous is wrapped by the error of a store write whose outcome is
// not known: the write was sent, but the answer was lost (a network error,
// a timeout, a write concern that was not confirmed), so it may or may not
// have been applied. It wraps [ErrUnavailable], so that one left unhandled
// is a 503. A caller that gets it reads again to find out what happened
// before it says so in the audit trail (see [AuditWriter.Settle]).
var ErrAmbiguous = fmt.Errorf("outcome of the write unknown: %w", ErrUnavailable)

// DefaultStaleAttempts is how many times a read-modify-write is tried in
// all before an [ErrStale] is given up on and answered as a conflict.
const DefaultStaleAttempts = 3

// RetryStale runs fn, a read-modify-write that reads the record afresh on
// every call, until it returns an error that does not wrap [ErrStale] (or
// nil), at most attempts times (at least once), and returns fn's last
// error. It stops early once ctx is done. Of several concurrent writers
// from one revision one always succeeds, so a small bound such as
// [DefaultStaleAttempts] is enough unless a record is written continually.
func RetryStale(ctx context.Context, attempts int, fn func() error) error {
	var err error
	for range max(attempts, 1) {
		if err = fn(); !errors.Is(err, ErrStale) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

var statusOfKind = []struct {
	kind   error
	status int
}{
	{ErrInvalid, http.StatusBadRequest},
	{ErrUnauthorized, http.StatusUnauthorized},
	{ErrForbidden, http.StatusForbidden},
	{ErrNotFound, http.StatusNotFound},
	{ErrMethodNotAllowed, http.StatusMethodNotAllowed},
	{ErrNotAcceptable, http.StatusNotAcceptable},
	{ErrConflict, http.StatusConflict},
	{ErrPrecondition, http.StatusPreconditionFailed},
	{ErrTooLarge, http.StatusRequestEntityTooLarge},
	{ErrUnsupportedMedia, http.StatusUnsupportedMediaType},
	{ErrTooMany, http.StatusTooManyRequests},
	{ErrUnavailable, http.StatusServiceUnavailable},
}

// Error is an error with a kind and a message meant for the client. It
// unwraps to both its Kind and its Err (the cause, which is logged but never
// shown to the client), so errors.Is(err, idm.ErrNotFound) works on it.
type Error struct {
	Kind    error  // one of the Err* kinds above
	Message string // shown to the client for 4xx statuses
	Err     error  // optional cause, for logs only
}

// E returns an [*Error] of the given kind with a client-facing message.
func E(kind error, message string) *Error {
	return &Error{Kind: kind, Message: message}
}

// Wrap returns an [*Error] of the given kind and message that keeps err as
// its cause.
func Wrap(kind error, message string, err error) *Error {
	return &Error{Kind: kind, Message: message, Err: err}
}

// Error implements the error interface.
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" && e.Kind != nil {
		msg = e.Kind.Error()
	}
	if e.Err != nil {
		return msg + ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the error's kind and cause.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// StatusOf returns the HTTP status for err: the status of the first error kind
// it wraps, 200 for nil, and 500 for anything else.
func StatusOf(err error) int {
	if err == nil {
		return http.StatusOK
	}
	// An *Error's own kind wins over kinds found in its cause.
	var e *Error
	if errors.As(err, &e) && e.Kind != nil {
		for _, k := range statusOfKind {
			if errors.Is(e.Kind, k.kind) {
				return k.status
			}
		}
	}
	for _, k := range statusOfKind {
		if errors.Is(err, k.kind) {
			return k.status
		}
	}
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusInternalServerError
}

// MessageOf returns the client-facing message for err: the message of the
// outermost [*Error] for 4xx statuses, the kind's text when there is none, and
// a fixed "internal error" (or "service unavailable") for 5xx statuses, so that
// internal error texts never reach a client.
func MessageOf(err error) string {
	status := StatusOf(err)
	switch {
	case status == http.StatusServiceUnavailable:
		return "service unavailable"
	case status >= 500:
		return "internal error"
	}
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	for _, k := range statusOfKind {
		if errors.Is(err, k.kind) {
			return k.kind.Error()
		}
	}
	return http.StatusText(status)
}
