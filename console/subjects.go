package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/c3-pro/idm/idm"
)

// subjectsPerPage is the length of a page of the subject list.
const subjectsPerPage = 25

// subject is the API's subject JSON, as far as the console shows it.
type subject struct {
	SSSID         string `json:"sssid"`
	Name          string `json:"name"`
	Bday          string `json:"bday"`
	Email         string `json:"email"`
	Site          string `json:"site"`
	DateInvited   string `json:"date_invited"`
	DateConsented string `json:"date_consented"`
	DateEnrolled  string `json:"date_enrolled"`
	DateWithdrawn string `json:"date_withdrawn"`
	Created       string `json:"created"`
	Changed       string `json:"changed"`
}

// link is the API's link JSON, as far as the console shows it.
type link struct {
	ID           string `json:"_id"`
	Created      string `json:"created"`
	Exp          int64  `json:"exp"`
	LinkedTo     string `json:"linked_to"`
	LinkedSystem string `json:"linked_system"`
	LinkedOn     string `json:"linked_on"`
	WithdrawnOn  string `json:"withdrawn_on"`
}

// audit is one record of a subject's audit trail or of GET /audit.
type audit struct {
	Seq      int64           `json:"seq"`
	Datetime string          `json:"datetime"`
	Action   string          `json:"action"`
	Actor    string          `json:"actor"`
	DocType  string          `json:"doctype"`
	Document string          `json:"document"`
	Old      json.RawMessage `json:"old"`
	New      json.RawMessage `json:"new"`
}

// subjectStatus is a subject's state, from its dates.
func subjectStatus(s subject) string {
	switch {
	case s.DateWithdrawn != "":
		return "withdrawn"
	case s.DateEnrolled != "":
		return "enrolled"
	case s.DateConsented != "":
		return "consented"
	case s.DateInvited != "":
		return "invited"
	}
	return "registered"
}

// column is a column of the subject list.
type column struct {
	Key, Label string
	Sortable   bool
}

// subjectColumns are the columns of the subject list; the sortable ones
// are the API's ordercol values.
var subjectColumns = []column{
	{"sssid", "SSSID", true}, {"name", "Name", true}, {"bday", "Birth date", true}, {"email", "Email", true},
	{"site", "Site", false}, {"status", "Status", false},
	{"date_consented", "Consented", true}, {"date_enrolled", "Enrolled", true}, {"date_withdrawn", "Withdrawn", true},
	{"created", "Created", true}, {"changed", "Changed", true},
}

// listQuery is the query of the subject list page.
type listQuery struct {
	Search, Site, OrderCol, OrderDir string
	Page                             int
}

func (q listQuery) values() url.Values {
	v := url.Values{}
	if q.Search != "" {
		v.Set("search", q.Search)
	}
	if q.Site != "" {
		v.Set("site", q.Site)
	}
	if q.OrderCol != "" {
		v.Set("ordercol", q.OrderCol)
		v.Set("orderdir", q.OrderDir)
	}
	return v
}

// sortLink returns the query of the list sorted by col: ascending, or
// descending when it is sorted ascending by col already.
func sortLink(q listQuery, col string) string {
	if q.OrderCol == col && q.OrderDir != "desc" {
		q.OrderDir = "desc"
	} else {
		q.OrderDir = "asc"
	}
	q.OrderCol, q.Page = col, 0
	return "subjects?" + q.values().Encode()
}

// subjectList is the data of the subject list page.
type subjectList struct {
	Query          listQuery
	Columns        []column
	Subjects       []subject
	Total          int
	From, To       int
	Prev, Next     string
	SortedBy, Sort string // the column and "ascending"/"descending"
}

// AriaSort returns the aria-sort value of col's header.
func (l subjectList) AriaSort(col string) string {
	if l.Query.OrderCol != col {
		return ""
	}
	if l.Query.OrderDir == "desc" {
		return "descending"
	}
	return "ascending"
}

