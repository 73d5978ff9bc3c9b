package idm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestJSONVerbatimBytes checks the byte set of jsonVerbatim, byte by byte:
// exactly printable ASCII other than '"', '\\', '<', '>' and '&', and each
// of those written by encoding/json as it is.
func TestJSONVerbatimBytes(t *testing.T) {
	for c := range 256 {
		s := string([]byte{byte(c)})
		want := c >= 0x20 && c <= 0x7e && !strings.ContainsRune(`"\<>&`, rune(c))
		if got := jsonVerbatim(s); got != want {
			t.Errorf("jsonVerbatim(%q) = %v, want %v", s, got, want)
		}
		if !want {
			continue
		}
		enc, err := json.Marshal(s)
		if err != nil || string(enc) != `"`+s+`"` {
			t.Errorf("encoding/json writes %q as %s (%v), not as it is", s, enc, err)
		}
	}
}

// fastPathStrings are strings around the fast path of subjectJSON.string:
// each byte class it leaves to encoding/json, alone and within printable
// ASCII at either end, multi-byte and invalid UTF-8, U+2028/U+2029.
func fastPathStrings() []string {
	out := []string{"", "a", "S-00042", "Subject 4711", "1980-05-17", "someone@example.org", " ~!#$%'()*+,-./:;=?@[]^_`{|}",
		strings.Repeat("x", 1000)}
	for _, special := range []string{
		`"`, `\`, "<", ">", "&", "\x00", "\x01", "\t", "\n", "\r", "\x1f", "\x7f",
		"é", "Zoë", "日本語", "😀", "\u2028", "\u2029", "\ufeff", "\ufffd",
		"\xff", "\xc3", "\xe2\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc0\xaf",
		"</script>", `\u0026`,
	} {
		out = append(out, special, "abc"+special, special+"abc", "ab"+special+"cd")
	}
	return out
}

// TestSubjectJSONString checks that strings are written exactly as
// encoding/json writes them, on and off the fast path.
func TestSubjectJSONString(t *testing.T) {
	check := func(t *testing.T, s string) {
		t.Helper()
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		j := newSubjectJSON(0)
		j.buf.WriteString("[")
		j.string(s)
		j.string(s) // the encoder of the slow path is reused
		if got := j.buf.String(); got != "["+string(want)+string(want) {
			t.Errorf("string(%q) = %s, want %s twice", s, got, want)
		}
	}
	for _, s := range fastPathStrings() {
		t.Run(fmt.Sprintf("%q", s), func(t *testing.T) { check(t, s) })
	}
	t.Run("random", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		alphabet := []string{"a", "Z", "0", " ", "~", `"`, `\`, "<", ">", "&", "\x00", "\x1f", "\x7f", "é", "\u2028", "\xff", "😀"}
		for range 20000 {
			var b strings.Builder
			for range rng.IntN(12) {
				b.WriteString(alphabet[rng.IntN(len(alphabet))])
			}
			check(t, b.String())
		}
	})
}

