package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/c3-pro/idm/idm"
)

// backuper is a store that can write a consistent copy of itself while it
// serves requests (boltstore).
type backuper interface {
	Backup(ctx context.Context, w io.Writer) (int64, error)
}

// backupCmd writes a consistent copy of the bbolt database to a file. The
// file is written under a temporary name, synced and then renamed, so a
// backup that fails half-way never leaves a truncated file behind.
func backupCmd(ctx context.Context, args []string, std stdio) int {
	cfg, pos, code := parse("backup", args, std, nil)
	if code >= 0 {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(std.err, "usage: idmd backup <file> [flags]")
		return exitConfig
	}
	if cfg.MongoURI != "" {
		fmt.Fprintln(std.err, "idmd: backup copies the bbolt file; with IDM_MONGO_URI set, back up MongoDB with mongodump")
		return exitConfig
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		fmt.Fprintf(std.err, "idmd: %v\n  (a running idmd serves an online copy to admins at GET /admin/backup)\n", err)
		return exitFail
	}
	defer store.Close()
	n, err := writeFileAtomic(pos[0], func(w io.Writer) (int64, error) {
		return store.(backuper).Backup(ctx, w)
	})
	if err != nil {
		fmt.Fprintf(std.err, "idmd: backup: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(std.out, "wrote %d bytes to %s\n", n, pos[0])
	return exitOK
}

func writeFileAtomic(path string, write func(io.Writer) (int64, error)) (int64, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name()) // after a successful rename this finds nothing
	n, err := write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	return n, err
}

// backupHandler serves GET /admin/backup: an online, consistent copy of the
// bbolt database, for admins only. Every download is audited first.
func backupHandler(b backuper, audits idm.AuditStore, require func(http.Handler) http.Handler) http.Handler {
	return require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := idm.PrincipalFrom(r.Context())
		switch {
		case !ok:
			idm.WriteError(w, r, nil, idm.E(idm.ErrUnauthorized, "Authorization Required"))
			return
		case !p.Admin:
			idm.WriteError(w, r, nil, idm.E(idm.ErrForbidden, "only admins may download a backup"))
			return
		}
		if err := audits.AppendAudit(r.Context(), idm.AuditEvent{
			ID: idm.NewID(), Time: idm.Timestamp(time.Now()), Document: p.UserID, DocType: idm.DocAuth,
			ActorID: p.UserID, Actor: p.Username, Action: "download backup",
		}); err != nil {
			idm.WriteError(w, r, nil, err)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="idm-backup.db"`)
		w.Header().Set("Cache-Control", "no-store")
		if _, err := b.Backup(r.Context(), w); err != nil {
			// The status is sent; all that is left is to cut the body short.
			panic(http.ErrAbortHandler)
		}
	}))
}
