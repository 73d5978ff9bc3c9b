package main_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/internal/smtptest"
)

// TestUserPasswdMailsTheNotice changes a password with `idmd user passwd`
// while mail is configured: the user gets the same "your password was
// changed" notice as after a change through the API or a reset link.
func TestUserPasswdMailsTheNotice(t *testing.T) {
	mail := smtptest.Start(t)
	env := append(baseEnv(t), "IDM_SMTP_URL="+mail.URL(), "IDM_MAIL_FROM=idm@example.org",
		"IDM_PUBLIC_URL=https://idm.example.org")
	code, out := runCmd(t, env, adminPass+"\n", "user", "add", adminUser, "--admin", "--password-stdin")
	require.Equal(t, 0, code, out)
	require.Empty(t, mail.Messages(), "a user created with a password gets no mail")

	code, out = runCmd(t, env, "another long passphrase\n", "user", "passwd", strings.ToUpper(adminUser), "--password-stdin")
	require.Equal(t, 0, code, out)
	msgs := mail.Messages() // the command waits for its mail before it ends
	require.Len(t, msgs, 1, out)
	require.Equal(t, []string{adminUser}, msgs[0].To)
	require.Contains(t, msgs[0].Header.Get("Subject"), "password was changed")
}

// TestUserAddTakenInAnotherCase refuses `idmd user add` of a username
// that differs from an existing one only in case.
func TestUserAddTakenInAnotherCase(t *testing.T) {
	env := baseEnv(t)
	code, out := runCmd(t, env, adminPass+"\n", "user", "add", "Bob@Example.org", "--password-stdin")
	require.Equal(t, 0, code, out)
	code, out = runCmd(t, env, adminPass+"\n", "user", "add", "bob@example.ORG", "--password-stdin")
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "this username has already been taken")
}
