package resetflow_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c3-pro/idm/auth"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/resetflow"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// captureMailer is a Mailer that keeps the messages it is given.
type captureMailer struct {
	mu   sync.Mutex
	msgs []resetflow.Message
}

func (m *captureMailer) Send(_ context.Context, msg resetflow.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.msgs = append(m.msgs, msg)
	return nil
}

func (m *captureMailer) Messages() []resetflow.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]resetflow.Message(nil), m.msgs...)
}

func TestSecurity01TokenEntropy(t *testing.T) {
	const n = 10_000
	capture := &captureMailer{}
	e := newEnv(t, func(c *resetflow.Config) { c.Mailer = capture })
	u := e.addUser("alice@example.org", "", false)
	ctx := t.Context()
	for range n {
		require.NoError(t, e.h.Invite(ctx, u))
	}
	msgs := capture.Messages()
	require.Len(t, msgs, n)
	seen := make(map[string]bool, n)
	for _, m := range msgs {
		links := linkRE.FindAllString(m.Text, -1)
		require.Len(t, links, 1)
		key := keyOf(t, links[0])
		raw, err := base64.RawURLEncoding.Strict().DecodeString(key)
		require.NoError(t, err, key)
		require.GreaterOrEqual(t, len(raw)*8, 256, "token %q carries fewer than 256 bits", key)
		require.False(t, seen[key], "token issued twice")
		seen[key] = true
	}
	assert.Len(t, seen, n)

	// The same holds for a link mailed over SMTP by /iforgot.
	e2 := newEnv(t)
	e2.addUser("bob@example.org", "", false)
	key := keyOf(t, e2.requestLink("bob@example.org"))
	raw, err := base64.RawURLEncoding.Strict().DecodeString(key)
	require.NoError(t, err)
	assert.Len(t, raw, 32)
}

func TestSecurity02HashedAtRest(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("alice@example.org", "correct horse battery", false)
	key := keyOf(t, e.requestLink("Alice@Example.org"))
	e.h.Wait()

	sum := sha256.Sum256([]byte(key))
	want := hex.EncodeToString(sum[:])
	assert.Equal(t, want, resetflow.HashToken(key))
	tok, err := e.store.FindResetToken(t.Context(), want, e.clock.Now())
	require.NoError(t, err, "the token is stored under its SHA-256")
	assert.Equal(t, u.ID, tok.UserID)
	assert.Equal(t, resetflow.PurposeReset, tok.Purpose)
	_, err = e.store.FindResetToken(t.Context(), key, e.clock.Now())
	assert.ErrorIs(t, err, idm.ErrNotFound, "the raw token is no key")

	raw, err := base64.RawURLEncoding.DecodeString(key)
	require.NoError(t, err)
	written := e.store.Written()
	require.NotEmpty(t, written)
	for _, w := range written {
		for _, form := range []string{key, hex.EncodeToString(raw), base64.StdEncoding.EncodeToString(raw)} {
			assert.NotContains(t, w, form, "a stored value contains the raw token")
		}
	}
	// And after the reset, too.
	require.Equal(t, http.StatusOK, e.setPassword(key, "a new long passphrase", "a new long passphrase").Status)
	e.h.Wait()
	for _, w := range e.store.Written() {
		assert.NotContains(t, w, key)
		assert.NotContains(t, w, "a new long passphrase")
	}
}

func TestSecurity03Expiry(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ttl     time.Duration // 0: the default
		after   time.Duration // time between issue and POST
		success bool
	}{
		{"DefaultOneSecondBefore", 0, 2*time.Hour - time.Second, true},
		{"DefaultAtExpiry", 0, 2 * time.Hour, false},
		{"DefaultAfterExpiry", 0, 2*time.Hour + time.Second, false},
		{"ConfiguredOneSecondBefore", 30 * time.Minute, 30*time.Minute - time.Second, true},
		{"ConfiguredAtExpiry", 30 * time.Minute, 30 * time.Minute, false},
		{"ConfiguredDayLater", 30 * time.Minute, 24 * time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *resetflow.Config) { c.TokenTTL = tc.ttl })
			u := e.addUser("alice@example.org", "old password 123", false)
			key := keyOf(t, e.requestLink("alice@example.org"))
			e.clock.Advance(tc.after)

			get := e.do(http.MethodGet, "/reset?k="+key, nil, nil)
			res := e.setPassword(key, "brand new password", "brand new password")
			if tc.success {
				assert.Equal(t, http.StatusOK, get.Status)
				assert.Equal(t, http.StatusOK, res.Status, res.Body)
				assert.Contains(t, res.Body, "Your password has been set")
				assert.True(t, e.verify(u.ID, "brand new password"))
				return
			}
			assert.Equal(t, http.StatusBadRequest, get.Status)
			assert.Equal(t, http.StatusBadRequest, res.Status)
			assert.Contains(t, res.Body, resetflow.MsgInvalidLink)
			assert.True(t, e.verify(u.ID, "old password 123"), "the password must not change")
			js := e.postJSON("/reset", `{"key":"`+key+`","password":"brand new password"}`, nil)
			assert.Equal(t, http.StatusBadRequest, js.Status)
			assert.Equal(t, resetflow.MsgInvalidLink, errorMessage(t, js.Body))
		})
	}
}

