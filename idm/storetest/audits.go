package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/c3-pro/idm/idm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newAudit(doc string, when time.Time, actorID, actor, action string) idm.AuditEvent {
	return idm.AuditEvent{
		ID:       idm.NewID(),
		Time:     when,
		Document: doc,
		DocType:  idm.DocSubject,
		ActorID:  actorID,
		Actor:    actor,
		Action:   action,
	}
}

// appendAudits appends the events one after the other and sets their Seq
// to the one the store gives them (in the caller's slice too, when it
// passed one with ...).
func appendAudits(t *testing.T, s idm.Store, events ...idm.AuditEvent) {
	t.Helper()
	for i, e := range events {
		n, err := s.AuditCount(t.Context())
		require.NoError(t, err)
		require.NoError(t, s.AppendAudit(t.Context(), e), "AppendAudit %s", e.ID)
		events[i].Seq = n
	}
}

func auditIDs(events []idm.AuditEvent) []string {
	var ids []string
	for _, e := range events {
		ids = append(ids, e.ID)
	}
	return ids
}

// auditData returns records about documents A and B with actors alice
// (ID aliceID), bob and no actor, at distinct and tied times, appended in
// no particular order, and their IDs in the order ListAudits returns them.
func auditData() (events []idm.AuditEvent, order []string) {
	const aliceID, bobID = "aaaaaaaaaaaaaaaaaaaaaaa1", "bbbbbbbbbbbbbbbbbbbbbbb2"
	tie := []string{idm.NewID(), idm.NewID(), idm.NewID()}
	slices.Sort(tie)
	e0 := newAudit("A", at(0), aliceID, "alice@example.org", "create")
	e1 := newAudit("B", at(time.Hour), bobID, "bob@example.org", "update")
	e1.ID = tie[2]
	e2 := newAudit("A", at(time.Hour), "", "", "link to P-1")
	e2.ID = tie[0]
	e2.DocType = idm.DocLink
	e3 := newAudit("A", messy(time.Hour), aliceID, "alice@example.org", "update")
	e3.ID = tie[1]
	e4 := newAudit("B", at(2*time.Hour), aliceID, "alice@example.org", "delete")
	e4.DocType = idm.DocUser
	e5 := newAudit("C", at(3*time.Hour), bobID, "bob@example.org", "login")
	e5.DocType = idm.DocAuth
	e6 := newAudit("A", at(-time.Hour), bobID, "bob@example.org", "first")
	events = []idm.AuditEvent{e4, e2, e0, e1, e5, e3, e6}
	order = []string{e6.ID, e0.ID, e2.ID, e3.ID, e1.ID, e4.ID, e5.ID}
	return events, order
}

// pick returns the elements of ids at the given indexes.
func pick(ids []string, idx ...int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, ids[i])
	}
	return out
}

