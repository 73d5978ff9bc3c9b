package smtptest_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c3-pro/idm/internal/smtptest"
	"github.com/jordan-wright/email"
)

// send delivers raw from -> to through the server at addr with net/smtp,
// using STARTTLS when tlsConf is set and implicit TLS when implicit is set.
func send(t *testing.T, addr string, auth smtp.Auth, tlsConf *tls.Config, implicit bool, from, to string, raw []byte) error {
	t.Helper()
	var conn net.Conn
	var err error
	d := &net.Dialer{Timeout: 5 * time.Second}
	if implicit {
		conn, err = tls.DialWithDialer(d, "tcp", addr, tlsConf)
	} else {
		conn, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return err
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	c, err := smtp.NewClient(conn, "127.0.0.1")
	if err != nil {
		return err
	}
	defer c.Close()
	if tlsConf != nil && !implicit {
		if err := c.StartTLS(tlsConf); err != nil {
			return err
		}
	}
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			return err
		}
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(raw); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func multipartMessage(t *testing.T) []byte {
	t.Helper()
	e := email.NewEmail()
	e.From = "IDM <idm@example.org>"
	e.To = []string{"alice@example.org"}
	e.Subject = "Grüße: reset"
	e.Text = []byte("Hello Alice,\nopen https://idm.example.org/reset?k=abc_DEF-123 to continue. A long line that is longer than seventy-six characters, so it is soft-wrapped.\n")
	e.HTML = []byte(`<p>Hello Alice, <a href="https://idm.example.org/reset?k=abc_DEF-123">reset</a> = done</p>`)
	raw, err := e.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestServer(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     smtptest.Options
		scheme   string
		tls      bool
		implicit bool
	}{
		{name: "Plain", opts: smtptest.Options{}, scheme: "smtp"},
		{name: "StartTLS", opts: smtptest.Options{TLS: smtptest.StartTLS, RequireTLS: true}, scheme: "smtp", tls: true},
		{name: "ImplicitTLS", opts: smtptest.Options{TLS: smtptest.ImplicitTLS}, scheme: "smtps", tls: true, implicit: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.StartWith(t, tc.opts)
			u, err := url.Parse(srv.URL())
			if err != nil {
				t.Fatal(err)
			}
			pw, _ := u.User.Password()
			if u.Scheme != tc.scheme || u.Host != srv.Addr() || u.User.Username() != smtptest.DefaultUsername || pw != smtptest.DefaultPassword {
				t.Fatalf("URL() = %s", srv.URL())
			}
			if !strings.HasPrefix(srv.Addr(), "127.0.0.1:") {
				t.Fatalf("Addr() = %s, want loopback", srv.Addr())
			}
			auth := smtp.PlainAuth("", srv.Username(), srv.Password(), "127.0.0.1")
			raw := multipartMessage(t)
			if err := send(t, srv.Addr(), auth, srv.ClientTLSConfig(), tc.implicit, "idm@example.org", "alice@example.org", raw); err != nil {
				t.Fatalf("send: %v", err)
			}
			m := srv.Wait(t, 1)[0]
			if m.ParseErr != nil {
				t.Fatalf("ParseErr: %v", m.ParseErr)
			}
			if m.From != "idm@example.org" || len(m.To) != 1 || m.To[0] != "alice@example.org" {
				t.Errorf("envelope = %q -> %q", m.From, m.To)
			}
			if m.TLS != tc.tls || m.AuthUser != smtptest.DefaultUsername {
				t.Errorf("TLS = %v, AuthUser = %q", m.TLS, m.AuthUser)
			}
			if m.Subject != "Grüße: reset" {
				t.Errorf("Subject = %q", m.Subject)
			}
			if !strings.Contains(m.Text, "https://idm.example.org/reset?k=abc_DEF-123 to continue") || !strings.Contains(m.Text, "seventy-six characters, so it is soft-wrapped") {
				t.Errorf("Text = %q", m.Text)
			}
			if !strings.Contains(m.HTML, `href="https://idm.example.org/reset?k=abc_DEF-123"`) || !strings.Contains(m.HTML, "= done") {
				t.Errorf("HTML = %q", m.HTML)
			}
			if got := m.Header.Get("To"); !strings.Contains(got, "alice@example.org") {
				t.Errorf("To header = %q", got)
			}
			if len(srv.MessagesTo("ALICE@example.org")) != 1 || len(srv.MessagesTo("bob@example.org")) != 0 {
				t.Errorf("MessagesTo does not select by recipient")
			}
		})
	}
}