// TestRenderFastPathsAgree renders subjects whose fields hold the strings
// of fastPathStrings and times of every kind, alone and as a page, and
// compares them with encoding/json's rendering of the reference
// MarshalJSON (with the times of time.Time.Format).
func TestRenderFastPathsAgree(t *testing.T) {
	times := []time.Time{
		{}, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("W", -12*3600)),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 6, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2024, 2, 29, 13, 14, 15, 123456789, time.FixedZone("E", 5*3600+30*60+7)),
	}
	var subjects []Subject
	for i, s := range fastPathStrings() {
		subjects = append(subjects, Subject{
			SSSID: "S-" + s, Name: s, Bday: s, Email: s, DateInvited: s, DateConsented: s, DateEnrolled: s,
			DateWithdrawn: s, Created: times[i%len(times)], Changed: times[(i+3)%len(times)],
			Extra: map[string]json.RawMessage{"x": mustJSON(s)},
		})
	}
	reference := func(s Subject) string {
		t.Helper()
		r := s
		// The reference takes the times as time.Time.Format writes them.
		r.Created, r.Changed = time.Time{}, time.Time{}
		doc, err := json.Marshal(referenceSubjectDoc(r))
		if err != nil {
			t.Fatal(err)
		}
		var times []string
		for _, m := range []struct {
			key string
			t   time.Time
		}{{keyCreated, s.Created}, {keyChanged, s.Changed}} {
			if !m.t.IsZero() {
				v, _ := json.Marshal(m.t.UTC().Format(timeLayout))
				times = append(times, fmt.Sprintf("%q:%s", m.key, v))
			}
		}
		if len(times) == 0 {
			return string(doc)
		}
		// The times go after the dates and before the additional fields.
		i := bytes.Index(doc, []byte(`,"x":`))
		if i < 0 {
			t.Fatalf("no additional field in %s", doc)
		}
		return string(doc[:i]) + "," + strings.Join(times, ",") + string(doc[i:])
	}
	var page []string
	for _, s := range subjects {
		want := reference(s)
		page = append(page, want)
		if got := appendSubjectJSON(nil, s); string(got) != want {
			t.Errorf("subject %q\n got %s\nwant %s", s.Name, got, want)
		}
	}
	rec := httptest.NewRecorder()
	writeSubjectPage(rec, subjects, 7)
	if want := `{"data":[` + strings.Join(page, ",") + `],"total":7}` + "\n"; rec.Body.String() != want {
		t.Errorf("page\n got %s\nwant %s", rec.Body, want)
	}
}

// TestRenderedSize checks that renderedSize is the size of a subject that
// needs no escaping, plus one.
func TestRenderedSize(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for name, s := range map[string]Subject{
		"empty": {},
		"one":   {SSSID: "S-1"},
		"all": {SSSID: "S-1", Name: "A B", Bday: "1980-05-17", Email: "a@b", DateInvited: "2024-01-02",
			DateConsented: "2024-01-03", DateEnrolled: "2024-01-04", DateWithdrawn: "2024-01-05", Created: at, Changed: at,
			Extra: map[string]json.RawMessage{"a": json.RawMessage(`[1,{"b":null}]`), "zz": json.RawMessage(`"x"`)}},
		"times": {Created: at, Changed: at},
		"extra": {Extra: map[string]json.RawMessage{"k": json.RawMessage(`true`)}},
	} {
		t.Run(name, func(t *testing.T) {
			got := len(appendSubjectJSON(nil, s))
			want := got + 1
			if got == 2 {
				want = got // {} has no member, so no separator
			}
			if n := renderedSize(&s); n != want {
				t.Errorf("renderedSize = %d, the rendering has %d bytes", n, got)
			}
		})
	}
}

// FuzzRenderSubject renders a subject of fuzzed strings and times and
// compares it with encoding/json's rendering of the reference MarshalJSON,
// and checks that FormatTime agrees with time.Time.Format.
func FuzzRenderSubject(f *testing.F) {
	for _, s := range fastPathStrings() {
		f.Add(s, "Subject <1>", int64(1767225600), int64(123456789), int32(3600))
	}
	f.Add("S-1", "\u2028\xff", int64(-62167219200), int64(0), int32(-43200))
	f.Add("S-2", "", int64(253402300800), int64(999999999), int32(0))
	f.Fuzz(func(t *testing.T, sssid, name string, sec, nsec int64, offset int32) {
		at := time.Unix(sec, nsec).In(time.FixedZone("F", int(offset)))
		if got, want := FormatTime(at), at.UTC().Format(timeLayout); got != want {
			t.Fatalf("FormatTime(%v) = %q, want %q", at, got, want)
		}
		s := Subject{SSSID: sssid, Name: name, Email: name + sssid, Created: at, Changed: at.Add(time.Duration(nsec)),
			Extra: map[string]json.RawMessage{"n": mustJSON(name)}}
		want, err := json.Marshal(referenceSubjectDoc(s))
		if err != nil {
			t.Fatal(err)
		}
		if got := appendSubjectJSON(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("rendering\n got %s\nwant %s", got, want)
		}
	})
}

