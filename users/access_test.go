package users_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/users"
)

func TestCreateUserWithRoleAndSites(t *testing.T) {
	post := func(body any) func(f *fixture) request {
		return func(f *fixture) request {
			return request{method: "POST", path: "/user", token: f.admin.token, body: body}
		}
	}
	has := func(role idm.Role, admin bool, sites ...string) func(t *testing.T, f *fixture, res response) {
		return func(t *testing.T, f *fixture, res response) {
			v := dataView(t, res)
			if v.Role != role || v.Admin != admin || !slices.Equal(v.Sites, sites) {
				t.Errorf("answer %+v, want role %s, admin %v, sites %q", v, role, admin, sites)
			}
			u, ok := f.user(v.ID)
			if !ok {
				t.Fatal("not stored")
			}
			if r, s := u.Access(); r != role || !slices.Equal(s, sites) || u.Admin != admin {
				t.Errorf("stored %s %q admin %v", r, s, u.Admin)
			}
		}
	}
	const pw = testPassword
	runUserCases(t, []userCase{
		{name: "no role is coordinator of every site", req: post(map[string]any{"username": "n@example.org", "password": pw}), want: 201,
			check: has(idm.RoleCoordinator, false, "*")},
		{name: "monitor of two sites", req: post(map[string]any{"username": "m@example.org", "password": pw, "role": "monitor", "sites": []string{"A", "B"}}),
			want: 201, check: has(idm.RoleMonitor, false, "A", "B")},
		{name: "role admin is admin", req: post(map[string]any{"username": "a@example.org", "password": pw, "role": "admin"}), want: 201,
			check: has(idm.RoleAdmin, true, "*")},
		{name: "admin flag is role admin", req: post(map[string]any{"username": "a@example.org", "password": pw, "admin": true}), want: 201,
			check: has(idm.RoleAdmin, true, "*")},
		{name: "admin and role agree", req: post(map[string]any{"username": "a@example.org", "password": pw, "admin": true, "role": "admin"}), want: 201,
			check: has(idm.RoleAdmin, true, "*")},
		{name: "admin contradicts role", req: post(map[string]any{"username": "a@example.org", "password": pw, "admin": true, "role": "monitor"}),
			want: 400, msg: "contradict"},
		{name: "unknown role", req: post(map[string]any{"username": "a@example.org", "password": pw, "role": "root"}), want: 400, msg: "role must be one of"},
		{name: "bad site", req: post(map[string]any{"username": "a@example.org", "password": pw, "role": "auditor", "sites": []string{"a b"}}),
			want: 400, msg: "not a site code"},
		{name: "empty sites", req: post(map[string]any{"username": "a@example.org", "password": pw, "role": "auditor", "sites": []string{}}),
			want: 400, msg: "at least one site"},
		{name: "admin of one site", req: post(map[string]any{"username": "a@example.org", "password": pw, "role": "admin", "sites": []string{"A"}}),
			want: 400, msg: "every site"},
		{name: "not as non-admin", req: func(f *fixture) request {
			return request{method: "POST", path: "/user", token: f.staff.token, body: map[string]any{"username": "x@example.org", "password": pw, "role": "auditor", "sites": []string{"A"}}}
		}, want: 403},
	})
}

