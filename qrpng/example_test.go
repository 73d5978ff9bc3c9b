package qrpng_test

import (
	"bytes"
	"fmt"
	"image/png"

	"github.com/c3-pro/idm/qrpng"
)

func ExampleEncode() {
	b, err := qrpng.Encode("otpauth://totp/idm:alice%40example.org?issuer=idm&secret=JBSWY3DPEHPK3PXP",
		qrpng.WithModuleSize(6))
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		fmt.Println(err)
		return
	}
	// Version 5 (37 modules) plus a quiet zone of 4 on each side, 6 px each.
	fmt.Printf("%d×%d pixels\n", cfg.Width, cfg.Height)
	// Output: 270×270 pixels
}
