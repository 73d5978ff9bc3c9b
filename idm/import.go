package idm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"
)

// Import formats (see [ImportOptions.Format]).
const (
	// ImportCSV is CSV with a header row whose cells name the JSON keys of
	// POST /subject (sssid, name, bday, email, site, date_consented, …, and
	// additional fields). Every cell is a string; an empty cell is an
	// absent key.
	ImportCSV = "csv"
	// ImportJSONL is JSON lines: one JSON object per line, as POST /subject
	// takes it. Blank lines are skipped.
	ImportJSONL = "jsonl"
)

// DefaultImportBatch is how many new subjects [Importer.Import] stores in
// one batch unless [ImportOptions.BatchSize] says otherwise.
const DefaultImportBatch = 1000

// MaxImportRowBytes bounds one row of an import (a line of JSON lines; a
// CSV record is bounded by the file), as [DefaultMaxBodyBytes] bounds the
// body of POST /subject.
const MaxImportRowBytes = DefaultMaxBodyBytes

// ReasonExists is the reason given for a row whose SSSID is taken: the
// subject is left as it is.
const ReasonExists = "exists"

// importWriteTimeout bounds the write of one batch, which runs to its end
// even when the import's context ends (see [detached]).
const importWriteTimeout = changeTimeout

// ImportRow is a row that an import did not create a subject from: its
// line in the file (1 for the first line; for CSV, the line where the
// record starts), its SSSID as far as it could be read, and why: the
// message POST /subject answers the same object with, or [ReasonExists].
type ImportRow struct {
	Line   int64  `json:"line"`
	SSSID  string `json:"sssid"`
	Reason string `json:"reason"`
}

// ImportResult sums up an import.
type ImportResult struct {
	// Rows is the number of data rows read (not the CSV header, not blank
	// lines).
	Rows int64
	// Created is the number of subjects created (in a dry run: that would
	// have been created).
	Created int64
	// Existing is the number of rows whose SSSID was taken.
	Existing int64
	// Rejected is the number of invalid rows.
	Rejected int64
	// RejectedRows holds the first [ImportOptions.KeepRejected] invalid
	// rows, in file order.
	RejectedRows []ImportRow
	// DryRun tells that nothing was written.
	DryRun bool
}

// ImportOptions configures one [Importer.Import].
type ImportOptions struct {
	// Format is [ImportCSV] or [ImportJSONL].
	Format string
	// DryRun checks every row and reports as an import would, without
	// writing anything.
	DryRun bool
	// BatchSize is how many new subjects are stored together, all or none;
	// 0 means [DefaultImportBatch].
	BatchSize int
	// KeepRejected is how many invalid rows ImportResult.RejectedRows
	// keeps; 0 keeps none (Report sees all of them).
	KeepRejected int
	// Report, when set, is called with every row that creates no subject
	// (invalid, or its SSSID taken), in file order, except that a row
	// whose SSSID was taken after it was read is reported when its batch
	// is stored. It runs on the goroutine that called Import.
	Report func(ImportRow)
	// Progress, when set, is called after every batch with the result so
	// far.
	Progress func(ImportResult)
}

// ImporterConfig configures [NewImporter].
type ImporterConfig struct {
	// Store keeps the subjects; the audit records go with them (see
	// [SubjectStore.CreateSubjects]). Required.
	Store SubjectStore
	// DefaultSite is the site of a subject imported without one by a
	// caller who has not exactly one site; "" means [DefaultSiteCode].
	DefaultSite string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives server-side errors; nil discards them.
	Logger *slog.Logger
}

// Importer creates subjects in bulk from CSV or JSON lines: each row is
// checked exactly as POST /subject checks its body (the same rule, see
// newSubject), and each subject created gets the audit record POST
// /subject writes. It is safe for concurrent use.
type Importer struct {
	store  SubjectStore
	site   string
	now    func() time.Time
	log    *slog.Logger
	audits *AuditWriter // makes the records' IDs
}

// NewImporter validates c and returns an Importer.
func NewImporter(c ImporterConfig) (*Importer, error) {
	switch {
	case c.Store == nil:
		return nil, errors.New("idm: NewImporter: Config.Store is required")
	case c.DefaultSite != "" && !ValidSite(c.DefaultSite):
		return nil, fmt.Errorf("idm: NewImporter: Config.DefaultSite %q is not a site code", c.DefaultSite)
	}
	im := &Importer{store: c.Store, site: c.DefaultSite, now: c.Now, log: c.Logger}
	if im.site == "" {
		im.site = DefaultSiteCode
	}
	if im.now == nil {
		im.now = time.Now
	}
	if im.log == nil {
		im.log = slog.New(slog.DiscardHandler)
	}
	im.audits = NewAuditWriter(nil, im.now, im.log)
	return im, nil
}

