// Command idmd serves the idm identity service for C3-PRO studies and has
// admin subcommands that work directly on its store.
//
// Usage:
//
//	idmd [serve] [flags]                       run the service (default)
//	idmd user add <email> [--admin] [--password-stdin]
//	idmd user list
//	idmd user delete <email>
//	idmd user passwd <email> [--password-stdin]
//	idmd backup <file>                         copy the bbolt file
//	idmd migrate --from <mongodb URI> [--from-db NAME] [--from-collection c3pro_idm] [--dry-run]
//	idmd audit verify [--export FILE --verifier KEY]
//	idmd audit export [--since T] [--until T] [--format jsonl|csv] [-o FILE]
//	idmd audit keygen                          print a new checkpoint signing key
//	idmd subject erase <sssid> --reason "…"     erase personal data, keep the log verifiable
//	idmd subject import [--dry-run] [--format csv|jsonl] [--actor EMAIL] [--batch N] FILE
//	                                           create subjects in bulk (exit 3: rows were rejected)
//	idmd version
//
// Every command takes the configuration flags (see idmd serve -h); each flag
// has an environment variable, and a flag that is given wins. Flags may stand
// before or after positional arguments.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], stdio{
		in: os.Stdin, out: os.Stdout, err: os.Stderr, getenv: os.Getenv,
	}))
}

// stdio is what a command reads and writes, so tests can run commands in
// process.
type stdio struct {
	in     io.Reader
	out    io.Writer
	err    io.Writer
	getenv func(string) string
}

// Exit codes.
const (
	exitOK     = 0
	exitFail   = 1
	exitConfig = 2
	// exitRejected ends an import that ran to its end but refused rows.
	exitRejected = 3
)

type command struct {
	name, usage string
	run         func(ctx context.Context, args []string, std stdio) int
}

func commands() []command {
	return []command{
		{"serve", "run the service (the default command)", serve},
		{"user", "manage users: add, list, delete, passwd", userCmd},
		{"backup", "write a consistent copy of the bbolt database to a file", backupCmd},
		{"migrate", "bring over the database of the original C3-PRO IDM service", migrateCmd},
		{"audit", "the tamper-evident audit log: verify, export, keygen", auditCmd},
		{"subject", "subjects in bulk: import; erase a subject's personal data (GDPR Art. 17): erase", subjectCmd},
		{"version", "print the version", versionCmd},
	}
}

func run(ctx context.Context, args []string, std stdio) int {
	name := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(ctx, args, std)
		}
	}
	if name != "help" {
		fmt.Fprintf(std.err, "idmd: unknown command %q\n", name)
	}
	fmt.Fprintln(std.err, "usage: idmd <command> [flags] [arguments]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(std.err, "  %-8s %s\n", c.name, c.usage)
	}
	if name == "help" {
		return exitOK
	}
	return exitConfig
}

// parse parses a command's flags (configuration flags and its own, which
// define adds) and returns the configuration and the positional arguments.
// On an error it prints one line and returns the exit code to use.
func parse(name string, args []string, std stdio, define func(fs *flag.FlagSet)) (*config, []string, int) {
	fs := flag.NewFlagSet("idmd "+name, flag.ContinueOnError)
	fs.SetOutput(std.err)
	build := configFlags(fs, std.getenv)
	if define != nil {
		define(fs)
	}
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil, nil, exitOK
	}
	if err != nil {
		return nil, nil, exitConfig // the flag package printed the error
	}
	cfg, err := build()
	if err != nil {
		fmt.Fprintf(std.err, "idmd: %v\n", err)
		return nil, nil, exitConfig
	}
	return cfg, pos, -1
}

// newLogger returns the logger the configuration asks for, writing to w.
func newLogger(cfg *config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	var h slog.Handler
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(contextHandler{h})
}

// version is the module version idmd was built from, with the VCS revision
// when the build recorded one.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v += " " + s.Value
		case "vcs.modified":
			if s.Value == "true" {
				v += " (modified)"
			}
		}
	}
	return v + " " + bi.GoVersion
}

func versionCmd(_ context.Context, args []string, std stdio) int {
	if len(args) > 0 {
		fmt.Fprintln(std.err, "usage: idmd version")
		return exitConfig
	}
	fmt.Fprintln(std.out, "idmd", version())
	return exitOK
}
