package main_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/internal/testmongo"
)

// The published C3-PRO app build (c-tracker-sccs Configuration.swift):
// cJWTSecret, cJWTIssuer, and cJWTAudience = nil (the app does not check
// aud; it posts to it).
const (
	appBuildSecret = "super-duper-secret"
	appBuildIssuer = "https://idm.c3-pro.io/"
)

// strongSecret is a staff-token secret that idmd accepts.
const strongSecret = "q3JX8vN2pL5sT9wY4bR7cF1hK6mD0gZaUeIoPtWnQxVy"

// appProfileLink is a Go port of what the app does with a scanned QR code
// (c3-pro-ios-framework ProfileLink.swift): JWT.decode(token, algorithm:
// .hs256(secret), verify: true, audience: nil, issuer: issuer), which checks
// the HS256 signature with the build's secret, exp, nbf and iat when
// present, and iss byte for byte; then URL(string: aud)
// .appendingPathComponent("establish") is where it posts the Patient.
func appProfileLink(token, secret, issuer string, now time.Time) (establishURL string, err error) {
	claims := jwt.MapClaims{}
	_, err = jwt.NewParser(
		jwt.WithValidMethods([]string{"HS256"}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	).ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return []byte(secret), nil })
	if err != nil {
		return "", err
	}
	if iss, _ := claims["iss"].(string); iss != issuer {
		return "", fmt.Errorf("iss %q is not %q", iss, issuer)
	}
	aud, ok := claims["aud"].(string)
	if !ok {
		return "", errors.New("aud is not a string")
	}
	return appendingPathComponent(aud, "establish")
}

// appendingPathComponent does what Foundation's
// URL.appendingPathComponent does for an http(s) URL: the component is
// added to the path, with one "/" between them.
func appendingPathComponent(base, component string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("aud %q is not a URL", base)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	u.Path += component
	return u.String(), nil
}

func TestAppendingPathComponentAsFoundationDoes(t *testing.T) {
	for base, want := range map[string]string{
		"https://idm.example.org":       "https://idm.example.org/establish",
		"https://idm.example.org/":      "https://idm.example.org/establish",
		"https://example.org/idm":       "https://example.org/idm/establish",
		"https://example.org/idm/":      "https://example.org/idm/establish",
		"http://127.0.0.1:9096":         "http://127.0.0.1:9096/establish",
		"https://idm.c3-pro.io/api/v1/": "https://idm.c3-pro.io/api/v1/establish",
	} {
		got, err := appendingPathComponent(base, "establish")
		require.NoError(t, err)
		require.Equal(t, want, got, base)
	}
}

// freeAddr returns a loopback address with a free port, so that idmd's
// public URL (the links' aud) can name the address it listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// ed25519KeyFile writes a PKCS#8 Ed25519 private key and returns its path.
func ed25519KeyFile(t *testing.T) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "staff.pem")
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	return path
}

// appEnv is the environment of an idmd configured like the published app
// build, with staffKey (IDM_SECRET=… or IDM_KEY_FILE=…) for staff tokens.
func appEnv(env []string, addr, staffKey string) []string {
	return append(env,
		"IDM_ADDR="+addr, "IDM_PUBLIC_URL=http://"+addr,
		"IDM_LINK_SECRET="+appBuildSecret, "IDM_LINK_ISSUER="+appBuildIssuer, staffKey)
}

// enrolment is a consented subject with a link whose JWT was minted.
type enrolment struct {
	staff, sssid, jti, token string
}

// prepareEnrolment bootstraps an admin (once per store), creates a
// consented subject and a link, checks the link's fields and mints its JWT.
func prepareEnrolment(t *testing.T, base, sssid string, bootstrap bool) enrolment {
	t.Helper()
	if bootstrap {
		r := call(t, "POST", base+"/init", "", fmt.Sprintf(`{"username":%q,"password":%q}`, adminUser, adminPass))
		require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	}
	staff := login(t, base, adminUser, adminPass)
	r := call(t, "POST", base+"/subject", staff, fmt.Sprintf(`{"sssid":%q,"name":"Alice Example","bday":"1980-05-17","date_consented":"2026-11-30T10:00:00+01:00"}`, sssid))
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	r = call(t, "POST", base+"/subject/"+sssid+"/links", staff, "")
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	link := r.json(t)["data"].(map[string]any)
	require.Equal(t, appBuildIssuer, link["iss"], "a new link answers iss from creation")
	require.Equal(t, base, link["aud"], "aud is the public base URL")
	require.Equal(t, "HS256", link["algorithm"])
	jti := link["_id"].(string)
	r = call(t, "GET", base+"/link/"+jti+"/jwt", staff, "")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	return enrolment{staff: staff, sssid: sssid, jti: jti, token: string(r.body)}
}

