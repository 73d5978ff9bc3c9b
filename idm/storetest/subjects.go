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

func newSubject(sssid string) idm.Subject {
	return idm.Subject{
		ID:      idm.NewID(),
		SSSID:   sssid,
		Name:    "Subject " + sssid,
		Bday:    "1980-05-17",
		Created: at(0),
		Changed: at(time.Minute),
		Rev:     1,
	}
}

func createSubjects(t *testing.T, s idm.Store, subjects ...idm.Subject) {
	t.Helper()
	for _, sub := range subjects {
		require.NoError(t, s.CreateSubject(t.Context(), sub), "CreateSubject %q", sub.SSSID)
	}
}

func sssids(subjects []idm.Subject) []string {
	var ids []string
	for _, s := range subjects {
		ids = append(ids, s.SSSID)
	}
	return ids
}

// extraJSON holds extra subject fields of every JSON kind.
var extraJSON = map[string]string{
	"string":  `"héllo wörld ✓ 日本語 🎉 \"quoted\" back\\slash \u00e9 tab\t"`,
	"number":  `12.5`,
	"integer": `-42`,
	"large":   `1234567890123`,
	"exp":     `6.02e23`,
	"true":    `true`,
	"false":   `false`,
	"null":    `null`,
	"empty":   `""`,
	"object":  `{"a": {"b": [1, 2, {"c": null}]}, "z": true, "ünï": "cödé"}`,
	"array":   `[1, "two", null, false, {"x": []}, [[]], 3.25]`,
	"emptyo":  `{}`,
	"emptya":  `[]`,
	"x-key_9": `"dash and underscore"`,
}

func extraOf(m map[string]string) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		out[k] = json.RawMessage(v)
	}
	return out
}

func assertExtra(t *testing.T, want map[string]string, got map[string]json.RawMessage) {
	t.Helper()
	assert.Len(t, got, len(want))
	for k, v := range want {
		if g, ok := got[k]; assert.True(t, ok, "extra field %q missing", k) {
			assert.JSONEq(t, v, string(g), "extra field %q", k)
		}
	}
}

