package main

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/c3-pro/idm/idm"
)

// observedStore counts the store's failures by operation: errors other than
// the outcomes a store reports by design (not found, conflict, stale
// revision, invalid argument), such as an unreachable database or a full
// disk.
type observedStore struct {
	idm.Store
	errors *prometheus.CounterVec
}

var _ idm.Store = (*observedStore)(nil)

// seen counts err when it is a failure and returns it unchanged.
func (o *observedStore) seen(op string, err error) error {
	if err != nil && !errors.Is(err, idm.ErrNotFound) && !errors.Is(err, idm.ErrConflict) && !errors.Is(err, idm.ErrInvalid) {
		o.errors.WithLabelValues(op).Inc()
	}
	return err
}

// CreateUser implements [idm.Store], counting failures.
func (o *observedStore) CreateUser(ctx context.Context, u idm.User) error {
	return o.seen("CreateUser", o.Store.CreateUser(ctx, u))
}

// FindUserByID implements [idm.Store], counting failures.
func (o *observedStore) FindUserByID(ctx context.Context, id string) (idm.User, error) {
	v, err := o.Store.FindUserByID(ctx, id)
	return v, o.seen("FindUserByID", err)
}

// FindUserByUsername implements [idm.Store], counting failures.
func (o *observedStore) FindUserByUsername(ctx context.Context, username string) (idm.User, error) {
	v, err := o.Store.FindUserByUsername(ctx, username)
	return v, o.seen("FindUserByUsername", err)
}

// UpdateUser implements [idm.Store], counting failures.
func (o *observedStore) UpdateUser(ctx context.Context, u idm.User) error {
	return o.seen("UpdateUser", o.Store.UpdateUser(ctx, u))
}

// AcceptTOTPStep implements [idm.Store], counting failures.
func (o *observedStore) AcceptTOTPStep(ctx context.Context, id string, step int64) error {
	return o.seen("AcceptTOTPStep", o.Store.AcceptTOTPStep(ctx, id, step))
}

// ConsumeTOTPRecovery implements [idm.Store], counting failures.
func (o *observedStore) ConsumeTOTPRecovery(ctx context.Context, id, hash string) error {
	return o.seen("ConsumeTOTPRecovery", o.Store.ConsumeTOTPRecovery(ctx, id, hash))
}

// DeleteUser implements [idm.Store], counting failures.
func (o *observedStore) DeleteUser(ctx context.Context, id string) error {
	return o.seen("DeleteUser", o.Store.DeleteUser(ctx, id))
}

// ListUsers implements [idm.Store], counting failures.
func (o *observedStore) ListUsers(ctx context.Context, f idm.UserFilter) ([]idm.User, int, error) {
	v, n, err := o.Store.ListUsers(ctx, f)
	return v, n, o.seen("ListUsers", err)
}

// CountAdmins implements [idm.Store], counting failures.
func (o *observedStore) CountAdmins(ctx context.Context) (int, error) {
	v, err := o.Store.CountAdmins(ctx)
	return v, o.seen("CountAdmins", err)
}

// CreateSubject implements [idm.Store], counting failures.
func (o *observedStore) CreateSubject(ctx context.Context, s idm.Subject) error {
	return o.seen("CreateSubject", o.Store.CreateSubject(ctx, s))
}

// FindSubject implements [idm.Store], counting failures.
func (o *observedStore) FindSubject(ctx context.Context, sssid string) (idm.Subject, error) {
	v, err := o.Store.FindSubject(ctx, sssid)
	return v, o.seen("FindSubject", err)
}

// UpdateSubject implements [idm.Store], counting failures.
func (o *observedStore) UpdateSubject(ctx context.Context, s idm.Subject) error {
	return o.seen("UpdateSubject", o.Store.UpdateSubject(ctx, s))
}

// DeleteSubject implements [idm.Store], counting failures.
func (o *observedStore) DeleteSubject(ctx context.Context, sssid string) error {
	return o.seen("DeleteSubject", o.Store.DeleteSubject(ctx, sssid))
}

// ListSubjects implements [idm.Store], counting failures.
func (o *observedStore) ListSubjects(ctx context.Context, f idm.SubjectFilter) ([]idm.Subject, int, error) {
	v, n, err := o.Store.ListSubjects(ctx, f)
	return v, n, o.seen("ListSubjects", err)
}

