package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/c3-pro/idm/idm"
)

// usersPerPage is the length of a page of the user list.
const usersPerPage = 50

// user is the API's user JSON.
type user struct {
	ID              string   `json:"id"`
	Username        string   `json:"username"`
	Role            string   `json:"role"`
	Sites           []string `json:"sites"`
	Disabled        bool     `json:"disabled"`
	TOTP            bool     `json:"totp"`
	Created         string   `json:"created"`
	PasswordChanged string   `json:"password_changed"`
	LastLogin       string   `json:"last_login"`
}

// roles are the roles a user can be given.
var roles = []string{string(idm.RoleCoordinator), string(idm.RoleMonitor), string(idm.RoleAuditor), string(idm.RoleAdmin)}

// userList is the data of the users page.
type userList struct {
	Users      []user
	Roles      []string
	Search     string
	Total      int
	Prev, Next string
	// Editing is the ID of the user whose row's form was refused, with
	// the message in the view's Errors.
	Editing string
}

// users is GET /console/users (admins): GET /user.
func (h *Handler) users(c *req) error {
	return c.showUsers(http.StatusOK, c.view("Users", "users"), "")
}

// showUsers renders the users page with v's messages.
func (c *req) showUsers(status int, v view, editing string) error {
	q := c.r.URL.Query()
	page := 1
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 1 {
		page = n
	}
	api := url.Values{"offset": {strconv.Itoa((page - 1) * usersPerPage)}, "perpage": {strconv.Itoa(usersPerPage)}}
	if s := q.Get("search"); s != "" {
		api.Set("search", s)
	}
	res, err := c.api(http.MethodGet, "/user", api, nil)
	if err != nil {
		return err
	}
	if !res.OK() {
		c.refused(res)
		return nil
	}
	var body struct {
		Data  []user `json:"data"`
		Total int    `json:"total"`
	}
	if err := json.Unmarshal(res.Body, &body); err != nil {
		return fmt.Errorf("console: decoding the user list: %w", err)
	}
	list := userList{Users: body.Data, Roles: roles, Search: q.Get("search"), Total: body.Total, Editing: editing}
	link := func(p int) string {
		v := url.Values{}
		if list.Search != "" {
			v.Set("search", list.Search)
		}
		if p > 1 {
			v.Set("page", strconv.Itoa(p))
		}
		return "users?" + v.Encode()
	}
	if page > 1 {
		list.Prev = link(page - 1)
	}
	if page*usersPerPage < body.Total {
		list.Next = link(page + 1)
	}
	if v.Form == nil {
		v.Form = map[string]string{"role": string(idm.RoleCoordinator)}
	}
	v.Data = list
	c.render(status, "users", v)
	return nil
}

// parseSites reads a list of site codes separated by commas or spaces.
func parseSites(s string) []string {
	f := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == ';' })
	if f == nil {
		return []string{}
	}
	return f
}

// invite is POST /console/users: POST /user without a password, which
// mails the new user a link to set one.
func (h *Handler) invite(c *req) error {
	f, err := c.form()
	if err != nil {
		c.h.fail(c.w, c.r, http.StatusBadRequest, "The form could not be read.")
		return nil
	}
	body := map[string]any{"username": f["username"], "role": f["role"]}
	if f["role"] != string(idm.RoleAdmin) {
		body["sites"] = parseSites(f["sites"])
	}
	res, err := c.api(http.MethodPost, "/user", nil, body)
	if err != nil {
		return err
	}
	if res.OK() {
		redirect(c.w, "users?done=invited")
		return nil
	}
	if !formError(res) {
		c.refused(res)
		return nil
	}
	v := c.view("Users", "users")
	v.Form = f
	v.Errors, v.Error = fieldErrors(res.Message(), []string{"username", "role", "sites"})
	return c.showUsers(res.Status, v, "")
}

// updateUser is POST /console/users/{id}: PUT /user/{id} with what the
// form's button asks for (the API decides whether it may be done).
func (h *Handler) updateUser(c *req) error {
	id := c.r.PathValue("id")
	f, err := c.form()
	if err != nil {
		c.h.fail(c.w, c.r, http.StatusBadRequest, "The form could not be read.")
		return nil
	}
	var body map[string]any
	switch f["action"] {
	case "access":
		body = map[string]any{"role": f["role"]}
		if f["role"] != string(idm.RoleAdmin) {
			body["sites"] = parseSites(f["sites"])
		}
	case "disable":
		body = map[string]any{"disabled": true}
	case "enable":
		body = map[string]any{"disabled": false}
	case "unlock":
		body = map[string]any{"unlock": true}
	case "reset_totp":
		body = map[string]any{"reset_totp": true}
	default:
		c.h.fail(c.w, c.r, http.StatusBadRequest, "Unknown action.")
		return nil
	}
	res, err := c.api(http.MethodPut, "/user/"+url.PathEscape(id), nil, body)
	if err != nil {
		return err
	}
	if res.OK() {
		redirect(c.w, "../users?done=user")
		return nil
	}
	if !formError(res) {
		c.refused(res)
		return nil
	}
	v := c.view("Users", "users")
	v.Errors = map[string]string{"user-" + id: res.Message()}
	return c.showUsers(res.Status, v, id)
}
