package resetflow_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/internal/smtptest"
	"github.com/c3-pro/idm/resetflow"
	"github.com/c3-pro/idm/users"
)

// TestInviteMailFailureAudited creates a user without a password over HTTP,
// as an admin does, while the mail server refuses the invitation: the
// invitation's audit record gets its compensating "failed" record, after
// it, and the link is gone.
func TestInviteMailFailureAudited(t *testing.T) {
	e := newEnv(t)
	e.mail.SetReject(func(smtptest.Message) error { return errors.New("mailbox unavailable") })
	ctx := t.Context()
	keys, err := auth.LoadOrCreateKeys(ctx, e.store, t0)
	require.NoError(t, err)
	authH, err := auth.New(auth.Config{Store: e.store, Keys: keys, Passwords: e.pw, RateLimit: rate.Inf, Now: e.clock.Now})
	require.NoError(t, err)
	usersH, err := users.New(users.Config{Store: e.store, Passwords: e.pw, Authenticate: authH.Require, Inviter: e.h, Now: e.clock.Now})
	require.NoError(t, err)
	mux := idm.NewMux()
	authH.Install(mux.Handle)
	usersH.Install(mux.Handle)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	admin := e.addUser("admin@example.org", "an admin's passphrase", false)
	admin.Admin = true
	require.NoError(t, e.store.UpdateUser(ctx, admin))
	token := login(t, srv, "admin@example.org", "an admin's passphrase")

	req, err := http.NewRequestWithContext(ctx, "POST", srv.URL+"/user", strings.NewReader(`{"username": "unlucky@example.org"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "JWT "+token)
	res, err := srv.Client().Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode, "a mail server that refuses is an outage of a dependency")

	all, _, err := e.store.ListAudits(ctx, idm.AuditFilter{})
	require.NoError(t, err)
	invite := slices.IndexFunc(all, func(ev idm.AuditEvent) bool { return ev.Action == resetflow.ActionInvite })
	require.GreaterOrEqual(t, invite, 0, "no invitation record")
	userID := all[invite].Document
	recs, err := e.store.AuditsFor(ctx, userID)
	require.NoError(t, err)
	var actions []string
	for _, r := range recs {
		actions = append(actions, r.Action)
	}
	sent := slices.Index(actions, resetflow.ActionInvite)
	failed := slices.Index(actions, resetflow.ActionInvite+resetflow.ActionFailedSuffix)
	require.GreaterOrEqual(t, failed, 0, "no compensating record for the invitation: %q", actions)
	assert.Less(t, sent, failed, "the compensating record comes after the invitation's: %q", actions)
	assert.Equal(t, 1, strings.Count(strings.Join(actions, "\n"), resetflow.ActionInvite+resetflow.ActionFailedSuffix))
	assert.Equal(t, admin.ID, recs[failed].ActorID)
	assert.Equal(t, "admin@example.org", recs[failed].Actor)
	n, err := e.store.CountResetTokens(ctx, userID, time.Time{})
	require.NoError(t, err)
	assert.Zero(t, n, "the link that was not sent is removed")
}

// TestResetLinkViewExpires checks that GET /reset as JSON shows the link's
// expiry in the API's one time layout, six fractional digits on a whole
// second too.
func TestResetLinkViewExpires(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice@example.org", "old password 123", false)
	key := keyOf(t, e.requestLink("alice@example.org"))
	get := e.do("GET", "/reset?k="+url.QueryEscape(key), nil, map[string]string{"Accept": "application/json"})
	require.Equal(t, http.StatusOK, get.Status, get.Body)
	var view struct {
		Data struct {
			Expires string `json:"expires"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(get.Body), &view))
	assert.Equal(t, "2026-11-29T14:00:00.000000Z", view.Data.Expires)
	assert.Equal(t, "no-store", get.Header.Get("Cache-Control"))
}
