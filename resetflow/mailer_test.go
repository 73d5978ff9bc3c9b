package resetflow_test

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/c3-pro/idm/internal/smtptest"
	"github.com/c3-pro/idm/resetflow"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewSMTPMailer(t *testing.T) {
	for _, tc := range []struct {
		name, url, from string
		addr            string // "" when an error is expected
	}{
		{"Submission", "smtp://user:secret@mail.example.org", "idm@example.org", "mail.example.org:587"},
		{"SMTPS", "smtps://user:secret@mail.example.org", "IDM <idm@example.org>", "mail.example.org:465"},
		{"Port", "smtp://mail.example.org:2525", "idm@example.org", "mail.example.org:2525"},
		{"IPv6", "smtp://[::1]:25", "idm@example.org", "[::1]:25"},
		{"Slash", "smtp://mail.example.org/", "idm@example.org", "mail.example.org:587"},
		{"Scheme", "http://user:secret@mail.example.org", "idm@example.org", ""},
		{"NoHost", "smtp://user:secret@", "idm@example.org", ""},
		{"Path", "smtp://user:secret@mail.example.org/x", "idm@example.org", ""},
		{"Query", "smtp://user:secret@mail.example.org?tls=no", "idm@example.org", ""},
		{"Port0", "smtp://user:secret@mail.example.org:0", "idm@example.org", ""},
		{"Unparsable", "smtp://user:secret@mail.example.org:x y", "idm@example.org", ""},
		{"From", "smtp://user:secret@mail.example.org", "not an address", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := resetflow.NewSMTPMailer(tc.url, tc.from)
			if tc.addr == "" {
				require.Error(t, err)
				assert.NotContains(t, err.Error(), "secret", "errors never show the password")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.addr, m.Addr())
		})
	}
}

func TestSMTPMailerSend(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts smtptest.Options
		tls  bool
	}{
		{"PlainLoopback", smtptest.Options{}, false},
		{"StartTLS", smtptest.Options{TLS: smtptest.StartTLS, RequireTLS: true}, true},
		{"ImplicitTLS", smtptest.Options{TLS: smtptest.ImplicitTLS}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.StartWith(t, tc.opts)
			m, err := resetflow.NewSMTPMailer(srv.URL(), "IDM <idm@example.org>", resetflow.WithTLSConfig(srv.ClientTLSConfig()), resetflow.WithHelo("idm.example.org"))
			require.NoError(t, err)
			require.NoError(t, m.Ping(t.Context()))
			assert.Equal(t, resetflow.MailOK, resetflow.MailStatus(t.Context(), m))
			err = m.Send(t.Context(), resetflow.Message{
				To: "Alice Example <alice@example.org>", Subject: "Grüezi – set a password",
				Text: "Open https://idm.example.org/reset?k=abc\n", HTML: "<p>Open <a href=\"https://idm.example.org/reset?k=abc\">this</a></p>",
			})
			require.NoError(t, err)
			got := srv.Wait(t, 1)[0]
			assert.Equal(t, "idm@example.org", got.From)
			assert.Equal(t, []string{"alice@example.org"}, got.To)
			assert.Equal(t, tc.tls, got.TLS)
			assert.Equal(t, smtptest.DefaultUsername, got.AuthUser)
			assert.Equal(t, "Grüezi – set a password", got.Subject)
			assert.Equal(t, "Open https://idm.example.org/reset?k=abc\n", got.Text)
			assert.Contains(t, got.HTML, `href="https://idm.example.org/reset?k=abc"`)
			assert.Equal(t, `"IDM" <idm@example.org>`, got.Header.Get("From"))
			assert.Contains(t, got.Header.Get("To"), "<alice@example.org>")
		})
	}
	t.Run("TextOnly", func(t *testing.T) {
		srv := smtptest.Start(t)
		m, err := resetflow.NewSMTPMailer(srv.URL(), "idm@example.org")
		require.NoError(t, err)
		require.NoError(t, m.Send(t.Context(), resetflow.Message{To: "bob@example.org", Subject: "s", Text: "only text"}))
		got := srv.Wait(t, 1)[0]
		assert.Equal(t, "only text", strings.TrimRight(got.Text, "\n"), "SMTP ends the data with a line break")
		assert.Empty(t, got.HTML)
	})
}

