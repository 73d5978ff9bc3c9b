package users_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
	"github.com/c3-pro/idm/users"
)

// fixture is an env with an admin and a non-admin staff member.
type fixture struct {
	*env
	admin, staff account
	rec          *recorder
}

func newFixture(t *testing.T, opts ...setup) *fixture {
	t.Helper()
	rec := &recorder{}
	opts = append([]setup{func(c *users.Config) { c.Notifier = rec }}, opts...)
	e := newEnv(t, opts...)
	return &fixture{
		env:   e,
		admin: e.addUser("admin@example.org", true),
		staff: e.addUser("staff@example.org", false),
		rec:   rec,
	}
}

type userCase struct {
	name  string
	opts  []setup
	req   func(f *fixture) request
	want  int
	msg   string // for errors: part of the message
	check func(t *testing.T, f *fixture, res response)
}

func runUserCases(t *testing.T, cases []userCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.opts...)
			res := f.do(tc.req(f))
			if res.status != tc.want {
				t.Fatalf("status %d, want %d: %s", res.status, tc.want, res.body)
			}
			if tc.want >= 400 {
				if msg := res.message(t); !strings.Contains(msg, tc.msg) {
					t.Errorf("message %q, want it to contain %q", msg, tc.msg)
				}
			}
			if tc.check != nil {
				tc.check(t, f, res)
			}
		})
	}
}

// dataView decodes {"data": <user>}.
func dataView(t *testing.T, res response) idm.UserView {
	t.Helper()
	var v idm.DataBody[idm.UserView]
	res.json(t, &v)
	return v.Data
}

// checkRevoked checks that tok no longer works and that u's token version
// went up.
func checkRevoked(t *testing.T, f *fixture, before idm.User, tok string) {
	t.Helper()
	if res := f.do(request{method: "GET", path: "/user/me", token: tok}); res.status != http.StatusUnauthorized || res.message(t) != "Invalid token" {
		t.Errorf("an earlier token still works: %d %s", res.status, res.body)
	}
	if after, ok := f.user(before.ID); ok && after.TokenVersion <= before.TokenVersion {
		t.Errorf("token version %d, was %d", after.TokenVersion, before.TokenVersion)
	}
}

// checkActions checks the audit actions about a user.
func checkActions(t *testing.T, f *fixture, id string, want ...string) {
	t.Helper()
	if got := f.actions(id); !slices.Equal(got, want) {
		t.Errorf("audit actions %q, want %q", got, want)
	}
}

