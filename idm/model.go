package idm

import (
	"encoding/json"
	"slices"
	"time"
)

// User is a member of study staff who logs in to the service.
type User struct {
	ID       string // 24 lowercase hex characters
	Username string // an email address, stored lower-cased
	// PasswordHash is the encoded password hash (see auth); empty for a user
	// who was invited and has not set a password yet. It is never serialised.
	PasswordHash string
	// Admin is set exactly when Role is [RoleAdmin] (the original's flag,
	// kept for compatibility).
	Admin bool
	// Role is the user's role; "" for a user stored without one, who reads
	// as a coordinator of every site (see [User.Access]).
	Role Role
	// Sites are the site codes the user works in, or [AllSites] alone for
	// every site; nil for a user stored without a role.
	Sites    []string
	Disabled bool
	// TokenVersion is raised whenever the user's earlier tokens must stop
	// working: a password change or reset, disabling, an admin-flag change,
	// deletion and logout.
	TokenVersion    int64
	Created         time.Time
	Changed         time.Time
	PasswordChanged time.Time // zero when the password was never changed
	// TOTP is the user's second factor; its zero value is none.
	TOTP TOTP
	// Rev is the record's revision, for optimistic concurrency: stores set
	// it (1 on create, one more on every update) and return it with every
	// read; callers pass back the Rev they read to [UserStore.UpdateUser],
	// which fails with [ErrStale] if the record has changed since.
	Rev int64
}

// CloneUser returns u with its own copy of Sites, so that changing one
// never changes the other.
func CloneUser(u User) User {
	u.Sites = slices.Clone(u.Sites)
	return u
}

// RecoveryCodeCount is how many recovery codes a TOTP enrolment gives.
const RecoveryCodeCount = 10

// TOTP is a user's time-based one-time password (RFC 6238) state. It holds
// no slice, so that copying a [User] copies it entirely. Its secret never
// leaves the server after enrolment: it is never serialised by the API,
// audited or logged.
type TOTP struct {
	// Secret is the shared secret, base32 as in the otpauth:// URI; "" when
	// the user has no second factor (neither pending nor active).
	Secret string
	// Active is set once the enrolment was confirmed with a code; a secret
	// without it is a pending enrolment, which logins ignore.
	Active bool
	// LastStep is the latest accepted time step (Unix time / 30 s): a code
	// of this step or an earlier one is refused as a replay
	// (see [UserStore.AcceptTOTPStep]).
	LastStep int64
	// Recovery holds the lowercase hex SHA-256 of each unused recovery
	// code (see [UserStore.ConsumeTOTPRecovery]): the unused ones first, in
	// the order given, then "" for each used one.
	Recovery [RecoveryCodeCount]string
}

// RecoveryList returns the non-empty entries of r, in order.
func RecoveryList(r [RecoveryCodeCount]string) []string {
	out := make([]string, 0, len(r))
	for _, h := range r {
		if h != "" {
			out = append(out, h)
		}
	}
	return out
}

// RecoveryArray returns the codes of list, unused ones first in order, as
// [TOTP.Recovery] holds them; empty entries are dropped and entries beyond
// [RecoveryCodeCount] ignored.
func RecoveryArray(list []string) [RecoveryCodeCount]string {
	var r [RecoveryCodeCount]string
	i := 0
	for _, h := range list {
		if h != "" && i < len(r) {
			r[i] = h
			i++
		}
	}
	return r
}

// CompactRecovery returns r without its entry i, as [TOTP.Recovery] holds
// codes after one was used.
func CompactRecovery(r [RecoveryCodeCount]string, i int) [RecoveryCodeCount]string {
	r[i] = ""
	return RecoveryArray(r[:])
}

// UserView is the JSON form of a [User] that the API returns: it has no
// password hash, no token version and no revision.
type UserView struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Admin    bool   `json:"admin"`
	// Role and Sites are what the user acts with (see [User.Access]).
	Role            Role       `json:"role"`
	Sites           []string   `json:"sites"`
	Disabled        bool       `json:"disabled"`
	Created         time.Time  `json:"created"`
	Changed         time.Time  `json:"changed"`
	PasswordChanged *time.Time `json:"password_changed,omitempty"`
	// TOTP tells whether the user's second factor is active.
	TOTP bool `json:"totp"`
}

