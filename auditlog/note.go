package auditlog

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/c3-pro/idm/idm"
)

// KeyName is the name of the checkpoint signing key that [LoadOrCreateKey]
// generates, and the name under which it keeps the key in the store.
const KeyName = "idm-audit-log"

// keyAlg marks the stored signing key of the log in the key store.
const keyAlg = "note-ed25519"

// DefaultOrigin is the first line of a checkpoint's text.
const DefaultOrigin = "idm audit log"

// Key is the checkpoint signing key: a note signer and its verifier key.
type Key struct {
	signer   note.Signer
	verifier note.Verifier
	vkey     string
}

// ParseKey returns the key of a note signer key ("PRIVATE+KEY+name+hash+…",
// as note.GenerateKey writes it; Ed25519 only), such as the content of
// IDM_AUDIT_KEY_FILE.
func ParseKey(skey string) (*Key, error) {
	skey = strings.TrimSpace(skey)
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("auditlog: the signing key is not a note signer key: %w", err)
	}
	// PRIVATE+KEY+<name>+<hash>+<base64 of the algorithm byte and seed>
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 {
		return nil, errors.New("auditlog: the signing key is not a note signer key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return nil, errors.New("auditlog: the signing key is not an Ed25519 note signer key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(signer.Name(), pub)
	if err != nil {
		return nil, fmt.Errorf("auditlog: the verifier key: %w", err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("auditlog: the verifier key: %w", err)
	}
	return &Key{signer: signer, verifier: verifier, vkey: vkey}, nil
}

// GenerateKey returns a new signer key string for [ParseKey].
func GenerateKey() (string, error) {
	skey, _, err := note.GenerateKey(rand.Reader, KeyName)
	return skey, err
}

// VerifierKey returns the note verifier key of the log, as served at GET
// /audit/verifier: what an auditor needs to check checkpoints and exports.
func (k *Key) VerifierKey() string { return k.vkey }

// LoadOrCreateKey returns the checkpoint signing key kept in store under
// [KeyName], generating it first if there is none; of several instances
// starting at once exactly one creates it.
func LoadOrCreateKey(ctx context.Context, store idm.KeyStore, now time.Time) (*Key, error) {
	sk, err := store.FindSigningKey(ctx, KeyName)
	if errors.Is(err, idm.ErrNotFound) {
		skey, gerr := GenerateKey()
		if gerr != nil {
			return nil, gerr
		}
		sk = idm.SigningKey{Name: KeyName, Alg: keyAlg, Secret: []byte(skey), Created: idm.Timestamp(now)}
		err = store.CreateSigningKey(ctx, sk)
		if errors.Is(err, idm.ErrConflict) {
			sk, err = store.FindSigningKey(ctx, KeyName)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("auditlog: loading the checkpoint key: %w", err)
	}
	if sk.Alg != keyAlg {
		return nil, fmt.Errorf("auditlog: the stored key %q is not a checkpoint key (%s)", KeyName, sk.Alg)
	}
	return ParseKey(string(sk.Secret))
}

// tree is a tree note: the log's origin, size and root.
type tree struct {
	origin string
	size   int64
	root   tlog.Hash
}

// text returns the tree note's text: origin, size and base64 root, each on
// a line of its own.
func (t tree) text() string {
	return fmt.Sprintf("%s\n%d\n%s\n", t.origin, t.size, t.root)
}

// parseTree parses a tree note's text.
func parseTree(text string) (tree, error) {
	lines := strings.SplitAfter(text, "\n")
	if len(lines) != 4 || lines[3] != "" || !strings.HasSuffix(lines[2], "\n") {
		return tree{}, errors.New("not a tree note of three lines")
	}
	size, err := strconv.ParseInt(strings.TrimSuffix(lines[1], "\n"), 10, 64)
	if err != nil || size < 0 {
		return tree{}, fmt.Errorf("bad tree size %q", strings.TrimSuffix(lines[1], "\n"))
	}
	root, err := tlog.ParseHash(strings.TrimSuffix(lines[2], "\n"))
	if err != nil {
		return tree{}, fmt.Errorf("bad root hash: %w", err)
	}
	return tree{origin: strings.TrimSuffix(lines[0], "\n"), size: size, root: root}, nil
}

// sign returns the signed checkpoint note of t.
func (k *Key) sign(t tree) ([]byte, error) {
	return note.Sign(&note.Note{Text: t.text()}, k.signer)
}

// openCheckpoint checks a signed checkpoint note with the verifier and
// returns its tree.
func openCheckpoint(msg []byte, v note.Verifier) (tree, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return tree{}, err
	}
	return parseTree(n.Text)
}

// newVerifier parses a verifier key.
func newVerifier(vkey string) (note.Verifier, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return nil, fmt.Errorf("auditlog: the verifier key: %w", err)
	}
	return v, nil
}

// leafHash is the leaf of a record.
func leafHash(e idm.AuditEvent) tlog.Hash { return tlog.RecordHash(idm.CanonicalAudit(e)) }

func hashesOf(hs [][32]byte) []tlog.Hash {
	out := make([]tlog.Hash, len(hs))
	for i, h := range hs {
		out[i] = tlog.Hash(h)
	}
	return out
}

func rawHashes(hs []tlog.Hash) [][32]byte {
	out := make([][32]byte, len(hs))
	for i, h := range hs {
		out[i] = [32]byte(h)
	}
	return out
}
