package main

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/c3-pro/idm/console"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/resetflow"
)

// pinger is anything whose health /readyz and /status report.
type pinger interface {
	Ping(ctx context.Context) error
}

// health serves /, /healthz, /readyz and /status (API.md "Health").
type health struct {
	store pinger
	mail  resetflow.Mailer // nil when mail is not configured; its Ping bounded by cachedPing
	// linkSecret is what /status says of the link secret: "ok" or "weak".
	linkSecret string
	// audit says whether checkpoints keep up; nil: not reported.
	audit interface {
		Behind(context.Context) (bool, error)
	}
	timeout time.Duration
}

func (h *health) install(handle func(pattern string, h http.Handler)) {
	// A browser (Accept: text/html) is sent to the staff console.
	handle("GET /{$}", console.RedirectBrowsers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		idm.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})))
	handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		idm.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	handle("GET /readyz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h.ping(r.Context(), h.store); err != nil {
			idm.WriteError(w, r, nil, idm.Wrap(idm.ErrUnavailable, "store unavailable", err))
			return
		}
		idm.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}))
	handle("GET /status", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status := map[string]string{"db": "ok", "link_secret": h.linkSecret}
		if err := h.ping(r.Context(), h.store); err != nil {
			status["db"] = "error"
		}
		if h.audit != nil {
			status["audit_log"] = "ok"
			ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
			behind, err := h.audit.Behind(ctx)
			cancel()
			switch {
			case err != nil:
				status["audit_log"] = "error"
			case behind:
				status["audit_log"] = "behind"
			}
		}
		status["mail"] = resetflow.MailStatus(r.Context(), h.mail)
		idm.WriteData(w, http.StatusOK, status)
	}))
}

func (h *health) ping(ctx context.Context, p pinger) error {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	return p.Ping(ctx)
}

// cachedPing checks a pinger at most once per ttl, with one check in flight
// at a time, and answers from the last result in between: /status needs no
// token, and a mail server check is a whole SMTP session that a flood of
// requests must not multiply.
type cachedPing struct {
	resetflow.Mailer // sends as is; nil in tests of Ping alone
	p                pinger
	ttl              time.Duration
	timeout          time.Duration
	now              func() time.Time

	mu   sync.Mutex
	at   time.Time     // when the last check finished; zero before the first
	err  error         // its result
	wait chan struct{} // closed when the check in flight finishes; nil when none runs
}

// Ping implements pinger.
func (c *cachedPing) Ping(ctx context.Context) error {
	c.mu.Lock()
	if !c.at.IsZero() && c.now().Sub(c.at) < c.ttl {
		err := c.err
		c.mu.Unlock()
		return err
	}
	if w := c.wait; w != nil {
		c.mu.Unlock()
		select {
		case <-w:
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	w := make(chan struct{})
	c.wait = w
	c.mu.Unlock()
	// The check is shared: a caller that goes away must not cut it short.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	err := c.p.Ping(pctx)
	cancel()
	c.mu.Lock()
	c.at, c.err, c.wait = c.now(), err, nil
	c.mu.Unlock()
	close(w)
	return err
}
