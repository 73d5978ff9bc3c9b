package auditlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/c3-pro/idm/idm"
)

// Error is a verification failure: the first record (Seq ≥ 0) or checkpoint
// (Checkpoint > 0, its size) that does not match, and why.
type Error struct {
	Seq        int64 // -1 when the failure is not about one record
	Checkpoint int64 // 0 when the failure is not about a checkpoint
	Reason     string
}

// Error implements error.
func (e *Error) Error() string {
	switch {
	case e.Seq >= 0:
		return fmt.Sprintf("record seq %d: %s", e.Seq, e.Reason)
	case e.Checkpoint > 0:
		return fmt.Sprintf("checkpoint of size %d: %s", e.Checkpoint, e.Reason)
	}
	return e.Reason
}

func recordError(seq int64, format string, args ...any) *Error {
	return &Error{Seq: seq, Reason: fmt.Sprintf(format, args...)}
}

func checkpointError(size int64, format string, args ...any) *Error {
	return &Error{Seq: -1, Checkpoint: size, Reason: fmt.Sprintf(format, args...)}
}

// Report is what a successful verification found.
type Report struct {
	Records     int64     // records checked: seq 0 … Records-1
	Checkpoints int       // checkpoints whose signature, root and consistency were checked
	Root        tlog.Hash // the root of the tree of all Records
	Erased      []Erased  // records erased (GDPR Art. 17), each named by a later erasure record
}

// String is the one summary line of `idmd audit verify`.
func (r Report) String() string {
	s := fmt.Sprintf("ok: %d records, %d checkpoints, root %s", r.Records, r.Checkpoints, r.Root)
	if len(r.Erased) > 0 {
		s += fmt.Sprintf(", %d erased", len(r.Erased))
	}
	return s
}

// Erased describes an erased record.
type Erased struct {
	Seq    int64     // the erased record
	By     string    // who erased it (the erasure record's actor)
	At     time.Time // when
	Reason string
	Record int64 // the seq of the erasure record
}

// erasureAction starts the action of an erasure record.
const erasureAction = "erase"

// erasureDoc is the New value of an erasure record.
type erasureDoc struct {
	SSSID  string         `json:"sssid"`
	Reason string         `json:"reason"`
	Erased []erasedRecord `json:"erased"`
}

type erasedRecord struct {
	Seq  int64     `json:"seq"`
	Leaf tlog.Hash `json:"leaf"` // the record's leaf in the tree
	// Now is the leaf hash of the record as erased, so that an erased
	// record stays tamper-evident.
	Now tlog.Hash `json:"now"`
}

// pendingLeaf is a record whose content does not give its leaf in the
// tree: its leaf there, the leaf of its content, its document, and whether
// its content is erased (holds no personal data that erasure would
// replace), which an erased record's must be.
type pendingLeaf struct {
	tree, content tlog.Hash
	doc           string
	erased        bool
}

// namedLeaf is what an erasure record says of a record it erased, and the
// document (the subject) the erasure record is about.
type namedLeaf struct {
	tree, now tlog.Hash
	doc       string
	info      Erased
}

// erasureOf returns the erasure a record states, if it is an erasure record.
func erasureOf(e idm.AuditEvent) (erasureDoc, bool) {
	if e.DocType != idm.DocSubject || !strings.HasPrefix(e.Action, erasureAction+":") {
		return erasureDoc{}, false
	}
	var d erasureDoc
	if err := json.Unmarshal(e.New, &d); err != nil || len(d.Erased) == 0 {
		return erasureDoc{}, false
	}
	return d, true
}

// checker recomputes the tree from records given in seq order.
type checker struct {
	hashes  []tlog.Hash // every stored hash of the tree so far, by index
	n       int64
	pending map[int64]pendingLeaf // erased if a later record names them
	named   map[int64]namedLeaf
	erased  []Erased
}

func newChecker() *checker {
	return &checker{pending: map[int64]pendingLeaf{}, named: map[int64]namedLeaf{}}
}

