package idm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"time"
)

// DefaultLinkTTL is how long a minted enrolment-link JWT stays valid unless
// [Config.LinkTTL] says otherwise.
const DefaultLinkTTL = 24 * time.Hour

// Paging limits of the list endpoints (GET /subject, GET /audit).
const (
	DefaultPerPage = 50
	MaxPerPage     = 1000
)

// Size limits of strings in request bodies and queries, in bytes (see
// API.md, "Everywhere").
const (
	MaxSSSIDLen    = 128
	MaxNameLen     = 256
	MaxUsernameLen = 254
	MaxStringLen   = 4096
	// MaxExtraBytes bounds the encoded size of a subject's additional
	// (client-defined) fields in all.
	MaxExtraBytes = 16 << 10
)

// changeTimeout bounds a request that changes records once it runs
// detached from its client (see detached), and the writing of a
// compensating audit record.
const changeTimeout = 30 * time.Second

// HandlerStore is what [Handler] needs from a store: subjects, enrolment
// links and the audit trail. Every [Store] is a HandlerStore.
type HandlerStore interface {
	SubjectStore
	LinkStore
	AuditStore
}

// Config configures [NewHandler].
type Config struct {
	// Store keeps subjects, links and audit records. Required.
	Store HandlerStore
	// LinkTokens issues and verifies enrolment-link JWTs (package auth has
	// the implementation). Required.
	LinkTokens LinkTokens
	// Authenticate is the staff-token middleware (package auth's Require):
	// it refuses requests without a valid staff token and puts the
	// *[Principal] into the request context. Required; every route except
	// POST /establish is wrapped in it. Handlers also check for the
	// principal themselves and answer 401 without one, so a middleware that
	// lets a request through unauthenticated still fails closed.
	Authenticate func(http.Handler) http.Handler
	// Logger receives server-side errors; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxBodyBytes bounds request bodies; 0 means [DefaultMaxBodyBytes].
	MaxBodyBytes int64
	// LinkTTL is the lifetime of a minted link JWT; 0 means
	// [DefaultLinkTTL].
	LinkTTL time.Duration
	// DefaultSite is the site of a subject created without one by a
	// caller who has not exactly one site; "" means [DefaultSiteCode].
	DefaultSite string
	// MaxActiveLinks bounds the links of one subject that can still be
	// established (not revoked, not established, not expired): creating
	// another is a 409. 0 means [DefaultMaxActiveLinks].
	MaxActiveLinks int
	// QRCode draws text as a PNG image of a QR code, for
	// GET /link/{jti}/qr.png (package qrpng's Encode, at error correction
	// level M or better, with a quiet zone). Required.
	QRCode func(text string) ([]byte, error)
}

// DefaultSiteCode is the default of [Config.DefaultSite].
const DefaultSiteCode = "main"

// DefaultMaxActiveLinks is the default of [Config.MaxActiveLinks].
const DefaultMaxActiveLinks = 20

// Handler serves the IDM API: subjects, enrolment links, audit trails and
// POST /establish (see API.md). It is an [http.Handler] over an [Mux]; a
// host that has its own mux can register the same routes with
// [Handler.Install] instead. Mount it as it is, not behind the staff-token
// middleware: it wraps the staff routes in [Config.Authenticate] itself and
// leaves POST /establish, which the mobile app authenticates with a link
// JWT, outside it.
type Handler struct {
	store   HandlerStore
	tokens  LinkTokens
	authn   func(http.Handler) http.Handler
	log     *slog.Logger
	now     func() time.Time
	maxBody int64
	linkTTL time.Duration
	// maxLinks is Config.MaxActiveLinks with its default.
	maxLinks int
	qrCode   func(text string) ([]byte, error)
	// site is Config.DefaultSite with its default.
	site   string
	mux    *Mux
	audits *AuditWriter
}

