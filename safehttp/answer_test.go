package safehttp

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// resetServer answers with the status line, headers and half of an
// announced body, then resets the connection.
func resetServer(t *testing.T, status int, header string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			_, _ = conn.Read(buf) // the request (small, one read on loopback)
			fmt.Fprintf(conn, "HTTP/1.1 %d %s\r\nContent-Length: 100\r\n%s\r\nhalf", status, http.StatusText(status), header)
			_ = conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
		}
	}()
	return "http://" + ln.Addr().String() + "/hook?token=SECRET"
}

// TestBodyCutAfterStatus: an answer whose body is cut is still the
// server's answer: its status, headers and the part of the body that
// arrived come back, with BodyErr saying why the rest did not.
func TestBodyCutAfterStatus(t *testing.T) {
	c := newClient(t, &Config{Allow: loopback})
	for _, tc := range []struct {
		status int
		header string
	}{
		{http.StatusOK, ""},
		{http.StatusServiceUnavailable, "Retry-After: 30\r\n"},
		{http.StatusTooManyRequests, "Retry-After: 5\r\n"},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			resp, err := do(t, c, "POST", resetServer(t, tc.status, tc.header))
			require.NoError(t, err)
			require.Equal(t, tc.status, resp.StatusCode)
			require.Equal(t, "half", string(resp.Body))
			e := requireClass(t, resp.BodyErr, ClassConnect)
			require.Equal(t, "read", e.Op)
			require.NotContains(t, resp.BodyErr.Error(), "SECRET")
			if tc.header != "" {
				require.NotEmpty(t, resp.Header.Get("Retry-After"))
			}
			require.Nil(t, resp.RedirectBlocked)
		})
	}
}

// TestRedirectBlocked: a 3xx is never followed, and one whose Location the
// guard would refuse says so (class blocked, op redirect) without a
// connection to the Location; an ordinary one does not.
func TestRedirectBlocked(t *testing.T) {
	target, err := net.Listen("tcp", "127.0.0.2:0")
	require.NoError(t, err)
	accepted := make(chan struct{}, 16)
	go func() {
		for {
			conn, err := target.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			conn.Close()
		}
	}()
	t.Cleanup(func() { target.Close() })
	_, port, _ := net.SplitHostPort(target.Addr().String())

	resolver := LookupFunc(func(_ context.Context, _, host string) ([]netip.Addr, error) {
		switch host {
		case "internal.example":
			return []netip.Addr{netip.MustParseAddr("10.1.2.3")}, nil
		case "mixed.example":
			return []netip.Addr{netip.MustParseAddr("93.184.215.14"), netip.MustParseAddr("192.168.1.1")}, nil
		case "public.example":
			return []netip.Addr{netip.MustParseAddr("93.184.215.14")}, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	})
	allow127001 := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	for _, tc := range []struct {
		location string
		blocked  string // "" when not blocked, else a part of the reason
	}{
		{location: "http://169.254.169.254/latest/meta-data", blocked: "169.254.169.254 is in the link-local range"},
		{location: "http://[::ffff:10.0.0.1]/", blocked: "10.0.0.1"},
		{location: "http://127.0.0.2:" + port + "/admin", blocked: "127.0.0.2 is in the loopback range"},
		{location: "http://internal.example/x", blocked: "internal.example resolved to 10.1.2.3"},
		{location: "https://mixed.example/x", blocked: "mixed.example resolved to 192.168.1.1"},
		{location: "gopher://public.example/", blocked: `scheme "gopher" is refused`},
		{location: "file:///etc/passwd", blocked: `scheme "file" is refused`},
		{location: "http://public.example/x"},
		{location: "https://public.example/x"},
		{location: "https://nowhere.example/x"}, // does not resolve: nothing to refuse
		{location: "/moved"},                    // the same (allowed) host
		{location: "::not a url"},               // the receiver's answer all the same
	} {
		t.Run(tc.location, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header()["Location"] = []string{tc.location}
				w.WriteHeader(http.StatusFound)
			})
			c := newClient(t, &Config{Allow: allow127001, Resolver: resolver})
			resp, err := do(t, c, "POST", srv.URL+"/hook?token=SECRET")
			require.NoError(t, err)
			require.Equal(t, http.StatusFound, resp.StatusCode)
			if tc.blocked == "" {
				require.Nil(t, resp.RedirectBlocked)
				return
			}
			e := requireClass(t, resp.RedirectBlocked, ClassBlocked)
			require.Equal(t, "redirect", e.Op)
			require.Equal(t, http.StatusFound, e.StatusCode)
			require.True(t, e.Permanent())
			require.ErrorIs(t, resp.RedirectBlocked, ErrBlocked)
			require.Contains(t, e.Error(), tc.blocked)
			require.NotContains(t, e.Error(), "SECRET")
			require.NotContains(t, e.Error(), strings.TrimPrefix(tc.location, "http://"), "the Location is not quoted")
		})
	}
	// Nothing was ever sent to the redirect's loopback target.
	select {
	case <-accepted:
		t.Fatal("the redirect target saw a connection")
	default:
	}
}

// TestRedirectToPlainHTTPUnderHTTPSOnly: with HTTPSOnly, a redirect to
// http:// is one the client would refuse.
func TestRedirectToPlainHTTPUnderHTTPSOnly(t *testing.T) {
	srv, pool := newTLSServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Location", "http://public.example/x")
		w.WriteHeader(http.StatusMovedPermanently)
	})
	c := newClient(t, &Config{Allow: loopback, HTTPSOnly: true, RootCAs: pool})
	resp, err := do(t, c, "POST", srv.URL)
	require.NoError(t, err)
	e := requireClass(t, resp.RedirectBlocked, ClassBlocked)
	require.Contains(t, e.Error(), "HTTPSOnly")
}

// TestBasicAuthFromURL: credentials in the URL become an Authorization
// header, as with http.Client, unless the request has one.
func TestBasicAuthFromURL(t *testing.T) {
	got := make(chan string, 2)
	srv := newServer(t, func(_ http.ResponseWriter, r *http.Request) { got <- r.Header.Get("Authorization") })
	c := newClient(t, &Config{Allow: loopback})
	u := strings.Replace(srv.URL, "http://", "http://user:pa%20ss@", 1)
	_, err := do(t, c, "GET", u)
	require.NoError(t, err)
	require.Equal(t, "Basic dXNlcjpwYSBzcw==", <-got) // user:pa ss
	req, err := http.NewRequest("GET", u, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer t")
	_, err = c.Do(context.Background(), req)
	require.NoError(t, err)
	require.Equal(t, "Bearer t", <-got)
	require.Equal(t, "Bearer t", req.Header.Get("Authorization"), "the caller's request is unchanged")
}
