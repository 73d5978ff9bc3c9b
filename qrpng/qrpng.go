// Package qrpng draws QR codes as PNG images, for enrolment links and
// authenticator (TOTP) keys.
//
// The QR encoding itself (mode, version, error correction, masking) is
// github.com/yeqown/go-qrcode/v2's; this package only draws the module
// matrix that library computes, as black squares on white, with the quiet
// zone the QR standard asks for around it. The image is a two-colour
// paletted PNG whose modules are whole pixels, so that it scales without
// blur when printed.
package qrpng

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"

	qrcode "github.com/yeqown/go-qrcode/v2"
)

// QuietZone is the width of the light border around the code, in modules
// (the QR standard's minimum).
const QuietZone = 4

// DefaultModuleSize is the size of one module in pixels unless an option
// says otherwise: a link JWT (version 14 or so at level M) then makes an
// image of about 700 pixels, which prints sharply at a few centimetres.
const DefaultModuleSize = 8

// Limits of the options.
const (
	MaxModuleSize = 32   // pixels per module
	MaxMinWidth   = 4096 // pixels
)

// ErrTooLong is wrapped by the error of [Encode] for a text that no QR code
// version holds at the chosen error correction level.
var ErrTooLong = errors.New("qrpng: text too long for a QR code")

// Level is a QR error correction level. Only the levels that survive
// ordinary print and camera damage are offered: M and above.
type Level int

// Error correction levels: the share of the code that may be damaged and
// still read.
const (
	LevelM Level = iota // 15%; the default
	LevelQ              // 25%
	LevelH              // 30%
)

// Option configures [Encode].
type Option func(*options)

type options struct {
	level      Level
	moduleSize int
	minWidth   int
}

// WithLevel sets the error correction level (default [LevelM]).
func WithLevel(l Level) Option { return func(o *options) { o.level = l } }

// WithModuleSize sets the size of one module in pixels, 1 to
// [MaxModuleSize] (default [DefaultModuleSize]; 4 or more prints well).
func WithModuleSize(px int) Option { return func(o *options) { o.moduleSize = px } }

// WithMinWidth makes the image at least px pixels wide (and high), up to
// [MaxMinWidth]: the module size grows, in whole pixels, until it is. It
// never shrinks the module size that [WithModuleSize] or the default sets.
func WithMinWidth(px int) Option { return func(o *options) { o.minWidth = px } }

// Encode returns a PNG image of a QR code that holds text, with a quiet
// zone of [QuietZone] modules. It fails with an error that wraps
// [ErrTooLong] when text does not fit, and with another error for an empty
// text or an option out of range.
func Encode(text string, opts ...Option) ([]byte, error) {
	o := options{level: LevelM, moduleSize: DefaultModuleSize}
	for _, opt := range opts {
		opt(&o)
	}
	var ec qrcode.EncodeOption
	switch o.level {
	case LevelM:
		ec = qrcode.WithErrorCorrectionLevel(qrcode.ErrorCorrectionMedium)
	case LevelQ:
		ec = qrcode.WithErrorCorrectionLevel(qrcode.ErrorCorrectionQuart)
	case LevelH:
		ec = qrcode.WithErrorCorrectionLevel(qrcode.ErrorCorrectionHighest)
	default:
		return nil, fmt.Errorf("qrpng: unknown error correction level %d", o.level)
	}
	if o.moduleSize < 1 || o.moduleSize > MaxModuleSize {
		return nil, fmt.Errorf("qrpng: module size %d is not between 1 and %d pixels", o.moduleSize, MaxModuleSize)
	}
	if o.minWidth < 0 || o.minWidth > MaxMinWidth {
		return nil, fmt.Errorf("qrpng: minimum width %d is not between 0 and %d pixels", o.minWidth, MaxMinWidth)
	}
	if text == "" {
		return nil, errors.New("qrpng: empty text")
	}
	qr, err := qrcode.NewWith(text, ec)
	if err != nil {
		// The library's errors are not wrapped values; a text too long
		// for every version fails version selection.
		if strings.Contains(err.Error(), "version") {
			return nil, fmt.Errorf("%w (%d bytes): %v", ErrTooLong, len(text), err)
		}
		return nil, fmt.Errorf("qrpng: encoding: %v", err)
	}
	var m matrix
	if err := qr.Save(&m); err != nil {
		return nil, fmt.Errorf("qrpng: %w", err)
	}
	return m.png(o)
}

// matrix is a [qrcode.Writer] that keeps the module matrix it is given.
type matrix struct{ bits [][]bool } // bits[y][x]: dark

// Write implements [qrcode.Writer].
func (m *matrix) Write(mat qrcode.Matrix) error {
	if mat.Width() != mat.Height() || mat.Width() == 0 {
		return fmt.Errorf("qrpng: the encoder gave a %d×%d matrix", mat.Width(), mat.Height())
	}
	m.bits = mat.Bitmap()
	return nil
}

// Close implements [qrcode.Writer].
func (m *matrix) Close() error { return nil }

var palette = color.Palette{color.Gray{Y: 0xff}, color.Gray{Y: 0}} // light, dark

// png draws the matrix: every module a square of whole pixels.
func (m *matrix) png(o options) ([]byte, error) {
	modules := len(m.bits) + 2*QuietZone
	size := o.moduleSize
	for modules*size < o.minWidth {
		size++
	}
	side := modules * size
	img := image.NewPaletted(image.Rect(0, 0, side, side), palette) // all light
	for y, row := range m.bits {
		for x, dark := range row {
			if !dark {
				continue
			}
			x0, y0 := (x+QuietZone)*size, (y+QuietZone)*size
			for py := y0; py < y0+size; py++ {
				line := img.Pix[py*img.Stride+x0 : py*img.Stride+x0+size]
				for i := range line {
					line[i] = 1
				}
			}
		}
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("qrpng: writing the PNG: %w", err)
	}
	return buf.Bytes(), nil
}
