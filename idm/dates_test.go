package idm

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestCheckDate(t *testing.T) {
	tests := []struct {
		field, value string
		ok           bool
	}{
		{"bday", "1980-05-17", true},
		{"bday", "1980-05-17T00:00:00+02:00", true},
		{"bday", "1900-01-01", true},
		{"bday", "2100-12-31T23:59:59Z", true},
		{"bday", "1899-12-31", false},
		{"bday", "2101-01-01", false},
		{"bday", "2100-12-31T23:59:59-05:00", true}, // the year as written counts
		{"date_consented", "2024-05-01T12:00:00+02:00", true},
		{"date_consented", "2024-05-01T12:00:00.645748Z", true},
		{"date_consented", "1800-01-01", true},
		{"date_consented", "2024-05-01T12:00:00", false},
		{"date_consented", "2024-05-01 12:00:00+02:00", false},
		{"date_consented", "2024-02-30", false},
		{"date_consented", "2023-02-29", false},
		{"date_consented", "2024-02-29", true},
		{"date_consented", "2024-5-1", false},
		{"date_consented", "01.05.2024", false},
		{"date_consented", " 2024-05-01", false},
		{"date_consented", "2024-05-01T24:00:00Z", false},
		{"date_consented", "2024-05-01T12:00:00+25:00", false},
		{"date_consented", "2024-05-01T12:00:00+24:00", false},
		{"date_consented", "2024-05-01T12:00:00+00:60", false},
		{"date_consented", "2024-05-01T12:00:00-23:59", true},
		{"date_consented", "2024-05-01T12:00:00,5Z", false},
		{"date_consented", "2024-05-01T1:00:00Z", false},
		{"date_consented", "2024-05-01T12:00:00+2:00", false},
		{"date_consented", "", false},
		{"date_consented", "yesterday", false},
	}
	for _, tt := range tests {
		t.Run(tt.field+"/"+tt.value, func(t *testing.T) {
			err := checkDate(tt.field, tt.value)
			if (err == nil) != tt.ok {
				t.Fatalf("checkDate(%q, %q) = %v, want ok=%v", tt.field, tt.value, err, tt.ok)
			}
			if err != nil && (StatusOf(err) != 400 || !strings.Contains(MessageOf(err), tt.field)) {
				t.Errorf("error %q (status %d) does not name the field", MessageOf(err), StatusOf(err))
			}
		})
	}
}

func TestSameDate(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"2024-05-01", "2024-05-01", true},
		{"2024-05-01T12:00:00+02:00", "2024-05-01T10:00:00Z", true},
		{"2024-05-01T12:00:00+02:00", "2024-05-01T10:00:00.000Z", true},
		{"2024-05-01", "2024-05-01T00:00:00Z", true},
		{"2024-05-01", "2024-05-02", false},
		{"junk", "junk", true},
		{"junk", "2024-05-01", false},
		{"2024-05-01", "", false},
	}
	for _, tt := range tests {
		if got := sameDate(tt.a, tt.b); got != tt.want {
			t.Errorf("sameDate(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// rfc3339Grammar is RFC 3339's full-date and date-time (section 5.6, with
// an upper-case T and Z, as the API takes them): offsets at most ±23:59.
var rfc3339Grammar = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))?$`)

// FuzzDate checks the date validator: it never panics, accepts only what
// parses, names the field in its errors, and every accepted value denotes
// an instant that survives formatting and parsing again.
func FuzzDate(f *testing.F) {
	for _, s := range []string{"1980-05-17", "2024-05-01T12:00:00+02:00", "2024-05-01T12:00:00.123456789Z", "2024-02-30", "9999-12-31T23:59:59-23:59", "", "T", "0000-00-00",
		"2024-05-01T12:00:00+24:00", "2024-05-01T12:00:00+00:60", "2024-05-01T12:00:00,5Z", "2024-05-01T1:00:00Z", "2024-05-01T12:00:00.Z", "2024-05-01T12:00:00+0200"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, field := range []string{"bday", "date_invited"} {
			err := checkDate(field, s)
			if err != nil {
				if StatusOf(err) != 400 || !strings.Contains(MessageOf(err), "`"+field+"`") {
					t.Fatalf("checkDate(%q, %q): %v (status %d)", field, s, err, StatusOf(err))
				}
				continue
			}
			d, perr := ParseDate(s)
			if perr != nil {
				t.Fatalf("checkDate accepted %q but ParseDate fails: %v", s, perr)
			}
			if !rfc3339Grammar.MatchString(s) {
				t.Fatalf("checkDate accepted %q, which RFC 3339's grammar does not allow", s)
			}
			if field == "bday" && (d.Year() < MinBdayYear || d.Year() > MaxBdayYear) {
				t.Fatalf("bday %q accepted with year %d", s, d.Year())
			}
			again, perr := ParseDate(d.Format(time.RFC3339Nano))
			if perr != nil || !again.Equal(d) || !sameDate(s, d.Format(time.RFC3339Nano)) {
				t.Fatalf("%q: formatted as %q, parsed back as %v (%v)", s, d.Format(time.RFC3339Nano), again, perr)
			}
		}
	})
}