func TestServerRefuses(t *testing.T) {
	raw := []byte("Subject: x\r\n\r\nbody\r\n")
	t.Run("WrongPassword", func(t *testing.T) {
		srv := smtptest.Start(t)
		err := send(t, srv.Addr(), smtp.PlainAuth("", "user", "wrong", "127.0.0.1"), nil, false, "a@example.org", "b@example.org", raw)
		var perr *textproto.Error
		if !errors.As(err, &perr) || perr.Code != 535 {
			t.Fatalf("send = %v, want 535", err)
		}
	})
	t.Run("NoAuth", func(t *testing.T) {
		srv := smtptest.Start(t)
		err := send(t, srv.Addr(), nil, nil, false, "a@example.org", "b@example.org", raw)
		var perr *textproto.Error
		if !errors.As(err, &perr) || perr.Code != 502 {
			t.Fatalf("send = %v, want 502", err)
		}
	})
	t.Run("RequireTLS", func(t *testing.T) {
		srv := smtptest.StartWith(t, smtptest.Options{TLS: smtptest.StartTLS, RequireTLS: true, NoAuth: true})
		err := send(t, srv.Addr(), nil, nil, false, "a@example.org", "b@example.org", raw)
		var perr *textproto.Error
		if !errors.As(err, &perr) || perr.Code != 530 {
			t.Fatalf("send = %v, want 530", err)
		}
	})
	t.Run("Reject", func(t *testing.T) {
		srv := smtptest.Start(t)
		srv.SetReject(func(smtptest.Message) error { return errors.New("mailbox full") })
		auth := smtp.PlainAuth("", srv.Username(), srv.Password(), "127.0.0.1")
		err := send(t, srv.Addr(), auth, nil, false, "a@example.org", "b@example.org", raw)
		var perr *textproto.Error
		if !errors.As(err, &perr) || perr.Code != 554 {
			t.Fatalf("send = %v, want 554", err)
		}
		srv.SetReject(nil)
		if err := send(t, srv.Addr(), auth, nil, false, "a@example.org", "b@example.org", raw); err != nil {
			t.Fatal(err)
		}
		if n := len(srv.Messages()); n != 1 {
			t.Fatalf("%d messages captured, want 1", n)
		}
	})
}

func TestWaitConcurrent(t *testing.T) {
	srv := smtptest.StartWith(t, smtptest.Options{NoAuth: true})
	if strings.Contains(srv.URL(), "@") {
		t.Fatalf("URL() = %s carries credentials with NoAuth", srv.URL())
	}
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- send(t, srv.Addr(), nil, nil, false, "a@example.org", "b@example.org", []byte("Subject: "+string(rune('a'+i))+"\r\n\r\nx\r\n"))
		})
	}
	msgs := srv.Wait(t, n)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(msgs) != n {
		t.Fatalf("Wait returned %d messages", len(msgs))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := srv.WaitContext(ctx, n+1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitContext for more than arrived = %v", err)
	}
}

// Servers that never get a connection stop cleanly (Close racing Serve).
func TestIdleStop(t *testing.T) {
	for range 20 {
		t.Run("", func(t *testing.T) {
			for _, mode := range []smtptest.TLSMode{smtptest.NoTLS, smtptest.StartTLS, smtptest.ImplicitTLS} {
				smtptest.StartWith(t, smtptest.Options{TLS: mode})
			}
		})
	}
}
