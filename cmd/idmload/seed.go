package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/c3-pro/idm/boltstore"
	"github.com/c3-pro/idm/idm"
)

// fixture is the data a run works on.
type fixture struct {
	prefix   string // of the seeded SSSIDs
	n        int    // seeded subjects
	accounts []string
	password string
}

// sssid returns the SSSID of the i-th seeded subject.
func (f *fixture) sssid(i int) string { return fmt.Sprintf("%s%05d", f.prefix, i) }

// consented reports whether the i-th seeded subject has consented (and so
// has a link); nine in ten have.
func consented(i int) bool { return i%10 != 9 }

var (
	firstNames = []string{"Alice", "Bruno", "Chiara", "David", "Elena", "Felix", "Gita", "Hugo", "Ines", "Jonas",
		"Karin", "Luca", "Mara", "Nils", "Olga", "Paul", "Rosa", "Simon", "Tara", "Urs", "Vera", "Walter", "Yara", "Zoe"}
	lastNames = []string{"Meier", "Müller", "Schmid", "Keller", "Weber", "Huber", "Schneider", "Meyer", "Steiner",
		"Fischer", "Gerber", "Brunner", "Baumann", "Frei", "Zimmermann", "Moser", "Widmer", "Wyss", "Graf", "Roth",
		"Rossi", "Bianchi", "Favre", "Girard", "Nguyen", "Okafor", "Silva", "Novak", "Kowalski", "Andersen"}
)

// subjectOf returns the i-th seeded subject as a client would send it.
func (f *fixture) subjectOf(i int) map[string]any {
	rng := rand.New(rand.NewPCG(uint64(i), 42))
	s := map[string]any{
		"sssid": f.sssid(i),
		"name": fmt.Sprintf("%s %s %s", firstNames[rng.IntN(len(firstNames))],
			string(rune('A'+rng.IntN(26))), lastNames[rng.IntN(len(lastNames))]),
		"bday":         time.Date(1940, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rng.IntN(65*365)).Format(time.DateOnly),
		"email":        fmt.Sprintf("subject%05d@example.org", i),
		"date_invited": "2024-04-02T09:30:00+02:00",
	}
	if consented(i) {
		s["date_consented"] = "2024-05-01T12:00:00+02:00"
	}
	if i%4 == 0 {
		s["site"] = []string{"Zurich", "Basel", "Bern", "Geneva"}[i/4%4]
		s["arm"] = map[string]any{"name": "A", "cohort": i % 7}
	}
	return s
}

// prepareDB seeds the bbolt database that idmd will use at path. It seeds
// in a directory on /dev/shm when there is one (a tmpfs, where the
// per-transaction fsync of bbolt costs nothing) and copies the file to path
// then, so that seeding takes seconds while idmd still runs on the real
// disk.
func prepareDB(ctx context.Context, path string, f *fixture, hash string, now time.Time, progress io.Writer) error {
	seedPath := path
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "idmload-seed-"); err == nil {
			defer os.RemoveAll(dir)
			seedPath = filepath.Join(dir, "idm.db")
		}
	}
	if err := seedBolt(ctx, seedPath, f, hash, now, progress); err != nil {
		return err
	}
	if seedPath != path {
		return copyFile(seedPath, path)
	}
	return nil
}

// copyFile copies src to a new file dst (mode 0600) and syncs it.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying the seeded database: %w", err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// linkedMax bounds the seeded subjects that get links: each link takes a
// few transactions of its own (about 0.5 ms at a million subjects), so
// beyond it subjects are seeded without, and a million seed in about a
// minute.
const linkedMax = 20_000

