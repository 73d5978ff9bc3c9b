// Package storetest is the conformance suite that every [idm.Store]
// implementation passes. It is shaped like testing/slogtest.Run: a store
// package calls [Run] from its own test with a function that makes a fresh,
// empty store, and the suite checks the documented behaviour of every
// method through the public interface only.
package storetest

import (
	"testing"

	"github.com/c3-pro/idm/idm"
	"github.com/stretchr/testify/require"
)

// Run runs the conformance suite against the stores that newStore makes.
// Work in progress: more subtests follow.
func Run(t *testing.T, newStore func(t *testing.T) idm.Store) {
	t.Run("Store/Ping", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.Ping(t.Context()))
	})
}
