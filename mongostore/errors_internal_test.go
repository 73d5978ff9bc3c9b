package mongostore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/c3-pro/idm/idm"
)

func TestTranslate(t *testing.T) {
	kinds := []error{idm.ErrNotFound, idm.ErrConflict, idm.ErrUnavailable}
	for _, tc := range []struct {
		name string
		err  error
		want error // one of kinds, or nil for none
	}{
		{"no documents", mongo.ErrNoDocuments, idm.ErrNotFound},
		{"wrapped no documents", fmt.Errorf("x: %w", mongo.ErrNoDocuments), idm.ErrNotFound},
		{"duplicate key on insert", mongo.WriteException{WriteErrors: []mongo.WriteError{{Code: 11000, Message: "E11000 duplicate key"}}}, idm.ErrConflict},
		{"duplicate key command", mongo.CommandError{Code: 11000, Message: "E11000"}, idm.ErrConflict},
		{"FerretDB SQLite unique violation", mongo.CommandError{Code: 1, Name: "InternalError", Message: "UNIQUE constraint failed: index 'users_username_key_unique'"}, idm.ErrConflict},
		{"FerretDB PostgreSQL unique violation", mongo.CommandError{Code: 1, Message: `ERROR: duplicate key value violates unique constraint "x" (SQLSTATE 23505)`}, idm.ErrConflict},
		{"FerretDB unique violation in a write error", mongo.WriteException{WriteErrors: []mongo.WriteError{{Code: 1, Message: "UNIQUE constraint failed: index 'x'"}}}, idm.ErrConflict},
		{"other internal error", mongo.CommandError{Code: 1, Message: "disk full"}, nil},
		{"same text, other code", mongo.CommandError{Code: 2, Message: "UNIQUE constraint failed"}, nil},
		{"deadline", context.DeadlineExceeded, idm.ErrUnavailable},
		{"wrapped deadline", fmt.Errorf("op: %w", context.DeadlineExceeded), idm.ErrUnavailable},
		{"server selection", topology.ServerSelectionError{Wrapped: errors.New("no suitable server")}, idm.ErrUnavailable},
		{"client disconnected", mongo.ErrClientDisconnected, idm.ErrUnavailable},
		{"network label", mongo.CommandError{Labels: []string{"NetworkError"}, Message: "connection reset"}, idm.ErrUnavailable},
		{"dial error", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, idm.ErrUnavailable},
		{"shutting down", mongo.CommandError{Code: 91, Name: "ShutdownInProgress"}, idm.ErrUnavailable},
		{"not primary", mongo.CommandError{Code: 10107, Name: "NotWritablePrimary"}, idm.ErrUnavailable},
		{"max time", mongo.CommandError{Code: 50, Name: "MaxTimeMSExpired"}, idm.ErrUnavailable},
		{"write concern timeout", mongo.WriteException{WriteConcernError: &mongo.WriteConcernError{Code: 64, Message: "waiting for replication timed out"}}, idm.ErrUnavailable},
		{"retryable write", mongo.CommandError{Code: 1234, Labels: []string{"RetryableWriteError"}}, idm.ErrUnavailable},
		{"cancelled", context.Canceled, nil},
		{"cancelled network call", fmt.Errorf("%w: %w", context.Canceled, mongo.CommandError{Labels: []string{"NetworkError"}}), nil},
		{"anything else", errors.New("boom"), nil},
		{"bad value", mongo.CommandError{Code: 2, Name: "BadValue"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := translate("do the thing", tc.err)
			if got == nil {
				t.Fatal("translate returned nil")
			}
			// The driver's error stays reachable (errors.As: many driver
			// error types are not comparable).
			wraps := false
			if reflect.TypeOf(tc.err).Comparable() {
				wraps = errors.Is(got, tc.err)
			} else {
				target := reflect.New(reflect.TypeOf(tc.err))
				wraps = errors.As(got, target.Interface()) && target.Elem().Interface().(error).Error() == tc.err.Error()
			}
			if !wraps {
				t.Errorf("%v does not wrap the driver error %v", got, tc.err)
			}
			if !strings.Contains(got.Error(), "mongostore: do the thing") {
				t.Errorf("%q does not name the operation", got)
			}
			for _, k := range kinds {
				if is := errors.Is(got, k); is != (k == tc.want) {
					t.Errorf("errors.Is(%v, %v) = %v", got, k, is)
				}
			}
		})
	}
	if err := translate("nothing", nil); err != nil {
		t.Errorf("translate(nil) = %v", err)
	}
}

// TestTranslateWrite: a write whose answer was lost may have been applied:
// its error wraps idm.ErrAmbiguous (still a 503), unless the write never
// left (no server could be selected) or was refused for a known reason.
func TestTranslateWrite(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		ambiguous bool
	}{
		{"deadline while waiting for the answer", context.DeadlineExceeded, true},
		{"cancelled while waiting", context.Canceled, true},
		{"network error", mongo.CommandError{Labels: []string{"NetworkError"}, Message: "connection reset"}, true},
		{"write concern timeout", mongo.WriteException{WriteConcernError: &mongo.WriteConcernError{Code: 64, Message: "waiting for replication timed out"}}, true},
		{"write concern not satisfied", mongo.WriteException{WriteConcernError: &mongo.WriteConcernError{Code: 100, Message: "unsatisfiable"}}, true},
		{"server selection: never sent", topology.ServerSelectionError{Wrapped: errors.New("no suitable server")}, false},
		{"duplicate key", mongo.WriteException{WriteErrors: []mongo.WriteError{{Code: 11000, Message: "E11000"}}}, false},
		{"no documents", mongo.ErrNoDocuments, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := translateWrite("write", tc.err)
			if got := errors.Is(err, idm.ErrAmbiguous); got != tc.ambiguous {
				t.Errorf("errors.Is(%v, ErrAmbiguous) = %v, want %v", err, got, tc.ambiguous)
			}
			if tc.ambiguous && !errors.Is(err, idm.ErrUnavailable) {
				t.Errorf("%v does not wrap ErrUnavailable", err)
			}
		})
	}
}
