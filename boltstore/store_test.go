package boltstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/c3-pro/idm/boltstore"
	"github.com/c3-pro/idm/idm"
	"github.com/c3-pro/idm/idm/storetest"
)

// openStore opens a store on a new file in t's temporary directory and
// closes it when t ends.
func openStore(t testing.TB, opts ...boltstore.Option) (*boltstore.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "idm.db")
	s, err := boltstore.Open(path, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, path
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) idm.Store {
		s, _ := openStore(t)
		return s
	})
}

func TestOpenLocked(t *testing.T) {
	s, path := openStore(t)
	for _, timeout := range []time.Duration{100 * time.Millisecond, 400 * time.Millisecond} {
		t.Run(timeout.String(), func(t *testing.T) {
			start := time.Now()
			second, err := boltstore.Open(path, boltstore.WithTimeout(timeout))
			took := time.Since(start)
			if err == nil {
				second.Close()
				t.Fatal("a second Open of the same file succeeded")
			}
			if !errors.Is(err, boltstore.ErrLocked) {
				t.Fatalf("second Open: %v, want an error wrapping ErrLocked", err)
			}
			if took < timeout/2 || took > timeout+time.Second {
				t.Errorf("second Open gave up after %v, want about %v", took, timeout)
			}
		})
	}
	// The first store is unaffected.
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping of the first store: %v", err)
	}
	// Once it is closed, the file can be opened again.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := boltstore.Open(path, boltstore.WithTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	again.Close()
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not a bolt file "), 1024), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		path string
		opts []boltstore.Option
	}{
		{"zero timeout", filepath.Join(dir, "a.db"), []boltstore.Option{boltstore.WithTimeout(0)}},
		{"negative timeout", filepath.Join(dir, "b.db"), []boltstore.Option{boltstore.WithTimeout(-time.Second)}},
		{"missing directory", filepath.Join(dir, "missing", "c.db"), nil},
		{"directory", dir, nil},
		{"not a database", garbage, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := boltstore.Open(tc.path, tc.opts...)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if errors.Is(err, boltstore.ErrLocked) {
				t.Errorf("Open: %v wraps ErrLocked", err)
			}
		})
	}
}

func TestFileMode(t *testing.T) {
	_, path := openStore(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("file mode %v, want no access for group and others", perm)
	}
}

// fixture is one record of every kind.
type fixture struct {
	user    idm.User
	subject idm.Subject
	link    idm.Link
	audit   idm.AuditEvent
	token   idm.ResetToken
	key     idm.SigningKey
}

var t0 = time.Date(2024, time.May, 1, 12, 0, 0, 0, time.UTC)

func fill(t *testing.T, s idm.Store) fixture {
	t.Helper()
	ctx := t.Context()
	f := fixture{
		user: idm.User{ID: idm.NewID(), Username: "alice@example.org", PasswordHash: "hash", Admin: true,
			TokenVersion: 3, Created: t0, Changed: t0, Rev: 1},
		subject: idm.Subject{ID: idm.NewID(), SSSID: "S-001", Name: "Alice", Bday: "1980-05-17", Created: t0, Changed: t0,
			Extra: map[string]json.RawMessage{"site": json.RawMessage(`{"id": 3}`)}, Rev: 1},
		link: idm.Link{ID: idm.NewID(), SSSID: "S-001", Issuer: "iss", Audience: "aud", Algorithm: "HS256",
			Created: t0, Changed: t0, JWTHash: strings.Repeat("ab", 32), Rev: 1},
		audit: idm.AuditEvent{ID: idm.NewID(), Time: t0, Document: "S-001", DocType: idm.DocSubject,
			ActorID: "a1", Actor: "alice@example.org", Action: "create", New: json.RawMessage(`{"x":1}`)},
		token: idm.ResetToken{Hash: strings.Repeat("cd", 32), UserID: "u1", Purpose: "reset", Created: t0, Expires: t0.Add(time.Hour)},
		key:   idm.SigningKey{Name: "default", KID: "k1", Alg: "HS256", Secret: []byte{1, 2, 3}, Created: t0},
	}
	must(t, s.CreateUser(ctx, f.user))
	must(t, s.CreateSubject(ctx, f.subject))
	must(t, s.CreateLink(ctx, f.link))
	must(t, s.AppendAudit(ctx, f.audit))
	must(t, s.CreateResetToken(ctx, f.token))
	must(t, s.CreateSigningKey(ctx, f.key))
	must(t, s.MarkBootstrapped(ctx, t0))
	_, err := s.RecordLoginFailure(ctx, "bob@example.org", t0, time.Hour)
	must(t, err)
	return f
}

