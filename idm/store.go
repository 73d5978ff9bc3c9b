package idm

import (
	"context"
	"time"
)

// UserStore keeps staff users. Usernames are unique, compared byte for
// byte as given: a store applies no normalisation of its own. Callers store
// and look up the normal form of a username, [UsernameKey] (which
// [NormalizeUsername] returns), and look up what a person typed with
// [FindUserByUsername].
type UserStore interface {
	// CreateUser stores a new user with Rev 1 (whatever u.Rev is); u.ID
	// must be set. A taken ID or username gives ErrConflict.
	CreateUser(ctx context.Context, u User) error
	// FindUserByID returns the user with the given ID, or ErrNotFound.
	FindUserByID(ctx context.Context, id string) (User, error)
	// FindUserByUsername returns the user with the given username, compared
	// as given, or ErrNotFound.
	FindUserByUsername(ctx context.Context, username string) (User, error)
	// UpdateUser replaces the user with u.ID by u, provided the stored
	// user's Rev is u.Rev (see [Store] on revisions); the stored user then
	// has Rev u.Rev+1. It gives ErrNotFound when there is no such user,
	// ErrStale when its Rev is another, and ErrConflict (not ErrStale) when
	// the new username is taken by another user. A user may keep its own
	// username or change it.
	UpdateUser(ctx context.Context, u User) error
	// DeleteUser removes a user, or returns ErrNotFound.
	DeleteUser(ctx context.Context, id string) error
	// ListUsers returns a page of the users that match f, ordered by the
	// username (byte-wise), and the number of users that match
	// in all (regardless of Offset and Limit). A page past the end is empty.
	// A negative Offset or Limit gives an error that wraps ErrInvalid.
	ListUsers(ctx context.Context, f UserFilter) ([]User, int, error)
	// CountAdmins returns the number of enabled admins (Admin set, Disabled
	// not set).
	CountAdmins(ctx context.Context) (int, error)
	// AcceptTOTPStep records step as the latest accepted TOTP time step of
	// the user with the given ID (TOTP.LastStep = step, Rev one more, nothing
	// else changes), provided the user's TOTP is active and its LastStep is
	// below step, as one atomic step. It gives ErrNotFound when there is no
	// such user and ErrConflict (not ErrStale) when TOTP is not active or
	// the step is not above LastStep: of several concurrent callers with
	// the same step exactly one succeeds, so that a code is accepted once.
	AcceptTOTPStep(ctx context.Context, id string, step int64) error
	// ConsumeTOTPRecovery atomically removes hash from the recovery codes
	// of the user with the given ID (that entry of TOTP.Recovery becomes
	// "", Rev one more, nothing else changes), provided the user's TOTP is
	// active. It gives ErrNotFound when there is no such user, TOTP is not
	// active, or hash is empty or not among the user's codes: of several
	// concurrent callers with the same hash exactly one succeeds.
	ConsumeTOTPRecovery(ctx context.Context, id, hash string) error
}

// SubjectStore keeps study subjects. SSSIDs are unique (case-sensitive).
// [Subject.Extra] round-trips as equivalent JSON (key order and insignificant
// white space may change); a nil or empty Extra reads back with length 0.
type SubjectStore interface {
	// CreateSubject stores a new subject with Rev 1 (whatever s.Rev is);
	// s.ID must be set. A taken SSSID gives ErrConflict.
	CreateSubject(ctx context.Context, s Subject) error
	// FindSubject returns the subject with the given SSSID, or ErrNotFound.
	FindSubject(ctx context.Context, sssid string) (Subject, error)
	// UpdateSubject replaces the subject with s.SSSID by s, provided the
	// stored subject's Rev is s.Rev (see [Store] on revisions); the stored
	// subject then has Rev s.Rev+1. It gives ErrNotFound when there is no
	// such subject and ErrStale when its Rev is another. The subject keeps
	// the ID it was created with: s.ID is ignored.
	UpdateSubject(ctx context.Context, s Subject) error
	// DeleteSubject removes a subject, or returns ErrNotFound.
	DeleteSubject(ctx context.Context, sssid string) error
	// ListSubjects returns a page of the subjects that match f, sorted as
	// [SubjectFilter] describes, and the number of subjects that match in
	// all (regardless of Offset and Limit). A page past the end is empty. An
	// OrderCol outside [SubjectColumns], or a negative Offset or Limit, gives
	// an error that wraps ErrInvalid.
	ListSubjects(ctx context.Context, f SubjectFilter) ([]Subject, int, error)
}

