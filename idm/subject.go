package idm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Subject fields as the API names them.
const (
	keySSSID         = "sssid"
	keySite          = "site"
	keyName          = "name"
	keyBday          = "bday"
	keyEmail         = "email"
	keyDateInvited   = "date_invited"
	keyDateConsented = "date_consented"
	keyDateEnrolled  = "date_enrolled"
	keyDateWithdrawn = "date_withdrawn"
	keyCreated       = "created"
	keyChanged       = "changed"
)

// statusDates lists the set-once status dates with the word the API uses for
// them in audit texts and conflict messages.
var statusDates = [...]struct{ key, word string }{
	{keyDateInvited, "invited"},
	{keyDateConsented, "consented"},
	{keyDateEnrolled, "enrolled"},
	{keyDateWithdrawn, "withdrawn"},
}

// statusWord returns the word for a status-date key, "" for other keys.
func statusWord(key string) string {
	for _, d := range statusDates {
		if d.key == key {
			return d.word
		}
	}
	return ""
}

// stringField returns a pointer to the subject's string field with the
// given API name, or nil when the name is not a known string field.
func stringField(s *Subject, key string) *string {
	switch key {
	case keySSSID:
		return &s.SSSID
	case keySite:
		return &s.Site
	case keyName:
		return &s.Name
	case keyBday:
		return &s.Bday
	case keyEmail:
		return &s.Email
	case keyDateInvited:
		return &s.DateInvited
	case keyDateConsented:
		return &s.DateConsented
	case keyDateEnrolled:
		return &s.DateEnrolled
	case keyDateWithdrawn:
		return &s.DateWithdrawn
	}
	return nil
}

// maxLen returns the length limit of a known string field.
func maxLen(key string) int {
	switch key {
	case keySSSID:
		return MaxSSSIDLen
	case keySite:
		return MaxSiteLen
	case keyName:
		return MaxNameLen
	}
	return MaxStringLen
}

// isDateKey reports whether key names a date field.
func isDateKey(key string) bool { return key == keyBday || statusWord(key) != "" }

