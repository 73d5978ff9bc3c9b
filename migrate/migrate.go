package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/c3-pro/idm/idm"
)

// DefaultCollection is the collection in which the original service kept
// all its documents, unless it was configured otherwise.
const DefaultCollection = "c3pro_idm"

// DefaultProgressEvery is how often a progress line is written when
// [Config.ProgressEvery] is not set.
const DefaultProgressEvery = 10 * time.Second

// batchSize is the number of documents a cursor fetches at once: small
// enough that a batch is processed well within the server's ten-minute
// cursor timeout even when every record is written to a slow target.
const batchSize = 500

// Target is what a migration needs of the store it writes into; every
// [idm.Store] is one.
type Target interface {
	CreateUser(ctx context.Context, u idm.User) error
	FindUserByID(ctx context.Context, id string) (idm.User, error)
	FindUserByUsername(ctx context.Context, username string) (idm.User, error)
	CreateSubject(ctx context.Context, s idm.Subject) error
	FindSubject(ctx context.Context, sssid string) (idm.Subject, error)
	CreateLink(ctx context.Context, l idm.Link) error
	FindLink(ctx context.Context, id string) (idm.Link, error)
	AppendAudit(ctx context.Context, e idm.AuditEvent) error
	AuditsFor(ctx context.Context, documents ...string) ([]idm.AuditEvent, error)
	MarkBootstrapped(ctx context.Context, at time.Time) error
	Bootstrapped(ctx context.Context) (bool, error)
}

var _ Target = idm.Store(nil)

// Config configures [Run].
type Config struct {
	// Source is the original service's collection (see
	// [DefaultCollection]). It is only read. Required.
	Source *mongo.Collection
	// Target is the store the records are written into. Required, also for
	// a dry run (which reads it to tell new records from existing ones).
	Target Target
	// DryRun reads and checks everything and writes nothing; the report
	// then says what would be written.
	DryRun bool
	// Now is the clock, used for the bootstrap marker and for pacing the
	// progress lines; nil means time.Now.
	Now func() time.Time
	// Progress receives a line with the counts so far every ProgressEvery
	// (measured with Now, checked after each document) and a last one at
	// the end; nil means no progress lines.
	Progress io.Writer
	// ProgressEvery is the interval of the progress lines; zero or less
	// means DefaultProgressEvery.
	ProgressEvery time.Duration
	// Logger receives a warning for each skipped document and a summary of
	// each type; nil means no logging.
	Logger *slog.Logger
	// Usernames is the username rule of the target service: users whose
	// names break it still come over (and can log in), with a note.
	Usernames idm.UsernameRule
}