// check verifies that s holds the records of f.
func (f fixture) check(t *testing.T, s idm.Store) {
	t.Helper()
	ctx := t.Context()
	u, err := s.FindUserByUsername(ctx, "alice@example.org")
	must(t, err)
	equal(t, "user", f.user, u)
	sub, err := s.FindSubject(ctx, "S-001")
	must(t, err)
	equal(t, "subject", f.subject, sub)
	list, total, err := s.ListSubjects(ctx, idm.SubjectFilter{OrderCol: "name", Search: "ali"})
	must(t, err)
	if total != 1 || len(list) != 1 {
		t.Errorf("ListSubjects: %d of %d, want 1 of 1", len(list), total)
	}
	l, err := s.FindLinkByJWTHash(ctx, f.link.JWTHash)
	must(t, err)
	equal(t, "link", f.link, l)
	links, err := s.LinksForSubjects(ctx, "S-001")
	must(t, err)
	equal(t, "links", []idm.Link{f.link}, links)
	audits, total, err := s.ListAudits(ctx, idm.AuditFilter{Actor: "a1"})
	must(t, err)
	equal(t, "audits", []idm.AuditEvent{f.audit}, audits)
	equal(t, "audit total", 1, total)
	tok, err := s.FindResetToken(ctx, f.token.Hash, t0)
	must(t, err)
	equal(t, "token", f.token, tok)
	n, err := s.CountResetTokens(ctx, "u1", time.Time{})
	must(t, err)
	equal(t, "token count", 1, n)
	k, err := s.FindSigningKey(ctx, "default")
	must(t, err)
	equal(t, "key", f.key, k)
	done, err := s.Bootstrapped(ctx)
	must(t, err)
	equal(t, "bootstrapped", true, done)
	lf, err := s.LoginFailures(ctx, "bob@example.org")
	must(t, err)
	equal(t, "login failures", idm.LoginFailures{Key: "bob@example.org", Count: 1, Since: t0, Last: t0}, lf)
}

func TestReopen(t *testing.T) {
	s, path := openStore(t)
	f := fill(t, s)
	must(t, s.Close())
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	f.check(t, s)
	// The unique indexes hold across a reopen.
	ctx := t.Context()
	for name, err := range map[string]error{
		"username": s.CreateUser(ctx, idm.User{ID: idm.NewID(), Username: "alice@example.org"}),
		"sssid":    s.CreateSubject(ctx, idm.Subject{ID: idm.NewID(), SSSID: "S-001"}),
		"subject":  s.CreateSubject(ctx, idm.Subject{ID: f.subject.ID, SSSID: "S-002"}),
		"audit":    s.AppendAudit(ctx, idm.AuditEvent{ID: f.audit.ID, Time: t0.Add(time.Hour)}),
		"link":     s.CreateLink(ctx, idm.Link{ID: idm.NewID(), SSSID: "S-002", JWTHash: f.link.JWTHash}),
	} {
		if !errors.Is(err, idm.ErrConflict) {
			t.Errorf("duplicate %s after reopen: %v, want ErrConflict", name, err)
		}
	}
}

