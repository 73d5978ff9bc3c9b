// Package smtptest runs a real SMTP server (github.com/emersion/go-smtp) on a
// loopback port for the duration of a test and captures every message it
// receives, parsed into headers and text and HTML bodies.
//
// A test starts one with [Start] (plain SMTP with PLAIN authentication, which
// this server allows on loopback) or [StartWith] (for example with STARTTLS
// or implicit TLS on a self-signed certificate made for the test), hands
// [Server.URL] to the code under test and reads what arrived with
// [Server.Wait] or [Server.Messages]:
//
//	srv := smtptest.Start(t)
//	mailer, err := resetflow.NewSMTPMailer(srv.URL(), "idm@example.org")
//	// ... send something ...
//	msg := srv.Wait(t, 1)[0]
//	fmt.Println(msg.To, msg.Subject, msg.Text)
package smtptest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// DefaultWait bounds how long [Server.Wait] waits for messages.
const DefaultWait = 10 * time.Second

// Default credentials of a server started by [Start].
const (
	DefaultUsername = "user"
	DefaultPassword = "pass"
)

// TLSMode says whether and how a [Server] offers TLS.
type TLSMode int

// TLS modes of a [Server].
const (
	// NoTLS serves plain SMTP without STARTTLS.
	NoTLS TLSMode = iota
	// StartTLS offers the STARTTLS extension; [Server.URL] is smtp://.
	StartTLS
	// ImplicitTLS speaks TLS from the first byte; [Server.URL] is smtps://.
	ImplicitTLS
)

// Options configure a server started by [StartWith]. The zero value gives a
// plain server that requires PLAIN authentication as user/pass.
type Options struct {
	// Username and Password are the credentials the server accepts; empty
	// means [DefaultUsername] and [DefaultPassword].
	Username, Password string
	// NoAuth accepts mail without authentication and does not advertise
	// AUTH; [Server.URL] then carries no credentials.
	NoAuth bool
	// TLS selects STARTTLS or implicit TLS with a self-signed certificate
	// for 127.0.0.1 and localhost (see [Server.RootCAs]).
	TLS TLSMode
	// RequireTLS refuses AUTH and MAIL before STARTTLS (with [StartTLS]).
	RequireTLS bool
}

// Message is one message the server received.
type Message struct {
	From     string    // envelope sender (MAIL FROM)
	To       []string  // envelope recipients (RCPT TO)
	Data     []byte    // the raw message as received (after DATA)
	AuthUser string    // the authenticated username; "" without AUTH
	TLS      bool      // whether the message was delivered over TLS
	Received time.Time // when the server accepted it

	// Header holds the parsed header fields of the message (nil when the
	// message could not be parsed; see ParseErr).
	Header mail.Header
	// Subject is the decoded Subject header (RFC 2047 words decoded).
	Subject string
	// Text and HTML are the decoded bodies of the first text/plain and
	// text/html parts (or of the single body of that type), with CRLF line
	// ends turned into "\n"; "" when absent.
	Text string
	HTML string
	// ParseErr is the error met while parsing Data, if any.
	ParseErr error
}

// Server is a running SMTP server that captures messages. Its methods are
// safe for concurrent use.
type Server struct {
	addr     string
	opts     Options
	rootCAs  *x509.CertPool
	smtp     *smtp.Server
	done     chan struct{} // closed when Serve returned
	mu       sync.Mutex
	msgs     []Message
	notify   chan struct{} // closed and replaced whenever a message arrives
	rejectFn func(Message) error
}