// TestFormatTime checks FormatTime and appendTime against
// time.Time.Format with the layout at the edges: years around the four
// digits of the fast path, the ends of months, days and years, fractions
// that truncate, locations other than UTC, monotonic readings.
func TestFormatTime(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string // "" for no pinned value
	}{
		{time.Date(2026, 11, 29, 12, 24, 5, 645748000, time.UTC), "2026-11-29T12:24:05.645748Z"},
		{time.Date(2026, 11, 29, 12, 24, 5, 0, time.UTC), "2026-11-29T12:24:05.000000Z"},
		{time.Date(2026, 11, 29, 12, 24, 5, 999999999, time.UTC), "2026-11-29T12:24:05.999999Z"},
		{time.Date(2026, 11, 29, 12, 24, 5, 999, time.UTC), "2026-11-29T12:24:05.000000Z"},
		{time.Date(2026, 11, 29, 12, 24, 5, 1000, time.UTC), "2026-11-29T12:24:05.000001Z"},
		{time.Date(2026, 1, 1, 0, 30, 0, 0, time.FixedZone("X", 3600)), "2025-12-31T23:30:00.000000Z"},
		{time.Date(2024, 2, 29, 23, 59, 59, 0, time.FixedZone("W", -14*3600-7)), "2024-03-01T14:00:06.000000Z"},
		{time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), "0000-01-01T00:00:00.000000Z"},
		{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), "0001-01-01T00:00:00.000000Z"},
		{time.Date(999, 9, 9, 9, 9, 9, 9000, time.UTC), "0999-09-09T09:09:09.000009Z"},
		{time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), "9999-12-31T23:59:59.999999Z"},
		{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), "10000-01-01T00:00:00.000000Z"},
		{time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("X", -3600)), "10000-01-01T00:00:00.000000Z"},
		{time.Date(0, 1, 1, 0, 30, 0, 0, time.FixedZone("X", 3600)), "-0001-12-31T23:30:00.000000Z"},
		{time.Date(-1, 6, 1, 0, 0, 0, 0, time.UTC), "-0001-06-01T00:00:00.000000Z"},
		{time.Date(-10000, 1, 2, 3, 4, 5, 6789, time.UTC), "-10000-01-02T03:04:05.000006Z"},
		{time.Date(123456, 1, 2, 3, 4, 5, 6789, time.UTC), "123456-01-02T03:04:05.000006Z"},
		{time.Unix(1<<62, 0), "146138514283-06-19T07:45:04.000000Z"},
		{time.Unix(-1<<62, 0), "-146138510344-07-14T16:14:56.000000Z"},
		{time.Unix(math.MaxInt64, 999999999), ""},
		{time.Unix(math.MinInt64, 0), ""},
		{time.Time{}, "0001-01-01T00:00:00.000000Z"},
		{time.Now(), ""},
		{time.Now().In(time.FixedZone("E", 13*3600+45*60)), ""},
		{time.Unix(0, 0).In(time.Local), "1970-01-01T00:00:00.000000Z"},
	}
	for _, tt := range tests {
		t.Run(tt.t.String(), func(t *testing.T) {
			want := tt.t.UTC().Format(timeLayout)
			if tt.want != "" && want != tt.want {
				t.Fatalf("the pinned value %q is not what time.Time.Format writes: %q", tt.want, want)
			}
			if got := FormatTime(tt.t); got != want {
				t.Errorf("FormatTime = %q, want %q", got, want)
			}
			if got := appendTime([]byte("p"), tt.t); string(got) != "p"+want {
				t.Errorf("appendTime = %q, want %q", got, "p"+want)
			}
			checkTimeDigits(t, tt.t)
		})
	}
}

// checkTimeDigits checks that appendTimeDigits writes what time.Time.Format
// does, or nothing, and only bytes that need no escaping.
func checkTimeDigits(t *testing.T, at time.Time) {
	t.Helper()
	want := at.UTC().Format(timeLayout)
	got, ok := appendTimeDigits([]byte("p"), at)
	year := at.UTC().Year()
	switch {
	case ok != (year >= 0 && year <= 9999):
		t.Errorf("appendTimeDigits of year %d reports %v", year, ok)
	case !ok && string(got) != "p":
		t.Errorf("appendTimeDigits of year %d appended %q", year, got)
	case ok && string(got) != "p"+want:
		t.Errorf("appendTimeDigits = %q, want %q", got, "p"+want)
	case ok && (strings.ContainsFunc(string(got[1:]), func(r rune) bool { return !strings.ContainsRune("0123456789-T:.Z", r) }) ||
		!jsonVerbatim(string(got))):
		t.Errorf("appendTimeDigits wrote %q", got)
	}
}