func TestCreateUser(t *testing.T) {
	post := func(body any) func(f *fixture) request {
		return func(f *fixture) request {
			return request{method: "POST", path: "/user", token: f.admin.token, body: body}
		}
	}
	runUserCases(t, []userCase{
		{name: "user", req: post(map[string]any{"username": "New@Example.org", "password": testPassword}), want: 201,
			check: func(t *testing.T, f *fixture, res response) {
				v := dataView(t, res)
				if v.Username != "new@example.org" || v.Admin || v.Disabled || !idm.ValidID(v.ID) || v.Created.IsZero() {
					t.Errorf("answer %+v", v)
				}
				if status, _ := f.login("NEW@example.org", testPassword); status != http.StatusOK {
					t.Errorf("the new user cannot log in: %d", status)
				}
				checkActions(t, f, v.ID, users.ActionCreate)
				ev := f.audits()[0]
				if ev.ActorID != f.admin.user.ID || ev.Actor != "admin@example.org" || ev.DocType != idm.DocUser ||
					!strings.Contains(string(ev.New), `"username":"new@example.org"`) {
					t.Errorf("audit record %+v", ev)
				}
			}},
		{name: "admin", req: post(map[string]any{"username": "boss@example.org", "password": testPassword, "admin": true}), want: 201,
			check: func(t *testing.T, f *fixture, res response) {
				if v := dataView(t, res); !v.Admin {
					t.Errorf("answer %+v", v)
				}
				if n, _ := f.store.CountAdmins(t.Context()); n != 2 {
					t.Errorf("%d admins", n)
				}
			}},
		{name: "invite", opts: []setup{func(c *users.Config) { c.Inviter = c.Notifier.(*recorder) }},
			req: post(map[string]any{"username": "invitee@example.org"}), want: 201,
			check: func(t *testing.T, f *fixture, res response) {
				v := dataView(t, res)
				invited, _ := f.rec.calls()
				if len(invited) != 1 || invited[0].ID != v.ID || invited[0].Username != "invitee@example.org" {
					t.Errorf("invited %+v", invited)
				}
				if u, _ := f.user(v.ID); u.PasswordHash != "" {
					t.Error("an invited user has a password")
				}
			}},
		{name: "invite fails", opts: []setup{func(c *users.Config) {
			r := c.Notifier.(*recorder)
			r.fail = errors.New("smtp down")
			c.Inviter = r
		}},
			req: post(map[string]any{"username": "invitee@example.org"}), want: 503, msg: "service unavailable",
			check: func(t *testing.T, f *fixture, res response) {
				u, ok := f.userByName("invitee@example.org")
				if ok {
					t.Errorf("the user whose invitation failed exists: %+v", u)
				}
				var actions []string
				for _, ev := range f.audits() {
					actions = append(actions, ev.Action)
				}
				if !slices.Equal(actions, []string{"create", "delete"}) {
					t.Errorf("audit actions %q", actions)
				}
			}},
		{name: "no password without inviter", req: post(map[string]any{"username": "new@example.org"}), want: 400, msg: "password is required"},
		{name: "empty password without inviter", req: post(map[string]any{"username": "new@example.org", "password": ""}), want: 400, msg: "password is required"},
		{name: "short password", req: post(map[string]any{"username": "new@example.org", "password": "abc"}), want: 400, msg: "at least 8"},
		{name: "common password", req: post(map[string]any{"username": "new@example.org", "password": "qwertyuiop"}), want: 400, msg: "too common"},
		{name: "no username", req: post(map[string]any{"password": testPassword}), want: 400, msg: "username is required"},
		{name: "invalid email", req: post(map[string]any{"username": "new", "password": testPassword}), want: 400, msg: "email address"},
		{name: "quoted local part", req: post(map[string]any{"username": `"a b"@example.org`, "password": testPassword}), want: 400, msg: "email address"},
		{name: "too long", req: post(map[string]any{"username": strings.Repeat("x", 243) + "@example.org", "password": testPassword}), want: 400, msg: "254"},
		{name: "taken", req: post(map[string]any{"username": "STAFF@example.org", "password": testPassword}), want: 409, msg: "this username has already been taken"},
		{name: "unknown field", req: post(map[string]any{"username": "new@example.org", "password": testPassword, "rank": "x"}), want: 400, msg: `unknown field "rank"`},
		{name: "wrong type", req: post(map[string]any{"username": "new@example.org", "password": testPassword, "admin": "yes"}), want: 400, msg: `"admin" must be a boolean`},
		{name: "malformed", req: post(`{"username": "new@example.org",`), want: 400, msg: "malformed JSON"},
		{name: "not an object", req: post(`["new@example.org"]`), want: 400, msg: "must be an object"},
		{name: "deep", req: post(strings.Repeat("[", 40) + strings.Repeat("]", 40)), want: 400, msg: "nested deeper"},
		{name: "oversize", req: post(`{"username":"` + strings.Repeat("a", 2<<20) + `"}`), want: 413, msg: "too large"},
		{name: "not JSON", req: func(f *fixture) request {
			return request{method: "POST", path: "/user", token: f.admin.token, body: "username=x", contentType: formType}
		}, want: 415, msg: "JSON"},
		{name: "non-admin", req: func(f *fixture) request {
			return request{method: "POST", path: "/user", token: f.staff.token, body: map[string]any{"username": "new@example.org", "password": testPassword}}
		}, want: 403, msg: "admin rights required"},
		{name: "non-admin bad body", req: func(f *fixture) request {
			return request{method: "POST", path: "/user", token: f.staff.token, body: `{bad`}
		}, want: 403, msg: "admin rights required"},
		{name: "no token", req: func(f *fixture) request {
			return request{method: "POST", path: "/user", body: map[string]any{"username": "new@example.org", "password": testPassword}}
		}, want: 401, msg: "Authorization Required"},
		{name: "bad token", req: func(f *fixture) request {
			return request{method: "POST", path: "/user", token: "not.a.token", body: map[string]any{}}
		}, want: 401, msg: "Invalid token"},
	})
}

func TestListUsers(t *testing.T) {
	list := func(query string) func(f *fixture) request {
		return func(f *fixture) request {
			return request{method: "GET", path: "/user" + query, token: f.admin.token}
		}
	}
	names := func(want int, usernames ...string) func(t *testing.T, f *fixture, res response) {
		return func(t *testing.T, f *fixture, res response) {
			var body struct {
				Data  []idm.UserView `json:"data"`
				Total int            `json:"total"`
			}
			res.json(t, &body)
			var got []string
			for _, v := range body.Data {
				got = append(got, v.Username)
			}
			if body.Total != want || !slices.Equal(got, usernames) || body.Data == nil {
				t.Errorf("got %q, total %d; want %q, total %d", got, body.Total, usernames, want)
			}
		}
	}
	runUserCases(t, []userCase{
		{name: "all", req: list(""), want: 200, check: names(2, "admin@example.org", "staff@example.org")},
		{name: "search", req: list("?search=STAFF"), want: 200, check: names(1, "staff@example.org")},
		{name: "search literal", req: list("?search=.*"), want: 200, check: names(0)},
		{name: "page", req: list("?offset=1&perpage=1"), want: 200, check: names(2, "staff@example.org")},
		{name: "past the end", req: list("?offset=10"), want: 200, check: names(2)},
		{name: "bad offset", req: list("?offset=-1"), want: 400, msg: "offset"},
		{name: "offset not a number", req: list("?offset=x"), want: 400, msg: "offset"},
		{name: "perpage zero", req: list("?perpage=0"), want: 400, msg: "perpage"},
		{name: "perpage too big", req: list("?perpage=1001"), want: 400, msg: "perpage"},
		{name: "search too long", req: list("?search=" + strings.Repeat("a", 255)), want: 400, msg: "search"},
		{name: "non-admin", req: func(f *fixture) request {
			return request{method: "GET", path: "/user?perpage=x", token: f.staff.token}
		}, want: 403, msg: "admin rights required"},
		{name: "no token", req: func(f *fixture) request { return request{method: "GET", path: "/user"} }, want: 401, msg: "Authorization Required"},
	})
}