// Start starts a plain SMTP server on 127.0.0.1 that requires PLAIN
// authentication as [DefaultUsername]/[DefaultPassword]; t's cleanup stops it.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith starts a server configured by o on 127.0.0.1; t's cleanup stops
// it.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Username == "" {
		o.Username = DefaultUsername
	}
	if o.Password == "" {
		o.Password = DefaultPassword
	}
	s := &Server{opts: o, done: make(chan struct{}), notify: make(chan struct{})}

	var tlsConf *tls.Config
	if o.TLS != NoTLS {
		cert, pool, err := selfSignedCert()
		if err != nil {
			t.Fatalf("smtptest: certificate: %v", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s.rootCAs = pool
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	s.addr = ln.Addr().String()
	if o.TLS == ImplicitTLS {
		ln = tls.NewListener(ln, tlsConf)
	}

	logger := &testLogger{t: t}
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "localhost"
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.MaxMessageBytes = 10 << 20
	srv.MaxRecipients = 100
	// The server only listens on loopback, so PLAIN without TLS is allowed
	// unless the test asks for TLS to be required.
	srv.AllowInsecureAuth = !(o.TLS == StartTLS && o.RequireTLS)
	srv.ErrorLog = logger
	if o.TLS == StartTLS {
		srv.TLSConfig = tlsConf
	}
	s.smtp = srv

	go func() {
		defer close(s.done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			logger.Printf("serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		// Serve may not have registered ln yet, so srv.Close may have
		// missed it; closing it here ends Serve either way.
		_ = ln.Close()
		<-s.done
		logger.stop()
	})
	return s
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return s.addr }

// Username returns the username the server accepts.
func (s *Server) Username() string { return s.opts.Username }

// Password returns the password the server accepts.
func (s *Server) Password() string { return s.opts.Password }

// URL returns the server's URL with its credentials:
// smtp://user:pass@127.0.0.1:port (smtps:// with [ImplicitTLS]; no
// credentials with [Options.NoAuth]).
func (s *Server) URL() string {
	u := url.URL{Scheme: "smtp", Host: s.addr}
	if s.opts.TLS == ImplicitTLS {
		u.Scheme = "smtps"
	}
	if !s.opts.NoAuth {
		u.User = url.UserPassword(s.opts.Username, s.opts.Password)
	}
	return u.String()
}

// RootCAs returns a pool holding the server's self-signed certificate (valid
// for 127.0.0.1, ::1 and localhost), for a client's tls.Config; nil when the
// server offers no TLS.
func (s *Server) RootCAs() *x509.CertPool { return s.rootCAs }

// ClientTLSConfig returns a TLS configuration that trusts the server's
// certificate; nil when the server offers no TLS.
func (s *Server) ClientTLSConfig() *tls.Config {
	if s.rootCAs == nil {
		return nil
	}
	return &tls.Config{RootCAs: s.rootCAs, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// SetReject makes the server answer DATA with an error whenever fn returns
// one (for example to test how a sender handles a failing relay); a nil fn
// accepts everything again. Rejected messages are not captured.
func (s *Server) SetReject(fn func(Message) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejectFn = fn
}

// Messages returns a copy of the messages received so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneMessages(s.msgs)
}

// MessagesTo returns the messages received so far that have addr (compared
// case-insensitively) among their envelope recipients, oldest first.
func (s *Server) MessagesTo(addr string) []Message {
	var out []Message
	for _, m := range s.Messages() {
		for _, to := range m.To {
			if strings.EqualFold(to, addr) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// Wait blocks until at least n messages have arrived and returns all of them
// (oldest first). It fails t when they do not arrive within [DefaultWait] or
// before t's context ends. Call it from the test's goroutine.
func (s *Server) Wait(t testing.TB, n int) []Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), DefaultWait)
	defer cancel()
	msgs, err := s.WaitContext(ctx, n)
	if err != nil {
		t.Fatalf("smtptest: %v", err)
	}
	return msgs
}

// WaitContext blocks until at least n messages have arrived and returns all
// of them (oldest first), or returns an error when ctx ends first.
func (s *Server) WaitContext(ctx context.Context, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		if len(s.msgs) >= n {
			msgs := cloneMessages(s.msgs)
			s.mu.Unlock()
			return msgs, nil
		}
		got, ch := len(s.msgs), s.notify
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %d messages, got %d: %w", n, got, ctx.Err())
		}
	}
}

func (s *Server) add(m Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rejectFn != nil {
		if err := s.rejectFn(m); err != nil {
			return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 3, 0}, Message: err.Error()}
		}
	}
	s.msgs = append(s.msgs, m)
	close(s.notify)
	s.notify = make(chan struct{})
	return nil
}

func cloneMessages(in []Message) []Message {
	out := make([]Message, len(in))
	for i, m := range in {
		m.To = append([]string(nil), m.To...)
		m.Data = bytes.Clone(m.Data)
		if m.Header != nil {
			h := make(mail.Header, len(m.Header))
			for k, v := range m.Header {
				h[k] = append([]string(nil), v...)
			}
			m.Header = h
		}
		out[i] = m
	}
	return out
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{srv: s, conn: c}, nil
}

