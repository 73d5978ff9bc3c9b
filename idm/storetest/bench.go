package storetest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/c3-pro/idm/idm"
)

// Bench runs benchmarks of a store's hot paths: FindUserByUsername,
// FindSubject, ListSubjectsPage50Of10000 (one page of 50 subjects at a
// random offset among 10 000, sorted by name), ListSubjectsPage50Of10000InSite
// (the same in 10 sites, with a filter on one) and AppendAudit. Each
// sub-benchmark calls newStore once and seeds its data before the timer
// starts; allocations are reported.
func Bench(b *testing.B, newStore func(b *testing.B) idm.Store) {
	b.Run("FindUserByUsername", func(b *testing.B) {
		s := newStore(b)
		ctx := b.Context()
		const n = 100
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("user%03d@example.org", i)
			u := newUser(names[i])
			if err := s.CreateUser(ctx, u); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := s.FindUserByUsername(ctx, names[i%n]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("FindSubject", func(b *testing.B) {
		s := newStore(b)
		ctx := b.Context()
		const n = 100
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("S-%05d", i)
			sub := benchSubject(i)
			sub.SSSID = ids[i]
			if err := s.CreateSubject(ctx, sub); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := s.FindSubject(ctx, ids[i%n]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("ListSubjectsPage50Of10000", func(b *testing.B) {
		s := newStore(b)
		ctx := b.Context()
		const n, page = 10000, 50
		for i := range n {
			if err := s.CreateSubject(ctx, benchSubject(i)); err != nil {
				b.Fatal(err)
			}
		}
		rng := rand.New(rand.NewPCG(1, 2))
		b.ReportAllocs()
		for b.Loop() {
			f := idm.SubjectFilter{OrderCol: "name", Offset: rng.IntN(n - page), Limit: page}
			list, total, err := s.ListSubjects(ctx, f)
			if err != nil {
				b.Fatal(err)
			}
			if len(list) != page || total != n {
				b.Fatalf("got %d subjects of %d, want %d of %d", len(list), total, page, n)
			}
		}
	})
	b.Run("ListSubjectsPage50Of10000InSite", func(b *testing.B) {
		// The same 10 000 subjects in 10 sites, listed as a user of one
		// site sees them (see idm.SubjectFilter.Sites).
		s := newStore(b)
		ctx := b.Context()
		const n, page, sites = 10000, 50, 10
		for i := range n {
			sub := benchSubject(i)
			sub.Site = fmt.Sprintf("site-%d", i%sites)
			if err := s.CreateSubject(ctx, sub); err != nil {
				b.Fatal(err)
			}
		}
		rng := rand.New(rand.NewPCG(1, 2))
		b.ReportAllocs()
		for b.Loop() {
			f := idm.SubjectFilter{OrderCol: "name", Sites: []string{"site-3"}, Offset: rng.IntN(n/sites - page), Limit: page}
			list, total, err := s.ListSubjects(ctx, f)
			if err != nil {
				b.Fatal(err)
			}
			if len(list) != page || total != n/sites {
				b.Fatalf("got %d subjects of %d, want %d of %d", len(list), total, page, n/sites)
			}
		}
	})
	b.Run("AppendAudit", func(b *testing.B) {
		s := newStore(b)
		ctx := b.Context()
		doc := idm.NewID()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			e := idm.AuditEvent{
				ID: idm.NewID(), Time: at(time.Duration(i) * time.Millisecond), Document: doc,
				DocType: idm.DocSubject, ActorID: doc, Actor: "alice@example.org",
				Action: `name: "Alice"`, Old: []byte(`{"name":"Al"}`), New: []byte(`{"name":"Alice"}`),
			}
			if err := s.AppendAudit(ctx, e); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// benchSubject returns a realistic subject; names repeat so that sorting
// by name has ties.
func benchSubject(i int) idm.Subject {
	first := []string{"Anna", "Ben", "Chiara", "David", "Elif", "Fynn", "Greta", "Hugo", "Ines", "Jonas"}
	last := []string{"Müller", "Meier", "Schmid", "Keller", "Weber", "Huber", "Schneider", "Meyer", "Steiner", "Fischer"}
	return idm.Subject{
		ID:            idm.NewID(),
		SSSID:         fmt.Sprintf("S-%05d", (i*7919)%100000),
		Name:          first[i%len(first)] + " " + last[(i/len(first))%len(last)] + fmt.Sprint(i%97),
		Bday:          fmt.Sprintf("19%02d-%02d-%02d", 40+i%60, 1+i%12, 1+i%28),
		Email:         fmt.Sprintf("subject%d@example.org", i),
		DateInvited:   "2024-01-01",
		DateConsented: "2024-01-02T10:00:00+01:00",
		Created:       at(time.Duration(i) * time.Second),
		Changed:       at(time.Duration(i) * time.Second),
		Extra: map[string]json.RawMessage{
			"site": json.RawMessage(`"Zürich"`),
			"arm":  json.RawMessage(fmt.Sprint(i % 3)),
		},
	}
}
