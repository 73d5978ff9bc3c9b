package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/c3-pro/idm/idm"
)

// importProgressEvery is how often `idmd subject import` reports progress.
const importProgressEvery = 2 * time.Second

// importCmd runs `idmd subject import [--dry-run] [--format csv|jsonl]
// [--actor EMAIL] [--batch N] FILE`: every row is checked as POST /subject
// checks it and each new subject gets the audit record the API writes
// (see idm.Importer). The rows that create no subject go to standard
// output as CSV (line,sssid,reason; reason "exists" for an SSSID that is
// taken), progress and totals to standard error. The exit status is 0
// when no row was rejected (rows that exist do not count), 3 when some
// were, 1 when the import could not run to its end (what was stored by
// then stays stored; run it again), 2 for a usage error.
func importCmd(ctx context.Context, args []string, std stdio) int {
	usage := "usage: idmd subject import [--dry-run] [--format csv|jsonl] [--actor EMAIL] [--batch N] FILE (- for standard input)"
	var (
		dry    bool
		format string
		actor  string
		batch  int
	)
	cfg, pos, code := parse("subject import", args, std, func(fs *flag.FlagSet) {
		fs.BoolVar(&dry, "dry-run", false, "check and report every row without writing anything")
		fs.StringVar(&format, "format", "", "csv or jsonl (default: from the file's extension, .csv or .jsonl/.ndjson)")
		fs.StringVar(&actor, "actor", "", "the user (email) the import acts as and the audit records name; default: "+cliActor+", as an admin")
		fs.IntVar(&batch, "batch", idm.DefaultImportBatch, "new subjects stored together, all or none")
	})
	if code >= 0 {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(std.err, usage)
		return exitConfig
	}
	path := pos[0]
	if format == "" {
		switch strings.ToLower(filepath.Ext(path)) {
		case ".csv":
			format = idm.ImportCSV
		case ".jsonl", ".ndjson":
			format = idm.ImportJSONL
		default:
			fmt.Fprintln(std.err, "idmd: subject import: give --format csv or jsonl (the file name does not end in .csv, .jsonl or .ndjson)")
			return exitConfig
		}
	}
	if format != idm.ImportCSV && format != idm.ImportJSONL {
		fmt.Fprintln(std.err, "idmd: subject import: --format must be csv or jsonl")
		return exitConfig
	}
	if batch < 1 || batch > 100_000 {
		fmt.Fprintln(std.err, "idmd: subject import: --batch must be from 1 to 100000")
		return exitConfig
	}
	var in io.Reader = std.in
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintf(std.err, "idmd: subject import: %v\n", err)
			return exitFail
		}
		defer f.Close()
		in = f
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		fmt.Fprintf(std.err, "idmd: %v\n", err)
		return exitFail
	}
	defer store.Close()
	p, err := importActor(ctx, store, actor)
	if err != nil {
		fmt.Fprintf(std.err, "idmd: subject import: %s\n", idm.MessageOf(err))
		return exitFail
	}
	im, err := idm.NewImporter(idm.ImporterConfig{Store: store, DefaultSite: cfg.DefaultSite, Logger: newLogger(cfg, std.err)})
	if err != nil {
		fmt.Fprintf(std.err, "idmd: subject import: %v\n", err)
		return exitFail
	}
	out := csv.NewWriter(std.out)
	_ = out.Write([]string{"line", "sssid", "reason"})
	start := time.Now()
	last := start
	res, err := im.Import(ctx, p, in, idm.ImportOptions{
		Format: format, DryRun: dry, BatchSize: batch,
		Report: func(r idm.ImportRow) {
			_ = out.Write([]string{strconv.FormatInt(r.Line, 10), r.SSSID, r.Reason})
		},
		Progress: func(r idm.ImportResult) {
			if now := time.Now(); now.Sub(last) >= importProgressEvery {
				last = now
				fmt.Fprintf(std.err, "import: %s, %.0f rows/s\n", importTotals(r), float64(r.Rows)/now.Sub(start).Seconds())
			}
		},
	})
	out.Flush()
	took := time.Since(start)
	if err != nil {
		fmt.Fprintf(std.err, "idmd: subject import: %s (%s; what was stored stays: run the import again to go on)\n", idm.MessageOf(err), importTotals(res))
		if idm.StatusOf(err) >= 500 {
			fmt.Fprintf(std.err, "  cause: %v\n", err)
		}
		return exitFail
	}
	if werr := out.Error(); werr != nil {
		fmt.Fprintf(std.err, "idmd: subject import: writing the report: %v\n", werr)
		return exitFail
	}
	fmt.Fprintf(std.err, "import: %s in %s (%.0f rows/s)\n", importTotals(res), took.Round(time.Millisecond), float64(res.Rows)/took.Seconds())
	if res.Rejected > 0 {
		return exitRejected
	}
	return exitOK
}

// importTotals sums up an import in one line.
func importTotals(r idm.ImportResult) string {
	verb := "created"
	if r.DryRun {
		verb = "to create (dry run)"
	}
	return fmt.Sprintf("%d rows: %d %s, %d existing, %d rejected", r.Rows, r.Created, verb, r.Existing, r.Rejected)
}

// importActor returns who an import acts as: the user with the given
// username (email), with the role and sites they have, or the command line
// as an admin when none is given.
func importActor(ctx context.Context, store idm.Store, username string) (*idm.Principal, error) {
	if username == "" {
		return &idm.Principal{Username: cliActor, Admin: true}, nil
	}
	u, err := idm.FindUserByUsername(ctx, store, username)
	switch {
	case errors.Is(err, idm.ErrNotFound):
		return nil, idm.E(idm.ErrNotFound, fmt.Sprintf("--actor: there is no user %q", username))
	case err != nil:
		return nil, err
	case u.Disabled:
		return nil, idm.E(idm.ErrForbidden, fmt.Sprintf("--actor: the user %q is disabled", username))
	}
	role, sites := u.Access()
	return &idm.Principal{UserID: u.ID, Username: u.Username, Admin: role == idm.RoleAdmin, Role: role, Sites: sites}, nil
}
