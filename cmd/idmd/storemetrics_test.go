package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
)

func TestObservedStoreCountsFailuresOnly(t *testing.T) {
	m := newMetrics()
	mem := memstore.New()
	s := &observedStore{Store: mem, errors: m.storeErrors}
	ctx := t.Context()

	_, err := s.FindUserByID(ctx, "000000000000000000000000") // not found: an outcome
	require.Error(t, err)
	_, _, err = s.ListSubjects(ctx, idm.SubjectFilter{OrderCol: "nonsense"}) // invalid argument: an outcome
	require.Error(t, err)
	require.Empty(t, storeErrors(t, m))

	require.NoError(t, mem.Close()) // from now on every call fails with ErrUnavailable
	_, err = s.FindUserByID(ctx, "000000000000000000000000")
	require.Error(t, err)
	_, _, err = s.ListUsers(ctx, idm.UserFilter{})
	require.Error(t, err)
	require.Equal(t, map[string]float64{"FindUserByID": 1, "ListUsers": 1}, storeErrors(t, m))
}

// storeErrors returns idm_store_errors_total by operation, as /metrics
// would show it.
func storeErrors(t *testing.T, m *metrics) map[string]float64 {
	t.Helper()
	families, err := m.reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "idm_store_errors_total" {
			continue
		}
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "op" {
					got[l.GetValue()] = metric.GetCounter().GetValue()
				}
			}
		}
	}
	return got
}