func TestGetUser(t *testing.T) {
	get := func(path string, who func(f *fixture) account) func(f *fixture) request {
		return func(f *fixture) request {
			p := strings.ReplaceAll(path, "{staff}", f.staff.user.ID)
			p = strings.ReplaceAll(p, "{admin}", f.admin.user.ID)
			return request{method: "GET", path: p, token: who(f).token}
		}
	}
	asAdmin := func(f *fixture) account { return f.admin }
	asStaff := func(f *fixture) account { return f.staff }
	is := func(username string) func(t *testing.T, f *fixture, res response) {
		return func(t *testing.T, f *fixture, res response) {
			if v := dataView(t, res); v.Username != username {
				t.Errorf("got %+v, want %s", v, username)
			}
		}
	}
	runUserCases(t, []userCase{
		{name: "admin by id", req: get("/user/{staff}", asAdmin), want: 200, check: is("staff@example.org")},
		{name: "admin by username", req: get("/user/Staff@Example.org", asAdmin), want: 200, check: is("staff@example.org")},
		{name: "admin by escaped username", req: get("/user/staff%40example.org", asAdmin), want: 200, check: is("staff@example.org")},
		{name: "admin unknown id", req: get("/user/"+idm.NewID(), asAdmin), want: 404, msg: "user not found"},
		{name: "admin unknown username", req: get("/user/nobody@example.org", asAdmin), want: 404, msg: "user not found"},
		{name: "admin garbage", req: get("/user/%3Cx%3E", asAdmin), want: 404, msg: "user not found"},
		{name: "self by id", req: get("/user/{staff}", asStaff), want: 200, check: is("staff@example.org")},
		{name: "self by username", req: get("/user/staff@example.org", asStaff), want: 200, check: is("staff@example.org")},
		{name: "me", req: get("/user/me", asStaff), want: 200, check: is("staff@example.org")},
		{name: "admin me", req: get("/user/me", asAdmin), want: 200, check: is("admin@example.org")},
		{name: "other user", req: get("/user/{admin}", asStaff), want: 403, msg: "your own"},
		{name: "unknown as non-admin", req: get("/user/"+idm.NewID(), asStaff), want: 403, msg: "your own"},
		{name: "no token", req: func(f *fixture) request { return request{method: "GET", path: "/user/me"} }, want: 401, msg: "Authorization Required"},
		{name: "unknown path", req: get("/user/{staff}/extra", asAdmin), want: 404, msg: "Not Found"},
		{name: "wrong method", req: func(f *fixture) request { return request{method: "PATCH", path: "/user", token: f.admin.token} },
			want: 405, msg: "Method Not Allowed", check: func(t *testing.T, f *fixture, res response) {
				if allow := res.header.Get("Allow"); !strings.Contains(allow, "POST") || !strings.Contains(allow, "DELETE") {
					t.Errorf("Allow %q", allow)
				}
			}},
	})
}

