package console

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// accountPage is the data of the account page.
type accountPage struct {
	User user
	// Enrolment is a pending second-factor enrolment, shown until it is
	// confirmed; nil otherwise.
	Enrolment *enrolment
	// RecoveryCodes are shown once, right after the confirmation.
	RecoveryCodes []string
	// Required tells that the service requires a second factor.
	Required bool
}

// enrolment is a pending TOTP enrolment (POST /user/me/totp).
type enrolment struct {
	Secret string `json:"secret"`
	URI    string `json:"uri"`
	QRPNG  []byte `json:"qr_png"`
}

// QR returns the enrolment's QR code as a data: URL (allowed by the CSP's
// img-src for images only).
func (e *enrolment) QR() template.URL {
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(e.QRPNG))
}

// QRField is the QR code as carried by the confirmation form.
func (e *enrolment) QRField() string { return base64.StdEncoding.EncodeToString(e.QRPNG) }

// account is GET /console/account.
func (h *Handler) account(c *req) error {
	return c.showAccount(http.StatusOK, c.view("My account", "account"), accountPage{})
}

// showAccount renders the account page with the user's record from
// GET /user/me.
func (c *req) showAccount(status int, v view, p accountPage) error {
	res, err := c.api(http.MethodGet, "/user/me", nil, nil)
	if err != nil {
		return err
	}
	if !res.OK() {
		c.refused(res)
		return nil
	}
	if err := res.Data(&p.User); err != nil {
		return err
	}
	p.Required = c.h.requireTOTP
	v.Data = p
	c.render(status, "account", v)
	return nil
}

// changePassword is POST /console/account/password: PUT /user/{id} with
// the current and the new password. The change revokes the user's tokens
// and so ends this session too: the user signs in again.
func (h *Handler) changePassword(c *req) error {
	f, err := c.form()
	if err != nil {
		c.h.fail(c.w, c.r, http.StatusBadRequest, "The form could not be read.")
		return nil
	}
	v := c.view("My account", "account")
	if f["password"] != f["password2"] {
		v.Errors = map[string]string{"password2": "The two new passwords do not match."}
		return c.showAccount(http.StatusBadRequest, v, accountPage{})
	}
	body := map[string]string{"password": f["password"], "current_password": f["current_password"]}
	res, err := c.api(http.MethodPut, "/user/"+url.PathEscape(c.l.user.ID), nil, body)
	if err != nil {
		return err
	}
	if res.OK() {
		http.SetCookie(c.w, c.h.sessionCookie(""))
		redirect(c.w, "../signin?done=password")
		return nil
	}
	if !formError(res) && res.Status != http.StatusForbidden && res.Status != http.StatusTooManyRequests {
		c.refused(res)
		return nil
	}
	msg := res.Message()
	field := "password"
	if strings.Contains(strings.ToLower(msg), "current") || res.Status == http.StatusForbidden || res.Status == http.StatusTooManyRequests {
		field = "current_password"
	}
	v.Errors = map[string]string{field: msg}
	return c.showAccount(res.Status, v, accountPage{})
}

// startTOTP is POST /console/account/totp: POST /user/me/totp starts an
// enrolment, whose QR code and secret the page shows with a form for the
// first code.
func (h *Handler) startTOTP(c *req) error {
	res, err := c.api(http.MethodPost, "/user/me/totp", nil, map[string]string{})
	if err != nil {
		return err
	}
	v := c.view("My account", "account")
	if !res.OK() {
		if !formError(res) {
			c.refused(res)
			return nil
		}
		v.Error = res.Message()
		return c.showAccount(res.Status, v, accountPage{})
	}
	var e enrolment
	if err := res.Data(&e); err != nil {
		return err
	}
	return c.showAccount(http.StatusOK, v, accountPage{Enrolment: &e})
}