// appEstablish posts the FHIR Patient as the app does: to the URL it built
// from aud, with the scanned JWT as a Bearer token.
func appEstablish(t *testing.T, establishURL, token, patientID string) reply {
	t.Helper()
	body := fmt.Sprintf(`{"resourceType":"Patient","identifier":[{"system":"https://c3-pro.example/patients","value":%q}],"name":[{"family":"Example","given":["Alice"]}]}`, patientID)
	req, err := http.NewRequest("POST", establishURL, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// TestPublishedAppBuildEnrols: an idmd configured with the published app
// build's link secret and issuer, and a strong staff key (an HMAC secret or
// an Ed25519 key file), mints link JWTs that the app's own check accepts,
// and the app's /establish call succeeds; on boltstore and mongostore.
func TestPublishedAppBuildEnrols(t *testing.T) {
	stores := map[string]func(t *testing.T) []string{
		"boltstore":  baseEnv,
		"mongostore": func(t *testing.T) []string { return mongoEnv(t, testmongo.NewDatabaseName(t)) },
	}
	staffKeys := map[string]func(t *testing.T) string{
		"HS256 staff secret": func(*testing.T) string { return "IDM_SECRET=" + strongSecret },
		"Ed25519 staff key":  func(t *testing.T) string { return "IDM_KEY_FILE=" + ed25519KeyFile(t) },
	}
	for storeName, env := range stores {
		for keyName, staffKey := range staffKeys {
			t.Run(storeName+"/"+keyName, func(t *testing.T) {
				addr := freeAddr(t)
				p := start(t, appEnv(env(t), addr, staffKey(t)))
				base := p.url
				require.Equal(t, "http://"+addr, base)

				// The expected warning, once, naming the setting; never the secret.
				require.Equal(t, 1, strings.Count(p.logs(), "IDM_LINK_SECRET is weak"), p.logs())
				require.NotContains(t, p.logs(), appBuildSecret)
				r := call(t, "GET", base+"/status", "", "")
				require.Equal(t, "weak", r.json(t)["data"].(map[string]any)["link_secret"])

				e := prepareEnrolment(t, base, "S-APP-1", true)

				// What the app does with the scanned QR code.
				establishURL, err := appProfileLink(e.token, appBuildSecret, appBuildIssuer, time.Now())
				require.NoError(t, err, "the published app build accepts the link JWT")
				require.Equal(t, base+"/establish", establishURL)
				_, err = appProfileLink(e.token, appBuildSecret, strings.TrimSuffix(appBuildIssuer, "/"), time.Now())
				require.Error(t, err, "control: the app's issuer check is byte for byte")

				r = appEstablish(t, establishURL, e.token, "P-4711")
				require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
				r = call(t, "GET", base+"/subject/"+e.sssid, e.staff, "")
				require.NotEmpty(t, r.json(t)["data"].(map[string]any)["date_enrolled"])
				r = call(t, "GET", base+"/link/"+e.jti, e.staff, "")
				link := r.json(t)["data"].(map[string]any)
				require.Equal(t, "P-4711", link["linked_to"])
				require.Equal(t, "https://c3-pro.example/patients", link["linked_system"])
				require.Equal(t, appBuildIssuer, link["iss"], "iss never changes")

				// Staff tokens stay strong: one signed with the link secret is
				// refused, with or without the link key's kid.
				var hdr struct {
					KID string `json:"kid"`
				}
				head, _, _ := strings.Cut(e.token, ".")
				raw, err := jwt.NewParser().DecodeSegment(head)
				require.NoError(t, err)
				require.NoError(t, json.Unmarshal(raw, &hdr))
				staffClaims := jwt.MapClaims{}
				_, _, err = jwt.NewParser().ParseUnverified(e.staff, staffClaims)
				require.NoError(t, err)
				for _, kid := range []string{hdr.KID, ""} {
					forged := jwt.NewWithClaims(jwt.SigningMethodHS256, staffClaims)
					if kid != "" {
						forged.Header["kid"] = kid
					}
					s, err := forged.SignedString([]byte(appBuildSecret))
					require.NoError(t, err)
					r = call(t, "GET", base+"/user/me", s, "")
					require.Equal(t, http.StatusUnauthorized, r.status, "a staff token signed with the link secret (kid %q)", kid)
				}
				// And the staff token itself is no link token.
				r = appEstablish(t, establishURL, e.staff, "P-1")
				require.Equal(t, http.StatusForbidden, r.status, "%s", r.body)
			})
		}
	}
}

// TestLinkShapedTokenSignedWithStaffKeyIsRefusedAtEstablish: a token with
// a link token's claims, naming an existing link, but signed with the
// staff-token secret is 403 at /establish once a link secret is configured.
func TestLinkShapedTokenSignedWithStaffKeyIsRefusedAtEstablish(t *testing.T) {
	addr := freeAddr(t)
	p := start(t, appEnv(baseEnv(t), addr, "IDM_SECRET="+strongSecret))
	e := prepareEnrolment(t, p.url, "S-APP-2", true)
	claims := jwt.MapClaims{}
	tok, _, err := jwt.NewParser().ParseUnverified(e.token, claims)
	require.NoError(t, err)
	for _, kid := range []any{tok.Header["kid"], nil} {
		forged := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
		if kid != nil {
			forged.Header["kid"] = kid
		}
		s, err := forged.SignedString([]byte(strongSecret))
		require.NoError(t, err)
		r := appEstablish(t, p.url+"/establish", s, "P-1")
		require.Equal(t, http.StatusForbidden, r.status, "%s", r.body)
		require.JSONEq(t, `{"error":{"status":403,"message":"Forbidden"}}`, string(r.body))
	}
	r := appEstablish(t, p.url+"/establish", e.token, "P-1")
	require.Equal(t, http.StatusNoContent, r.status, "control: the link's own token: %s", r.body)
}

// TestLinkSecretRotationKeepsPrintedLinks: after the app build's secret is
// rotated, a link printed before establishes while the old secret is a
// previous link secret, and stops when it is removed; new links are signed
// with the new secret; a strong link secret is reported "ok".
func TestLinkSecretRotationKeepsPrintedLinks(t *testing.T) {
	env := baseEnv(t)
	addr := freeAddr(t)
	p := start(t, appEnv(env, addr, "IDM_SECRET="+strongSecret))
	printed := prepareEnrolment(t, p.url, "S-ROT-1", true)
	second := prepareEnrolment(t, p.url, "S-ROT-2", false)
	require.NoError(t, p.cmd.Process.Kill())
	<-p.exited

	const newSecret = "a new app build's secret, long and random: 7Qw2Lp9Xz4Rt"
	prev := filepath.Join(t.TempDir(), "previous-link-secrets")
	require.NoError(t, os.WriteFile(prev, []byte(appBuildSecret+"\n"), 0o600))
	common := append(append([]string(nil), env...), "IDM_ADDR="+addr, "IDM_PUBLIC_URL=http://"+addr,
		"IDM_LINK_ISSUER="+appBuildIssuer, "IDM_SECRET="+strongSecret, "IDM_LINK_SECRET="+newSecret)
	rotated := append(append([]string(nil), common...), "IDM_LINK_SECRET_PREVIOUS_FILE="+prev)
	p = start(t, rotated)
	require.NotContains(t, p.logs(), "IDM_LINK_SECRET is weak")
	r := call(t, "GET", p.url+"/status", "", "")
	require.Equal(t, "ok", r.json(t)["data"].(map[string]any)["link_secret"])
	r = appEstablish(t, p.url+"/establish", printed.token, "P-1")
	require.Equal(t, http.StatusNoContent, r.status, "a link printed before the rotation: %s", r.body)
	fresh := prepareEnrolment(t, p.url, "S-ROT-3", false)
	_, err := appProfileLink(fresh.token, newSecret, appBuildIssuer, time.Now())
	require.NoError(t, err, "new links verify with the new build's secret")
	require.NoError(t, p.cmd.Process.Kill())
	<-p.exited

	withoutPrevious := common
	p = start(t, withoutPrevious)
	r = appEstablish(t, p.url+"/establish", second.token, "P-2")
	require.Equal(t, http.StatusForbidden, r.status, "once the previous secret is gone: %s", r.body)
}