func TestUpdateUser(t *testing.T) {
	put := func(target func(f *fixture) string, who func(f *fixture) account, body any) func(f *fixture) request {
		return func(f *fixture) request {
			return request{method: "PUT", path: "/user/" + target(f), token: who(f).token, body: body}
		}
	}
	staffID := func(f *fixture) string { return f.staff.user.ID }
	adminID := func(f *fixture) string { return f.admin.user.ID }
	asAdmin := func(f *fixture) account { return f.admin }
	asStaff := func(f *fixture) account { return f.staff }
	const newPassword = "a brand new passphrase"
	runUserCases(t, []userCase{
		{name: "set admin", req: put(staffID, asAdmin, map[string]any{"admin": true}), want: 200,
			check: func(t *testing.T, f *fixture, res response) {
				if v := dataView(t, res); !v.Admin {
					t.Errorf("answer %+v", v)
				}
				checkRevoked(t, f, f.staff.user, f.staff.token)
				checkActions(t, f, f.staff.user.ID, users.ActionSetAdmin)
				ev := f.audits()[0]
				if string(ev.Old) != `{"username":"staff@example.org","admin":false,"role":"coordinator","sites":["*"]}` ||
					string(ev.New) != `{"username":"staff@example.org","admin":true,"role":"admin","sites":["*"]}` {
					t.Errorf("audit values %s -> %s", ev.Old, ev.New)
				}
			}},
		{name: "unset admin", req: func(f *fixture) request {
			f.addUser("boss@example.org", true)
			return request{method: "PUT", path: "/user/boss@example.org", token: f.admin.token, body: map[string]any{"admin": false}}
		}, want: 200, check: func(t *testing.T, f *fixture, res response) {
			v := dataView(t, res)
			if v.Admin {
				t.Errorf("answer %+v", v)
			}
			checkActions(t, f, v.ID, users.ActionUnsetAdmin)
		}},
		{name: "disable", req: put(staffID, asAdmin, map[string]any{"disabled": true}), want: 200,
			check: func(t *testing.T, f *fixture, res response) {
				if v := dataView(t, res); !v.Disabled {
					t.Errorf("answer %+v", v)
				}
				checkRevoked(t, f, f.staff.user, f.staff.token)
				checkActions(t, f, f.staff.user.ID, users.ActionDisable)
				if status, _ := f.login("staff@example.org", testPassword); status != http.StatusUnauthorized {
					t.Errorf("a disabled user logs in: %d", status)
				}
			}},
		{name: "enable", req: func(f *fixture) request {
			u, _ := f.user(f.staff.user.ID)
			u.Disabled = true
			if err := f.store.UpdateUser(f.t.Context(), u); err != nil {
				f.t.Fatal(err)
			}
			return request{method: "PUT", path: "/user/" + u.ID, token: f.admin.token, body: map[string]any{"disabled": false}}
		}, want: 200, check: func(t *testing.T, f *fixture, res response) {
			if v := dataView(t, res); v.Disabled {
				t.Errorf("answer %+v", v)
			}
			checkActions(t, f, f.staff.user.ID, users.ActionEnable)
			if status, _ := f.login("staff@example.org", testPassword); status != http.StatusOK {
				t.Errorf("an enabled user cannot log in: %d", status)
			}
		}},
		{name: "admin sets password", req: func(f *fixture) request {
			if err := f.store.CreateResetToken(f.t.Context(), idm.ResetToken{Hash: strings.Repeat("ab", 32), UserID: f.staff.user.ID,
				Purpose: "reset", Created: time.Now(), Expires: time.Now().Add(time.Hour)}); err != nil {
				f.t.Fatal(err)
			}
			return request{method: "PUT", path: "/user/" + f.staff.user.ID, token: f.admin.token, body: map[string]any{"password": newPassword}}
		}, want: 200, check: func(t *testing.T, f *fixture, res response) {
			v := dataView(t, res)
			if v.PasswordChanged == nil {
				t.Errorf("answer %+v lacks password_changed", v)
			}
			checkRevoked(t, f, f.staff.user, f.staff.token)
			checkActions(t, f, f.staff.user.ID, users.ActionChangePassword)
			if status, _ := f.login("staff@example.org", newPassword); status != http.StatusOK {
				t.Errorf("the new password does not work: %d", status)
			}
			if status, _ := f.login("staff@example.org", testPassword); status != http.StatusUnauthorized {
				t.Errorf("the old password still works: %d", status)
			}
			if n, _ := f.store.CountResetTokens(t.Context(), f.staff.user.ID, time.Time{}); n != 0 {
				t.Errorf("%d reset tokens survive a password change", n)
			}
			if _, changed := f.rec.calls(); len(changed) != 1 || changed[0].ID != f.staff.user.ID {
				t.Errorf("notified %+v", changed)
			}
			if ev := f.audits()[0]; strings.Contains(string(ev.New)+string(ev.Old), "$") || strings.Contains(string(ev.New), newPassword) {
				t.Errorf("audit record holds a secret: %s %s", ev.Old, ev.New)
			}
		}},
		{name: "self changes password", req: put(func(*fixture) string { return "me" }, asStaff,
			map[string]any{"password": newPassword, "current_password": testPassword}), want: 200,
			check: func(t *testing.T, f *fixture, res response) {
				checkRevoked(t, f, f.staff.user, f.staff.token)
				if status, _ := f.login("staff@example.org", newPassword); status != http.StatusOK {
					t.Errorf("the new password does not work: %d", status)
				}
				if ev := f.audits()[0]; ev.ActorID != f.staff.user.ID || ev.Action != users.ActionChangePassword {
					t.Errorf("audit %+v", ev)
				}
			}},
		{name: "self with username", req: put(staffID, asStaff,
			map[string]any{"username": "Staff@Example.org", "password": newPassword, "current_password": testPassword, "admin": false, "disabled": false, "unlock": false}), want: 200},
		{name: "self wrong current password", req: put(staffID, asStaff, map[string]any{"password": newPassword, "current_password": "wrong password"}),
			want: 403, msg: "current_password", check: func(t *testing.T, f *fixture, res response) {
				if status, _ := f.login("staff@example.org", testPassword); status != http.StatusOK {
					t.Errorf("the password changed: %d", status)
				}
				checkActions(t, f, f.staff.user.ID, users.ActionWrongPassword)
			}},
		{name: "self without current password", req: put(staffID, asStaff, map[string]any{"password": newPassword}), want: 400, msg: "current_password is required"},
		{name: "current password alone", req: put(staffID, asStaff, map[string]any{"current_password": testPassword}), want: 400, msg: "only used together"},
		{name: "self weak password", req: put(staffID, asStaff, map[string]any{"password": "short", "current_password": testPassword}), want: 400, msg: "at least 8"},
		{name: "self sets admin", req: put(staffID, asStaff, map[string]any{"admin": true}), want: 403, msg: "admin rights required"},
		{name: "self enables", req: put(staffID, asStaff, map[string]any{"disabled": true}), want: 403, msg: "admin rights required"},
		{name: "self unlocks", req: put(staffID, asStaff, map[string]any{"unlock": true}), want: 403, msg: "admin rights required"},
		{name: "non-admin other user", req: put(adminID, asStaff, `{not json`), want: 403, msg: "admin rights required"},
		{name: "unlock", req: func(f *fixture) request {
			for range 7 {
				if _, err := f.store.RecordLoginFailure(f.t.Context(), "staff@example.org", time.Now(), time.Hour); err != nil {
					f.t.Fatal(err)
				}
			}
			return request{method: "PUT", path: "/user/staff@example.org", token: f.admin.token, body: map[string]any{"unlock": true}}
		}, want: 200, check: func(t *testing.T, f *fixture, res response) {
			if lf, _ := f.store.LoginFailures(t.Context(), "staff@example.org"); lf.Count != 0 {
				t.Errorf("%d login failures after unlock", lf.Count)
			}
			checkActions(t, f, f.staff.user.ID, users.ActionUnlock)
			if ev := f.audits()[0]; string(ev.Old) != `{"username":"staff@example.org","login_failures":7}` {
				t.Errorf("audit old value %s", ev.Old)
			}
			if status, _ := f.login("staff@example.org", testPassword); status != http.StatusOK {
				t.Errorf("the unlocked user cannot log in: %d", status)
			}
		}},
		{name: "several changes", req: put(staffID, asAdmin, map[string]any{"admin": true, "disabled": true, "password": newPassword, "unlock": true}), want: 200,
			check: func(t *testing.T, f *fixture, res response) {
				checkActions(t, f, f.staff.user.ID, users.ActionSetAdmin, users.ActionDisable, users.ActionChangePassword, users.ActionUnlock)
				u, _ := f.user(f.staff.user.ID)
				if !u.Admin || !u.Disabled || u.TokenVersion != f.staff.user.TokenVersion+1 {
					t.Errorf("stored %+v", u)
				}
			}},
		{name: "no change", req: put(staffID, asAdmin, map[string]any{"admin": false, "unlock": false}), want: 200,
			check: func(t *testing.T, f *fixture, res response) {
				checkActions(t, f, f.staff.user.ID)
				if u, _ := f.user(f.staff.user.ID); u.TokenVersion != f.staff.user.TokenVersion {
					t.Error("a no-op revoked tokens")
				}
			}},
		{name: "different username", req: put(staffID, asAdmin, map[string]any{"username": "other@example.org"}), want: 400, msg: "cannot be changed"},
		{name: "invalid username", req: put(staffID, asAdmin, map[string]any{"username": "other"}), want: 400, msg: "cannot be changed"},
		{name: "unset last admin", req: put(adminID, asAdmin, map[string]any{"admin": false}), want: 409, msg: "last admin",
			check: func(t *testing.T, f *fixture, res response) {
				if u, _ := f.user(f.admin.user.ID); !u.Admin || u.TokenVersion != f.admin.user.TokenVersion {
					t.Errorf("stored %+v", u)
				}
				checkActions(t, f, f.admin.user.ID)
			}},
		{name: "disable last admin", req: put(func(*fixture) string { return "me" }, asAdmin, map[string]any{"disabled": true}), want: 409, msg: "last admin"},
		{name: "demote self with another admin", req: func(f *fixture) request {
			f.addUser("boss@example.org", true)
			return request{method: "PUT", path: "/user/me", token: f.admin.token, body: map[string]any{"admin": false}}
		}, want: 200, check: func(t *testing.T, f *fixture, res response) {
			checkRevoked(t, f, f.admin.user, f.admin.token)
		}},
		{name: "unknown user", req: put(func(*fixture) string { return idm.NewID() }, asAdmin, map[string]any{"admin": true}), want: 404, msg: "user not found"},
		{name: "unknown field", req: put(staffID, asAdmin, map[string]any{"id": "x"}), want: 400, msg: `unknown field "id"`},
		{name: "wrong type", req: put(staffID, asAdmin, map[string]any{"disabled": "yes"}), want: 400, msg: `"disabled" must be a boolean`},
		{name: "malformed", req: put(staffID, asAdmin, `{"admin":`), want: 400, msg: "malformed JSON"},
		{name: "no token", req: func(f *fixture) request {
			return request{method: "PUT", path: "/user/" + f.staff.user.ID, body: map[string]any{"admin": true}}
		}, want: 401, msg: "Authorization Required"},
	})
}

