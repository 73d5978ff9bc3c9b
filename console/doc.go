// Package console is the staff console of idm: server-rendered HTML pages
// under /console/ for the study team (subjects, consent, enrolment links
// with their QR codes, users, the account's password and second factor,
// the audit log), working without JavaScript under a strict
// Content-Security-Policy.
//
// The console holds no rule of its own. Every action is a request to the
// API handler the host serves (Config.API), made in-process with a
// short-lived staff token of the signed-in user that never leaves the
// process; so authentication, roles and sites, validation, audit records
// and throttling are the API's, and the sign-in is POST /auth. The console
// adds server-side sessions in the store (only a hash of their random ID
// is kept), the cookie, the pages, and CSRF protection by
// [http.CrossOriginProtection].
//
// A host mounts it next to the API:
//
//	mux := idm.NewMux()
//	authH.Install(mux.Handle); usersH.Install(mux.Handle); apiH.Install(mux.Handle)
//	c, err := console.New(console.Config{Store: store, API: mux, Tokens: authH, PublicURL: publicURL})
//	c.Install(mux.Handle)
//	srv.Handler = c.SessionAuth(mux) // GET /link/{jti}/qr.png takes a console session too
package console
