package users_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
)

// ambiguousStore is a store whose UpdateUser reports a lost answer (an
// error wrapping idm.ErrAmbiguous, as mongostore gives for a network error
// after the write was sent), after applying the write or not; its
// FindUserByID can be made to fail after that, so that the outcome cannot
// be read back.
type ambiguousStore struct {
	idm.Store
	apply      bool
	readFails  bool
	afterWrite bool
}

func (s *ambiguousStore) UpdateUser(ctx context.Context, u idm.User) error {
	if s.apply {
		if err := s.Store.UpdateUser(ctx, u); err != nil {
			return err
		}
	}
	s.afterWrite = true
	return fmt.Errorf("update user: connection reset by peer: %w", idm.ErrAmbiguous)
}

func (s *ambiguousStore) FindUserByID(ctx context.Context, id string) (idm.User, error) {
	if s.readFails && s.afterWrite {
		return idm.User{}, fmt.Errorf("find user: %w", idm.ErrUnavailable)
	}
	return s.Store.FindUserByID(ctx, id)
}

// TestAmbiguousWriteAuditedAsWhatHappened: when the store cannot say
// whether a change was written, the handler reads it back: a change that
// was made is answered and left without a compensating record; one that
// was not gets "... failed"; one that cannot be read back gets
// "... outcome unknown", never a false "failed".
func TestAmbiguousWriteAuditedAsWhatHappened(t *testing.T) {
	for _, tc := range []struct {
		name        string
		apply, read bool
		wantStatus  int
		wantLast    string
		disabled    bool
	}{
		{"applied", true, true, http.StatusOK, "disable", true},
		{"not applied", false, true, http.StatusServiceUnavailable, "disable failed", false},
		{"cannot tell", true, false, http.StatusServiceUnavailable, "disable outcome unknown", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := memstore.New()
			store := &ambiguousStore{Store: base, apply: tc.apply, readFails: !tc.read}
			e := newEnvOn(t, store)
			e.store = base
			admin := e.addUser("admin@example.org", true)
			staff := e.addUser("staff@example.org", false)
			res := e.do(request{method: "PUT", path: "/user/" + staff.user.ID, token: admin.token,
				body: map[string]any{"disabled": true}})
			if res.status != tc.wantStatus {
				t.Errorf("status %d, want %d: %s", res.status, tc.wantStatus, res.body)
			}
			got := e.actions(staff.user.ID)
			if len(got) == 0 || got[len(got)-1] != tc.wantLast {
				t.Errorf("audit actions %q, want the last %q", got, tc.wantLast)
			}
			for _, a := range got[:len(got)-1] {
				if strings.HasSuffix(a, idm.AuditFailed) {
					t.Errorf("audit actions %q", got)
				}
			}
			u, _ := e.user(staff.user.ID)
			if u.Disabled != tc.disabled {
				t.Errorf("stored disabled = %v, want %v", u.Disabled, tc.disabled)
			}
		})
	}
}
