package boltstore_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/c3-pro/idm/boltstore"
	"github.com/c3-pro/idm/idm"
)

// TestLinkCache checks the in-memory links and their indexes against a
// reference while links are created, updated (moved to another subject,
// given another creation time or JWT hash), established and deleted, with
// failed writes in between, and again after a reopen.
func TestLinkCache(t *testing.T) {
	s, path := openStore(t)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(3, 4))
	subjects := []string{"S-1", "S-2", "S-3", "S-4", "S-5", "S-6"}
	ref := map[string]idm.Link{}
	randomLink := func(l idm.Link) idm.Link {
		l.SSSID = subjects[rng.IntN(len(subjects))]
		// Few distinct times, so that ties are broken by ID.
		l.Created = t0.Add(time.Duration(rng.IntN(5))*time.Minute + time.Duration(rng.IntN(1000))*time.Microsecond)
		l.Changed = l.Created
		l.JWTHash = ""
		if rng.IntN(3) > 0 {
			l.JWTHash = hash64(rng.IntN(1 << 30))
		}
		return l
	}
	for range 40 {
		l := randomLink(idm.Link{ID: idm.NewID(), Issuer: "iss"})
		must(t, s.CreateLink(ctx, l))
		l.Rev = 1
		l.Created, l.Changed = idm.Timestamp(l.Created), idm.Timestamp(l.Changed)
		ref[l.ID] = l
	}
	ids := slices.Sorted(func(yield func(string) bool) {
		for id := range ref {
			if !yield(id) {
				return
			}
		}
	})
	for i := range 120 {
		id := ids[rng.IntN(len(ids))]
		old, exists := ref[id]
		switch i % 6 {
		case 0, 1, 2:
			l := randomLink(old)
			err := s.UpdateLink(ctx, l)
			if !exists {
				if !errors.Is(err, idm.ErrNotFound) {
					t.Fatalf("update of deleted link: %v", err)
				}
				continue
			}
			must(t, err)
			l.Rev++
			l.Created, l.Changed = idm.Timestamp(l.Created), idm.Timestamp(l.Changed)
			ref[id] = l
		case 3:
			// A stale update and one to another link's hash change nothing.
			if !exists {
				continue
			}
			l := randomLink(old)
			l.Rev = old.Rev + 5
			if err := s.UpdateLink(ctx, l); !errors.Is(err, idm.ErrStale) {
				t.Fatalf("stale update: %v", err)
			}
			for other, ol := range ref {
				if other != id && ol.JWTHash != "" {
					l.Rev, l.JWTHash = old.Rev, ol.JWTHash
					if err := s.UpdateLink(ctx, l); !errors.Is(err, idm.ErrConflict) {
						t.Fatalf("update to a taken hash: %v", err)
					}
					break
				}
			}
		case 4:
			got, err := s.EstablishLink(ctx, id, "P-"+id, "sys", t0.Add(time.Hour+time.Microsecond))
			if !exists || old.LinkedTo != "" {
				if err == nil {
					t.Fatalf("establish of a missing or linked link succeeded")
				}
				continue
			}
			must(t, err)
			ref[id] = got
		case 5:
			err := s.DeleteLink(ctx, id)
			if !exists {
				if !errors.Is(err, idm.ErrNotFound) {
					t.Fatalf("delete of deleted link: %v", err)
				}
				continue
			}
			must(t, err)
			delete(ref, id)
		}
	}
	checkLinks(t, s, ref, subjects)
	must(t, s.Close())
	s2, err := boltstore.Open(path)
	must(t, err)
	defer s2.Close()
	checkLinks(t, s2, ref, subjects)
}