// confirmTOTP is POST /console/account/totp/confirm: POST
// /user/me/totp/confirm with the first code; the recovery codes are shown
// once. A wrong code shows the pending enrolment again.
func (h *Handler) confirmTOTP(c *req) error {
	f, err := c.form()
	if err != nil {
		c.h.fail(c.w, c.r, http.StatusBadRequest, "The form could not be read.")
		return nil
	}
	res, err := c.api(http.MethodPost, "/user/me/totp/confirm", nil, map[string]string{"code": f["code"]})
	if err != nil {
		return err
	}
	v := c.view("My account", "account")
	if res.OK() {
		var out struct {
			RecoveryCodes []string `json:"recovery_codes"`
		}
		if err := res.Data(&out); err != nil {
			return err
		}
		v.Flash = "Your second factor is active. Keep the recovery codes below somewhere safe: they are shown only now."
		return c.showAccount(http.StatusOK, v, accountPage{RecoveryCodes: out.RecoveryCodes})
	}
	if !formError(res) {
		c.refused(res)
		return nil
	}
	v.Errors = map[string]string{"code": res.Message()}
	p := accountPage{}
	if qr, err := base64.StdEncoding.DecodeString(f["qr"]); err == nil && f["secret"] != "" && len(qr) > 0 {
		p.Enrolment = &enrolment{Secret: f["secret"], QRPNG: qr}
	}
	return c.showAccount(res.Status, v, p)
}

// removeTOTP is POST /console/account/totp/remove: DELETE /user/me/totp
// with the password.
func (h *Handler) removeTOTP(c *req) error {
	f, err := c.form()
	if err != nil {
		c.h.fail(c.w, c.r, http.StatusBadRequest, "The form could not be read.")
		return nil
	}
	res, err := c.api(http.MethodDelete, "/user/me/totp", nil, map[string]string{"password": f["remove_password"]})
	if err != nil {
		return err
	}
	if res.OK() {
		redirect(c.w, "../account?done=totp-off")
		return nil
	}
	if !formError(res) && res.Status != http.StatusForbidden && res.Status != http.StatusTooManyRequests {
		c.refused(res)
		return nil
	}
	v := c.view("My account", "account")
	v.Errors = map[string]string{"remove_password": res.Message()}
	return c.showAccount(res.Status, v, accountPage{})
}

// auditPerPage is the length of a page of the audit log.
const auditPerPage = 50

// auditPage is the data of the audit log page.
type auditPage struct {
	Records    []audit
	Total      int
	Checkpoint string
	Prev, Next string
}

// audit is GET /console/audit (admins and auditors): GET /audit with the
// actor and time filter, and GET /audit/checkpoint.
func (h *Handler) audit(c *req) error {
	q := c.r.URL.Query()
	v := c.view("Audit log", "audit")
	v.Form = map[string]string{"actor": q.Get("actor"), "since": q.Get("since"), "until": q.Get("until")}
	page := 1
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 1 {
		page = n
	}
	filter := url.Values{}
	for _, k := range []string{"actor", "since", "until"} {
		if s := strings.TrimSpace(q.Get(k)); s != "" {
			filter.Set(k, s)
		}
	}
	api := url.Values{}
	for k, vs := range filter {
		api[k] = vs
	}
	if s := api.Get("until"); s != "" {
		api.Set("until", dayAfter(s)) // the "to" date is inclusive
	}
	api.Set("offset", strconv.Itoa((page-1)*auditPerPage))
	api.Set("perpage", strconv.Itoa(auditPerPage))
	res, err := c.api(http.MethodGet, "/audit", api, nil)
	if err != nil {
		return err
	}
	var p auditPage
	switch {
	case res.Status == http.StatusBadRequest:
		v.Errors, v.Error = fieldErrors(res.Message(), []string{"actor", "since", "until"})
	case !res.OK():
		c.refused(res)
		return nil
	default:
		var body struct {
			Data  []audit `json:"data"`
			Total int     `json:"total"`
		}
		if err := json.Unmarshal(res.Body, &body); err != nil {
			return fmt.Errorf("console: decoding the audit log: %w", err)
		}
		p.Records, p.Total = body.Data, body.Total
		link := func(n int) string {
			l := url.Values{}
			for k, vs := range filter {
				l[k] = vs
			}
			if n > 1 {
				l.Set("page", strconv.Itoa(n))
			}
			return "audit?" + l.Encode()
		}
		if page > 1 {
			p.Prev = link(page - 1)
		}
		if page*auditPerPage < body.Total {
			p.Next = link(page + 1)
		}
	}
	res, err = c.api(http.MethodGet, "/audit/checkpoint", nil, nil)
	if err != nil {
		return err
	}
	if res.OK() {
		p.Checkpoint = string(res.Body)
	}
	v.Data = p
	c.render(http.StatusOK, "audit", v)
	return nil
}