// Run migrates the original service's documents from cfg.Source into
// cfg.Target (see the package documentation) and returns what it did. It
// reads the source with cursors, one type after the other (users, subjects,
// links, audits, then all other documents), and keeps in memory only the
// IDs, usernames and SSSIDs of the records it has seen.
//
// Documents that cannot be brought over are skipped and listed in the
// report; they are not errors. Run returns an error when the configuration
// is incomplete, or when reading the source or writing the target fails
// (including ctx ending); the report then holds what was done up to that
// point, and running the migration again resumes it.
func Run(ctx context.Context, cfg Config) (Report, error) {
	switch {
	case cfg.Source == nil:
		return Report{}, errors.New("migrate: Config.Source is required")
	case cfg.Target == nil:
		return Report{}, errors.New("migrate: Config.Target is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = DefaultProgressEvery
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &runner{
		cfg:       cfg,
		rep:       &Report{DryRun: cfg.DryRun},
		usernames: make(map[string]string),
		userIDs:   make(map[string]string),
		spellings: make(map[string]string),
		docTypes:  make(map[string]string),
		sssids:    make(map[string]string),
		renamed:   make(map[string]string),
		lastLine:  cfg.Now(),
	}
	err := r.run(ctx)
	if cfg.Progress != nil {
		fmt.Fprintln(cfg.Progress, r.rep.progressLine())
	}
	if err != nil {
		return *r.rep, fmt.Errorf("migrate: %w", err)
	}
	return *r.rep, nil
}

// runner is one migration.
type runner struct {
	cfg Config
	rep *Report

	// usernames maps the ID of every user document of the source to its
	// username (idm.UsernameKey), for the actors of audit records, whether
	// or not the user came over.
	usernames map[string]string
	// userIDs maps the username of every user in the target (written,
	// existing or, in a dry run, to be written) to its ID.
	userIDs map[string]string
	// spellings maps the username of every user written from the source to
	// the username as the source held it.
	spellings map[string]string
	// docTypes maps the ID of every user, subject and link in the target to
	// its type.
	docTypes map[string]string
	// sssids maps the SSSID of every subject in the target to its ID.
	sssids map[string]string
	// renamed maps the SSSIDs of the source that no API path can address
	// to the SSSIDs their subjects came over under (see addressable).
	renamed map[string]string
	// adminCame is set once an admin user is in the target.
	adminCame bool
	lastLine  time.Time
}

// outcome is what became of one document.
type outcome int

const (
	written outcome = iota
	existing
	skipped
)

func (r *runner) run(ctx context.Context) error {
	idOrder := bson.D{{Key: fID, Value: 1}}
	if err := r.pass(ctx, typeUser, bson.D{{Key: fType, Value: typeUser}}, idOrder, r.user); err != nil {
		return err
	}
	if err := r.bootstrap(ctx); err != nil {
		return err
	}
	if err := r.pass(ctx, typeSubject, bson.D{{Key: fType, Value: typeSubject}}, idOrder, r.subject); err != nil {
		return err
	}
	if err := r.pass(ctx, typeLink, bson.D{{Key: fType, Value: typeLink}}, idOrder, r.link); err != nil {
		return err
	}
	// Audit records come in the original's order (their ObjectIds), so that
	// they enter the tamper-evident audit log in that order.
	a := &auditPass{runner: r, known: map[string]map[string]bool{}}
	if err := r.pass(ctx, typeAudit, bson.D{{Key: fType, Value: typeAudit}}, idOrder, a.audit); err != nil {
		return err
	}
	others := bson.D{{Key: fType, Value: bson.D{{Key: "$nin", Value: bson.A{typeUser, typeSubject, typeLink, typeAudit}}}}}
	return r.pass(ctx, "", others, idOrder, nil)
}

// pass reads the documents that match filter, in the given order, and hands
// each one with an ObjectId _id to handle (nil: skip every document as of an
// unknown type). typ is the type the filter selects ("" for the others).
func (r *runner) pass(ctx context.Context, typ string, filter, order bson.D,
	handle func(context.Context, bson.ObjectID, bson.Raw) (outcome, string, error)) error {
	label := typ
	if label == "" {
		label = "other"
	}
	opts := options.Find().SetSort(order).SetBatchSize(batchSize)
	if typ == typeAudit {
		// Sorting by document cannot use an index: let a large collection
		// sort on disk (MongoDB before 6.0 does not by default).
		opts.SetAllowDiskUse(true)
	}
	cur, err := r.cfg.Source.Find(ctx, filter, opts)
	if err != nil {
		return fmt.Errorf("read %s documents: %w", label, err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	counts := r.rep.byType(typ)
	for cur.Next(ctx) {
		doc := cur.Current
		counts.Read++
		p := Problem{Type: typ, ID: idString(doc.Lookup(fID))}
		if typ == "" {
			p.Type = typeString(doc.Lookup(fType))
		}
		var (
			res    outcome
			reason string
		)
		id, ok := doc.Lookup(fID).ObjectIDOK()
		switch {
		case handle == nil:
			res, reason = skipped, "unknown type"
			if absent(doc.Lookup(fType)) {
				reason = "no type"
			}
		case !ok:
			res, reason = skipped, "_id is not an ObjectId"
		default:
			if res, reason, err = handle(ctx, id, doc); err != nil {
				return fmt.Errorf("%s %s: %w", label, p.ID, err)
			}
		}
		switch res {
		case written:
			counts.Written++
		case existing:
			counts.Existing++
		case skipped:
			counts.Skipped++
			p.Reason = reason
			r.rep.Skipped = append(r.rep.Skipped, p)
			r.cfg.Logger.WarnContext(ctx, "migrate: skipped", "type", p.Type, "id", p.ID, "reason", reason)
		}
		r.tick()
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("read %s documents: %w", label, err)
	}
	r.cfg.Logger.InfoContext(ctx, "migrate: "+label+" done", "read", counts.Read, "written", counts.Written,
		"existing", counts.Existing, "skipped", counts.Skipped, "dry_run", r.cfg.DryRun)
	return nil
}

// tick writes a progress line when one is due.
func (r *runner) tick() {
	if r.cfg.Progress == nil {
		return
	}
	if now := r.cfg.Now(); now.Sub(r.lastLine) >= r.cfg.ProgressEvery {
		r.lastLine = now
		fmt.Fprintln(r.cfg.Progress, r.rep.progressLine())
	}
}

// note records remarks about a record that is written.
func (r *runner) note(typ, id string, notes []string) {
	for _, n := range notes {
		r.rep.Notes = append(r.rep.Notes, Problem{Type: typ, ID: id, Reason: n})
	}
}

// idString renders an _id for a report.
func idString(v bson.RawValue) string {
	if absent(v) {
		return "(none)"
	}
	if oid, ok := v.ObjectIDOK(); ok {
		return oid.Hex()
	}
	return v.String()
}

// typeString renders a type field for a report.
func typeString(v bson.RawValue) string {
	if absent(v) {
		return "(none)"
	}
	if s, ok := v.StringValueOK(); ok {
		return s
	}
	return v.String()
}

// conflict turns an ErrConflict from a create into a skip reason (and logs
// the store's error), and passes other errors on.
func (r *runner) conflict(ctx context.Context, err error, reason string) (outcome, string, error) {
	if errors.Is(err, idm.ErrConflict) {
		r.cfg.Logger.WarnContext(ctx, "migrate: the target refused a record", "reason", reason, "err", err)
		return skipped, reason, nil
	}
	return skipped, "", err
}

// notFound reports whether err says the record does not exist; other errors
// are returned.
func notFound(err error) (bool, error) {
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, idm.ErrNotFound):
		return true, nil
	}
	return false, err
}

func (r *runner) user(ctx context.Context, oid bson.ObjectID, doc bson.Raw) (outcome, string, error) {
	lu, err := toUser(oid, doc)
	if err != nil {
		// Keep the username, if there is one, for the actors of audits.
		if name, nerr := str(doc, fUsername); nerr == nil && name != "" {
			r.usernames[oid.Hex()] = idm.UsernameKey(name)
		}
		return skipped, err.Error(), nil
	}
	u := lu.user
	r.usernames[u.ID] = u.Username
	if other, ok := r.userIDs[u.Username]; ok {
		if first, ok := r.spellings[u.Username]; ok && first != lu.spelt {
			return skipped, fmt.Sprintf("username %+q collides after normalisation with user %s (%+q): both are %+q",
				clip(lu.spelt), other, clip(first), u.Username), nil
		}
		return skipped, fmt.Sprintf("username %q is already held by user %s", u.Username, other), nil
	}
	if _, err := r.cfg.Usernames.Normalize(u.Username); err != nil {
		lu.notes = append(lu.notes, fmt.Sprintf("username %+q breaks the username rule (%s): the user can still log in; "+
			"`idmd user list --check` lists such users", clip(u.Username), idm.MessageOf(err)))
	}
	_, err = r.cfg.Target.FindUserByID(ctx, u.ID)
	if missing, err := notFound(err); err != nil {
		return skipped, "", err
	} else if !missing {
		r.cameOver(u, lu.spelt)
		return existing, "", nil
	}
	other, err := idm.FindUserByUsername(ctx, r.cfg.Target, lu.spelt)
	if missing, err := notFound(err); err != nil {
		return skipped, "", err
	} else if !missing {
		return skipped, fmt.Sprintf("username %q is already held by user %s", u.Username, other.ID), nil
	}
	if !r.cfg.DryRun {
		if err := r.cfg.Target.CreateUser(ctx, u); err != nil {
			return r.conflict(ctx, err, "the target refused the user as a duplicate")
		}
	}
	r.cameOver(u, lu.spelt)
	if lu.resetToken {
		r.rep.DroppedResetTokens++
	}
	r.note(typeUser, u.ID, lu.notes)
	return written, "", nil
}

// cameOver records a user that is in the target, and the username as the
// source spelt it.
func (r *runner) cameOver(u idm.User, spelt string) {
	r.userIDs[u.Username] = u.ID
	r.spellings[u.Username] = spelt
	r.docTypes[u.ID] = idm.DocUser
	r.adminCame = r.adminCame || u.Admin
}

// bootstrap sets the bootstrap marker if an admin came over.
func (r *runner) bootstrap(ctx context.Context) error {
	if !r.adminCame {
		return nil
	}
	if r.cfg.DryRun {
		set, err := r.cfg.Target.Bootstrapped(ctx)
		if err != nil {
			return fmt.Errorf("bootstrap marker: %w", err)
		}
		r.rep.BootstrapMarked = !set
		return nil
	}
	err := r.cfg.Target.MarkBootstrapped(ctx, r.cfg.Now())
	switch {
	case err == nil:
		r.rep.BootstrapMarked = true
	case errors.Is(err, idm.ErrConflict): // set already
	default:
		return fmt.Errorf("bootstrap marker: %w", err)
	}
	return nil
}

func (r *runner) subject(ctx context.Context, oid bson.ObjectID, doc bson.Raw) (outcome, string, error) {
	s, notes, err := toSubject(oid, doc)
	if err != nil {
		return skipped, err.Error(), nil
	}
	notes = append(notes, r.addressable(&s)...)
	if other, ok := r.sssids[s.SSSID]; ok {
		return skipped, fmt.Sprintf("sssid %q is already held by subject %s", s.SSSID, other), nil
	}
	found, err := r.cfg.Target.FindSubject(ctx, s.SSSID)
	if missing, err := notFound(err); err != nil {
		return skipped, "", err
	} else if !missing {
		if found.ID != s.ID {
			return skipped, fmt.Sprintf("sssid %q is already held by subject %s", s.SSSID, found.ID), nil
		}
		r.subjectCame(s)
		return existing, "", nil
	}
	if !r.cfg.DryRun {
		if err := r.cfg.Target.CreateSubject(ctx, s); err != nil {
			return r.conflict(ctx, err, "the target refused the subject as a duplicate (its ID is held by a subject of another sssid)")
		}
	}
	r.subjectCame(s)
	r.note(typeSubject, s.ID, notes)
	return written, "", nil
}

// addressable reports, as notes, an SSSID that the API would refuse for a
// new subject (idm.CheckSSSID): one that a percent-encoded path segment
// reaches is kept, and the note says how to reach it; one that no path can
// address ("." or "..") is replaced by "migrated-<subject ID>", which the
// subject's links follow.
func (r *runner) addressable(s *idm.Subject) []string {
	err := idm.CheckSSSID(s.SSSID)
	if err == nil {
		return nil
	}
	why := idm.MessageOf(err)
	if seg, ok := idm.SSSIDPathSegment(s.SSSID); ok {
		return []string{fmt.Sprintf("%s; kept, it is reachable as /subject/%s (percent-encoded; see docs/sssids.md)", why, seg)}
	}
	renamed := "migrated-" + s.ID
	r.renamed[s.SSSID] = renamed
	note := fmt.Sprintf("%s, and no path can address it: brought over as sssid %q (its links too)", why, renamed)
	s.SSSID = renamed
	return []string{note}
}

func (r *runner) subjectCame(s idm.Subject) {
	r.sssids[s.SSSID] = s.ID
	r.docTypes[s.ID] = idm.DocSubject
}

func (r *runner) link(ctx context.Context, oid bson.ObjectID, doc bson.Raw) (outcome, string, error) {
	l, notes, err := toLink(oid, doc)
	if err != nil {
		return skipped, err.Error(), nil
	}
	if renamed, ok := r.renamed[l.SSSID]; ok {
		notes = append(notes, fmt.Sprintf("its subject's sssid %q was brought over as %q", l.SSSID, renamed))
		l.SSSID = renamed
	}
	_, err = r.cfg.Target.FindLink(ctx, l.ID)
	if missing, err := notFound(err); err != nil {
		return skipped, "", err
	} else if !missing {
		r.docTypes[l.ID] = idm.DocLink
		return existing, "", nil
	}
	if _, ok := r.sssids[l.SSSID]; !ok {
		// The subject may be in the target without coming from the source.
		_, err := r.cfg.Target.FindSubject(ctx, l.SSSID)
		if missing, err := notFound(err); err != nil {
			return skipped, "", err
		} else if missing {
			notes = append(notes, fmt.Sprintf("its subject %q is not in the target", l.SSSID))
		}
	}
	if !r.cfg.DryRun {
		if err := r.cfg.Target.CreateLink(ctx, l); err != nil {
			return r.conflict(ctx, err, "the target refused the link as a duplicate (of its ID or its JWT)")
		}
	}
	r.docTypes[l.ID] = idm.DocLink
	r.note(typeLink, l.ID, notes)
	return written, "", nil
}

// auditPass migrates audit records, which arrive in the original's order:
// it keeps the IDs of the target's records about each document it has seen,
// asking the target once per document.
type auditPass struct {
	*runner
	known map[string]map[string]bool // document -> IDs of its records in the target
}

func (a *auditPass) usernameOf(id string) (string, bool) {
	name, ok := a.usernames[id]
	return name, ok
}

func (a *auditPass) idOf(username string) (string, bool) {
	id, ok := a.userIDs[username]
	return id, ok
}

func (a *auditPass) audit(ctx context.Context, oid bson.ObjectID, doc bson.Raw) (outcome, string, error) {
	e, notes, err := toAudit(oid, doc, a)
	if err != nil {
		return skipped, err.Error(), nil
	}
	known, ok := a.known[e.Document]
	if !ok {
		have, err := a.cfg.Target.AuditsFor(ctx, e.Document)
		if err != nil {
			return skipped, "", err
		}
		known = make(map[string]bool, len(have))
		for _, h := range have {
			known[h.ID] = true
		}
		a.known[e.Document] = known
	}
	if known[e.ID] {
		return existing, "", nil
	}
	e.DocType = a.docTypes[e.Document]
	if e.DocType == "" {
		notes = append(notes, fmt.Sprintf("document %s is none of the users, subjects and links in the target: kept without a document type", e.Document))
	}
	if !a.cfg.DryRun {
		if err := a.cfg.Target.AppendAudit(ctx, e); err != nil {
			return a.conflict(ctx, err, "the target refused the audit record as a duplicate (its ID is held by a record about another document)")
		}
	}
	known[e.ID] = true
	if e.DocType == "" {
		a.rep.UnknownAuditDocuments++
	}
	a.note(typeAudit, e.ID, notes)
	return written, "", nil
}