func TestBackup(t *testing.T) {
	s, _ := openStore(t)
	f := fill(t, s)
	backup := filepath.Join(t.TempDir(), "backup.db")
	out, err := os.OpenFile(backup, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	must(t, err)
	n, err := s.Backup(t.Context(), out)
	must(t, err)
	must(t, out.Close())
	fi, err := os.Stat(backup)
	must(t, err)
	if n <= 0 || n != fi.Size() {
		t.Errorf("Backup returned %d, file has %d bytes", n, fi.Size())
	}
	// The store keeps working, and later writes are not in the copy.
	must(t, s.CreateSubject(t.Context(), idm.Subject{ID: idm.NewID(), SSSID: "S-LATER"}))

	b, err := boltstore.Open(backup)
	if err != nil {
		t.Fatalf("open the backup: %v", err)
	}
	defer b.Close()
	f.check(t, b)
	if _, err := b.FindSubject(t.Context(), "S-LATER"); !errors.Is(err, idm.ErrNotFound) {
		t.Errorf("subject written after the backup: %v, want ErrNotFound", err)
	}
}

func TestBackupCancelled(t *testing.T) {
	s, _ := openStore(t)
	fill(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var buf bytes.Buffer
	if _, err := s.Backup(ctx, &buf); !errors.Is(err, context.Canceled) {
		t.Errorf("Backup with a cancelled context: %v, want context.Canceled", err)
	}
	// A writer that fails.
	if _, err := s.Backup(t.Context(), failingWriter{}); err == nil {
		t.Error("Backup to a failing writer succeeded")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestClosed(t *testing.T) {
	s, _ := openStore(t)
	fill(t, s)
	must(t, s.Close())
	must(t, s.Close())
	ctx := t.Context()
	_, _, listErr := s.ListSubjects(ctx, idm.SubjectFilter{})
	_, findErr := s.FindSubject(ctx, "S-001")
	_, userErr := s.FindUserByID(ctx, "x")
	_, backupErr := s.Backup(ctx, &bytes.Buffer{})
	_, purgeErr := s.PurgeLoginFailures(ctx, t0)
	for name, err := range map[string]error{
		"Ping":             s.Ping(ctx),
		"FindSubject":      findErr,
		"ListSubjects":     listErr,
		"CreateSubject":    s.CreateSubject(ctx, idm.Subject{ID: idm.NewID(), SSSID: "S-002"}),
		"UpdateSubject":    s.UpdateSubject(ctx, idm.Subject{ID: idm.NewID(), SSSID: "S-001"}),
		"DeleteSubject":    s.DeleteSubject(ctx, "S-001"),
		"DeleteMissing":    s.DeleteSubject(ctx, "S-404"),
		"FindUserByID":     userErr,
		"CreateUser":       s.CreateUser(ctx, idm.User{ID: idm.NewID(), Username: "x@example.org"}),
		"AppendAudit":      s.AppendAudit(ctx, idm.AuditEvent{ID: idm.NewID()}),
		"Backup":           backupErr,
		"ResetFailures":    s.ResetLoginFailures(ctx, "bob@example.org"),
		"PurgeFailures":    purgeErr,
		"MarkBootstrapped": s.MarkBootstrapped(ctx, t0),
	} {
		if !errors.Is(err, idm.ErrUnavailable) {
			t.Errorf("%s after Close: %v, want ErrUnavailable", name, err)
		}
	}
}

func TestCancelledContext(t *testing.T) {
	s, _ := openStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.FindSubject(ctx, "S-001")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("FindSubject: %v", err)
	}
	if err := s.CreateSubject(ctx, idm.Subject{ID: idm.NewID(), SSSID: "S-001"}); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateSubject: %v", err)
	}
	if _, err := s.FindSubject(t.Context(), "S-001"); !errors.Is(err, idm.ErrNotFound) {
		t.Errorf("a cancelled create stored the subject: %v", err)
	}
}

// TestSubjectOrders checks the in-memory sort orders against a reference
// sort while subjects are created, updated and deleted, both for orders that
// exist before the writes and for orders built after them, and again after
// a reopen.
func TestSubjectOrders(t *testing.T) {
	s, path := openStore(t)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(vals ...string) string { return vals[rng.IntN(len(vals))] }
	random := func(sssid string) idm.Subject {
		return idm.Subject{
			ID:            idm.NewID(),
			SSSID:         sssid,
			Name:          pick("", "alice", "Alice", "bob", "Émile", "zoe", "alice"),
			Bday:          pick("", "1980-05-17", "1975-01-02T08:00:00+01:00", "2001-12-24"),
			Email:         pick("", "a@x.org", "B@x.org"),
			DateInvited:   pick("", "2024-01-01", "2023-12-31"),
			DateConsented: pick("", "2024-02-01"),
			DateEnrolled:  pick("", "2024-03-01", "2024-02-29"),
			DateWithdrawn: pick("", "2025-01-01"),
			Created:       t0.Add(time.Duration(rng.IntN(5)) * time.Hour),
			Changed:       t0.Add(time.Duration(rng.IntN(5))*time.Hour + time.Duration(rng.IntN(1000))*time.Microsecond),
		}
	}
	want := map[string]idm.Subject{}
	cols := append([]string{""}, idm.SubjectColumns()...)
	verify := func(t *testing.T, s *boltstore.Store, stage string) {
		t.Helper()
		all := make([]idm.Subject, 0, len(want))
		for _, sub := range want {
			all = append(all, sub)
		}
		for _, col := range cols {
			for _, desc := range []bool{false, true} {
				list, total, err := s.ListSubjects(ctx, idm.SubjectFilter{OrderCol: col, Desc: desc})
				must(t, err)
				if total != len(all) {
					t.Fatalf("%s: %s desc=%v: total %d, want %d", stage, col, desc, total, len(all))
				}
				if got, exp := sssids(list), reference(all, col, desc); !slices.Equal(got, exp) {
					t.Fatalf("%s: %s desc=%v:\n got %v\nwant %v", stage, col, desc, got, exp)
				}
			}
		}
	}
	// Build every order on an empty store.
	verify(t, s, "empty")
	for round := range 4 {
		for range 60 {
			sssid := fmt.Sprintf("S-%02d", rng.IntN(40))
			_, exists := want[sssid]
			switch op := rng.IntN(3); {
			case !exists:
				sub := random(sssid)
				must(t, s.CreateSubject(ctx, sub))
				sub.Rev = 1
				want[sssid] = sub
			case op == 0:
				must(t, s.DeleteSubject(ctx, sssid))
				delete(want, sssid)
			default:
				sub := random(sssid)
				sub.ID, sub.Rev = want[sssid].ID, want[sssid].Rev
				must(t, s.UpdateSubject(ctx, sub))
				sub.Rev++
				want[sssid] = sub
			}
		}
		verify(t, s, fmt.Sprintf("round %d", round))
	}
	must(t, s.Close())
	s, err := boltstore.Open(path)
	must(t, err)
	defer s.Close()
	verify(t, s, "after reopen")
	for sssid, sub := range want {
		got, err := s.FindSubject(ctx, sssid)
		must(t, err)
		sub.Created, sub.Changed = idm.Timestamp(sub.Created), idm.Timestamp(sub.Changed)
		equal(t, sssid, sub, got)
	}
}

// TestSearchBoundaries checks that a search term never matches across the
// SSSID and the name, also when it holds the NUL byte that the store puts
// between them internally.
func TestSearchBoundaries(t *testing.T) {
	s, _ := openStore(t)
	ctx := t.Context()
	must(t, s.CreateSubject(ctx, idm.Subject{ID: idm.NewID(), SSSID: "ab", Name: "cd", Bday: "1980-01-01"}))
	must(t, s.CreateSubject(ctx, idm.Subject{ID: idm.NewID(), SSSID: "x\x00y", Name: "N\x00M"}))
	for _, tc := range []struct {
		search string
		want   []string
	}{
		{"bc", []string{}},
		{"b\x00c", []string{}},
		{"ab\x00cd", []string{}},
		{"\x00", []string{"x\x00y"}},
		{"n\x00m", []string{"x\x00y"}},
		{"y\x00n", []string{}},
		{"CD", []string{"ab"}},
		{"1980-01", []string{"ab"}},
	} {
		list, total, err := s.ListSubjects(ctx, idm.SubjectFilter{Search: tc.search})
		must(t, err)
		if got := sssids(list); !slices.Equal(got, tc.want) || total != len(tc.want) {
			t.Errorf("search %q: %q (total %d), want %q", tc.search, got, total, tc.want)
		}
	}
}

// reference sorts subjects the way ListSubjects must.
func reference(subjects []idm.Subject, col string, desc bool) []string {
	value := func(s idm.Subject) string {
		switch col {
		case "name":
			return s.Name
		case "bday":
			return s.Bday
		case "email":
			return s.Email
		case "created":
			return idm.Timestamp(s.Created).Format("2006-01-02T15:04:05.000Z")
		case "changed":
			return idm.Timestamp(s.Changed).Format("2006-01-02T15:04:05.000Z")
		case "date_invited":
			return s.DateInvited
		case "date_consented":
			return s.DateConsented
		case "date_enrolled":
			return s.DateEnrolled
		case "date_withdrawn":
			return s.DateWithdrawn
		}
		return s.SSSID
	}
	sorted := slices.Clone(subjects)
	slices.SortFunc(sorted, func(a, b idm.Subject) int {
		c := strings.Compare(value(a), value(b))
		if desc {
			c = -c
		}
		if c != 0 {
			return c
		}
		return strings.Compare(a.SSSID, b.SSSID)
	})
	return sssids(sorted)
}

func sssids(subjects []idm.Subject) []string {
	out := []string{}
	for _, s := range subjects {
		out = append(out, s.SSSID)
	}
	return out
}

// TestConcurrentSubjects runs writers and readers of subjects together; run
// it with -race.
func TestConcurrentSubjects(t *testing.T) {
	s, _ := openStore(t)
	ctx := t.Context()
	const writers, perWriter = 4, 25
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				sssid := fmt.Sprintf("W%d-%03d", w, i)
				sub := idm.Subject{ID: idm.NewID(), SSSID: sssid, Name: fmt.Sprintf("n%d", i%7), Created: t0}
				if err := s.CreateSubject(ctx, sub); err != nil {
					t.Error(err)
					return
				}
				sub.Name, sub.Rev = "renamed", 1
				if err := s.UpdateSubject(ctx, sub); err != nil {
					t.Error(err)
					return
				}
				if i%5 == 0 {
					if err := s.DeleteSubject(ctx, sssid); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	var readers sync.WaitGroup
	for r := range 3 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				col := idm.SubjectColumns()[r%len(idm.SubjectColumns())]
				list, total, err := s.ListSubjects(ctx, idm.SubjectFilter{OrderCol: col, Desc: r == 1, Limit: 10, Search: "w"})
				if err != nil {
					t.Error(err)
					return
				}
				if len(list) > total {
					t.Errorf("page of %d, total %d", len(list), total)
				}
				if len(list) > 0 {
					if _, err := s.FindSubject(ctx, list[0].SSSID); err != nil && !errors.Is(err, idm.ErrNotFound) {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	_, total, err := s.ListSubjects(ctx, idm.SubjectFilter{Search: "renamed"})
	must(t, err)
	if want := writers * (perWriter - perWriter/5); total != want {
		t.Errorf("%d subjects, want %d", total, want)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// equal compares the JSON encodings of want and got, so times must be the
// same instants in the same zone.
func equal(t *testing.T, what string, want, got any) {
	t.Helper()
	w, _ := json.Marshal(want)
	g, _ := json.Marshal(got)
	if !bytes.Equal(w, g) {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) idm.Store {
		s, _ := openStore(b)
		return s
	})
}

// BenchmarkListSubjects lists pages of 50 among 10 000 subjects in several
// orders, and with a search term that matches about a tenth of them.
func BenchmarkListSubjects(b *testing.B) {
	s, _ := openStore(b)
	ctx := b.Context()
	const n, page = 10000, 50
	names := []string{"Anna", "Ben", "Chiara", "David", "Elif", "Fynn", "Greta", "Hugo", "Ines", "Jonas"}
	for i := range n {
		sub := idm.Subject{
			ID:          idm.NewID(),
			SSSID:       fmt.Sprintf("S-%05d", (i*7919)%n),
			Name:        fmt.Sprintf("%s Müller%d", names[i%len(names)], i%97),
			Bday:        fmt.Sprintf("19%02d-%02d-%02d", 40+i%60, 1+i%12, 1+i%28),
			Email:       fmt.Sprintf("subject%d@example.org", i),
			DateInvited: "2024-01-01",
			Created:     t0.Add(time.Duration(i) * time.Second),
			Changed:     t0.Add(time.Duration(i%500) * time.Minute),
			Extra:       map[string]json.RawMessage{"site": json.RawMessage(`"Zürich"`)},
		}
		must(b, s.CreateSubject(ctx, sub))
	}
	for _, tc := range []struct {
		name string
		f    idm.SubjectFilter
		want int
	}{
		{"sssid", idm.SubjectFilter{}, n},
		{"name_desc", idm.SubjectFilter{OrderCol: "name", Desc: true}, n},
		{"changed", idm.SubjectFilter{OrderCol: "changed"}, n},
		{"date_invited_desc", idm.SubjectFilter{OrderCol: "date_invited", Desc: true}, n},
		{"search_bday_desc", idm.SubjectFilter{OrderCol: "bday", Desc: true, Search: "anna"}, n / 10},
	} {
		b.Run(tc.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			b.ReportAllocs()
			for b.Loop() {
				f := tc.f
				f.Offset, f.Limit = rng.IntN(tc.want-page), page
				list, total, err := s.ListSubjects(ctx, f)
				if err != nil {
					b.Fatal(err)
				}
				if len(list) != page || total != tc.want {
					b.Fatalf("got %d subjects of %d, want %d of %d", len(list), total, page, tc.want)
				}
			}
		})
	}
}

// TestRecordsWithoutRev checks that users, subjects and links written
// before records had revisions (no "rev" in their JSON) read back with Rev 0
// and take part in revision checks from there.
func TestRecordsWithoutRev(t *testing.T) {
	s, path := openStore(t)
	f := fill(t, s)
	must(t, s.Close())
	db, err := bolt.Open(path, 0o600, nil)
	must(t, err)
	err = db.Update(func(tx *bolt.Tx) error {
		for bucket, key := range map[string]string{"users": f.user.ID, "subjects": f.subject.SSSID, "links": f.link.ID} {
			b := tx.Bucket([]byte(bucket))
			var rec map[string]json.RawMessage
			if err := json.Unmarshal(b.Get([]byte(key)), &rec); err != nil {
				return err
			}
			if _, ok := rec["rev"]; !ok {
				return fmt.Errorf("%s %s has no rev: %v", bucket, key, rec)
			}
			delete(rec, "rev")
			v, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(key), v); err != nil {
				return err
			}
		}
		return nil
	})
	must(t, err)
	must(t, db.Close())

	s, err = boltstore.Open(path)
	must(t, err)
	defer s.Close()
	ctx := t.Context()

	u, err := s.FindUserByID(ctx, f.user.ID)
	must(t, err)
	sub, err := s.FindSubject(ctx, f.subject.SSSID)
	must(t, err)
	l, err := s.FindLink(ctx, f.link.ID)
	must(t, err)
	if u.Rev != 0 || sub.Rev != 0 || l.Rev != 0 {
		t.Fatalf("records without rev read as Rev %d, %d, %d; want 0", u.Rev, sub.Rev, l.Rev)
	}
	for name, update := range map[string]func(rev int64) error{
		"user":    func(rev int64) error { u.Rev = rev; return s.UpdateUser(ctx, u) },
		"subject": func(rev int64) error { sub.Rev = rev; return s.UpdateSubject(ctx, sub) },
	} {
		if err := update(1); !errors.Is(err, idm.ErrStale) {
			t.Errorf("%s: update from Rev 1 of a record without rev = %v, want ErrStale", name, err)
		}
		must(t, update(0))
		if err := update(0); !errors.Is(err, idm.ErrStale) {
			t.Errorf("%s: second update from Rev 0 = %v, want ErrStale", name, err)
		}
		must(t, update(1))
	}
	est, err := s.EstablishLink(ctx, l.ID, "P-1", "", t0)
	must(t, err)
	if est.Rev != 1 {
		t.Errorf("establishing a link without rev gave Rev %d, want 1", est.Rev)
	}
	if err := s.UpdateLink(ctx, l); !errors.Is(err, idm.ErrStale) {
		t.Errorf("update from Rev 0 after the establish = %v, want ErrStale", err)
	}
	// The in-memory subjects have the stored Rev, too.
	got, err := s.FindSubject(ctx, f.subject.SSSID)
	must(t, err)
	if got.Rev != 2 {
		t.Errorf("subject Rev %d after two updates, want 2", got.Rev)
	}
}

// BenchmarkLinksForSubjects fetches the links of a page of 50 subjects among
// 10 000, a third of which have a link (3 334 links in all), as listing a
// page of subjects does.
func BenchmarkLinksForSubjects(b *testing.B) {
	s, _ := openStore(b)
	ctx := b.Context()
	const n, page = 10000, 50
	all := make([]string, n)
	links := 0
	for i := range n {
		all[i] = fmt.Sprintf("S-%05d", i)
		if i%3 != 0 {
			continue
		}
		at := t0.Add(time.Duration(i) * time.Second)
		must(b, s.CreateLink(ctx, idm.Link{
			ID: idm.NewID(), SSSID: all[i], Issuer: "iss", Audience: "aud", Algorithm: "HS256",
			Created: at, Changed: at, Exp: at.Add(24 * time.Hour).Unix(),
			JWT: strings.Repeat("j", 200), JWTHash: fmt.Sprintf("%064x", i),
		}))
		links++
	}
	b.ReportAllocs()
	rng := rand.New(rand.NewPCG(1, 2))
	for b.Loop() {
		lo := rng.IntN(n - page)
		got, err := s.LinksForSubjects(ctx, all[lo:lo+page]...)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) < page/3 || len(got) > page/3+1 {
			b.Fatalf("got %d links for %d subjects, want about %d", len(got), page, page/3)
		}
	}
	b.ReportMetric(float64(links), "links")
}

// TestFileWithoutSessionBuckets opens a file written before console
// sessions existed (it lacks their buckets): Open adds them, the other
// records stay readable and sessions work.
func TestFileWithoutSessionBuckets(t *testing.T) {
	s, path := openStore(t)
	f := fill(t, s)
	must(t, s.Close())
	db, err := bolt.Open(path, 0o600, nil)
	must(t, err)
	must(t, db.Update(func(tx *bolt.Tx) error {
		for _, name := range []string{"console_sessions", "console_sessions_by_user"} {
			if err := tx.DeleteBucket([]byte(name)); err != nil {
				return fmt.Errorf("delete bucket %s: %w", name, err)
			}
		}
		return nil
	}))
	must(t, db.Close())

	s, err = boltstore.Open(path)
	must(t, err)
	defer s.Close()
	f.check(t, s)
	ctx := t.Context()
	x := idm.Session{IDHash: strings.Repeat("ab", 32), UserID: f.user.ID, Created: t0, LastSeen: t0, Expires: t0.Add(time.Hour)}
	must(t, s.CreateSession(ctx, x))
	got, err := s.FindSession(ctx, x.IDHash)
	must(t, err)
	equal(t, "session", x, got)
	n, err := s.DeleteUserSessions(ctx, f.user.ID)
	must(t, err)
	if n != 1 {
		t.Errorf("DeleteUserSessions = %d, want 1", n)
	}
}
