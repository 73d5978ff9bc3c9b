// Package users owns the lifecycle of users: [Service] creates, deletes
// and changes them, with one set of rules and side effects, for every
// caller (the handler here, the reset flow of package resetflow, the idmd
// command line). It also serves the one-time bootstrap page /init and the
// staff user management API under /user, which call the Service.
//
// GET /init shows an HTML form (fields username and password) while no admin
// exists and the store's one-time bootstrap marker is unset; POST /init (a
// form, or JSON {"username","password"}) wins that marker and creates the
// account as an admin. Exactly one bootstrap ever succeeds, also when many
// requests race, and across several processes sharing one store. Afterwards
// /init answers "already initialised" and changes nothing.
//
// The /user endpoints (create, list, read, update, delete) need a staff
// token: the host passes the middleware that checks it (package auth's
// Require) in [Config.Authenticate]. User management is for admins; a user may
// read their own record and change their own password, which takes their
// current password (admins too: a stolen token alone must not take an
// account over). Every change to a user is recorded in the audit trail
// before it is made, and revokes the user's tokens and their reset and
// invitation links.
//
// A host mounts the handler as a whole or registers its routes on its own
// mux with [Handler.Install]:
//
//	h, err := users.New(users.Config{
//		Store:     store,
//		Passwords: passwords,        // *auth.Passwords
//		Authenticate:   authH.Require,    // the staff-token middleware
//	})
//	if err != nil {
//		return err
//	}
//	h.Install(mux.Handle)
//
// With the reset flow, one Service serves both, and mails through the flow:
//
//	accounts, err := users.NewService(users.ServiceConfig{Store: store, Passwords: passwords})
//	reset, err := resetflow.New(resetflow.Config{Store: store, Accounts: accounts, ...})
//	accounts.SetMail(reset, reset) // invitations and password-changed notices
//	h, err := users.New(users.Config{Store: store, Passwords: passwords, Accounts: accounts, Authenticate: authH.Require})
package users