func TestSecurity04SingleUse(t *testing.T) {
	t.Run("GetDoesNotConsume", func(t *testing.T) {
		e := newEnv(t)
		u := e.addUser("alice@example.org", "old password 123", false)
		key := keyOf(t, e.requestLink("alice@example.org"))
		for range 3 {
			res := e.do(http.MethodGet, "/reset?k="+key, nil, nil)
			require.Equal(t, http.StatusOK, res.Status)
			require.Contains(t, res.Body, `name="key" value="`+key+`"`)
			head := e.do(http.MethodHead, "/reset?k="+key, nil, nil)
			require.Equal(t, http.StatusOK, head.Status)
		}
		res := e.setPassword(key, "brand new password", "brand new password")
		require.Equal(t, http.StatusOK, res.Status, res.Body)
		assert.True(t, e.verify(u.ID, "brand new password"))
	})
	t.Run("Replay", func(t *testing.T) {
		e := newEnv(t)
		u := e.addUser("alice@example.org", "old password 123", false)
		key := keyOf(t, e.requestLink("alice@example.org"))
		require.Equal(t, http.StatusOK, e.setPassword(key, "first new password", "first new password").Status)
		res := e.setPassword(key, "second new password", "second new password")
		assert.Equal(t, http.StatusBadRequest, res.Status)
		assert.Contains(t, res.Body, resetflow.MsgInvalidLink)
		assert.Equal(t, http.StatusBadRequest, e.do(http.MethodGet, "/reset?k="+key, nil, nil).Status)
		assert.True(t, e.verify(u.ID, "first new password"))
	})
	t.Run("Concurrent", func(t *testing.T) {
		e := newEnv(t)
		e.addUser("alice@example.org", "old password 123", false)
		key := keyOf(t, e.requestLink("alice@example.org"))
		const n = 10
		statuses := make(chan int, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				pw := "concurrent password " + string(rune('a'+i))
				if i%2 == 0 {
					statuses <- e.setPassword(key, pw, pw).Status
				} else {
					statuses <- e.postJSON("/reset", `{"key":"`+key+`","password":"`+pw+`"}`, nil).Status
				}
			})
		}
		close(start)
		wg.Wait()
		close(statuses)
		ok, bad := 0, 0
		for s := range statuses {
			switch s {
			case http.StatusOK:
				ok++
			case http.StatusBadRequest:
				bad++
			default:
				t.Errorf("status %d", s)
			}
		}
		assert.Equal(t, 1, ok, "exactly one success")
		assert.Equal(t, n-1, bad)
		assert.Equal(t, 1, e.countEvents(resetflow.EventReset))
	})
	t.Run("NewRequestInvalidatesOlder", func(t *testing.T) {
		e := newEnv(t)
		u := e.addUser("alice@example.org", "old password 123", false)
		first := keyOf(t, e.requestLink("alice@example.org"))
		e.clock.Advance(time.Minute)
		second := keyOf(t, e.requestLink("alice@example.org"))
		require.NotEqual(t, first, second)
		res := e.setPassword(first, "brand new password", "brand new password")
		assert.Equal(t, http.StatusBadRequest, res.Status)
		assert.Contains(t, res.Body, resetflow.MsgInvalidLink)
		require.Equal(t, http.StatusOK, e.setPassword(second, "brand new password", "brand new password").Status)
		assert.True(t, e.verify(u.ID, "brand new password"))
	})
	t.Run("InviteInvalidatesReset", func(t *testing.T) {
		e := newEnv(t)
		u := e.addUser("alice@example.org", "", false)
		reset := keyOf(t, e.requestLink("alice@example.org"))
		require.NoError(t, e.h.Invite(t.Context(), u))
		assert.Equal(t, http.StatusBadRequest, e.setPassword(reset, "brand new password", "brand new password").Status)
	})
	t.Run("PasswordChangeInvalidates", func(t *testing.T) {
		e := newEnv(t)
		u := e.addUser("alice@example.org", "old password 123", false)
		key := keyOf(t, e.requestLink("alice@example.org"))
		// Package users changes the password and tells the flow.
		e.clock.Advance(time.Minute)
		u.PasswordHash, u.PasswordChanged, u.TokenVersion = "changed elsewhere", e.clock.Now(), u.TokenVersion+1
		require.NoError(t, e.store.UpdateUser(t.Context(), u))
		require.NoError(t, e.h.PasswordChanged(t.Context(), u))
		res := e.setPassword(key, "brand new password", "brand new password")
		assert.Equal(t, http.StatusBadRequest, res.Status)
		assert.Contains(t, res.Body, resetflow.MsgInvalidLink)
	})
	t.Run("PasswordChangeInvalidatesEvenIfTokensRemain", func(t *testing.T) {
		// A change that did not remove the tokens (another instance, an
		// older tool) still ends them: links made before the change fail.
		e := newEnv(t)
		u := e.addUser("alice@example.org", "old password 123", false)
		key := keyOf(t, e.requestLink("alice@example.org"))
		e.clock.Advance(time.Second)
		u.PasswordChanged = e.clock.Now()
		require.NoError(t, e.store.UpdateUser(t.Context(), u))
		assert.Equal(t, http.StatusBadRequest, e.do(http.MethodGet, "/reset?k="+key, nil, nil).Status)
		assert.Equal(t, http.StatusBadRequest, e.setPassword(key, "brand new password", "brand new password").Status)
	})
	t.Run("ResetInvalidatesOtherTokens", func(t *testing.T) {
		e := newEnv(t)
		u := e.addUser("alice@example.org", "old password 123", false)
		key := keyOf(t, e.requestLink("alice@example.org"))
		require.Equal(t, http.StatusOK, e.setPassword(key, "brand new password", "brand new password").Status)
		_, err := e.store.ConsumeResetToken(t.Context(), resetflow.HashToken(key), e.clock.Now())
		assert.ErrorIs(t, err, idm.ErrNotFound)
		n, err := e.store.CountResetTokens(t.Context(), u.ID, time.Time{})
		require.NoError(t, err)
		assert.Zero(t, n, "no reset token of the user is left")
	})
}

