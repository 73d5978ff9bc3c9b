// Package idm is the core of the C3-PRO identity service: its domain types
// ([User], [Subject], [Link], [AuditEvent], [Principal]), the [Store]
// interfaces that every storage backend implements, the error kinds and the
// JSON envelope writers shared by all handlers, and the IDM API handler for
// subjects, enrolment links, audit trails and /establish.
//
// Package idm imports only the standard library. Concrete stores live in
// their own packages (memstore, boltstore, mongostore) and handlers for
// authentication, user management and password reset live in auth, users and
// resetflow; a host program (such as cmd/idmd) wires them together.
package idm
