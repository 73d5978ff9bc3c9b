package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/text/unicode/norm"

	"github.com/c3-pro/idm/idm"
)

// DefaultCost is the bcrypt cost of new password hashes unless
// [PasswordConfig.Cost] says otherwise.
const DefaultCost = 12

// SchemePrefix marks password hashes of the current scheme: bcrypt of the
// standard base64 encoding of the SHA-256 of the NFC-normalised password.
// The pre-hash makes every byte of a long password count (bcrypt itself
// reads only the first 72 bytes) and keeps NUL bytes out of bcrypt's input.
// A hash of this scheme reads "$idm-sha256-bcrypt$" followed by a standard
// bcrypt hash ("$2a$12$...").
const SchemePrefix = "$idm-sha256-bcrypt$"

// ErrHashFormat is returned (wrapped) by [Passwords.Verify] for a stored hash
// that is neither of the current scheme nor a legacy bcrypt hash.
var ErrHashFormat = errors.New("auth: unrecognised password hash")

// PasswordConfig configures [NewPasswords].
type PasswordConfig struct {
	// Cost is the bcrypt cost of new hashes: 0 means DefaultCost (12).
	// Production must not go below 12; tests may use bcrypt.MinCost. A
	// stored hash of a lower cost verifies and is reported as needing a
	// rehash.
	Cost int
	// MinLength is the least number of characters (Unicode code points after
	// NFC normalisation) a new password must have: 0 means 8.
	MinLength int
	// Workers is the number of hashes computed at once: 0 means
	// runtime.GOMAXPROCS(0), one per core.
	Workers int
	// MaxQueue is how many callers may wait for a worker before further ones
	// are refused with idm.ErrUnavailable: 0 means 64 per worker. Callers are
	// never refused while fewer than MaxQueue wait; a waiting caller gives up
	// when its context ends.
	MaxQueue int
	// Niceness is the scheduling niceness (1 to 19, as nice(1) counts) of
	// the OS threads that compute hashes, so that a flood of logins, which
	// keeps every worker busy, yields the CPU to the service's other
	// requests instead of sharing it equally with them. 0 (or a negative
	// value) leaves hashing on the callers' goroutines at their priority,
	// so that a host program that embeds the library keeps its threads as
	// they are; idmd sets [DefaultHashNiceness]. It takes effect on Linux
	// only.
	Niceness int
}

// MaxPasswordLength is the most characters (code points after NFC) a new
// password may have.
const MaxPasswordLength = 128

// Passwords hashes and verifies passwords and checks them against the
// password policy. Hashing and comparing run on a bounded pool of workers
// that callers queue for, optionally on threads of lowered priority (see
// [PasswordConfig.Niceness]). A Passwords is safe for concurrent use.
type Passwords struct {
	cost      int
	minLength int
	sem       chan struct{}
	threads   *hashThreads // nil: hash on the caller's goroutine
	waiting   atomic.Int64
	maxQueue  int64
	dummy     []byte // a hash of the current scheme at cost, of a random password
	common    string // see commonPasswords
	onRun     func() // when set (by tests), called on a worker before each hash or comparison
}