// Import reads rows from r in o.Format and creates a subject from each
// valid row whose SSSID is free, acting as p (the audit records' actor,
// whose sites bound where subjects may go, as for POST /subject). Rows
// are checked in file order; the second row with an SSSID that an earlier
// row has is refused. New subjects are stored in batches of o.BatchSize,
// each with its audit records, all or none (see
// [SubjectStore.CreateSubjects]): a batch that meets an SSSID taken
// meanwhile reports that row as existing and is stored without it. So an
// import can run again over the same file: what it created before is
// reported as existing and left alone.
//
// Rows that create no subject are reported (see [ImportOptions.Report]),
// not errors. Import returns an error, with the result up to the last
// batch stored, when the file cannot be read (a CSV header that names no
// subject field, a read error, ctx ended) or a batch cannot be stored;
// errors about the file are 400 [*Error]s.
func (im *Importer) Import(ctx context.Context, p *Principal, r io.Reader, o ImportOptions) (ImportResult, error) {
	res := ImportResult{DryRun: o.DryRun}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultImportBatch
	}
	var rows rowReader
	switch o.Format {
	case ImportCSV:
		cr, err := newCSVRows(r)
		if err != nil {
			return res, err
		}
		rows = cr
	case ImportJSONL:
		rows = newJSONLRows(r)
	default:
		return res, E(ErrInvalid, fmt.Sprintf("import format must be %s or %s, not %q", ImportCSV, ImportJSONL, clip(o.Format)))
	}
	run := importRun{im: im, p: p, o: o, res: &res, seen: make(map[sssidHash]int64), seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
	err := run.rows(ctx, rows)
	if err == nil {
		err = run.flush(ctx)
	}
	// The batch being stored ends either way.
	if werr := run.wait(); err == nil {
		err = werr
	}
	return res, err
}

// rows checks the rows of the file and stores them batch by batch: a batch
// is stored while the next one is read.
func (run *importRun) rows(ctx context.Context, rows rowReader) error {
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("import stopped after line %d: %w", run.line, err)
		}
		row, err := rows.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		run.line = row.line
		if row.skip {
			continue
		}
		run.res.Rows++
		run.check(ctx, row)
		if run.err != nil {
			return run.err
		}
		if len(run.batch) >= run.o.BatchSize {
			if err := run.flush(ctx); err != nil {
				return err
			}
		}
	}
}

// importRun is the state of one Import.
type importRun struct {
	im   *Importer
	p    *Principal
	o    ImportOptions
	res  *ImportResult
	line int64
	// seen maps the SSSIDs of the rows so far to their line, by a 128-bit
	// hash: a map without pointers costs the garbage collector nothing
	// to keep, and two SSSIDs with one hash (about one chance in 10^27
	// at a million rows) are not to be expected.
	seen  map[sssidHash]int64
	seeds [2]maphash.Seed
	batch []pending
	err   error // a store error that ends the import
	// stored is the outcome of the batch being stored, nil when none is.
	stored chan stored
}

// stored is the outcome of storing a batch.
type stored struct {
	created  int64
	existing []pending // rows whose SSSID was taken since they were read
	err      error
}

// sssidHash is the hash of an SSSID (see importRun.seen).
type sssidHash [2]uint64

// pending is a valid row waiting for its batch.
type pending struct {
	line int64
	s    Subject
}

// report notes a row that creates no subject.
func (run *importRun) report(line int64, sssid, reason string) {
	if reason == ReasonExists {
		run.res.Existing++
	} else {
		run.res.Rejected++
		if len(run.res.RejectedRows) < run.o.KeepRejected {
			run.res.RejectedRows = append(run.res.RejectedRows, ImportRow{Line: line, SSSID: sssid, Reason: reason})
		}
	}
	if run.o.Report != nil {
		run.o.Report(ImportRow{Line: line, SSSID: sssid, Reason: reason})
	}
}

// check checks one row with the rule of POST /subject and either reports
// it or adds it to the batch.
func (run *importRun) check(ctx context.Context, row importRowData) {
	if row.bad != nil {
		run.report(row.line, row.sssid, MessageOf(row.bad))
		return
	}
	var sssid string
	s, err := newSubject(run.p, row.members, run.im.site, func(id string) error {
		sssid = id
		h := sssidHash{maphash.String(run.seeds[0], id), maphash.String(run.seeds[1], id)}
		if first, ok := run.seen[h]; ok {
			return E(ErrInvalid, fmt.Sprintf("the SSSID %q appears before, on line %d", clip(id), first))
		}
		run.seen[h] = row.line
		switch _, err := run.im.store.FindSubject(ctx, id); {
		case err == nil:
			return errExists
		case !errors.Is(err, ErrNotFound):
			run.err = fmt.Errorf("import: line %d: find subject: %w", row.line, err)
			return run.err
		}
		return nil
	})
	switch {
	case run.err != nil:
	case errors.Is(err, errExists):
		run.report(row.line, sssid, ReasonExists)
	case err != nil:
		if sssid == "" {
			sssid = rowSSSID(row.members)
		}
		run.report(row.line, sssid, MessageOf(err))
	default:
		run.batch = append(run.batch, pending{line: row.line, s: s})
	}
}

