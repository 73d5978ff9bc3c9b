package auth

import (
	"sync"
	"time"
)

// verifiedCacheSize is how many verified staff tokens a [Handler] remembers
// per generation (see verifiedCache): far more than a study has staff
// sessions at once, and at a few hundred bytes each at most about a
// megabyte in all.
const verifiedCacheSize = 1024

// verifiedCache remembers staff tokens whose signature, header and claims
// have been verified, so that a token's JSON is decoded and its signature
// computed once rather than on every request. It never changes what is
// accepted: the key set, issuer and audience of a Handler never change, so
// the outcome of those checks for a given token string never changes
// either; the checks that depend on the clock (exp, nbf and iat, with the
// leeway) run again on every hit, exactly as jwt/v5 runs them. Only tokens
// that passed are kept, so filling the cache takes tokens that this service
// signed. Revocation is unaffected: it is the user lookup after the token
// check ([Handler.Authenticate]) that refuses a revoked token, and that
// lookup runs on every request.
//
// It holds two generations of at most max entries each: when the current
// one is full it becomes the previous one and a new one starts, and a hit
// in the previous one moves the entry into the current one. So the tokens
// in use stay, memory stays bounded, and no clean-up runs in the
// background.
type verifiedCache struct {
	max  int
	mu   sync.RWMutex
	cur  map[string]*verifiedToken
	prev map[string]*verifiedToken
}

// verifiedToken is what a verified staff token is known to say.
type verifiedToken struct {
	claims StaffClaims
	nbf    time.Time // zero when the token has no nbf
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{max: max, cur: make(map[string]*verifiedToken)}
}

// get returns what the token was verified to say, if it is known.
func (c *verifiedCache) get(token string) (*verifiedToken, bool) {
	c.mu.RLock()
	v, ok := c.cur[token]
	c.mu.RUnlock()
	if ok {
		return v, true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok = c.cur[token]; ok {
		return v, true
	}
	if v, ok = c.prev[token]; ok {
		delete(c.prev, token)
		c.putLocked(token, v)
	}
	return v, ok
}

// put remembers a verified token.
func (c *verifiedCache) put(token string, v *verifiedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(token, v)
}

func (c *verifiedCache) putLocked(token string, v *verifiedToken) {
	if len(c.cur) >= c.max {
		c.prev, c.cur = c.cur, make(map[string]*verifiedToken, c.max)
	}
	c.cur[token] = v
}

// forget drops a token, e.g. one that has expired.
func (c *verifiedCache) forget(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.cur, token)
	delete(c.prev, token)
}

// len returns the number of remembered tokens.
func (c *verifiedCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.cur) + len(c.prev)
}

// validAt reports whether a verified token's time claims admit it at now
// with the given leeway, by the rules of jwt/v5's validator: now before
// exp+leeway, and not before iat-leeway or nbf-leeway.
func (v *verifiedToken) validAt(now time.Time, leeway time.Duration) bool {
	if !now.Before(v.claims.Expires.Add(leeway)) {
		return false
	}
	if now.Before(v.claims.IssuedAt.Add(-leeway)) {
		return false
	}
	return v.nbf.IsZero() || !now.Before(v.nbf.Add(-leeway))
}
