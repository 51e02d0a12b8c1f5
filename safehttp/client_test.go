package safehttp

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

func newClient(t testing.TB, cfg *Config) *Client {
	t.Helper()
	c, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func newServer(t testing.TB, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func newTLSServer(t testing.TB, h http.HandlerFunc) (*httptest.Server, *x509.CertPool) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake errors are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return srv, pool
}

func ok(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }

func do(t testing.TB, c *Client, method, u string) (*Response, error) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	require.NoError(t, err)
	return c.Do(context.Background(), req)
}

// requireClass asserts err is an *Error of the class and returns it.
func requireClass(t testing.TB, err error, class Class) *Error {
	t.Helper()
	require.Error(t, err)
	e, ok := errors.AsType[*Error](err)
	require.True(t, ok, "%T: %v", err, err)
	require.Equal(t, class, e.Class, "%v", err)
	require.Equal(t, string(class), e.ErrorClass())
	return e
}

// hostResolver answers every name with addrs and counts the calls.
func hostResolver(calls *atomic.Int32, addrs ...string) LookupFunc {
	return func(context.Context, string, string) ([]netip.Addr, error) {
		calls.Add(1)
		out := make([]netip.Addr, len(addrs))
		for i, a := range addrs {
			out[i] = netip.MustParseAddr(a)
		}
		return out, nil
	}
}

func noDial(t testing.TB) func(context.Context, string, string) (net.Conn, error) {
	return func(_ context.Context, _, address string) (net.Conn, error) {
		t.Errorf("dialed %s", address)
		return nil, errors.New("test: dial not expected")
	}
}

func TestNewValidates(t *testing.T) {
	for field, cfg := range map[string]*Config{
		"Config.Timeout":    {Timeout: -time.Second},
		"Config.MaxBody":    {MaxBody: -1},
		"Config.DrainLimit": {DrainLimit: -1},
	} {
		_, err := New(cfg)
		require.ErrorContains(t, err, field)
	}
	c := newClient(t, nil)
	require.Equal(t, 15*time.Second, c.timeout)
	require.Equal(t, 16<<10, c.maxBody)
	require.Equal(t, int64(64<<10), c.drainLimit)
	require.Equal(t, "outhook/0.1.0", c.userAgent)
	require.Nil(t, c.transport.Proxy)
	require.Equal(t, 10*time.Second, c.transport.TLSHandshakeTimeout)
}

func TestAllowListLoopback(t *testing.T) {
	var hits atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		ok(w, r)
	})

	resp, err := do(t, newClient(t, &Config{Allow: loopback}), "GET", srv.URL)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "200 OK", resp.Status)
	require.Equal(t, "ok", string(resp.Body))
	require.False(t, resp.Truncated)

	c := newClient(t, nil)
	_, err = do(t, c, "GET", srv.URL)
	e := requireClass(t, err, ClassBlocked)
	require.ErrorIs(t, err, ErrBlocked)
	require.True(t, e.Permanent())
	require.Equal(t, "guard", e.Op)
	require.Contains(t, err.Error(), "127.0.0.1 is in the loopback range (127.0.0.0/8, RFC 1122)")

	// The same server by name: the guard checks the resolved address.
	var calls atomic.Int32
	c = newClient(t, &Config{Resolver: hostResolver(&calls, "127.0.0.1")})
	_, err = do(t, c, "GET", "http://localhost:"+srv.Listener.Addr().(*net.TCPAddr).AddrPort().String()[len("127.0.0.1:"):]+"/")
	requireClass(t, err, ClassBlocked)
	require.Contains(t, err.Error(), "localhost resolved to 127.0.0.1, which is in the loopback range")
	require.Equal(t, int32(1), calls.Load())
	require.Equal(t, int32(1), hits.Load())
}

