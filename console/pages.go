package console

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
)

// view is what every page template gets.
type view struct {
	Title string
	// Root is the relative path from the page to /console/ ("./",
	// "../", ...), so that links and forms work under a path prefix.
	Root string
	// Me is the signed-in user; nil on the sign-in and error pages.
	Me *idm.Principal
	// Can is what Me's role allows, from the API's one rule
	// ([idm.Principal.May]): what it may not do is not offered.
	Can     perms
	Section string // the navigation entry of the page
	Flash   string // a confirmation of what was just done
	Error   string // a message about the form as a whole
	// Errors are messages about single form fields, by field name.
	Errors map[string]string
	// Form holds the values entered, by field name.
	Form map[string]string
	Data any
}

// perms tells which parts of the console a user's role may use.
type perms struct {
	Subjects, WriteSubjects, SubjectAudits, Audit, Users, MoveSubjects bool
}

func permsOf(p *idm.Principal) perms {
	return perms{
		Subjects:      p.May(idm.ReadSubjects),
		WriteSubjects: p.May(idm.WriteSubjects),
		SubjectAudits: p.May(idm.ReadSubjectAudits),
		Audit:         p.May(idm.ReadAllAudits),
		Users:         p.May(idm.ManageUsers),
		MoveSubjects:  p.May(idm.MoveSubjects),
	}
}

// Err returns the message about field, if any.
func (v view) Err(field string) string { return v.Errors[field] }

// Val returns the value entered for field.
func (v view) Val(field string) string { return v.Form[field] }

// pageNames are the page templates; each is parsed with layout.html.
var pageNames = []string{"signin", "home", "subjects", "subject_new", "subject", "print", "users", "account", "audit", "error"}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"when":     formatWhen,
		"day":      formatDay,
		"unix":     formatUnix,
		"path":     url.PathEscape,
		"status":   subjectStatus,
		"join":     strings.Join,
		"sortLink": sortLink,
		"hasRole":  func(roles []string, r string) bool { return slices.Contains(roles, r) },
		"field":    newField,
		"fieldv":   newFieldDefault,
	}
	pages := make(map[string]*template.Template, len(pageNames))
	sub, err := fs.Sub(files, "templates")
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(sub, "layout.html", "input.html", name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: parsing the %s page: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// rootOf returns the relative path from r's page to /console/.
func rootOf(r *http.Request) string {
	rest := strings.TrimPrefix(r.URL.EscapedPath(), "/console/")
	n := strings.Count(rest, "/")
	if n == 0 {
		return "./"
	}
	return strings.Repeat("../", n)
}

// render writes page name with v.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	v.Root = rootOf(r)
	if v.Me != nil {
		v.Can = permsOf(v.Me)
	}
	var buf bytes.Buffer
	if err := h.pages[name].Execute(&buf, v); err != nil {
		h.log.ErrorContext(r.Context(), "rendering a console page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail answers with the error page.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	h.render(w, r, status, "error", view{Title: http.StatusText(status), Error: msg})
}

// redirect answers 303 with a Location relative to the page, so that it
// works under a path prefix.
func redirect(w http.ResponseWriter, target string) {
	w.Header().Set("Location", target)
	w.WriteHeader(http.StatusSeeOther)
}

// req is one request of a signed-in user.
type req struct {
	h     *Handler
	w     http.ResponseWriter
	r     *http.Request
	l     live
	root  string
	token string
}

// api calls the API in-process as the session's user.
func (c *req) api(method, path string, query url.Values, body any) (result, error) {
	if c.token == "" {
		t, err := c.h.tokens.IssueSessionToken(c.l.user, tokenTTL)
		if err != nil {
			return result{}, err
		}
		c.token = t
	}
	return c.h.callAPI(c.r, c.token, method, path, query, body)
}

// view returns a view for the page with the user filled in.
func (c *req) view(title, section string) view {
	return view{Title: title, Me: c.l.principal, Section: section, Flash: flashes[c.r.URL.Query().Get("done")]}
}

// render writes page name.
func (c *req) render(status int, name string, v view) { c.h.render(c.w, c.r, status, name, v) }

// refused answers an API error that no form field explains: the API's
// status and message on the error page. A 401 means the user's tokens
// were revoked meanwhile: sign in again.
func (c *req) refused(res result) {
	if res.Status == http.StatusUnauthorized {
		redirect(c.w, c.root+"signin")
		return
	}
	if res.Status == http.StatusForbidden && res.Message() == auth.MsgEnrolmentRequired {
		redirect(c.w, c.root+"account")
		return
	}
	msg := res.Message()
	if res.Status >= 500 {
		msg = "The service could not do this just now. Try again shortly."
	}
	c.h.fail(c.w, c.r, res.Status, msg)
}

// form reads r's form (bounded) and returns it as a map of the first
// values.
func (c *req) form() (map[string]string, error) {
	return readForm(c.w, c.r)
}

func readForm(w http.ResponseWriter, r *http.Request) (map[string]string, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return nil, err
	}
	m := make(map[string]string, len(r.PostForm))
	for k, v := range r.PostForm {
		if len(v) > 0 {
			m[k] = strings.TrimSpace(v[0])
		}
	}
	return m, nil
}

// flashes are the confirmations a redirect after a change names in its
// "done" parameter.
var flashes = map[string]string{
	"created":   "The subject has been created.",
	"saved":     "Your changes have been saved.",
	"unchanged": "Nothing was changed.",
	"consent":   "The consent date has been recorded.",
	"withdrawn": "The withdrawal date has been recorded.",
	"link":      "A new enrolment link has been created.",
	"revoked":   "The link has been revoked.",
	"invited":   "The invitation has been sent.",
	"user":      "The user has been updated.",
	"password":  "Your password has been changed.",
	"totp-off":  "Your second factor has been removed.",
	"signedout": "You have signed out.",
	"ended":     "Your session has ended. Please sign in again.",
}

// authed wraps a page of signed-in users: without a live session the
// browser is sent to sign in; a session that cannot be checked (the store
// is down) is a 503, never a page.
func (h *Handler) authed(fn func(c *req) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l, err := h.check(r)
		root := rootOf(r)
		switch {
		case errors.Is(err, errNoSession):
			if h.cookieID(r) != "" {
				http.SetCookie(w, h.sessionCookie(""))
				redirect(w, root+"signin?done=ended")
				return
			}
			redirect(w, root+"signin")
			return
		case err != nil:
			h.log.ErrorContext(r.Context(), "checking a console session", "err", err)
			h.fail(w, r, http.StatusServiceUnavailable, "The service is unavailable just now. Try again shortly.")
			return
		}
		if h.requireTOTP && !l.principal.TOTP && !strings.HasPrefix(r.URL.Path, "/console/account") {
			redirect(w, root+"account")
			return
		}
		c := &req{h: h, w: w, r: r, l: l, root: root}
		if err := fn(c); err != nil {
			h.log.ErrorContext(r.Context(), "console page", "path", r.URL.Path, "err", err)
			h.fail(w, r, http.StatusInternalServerError, "Something went wrong. Try again shortly.")
		}
	})
}

