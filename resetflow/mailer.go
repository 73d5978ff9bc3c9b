package resetflow

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/smtp"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jordan-wright/email"
)

// Message is an email to one recipient, with a plain-text and an optional
// HTML body.
type Message struct {
	To      string // the recipient's address
	Subject string
	Text    string
	HTML    string // "" for a text-only message
}

// Mailer sends email. Implementations must be safe for concurrent use and
// give up when ctx ends.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// Pinger is implemented by mailers that can check their mail server, for a
// status endpoint.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Mail status values returned by [MailStatus].
const (
	mailOK       = "ok"
	mailError    = "error"
	mailDisabled = "disabled"
)

// MailStatus reports the state of m for a status endpoint (idmd's /status
// uses it): "disabled" when m is nil, "error" when m is a [Pinger] whose
// Ping fails, and "ok" otherwise. It never returns error text.
func MailStatus(ctx context.Context, m Mailer) string {
	if m == nil {
		return mailDisabled
	}
	if p, ok := m.(Pinger); ok {
		if err := p.Ping(ctx); err != nil {
			return mailError
		}
	}
	return mailOK
}

// Errors of [SMTPMailer].
var (
	// ErrTLSRequired is returned when a mail server that is not on a
	// loopback address does not offer STARTTLS.
	ErrTLSRequired = errors.New("mail server does not offer STARTTLS")
	// ErrAuthUnsupported is returned when credentials are configured but
	// the server does not offer AUTH.
	ErrAuthUnsupported = errors.New("mail server does not offer AUTH")
)

// defaultMailTimeout bounds one delivery (connect, TLS, authentication and
// transfer) of an [SMTPMailer] unless [WithTimeout] says otherwise.
const defaultMailTimeout = 30 * time.Second

// SMTPMailer sends mail through one SMTP server (a relay or submission
// server). It composes messages with github.com/jordan-wright/email and talks
// SMTP with net/smtp on a connection whose deadline follows the context.
type SMTPMailer struct {
	host     string // host name or IP, without port
	addr     string // host:port
	implicit bool   // smtps: TLS from the first byte
	loopback bool   // host is a loopback address: plain SMTP allowed
	username string
	password string
	hasAuth  bool
	from     string // the From header, e.g. "IDM <idm@example.org>"
	sender   string // envelope sender, e.g. "idm@example.org"
	helo     string
	timeout  time.Duration
	tlsConf  *tls.Config
}

var (
	_ Mailer = (*SMTPMailer)(nil)
	_ Pinger = (*SMTPMailer)(nil)
)

// SMTPOption configures an [SMTPMailer].
type SMTPOption func(*SMTPMailer)

// WithTLSConfig sets the TLS configuration for STARTTLS and smtps (for
// example a pool of trusted roots); its ServerName defaults to the URL's
// host. The configuration is cloned.
func WithTLSConfig(c *tls.Config) SMTPOption {
	return func(m *SMTPMailer) {
		if c != nil {
			m.tlsConf = c.Clone()
		}
	}
}

// WithTimeout bounds each delivery and each Ping (default 30 s); the
// context's deadline applies when it is earlier.
func WithTimeout(d time.Duration) SMTPOption {
	return func(m *SMTPMailer) {
		if d > 0 {
			m.timeout = d
		}
	}
}

// WithHelo sets the name the mailer gives in EHLO (default "localhost").
func WithHelo(name string) SMTPOption {
	return func(m *SMTPMailer) {
		if name != "" {
			m.helo = name
		}
	}
}

// NewSMTPMailer returns a mailer for the server at rawURL that sends as from
// (an address, optionally with a display name: "IDM <idm@example.org>").
//
// rawURL is smtp://[user:password@]host[:port] (port 587 by default; the
// connection is upgraded with STARTTLS when the server offers it, and must be
// unless host is a loopback address) or smtps://[user:password@]host[:port]
// (TLS from the first byte, port 465 by default). Credentials are sent with
// PLAIN authentication, which net/smtp allows only over TLS or to a loopback
// host. The URL may have no path, query or fragment.
func NewSMTPMailer(rawURL, from string, opts ...SMTPOption) (*SMTPMailer, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// The error text of url.Parse quotes the URL, credentials included.
		return nil, errors.New("resetflow: mail URL is not a valid URL")
	}
	m := &SMTPMailer{helo: "localhost", timeout: defaultMailTimeout}
	var port string
	switch strings.ToLower(u.Scheme) {
	case "smtp":
		port = "587"
	case "smtps":
		port, m.implicit = "465", true
	default:
		return nil, fmt.Errorf("resetflow: mail URL scheme %q: want smtp or smtps", u.Scheme)
	}
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("resetflow: mail URL must be scheme://[user:password@]host[:port]")
	}
	m.host = u.Hostname()
	if m.host == "" {
		return nil, errors.New("resetflow: mail URL has no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("resetflow: mail URL port %q is invalid", p)
		}
		port = p
	}
	m.addr = net.JoinHostPort(m.host, port)
	m.loopback = isLoopback(m.host)
	if u.User != nil {
		m.username = u.User.Username()
		m.password, _ = u.User.Password()
		m.hasAuth = m.username != ""
	}
	addr, err := mail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("resetflow: sender address %q: %w", from, err)
	}
	m.from, m.sender = addr.String(), addr.Address
	for _, o := range opts {
		o(m)
	}
	if m.tlsConf == nil {
		m.tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if m.tlsConf.ServerName == "" {
		m.tlsConf.ServerName = m.host
	}
	return m, nil
}

