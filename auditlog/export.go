package auditlog

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/c3-pro/idm/idm"
)

// Export formats.
const (
	FormatJSONL = "jsonl"
	FormatCSV   = "csv"
)

// exportFormat names the export layout in its header.
const exportFormat = "idm-audit-export/1"

// ExportOptions selects what [Export] writes.
type ExportOptions struct {
	Format       string    // FormatJSONL (default) or FormatCSV
	Since, Until time.Time // records at or after Since and before Until; zero: unbounded
	// Progress, if not nil, is called after each batch with the records
	// read so far and the checkpoint's size.
	Progress func(done, total int64)
}

// exportHeader is the first line of a JSON-lines export.
type exportHeader struct {
	Format     string `json:"format"`
	Size       int64  `json:"size"`       // the checkpoint's tree size
	Checkpoint string `json:"checkpoint"` // the signed checkpoint note
	Complete   bool   `json:"complete"`   // every record 0 … size-1 follows; else each record carries its proof
	Since      string `json:"since,omitempty"`
	Until      string `json:"until,omitempty"`
}

// exportRecord is a record of an export: the members of its canonical
// form, its leaf hash and, in a partial export, the proof that the leaf is
// in the checkpoint's tree.
type exportRecord struct {
	idm.CanonicalRecord
	Leaf  tlog.Hash   `json:"leaf"`
	Proof []tlog.Hash `json:"proof,omitempty"`
}

var csvColumns = []string{"seq", "id", "time", "document", "doctype", "actor_id", "actor", "action", "old", "new", "leaf", "proof"}

// csvCheckpoint is the seq column of the CSV row that holds the checkpoint.
const csvCheckpoint = "#checkpoint"

// Export checkpoints the log (see [Log.Checkpoint]) and writes to w the
// records its checkpoint covers (those of the time window in o, or all),
// each with its leaf hash, and the checkpoint, so that [VerifyExport] can
// check the file offline against the verifier key. A partial export (a time
// window) gives each record its inclusion proof, and holds every erasure
// record too, so that erased records in the window verify.
func (l *Log) Export(ctx context.Context, w io.Writer, o ExportOptions) (records int64, err error) {
	if o.Format == "" {
		o.Format = FormatJSONL
	}
	if o.Format != FormatJSONL && o.Format != FormatCSV {
		return 0, fmt.Errorf("auditlog: unknown export format %q (jsonl or csv)", o.Format)
	}
	cp, err := l.Checkpoint(ctx)
	if errors.Is(err, idm.ErrNotFound) {
		cp = idm.Checkpoint{} // an empty log
	} else if err != nil {
		return 0, err
	}
	complete := o.Since.IsZero() && o.Until.IsZero()
	bw := bufio.NewWriter(w)
	var cw *csv.Writer
	h := exportHeader{Format: exportFormat, Size: cp.Size, Checkpoint: string(cp.Note), Complete: complete}
	if !o.Since.IsZero() {
		h.Since = idm.FormatTime(o.Since)
	}
	if !o.Until.IsZero() {
		h.Until = idm.FormatTime(o.Until)
	}
	if o.Format == FormatCSV {
		cw = csv.NewWriter(bw)
		if err := cw.Write(csvColumns); err != nil {
			return 0, err
		}
		if err := cw.Write([]string{csvCheckpoint, h.Checkpoint, strconv.FormatBool(complete), h.Since, h.Until}); err != nil {
			return 0, err
		}
	} else if err := writeJSONLine(bw, h); err != nil {
		return 0, err
	}
	rd := storeReader(ctx, l.store)
	for from := int64(0); from < cp.Size; from += verifyBatch {
		batch, err := l.store.AuditsBySeq(ctx, from, min(cp.Size, from+verifyBatch))
		if err != nil {
			return records, err
		}
		var leaves []tlog.Hash
		if len(batch) > 0 {
			idx := make([]int64, len(batch))
			for i, e := range batch {
				idx[i] = tlog.StoredHashIndex(0, e.Seq)
			}
			if leaves, err = rd.ReadHashes(idx); err != nil {
				return records, fmt.Errorf("auditlog: leaf hashes: %w", err)
			}
		}
		for i, e := range batch {
			_, isErasure := erasureOf(e)
			inWindow := (o.Since.IsZero() || !e.Time.Before(o.Since)) && (o.Until.IsZero() || e.Time.Before(o.Until))
			if !inWindow && !isErasure {
				continue
			}
			r := exportRecord{CanonicalRecord: e.Canonical(), Leaf: leaves[i]}
			if !complete {
				if r.Proof, err = tlog.ProveRecord(cp.Size, e.Seq, rd); err != nil {
					return records, fmt.Errorf("auditlog: proof of seq %d: %w", e.Seq, err)
				}
			}
			if cw != nil {
				proof := make([]string, len(r.Proof))
				for j, p := range r.Proof {
					proof[j] = p.String()
				}
				err = cw.Write([]string{strconv.FormatInt(r.Seq, 10), r.ID, r.Time, r.Document, r.DocType, r.ActorID, r.Actor,
					r.Action, r.Old, r.New, r.Leaf.String(), strings.Join(proof, " ")})
			} else {
				err = writeJSONLine(bw, r)
			}
			if err != nil {
				return records, err
			}
			records++
		}
		if o.Progress != nil {
			o.Progress(min(cp.Size, from+verifyBatch), cp.Size)
		}
	}
	if cw != nil {
		cw.Flush()
		if err := cw.Error(); err != nil {
			return records, err
		}
	}
	return records, bw.Flush()
}

