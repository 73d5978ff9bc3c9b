// Command embed is a host program that mounts idm's handlers under /idm/ in
// its own mux, next to routes of its own. Run it with
//
//	go run ./examples/embed -addr 127.0.0.1:8080 -db embed.db
//
// then open http://127.0.0.1:8080/idm/init to create the first admin.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/boltstore"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/qrpng"
	"github.com/c3-pro/idm/users"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	db := flag.String("db", "embed.db", "bbolt database file")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	store, err := boltstore.Open(*db)
	if err != nil {
		log.Error("opening the store", "err", err)
		os.Exit(1)
	}
	defer store.Close()
	h, err := newApp(context.Background(), store, log)
	if err != nil {
		log.Error("wiring idm", "err", err)
		os.Exit(1)
	}
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Info("listening", "addr", *addr)
	if err := srv.ListenAndServe(); err != nil {
		log.Error("serving", "err", err)
		os.Exit(1)
	}
}

// newApp returns the host's handler: its own routes, and idm's handlers
// under /idm/.
func newApp(ctx context.Context, store idm.Store, log *slog.Logger) (http.Handler, error) {
	keys, err := auth.LoadOrCreateKeys(ctx, store, time.Now())
	if err != nil {
		return nil, err
	}
	authH, err := auth.New(auth.Config{Store: store, Keys: keys, Logger: log})
	if err != nil {
		return nil, err
	}
	usersH, err := users.New(users.Config{Store: store, Passwords: authH.Passwords(), Authenticate: authH.Require, Logger: log})
	if err != nil {
		return nil, err
	}
	apiH, err := idm.NewHandler(idm.Config{Store: store, LinkTokens: authH.LinkTokens(), Authenticate: authH.Require, Logger: log,
		QRCode: func(text string) ([]byte, error) { return qrpng.Encode(text) }})
	if err != nil {
		return nil, err
	}
	idmMux := idm.NewMux() // JSON 404 and 405 for idm's paths
	authH.Install(idmMux.Handle)
	usersH.Install(idmMux.Handle)
	apiH.Install(idmMux.Handle)

	host := http.NewServeMux()
	host.Handle("/idm/", http.StripPrefix("/idm", idmMux))
	host.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello from the host program")
	})
	// A route of the host's own, guarded by idm's staff tokens.
	host.Handle("GET /whoami", authH.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := idm.PrincipalFrom(r.Context())
		fmt.Fprintf(w, "you are %s\n", p.Username)
	})))
	return host, nil
}
