package main

import (
	"context"
	"net/http"
	"time"

	"github.com/c3-pro/idm/idm"
)

// pinger is anything whose health /readyz and /status report.
type pinger interface {
	Ping(ctx context.Context) error
}

// health serves /, /healthz, /readyz and /status (API.md "Health").
type health struct {
	store   pinger
	mail    pinger // nil when mail is not configured
	timeout time.Duration
}

func (h *health) install(handle func(pattern string, h http.Handler)) {
	handle("GET /{$}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		idm.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}))
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
		status := map[string]string{"db": "ok", "mail": "disabled"}
		if err := h.ping(r.Context(), h.store); err != nil {
			status["db"] = "error"
		}
		if h.mail != nil {
			status["mail"] = "ok"
			if err := h.ping(r.Context(), h.mail); err != nil {
				status["mail"] = "error"
			}
		}
		idm.WriteData(w, http.StatusOK, status)
	}))
}

func (h *health) ping(ctx context.Context, p pinger) error {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	return p.Ping(ctx)
}