// TestBlockedEndToEnd sends requests through Do whose host resolves to, or
// is, a blocked address: each is refused and nothing is dialed.
func TestBlockedEndToEnd(t *testing.T) {
	for _, a := range []string{
		"10.0.0.5", "169.254.169.254", "::ffff:169.254.169.254", "::ffff:10.0.0.1", "::a00:1",
		"64:ff9b::a00:1", "2002:a00:1::", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "fe80::1%eth0",
		"fd00::1", "::1", "0.0.0.0",
	} {
		t.Run("resolved "+a, func(t *testing.T) {
			var calls atomic.Int32
			c := newClient(t, &Config{Resolver: hostResolver(&calls, a)})
			c.dial = noDial(t)
			_, err := do(t, c, "POST", "https://hooks.example.com/in?token=SECRET")
			e := requireClass(t, err, ClassBlocked)
			require.ErrorIs(t, err, ErrBlocked)
			require.True(t, e.Permanent())
			require.Contains(t, err.Error(), "hooks.example.com resolved to "+a+", which ")
			require.Equal(t, int32(1), calls.Load())
			require.NotContains(t, err.Error(), "SECRET")
		})
	}
	for _, u := range []string{
		"http://169.254.169.254/latest/meta-data/",
		"http://10.0.0.1/",
		"http://[::ffff:127.0.0.1]:8080/",
		"http://[64:ff9b::7f00:1]/",
		"http://[2002:7f00:1::]/",
		"http://[fe80::1%25eth0]/",
		"http://0.0.0.0:8080/",
		"http://[::]/",
	} {
		t.Run("literal "+u, func(t *testing.T) {
			var calls atomic.Int32
			c := newClient(t, &Config{Resolver: hostResolver(&calls, "8.8.8.8")})
			c.dial = noDial(t)
			_, err := do(t, c, "GET", u)
			e := requireClass(t, err, ClassBlocked)
			require.Equal(t, "guard", e.Op)
			require.True(t, e.Permanent())
			require.Zero(t, calls.Load(), "a literal IP is not resolved")
		})
	}
}

func TestDNSRebinding(t *testing.T) {
	var hits atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		ok(w, r)
	})

	// A "public" address is stood in for by the loopback server: the
	// test's dial hook connects there, so no packet leaves the machine.
	var mu sync.Mutex
	var dialed []string
	stubDial := func(ctx context.Context, network, address string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, address)
		mu.Unlock()
		if !strings.HasPrefix(address, "93.184.216.34:") {
			t.Errorf("dialed %s", address)
			return nil, errors.New("test: unexpected address")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, srv.Listener.Addr().String())
	}

	t.Run("public then loopback", func(t *testing.T) {
		var calls atomic.Int32
		rebind := LookupFunc(func(context.Context, string, string) ([]netip.Addr, error) {
			if calls.Add(1) == 1 {
				return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
			}
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		})
		c := newClient(t, &Config{Resolver: rebind})
		c.dial = stubDial

		resp, err := do(t, c, "GET", "http://rebind.test/")
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode)

		c.Close() // drop the idle connection so the next request dials again
		_, err = do(t, c, "GET", "http://rebind.test/")
		requireClass(t, err, ClassBlocked)
		require.Contains(t, err.Error(), "rebind.test resolved to 127.0.0.1, which is in the loopback range")
		require.Equal(t, int32(2), calls.Load())
		require.Equal(t, int32(1), hits.Load())
		require.Equal(t, []string{"93.184.216.34:80"}, dialed)
	})

	t.Run("public and private together", func(t *testing.T) {
		for _, order := range [][]string{{"93.184.216.34", "10.0.0.1"}, {"10.0.0.1", "93.184.216.34"}} {
			var calls atomic.Int32
			c := newClient(t, &Config{Resolver: hostResolver(&calls, order...)})
			c.dial = noDial(t)
			_, err := do(t, c, "GET", "http://mixed.test/")
			requireClass(t, err, ClassBlocked)
			require.Contains(t, err.Error(), "mixed.test resolved to 10.0.0.1, which is in a private range (10.0.0.0/8, RFC 1918)")
		}
	})
}

// TestDialTriesCheckedAddresses: with several passing addresses the dialer
// tries them in turn, each as an IP literal.
func TestDialTriesCheckedAddresses(t *testing.T) {
	srv := newServer(t, ok)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	var calls atomic.Int32
	c := newClient(t, &Config{Allow: loopback, Resolver: hostResolver(&calls, "127.0.0.2", "::ffff:127.0.0.1")})
	var mu sync.Mutex
	var dialed []string
	real := c.dial
	c.dial = func(ctx context.Context, network, address string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, address)
		mu.Unlock()
		if strings.HasPrefix(address, "127.0.0.2:") {
			return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("test: unreachable")}
		}
		return real(ctx, network, address)
	}
	resp, err := do(t, c, "GET", "http://two.test:"+strconv.Itoa(port)+"/")
	require.NoError(t, err)
	require.Equal(t, "ok", string(resp.Body))
	require.Equal(t, []string{"127.0.0.2:" + strconv.Itoa(port), "127.0.0.1:" + strconv.Itoa(port)}, dialed)
}

