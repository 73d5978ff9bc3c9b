package auditlog

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/c3-pro/idm/idm"
)

// Install registers the log's routes on a host mux: GET /audit/checkpoint,
// GET /audit/proof and GET /audit/consistency behind Config.Authenticate,
// for callers who may read the whole audit trail (see [MayRead]), and GET
// /audit/verifier for anyone. Pass e.g. mux.Handle.
func (l *Log) Install(handle func(pattern string, h http.Handler)) {
	guard := func(fn func(http.ResponseWriter, *http.Request) error) http.Handler {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := idm.PrincipalFrom(r.Context())
			var err error
			switch {
			case !ok:
				err = idm.E(idm.ErrUnauthorized, "Authorization Required")
			case !MayRead(p):
				err = idm.E(idm.ErrForbidden, "Forbidden")
			default:
				err = fn(w, r)
			}
			if err != nil {
				idm.WriteError(w, r, l.log, err)
			}
		})
		if l.authn == nil {
			return h // no principal ever: 401 (fails closed)
		}
		return l.authn(h)
	}
	handle("GET /audit/checkpoint", guard(l.serveCheckpoint))
	handle("GET /audit/proof", guard(l.serveProof))
	handle("GET /audit/consistency", guard(l.serveConsistency))
	handle("GET /audit/verifier", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = fmt.Fprintln(w, l.key.VerifierKey())
	}))
}

// MayRead reports whether p may read the whole audit trail and the log's
// checkpoints and proofs: admins and auditors (see idm.ReadAllAudits).
func MayRead(p *idm.Principal) bool { return p.May(idm.ReadAllAudits) }

// serveCheckpoint serves the latest checkpoint as a signed note.
func (l *Log) serveCheckpoint(w http.ResponseWriter, r *http.Request) error {
	c, err := l.store.LatestCheckpoint(r.Context())
	if errors.Is(err, idm.ErrNotFound) {
		return idm.Wrap(idm.ErrNotFound, "no checkpoint yet: the audit log is empty or not checkpointed yet", err)
	}
	if err != nil {
		return fmt.Errorf("latest checkpoint: %w", err)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(c.Note)
	return nil
}

// proofDoc is the answer of GET /audit/proof and /audit/consistency.
type proofDoc struct {
	Leaf  *tlog.Hash  `json:"leaf,omitempty"`
	Proof []tlog.Hash `json:"proof"`
}

// intParam reads a non-negative integer query parameter; def when absent
// (def < 0: required).
func intParam(r *http.Request, name string, def int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		if def < 0 {
			return 0, idm.E(idm.ErrInvalid, fmt.Sprintf("query parameter %q is required", name))
		}
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, idm.E(idm.ErrInvalid, fmt.Sprintf("query parameter %q must be a whole number ≥ 0", name))
	}
	return n, nil
}

// treeSize returns the size of the stored tree.
func (l *Log) treeSize(r *http.Request) (int64, error) {
	n, err := l.store.TreeSize(r.Context())
	if err != nil {
		return 0, fmt.Errorf("tree size: %w", err)
	}
	return n, nil
}

// latestSize is the size of the latest checkpoint (0 when none).
func (l *Log) latestSize(r *http.Request) (int64, error) {
	c, err := l.store.LatestCheckpoint(r.Context())
	if errors.Is(err, idm.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("latest checkpoint: %w", err)
	}
	return c.Size, nil
}

// serveProof serves GET /audit/proof?seq=N&size=M: the leaf hash of record
// N and the proof that it is in the tree of size M (default: the latest
// checkpoint's size).
func (l *Log) serveProof(w http.ResponseWriter, r *http.Request) error {
	seq, err := intParam(r, "seq", -1)
	if err != nil {
		return err
	}
	def, err := l.latestSize(r)
	if err != nil {
		return err
	}
	size, err := intParam(r, "size", def)
	if err != nil {
		return err
	}
	have, err := l.treeSize(r)
	if err != nil {
		return err
	}
	if seq >= size || size > have {
		return idm.E(idm.ErrInvalid, fmt.Sprintf("need seq < size <= %d (the tree's size)", have))
	}
	rd := storeReader(r.Context(), l.store)
	leaf, err := rd.ReadHashes([]int64{tlog.StoredHashIndex(0, seq)})
	if err != nil {
		return fmt.Errorf("leaf hash: %w", err)
	}
	p, err := tlog.ProveRecord(size, seq, rd)
	if err != nil {
		return fmt.Errorf("record proof: %w", err)
	}
	idm.WriteData(w, http.StatusOK, proofDoc{Leaf: &leaf[0], Proof: nonNil(p)})
	return nil
}

// serveConsistency serves GET /audit/consistency?old=A&new=B: the proof
// that the tree of size A is a prefix of the tree of size B (default: the
// latest checkpoint's size).
func (l *Log) serveConsistency(w http.ResponseWriter, r *http.Request) error {
	old, err := intParam(r, "old", -1)
	if err != nil {
		return err
	}
	def, err := l.latestSize(r)
	if err != nil {
		return err
	}
	newSize, err := intParam(r, "new", def)
	if err != nil {
		return err
	}
	have, err := l.treeSize(r)
	if err != nil {
		return err
	}
	if old < 1 || old > newSize || newSize > have {
		return idm.E(idm.ErrInvalid, fmt.Sprintf("need 1 <= old <= new <= %d (the tree's size)", have))
	}
	p, err := tlog.ProveTree(newSize, old, storeReader(r.Context(), l.store))
	if err != nil {
		return fmt.Errorf("consistency proof: %w", err)
	}
	idm.WriteData(w, http.StatusOK, proofDoc{Proof: nonNil(p)})
	return nil
}

func nonNil(p []tlog.Hash) []tlog.Hash {
	if p == nil {
		return []tlog.Hash{}
	}
	return p
}