func writeJSONLine(w *bufio.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// VerifyExport checks an export written by [Log.Export] without a store:
// the checkpoint's signature with vkey (the log's verifier key, as GET
// /audit/verifier serves it), every record's leaf, and the tree (a complete
// export) or each record's inclusion proof (a partial one). The first
// record or checkpoint that does not match is named in an [*Error].
func VerifyExport(r io.Reader, vkey string) (Report, error) {
	v, err := newVerifier(vkey)
	if err != nil {
		return Report{}, err
	}
	br := bufio.NewReaderSize(r, 1<<20)
	first, err := br.Peek(1)
	if err != nil {
		return Report{}, &Error{Seq: -1, Reason: "the export is empty"}
	}
	next, h, err := exportReader(br, first[0] == '{')
	if err != nil {
		return Report{}, err
	}
	if h.Format != exportFormat {
		return Report{}, &Error{Seq: -1, Reason: fmt.Sprintf("not an idm audit export (format %q)", h.Format)}
	}
	var t tree
	if h.Size > 0 {
		if t, err = openCheckpoint([]byte(h.Checkpoint), v); err != nil {
			return Report{}, checkpointError(h.Size, "signature does not verify: %v", err)
		}
		if t.size != h.Size {
			return Report{}, checkpointError(h.Size, "its note is for size %d", t.size)
		}
	}
	c := newChecker()
	var last int64 = -1
	for {
		rec, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Report{}, err
		}
		e, err := rec.Event()
		if err != nil {
			return Report{}, recordError(rec.Seq, "%v", err)
		}
		if e.Seq >= h.Size {
			return Report{}, recordError(e.Seq, "beyond the checkpoint's size %d", h.Size)
		}
		if h.Complete {
			leaf := rec.Leaf
			if err := c.add(e, &leaf); err != nil {
				return Report{}, err
			}
			continue
		}
		if e.Seq <= last {
			return Report{}, recordError(e.Seq, "appears twice, or out of order")
		}
		last = e.Seq
		if err := tlog.CheckRecord(rec.Proof, t.size, t.root, e.Seq, rec.Leaf); err != nil {
			return Report{}, recordError(e.Seq, "its leaf is not in the checkpoint's tree: %v", err)
		}
		leaf := rec.Leaf
		if _, err := c.judge(e, &leaf); err != nil {
			return Report{}, err
		}
		c.n++
	}
	if err := c.explained(); err != nil {
		return Report{}, err
	}
	rep := Report{Records: c.n, Checkpoints: 1, Erased: c.erased}
	if h.Size == 0 {
		rep.Checkpoints = 0
		return rep, nil
	}
	rep.Root = t.root
	if h.Complete {
		if c.n != h.Size {
			return Report{}, recordError(c.n, "missing (the export ends before the checkpoint's size %d)", h.Size)
		}
		root, err := c.root(h.Size)
		if err != nil {
			return Report{}, err
		}
		if root != t.root {
			return Report{}, checkpointError(h.Size, "its root %s is not the root %s of the records", t.root, root)
		}
	}
	return rep, nil
}

