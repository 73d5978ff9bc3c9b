package storetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/c3-pro/idm/idm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// siteData returns subjects spread over the sites A, B and C (every third
// one each), plus one stored before sites existed (no site).
func siteData() []idm.Subject {
	var out []idm.Subject
	for i := range 12 {
		sub := newSubject(fmt.Sprintf("S%02d", i))
		sub.Site = []string{"A", "B", "C"}[i%3]
		if i%2 == 0 {
			sub.Name = "Even " + sub.SSSID
		}
		out = append(out, sub)
	}
	legacy := newSubject("S99")
	return append(out, legacy)
}

// expectSites returns the SSSIDs of data in sites (all when sites is nil)
// that match keep, in SSSID order.
func expectSites(data []idm.Subject, sites []string, keep func(idm.Subject) bool) []string {
	var out []string
	for _, s := range data {
		if (sites == nil || slices.Contains(sites, s.Site)) && (keep == nil || keep(s)) {
			out = append(out, s.SSSID)
		}
	}
	slices.Sort(out)
	return out
}

func siteTests() []test {
	return []test{
		{"UserRoleAndSitesRoundTrip", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			plain := newUser("plain@example.org")
			monitor := newUser("monitor@example.org")
			monitor.Role, monitor.Sites = idm.RoleMonitor, []string{"A", "B-2"}
			all := newUser("all@example.org")
			all.Role, all.Sites = idm.RoleCoordinator, []string{idm.AllSites}
			createUsers(t, s, plain, monitor, all)
			for _, want := range []idm.User{plain, monitor, all} {
				got, err := s.FindUserByID(ctx, want.ID)
				require.NoError(t, err)
				assert.Equal(t, want.Role, got.Role, want.Username)
				assert.Equal(t, want.Sites, got.Sites, want.Username)
			}
			got, err := s.FindUserByID(ctx, plain.ID)
			require.NoError(t, err)
			role, sites := got.Access()
			assert.Equal(t, idm.RoleCoordinator, role, "a user stored without a role reads as coordinator")
			assert.Equal(t, []string{idm.AllSites}, sites)

			monitor.Role, monitor.Sites = idm.RoleAuditor, []string{"C"}
			updateUser(t, s, &monitor)
			got, err = s.FindUserByUsername(ctx, monitor.Username)
			require.NoError(t, err)
			assert.Equal(t, idm.RoleAuditor, got.Role)
			assert.Equal(t, []string{"C"}, got.Sites)
			got.Sites[0] = "changed"
			again, err := s.FindUserByID(ctx, monitor.ID)
			require.NoError(t, err)
			assert.Equal(t, []string{"C"}, again.Sites, "changing a returned Sites must not change the store")
			users, _, err := s.ListUsers(ctx, idm.UserFilter{Search: "monitor"})
			require.NoError(t, err)
			require.Len(t, users, 1)
			assert.Equal(t, []string{"C"}, users[0].Sites)
		}},
		{"SubjectSiteRoundTrip", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			sub := newSubject("X1")
			sub.Site = "site_1-a"
			createSubjects(t, s, sub)
			got, err := s.FindSubject(ctx, "X1")
			require.NoError(t, err)
			assert.Equal(t, "site_1-a", got.Site)
			got.Site = "B"
			updateSubject(t, s, &got)
			got, err = s.FindSubject(ctx, "X1")
			require.NoError(t, err)
			assert.Equal(t, "B", got.Site)
		}},
		{"ListFiltersBySites", func(t *testing.T, s idm.Store) {
			data := siteData()
			createSubjects(t, s, data...)
			even := func(sub idm.Subject) bool { return sub.Name[:4] == "Even" }
			for _, c := range []struct {
				name   string
				sites  []string
				search string
				keep   func(idm.Subject) bool
			}{
				{"nil is every site", nil, "", nil},
				{"one site", []string{"A"}, "", nil},
				{"two sites", []string{"A", "C"}, "", nil},
				{"empty is none", []string{}, "", nil},
				{"unknown site", []string{"Z"}, "", nil},
				{"with search", []string{"B"}, "even", even},
			} {
				t.Run(c.name, func(t *testing.T) {
					want := expectSites(data, c.sites, c.keep)
					got, total, err := s.ListSubjects(t.Context(), idm.SubjectFilter{Sites: c.sites, Search: c.search})
					require.NoError(t, err)
					assert.Equal(t, len(want), total, "total")
					assert.Equal(t, want, sssids(got))
					for _, sub := range got {
						assert.True(t, c.sites == nil || slices.Contains(c.sites, sub.Site), "%s of site %q", sub.SSSID, sub.Site)
					}
				})
			}
		}},
		{"ListFollowsMovesAndDeletes", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			data := siteData()
			createSubjects(t, s, data...)
			list := func(site string) []string {
				t.Helper()
				got, total, err := s.ListSubjects(ctx, idm.SubjectFilter{Sites: []string{site}, OrderCol: "name"})
				require.NoError(t, err)
				assert.Equal(t, len(got), total)
				return sssids(got)
			}
			// Listed once first, so that a store that keeps per-site
			// orders has them built before the changes.
			require.NotContains(t, list("B"), "S00")
			require.Contains(t, list("A"), "S00")
			moved, err := s.FindSubject(ctx, "S00")
			require.NoError(t, err)
			moved.Site = "B"
			updateSubject(t, s, &moved)
			require.NoError(t, s.DeleteSubject(ctx, "S03"))
			added := newSubject("S50")
			added.Site = "A"
			createSubjects(t, s, added)
			assert.Contains(t, list("B"), "S00")
			assert.NotContains(t, list("A"), "S00")
			assert.NotContains(t, list("A"), "S03")
			assert.Contains(t, list("A"), "S50")
		}},
		{"ListFiltersBySitesPagedAndSorted", func(t *testing.T, s idm.Store) {
			data := siteData()
			createSubjects(t, s, data...)
			want := expectSites(data, []string{"A", "B"}, nil)
			for _, desc := range []bool{false, true} {
				exp := slices.Clone(want)
				if desc {
					slices.Reverse(exp)
				}
				var got []string
				for off := 0; off < len(want); off += 3 {
					page, total, err := s.ListSubjects(t.Context(), idm.SubjectFilter{
						Sites: []string{"A", "B"}, OrderCol: "sssid", Desc: desc, Offset: off, Limit: 3})
					require.NoError(t, err)
					assert.Equal(t, len(want), total)
					got = append(got, sssids(page)...)
				}
				assert.Equal(t, exp, got, "desc=%v", desc)
			}
		}},
	}
}
