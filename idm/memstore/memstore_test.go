package memstore_test

import (
	"testing"
	"time"

	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
	"github.com/c3-pro/idm/idm/storetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) idm.Store {
		s := memstore.New()
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) idm.Store {
		s := memstore.New()
		b.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	ctx := t.Context()
	s := memstore.New()
	require.NoError(t, s.CreateSubject(ctx, idm.Subject{ID: idm.NewID(), SSSID: "S-1"}))
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
	assert.ErrorIs(t, s.Ping(ctx), idm.ErrUnavailable)
	_, err := s.FindSubject(ctx, "S-1")
	assert.ErrorIs(t, err, idm.ErrUnavailable)
	_, _, err = s.ListSubjects(ctx, idm.SubjectFilter{})
	assert.ErrorIs(t, err, idm.ErrUnavailable)
	assert.ErrorIs(t, s.CreateUser(ctx, idm.User{ID: idm.NewID(), Username: "a@example.org"}), idm.ErrUnavailable)
	_, err = s.ConsumeResetToken(ctx, "h", time.Now())
	assert.ErrorIs(t, err, idm.ErrUnavailable)
	_, err = s.Bootstrapped(ctx)
	assert.ErrorIs(t, err, idm.ErrUnavailable)
	assert.Equal(t, 503, idm.StatusOf(err))
}
