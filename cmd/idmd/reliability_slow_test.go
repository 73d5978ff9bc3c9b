package main_test

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// idmd's header timeout (serve.go, readHeaderTimeout): a connection that
// has not sent its headers within it is closed.
const headerTimeout = 10 * time.Second

// slowConn is a connection of a slow client and when the server closed it.
type slowConn struct {
	kind   string
	closed time.Duration // since the connection was opened; 0 while open
}

// TestSlowClients opens connections that send their headers a few bytes at
// a time (slow loris), that send nothing at all, and that trickle a body,
// and checks that idmd serves everybody else meanwhile and closes the
// header-less ones after its header timeout.
func TestSlowClients(t *testing.T) {
	t.Parallel()
	p := start(t, baseEnv(t))
	token := bootstrap(t, p.url)
	addr := strings.TrimPrefix(p.url, "http://")

	const (
		slowHeaders = 60
		silent      = 20
		slowBodies  = 10
		drip        = 500 * time.Millisecond
	)
	stop := make(chan struct{})
	var (
		mu    sync.Mutex
		conns []*slowConn
		wg    sync.WaitGroup
	)
	t.Cleanup(wg.Wait) // after the connections are closed (cleanups run last in, first out)
	open := func(kind, first string, next func(i int) string) {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		opened := time.Now()
		sc := &slowConn{kind: kind}
		mu.Lock()
		conns = append(conns, sc)
		mu.Unlock()
		if first != "" {
			_, err = c.Write([]byte(first))
			require.NoError(t, err)
		}
		// The reader notices when the server closes the connection.
		wg.Go(func() {
			_ = c.SetReadDeadline(opened.Add(headerTimeout + 20*time.Second))
			buf := make([]byte, 4096)
			for {
				if _, err := c.Read(buf); err != nil {
					mu.Lock()
					sc.closed = time.Since(opened)
					mu.Unlock()
					return
				}
			}
		})
		if next == nil {
			return
		}
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(drip):
				}
				if _, err := c.Write([]byte(next(i))); err != nil {
					return
				}
			}
		})
	}
	began := time.Now()
	for i := range slowHeaders {
		open("slow headers", fmt.Sprintf("GET /readyz HTTP/1.1\r\nHost: x\r\nX-Slow-%d: ", i),
			func(int) string { return "a" }) // one byte of a header value every drip: never ends
	}
	for range silent {
		open("silent", "", nil)
	}
	body := `{"sssid":"slow-1","name":"Slow","bday":"1980-05-17"}`
	for range slowBodies {
		open("slow body", fmt.Sprintf("POST /subject HTTP/1.1\r\nHost: x\r\nAuthorization: JWT %s\r\n"+
			"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", token, len(body)+1000),
			func(i int) string { return " " }) // whitespace before the JSON, a byte every drip
	}

	// While they hang on, everybody else is served promptly.
	c := newClient(t, canaryAnswer)
	var served int
	var slowest time.Duration
	allClosed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, sc := range conns {
			if sc.kind != "slow body" && sc.closed == 0 {
				return false
			}
		}
		return true
	}
	for i := 0; !allClosed(); i++ {
		require.Less(t, time.Since(began), headerTimeout+10*time.Second, "slow connections still open")
		path := []string{"/readyz", "/user/me", "/subject?perpage=10"}[i%3]
		t0 := time.Now()
		status, b, err := send(t.Context(), c, "GET", p.url+path, token, "")
		d := time.Since(t0)
		require.NoError(t, err, "GET %s while slow clients hang on", path)
		require.Equal(t, http.StatusOK, status, "GET %s: %s", path, b)
		served++
		slowest = max(slowest, d)
		if i%20 == 0 { // a write, too
			r := call(t, "POST", p.url+"/subject", token, fmt.Sprintf(`{"sssid":"during-%d","name":"During","bday":"1980-05-17"}`, i))
			require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)

	// The header-less connections were closed by the header timeout: not
	// long before it, and not long after.
	mu.Lock()
	byKind := map[string][]time.Duration{}
	openBodies := 0
	for _, sc := range conns {
		if sc.kind == "slow body" {
			if sc.closed == 0 {
				openBodies++
			}
			continue
		}
		byKind[sc.kind] = append(byKind[sc.kind], sc.closed)
	}
	mu.Unlock()
	for kind, ds := range byKind {
		slices.Sort(ds)
		require.GreaterOrEqual(t, ds[0], headerTimeout-time.Second, "%s: closed before the header timeout", kind)
		require.LessOrEqual(t, ds[len(ds)-1], headerTimeout+5*time.Second, "%s: closed long after the header timeout", kind)
		t.Logf("%d %s connections closed by idmd after %v to %v", len(ds), kind, ds[0].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond))
	}
	t.Logf("meanwhile %d requests of others served, slowest %v; %d of %d slow-body connections still open (bounded by the 30 s read timeout)",
		served, slowest.Round(time.Millisecond), openBodies, slowBodies)
	r := call(t, "GET", p.url+"/readyz", "", "")
	require.Equal(t, http.StatusOK, r.status)
}
