package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/c3-pro/idm/idm"
)

// Token errors. Every failure of staff-token verification ([Handler.Require]) wraps
// idm.ErrUnauthorized and one of these or a jwt/v5 error.
var (
	errKeyHeader   = errors.New("auth: token header names a key source (jku, jwk, x5u, x5c, x5t) or critical extensions")
	errNoKID       = errors.New("auth: token header has no kid")
	errUnknownKID  = errors.New("auth: token names an unknown kid")
	errAlgMismatch = errors.New("auth: token algorithm does not match its key")
	errTokenType   = errors.New("auth: token header typ is not JWT")
	errNotStaff    = errors.New("auth: not a staff token")
	errNotLink     = errors.New("auth: not a link token")
)

// audience is the aud claim: one string (marshalled as a plain string, as
// the original service and the mobile app have it) or several.
type audience []string

// MarshalJSON writes a single audience as a string, several as an array.
func (a audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// UnmarshalJSON reads a string or an array of strings.
func (a *audience) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	var cs jwt.ClaimStrings
	if err := cs.UnmarshalJSON(b); err != nil {
		return err
	}
	*a = audience(cs)
	return nil
}

func (a audience) contains(s string) bool {
	for _, x := range a {
		if x == s {
			return true
		}
	}
	return false
}

// numericDate is a JWT NumericDate: seconds since the Unix epoch, written
// as an integer, read from any JSON number. It decodes without the detour
// through json.Number that jwt.NumericDate takes, which matters on the hot
// path of every authenticated request.
type numericDate struct{ time.Time }

func newNumericDate(t time.Time) *numericDate {
	return &numericDate{t.Truncate(time.Second).UTC()}
}

// MarshalJSON writes the date as whole seconds.
func (d numericDate) MarshalJSON() ([]byte, error) {
	return strconv.AppendInt(nil, d.Unix(), 10), nil
}

// UnmarshalJSON reads a JSON number of seconds, possibly fractional.
func (d *numericDate) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > maxNumericDate {
		return fmt.Errorf("auth: NumericDate %.32q is not a number of seconds", b)
	}
	sec, frac := math.Modf(f)
	d.Time = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	return nil
}

// maxNumericDate bounds NumericDates (2^62 s, about 146 billion years) so
// that the conversion to int64 seconds is exact in range.
const maxNumericDate = 1 << 62

// jwtDate converts d for jwt's validator.
func (d *numericDate) jwtDate() *jwt.NumericDate {
	if d == nil {
		return nil
	}
	return &jwt.NumericDate{Time: d.Time}
}

// staffClaims are the claims of a staff token.
type staffClaims struct {
	Subject   string       `json:"sub"`
	Identity  string       `json:"identity"`
	Issuer    string       `json:"iss"`
	Audience  audience     `json:"aud"`
	IssuedAt  *numericDate `json:"iat,omitempty"`
	NotBefore *numericDate `json:"nbf,omitempty"`
	ExpiresAt *numericDate `json:"exp,omitempty"`
	ID        string       `json:"jti"`
	Version   *int64       `json:"ver,omitempty"`
	// Birthdate is never set in a staff token; a token that has it is a
	// link token.
	Birthdate *string `json:"birthdate,omitempty"`
}

// GetExpirationTime implements jwt.Claims.
func (c *staffClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	return c.ExpiresAt.jwtDate(), nil
}

// GetIssuedAt implements jwt.Claims.
func (c *staffClaims) GetIssuedAt() (*jwt.NumericDate, error) { return c.IssuedAt.jwtDate(), nil }

// GetNotBefore implements jwt.Claims.
func (c *staffClaims) GetNotBefore() (*jwt.NumericDate, error) { return c.NotBefore.jwtDate(), nil }

// GetIssuer implements jwt.Claims.
func (c *staffClaims) GetIssuer() (string, error) { return c.Issuer, nil }

// GetSubject implements jwt.Claims.
func (c *staffClaims) GetSubject() (string, error) { return c.Subject, nil }

// GetAudience implements jwt.Claims.
func (c *staffClaims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings(c.Audience), nil
}