// MarshalJSON implements [json.Marshaler]: the times are written with
// [FormatTime], and password_changed only when it is set.
func (v UserView) MarshalJSON() ([]byte, error) {
	out := struct {
		ID              string   `json:"id"`
		Username        string   `json:"username"`
		Admin           bool     `json:"admin"`
		Role            Role     `json:"role"`
		Sites           []string `json:"sites"`
		Disabled        bool     `json:"disabled"`
		Created         string   `json:"created"`
		Changed         string   `json:"changed"`
		PasswordChanged string   `json:"password_changed,omitempty"`
		TOTP            bool     `json:"totp"`
	}{
		ID: v.ID, Username: v.Username, Admin: v.Admin, Role: v.Role, Sites: v.Sites, Disabled: v.Disabled,
		Created: FormatTime(v.Created), Changed: FormatTime(v.Changed), TOTP: v.TOTP,
	}
	if v.PasswordChanged != nil && !v.PasswordChanged.IsZero() {
		out.PasswordChanged = FormatTime(*v.PasswordChanged)
	}
	return json.Marshal(out)
}

// View returns the public JSON form of u.
func (u User) View() UserView {
	role, sites := u.Access()
	v := UserView{ID: u.ID, Username: u.Username, Admin: role == RoleAdmin, Role: role, Sites: sites, Disabled: u.Disabled,
		Created: u.Created, Changed: u.Changed, TOTP: u.TOTP.Active}
	if !u.PasswordChanged.IsZero() {
		t := u.PasswordChanged
		v.PasswordChanged = &t
	}
	return v
}

// UserFilter selects a page of users for [UserStore.ListUsers].
type UserFilter struct {
	Search string // case-insensitive literal substring of the username; "" for all
	Offset int
	Limit  int // 0 means no limit
}

// Subject is a study participant, identified by their study-specific
// subject ID (SSSID).
type Subject struct {
	ID    string // internal identifier (24 hex); never returned by the API
	SSSID string
	// Site is the code of the study site the subject belongs to (see
	// [ValidSite]); "" for a subject stored before sites existed, which
	// only users of every site see.
	Site  string
	Name  string
	Bday  string // as the client sent it (RFC 3339 date or date-time)
	Email string
	// Status dates, as the client sent them; "" when unset.
	DateInvited   string
	DateConsented string
	DateEnrolled  string
	DateWithdrawn string
	Created       time.Time
	Changed       time.Time
	// Extra holds any other top-level keys the client stored, verbatim.
	Extra map[string]json.RawMessage
	// Rev is the record's revision, for optimistic concurrency: stores set
	// it (1 on create, one more on every update) and return it with every
	// read; callers pass back the Rev they read to
	// [SubjectStore.UpdateSubject], which fails with [ErrStale] if the
	// record has changed since. It is never returned by the API.
	Rev int64
}

// subjectColumns lists the columns subjects can be sorted by, as the API
// names them.
var subjectColumns = []string{
	"sssid", "name", "bday", "email", "created", "changed",
	"date_invited", "date_consented", "date_enrolled", "date_withdrawn",
}

// SubjectColumns returns the columns subjects can be sorted by, as the API
// names them (a new slice on each call).
func SubjectColumns() []string { return slices.Clone(subjectColumns) }

// SubjectFilter selects a page of subjects for [SubjectStore.ListSubjects].
type SubjectFilter struct {
	// Search is matched literally (no pattern characters) and
	// case-insensitively as a substring of the SSSID or the name, or as a
	// prefix of the birthday; "" for all.
	Search string
	// OrderCol is one of [SubjectColumns]; "" means "sssid". Strings sort
	// byte-wise (as MongoDB sorts them without a collation), with "" first;
	// times sort chronologically, with the zero time first. Desc reverses
	// that order. Ties are broken by SSSID, ascending, also when Desc is set.
	OrderCol string
	Desc     bool
	// Sites, when not nil, holds the only sites whose subjects match (an
	// empty, non-nil Sites matches none); nil matches every site.
	Sites  []string
	Offset int
	Limit  int // 0 means no limit
}