func TestDeleteUser(t *testing.T) {
	gone := func(t *testing.T, f *fixture, res response) {
		if _, ok := f.user(f.staff.user.ID); ok {
			t.Error("the user still exists")
		}
		checkRevoked(t, f, f.staff.user, f.staff.token)
		checkActions(t, f, f.staff.user.ID, users.ActionDelete)
		ev := f.audits()[0]
		if ev.ActorID != f.admin.user.ID || !strings.Contains(string(ev.Old), `"username":"staff@example.org"`) {
			t.Errorf("audit %+v", ev)
		}
		if status, _ := f.login("staff@example.org", testPassword); status != http.StatusUnauthorized {
			t.Errorf("a deleted user logs in: %d", status)
		}
	}
	del := func(path string, body any, who func(f *fixture) account) func(f *fixture) request {
		return func(f *fixture) request {
			return request{method: "DELETE", path: strings.ReplaceAll(path, "{staff}", f.staff.user.ID), body: body, token: who(f).token}
		}
	}
	asAdmin := func(f *fixture) account { return f.admin }
	asStaff := func(f *fixture) account { return f.staff }
	runUserCases(t, []userCase{
		{name: "by id", req: del("/user/{staff}", nil, asAdmin), want: 204, check: gone},
		{name: "by username in path", req: del("/user/Staff@example.org", nil, asAdmin), want: 204, check: gone},
		{name: "by body", req: del("/user", map[string]string{"username": "STAFF@example.org"}, asAdmin), want: 204, check: gone},
		{name: "unknown id", req: del("/user/"+idm.NewID(), nil, asAdmin), want: 404, msg: "user not found"},
		{name: "unknown username", req: del("/user", map[string]string{"username": "nobody@example.org"}, asAdmin), want: 404, msg: "user not found"},
		{name: "body without username", req: del("/user", map[string]string{}, asAdmin), want: 400, msg: "username is required"},
		{name: "body with unknown field", req: del("/user", map[string]string{"id": "x"}, asAdmin), want: 400, msg: "unknown field"},
		{name: "no body", req: del("/user", nil, asAdmin), want: 400, msg: "empty"},
		{name: "last admin by id", req: func(f *fixture) request {
			return request{method: "DELETE", path: "/user/" + f.admin.user.ID, token: f.admin.token}
		}, want: 409, msg: "last admin", check: func(t *testing.T, f *fixture, res response) {
			if _, ok := f.user(f.admin.user.ID); !ok {
				t.Error("the last admin was deleted")
			}
			checkActions(t, f, f.admin.user.ID)
		}},
		{name: "last admin by body", req: del("/user", map[string]string{"username": "admin@example.org"}, asAdmin), want: 409, msg: "last admin"},
		{name: "admin with another admin", req: func(f *fixture) request {
			f.addUser("boss@example.org", true)
			return request{method: "DELETE", path: "/user/me", token: f.admin.token}
		}, want: 204, check: func(t *testing.T, f *fixture, res response) {
			if _, ok := f.user(f.admin.user.ID); ok {
				t.Error("the admin still exists")
			}
		}},
		{name: "non-admin", req: del("/user/{staff}", nil, asStaff), want: 403, msg: "admin rights required"},
		{name: "non-admin by body", req: del("/user", `{bad`, asStaff), want: 403, msg: "admin rights required"},
		{name: "no token", req: func(f *fixture) request { return request{method: "DELETE", path: "/user/" + f.staff.user.ID} }, want: 401, msg: "Authorization Required"},
	})
}