func TestSecurity05Revocation(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("alice@example.org", "old password 123", false)
	secret := []byte(strings.Repeat("k", 32) + "-resetflow-test-secret")
	key, err := auth.NewHMACKey(secret)
	require.NoError(t, err)
	keys, err := auth.NewKeySet(key)
	require.NoError(t, err)
	authH, err := auth.New(auth.Config{Store: e.store, Keys: keys, Passwords: e.pw, Now: e.clock.Now})
	require.NoError(t, err)
	mux := http.NewServeMux()
	authH.Install(mux.Handle)
	mux.Handle("GET /whoami", authH.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := idm.PrincipalFrom(r.Context())
		idm.WriteData(w, http.StatusOK, p.Username)
	})))
	srv := newServer(t, mux)

	token := login(t, srv, "alice@example.org", "old password 123")
	require.Equal(t, http.StatusOK, whoami(t, srv, token))

	link := e.requestLink("alice@example.org")
	require.Equal(t, http.StatusOK, e.setPassword(keyOf(t, link), "brand new password", "brand new password").Status)

	// Same (fake) second: the token version, not a timestamp, revokes it.
	assert.Equal(t, http.StatusUnauthorized, whoami(t, srv, token))
	assert.Equal(t, u.TokenVersion+1, e.user(u.ID).TokenVersion)
	assert.Equal(t, e.clock.Now(), e.user(u.ID).PasswordChanged)
	fresh := login(t, srv, "alice@example.org", "brand new password")
	assert.Equal(t, http.StatusOK, whoami(t, srv, fresh))

	// The "your password was changed" notice arrives.
	msgs := e.mail.Wait(t, 2)
	notice := msgs[1]
	assert.Equal(t, []string{"alice@example.org"}, notice.To)
	assert.Contains(t, notice.Subject, "your password was changed")
	assert.Contains(t, notice.Text, "was changed on 29 November 2026 at 12:00 UTC")
	assert.Contains(t, notice.Text, publicURL+"/iforgot")
	assert.NotRegexp(t, linkRE, notice.Text, "the notice carries no reset link")
	// Records of one fake instant sort by ID, so compare them as a set.
	assert.ElementsMatch(t, []string{"login", resetflow.ActionRequestReset, resetflow.ActionResetPassword, "login"}, e.audits(u.ID))
}