// errExists marks a row whose SSSID is taken.
var errExists = E(ErrConflict, msgSSSIDTaken)

// rowSSSID returns the sssid member of a row as far as it is a string.
func rowSSSID(members []objectField) string {
	for _, m := range members {
		if m.key == keySSSID {
			if s, err := m.str(MaxSSSIDLen); err == nil {
				return s
			}
		}
	}
	return ""
}

// maxBatchAttempts bounds the writes of one batch that meet SSSIDs taken
// meanwhile.
const maxBatchAttempts = 3

// flush waits for the batch being stored, then starts storing this one
// (in a dry run: counts it) and empties it.
func (run *importRun) flush(ctx context.Context) error {
	if err := run.wait(); err != nil {
		return err
	}
	batch := run.batch
	run.batch = make([]pending, 0, run.o.BatchSize)
	if run.o.DryRun || len(batch) == 0 {
		run.res.Created += int64(len(batch))
		run.progress()
		return nil
	}
	ch := make(chan stored, 1)
	run.stored = ch
	go func() { ch <- run.im.store1(ctx, run.p, batch) }()
	return nil
}

// wait waits for the batch being stored, if any, and counts it.
func (run *importRun) wait() error {
	if run.stored == nil {
		return nil
	}
	st := <-run.stored
	run.stored = nil
	for _, b := range st.existing {
		run.report(b.line, b.s.SSSID, ReasonExists)
	}
	run.res.Created += st.created
	run.progress()
	return st.err
}

func (run *importRun) progress() {
	if run.o.Progress != nil {
		run.o.Progress(*run.res)
	}
}

// store1 stores one batch of new subjects with their audit records, all or
// none. A batch that meets an SSSID taken since its row was read is
// stored without that row, which it returns as existing. The write runs
// to its end even when ctx ends (see [detached]).
func (im *Importer) store1(ctx context.Context, p *Principal, batch []pending) stored {
	var st stored
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), importWriteTimeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		now := Timestamp(im.now())
		subjects := make([]Subject, len(batch))
		audits := make([]AuditEvent, len(batch))
		for i, b := range batch {
			// IDs in the order of their making (as audit records have
			// them) put the batch at the end of the store's indexes.
			s, e := subjectCreated(p, b.s, im.audits.NewID(now), now)
			e.ID = im.audits.NewID(now)
			subjects[i], audits[i] = s, e
		}
		err := im.store.CreateSubjects(wctx, subjects, audits)
		if err == nil {
			st.created += int64(len(batch))
			return st
		}
		where := fmt.Sprintf("import: the batch of lines %d to %d", batch[0].line, batch[len(batch)-1].line)
		if !errors.Is(err, ErrConflict) || attempt >= maxBatchAttempts {
			st.err = fmt.Errorf("%s: %w", where, err)
			return st
		}
		keep := make([]pending, 0, len(batch))
		for _, b := range batch {
			switch _, ferr := im.store.FindSubject(wctx, b.s.SSSID); {
			case ferr == nil:
				st.existing = append(st.existing, b)
			case errors.Is(ferr, ErrNotFound):
				keep = append(keep, b)
			default:
				st.err = fmt.Errorf("%s: find subject: %w", where, ferr)
				return st
			}
		}
		if len(keep) == len(batch) {
			st.err = fmt.Errorf("%s: %w", where, err)
			return st
		}
		if batch = keep; len(batch) == 0 {
			return st
		}
	}
}

// importRowData is one row read from the file.
type importRowData struct {
	line    int64
	skip    bool // a blank line
	members []objectField
	sssid   string // for a row that cannot be read, its SSSID if known
	bad     error  // why the row cannot be read
}

// rowReader reads the rows of a file; io.EOF ends it, any other error is
// about the whole file.
type rowReader interface {
	next() (importRowData, error)
}

// jsonlRows reads JSON lines.
type jsonlRows struct {
	r    *bufio.Reader
	line int64
	buf  []byte
}

func newJSONLRows(r io.Reader) *jsonlRows {
	return &jsonlRows{r: bufio.NewReaderSize(r, 256<<10)}
}

