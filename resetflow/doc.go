// Package resetflow lets staff users set a new password through a one-time
// link sent by email ("forgot password"), and sends invitation links and
// "your password was changed" notices for package users.
//
// The [Handler] serves four routes (see API.md, "Password reset"):
//
//   - GET /iforgot: a form asking for the username (an email address).
//   - POST /iforgot (form field username, or JSON {"username"}): always the
//     same answer, a page "if the address is known, a link is on its way"
//     or JSON 202, whether or not the user exists. For a known, enabled user
//     a background job stores a token (32 bytes from crypto/rand; only its
//     SHA-256 is kept, see [HashToken]) that replaces the user's older ones,
//     and mails the link <PublicURL>/reset?k=<token>.
//   - GET /reset?k=<token>: a form with two password fields; it does not
//     consume the token (mail scanners follow links).
//   - POST /reset (form key, pass1, pass2, or JSON {"key","password"}):
//     checks the link, the two fields and the password policy, then consumes
//     the token atomically, sets the password, raises the user's token
//     version (revoking their staff tokens) and mails a notice.
//
// Every token failure is answered with the one message "invalid or expired
// link". Pages are html/template with an inline stylesheet allowed by a CSP
// hash; cross-origin POSTs are refused with 403 by
// [http.CrossOriginProtection]. Mail goes through a [Mailer]; [SMTPMailer]
// sends it through an SMTP server:
//
//	mailer, err := resetflow.NewSMTPMailer("smtp://user:pass@mail.example.org:587", "IDM <idm@example.org>")
//	accounts, err := users.NewService(users.ServiceConfig{Store: store, Passwords: authH.Passwords()})
//	reset, err := resetflow.New(resetflow.Config{
//		Store: store, Accounts: accounts, Passwords: authH.Passwords(), Mailer: mailer,
//		PublicURL: "https://idm.example.org", Limiter: limiter,
//	})
//	accounts.SetMail(reset, reset) // invitations and notices of /user
//	reset.Install(mux.Handle)
//	defer reset.Close() // lets mails being sent finish
package resetflow