// name records what an erasure record e says.
func (c *checker) name(e idm.AuditEvent, d erasureDoc) {
	for _, x := range d.Erased {
		info := Erased{Seq: x.Seq, By: e.Actor, At: e.Time, Reason: d.Reason, Record: e.Seq}
		c.named[x.Seq] = namedLeaf{tree: x.Leaf, now: x.Now, doc: e.Document, info: info}
		c.erased = append(c.erased, info)
	}
}

func (c *checker) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(c.hashes)) {
			return nil, fmt.Errorf("tree hash %d not computed", x)
		}
		out[i] = c.hashes[x]
	}
	return out, nil
}

// add adds the next record. expected, when known, is the leaf that the
// tree holds for it (the stored one, or the one in an export); a record
// whose content gives another leaf is taken with the expected leaf only if
// a later erasure record names it with that leaf (see finish).
func (c *checker) add(e idm.AuditEvent, expected *tlog.Hash) error {
	if e.Seq != c.n {
		if e.Seq > c.n {
			return recordError(c.n, "missing or out of place (the record found there has seq %d)", e.Seq)
		}
		return recordError(e.Seq, "appears twice, or out of order (expected seq %d)", c.n)
	}
	leaf, err := c.judge(e, expected)
	if err != nil {
		return err
	}
	hs, err := tlog.StoredHashesForRecordHash(c.n, leaf, c)
	if err != nil {
		return recordError(e.Seq, "hashing: %v", err)
	}
	c.hashes = append(c.hashes, hs...)
	c.n++
	return nil
}

// judge takes what a record says beyond its leaf, and returns the leaf to
// use for it. tree, when known, is the leaf the tree holds for the record.
// A record whose content gives another leaf is pending: it passes only if a
// later erasure record names it with both leaves (see explained). An
// erasure record names the records it erased only if it is genuine itself
// (its content gives its leaf) and names records before it.
func (c *checker) judge(e idm.AuditEvent, tree *tlog.Hash) (tlog.Hash, error) {
	leaf := leafHash(e)
	genuine := tree == nil || *tree == leaf
	if !genuine {
		c.pending[e.Seq] = pendingLeaf{
			tree: *tree, content: leaf, doc: e.Document,
			erased: e.DocType == idm.DocSubject && leafHash(tombstoned(e)) == leaf,
		}
		leaf = *tree
	}
	if d, ok := erasureOf(e); ok && genuine {
		for _, x := range d.Erased {
			if x.Seq >= e.Seq || x.Seq < 0 {
				return leaf, recordError(e.Seq, "erasure record names seq %d, which is not before it", x.Seq)
			}
		}
		c.name(e, d)
	}
	return leaf, nil
}

// root returns the root of the tree of size n ≤ the records added.
func (c *checker) root(n int64) (tlog.Hash, error) { return tlog.TreeHash(n, c) }

// explained checks the records whose content did not give their leaf:
// each must be named, with both leaves, by a later erasure record about its
// document, and its content must be erased (so that an erasure record can
// only ever blank personal data, never rewrite history).
func (c *checker) explained() error {
	first := int64(-1)
	for seq, p := range c.pending {
		if n, ok := c.named[seq]; ok && n.tree == p.tree && n.now == p.content && n.doc == p.doc && p.erased {
			continue
		}
		if first < 0 || seq < first {
			first = seq
		}
	}
	if first >= 0 {
		return recordError(first, "its content does not match its leaf in the tree (changed, swapped or inserted)")
	}
	return nil
}

