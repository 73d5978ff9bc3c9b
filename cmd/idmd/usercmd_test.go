package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
	"github.com/c3-pro/idm/users"
)

// adminBarrierStore holds the first CountAdmins calls until two of them
// have come, so that two deletions both see two admins before either
// deletes, as two processes can.
type adminBarrierStore struct {
	idm.Store
	mu      sync.Mutex
	waiting int
	open    chan struct{}
}

func (s *adminBarrierStore) CountAdmins(ctx context.Context) (int, error) {
	n, err := s.Store.CountAdmins(ctx)
	s.mu.Lock()
	s.waiting++
	first := s.waiting <= 2
	if s.waiting == 2 {
		close(s.open)
	}
	s.mu.Unlock()
	if first {
		select {
		case <-s.open:
		case <-time.After(5 * time.Second):
		}
	}
	return n, err
}

// TestUserDeleteKeepsLastAdminUnderRace deletes the two last admins at the
// same moment, both deletions having seen two admins: through two
// `idmd user delete` commands (two processes) and through the command and
// the API. The one that would leave no enabled admin is taken back and
// refused, so an admin always remains.
func TestUserDeleteKeepsLastAdminUnderRace(t *testing.T) {
	for _, tc := range []struct {
		name   string
		viaAPI bool
	}{
		{"CommandAndCommand", false},
		{"CommandAndAPI", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			mem := memstore.New()
			t.Cleanup(func() { _ = mem.Close() })
			store := &adminBarrierStore{Store: mem, open: make(chan struct{})}
			a := idm.User{ID: idm.NewID(), Username: "a@example.org", Admin: true}
			b := idm.User{ID: idm.NewID(), Username: "b@example.org", Admin: true}
			require.NoError(t, mem.CreateUser(ctx, a))
			require.NoError(t, mem.CreateUser(ctx, b))

			var outs [2]bytes.Buffer
			cmd := func(i int, username string) int {
				adm, err := newAdmin(&config{}, store, stdio{in: strings.NewReader(""), out: &outs[i], err: &outs[i]})
				require.NoError(t, err)
				defer adm.close()
				if err := adm.delete(ctx, username); err != nil {
					return idm.StatusOf(err)
				}
				return http.StatusNoContent
			}
			var statuses [2]int
			var wg sync.WaitGroup
			wg.Go(func() { statuses[0] = cmd(0, a.Username) })
			if tc.viaAPI {
				wg.Go(func() { statuses[1] = apiDelete(t, store, a, b.ID) })
			} else {
				wg.Go(func() { statuses[1] = cmd(1, b.Username) })
			}
			wg.Wait()

			n, err := mem.CountAdmins(ctx)
			require.NoError(t, err)
			require.GreaterOrEqual(t, n, 1, "no enabled admin left after %v", statuses)
			refused := 0
			for i, status := range statuses {
				if status != http.StatusNoContent {
					require.Equal(t, http.StatusConflict, status, "deletion %d: %s", i, outs[i].String())
					refused++
				}
			}
			require.GreaterOrEqual(t, refused, 1, "both deletions went through")
		})
	}
}

// apiDelete sends DELETE /user/{id} as actor to a /user handler of its own
// (another process) over store, and returns the answer's status.
func apiDelete(t *testing.T, store idm.Store, actor idm.User, id string) int {
	passwords, err := newPasswords()
	require.NoError(t, err)
	asActor := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := &idm.Principal{UserID: actor.ID, Username: actor.Username, TokenVersion: actor.TokenVersion}
			next.ServeHTTP(w, r.WithContext(idm.WithPrincipal(r.Context(), p)))
		})
	}
	h, err := users.New(users.Config{Store: store, Passwords: passwords, Authenticate: asActor})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, err := http.NewRequest(http.MethodDelete, srv.URL+"/user/"+id, nil)
	require.NoError(t, err)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp.StatusCode
}
