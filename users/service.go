package users

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
)

// Service owns the lifecycle of users: it creates them (also the first
// admin, see [Service.Bootstrap]), deletes them, sets their passwords and
// flags. Every writer of user records goes through it - the /init and /user
// routes of [Handler], the reset flow (package resetflow, through its
// Accounts interface) and the idmd command line - so that each change has
// the same rules and side effects wherever it is made: the audit record is
// written first and compensated (see [idm.AuditWriter]) when the change does
// not go through; a change of role, flags or password revokes the user's
// tokens and reset links; a new password clears the account's login
// throttling and sends the "your password was changed" notice; and the last
// enabled admin is kept, also against concurrent changes by other
// processes.
//
// Methods take the actor, the user on whose behalf the change is made. An
// actor with an ID is a user who called the API: the change rests on their
// token, so they are read again just before the change is written (a
// caller who was deleted, disabled, logged out or demoted meanwhile gets
// 401 or 403). An actor without an ID (such as the command line's) is
// trusted as an admin and named in the audit records by Username only.
//
// A Service is safe for concurrent use; create it with [NewService].
type Service struct {
	store     Store
	passwords Passwords
	usernames idm.UsernameRule
	maxFails  int
	window    time.Duration
	now       func() time.Time
	log       *slog.Logger
	audits    *idm.AuditWriter
	issuer    string // of TOTP keys
	mail      atomic.Pointer[mail]
	mutation  sync.Mutex // serialises read-modify-write changes of users in this process
}

// mail is where invitations and password-changed notices go.
type mail struct {
	inviter  Inviter
	notifier Notifier
}

// ServiceConfig configures [NewService].
type ServiceConfig struct {
	// Store keeps users, the audit trail and the bootstrap marker. Required.
	Store Store
	// Passwords hashes passwords and applies the password policy. Required.
	Passwords Passwords
	// UsernameRule is the rule for the usernames of new users; its zero
	// value refuses mixed-script names. Existing users are found whatever
	// their names.
	UsernameRule idm.UsernameRule
	// MaxFailures wrong current passwords (see [Changes.CurrentPassword])
	// within FailureWindow throttle further password checks of that
	// account until the window ends; they count in the same store counter
	// as failed logins at POST /auth (key auth.LoginKey of the username),
	// so set them as auth.Config's. 0 means auth.DefaultMaxFailures (5) and
	// auth.DefaultFailureWindow (15 min).
	MaxFailures   int
	FailureWindow time.Duration
	// Now returns the current time: nil means time.Now.
	Now func() time.Time
	// Logger receives server errors and notable events: nil discards them.
	Logger *slog.Logger
	// TOTPIssuer names the service in the otpauth:// URIs of TOTP keys
	// (authenticator apps show it): "" means auth.DefaultTOTPIssuer ("idm").
	TOTPIssuer string
}