// seedBolt writes the fixture into a new bbolt database through
// boltstore: an admin and the staff accounts (all with the given password
// hash), the bootstrap marker, and the subjects through the bulk import
// (idm.Importer, as `idmd subject import` does: checked as POST /subject
// checks them, each with its audit record), then of the first linkedMax
// subjects nine in ten with a link and its audit records, every third link
// established (at the default 10 000 subjects: all of them).
func seedBolt(ctx context.Context, path string, f *fixture, hash string, now time.Time, progress io.Writer) error {
	st, err := boltstore.Open(path)
	if err != nil {
		return err
	}
	defer st.Close()
	base := idm.Timestamp(now.Add(-400 * 24 * time.Hour))
	actors := make([]idm.User, 0, len(f.accounts)+1)
	for i, name := range append([]string{"admin@load.test"}, f.accounts...) {
		u := idm.User{ID: idm.NewID(), Username: name, PasswordHash: hash, Admin: i == 0, Created: base, Changed: base}
		if err := st.CreateUser(ctx, u); err != nil {
			return fmt.Errorf("seeding user %s: %w", name, err)
		}
		actors = append(actors, u)
	}
	if err := st.MarkBootstrapped(ctx, base); err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	if err := importSubjects(ctx, st, f, actors[0], base, progress); err != nil {
		return err
	}
	for i := range min(f.n, linkedMax) {
		if consented(i) {
			if err := seedLinks(ctx, st, f, i, actors[i%len(actors)], base.Add(time.Duration(i)*time.Minute)); err != nil {
				return fmt.Errorf("seeding the links of subject %d: %w", i, err)
			}
		}
		if (i+1)%5_000 == 0 {
			fmt.Fprintf(progress, "idmload: seeded the links of %d of %d subjects\n", i+1, min(f.n, linkedMax))
		}
	}
	return st.Close()
}

// importSubjects seeds the fixture's subjects through the bulk import, as
// JSON lines, created by actor from base on (a minute later per batch).
func importSubjects(ctx context.Context, st *boltstore.Store, f *fixture, actor idm.User, base time.Time, progress io.Writer) error {
	var batches atomic.Int64
	im, err := idm.NewImporter(idm.ImporterConfig{Store: st, Now: func() time.Time {
		return base.Add(time.Duration(batches.Load()) * time.Minute)
	}})
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		bw := bufio.NewWriterSize(pw, 256<<10)
		enc := json.NewEncoder(bw)
		var err error
		for i := 0; i < f.n && err == nil; i++ {
			err = enc.Encode(f.subjectOf(i))
		}
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	start, last := time.Now(), time.Now()
	p := &idm.Principal{UserID: actor.ID, Username: actor.Username, Admin: actor.Admin}
	res, err := im.Import(ctx, p, pr, idm.ImportOptions{
		Format: idm.ImportJSONL, BatchSize: 5000, KeepRejected: 3,
		Progress: func(r idm.ImportResult) {
			batches.Add(1)
			if time.Since(last) >= 2*time.Second {
				last = time.Now()
				fmt.Fprintf(progress, "idmload: imported %d of %d subjects (%.0f/s)\n", r.Created, f.n, float64(r.Created)/time.Since(start).Seconds())
			}
		},
	})
	switch {
	case err != nil:
		return fmt.Errorf("seeding subjects: %w", err)
	case res.Rejected > 0:
		return fmt.Errorf("seeding subjects: %d rows refused, such as %+v", res.Rejected, res.RejectedRows)
	}
	fmt.Fprintf(progress, "idmload: imported %d subjects in %s\n", res.Created, time.Since(start).Round(time.Millisecond))
	return nil
}

// seedLinks stores the links of the i-th subject, which exists, created
// by actor at t, as idmd's handlers would have: every change preceded by
// its audit record.
func seedLinks(ctx context.Context, st *boltstore.Store, f *fixture, i int, actor idm.User, t time.Time) error {
	s, err := st.FindSubject(ctx, f.sssid(i))
	if err != nil {
		return err
	}
	audit := func(doc, docType, action string, at time.Time, by *idm.User, nw json.RawMessage) error {
		e := idm.AuditEvent{ID: idm.NewID(), Time: at, Document: doc, DocType: docType, Action: action, New: nw}
		if by != nil {
			e.ActorID, e.Actor = by.ID, by.Username
		}
		return st.AppendAudit(ctx, e)
	}
	if i%5 == 0 {
		if err := audit(s.ID, idm.DocSubject, fmt.Sprintf("email: %q", s.Email), t.Add(30*time.Minute), &actor, nil); err != nil {
			return err
		}
	}
	lt := t.Add(2 * time.Hour)
	l := idm.Link{ID: idm.NewID(), SSSID: s.SSSID, Created: lt, Changed: lt}
	if err := audit(l.ID, idm.DocLink, "create", lt, &actor, nil); err != nil {
		return err
	}
	if err := st.CreateLink(ctx, l); err != nil {
		return err
	}
	if i%3 != 0 {
		return nil
	}
	patient := fmt.Sprintf("P-%05d", i)
	on := lt.Add(time.Hour)
	if err := audit(l.ID, idm.DocLink, "link to "+patient, on, nil, nil); err != nil {
		return err
	}
	_, err = st.EstablishLink(ctx, l.ID, patient, "urn:c3pro:patient", on)
	return err
}

