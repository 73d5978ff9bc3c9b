package idm_test

import (
	"testing"

	"github.com/c3-pro/idm/idm"
	"github.com/stretchr/testify/assert"
)

func TestPrincipalCanFollowsTheRoleTable(t *testing.T) {
	admin := &idm.Principal{Admin: true, Role: idm.RoleAdmin, Sites: []string{idm.AllSites}}
	coordA := &idm.Principal{Role: idm.RoleCoordinator, Sites: []string{"A"}}
	monitorA := &idm.Principal{Role: idm.RoleMonitor, Sites: []string{"A"}}
	auditorA := &idm.Principal{Role: idm.RoleAuditor, Sites: []string{"A"}}
	legacy := &idm.Principal{} // a user without role: coordinator of every site
	all := []idm.Action{idm.ReadSubjects, idm.WriteSubjects, idm.ReadSubjectAudits, idm.ReadAllAudits, idm.ManageUsers}
	for _, c := range []struct {
		name   string
		p      *idm.Principal
		inA    []bool // per action of all, in site A
		inB    []bool // per action of all, in site B
		unsite bool   // sees a subject without a site
	}{
		{"admin", admin, []bool{true, true, true, true, true}, []bool{true, true, true, true, true}, true},
		{"coordinator of A", coordA, []bool{true, true, true, false, false}, []bool{false, false, false, false, false}, false},
		{"monitor of A", monitorA, []bool{true, false, true, false, false}, []bool{false, false, false, false, false}, false},
		{"auditor of A", auditorA, []bool{false, false, true, true, false}, []bool{false, false, false, true, false}, false},
		{"user without role", legacy, []bool{true, true, true, false, false}, []bool{true, true, true, false, false}, true},
		{"nil principal", nil, make([]bool, 5), make([]bool, 5), false},
		{"role without sites", &idm.Principal{Role: idm.RoleCoordinator}, make([]bool, 5), make([]bool, 5), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			for i, a := range all {
				assert.Equal(t, c.inA[i], c.p.Can(a, "A"), "action %d in A", a)
				assert.Equal(t, c.inB[i], c.p.Can(a, "B"), "action %d in B", a)
			}
			assert.Equal(t, c.unsite, c.p.SeesSite(""), "a subject without a site")
		})
	}
}

func TestAdminFlagIsRoleAdmin(t *testing.T) {
	role, sites := idm.User{Admin: true}.Access()
	assert.Equal(t, idm.RoleAdmin, role)
	assert.Equal(t, []string{idm.AllSites}, sites)
	role, _ = idm.User{Role: idm.RoleAdmin, Sites: []string{"A"}}.Access()
	assert.Equal(t, idm.RoleAdmin, role)
	p := &idm.Principal{Admin: true, Role: idm.RoleMonitor, Sites: []string{"A"}}
	assert.True(t, p.Can(idm.ManageUsers, ""), "the admin flag wins")
}

func TestSiteFilterAndOnlySite(t *testing.T) {
	assert.Nil(t, (&idm.Principal{}).SiteFilter(), "every site")
	assert.Equal(t, []string{"A", "B"}, (&idm.Principal{Role: idm.RoleMonitor, Sites: []string{"A", "B"}}).SiteFilter())
	assert.Equal(t, []string{}, (&idm.Principal{Role: idm.RoleMonitor}).SiteFilter(), "no site: none, not all")
	s, ok := (&idm.Principal{Role: idm.RoleCoordinator, Sites: []string{"A"}}).OnlySite()
	assert.True(t, ok)
	assert.Equal(t, "A", s)
	_, ok = (&idm.Principal{}).OnlySite()
	assert.False(t, ok)
}

func TestValidateSites(t *testing.T) {
	for _, c := range []struct {
		sites []string
		ok    bool
	}{
		{[]string{"*"}, true},
		{[]string{"A", "b_2", "c-3"}, true},
		{nil, false},
		{[]string{}, false},
		{[]string{"*", "A"}, false},
		{[]string{"A", "A"}, false},
		{[]string{""}, false},
		{[]string{"a b"}, false},
		{[]string{"é"}, false},
		{[]string{string(make([]byte, 65))}, false},
	} {
		err := idm.ValidateSites(c.sites)
		if c.ok {
			assert.NoError(t, err, "%q", c.sites)
		} else {
			assert.ErrorIs(t, err, idm.ErrInvalid, "%q", c.sites)
		}
	}
	assert.True(t, idm.ValidSite(string(make([]byte, 0))+"x"))
	_, err := idm.ParseRole("root")
	assert.ErrorIs(t, err, idm.ErrInvalid)
}