// NewHandler validates c, fills in its defaults and returns the API handler.
func NewHandler(c Config) (*Handler, error) {
	switch {
	case c.Store == nil:
		return nil, errors.New("idm: NewHandler: Config.Store is required")
	case c.LinkTokens == nil:
		return nil, errors.New("idm: NewHandler: Config.LinkTokens is required")
	case c.Authenticate == nil:
		return nil, errors.New("idm: NewHandler: Config.Authenticate is required (the staff-token middleware)")
	case c.QRCode == nil:
		return nil, errors.New("idm: NewHandler: Config.QRCode is required (package qrpng's Encode draws link QR codes)")
	case c.MaxBodyBytes < 0:
		return nil, fmt.Errorf("idm: NewHandler: Config.MaxBodyBytes is negative (%d)", c.MaxBodyBytes)
	case c.LinkTTL < 0:
		return nil, fmt.Errorf("idm: NewHandler: Config.LinkTTL is negative (%s)", c.LinkTTL)
	case c.DefaultSite != "" && !ValidSite(c.DefaultSite):
		return nil, fmt.Errorf("idm: NewHandler: Config.DefaultSite %q is not a site code (1 to %d characters of A-Z, a-z, 0-9, _ and -)", c.DefaultSite, MaxSiteLen)
	case c.MaxActiveLinks < 0:
		return nil, fmt.Errorf("idm: NewHandler: Config.MaxActiveLinks is negative (%d)", c.MaxActiveLinks)
	}
	h := &Handler{
		store:    c.Store,
		tokens:   c.LinkTokens,
		authn:    c.Authenticate,
		log:      c.Logger,
		now:      c.Now,
		maxBody:  c.MaxBodyBytes,
		linkTTL:  c.LinkTTL,
		maxLinks: c.MaxActiveLinks,
		qrCode:   c.QRCode,
		mux:      NewMux(),
	}
	if h.site = c.DefaultSite; h.site == "" {
		h.site = DefaultSiteCode
	}
	if h.maxLinks == 0 {
		h.maxLinks = DefaultMaxActiveLinks
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.maxBody == 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if h.linkTTL == 0 {
		h.linkTTL = DefaultLinkTTL
	}
	h.audits = NewAuditWriter(h.store, h.clock, h.log)
	h.Install(h.mux.Handle)
	return h, nil
}

// ServeHTTP serves the API's routes; unknown paths and methods get JSON 404
// and 405 answers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

// Install registers the API's routes (Go 1.22 patterns such as
// "GET /subject/{sssid}") with handle, e.g. a host mux's Handle method.
// Staff routes come wrapped in [Config.Authenticate].
func (h *Handler) Install(handle func(pattern string, h http.Handler)) {
	staff := func(fn staffFunc) http.Handler { return h.authn(h.serve(h.requirePrincipal(fn))) }
	// Routes that change records run detached from the client (see
	// detached); the token check before them still ends with the client.
	changes := func(fn staffFunc) http.Handler {
		return staff(func(w http.ResponseWriter, r *http.Request, p *Principal) error {
			ctx, cancel := detached(r.Context())
			defer cancel()
			return fn(w, r.WithContext(ctx), p)
		})
	}
	// Each route checks the caller's role first (see needs), and the
	// subject's site where it has one (see visibleSubject, visibleLink).
	handle("POST /subject", changes(needs(WriteSubjects, h.createSubject)))
	handle("GET /subject", staff(needs(ReadSubjects, h.listSubjects)))
	handle("GET /subject/{sssid}", staff(needs(ReadSubjects, h.getSubject)))
	handle("PUT /subject/{sssid}", changes(needs(WriteSubjects, h.updateSubject)))
	handle("POST /subject/{sssid}/links", changes(needs(WriteSubjects, h.createLink)))
	handle("GET /subject/{sssid}/links", staff(needs(ReadSubjects, h.listLinks)))
	handle("GET /subject/{sssid}/audits", staff(needs(ReadSubjectAudits, h.subjectAudits)))
	handle("GET /link/{jti}", staff(needs(ReadSubjects, h.getLink)))
	handle("PUT /link/{jti}", changes(needs(WriteSubjects, h.updateLink)))
	handle("DELETE /link/{jti}", changes(needs(WriteSubjects, h.revokeLink)))
	handle("GET /link/{jti}/jwt", changes(needs(WriteSubjects, h.linkJWT)))   // the first call mints the JWT
	handle("GET /link/{jti}/qr.png", changes(needs(WriteSubjects, h.linkQR))) // the same JWT, as a QR code
	handle("GET /audit", staff(needs(ReadAllAudits, h.listAudits)))
	handle("POST /establish", h.serve(func(w http.ResponseWriter, r *http.Request) error {
		ctx, cancel := detached(r.Context())
		defer cancel()
		return h.establish(w, r.WithContext(ctx))
	}))
}

// detached returns a context with ctx's values that ctx's end does not
// cancel, bounded by changeTimeout. Handlers that change records run under
// it: a store write that a cancelled context interrupts may still have been
// carried out (MongoDB commits a write whose driver has stopped waiting),
// and the handler would then write a compensating "failed" record about a
// change that exists. So a change, once begun, runs to its end even if the
// client goes away, and the audit trail says what happened.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), changeTimeout)
}

// staffFunc is a handler of a staff route: it runs with the authenticated
// principal and returns an error to be written as the JSON error envelope.
type staffFunc func(w http.ResponseWriter, r *http.Request, p *Principal) error