// CreateLink implements [idm.Store], counting failures.
func (o *observedStore) CreateLink(ctx context.Context, l idm.Link) error {
	return o.seen("CreateLink", o.Store.CreateLink(ctx, l))
}

// FindLink implements [idm.Store], counting failures.
func (o *observedStore) FindLink(ctx context.Context, id string) (idm.Link, error) {
	v, err := o.Store.FindLink(ctx, id)
	return v, o.seen("FindLink", err)
}

// FindLinkByJWTHash implements [idm.Store], counting failures.
func (o *observedStore) FindLinkByJWTHash(ctx context.Context, hash string) (idm.Link, error) {
	v, err := o.Store.FindLinkByJWTHash(ctx, hash)
	return v, o.seen("FindLinkByJWTHash", err)
}

// UpdateLink implements [idm.Store], counting failures.
func (o *observedStore) UpdateLink(ctx context.Context, l idm.Link) error {
	return o.seen("UpdateLink", o.Store.UpdateLink(ctx, l))
}

// DeleteLink implements [idm.Store], counting failures.
func (o *observedStore) DeleteLink(ctx context.Context, id string) error {
	return o.seen("DeleteLink", o.Store.DeleteLink(ctx, id))
}

// LinksForSubjects implements [idm.Store], counting failures.
func (o *observedStore) LinksForSubjects(ctx context.Context, sssids ...string) ([]idm.Link, error) {
	v, err := o.Store.LinksForSubjects(ctx, sssids...)
	return v, o.seen("LinksForSubjects", err)
}

// EstablishLink implements [idm.Store], counting failures.
func (o *observedStore) EstablishLink(ctx context.Context, id, linkedTo, system string, on time.Time) (idm.Link, error) {
	v, err := o.Store.EstablishLink(ctx, id, linkedTo, system, on)
	return v, o.seen("EstablishLink", err)
}

// AppendAudit implements [idm.Store], counting failures.
func (o *observedStore) AppendAudit(ctx context.Context, e idm.AuditEvent) error {
	return o.seen("AppendAudit", o.Store.AppendAudit(ctx, e))
}

// AuditsFor implements [idm.Store], counting failures.
func (o *observedStore) AuditsFor(ctx context.Context, documents ...string) ([]idm.AuditEvent, error) {
	v, err := o.Store.AuditsFor(ctx, documents...)
	return v, o.seen("AuditsFor", err)
}

// ListAudits implements [idm.Store], counting failures.
func (o *observedStore) ListAudits(ctx context.Context, f idm.AuditFilter) ([]idm.AuditEvent, int, error) {
	v, n, err := o.Store.ListAudits(ctx, f)
	return v, n, o.seen("ListAudits", err)
}

// CreateResetToken implements [idm.Store], counting failures.
func (o *observedStore) CreateResetToken(ctx context.Context, t idm.ResetToken) error {
	return o.seen("CreateResetToken", o.Store.CreateResetToken(ctx, t))
}

// FindResetToken implements [idm.Store], counting failures.
func (o *observedStore) FindResetToken(ctx context.Context, hash string, now time.Time) (idm.ResetToken, error) {
	v, err := o.Store.FindResetToken(ctx, hash, now)
	return v, o.seen("FindResetToken", err)
}

// ConsumeResetToken implements [idm.Store], counting failures.
func (o *observedStore) ConsumeResetToken(ctx context.Context, hash string, now time.Time) (idm.ResetToken, error) {
	v, err := o.Store.ConsumeResetToken(ctx, hash, now)
	return v, o.seen("ConsumeResetToken", err)
}

// DeleteResetTokens implements [idm.Store], counting failures.
func (o *observedStore) DeleteResetTokens(ctx context.Context, userID string) error {
	return o.seen("DeleteResetTokens", o.Store.DeleteResetTokens(ctx, userID))
}

// CountResetTokens implements [idm.Store], counting failures.
func (o *observedStore) CountResetTokens(ctx context.Context, userID string, since time.Time) (int, error) {
	v, err := o.Store.CountResetTokens(ctx, userID, since)
	return v, o.seen("CountResetTokens", err)
}

// PurgeExpiredResetTokens implements [idm.Store], counting failures.
func (o *observedStore) PurgeExpiredResetTokens(ctx context.Context, now time.Time) (int, error) {
	v, err := o.Store.PurgeExpiredResetTokens(ctx, now)
	return v, o.seen("PurgeExpiredResetTokens", err)
}