// TestFormatTimeRandom compares FormatTime with time.Time.Format for
// random instants in random fixed zones, most within the years 0 to 9999.
func TestFormatTimeRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const year0, year10000 = -62167219200, 253402300800 // Unix seconds
	for i := range 200000 {
		var sec int64
		switch i % 4 {
		case 0:
			sec = rng.Int64()
			if rng.IntN(2) == 0 {
				sec = -sec
			}
		case 1:
			sec = year0 + rng.Int64N(1000*86400) - 500*86400
		case 2:
			sec = year10000 + rng.Int64N(1000*86400) - 500*86400
		default:
			sec = year0 + rng.Int64N(year10000-year0)
		}
		at := time.Unix(sec, rng.Int64N(1e9)).In(time.FixedZone("R", rng.IntN(2*86400)-86400))
		if got, want := FormatTime(at), at.UTC().Format(timeLayout); got != want {
			t.Fatalf("FormatTime(%v) = %q, want %q", at, got, want)
		}
		checkTimeDigits(t, at)
	}
}

// FuzzFormatTime compares FormatTime with time.Time.Format.
func FuzzFormatTime(f *testing.F) {
	f.Add(int64(0), int64(0), int32(0))
	f.Add(int64(-62167219200), int64(999999999), int32(3600))
	f.Add(int64(253402300799), int64(999999999), int32(-3600))
	f.Add(int64(math.MaxInt64), int64(-1), int32(86399))
	f.Fuzz(func(t *testing.T, sec, nsec int64, offset int32) {
		at := time.Unix(sec, nsec).In(time.FixedZone("F", int(offset)))
		if got, want := FormatTime(at), at.UTC().Format(timeLayout); got != want {
			t.Fatalf("FormatTime(%v) = %q, want %q", at, got, want)
		}
		checkTimeDigits(t, at)
	})
}

// TestDeriveAllDates compares deriveAllDates with deriveDates of each
// subject, on random pages and links: withdrawn and established links,
// dates that do not parse, stored dates earlier and later, subjects
// without links, links of subjects not on the page, and a page that lists
// an SSSID twice.
func TestDeriveAllDates(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	date := func() string {
		switch rng.IntN(6) {
		case 0:
			return ""
		case 1:
			return "junk"
		case 2:
			return base.AddDate(0, 0, rng.IntN(30)).Format(dateLayout)
		default:
			return base.Add(time.Duration(rng.IntN(30*24)) * time.Hour).In(time.FixedZone("Z", 7200)).Format(time.RFC3339)
		}
	}
	for i := range 2000 {
		subjects := make([]Subject, rng.IntN(8))
		for k := range subjects {
			subjects[k] = Subject{SSSID: fmt.Sprintf("S-%d", rng.IntN(12)), DateEnrolled: date(), DateWithdrawn: date()}
		}
		if i%2 == 0 {
			// Unique SSSIDs, as stores give them.
			for k := range subjects {
				subjects[k].SSSID = fmt.Sprintf("S-%d", k)
			}
		}
		links := make([]Link, rng.IntN(16))
		for k := range links {
			links[k] = Link{SSSID: fmt.Sprintf("S-%d", rng.IntN(12)), WithdrawnOn: date()}
			if rng.IntN(3) > 0 {
				links[k].LinkedOn = base.Add(time.Duration(rng.IntN(30*24*60)) * time.Minute)
			}
		}
		want := make([]Subject, len(subjects))
		for k, s := range subjects {
			want[k] = deriveDates(s, links)
		}
		got := append([]Subject(nil), subjects...)
		deriveAllDates(got, links)
		for k := range want {
			if !reflect.DeepEqual(got[k], want[k]) {
				t.Fatalf("case %d, subject %d:\n got %+v\nwant %+v\nlinks %+v", i, k, got[k], want[k], links)
			}
		}
	}
}