// requirePrincipal fails closed: without a principal in the context (the
// authentication middleware was not installed) the request gets a 401.
func (h *Handler) requirePrincipal(fn staffFunc) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			return E(ErrUnauthorized, "Authorization Required")
		}
		return fn(w, r, p)
	}
}

// serve adapts an error-returning handler: errors become the JSON error
// envelope (5xx causes are logged, never shown), and a panic becomes a
// logged 500 instead of a dropped connection.
func (h *Handler) serve(fn func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
			h.log.ErrorContext(r.Context(), "handler panicked", "method", r.Method, "pattern", r.Pattern,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			WriteError(w, r, nil, fmt.Errorf("panic: %v", p))
		}()
		if err := fn(w, r); err != nil {
			WriteError(w, r, h.log, err)
		}
	})
}

// clock returns the current time as stores keep it.
func (h *Handler) clock() time.Time { return Timestamp(h.now()) }

// after returns the current time, but strictly after t, so that records
// written one after the other in a request sort in that order.
func (h *Handler) after(t time.Time) time.Time {
	n := h.clock()
	if !n.After(t) {
		n = t.Add(time.Millisecond)
	}
	return n
}

// newAudit returns an audit record of action on a document, by p (nil when
// no staff user acts, as at /establish), at the given time. Its ID is
// replaced by an ordered one when h.audits writes it.
func newAudit(p *Principal, docType, doc, action string, at time.Time, old, new json.RawMessage) AuditEvent {
	e := AuditEvent{
		ID: NewID(), Time: at, Document: doc, DocType: docType, Action: action,
		Old: old, New: new,
	}
	if p != nil {
		e.ActorID, e.Actor = p.UserID, p.Username
	}
	return e
}

// record writes the audit record e first and then applies the change; when
// the change fails it appends a compensating record ("<action> failed", or
// "<action> outcome unknown" when the store cannot tell whether the write
// was applied; see [AuditWriter.Settle]) and returns the change's error. So no
// change exists without its record.
func (h *Handler) record(ctx context.Context, e AuditEvent, apply func() error) error {
	_, err := h.recordAt(ctx, e, apply)
	return err
}

// recordAt is record that also returns a time not before that of the last
// record it wrote (e's, or the compensating record's).
//
// apply runs under the context its closure captured; the handlers of the
// routes that change records run under a detached one (see detached), so
// that a client that goes away cannot interrupt a write whose record is
// written. The compensating record is written under a detached context of
// its own, so also when ctx has ended (e.g. its time ran out).
func (h *Handler) recordAt(ctx context.Context, e AuditEvent, apply func() error) (time.Time, error) {
	e, err := h.audits.Append(ctx, e)
	if err != nil {
		return e.Time, fmt.Errorf("append audit %q on %s %s: %w", e.Action, e.DocType, e.Document, err)
	}
	err = apply()
	if err == nil {
		return e.Time, nil
	}
	cctx, cancel := detached(ctx)
	defer cancel()
	err = h.audits.Settle(cctx, []AuditEvent{e}, err, nil)
	return h.after(e.Time), err
}

// msgStale answers a change that kept losing to concurrent changes of the
// same record.
const msgStale = "the record was changed by someone else at the same time; please try again"

// change is a write that a read-modify-write handler planned from the
// records it has just read, with the audit record that describes it.
type change struct {
	doc      string          // the ID of the record the audit record is about
	action   string          // the audit action; "" for nothing to record
	old, new json.RawMessage // the audit values
	// write makes the change; it passes the Rev of the records the plan
	// read, so that it fails with ErrStale if they have changed since. It
	// is nil when there is nothing to write.
	write func() error
}

// sameRecord reports whether c and d are described by the same audit
// record.
func (c change) sameRecord(d change) bool {
	return c.doc == d.doc && c.action == d.action && bytes.Equal(c.old, d.old) && bytes.Equal(c.new, d.new)
}

