package idm_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/c3-pro/idm/idm"
)

// BenchmarkListSubjectsPage50 lists a page of 50 subjects, sorted by name,
// from the middle of 10 000 (every third with an established link), through
// the handler, on every store kind (memstore, boltstore, and mongostore on
// a MongoDB-wire server). Each sub-benchmark fills its store first, through
// the store's Create methods: on boltstore every write is synced to disk,
// and on the embedded FerretDB every write takes a millisecond or more, so
// that takes a minute or so. FerretDB also scans whole collections for a
// page (about a second per page), so run it with -benchtime=3x there:
//
//	go test -run x -bench 'ListSubjectsPage50/mongostore' -benchtime=3x ./idm/
func BenchmarkListSubjectsPage50(b *testing.B) {
	for _, k := range storeKinds() {
		b.Run(k.name, func(b *testing.B) { benchListSubjects(b, k.setup(b)(b)) })
	}
}

// benchListSubjects fills store with 10 000 subjects through its Create
// methods and measures GET /subject for a page of 50 through the handler.
func benchListSubjects(b *testing.B, store idm.HandlerStore) {
	const n, page = 10000, 50
	ctx := b.Context()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		s := idm.Subject{
			ID: idm.NewID(), SSSID: fmt.Sprintf("S-%05d", i), Name: fmt.Sprintf("Subject %d", (i*7919)%n),
			Bday: "1980-05-17", DateConsented: "2024-05-01", Created: base, Changed: base,
		}
		if err := store.CreateSubject(ctx, s); err != nil {
			b.Fatal(err)
		}
		if i%3 == 0 {
			// Created established, as EstablishLink would leave it: on
			// FerretDB, EstablishLink's filter (_id and state) scans the
			// collection, which would make filling the store take many
			// minutes.
			l := idm.Link{ID: idm.NewID(), SSSID: s.SSSID, Created: base, Changed: base.Add(time.Hour),
				Exp: base.Add(24 * time.Hour).Unix(), JWTHash: idm.NewID(),
				LinkedTo: fmt.Sprintf("P-%d", i), LinkedSystem: "urn:p", LinkedOn: base.Add(time.Hour)}
			if err := store.CreateLink(ctx, l); err != nil {
				b.Fatal(err)
			}
		}
	}
	h, err := idm.NewHandler(idm.Config{Store: store, LinkTokens: &hmacLinkTokens{secret: []byte("bench")}, Authenticate: testAuth().Require, QRCode: qrCode})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequestWithContext(ctx, "GET", "/subject?offset=5000&perpage=50&ordercol=name&orderdir=DESC", nil)
	req.Header.Set("Authorization", "JWT "+staffToken)

	// The answer is a full page, with the derived enrolment dates.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var got struct {
		Data []struct {
			DateEnrolled string `json:"date_enrolled"`
		} `json:"data"`
		Total int `json:"total"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); rec.Code != http.StatusOK || err != nil {
		b.Fatalf("status %d (%v): %.300s", rec.Code, err, rec.Body)
	}
	enrolled := 0
	for _, s := range got.Data {
		if s.DateEnrolled != "" {
			enrolled++
		}
	}
	if len(got.Data) != page || got.Total != n || enrolled == 0 || enrolled == page {
		b.Fatalf("%d subjects (%d enrolled) of %d, want %d (some enrolled) of %d", len(got.Data), enrolled, got.Total, page, n)
	}

	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}