// Validate checks what makes a token a staff token, beyond the registered
// claims that jwt/v5 validates: a user ID as sub and identity, a token
// version, an ID and an issue time, and no link-token claims.
func (c *staffClaims) Validate() error {
	if c.Version == nil || c.Birthdate != nil || c.IssuedAt == nil || c.ID == "" ||
		c.Subject != c.Identity || !idm.ValidID(c.Subject) {
		return errNotStaff
	}
	return nil
}

// linkClaims are the claims of an enrolment-link token, in the shape the
// mobile app reads: no iat, no nbf.
type linkClaims struct {
	ID        string       `json:"jti"`
	Issuer    string       `json:"iss"`
	Audience  audience     `json:"aud"`
	ExpiresAt *numericDate `json:"exp,omitempty"`
	Subject   string       `json:"sub"`
	Birthdate string       `json:"birthdate"`
	// Version and Identity are never set in a link token; a token that has
	// either is a staff token.
	Version  *int64  `json:"ver,omitempty"`
	Identity *string `json:"identity,omitempty"`
}

// GetExpirationTime implements jwt.Claims.
func (c *linkClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt.jwtDate(), nil }

// GetIssuedAt implements jwt.Claims: link tokens have no iat.
func (c *linkClaims) GetIssuedAt() (*jwt.NumericDate, error) { return nil, nil }

// GetNotBefore implements jwt.Claims: link tokens have no nbf.
func (c *linkClaims) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }

// GetIssuer implements jwt.Claims.
func (c *linkClaims) GetIssuer() (string, error) { return c.Issuer, nil }

// GetSubject implements jwt.Claims.
func (c *linkClaims) GetSubject() (string, error) { return c.Subject, nil }

// GetAudience implements jwt.Claims.
func (c *linkClaims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings(c.Audience), nil
}

// StaffClaims are the verified claims of a staff token.
type StaffClaims struct {
	UserID    string    // sub (and identity)
	Version   int64     // ver: the user's token version when the token was issued
	ID        string    // jti
	IssuedAt  time.Time // iat (= nbf)
	Expires   time.Time // exp
	KeyID     string    // kid of the key that signed it
	Algorithm string    // alg
}

// tokens issues and verifies staff and link tokens. Staff tokens are
// signed and verified with keys, link tokens with linkKeys (HS256 only):
// the two sets never stand in for each other.
type tokens struct {
	keys             *KeySet
	linkKeys         *KeySet
	issuer           string
	audience         string
	linkIssuer       string
	linkAudience     string
	ttl              time.Duration
	acceptMissingKID bool
	leeway           time.Duration
	now              func() time.Time
	staffParser      *jwt.Parser
	linkParser       *jwt.Parser
	verified         *verifiedCache // staff tokens that passed verifyStaff
}

// tokenConfig is what newTokens needs of a validated [Config].
type tokenConfig struct {
	keys, linkKeys                             *KeySet
	issuer, audience, linkIssuer, linkAudience string
	ttl, leeway                                time.Duration
	acceptMissingKID                           bool
	now                                        func() time.Time
}

func newTokens(c tokenConfig) *tokens {
	t := &tokens{
		keys: c.keys, linkKeys: c.linkKeys, issuer: c.issuer, audience: c.audience,
		linkIssuer: c.linkIssuer, linkAudience: c.linkAudience, ttl: c.ttl,
		acceptMissingKID: c.acceptMissingKID, leeway: c.leeway, now: c.now,
		verified: newVerifiedCache(verifiedCacheSize),
	}
	t.staffParser = jwt.NewParser(
		jwt.WithValidMethods(c.keys.Algorithms()),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(c.issuer),
		jwt.WithAudience(c.audience),
		jwt.WithLeeway(c.leeway),
		jwt.WithTimeFunc(c.now),
		jwt.WithStrictDecoding(),
	)
	// Link tokens: signature, algorithm (HS256, as the mobile app verifies
	// them) and shape only; the caller compares issuer and audience with
	// the link's record and checks expiry against it.
	t.linkParser = jwt.NewParser(
		jwt.WithValidMethods([]string{HS256}),
		jwt.WithoutClaimsValidation(),
		jwt.WithStrictDecoding(),
	)
	return t
}