func subjectTests() []test {
	return []test{
		{"CreateAndFind", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			sub := idm.Subject{
				ID: idm.NewID(), SSSID: "S-001", Name: "Alice Älmhult", Bday: "1980-05-17",
				Email: "alice@example.org", DateInvited: "2024-01-01", DateConsented: "2024-01-02T10:00:00+02:00",
				DateEnrolled: "2024-01-03", DateWithdrawn: "2024-06-30",
				Created: at(0), Changed: at(time.Hour),
				Extra: extraOf(map[string]string{"phone": `"+41 44 000 00 00"`, "site": `{"id": 3}`}),
				Rev:   1,
			}
			require.NoError(t, s.CreateSubject(ctx, sub))
			got, err := s.FindSubject(ctx, "S-001")
			require.NoError(t, err)
			assertSame(t, sub, got)
			// Unset fields stay unset.
			bare := idm.Subject{ID: idm.NewID(), SSSID: "S-002", Rev: 1}
			require.NoError(t, s.CreateSubject(ctx, bare))
			got, err = s.FindSubject(ctx, "S-002")
			require.NoError(t, err)
			assertSame(t, bare, got)
		}},
		{"FindMissing", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			createSubjects(t, s, newSubject("abc"))
			for _, id := range []string{"ABC", "ab", "abcd", "", ".*", "a.c"} {
				_, err := s.FindSubject(ctx, id)
				assert.ErrorIs(t, err, idm.ErrNotFound, "%q", id)
			}
		}},
		{"SSSIDCaseSensitive", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			lower, upper := newSubject("abc"), newSubject("ABC")
			upper.Name = "upper"
			createSubjects(t, s, lower, upper)
			got, err := s.FindSubject(ctx, "ABC")
			require.NoError(t, err)
			assertSame(t, upper, got)
			got, err = s.FindSubject(ctx, "abc")
			require.NoError(t, err)
			assertSame(t, lower, got)
		}},
		{"DuplicateSSSID", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			orig := newSubject("S-001")
			createSubjects(t, s, orig)
			dup := newSubject("S-001")
			dup.Name = "Impostor"
			assert.ErrorIs(t, s.CreateSubject(ctx, dup), idm.ErrConflict)
			got, err := s.FindSubject(ctx, "S-001")
			require.NoError(t, err)
			assertSame(t, orig, got)
			_, total, err := s.ListSubjects(ctx, idm.SubjectFilter{})
			require.NoError(t, err)
			assert.Equal(t, 1, total)
		}},
		{"ConcurrentCreateSameSSSID", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			const n = 20
			errs := concurrently(n, func(int) error { return s.CreateSubject(ctx, newSubject("S-RACE")) })
			requireOneWinner(t, errs, idm.ErrConflict)
			_, total, err := s.ListSubjects(ctx, idm.SubjectFilter{})
			require.NoError(t, err)
			assert.Equal(t, 1, total)
		}},
		{"Update", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			orig := newSubject("S-001")
			orig.Extra = extraOf(map[string]string{"keep": `1`, "drop": `"x"`})
			other := newSubject("S-002")
			createSubjects(t, s, orig, other)
			upd := orig
			upd.ID = idm.NewID() // ignored: the subject keeps its ID
			upd.Name, upd.Bday, upd.Email = "Renamed", "1981-01-01", "new@example.org"
			upd.DateInvited, upd.DateConsented = "2024-01-01", "2024-01-02"
			upd.Changed = at(time.Hour)
			upd.Extra = extraOf(map[string]string{"keep": `2`, "new": `[1]`})
			updateSubject(t, s, &upd)
			got, err := s.FindSubject(ctx, "S-001")
			require.NoError(t, err)
			want := upd
			want.ID = orig.ID
			assertSame(t, want, got)
			upd.ID = ""
			upd.Extra = nil
			upd.Email = ""
			updateSubject(t, s, &upd)
			got, err = s.FindSubject(ctx, "S-001")
			require.NoError(t, err)
			want = upd
			want.ID = orig.ID
			assertSame(t, want, got)
			got, err = s.FindSubject(ctx, "S-002")
			require.NoError(t, err)
			assertSame(t, other, got)
		}},
		{"UpdateMissing", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			createSubjects(t, s, newSubject("S-001"))
			assert.ErrorIs(t, s.UpdateSubject(ctx, newSubject("S-002")), idm.ErrNotFound)
			assert.ErrorIs(t, s.UpdateSubject(ctx, newSubject("s-001")), idm.ErrNotFound)
			_, err := s.FindSubject(ctx, "S-002")
			assert.ErrorIs(t, err, idm.ErrNotFound, "an update of a missing subject created it")
		}},
		{"Delete", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			a, b := newSubject("S-001"), newSubject("S-002")
			createSubjects(t, s, a, b)
			require.NoError(t, s.DeleteSubject(ctx, "S-001"))
			_, err := s.FindSubject(ctx, "S-001")
			assert.ErrorIs(t, err, idm.ErrNotFound)
			assert.ErrorIs(t, s.DeleteSubject(ctx, "S-001"), idm.ErrNotFound, "second delete")
			assert.ErrorIs(t, s.DeleteSubject(ctx, "s-002"), idm.ErrNotFound)
			got, err := s.FindSubject(ctx, "S-002")
			require.NoError(t, err)
			assertSame(t, b, got)
			list, total, err := s.ListSubjects(ctx, idm.SubjectFilter{})
			require.NoError(t, err)
			assert.Equal(t, 1, total)
			assert.Equal(t, []string{"S-002"}, sssids(list))
			// The SSSID can be used again.
			createSubjects(t, s, newSubject("S-001"))
		}},
		{"ExtraRoundTrip", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			sub := newSubject("S-001")
			sub.Extra = extraOf(extraJSON)
			createSubjects(t, s, sub)
			got, err := s.FindSubject(ctx, "S-001")
			require.NoError(t, err)
			assertExtra(t, extraJSON, got.Extra)
			list, _, err := s.ListSubjects(ctx, idm.SubjectFilter{})
			require.NoError(t, err)
			require.Len(t, list, 1)
			assertExtra(t, extraJSON, list[0].Extra)
			// Through an update, too.
			more := maps(extraJSON)
			more["added"] = `{"deep": [[["x"]]]}`
			delete(more, "object")
			sub.Extra = extraOf(more)
			updateSubject(t, s, &sub)
			got, err = s.FindSubject(ctx, "S-001")
			require.NoError(t, err)
			assertExtra(t, more, got.Extra)
		}},
		{"ExtraEmpty", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			a, b := newSubject("S-001"), newSubject("S-002")
			a.Extra = nil
			b.Extra = map[string]json.RawMessage{}
			createSubjects(t, s, a, b)
			for _, id := range []string{"S-001", "S-002"} {
				got, err := s.FindSubject(ctx, id)
				require.NoError(t, err)
				assert.Empty(t, got.Extra, id)
			}
		}},
		{"NoAliasing", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			raw := json.RawMessage(`"value"`)
			sub := newSubject("S-001")
			sub.Extra = map[string]json.RawMessage{"k": raw}
			createSubjects(t, s, sub)
			// Change what was passed in.
			raw[1] = 'X'
			sub.Extra["added"] = json.RawMessage(`1`)
			got, err := s.FindSubject(ctx, "S-001")
			require.NoError(t, err)
			assertExtra(t, map[string]string{"k": `"value"`}, got.Extra)
			// Change what came out.
			got.Extra["k"][1] = 'Y'
			got.Extra["added"] = json.RawMessage(`2`)
			list, _, err := s.ListSubjects(ctx, idm.SubjectFilter{})
			require.NoError(t, err)
			require.Len(t, list, 1)
			assertExtra(t, map[string]string{"k": `"value"`}, list[0].Extra)
			list[0].Extra["k"][1] = 'Z'
			delete(list[0].Extra, "k")
			got, err = s.FindSubject(ctx, "S-001")
			require.NoError(t, err)
			assertExtra(t, map[string]string{"k": `"value"`}, got.Extra)
		}},
		{"ListEmpty", func(t *testing.T, s idm.Store) {
			list, total, err := s.ListSubjects(t.Context(), idm.SubjectFilter{OrderCol: "name", Limit: 50})
			require.NoError(t, err)
			assert.Equal(t, 0, total)
			assert.Empty(t, list)
		}},
		{"ListInvalid", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			createSubjects(t, s, newSubject("S-001"))
			for _, f := range []idm.SubjectFilter{
				{OrderCol: "nonsense"},
				{OrderCol: "Name"},
				{OrderCol: "_id"},
				{OrderCol: "id"},
				{Offset: -1},
				{Limit: -1},
			} {
				_, _, err := s.ListSubjects(ctx, f)
				assert.ErrorIs(t, err, idm.ErrInvalid, "%+v", f)
			}
		}},
		{"ListFullRecords", func(t *testing.T, s idm.Store) {
			subjects := sortData()
			createSubjects(t, s, subjects...)
			list, total, err := s.ListSubjects(t.Context(), idm.SubjectFilter{})
			require.NoError(t, err)
			assert.Equal(t, len(subjects), total)
			require.Len(t, list, len(subjects))
			byID := map[string]idm.Subject{}
			for _, sub := range subjects {
				byID[sub.SSSID] = sub
			}
			for _, got := range list {
				assertSame(t, byID[got.SSSID], got)
			}
		}},
		{"ListPages", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			var all []string
			for i := range 9 {
				id := fmt.Sprintf("S-%03d", i)
				all = append(all, id)
				createSubjects(t, s, newSubject(id))
			}
			for _, tc := range []struct {
				offset, limit int
				want          []string
			}{
				{0, 0, all},
				{0, 4, all[0:4]},
				{4, 4, all[4:8]},
				{8, 4, all[8:9]},
				{9, 4, nil},
				{50, 0, nil},
				{3, 0, all[3:]},
				{0, 1000, all},
			} {
				list, total, err := s.ListSubjects(ctx, idm.SubjectFilter{Offset: tc.offset, Limit: tc.limit})
				require.NoError(t, err)
				assert.Equal(t, 9, total, "offset %d limit %d", tc.offset, tc.limit)
				assert.Equal(t, tc.want, sssids(list), "offset %d limit %d", tc.offset, tc.limit)
			}
		}},
		{"SortEveryColumn", func(t *testing.T, s idm.Store) {
			subjects := sortData()
			createSubjects(t, s, subjects...)
			cols := append([]string{""}, idm.SubjectColumns()...)
			for _, col := range cols {
				for _, desc := range []bool{false, true} {
					name := col
					if name == "" {
						name = "default"
					}
					if desc {
						name += "_desc"
					} else {
						name += "_asc"
					}
					t.Run(name, func(t *testing.T) {
						want := sortedSSSIDs(subjects, col, desc)
						list, total, err := s.ListSubjects(t.Context(), idm.SubjectFilter{OrderCol: col, Desc: desc})
						require.NoError(t, err)
						assert.Equal(t, len(subjects), total)
						require.Equal(t, want, sssids(list), "whole list")
						// Walking the pages gives the same order: no page
						// overlaps another, none leaves a subject out.
						const limit = 4
						var walked []string
						for offset := 0; offset < len(subjects); offset += limit {
							page, total, err := s.ListSubjects(t.Context(), idm.SubjectFilter{OrderCol: col, Desc: desc, Offset: offset, Limit: limit})
							require.NoError(t, err)
							assert.Equal(t, len(subjects), total)
							walked = append(walked, sssids(page)...)
						}
						assert.Equal(t, want, walked, "pages")
					})
				}
			}
		}},
		{"ListAfterChanges", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			a, b, c := newSubject("S-1"), newSubject("S-2"), newSubject("S-3")
			a.Name, b.Name, c.Name = "Carol", "Alice", "Bob"
			createSubjects(t, s, a, b, c)
			byName := func(desc bool) []string {
				t.Helper()
				list, total, err := s.ListSubjects(ctx, idm.SubjectFilter{OrderCol: "name", Desc: desc})
				require.NoError(t, err)
				assert.Equal(t, len(list), total)
				return sssids(list)
			}
			assert.Equal(t, []string{"S-2", "S-3", "S-1"}, byName(false))
			assert.Equal(t, []string{"S-1", "S-3", "S-2"}, byName(true))
			a.Name = "Aaron"
			updateSubject(t, s, &a)
			assert.Equal(t, []string{"S-1", "S-2", "S-3"}, byName(false), "after an update")
			assert.Equal(t, []string{"S-3", "S-2", "S-1"}, byName(true), "after an update")
			require.NoError(t, s.DeleteSubject(ctx, "S-2"))
			assert.Equal(t, []string{"S-1", "S-3"}, byName(false), "after a delete")
			d := newSubject("S-0")
			d.Name = "Zed"
			createSubjects(t, s, d)
			assert.Equal(t, []string{"S-1", "S-3", "S-0"}, byName(false), "after a create")
			list, _, err := s.ListSubjects(ctx, idm.SubjectFilter{OrderCol: "name", Search: "aaron"})
			require.NoError(t, err)
			if assert.Len(t, list, 1) {
				assertSame(t, a, list[0])
			}
		}},
		{"SortEmptyFirst", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			a, b, c := newSubject("S-1"), newSubject("S-2"), newSubject("S-3")
			a.Email, b.Email, c.Email = "b@x.org", "", "A@x.org"
			a.Created, b.Created, c.Created = at(time.Hour), at(-time.Hour), time.Time{}
			createSubjects(t, s, a, b, c)
			for _, tc := range []struct {
				col  string
				desc bool
				want []string
			}{
				{"email", false, []string{"S-2", "S-3", "S-1"}},
				{"email", true, []string{"S-1", "S-3", "S-2"}},
				{"created", false, []string{"S-3", "S-2", "S-1"}},
				{"created", true, []string{"S-1", "S-2", "S-3"}},
			} {
				list, _, err := s.ListSubjects(ctx, idm.SubjectFilter{OrderCol: tc.col, Desc: tc.desc})
				require.NoError(t, err)
				assert.Equal(t, tc.want, sssids(list), "%s desc=%v", tc.col, tc.desc)
			}
		}},
		{"Search", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			createSubjects(t, s, searchData()...)
			for _, tc := range []struct {
				search string
				want   []string
			}{
				{"", []string{"S-001", "S-002", "S-003", "S-006", "S-007", "S-008", "X-1980", "s-004"}},
				{"alice", []string{"S-001"}},
				{"ALICE (study", []string{"S-001"}},
				{"s-00", []string{"S-001", "S-002", "S-003", "S-006", "S-007", "S-008", "s-004"}},
				{"S-004", []string{"s-004"}},
				{"1980", []string{"S-001", "S-003", "X-1980"}},
				{"1980-05", []string{"S-001"}},
				{"05-17", nil},
				{"17", nil},
				{"1975-01-02t08", []string{"S-002"}},
				{"(", []string{"S-001"}},
				{")", []string{"S-001"}},
				{".", []string{"S-002", "s-004"}},
				{".*", []string{"s-004"}},
				{"[", []string{"S-003"}},
				{"[a", []string{"S-003"}},
				{"[a-z]", nil},
				{`\`, []string{"S-006"}},
				{`\d`, nil},
				{"^", []string{"S-006"}},
				{"^A", nil},
				{"$", []string{"S-006"}},
				{"+", []string{"S-006"}},
				{"?", []string{"S-006"}},
				{"|", []string{"S-007"}},
				{"a|b", nil},
				{"{2}", []string{"S-007"}},
				{"%", []string{"S-008"}},
				{"_", []string{"S-008"}},
				{"*", []string{"s-004"}},
				{"nobody", nil},
			} {
				list, total, err := s.ListSubjects(ctx, idm.SubjectFilter{Search: tc.search})
				require.NoError(t, err)
				assert.Equal(t, tc.want, sssids(list), "search %q", tc.search)
				assert.Equal(t, len(tc.want), total, "search %q", tc.search)
			}
		}},
		{"SearchFollowsWrites", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			mk := func(sssid, name, bday, site string) idm.Subject {
				sub := newSubject(sssid)
				sub.Name, sub.Bday, sub.Site = name, bday, site
				return sub
			}
			a, b, c := mk("S-100", "Alice Meier", "1980-01-02", ""), mk("S-200", "Bob Keller", "1975-06-07", "Basel"),
				mk("S-300", "Carol MEIER", "1966-03-04", "Zurich")
			createSubjects(t, s, a, b, c)
			type search struct {
				q     string
				sites []string
				want  []string
			}
			check := func(when string, searches ...search) {
				t.Helper()
				for _, sc := range searches {
					list, total, err := s.ListSubjects(ctx, idm.SubjectFilter{Search: sc.q, Sites: sc.sites})
					require.NoError(t, err)
					assert.Equal(t, sc.want, sssids(list), "%s: search %q in %v", when, sc.q, sc.sites)
					assert.Equal(t, len(sc.want), total, "%s: search %q in %v", when, sc.q, sc.sites)
				}
			}
			check("after creates",
				search{"meier", nil, []string{"S-100", "S-300"}},
				search{"Meier", []string{"Zurich"}, []string{"S-300"}},
				search{"keller", nil, []string{"S-200"}},
				search{"1980-01", nil, []string{"S-100"}},
				search{"s-2", nil, []string{"S-200"}},
				search{"me", nil, []string{"S-100", "S-300"}})
			a.Name = "Alice Huber"
			updateSubject(t, s, &a)
			c.Bday = "1990-03-04"
			updateSubject(t, s, &c)
			b.Email = "bob@example.org" // not a searched field
			updateSubject(t, s, &b)
			check("after updates",
				search{"meier", nil, []string{"S-300"}},
				search{"huber", nil, []string{"S-100"}},
				search{"1966", nil, nil},
				search{"1990-03", nil, []string{"S-300"}},
				search{"keller", nil, []string{"S-200"}},
				search{"me", nil, []string{"S-300"}})
			list, _, err := s.ListSubjects(ctx, idm.SubjectFilter{Search: "keller"})
			require.NoError(t, err)
			if assert.Len(t, list, 1) {
				assertSame(t, b, list[0], "the updated subject, not the one before")
			}
			c.Site = "Bern"
			updateSubject(t, s, &c)
			check("after a site move",
				search{"meier", []string{"Zurich"}, nil},
				search{"meier", []string{"Bern"}, []string{"S-300"}},
				search{"meier", []string{"Basel", "Bern"}, []string{"S-300"}},
				search{"meier", nil, []string{"S-300"}})
			require.NoError(t, s.DeleteSubject(ctx, "S-100"))
			check("after a delete",
				search{"huber", nil, nil},
				search{"s-1", nil, nil})
			d := mk("S-100", "Dora Meier", "1999-09-09", "Bern")
			createSubjects(t, s, d)
			check("after a new subject under a deleted SSSID",
				search{"meier", nil, []string{"S-100", "S-300"}},
				search{"huber", nil, nil},
				search{"dora", []string{"Bern"}, []string{"S-100"}})
			list, total, err := s.ListSubjects(ctx, idm.SubjectFilter{Search: "MEIER", OrderCol: "name", Desc: true, Limit: 1})
			require.NoError(t, err)
			assert.Equal(t, 2, total)
			assert.Equal(t, []string{"S-100"}, sssids(list), "Dora before Carol, descending")
			list, total, err = s.ListSubjects(ctx, idm.SubjectFilter{Search: "meier", OrderCol: "name", Offset: 1, Limit: 5})
			require.NoError(t, err)
			assert.Equal(t, 2, total)
			assert.Equal(t, []string{"S-100"}, sssids(list), "the second by name ascending")
		}},
		{"SearchManySubjects", func(t *testing.T, s idm.Store) {
			// More matches than one page, ordered by another column, with
			// deletes and renames among them.
			ctx := t.Context()
			var all []idm.Subject
			for i := range 60 {
				sub := newSubject(fmt.Sprintf("M-%03d", i))
				sub.Name = fmt.Sprintf("Name%02d %s", 59-i, []string{"Weber", "Wyss", "Graf"}[i%3])
				all = append(all, sub)
			}
			createSubjects(t, s, all...)
			for i := 0; i < 60; i += 12 {
				require.NoError(t, s.DeleteSubject(ctx, all[i].SSSID))
			}
			for _, i := range []int{6, 30} {
				all[i].Name = strings.Replace(all[i].Name, "Weber", "Graf", 1)
				updateSubject(t, s, &all[i])
			}
			var want []string // the remaining Webers by name, descending
			for i := 0; i < 60; i += 3 {
				if i%12 != 0 && i != 6 && i != 30 {
					want = append(want, all[i].SSSID)
				}
			}
			require.Len(t, want, 13)
			slices.Sort(want) // names descend as SSSIDs ascend
			for _, tc := range []struct{ offset, limit int }{{0, 0}, {0, 3}, {2, 4}, {9, 5}} {
				list, total, err := s.ListSubjects(ctx, idm.SubjectFilter{Search: "weber", OrderCol: "name", Desc: true, Offset: tc.offset, Limit: tc.limit})
				require.NoError(t, err)
				assert.Equal(t, len(want), total)
				end := len(want)
				if tc.limit > 0 {
					end = min(end, tc.offset+tc.limit)
				}
				assert.Equal(t, want[min(tc.offset, end):end], sssids(list), "offset %d limit %d", tc.offset, tc.limit)
			}
		}},
		{"SearchSortAndPage", func(t *testing.T, s idm.Store) {
			ctx := t.Context()
			createSubjects(t, s, searchData()...)
			list, total, err := s.ListSubjects(ctx, idm.SubjectFilter{Search: "S-00", OrderCol: "name", Desc: true, Offset: 1, Limit: 3})
			require.NoError(t, err)
			assert.Equal(t, 7, total)
			// Names descending: Heidi, Grace, Frank, Dave, Carol, Bob, Alice.
			assert.Equal(t, []string{"S-007", "S-006", "s-004"}, sssids(list))
			list, total, err = s.ListSubjects(ctx, idm.SubjectFilter{Search: "S-00", OrderCol: "name", Offset: 7, Limit: 3})
			require.NoError(t, err)
			assert.Equal(t, 7, total)
			assert.Empty(t, list)
		}},
	}
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// searchData returns subjects whose SSSIDs, names and birthdays hold
// characters that are special in regular expressions and LIKE patterns.
func searchData() []idm.Subject {
	mk := func(sssid, name, bday string) idm.Subject {
		s := newSubject(sssid)
		s.Name, s.Bday = name, bday
		s.Email = strings.ToLower(sssid) + "@05-17.example.org" // never searched
		return s
	}
	return []idm.Subject{
		mk("S-001", "Alice (Study A)", "1980-05-17"),
		mk("S-002", "Bob.Builder", "1975-01-02T08:00:00+01:00"),
		mk("S-003", "Carol [Admin]", "1980-12-24"),
		mk("s-004", "Dave .* Star", "2001-05-17"),
		mk("X-1980", "Eve", "1990-01-01"),
		mk("S-006", `Frank \back^slash$ plus+ why?`, "1955-03-03"),
		mk("S-007", "Grace |pipe{2}", "1966-06-06"),
		mk("S-008", "Heidi 100% under_score", "1977-07-07"),
	}
}

// sortData returns subjects with deliberate ties, empty values, zero times,
// mixed letter case and non-ASCII letters in every sortable column, created
// in no particular order.
func sortData() []idm.Subject {
	ids := []string{"S-07", "S-02", "s-01", "S-11", "S-05", "S-10", "A-9", "S-01", "S-13", "S-04", "S-12", "S-06", "z", "S-03"}
	names := []string{"alice", "Bob", "", "alice", "Émile", "bob", "Zoe"}
	bdays := []string{"1980-05-17", "1975-01-02T08:00:00+01:00", "1980-05-17", "2001-12-24", ""}
	emails := []string{"", "a@x.org", "B@x.org", "a@x.org"}
	created := []time.Time{at(time.Hour), {}, at(0)}
	changed := []time.Time{messy(time.Hour), at(time.Hour), {}, at(-time.Hour)}
	invited := []string{"", "2024-01-01", "2024-01-01T10:00:00+02:00", "2023-12-31"}
	consented := []string{"2024-02-01", "", ""}
	enrolled := []string{"", "2024-03-01", "2024-03-01", "2024-02-29", ""}
	withdrawn := []string{"", "", "", "2025-01-01"}
	out := make([]idm.Subject, len(ids))
	for i, id := range ids {
		out[i] = idm.Subject{
			ID:            idm.NewID(),
			SSSID:         id,
			Name:          names[i%len(names)],
			Bday:          bdays[i%len(bdays)],
			Email:         emails[i%len(emails)],
			Created:       created[i%len(created)],
			Changed:       changed[i%len(changed)],
			DateInvited:   invited[i%len(invited)],
			DateConsented: consented[i%len(consented)],
			DateEnrolled:  enrolled[i%len(enrolled)],
			DateWithdrawn: withdrawn[i%len(withdrawn)],
			Rev:           1,
		}
		if i%5 == 0 {
			out[i].Extra = extraOf(map[string]string{"n": fmt.Sprint(i)})
		}
	}
	return out
}

// sortedSSSIDs is the reference order of ListSubjects.
func sortedSSSIDs(subjects []idm.Subject, col string, desc bool) []string {
	sorted := slices.Clone(subjects)
	slices.SortFunc(sorted, func(a, b idm.Subject) int {
		c := compareColumn(a, b, col)
		if desc {
			c = -c
		}
		if c != 0 {
			return c
		}
		return strings.Compare(a.SSSID, b.SSSID)
	})
	return sssids(sorted)
}

func compareColumn(a, b idm.Subject, col string) int {
	switch col {
	case "", "sssid":
		return strings.Compare(a.SSSID, b.SSSID)
	case "name":
		return strings.Compare(a.Name, b.Name)
	case "bday":
		return strings.Compare(a.Bday, b.Bday)
	case "email":
		return strings.Compare(a.Email, b.Email)
	case "created":
		return idm.Timestamp(a.Created).Compare(idm.Timestamp(b.Created))
	case "changed":
		return idm.Timestamp(a.Changed).Compare(idm.Timestamp(b.Changed))
	case "date_invited":
		return strings.Compare(a.DateInvited, b.DateInvited)
	case "date_consented":
		return strings.Compare(a.DateConsented, b.DateConsented)
	case "date_enrolled":
		return strings.Compare(a.DateEnrolled, b.DateEnrolled)
	case "date_withdrawn":
		return strings.Compare(a.DateWithdrawn, b.DateWithdrawn)
	}
	panic("storetest: unknown column " + col)
}
