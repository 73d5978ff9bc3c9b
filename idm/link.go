package idm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Messages of link answers.
const (
	msgEstablished = "this link has already been established"
	msgRevoked     = "this link has been revoked"
)

// linkDoc is the API's JSON form of a [Link]; keys appear only when set, and
// the JWT and its hash never.
type linkDoc struct {
	ID           string `json:"_id"`
	Sub          string `json:"sub,omitempty"`
	Iss          string `json:"iss,omitempty"`
	Aud          string `json:"aud,omitempty"`
	Algorithm    string `json:"algorithm,omitempty"`
	Created      string `json:"created,omitempty"`
	Changed      string `json:"changed,omitempty"`
	Exp          int64  `json:"exp,omitempty"`
	LinkedTo     string `json:"linked_to,omitempty"`
	LinkedSystem string `json:"linked_system,omitempty"`
	LinkedOn     string `json:"linked_on,omitempty"`
	WithdrawnOn  string `json:"withdrawn_on,omitempty"`
}

func newLinkDoc(l Link) linkDoc {
	utc := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return FormatTime(t)
	}
	return linkDoc{
		ID: l.ID, Sub: l.SSSID, Iss: l.Issuer, Aud: l.Audience, Algorithm: l.Algorithm,
		Created: utc(l.Created), Changed: utc(l.Changed), Exp: l.Exp,
		LinkedTo: l.LinkedTo, LinkedSystem: l.LinkedSystem, LinkedOn: utc(l.LinkedOn), WithdrawnOn: l.WithdrawnOn,
	}
}

func linkDocs(links []Link) []linkDoc {
	docs := make([]linkDoc, len(links))
	for i, l := range links {
		docs[i] = newLinkDoc(l)
	}
	return docs
}

// established reports whether the link has been bound to a patient.
func established(l Link) bool { return l.LinkedTo != "" || !l.LinkedOn.IsZero() }

// tokenHash returns the lowercase hex SHA-256 of a link JWT, as stored in
// [Link.JWTHash].
func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// findLink returns the link with the given ID, or a 404.
func (h *Handler) findLink(ctx context.Context, jti string) (Link, error) {
	if !ValidID(jti) {
		return Link{}, E(ErrNotFound, "Not Found")
	}
	l, err := h.store.FindLink(ctx, jti)
	if err != nil {
		return Link{}, notFound(fmt.Errorf("find link: %w", err))
	}
	return l, nil
}

// createLink serves POST /subject/{sssid}/links.
func (h *Handler) createLink(w http.ResponseWriter, r *http.Request, p *Principal) error {
	ctx := r.Context()
	_, s, _, err := h.visibleSubject(ctx, p, r.PathValue("sssid"))
	if err != nil {
		return fmt.Errorf("find subject: %w", err)
	}
	if s.DateConsented == "" {
		return E(ErrPrecondition, "Subject has not yet been consented")
	}
	if err := h.checkLinkLimit(ctx, s.SSSID); err != nil {
		return err
	}
	now := h.clock()
	// The link's issuer, audience and algorithm are fixed at creation, as
	// the original service had them: its token is always minted with them.
	d := h.tokens.LinkDefaults()
	l := Link{ID: NewID(), SSSID: s.SSSID, Issuer: d.Issuer, Audience: d.Audience, Algorithm: d.Algorithm, Created: now, Changed: now}
	e := newAudit(p, DocLink, l.ID, "create", now, nil, mustJSON(newLinkDoc(l)))
	if err := h.record(ctx, e, func() error { return h.store.CreateLink(ctx, l) }); err != nil {
		return fmt.Errorf("create link: %w", err)
	}
	WriteData(w, http.StatusCreated, newLinkDoc(l))
	return nil
}

// activeLink reports whether a link can still be established at now: not
// revoked, not established and not past its exp (a link whose JWT was not
// minted yet has none).
func activeLink(l Link, now time.Time) bool {
	return l.Revoked.IsZero() && !established(l) && (l.Exp == 0 || now.Unix() < l.Exp)
}

// checkLinkLimit refuses a new link for the subject with a 409 while it has
// [Config.MaxActiveLinks] active links (see activeLink), so that staff
// actions cannot make a subject's links grow without bound. Two creations
// at the same moment may both pass it: the limit bounds growth, it is not
// an exact count.
func (h *Handler) checkLinkLimit(ctx context.Context, sssid string) error {
	links, err := h.store.LinksForSubjects(ctx, sssid)
	if err != nil {
		return fmt.Errorf("links of subject: %w", err)
	}
	now := h.clock()
	n := 0
	for _, l := range links {
		if activeLink(l, now) {
			n++
		}
	}
	if n >= h.maxLinks {
		return E(ErrConflict, fmt.Sprintf("this subject has %d active links, the most allowed; revoke one or let one expire first", n))
	}
	return nil
}