// validExtraKey reports whether key may name an additional subject field:
// 1 to 64 characters from A-Z, a-z, 0-9, '_' and '-', not starting with '_'.
func validExtraKey(key string) bool {
	if len(key) == 0 || len(key) > 64 || key[0] == '_' {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// reservedExtraKeys are names an additional field may not take in any
// case: the known fields, and the internal names of a record (its id and
// revision). A key that differs from one of them only in case ("Name",
// "SSSID", "ID") would shadow it for a reader that matches names
// case-insensitively, as encoding/json does.
var reservedExtraKeys = [...]string{
	keySSSID, keyName, keyBday, keyEmail, keyDateInvited, keyDateConsented, keyDateEnrolled, keyDateWithdrawn,
	keyCreated, keyChanged, "id", "rev",
}

// reservedExtraKey returns the reserved name that key equals in another
// case, or "" when key is free.
func reservedExtraKey(key string) string {
	for _, r := range reservedExtraKeys {
		if strings.EqualFold(key, r) {
			return r
		}
	}
	return ""
}

// subjectField is one member of a subject body: a known string field
// (str), an additional field (raw, compact JSON), or a null.
type subjectField struct {
	key   string
	known bool
	null  bool
	str   string
	raw   json.RawMessage
}

// parseSubjectBody checks the members of a subject body, in order: known
// fields must be strings (or null) within their length limits, "created"
// and "changed" (set by the server) are dropped, other keys must be valid
// additional-field names, and string values of additional fields are
// bounded too. It does not check dates or required fields.
func parseSubjectBody(body []byte) ([]subjectField, error) {
	members, err := splitObject(body)
	if err != nil {
		return nil, err
	}
	return subjectFields(members)
}

func subjectFields(members []objectField) ([]subjectField, error) {
	fields := make([]subjectField, 0, len(members))
	for _, m := range members {
		switch {
		case m.key == keyCreated || m.key == keyChanged:
			continue
		case m.key == keySite && !siteCode(m):
			// The original's subjects may carry `site` as an additional
			// field of any JSON value (e.g. {"id": 7, "name": "Basel"}):
			// such a value stays one, as before (see legacySite).
			if m.raw[0] == '"' {
				if _, err := m.str(MaxStringLen); err != nil {
					return nil, err
				}
			}
			fields = append(fields, subjectField{key: m.key, null: m.isNull(), raw: m.raw})
		case stringField(&Subject{}, m.key) != nil:
			s, err := m.str(maxLen(m.key))
			if err != nil {
				return nil, err
			}
			fields = append(fields, subjectField{key: m.key, known: true, null: m.isNull(), str: s})
		case validExtraKey(m.key):
			if r := reservedExtraKey(m.key); r == m.key {
				return nil, E(ErrInvalid, fmt.Sprintf("invalid field name %q: the name is reserved", m.key))
			} else if r != "" {
				return nil, E(ErrInvalid, fmt.Sprintf("invalid field name %q: it differs from the field %q only in case", m.key, r))
			}
			if m.raw[0] == '"' {
				if _, err := m.str(MaxStringLen); err != nil {
					return nil, err
				}
			}
			fields = append(fields, subjectField{key: m.key, null: m.isNull(), raw: m.raw})
		default:
			return nil, E(ErrInvalid, fmt.Sprintf("invalid field name %q: use 1 to 64 characters from A-Z, a-z, 0-9, _ and -, not starting with _", clip(m.key)))
		}
	}
	return fields, nil
}

// siteCode reports whether a `site` member is a site code (a JSON string
// that [ValidSite] accepts), which makes it the subject's site.
func siteCode(m objectField) bool {
	if m.raw[0] != '"' {
		return false
	}
	s, err := m.str(MaxSiteLen)
	return err == nil && ValidSite(s)
}

// legacySite reports whether s holds the original's additional field
// `site`: its answers then show that field as they did, and a `site` in a
// PUT body changes that field, not the subject's site.
func legacySite(s *Subject) bool {
	_, ok := s.Extra[keySite]
	return ok
}

// legacySiteFields returns fields with a site code in `site` turned into
// the additional field `site` when stored holds the original's additional
// field, which its answers show: the frontend sends back what it was
// shown. (Such a subject cannot be moved by a PUT.)
func legacySiteFields(fields []subjectField, stored Subject) []subjectField {
	if !legacySite(&stored) {
		return fields
	}
	out := slices.Clone(fields)
	for i, f := range out {
		if f.key == keySite && f.known {
			out[i] = subjectField{key: keySite, raw: json.RawMessage(strconv.Quote(f.str))}
		}
	}
	return out
}

// extraSize returns the encoded size of a subject's additional fields.
func extraSize(extra map[string]json.RawMessage) int {
	n := 2
	for k, v := range extra {
		n += len(k) + len(v) + 4 // "k":v,
	}
	return n
}

func checkExtraSize(extra map[string]json.RawMessage) error {
	if n := extraSize(extra); n > MaxExtraBytes {
		return E(ErrInvalid, fmt.Sprintf("the additional fields take %d bytes, more than the limit of %d", n, MaxExtraBytes))
	}
	return nil
}

// newSubjectFromBody builds a subject from the fields of a POST body; it
// does not validate required fields or dates.
func newSubjectFromBody(fields []subjectField) Subject {
	var s Subject
	for _, f := range fields {
		switch {
		case f.known:
			*stringField(&s, f.key) = f.str
		case !f.null:
			if s.Extra == nil {
				s.Extra = make(map[string]json.RawMessage)
			}
			s.Extra[f.key] = f.raw
		}
	}
	return s
}

// subjectDoc renders a [Subject] as the API's JSON object: the known fields
// in a fixed order, then the additional fields sorted by key; keys appear
// only when set, and the internal ID never.
type subjectDoc Subject

// MarshalJSON implements [json.Marshaler] (see [subjectJSON]). Answers
// render subjects with [writeSubject] and [writeSubjectPage] instead, which
// spare encoding/json the parsing of this method's output.
func (s subjectDoc) MarshalJSON() ([]byte, error) {
	return appendSubjectJSON(nil, Subject(s)), nil
}

// deriveDates returns s with the dates its links imply: date_enrolled is
// the earliest linked_on of its links that are not withdrawn, and
// date_withdrawn the latest withdrawn_on of its links, where those are
// earlier (enrolled) or later (withdrawn) than the stored values. A stored
// value that does not parse is kept as it is.
func deriveDates(s Subject, links []Link) Subject {
	for i := range links {
		if links[i].SSSID == s.SSSID {
			deriveFromLink(&s, &links[i])
		}
	}
	return s
}

// deriveFromLink applies one link of s, the next in creation order, to the
// dates of s (see [deriveDates]).
func deriveFromLink(s *Subject, l *Link) {
	switch {
	case l.WithdrawnOn != "":
		w, err := ParseDate(l.WithdrawnOn)
		if err != nil {
			return
		}
		if s.DateWithdrawn == "" {
			s.DateWithdrawn = l.WithdrawnOn
		} else if cur, err := ParseDate(s.DateWithdrawn); err == nil && w.After(cur) {
			s.DateWithdrawn = l.WithdrawnOn
		}
	case !l.LinkedOn.IsZero():
		if s.DateEnrolled == "" {
			s.DateEnrolled = FormatTime(l.LinkedOn)
		} else if cur, err := ParseDate(s.DateEnrolled); err == nil && l.LinkedOn.Before(cur) {
			s.DateEnrolled = FormatTime(l.LinkedOn)
		}
	}
}

// deriveAllDates sets the dates that links imply on every subject, as
// [deriveDates] does for one: links, in creation order, are the links of
// the subjects (links of others are ignored). With the subjects indexed by
// SSSID, it goes over the links once.
func deriveAllDates(subjects []Subject, links []Link) {
	if len(links) == 0 {
		return
	}
	at := make(map[string]int, len(subjects))
	for i := range subjects {
		at[subjects[i].SSSID] = i
	}
	if len(at) < len(subjects) {
		// Subjects with the same SSSID, which no store returns: each of
		// them gets the dates of all their links.
		for i := range subjects {
			subjects[i] = deriveDates(subjects[i], links)
		}
		return
	}
	for li := range links {
		if i, ok := at[links[li].SSSID]; ok {
			deriveFromLink(&subjects[i], &links[li])
		}
	}
}

// findSubject returns the subject with the given SSSID with its derived
// dates, the stored subject, and its links.
func (h *Handler) findSubject(ctx context.Context, sssid string) (shown, stored Subject, links []Link, err error) {
	stored, err = h.store.FindSubject(ctx, sssid)
	if err != nil {
		return Subject{}, Subject{}, nil, notFound(err)
	}
	links, err = h.store.LinksForSubjects(ctx, sssid)
	if err != nil {
		return Subject{}, Subject{}, nil, fmt.Errorf("links of subject: %w", err)
	}
	return deriveDates(stored, links), stored, links, nil
}

// CheckSSSID reports whether a new subject may have sssid: it refuses an
// SSSID that GET /subject/{sssid} could not address as it is, or that would
// be hard to tell apart from another: one with control characters, format
// characters (Unicode category Cf: zero-width characters, bidirectional
// controls), '/', '?', '#' or '%', with white space at either end, and "."
// and "..". It returns a 400 [*Error] that says why. Subjects stored
// otherwise (by a migration) stay reachable: see [SSSIDPathSegment].
func CheckSSSID(sssid string) error { return checkSSSID(sssid) }

// SSSIDPathSegment returns the path segment that addresses the subject
// with sssid in /subject/{sssid} (percent-encoded as RFC 3986 requires, so
// "S/1" is "S%2F1"), and false when no segment can: "." and ".." (which
// clients and servers remove from paths) and "".
func SSSIDPathSegment(sssid string) (string, bool) {
	if sssid == "" || sssid == "." || sssid == ".." {
		return "", false
	}
	return url.PathEscape(sssid), true
}

func checkSSSID(sssid string) error {
	bad := func(why string) error {
		return E(ErrInvalid, fmt.Sprintf("invalid `sssid` %q: %s", clip(sssid), why))
	}
	if sssid == "." || sssid == ".." {
		return bad(`"." and ".." cannot be used`)
	}
	for _, c := range sssid {
		switch {
		case unicode.IsControl(c):
			return bad("it may not contain control characters")
		case unicode.Is(unicode.Cf, c):
			return bad(fmt.Sprintf("it may not contain invisible formatting characters (found U+%04X)", c))
		case c == '/' || c == '?' || c == '#' || c == '%':
			return bad("it may not contain '/', '?', '#' or '%'")
		}
	}
	first, _ := utf8.DecodeRuneInString(sssid)
	last, _ := utf8.DecodeLastRuneInString(sssid)
	if unicode.IsSpace(first) || unicode.IsSpace(last) {
		return bad("it may not start or end with white space")
	}
	return nil
}

// bodySSSID returns the `sssid` member of a subject body, read on its own
// before any other member: "" when it is absent, null or empty, and a 400
// when it is not a string or too long. Callers check it with checkSSSID
// where it names a new subject.
func bodySSSID(members []objectField) (string, error) {
	for _, m := range members {
		if m.key != keySSSID {
			continue
		}
		s, err := m.str(maxLen(keySSSID))
		if err != nil || s == "" {
			return "", err
		}
		return s, nil
	}
	return "", nil
}

// createSubject serves POST /subject. It checks the body with newSubject,
// in the order API.md gives.
func (h *Handler) createSubject(w http.ResponseWriter, r *http.Request, p *Principal) error {
	ctx := r.Context()
	members, err := h.decodeObject(w, r)
	if err != nil {
		return err
	}
	s, err := newSubject(p, members, h.site, func(sssid string) error {
		switch _, err := h.store.FindSubject(ctx, sssid); {
		case err == nil:
			return E(ErrConflict, msgSSSIDTaken)
		case !errors.Is(err, ErrNotFound):
			return fmt.Errorf("find subject: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s, e := subjectCreated(p, s, NewID(), h.clock())
	err = h.record(ctx, e, func() error { return h.store.CreateSubject(ctx, s) })
	switch {
	case errors.Is(err, ErrConflict):
		return Wrap(ErrConflict, msgSSSIDTaken, err)
	case err != nil:
		return fmt.Errorf("create subject: %w", err)
	}
	writeSubject(w, http.StatusCreated, s)
	return nil
}

// msgSSSIDTaken answers a new subject whose SSSID is taken.
const msgSSSIDTaken = "this SSSID is already taken"

// newSubject is the one rule for a new subject, used by POST /subject and
// the import: it checks the members of a subject body for p in the order
// API.md gives - the `sssid` (present, valid, then free: taken is asked
// about it and its error returned as it is, a 409 when it is taken), then
// the other members, the required `name` and `bday`, the dates, the size
// of the additional fields, the site (p's one site or defaultSite when the
// body has none) and whether p may write subjects of that site. It returns
// the subject without ID and times.
func newSubject(p *Principal, members []objectField, defaultSite string, taken func(sssid string) error) (Subject, error) {
	sssid, err := bodySSSID(members)
	switch {
	case err != nil:
		return Subject{}, err
	case sssid == "":
		return Subject{}, E(ErrInvalid, "must at least provide `sssid`")
	}
	if err := checkSSSID(sssid); err != nil {
		return Subject{}, err
	}
	if err := taken(sssid); err != nil {
		return Subject{}, err
	}
	fields, err := subjectFields(members)
	if err != nil {
		return Subject{}, err
	}
	s := newSubjectFromBody(fields)
	for _, key := range [...]string{keyName, keyBday} {
		if *stringField(&s, key) == "" {
			return Subject{}, E(ErrInvalid, fmt.Sprintf("missing or empty `%s`", key))
		}
	}
	for _, key := range [...]string{keyBday, keyDateInvited, keyDateConsented, keyDateEnrolled, keyDateWithdrawn} {
		if v := *stringField(&s, key); v != "" {
			if err := checkDate(key, v); err != nil {
				return Subject{}, err
			}
		}
	}
	if err := checkExtraSize(s.Extra); err != nil {
		return Subject{}, err
	}
	switch site, only := p.OnlySite(); {
	case s.Site != "":
		if !ValidSite(s.Site) {
			return Subject{}, E(ErrInvalid, fmt.Sprintf("invalid `site` %q: use 1 to %d characters from A-Z, a-z, 0-9, _ and -", clip(s.Site), MaxSiteLen))
		}
	case only:
		s.Site = site
	default:
		s.Site = defaultSite
	}
	if !p.Can(WriteSubjects, s.Site) {
		return Subject{}, E(ErrForbidden, MsgForbidden)
	}
	return s, nil
}

// subjectCreated returns s, a new subject that newSubject accepted, with
// the ID id (fresh, see [NewID]) and created at now, and the audit record
// of its creation by p, whose new value is the subject as the API shows it
// (appendSubjectJSON writes what encoding/json makes of a subjectDoc).
func subjectCreated(p *Principal, s Subject, id string, now time.Time) (Subject, AuditEvent) {
	s.ID, s.Created, s.Changed = id, now, now
	return s, newAudit(p, DocSubject, s.ID, "create", now, nil, appendSubjectJSON(nil, s))
}

// listSubjects serves GET /subject.
func (h *Handler) listSubjects(w http.ResponseWriter, r *http.Request, p *Principal) error {
	ctx := r.Context()
	q, err := parseQuery(r)
	if err != nil {
		return err
	}
	f := SubjectFilter{Sites: p.SiteFilter()}
	if f.Offset, f.Limit, err = q.paging(); err != nil {
		return err
	}
	if f.OrderCol, err = q.get("ordercol"); err != nil {
		return err
	}
	if f.OrderCol != "" && !slices.Contains(subjectColumns, f.OrderCol) {
		return E(ErrInvalid, fmt.Sprintf("query parameter \"ordercol\" must be one of %v, not %q", subjectColumns, clip(f.OrderCol)))
	}
	dir, err := q.get("orderdir")
	if err != nil {
		return err
	}
	switch {
	case dir == "" || strings.EqualFold(dir, "asc"):
	case strings.EqualFold(dir, "desc"):
		f.Desc = true
	default:
		return E(ErrInvalid, fmt.Sprintf("query parameter \"orderdir\" must be asc or desc, not %q", clip(dir)))
	}
	if f.Search, err = q.str("search", MaxStringLen); err != nil {
		return err
	}
	// "site" narrows the list to one of the caller's sites; another site
	// lists nothing, as if it had no subjects.
	site, err := q.get("site")
	if err != nil {
		return err
	}
	if site != "" {
		if !ValidSite(site) {
			return E(ErrInvalid, fmt.Sprintf("query parameter \"site\" must be a site code (1 to %d characters of A-Z, a-z, 0-9, _ and -), not %q", MaxSiteLen, clip(site)))
		}
		f.Sites = []string{}
		if p.SeesSite(site) {
			f.Sites = []string{site}
		}
	}
	// "status" is accepted and ignored (the frontend may send it).
	if _, err := q.get("status"); err != nil {
		return err
	}
	subjects, total, err := h.store.ListSubjects(ctx, f)
	if err != nil {
		return fmt.Errorf("list subjects: %w", err)
	}
	if len(subjects) > 0 {
		sssids := make([]string, len(subjects))
		for i, s := range subjects {
			sssids[i] = s.SSSID
		}
		links, err := h.store.LinksForSubjects(ctx, sssids...)
		if err != nil {
			return fmt.Errorf("links of subjects: %w", err)
		}
		deriveAllDates(subjects, links)
	}
	writeSubjectPage(w, subjects, total)
	return nil
}

// getSubject serves GET /subject/{sssid}.
func (h *Handler) getSubject(w http.ResponseWriter, r *http.Request, p *Principal) error {
	shown, _, _, err := h.visibleSubject(r.Context(), p, r.PathValue("sssid"))
	if err != nil {
		return err
	}
	writeSubject(w, http.StatusOK, shown)
	return nil
}

// updateSubject serves PUT /subject/{sssid}. The change is planned on the
// subject as it is stored and written only if the subject has not changed
// since (see [Handler.commit]): a concurrent change of other fields is kept,
// and one that makes this change invalid (a status date set meanwhile) gets
// its 409.
func (h *Handler) updateSubject(w http.ResponseWriter, r *http.Request, p *Principal) error {
	ctx := r.Context()
	sssid := r.PathValue("sssid")
	members, err := h.decodeObject(w, r)
	if err != nil {
		return err
	}
	bodyID, err := bodySSSID(members)
	switch {
	case err != nil:
		return err
	case bodyID == "":
		return E(ErrInvalid, "must provide the subject's `sssid`")
	case bodyID != sssid:
		if err := checkSSSID(bodyID); err != nil {
			return err
		}
		return E(ErrConflict, "SSSID cannot be changed")
	}
	if err := checkSSSID(sssid); err != nil {
		// Only a subject stored with such an SSSID (a migrated one) may be
		// addressed, and named in the body, as it is.
		switch _, ferr := h.store.FindSubject(ctx, sssid); {
		case errors.Is(ferr, ErrNotFound):
			return err
		case ferr != nil:
			return fmt.Errorf("find subject: %w", ferr)
		}
	}
	fields, err := subjectFields(members)
	if err != nil {
		return err
	}
	err = h.commit(ctx, p, DocSubject, h.clock(), func(now time.Time) (change, error) {
		shown, stored, _, err := h.visibleSubject(ctx, p, sssid)
		if err != nil {
			return change{}, err
		}
		fields := legacySiteFields(fields, stored)
		if err := checkSiteMove(fields, stored, p); err != nil {
			return change{}, err
		}
		return planSubjectUpdate(fields, shown, stored, now, func(next Subject) error {
			return h.store.UpdateSubject(ctx, next)
		})
	})
	if err != nil {
		return notFound(fmt.Errorf("update subject: %w", err))
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// checkSiteMove checks the `site` of a PUT /subject body: it may repeat
// the subject's site; another one must be a site code and moves the
// subject there, which only admins may do (403 otherwise); emptying it is
// a 400.
func checkSiteMove(fields []subjectField, stored Subject, p *Principal) error {
	for _, f := range fields {
		switch {
		case f.key != keySite || !f.known || f.str == stored.Site:
		case f.str == "":
			return E(ErrInvalid, "`site` may not be emptied")
		case !ValidSite(f.str):
			return E(ErrInvalid, fmt.Sprintf("invalid `site` %q: use 1 to %d characters from A-Z, a-z, 0-9, _ and -", clip(f.str), MaxSiteLen))
		case !p.Can(MoveSubjects, f.str):
			return E(ErrForbidden, MsgForbidden)
		}
	}
	return nil
}

// planSubjectUpdate plans the change of a PUT /subject body to the stored
// subject (shown is the same with its derived dates): client mistakes
// (400) first, then conflicts (409). A body that changes nothing plans the
// audit action "update" and no write.
func planSubjectUpdate(fields []subjectField, shown, stored Subject, now time.Time, write func(Subject) error) (change, error) {
	for _, f := range fields {
		switch {
		case (f.key == keyName || f.key == keyBday) && f.str == "":
			return change{}, E(ErrInvalid, fmt.Sprintf("`%s` may not be emptied", f.key))
		case f.known && isDateKey(f.key) && f.str != "":
			if err := checkDate(f.key, f.str); err != nil {
				return change{}, err
			}
		}
	}
	next := stored
	next.Extra = maps.Clone(stored.Extra)
	var (
		actions  []string
		old, new orderedJSON
	)
	for _, f := range fields {
		switch {
		case f.key == keySSSID:
		case statusWord(f.key) != "":
			// Set-once: compared with what the client was shown, so that
			// sending back a derived date is a no-op.
			cur := *stringField(&shown, f.key)
			if cur != "" {
				if !sameDate(cur, f.str) {
					return change{}, E(ErrConflict, "Subject has already been "+statusWord(f.key))
				}
				continue
			}
			if f.str == "" {
				continue
			}
			*stringField(&next, f.key) = f.str
			actions = append(actions, statusWord(f.key)+": "+f.str)
			old.add(f.key, nil)
			new.addString(f.key, f.str)
		case f.known:
			cur := stringField(&next, f.key)
			if *cur == f.str {
				continue
			}
			old.addString(f.key, *cur)
			new.addString(f.key, f.str)
			*cur = f.str
			actions = append(actions, f.key+": "+jsonText(f.str))
		case f.null:
			prev, ok := next.Extra[f.key]
			if !ok {
				continue
			}
			delete(next.Extra, f.key)
			old.add(f.key, prev)
			new.add(f.key, nil)
			actions = append(actions, f.key+": null")
		default:
			prev, ok := next.Extra[f.key]
			if ok && bytes.Equal(prev, f.raw) {
				continue
			}
			if next.Extra == nil {
				next.Extra = make(map[string]json.RawMessage)
			}
			next.Extra[f.key] = f.raw
			old.add(f.key, prev)
			new.add(f.key, f.raw)
			actions = append(actions, f.key+": "+string(f.raw))
		}
	}
	if err := checkExtraSize(next.Extra); err != nil {
		return change{}, err
	}
	if len(actions) == 0 {
		// Nothing changed: the attempt is recorded, the subject left alone.
		return change{doc: stored.ID, action: "update"}, nil
	}
	next.Changed = now
	return change{
		doc: stored.ID, action: joinActions(actions), old: old.bytes(), new: new.bytes(),
		write: func() error { return write(next) },
	}, nil
}

// joinActions joins the parts of an audit action text.
func joinActions(parts []string) string { return strings.Join(parts, "; ") }

// syncSubjectDates stores the dates that the subject's links imply
// (date_enrolled, date_withdrawn) on the subject, so that lists sort by
// them, with an audit record ("enrolled: <date>"). It re-reads and retries
// when the subject changes meanwhile (see [Handler.commit]). The change that
// caused it has already happened, so a failure here is logged, not
// returned: the dates are derived again on every read anyway.
func (h *Handler) syncSubjectDates(ctx context.Context, p *Principal, sssid string, after time.Time) {
	err := h.commit(ctx, p, DocSubject, h.after(after), func(now time.Time) (change, error) {
		shown, stored, _, err := h.findSubject(ctx, sssid)
		if err != nil {
			return change{}, err
		}
		var (
			actions  []string
			old, new orderedJSON
		)
		next := stored
		for _, key := range [...]string{keyDateEnrolled, keyDateWithdrawn} {
			want, cur := *stringField(&shown, key), stringField(&next, key)
			if want == *cur {
				continue
			}
			old.addString(key, *cur)
			new.addString(key, want)
			*cur = want
			actions = append(actions, statusWord(key)+": "+want)
		}
		if len(actions) == 0 {
			return change{}, nil
		}
		next.Changed = now
		return change{
			doc: stored.ID, action: joinActions(actions), old: old.bytes(), new: new.bytes(),
			write: func() error { return h.store.UpdateSubject(ctx, next) },
		}, nil
	})
	if err != nil {
		h.log.ErrorContext(ctx, "cannot store a subject's derived dates", "sssid", sssid, "err", err)
	}
}
