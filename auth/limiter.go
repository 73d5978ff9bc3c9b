package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/c3-pro/idm/idm"
)

// DefaultRateLimit is the default long-run rate of requests per client
// address: one per second.
const DefaultRateLimit rate.Limit = 1

// Defaults of [AddressLimiterConfig].
const (
	DefaultRateBurst  = 20      // requests at once per client address
	DefaultMaxClients = 100_000 // client addresses tracked at once
)

// AddressLimiterConfig configures [NewAddressLimiter].
type AddressLimiterConfig struct {
	// Rate is how many requests per second a client address may make in the
	// long run: 0 means 1; rate.Inf turns limiting off.
	Rate rate.Limit
	// Burst is how many requests a client address may make at once: 0 means
	// 20.
	Burst int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For header is
	// believed. A request from any other peer is keyed by the peer address.
	TrustedProxies []netip.Prefix
	// MaxClients bounds how many client addresses are tracked at once: 0
	// means 100 000. Buckets that are full again (idle for Burst/Rate) are
	// forgotten first, since a new bucket is the same; beyond the bound,
	// arbitrary buckets are forgotten.
	MaxClients int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives a line for every refused request; nil discards.
	Logger *slog.Logger
}

// AddressLimiter limits requests per client address with token buckets
// (golang.org/x/time/rate). IPv6 clients are keyed by their /64 prefix,
// since one host commonly holds a whole /64. The client address is the
// direct peer's, or, when the peer is a trusted proxy, the right-most
// address in X-Forwarded-For that is not a trusted proxy. Memory is bounded:
// idle buckets are dropped. An AddressLimiter is safe for concurrent use.
type AddressLimiter struct {
	rate    rate.Limit
	burst   int
	trusted []netip.Prefix
	max     int
	idle    time.Duration
	now     func() time.Time
	log     *slog.Logger

	mu        sync.Mutex
	clients   map[netip.Prefix]*client
	lastSweep time.Time
}

type client struct {
	lim  *rate.Limiter
	seen time.Time
}

// NewAddressLimiter validates c, fills in its defaults and returns an
// AddressLimiter.
func NewAddressLimiter(c AddressLimiterConfig) (*AddressLimiter, error) {
	if c.Rate == 0 {
		c.Rate = DefaultRateLimit
	}
	if c.Rate < 0 || math.IsNaN(float64(c.Rate)) {
		return nil, fmt.Errorf("auth: rate limit %v is negative", c.Rate)
	}
	if c.Burst == 0 {
		c.Burst = DefaultRateBurst
	}
	if c.Burst < 1 {
		return nil, fmt.Errorf("auth: rate burst %d is below 1", c.Burst)
	}
	if c.MaxClients == 0 {
		c.MaxClients = DefaultMaxClients
	}
	if c.MaxClients < 1 {
		return nil, fmt.Errorf("auth: client limit %d is below 1", c.MaxClients)
	}
	for _, p := range c.TrustedProxies {
		if !p.IsValid() {
			return nil, errors.New("auth: an invalid trusted-proxy prefix")
		}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	l := &AddressLimiter{
		rate: c.Rate, burst: c.Burst, max: c.MaxClients, now: c.Now, log: c.Logger,
		clients: map[netip.Prefix]*client{},
	}
	for _, p := range c.TrustedProxies {
		l.trusted = append(l.trusted, p.Masked())
	}
	if c.Rate != rate.Inf {
		// After this long without requests a bucket is full again.
		l.idle = time.Duration(float64(c.Burst)/float64(c.Rate)*float64(time.Second)) + time.Second
	}
	return l, nil
}

// Allow reports whether a request from r's client address may go ahead now
// and takes a token if so; if not, retryAfter says when one will be
// available.
func (l *AddressLimiter) Allow(r *http.Request) (ok bool, retryAfter time.Duration) {
	return l.AllowAddr(l.ClientAddr(r))
}

// AllowAddr is [AddressLimiter.Allow] for a known client address. An
// invalid address (a request whose peer could not be parsed) shares one
// bucket with all such requests.
func (l *AddressLimiter) AllowAddr(addr netip.Addr) (ok bool, retryAfter time.Duration) {
	if l.rate == rate.Inf {
		return true, 0
	}
	key := clientKey(addr)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	c, found := l.clients[key]
	if !found {
		l.makeRoom()
		c = &client{lim: rate.NewLimiter(l.rate, l.burst)}
		l.clients[key] = c
	}
	c.seen = now
	res := c.lim.ReserveN(now, 1)
	if !res.OK() {
		return false, l.idle
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweep drops buckets idle long enough to be full again, at most twice per
// idle period or whenever the bound is reached. l.mu is held.
func (l *AddressLimiter) sweep(now time.Time) {
	if len(l.clients) < l.max && now.Sub(l.lastSweep) < l.idle/2 {
		return
	}
	for k, c := range l.clients {
		if now.Sub(c.seen) >= l.idle {
			delete(l.clients, k)
		}
	}
	l.lastSweep = now
}

// makeRoom drops arbitrary buckets while max or more are tracked. l.mu is
// held.
func (l *AddressLimiter) makeRoom() {
	for k := range l.clients {
		if len(l.clients) < l.max {
			break
		}
		delete(l.clients, k)
	}
}

// Len returns how many client addresses are tracked.
func (l *AddressLimiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}

// ClientAddr returns the address of the client that sent r: the direct
// peer's, unless the peer is a trusted proxy; then the right-most address in
// X-Forwarded-For that is not a trusted proxy (or the left-most one when all
// are trusted). An entry that is not an IP address ends the walk at the
// proxy that added it. The result is the zero Addr when even the peer
// address cannot be parsed.
func (l *AddressLimiter) ClientAddr(r *http.Request) netip.Addr {
	peer := parseHost(r.RemoteAddr)
	if !peer.IsValid() || !l.isTrusted(peer) {
		return peer
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	addr := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a := parseHost(strings.TrimSpace(hops[i]))
		if !a.IsValid() {
			return addr
		}
		addr = a
		if !l.isTrusted(a) {
			return a
		}
	}
	return addr
}

func (l *AddressLimiter) isTrusted(a netip.Addr) bool {
	for _, p := range l.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHost parses an address with or without a port, dropping any zone and
// unmapping IPv4-in-IPv6.
func parseHost(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

// clientKey is the bucket key of an address: the address itself for IPv4,
// its /64 for IPv6.
func clientKey(a netip.Addr) netip.Prefix {
	if !a.IsValid() {
		return netip.Prefix{}
	}
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// middleware returns next guarded by the limiter: a refused request gets a
// JSON 429 "too many requests; try again later" with Retry-After.
func (l *AddressLimiter) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := l.ClientAddr(r)
		if ok, retry := l.AllowAddr(addr); !ok {
			l.log.InfoContext(r.Context(), "request throttled", "address", addr.String(), "method", r.Method, "path", r.URL.Path)
			WriteTooMany(w, r, retry, "too many requests; try again later")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// WriteTooMany writes a JSON 429 with the message and a Retry-After of
// retryAfter rounded up to whole seconds (at least 1).
func WriteTooMany(w http.ResponseWriter, r *http.Request, retryAfter time.Duration, message string) {
	w.Header().Set("Retry-After", strconv.FormatInt(retrySeconds(retryAfter), 10))
	idm.WriteError(w, r, nil, idm.E(idm.ErrTooMany, message))
}

func retrySeconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}
