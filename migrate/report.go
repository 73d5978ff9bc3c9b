package migrate

import (
	"fmt"
	"strings"
)

// Counts says what happened to the documents of one type.
type Counts struct {
	// Read is the number of documents read from the source.
	Read int
	// Written is the number of records written to the target (in a dry run:
	// the number that would be written).
	Written int
	// Existing is the number of records left alone because the target
	// already has a record with their ID.
	Existing int
	// Skipped is the number of documents that could not be brought over
	// (each is listed in [Report.Skipped]).
	Skipped int
}

// String renders the counts on one line.
func (c Counts) String() string {
	return fmt.Sprintf("%d read, %d written, %d existing, %d skipped", c.Read, c.Written, c.Existing, c.Skipped)
}

// Problem names a document of the source and says something about it.
type Problem struct {
	// Type is the document's type ("user", "subject", "link", "audit", or
	// whatever else its type field held).
	Type string
	// ID is the document's _id: 24 hex characters for an ObjectId, or the
	// value in MongoDB's extended JSON otherwise.
	ID string
	// Reason says what is wrong (for a skipped document) or what was done
	// (for a note).
	Reason string
}

// String renders the problem on one line.
func (p Problem) String() string {
	return fmt.Sprintf("%s %s: %s", p.Type, p.ID, p.Reason)
}

// Report says what a migration did (or, in a dry run, would do).
type Report struct {
	// DryRun is set when nothing was written.
	DryRun bool
	// Per-type counts. Other counts the documents of any other type, or of
	// none, which are all skipped.
	Users, Subjects, Links, Audits, Other Counts
	// DroppedResetTokens is the number of pending password-reset tokens of
	// the users written: the original kept them in plain text, so they are
	// not brought over (the users can ask for a new link).
	DroppedResetTokens int
	// UnknownAuditDocuments is the number of audit records written whose
	// document is none of the users, subjects and links in the target; they
	// are kept with an empty DocType.
	UnknownAuditDocuments int
	// BootstrapMarked is set when this run set the one-time bootstrap
	// marker (in a dry run: would set it), which it does when an admin
	// came over and the marker was not yet set.
	BootstrapMarked bool
	// Skipped lists every document that was not brought over, in the order
	// they were read.
	Skipped []Problem
	// Notes lists remarks about records that were written: values kept in
	// another form (a BSON date as an RFC 3339 string), times that had to
	// fall back to the ObjectId time, fields left out, users without a
	// password, links whose subject is missing, audit records about unknown
	// documents.
	Notes []Problem
}

// Written returns the number of records written (in a dry run: that would
// be written) over all types.
func (r Report) Written() int {
	return r.Users.Written + r.Subjects.Written + r.Links.Written + r.Audits.Written + r.Other.Written
}

// Read returns the number of documents read over all types.
func (r Report) Read() int {
	return r.Users.Read + r.Subjects.Read + r.Links.Read + r.Audits.Read + r.Other.Read
}

// Changed reports whether the run changed (in a dry run: would change) the
// target: a record written or the bootstrap marker set. A second run of the
// same migration reports false.
func (r Report) Changed() bool {
	return r.Written() > 0 || r.BootstrapMarked
}

// byType returns the counts of a document type.
func (r *Report) byType(typ string) *Counts {
	switch typ {
	case typeUser:
		return &r.Users
	case typeSubject:
		return &r.Subjects
	case typeLink:
		return &r.Links
	case typeAudit:
		return &r.Audits
	}
	return &r.Other
}

// progressLine renders the counts so far on one line.
func (r Report) progressLine() string {
	return fmt.Sprintf("migrate: users %s; subjects %s; links %s; audits %s; other %s",
		r.Users, r.Subjects, r.Links, r.Audits, r.Other)
}

// String renders the report for an operator: the counts per type, the
// totals, then every skipped document and every note, one per line.
func (r Report) String() string {
	var b strings.Builder
	if r.DryRun {
		b.WriteString("dry run: nothing was written; \"written\" counts what would be written\n")
	}
	for _, t := range []struct {
		name string
		c    Counts
	}{{"users", r.Users}, {"subjects", r.Subjects}, {"links", r.Links}, {"audits", r.Audits}, {"other", r.Other}} {
		fmt.Fprintf(&b, "%-9s %s\n", t.name+":", t.c)
	}
	fmt.Fprintf(&b, "dropped reset tokens: %d\n", r.DroppedResetTokens)
	fmt.Fprintf(&b, "audit records about unknown documents: %d\n", r.UnknownAuditDocuments)
	marker := "unchanged"
	if r.BootstrapMarked {
		marker = "set"
	}
	fmt.Fprintf(&b, "bootstrap marker: %s\n", marker)
	fmt.Fprintf(&b, "skipped: %d\n", len(r.Skipped))
	for _, p := range r.Skipped {
		fmt.Fprintf(&b, "  %s\n", p)
	}
	fmt.Fprintf(&b, "notes: %d\n", len(r.Notes))
	for _, p := range r.Notes {
		fmt.Fprintf(&b, "  %s\n", p)
	}
	return b.String()
}