// staffKey is the jwt.Keyfunc of staff tokens: keys of the staff key set.
func (t *tokens) staffKey(tok *jwt.Token) (any, error) {
	return keyFor(tok, t.keys, t.acceptMissingKID)
}

// linkKey is the jwt.Keyfunc of link tokens: keys of the link key set.
// A link token without a kid is tried with every link key.
func (t *tokens) linkKey(tok *jwt.Token) (any, error) {
	return keyFor(tok, t.linkKeys, true)
}

// keyFor finds the key of keys that a token names by kid, refuses headers
// that point at other keys, and pins the algorithm to the key's own. A
// token without kid is refused unless acceptMissingKID; then it is checked
// with every key of its algorithm.
func keyFor(tok *jwt.Token, keys *KeySet, acceptMissingKID bool) (any, error) {
	for h := range tok.Header {
		switch h {
		case "jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256", "crit":
			// These would let a token choose its own verification key, or
			// demand extensions that this service does not implement.
			return nil, errKeyHeader
		}
	}
	if typ, ok := tok.Header["typ"]; ok {
		if s, isString := typ.(string); !isString || !strings.EqualFold(s, "JWT") {
			return nil, errTokenType
		}
	}
	kid, ok := tok.Header["kid"]
	if !ok {
		if !acceptMissingKID {
			return nil, errNoKID
		}
		var set jwt.VerificationKeySet
		for _, k := range keys.keys {
			if tok.Method != nil && tok.Method.Alg() == k.alg {
				set.Keys = append(set.Keys, k.verificationKey())
			}
		}
		if len(set.Keys) == 0 {
			return nil, errAlgMismatch
		}
		return set, nil
	}
	s, isString := kid.(string)
	if !isString {
		return nil, errUnknownKID
	}
	key, ok := keys.Lookup(s)
	if !ok {
		return nil, errUnknownKID
	}
	if tok.Method == nil || tok.Method.Alg() != key.alg {
		return nil, errAlgMismatch
	}
	return key.verificationKey(), nil
}

// sign signs claims with the signing key of keys.
func sign(keys *KeySet, claims jwt.Claims) (string, *Key, error) {
	key := keys.Signing()
	tok := jwt.NewWithClaims(key.signingMethod(), claims)
	tok.Header["kid"] = key.kid
	s, err := tok.SignedString(key.signingKey())
	if err != nil {
		return "", nil, fmt.Errorf("auth: signing a token: %w", err)
	}
	return s, key, nil
}

// issueStaff signs a staff token for u.
func (t *tokens) issueStaff(u idm.User) (string, StaffClaims, error) {
	return t.issueStaffTTL(u, t.ttl)
}

// issueStaffTTL signs a staff token for u that is valid for ttl.
func (t *tokens) issueStaffTTL(u idm.User, ttl time.Duration) (string, StaffClaims, error) {
	if !idm.ValidID(u.ID) {
		return "", StaffClaims{}, fmt.Errorf("auth: user ID %q is not valid", u.ID)
	}
	now := t.now()
	iat := newNumericDate(now)
	exp := newNumericDate(now.Add(ttl))
	ver := u.TokenVersion
	c := &staffClaims{
		Subject: u.ID, Identity: u.ID, Issuer: t.issuer, Audience: audience{t.audience},
		IssuedAt: iat, NotBefore: iat, ExpiresAt: exp, ID: idm.NewID(), Version: &ver,
	}
	s, key, err := sign(t.keys, c)
	if err != nil {
		return "", StaffClaims{}, err
	}
	return s, StaffClaims{UserID: u.ID, Version: ver, ID: c.ID, IssuedAt: iat.Time, Expires: exp.Time, KeyID: key.kid, Algorithm: key.alg}, nil
}