// session is one SMTP connection's state.
type session struct {
	srv      *Server
	conn     *smtp.Conn
	authUser string
	from     string
	to       []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) isTLS() bool {
	_, ok := ss.conn.TLSConnectionState()
	return ok
}

// AuthMechanisms implements smtp.AuthSession.
func (ss *session) AuthMechanisms() []string {
	if ss.srv.opts.NoAuth {
		return nil
	}
	return []string{sasl.Plain}
}

// Auth implements smtp.AuthSession.
func (ss *session) Auth(mech string) (sasl.Server, error) {
	if ss.srv.opts.NoAuth || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username {
			return smtp.ErrAuthFailed
		}
		if username != ss.srv.opts.Username || password != ss.srv.opts.Password {
			return smtp.ErrAuthFailed
		}
		ss.authUser = username
		return nil
	}), nil
}

func (ss *session) checkAllowed() error {
	if ss.srv.opts.TLS == StartTLS && ss.srv.opts.RequireTLS && !ss.isTLS() {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}
	}
	if !ss.srv.opts.NoAuth && ss.authUser == "" {
		return smtp.ErrAuthRequired
	}
	return nil
}

// Mail implements smtp.Session.
func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if err := ss.checkAllowed(); err != nil {
		return err
	}
	ss.from, ss.to = from, nil
	return nil
}

// Rcpt implements smtp.Session.
func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := ss.checkAllowed(); err != nil {
		return err
	}
	ss.to = append(ss.to, to)
	return nil
}

// Data implements smtp.Session.
func (ss *session) Data(r io.Reader) error {
	if err := ss.checkAllowed(); err != nil {
		return err
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Message{
		From:     ss.from,
		To:       append([]string(nil), ss.to...),
		Data:     raw,
		AuthUser: ss.authUser,
		TLS:      ss.isTLS(),
		Received: time.Now(),
	}
	parse(&m)
	return ss.srv.add(m)
}

// Reset implements smtp.Session.
func (ss *session) Reset() { ss.from, ss.to = "", nil }

// Logout implements smtp.Session.
func (ss *session) Logout() error { return nil }

// parse fills m's parsed fields from m.Data.
func parse(m *Message) {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		m.ParseErr = fmt.Errorf("read message: %w", err)
		return
	}
	m.Header = msg.Header
	dec := new(mime.WordDecoder)
	if subj, err := dec.DecodeHeader(msg.Header.Get("Subject")); err == nil {
		m.Subject = subj
	} else {
		m.Subject = msg.Header.Get("Subject")
	}
	if err := walkPart(m, msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body, 0); err != nil {
		m.ParseErr = err
	}
}

// walkPart records the text and HTML bodies of one MIME entity and of its
// subparts.
func walkPart(m *Message, contentType, encoding string, body io.Reader, depth int) error {
	if depth > 10 {
		return errors.New("MIME parts nested too deep")
	}
	if contentType == "" {
		contentType = "text/plain; charset=us-ascii"
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("content type %q: %w", contentType, err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("multipart: %w", err)
			}
			// NextPart already decodes quoted-printable (and then removes
			// the Content-Transfer-Encoding header).
			if err := walkPart(m, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p, depth+1); err != nil {
				return err
			}
		}
	}
	var r io.Reader = body
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, &crlfStripper{r: body})
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("%s body: %w", mt, err)
	}
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	switch {
	case mt == "text/plain" && m.Text == "":
		m.Text = text
	case mt == "text/html" && m.HTML == "":
		m.HTML = text
	}
	return nil
}

// crlfStripper drops line breaks from base64 content.
type crlfStripper struct{ r io.Reader }

func (c *crlfStripper) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	j := 0
	for _, b := range p[:n] {
		if b != '\r' && b != '\n' {
			p[j] = b
			j++
		}
	}
	return j, err
}

// selfSignedCert makes a short-lived ECDSA certificate for 127.0.0.1, ::1 and
// localhost, and a pool that trusts it.
func selfSignedCert() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}

// testLogger forwards the SMTP server's error log to the test log until the
// test's cleanup stops it (logging after a test ended would panic).
type testLogger struct {
	t       testing.TB
	mu      sync.Mutex
	stopped bool
}

func (l *testLogger) Printf(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Logf("smtptest: "+format, v...)
	}
}

func (l *testLogger) Println(v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Log(append([]any{"smtptest:"}, v...)...)
	}
}

func (l *testLogger) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
}
