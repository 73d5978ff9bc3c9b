package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/c3-pro/idm/boltstore"
	"github.com/c3-pro/idm/idm"
)

// backuper is a store that can write a consistent copy of itself while it
// serves requests (boltstore).
type backuper interface {
	Backup(ctx context.Context, w io.Writer) (int64, error)
}

// backupCmd writes a consistent copy of the bbolt database to a file: from
// the file itself when no idmd runs, or else through the running idmd's admin
// socket (an online copy). The file is written under a temporary name, synced
// and then renamed, so a backup that fails half-way never leaves a truncated
// file behind.
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
	var n int64
	store, err := openStore(ctx, cfg)
	switch {
	case errors.Is(err, boltstore.ErrLocked):
		// A running idmd holds the file: ask it for an online copy.
		socket := adminSocketPath(cfg.DB)
		n, err = writeFileAtomic(pos[0], func(w io.Writer) (int64, error) {
			return fetchOnlineBackup(ctx, socket, w)
		})
		if err != nil {
			fmt.Fprintf(std.err, "idmd: backup: %s is in use by a running idmd, and its admin socket %s did not serve a copy: %v\n", cfg.DB, socket, err)
			return exitFail
		}
	case err != nil:
		fmt.Fprintf(std.err, "idmd: %v\n", err)
		return exitFail
	default:
		defer store.Close()
		n, err = writeFileAtomic(pos[0], func(w io.Writer) (int64, error) {
			return store.(backuper).Backup(ctx, w)
		})
		if err != nil {
			fmt.Fprintf(std.err, "idmd: backup: %v\n", err)
			return exitFail
		}
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

// adminSocketPath is where a running idmd on a bbolt file serves online
// backups: next to the file, so it shares the file's directory permissions.
func adminSocketPath(db string) string { return db + ".sock" }

// serveAdminSocket serves GET /backup on a Unix socket that only the service's
// own user can open (mode 0600): an online, consistent copy of the bbolt file
// for `idmd backup`, which cannot open a file that a running idmd holds. The
// copy holds password hashes and the signing key, so it is never offered over
// TCP. Every copy is audited. It returns a function that stops serving.
func serveAdminSocket(path string, b backuper, audits idm.AuditStore, log *slog.Logger) (func(), error) {
	// Only this process holds the database file, so a socket file left
	// there is a previous run's: remove it.
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /backup", func(w http.ResponseWriter, r *http.Request) {
		if err := audits.AppendAudit(r.Context(), idm.AuditEvent{
			ID: idm.NewID(), Time: idm.Timestamp(time.Now()), DocType: idm.DocAuth,
			Actor: cliActor, Action: "backup",
		}); err != nil {
			http.Error(w, "cannot write the audit record", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		if _, err := b.Backup(r.Context(), w); err != nil {
			log.ErrorContext(r.Context(), "online backup failed", "err", err)
			panic(http.ErrAbortHandler) // the status is sent: cut the body short
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: readHeaderTimeout}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }, nil
}

// fetchOnlineBackup asks the idmd that holds the bbolt file for a copy
// through its admin socket.
func fetchOnlineBackup(ctx context.Context, socket string, w io.Writer) (int64, error) {
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, "GET", "http://idmd/backup", nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("the running idmd answered %s", resp.Status)
	}
	n, err := io.Copy(w, resp.Body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}
