package idm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
)

// Role is a staff user's role (see API.md, "Roles and sites").
type Role string

// The roles. A user stored without a role reads as [RoleCoordinator] of
// every site (see [User.Access]), which is what every non-admin of the
// original service was.
const (
	// RoleAdmin may do everything; [User.Admin] is set exactly for it.
	RoleAdmin Role = "admin"
	// RoleCoordinator reads and changes the subjects and links of its sites.
	RoleCoordinator Role = "coordinator"
	// RoleMonitor reads the subjects, links and audit trails of its sites
	// and changes nothing.
	RoleMonitor Role = "monitor"
	// RoleAuditor reads audit trails only: all of GET /audit, and those of
	// the subjects of its sites.
	RoleAuditor Role = "auditor"
)

// AllSites is the site list entry that stands for every site; a list that
// holds it holds nothing else.
const AllSites = "*"

// MaxSiteLen is the longest site code, in bytes.
const MaxSiteLen = 64

// ParseRole returns the role named s, or an error that wraps ErrInvalid.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleAdmin, RoleCoordinator, RoleMonitor, RoleAuditor:
		return r, nil
	}
	return "", E(ErrInvalid, fmt.Sprintf("role must be one of admin, coordinator, monitor, auditor, not %q", clip(s)))
}

// ValidSite reports whether s is a site code: 1 to [MaxSiteLen] characters
// of A-Z, a-z, 0-9, '_' and '-'.
func ValidSite(s string) bool {
	if s == "" || len(s) > MaxSiteLen {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ValidateSites checks a user's site list: [AllSites] alone, or one or
// more distinct site codes (see [ValidSite]). Errors wrap ErrInvalid.
func ValidateSites(sites []string) error {
	if len(sites) == 0 {
		return E(ErrInvalid, `sites must hold at least one site code, or be ["*"] for every site`)
	}
	if slices.Contains(sites, AllSites) {
		if len(sites) != 1 {
			return E(ErrInvalid, `sites: "*" stands for every site and cannot be combined with site codes`)
		}
		return nil
	}
	for i, s := range sites {
		if !ValidSite(s) {
			return E(ErrInvalid, fmt.Sprintf("sites: %q is not a site code (1 to %d characters of A-Z, a-z, 0-9, _ and -)", clip(s), MaxSiteLen))
		}
		if slices.Contains(sites[:i], s) {
			return E(ErrInvalid, fmt.Sprintf("sites: %q is given more than once", s))
		}
	}
	return nil
}

// Access returns the role and sites u acts with: role admin and every
// site when u.Admin is set; role coordinator of every site for a user
// stored without a role (as every non-admin of the original service
// was); otherwise u.Role and u.Sites (a copy). A role other than admin
// without sites sees no site.
func (u User) Access() (Role, []string) {
	switch {
	case u.Admin || u.Role == RoleAdmin:
		return RoleAdmin, []string{AllSites}
	case u.Role == "":
		return RoleCoordinator, []string{AllSites}
	}
	return u.Role, slices.Clone(u.Sites)
}

// Action is something a staff user may be allowed to do (see
// [Principal.Can]).
type Action int

// The actions of API.md's "Roles and sites" table.
const (
	// ReadSubjects reads subjects and their links.
	ReadSubjects Action = iota + 1
	// WriteSubjects creates and changes subjects and links (consent,
	// withdrawal, revocation, minting link JWTs).
	WriteSubjects
	// ReadSubjectAudits reads the audit trail of one subject.
	ReadSubjectAudits
	// ReadAllAudits reads the whole audit log (GET /audit, checkpoints
	// and proofs).
	ReadAllAudits
	// ManageUsers reads and changes users other than oneself.
	ManageUsers
	// MoveSubjects moves a subject to another site (admins only).
	MoveSubjects
	// ImportSubjects creates subjects in bulk, POST /subject/import
	// (admins only; each row is also checked with WriteSubjects).
	ImportSubjects
)

// access returns the role and sites p acts with, as [User.Access] does for
// a user: a principal built without a role (Admin aside) is a coordinator
// of every site, like a user stored without one.
func (p *Principal) access() (Role, []string) {
	return User{Admin: p.Admin, Role: p.Role, Sites: p.Sites}.Access()
}

// May reports whether p's role allows action a at all, in some site. It is
// the check made before a request is validated (a role that may not use an
// endpoint gets 403 Forbidden).
func (p *Principal) May(a Action) bool {
	if p == nil {
		return false
	}
	role, _ := p.access()
	switch role {
	case RoleAdmin:
		return true
	case RoleCoordinator:
		return a == ReadSubjects || a == WriteSubjects || a == ReadSubjectAudits
	case RoleMonitor:
		return a == ReadSubjects || a == ReadSubjectAudits
	case RoleAuditor:
		return a == ReadSubjectAudits || a == ReadAllAudits
	}
	return false
}

// Can reports whether p may do a in site: whether its role allows a (see
// [Principal.May]) and, for actions on subjects, whether p sees site (see
// [Principal.SeesSite]). It is the one decision of who may do what; ReadAllAudits
// and ManageUsers ignore site.
func (p *Principal) Can(a Action, site string) bool {
	if !p.May(a) {
		return false
	}
	switch a {
	case ReadAllAudits, ManageUsers, MoveSubjects, ImportSubjects:
		return true
	}
	return p.SeesSite(site)
}

// SeesSite reports whether site is one of p's sites (every site for admins
// and for [AllSites]). A subject without a site is seen only by those who
// see every site.
func (p *Principal) SeesSite(site string) bool {
	if p == nil {
		return false
	}
	_, sites := p.access()
	return slices.Contains(sites, AllSites) || site != "" && slices.Contains(sites, site)
}

// SiteFilter returns the sites whose subjects p sees, as
// [SubjectFilter.Sites] takes them: nil for every site, otherwise p's site
// codes (an empty, non-nil slice when p sees none).
func (p *Principal) SiteFilter() []string {
	if p == nil {
		return []string{}
	}
	_, sites := p.access()
	if slices.Contains(sites, AllSites) {
		return nil
	}
	if sites == nil {
		return []string{}
	}
	return sites
}

// OnlySite returns p's one site code when p has exactly one (and not
// every site): the site a subject p creates without one goes to.
func (p *Principal) OnlySite() (string, bool) {
	if p == nil {
		return "", false
	}
	_, sites := p.access()
	if len(sites) == 1 && sites[0] != AllSites {
		return sites[0], true
	}
	return "", false
}

// MsgForbidden answers a caller whose role may not use an endpoint, or
// may not act in a site (see [Principal.Can]).
const MsgForbidden = "Forbidden"

// msgNotFound answers a record that does not exist or that the caller may
// not see: the two are indistinguishable.
const msgNotFound = "Not Found"

// needs returns fn guarded by the role check of action a: a principal
// whose role does not allow a at all gets 403 Forbidden, before its
// request is validated.
func needs(a Action, fn staffFunc) staffFunc {
	return func(w http.ResponseWriter, r *http.Request, p *Principal) error {
		if !p.May(a) {
			return E(ErrForbidden, MsgForbidden)
		}
		return fn(w, r, p)
	}
}

// visibleSubject is [Handler.findSubject] for p: a subject of a site p does
// not see answers exactly like an unknown one (404 Not Found).
func (h *Handler) visibleSubject(ctx context.Context, p *Principal, sssid string) (shown, stored Subject, links []Link, err error) {
	shown, stored, links, err = h.findSubject(ctx, sssid)
	if err != nil {
		return Subject{}, Subject{}, nil, err
	}
	if !p.SeesSite(stored.Site) {
		return Subject{}, Subject{}, nil, E(ErrNotFound, msgNotFound)
	}
	return shown, stored, links, nil
}

// visibleLink is [Handler.findLink] for p: a link whose subject is of a
// site p does not see (or, for a caller who does not see every site, does
// not exist) answers exactly like an unknown link (404 Not Found).
func (h *Handler) visibleLink(ctx context.Context, p *Principal, jti string) (Link, error) {
	l, err := h.findLink(ctx, jti)
	if err != nil || p.SiteFilter() == nil {
		return l, err
	}
	s, err := h.store.FindSubject(ctx, l.SSSID)
	switch {
	case errors.Is(err, ErrNotFound):
		return Link{}, E(ErrNotFound, msgNotFound)
	case err != nil:
		return Link{}, fmt.Errorf("find subject of link: %w", err)
	case !p.SeesSite(s.Site):
		return Link{}, E(ErrNotFound, msgNotFound)
	}
	return l, nil
}
