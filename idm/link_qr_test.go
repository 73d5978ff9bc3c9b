package idm_test

import (
	"net/http"
	"testing"

	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/internal/qrtest"
)

// TestLinkQRCode checks GET /link/{jti}/qr.png over real HTTP on every
// store: the PNG decodes to the very JWT GET /link/{jti}/jwt serves, minted
// once with one audit record whichever route mints it; the roles and sites
// of /jwt apply, and errors are JSON.
func TestLinkQRCode(t *testing.T) {
	onEachStore(t, func(t *testing.T, newStore newStoreFunc) {
		m := newMatrixEnv(t, newStore(t))
		ctx := t.Context()
		link := m.seed(t, "A-qr", "A")
		otherSite := m.seed(t, "B-qr", "B")

		qr := func(role, jti string) response {
			t.Helper()
			return m.as(t, role, "GET", "/link/"+jti+"/qr.png", "")
		}
		decode := func(r response) string {
			t.Helper()
			if r.status != http.StatusOK {
				t.Fatalf("status %d, want 200; body %.300s", r.status, r.body)
			}
			for name, want := range map[string]string{
				"Content-Type": "image/png", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
			} {
				if got := r.header.Get(name); got != want {
					t.Errorf("%s %q, want %q", name, got, want)
				}
			}
			c, err := qrtest.Decode(r.body)
			if err != nil {
				t.Fatal(err)
			}
			if c.Level != "M" {
				t.Errorf("error correction level %q, want M", c.Level)
			}
			return c.Text
		}

		// The QR code mints the JWT; /jwt then serves the same one, and so
		// does the QR code again.
		minted := decode(qr("coordinatorA", link))
		jwt := m.as(t, "coordinatorA", "GET", "/link/"+link+"/jwt", "")
		if jwt.status != http.StatusOK || string(jwt.body) != minted {
			t.Fatalf("GET /jwt: %d %.300s; the QR code holds %s", jwt.status, jwt.body, minted)
		}
		if again := decode(qr("admin", link)); again != minted {
			t.Errorf("second QR code holds %s, want %s", again, minted)
		}
		if l, err := m.store.FindLink(ctx, link); err != nil || l.JWT != minted {
			t.Errorf("stored JWT %q (%v), want the QR code's", l.JWT, err)
		}
		audits, err := m.store.AuditsFor(ctx, link)
		if err != nil {
			t.Fatal(err)
		}
		var mints []idm.AuditEvent
		for _, e := range audits {
			if e.Action == "create JWT" {
				mints = append(mints, e)
			}
		}
		if len(mints) != 1 || mints[0].ActorID != m.ids["coordinatorA"] {
			t.Errorf("audit records of minting: %+v; want one, by coordinatorA", mints)
		}

		// A second link, minted by /jwt first, shows in the QR code as is.
		link2 := m.seed(t, "A-qr-2", "A")
		viaJWT := string(m.as(t, "coordinatorA", "GET", "/link/"+link2+"/jwt", "").body)
		if got := decode(qr("coordinatorA", link2)); got != viaJWT {
			t.Errorf("QR code of a link minted by /jwt holds %s, want %s", got, viaJWT)
		}

		// Refusals: as /jwt, as JSON.
		for _, c := range []struct {
			name   string
			r      response
			status int
			msg    string
		}{
			{"monitor", qr("monitorA", link), http.StatusForbidden, idm.MsgForbidden},
			{"auditor", qr("auditorA", link), http.StatusForbidden, idm.MsgForbidden},
			{"another site", qr("coordinatorA", otherSite), http.StatusNotFound, "Not Found"},
			{"unknown link", qr("coordinatorA", "0123456789abcdef01234567"), http.StatusNotFound, "Not Found"},
			{"no token", m.do(t, "GET", "/link/"+link+"/qr.png", ""), http.StatusUnauthorized, "Authorization Required"},
		} {
			if c.r.status != c.status || c.r.message() != c.msg || c.r.header.Get("Content-Type") != "application/json" {
				t.Errorf("%s: %d %q (%s), want %d %q as JSON", c.name, c.r.status, c.r.message(), c.r.header.Get("Content-Type"), c.status, c.msg)
			}
		}
		if l, err := m.store.FindLink(ctx, otherSite); err != nil || l.JWT != "" {
			t.Errorf("another site's link got a JWT (%v)", err)
		}

		// A revoked link has no QR code.
		m.must(t, http.StatusNoContent, "DELETE", "/link/"+link, "")
		if r := qr("coordinatorA", link); r.status != http.StatusConflict || r.message() != "this link has been revoked" {
			t.Errorf("revoked link: %d %q, want 409", r.status, r.message())
		}
	})
}