// listLinks serves GET /subject/{sssid}/links: the subject's links that
// are not revoked, oldest first. With a paging parameter (offset, perpage)
// the answer is that page and the total count; without one, every link,
// as the frontend expects.
func (h *Handler) listLinks(w http.ResponseWriter, r *http.Request, p *Principal) error {
	ctx := r.Context()
	paged, offset, perpage, err := optionalPaging(r)
	if err != nil {
		return err
	}
	_, _, links, err := h.visibleSubject(ctx, p, r.PathValue("sssid"))
	if err != nil {
		return fmt.Errorf("find subject: %w", err)
	}
	// Revoked links are left out: the link JSON has no key that would tell
	// them from usable ones, and the frontend reuses the first link whose
	// exp is still ahead instead of creating a new one.
	links = slices.DeleteFunc(links, func(l Link) bool { return !l.Revoked.IsZero() })
	if paged {
		WriteJSON(w, http.StatusOK, pageBody[linkDoc]{Data: linkDocs(page(links, offset, perpage)), Total: len(links)})
		return nil
	}
	WriteData(w, http.StatusOK, linkDocs(links))
	return nil
}

// getLink serves GET /link/{jti}.
func (h *Handler) getLink(w http.ResponseWriter, r *http.Request, p *Principal) error {
	l, err := h.visibleLink(r.Context(), p, r.PathValue("jti"))
	if err != nil {
		return err
	}
	WriteData(w, http.StatusOK, newLinkDoc(l))
	return nil
}

// linkUpdate is what a PUT /link body asks for.
type linkUpdate struct {
	linkedTo, system, withdrawn          *string
	linkedToKey, systemKey, withdrawnKey int // positions in the body, for the audit text
}

