package archtest

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/c3-pro/idm"

// rules maps a package (relative to the module; a trailing "/..." covers its
// subpackages) to the non-standard-library imports it may have, with the same
// notation. Packages of the module that match no rule fail the test, so a new
// package must be placed in the table on purpose.
var rules = []struct {
	pkg   string
	allow []string
}{
	{"idm", []string{"golang.org/x/text/..."}},
	{"idm/ngram", nil},
	{"idm/storetest", []string{"idm", "github.com/stretchr/testify/..."}},
	{"idm/memstore", []string{"idm", "idm/ngram"}},
	{"auth/...", []string{"idm", "auth/...", "qrpng", "github.com/golang-jwt/jwt/v5/...", "github.com/pquerna/otp/...", "golang.org/x/crypto/...", "golang.org/x/time/...", "golang.org/x/text/..."}},
	{"users/...", []string{"idm", "auth", "users/..."}},
	{"resetflow/...", []string{"idm", "auth", "resetflow/...", "github.com/jordan-wright/email"}},
	// The console is on the top handler floor: it calls the API handler
	// in-process and never names a store.
	{"console", []string{"idm", "auth"}},
	{"mongostore/...", []string{"idm", "mongostore/...", "go.mongodb.org/mongo-driver/v2/..."}},
	{"boltstore/...", []string{"idm", "idm/ngram", "boltstore/...", "go.etcd.io/bbolt/..."}},
	{"internal/testmongo", []string{"github.com/FerretDB/FerretDB/...", "go.mongodb.org/mongo-driver/v2/..."}},
	{"internal/archtest", nil},
	{"internal/testclock", nil},
	// qrpng draws QR codes; the encoding is go-qrcode's. idm does not
	// import it: hosts give idm.Config.QRCode (qrpng.Encode in idmd).
	{"qrpng", []string{"github.com/yeqown/go-qrcode/v2/..."}},
	{"internal/qrtest", []string{"github.com/makiuchi-d/gozxing/..."}},
	{"migrate/...", []string{"idm", "go.mongodb.org/mongo-driver/v2/..."}},
	{"auditlog/...", []string{"idm", "golang.org/x/mod/..."}},
	{"internal/browsertest", []string{"github.com/chromedp/..."}},
	{"internal/smtptest", []string{"github.com/emersion/..."}},
	{"cmd/...", []string{"..."}},
	{"examples/...", []string{"...", "!cmd/..."}},
}

type listedPackage struct {
	ImportPath string
	Standard   bool
	Imports    []string
}

func TestImportDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	sawCore := false
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		sawCore = sawCore || p.ImportPath == module+"/idm"
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		allow, ok := allowedFor(rel)
		if !ok {
			t.Errorf("package %s is not in the dependency table of internal/archtest", p.ImportPath)
			continue
		}
		for _, imp := range p.Imports {
			if isStandard(imp) {
				continue
			}
			if !allowed(allow, imp) {
				t.Errorf("%s imports %s, which ARCHITECTURE.md does not allow", p.ImportPath, imp)
			}
		}
	}
	if !sawCore {
		t.Fatalf("go list did not list %s/idm", module)
	}
}

func TestRules(t *testing.T) {
	for _, tc := range []struct {
		pkg, imp string
		want     bool
	}{
		{"idm", module + "/auth", false},
		{"idm", "go.etcd.io/bbolt", false},
		{"idm", module + "/qrpng", false},
		{"auth", module + "/qrpng", true},
		{"auth", module + "/idm", true},
		{"auth", module + "/boltstore", false},
		{"users", module + "/resetflow", false},
		{"boltstore", module + "/auth", false},
		{"examples/embed", module + "/boltstore", true},
		{"examples/embed", module + "/cmd/idmd", false},
		{"cmd/idmd", "github.com/prometheus/client_golang/prometheus", true},
	} {
		allow, ok := allowedFor(tc.pkg)
		if !ok {
			t.Fatalf("no rule for %s", tc.pkg)
		}
		if got := allowed(allow, tc.imp); got != tc.want {
			t.Errorf("%s importing %s: allowed=%v, want %v", tc.pkg, tc.imp, got, tc.want)
		}
	}
}

func allowedFor(rel string) ([]string, bool) {
	for _, r := range rules {
		if match(r.pkg, rel) {
			return r.allow, true
		}
	}
	return nil, false
}

// allowed reports whether imp is allowed by the patterns; a pattern starting
// with "!" forbids what it matches. Module-relative patterns name packages of
// this module.
func allowed(patterns []string, imp string) bool {
	ok := false
	for _, p := range patterns {
		deny := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		target := imp
		if p != "..." && !strings.Contains(strings.SplitN(p, "/", 2)[0], ".") {
			// A module-relative pattern only matches packages of this module.
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			target = strings.TrimPrefix(imp, module+"/")
		}
		if match(p, target) {
			if deny {
				return false
			}
			ok = true
		}
	}
	return ok
}

func match(pattern, path string) bool {
	if pattern == "..." {
		return true
	}
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == base || strings.HasPrefix(path, base+"/")
	}
	return pattern == path
}

// isStandard reports whether an import path belongs to the standard library:
// its first element has no dot (this module's path does).
func isStandard(imp string) bool {
	first, _, _ := strings.Cut(imp, "/")
	return !strings.Contains(first, ".")
}
