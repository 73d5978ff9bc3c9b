package resetflow_test

import (
	"bytes"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
	"github.com/c3-pro/idm/internal/browsertest"
	"github.com/c3-pro/idm/internal/smtptest"
	"github.com/c3-pro/idm/resetflow"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
)

// screenshotPath is where the browser test leaves a picture of the /reset
// page, for people to look at.
const screenshotPath = "/tmp/reset.png"

// TestBrowserFlow walks the whole flow in a real Chromium: /iforgot, the
// link from the mail received over SMTP, /reset, and a login with the new
// password at POST /auth, all on one origin served by the real handlers.
func TestBrowserFlow(t *testing.T) {
	store := memstore.New()
	t.Cleanup(func() { _ = store.Close() })
	pw, err := auth.NewPasswords(auth.PasswordConfig{Cost: bcrypt.MinCost})
	require.NoError(t, err)
	mail := smtptest.Start(t)
	mailer, err := resetflow.NewSMTPMailer(mail.URL(), "C3-PRO IDM <idm@example.org>")
	require.NoError(t, err)

	srv := httptest.NewUnstartedServer(nil)
	publicURL := "http://" + srv.Listener.Addr().String()
	key, err := auth.NewHMACKey([]byte("browser-test-secret-of-at-least-32-bytes"))
	require.NoError(t, err)
	keys, err := auth.NewKeySet(key)
	require.NoError(t, err)
	authH, err := auth.New(auth.Config{Store: store, Keys: keys, Passwords: pw, Issuer: publicURL})
	require.NoError(t, err)
	accounts := newAccounts(t, store, pw, nil)
	resetH, err := resetflow.New(resetflow.Config{Store: store, Accounts: accounts, Passwords: pw, Mailer: mailer, PublicURL: publicURL})
	require.NoError(t, err)
	accounts.SetMail(resetH, resetH)
	t.Cleanup(func() { _ = resetH.Close() })
	mux := http.NewServeMux()
	authH.Install(mux.Handle)
	resetH.Install(mux.Handle)
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)

	oldHash, err := pw.Hash(t.Context(), "the old password")
	require.NoError(t, err)
	u := idm.User{ID: idm.NewID(), Username: "alice@example.org", PasswordHash: oldHash, Created: time.Now(), Changed: time.Now()}
	require.NoError(t, store.CreateUser(t.Context(), u))

	browser := browsertest.New(t)
	ctx := browsertest.StepTimeout(t, browser, 60*time.Second)

	// 1. Ask for a link.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.EmulateViewport(800, 600),
		chromedp.Navigate(srv.URL+"/iforgot"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "alice@example.org"),
	))
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("submit")))
	require.NoError(t, err)
	require.EqualValues(t, http.StatusOK, resp.Status)
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	require.NoError(t, err)
	assert.Contains(t, text, "If the address is known, a link is on its way.")

	// 2. Follow the link from the mail.
	link := mailLink(t, mail.Wait(t, 1)[0])
	require.True(t, strings.HasPrefix(link, publicURL+"/reset?k="), link)
	resp, err = chromedp.Run(ctx, chromedp.NavigateResponse(link))
	require.NoError(t, err)
	require.EqualValues(t, http.StatusOK, resp.Status)
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("pass1"))))
	// The inline stylesheet applies (its CSP hash matches).
	width, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("main")).maxWidth`))
	require.NoError(t, err)
	assert.Equal(t, "448px", width, "the stylesheet was blocked")

	// 3. Set a new password, with a mismatch first.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("pass1"), "a brand new passphrase"),
		chromedp.SendKeys(chromedp.ID("pass2"), "a brand new passphrasE"),
	))
	resp, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("submit")))
	require.NoError(t, err)
	require.EqualValues(t, http.StatusBadRequest, resp.Status)
	text, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(".error")))
	require.NoError(t, err)
	assert.Equal(t, resetflow.MsgMismatch, text)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("pass1"), "a brand new passphrase"),
		chromedp.SendKeys(chromedp.ID("pass2"), "a brand new passphrase"),
	))
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	_, err = png.Decode(bytes.NewReader(shot))
	require.NoError(t, err, "the screenshot is a PNG")
	require.NoError(t, os.WriteFile(screenshotPath, shot, 0o644))
	t.Logf("screenshot of /reset: %s", screenshotPath)

	resp, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("submit")))
	require.NoError(t, err)
	require.EqualValues(t, http.StatusOK, resp.Status)
	text, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	require.NoError(t, err)
	assert.Contains(t, text, "Your password has been set.")

	// 4. Log in with the new password; the old one is gone.
	client := srv.Client()
	for _, tc := range []struct {
		password string
		status   int
	}{
		{"a brand new passphrase", http.StatusOK},
		{"the old password", http.StatusUnauthorized},
	} {
		res, err := client.Post(srv.URL+"/auth", "application/json",
			strings.NewReader(`{"username":"alice@example.org","password":"`+tc.password+`"}`))
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, tc.status, res.StatusCode, tc.password)
	}
	// The notice about the change arrived too.
	notice := mail.Wait(t, 2)[1]
	assert.Contains(t, notice.Subject, "your password was changed")
}