// NewPasswords validates c, fills in its defaults and returns a Passwords.
// It computes a dummy hash at the configured cost (for [Passwords.DummyVerify])
// and so takes as long as one hash.
func NewPasswords(c PasswordConfig) (*Passwords, error) {
	if c.Cost == 0 {
		c.Cost = DefaultCost
	}
	if c.Cost < bcrypt.MinCost || c.Cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("auth: bcrypt cost %d is outside %d..%d", c.Cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	if c.MinLength == 0 {
		c.MinLength = 8
	}
	if c.MinLength < 1 || c.MinLength > MaxPasswordLength {
		return nil, fmt.Errorf("auth: minimum password length %d is outside 1..%d", c.MinLength, MaxPasswordLength)
	}
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.Workers < 1 {
		return nil, fmt.Errorf("auth: %d hashing workers", c.Workers)
	}
	if c.MaxQueue == 0 {
		c.MaxQueue = 64 * c.Workers
	}
	if c.MaxQueue < 1 {
		return nil, fmt.Errorf("auth: hashing queue limit %d", c.MaxQueue)
	}
	if c.Niceness > 19 {
		return nil, fmt.Errorf("auth: hashing niceness %d is above 19", c.Niceness)
	}
	p := &Passwords{
		cost:      c.Cost,
		minLength: c.MinLength,
		sem:       make(chan struct{}, c.Workers),
		maxQueue:  int64(c.MaxQueue),
		common:    commonPasswords(),
	}
	if c.Niceness > 0 {
		p.threads = newHashThreads(c.Niceness)
	}
	dummy, err := bcrypt.GenerateFromPassword(prehash(rand.Text()), p.cost)
	if err != nil {
		return nil, fmt.Errorf("auth: computing the dummy hash: %w", err)
	}
	p.dummy = dummy
	return p, nil
}

// Cost returns the bcrypt cost of new hashes.
func (p *Passwords) Cost() int { return p.cost }

// MinLength returns the least number of characters a new password must have.
func (p *Passwords) MinLength() int { return p.minLength }

// Hash returns the encoded hash of pw in the current scheme (see
// [SchemePrefix]). It does not apply the policy; call [Passwords.Check] first.
// It waits for a free worker, and fails when ctx ends first or the queue is
// full (idm.ErrUnavailable).
func (p *Passwords) Hash(ctx context.Context, pw string) (string, error) {
	if pw == "" {
		return "", idm.E(idm.ErrInvalid, "password must not be empty")
	}
	var (
		h    []byte
		herr error
	)
	if err := p.run(ctx, func() { h, herr = bcrypt.GenerateFromPassword(prehash(pw), p.cost) }); err != nil {
		return "", err
	}
	if herr != nil {
		return "", fmt.Errorf("auth: hashing a password: %w", herr)
	}
	return SchemePrefix + string(h), nil
}

// Verify reports whether pw matches the encoded hash, and whether the hash
// should be replaced by a fresh [Passwords.Hash] of pw after a successful
// login: a legacy bcrypt hash ("$2a$", "$2b$", "$2y$": bcrypt of the raw
// password, as the original Python service stored them) or a hash whose cost
// is below the configured one. Comparisons take constant time. An empty
// encoded hash (a user who never set a password) runs a dummy comparison and
// does not match. A hash of an unknown format runs a dummy comparison and
// gives an error wrapping [ErrHashFormat]. Other errors come from waiting for
// a worker (ctx ended, or the queue is full: idm.ErrUnavailable).
func (p *Passwords) Verify(ctx context.Context, encoded, pw string) (ok, needsRehash bool, err error) {
	var (
		hash  []byte
		input []byte
	)
	switch {
	case strings.HasPrefix(encoded, SchemePrefix):
		hash, input = []byte(encoded[len(SchemePrefix):]), prehash(pw)
	case isLegacy(encoded):
		hash, input = []byte(encoded), []byte(pw)
	default:
		if err := p.DummyVerify(ctx, pw); err != nil {
			return false, false, err
		}
		if encoded == "" {
			return false, false, nil
		}
		return false, false, ErrHashFormat
	}
	cost, cerr := bcrypt.Cost(hash)
	if cerr != nil {
		if err := p.DummyVerify(ctx, pw); err != nil {
			return false, false, err
		}
		return false, false, fmt.Errorf("%w: %w", ErrHashFormat, cerr)
	}
	var cmpErr error
	if err := p.run(ctx, func() { cmpErr = bcrypt.CompareHashAndPassword(hash, input) }); err != nil {
		return false, false, err
	}
	switch {
	case cmpErr == nil:
		return true, isLegacy(encoded) || cost < p.cost, nil
	case errors.Is(cmpErr, bcrypt.ErrMismatchedHashAndPassword):
		return false, false, nil
	default:
		return false, false, fmt.Errorf("%w: %w", ErrHashFormat, cmpErr)
	}
}

// DummyVerify compares pw against a precomputed hash at the configured cost,
// through the same workers, so that a login for an unknown user takes as
// long as one for a known user. It fails only when waiting for a worker
// fails.
func (p *Passwords) DummyVerify(ctx context.Context, pw string) error {
	return p.run(ctx, func() { _ = bcrypt.CompareHashAndPassword(p.dummy, prehash(pw)) })
}

// needsRehash reports whether an encoded hash is of a legacy scheme or below
// the configured cost, without verifying a password.
func (p *Passwords) needsRehash(encoded string) bool {
	h := encoded
	if strings.HasPrefix(encoded, SchemePrefix) {
		h = encoded[len(SchemePrefix):]
	} else if isLegacy(encoded) {
		return true
	}
	cost, err := bcrypt.Cost([]byte(h))
	return err != nil || cost < p.cost
}

// run runs f on a worker: it waits for a free slot (at most maxQueue callers
// wait at once) or for ctx to end.
func (p *Passwords) run(ctx context.Context, f func()) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("auth: waiting for a hashing worker: %w", err)
	}
	select {
	case p.sem <- struct{}{}:
	default:
		if p.waiting.Add(1) > p.maxQueue {
			p.waiting.Add(-1)
			return idm.E(idm.ErrUnavailable, "too many logins at once; try again later")
		}
		select {
		case p.sem <- struct{}{}:
			p.waiting.Add(-1)
		case <-ctx.Done():
			p.waiting.Add(-1)
			return fmt.Errorf("auth: waiting for a hashing worker: %w", ctx.Err())
		}
	}
	defer func() { <-p.sem }()
	if p.onRun != nil {
		p.onRun()
	}
	if p.threads != nil {
		p.threads.do(f)
	} else {
		f()
	}
	return nil
}

// prehash returns the bcrypt input of the current scheme for pw.
func prehash(pw string) []byte {
	sum := sha256.Sum256([]byte(norm.NFC.String(pw)))
	out := make([]byte, base64.StdEncoding.EncodedLen(len(sum)))
	base64.StdEncoding.Encode(out, sum[:])
	return out
}

// isLegacy reports whether encoded is a plain bcrypt hash.
func isLegacy(encoded string) bool {
	return strings.HasPrefix(encoded, "$2a$") || strings.HasPrefix(encoded, "$2b$") || strings.HasPrefix(encoded, "$2y$")
}