// LinkStore keeps enrolment links.
type LinkStore interface {
	// CreateLink stores a new link with Rev 1 (whatever l.Rev is); l.ID
	// must be set (ErrConflict if taken).
	CreateLink(ctx context.Context, l Link) error
	// FindLink returns the link with the given ID, or ErrNotFound.
	FindLink(ctx context.Context, id string) (Link, error)
	// FindLinkByJWTHash returns the link whose JWTHash is hash, or
	// ErrNotFound. An empty hash never matches (links without a minted JWT
	// have an empty JWTHash) and gives ErrNotFound.
	FindLinkByJWTHash(ctx context.Context, hash string) (Link, error)
	// UpdateLink replaces the link with l.ID by l, provided the stored
	// link's Rev is l.Rev (see [Store] on revisions); the stored link then
	// has Rev l.Rev+1. It gives ErrNotFound when there is no such link and
	// ErrStale when its Rev is another. An update that would undo a
	// concurrent EstablishLink therefore fails with ErrStale.
	UpdateLink(ctx context.Context, l Link) error
	// DeleteLink removes a link, or returns ErrNotFound.
	DeleteLink(ctx context.Context, id string) error
	// LinksForSubjects returns the links of the given subjects (revoked ones
	// included), ordered by creation time and then ID; an empty slice when
	// there are none or no SSSIDs are given.
	LinksForSubjects(ctx context.Context, sssids ...string) ([]Link, error)
	// EstablishLink atomically binds the link to linkedTo/system at on,
	// provided it is neither linked nor revoked yet, and returns the updated
	// link: LinkedTo, LinkedSystem, LinkedOn (= on) and Changed (= on) are
	// set and Rev goes up by one, nothing else changes. A link that is
	// already linked (LinkedTo is not empty) gives ErrConflict; a missing or
	// revoked one (Revoked is not zero) gives ErrNotFound, also when it is
	// linked as well. An empty linkedTo gives an error that wraps
	// ErrInvalid. Of several concurrent callers exactly one succeeds.
	EstablishLink(ctx context.Context, id, linkedTo, system string, on time.Time) (Link, error)
}

// AuditStore keeps the audit trail. Records are only ever appended.
type AuditStore interface {
	// AppendAudit stores e; e.ID must be set and unique. Old and New
	// round-trip byte for byte; nil or empty ones read back with length 0.
	// The store gives e the next Seq (see [AuditLogStore]) as one atomic
	// step with storing it, also among several processes sharing the
	// store.
	AppendAudit(ctx context.Context, e AuditEvent) error
	// AuditsFor returns the records about any of the given documents, oldest
	// first (ties by ID); an empty slice when there are none.
	AuditsFor(ctx context.Context, documents ...string) ([]AuditEvent, error)
	// ListAudits returns a page of the records that match f, oldest first
	// (ties by ID), and the number of records that match in all (regardless
	// of Offset and Limit). A negative Offset or Limit gives an error that
	// wraps ErrInvalid.
	ListAudits(ctx context.Context, f AuditFilter) ([]AuditEvent, int, error)
}

