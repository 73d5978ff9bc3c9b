// Package auditlog makes the audit trail tamper-evident, the way the Go
// checksum database and Certificate Transparency do: the audit records, in
// the order of their Seq, are the leaves of an append-only Merkle tree
// (golang.org/x/mod/sumdb/tlog; leaf hash = tlog.RecordHash of
// [idm.CanonicalAudit]), whose hashes the store keeps beside the records,
// and the tree's size and root are signed from time to time as checkpoints
// (golang.org/x/mod/sumdb/note, Ed25519).
//
// A [Log] extends the stored tree from the records ([Log.Sync]) and writes
// a checkpoint at most every Config.Interval after appends ([Log.Run]); it
// serves GET /audit/checkpoint, GET /audit/verifier, GET /audit/proof and
// GET /audit/consistency ([Log.Install]). Records are appended by the
// handlers through the store as before; the tree follows them in the
// background, so appending costs no more than the store's write, and a
// record written just before a crash enters the tree when the service
// starts again.
//
// [Verify] recomputes the whole tree from the store and checks every leaf,
// every stored hash, and every checkpoint's signature and root; the first
// record or checkpoint that does not match is named in a [*Error].
// [Export] writes the records with the latest checkpoint, and
// [VerifyExport] checks such an export offline against the published
// verifier key. [Erase] replaces a subject's personal data in the subject
// and its audit records (GDPR Art. 17) and appends an erasure record that
// names the erased records and keeps their leaf hashes, so that the log
// stays verifiable.
package auditlog