func TestSecurity06NoEnumeration(t *testing.T) {
	e := newEnv(t)
	e.addUser("known@example.org", "old password 123", false)
	e.addUser("disabled@example.org", "old password 123", true)
	usernames := []string{"known@example.org", "unknown@example.org", "disabled@example.org"}

	for _, variant := range []struct {
		name string
		send func(username string) response
	}{
		{"Form", func(u string) response { return e.postForm("/iforgot", url.Values{"username": {u}}, nil) }},
		{"JSON", func(u string) response { return e.postJSON("/iforgot", `{"username":"`+u+`"}`, nil) }},
		{"FormAcceptJSON", func(u string) response {
			return e.postForm("/iforgot", url.Values{"username": {u}}, map[string]string{"Accept": "application/json"})
		}},
	} {
		t.Run(variant.name, func(t *testing.T) {
			var answers []response
			for _, u := range usernames {
				answers = append(answers, variant.send(u))
			}
			for i, a := range answers[1:] {
				assert.Equal(t, answers[0].Status, a.Status, usernames[i+1])
				assert.Equal(t, answers[0].Body, a.Body, usernames[i+1])
				assert.Equal(t, headerNames(answers[0].Header), headerNames(a.Header), usernames[i+1])
			}
			if variant.name == "Form" {
				assert.Equal(t, http.StatusOK, answers[0].Status)
				assert.Contains(t, answers[0].Body, "If the address is known, a link is on its way.")
			} else {
				assert.Equal(t, http.StatusAccepted, answers[0].Status)
				assert.JSONEq(t, `{"data":{"message":"`+resetflow.MsgSent+`"}}`, answers[0].Body)
			}
		})
	}
	e.h.Wait()
	// Only the known, enabled user got mail (one per variant).
	msgs := e.mail.Messages()
	require.Len(t, msgs, 3)
	for _, m := range msgs {
		assert.Equal(t, []string{"known@example.org"}, m.To)
	}

	t.Run("AnswerBeforeLookup", func(t *testing.T) {
		// The answer is written before the store is asked: with the
		// username lookup blocked, the answer still arrives, the same for
		// every username.
		release := make(chan struct{})
		e2 := newEnv(t, func(c *resetflow.Config) { c.Store = &blockingStore{Store: c.Store, release: release} })
		e2.addUser("known@example.org", "old password 123", false)
		var answers []response
		for _, u := range usernames {
			answers = append(answers, e2.postForm("/iforgot", url.Values{"username": {u}}, nil))
		}
		assert.Empty(t, e2.store.Written()[1:], "nothing written before the lookup")
		close(release)
		for _, a := range answers[1:] {
			assert.Equal(t, answers[0].Status, a.Status)
			assert.Equal(t, answers[0].Body, a.Body)
			assert.Equal(t, headerNames(answers[0].Header), headerNames(a.Header))
		}
		e2.h.Wait()
		assert.Len(t, e2.mail.Messages(), 1)
	})
}

// blockingStore blocks username lookups until release is closed.
type blockingStore struct {
	resetflow.Store
	release chan struct{}
}

func (b *blockingStore) FindUserByUsername(ctx context.Context, username string) (idm.User, error) {
	select {
	case <-b.release:
	case <-ctx.Done():
		return idm.User{}, ctx.Err()
	}
	return b.Store.FindUserByUsername(ctx, username)
}

func headerNames(h http.Header) []string {
	var names []string
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func TestSecurity08PasswordPolicy(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("alice@example.org", "old password 123", false)
	key := keyOf(t, e.requestLink("alice@example.org"))
	for _, tc := range []struct {
		name, pass1, pass2, want string
	}{
		{"TooShort", "short", "short", "password must be at least 8 characters long"},
		{"Common", "password", "password", "password is too common"},
		{"TooLong", strings.Repeat("x", 129), strings.Repeat("x", 129), "password must be at most 128 characters long"},
		{"Mismatch", "a long passphrase", "a long passphrasE", resetflow.MsgMismatch},
		{"Empty", "", "", "password is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := e.setPassword(key, tc.pass1, tc.pass2)
			assert.Equal(t, http.StatusBadRequest, res.Status)
			assert.Contains(t, res.Body, tc.want)
			// The form is shown again with the link kept.
			assert.Contains(t, res.Body, `name="key" value="`+key+`"`)
			if tc.pass1 != tc.pass2 {
				return
			}
			js := e.postJSON("/reset", `{"key":"`+key+`","password":"`+tc.pass1+`"}`, nil)
			assert.Equal(t, http.StatusBadRequest, js.Status)
			assert.Contains(t, errorMessage(t, js.Body), tc.want)
		})
	}
	// None of the refusals used the link up; 128 characters of any script
	// are fine.
	long := strings.Repeat("é", 128)
	res := e.setPassword(key, long, long)
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	assert.True(t, e.verify(u.ID, long))
}