func TestProxy(t *testing.T) {
	var seen atomic.Value
	proxy := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.URL.String())
		ok(w, r)
	})
	proxyURL, err := url.Parse(proxy.URL)
	require.NoError(t, err)
	resolver := LookupFunc(func(_ context.Context, _, host string) ([]netip.Addr, error) {
		t.Errorf("resolved %s: the proxy resolves names", host)
		return nil, errors.New("test: no lookups")
	})

	c := newClient(t, &Config{Allow: loopback, Proxy: http.ProxyURL(proxyURL), Resolver: resolver})
	resp, err := do(t, c, "GET", "http://hooks.example.com/in")
	require.NoError(t, err)
	require.Equal(t, "ok", string(resp.Body))
	require.Equal(t, "http://hooks.example.com/in", seen.Load())

	// A literal internal address is refused even through a proxy.
	_, err = do(t, c, "GET", "http://169.254.169.254/latest/meta-data/")
	requireClass(t, err, ClassBlocked)

	// The proxy's own address is guarded: without Allow it is refused.
	c = newClient(t, &Config{Proxy: http.ProxyURL(proxyURL), Resolver: resolver})
	_, err = do(t, c, "GET", "http://hooks.example.com/in")
	requireClass(t, err, ClassBlocked)
	require.Contains(t, err.Error(), "127.0.0.1 is in the loopback range")
}

func TestRedirectNotFollowed(t *testing.T) {
	var second atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/b" {
			second.Add(1)
			ok(w, r)
			return
		}
		http.Redirect(w, r, "/b", http.StatusFound)
	})
	resp, err := do(t, newClient(t, &Config{Allow: loopback}), "POST", srv.URL+"/a")
	require.NoError(t, err)
	require.Equal(t, http.StatusFound, resp.StatusCode)
	require.Equal(t, "/b", resp.Header.Get("Location"))
	require.Zero(t, second.Load())
}

func TestBodyLimits(t *testing.T) {
	const mb = 1 << 20
	chunk := strings.Repeat("x", 32<<10)
	var newConns atomic.Int32
	var streamed atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if r.URL.Path == "/stream" {
			for written := 0; written < n; written += len(chunk) {
				if _, err := io.WriteString(w, chunk); err != nil {
					return
				}
				streamed.Add(int64(len(chunk)))
			}
			return
		}
		_, _ = io.WriteString(w, strings.Repeat("y", n))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			newConns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := newClient(t, &Config{Allow: loopback})

	for _, tc := range []struct {
		n         int
		truncated bool
	}{{0, false}, {100, false}, {16 << 10, false}, {16<<10 + 1, true}, {mb, true}} {
		resp, err := do(t, c, "GET", srv.URL+"/?n="+strconv.Itoa(tc.n))
		require.NoError(t, err)
		require.Equal(t, min(tc.n, 16<<10), len(resp.Body), tc.n)
		require.Equal(t, tc.truncated, resp.Truncated, tc.n)
		require.Equal(t, cap(resp.Body), len(resp.Body), "an append to Body must not see the rest")
	}

	t.Run("within DrainLimit the connection is reused", func(t *testing.T) {
		c := newClient(t, &Config{Allow: loopback})
		before := newConns.Load()
		for range 3 {
			resp, err := do(t, c, "GET", srv.URL+"/?n="+strconv.Itoa(40<<10))
			require.NoError(t, err)
			require.True(t, resp.Truncated)
		}
		require.Equal(t, before+1, newConns.Load())
	})

	t.Run("50 MB stream: bounded read, connection closed", func(t *testing.T) {
		c := newClient(t, &Config{Allow: loopback, Timeout: 10 * time.Second})
		before := newConns.Load()
		resp, err := do(t, c, "GET", srv.URL+"/stream?n="+strconv.Itoa(50*mb))
		require.NoError(t, err)
		require.True(t, resp.Truncated)
		require.Len(t, resp.Body, 16<<10)
		resp, err = do(t, c, "GET", srv.URL+"/?n=10")
		require.NoError(t, err)
		require.Equal(t, "yyyyyyyyyy", string(resp.Body))
		require.Equal(t, before+2, newConns.Load(), "the drained-past-limit connection must not be reused")
		srv.Close() // waits for the streaming handler, which fails once the client hung up
		require.Less(t, streamed.Load(), int64(50*mb))
	})
}