// NewService validates c, fills in its defaults and returns a Service.
// It sends no mail until [Service.SetMail] is called.
func NewService(c ServiceConfig) (*Service, error) {
	switch {
	case c.Store == nil:
		return nil, errors.New("users: ServiceConfig.Store is required")
	case c.Passwords == nil:
		return nil, errors.New("users: ServiceConfig.Passwords is required")
	case c.MaxFailures < 0:
		return nil, fmt.Errorf("users: MaxFailures %d is negative", c.MaxFailures)
	case c.FailureWindow < 0:
		return nil, fmt.Errorf("users: FailureWindow %v is negative", c.FailureWindow)
	}
	s := &Service{
		store:     c.Store,
		passwords: c.Passwords,
		usernames: c.UsernameRule,
		maxFails:  c.MaxFailures,
		window:    c.FailureWindow,
		now:       c.Now,
		log:       c.Logger,
		issuer:    c.TOTPIssuer,
	}
	if s.issuer == "" {
		s.issuer = auth.DefaultTOTPIssuer
	}
	if s.maxFails == 0 {
		s.maxFails = auth.DefaultMaxFailures
	}
	if s.window == 0 {
		s.window = auth.DefaultFailureWindow
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.audits = idm.NewAuditWriter(s.store, s.now, s.log)
	s.mail.Store(&mail{})
	return s, nil
}

// SetMail sets where invitations and password-changed notices go (package
// resetflow's *Handler is both); nil for either turns it off. Without an
// inviter, [Service.Create] needs a password. It is separate from
// [NewService] because the reset flow itself calls the Service: create the
// Service, then the flow with it, then call SetMail with the flow.
func (s *Service) SetMail(inviter Inviter, notifier Notifier) {
	s.mail.Store(&mail{inviter: inviter, notifier: notifier})
}

// NewUser is what [Service.Create] makes a user from.
type NewUser struct {
	// Username is normalised by the Service's username rule.
	Username string
	// Password is checked against the policy and hashed; when empty the
	// user is invited to set one (which needs an inviter, see
	// [Service.SetMail]).
	Password string
	// Admin makes the user an admin.
	Admin bool
	// Role is the user's role ("" for the one Admin implies: admin, or
	// coordinator); it must agree with Admin when both are given.
	Role idm.Role
	// Sites are the user's sites; nil for every site.
	Sites []string
}

// Changes are the changes [Service.Update] makes to a user; nil fields
// stay as they are.
type Changes struct {
	// Username, when set, must name the user as they are named now:
	// usernames cannot be changed.
	Username *string
	Admin    *bool
	// Role and Sites change the user's access (see API.md, "Roles and
	// sites"); nil leaves it. A change revokes the user's tokens.
	Role     *idm.Role
	Sites    []string
	Disabled *bool
	// Password is the new password. Your own password needs
	// CurrentPassword (checked under the login throttling of POST /auth);
	// another user's needs an admin.
	Password        *string
	CurrentPassword *string
	// Unlock clears the account's login throttling.
	Unlock bool
	// ResetTOTP removes the user's second factor (pending or active) and
	// revokes their tokens; admins only (users remove their own with
	// [Service.RemoveTOTP]).
	ResetTOTP bool
}

// Create makes a new user for actor, who must be an admin: with a password,
// or else invited to set one. Creating an admin closes /init for good.
func (s *Service) Create(ctx context.Context, actor idm.User, n NewUser) (idm.User, error) {
	if err := requireAdmin(actor); err != nil {
		return idm.User{}, err
	}
	return s.create(ctx, actor, n)
}

// Bootstrap creates the first admin, provided this call wins the store's
// one-time bootstrap marker; otherwise it returns a 409 error
// ("already initialised").
func (s *Service) Bootstrap(ctx context.Context, username, password string) (idm.User, error) {
	return s.bootstrap(ctx, initInput{Username: username, Password: password})
}

// Delete deletes the user that id names (an ID, a username, or "me") for
// actor, who must be an admin, unless it is the last enabled admin (409).
// When another process deletes or demotes the other last admin at the same
// time, one of the two changes is taken back.
func (s *Service) Delete(ctx context.Context, actor idm.User, id string) error {
	if err := requireAdmin(actor); err != nil {
		return err
	}
	target, err := s.resolve(ctx, actor, id)
	if err != nil {
		return err
	}
	return s.remove(ctx, actor, target)
}

// Update makes changes to the user that id names (an ID, a username, or
// "me") for actor: an admin may change anyone, others only their own
// password (with their current one).
func (s *Service) Update(ctx context.Context, actor idm.User, id string, c Changes) (idm.User, error) {
	if !actor.Admin && !isSelf(actor, id) {
		return idm.User{}, idm.E(idm.ErrForbidden, "admin rights required")
	}
	return s.update(ctx, actor, id, c)
}

// SetPasswordHash stores hash, made by the Service's Passwords from a
// password its policy accepts, as the password of the user with the given
// ID, on behalf of actor (typically the user, who proved their identity by
// a link), and records it under the audit action action. The change has
// the side effects of every password change (see [Service]); the actor is
// not read again. Package resetflow calls it.
func (s *Service) SetPasswordHash(ctx context.Context, actor idm.User, id, hash, action string) (idm.User, error) {
	if hash == "" {
		return idm.User{}, idm.E(idm.ErrInvalid, "password is required")
	}
	return s.apply(ctx, actor, id, edit{password: true, hash: hash, action: action, trusted: true}, false)
}

// edit is a validated change of one user.
type edit struct {
	access   accessInput // role, sites and the admin flag
	disabled *bool
	password bool   // set hash as the password
	hash     string // the new password's hash
	action   string // the password change's audit action: ActionChangePassword when empty
	unlock   bool
	trusted  bool      // the actor is not read again (see recheckActor)
	totp     *totpEdit // a change of the second factor
}

// timestamp returns the current time as stores keep it.
func (s *Service) timestamp() time.Time { return idm.Timestamp(s.now()) }

// notify tells u that their password was changed (see [Notifier]).
func (s *Service) notify(ctx context.Context, u idm.User) {
	n := s.mail.Load().notifier
	if n == nil {
		return
	}
	if err := n.PasswordChanged(ctx, u); err != nil {
		s.log.ErrorContext(ctx, "users: could not notify a user of their password change", "user", u.ID, "err", err)
	}
}

// resolve finds the user an {id} of a path names: "me" (the caller), a user
// ID, or a username. Anything else is not found.
func (s *Service) resolve(ctx context.Context, actor idm.User, id string) (idm.User, error) {
	var (
		u   idm.User
		err error
	)
	switch {
	case id == "me":
		return actor, nil
	case idm.ValidID(id):
		u, err = s.store.FindUserByID(ctx, id)
	default:
		u, err = idm.FindUserByUsername(ctx, s.store, id)
	}
	if errors.Is(err, idm.ErrNotFound) {
		return idm.User{}, idm.Wrap(idm.ErrNotFound, msgNotFound, err)
	}
	if err != nil {
		return idm.User{}, fmt.Errorf("users: looking up user %q: %w", id, err)
	}
	return u, nil
}

// findByName finds the user a username of a request body names (any
// spelling of a stored name, see idm.FindUserByUsername): a 400 when it is
// empty, a 404 when there is no such user.
func (s *Service) findByName(ctx context.Context, name string) (idm.User, error) {
	if strings.TrimSpace(name) == "" {
		return idm.User{}, idm.E(idm.ErrInvalid, "username is required")
	}
	u, err := idm.FindUserByUsername(ctx, s.store, name)
	if errors.Is(err, idm.ErrNotFound) {
		return idm.User{}, idm.Wrap(idm.ErrNotFound, msgNotFound, err)
	}
	if err != nil {
		return idm.User{}, fmt.Errorf("users: looking up user %q: %w", name, err)
	}
	return u, nil
}

// create makes a new user; without a password it invites them.
func (s *Service) create(ctx context.Context, actor idm.User, in NewUser) (idm.User, error) {
	username, err := s.usernames.Normalize(in.Username)
	if err != nil {
		return idm.User{}, err
	}
	access := accessInput{admin: &in.Admin, sites: in.Sites}
	if in.Role != "" {
		access.role = &in.Role
		if !in.Admin {
			access.admin = nil // only `role` was given
		}
	}
	role, sites, err := resolveAccess(idm.User{}, access)
	if err != nil {
		return idm.User{}, err
	}
	inviter := s.mail.Load().inviter
	invite := in.Password == ""
	if invite && inviter == nil {
		return idm.User{}, idm.E(idm.ErrInvalid, "password is required (no mail is configured to invite the user to set one)")
	}
	if !invite {
		if err := s.checkPassword(in.Password); err != nil {
			return idm.User{}, err
		}
	}
	// Also an account stored under an earlier rule, by a form of the name
	// as typed, holds it.
	if _, err := idm.FindUserByUsername(ctx, s.store, in.Username); err == nil {
		return idm.User{}, idm.E(idm.ErrConflict, msgTaken)
	} else if !errors.Is(err, idm.ErrNotFound) {
		return idm.User{}, fmt.Errorf("users: looking up %q: %w", username, err)
	}
	var hash string
	if !invite {
		if hash, err = s.passwords.Hash(ctx, in.Password); err != nil {
			return idm.User{}, fmt.Errorf("users: hashing a password: %w", err)
		}
	}
	// Hashing may have waited long: the caller must still be an enabled
	// admin with the same token version now, just before the write.
	if err := s.recheckActor(ctx, actor, true); err != nil {
		return idm.User{}, err
	}
	now := s.timestamp()
	u := idm.User{
		ID:           idm.NewID(),
		Username:     username,
		PasswordHash: hash,
		Created:      now,
		Changed:      now,
	}
	setAccess(&u, role, sites)
	created := snapshot(u)
	created.Invited = invite
	if err := s.insert(ctx, actor, u, created); err != nil {
		return idm.User{}, err
	}
	if u.Admin {
		// An admin exists now: /init stays closed for good.
		if err := s.store.MarkBootstrapped(context.WithoutCancel(ctx), now); err != nil && !errors.Is(err, idm.ErrConflict) {
			s.log.ErrorContext(ctx, "users: setting the bootstrap marker", "err", err)
		}
	}
	if invite {
		if err := inviter.Invite(ctx, u); err != nil {
			// A user nobody can log in as is of no use: take it back, so
			// the admin can simply try again.
			s.undoCreate(ctx, actor, u, err)
			// The mail server is a dependency: its failure is an outage
			// (503, try again later), not a fault of this service.
			return idm.User{}, idm.Wrap(idm.ErrUnavailable, "the invitation could not be sent; try again later",
				fmt.Errorf("users: inviting %q: %w", username, err))
		}
	}
	return u, nil
}

// insert stores the new user u for actor, audit record (of state
// created) first. A taken username is a 409.
func (s *Service) insert(ctx context.Context, actor, u idm.User, created *auditState) error {
	recs, err := s.audit(ctx, actor, u, u.Created, change{action: ActionCreate, new: created})
	if err == nil {
		err = s.store.CreateUser(context.WithoutCancel(ctx), u)
		err = s.settle(ctx, recs, err, func(ctx context.Context) (bool, error) {
			return s.exists(ctx, u.ID)
		})
	} else {
		s.compensate(ctx, recs, ActionFailedSuffix, err)
	}
	if err != nil {
		if errors.Is(err, idm.ErrConflict) {
			return idm.Wrap(idm.ErrConflict, msgTaken, err)
		}
		return fmt.Errorf("users: creating %q: %w", u.Username, err)
	}
	return nil
}

// undoCreate deletes a user whose invitation failed.
func (s *Service) undoCreate(ctx context.Context, actor, u idm.User, cause error) {
	ctx = context.WithoutCancel(ctx)
	recs, err := s.audit(ctx, actor, u, s.timestamp(), change{action: ActionDelete, old: snapshot(u)})
	if err == nil {
		err = s.store.DeleteUser(ctx, u.ID)
	}
	if err != nil {
		s.compensate(ctx, recs, ActionFailedSuffix, err)
		s.log.ErrorContext(ctx, "users: could not delete a user whose invitation failed",
			"user", u.ID, "username", u.Username, "err", err, "cause", cause)
	}
}

// remove deletes target, unless it is the last enabled admin. A change of
// the user by someone else while this runs (a stale revision) makes it
// start over, a few times.
func (s *Service) remove(ctx context.Context, actor, target idm.User) error {
	s.mutation.Lock()
	defer s.mutation.Unlock()
	err := idm.RetryStale(ctx, idm.DefaultStaleAttempts, func() error { return s.removeOnce(ctx, actor, target.ID) })
	if errors.Is(err, idm.ErrStale) {
		return idm.Wrap(idm.ErrConflict, msgBusy, err)
	}
	return err
}

// removeOnce is one attempt of remove.
func (s *Service) removeOnce(ctx context.Context, actor idm.User, id string) error {
	cur, err := s.store.FindUserByID(ctx, id)
	if errors.Is(err, idm.ErrNotFound) {
		return idm.Wrap(idm.ErrNotFound, msgNotFound, err)
	} else if err != nil {
		return fmt.Errorf("users: loading user %s: %w", id, err)
	}
	if enabledAdmin(cur) {
		if err := s.keepsAnAdmin(ctx); err != nil {
			return err
		}
	}
	now := s.timestamp()
	recs, err := s.audit(ctx, actor, cur, now, change{action: ActionDelete, old: snapshot(cur)})
	if err != nil {
		s.compensate(ctx, recs, ActionFailedSuffix, err)
		return err
	}
	// The record is written: carry the change through even if the client
	// goes away. Revoke the user's tokens first, so that they stay revoked
	// even if the deletion itself fails; this also makes sure that nobody
	// changed the user since it was read.
	ctx = context.WithoutCancel(ctx)
	revoked := cur
	revoked.TokenVersion++
	revoked.Changed = now
	err = s.store.UpdateUser(ctx, revoked)
	if err == nil {
		err = s.store.DeleteResetTokens(ctx, cur.ID)
	}
	if err == nil {
		err = s.store.DeleteUser(ctx, cur.ID)
	}
	err = s.settle(ctx, recs, err, func(ctx context.Context) (bool, error) {
		ok, err := s.exists(ctx, cur.ID)
		return !ok, err
	})
	if err != nil {
		if errors.Is(err, idm.ErrNotFound) { // deleted meanwhile, by another process
			return idm.Wrap(idm.ErrNotFound, msgNotFound, err)
		}
		return fmt.Errorf("users: deleting user %s: %w", cur.ID, err)
	}
	s.endSessions(ctx, cur.ID)
	if enabledAdmin(cur) && s.noAdminLeft(ctx) {
		// Another process removed the other admin at the same time: put
		// this one back (its tokens stay revoked).
		if err := s.store.CreateUser(ctx, revoked); err != nil {
			s.log.ErrorContext(ctx, "users: could not restore the last admin after a concurrent change",
				"user", cur.ID, "username", cur.Username, "err", err)
			return nil
		}
		s.compensate(ctx, recs, ActionUndoneSuffix, errors.New("no enabled admin left"))
		return idm.E(idm.ErrConflict, msgLastAdmin)
	}
	return nil
}

// endSessions removes the staff console sessions of a user whose tokens
// were revoked or who was deleted. The console already refuses them (their
// TokenVersion is no longer the user's), so this only keeps the records
// from lingering until the janitor's purge: an error is logged, not
// returned.
func (s *Service) endSessions(ctx context.Context, userID string) {
	if _, err := s.store.DeleteUserSessions(ctx, userID); err != nil {
		s.log.ErrorContext(ctx, "users: deleting the console sessions of a revoked user", "user", userID, "err", err)
	}
}

// keepsAnAdmin returns a 409 error unless there is more than one enabled
// admin, so that one may go.
func (s *Service) keepsAnAdmin(ctx context.Context) error {
	n, err := s.store.CountAdmins(ctx)
	if err != nil {
		return fmt.Errorf("users: counting admins: %w", err)
	}
	if n <= 1 {
		return idm.E(idm.ErrConflict, msgLastAdmin)
	}
	return nil
}

// noAdminLeft reports whether a change just made left no enabled admin
// (several processes may have demoted different admins at once). It errs on
// the side of "there is one" when the store cannot tell.
func (s *Service) noAdminLeft(ctx context.Context) bool {
	n, err := s.store.CountAdmins(ctx)
	if err != nil {
		s.log.ErrorContext(ctx, "users: counting admins after a change", "err", err)
		return false
	}
	return n == 0
}

// update applies a PUT /user/{id}. Only admins reach it for other users.
func (s *Service) update(ctx context.Context, actor idm.User, id string, in Changes) (idm.User, error) {
	target := actor // a non-admin can only be here for themself
	if actor.Admin {
		var err error
		if target, err = s.resolve(ctx, actor, id); err != nil {
			return idm.User{}, err
		}
	} else if (in.Admin != nil && *in.Admin != actor.Admin) ||
		(in.Disabled != nil && *in.Disabled != actor.Disabled) || in.Unlock || in.ResetTOTP {
		return idm.User{}, idm.E(idm.ErrForbidden, "admin rights required")
	}
	access := accessInput{admin: in.Admin, role: in.Role, sites: in.Sites}
	if access.given() {
		role, sites, err := resolveAccess(target, access)
		if err != nil {
			return idm.User{}, err
		}
		if !actor.Admin && !sameAccess(actor, role, sites) {
			return idm.User{}, idm.E(idm.ErrForbidden, "admin rights required")
		}
	}
	if in.Username != nil {
		// Compared by their keys: a user whose stored name the current
		// rule refuses may still send it back unchanged.
		if idm.UsernameKey(*in.Username) != idm.UsernameKey(target.Username) {
			return idm.User{}, idm.E(idm.ErrInvalid, "usernames cannot be changed; create a new user instead")
		}
	}
	e := edit{access: access, disabled: in.Disabled, unlock: in.Unlock}
	if in.ResetTOTP {
		e.totp = &totpEdit{kind: totpReset}
	}
	if in.Password != nil {
		if err := s.checkPassword(*in.Password); err != nil {
			return idm.User{}, err
		}
		// Your own password needs your current one, admins included, so
		// that a stolen token alone cannot take an account over; another
		// user's needs admin rights only.
		switch {
		case in.CurrentPassword != nil:
			if err := s.checkCurrentPassword(ctx, actor, target, *in.CurrentPassword, changePasswordCheck); err != nil {
				return idm.User{}, err
			}
		case target.ID == actor.ID:
			return idm.User{}, idm.E(idm.ErrInvalid, "current_password is required to change your password")
		}
		var err error
		e.password = true
		if e.hash, err = s.passwords.Hash(ctx, *in.Password); err != nil {
			return idm.User{}, fmt.Errorf("users: hashing a password: %w", err)
		}
	} else if in.CurrentPassword != nil {
		return idm.User{}, idm.E(idm.ErrInvalid, "current_password is only used together with password")
	}
	return s.apply(ctx, actor, target.ID, e, needsAdmin(actor, target, in))
}

// recheckActor reads the caller again just before a change is written, so
// that a request that waited (for a hashing worker, or for the lock) does
// not finish for a caller who was deleted, disabled, logged out or (when
// needAdmin) demoted meanwhile: such a request gets the 401 or 403 it would
// get if it came now.
func (s *Service) recheckActor(ctx context.Context, actor idm.User, needAdmin bool) error {
	if actor.ID == "" {
		return nil // a trusted actor, such as the command line (see Service)
	}
	cur, err := s.store.FindUserByID(ctx, actor.ID)
	switch {
	case errors.Is(err, idm.ErrNotFound):
		return idm.E(idm.ErrUnauthorized, "Invalid token")
	case err != nil:
		return fmt.Errorf("users: reloading the caller %s: %w", actor.ID, err)
	case cur.Disabled || cur.TokenVersion != actor.TokenVersion:
		return idm.E(idm.ErrUnauthorized, "Invalid token")
	case needAdmin && !cur.Admin:
		return idm.E(idm.ErrForbidden, "admin rights required")
	}
	return nil
}

// checkCurrentPassword verifies the current_password that actor gave to
// change target's password, under the brute-force limits of POST /auth and
// in the same store counter (key auth.LoginKey of the username): the check
// takes its place in the count before any hashing, so that concurrent
// checks (on any instance sharing the store) hash at most MaxFailures
// passwords per window; a throttled account gets a 429; a wrong password
// keeps its place as a failure, is audited and gets a 403; the right one
// clears the counter, as a successful login does. A store error on the
// counter refuses the change with a 503.
func (s *Service) checkCurrentPassword(ctx context.Context, actor, target idm.User, password string, pc passwordCheck) error {
	key := auth.LoginKey(target.Username)
	now := s.now()
	lf, ok, err := s.store.ReserveLoginAttempt(ctx, key, now, s.window, s.maxFails)
	if err != nil {
		return counterUnavailable(target, err)
	}
	if !ok {
		return s.throttled(ctx, actor, target, lf, now, pc.throttledAction)
	}
	ok, _, err = s.passwords.Verify(ctx, target.PasswordHash, password)
	if err != nil {
		return fmt.Errorf("users: verifying the current password: %w", err)
	}
	if !ok {
		// The failure is counted already (the reserved place stays).
		// Audit it even if the client has gone.
		if _, err := s.audit(context.WithoutCancel(ctx), actor, target, s.timestamp(), change{action: pc.wrongAction,
			new: &auditState{Username: target.Username, LoginFailures: ptr(lf.Count)}}); err != nil {
			s.log.ErrorContext(ctx, "users: auditing a wrong current password", "user", target.ID, "err", err)
		}
		return idm.E(idm.ErrForbidden, pc.field+" is not correct")
	}
	if err := s.store.ResetLoginFailures(ctx, key); err != nil {
		return counterUnavailable(target, err)
	}
	return nil
}

// throttled returns a *throttledError for an account whose counter lf has
// no place left in its window, and audits the refusal.
func (s *Service) throttled(ctx context.Context, actor, target idm.User, lf idm.LoginFailures, now time.Time, action string) error {
	if _, err := s.audit(context.WithoutCancel(ctx), actor, target, s.timestamp(), change{action: action,
		new: &auditState{Username: target.Username, LoginFailures: ptr(lf.Count)}}); err != nil {
		s.log.ErrorContext(ctx, "users: auditing a throttled password change", "user", target.ID, "err", err)
	}
	s.log.InfoContext(ctx, "users: password check throttled", "user", target.ID, "action", action)
	return &throttledError{retryAfter: lf.Since.Add(s.window).Sub(now)}
}

// apply makes the changes of a validated PUT to the user with the given ID:
// the audit records first, then the change. A change of the user by someone
// else while this runs (a stale revision) makes it start over, a few times.
// The caller is read again first (see recheckActor).
func (s *Service) apply(ctx context.Context, actor idm.User, id string, e edit, needAdmin bool) (idm.User, error) {
	s.mutation.Lock()
	defer s.mutation.Unlock()
	var u idm.User
	err := idm.RetryStale(ctx, idm.DefaultStaleAttempts, func() error {
		if !e.trusted {
			if err := s.recheckActor(ctx, actor, needAdmin); err != nil {
				return err
			}
		}
		var err error
		u, err = s.applyOnce(ctx, actor, id, e)
		return err
	})
	if errors.Is(err, idm.ErrStale) {
		return idm.User{}, idm.Wrap(idm.ErrConflict, msgBusy, err)
	}
	return u, err
}

// applyOnce is one attempt of apply.
func (s *Service) applyOnce(ctx context.Context, actor idm.User, id string, in edit) (idm.User, error) {
	cur, err := s.store.FindUserByID(ctx, id)
	if errors.Is(err, idm.ErrNotFound) {
		return idm.User{}, idm.Wrap(idm.ErrNotFound, msgNotFound, err)
	} else if err != nil {
		return idm.User{}, fmt.Errorf("users: loading user %s: %w", id, err)
	}
	now := s.timestamp()
	next := cur
	var changes []change
	if in.access.given() {
		// Resolved again on the fresh record: what the body leaves out
		// stays as it is now.
		role, sites, err := resolveAccess(cur, in.access)
		if err != nil {
			return idm.User{}, err
		}
		if !sameAccess(cur, role, sites) {
			setAccess(&next, role, sites)
			action := ActionSetAccess
			switch {
			case next.Admin && !cur.Admin:
				action = ActionSetAdmin
			case !next.Admin && cur.Admin:
				action = ActionUnsetAdmin
			}
			changes = append(changes, change{action: action, old: accessState(cur), new: accessState(next)})
		}
	}
	if in.disabled != nil && *in.disabled != cur.Disabled {
		next.Disabled = *in.disabled
		action := ActionDisable
		if !next.Disabled {
			action = ActionEnable
		}
		changes = append(changes, change{action: action,
			old: &auditState{Username: cur.Username, Disabled: ptr(cur.Disabled)},
			new: &auditState{Username: cur.Username, Disabled: ptr(next.Disabled)}})
	}
	passwordChanged := in.password
	if passwordChanged {
		next.PasswordHash = in.hash
		next.PasswordChanged = now
		action := in.action
		if action == "" {
			action = ActionChangePassword
		}
		changes = append(changes, change{action: action,
			old: &auditState{Username: cur.Username, PasswordSet: ptr(cur.PasswordHash != "")},
			new: &auditState{Username: cur.Username, PasswordChanged: ptr(now)}})
	}
	// Every change so far revokes the user's tokens; of the second
	// factor's, only an admin's reset does.
	revoke := len(changes) > 0
	if in.totp != nil {
		c, err := in.totp.apply(cur, &next)
		if err != nil {
			return idm.User{}, err
		}
		if c != nil {
			changes = append(changes, *c)
			revoke = revoke || in.totp.kind == totpReset
		}
	}
	userChanges := len(changes)
	demotes := enabledAdmin(cur) && !enabledAdmin(next)
	if demotes {
		if err := s.keepsAnAdmin(ctx); err != nil {
			return idm.User{}, err
		}
	}
	if in.unlock {
		lf, err := s.store.LoginFailures(ctx, auth.LoginKey(cur.Username))
		if err != nil {
			return idm.User{}, fmt.Errorf("users: reading the login failures of %s: %w", cur.ID, err)
		}
		changes = append(changes, change{action: ActionUnlock,
			old: &auditState{Username: cur.Username, LoginFailures: ptr(lf.Count)},
			new: &auditState{Username: cur.Username, LoginFailures: ptr(0)}})
	}
	if len(changes) == 0 {
		return cur, nil
	}
	recs, err := s.audit(ctx, actor, cur, now, changes...)
	if err != nil {
		s.compensate(ctx, recs, ActionFailedSuffix, err)
		return idm.User{}, err
	}
	// The records are written: carry the changes through even if the
	// client goes away.
	ctx = context.WithoutCancel(ctx)
	if userChanges > 0 {
		next.Changed = now
		if revoke {
			next.TokenVersion++ // a change of role, flags or password revokes the user's tokens
			// ... and their reset and invitation links, so that none survives
			// a disable and re-enable (or a change of role).
			err = s.store.DeleteResetTokens(ctx, cur.ID)
		}
		if err == nil {
			err = s.store.UpdateUser(ctx, next)
			err = s.settle(ctx, recs, err, func(ctx context.Context) (bool, error) {
				return s.updated(ctx, next)
			})
		} else {
			s.compensate(ctx, recs, ActionFailedSuffix, err)
		}
		if err != nil {
			if errors.Is(err, idm.ErrNotFound) {
				return idm.User{}, idm.Wrap(idm.ErrNotFound, msgNotFound, err)
			}
			return idm.User{}, fmt.Errorf("users: updating user %s: %w", cur.ID, err)
		}
		next.Rev++
		if revoke {
			// A link issued between the deletion above and the update
			// (by a reset request that read the user before it) goes too.
			if err := s.store.DeleteResetTokens(ctx, cur.ID); err != nil {
				s.log.ErrorContext(ctx, "users: deleting reset links after revoking the tokens", "user", cur.ID, "err", err)
			}
			s.endSessions(ctx, cur.ID)
		}
		if demotes && s.noAdminLeft(ctx) {
			// Another process demoted the other admin at the same time:
			// take this request's changes back (the tokens stay revoked).
			if err := s.restore(ctx, cur, next); err != nil {
				s.log.ErrorContext(ctx, "users: could not restore the last admin after a concurrent change",
					"user", cur.ID, "username", cur.Username, "err", err)
			} else {
				s.compensate(ctx, recs[:userChanges], ActionUndoneSuffix, errors.New("no enabled admin left"))
				if userChanges < len(recs) {
					s.compensate(ctx, recs[userChanges:], ActionFailedSuffix, errors.New("request refused"))
				}
				return idm.User{}, idm.E(idm.ErrConflict, msgLastAdmin)
			}
		}
	}
	if userChanges < len(recs) {
		if err := s.store.ResetLoginFailures(ctx, auth.LoginKey(cur.Username)); err != nil {
			s.compensate(ctx, recs[userChanges:], ActionFailedSuffix, err)
			return idm.User{}, fmt.Errorf("users: unlocking user %s: %w", cur.ID, err)
		}
	}
	if passwordChanged {
		if userChanges == len(recs) {
			// A throttled account is usable again with its new password
			// (the counter is the one POST /auth keeps).
			if err := s.store.ResetLoginFailures(ctx, auth.LoginKey(cur.Username)); err != nil {
				s.log.ErrorContext(ctx, "users: clearing login failures after a password change", "user", cur.ID, "err", err)
			}
		}
		s.notify(ctx, next)
	}
	return next, nil
}

// exists reads the user with the given ID back: after a write of unknown
// outcome (idm.ErrAmbiguous) it tells whether a create or delete was made.
func (s *Service) exists(ctx context.Context, id string) (bool, error) {
	_, err := s.store.FindUserByID(ctx, id)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, idm.ErrNotFound):
		return false, nil
	}
	return false, err
}