func (j *jsonlRows) next() (importRowData, error) {
	j.buf = j.buf[:0]
	long := false
	for {
		chunk, err := j.r.ReadSlice('\n')
		if len(j.buf)+len(chunk) > MaxImportRowBytes+2 {
			long = true
		} else {
			j.buf = append(j.buf, chunk...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && len(j.buf) == 0 && !long {
			return importRowData{}, io.EOF
		}
		if err != nil && err != io.EOF {
			return importRowData{}, readError(err)
		}
		break
	}
	j.line++
	row := importRowData{line: j.line}
	if long {
		row.bad = E(ErrInvalid, fmt.Sprintf("the row is longer than %d bytes", MaxImportRowBytes))
		return row, nil
	}
	b := bytes.TrimRight(j.buf, "\r\n")
	if j.line == 1 {
		b = bytes.TrimPrefix(b, utf8BOM)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		row.skip = true
		return row, nil
	}
	row.members, row.bad = splitObject(b)
	return row, nil
}

// utf8BOM is the byte order mark that spreadsheets put before UTF-8 text.
var utf8BOM = []byte("\ufeff")

// readError is the error of an import whose input cannot be read: a body
// over its limit or cut off keeps its kind (see [http.MaxBytesError]), as
// its cause.
func readError(err error) error {
	return fmt.Errorf("%w: %w", errImportRead, err)
}

// errImportRead marks an error reading an import's input.
var errImportRead = errors.New("import: reading the rows")

// csvRows reads CSV with a header row.
type csvRows struct {
	r      *csv.Reader
	header []string
}

func newCSVRows(r io.Reader) (*csvRows, error) {
	cr := csv.NewReader(bufio.NewReaderSize(r, 256<<10))
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, E(ErrInvalid, "the CSV file is empty: it needs a header row that names the fields")
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, Wrap(ErrInvalid, fmt.Sprintf("the CSV header is malformed: %v", pe.Err), err)
		}
		return nil, readError(err)
	}
	c := &csvRows{r: cr, header: make([]string, len(header))}
	seen := make(map[string]bool, len(header))
	for i, k := range header {
		if i == 0 {
			k = strings.TrimPrefix(k, string(utf8BOM))
		}
		if !utf8.ValidString(k) {
			return nil, E(ErrInvalid, fmt.Sprintf("the CSV header's column %d is not valid UTF-8", i+1))
		}
		if seen[k] {
			return nil, E(ErrInvalid, fmt.Sprintf("the CSV header names %q more than once", clip(k)))
		}
		seen[k] = true
		// A name POST /subject refuses would refuse every row.
		if _, err := subjectFields([]objectField{{key: k, raw: json.RawMessage(`""`)}}); err != nil {
			return nil, Wrap(ErrInvalid, "the CSV header: "+MessageOf(err), err)
		}
		c.header[i] = k
	}
	if !seen[keySSSID] {
		return nil, E(ErrInvalid, "the CSV header must name the `sssid` column")
	}
	cr.FieldsPerRecord = len(header)
	return c, nil
}

func (c *csvRows) next() (importRowData, error) {
	rec, err := c.r.Read()
	if err == io.EOF {
		return importRowData{}, io.EOF
	}
	var row importRowData
	var pe *csv.ParseError
	switch {
	case err == nil:
		line, _ := c.r.FieldPos(0)
		row.line = int64(line)
	case errors.As(err, &pe):
		row.line = int64(pe.StartLine)
		if errors.Is(err, csv.ErrFieldCount) && len(rec) > 0 {
			row.sssid = c.cell(rec, keySSSID)
			row.bad = E(ErrInvalid, fmt.Sprintf("the row has %d cells, the header %d", len(rec), len(c.header)))
		} else {
			row.bad = E(ErrInvalid, fmt.Sprintf("malformed CSV: %v", pe.Err))
		}
		return row, nil
	default:
		return row, readError(err)
	}
	row.members = make([]objectField, 0, len(rec))
	for i, v := range rec {
		if v == "" {
			continue
		}
		if !utf8.ValidString(v) {
			row.sssid = c.cell(rec, keySSSID)
			row.bad = E(ErrInvalid, fmt.Sprintf("the cell %q is not valid UTF-8", c.header[i]))
			return row, nil
		}
		row.members = append(row.members, objectField{key: c.header[i], raw: jsonString(v)})
	}
	return row, nil
}

// cell returns the cell of rec in the column key, "" when there is none.
func (c *csvRows) cell(rec []string, key string) string {
	for i, k := range c.header {
		if k == key && i < len(rec) && utf8.ValidString(rec[i]) {
			return rec[i]
		}
	}
	return ""
}

// jsonString returns s as a JSON string.
func jsonString(s string) json.RawMessage {
	if jsonVerbatim(s) {
		return appendQuoted(make([]byte, 0, len(s)+2), s)
	}
	b, _ := json.Marshal(s) // a string always encodes
	return b
}