func TestChangeRoleAndSites(t *testing.T) {
	put := func(who func(f *fixture) account, body any) func(f *fixture) request {
		return func(f *fixture) request {
			return request{method: "PUT", path: "/user/" + f.staff.user.ID, token: who(f).token, body: body}
		}
	}
	asAdmin := func(f *fixture) account { return f.admin }
	asStaff := func(f *fixture) account { return f.staff }
	runUserCases(t, []userCase{
		{name: "role and sites", req: put(asAdmin, map[string]any{"role": "monitor", "sites": []string{"A"}}), want: 200,
			check: func(t *testing.T, f *fixture, res response) {
				v := dataView(t, res)
				if v.Role != idm.RoleMonitor || !slices.Equal(v.Sites, []string{"A"}) || v.Admin {
					t.Errorf("answer %+v", v)
				}
				checkRevoked(t, f, f.staff.user, f.staff.token)
				checkActions(t, f, f.staff.user.ID, users.ActionSetAccess)
				ev := f.audits()[0]
				if string(ev.Old) != `{"username":"staff@example.org","admin":false,"role":"coordinator","sites":["*"]}` ||
					string(ev.New) != `{"username":"staff@example.org","admin":false,"role":"monitor","sites":["A"]}` {
					t.Errorf("audit values %s -> %s", ev.Old, ev.New)
				}
			}},
		{name: "sites only", req: put(asAdmin, map[string]any{"sites": []string{"B", "C"}}), want: 200,
			check: func(t *testing.T, f *fixture, res response) {
				if v := dataView(t, res); v.Role != idm.RoleCoordinator || !slices.Equal(v.Sites, []string{"B", "C"}) {
					t.Errorf("answer %+v", v)
				}
				checkRevoked(t, f, f.staff.user, f.staff.token)
			}},
		{name: "same access changes nothing", req: put(asAdmin, map[string]any{"role": "coordinator", "sites": []string{"*"}}), want: 200,
			check: func(t *testing.T, f *fixture, res response) {
				if got := f.actions(f.staff.user.ID); len(got) != 0 {
					t.Errorf("audit actions %q", got)
				}
				if res := f.do(request{method: "GET", path: "/user/me", token: f.staff.token}); res.status != 200 {
					t.Errorf("the token was revoked: %d", res.status)
				}
			}},
		{name: "role admin", req: put(asAdmin, map[string]any{"role": "admin"}), want: 200,
			check: func(t *testing.T, f *fixture, res response) {
				if v := dataView(t, res); !v.Admin || v.Role != idm.RoleAdmin {
					t.Errorf("answer %+v", v)
				}
				checkActions(t, f, f.staff.user.ID, users.ActionSetAdmin)
			}},
		{name: "contradiction", req: put(asAdmin, map[string]any{"role": "auditor", "admin": true}), want: 400, msg: "contradict"},
		{name: "bad sites", req: put(asAdmin, map[string]any{"sites": []string{"*", "A"}}), want: 400, msg: "cannot be combined"},
		{name: "own role as non-admin", req: put(asStaff, map[string]any{"role": "auditor", "sites": []string{"A"}}), want: 403},
		{name: "own unchanged role as non-admin", req: put(asStaff, map[string]any{"role": "coordinator"}), want: 200},
	})
}

// TestLastLoginShownForAccessReview checks that a successful login is
// recorded and shown as last_login by GET /user, GET /user/{id} and
// GET /user/me, that a failed one is not, and that a user who never signed
// in has no last_login.
func TestLastLoginShownForAccessReview(t *testing.T) {
	f := newFixture(t)
	stored, _ := f.user(f.staff.user.ID)
	if status, _ := f.login(f.staff.user.Username, "wrong password, surely"); status != http.StatusUnauthorized {
		t.Fatalf("wrong password: status %d", status)
	}
	if u, _ := f.user(f.staff.user.ID); !u.LastLogin.Equal(stored.LastLogin) {
		t.Fatalf("a failed login moved LastLogin from %v to %v", stored.LastLogin, u.LastLogin)
	}
	before := idm.Timestamp(time.Now())
	status, tok := f.login(f.staff.user.Username, testPassword)
	if status != http.StatusOK {
		t.Fatalf("login: status %d", status)
	}
	u, _ := f.user(f.staff.user.ID)
	if u.LastLogin.Before(before) {
		t.Fatalf("LastLogin %v after a login at %v", u.LastLogin, before)
	}
	want := idm.FormatTime(u.LastLogin)

	invited := idm.User{ID: idm.NewID(), Username: "never@example.org", Created: before, Changed: before}
	if err := f.store.CreateUser(t.Context(), invited); err != nil {
		t.Fatal(err)
	}
	lastLogin := func(res response, id string) (string, bool) {
		t.Helper()
		if res.status != http.StatusOK {
			t.Fatalf("status %d: %s", res.status, res.body)
		}
		var body struct {
			Data json.RawMessage `json:"data"`
		}
		res.json(t, &body)
		var views []map[string]any
		if body.Data[0] == '[' {
			if err := json.Unmarshal(body.Data, &views); err != nil {
				t.Fatal(err)
			}
		} else {
			var v map[string]any
			if err := json.Unmarshal(body.Data, &v); err != nil {
				t.Fatal(err)
			}
			views = append(views, v)
		}
		for _, v := range views {
			if v["id"] == id {
				s, ok := v["last_login"].(string)
				return s, ok
			}
		}
		t.Fatalf("user %s not in %s", id, res.body)
		return "", false
	}
	for _, c := range []struct {
		name, path, token, id string
		want                  string // "" for no last_login
	}{
		{"list", "/user", f.admin.token, f.staff.user.ID, want},
		{"one", "/user/" + f.staff.user.ID, f.admin.token, f.staff.user.ID, want},
		{"me", "/user/me", tok, f.staff.user.ID, want},
		{"never signed in", "/user", f.admin.token, invited.ID, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := lastLogin(f.do(request{method: "GET", path: c.path, token: c.token}), c.id)
			if got != c.want || ok != (c.want != "") {
				t.Errorf("last_login %q (present %v), want %q", got, ok, c.want)
			}
		})
	}
}