func TestMaxBodyConfig(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "0123456789ABC") })
	resp, err := do(t, newClient(t, &Config{Allow: loopback, MaxBody: 10, DrainLimit: 1}), "GET", srv.URL)
	require.NoError(t, err)
	require.Equal(t, "0123456789", string(resp.Body))
	require.True(t, resp.Truncated)
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/body" {
			_, _ = io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	c := newClient(t, &Config{Allow: loopback, Timeout: 50 * time.Millisecond})

	_, err := do(t, c, "GET", srv.URL+"/headers?token=SECRET")
	e := requireClass(t, err, ClassTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.False(t, e.Permanent())
	require.Equal(t, "request", e.Op)
	require.Contains(t, err.Error(), "no complete response within 50ms")
	require.NotContains(t, fmt.Sprintf("%v %+v %#v", err, err, err), "SECRET")

	// Headers arrive, the body never ends: the response, with what
	// arrived and a timeout while reading as BodyErr. A longer timeout
	// keeps a slow machine from timing out before headers.
	resp, err := do(t, newClient(t, &Config{Allow: loopback, Timeout: 300 * time.Millisecond}), "GET", srv.URL+"/body?token=SECRET")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "partial", string(resp.Body))
	e = requireClass(t, resp.BodyErr, ClassTimeout)
	require.ErrorIs(t, resp.BodyErr, context.DeadlineExceeded)
	require.Equal(t, "read", e.Op)
	require.NotContains(t, resp.BodyErr.Error(), "SECRET")

	// The caller's own deadline, shorter than Timeout.
	c = newClient(t, &Config{Allow: loopback})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, err := http.NewRequest("GET", srv.URL+"/headers", nil)
	require.NoError(t, err)
	_, err = c.Do(ctx, req)
	requireClass(t, err, ClassTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestCanceled(t *testing.T) {
	srv := newServer(t, ok)
	c := newClient(t, &Config{Allow: loopback})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, err := http.NewRequest("GET", srv.URL, nil)
	require.NoError(t, err)
	_, err = c.Do(ctx, req)
	e := requireClass(t, err, ClassCanceled)
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, e.Permanent())

	ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, err = c.Do(ctx, req)
	requireClass(t, err, ClassTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestConnectRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	_, err = do(t, newClient(t, &Config{Allow: loopback}), "POST", "http://"+addr+"/?token=SECRET")
	e := requireClass(t, err, ClassConnect)
	require.Equal(t, "dial", e.Op)
	require.False(t, e.Permanent())
	require.Contains(t, err.Error(), "connection refused")
	require.NotContains(t, fmt.Sprintf("%v %+v %#v", err, err, err), "SECRET")
}

func TestConnectEOF(t *testing.T) {
	// A server that accepts and hangs up before answering.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	_, err = do(t, newClient(t, &Config{Allow: loopback}), "POST", "http://"+ln.Addr().String()+"/")
	e := requireClass(t, err, ClassConnect)
	require.False(t, e.Permanent())
}

func TestDNSFailure(t *testing.T) {
	for name, dnsErr := range map[string]*net.DNSError{
		"not found": {Err: "no such host", Name: "nx.test", IsNotFound: true},
		"temporary": {Err: "server misbehaving", Name: "nx.test", IsTemporary: true},
	} {
		t.Run(name, func(t *testing.T) {
			c := newClient(t, &Config{Resolver: LookupFunc(func(context.Context, string, string) ([]netip.Addr, error) {
				return nil, dnsErr
			})})
			c.dial = noDial(t)
			_, err := do(t, c, "POST", "https://nx.test/hook?token=SECRET")
			e := requireClass(t, err, ClassDNS)
			require.Equal(t, "resolve", e.Op)
			require.False(t, e.Permanent())
			require.ErrorAs(t, err, new(*net.DNSError))
			require.NotContains(t, fmt.Sprintf("%v %+v %#v", err, err, err), "SECRET")
		})
	}
	t.Run("no addresses", func(t *testing.T) {
		var calls atomic.Int32
		c := newClient(t, &Config{Resolver: hostResolver(&calls)})
		_, err := do(t, c, "GET", "https://empty.test/")
		requireClass(t, err, ClassDNS)
	})
}

func TestTLS(t *testing.T) {
	srv, pool := newTLSServer(t, ok)
	port := strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port)
	var calls atomic.Int32
	resolver := hostResolver(&calls, "127.0.0.1")

	t.Run("unknown authority", func(t *testing.T) {
		_, err := do(t, newClient(t, &Config{Allow: loopback}), "POST", srv.URL+"/?token=SECRET")
		e := requireClass(t, err, ClassTLS)
		require.True(t, e.Permanent())
		require.Equal(t, "tls", e.Op)
		require.NotContains(t, err.Error(), "SECRET")
	})
	t.Run("trusted", func(t *testing.T) {
		// The test certificate is for example.com (and 127.0.0.1).
		c := newClient(t, &Config{Allow: loopback, RootCAs: pool, Resolver: resolver})
		resp, err := do(t, c, "GET", "https://example.com:"+port+"/")
		require.NoError(t, err)
		require.Equal(t, "ok", string(resp.Body))
	})
	t.Run("host name mismatch", func(t *testing.T) {
		c := newClient(t, &Config{Allow: loopback, RootCAs: pool, Resolver: resolver})
		_, err := do(t, c, "GET", "https://mismatch.test:"+port+"/")
		e := requireClass(t, err, ClassTLS)
		require.True(t, e.Permanent())
		require.ErrorAs(t, err, new(x509.HostnameError))
	})
	t.Run("plain HTTP server", func(t *testing.T) {
		plain := newServer(t, ok)
		_, err := do(t, newClient(t, &Config{Allow: loopback}), "GET", strings.Replace(plain.URL, "http:", "https:", 1))
		e := requireClass(t, err, ClassTLS)
		require.False(t, e.Permanent())
	})
}

