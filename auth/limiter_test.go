package auth_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/c3-pro/idm/auth"
)

func TestAddressLimiterClientAddr(t *testing.T) {
	l, err := auth.NewAddressLimiter(auth.AddressLimiterConfig{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8"),
	}})
	require.NoError(t, err)
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"direct client", "198.51.100.4:5555", nil, "198.51.100.4"},
		{"direct client, XFF ignored", "198.51.100.4:5555", []string{"203.0.113.9"}, "198.51.100.4"},
		{"trusted proxy", "10.1.2.3:80", []string{"203.0.113.9"}, "203.0.113.9"},
		{"trusted proxy, no XFF", "10.1.2.3:80", nil, "10.1.2.3"},
		{"right-most untrusted wins", "10.1.2.3:80", []string{"1.2.3.4, 203.0.113.9, 10.9.9.9"}, "203.0.113.9"},
		{"spoofed left part ignored", "10.1.2.3:80", []string{"6.6.6.6", "203.0.113.9"}, "203.0.113.9"},
		{"all trusted", "10.1.2.3:80", []string{"10.0.0.1, 10.0.0.2"}, "10.0.0.1"},
		{"junk entry stops at the proxy that added it", "10.1.2.3:80", []string{"203.0.113.9, junk, 10.0.0.7"}, "10.0.0.7"},
		{"XFF with port", "10.1.2.3:80", []string{"203.0.113.9:1234"}, "203.0.113.9"},
		{"IPv6 peer", "[2001:db8::1]:443", nil, "2001:db8::1"},
		{"IPv6 via trusted IPv6 proxy", "[fd00::2]:443", []string{"[2001:db8::7]"}, "2001:db8::7"},
		{"IPv4-mapped IPv6", "[::ffff:198.51.100.4]:1", nil, "198.51.100.4"},
		{"unparsable peer", "pipe", nil, "invalid IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/auth", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			assert.Equal(t, tt.want, l.ClientAddr(r).String())
		})
	}
}

func TestAddressLimiterBuckets(t *testing.T) {
	c := newClock()
	l, err := auth.NewAddressLimiter(auth.AddressLimiterConfig{Rate: 2, Burst: 3, Now: c.Now, MaxClients: 50})
	require.NoError(t, err)
	a := netip.MustParseAddr("198.51.100.4")
	for i := range 3 {
		ok, _ := l.AllowAddr(a)
		require.True(t, ok, "request %d", i)
	}
	ok, retry := l.AllowAddr(a)
	require.False(t, ok)
	assert.Equal(t, 500*time.Millisecond, retry)
	ok, _ = l.AllowAddr(netip.MustParseAddr("198.51.100.5"))
	assert.True(t, ok, "another address has its own bucket")
	c.Advance(500 * time.Millisecond)
	ok, _ = l.AllowAddr(a)
	assert.True(t, ok, "refilled")

	t.Run("IPv6 keyed by /64", func(t *testing.T) {
		for i := range 3 {
			ok, _ := l.AllowAddr(netip.MustParseAddr("2001:db8:1:2::" + strconv.Itoa(i+1)))
			require.True(t, ok)
		}
		ok, _ := l.AllowAddr(netip.MustParseAddr("2001:db8:1:2:ffff::1"))
		assert.False(t, ok, "same /64")
		ok, _ = l.AllowAddr(netip.MustParseAddr("2001:db8:1:3::1"))
		assert.True(t, ok, "other /64")
	})
	t.Run("memory is bounded", func(t *testing.T) {
		for i := range 200 {
			l.AllowAddr(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}))
		}
		assert.LessOrEqual(t, l.Len(), 50)
		c.Advance(time.Minute)
		l.AllowAddr(a)
		assert.Equal(t, 1, l.Len(), "idle buckets are dropped")
	})
	t.Run("off", func(t *testing.T) {
		off, err := auth.NewAddressLimiter(auth.AddressLimiterConfig{Rate: rate.Inf})
		require.NoError(t, err)
		for range 100 {
			ok, _ := off.AllowAddr(a)
			require.True(t, ok)
		}
	})
}

func TestAddressLimiterMiddleware(t *testing.T) {
	c := newClock()
	l, err := auth.NewAddressLimiter(auth.AddressLimiterConfig{Rate: 1, Burst: 2, Now: c.Now})
	require.NoError(t, err)
	srv := httptest.NewServer(l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})))
	t.Cleanup(srv.Close)
	var statuses []int
	var last *http.Response
	for range 3 {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/iforgot", nil)
		require.NoError(t, err)
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
		last = resp
	}
	assert.Equal(t, []int{http.StatusNoContent, http.StatusNoContent, http.StatusTooManyRequests}, statuses)
	assert.Equal(t, "1", last.Header.Get("Retry-After"))
	assert.Equal(t, "application/json", last.Header.Get("Content-Type"))
}

func TestWriteTooMany(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{{0, "1"}, {time.Millisecond, "1"}, {time.Second, "1"}, {1001 * time.Millisecond, "2"}, {15 * time.Minute, "900"}} {
		rec := httptest.NewRecorder()
		auth.WriteTooMany(rec, httptest.NewRequest(http.MethodGet, "/", nil), tt.d, "slow down")
		assert.Equal(t, http.StatusTooManyRequests, rec.Code)
		assert.Equal(t, tt.want, rec.Header().Get("Retry-After"), tt.d.String())
		assert.JSONEq(t, `{"error":{"status":429,"message":"slow down"}}`, rec.Body.String())
	}
}