// subjects is GET /console/subjects: GET /subject with the search, site
// filter, sort and page.
func (h *Handler) subjects(c *req) error {
	in := c.r.URL.Query()
	q := listQuery{Search: in.Get("search"), Site: in.Get("site"), OrderCol: in.Get("ordercol"),
		OrderDir: strings.ToLower(in.Get("orderdir"))}
	if q.OrderDir != "desc" {
		q.OrderDir = "asc"
	}
	if n, err := strconv.Atoi(in.Get("page")); err == nil && n > 1 {
		q.Page = n
	} else {
		q.Page = 1
	}
	api := q.values()
	api.Set("offset", strconv.Itoa((q.Page-1)*subjectsPerPage))
	api.Set("perpage", strconv.Itoa(subjectsPerPage))
	v := c.view("Subjects", "subjects")
	list := subjectList{Query: q, Columns: subjectColumns}
	res, err := c.api(http.MethodGet, "/subject", api, nil)
	if err != nil {
		return err
	}
	switch {
	case res.Status == http.StatusBadRequest:
		v.Error = res.Message()
	case !res.OK():
		c.refused(res)
		return nil
	default:
		var page struct {
			Data  []subject `json:"data"`
			Total int       `json:"total"`
		}
		if err := json.Unmarshal(res.Body, &page); err != nil {
			return fmt.Errorf("console: decoding the subject list: %w", err)
		}
		list.Subjects, list.Total = page.Data, page.Total
		if len(page.Data) > 0 {
			list.From = (q.Page-1)*subjectsPerPage + 1
			list.To = list.From + len(page.Data) - 1
		}
		if q.Page > 1 {
			p := q.values()
			if q.Page > 2 {
				p.Set("page", strconv.Itoa(q.Page-1))
			}
			list.Prev = "subjects?" + p.Encode()
		}
		if q.Page*subjectsPerPage < page.Total {
			p := q.values()
			p.Set("page", strconv.Itoa(q.Page+1))
			list.Next = "subjects?" + p.Encode()
		}
	}
	v.Data = list
	c.render(http.StatusOK, "subjects", v)
	return nil
}

// newSubjectFields are the fields of the new-subject form, as the API
// names them.
var newSubjectFields = []string{"sssid", "name", "bday", "email", "site", "date_consented"}

// newSubjectPage is GET /console/subjects/new.
func (h *Handler) newSubjectPage(c *req) error {
	v := c.view("New subject", "new")
	if !v.Me.May(idm.WriteSubjects) {
		c.h.fail(c.w, c.r, http.StatusForbidden, "Your role may not create subjects.")
		return nil
	}
	v.Form = map[string]string{}
	c.render(http.StatusOK, "subject_new", v)
	return nil
}

// createSubject is POST /console/subjects/new: POST /subject with the
// form's fields; the API's validation messages go next to their fields.
func (h *Handler) createSubject(c *req) error {
	f, err := c.form()
	if err != nil {
		c.h.fail(c.w, c.r, http.StatusBadRequest, "The form could not be read.")
		return nil
	}
	body := map[string]string{}
	for _, k := range newSubjectFields {
		if f[k] != "" {
			body[k] = f[k]
		}
	}
	res, err := c.api(http.MethodPost, "/subject", nil, body)
	if err != nil {
		return err
	}
	if res.OK() {
		redirect(c.w, "../subjects/"+url.PathEscape(f["sssid"])+"?done=created")
		return nil
	}
	if !formError(res) {
		c.refused(res)
		return nil
	}
	v := c.view("New subject", "new")
	v.Form = f
	v.Errors, v.Error = fieldErrors(res.Message(), newSubjectFields)
	c.render(res.Status, "subject_new", v)
	return nil
}

// formError reports whether res is an error about the request's input,
// shown on the form: 400, 409, 412, 413.
func formError(res result) bool {
	switch res.Status {
	case http.StatusBadRequest, http.StatusConflict, http.StatusPreconditionFailed, http.StatusRequestEntityTooLarge:
		return true
	}
	return false
}

// fieldErrors places an API error message next to the form field it
// names (as `field`, "field" or field:), or else on the whole form.
func fieldErrors(msg string, fields []string) (map[string]string, string) {
	lower := strings.ToLower(msg)
	for _, f := range fields {
		for _, form := range []string{"`" + f + "`", `"` + f + `"`, f + ":", f + " "} {
			if strings.Contains(lower, form) {
				return map[string]string{f: msg}, ""
			}
		}
	}
	if strings.Contains(lower, "sssid") {
		return map[string]string{"sssid": msg}, ""
	}
	return map[string]string{}, msg
}