func TestHTTPSOnly(t *testing.T) {
	var hits atomic.Int32
	plain := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		ok(w, r)
	})
	srv, pool := newTLSServer(t, ok)
	c := newClient(t, &Config{Allow: loopback, HTTPSOnly: true, RootCAs: pool})

	_, err := do(t, c, "GET", plain.URL)
	e := requireClass(t, err, ClassBlocked)
	require.ErrorIs(t, err, ErrBlocked)
	require.True(t, e.Permanent())
	require.Contains(t, err.Error(), "plain http:// is refused (HTTPSOnly)")
	require.Zero(t, hits.Load())

	resp, err := do(t, c, "GET", srv.URL)
	require.NoError(t, err)
	require.Equal(t, "ok", string(resp.Body))
}

func TestRefusedRequests(t *testing.T) {
	c := newClient(t, &Config{Allow: loopback})
	c.dial = noDial(t)
	for u, want := range map[string]string{
		"ftp://example.com/x":  `scheme "ftp" is refused`,
		"file:///etc/passwd":   `scheme "file" is refused`,
		"http:///path":         "URL has no host",
		"gopher://127.0.0.1/x": `scheme "gopher" is refused`,
	} {
		_, err := do(t, c, "GET", u)
		requireClass(t, err, ClassBlocked)
		require.ErrorContains(t, err, want)
	}
	_, err := c.Do(context.Background(), nil)
	requireClass(t, err, ClassBlocked)
	_, err = c.Do(context.Background(), &http.Request{Method: "GET"})
	requireClass(t, err, ClassBlocked)

	// Like http.Client.Do, Do closes the body of a refused request.
	body := &closeRecorder{Reader: strings.NewReader("{}")}
	req, err := http.NewRequest("POST", "http://10.0.0.1/", body)
	require.NoError(t, err)
	_, err = c.Do(context.Background(), req)
	requireClass(t, err, ClassBlocked)
	require.True(t, body.closed.Load())
}

type closeRecorder struct {
	io.Reader
	closed atomic.Bool
}

func (r *closeRecorder) Close() error { r.closed.Store(true); return nil }

