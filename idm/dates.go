package idm

import (
	"errors"
	"fmt"
	"time"
)

// Birthday years the API accepts.
const (
	MinBdayYear = 1900
	MaxBdayYear = 2100
)

const dateLayout = "2006-01-02"

// ParseDate parses a date as the API takes it: an RFC 3339 full-date
// ("1980-05-17", midnight UTC) or date-time with a time-zone offset
// ("2024-05-01T12:00:00+02:00", fractional seconds allowed).
func ParseDate(s string) (time.Time, error) {
	if len(s) == len(dateLayout) {
		t, err := time.Parse(dateLayout, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("parse date %q: %w", s, err)
		}
		return t, nil
	}
	// time.Parse takes more than RFC 3339 allows (offsets such as +24:00
	// or +00:60, one-digit hours, a comma before the fraction): check the
	// shape first, and leave the calendar to time.Parse.
	if err := checkRFC3339(s); err != nil {
		return time.Time{}, fmt.Errorf("parse date %q: %w", s, err)
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse date %q: %w", s, err)
	}
	return t, nil
}

// checkRFC3339 checks that s has the shape of an RFC 3339 date-time
// (section 5.6): "YYYY-MM-DDTHH:MM:SS", optionally "." and one or more
// digits, then "Z" or a numeric offset "+HH:MM"/"-HH:MM" whose hour is at
// most 23 and whose minute is at most 59.
func checkRFC3339(s string) error {
	digits := func(i, n int) bool {
		if i+n > len(s) {
			return false
		}
		for _, c := range []byte(s[i : i+n]) {
			if c < '0' || c > '9' {
				return false
			}
		}
		return true
	}
	if !digits(0, 4) || len(s) < 20 || s[4] != '-' || !digits(5, 2) || s[7] != '-' || !digits(8, 2) || s[10] != 'T' ||
		!digits(11, 2) || s[13] != ':' || !digits(14, 2) || s[16] != ':' || !digits(17, 2) {
		return errors.New("not of the form YYYY-MM-DDTHH:MM:SS with an offset")
	}
	i := 19
	if s[i] == '.' {
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i+1 {
			return errors.New("no digits after the decimal point")
		}
		i = j
	}
	off := s[i:]
	if off == "Z" {
		return nil
	}
	if len(off) != 6 || (off[0] != '+' && off[0] != '-') || !digits(i+1, 2) || off[3] != ':' || !digits(i+4, 2) {
		return errors.New(`the offset must be "Z" or ±HH:MM`)
	}
	if h, m := (off[1]-'0')*10+off[2]-'0', (off[4]-'0')*10+off[5]-'0'; h > 23 || m > 59 {
		return fmt.Errorf("offset %s out of range (at most ±23:59)", off)
	}
	return nil
}

// checkDate validates the date s of the field with the given API name; for
// "bday" the year (as written) must be within [MinBdayYear, MaxBdayYear].
// It returns a 400 [*Error] that names the field and the value.
func checkDate(field, s string) error {
	t, err := ParseDate(s)
	if err != nil {
		return Wrap(ErrInvalid, fmt.Sprintf("invalid date in `%s`: %q is not an RFC 3339 date or date-time with offset", field, clip(s)), err)
	}
	if field == "bday" && (t.Year() < MinBdayYear || t.Year() > MaxBdayYear) {
		return E(ErrInvalid, fmt.Sprintf("invalid date in `bday`: %q, the year must be from %d to %d", clip(s), MinBdayYear, MaxBdayYear))
	}
	return nil
}

// sameDate reports whether a and b are the same date: equal strings, or
// parsable dates of the same instant.
func sameDate(a, b string) bool {
	if a == b {
		return true
	}
	ta, err := ParseDate(a)
	if err != nil {
		return false
	}
	tb, err := ParseDate(b)
	return err == nil && ta.Equal(tb)
}

// timeLayout is the one layout of the timestamps the server sets: RFC 3339
// with exactly six fractional digits (microseconds), so that whole seconds
// and trailing zeros are written out too. Times are shown in UTC, so it
// ends in "Z".
const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

// FormatTime renders a time the server set (a record's created and changed,
// a link's linked_on, an audit record's datetime, a user's
// password_changed) the way the API shows it: RFC 3339 in UTC with six
// fractional digits, e.g. "2026-11-29T12:24:05.645748Z" or
// "2026-11-29T12:24:05.000000Z".
func FormatTime(t time.Time) string {
	var a [len(timeLayout)]byte
	return string(appendTime(a[:0], t))
}

// appendTime appends [FormatTime] of t to b: t.UTC().Format(timeLayout).
func appendTime(b []byte, t time.Time) []byte {
	if tb, ok := appendTimeDigits(b, t); ok {
		return tb
	}
	return t.UTC().AppendFormat(b, timeLayout)
}

// appendTimeDigits appends [FormatTime] of t to b, digit by digit, and
// reports true, when the year of t in UTC is from 0 to 9999, which the
// layout shows as four digits without a sign; for any other year it
// returns b unchanged and false. What it appends is made of the digits
// 0-9, '-', 'T', ':', '.' and 'Z' only. Fractional seconds are truncated
// to microseconds, as the layout's ".000000" does.
func appendTimeDigits(b []byte, t time.Time) ([]byte, bool) {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return b, false
	}
	hour, minute, sec := t.Clock()
	us := t.Nanosecond() / 1000
	return append(b,
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+int(month)/10), byte('0'+int(month)%10), '-',
		byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':',
		byte('0'+minute/10), byte('0'+minute%10), ':',
		byte('0'+sec/10), byte('0'+sec%10), '.',
		byte('0'+us/100000), byte('0'+us/10000%10), byte('0'+us/1000%10),
		byte('0'+us/100%10), byte('0'+us/10%10), byte('0'+us%10), 'Z'), true
}
