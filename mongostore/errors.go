package mongostore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/c3-pro/idm/idm"
)

// translate is the one place where driver errors become idm error kinds. op
// says what the store was doing. The result wraps both the kind and err:
//
//   - no document: [idm.ErrNotFound];
//   - a duplicate key: [idm.ErrConflict];
//   - a server that cannot be reached or does not answer in time, or a
//     disconnected client: [idm.ErrUnavailable];
//   - anything else (including a cancelled context): err with context.
func translate(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mongo.ErrNoDocuments):
		return fmt.Errorf("mongostore: %s: %w: %w", op, idm.ErrNotFound, err)
	case isDuplicate(err):
		return fmt.Errorf("mongostore: %s: %w: %w", op, idm.ErrConflict, err)
	case errors.Is(err, context.Canceled):
		// The caller went away; the server may be fine.
		return fmt.Errorf("mongostore: %s: %w", op, err)
	case isUnavailable(err):
		return fmt.Errorf("mongostore: %s: %w: %w", op, idm.ErrUnavailable, err)
	default:
		return fmt.Errorf("mongostore: %s: %w", op, err)
	}
}

// translateWrite is translate for the error of a write that may have
// reached the server: a network error, a timeout, a cancelled wait or a
// write concern that was not confirmed leaves open whether the write was
// applied, so the error wraps [idm.ErrAmbiguous] (a kind of
// [idm.ErrUnavailable]) and the caller reads again to find out. A server
// that could not even be selected never got the write: that stays a plain
// ErrUnavailable.
func translateWrite(op string, err error) error {
	if err != nil && !errors.As(err, new(topology.ServerSelectionError)) && !isDuplicate(err) &&
		(isUnavailable(err) || errors.Is(err, context.Canceled) || hasWriteConcernError(err)) {
		return fmt.Errorf("mongostore: %s: %w: %w", op, idm.ErrAmbiguous, err)
	}
	return translate(op, err)
}

// hasWriteConcernError reports whether err says that a write was applied
// but its write concern (majority, journaled) was not confirmed.
func hasWriteConcernError(err error) bool {
	var we mongo.WriteException
	return errors.As(err, &we) && we.WriteConcernError != nil
}

// isDuplicate reports whether err is a unique-index violation.
func isDuplicate(err error) bool {
	if mongo.IsDuplicateKeyError(err) {
		return true
	}
	// FerretDB (v1) reports a unique-index violation caused by an update or
	// replacement (not by an insert) as error code 1, InternalError, whose
	// message is the storage engine's text: SQLite's "UNIQUE constraint
	// failed: ..." or PostgreSQL's "duplicate key value violates unique
	// constraint ...". Code 1 says nothing more specific, so the message is
	// the only way to tell this case apart, and the one string check of this
	// package. MongoDB itself always uses code 11000.
	var se mongo.ServerError
	return errors.As(err, &se) &&
		(se.HasErrorCodeWithMessage(1, "UNIQUE constraint failed") ||
			se.HasErrorCodeWithMessage(1, "duplicate key value violates unique constraint"))
}

// unavailableCodes are server error codes that mean the server cannot serve
// the request now (shutting down, stepping down, unreachable, too slow).
var unavailableCodes = []int{
	6,     // HostUnreachable
	7,     // HostNotFound
	50,    // MaxTimeMSExpired
	64,    // WriteConcernFailed (wtimeout)
	89,    // NetworkTimeout
	91,    // ShutdownInProgress
	189,   // PrimarySteppedDown
	262,   // ExceededTimeLimit
	9001,  // SocketException
	10107, // NotWritablePrimary
	11600, // InterruptedAtShutdown
	11602, // InterruptedDueToReplStateChange
	13435, // NotPrimaryNoSecondaryOk
	13436, // NotPrimaryOrSecondary
}

// isUnavailable reports whether err means that the database cannot be
// reached or did not answer in time.
func isUnavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, mongo.ErrClientDisconnected) ||
		mongo.IsTimeout(err) ||
		mongo.IsNetworkError(err) {
		return true
	}
	if errors.As(err, new(topology.ServerSelectionError)) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var se mongo.ServerError
	if errors.As(err, &se) {
		if se.HasErrorLabel("RetryableWriteError") {
			return true
		}
		for _, code := range se.ErrorCodes() {
			if slices.Contains(unavailableCodes, code) {
				return true
			}
		}
	}
	return false
}