// subjectPage is the data of a subject's page.
type subjectPage struct {
	Subject  subject
	Links    []link
	Audits   []audit
	CanWrite bool   // the role may change this subject
	Today    string // the default of the date fields
	Now      int64
	// LinkError is a message about creating a link.
	LinkError string
}

// loadSubject reads a subject's page data. ok is false when the API
// refused (the answer is written).
func (c *req) loadSubject(sssid string) (subjectPage, bool, error) {
	var p subjectPage
	base := "/subject/" + url.PathEscape(sssid)
	res, err := c.api(http.MethodGet, base, nil, nil)
	if err != nil {
		return p, false, err
	}
	if !res.OK() {
		c.refused(res)
		return p, false, nil
	}
	if err := res.Data(&p.Subject); err != nil {
		return p, false, err
	}
	if res, err = c.api(http.MethodGet, base+"/links", nil, nil); err != nil {
		return p, false, err
	}
	if !res.OK() {
		c.refused(res)
		return p, false, nil
	}
	if err := res.Data(&p.Links); err != nil {
		return p, false, err
	}
	if res, err = c.api(http.MethodGet, base+"/audits", nil, nil); err != nil {
		return p, false, err
	}
	if !res.OK() {
		c.refused(res)
		return p, false, nil
	}
	if err := res.Data(&p.Audits); err != nil {
		return p, false, err
	}
	p.CanWrite = c.l.principal.Can(idm.WriteSubjects, p.Subject.Site)
	now := c.h.now()
	p.Today, p.Now = now.UTC().Format("2006-01-02"), now.Unix()
	return p, true, nil
}

// subject is GET /console/subjects/{sssid}.
func (h *Handler) subject(c *req) error {
	p, ok, err := c.loadSubject(c.r.PathValue("sssid"))
	if err != nil || !ok {
		return err
	}
	v := c.view("Subject "+p.Subject.SSSID, "subjects")
	v.Form = map[string]string{"name": p.Subject.Name, "bday": p.Subject.Bday, "email": p.Subject.Email, "site": p.Subject.Site}
	v.Data = p
	c.render(http.StatusOK, "subject", v)
	return nil
}

// showSubject renders a subject's page after a refused change, with the
// API's message next to its field.
func (c *req) showSubject(status int, sssid string, form map[string]string, msg string, fields []string) error {
	p, ok, err := c.loadSubject(sssid)
	if err != nil || !ok {
		return err
	}
	v := c.view("Subject "+p.Subject.SSSID, "subjects")
	v.Form = map[string]string{"name": p.Subject.Name, "bday": p.Subject.Bday, "email": p.Subject.Email, "site": p.Subject.Site}
	for k, val := range form {
		v.Form[k] = val
	}
	if fields == nil {
		p.LinkError = msg
	} else {
		v.Errors, v.Error = fieldErrors(msg, fields)
	}
	v.Data = p
	c.render(status, "subject", v)
	return nil
}

// editFields are the fields of a subject's edit form.
var editFields = []string{"name", "bday", "email", "site"}

// editSubject is POST /console/subjects/{sssid}: PUT /subject/{sssid}
// with the fields that differ from the stored ones.
func (h *Handler) editSubject(c *req) error {
	sssid := c.r.PathValue("sssid")
	f, err := c.form()
	if err != nil {
		c.h.fail(c.w, c.r, http.StatusBadRequest, "The form could not be read.")
		return nil
	}
	res, err := c.api(http.MethodGet, "/subject/"+url.PathEscape(sssid), nil, nil)
	if err != nil {
		return err
	}
	if !res.OK() {
		c.refused(res)
		return nil
	}
	var cur subject
	if err := res.Data(&cur); err != nil {
		return err
	}
	stored := map[string]string{"name": cur.Name, "bday": cur.Bday, "email": cur.Email, "site": cur.Site}
	body := map[string]string{"sssid": sssid}
	for _, k := range editFields {
		if val, sent := f[k]; sent && val != stored[k] {
			body[k] = val
		}
	}
	if len(body) == 1 {
		redirect(c.w, url.PathEscape(sssid)+"?done=unchanged")
		return nil
	}
	return c.put(sssid, body, f, editFields, "saved")
}