// updated reads a user back after an UpdateUser of unknown outcome that
// would have stored next (with next.Rev + 1): it was made if the stored
// record is at that revision and holds what next holds.
func (s *Service) updated(ctx context.Context, next idm.User) (bool, error) {
	u, err := s.store.FindUserByID(ctx, next.ID)
	switch {
	case errors.Is(err, idm.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return u.Rev == next.Rev+1 && u.TokenVersion == next.TokenVersion && u.PasswordHash == next.PasswordHash &&
		u.Admin == next.Admin && u.Role == next.Role && slices.Equal(u.Sites, next.Sites) &&
		u.Disabled == next.Disabled && u.TOTP == next.TOTP, nil
}

// restore takes back the changes that updated a user from prev to next,
// where they still hold; the raised token version stays.
func (s *Service) restore(ctx context.Context, prev, next idm.User) error {
	return idm.RetryStale(ctx, idm.DefaultStaleAttempts, func() error {
		u, err := s.store.FindUserByID(ctx, prev.ID)
		if err != nil {
			return err
		}
		if u.Admin == next.Admin && u.Role == next.Role && slices.Equal(u.Sites, next.Sites) {
			u.Admin, u.Role, u.Sites = prev.Admin, prev.Role, prev.Sites
		}
		if u.Disabled == next.Disabled {
			u.Disabled = prev.Disabled
		}
		if u.PasswordHash == next.PasswordHash {
			u.PasswordHash, u.PasswordChanged = prev.PasswordHash, prev.PasswordChanged
		}
		u.Changed = s.timestamp()
		return s.store.UpdateUser(ctx, u)
	})
}

// bootstrap creates the first admin from in, provided this call wins the
// store's one-time bootstrap marker; otherwise it returns errInitialised.
func (s *Service) bootstrap(ctx context.Context, in initInput) (idm.User, error) {
	username, err := s.usernames.Normalize(in.Username)
	if err != nil {
		return idm.User{}, err
	}
	if err := s.checkPassword(in.Password); err != nil {
		return idm.User{}, err
	}
	if _, err := idm.FindUserByUsername(ctx, s.store, in.Username); err == nil {
		return idm.User{}, idm.E(idm.ErrConflict, msgTaken)
	} else if !errors.Is(err, idm.ErrNotFound) {
		return idm.User{}, fmt.Errorf("users: looking up %q: %w", username, err)
	}
	hash, err := s.passwords.Hash(ctx, in.Password)
	if err != nil {
		return idm.User{}, fmt.Errorf("users: hashing the first admin's password: %w", err)
	}
	now := s.timestamp()
	if err := s.store.MarkBootstrapped(ctx, now); errors.Is(err, idm.ErrConflict) {
		return idm.User{}, errInitialised
	} else if err != nil {
		return idm.User{}, fmt.Errorf("users: setting the bootstrap marker: %w", err)
	}
	// This request won the marker: finish even if the client goes away,
	// since no other request can create the first admin any more.
	ctx = context.WithoutCancel(ctx)
	u := idm.User{
		ID:           idm.NewID(),
		Username:     username,
		PasswordHash: hash,
		Admin:        true,
		Created:      now,
		Changed:      now,
	}
	created := snapshot(u)
	created.Bootstrap = true
	if err := s.insert(ctx, u, u, created); err != nil {
		s.log.ErrorContext(ctx, "users: the bootstrap marker is set but the first admin could not be created; "+
			"create one with the admin command (idmd user add --admin)", "username", username, "err", err)
		return idm.User{}, err
	}
	s.log.InfoContext(ctx, "users: first admin created through /init", "user", u.ID)
	return u, nil
}

// checkPassword applies the password policy to a new password.
func (s *Service) checkPassword(pw string) error {
	if pw == "" {
		return idm.E(idm.ErrInvalid, "password is required")
	}
	if len(pw) > maxStringBytes {
		return idm.E(idm.ErrInvalid, fmt.Sprintf("password must be at most %d bytes long", maxStringBytes))
	}
	return s.passwords.Check(pw)
}

// audit appends the records of changes to the user target made by actor, in
// order, before the changes are made. It returns the records written so far
// even when it fails, so that the caller can compensate them.
func (s *Service) audit(ctx context.Context, actor, target idm.User, at time.Time, changes ...change) ([]idm.AuditEvent, error) {
	var written []idm.AuditEvent
	for _, c := range changes {
		e := idm.AuditEvent{
			Time:     at,
			Document: target.ID,
			DocType:  idm.DocUser,
			ActorID:  actor.ID,
			Actor:    actor.Username,
			Action:   c.action,
		}
		var err error
		if e.Old, err = marshalState(c.old); err == nil {
			e.New, err = marshalState(c.new)
		}
		if err != nil {
			return written, fmt.Errorf("users: encoding audit values: %w", err)
		}
		if e, err = s.audits.Append(ctx, e); err != nil {
			return written, fmt.Errorf("users: writing the audit record %q for user %s: %w", c.action, target.ID, err)
		}
		written = append(written, e)
	}
	return written, nil
}

// compensate appends, for each record, a record saying that its change
// failed (suffix ActionFailedSuffix) or was undone (ActionUndoneSuffix),
// through idm.AuditWriter.Compensate: it runs even when ctx has been
// cancelled, so that the trail stays true; failures are logged.
func (s *Service) compensate(ctx context.Context, records []idm.AuditEvent, suffix string, cause error) {
	for _, e := range records {
		_, _ = s.audits.Compensate(ctx, e, suffix, cause)
	}
}

// settle writes what is true of the changes recorded by records after
// their write returned err (see idm.AuditWriter.Settle): nothing when err is
// nil or when applied finds that an ambiguous write was made after all (it
// then returns nil), else a compensating record for each.
func (s *Service) settle(ctx context.Context, records []idm.AuditEvent, err error, applied func(context.Context) (bool, error)) error {
	return s.audits.Settle(ctx, records, err, applied)
}
