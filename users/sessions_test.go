package users_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
)

// addSession stores a console session of userID and returns its hash.
func addSession(t *testing.T, s idm.Store, userID string) string {
	t.Helper()
	now := idm.Timestamp(time.Now())
	x := idm.Session{IDHash: idm.NewID() + idm.NewID(), UserID: userID, Created: now, LastSeen: now, Expires: now.Add(time.Hour)}
	require.NoError(t, s.CreateSession(t.Context(), x))
	return x.IDHash
}

func hasSession(t *testing.T, s idm.Store, hash string) bool {
	t.Helper()
	_, err := s.FindSession(t.Context(), hash)
	if errors.Is(err, idm.ErrNotFound) {
		return false
	}
	require.NoError(t, err)
	return true
}

func TestRevokingAUserDeletesTheirConsoleSessions(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  func(target string) request
	}{
		{"disable", func(target string) request {
			return request{method: "PUT", path: "/user/" + target, body: map[string]any{"disabled": true}}
		}},
		{"role change", func(target string) request {
			return request{method: "PUT", path: "/user/" + target, body: map[string]any{"role": "monitor"}}
		}},
		{"delete", func(target string) request {
			return request{method: "DELETE", path: "/user/" + target}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			admin := e.addUser("admin@example.org", true)
			bob := e.addUser("bob@example.org", false)
			carol := e.addUser("carol@example.org", false)
			bobs := []string{addSession(t, e.store, bob.user.ID), addSession(t, e.store, bob.user.ID)}
			carols := addSession(t, e.store, carol.user.ID)

			r := tc.req(bob.user.ID)
			r.token = admin.token
			res := e.do(r)
			require.Contains(t, []int{http.StatusOK, http.StatusNoContent}, res.status, "%s", res.body)
			for _, h := range bobs {
				require.False(t, hasSession(t, e.store, h), "bob's session is deleted")
			}
			require.True(t, hasSession(t, e.store, carols), "carol's session stays")
		})
	}
}

// failingSessions is a store whose DeleteUserSessions fails.
type failingSessions struct{ idm.Store }

func (failingSessions) DeleteUserSessions(context.Context, string) (int, error) {
	return 0, errors.New("sessions unavailable")
}

func TestDisableSucceedsWhenSessionsCannotBeDeleted(t *testing.T) {
	mem := memstore.New()
	e := newEnvOn(t, failingSessions{mem})
	admin := e.addUser("admin@example.org", true)
	bob := e.addUser("bob@example.org", false)
	h := addSession(t, mem, bob.user.ID)
	res := e.do(request{method: "PUT", path: "/user/" + bob.user.ID, token: admin.token, body: map[string]any{"disabled": true}})
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)
	u, ok := e.user(bob.user.ID)
	require.True(t, ok)
	require.True(t, u.Disabled, "the user write stands")
	require.True(t, hasSession(t, mem, h), "the session record lingers (the console refuses it by its TokenVersion)")
}
