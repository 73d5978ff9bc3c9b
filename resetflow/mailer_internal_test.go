package resetflow

import (
	"errors"
	"testing"
	"time"

	"github.com/c3-pro/idm/internal/smtptest"
)

// A mail server off loopback must offer STARTTLS. Tests may only reach
// loopback, so this one makes the mailer treat 127.0.0.1 as remote.
func TestTLSRequiredOffLoopback(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts smtptest.Options
		want error
	}{
		{"NoSTARTTLS", smtptest.Options{NoAuth: true}, ErrTLSRequired},
		{"STARTTLS", smtptest.Options{NoAuth: true, TLS: smtptest.StartTLS, RequireTLS: true}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.StartWith(t, tc.opts)
			m, err := NewSMTPMailer(srv.URL(), "idm@example.org", WithTLSConfig(srv.ClientTLSConfig()))
			if err != nil {
				t.Fatal(err)
			}
			if !m.loopback {
				t.Fatal("127.0.0.1 is not taken for loopback")
			}
			m.loopback = false
			err = m.Send(t.Context(), Message{To: "a@example.org", Subject: "s", Text: "t"})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Send = %v, want %v", err, tc.want)
			}
			if n := len(srv.Messages()); (tc.want == nil) != (n == 1) {
				t.Fatalf("%d messages delivered", n)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST": true, "127.0.0.1": true, "127.3.4.5": true, "::1": true,
		"localhost.": false, "mail.example.org": false, "10.0.0.1": false, "::ffff:8.8.8.8": false, "": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[string]string{
		"2h": "2 hours", "72h": "72 hours", "1h": "1 hour", "30m": "30 minutes", "90m": "90 minutes",
		"1m": "1 minute", "45s": "45 seconds", "1s": "1 second", "1h30m": "90 minutes",
	} {
		dur, err := time.ParseDuration(d)
		if err != nil {
			t.Fatal(err)
		}
		if got := humanDuration(dur); got != want {
			t.Errorf("humanDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestWellFormed(t *testing.T) {
	tok, hash := newToken()
	if !wellFormed(tok) || len(hash) != 64 {
		t.Fatalf("newToken() = %q, %q", tok, hash)
	}
	for _, s := range []string{"", tok[:42], tok + "A", tok[:42] + "=", tok[:42] + "+", tok[:42] + "/"} {
		if wellFormed(s) {
			t.Errorf("wellFormed(%q) = true", s)
		}
	}
}