// api is a small client of idmd's API for setting up a run.
type api struct {
	base   string
	client *http.Client
}

func newAPI(base string) *api {
	return &api{base: base, client: &http.Client{Timeout: time.Minute}}
}

// do sends a request with an optional JSON body and Authorization header
// and returns the status and body.
func (a *api) do(ctx context.Context, method, path, authz string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return resp.StatusCode, b, err
}

// login returns a staff token for the account.
func (a *api) login(ctx context.Context, user, password string) (string, error) {
	status, b, err := a.do(ctx, http.MethodPost, "/auth", "", map[string]string{"username": user, "password": password})
	if err != nil {
		return "", fmt.Errorf("logging in as %s: %w", user, err)
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("logging in as %s: status %d: %s", user, status, bytes.TrimSpace(b))
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(b, &tok); err != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("logging in as %s: no token in %q", user, b)
	}
	return tok.AccessToken, nil
}

// seedHTTP creates the fixture's subjects that do not exist yet through the
// API, as the frontend and the app would: POST /subject (consented), POST
// /subject/{sssid}/links, and for every third subject GET /link/{jti}/jwt
// and POST /establish.
func seedHTTP(ctx context.Context, a *api, token string, f *fixture, progress io.Writer) error {
	const parallel = 16
	authz := "JWT " + token
	var (
		next, done atomic.Int64
		wg         sync.WaitGroup
		mu         sync.Mutex
		firstErr   error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	for range parallel {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= f.n || ctx.Err() != nil {
					return
				}
				if err := seedOne(ctx, a, authz, f, i); err != nil {
					fail(fmt.Errorf("seeding %s: %w", f.sssid(i), err))
					return
				}
				if d := done.Add(1); d%1000 == 0 {
					fmt.Fprintf(progress, "idmload: %d of %d subjects present\n", d, f.n)
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

func seedOne(ctx context.Context, a *api, authz string, f *fixture, i int) error {
	sssid := f.sssid(i)
	status, b, err := a.do(ctx, http.MethodGet, "/subject/"+sssid, authz, nil)
	switch {
	case err != nil:
		return err
	case status == http.StatusOK:
		return nil
	case status != http.StatusNotFound:
		return fmt.Errorf("GET: status %d: %s", status, bytes.TrimSpace(b))
	}
	if status, b, err = a.do(ctx, http.MethodPost, "/subject", authz, f.subjectOf(i)); err != nil || status != http.StatusCreated {
		return errors.Join(err, fmt.Errorf("POST /subject: status %d: %s", status, bytes.TrimSpace(b)))
	}
	if !consented(i) {
		return nil
	}
	if status, b, err = a.do(ctx, http.MethodPost, "/subject/"+sssid+"/links", authz, nil); err != nil || status != http.StatusCreated {
		return errors.Join(err, fmt.Errorf("POST links: status %d: %s", status, bytes.TrimSpace(b)))
	}
	if i%3 != 0 {
		return nil
	}
	var link struct {
		Data struct {
			ID string `json:"_id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &link); err != nil || link.Data.ID == "" {
		return fmt.Errorf("POST links: no link ID in %q", b)
	}
	if status, b, err = a.do(ctx, http.MethodGet, "/link/"+link.Data.ID+"/jwt", authz, nil); err != nil || status != http.StatusOK {
		return errors.Join(err, fmt.Errorf("GET link JWT: status %d: %s", status, bytes.TrimSpace(b)))
	}
	patient := map[string]any{"resourceType": "Patient", "identifier": []map[string]string{
		{"system": "urn:c3pro:patient", "value": fmt.Sprintf("P-%05d", i)}}}
	if status, b, err = a.do(ctx, http.MethodPost, "/establish", "Bearer "+string(bytes.TrimSpace(b)), patient); err != nil || status != http.StatusNoContent {
		return errors.Join(err, fmt.Errorf("POST /establish: status %d: %s", status, bytes.TrimSpace(b)))
	}
	return nil
}
