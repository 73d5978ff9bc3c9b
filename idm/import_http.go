package idm

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"
)

// DefaultMaxImportBytes is the default limit on the body of POST
// /subject/import (see [Config.MaxImportBytes]).
const DefaultMaxImportBytes = 512 << 20

// MaxImportListed is how many rejected rows the answer of POST
// /subject/import lists; rejected_count counts them all.
const MaxImportListed = 1000

// importIdle is how long POST /subject/import may wait for the client
// between two batches (a read deadline, renewed after every batch), and
// then for the client to take its answer.
const importIdle = 30 * time.Second

// importAnswer is the answer of POST /subject/import.
type importAnswer struct {
	Rows          int64       `json:"rows"`
	Created       int64       `json:"created"`
	Existing      int64       `json:"existing"`
	RejectedCount int64       `json:"rejected_count"`
	Rejected      []ImportRow `json:"rejected"`
	DryRun        bool        `json:"dry_run"`
}

// importFormat returns the import format a Content-Type names: text/csv
// for CSV, application/x-ndjson (or application/jsonl) for JSON lines,
// UTF-8 only.
func importFormat(r *http.Request) (string, error) {
	refused := E(ErrUnsupportedMedia, "the request body must be CSV (Content-Type: text/csv) or JSON lines (Content-Type: application/x-ndjson)")
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return "", refused
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return "", E(ErrUnsupportedMedia, fmt.Sprintf("the request body must be UTF-8, not charset %q", clip(cs)))
	}
	switch mt {
	case "text/csv":
		return ImportCSV, nil
	case "application/x-ndjson", "application/jsonl":
		return ImportJSONL, nil
	}
	return "", refused
}

// importSubjects serves POST /subject/import: the body, read as it
// arrives, is imported as [Importer.Import] does it; ?dry_run=1 checks
// without writing. Batches stored before an error stay stored (the error
// says how far the import got).
func (h *Handler) importSubjects(w http.ResponseWriter, r *http.Request, p *Principal) error {
	format, err := importFormat(r)
	if err != nil {
		return err
	}
	q, err := parseQuery(r)
	if err != nil {
		return err
	}
	dry, err := q.get("dry_run")
	if err != nil {
		return err
	}
	o := ImportOptions{Format: format, KeepRejected: MaxImportListed}
	switch strings.ToLower(dry) {
	case "", "0", "false":
	case "1", "true":
		o.DryRun = true
	default:
		return E(ErrInvalid, fmt.Sprintf("query parameter \"dry_run\" must be 1 or 0, not %q", clip(dry)))
	}
	// A large import outlasts the server's read and write timeouts: the
	// deadlines move on with every batch instead.
	rc := http.NewResponseController(w)
	renew := func() {
		_ = rc.SetReadDeadline(time.Now().Add(importIdle))
		_ = rc.SetWriteDeadline(time.Now().Add(2 * importIdle))
	}
	renew()
	o.Progress = func(ImportResult) { renew() }
	body := http.MaxBytesReader(w, r.Body, h.maxImport)
	res, err := h.importer.Import(r.Context(), p, body, o)
	if err != nil {
		return importError(err, res, o.DryRun)
	}
	rejected := res.RejectedRows
	if rejected == nil {
		rejected = []ImportRow{}
	}
	WriteData(w, http.StatusOK, importAnswer{
		Rows: res.Rows, Created: res.Created, Existing: res.Existing, RejectedCount: res.Rejected,
		Rejected: rejected, DryRun: res.DryRun,
	})
	return nil
}

// importedSoFar says how far an import got before it stopped.
func importedSoFar(res ImportResult, dry bool) string {
	verb := "created"
	if dry {
		verb = "would have created"
	}
	return fmt.Sprintf("the import stopped after %d rows and %s %d subjects", res.Rows, verb, res.Created)
}

// importError is the answer to an import that stopped: a client's mistake
// (a body too large, cut off or not in the format) keeps its 4xx, with how
// far the import got when it had begun; a store failure is a 5xx.
func importError(err error, res ImportResult, dry bool) error {
	var (
		mb *http.MaxBytesError
		e  *Error
	)
	soFar := ""
	if res.Rows > 0 {
		soFar = "; " + importedSoFar(res, dry)
	}
	switch {
	case errors.As(err, &mb):
		return Wrap(ErrTooLarge, fmt.Sprintf("request body too large (limit %d bytes)%s", mb.Limit, soFar), err)
	case errors.As(err, &e) && StatusOf(err) < 500:
		return Wrap(e.Kind, e.Message+soFar, err)
	case errors.Is(err, errImportRead) || errors.Is(err, context.Canceled):
		return Wrap(ErrInvalid, "could not read the request body"+soFar, err)
	}
	return fmt.Errorf("import subjects (%s): %w", importedSoFar(res, dry), err)
}
