package idm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Messages of POST /establish, as the mobile app knows them.
const (
	msgEstablishUnauthorized = "Unauthorized"
	msgEstablishScheme       = "only `Bearer` and `JWT` type authorization is acceptable"
	msgEstablishForbidden    = "Forbidden"
	msgEstablishExpired      = "this link has expired"
	msgEstablishPatient      = "you must provide a FHIR `Patient` resource"
	msgEstablishIdentifier   = "you must provide a value in the Patient resource's first `identifier` element"
)

// establish serves POST /establish: the mobile app presents a link JWT
// (Authorization: Bearer or JWT) and a FHIR Patient, and the link gets
// bound to the patient's first identifier. The checks run in the order of
// API.md: header, scheme, token and link (403), already linked (409),
// expiry (403), body (406).
func (h *Handler) establish(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	authz := strings.TrimSpace(r.Header.Get("Authorization"))
	if authz == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="idm"`)
		return E(ErrUnauthorized, msgEstablishUnauthorized)
	}
	scheme, token, _ := strings.Cut(authz, " ")
	if !strings.EqualFold(scheme, "Bearer") && !strings.EqualFold(scheme, "JWT") {
		return E(ErrNotAcceptable, msgEstablishScheme)
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return E(ErrForbidden, msgEstablishForbidden)
	}
	l, claims, err := h.linkForToken(ctx, token)
	if err != nil {
		return err
	}
	if !l.Revoked.IsZero() || l.JWTHash == "" {
		// Revoked, or no token was ever stored for it.
		return E(ErrForbidden, msgEstablishForbidden)
	}
	if established(l) {
		return E(ErrConflict, msgEstablished)
	}
	now := h.clock()
	// The link's exp is the one that counts; a token from an earlier mint
	// also ends at its own exp.
	exp := l.Exp
	if claims != nil && !claims.Expires.IsZero() && claims.Expires.Unix() < exp {
		exp = claims.Expires.Unix()
	}
	if now.Unix() >= exp {
		return E(ErrForbidden, msgEstablishExpired)
	}
	value, system, err := h.decodePatient(w, r)
	if err != nil {
		return err
	}
	var nv orderedJSON
	nv.addString("linked_to", value)
	if system != "" {
		nv.addString("linked_system", system)
	}
	nv.addString("linked_on", FormatTime(now))
	e := newAudit(nil, DocLink, l.ID, "link to "+value, now, nil, nv.bytes())
	// EstablishLink is atomic and raises the link's revision, so a revoke
	// or PUT /link that read the link before cannot undo this establish:
	// its write fails with ErrStale and it re-checks the fresh link.
	err = h.record(ctx, e, func() error {
		_, err := h.store.EstablishLink(ctx, l.ID, value, system, now)
		return err
	})
	switch {
	case errors.Is(err, ErrConflict):
		return Wrap(ErrConflict, msgEstablished, err)
	case errors.Is(err, ErrNotFound):
		return Wrap(ErrForbidden, msgEstablishForbidden, err)
	case err != nil:
		return fmt.Errorf("establish link: %w", err)
	}
	h.syncSubjectDates(ctx, nil, l.SSSID, now)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// linkForToken finds the link a presented token names. A token that
// verifies names its link by jti, and must be the token minted for that
// link (its issuer and audience the link's, its SHA-256 the stored one): the
// link secret ships in every app build, so a signature alone proves little.
// Any other token may still be the stored token of a link migrated from the
// original service, which kept only its SHA-256 (also when the original's
// secret is now the link secret); claims is nil on that path. Every failure
// is a 403, except that a store or key source that cannot answer is a 5xx.
func (h *Handler) linkForToken(ctx context.Context, token string) (Link, *LinkClaims, error) {
	forbidden := func(err error) error { return Wrap(ErrForbidden, msgEstablishForbidden, err) }
	claims, verr := h.tokens.VerifyLinkToken(ctx, token)
	switch {
	case verr == nil:
		l, err := h.linkOfClaims(ctx, claims, token)
		if err == nil {
			return l, &claims, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return Link{}, nil, err
		}
		verr = err
	case !errors.Is(verr, ErrForbidden) && (errors.Is(verr, ErrUnavailable) || ctx.Err() != nil):
		return Link{}, nil, fmt.Errorf("verify link token: %w", verr)
	}
	l, err := h.store.FindLinkByJWTHash(ctx, tokenHash(token))
	switch {
	case errors.Is(err, ErrNotFound):
		return Link{}, nil, forbidden(verr)
	case err != nil:
		return Link{}, nil, fmt.Errorf("find link by token hash: %w", err)
	case l.JWT != "":
		// Not a migrated link: its token would have verified above.
		return Link{}, nil, forbidden(verr)
	}
	return l, nil, nil
}

// linkOfClaims returns the link a verified token names, if the token is the
// one minted for it; else an error that wraps ErrNotFound (or a 5xx).
func (h *Handler) linkOfClaims(ctx context.Context, c LinkClaims, token string) (Link, error) {
	if !ValidID(c.ID) {
		return Link{}, fmt.Errorf("link token names no link (jti %q): %w", clip(c.ID), ErrNotFound)
	}
	l, err := h.store.FindLink(ctx, c.ID)
	switch {
	case errors.Is(err, ErrNotFound):
		return Link{}, err
	case err != nil:
		return Link{}, fmt.Errorf("find link: %w", err)
	case l.Issuer != "" && c.Issuer != l.Issuer, l.Audience != "" && c.Audience != l.Audience:
		return Link{}, fmt.Errorf("link token's iss or aud differs from its link's: %w", ErrNotFound)
	case l.JWTHash != "" && tokenHash(token) != l.JWTHash:
		return Link{}, fmt.Errorf("link token is not the link's current token: %w", ErrNotFound)
	}
	return l, nil
}

// decodePatient reads a FHIR Patient resource and returns the value and
// system of its first identifier. Anything that is not a Patient is a 406,
// except a body over the size limit (413) and one whose Content-Type is
// not JSON (415): FHIR clients send application/fhir+json, older ones
// application/json+fhir, others application/json.
func (h *Handler) decodePatient(w http.ResponseWriter, r *http.Request) (value, system string, err error) {
	if err := RequireMediaType(r, "application/fhir+json", "application/json+fhir", "application/json"); err != nil {
		return "", "", err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return "", "", E(ErrTooLarge, fmt.Sprintf("request body too large (limit %d bytes)", mb.Limit))
		}
		return "", "", Wrap(ErrInvalid, "could not read the request body", err)
	}
	var raw json.RawMessage
	if err := UnmarshalJSON(body, &raw); err != nil {
		return "", "", Wrap(ErrNotAcceptable, msgEstablishPatient, err)
	}
	return parsePatient(raw)
}

// parsePatient extracts the first identifier of a FHIR Patient resource.
func parsePatient(raw json.RawMessage) (value, system string, err error) {
	notPatient := func(err error) error { return Wrap(ErrNotAcceptable, msgEstablishPatient, err) }
	var res map[string]json.RawMessage
	if err := json.Unmarshal(raw, &res); err != nil || res == nil {
		return "", "", notPatient(err)
	}
	var rt string
	if err := json.Unmarshal(res["resourceType"], &rt); err != nil || rt != "Patient" {
		return "", "", notPatient(err)
	}
	noIdentifier := func(err error) error { return Wrap(ErrNotAcceptable, msgEstablishIdentifier, err) }
	var idents []json.RawMessage
	if err := json.Unmarshal(res["identifier"], &idents); err != nil || len(idents) == 0 {
		return "", "", noIdentifier(err)
	}
	var first struct {
		System *string `json:"system"`
		Value  *string `json:"value"`
	}
	if err := json.Unmarshal(idents[0], &first); err != nil || first.Value == nil || *first.Value == "" {
		return "", "", noIdentifier(err)
	}
	if first.System != nil {
		system = *first.System
	}
	if len(*first.Value) > MaxStringLen || len(system) > MaxStringLen {
		return "", "", E(ErrInvalid, fmt.Sprintf("the identifier's value and system may be at most %d bytes long", MaxStringLen))
	}
	return *first.Value, system, nil
}