// TestNonAdminForbidden sends every admin operation with a non-admin's
// token: each gets 403 and changes nothing.
func TestNonAdminForbidden(t *testing.T) {
	f := newFixture(t)
	other := f.addUser("other@example.org", false)
	for _, req := range []request{
		{method: "POST", path: "/user", body: map[string]any{"username": "x@example.org", "password": testPassword}},
		{method: "POST", path: "/user", body: `garbage`},
		{method: "GET", path: "/user"},
		{method: "GET", path: "/user/" + other.user.ID},
		{method: "GET", path: "/user/" + f.admin.user.ID},
		{method: "PUT", path: "/user/" + other.user.ID, body: map[string]any{"password": testPassword + "!"}},
		{method: "PUT", path: "/user/" + f.admin.user.ID, body: map[string]any{"admin": false}},
		{method: "PUT", path: "/user/me", body: map[string]any{"admin": true}},
		{method: "PUT", path: "/user/me", body: map[string]any{"disabled": true}},
		{method: "PUT", path: "/user/me", body: map[string]any{"unlock": true}},
		{method: "DELETE", path: "/user/" + other.user.ID},
		{method: "DELETE", path: "/user/me"},
		{method: "DELETE", path: "/user", body: map[string]any{"username": "other@example.org"}},
	} {
		req.token = f.staff.token
		if res := f.do(req); res.status != http.StatusForbidden {
			t.Errorf("%s %s: %d %s", req.method, req.path, res.status, res.body)
		}
	}
	if evs := f.audits(); len(evs) != 0 {
		t.Errorf("audit records after refused requests: %+v", evs)
	}
	if _, n, _ := f.store.ListUsers(t.Context(), idm.UserFilter{}); n != 3 {
		t.Errorf("%d users", n)
	}
}

// TestCreateUserConcurrent posts one username 50 times at once: exactly one
// request creates it.
func TestCreateUserConcurrent(t *testing.T) {
	f := newFixture(t)
	const n = 50
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			statuses[i] = f.do(request{method: "POST", path: "/user", token: f.admin.token,
				body: map[string]any{"username": "Race@example.org", "password": testPassword}}).status
		})
	}
	close(start)
	wg.Wait()
	created := 0
	for i, s := range statuses {
		switch s {
		case http.StatusCreated:
			created++
		case http.StatusConflict:
		default:
			t.Errorf("request %d: %d", i, s)
		}
	}
	if created != 1 {
		t.Errorf("%d requests created the user; want 1 (%v)", created, statuses)
	}
	if _, total, _ := f.store.ListUsers(t.Context(), idm.UserFilter{Search: "race"}); total != 1 {
		t.Errorf("%d users named race", total)
	}
	// Every create record of a request that lost the race is compensated.
	var creates, failed int
	for _, ev := range f.audits() {
		switch ev.Action {
		case users.ActionCreate:
			creates++
		case users.ActionCreate + users.ActionFailedSuffix:
			failed++
		}
	}
	if creates-failed != 1 {
		t.Errorf("%d create records, %d compensated", creates, failed)
	}
}

