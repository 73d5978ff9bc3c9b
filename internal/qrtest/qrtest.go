// Package qrtest reads QR codes back in tests: it decodes a PNG with an
// independent decoder (github.com/makiuchi-d/gozxing, a port of ZXing), so
// that a test of a drawn code checks what a reader gets, not what the
// encoder meant to draw.
//
// [Decode] first searches the image for the code, as a camera image is
// searched. ZXing's search is known to stumble over some perfectly sharp,
// synthetic images, where a run of data modules passes for a finder pattern
// (zxing/zxing#410, #1192; camera images of the same code read fine): for
// one such link JWT it fails at level M, with go-qrcode's image and with
// boombuler's alike. Decode then reads the image as a pure barcode (ZXing's
// PURE_BARCODE hint: the code alone, upright, on its quiet zone), which
// still checks every module, the format and version information and the
// error correction, and reports that it did in [Code.Pure].
package qrtest

import (
	"bytes"
	"fmt"
	"image/png"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

// Code is what a QR code holds.
type Code struct {
	Text string
	// Level is the error correction level it was written with: "L", "M",
	// "Q" or "H".
	Level string
	// Pure is set when the code was read as a pure barcode, after the
	// search for it failed (see the package documentation).
	Pure bool
}

// Decode decodes the QR code in the PNG image b.
func Decode(b []byte) (Code, error) {
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return Code{}, fmt.Errorf("qrtest: not a PNG: %w", err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return Code{}, fmt.Errorf("qrtest: %w", err)
	}
	var c Code
	res, searchErr := qrcode.NewQRCodeReader().Decode(bmp, nil)
	if searchErr != nil {
		var err error
		res, err = qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
		if err != nil {
			return Code{}, fmt.Errorf("qrtest: no QR code read: %w (searched: %v)", err, searchErr)
		}
		c.Pure = true
	}
	c.Text = res.GetText()
	if l, ok := res.GetResultMetadata()[gozxing.ResultMetadataType_ERROR_CORRECTION_LEVEL]; ok {
		c.Level = fmt.Sprint(l)
	}
	return c, nil
}