// commit makes a read-modify-write change with optimistic concurrency (see
// [Store], "Revisions"), so that a concurrent change of the same record is
// never overwritten. plan reads the current records and plans the change at
// the given time, or fails (typically with a 4xx because the change no
// longer applies to the records as they are now); its error is returned as
// it is. A change without a write but with an action gets just its audit
// record (a PUT that changes nothing); one with neither is nothing to do.
// Otherwise the audit record comes first and then the write (see record).
//
// When the write fails with ErrStale, plan runs again on the fresh records.
// If it plans a change with the same audit record, that write is tried in
// its place, under the same record. If it plans another change, the first
// record gets its compensating record and the new change is recorded and
// written afresh; if it fails, the first record gets its compensating
// record and plan's error is returned. At most [DefaultStaleAttempts]
// writes are tried; the last ErrStale is then answered as a 409.
func (h *Handler) commit(ctx context.Context, p *Principal, docType string, now time.Time, plan func(now time.Time) (change, error)) error {
	c, err := plan(now)
	writes := 0
	for {
		if err != nil {
			return err
		}
		if c.write == nil {
			if c.action == "" {
				return nil
			}
			if _, err := h.audits.Append(ctx, newAudit(p, docType, c.doc, c.action, now, nil, nil)); err != nil {
				return fmt.Errorf("append audit: %w", err)
			}
			return nil
		}
		replan := false
		e := newAudit(p, docType, c.doc, c.action, now, c.old, c.new)
		var last time.Time
		last, err = h.recordAt(ctx, e, func() error {
			for {
				err := c.write()
				writes++
				if !errors.Is(err, ErrStale) || writes >= DefaultStaleAttempts {
					return err
				}
				next, perr := plan(now)
				if perr != nil {
					return perr
				}
				if next.write == nil || !next.sameRecord(c) {
					replan = true
					return err
				}
				c = next
			}
		})
		switch {
		case errors.Is(err, ErrStale) && !replan:
			return Wrap(ErrConflict, msgStale, err)
		case !replan:
			return err
		}
		now = h.after(last)
		c, err = plan(now)
	}
}

// mustJSON marshals v, which is always one of this package's own
// marshalable view types; it returns nil if that ever fails.
func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

// notFound turns a store's ErrNotFound into the API's 404 `Not Found` and
// passes other errors on.
func notFound(err error) error {
	if errors.Is(err, ErrNotFound) {
		return Wrap(ErrNotFound, "Not Found", err)
	}
	return err
}

// queryParams parses the request's query string strictly: malformed escapes
// and repeated parameters are refused. Parameters the API does not know are
// ignored (older frontends send e.g. `page`).
type queryParams struct{ v url.Values }

func parseQuery(r *http.Request) (queryParams, error) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return queryParams{}, Wrap(ErrInvalid, "malformed query string", err)
	}
	return queryParams{v}, nil
}

// get returns the single value of key, "" when it is absent.
func (q queryParams) get(key string) (string, error) {
	vs := q.v[key]
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	default:
		return "", E(ErrInvalid, fmt.Sprintf("query parameter %q given more than once", key))
	}
}

// str returns the value of key, at most max bytes long.
func (q queryParams) str(key string, max int) (string, error) {
	s, err := q.get(key)
	if err != nil {
		return "", err
	}
	if len(s) > max {
		return "", E(ErrInvalid, fmt.Sprintf("query parameter %q is longer than %d bytes", key, max))
	}
	return s, nil
}

// paging returns offset (default 0) and perpage (default [DefaultPerPage],
// 1 to [MaxPerPage]).
func (q queryParams) paging() (offset, perpage int, err error) {
	const maxOffset = 1 << 30
	if offset, err = q.intIn("offset", 0, 0, maxOffset); err != nil {
		return 0, 0, err
	}
	if perpage, err = q.intIn("perpage", DefaultPerPage, 1, MaxPerPage); err != nil {
		return 0, 0, err
	}
	return offset, perpage, nil
}

func (q queryParams) intIn(key string, def, lo, hi int) (int, error) {
	s, err := q.get(key)
	if err != nil || s == "" {
		return def, err
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, E(ErrInvalid, fmt.Sprintf("query parameter %q must be an integer from %d to %d, not %q", key, lo, hi, clip(s)))
	}
	return n, nil
}

// clip shortens s for an error message.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && s[cut]&0xC0 == 0x80 { // do not split a UTF-8 sequence
		cut--
	}
	return s[:cut] + "…"
}

// optionalPaging reads the paging parameters of a list that answers
// everything when none is given: paged reports whether offset or perpage
// is there (then with [queryParams.paging]'s defaults and limits).
func optionalPaging(r *http.Request) (paged bool, offset, perpage int, err error) {
	if r.URL.RawQuery == "" {
		return false, 0, 0, nil
	}
	q, err := parseQuery(r)
	if err != nil {
		return false, 0, 0, err
	}
	if !q.v.Has("offset") && !q.v.Has("perpage") {
		return false, 0, 0, nil
	}
	offset, perpage, err = q.paging()
	return err == nil, offset, perpage, err
}

// page returns the items of s from offset, at most perpage of them.
func page[T any](s []T, offset, perpage int) []T {
	if offset >= len(s) {
		return []T{}
	}
	return s[offset:min(len(s), offset+perpage)]
}

// pageBody is the answer of the list endpoints: a page and the total count.
type pageBody[T any] struct {
	Data  []T `json:"data"`
	Total int `json:"total"`
}
