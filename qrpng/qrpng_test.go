package qrpng_test

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/c3-pro/idm/internal/qrtest"
	"github.com/c3-pro/idm/qrpng"
)

// linkJWT returns a link token shaped like the ones idm mints: HS256 over
// the claims the C3-PRO app reads, about 400 bytes.
func linkJWT(t *testing.T) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"jti":       "65a1f0c2e4b7d9a3c5e7f901",
		"iss":       "https://idm.example.org/",
		"aud":       "https://idm.example.org",
		"sub":       "Maria-Theresia Müller-Lüdenscheidt",
		"birthdate": "1957-03-14",
		"iat":       time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC).Unix(),
		"exp":       time.Date(2027, 12, 3, 9, 0, 0, 0, time.UTC).Unix(),
	})
	s, err := tok.SignedString([]byte("a link secret as compiled into the app build"))
	require.NoError(t, err)
	return s
}

const otpauth = "otpauth://totp/idm:coordinator%40example.org?algorithm=SHA1&digits=6&issuer=idm&period=30&secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

func decodeImage(t *testing.T, b []byte) *image.Paletted {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	require.NoError(t, err)
	p, ok := img.(*image.Paletted)
	require.True(t, ok, "a paletted PNG, got %T", img)
	return p
}

func TestEncodeReadsBack(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		opts       []qrpng.Option
		level      string
	}{
		{"link JWT", linkJWT(t), nil, "M"},
		{"otpauth URI", otpauth, nil, "M"},
		{"level Q", otpauth, []qrpng.Option{qrpng.WithLevel(qrpng.LevelQ)}, "Q"},
		{"level H", otpauth, []qrpng.Option{qrpng.WithLevel(qrpng.LevelH)}, "H"},
		{"small modules", linkJWT(t), []qrpng.Option{qrpng.WithModuleSize(4)}, "M"},
		{"UTF-8 text", "Zürich · 東京 · Αθήνα", nil, "M"},
		{"digits", "12345678901234567890", nil, "M"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := qrpng.Encode(tc.text, tc.opts...)
			require.NoError(t, err)
			got, err := qrtest.Decode(b)
			require.NoError(t, err)
			assert.Equal(t, tc.text, got.Text)
			assert.Equal(t, tc.level, got.Level)
			if got.Pure {
				t.Logf("read as a pure barcode (the search for it failed; see qrtest)")
			}
		})
	}
}

// TestGeometry checks the quiet zone and the module size: the image is a
// whole number of modules, its outer 4 modules are light, and the
// finder pattern's dark corner module starts right inside them.
func TestGeometry(t *testing.T) {
	const quiet = 4 // the QR standard's minimum quiet zone, in modules
	require.Equal(t, quiet, qrpng.QuietZone)
	text := linkJWT(t)
	t.Logf("link JWT: %d bytes", len(text))
	for _, tc := range []struct {
		name     string
		opts     []qrpng.Option
		module   int // expected pixels per module
		minWidth int
	}{
		{"default", nil, qrpng.DefaultModuleSize, 0},
		{"module size 5", []qrpng.Option{qrpng.WithModuleSize(5)}, 5, 0},
		{"min width 1000", []qrpng.Option{qrpng.WithMinWidth(1000)}, 0, 1000},
		{"min width below default", []qrpng.Option{qrpng.WithMinWidth(10)}, qrpng.DefaultModuleSize, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := qrpng.Encode(text, tc.opts...)
			require.NoError(t, err)
			img := decodeImage(t, b)
			w, h := img.Bounds().Dx(), img.Bounds().Dy()
			require.Equal(t, w, h, "square")
			// Find the module size from the top-left finder pattern: its
			// 7×7 dark border starts at (quiet, quiet) modules.
			first := -1
			for x := range w {
				if img.ColorIndexAt(x, x) != 0 {
					first = x
					break
				}
			}
			require.Positive(t, first, "a dark pixel on the diagonal")
			require.Zero(t, first%quiet, "the quiet zone is whole modules")
			module := first / quiet
			if tc.module != 0 {
				require.Equal(t, tc.module, module, "pixels per module")
			}
			if tc.minWidth != 0 {
				require.GreaterOrEqual(t, w, tc.minWidth)
				require.Less(t, w-w/module, tc.minWidth, "the smallest module size that reaches the width")
			}
			require.Zero(t, w%module, "a whole number of modules")
			modules := w / module
			require.Zero(t, (modules-2*quiet-17)%4, "%d modules are a QR version plus the quiet zone", modules)
			border := quiet * module
			for i := range w {
				for j := range border {
					for _, p := range [][2]int{{i, j}, {j, i}, {i, w - 1 - j}, {w - 1 - j, i}} {
						if img.ColorIndexAt(p[0], p[1]) != 0 {
							t.Fatalf("dark pixel %v in the quiet zone", p)
						}
					}
				}
			}
			// Only pure black and white.
			require.Len(t, img.Palette, 2)
		})
	}
}

func TestEncodeTooLong(t *testing.T) {
	long := strings.Repeat("x", 2332) // one byte more than version 40-M holds
	_, err := qrpng.Encode(long)
	require.ErrorIs(t, err, qrpng.ErrTooLong)
	_, err = qrpng.Encode(long[:2331])
	require.NoError(t, err, "the largest text that fits")
	_, err = qrpng.Encode(long[:2331], qrpng.WithLevel(qrpng.LevelH))
	require.ErrorIs(t, err, qrpng.ErrTooLong, "a higher level holds less")
}

func TestEncodeRefusesBadInput(t *testing.T) {
	for name, tc := range map[string]struct {
		text string
		opts []qrpng.Option
	}{
		"empty text":         {"", nil},
		"module size 0":      {"x", []qrpng.Option{qrpng.WithModuleSize(0)}},
		"module size 33":     {"x", []qrpng.Option{qrpng.WithModuleSize(qrpng.MaxModuleSize + 1)}},
		"negative min width": {"x", []qrpng.Option{qrpng.WithMinWidth(-1)}},
		"min width too big":  {"x", []qrpng.Option{qrpng.WithMinWidth(qrpng.MaxMinWidth + 1)}},
		"unknown level":      {"x", []qrpng.Option{qrpng.WithLevel(7)}},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := qrpng.Encode(tc.text, tc.opts...)
			require.Error(t, err)
			require.False(t, errors.Is(err, qrpng.ErrTooLong))
			require.Nil(t, b)
		})
	}
}