// barrierStore holds the first two callers of CountAdmins until both have
// counted, so that two requests both see two admins before either changes
// anything: the race that a per-process lock cannot prevent.
type barrierStore struct {
	idm.Store
	calls atomic.Int32
	both  chan struct{} // closed when the second caller arrives
}

func newBarrierStore() *barrierStore {
	return &barrierStore{Store: memstore.New(), both: make(chan struct{})}
}

func (s *barrierStore) CountAdmins(ctx context.Context) (int, error) {
	n, err := s.Store.CountAdmins(ctx)
	switch s.calls.Add(1) {
	case 1:
		select {
		case <-s.both:
		case <-time.After(10 * time.Second):
			return 0, errors.New("barrierStore: the second caller never came")
		}
	case 2:
		close(s.both)
	}
	return n, err
}

// TestLastAdminRace has two admins remove each other at the same moment
// through two handlers on one store (two processes), both having seen two
// admins: the change that would leave none is taken back and answered with
// 409, so an enabled admin always remains.
func TestLastAdminRace(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method string
		body   any
		undone string
	}{
		{"demote", "PUT", map[string]any{"admin": false}, users.ActionUnsetAdmin + users.ActionUndoneSuffix},
		{"disable", "PUT", map[string]any{"disabled": true}, users.ActionDisable + users.ActionUndoneSuffix},
		{"delete", "DELETE", nil, users.ActionDelete + users.ActionUndoneSuffix},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newBarrierStore()
			e1, e2 := newEnvOn(t, store), newEnvOn(t, store)
			a := e1.addUser("a@example.org", true)
			b := e1.addUser("b@example.org", true)
			var wg sync.WaitGroup
			var statuses [2]int
			wg.Go(func() {
				statuses[0] = e1.do(request{method: tc.method, path: "/user/" + b.user.ID, token: a.token, body: tc.body}).status
			})
			wg.Go(func() {
				statuses[1] = e2.do(request{method: tc.method, path: "/user/" + a.user.ID, token: b.token, body: tc.body}).status
			})
			wg.Wait()
			if n, err := store.CountAdmins(t.Context()); err != nil || n < 1 {
				t.Fatalf("%d enabled admins (%v) after %v", n, err, statuses)
			}
			if !slices.Contains(statuses[:], http.StatusConflict) {
				t.Errorf("statuses %v; want a 409", statuses)
			}
			var undone int
			for _, ev := range e1.audits() {
				if ev.Action == tc.undone {
					undone++
				}
			}
			if undone == 0 {
				t.Errorf("no %q record", tc.undone)
			}
			// The refused change is not in effect: whoever got 409 kept
			// their target as it was.
			for i, target := range []idm.User{b.user, a.user} {
				if statuses[i] != http.StatusConflict {
					continue
				}
				if u, ok := e1.user(target.ID); !ok || !u.Admin || u.Disabled {
					t.Errorf("the target of the refused change is %+v (exists %v)", u, ok)
				}
			}
		})
	}
}

// failingStore fails one method with an error, as a broken database would.
type failingStore struct {
	idm.Store
	method string
}

var errBroken = errors.New("database broken")

func (s *failingStore) CreateUser(ctx context.Context, u idm.User) error {
	if s.method == "CreateUser" {
		return errBroken
	}
	return s.Store.CreateUser(ctx, u)
}

func (s *failingStore) UpdateUser(ctx context.Context, u idm.User) error {
	if s.method == "UpdateUser" {
		return errBroken
	}
	return s.Store.UpdateUser(ctx, u)
}

func (s *failingStore) DeleteUser(ctx context.Context, id string) error {
	if s.method == "DeleteUser" {
		return errBroken
	}
	return s.Store.DeleteUser(ctx, id)
}

func (s *failingStore) AppendAudit(ctx context.Context, e idm.AuditEvent) error {
	if s.method == "AppendAudit" {
		return errBroken
	}
	return s.Store.AppendAudit(ctx, e)
}