func TestSMTPMailerRefuses(t *testing.T) {
	t.Run("UntrustedCertificate", func(t *testing.T) {
		// STARTTLS is offered but the certificate is not trusted: no
		// fallback to plain text.
		srv := smtptest.StartWith(t, smtptest.Options{TLS: smtptest.StartTLS})
		m, err := resetflow.NewSMTPMailer(srv.URL(), "idm@example.org")
		require.NoError(t, err)
		err = m.Send(t.Context(), resetflow.Message{To: "a@example.org", Subject: "s", Text: "t"})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "STARTTLS")
		assert.Empty(t, srv.Messages())
		assert.Equal(t, resetflow.MailError, resetflow.MailStatus(t.Context(), m))
	})
	t.Run("WrongPassword", func(t *testing.T) {
		srv := smtptest.Start(t)
		u, _ := url.Parse(srv.URL())
		u.User = url.UserPassword("user", "wrong-secret")
		m, err := resetflow.NewSMTPMailer(u.String(), "idm@example.org")
		require.NoError(t, err)
		err = m.Send(t.Context(), resetflow.Message{To: "a@example.org", Subject: "s", Text: "t"})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "AUTH")
		assert.NotContains(t, err.Error(), "wrong-secret")
		assert.Error(t, m.Ping(t.Context()))
	})
	t.Run("NoAuthOffered", func(t *testing.T) {
		srv := smtptest.StartWith(t, smtptest.Options{NoAuth: true})
		m, err := resetflow.NewSMTPMailer("smtp://user:pass@"+srv.Addr(), "idm@example.org")
		require.NoError(t, err)
		err = m.Send(t.Context(), resetflow.Message{To: "a@example.org", Subject: "s", Text: "t"})
		assert.ErrorIs(t, err, resetflow.ErrAuthUnsupported)
	})
	t.Run("BadMessage", func(t *testing.T) {
		srv := smtptest.Start(t)
		m, err := resetflow.NewSMTPMailer(srv.URL(), "idm@example.org")
		require.NoError(t, err)
		assert.Error(t, m.Send(t.Context(), resetflow.Message{To: "not an address", Subject: "s", Text: "t"}))
		assert.Error(t, m.Send(t.Context(), resetflow.Message{To: "a@example.org", Subject: "s\r\nBcc: x@example.org", Text: "t"}))
		assert.Empty(t, srv.Messages())
	})
	t.Run("Rejected", func(t *testing.T) {
		srv := smtptest.Start(t)
		srv.SetReject(func(smtptest.Message) error { return errors.New("no thanks") })
		m, err := resetflow.NewSMTPMailer(srv.URL(), "idm@example.org")
		require.NoError(t, err)
		err = m.Send(t.Context(), resetflow.Message{To: "a@example.org", Subject: "s", Text: "t"})
		assert.ErrorContains(t, err, "no thanks")
	})
	t.Run("Disabled", func(t *testing.T) {
		assert.Equal(t, resetflow.MailDisabled, resetflow.MailStatus(t.Context(), nil))
	})
}

// silentServer accepts connections and never says anything.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	return ln.Addr().String()
}

func TestSMTPMailerTimeouts(t *testing.T) {
	addr := silentServer(t)
	msg := resetflow.Message{To: "a@example.org", Subject: "s", Text: "t"}
	t.Run("ContextDeadline", func(t *testing.T) {
		m, err := resetflow.NewSMTPMailer("smtp://"+addr, "idm@example.org")
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		err = m.Send(ctx, msg)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Less(t, time.Since(start), 5*time.Second)
	})
	t.Run("Cancel", func(t *testing.T) {
		m, err := resetflow.NewSMTPMailer("smtp://"+addr, "idm@example.org")
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		err = m.Send(ctx, msg)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Less(t, time.Since(start), 5*time.Second)
	})
	t.Run("MailerTimeout", func(t *testing.T) {
		m, err := resetflow.NewSMTPMailer("smtps://"+addr, "idm@example.org", resetflow.WithTimeout(200*time.Millisecond))
		require.NoError(t, err)
		start := time.Now()
		err = m.Ping(t.Context())
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Less(t, time.Since(start), 5*time.Second)
		assert.True(t, strings.Contains(err.Error(), addr))
	})
	t.Run("Refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		ln.Close()
		m, err := resetflow.NewSMTPMailer("smtp://"+addr, "idm@example.org")
		require.NoError(t, err)
		assert.Error(t, m.Send(t.Context(), msg))
	})
}
