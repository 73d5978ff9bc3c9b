package users

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"math"
	"mime"
	"net/http"
	"strconv"

	"github.com/c3-pro/idm/idm"
)

// States of the /init page.
const (
	pageForm   = "form"
	pageReady  = "ready"
	pageClosed = "closed"
)

// msgInitialised is the answer of /init once the system has been set up.
const msgInitialised = "already initialised"

// errInitialised is returned by bootstrap when the system is set up already.
var errInitialised = idm.E(idm.ErrConflict, msgInitialised)

// pageData is what the /init page template shows.
type pageData struct {
	Style    template.CSS
	State    string // pageForm, pageReady or pageClosed
	Error    string // a message about the form's input
	Username string // the username entered (form) or created (ready)
	// MinLength is the password policy's least length, when
	// [Config.Passwords] tells it; 0 otherwise.
	MinLength int
}

// initInput is the body of POST /init.
type initInput struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// initStatus is the JSON answer of GET /init while the system is not set up.
type initStatus struct {
	Initialised bool `json:"initialised"`
}

// pageHeaders wraps the /init handler: every answer, page or JSON, is not
// cached, sends no referrer and may not be framed.
func (h *Handler) pageHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Cache-Control", "no-store")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Content-Security-Policy", h.csp)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

// limit applies the per-address limiter.
func (h *Handler) limit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok, retry := h.limiter.Allow(r)
		if ok {
			next.ServeHTTP(w, r)
			return
		}
		secs := int64(math.Ceil(retry.Seconds()))
		if secs < 1 {
			secs = 1
		}
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		h.initFail(w, r, wantsJSON(r), idm.E(idm.ErrTooMany, "too many requests; try again later"), "")
	})
}

// serveInit serves GET and POST /init.
func (h *Handler) serveInit(w http.ResponseWriter, r *http.Request) {
	asJSON := wantsJSON(r)
	open, err := h.initOpen(r.Context())
	if err != nil {
		h.initFail(w, r, asJSON, err, "")
		return
	}
	if !open {
		h.initFail(w, r, asJSON, errInitialised, "")
		return
	}
	if r.Method != http.MethodPost {
		if asJSON {
			idm.WriteData(w, http.StatusOK, initStatus{Initialised: false})
			return
		}
		h.render(w, r, http.StatusOK, pageData{State: pageForm})
		return
	}
	in, err := h.readInit(w, r, asJSON)
	if err != nil {
		h.initFail(w, r, asJSON, err, in.Username)
		return
	}
	u, err := h.svc.Bootstrap(r.Context(), in.Username, in.Password)
	if err != nil {
		h.initFail(w, r, asJSON, err, in.Username)
		return
	}
	if asJSON {
		idm.WriteData(w, http.StatusCreated, u.View())
		return
	}
	h.render(w, r, http.StatusOK, pageData{State: pageReady, Username: u.Username})
}

// initOpen reports whether /init may still create the first admin: no
// enabled admin exists and the bootstrap marker is unset.
func (h *Handler) initOpen(ctx context.Context) (bool, error) {
	done, err := h.store.Bootstrapped(ctx)
	if err != nil {
		return false, fmt.Errorf("users: reading the bootstrap marker: %w", err)
	}
	if done {
		return false, nil
	}
	n, err := h.store.CountAdmins(ctx)
	if err != nil {
		return false, fmt.Errorf("users: counting admins: %w", err)
	}
	return n == 0, nil
}

// readInit reads the body of POST /init: a URL-encoded form, or else JSON
// (any other Content-Type is refused with 415).
func (h *Handler) readInit(w http.ResponseWriter, r *http.Request, asJSON bool) (initInput, error) {
	var in initInput
	if asJSON {
		err := idm.DecodeJSON(w, r, h.maxBody, &in)
		return in, err
	}
	r.Body = http.MaxBytesReader(w, r.Body, h.maxBody)
	if err := r.ParseForm(); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return in, idm.E(idm.ErrTooLarge, fmt.Sprintf("request body too large (limit %d bytes)", mb.Limit))
		}
		return in, idm.Wrap(idm.ErrInvalid, "malformed form", err)
	}
	in.Username = r.PostForm.Get("username")
	in.Password = r.PostForm.Get("password")
	return in, nil
}

// initFail answers an /init request that failed: the JSON error envelope,
// or the page (the form with the message, or "already initialised").
func (h *Handler) initFail(w http.ResponseWriter, r *http.Request, asJSON bool, err error, username string) {
	if asJSON {
		idm.WriteError(w, r, h.log, err)
		return
	}
	status := idm.StatusOf(err)
	if status >= 500 {
		h.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "pattern", r.Pattern, "status", status, "err", err)
	}
	if errors.Is(err, errInitialised) {
		h.render(w, r, status, pageData{State: pageClosed})
		return
	}
	h.render(w, r, status, pageData{State: pageForm, Error: idm.MessageOf(err), Username: username})
}

// render writes the /init page.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, d pageData) {
	d.Style = h.style
	if m, ok := h.passwords.(interface{ MinLength() int }); ok {
		d.MinLength = m.MinLength()
	}
	var buf bytes.Buffer
	if err := h.page.Execute(&buf, d); err != nil {
		idm.WriteError(w, r, h.log, fmt.Errorf("users: rendering the /init page: %w", err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// wantsJSON reports whether an /init request is answered with JSON: a POST
// whose body is not a form (JSON, or something unsupported that gets the
// JSON error envelope), or a GET that prefers JSON (see idm.WantsJSON).
// Browsers get the page.
func wantsJSON(r *http.Request) bool {
	if r.Method == http.MethodPost {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		return err != nil || mt != "application/x-www-form-urlencoded"
	}
	return idm.WantsJSON(r)
}