// CreateSession implements [idm.Store], counting failures.
func (o *observedStore) CreateSession(ctx context.Context, x idm.Session) error {
	return o.seen("CreateSession", o.Store.CreateSession(ctx, x))
}

// FindSession implements [idm.Store], counting failures.
func (o *observedStore) FindSession(ctx context.Context, idHash string) (idm.Session, error) {
	v, err := o.Store.FindSession(ctx, idHash)
	return v, o.seen("FindSession", err)
}

// TouchSession implements [idm.Store], counting failures.
func (o *observedStore) TouchSession(ctx context.Context, idHash string, at time.Time) error {
	return o.seen("TouchSession", o.Store.TouchSession(ctx, idHash, at))
}

// DeleteSession implements [idm.Store], counting failures.
func (o *observedStore) DeleteSession(ctx context.Context, idHash string) error {
	return o.seen("DeleteSession", o.Store.DeleteSession(ctx, idHash))
}

// DeleteUserSessions implements [idm.Store], counting failures.
func (o *observedStore) DeleteUserSessions(ctx context.Context, userID string) (int, error) {
	v, err := o.Store.DeleteUserSessions(ctx, userID)
	return v, o.seen("DeleteUserSessions", err)
}

// PurgeSessions implements [idm.Store], counting failures.
func (o *observedStore) PurgeSessions(ctx context.Context, idleBefore, now time.Time) (int, error) {
	v, err := o.Store.PurgeSessions(ctx, idleBefore, now)
	return v, o.seen("PurgeSessions", err)
}

// CreateSigningKey implements [idm.Store], counting failures.
func (o *observedStore) CreateSigningKey(ctx context.Context, k idm.SigningKey) error {
	return o.seen("CreateSigningKey", o.Store.CreateSigningKey(ctx, k))
}

// FindSigningKey implements [idm.Store], counting failures.
func (o *observedStore) FindSigningKey(ctx context.Context, name string) (idm.SigningKey, error) {
	v, err := o.Store.FindSigningKey(ctx, name)
	return v, o.seen("FindSigningKey", err)
}

// MarkBootstrapped implements [idm.Store], counting failures.
func (o *observedStore) MarkBootstrapped(ctx context.Context, at time.Time) error {
	return o.seen("MarkBootstrapped", o.Store.MarkBootstrapped(ctx, at))
}

// Bootstrapped implements [idm.Store], counting failures.
func (o *observedStore) Bootstrapped(ctx context.Context) (bool, error) {
	v, err := o.Store.Bootstrapped(ctx)
	return v, o.seen("Bootstrapped", err)
}

// RecordLoginFailure implements [idm.Store], counting failures.
func (o *observedStore) RecordLoginFailure(ctx context.Context, key string, now time.Time, window time.Duration) (idm.LoginFailures, error) {
	v, err := o.Store.RecordLoginFailure(ctx, key, now, window)
	return v, o.seen("RecordLoginFailure", err)
}

// ReserveLoginAttempt implements [idm.Store], counting failures.
func (o *observedStore) ReserveLoginAttempt(ctx context.Context, key string, now time.Time, window time.Duration, max int) (idm.LoginFailures, bool, error) {
	v, ok, err := o.Store.ReserveLoginAttempt(ctx, key, now, window, max)
	return v, ok, o.seen("ReserveLoginAttempt", err)
}

// LoginFailures implements [idm.Store], counting failures.
func (o *observedStore) LoginFailures(ctx context.Context, key string) (idm.LoginFailures, error) {
	v, err := o.Store.LoginFailures(ctx, key)
	return v, o.seen("LoginFailures", err)
}

// ResetLoginFailures implements [idm.Store], counting failures.
func (o *observedStore) ResetLoginFailures(ctx context.Context, key string) error {
	return o.seen("ResetLoginFailures", o.Store.ResetLoginFailures(ctx, key))
}

// PurgeLoginFailures implements [idm.Store], counting failures.
func (o *observedStore) PurgeLoginFailures(ctx context.Context, before time.Time) (int, error) {
	v, err := o.Store.PurgeLoginFailures(ctx, before)
	return v, o.seen("PurgeLoginFailures", err)
}

// Ping implements [idm.Store], counting failures.
func (o *observedStore) Ping(ctx context.Context) error {
	return o.seen("Ping", o.Store.Ping(ctx))
}
