package idm_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/c3-pro/idm/idm"
)

func TestNormalizeUsername(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" for invalid
	}{
		{"ann@example.org", "ann@example.org"},
		{"Ann.Smith+Study@Example.ORG", "ann.smith+study@example.org"},
		{"  ann@example.org\t", "ann@example.org"},
		{"jürgen@bücher.example", "jürgen@bücher.example"},
		{"JU\u0308RGEN@example.org", "j\u00fcrgen@example.org"}, // NFC, lower case
		{"ann@localhost", "ann@localhost"},
		{strings.Repeat("a", 64) + "@" + strings.Repeat("b", 185) + ".org", strings.Repeat("a", 64) + "@" + strings.Repeat("b", 185) + ".org"},
		{strings.Repeat("a", 64) + "@" + strings.Repeat("b", 186) + ".org", ""},
		{"", ""},
		{"   ", ""},
		{"ann", ""},
		{"ann@", ""},
		{"@example.org", ""},
		{"ann@@example.org", ""},
		{"Ann <ann@example.org>", ""},
		{"<ann@example.org>", ""},
		{"ann@example.org (Ann)", ""},
		{`"ann smith"@example.org`, ""},
		{"ann@[192.0.2.1]", ""},
		{"ann smith@example.org", ""},
		{"ann@example.org, bob@example.org", ""},
		{"ann\n@example.org", ""},
		{"ann..smith@example.org", ""},
		{"ann@example..org", ""},
		{"\xff@example.org", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := idm.NormalizeUsername(tc.in)
			if tc.want == "" {
				if err == nil || !errors.Is(err, idm.ErrInvalid) {
					t.Errorf("NormalizeUsername(%q) = %q, %v; want an ErrInvalid", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("NormalizeUsername(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func FuzzNormalizeUsername(f *testing.F) {
	for _, s := range []string{"ann@example.org", "Ann <ann@example.org>", `"a b"@c.d`, "JU\u0308RGEN@example.org", "İ@example.org", "a@[1.2.3.4]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := idm.NormalizeUsername(s)
		if err != nil {
			if !errors.Is(err, idm.ErrInvalid) {
				t.Fatalf("NormalizeUsername(%q): error %v is not ErrInvalid", s, err)
			}
			return
		}
		if len(got) > idm.MaxUsernameBytes || !utf8.ValidString(got) || !strings.Contains(got, "@") {
			t.Fatalf("NormalizeUsername(%q) = %q", s, got)
		}
		if again, err := idm.NormalizeUsername(got); err != nil || again != got {
			t.Fatalf("NormalizeUsername is not idempotent on %q: %q, %v", got, again, err)
		}
	})
}