// verifyStaff verifies a staff token. Every failure wraps
// idm.ErrUnauthorized with the message "Invalid token". A token that passed
// before is not parsed again: only its time claims are checked against the
// clock (see verifiedCache); one that no longer passes them is parsed again,
// so that the failure is the parser's own.
func (t *tokens) verifyStaff(token string) (StaffClaims, error) {
	if v, ok := t.verified.get(token); ok {
		if v.validAt(t.now(), t.leeway) {
			return v.claims, nil
		}
		t.verified.forget(token)
	}
	var c staffClaims
	tok, err := t.staffParser.ParseWithClaims(token, &c, t.staffKey)
	if err != nil {
		return StaffClaims{}, idm.Wrap(idm.ErrUnauthorized, "Invalid token", err)
	}
	kid, _ := tok.Header["kid"].(string)
	if kid == "" {
		kid = t.keys.Signing().kid
	}
	v := &verifiedToken{claims: StaffClaims{
		UserID: c.Subject, Version: *c.Version, ID: c.ID, IssuedAt: c.IssuedAt.Time,
		Expires: c.ExpiresAt.Time, KeyID: kid, Algorithm: tok.Method.Alg(),
	}}
	if c.NotBefore != nil {
		v.nbf = c.NotBefore.Time
	}
	t.verified.put(token, v)
	return v.claims, nil
}

// LinkDefaults implements [idm.LinkTokens]: the issuer, audience and
// algorithm of new link tokens.
func (t *tokens) LinkDefaults() idm.LinkClaims {
	return idm.LinkClaims{Issuer: t.linkIssuer, Audience: t.linkAudience, Algorithm: t.linkKeys.Signing().alg}
}

// IssueLinkToken implements [idm.LinkTokens]: an HS256 token signed with the
// link key, with the header kid of that key.
func (t *tokens) IssueLinkToken(_ context.Context, c idm.LinkClaims) (string, idm.LinkClaims, error) {
	if c.Issuer == "" {
		c.Issuer = t.linkIssuer
	}
	if c.Audience == "" {
		c.Audience = t.linkAudience
	}
	switch {
	case !idm.ValidID(c.ID):
		return "", idm.LinkClaims{}, fmt.Errorf("auth: link ID %q is not valid", c.ID)
	case c.Audience == t.audience:
		return "", idm.LinkClaims{}, errors.New("auth: a link token cannot have the staff-token audience")
	case c.Expires.IsZero():
		return "", idm.LinkClaims{}, errors.New("auth: a link token needs an expiry")
	}
	lc := &linkClaims{
		ID: c.ID, Issuer: c.Issuer, Audience: audience{c.Audience}, ExpiresAt: newNumericDate(c.Expires),
		Subject: c.Subject, Birthdate: c.Birthdate,
	}
	s, key, err := sign(t.linkKeys, lc)
	if err != nil {
		return "", idm.LinkClaims{}, err
	}
	c.Expires = lc.ExpiresAt.Time
	c.Algorithm = key.alg
	return s, c, nil
}

// VerifyLinkToken implements [idm.LinkTokens]: it checks the signature with
// the link keys (HS256 only; a token signed with a staff key fails), the
// kid, and the shape of a link token (a jti, one audience that is not the
// staff audience, no staff claims), but neither its issuer and audience,
// which the caller compares with the link's record, nor its expiry. Every
// failure wraps idm.ErrForbidden with the message "Forbidden".
func (t *tokens) VerifyLinkToken(_ context.Context, token string) (idm.LinkClaims, error) {
	var c linkClaims
	tok, err := t.linkParser.ParseWithClaims(token, &c, t.linkKey)
	if err == nil {
		switch {
		case len(c.Audience) != 1 || c.Audience.contains(t.audience):
			err = jwt.ErrTokenInvalidAudience
		case c.ID == "" || c.Version != nil || c.Identity != nil:
			err = errNotLink
		}
	}
	if err != nil {
		return idm.LinkClaims{}, idm.Wrap(idm.ErrForbidden, "Forbidden", err)
	}
	lc := idm.LinkClaims{
		ID: c.ID, Issuer: c.Issuer, Audience: c.Audience[0], Subject: c.Subject,
		Birthdate: c.Birthdate, Algorithm: tok.Method.Alg(),
	}
	if c.ExpiresAt != nil {
		lc.Expires = c.ExpiresAt.Time
	}
	return lc, nil
}
