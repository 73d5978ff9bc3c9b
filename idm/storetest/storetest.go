// Package storetest is the conformance suite that every [idm.Store]
// implementation passes.
//
// It is shaped like testing/slogtest.Run: a store package calls [Run] from
// its TestConformance with a function that makes a fresh, empty store, and
// the suite checks the documented behaviour of every method of
// [idm.Store] through the public interface and errors.Is only. Subtests are
// named Area/Behaviour (for example Users/DuplicateUsernameCaseInsensitive)
// so that one behaviour can be run on its own with go test -run. [Bench]
// measures the hot paths of a store the same way.
//
// The suite avoids timing sleeps: concurrency is checked with goroutines
// released together, and time-dependent behaviour with explicit times. The
// Revisions area checks optimistic concurrency (see [idm.Store],
// "Revisions"): Rev 1 on create, one more per update and per EstablishLink,
// ErrStale for an update from another Rev (the record left as it was),
// exactly one winner among 50 concurrent updates from one Rev, and no
// update that was read before an EstablishLink undoing it. Fixtures are
// built with Rev 1, the revision a store gives them, so that records read
// back compare equal to what was written.
package storetest

import (
	"testing"

	"github.com/c3-pro/idm/idm"
)

// test is one behaviour of one area, run on a fresh store.
type test struct {
	name string
	fn   func(t *testing.T, s idm.Store)
}

// area is a group of tests, named after the part of the Store they check.
type area struct {
	name  string
	tests []test
}

func areas() []area {
	return []area{
		{"Store", storeTests()},
		{"Times", timeTests()},
		{"Users", userTests()},
		{"TOTP", totpTests()},
		{"Subjects", subjectTests()},
		{"Sites", siteTests()},
		{"Links", linkTests()},
		{"Audits", auditTests()},
		{"AuditLog", auditLogTests()},
		{"ResetTokens", resetTokenTests()},
		{"Sessions", sessionTests()},
		{"Keys", keyTests()},
		{"Meta", metaTests()},
		{"Revisions", revisionTests()},
	}
}

// Run runs the conformance suite. Each subtest calls newStore for a fresh,
// empty store; newStore should fail t if it cannot make one and release the
// store's resources with t.Cleanup (the suite may already have called
// Close, which must then be harmless). Subtests run one after another.
func Run(t *testing.T, newStore func(t *testing.T) idm.Store) {
	t.Helper()
	for _, a := range areas() {
		t.Run(a.name, func(t *testing.T) {
			for _, c := range a.tests {
				t.Run(c.name, func(t *testing.T) {
					s := newStore(t)
					if s == nil {
						t.Fatal("newStore returned nil")
					}
					c.fn(t, s)
				})
			}
		})
	}
}