// isLoopback reports whether host is "localhost" or a loopback IP address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Addr returns the mail server's host:port (never the credentials).
func (m *SMTPMailer) Addr() string { return m.addr }

// Send delivers msg to msg.To. It fails when msg.To is not an address, when
// the server cannot be reached or refuses the message, or when ctx ends.
func (m *SMTPMailer) Send(ctx context.Context, msg Message) error {
	to, err := mail.ParseAddress(msg.To)
	if err != nil {
		return fmt.Errorf("resetflow: recipient: %w", err)
	}
	if strings.ContainsAny(msg.Subject, "\r\n") {
		return errors.New("resetflow: subject contains a line break")
	}
	e := &email.Email{
		From:    m.from,
		To:      []string{to.String()},
		Subject: msg.Subject,
		Text:    []byte(msg.Text),
	}
	if msg.HTML != "" {
		e.HTML = []byte(msg.HTML)
	}
	raw, err := e.Bytes()
	if err != nil {
		return fmt.Errorf("resetflow: compose message: %w", err)
	}
	return m.session(ctx, func(c *smtp.Client) error {
		if err := c.Mail(m.sender); err != nil {
			return fmt.Errorf("MAIL FROM: %w", err)
		}
		if err := c.Rcpt(to.Address); err != nil {
			return fmt.Errorf("RCPT TO: %w", err)
		}
		w, err := c.Data()
		if err != nil {
			return fmt.Errorf("DATA: %w", err)
		}
		if _, err := w.Write(raw); err != nil {
			return fmt.Errorf("DATA: %w", err)
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("DATA: %w", err)
		}
		return nil
	})
}

// Ping connects to the server, negotiates TLS, authenticates and says NOOP,
// so it fails for the reasons a delivery would fail before the message.
func (m *SMTPMailer) Ping(ctx context.Context) error {
	return m.session(ctx, func(c *smtp.Client) error { return c.Noop() })
}

// session opens a connection, negotiates TLS and authentication, runs fn
// and quits. The connection's deadline is the earlier of ctx's deadline and
// the mailer's timeout, and cancelling ctx interrupts any blocked I/O.
func (m *SMTPMailer) session(ctx context.Context, fn func(*smtp.Client) error) (err error) {
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	defer func() {
		if err != nil {
			cerr := ctx.Err()
			if cerr == nil && errors.Is(err, os.ErrDeadlineExceeded) {
				// The connection's deadline is ctx's; its timer may fire a
				// moment before ctx reports it.
				cerr = context.DeadlineExceeded
			}
			if cerr != nil && !errors.Is(err, cerr) {
				err = fmt.Errorf("%w (%w)", cerr, err)
			}
			err = fmt.Errorf("resetflow: smtp %s: %w", m.addr, err)
		}
	}()

	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			return err
		}
	}
	// Cancellation (not only the deadline) interrupts blocked reads/writes.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if m.implicit {
		tc := tls.Client(conn, m.tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("TLS handshake: %w", err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	defer c.Close()
	if err := c.Hello(m.helo); err != nil {
		return fmt.Errorf("EHLO: %w", err)
	}
	if !m.implicit {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(m.tlsConf); err != nil {
				return fmt.Errorf("STARTTLS: %w", err)
			}
		} else if !m.loopback {
			return ErrTLSRequired
		}
	}
	if m.hasAuth {
		if ok, _ := c.Extension("AUTH"); !ok {
			return ErrAuthUnsupported
		}
		if err := c.Auth(smtp.PlainAuth("", m.username, m.password, m.host)); err != nil {
			return fmt.Errorf("AUTH: %w", err)
		}
	}
	if err := fn(c); err != nil {
		return err
	}
	if err := c.Quit(); err != nil {
		return fmt.Errorf("QUIT: %w", err)
	}
	return nil
}
