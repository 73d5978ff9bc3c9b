package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/boltstore"
	"github.com/c3-pro/idm/idm"
)

// TestRequireTOTPAndTOTPReset runs idmd with IDM_REQUIRE_TOTP=true: an admin
// without a second factor reaches /user/me but not /subject, enrols one,
// then needs its codes to log in; once idmd is stopped, `idmd user
// totp-reset` removes it (a locked-out admin), and the admin logs in with
// the password again, kept to enrolling. No audit record holds the secret.
func TestRequireTOTPAndTOTPReset(t *testing.T) {
	env := append(baseEnv(t), "IDM_REQUIRE_TOTP=true", "IDM_TOTP_ISSUER=Study X")
	code, out := runCmd(t, env, adminPass+"\n", "user", "add", adminUser, "--admin", "--password-stdin")
	require.Equal(t, 0, code, out)

	p := start(t, env)
	tok := login(t, p.url, adminUser, adminPass)
	r := call(t, "GET", p.url+"/subject", tok, "")
	require.Equal(t, http.StatusForbidden, r.status, "%s", r.body)
	require.Contains(t, string(r.body), "second factor enrolment required")
	r = call(t, "GET", p.url+"/user/me", tok, "")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.Contains(t, string(r.body), `"totp":false`)

	r = call(t, "POST", p.url+"/user/me/totp", tok, "")
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	data := r.json(t)["data"].(map[string]any)
	secret := data["secret"].(string)
	require.Contains(t, data["uri"], "issuer=Study%20X")
	now := time.Now()
	c, err := totp.GenerateCode(secret, now)
	require.NoError(t, err)
	r = call(t, "POST", p.url+"/user/me/totp/confirm", tok, fmt.Sprintf(`{"code":%q}`, c))
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var conf struct {
		Data struct {
			RecoveryCodes []string `json:"recovery_codes"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(r.body, &conf))
	require.Len(t, conf.Data.RecoveryCodes, 10)

	r = call(t, "POST", p.url+"/auth", "", fmt.Sprintf(`{"username":%q,"password":%q}`, adminUser, adminPass))
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Contains(t, string(r.body), "one-time code required")
	next, err := totp.GenerateCode(secret, now.Add(30*time.Second))
	require.NoError(t, err)
	r = call(t, "POST", p.url+"/auth", "", fmt.Sprintf(`{"username":%q,"password":%q,"otp":%q}`, adminUser, adminPass, next))
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	tok2, _ := r.json(t)["access_token"].(string)
	r = call(t, "GET", p.url+"/subject", tok2, "")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.NotContains(t, p.logs(), secret, "no secret in a log line")

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 0, p.wait(30*time.Second))

	code, out = runCmd(t, env, "", "user", "totp-reset", "ADMIN@example.org")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "reset the second factor of "+adminUser)
	code, out = runCmd(t, env, "", "user", "totp-reset", "nobody@example.org")
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "no user nobody@example.org")

	for _, e := range env {
		if db, ok := strings.CutPrefix(e, "IDM_DB="); ok {
			s, err := boltstore.Open(db)
			require.NoError(t, err)
			evs, _, err := s.ListAudits(context.Background(), idm.AuditFilter{})
			require.NoError(t, err)
			var actions []string
			for _, ev := range evs {
				actions = append(actions, ev.Action)
				rec := strings.Join([]string{ev.Action, ev.Actor, string(ev.Old), string(ev.New)}, " ")
				require.NotContains(t, rec, secret, "audit record %q", ev.Action)
			}
			require.Contains(t, actions, "reset totp")
			require.NoError(t, s.Close())
		}
	}

	p = start(t, env)
	tok = login(t, p.url, adminUser, adminPass)
	r = call(t, "GET", p.url+"/subject", tok, "")
	require.Equal(t, http.StatusForbidden, r.status, "%s", r.body)
	r = call(t, "GET", p.url+"/user/me", tok, "")
	require.Contains(t, string(r.body), `"totp":false`)
}
