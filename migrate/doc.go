// Package migrate brings the database of the original Python C3-PRO IDM
// service over into an [idm.Store], without losing data, resetting passwords
// or invalidating the QR codes that were handed out.
//
// The original keeps everything in one MongoDB collection ("c3pro_idm" by
// default, see [DefaultCollection]), with a "type" field of "user",
// "subject", "link" or "audit". [Run] reads that collection with cursors,
// one type after the other (users, subjects, links, audits, then anything
// else), and writes what it finds through the idm store interfaces:
//
//   - every record keeps its ObjectId as its ID (24 lowercase hex), so audit
//     trails, link IDs (the JWTs' "jti") and printed QR codes stay valid;
//   - users keep their bcrypt hash as it is (package auth verifies "$2b$"
//     hashes and rewrites them at the next login); usernames are stored in
//     their normal form ([idm.UsernameKey]: lower case, NFC, plain width),
//     names that collide after it are skipped and reported, names that the
//     username rule refuses come over with a note; pending reset tokens (the
//     "temporary" field, which held
//     the token in plain text) are dropped and counted;
//   - subjects keep every field as it was stored, also dates today's API
//     would refuse; other keys go to [idm.Subject.Extra] as JSON; an SSSID
//     that POST /subject would refuse is noted with the percent-encoded
//     path that reaches it, and "." and ".." (which no path can address)
//     come over as "migrated-<ID>", their links with them;
//   - links keep only the SHA-256 of their issued JWT ([idm.Link.JWTHash]),
//     by which the mobile app's token still establishes them; the old
//     per-link "secret" is never used;
//   - audit records keep their time, action and actor, and are typed by the
//     record they are about, so GET /subject/{sssid}/audits finds them;
//   - the bootstrap marker is set once an admin has come over, so that
//     /init stays closed.
//
// Records that cannot be brought over (an _id that is not an ObjectId, a
// missing required field, a field of an impossible type, an SSSID or
// username already held by another record, an unknown type) are skipped and
// listed in the [Report], never silently changed. Records whose ID already
// exists in the target are left alone (they may have changed since), so a
// migration that was interrupted can simply be run again, and a second run
// writes nothing. [Config.DryRun] reads and checks everything and writes
// nothing.
//
// A migration is meant to run once, before the new service is taken into
// use: records deleted in the target after a first run are brought over
// again by a later run.
//
// # Use
//
//	client, err := mongo.Connect(options.Client().ApplyURI(fromURI))
//	...
//	src := client.Database(fromDB).Collection(migrate.DefaultCollection)
//	rep, err := migrate.Run(ctx, migrate.Config{
//		Source:   src,
//		Target:   store, // any idm.Store
//		DryRun:   dryRun,
//		Progress: os.Stderr,
//		Logger:   logger,
//	})
//	fmt.Print(rep) // per-type counts, the skipped records and notes
//	if err != nil { ... } // the source or target failed; rep holds what was done
package migrate