// ResetTokenStore keeps one-time password-reset tokens by their hash.
// A token has expired at now when its Expires is at or before now. Expired
// tokens are never returned, whether or not they were cleaned up.
type ResetTokenStore interface {
	// CreateResetToken stores t (ErrConflict if its hash exists).
	CreateResetToken(ctx context.Context, t ResetToken) error
	// FindResetToken returns the token with the given hash that has not
	// expired at now, or ErrNotFound. It does not consume the token.
	FindResetToken(ctx context.Context, hash string, now time.Time) (ResetToken, error)
	// ConsumeResetToken atomically removes and returns the token with the
	// given hash if it has not expired at now, or returns ErrNotFound. Of
	// several concurrent callers exactly one succeeds.
	ConsumeResetToken(ctx context.Context, hash string, now time.Time) (ResetToken, error)
	// DeleteResetTokens removes all tokens of a user (expired or not); it
	// returns nil when the user has none.
	DeleteResetTokens(ctx context.Context, userID string) error
	// CountResetTokens returns how many tokens of a user were created at or
	// after since (expired ones included, until they are purged).
	CountResetTokens(ctx context.Context, userID string, since time.Time) (int, error)
	// PurgeExpiredResetTokens removes tokens that expired at or before now
	// and returns how many it removed.
	PurgeExpiredResetTokens(ctx context.Context, now time.Time) (int, error)
}

// SessionStore keeps staff console sessions by the hash of their ID (see
// [Session]). A session has ended when its LastSeen is more than the idle
// timeout ago, when its Expires is at or before now, or when its
// TokenVersion is no longer the user's: the caller decides that (the store
// returns ended sessions until they are purged or deleted).
type SessionStore interface {
	// CreateSession stores s; a taken IDHash gives ErrConflict.
	CreateSession(ctx context.Context, s Session) error
	// FindSession returns the session with the given ID hash, or
	// ErrNotFound. An empty hash never matches.
	FindSession(ctx context.Context, idHash string) (Session, error)
	// TouchSession sets the session's LastSeen to at if at is later, as one
	// atomic step: LastSeen becomes max(LastSeen, at) and never moves back,
	// whatever the order of concurrent calls; nothing else changes. It
	// gives ErrNotFound when there is no such session.
	TouchSession(ctx context.Context, idHash string, at time.Time) error
	// DeleteSession removes the session with the given ID hash; it returns
	// nil when there is none.
	DeleteSession(ctx context.Context, idHash string) error
	// DeleteUserSessions removes all sessions of a user and returns how
	// many it removed (0 when the user has none).
	DeleteUserSessions(ctx context.Context, userID string) (int, error)
	// PurgeSessions removes every session whose LastSeen is strictly before
	// idleBefore or whose Expires is at or before now, and returns how many
	// it removed. A session with LastSeen equal to idleBefore is kept.
	PurgeSessions(ctx context.Context, idleBefore, now time.Time) (int, error)
}

// KeyStore keeps generated signing keys.
type KeyStore interface {
	// CreateSigningKey stores k under k.Name; ErrConflict if a key of that
	// name exists (so that of several instances exactly one creates it).
	CreateSigningKey(ctx context.Context, k SigningKey) error
	// FindSigningKey returns the key stored under name, or ErrNotFound.
	FindSigningKey(ctx context.Context, name string) (SigningKey, error)
}

