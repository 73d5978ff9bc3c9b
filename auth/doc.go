// Package auth authenticates the study staff of the identity service:
// password hashing and policy ([Passwords]), signing keys ([KeySet],
// [LoadOrCreateKeys]), staff and enrolment-link JWTs (with
// github.com/golang-jwt/jwt/v5), the endpoints POST /auth, POST /logout and
// GET /.well-known/jwks.json, the [Handler.Require] middleware that puts an
// *idm.Principal into the request context, and throttling: per-account
// login-failure counters kept in the store, and per-client-address token
// buckets ([AddressLimiter]) that other handlers reuse.
//
// A host wires it like this:
//
//	keys, err := auth.LoadOrCreateKeys(ctx, store, time.Now())
//	authH, err := auth.New(auth.Config{Store: store, Keys: keys, Logger: log})
//	mux := idm.NewMux()
//	authH.Install(mux.Handle)                  // POST /auth, POST /logout, JWKS
//	mux.Handle("/", authH.Require(idmHandler)) // staff endpoints
//
// # Passwords
//
// New hashes are bcrypt (cost 12 by default) of the base64 SHA-256 of the
// NFC-normalised password, marked with [SchemePrefix], so that every byte of
// a long password counts. Hashes of the original Python service ("$2b$12$",
// bcrypt of the raw password) verify as they are and are rewritten in the
// current scheme at the next successful login, as are hashes below the
// configured cost. Hashing runs on a bounded pool of workers, one per core,
// on threads of lowered priority, so that a flood of logins takes only the
// CPU time that other requests leave.
// The policy ([Passwords.Check]) asks for 8 to 128 characters and refuses
// the 10 000 most common passwords (commonpasswords.txt, embedded; see
// README.md for its source and licence).
//
// # Tokens
//
// Staff tokens carry sub and identity (the user ID), iat, nbf, exp, iss,
// aud, jti and ver (the user's token version); raising a user's token
// version revokes all their earlier tokens. Verification pins the
// algorithm to the key named by the kid header, requires exp, checks iss
// and aud with at most 30 s of leeway, and refuses jku, jwk, x5u and x5c
// headers. Link tokens are HS256 (the mobile app verifies them with the
// secret of its build) and signed with their own keys ([Config.LinkKeys],
// which may be weak), have the link audience and no ver: neither kind
// passes for the other, and a link key never verifies a staff token. A staff token that passed is remembered, so that
// its next uses skip decoding and signature checking; its time claims are
// checked on every use, and so is its user (revocation takes effect at the
// next request).
//
// # Throttling
//
// After MaxFailures (5) failed logins of one account within FailureWindow
// (15 min), POST /auth answers 429 with Retry-After for that account, known
// or not, even for the right password, until the window ends; a successful
// login resets the count and an admin's unlock (package users) clears it. Each client address
// has a token bucket (20, refilled at 1 per second) as a flood guard.
package auth