// routes builds the console's mux.
func (h *Handler) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /console/static/style.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(h.style)
	})
	m.HandleFunc("GET /console/signin", h.signinPage)
	m.HandleFunc("POST /console/signin", h.signin)
	m.HandleFunc("POST /console/signout", h.signout)
	m.Handle("GET /console/{$}", h.authed(h.home))
	m.Handle("GET /console/subjects", h.authed(h.subjects))
	m.Handle("GET /console/subjects/new", h.authed(h.newSubjectPage))
	m.Handle("POST /console/subjects/new", h.authed(h.createSubject))
	m.Handle("GET /console/subjects/{sssid}", h.authed(h.subject))
	m.Handle("POST /console/subjects/{sssid}", h.authed(h.editSubject))
	m.Handle("POST /console/subjects/{sssid}/consent", h.authed(h.setDate("date_consented", "consent")))
	m.Handle("POST /console/subjects/{sssid}/withdraw", h.authed(h.setDate("date_withdrawn", "withdrawn")))
	m.Handle("POST /console/subjects/{sssid}/links", h.authed(h.createLink))
	m.Handle("POST /console/subjects/{sssid}/links/{jti}/revoke", h.authed(h.revokeLink))
	m.Handle("GET /console/subjects/{sssid}/links/{jti}/print", h.authed(h.printLink))
	m.Handle("GET /console/users", h.authed(h.users))
	m.Handle("POST /console/users", h.authed(h.invite))
	m.Handle("POST /console/users/{id}", h.authed(h.updateUser))
	m.Handle("GET /console/account", h.authed(h.account))
	m.Handle("POST /console/account/password", h.authed(h.changePassword))
	m.Handle("POST /console/account/totp", h.authed(h.startTOTP))
	m.Handle("POST /console/account/totp/confirm", h.authed(h.confirmTOTP))
	m.Handle("POST /console/account/totp/remove", h.authed(h.removeTOTP))
	m.Handle("GET /console/audit", h.authed(h.audit))
	m.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, http.StatusNotFound, "There is no such page.")
	})
	h.mux = m
	// Every state-changing request (the sign-in's too) must come from the
	// console's own origin.
	h.root = h.cop.Handler(m)
}

// home is GET /console/.
func (h *Handler) home(c *req) error {
	v := c.view("Home", "home")
	c.render(http.StatusOK, "home", v)
	return nil
}

// formatWhen shows an RFC 3339 time stamp as a UTC date and time.
func formatWhen(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// formatDay shows a stored date (RFC 3339 date or date-time) as its date.
func formatDay(s string) string {
	if len(s) >= 10 {
		if _, err := time.Parse("2006-01-02", s[:10]); err == nil {
			return s[:10]
		}
	}
	return s
}

// formatUnix shows a Unix time as a UTC date and time.
func formatUnix(n int64) string {
	if n == 0 {
		return ""
	}
	return time.Unix(n, 0).UTC().Format("2006-01-02 15:04 UTC")
}

// field is what the "input" template shows: a labelled input with its
// error message tied to it.
type field struct {
	ID, Name, Label, Type, Value, Autocomplete, Error string
	Required                                          bool
}

// newField returns the field name of v's form.
func newField(v view, name, label, typ string, required bool, autocomplete string) field {
	f := field{ID: name, Name: name, Label: label, Type: typ, Value: v.Val(name), Autocomplete: autocomplete,
		Error: v.Err(name), Required: required}
	if typ == "date" {
		f.Value = formatDay(f.Value)
	}
	if typ == "password" {
		f.Value = "" // never sent back
	}
	return f
}

// newFieldDefault returns a required field name of v's form whose value is
// def unless one was entered.
func newFieldDefault(v view, name, label, typ, def string) field {
	f := newField(v, name, label, typ, true, "off")
	if f.Value == "" {
		f.Value = def
	}
	return f
}
