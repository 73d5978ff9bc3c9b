package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/c3-pro/idm/auditlog"
	"github.com/c3-pro/idm/boltstore"
	"github.com/c3-pro/idm/idm"
)

// loadAuditLog returns the audit log of store, with the signing key of
// IDM_AUDIT_KEY_FILE or the one kept in the store.
func loadAuditLog(ctx context.Context, cfg *config, store idm.Store, log *slog.Logger, authn func(http.Handler) http.Handler) (*auditlog.Log, error) {
	var (
		key *auditlog.Key
		err error
	)
	if cfg.AuditKeyFile != "" {
		b, rerr := os.ReadFile(cfg.AuditKeyFile)
		if rerr != nil {
			return nil, &configError{s: find(settings(), "IDM_AUDIT_KEY_FILE"), err: fmt.Errorf("cannot read the file: %w", errors.Unwrap(rerr))}
		}
		if key, err = auditlog.ParseKey(string(b)); err != nil {
			return nil, &configError{s: find(settings(), "IDM_AUDIT_KEY_FILE"), err: errors.New("the file does not hold a note signer key (see idmd audit keygen)")}
		}
	} else if key, err = auditlog.LoadOrCreateKey(ctx, store, time.Now()); err != nil {
		return nil, err
	}
	return auditlog.New(auditlog.Config{
		Store: store, Key: key, Interval: cfg.AuditEvery, Authenticate: authn, Logger: log,
	})
}

// auditCmd runs `idmd audit verify|export|keygen`.
func auditCmd(ctx context.Context, args []string, std stdio) int {
	usage := "usage: idmd audit verify [--export FILE --verifier KEY] | export [--since T] [--until T] [--format jsonl|csv] [-o FILE] | keygen"
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(std.err, usage)
		return exitConfig
	}
	sub, args := args[0], args[1:]
	var (
		exportFile, verifier, since, until, format, out string
	)
	cfg, pos, code := parse("audit "+sub, args, std, func(fs *flag.FlagSet) {
		switch sub {
		case "verify":
			fs.StringVar(&exportFile, "export", "", "check this export file offline, without a store")
			fs.StringVar(&verifier, "verifier", "", "the log's verifier key (GET /audit/verifier), for --export")
		case "export":
			fs.StringVar(&since, "since", "", "only records at or after this time (RFC 3339)")
			fs.StringVar(&until, "until", "", "only records before this time (RFC 3339)")
			fs.StringVar(&format, "format", auditlog.FormatJSONL, "jsonl or csv")
			fs.StringVar(&out, "o", "", "write to this file instead of standard output")
		}
	})
	if code >= 0 {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintln(std.err, usage)
		return exitConfig
	}
	switch sub {
	case "keygen":
		skey, err := auditlog.GenerateKey()
		if err != nil {
			fmt.Fprintf(std.err, "idmd: audit keygen: %v\n", err)
			return exitFail
		}
		fmt.Fprintln(std.out, skey)
		return exitOK
	case "verify":
		if exportFile != "" {
			return verifyExport(exportFile, verifier, std)
		}
		if verifier != "" {
			fmt.Fprintln(std.err, "idmd: audit verify: --verifier goes with --export")
			return exitConfig
		}
	case "export":
		if format != auditlog.FormatJSONL && format != auditlog.FormatCSV {
			fmt.Fprintln(std.err, "idmd: audit export: --format must be jsonl or csv")
			return exitConfig
		}
	default:
		fmt.Fprintln(std.err, usage)
		return exitConfig
	}
	var o auditlog.ExportOptions
	for _, t := range []struct {
		name, v string
		dst     *time.Time
	}{{"since", since, &o.Since}, {"until", until, &o.Until}} {
		if t.v == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339Nano, t.v)
		if err != nil {
			fmt.Fprintf(std.err, "idmd: audit export: --%s must be an RFC 3339 time such as 2026-11-30T00:00:00Z\n", t.name)
			return exitConfig
		}
		*t.dst = v
	}
	o.Format = format
	last := time.Now()
	o.Progress = func(done, total int64) {
		if time.Since(last) >= time.Second || done == total {
			fmt.Fprintf(std.err, "exported %d of %d records\n", done, total)
			last = time.Now()
		}
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		fmt.Fprintf(std.err, "idmd: %v\n", err)
		return exitFail
	}
	defer store.Close()
	l, err := loadAuditLog(ctx, cfg, store, newLogger(cfg, std.err), nil)
	if err != nil {
		fmt.Fprintf(std.err, "idmd: %v\n", err)
		return exitFail
	}
	if sub == "export" {
		return exportLog(ctx, l, o, out, std)
	}
	return verifyStore(ctx, store, l, std)
}