// updateLink serves PUT /link/{jti}. The link's identity (`_id`, `sub`,
// `iss`, `aud`, `algorithm`, `exp`) is the server's: a body may repeat it
// but not change it (409). `linked_to` may be set once, with
// `linked_system`; `withdrawn_on` may be set, changed or cleared.
// `created`, `changed` and `linked_on` are ignored. The change is one write
// from the link as read, so a concurrent establish or revoke is never
// undone: the body is checked again against the fresh link (see
// [Handler.commit]).
func (h *Handler) updateLink(w http.ResponseWriter, r *http.Request, p *Principal) error {
	ctx := r.Context()
	members, err := h.decodeObject(w, r)
	if err != nil {
		return err
	}
	jti := r.PathValue("jti")
	var (
		sssid string
		wrote bool // whether the last plan, which commit carried out, writes
	)
	err = h.commit(ctx, p, DocLink, h.clock(), func(now time.Time) (change, error) {
		l, err := h.visibleLink(ctx, p, jti)
		if err != nil {
			return change{}, err
		}
		c, err := h.planLinkUpdate(ctx, members, l, now)
		sssid, wrote = l.SSSID, c.write != nil
		return c, err
	})
	if err != nil {
		return notFound(fmt.Errorf("update link: %w", err))
	}
	if wrote {
		h.syncSubjectDates(ctx, p, sssid, h.clock())
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// planLinkUpdate plans the change of a PUT /link body to the link l as it
// is stored. A body that changes nothing plans the audit action "update"
// and no write.
func (h *Handler) planLinkUpdate(ctx context.Context, members []objectField, l Link, now time.Time) (change, error) {
	fixed := map[string]string{"_id": l.ID, "sub": l.SSSID, "iss": l.Issuer, "aud": l.Audience, "algorithm": l.Algorithm}
	var (
		u         linkUpdate
		conflicts []string
	)
	for i, m := range members {
		switch m.key {
		case "created", "changed", "linked_on":
		case "_id", "sub", "iss", "aud", "algorithm":
			s, err := m.str(MaxStringLen)
			if err != nil {
				return change{}, err
			}
			if s != fixed[m.key] {
				conflicts = append(conflicts, m.key)
			}
		case "exp":
			var exp int64
			if !m.isNull() {
				if err := json.Unmarshal(m.raw, &exp); err != nil {
					return change{}, Wrap(ErrInvalid, `field "exp" must be an integer (Unix time)`, err)
				}
			}
			if exp != l.Exp {
				conflicts = append(conflicts, m.key)
			}
		case "linked_to", "linked_system", "withdrawn_on":
			s, err := m.str(MaxStringLen)
			if err != nil {
				return change{}, err
			}
			switch m.key {
			case "linked_to":
				u.linkedTo, u.linkedToKey = &s, i
			case "linked_system":
				u.system, u.systemKey = &s, i
			default:
				if s != "" {
					if err := checkDate(m.key, s); err != nil {
						return change{}, err
					}
				}
				u.withdrawn, u.withdrawnKey = &s, i
			}
		default:
			return change{}, E(ErrInvalid, fmt.Sprintf("unknown field %q", clip(m.key)))
		}
	}
	linking := u.linkedTo != nil && *u.linkedTo != "" && l.LinkedTo == ""
	if u.system != nil && *u.system != "" && !linking && l.LinkedTo == "" {
		return change{}, E(ErrInvalid, "`linked_system` needs `linked_to`")
	}
	if len(conflicts) > 0 {
		return change{}, E(ErrConflict, fmt.Sprintf("`%s` cannot be changed", conflicts[0]))
	}
	if u.linkedTo != nil && l.LinkedTo != "" && *u.linkedTo != l.LinkedTo {
		return change{}, E(ErrConflict, "`linked_to` cannot be changed once set")
	}
	if u.system != nil && l.LinkedTo != "" && *u.system != l.LinkedSystem {
		return change{}, E(ErrConflict, "`linked_system` cannot be changed once the link is established")
	}
	if linking && !l.Revoked.IsZero() {
		return change{}, E(ErrConflict, msgRevoked)
	}
	if linking && established(l) {
		return change{}, E(ErrConflict, msgEstablished)
	}
	system := ""
	if linking && u.system != nil {
		system = *u.system
	}
	changeWithdrawn := u.withdrawn != nil && *u.withdrawn != l.WithdrawnOn

	// The audit text lists the changes in the order of the body.
	type part struct {
		pos  int
		text string
	}
	var (
		parts    []part
		old, new orderedJSON
	)
	next := l
	if linking {
		parts = append(parts, part{u.linkedToKey, "link to " + *u.linkedTo})
		old.add("linked_to", nil)
		new.addString("linked_to", *u.linkedTo)
		if system != "" {
			parts = append(parts, part{u.systemKey, "linked_system: " + jsonText(system)})
			new.addString("linked_system", system)
		}
		next.LinkedTo, next.LinkedSystem, next.LinkedOn = *u.linkedTo, system, now
	}
	if changeWithdrawn {
		parts = append(parts, part{u.withdrawnKey, "withdrawn_on: " + jsonText(*u.withdrawn)})
		old.addString("withdrawn_on", l.WithdrawnOn)
		new.addString("withdrawn_on", *u.withdrawn)
		next.WithdrawnOn = *u.withdrawn
	}
	if len(parts) == 0 {
		return change{doc: l.ID, action: "update"}, nil
	}
	texts := make([]string, 0, len(parts))
	for len(parts) > 0 { // at most three parts: a selection sort is plenty
		min := 0
		for i := range parts {
			if parts[i].pos < parts[min].pos {
				min = i
			}
		}
		texts = append(texts, parts[min].text)
		parts = append(parts[:min], parts[min+1:]...)
	}
	next.Changed = now
	// One write from the Rev that was read: it fails with ErrStale if the
	// link was established, revoked or changed meanwhile, and is then
	// planned again on the fresh link.
	return change{
		doc: l.ID, action: joinActions(texts), old: old.bytes(), new: new.bytes(),
		write: func() error { return h.store.UpdateLink(ctx, next) },
	}, nil
}

// revokeLink serves DELETE /link/{jti}: a link that is not established yet
// stops working (its JWT no longer establishes, no new JWT is minted).
// Revoking a revoked link again changes nothing. A link that gets
// established while it is being revoked stays established: the revoke is
// written only from the link as read, and then answers 409.
func (h *Handler) revokeLink(w http.ResponseWriter, r *http.Request, p *Principal) error {
	ctx := r.Context()
	jti := r.PathValue("jti")
	err := h.commit(ctx, p, DocLink, h.clock(), func(now time.Time) (change, error) {
		l, err := h.visibleLink(ctx, p, jti)
		switch {
		case err != nil:
			return change{}, err
		case established(l):
			return change{}, E(ErrConflict, msgEstablished)
		case !l.Revoked.IsZero():
			return change{}, nil
		}
		var nv orderedJSON
		nv.addString("revoked", FormatTime(now))
		next := l
		next.Revoked, next.Changed = now, now
		return change{
			doc: l.ID, action: "revoke", new: nv.bytes(),
			write: func() error { return h.store.UpdateLink(ctx, next) },
		}, nil
	})
	if err != nil {
		return notFound(fmt.Errorf("revoke link: %w", err))
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// linkJWT serves GET /link/{jti}/jwt: the link's JWT as application/jwt
// (see mintLinkJWT).
func (h *Handler) linkJWT(w http.ResponseWriter, r *http.Request, p *Principal) error {
	token, err := h.mintLinkJWT(r.Context(), p, r.PathValue("jti"))
	if err != nil {
		return err
	}
	writeJWT(w, token)
	return nil
}

// linkQR serves GET /link/{jti}/qr.png: the link's JWT, exactly as
// GET /link/{jti}/jwt serves it (and minted the same way, with the same
// audit record), drawn as a QR code by [Config.QRCode].
func (h *Handler) linkQR(w http.ResponseWriter, r *http.Request, p *Principal) error {
	token, err := h.mintLinkJWT(r.Context(), p, r.PathValue("jti"))
	if err != nil {
		return err
	}
	img, err := h.qrCode(token)
	if err != nil {
		// The token is ours and fits easily: a failure is the server's.
		return fmt.Errorf("draw the QR code of link %s: %w", clip(r.PathValue("jti")), err)
	}
	hd := w.Header()
	hd.Set("Content-Type", "image/png")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Length", strconv.Itoa(len(img)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(img)
	return nil
}

// mintLinkJWT returns the JWT of the link jti that p may see. The first call
// mints it (exp = now + LinkTTL); later calls return the same token while it
// is valid. An expired token is replaced by a new one unless the link is
// established or revoked. Of concurrent first calls one stores its token
// and the others, finding it on their retry, answer with it (their own
// audit records get compensating ones).
func (h *Handler) mintLinkJWT(ctx context.Context, p *Principal, jti string) (string, error) {
	var serve string
	err := h.commit(ctx, p, DocLink, h.clock(), func(now time.Time) (change, error) {
		l, err := h.visibleLink(ctx, p, jti)
		if err != nil {
			return change{}, err
		}
		if !l.Revoked.IsZero() {
			return change{}, E(ErrConflict, msgRevoked)
		}
		if valid(l, now) {
			serve = l.JWT
			return change{}, nil
		}
		switch {
		case established(l):
			return change{}, E(ErrConflict, msgEstablished)
		case l.JWT == "" && l.JWTHash != "" && now.Unix() < l.Exp:
			// Migrated from the original: only the token's hash was kept, and
			// minting a new one would stop the printed one from working.
			return change{}, E(ErrConflict, "this link's token was issued before the migration and cannot be shown again; create a new link")
		}
		if alg := h.tokens.LinkDefaults().Algorithm; l.Algorithm != "" && l.Algorithm != alg {
			// Created for a signing key of another algorithm, which link
			// tokens no longer use; its algorithm never changes.
			return change{}, E(ErrConflict, fmt.Sprintf("this link was created for %s tokens, and link tokens are now signed %s; create a new link", clip(l.Algorithm), alg))
		}
		s, err := h.store.FindSubject(ctx, l.SSSID)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				return change{}, Wrap(ErrNotFound, "the subject of this link does not exist", err)
			}
			return change{}, fmt.Errorf("find subject of link: %w", err)
		}
		// A link keeps the issuer and audience it was created with; one
		// created before links carried them gets the current ones.
		token, claims, err := h.tokens.IssueLinkToken(ctx, LinkClaims{
			ID: l.ID, Issuer: l.Issuer, Audience: l.Audience, Subject: s.Name, Birthdate: s.Bday, Expires: now.Add(h.linkTTL),
		})
		if err != nil {
			return change{}, fmt.Errorf("issue link token: %w", err)
		}
		serve = token
		var nv orderedJSON
		nv.addString("iss", claims.Issuer)
		nv.addString("aud", claims.Audience)
		nv.addString("algorithm", claims.Algorithm)
		nv.add("exp", mustJSON(claims.Expires.Unix()))
		next := l
		next.JWT, next.JWTHash, next.Exp = token, tokenHash(token), claims.Expires.Unix()
		next.Issuer, next.Audience, next.Algorithm = claims.Issuer, claims.Audience, claims.Algorithm
		next.Changed = now
		return change{
			doc: l.ID, action: "create JWT", new: nv.bytes(),
			write: func() error { return h.store.UpdateLink(ctx, next) },
		}, nil
	})
	if err != nil {
		return "", notFound(fmt.Errorf("store link token: %w", err))
	}
	return serve, nil
}

// valid reports whether the link has a stored JWT that has not expired at
// now.
func valid(l Link, now time.Time) bool { return l.JWT != "" && now.Unix() < l.Exp }

func writeJWT(w http.ResponseWriter, token string) {
	hd := w.Header()
	hd.Set("Content-Type", "application/jwt")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(token))
}