func auditTests() []test {
	return []test{
		{"AppendAndRead", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			e := newAudit(idm.NewID(), messy(0), idm.NewID(), "alice@example.org", `name: "Bob"; consented: 2024-05-01`)
			e.DocType = idm.DocUser
			e.Old = json.RawMessage(`{"name": "Alice", "extra": {"x": [1, null, "ü"]}}`)
			e.New = json.RawMessage(`{"name":"Bob"}`)
			appendAudits(t, s, e)
			got, err := s.AuditsFor(ctx, e.Document)
			require.NoError(t, err)
			require.Len(t, got, 1)
			assertSame(t, e, got[0])
			list, total, err := s.ListAudits(ctx, idm.AuditFilter{})
			require.NoError(t, err)
			assert.Equal(t, 1, total)
			require.Len(t, list, 1)
			assertSame(t, e, list[0])
		}},
		{"ListAcrossHours", func(t *testing.T, s idm.Store) {
			// Records over several hours, days apart too, before 1970 as
			// well, listed through ranges that cut hours and offsets that
			// skip some: totals and pages as a scan of all would give them.
			ctx := t.Context()
			actors := []struct{ id, name string }{{"aaaaaaaaaaaaaaaaaaaaaaa1", "alice@example.org"}, {"bbbbbbbbbbbbbbbbbbbbbbb2", "bob@example.org"}, {"", ""}}
			base := []time.Time{at(-24 * time.Hour), at(0), at(time.Hour), at(3 * time.Hour), time.Date(1969, 12, 31, 23, 30, 0, 0, time.UTC)}
			var events []idm.AuditEvent
			for i := range 40 {
				a := actors[i%3]
				when := base[i%len(base)].Add(time.Duration(i*7) * time.Minute)
				events = append(events, newAudit(fmt.Sprintf("D-%d", i%4), when, a.id, a.name, "act"))
			}
			appendAudits(t, s, events...)
			sorted := slices.Clone(events)
			slices.SortFunc(sorted, func(a, b idm.AuditEvent) int {
				if c := a.Time.Compare(b.Time); c != 0 {
					return c
				}
				return strings.Compare(a.ID, b.ID)
			})
			for _, f := range []idm.AuditFilter{
				{},
				{Offset: 7, Limit: 5},
				{Since: at(30 * time.Minute)},
				{Since: at(30 * time.Minute), Until: at(3*time.Hour + 20*time.Minute), Offset: 2, Limit: 4},
				{Since: at(10 * time.Minute), Until: at(50 * time.Minute)},
				{Until: at(0)},
				{Until: time.Date(1970, 1, 1, 0, 10, 0, 0, time.UTC)},
				{Actor: "alice@example.org"},
				{Actor: "bbbbbbbbbbbbbbbbbbbbbbb2", Since: at(-23 * time.Hour), Offset: 1, Limit: 3},
				{Actor: "bob@example.org", Until: at(2 * time.Hour), Offset: 100},
				{Actor: "nobody"},
				{Since: at(5 * time.Hour)},
			} {
				var want []string
				for _, e := range sorted {
					if (f.Since.IsZero() || !e.Time.Before(f.Since)) && (f.Until.IsZero() || e.Time.Before(f.Until)) &&
						(f.Actor == "" || e.ActorID == f.Actor || e.Actor == f.Actor) {
						want = append(want, e.ID)
					}
				}
				list, total, err := s.ListAudits(ctx, f)
				require.NoError(t, err)
				assert.Equal(t, len(want), total, "%+v", f)
				end := len(want)
				if f.Limit > 0 {
					end = min(end, f.Offset+f.Limit)
				}
				var page []string
				page = append(page, want[min(f.Offset, end):end]...)
				assert.Equal(t, page, auditIDs(list), "%+v", f)
			}
		}},
		{"OldNewJSON", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			cases := []struct{ old, new string }{
				{"", `{"a": 1}`},
				{`{"a": 1}`, ""},
				{"", ""},
				{`"string"`, `42`},
				{`[1, {"b": [true, false, null]}, "x"]`, `null`},
				{`{"nested": {"deep": {"deeper": ["🎉", 1.5e-7]}}}`, `{}`},
			}
			var want []idm.AuditEvent
			for i, c := range cases {
				e := newAudit("doc", at(time.Duration(i)*time.Second), "", "", "change")
				if c.old != "" {
					e.Old = json.RawMessage(c.old)
				}
				if c.new != "" {
					e.New = json.RawMessage(c.new)
				}
				want = append(want, e)
			}
			appendAudits(t, s, want...)
			got, err := s.AuditsFor(ctx, "doc")
			require.NoError(t, err)
			require.Len(t, got, len(want))
			for i := range want {
				assertSame(t, want[i], got[i], "case %d", i)
			}
		}},
		{"ForDocuments", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			events, order := auditData()
			appendAudits(t, s, events...)
			// order: e6(A) e0(A) e2(A) e3(A) e1(B) e4(B) e5(C)
			for _, tc := range []struct {
				docs []string
				want []string
			}{
				{[]string{"A"}, pick(order, 0, 1, 2, 3)},
				{[]string{"B"}, pick(order, 4, 5)},
				{[]string{"A", "B"}, pick(order, 0, 1, 2, 3, 4, 5)},
				{[]string{"C", "nothing", "A"}, pick(order, 0, 1, 2, 3, 6)},
				{[]string{"A", "B", "C"}, order},
				{[]string{"a"}, nil},
				{[]string{"nothing"}, nil},
				{[]string{""}, nil},
				{nil, nil},
			} {
				got, err := s.AuditsFor(ctx, tc.docs...)
				require.NoError(t, err, "%q", tc.docs)
				assert.Equal(t, tc.want, auditIDs(got), "%q", tc.docs)
			}
			got, err := s.AuditsFor(ctx, "A")
			require.NoError(t, err)
			for _, g := range got {
				for _, e := range events {
					if e.ID == g.ID {
						assertSame(t, e, g)
					}
				}
			}
		}},
		{"ListFilters", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			events, order := auditData()
			appendAudits(t, s, events...)
			// order (times): e6(-1h bob) e0(0 alice) e2(1h none) e3(1h alice)
			// e1(1h bob) e4(2h alice) e5(3h bob)
			alice := pick(order, 1, 3, 5)
			bob := pick(order, 0, 4, 6)
			for _, tc := range []struct {
				name string
				f    idm.AuditFilter
				want []string
			}{
				{"all", idm.AuditFilter{}, order},
				{"actor ID", idm.AuditFilter{Actor: "aaaaaaaaaaaaaaaaaaaaaaa1"}, alice},
				{"actor name", idm.AuditFilter{Actor: "alice@example.org"}, alice},
				{"other actor name", idm.AuditFilter{Actor: "bob@example.org"}, bob},
				{"other actor ID", idm.AuditFilter{Actor: "bbbbbbbbbbbbbbbbbbbbbbb2"}, bob},
				{"unknown actor", idm.AuditFilter{Actor: "carol@example.org"}, nil},
				{"actor substring", idm.AuditFilter{Actor: "alice"}, nil},
				{"since inclusive", idm.AuditFilter{Since: at(time.Hour)}, order[2:]},
				{"until exclusive", idm.AuditFilter{Until: at(time.Hour)}, order[:2]},
				{"since and until", idm.AuditFilter{Since: at(time.Hour), Until: at(2 * time.Hour)}, order[2:5]},
				{"since and until normalised", idm.AuditFilter{Since: messy(time.Hour), Until: messy(2 * time.Hour)}, order[2:5]},
				{"empty window", idm.AuditFilter{Since: at(time.Hour), Until: at(time.Hour)}, nil},
				{"actor and window", idm.AuditFilter{Actor: "alice@example.org", Since: at(0), Until: at(2 * time.Hour)}, pick(order, 1, 3)},
				{"before all", idm.AuditFilter{Until: at(-time.Hour)}, nil},
				{"after all", idm.AuditFilter{Since: at(3*time.Hour + time.Millisecond)}, nil},
			} {
				got, total, err := s.ListAudits(ctx, tc.f)
				require.NoError(t, err, tc.name)
				assert.Equal(t, tc.want, auditIDs(got), tc.name)
				assert.Equal(t, len(tc.want), total, tc.name)
			}
		}},
		{"ListPages", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			events, order := auditData()
			appendAudits(t, s, events...)
			for _, tc := range []struct {
				f     idm.AuditFilter
				want  []string
				total int
			}{
				{idm.AuditFilter{Limit: 3}, order[:3], 7},
				{idm.AuditFilter{Offset: 3, Limit: 3}, order[3:6], 7},
				{idm.AuditFilter{Offset: 6, Limit: 3}, order[6:], 7},
				{idm.AuditFilter{Offset: 7, Limit: 3}, nil, 7},
				{idm.AuditFilter{Offset: 2}, order[2:], 7},
				{idm.AuditFilter{Actor: "alice@example.org", Offset: 1, Limit: 1}, pick(order, 3), 3},
				{idm.AuditFilter{Since: at(time.Hour), Offset: 1, Limit: 2}, order[3:5], 5},
			} {
				got, total, err := s.ListAudits(ctx, tc.f)
				require.NoError(t, err, "%+v", tc.f)
				assert.Equal(t, tc.want, auditIDs(got), "%+v", tc.f)
				assert.Equal(t, tc.total, total, "%+v", tc.f)
			}
		}},
		{"ListInvalidPage", func(t *testing.T, s idm.Store) {
			appendAudits(t, s, newAudit("A", at(0), "", "", "x"))
			_, _, err := s.ListAudits(t.Context(), idm.AuditFilter{Offset: -1})
			assert.ErrorIs(t, err, idm.ErrInvalid)
			_, _, err = s.ListAudits(t.Context(), idm.AuditFilter{Limit: -1})
			assert.ErrorIs(t, err, idm.ErrInvalid)
		}},
		{"Empty", func(t *testing.T, s idm.Store) {
			list, total, err := s.ListAudits(t.Context(), idm.AuditFilter{Limit: 10})
			require.NoError(t, err)
			assert.Equal(t, 0, total)
			assert.Empty(t, list)
			got, err := s.AuditsFor(t.Context(), "A")
			require.NoError(t, err)
			assert.Empty(t, got)
		}},
		{"NoAliasing", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			e := newAudit("A", at(0), "", "", "x")
			e.Old = json.RawMessage(`{"k":"v"}`)
			e.New = json.RawMessage(`{"k":"w"}`)
			appendAudits(t, s, e)
			e.Old[6], e.New[6] = 'X', 'X'
			got, err := s.AuditsFor(ctx, "A")
			require.NoError(t, err)
			require.Len(t, got, 1)
			assert.JSONEq(t, `{"k":"v"}`, string(got[0].Old))
			assert.JSONEq(t, `{"k":"w"}`, string(got[0].New))
			for i := range got[0].Old {
				got[0].Old[i] = ' '
			}
			list, _, err := s.ListAudits(ctx, idm.AuditFilter{})
			require.NoError(t, err)
			require.Len(t, list, 1)
			assert.JSONEq(t, `{"k":"v"}`, string(list[0].Old))
			list[0].New[6] = 'Y'
			got, err = s.AuditsFor(ctx, "A")
			require.NoError(t, err)
			require.Len(t, got, 1)
			assert.JSONEq(t, `{"k":"w"}`, string(got[0].New))
		}},
	}
}