// checkCheckpoint checks a checkpoint's signature and its root against the
// recomputed tree (which holds at least its size).
func (c *checker) checkCheckpoint(cp idm.Checkpoint, v note.Verifier) error {
	t, err := openCheckpoint(cp.Note, v)
	if err != nil {
		var unknown *note.UnknownVerifierError
		if errors.As(err, &unknown) {
			return checkpointError(cp.Size, "not signed by the log's key (%v)", err)
		}
		return checkpointError(cp.Size, "signature does not verify: %v", err)
	}
	if t.size != cp.Size {
		return checkpointError(cp.Size, "its note is for size %d", t.size)
	}
	if t.size > c.n {
		return checkpointError(cp.Size, "covers %d records, but the log has %d", t.size, c.n)
	}
	root, err := c.root(t.size)
	if err != nil {
		return checkpointError(cp.Size, "root: %v", err)
	}
	if root != t.root {
		return checkpointError(cp.Size, "its root %s is not the root %s of the records", t.root, root)
	}
	return nil
}

// checkConsistency proves with the recomputed tree that the tree of old is
// a prefix of the tree of newSize, and checks the proof against both roots.
func (c *checker) checkConsistency(old, newSize idm.Checkpoint) error {
	if old.Size == 0 || old.Size == newSize.Size {
		return nil
	}
	p, err := tlog.ProveTree(newSize.Size, old.Size, c)
	if err != nil {
		return checkpointError(newSize.Size, "consistency proof from size %d: %v", old.Size, err)
	}
	oldRoot, err1 := c.root(old.Size)
	newRoot, err2 := c.root(newSize.Size)
	if err := errors.Join(err1, err2); err != nil {
		return checkpointError(newSize.Size, "roots: %v", err)
	}
	if err := tlog.CheckTree(p, newSize.Size, newRoot, old.Size, oldRoot); err != nil {
		return checkpointError(newSize.Size, "not consistent with the checkpoint of size %d: %v", old.Size, err)
	}
	return nil
}

// VerifyStore is what [Verify] reads.
type VerifyStore interface {
	idm.AuditLogStore
	ListAudits(ctx context.Context, f idm.AuditFilter) ([]idm.AuditEvent, int, error)
}

// RecordCounter is implemented by a store whose ListAudits total comes
// from counts kept beside the records: CountAuditRecords counts the stored
// audit records themselves, whatever any index or count says, so that
// [Verify] finds a record written around them.
type RecordCounter interface {
	CountAuditRecords(ctx context.Context) (int64, error)
}

// verifyBatch is how many records Verify reads per store round trip.
const verifyBatch = 5000

// Verify recomputes the audit log's tree from every record in store and
// checks it against the stored tree hashes and every stored checkpoint
// (signature with vkey, root, and consistency with the next). progress, if
// not nil, is called after each batch with the records checked and the
// total. The first record or checkpoint that does not match is named in an
// [*Error]; an error of the store is returned as it is.
func Verify(ctx context.Context, store VerifyStore, vkey string, progress func(done, total int64)) (Report, error) {
	v, err := newVerifier(vkey)
	if err != nil {
		return Report{}, err
	}
	count, err := store.AuditCount(ctx)
	if err != nil {
		return Report{}, err
	}
	treeSize, err := store.TreeSize(ctx)
	if err != nil {
		return Report{}, err
	}
	cps, err := store.Checkpoints(ctx)
	if err != nil {
		return Report{}, err
	}
	c := newChecker()
	next := 0 // the next checkpoint to check
	var prev idm.Checkpoint
	checkUpTo := func(n int64) error {
		for next < len(cps) && cps[next].Size <= n {
			if err := c.checkCheckpoint(cps[next], v); err != nil {
				if perr := c.explained(); perr != nil {
					return perr
				}
				return err
			}
			if err := c.checkConsistency(prev, cps[next]); err != nil {
				return err
			}
			prev = cps[next]
			next++
		}
		return nil
	}
	for from := int64(0); from < count; from += verifyBatch {
		to := min(count, from+verifyBatch)
		records, err := store.AuditsBySeq(ctx, from, to)
		if err != nil {
			var bad *idm.BadAuditRecordError
			if errors.As(err, &bad) {
				return Report{}, recordError(bad.Seq, "cannot be read: its stored bytes are not a valid record")
			}
			return Report{}, err
		}
		stored, err := storedHashes(ctx, store, from, min(to, treeSize))
		if err != nil {
			return Report{}, err
		}
		hashStart := int64(len(c.hashes))
		for _, e := range records {
			var expected *tlog.Hash
			if e.Seq >= from && e.Seq < min(to, treeSize) {
				h := stored[tlog.StoredHashIndex(0, e.Seq)-tlog.StoredHashCount(from)]
				expected = &h
			}
			if err := c.add(e, expected); err != nil {
				return Report{}, err
			}
		}
		if c.n < to {
			return Report{}, recordError(c.n, "missing")
		}
		// Every stored hash of these records must be the recomputed one.
		for i, h := range stored {
			if x := hashStart + int64(i); c.hashes[x] != h {
				level, n := tlog.SplitStoredHashIndex(x)
				return Report{}, recordError(n<<level, "the stored tree hash %d (level %d) does not match the records", x, level)
			}
		}
		if err := checkUpTo(c.n); err != nil {
			return Report{}, err
		}
		if progress != nil {
			progress(c.n, count)
		}
	}
	if next < len(cps) {
		return Report{}, checkpointError(cps[next].Size, "covers %d records, but the log has %d", cps[next].Size, count)
	}
	if err := c.explained(); err != nil {
		return Report{}, err
	}
	if err := notInLog(ctx, store, count); err != nil {
		return Report{}, err
	}
	root := tlog.Hash{}
	if count > 0 {
		if root, err = c.root(count); err != nil {
			return Report{}, err
		}
	}
	return Report{Records: count, Checkpoints: len(cps), Root: root, Erased: c.erased}, nil
}