// Link is an enrolment link: a one-time binding of a subject to the mobile
// app, carried to the app as a signed JWT (shown as a QR code).
type Link struct {
	ID        string // the JWT's jti; 24 hex
	SSSID     string // the subject ("sub" in the API)
	Issuer    string
	Audience  string
	Algorithm string
	Created   time.Time
	Changed   time.Time
	// Exp is the link JWT's expiry as Unix seconds; 0 until a JWT is minted.
	Exp int64
	// JWT is the issued link token, served again while it is valid; "" for
	// links migrated from the original, which keep only JWTHash.
	JWT string
	// JWTHash is the lowercase hex SHA-256 of the issued JWT; "" until minted.
	JWTHash      string
	LinkedTo     string
	LinkedSystem string
	LinkedOn     time.Time // zero until established
	WithdrawnOn  string    // a date set by staff; "" when not withdrawn
	Revoked      time.Time // zero unless the link was revoked
	// Rev is the record's revision, for optimistic concurrency: stores set
	// it (1 on create, one more on every update and on
	// [LinkStore.EstablishLink]) and return it with every read; callers pass
	// back the Rev they read to [LinkStore.UpdateLink], which fails with
	// [ErrStale] if the record has changed since. It is never returned by
	// the API.
	Rev int64
}

// AuditEvent is one entry of the audit trail.
type AuditEvent struct {
	// Seq is the record's place in the tamper-evident audit log: 0, 1, 2,
	// … in the order of appending, without gaps. The store assigns it in
	// [AuditStore.AppendAudit]; what a caller puts here is ignored.
	Seq      int64
	ID       string
	Time     time.Time
	Document string // the ID of the user, subject or link the event is about
	DocType  string // "user", "subject", "link" or "auth"
	ActorID  string // "" when no staff user acted (e.g. /establish)
	Actor    string // the actor's username at the time
	Action   string
	// Old and New hold the changed values (JSON), for admins' eyes.
	Old json.RawMessage
	New json.RawMessage
}

// Document types of [AuditEvent].
const (
	DocUser    = "user"
	DocSubject = "subject"
	DocLink    = "link"
	DocAuth    = "auth"
)

// AuditFilter selects audit records for [AuditStore.ListAudits].
type AuditFilter struct {
	Actor  string    // equal to the record's ActorID or Actor (exact match); "" for all
	Since  time.Time // inclusive; zero for no lower bound
	Until  time.Time // exclusive; zero for no upper bound
	Offset int
	Limit  int // 0 means no limit
}

// ResetToken is a one-time password-reset (or invitation) token. Only the
// SHA-256 of the token is stored; the token itself exists only in the email.
type ResetToken struct {
	Hash    string // lowercase hex SHA-256 of the token
	UserID  string
	Purpose string // "reset" or "invite"
	Created time.Time
	Expires time.Time
}

// Session is a staff console session. Only a hash of its random ID is kept.
type Session struct {
	IDHash string // hex SHA-256 of the session ID (the cookie value); the ID itself is never stored
	UserID string
	// TokenVersion is the user's TokenVersion at sign-in: a session whose
	// version is no longer the user's has ended.
	TokenVersion int64
	Created      time.Time
	LastSeen     time.Time // last request; the session ends after the idle timeout from here
	Expires      time.Time // absolute end
}

// SigningKey is a key for signing tokens, kept in the store when the service
// generates its own.
type SigningKey struct {
	Name    string // unique name of the record, e.g. "default"
	KID     string // the JWT key ID
	Alg     string // "HS256", "EdDSA", "RS256" or "ES256"
	Secret  []byte // HMAC secret, or PKCS#8 DER private key
	Created time.Time
}

// LoginFailures counts failed logins of one account within a window.
type LoginFailures struct {
	Key   string    // normalised username (also for unknown accounts)
	Count int       // failures since Since
	Since time.Time // the first failure of the current window
	Last  time.Time // the latest failure
}