func TestSecurity12SafeLinks(t *testing.T) {
	t.Run("PublicURLNotHost", func(t *testing.T) {
		e := newEnv(t)
		e.addUser("alice@example.org", "old password 123", false)
		res := e.postForm("/iforgot", url.Values{"username": {"alice@example.org"}}, map[string]string{
			"Host": "evil.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http", "Forwarded": "host=evil.example",
		})
		require.Equal(t, http.StatusOK, res.Status)
		m := e.mail.Wait(t, 1)[0]
		link := mailLink(t, m)
		u, err := url.Parse(link)
		require.NoError(t, err)
		assert.Equal(t, "https", u.Scheme)
		assert.Equal(t, "idm.example.org", u.Host)
		assert.Equal(t, "/reset", u.Path)
		assert.NotContains(t, m.Text+m.HTML, "evil.example")
	})
	t.Run("CrossOriginPOSTRefused", func(t *testing.T) {
		e := newEnv(t)
		u := e.addUser("alice@example.org", "old password 123", false)
		key := keyOf(t, e.requestLink("alice@example.org"))
		for _, h := range []map[string]string{
			{"Sec-Fetch-Site": "cross-site"},
			{"Sec-Fetch-Site": "same-site"},
			{"Origin": "https://evil.example"},
		} {
			form := e.postForm("/iforgot", url.Values{"username": {"alice@example.org"}}, h)
			assert.Equal(t, http.StatusForbidden, form.Status, h)
			assert.Contains(t, form.Body, "cross-origin request refused")
			js := e.postJSON("/reset", `{"key":"`+key+`","password":"brand new password"}`, h)
			assert.Equal(t, http.StatusForbidden, js.Status, h)
			assert.Equal(t, "cross-origin request refused", errorMessage(t, js.Body))
			reset := e.postForm("/reset", url.Values{"key": {key}, "pass1": {"brand new password"}, "pass2": {"brand new password"}}, h)
			assert.Equal(t, http.StatusForbidden, reset.Status, h)
		}
		e.h.Wait()
		assert.Len(t, e.mail.Messages(), 1, "a refused /iforgot sends no mail")
		assert.True(t, e.verify(u.ID, "old password 123"))
		// A same-origin browser POST passes.
		res := e.postForm("/reset", url.Values{"key": {key}, "pass1": {"brand new password"}, "pass2": {"brand new password"}},
			map[string]string{"Sec-Fetch-Site": "same-origin"})
		assert.Equal(t, http.StatusOK, res.Status)
	})
	t.Run("GetChangesNothing", func(t *testing.T) {
		e := newEnv(t)
		u := e.addUser("alice@example.org", "old password 123", false)
		before := len(e.store.Written())
		for _, target := range []string{"/iforgot", "/iforgot?username=alice@example.org", "/reset", "/reset?k=abc"} {
			e.do(http.MethodGet, target, nil, nil)
		}
		e.h.Wait()
		assert.Len(t, e.store.Written(), before)
		assert.Empty(t, e.mail.Messages())
		assert.Equal(t, u, e.user(u.ID))
	})
}

// newServer serves h over real HTTP for the test.
func newServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// login gets a staff token from POST /auth.
func login(t *testing.T, srv *httptest.Server, username, password string) string {
	t.Helper()
	body := `{"username":"` + username + `","password":"` + password + `"}`
	res, err := srv.Client().Post(srv.URL+"/auth", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	var out struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&out))
	require.NotEmpty(t, out.AccessToken)
	return out.AccessToken
}

// whoami calls GET /whoami with a staff token and returns the status.
func whoami(t *testing.T, srv *httptest.Server, token string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/whoami", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "JWT "+token)
	res, err := srv.Client().Do(req)
	require.NoError(t, err)
	res.Body.Close()
	return res.StatusCode
}
