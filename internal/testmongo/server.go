package testmongo

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
)

// Server is an embedded FerretDB of one test's own, which the test can stop
// and start again on the same address and with the same data, to see what
// happens when the database goes away mid-flight and comes back.
//
// Clients connect to a small TCP relay at [Server.Addr] that forwards to
// FerretDB. [Server.Stop] closes the relay's listener and every relayed
// connection at once, the way a crashed or unplugged server looks to a
// client (FerretDB itself would keep serving connected clients for a few
// seconds after being told to stop), and then stops FerretDB. A stopped
// server refuses connections until [Server.Start].
//
// The methods of a Server are safe for concurrent use. Use [Client] to
// connect to [Server.URI] (it caps the pool at one connection, as FerretDB
// needs for atomic updates).
type Server struct {
	dir string

	life sync.Mutex // held through Start and Stop, so they never overlap

	mu      sync.Mutex
	addr    string       // the relay's address; fixed after the first start
	ln      net.Listener // nil while stopped
	backend *ferret
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup // the accept loop and the relay goroutines
}

// StartServer starts a FerretDB that stores its data in dir (created if
// needed; "" for a new t.TempDir) and listens on addr ("" or a port of 0 for a
// free port on 127.0.0.1). It fails the test if the server cannot start, and
// stops the server when the test ends.
func StartServer(tb testing.TB, dir, addr string) *Server {
	tb.Helper()
	if dir == "" {
		dir = tb.TempDir()
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	s := &Server{dir: dir, addr: addr}
	if err := s.Start(); err != nil {
		tb.Fatalf("testmongo: %v", err)
	}
	tb.Cleanup(s.Stop)
	return s
}

// Addr returns the host:port clients connect to. It stays the same across
// [Server.Stop] and [Server.Start].
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// URI returns the MongoDB connection string of the server.
func (s *Server) URI() string {
	return "mongodb://" + s.Addr() + "/"
}

// Dir returns the directory that holds the server's data.
func (s *Server) Dir() string {
	return s.dir
}

// Running reports whether the server is accepting connections.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ln != nil
}

// Start starts a stopped server again on the same address, with the data it
// had. It does nothing when the server is running, and fails if the address
// has been taken by someone else in the meantime.
func (s *Server) Start() error {
	s.life.Lock()
	defer s.life.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return nil
	}
	backend, err := startFerret(s.dir, "127.0.0.1:0")
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		backend.stop()
		return fmt.Errorf("listen on %s: %w", s.addr, err)
	}
	s.addr = ln.Addr().String()
	s.ln = ln
	s.backend = backend
	s.conns = make(map[net.Conn]struct{})
	s.wg.Add(1)
	go s.accept(ln, backend.addr)
	return nil
}

// Stop drops every client connection, stops FerretDB and waits until it has
// stopped. It does nothing when the server is stopped already.
func (s *Server) Stop() {
	s.life.Lock()
	defer s.life.Unlock()
	s.mu.Lock()
	if s.ln == nil {
		s.mu.Unlock()
		return
	}
	_ = s.ln.Close()
	for c := range s.conns {
		_ = c.Close()
	}
	backend := s.backend
	s.ln, s.backend, s.conns = nil, nil, nil
	s.mu.Unlock()

	s.wg.Wait()
	backend.stop()
}

// Restart stops the server (dropping all connections) and starts it again on
// the same address with the same data.
func (s *Server) Restart() error {
	s.Stop()
	return s.Start()
}

// accept relays every connection accepted on ln to FerretDB at target until
// ln is closed.
func (s *Server) accept(ln net.Listener, target string) {
	defer s.wg.Done()
	for {
		client, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		server, err := net.Dial("tcp", target)
		if err != nil {
			_ = client.Close()
			continue
		}
		s.mu.Lock()
		if s.ln != ln { // stopped while we were dialling
			s.mu.Unlock()
			_ = client.Close()
			_ = server.Close()
			return
		}
		s.conns[client] = struct{}{}
		s.conns[server] = struct{}{}
		s.wg.Add(2)
		s.mu.Unlock()
		go s.relay(client, server)
		go s.relay(server, client)
	}
}

// relay copies from src to dst; when either side ends it closes both.
func (s *Server) relay(dst, src net.Conn) {
	defer s.wg.Done()
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
	s.mu.Lock()
	if s.conns != nil {
		delete(s.conns, dst)
		delete(s.conns, src)
	}
	s.mu.Unlock()
}
