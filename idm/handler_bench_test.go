package idm_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/memstore"
)

// BenchmarkListSubjectsPage50 lists a page of 50 subjects, sorted by name,
// from the middle of 10 000 (every third with an established link), through
// the handler.
func BenchmarkListSubjectsPage50(b *testing.B) {
	b.Run("memstore", func(b *testing.B) { benchListSubjects(b, memstore.New()) })
}

// benchListSubjects fills store with 10 000 subjects and measures GET
// /subject for a page of 50 through the handler.
func benchListSubjects(b *testing.B, store idm.HandlerStore) {
	ctx := b.Context()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 10000 {
		s := idm.Subject{
			ID: idm.NewID(), SSSID: fmt.Sprintf("S-%05d", i), Name: fmt.Sprintf("Subject %d", (i*7919)%10000),
			Bday: "1980-05-17", DateConsented: "2024-05-01", Created: base, Changed: base,
		}
		if err := store.CreateSubject(ctx, s); err != nil {
			b.Fatal(err)
		}
		if i%3 == 0 {
			l := idm.Link{ID: idm.NewID(), SSSID: s.SSSID, Created: base, Changed: base, Exp: base.Add(24 * time.Hour).Unix(), JWTHash: "x"}
			if err := store.CreateLink(ctx, l); err != nil {
				b.Fatal(err)
			}
			if _, err := store.EstablishLink(ctx, l.ID, fmt.Sprintf("P-%d", i), "urn:p", base.Add(time.Hour)); err != nil {
				b.Fatal(err)
			}
		}
	}
	h, err := idm.NewHandler(idm.Config{Store: store, LinkTokens: &hmacLinkTokens{secret: []byte("bench")}, Authenticate: testAuth().Require})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequestWithContext(ctx, "GET", "/subject?offset=5000&perpage=50&ordercol=name&orderdir=DESC", nil)
	req.Header.Set("Authorization", "JWT "+staffToken)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}