// storedHashes reads the stored hashes that the records from ≤ seq < to
// added to the tree.
func storedHashes(ctx context.Context, store idm.AuditLogStore, from, to int64) ([]tlog.Hash, error) {
	if to <= from {
		return nil, nil
	}
	lo, hi := tlog.StoredHashCount(from), tlog.StoredHashCount(to)
	idx := make([]int64, 0, hi-lo)
	for x := lo; x < hi; x++ {
		idx = append(idx, x)
	}
	hs, err := store.TreeHashes(ctx, idx)
	if errors.Is(err, idm.ErrNotFound) {
		return nil, recordError(from, "its tree hashes are missing from the store")
	}
	if err != nil {
		return nil, err
	}
	return hashesOf(hs), nil
}

// notInLog checks that every record the store lists is in the log: a
// record inserted without a seq would show in the trails without being
// covered by the tree.
func notInLog(ctx context.Context, store VerifyStore, count int64) error {
	_, total, err := store.ListAudits(ctx, idm.AuditFilter{Limit: 1})
	if err != nil {
		return err
	}
	// A store that answers the total from counts it keeps beside the
	// records (boltstore) would not count a record written around them:
	// such a store counts the records themselves for Verify.
	if c, ok := store.(RecordCounter); ok {
		n, err := c.CountAuditRecords(ctx)
		if err != nil {
			return err
		}
		total = int(n)
	}
	if int64(total) == count {
		return nil
	}
	for offset := 0; ; offset += verifyBatch {
		page, _, err := store.ListAudits(ctx, idm.AuditFilter{Offset: offset, Limit: verifyBatch})
		if err != nil {
			return err
		}
		for _, e := range page {
			if e.Seq < 0 || e.Seq >= count {
				return &Error{Seq: -1, Reason: fmt.Sprintf("record %s (at %s) is not in the log", e.ID, idm.FormatTime(e.Time))}
			}
			inLog, err := store.AuditsBySeq(ctx, e.Seq, e.Seq+1)
			if err != nil {
				return err
			}
			if len(inLog) != 1 || inLog[0].ID != e.ID {
				return &Error{Seq: -1, Reason: fmt.Sprintf("record %s (at %s) claims seq %d but is not in the log", e.ID, idm.FormatTime(e.Time), e.Seq)}
			}
		}
		if len(page) < verifyBatch {
			return &Error{Seq: -1, Reason: fmt.Sprintf("the store lists %d records, the log has %d", total, count)}
		}
	}
}