func TestUserAgentAndRequest(t *testing.T) {
	type seen struct{ ua, method, body, ct string }
	got := make(chan seen, 1)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.UserAgent(), r.Method, string(b), r.Header.Get("Content-Type")}
	})
	c := newClient(t, &Config{Allow: loopback})

	req, err := http.NewRequest("PUT", srv.URL, strings.NewReader(`{"a":1}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(context.Background(), req)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, seen{"outhook/0.1.0", "PUT", `{"a":1}`, "application/json"}, <-got)
	require.Empty(t, req.Header.Get("User-Agent"), "the caller's request is not modified")

	req, err = http.NewRequest("GET", srv.URL, nil)
	require.NoError(t, err)
	req.Header.Set("User-Agent", "custom/1")
	_, err = c.Do(context.Background(), req)
	require.NoError(t, err)
	require.Equal(t, "custom/1", (<-got).ua)

	_, err = do(t, newClient(t, &Config{Allow: loopback, UserAgent: "demo/2"}), "GET", srv.URL)
	require.NoError(t, err)
	require.Equal(t, "demo/2", (<-got).ua)
}

// TestEarlierDeadline: under a caller's deadline earlier than Timeout, Do
// adds no timeout of its own and can send the request as it is, under the
// request's own context; it still adds the User-Agent to a copy only, and
// the caller's deadline still ends the request.
func TestEarlierDeadline(t *testing.T) {
	uas := make(chan string, 1)
	release := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		uas <- r.UserAgent()
	})
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	c := newClient(t, &Config{Allow: loopback, Timeout: time.Minute})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	require.NoError(t, err)
	resp, err := c.Do(ctx, req)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "outhook/0.1.0", <-uas)
	require.Empty(t, req.Header.Get("User-Agent"), "the caller's request is not modified")

	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, err = http.NewRequestWithContext(short, "GET", srv.URL+"/slow", nil)
	require.NoError(t, err)
	_, err = c.Do(short, req)
	e := requireClass(t, err, ClassTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.False(t, e.Permanent())
}

// TestSecretsNotInErrors: whatever fails, the error's text holds no secret
// of the URL.
func TestSecretsNotInErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := ln.Addr().String()
	require.NoError(t, ln.Close())
	srv := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "SECRET echoed in body", http.StatusServiceUnavailable)
	})
	host := srv.Listener.Addr().String()

	dnsFail := LookupFunc(func(context.Context, string, string) ([]netip.Addr, error) {
		return nil, &net.DNSError{Err: "no such host", Name: "nx.test", IsNotFound: true}
	})
	for name, tc := range map[string]struct {
		cfg *Config
		url string
	}{
		"blocked":    {&Config{}, "http://user:SECRET@" + host + "/hook?token=SECRET"},
		"refused":    {&Config{Allow: loopback}, "http://user:SECRET@" + closed + "/hook?token=SECRET&sig=SECRET"},
		"dns":        {&Config{Resolver: dnsFail}, "https://nx.test/hook?token=SECRET"},
		"https only": {&Config{HTTPSOnly: true}, "http://hooks.slack.com/services/T0/B0/SECRET"},
		"slack":      {&Config{Resolver: dnsFail}, "https://hooks.slack.com/services/T0/B0/SECRET"},
		"discord":    {&Config{Resolver: dnsFail}, "https://discord.com/api/webhooks/1/SECRET"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := do(t, newClient(t, tc.cfg), "POST", tc.url)
			require.Error(t, err)
			for _, s := range []string{err.Error(), fmt.Sprintf("%v|%+v|%#v|%s", err, err, err, err), fmt.Sprintf("%+v", *err.(*Error))} {
				require.NotContains(t, s, "SECRET")
			}
		})
	}

	req, err := http.NewRequest("POST", "http://"+host+"/hook?token=SECRET", nil)
	require.NoError(t, err)
	resp, err := newClient(t, &Config{Allow: loopback}).Do(context.Background(), req)
	require.NoError(t, err)
	require.Contains(t, string(resp.Body), "SECRET")
	serr := StatusError(req, resp)
	require.Equal(t, "safehttp: POST http://"+host+"/hook?token=[redacted]: 503 Service Unavailable", serr.Error())
	require.NotContains(t, fmt.Sprintf("%+v", *serr), "SECRET")
}

func BenchmarkDo(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(ok))
	defer srv.Close()
	c, err := New(&Config{Allow: loopback})
	require.NoError(b, err)
	defer c.Close()
	req, err := http.NewRequest("GET", srv.URL+"/hook?token=x", nil)
	require.NoError(b, err)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Do(ctx, req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatal(resp, err)
		}
	}
}

// BenchmarkDoEarlierDeadline is BenchmarkDo under a caller's deadline
// earlier than Config.Timeout, as a delivery attempt's: Do then adds no
// timer of its own.
func BenchmarkDoEarlierDeadline(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(ok))
	defer srv.Close()
	c, err := New(&Config{Allow: loopback, Timeout: time.Minute})
	require.NoError(b, err)
	defer c.Close()
	req, err := http.NewRequest("GET", srv.URL+"/hook?token=x", nil)
	require.NoError(b, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Do(ctx, req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatal(resp, err)
		}
	}
}
