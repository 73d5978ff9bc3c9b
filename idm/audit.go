package idm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// subjectAuditDoc is an entry of a subject's audit trail as staff see it.
type subjectAuditDoc struct {
	Datetime string `json:"datetime"`
	Action   string `json:"action"`
	Actor    string `json:"actor,omitempty"`
}

// auditDoc is an audit record as admins see it at GET /audit.
type auditDoc struct {
	Seq      int64           `json:"seq"` // the record's place in the tamper-evident audit log
	ID       string          `json:"id"`
	Datetime string          `json:"datetime"`
	DocType  string          `json:"doctype"`
	Document string          `json:"document"`
	ActorID  string          `json:"actor_id,omitempty"`
	Actor    string          `json:"actor,omitempty"`
	Action   string          `json:"action"`
	Old      json.RawMessage `json:"old,omitempty"`
	New      json.RawMessage `json:"new,omitempty"`
}

func newAuditDoc(e AuditEvent) auditDoc {
	d := auditDoc{
		Seq: e.Seq, ID: e.ID, Datetime: FormatTime(e.Time), DocType: e.DocType, Document: e.Document,
		ActorID: e.ActorID, Actor: e.Actor, Action: e.Action,
	}
	// A value that is not valid JSON (from elsewhere) would break the
	// whole answer; leave it out.
	if len(e.Old) > 0 && json.Valid(e.Old) {
		d.Old = e.Old
	}
	if len(e.New) > 0 && json.Valid(e.New) {
		d.New = e.New
	}
	return d
}

// subjectAudits serves GET /subject/{sssid}/audits: the records of the
// subject and of its links (prefixed "[Link] "), oldest first. With a
// paging parameter (offset, perpage) the answer is that page and the total
// count; without one, every record, as the frontend expects.
func (h *Handler) subjectAudits(w http.ResponseWriter, r *http.Request, p *Principal) error {
	ctx := r.Context()
	paged, offset, perpage, err := optionalPaging(r)
	if err != nil {
		return err
	}
	_, s, links, err := h.visibleSubject(ctx, p, r.PathValue("sssid"))
	if err != nil {
		return err
	}
	docs := make([]string, 0, 1+len(links))
	docs = append(docs, s.ID)
	for _, l := range links {
		docs = append(docs, l.ID)
	}
	events, err := h.store.AuditsFor(ctx, docs...)
	if err != nil {
		return fmt.Errorf("audits of subject: %w", err)
	}
	out := make([]subjectAuditDoc, 0, len(events))
	for _, e := range events {
		action := e.Action
		if e.DocType == DocLink {
			action = "[Link] " + action
		}
		out = append(out, subjectAuditDoc{Datetime: FormatTime(e.Time), Action: action, Actor: e.Actor})
	}
	if paged {
		WriteJSON(w, http.StatusOK, pageBody[subjectAuditDoc]{Data: page(out, offset, perpage), Total: len(out)})
		return nil
	}
	WriteData(w, http.StatusOK, out)
	return nil
}

// listAudits serves GET /audit (admins and auditors, see needs): every record, users' and
// logins' included, oldest first, filtered by actor (username or user ID)
// and time (since inclusive, until exclusive; RFC 3339).
func (h *Handler) listAudits(w http.ResponseWriter, r *http.Request, p *Principal) error {
	q, err := parseQuery(r)
	if err != nil {
		return err
	}
	var f AuditFilter
	if f.Offset, f.Limit, err = q.paging(); err != nil {
		return err
	}
	if f.Actor, err = q.str("actor", MaxUsernameLen); err != nil {
		return err
	}
	if f.Since, err = timeParam(q, "since"); err != nil {
		return err
	}
	if f.Until, err = timeParam(q, "until"); err != nil {
		return err
	}
	var (
		events []AuditEvent
		total  int
	)
	if sites := p.SiteFilter(); sites != nil {
		events, total, err = h.siteAudits(r.Context(), f, sites)
	} else {
		events, total, err = h.store.ListAudits(r.Context(), f)
	}
	if err != nil {
		return fmt.Errorf("list audits: %w", err)
	}
	docs := make([]auditDoc, len(events))
	for i, e := range events {
		docs[i] = newAuditDoc(e)
	}
	WriteJSON(w, http.StatusOK, pageBody[auditDoc]{Data: docs, Total: total})
	return nil
}

// siteAudits is GET /audit for a caller who sees only some sites (an
// auditor of its sites): the page and total of the records that match f
// and are about a subject of those sites or one of its links. Records
// about users and logins are left out. It reads every matching record, so
// it costs more than an unrestricted page.
func (h *Handler) siteAudits(ctx context.Context, f AuditFilter, sites []string) ([]AuditEvent, int, error) {
	visible := map[string]bool{}
	subjects, _, err := h.store.ListSubjects(ctx, SubjectFilter{Sites: sites})
	if err != nil {
		return nil, 0, fmt.Errorf("subjects of the caller's sites: %w", err)
	}
	sssids := make([]string, len(subjects))
	for i, s := range subjects {
		visible[s.ID], sssids[i] = true, s.SSSID
	}
	if len(sssids) > 0 {
		links, err := h.store.LinksForSubjects(ctx, sssids...)
		if err != nil {
			return nil, 0, fmt.Errorf("links of the caller's sites: %w", err)
		}
		for _, l := range links {
			visible[l.ID] = true
		}
	}
	offset, limit := f.Offset, f.Limit
	f.Offset, f.Limit = 0, 0
	all, _, err := h.store.ListAudits(ctx, f)
	if err != nil {
		return nil, 0, err
	}
	all = slices.DeleteFunc(all, func(e AuditEvent) bool {
		return !(e.DocType == DocSubject || e.DocType == DocLink) || !visible[e.Document]
	})
	return page(all, offset, limit), len(all), nil
}

// timeParam parses an optional RFC 3339 date or date-time query parameter.
func timeParam(q queryParams, key string) (time.Time, error) {
	s, err := q.get(key)
	if err != nil || s == "" {
		return time.Time{}, err
	}
	t, err := ParseDate(s)
	if err != nil {
		return time.Time{}, Wrap(ErrInvalid, fmt.Sprintf("query parameter %q must be an RFC 3339 date or date-time, not %q", key, clip(s)), err)
	}
	return t.UTC(), nil
}