// verifyStore checks the whole log in the store; progress goes to stderr.
func verifyStore(ctx context.Context, store idm.Store, l *auditlog.Log, std stdio) int {
	// Records appended since the last sync enter the tree first (as a
	// running idmd would add them), so that the whole log is checked.
	if _, err := l.Sync(ctx); err != nil {
		var ve *auditlog.Error
		if !errors.As(err, &ve) {
			fmt.Fprintf(std.err, "idmd: audit verify: extending the tree: %v\n", err)
		}
	}
	last := time.Now()
	rep, err := auditlog.Verify(ctx, store, l.VerifierKey(), func(done, total int64) {
		if time.Since(last) >= time.Second || done == total {
			fmt.Fprintf(std.err, "verified %d of %d records\n", done, total)
			last = time.Now()
		}
	})
	return verifyResult(rep, err, std)
}

func verifyResult(rep auditlog.Report, err error, std stdio) int {
	if err != nil {
		var ve *auditlog.Error
		if errors.As(err, &ve) {
			fmt.Fprintf(std.out, "FAILED: %v\n", ve)
		} else {
			fmt.Fprintf(std.err, "idmd: audit verify: %v\n", err)
		}
		return exitFail
	}
	fmt.Fprintln(std.out, rep)
	for _, e := range rep.Erased {
		fmt.Fprintf(std.out, "erased: seq %d by %s at %s (erasure record seq %d): %s\n", e.Seq, e.By, idm.FormatTime(e.At), e.Record, e.Reason)
	}
	return exitOK
}

// verifyExport checks an export file offline.
func verifyExport(path, verifier string, std stdio) int {
	if verifier == "" {
		fmt.Fprintln(std.err, "idmd: audit verify --export needs --verifier KEY (GET /audit/verifier)")
		return exitConfig
	}
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(std.err, "idmd: audit verify: %v\n", err)
		return exitFail
	}
	defer f.Close()
	rep, err := auditlog.VerifyExport(f, verifier)
	return verifyResult(rep, err, std)
}

// exportLog writes the export to out (standard output when empty).
func exportLog(ctx context.Context, l *auditlog.Log, o auditlog.ExportOptions, out string, std stdio) int {
	var w io.Writer = std.out
	var f *os.File
	if out != "" {
		var err error
		if f, err = os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
			fmt.Fprintf(std.err, "idmd: audit export: %v\n", err)
			return exitFail
		}
		w = f
	}
	n, err := l.Export(ctx, w, o)
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(std.err, "idmd: audit export: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(std.err, "wrote %d records\n", n)
	return exitOK
}

// subjectCmd runs `idmd subject erase SSSID --reason "…"` and `idmd
// subject import` (see importCmd).
func subjectCmd(ctx context.Context, args []string, std stdio) int {
	usage := `usage: idmd subject erase <sssid> --reason "…" | import [--dry-run] [--format csv|jsonl] [--actor EMAIL] FILE`
	if len(args) > 0 && args[0] == "import" {
		return importCmd(ctx, args[1:], std)
	}
	if len(args) == 0 || args[0] != "erase" {
		fmt.Fprintln(std.err, usage)
		return exitConfig
	}
	var reason string
	cfg, pos, code := parse("subject erase", args[1:], std, func(fs *flag.FlagSet) {
		fs.StringVar(&reason, "reason", "", "why the subject's personal data is erased (kept in the audit log)")
	})
	if code >= 0 {
		return code
	}
	if len(pos) != 1 || reason == "" {
		fmt.Fprintln(std.err, usage)
		return exitConfig
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		fmt.Fprintf(std.err, "idmd: %v\n", err)
		return exitFail
	}
	l, err := loadAuditLog(ctx, cfg, store, newLogger(cfg, std.err), nil)
	if err != nil {
		store.Close()
		fmt.Fprintf(std.err, "idmd: %v\n", err)
		return exitFail
	}
	res, err := l.Erase(ctx, store, pos[0], reason, idm.Principal{Username: cliActor})
	if err == nil {
		_, err = l.Checkpoint(ctx)
	}
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(std.err, "idmd: subject erase: %s\n", idm.MessageOf(err))
		if idm.StatusOf(err) >= 500 {
			fmt.Fprintf(std.err, "  cause: %v\n", err)
		}
		return exitFail
	}
	if cfg.MongoURI == "" {
		// bbolt keeps the old bytes in free pages: rewrite the file.
		if err := boltstore.Compact(cfg.DB); err != nil {
			fmt.Fprintf(std.err, "idmd: subject erase: compacting %s: %v\n", cfg.DB, err)
			return exitFail
		}
	}
	fmt.Fprintf(std.out, "erased the personal data of %s from %d audit records (erasure record seq %d)\n", res.SSSID, len(res.Records), res.Seq)
	return exitOK
}