// checkLinks compares the links of s with ref.
func checkLinks(t *testing.T, s *boltstore.Store, ref map[string]idm.Link, subjects []string) {
	t.Helper()
	ctx := t.Context()
	want := func(sssids ...string) []idm.Link {
		out := []idm.Link{}
		for _, l := range ref {
			if slices.Contains(sssids, l.SSSID) {
				out = append(out, l)
			}
		}
		slices.SortFunc(out, func(a, b idm.Link) int {
			if c := a.Created.Compare(b.Created); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
		return out
	}
	many := []string{"S-404"}
	for range 30 {
		many = append(many, subjects...)
	}
	for _, tc := range []struct {
		name   string
		sssids []string
	}{
		{"none", nil},
		{"one", subjects[:1]},
		{"two_duplicated", []string{subjects[2], subjects[1], subjects[2]}},
		{"all", subjects},
		{"many_duplicated", many},
		{"missing", []string{"S-404"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.LinksForSubjects(ctx, tc.sssids...)
			must(t, err)
			equal(t, "links", want(tc.sssids...), got)
		})
	}
	for id, l := range ref {
		got, err := s.FindLink(ctx, id)
		must(t, err)
		equal(t, "link "+id, l, got)
		if l.JWTHash != "" {
			got, err := s.FindLinkByJWTHash(ctx, l.JWTHash)
			must(t, err)
			equal(t, "link by hash "+id, l, got)
		}
	}
	if _, err := s.FindLinkByJWTHash(ctx, ""); !errors.Is(err, idm.ErrNotFound) {
		t.Errorf("FindLinkByJWTHash(\"\") = %v, want ErrNotFound", err)
	}
}

// TestUserCache checks the in-memory users against a reference while users
// are created, renamed (also to another letter case), changed and deleted,
// with failed writes in between, and again after a reopen.
func TestUserCache(t *testing.T) {
	s, path := openStore(t)
	ctx := t.Context()
	ref := map[string]idm.User{}
	var ids []string
	for i := range 20 {
		u := idm.User{ID: idm.NewID(), Username: fmt.Sprintf("user%02d@example.org", (i*7)%20), Admin: i%3 == 0,
			Disabled: i%4 == 0, Created: t0.Add(time.Microsecond), Changed: t0}
		must(t, s.CreateUser(ctx, u))
		u.Rev, u.Created = 1, idm.Timestamp(u.Created)
		ref[u.ID] = u
		ids = append(ids, u.ID)
	}
	if err := s.CreateUser(ctx, idm.User{ID: idm.NewID(), Username: "user03@example.org"}); !errors.Is(err, idm.ErrConflict) {
		t.Fatalf("create with a taken name: %v", err)
	}
	rename := func(i int, name string) {
		t.Helper()
		u := ref[ids[i]]
		u.Username = name
		must(t, s.UpdateUser(ctx, u))
		u.Rev++
		ref[u.ID] = u
	}
	rename(0, "zed@example.org")
	rename(1, "new."+ref[ids[1]].Username)
	rename(2, ref[ids[0]].Username+".old") // a name that was freed by no one
	u := ref[ids[3]]
	u.Admin, u.Disabled = true, false
	must(t, s.UpdateUser(ctx, u))
	u.Rev++
	ref[u.ID] = u
	// Failed updates change nothing.
	taken := ref[ids[4]]
	taken.Username = ref[ids[5]].Username
	if err := s.UpdateUser(ctx, taken); !errors.Is(err, idm.ErrConflict) || errors.Is(err, idm.ErrStale) {
		t.Fatalf("rename to a taken name: %v", err)
	}
	taken = ref[ids[4]]
	taken.Username, taken.Rev = "new@example.org", taken.Rev+1
	if err := s.UpdateUser(ctx, taken); !errors.Is(err, idm.ErrStale) {
		t.Fatalf("stale update: %v", err)
	}
	freed := ref[ids[6]].Username
	for _, i := range []int{6, 7} {
		must(t, s.DeleteUser(ctx, ids[i]))
		delete(ref, ids[i])
	}
	// A deleted user's name is free again.
	nu := idm.User{ID: idm.NewID(), Username: freed, Created: t0}
	must(t, s.CreateUser(ctx, nu))
	nu.Rev = 1
	ref[nu.ID] = nu
	if err := s.CreateUser(ctx, idm.User{ID: idm.NewID(), Username: ref[ids[8]].Username}); !errors.Is(err, idm.ErrConflict) {
		t.Fatalf("create with a taken name: %v", err)
	}

	checkUsers(t, s, ref)
	must(t, s.Close())
	s2, err := boltstore.Open(path)
	must(t, err)
	defer s2.Close()
	checkUsers(t, s2, ref)
}

// checkUsers compares the users of s with ref.
func checkUsers(t *testing.T, s *boltstore.Store, ref map[string]idm.User) {
	t.Helper()
	ctx := t.Context()
	all := []idm.User{}
	admins := 0
	for id, u := range ref {
		got, err := s.FindUserByID(ctx, id)
		must(t, err)
		equal(t, "user "+id, u, got)
		got, err = s.FindUserByUsername(ctx, u.Username)
		must(t, err)
		equal(t, "user by name "+u.Username, u, got)
		all = append(all, u)
		if u.Admin && !u.Disabled {
			admins++
		}
	}
	slices.SortFunc(all, func(a, b idm.User) int {
		return strings.Compare(a.Username, b.Username)
	})
	n, err := s.CountAdmins(ctx)
	must(t, err)
	equal(t, "admins", admins, n)
	for _, tc := range []struct {
		name string
		f    idm.UserFilter
	}{
		{"all", idm.UserFilter{}},
		{"page", idm.UserFilter{Offset: 3, Limit: 5}},
		{"past_end", idm.UserFilter{Offset: 100, Limit: 5}},
		{"search", idm.UserFilter{Search: "ER1"}},
		{"search_page", idm.UserFilter{Search: "example", Offset: 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var match []idm.User
			for _, u := range all {
				if strings.Contains(strings.ToLower(u.Username), strings.ToLower(tc.f.Search)) {
					match = append(match, u)
				}
			}
			hi := len(match)
			if tc.f.Limit > 0 {
				hi = min(hi, tc.f.Offset+tc.f.Limit)
			}
			want := []idm.User{}
			if tc.f.Offset < hi {
				want = match[tc.f.Offset:hi]
			}
			got, total, err := s.ListUsers(ctx, tc.f)
			must(t, err)
			equal(t, "total", len(match), total)
			equal(t, "page", want, got)
		})
	}
}

// TestConcurrentLinksAndUsers reads users and links while other goroutines
// update them, so that the race detector sees the in-memory copies being
// read and replaced; every read sees a committed revision.
func TestConcurrentLinksAndUsers(t *testing.T) {
	s, _ := openStore(t)
	ctx := t.Context()
	u := idm.User{ID: idm.NewID(), Username: "carol@example.org"}
	l := idm.Link{ID: idm.NewID(), SSSID: "S-1", JWTHash: hash64(0)}
	must(t, s.CreateUser(ctx, u))
	must(t, s.CreateLink(ctx, l))
	const writes = 20
	errs := make(chan error, 4)
	go func() {
		for i := range int64(writes) {
			u.Rev, u.TokenVersion = i+1, i
			if err := s.UpdateUser(ctx, u); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	go func() {
		for i := range int64(writes) {
			l.Rev, l.JWTHash = i+1, hash64(int(i)+1)
			if err := s.UpdateLink(ctx, l); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	read := func() error {
		for range 200 {
			got, err := s.FindUserByUsername(ctx, "carol@example.org")
			if err != nil {
				return err
			}
			if got.TokenVersion != got.Rev-2 && got.Rev != 1 {
				return fmt.Errorf("user Rev %d with token version %d", got.Rev, got.TokenVersion)
			}
			links, err := s.LinksForSubjects(ctx, "S-1", "S-1")
			if err != nil {
				return err
			}
			if len(links) != 1 || links[0].JWTHash != hash64(int(links[0].Rev)-1) {
				return fmt.Errorf("links %+v", links)
			}
		}
		return nil
	}
	go func() { errs <- read() }()
	go func() { errs <- read() }()
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.FindLinkByJWTHash(ctx, hash64(writes))
	must(t, err)
	equal(t, "link Rev", int64(writes+1), got.Rev)
	if _, err := s.FindLinkByJWTHash(ctx, hash64(writes-1)); !errors.Is(err, idm.ErrNotFound) {
		t.Errorf("an old JWT hash still finds the link: %v", err)
	}
}

func hash64(i int) string { return fmt.Sprintf("%064x", i) }