// MetaStore keeps the one-time bootstrap marker and the per-account login
// failure counters.
type MetaStore interface {
	// MarkBootstrapped sets the one-time bootstrap marker. It returns
	// ErrConflict if the marker is already set: of several concurrent callers
	// exactly one succeeds.
	MarkBootstrapped(ctx context.Context, at time.Time) error
	// Bootstrapped reports whether the bootstrap marker is set.
	Bootstrapped(ctx context.Context) (bool, error)
	// RecordLoginFailure counts one failed login for key at now and returns
	// the counter. Within the counter's window (now before Since + window)
	// Count goes up by one and Last becomes now. A new counter, or one whose
	// window has ended (now at or after Since + window), starts again at
	// Count 1 with Since and Last set to now. Keys are compared exactly. Of
	// several concurrent callers none loses its count.
	RecordLoginFailure(ctx context.Context, key string, now time.Time, window time.Duration) (LoginFailures, error)
	// ReserveLoginAttempt atomically takes a place in key's counter for
	// one password check at now, before the check is made, so that at most
	// max checks run within a window whatever the concurrency, also across
	// processes that share the store. Within the counter's window (now
	// before Since + window) and with Count below max, Count goes up by one,
	// Last becomes now and ok is true; with Count at max or above nothing
	// changes and ok is false. A new counter, or one whose window has ended
	// (now at or after Since + window), starts again at Count 1 with Since
	// and Last set to now, and ok is true. It returns the counter as it is
	// after the call. A reservation counts as a failure: a caller whose
	// check succeeds clears the counter with ResetLoginFailures. Keys are
	// compared exactly; a max below 1 gives an error that wraps ErrInvalid.
	// Of several concurrent callers on one counter in its window, at most
	// max minus its Count get ok.
	ReserveLoginAttempt(ctx context.Context, key string, now time.Time, window time.Duration, max int) (f LoginFailures, ok bool, err error)
	// LoginFailures returns the counter for key; LoginFailures{Key: key}
	// (Count 0, zero times) when there is none.
	LoginFailures(ctx context.Context, key string) (LoginFailures, error)
	// ResetLoginFailures removes the counter for key; it returns nil when
	// there is none.
	ResetLoginFailures(ctx context.Context, key string) error
	// PurgeLoginFailures removes every counter whose latest failure (Last)
	// is strictly before before, and returns how many it removed. A counter
	// with Last equal to before is kept, and the counters it keeps are left
	// as they were (Count, Since and Last unchanged). Recording a failure
	// for a removed key afterwards starts again at Count 1. Counters are
	// created for any key a client tries, known account or not, so the
	// service calls this periodically to keep them from growing without
	// bound. With before = now - window it removes only counters whose
	// window has ended (Since is never after Last), which
	// RecordLoginFailure would restart at Count 1 anyway.
	PurgeLoginFailures(ctx context.Context, before time.Time) (int, error)
}

// Store is everything the service keeps. Implementations must be safe for
// concurrent use, translate their errors into [ErrNotFound], [ErrConflict]
// (and its special case [ErrStale]) and [ErrUnavailable] (a database that
// cannot be reached), and never call time.Now. They keep times in UTC at
// millisecond precision: every time they store is passed through
// [Timestamp] (so a value read back equals Timestamp of the value written,
// in [time.UTC], and a zero time stays zero), and so is every time argument
// (now, since, on, filter bounds) before it is compared. Values are copied in and out: a caller that
// changes a slice or map it passed in or got back never changes what the
// store holds.
//
// # Revisions
//
// Users, subjects and links carry a revision, Rev, for optimistic
// concurrency: nothing acknowledged may be lost when two requests read a
// record, change it and write it back at the same time. Create methods
// store Rev 1, whatever the caller passed; every read returns the current
// Rev; an Update method writes only if the stored Rev still equals the Rev
// of the record it is given, and then stores Rev+1 as one atomic step. Of
// several concurrent updates from the same Rev exactly one succeeds; the
// others fail with an error that wraps [ErrStale] and change nothing.
// EstablishLink raises a link's Rev too, so an UpdateLink that was read
// before it fails instead of undoing it. Deletes are unconditional.
//
// Update methods return only an error: after a successful update the
// stored Rev is the given Rev plus one, so a caller that updates the same
// record again passes Rev+1 (or reads it again). A caller that gets
// ErrStale reads the record again and either applies its change to the
// fresh record and retries (a bounded number of times, see [RetryStale]), or
// refuses the change when it no longer makes sense. Test for ErrStale
// before ErrConflict, which it wraps.
//
// Records written before stores kept revisions have none and read back
// with Rev 0; the first update from Rev 0 gives them Rev 1.
//
// Package storetest checks all of this.
type Store interface {
	UserStore
	SubjectStore
	LinkStore
	AuditStore
	AuditLogStore
	ResetTokenStore
	SessionStore
	KeyStore
	MetaStore
	// Ping reports whether the store can serve requests.
	Ping(ctx context.Context) error
	// Close releases the store's resources. Calling it again returns nil;
	// no other method may be called after Close.
	Close() error
}
