package users

import (
	"slices"

	"github.com/c3-pro/idm/idm"
)

// ActionSetAccess records a change of a user's role or sites (see API.md,
// "Roles and sites"), with the old and the new values; a change of the
// admin role is recorded as [ActionSetAdmin] or [ActionUnsetAdmin].
const ActionSetAccess = "set role"

// accessInput is what a POST or PUT /user body says about a user's access;
// nil fields leave it as it is.
type accessInput struct {
	admin *bool
	role  *idm.Role
	sites []string // nil: unchanged
}

// given reports whether in says anything.
func (in accessInput) given() bool { return in.admin != nil || in.role != nil || in.sites != nil }

// resolveAccess returns the role and sites a user whose access is now
// cur's gets from in: `admin` and `role` may both be given only when they
// agree (400 otherwise); `admin: true` alone is role admin, `admin: false`
// alone turns an admin into a coordinator of every site (what every
// non-admin of the original was); admins have every site (other sites are
// a 400).
func resolveAccess(cur idm.User, in accessInput) (idm.Role, []string, error) {
	role, sites := cur.Access()
	switch {
	case in.role != nil:
		r, err := idm.ParseRole(string(*in.role))
		if err != nil {
			return "", nil, err
		}
		if in.admin != nil && *in.admin != (r == idm.RoleAdmin) {
			return "", nil, idm.E(idm.ErrInvalid, "`admin` and `role` contradict each other: admin is true exactly for role admin")
		}
		role = r
	case in.admin != nil && *in.admin != (role == idm.RoleAdmin):
		role = idm.RoleCoordinator
		if *in.admin {
			role = idm.RoleAdmin
		}
		sites = []string{idm.AllSites}
	}
	if in.sites != nil {
		if err := idm.ValidateSites(in.sites); err != nil {
			return "", nil, err
		}
		sites = slices.Clone(in.sites)
	}
	if role == idm.RoleAdmin {
		if !slices.Equal(sites, []string{idm.AllSites}) {
			if in.sites != nil {
				return "", nil, idm.E(idm.ErrInvalid, "admins have every site: `sites` must be [\"*\"] for role admin")
			}
			sites = []string{idm.AllSites}
		}
	}
	return role, sites, nil
}

// sameAccess reports whether u already has role and sites.
func sameAccess(u idm.User, role idm.Role, sites []string) bool {
	r, s := u.Access()
	return r == role && slices.Equal(s, sites)
}

// setAccess gives u role and sites, with Admin set exactly for role admin.
func setAccess(u *idm.User, role idm.Role, sites []string) {
	u.Admin, u.Role, u.Sites = role == idm.RoleAdmin, role, slices.Clone(sites)
}

// accessState is the audit form of a user's role and sites.
func accessState(u idm.User) *auditState {
	role, sites := u.Access()
	return &auditState{Username: u.Username, Admin: ptr(role == idm.RoleAdmin), Role: string(role), Sites: sites}
}