// TestCompensation makes the store fail the change after its audit record
// was written: the answer is a generic 500, and the trail has a
// compensating record.
func TestCompensation(t *testing.T) {
	for _, tc := range []struct {
		method string
		req    func(f *fixture) request
		want   []string // the actions of all records
	}{
		{"CreateUser", func(f *fixture) request {
			return request{method: "POST", path: "/user", token: f.admin.token, body: map[string]any{"username": "new@example.org", "password": testPassword}}
		}, []string{"create", "create failed"}},
		{"UpdateUser", func(f *fixture) request {
			return request{method: "PUT", path: "/user/" + f.staff.user.ID, token: f.admin.token, body: map[string]any{"admin": true, "password": "another fine password"}}
		}, []string{"set admin", "change password", "set admin failed", "change password failed"}},
		{"DeleteUser", func(f *fixture) request {
			return request{method: "DELETE", path: "/user/" + f.staff.user.ID, token: f.admin.token}
		}, []string{"delete", "delete failed"}},
		{"AppendAudit", func(f *fixture) request {
			return request{method: "PUT", path: "/user/" + f.staff.user.ID, token: f.admin.token, body: map[string]any{"disabled": true}}
		}, nil},
	} {
		t.Run(tc.method, func(t *testing.T) {
			fs := &failingStore{Store: memstore.New()}
			e := newEnvOn(t, fs)
			f := &fixture{env: e, admin: e.addUser("admin@example.org", true), staff: e.addUser("staff@example.org", false)}
			fs.method = tc.method
			res := f.do(tc.req(f))
			if res.status != http.StatusInternalServerError || res.message(t) != "internal error" {
				t.Fatalf("status %d: %s", res.status, res.body)
			}
			if strings.Contains(string(res.body), errBroken.Error()) {
				t.Error("the answer leaks the cause")
			}
			fs.method = ""
			var got []string
			for _, ev := range f.audits() {
				got = append(got, ev.Action)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("audit actions %q, want %q", got, tc.want)
			}
			if u, ok := f.user(f.staff.user.ID); !ok || u.Admin || u.Disabled {
				t.Errorf("the staff user changed: %+v (%v)", u, ok)
			}
		})
	}
}

// TestDeletedUserToken checks that the token of a deleted user is refused,
// also by /user/me, and that a new user of the same name gets no access
// through it.
func TestDeletedUserToken(t *testing.T) {
	f := newFixture(t)
	status, tok := f.login("staff@example.org", testPassword)
	if status != http.StatusOK {
		t.Fatalf("login: %d", status)
	}
	if res := f.do(request{method: "DELETE", path: "/user/staff@example.org", token: f.admin.token}); res.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", res.status, res.body)
	}
	res := f.do(request{method: "POST", path: "/user", token: f.admin.token, body: map[string]any{"username": "staff@example.org", "password": testPassword}})
	if res.status != http.StatusCreated {
		t.Fatalf("re-create: %d %s", res.status, res.body)
	}
	for _, tk := range []string{tok, f.staff.token} {
		if res := f.do(request{method: "GET", path: "/user/me", token: tk}); res.status != http.StatusUnauthorized || res.message(t) != "Invalid token" {
			t.Errorf("a deleted user's token: %d %s", res.status, res.body)
		}
	}
}

// TestRequireMissing mounts the handler behind a middleware that forgets to
// authenticate: every /user route fails closed with 401.
func TestRequireMissing(t *testing.T) {
	pw, err := auth.NewPasswords(auth.PasswordConfig{Cost: 4})
	if err != nil {
		t.Fatal(err)
	}
	h, err := users.New(users.Config{Store: memstore.New(), Passwords: pw, Authenticate: func(next http.Handler) http.Handler { return next }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	for _, req := range []request{
		{method: "GET", path: "/user/me"},
		{method: "GET", path: "/user"},
		{method: "POST", path: "/user", body: map[string]any{"username": "x@example.org", "password": testPassword}},
		{method: "PUT", path: "/user/me", body: map[string]any{"admin": true}},
		{method: "DELETE", path: "/user/me"},
	} {
		if res := doOn(t, srv.Client(), srv.URL, req); res.status != http.StatusUnauthorized {
			t.Errorf("%s %s: %d %s", req.method, req.path, res.status, res.body)
		}
	}
}

// interferingStore changes a user behind the caller's back just before the
// caller's first UpdateUser, as another process would, so that the update
// is stale.
type interferingStore struct {
	idm.Store
	once sync.Once
}

func (s *interferingStore) UpdateUser(ctx context.Context, u idm.User) error {
	var err error
	s.once.Do(func() {
		var other idm.User
		if other, err = s.Store.FindUserByID(ctx, u.ID); err == nil {
			other.Changed = other.Changed.Add(time.Millisecond)
			err = s.Store.UpdateUser(ctx, other)
		}
	})
	if err != nil {
		return fmt.Errorf("interferingStore: %w", err)
	}
	return s.Store.UpdateUser(ctx, u)
}

// TestStaleRetry checks that a change that meets a concurrent change of the
// same user is made again on the fresh record, with a compensating record
// for the first attempt.
func TestStaleRetry(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  func(f *fixture) request
		want int
		acts []string
	}{
		{"update", func(f *fixture) request {
			return request{method: "PUT", path: "/user/" + f.staff.user.ID, token: f.admin.token, body: map[string]any{"disabled": true}}
		}, http.StatusOK, []string{"disable", "disable failed", "disable"}},
		{"delete", func(f *fixture) request {
			return request{method: "DELETE", path: "/user/" + f.staff.user.ID, token: f.admin.token}
		}, http.StatusNoContent, []string{"delete", "delete failed", "delete"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &interferingStore{Store: memstore.New()}
			e := newEnvOn(t, s)
			f := &fixture{env: e, admin: e.addUser("admin@example.org", true), staff: e.addUser("staff@example.org", false)}
			if res := f.do(tc.req(f)); res.status != tc.want {
				t.Fatalf("status %d: %s", res.status, res.body)
			}
			checkActions(t, f, f.staff.user.ID, tc.acts...)
			if u, ok := f.user(f.staff.user.ID); ok && !u.Disabled {
				t.Errorf("stored %+v", u)
			}
		})
	}
}
