package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/c3-pro/idm/migrate"
)

// migrateCmd brings over the database of the original service (see package
// migrate) into the configured store: `idmd migrate --from <mongodb URI>
// [--from-db NAME] [--from-collection c3pro_idm] [--dry-run]`.
func migrateCmd(ctx context.Context, args []string, std stdio) int {
	var from, fromDB, fromColl string
	var dryRun bool
	cfg, pos, code := parse("migrate", args, std, func(fs *flag.FlagSet) {
		fs.StringVar(&from, "from", "", "MongoDB URI of the original service's database (required)")
		fs.StringVar(&fromDB, "from-db", "", "database of the original service (default: the database in the --from URI)")
		fs.StringVar(&fromColl, "from-collection", migrate.DefaultCollection, "collection of the original service")
		fs.BoolVar(&dryRun, "dry-run", false, "read and check everything, write nothing")
	})
	if code >= 0 {
		return code
	}
	if len(pos) > 0 || from == "" {
		fmt.Fprintln(std.err, "usage: idmd migrate --from <mongodb URI> [--from-db NAME] [--from-collection c3pro_idm] [--dry-run]")
		return exitConfig
	}
	cs, err := connstring.ParseAndValidate(from)
	if err != nil {
		// The driver's message may quote the URI, credentials included.
		fmt.Fprintln(std.err, "idmd: invalid --from: not a valid MongoDB URI")
		return exitConfig
	}
	if fromDB == "" {
		fromDB = cs.Database
	}
	if fromDB == "" {
		fmt.Fprintln(std.err, "idmd: migrate: name the original database with --from-db or in the --from URI's path")
		return exitConfig
	}
	client, err := mongo.Connect(options.Client().ApplyURI(from).SetServerSelectionTimeout(storeOpenTimeout))
	if err != nil {
		fmt.Fprintf(std.err, "idmd: migrate: connecting to --from: %v\n", err)
		return exitFail
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = client.Disconnect(dctx)
	}()
	store, err := openStore(ctx, cfg)
	if err != nil {
		fmt.Fprintf(std.err, "idmd: %v\n", err)
		return exitFail
	}
	defer store.Close()
	rep, err := migrate.Run(ctx, migrate.Config{
		Source:        client.Database(fromDB).Collection(fromColl),
		Target:        store,
		DryRun:        dryRun,
		Progress:      std.err,
		ProgressEvery: 5 * time.Second,
		Logger:        newLogger(cfg, std.err),
		Usernames:     cfg.Usernames,
	})
	fmt.Fprint(std.out, rep)
	if err != nil {
		fmt.Fprintf(std.err, "idmd: migrate: %v (running it again resumes)\n", err)
		return exitFail
	}
	return exitOK
}
