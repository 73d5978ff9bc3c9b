package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// floorBody is what the floor server answers: a small JSON body, about
// the size of one subject.
var floorBody = []byte(`{"data":{"sssid":"S-00042","name":"Floor Reference","bday":"1980-05-17","email":"floor@example.org","created":"2026-01-01T00:00:00.000Z"}}` + "\n")

// floorHandler is the minimal net/http handler of the HTTP floor.
func floorHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(floorBody)
	})
}

// floorServer is "idmload floor-server": it serves floorHandler on every
// path, prints "listening <addr>" once it listens, and stops on SIGINT or
// SIGTERM.
func floorServer(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("idmload floor-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(stderr, "idmload floor-server:", err)
		return exitSetup
	}
	srv := &http.Server{Handler: floorHandler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintln(stdout, "listening", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintln(stderr, "idmload floor-server:", err)
		return exitSetup
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return exitOK
}