// put sends PUT /subject/{sssid} and redirects to the subject's page with
// the confirmation done, or shows the API's message on the form.
func (c *req) put(sssid string, body, form map[string]string, fields []string, done string) error {
	res, err := c.api(http.MethodPut, "/subject/"+url.PathEscape(sssid), nil, body)
	if err != nil {
		return err
	}
	if res.OK() {
		redirect(c.w, c.subjectURL(sssid)+"?done="+done)
		return nil
	}
	if !formError(res) {
		c.refused(res)
		return nil
	}
	return c.showSubject(res.Status, sssid, form, res.Message(), fields)
}

// subjectURL is the relative URL of a subject's page from the current
// page.
func (c *req) subjectURL(sssid string) string {
	return c.root + "subjects/" + url.PathEscape(sssid)
}

// setDate returns the handler of a form that sets one of a subject's
// set-once dates (consent, withdrawal) with PUT /subject/{sssid}.
func (h *Handler) setDate(field, done string) func(c *req) error {
	return func(c *req) error {
		sssid := c.r.PathValue("sssid")
		f, err := c.form()
		if err != nil {
			c.h.fail(c.w, c.r, http.StatusBadRequest, "The form could not be read.")
			return nil
		}
		if f[field] == "" {
			return c.showSubject(http.StatusBadRequest, sssid, f, fmt.Sprintf("`%s`: enter a date", field), []string{field})
		}
		return c.put(sssid, map[string]string{"sssid": sssid, field: f[field]}, f, []string{field}, done)
	}
}

// createLink is POST /console/subjects/{sssid}/links.
func (h *Handler) createLink(c *req) error {
	sssid := c.r.PathValue("sssid")
	res, err := c.api(http.MethodPost, "/subject/"+url.PathEscape(sssid)+"/links", nil, nil)
	if err != nil {
		return err
	}
	if res.OK() {
		var l link
		if err := res.Data(&l); err != nil {
			return err
		}
		redirect(c.w, c.subjectURL(sssid)+"?done=link#link-"+l.ID)
		return nil
	}
	if !formError(res) {
		c.refused(res)
		return nil
	}
	return c.showSubject(res.Status, sssid, nil, res.Message(), nil)
}

// revokeLink is POST /console/subjects/{sssid}/links/{jti}/revoke.
func (h *Handler) revokeLink(c *req) error {
	sssid, jti := c.r.PathValue("sssid"), c.r.PathValue("jti")
	res, err := c.api(http.MethodDelete, "/link/"+url.PathEscape(jti), nil, nil)
	if err != nil {
		return err
	}
	if res.OK() {
		redirect(c.w, c.subjectURL(sssid)+"?done=revoked")
		return nil
	}
	if !formError(res) {
		c.refused(res)
		return nil
	}
	return c.showSubject(res.Status, sssid, nil, res.Message(), nil)
}

// printPage is the data of a link's print view.
type printPage struct {
	Subject subject
	Link    link
	QR      string // the QR code image's URL, relative to the page
}

// printLink is GET /console/subjects/{sssid}/links/{jti}/print: the link's
// QR code, large, with the subject's SSSID and name, for printing.
func (h *Handler) printLink(c *req) error {
	sssid, jti := c.r.PathValue("sssid"), c.r.PathValue("jti")
	res, err := c.api(http.MethodGet, "/subject/"+url.PathEscape(sssid), nil, nil)
	if err != nil {
		return err
	}
	if !res.OK() {
		c.refused(res)
		return nil
	}
	var p printPage
	if err := res.Data(&p.Subject); err != nil {
		return err
	}
	if res, err = c.api(http.MethodGet, "/link/"+url.PathEscape(jti), nil, nil); err != nil {
		return err
	}
	if !res.OK() {
		c.refused(res)
		return nil
	}
	var l struct {
		link
		Sub string `json:"sub"`
	}
	if err := res.Data(&l); err != nil {
		return err
	}
	if l.Sub != p.Subject.SSSID {
		c.h.fail(c.w, c.r, http.StatusNotFound, "This subject has no such link.")
		return nil
	}
	p.Link = l.link
	p.QR = c.root + "../link/" + url.PathEscape(jti) + "/qr.png"
	v := c.view("Enrolment QR code for "+p.Subject.SSSID, "subjects")
	v.Data = p
	c.render(http.StatusOK, "print", v)
	return nil
}

// dayAfter returns the day after the RFC 3339 date s, for an inclusive
// "until" date; s itself when it is not a date.
func dayAfter(s string) string {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return s
	}
	return t.AddDate(0, 0, 1).Format("2006-01-02")
}
