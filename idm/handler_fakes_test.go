package idm_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/internal/testclock"
)

// fakeAuth is a small real staff-token middleware for tests: it maps the
// token of an "Authorization: JWT <token>" (or Bearer) header to a
// principal, with the same answers as package auth's Require.
type fakeAuth map[string]*idm.Principal

func (a fakeAuth) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := strings.TrimSpace(r.Header.Get("Authorization"))
		if hdr == "" {
			idm.WriteError(w, r, nil, idm.E(idm.ErrUnauthorized, "Authorization Required"))
			return
		}
		scheme, token, _ := strings.Cut(hdr, " ")
		p, ok := a[token]
		if !ok || !(strings.EqualFold(scheme, "JWT") || strings.EqualFold(scheme, "Bearer")) {
			idm.WriteError(w, r, nil, idm.E(idm.ErrUnauthorized, "Invalid token"))
			return
		}
		next.ServeHTTP(w, r.WithContext(idm.WithPrincipal(r.Context(), p)))
	})
}

// hmacLinkTokens is a small real [idm.LinkTokens] on HS256, shaped like the
// link tokens of package auth: claims jti, iss, aud, exp, sub, birthdate.
type hmacLinkTokens struct {
	secret           []byte
	issuer, audience string
}

var _ idm.LinkTokens = (*hmacLinkTokens)(nil)

type testLinkClaims struct {
	ID        string           `json:"jti"`
	Issuer    string           `json:"iss"`
	Audience  string           `json:"aud"`
	ExpiresAt *jwt.NumericDate `json:"exp"`
	Subject   string           `json:"sub"`
	Birthdate string           `json:"birthdate"`
}

func (c *testLinkClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt, nil }
func (c *testLinkClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return nil, nil }
func (c *testLinkClaims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (c *testLinkClaims) GetIssuer() (string, error)                   { return c.Issuer, nil }
func (c *testLinkClaims) GetSubject() (string, error)                  { return c.Subject, nil }
func (c *testLinkClaims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings{c.Audience}, nil
}

func (t *hmacLinkTokens) LinkDefaults() idm.LinkClaims {
	return idm.LinkClaims{Issuer: t.issuer, Audience: t.audience, Algorithm: "HS256"}
}

func (t *hmacLinkTokens) IssueLinkToken(_ context.Context, c idm.LinkClaims) (string, idm.LinkClaims, error) {
	if c.Issuer == "" {
		c.Issuer = t.issuer
	}
	if c.Audience == "" {
		c.Audience = t.audience
	}
	if c.Expires.IsZero() {
		return "", idm.LinkClaims{}, errors.New("link token needs an expiry")
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, &testLinkClaims{
		ID: c.ID, Issuer: c.Issuer, Audience: c.Audience, ExpiresAt: jwt.NewNumericDate(c.Expires),
		Subject: c.Subject, Birthdate: c.Birthdate,
	})
	tok.Header["kid"] = "test"
	s, err := tok.SignedString(t.secret)
	if err != nil {
		return "", idm.LinkClaims{}, fmt.Errorf("sign link token: %w", err)
	}
	c.Expires = c.Expires.Truncate(time.Second)
	c.Algorithm = "HS256"
	return s, c, nil
}

func (t *hmacLinkTokens) VerifyLinkToken(_ context.Context, token string) (idm.LinkClaims, error) {
	var c testLinkClaims
	tok, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return t.secret, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithoutClaimsValidation())
	switch {
	case err != nil:
	case c.ID == "":
		err = errors.New("no jti")
	}
	if err != nil {
		return idm.LinkClaims{}, idm.Wrap(idm.ErrForbidden, "Forbidden", err)
	}
	lc := idm.LinkClaims{ID: c.ID, Issuer: c.Issuer, Audience: c.Audience, Subject: c.Subject,
		Birthdate: c.Birthdate, Algorithm: tok.Method.Alg()}
	if c.ExpiresAt != nil {
		lc.Expires = c.ExpiresAt.Time
	}
	return lc, nil
}

// newTestClock returns a clock that moves on by a millisecond on every
// reading, so that records written one after the other have distinct
// times, and that tests can move forward.
func newTestClock() *testclock.Clock {
	return testclock.NewTicking(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC), time.Millisecond)
}