// exportReader returns a function that reads the export's records one by
// one (io.EOF at the end), and the export's header.
func exportReader(br *bufio.Reader, jsonl bool) (func() (exportRecord, error), exportHeader, error) {
	if jsonl {
		dec := json.NewDecoder(br)
		var h exportHeader
		if err := dec.Decode(&h); err != nil {
			return nil, h, &Error{Seq: -1, Reason: fmt.Sprintf("bad export header: %v", err)}
		}
		return func() (exportRecord, error) {
			var r exportRecord
			err := dec.Decode(&r)
			if err != nil && !errors.Is(err, io.EOF) {
				return r, &Error{Seq: -1, Reason: fmt.Sprintf("bad record line: %v", err)}
			}
			return r, err
		}, h, nil
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err != nil || strings.Join(head, ",") != strings.Join(csvColumns, ",") {
		return nil, exportHeader{}, &Error{Seq: -1, Reason: "not an idm audit export (CSV columns)"}
	}
	cpRow, err := cr.Read()
	if err != nil || len(cpRow) < 3 || cpRow[0] != csvCheckpoint {
		return nil, exportHeader{}, &Error{Seq: -1, Reason: "the CSV export has no checkpoint row"}
	}
	h := exportHeader{Format: exportFormat, Checkpoint: cpRow[1], Complete: cpRow[2] == "true"}
	if h.Checkpoint != "" {
		n, err := openCheckpointSizeUnverified(h.Checkpoint)
		if err != nil {
			return nil, h, &Error{Seq: -1, Reason: fmt.Sprintf("bad checkpoint: %v", err)}
		}
		h.Size = n
	}
	return func() (exportRecord, error) {
		row, err := cr.Read()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return exportRecord{}, err
			}
			return exportRecord{}, &Error{Seq: -1, Reason: fmt.Sprintf("bad CSV row: %v", err)}
		}
		if len(row) != len(csvColumns) {
			return exportRecord{}, &Error{Seq: -1, Reason: fmt.Sprintf("a CSV row has %d fields, want %d", len(row), len(csvColumns))}
		}
		seq, err := strconv.ParseInt(row[0], 10, 64)
		if err != nil {
			return exportRecord{}, &Error{Seq: -1, Reason: fmt.Sprintf("bad seq %q", row[0])}
		}
		r := exportRecord{CanonicalRecord: idm.CanonicalRecord{Seq: seq, ID: row[1], Time: row[2], Document: row[3], DocType: row[4], ActorID: row[5],
			Actor: row[6], Action: row[7], Old: row[8], New: row[9]}}
		if r.Leaf, err = tlog.ParseHash(row[10]); err != nil {
			return r, recordError(seq, "bad leaf hash")
		}
		for _, p := range strings.Fields(row[11]) {
			h, err := tlog.ParseHash(p)
			if err != nil {
				return r, recordError(seq, "bad proof hash")
			}
			r.Proof = append(r.Proof, h)
		}
		return r, nil
	}, h, nil
}

// openCheckpointSizeUnverified reads the size from a checkpoint note's
// text; the signature is checked afterwards.
func openCheckpointSizeUnverified(msg string) (int64, error) {
	text, _, ok := strings.Cut(msg, "\n\n")
	if !ok {
		return 0, errors.New("not a signed note")
	}
	t, err := parseTree(text + "\n")
	return t.size, err
}
