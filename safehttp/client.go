package safehttp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Version is the outhook version sent in the default User-Agent.
const Version = "0.1.0"

// Defaults for the zero values of Config.
const (
	DefaultTimeout    = 15 * time.Second
	DefaultMaxBody    = 16 << 10
	DefaultDrainLimit = 64 << 10
)

// Config configures a Client. The zero value (or a nil *Config) is a client
// that refuses every non-public address, with a 15 s timeout.
type Config struct {
	// Timeout bounds a whole request, including reading the response. Zero
	// means 15 s.
	Timeout time.Duration
	// Allow lists ranges that are otherwise blocked, such as
	// netip.MustParsePrefix("127.0.0.0/8") in tests and demos. Nothing is
	// allowed by default. An IPv4 prefix also allows the IPv4-mapped
	// spelling of its addresses (127.0.0.0/8 allows ::ffff:127.0.0.1), but
	// not ::1 nor the NAT64 or 6to4 spellings: list those separately.
	Allow []netip.Prefix
	// Proxy, if set, is used like http.Transport.Proxy; no proxy is taken
	// from the environment otherwise. The guard then checks the proxy's
	// address, the only one dialed (a proxy on a private address must be
	// in Allow), and literal IP hosts in request URLs; the proxy is trusted
	// to enforce its own policy on the host names it resolves.
	Proxy func(*http.Request) (*url.URL, error)
	// HTTPSOnly refuses plain http:// URLs (a permanent error of class
	// blocked).
	HTTPSOnly bool
	// MaxBody is how many bytes of a response body are kept. Zero means
	// 16 KiB.
	MaxBody int
	// DrainLimit is how many further bytes are read and discarded so the
	// connection can be reused; beyond it the connection is closed. Zero
	// means 64 KiB.
	DrainLimit int64
	// UserAgent is sent when the request has no User-Agent header. Zero
	// means "outhook/" + Version.
	UserAgent string
	// Resolver resolves host names; nil means net.DefaultResolver. Tests
	// inject one (see LookupFunc).
	Resolver Resolver
	// RootCAs, if set, replaces the system roots for verifying servers'
	// certificates. It is meant for tests (the pool of an
	// httptest.NewTLSServer) and private CAs.
	RootCAs *x509.CertPool
	// MaxIdleConnsPerHost is how many idle keep-alive connections are kept
	// per destination host. It should be at least the number of deliveries
	// made at once (the queue's concurrency): with fewer, every burst to a
	// busy host closes connections and dials new ones. Zero means
	// DefaultMaxIdleConnsPerHost.
	MaxIdleConnsPerHost int
}

// DefaultMaxIdleConnsPerHost is the default of Config.MaxIdleConnsPerHost:
// enough for the durable queues' default of 100 deliveries at once to one
// host (riverqueue.DefaultMaxWorkers), and the in-memory queue's 32.
const DefaultMaxIdleConnsPerHost = 128

// Resolver is the part of *net.Resolver the client needs.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// LookupFunc adapts a function to Resolver (for tests, e.g. DNS rebinding).
type LookupFunc func(ctx context.Context, network, host string) ([]netip.Addr, error)

// LookupNetIP calls f.
func (f LookupFunc) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return f(ctx, network, host)
}

// Client is an outbound HTTP client with the SSRF guard. It is safe for
// concurrent use; make one and share it.
type Client struct {
	timeout    time.Duration
	maxBody    int
	drainLimit int64
	userAgent  string
	httpsOnly  bool
	allow      []netip.Prefix
	resolver   Resolver
	// dial connects to an address the guard has passed (an IP literal and
	// port); tests replace it.
	dial      func(ctx context.Context, network, address string) (net.Conn, error)
	transport *http.Transport
}

// Response is a response with its body read (up to MaxBody) and closed.
type Response struct {
	StatusCode int
	Status     string // "200 OK"
	Header     http.Header
	Body       []byte // at most MaxBody bytes
	Truncated  bool   // the body was longer than MaxBody
	// BodyErr is set when the body could not be read to its end: the
	// connection was reset or closed mid-body, or the timeout ended while
	// it trickled in. Body then holds what arrived. The status and headers
	// are the server's real answer, so a 2xx with a cut body is still an
	// accepted request (sending it again would duplicate it), and a 429
	// or 503 keeps its Retry-After. It is an *Error of op "read".
	BodyErr error
	// RedirectBlocked is set on a 3xx whose Location the guard refuses:
	// a private, loopback or link-local (cloud metadata) address, a name
	// that resolves to one, or a scheme other than http(s). Redirects are
	// never followed either way; this tells a redirect toward an internal
	// address, an SSRF attempt, from an ordinary one. It is an *Error of
	// class blocked and op "redirect".
	RedirectBlocked error
}

// New returns a Client for cfg; nil means the defaults. It refuses negative
// durations and sizes and invalid Allow prefixes, naming the field.
func New(cfg *Config) (*Client, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	switch {
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("safehttp: Config.Timeout is negative (%v)", cfg.Timeout)
	case cfg.MaxBody < 0:
		return nil, fmt.Errorf("safehttp: Config.MaxBody is negative (%d)", cfg.MaxBody)
	case cfg.DrainLimit < 0:
		return nil, fmt.Errorf("safehttp: Config.DrainLimit is negative (%d)", cfg.DrainLimit)
	case cfg.MaxIdleConnsPerHost < 0:
		return nil, fmt.Errorf("safehttp: Config.MaxIdleConnsPerHost is negative (%d)", cfg.MaxIdleConnsPerHost)
	}
	idlePerHost := cfg.MaxIdleConnsPerHost
	if idlePerHost == 0 {
		idlePerHost = DefaultMaxIdleConnsPerHost
	}
	allow, err := normalizeAllow(cfg.Allow)
	if err != nil {
		return nil, err
	}
	c := &Client{
		timeout:    cfg.Timeout,
		maxBody:    cfg.MaxBody,
		drainLimit: cfg.DrainLimit,
		userAgent:  cfg.UserAgent,
		httpsOnly:  cfg.HTTPSOnly,
		allow:      allow,
		resolver:   cfg.Resolver,
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.maxBody == 0 {
		c.maxBody = DefaultMaxBody
	}
	if c.drainLimit == 0 {
		c.drainLimit = DefaultDrainLimit
	}
	if c.userAgent == "" {
		c.userAgent = "outhook/" + Version
	}
	if c.resolver == nil {
		c.resolver = net.DefaultResolver
	}
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: c.control}
	c.dial = dialer.DialContext
	c.transport = &http.Transport{
		Proxy:                 cfg.Proxy,
		DialContext:           c.dialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          max(256, idlePerHost),
		MaxIdleConnsPerHost:   idlePerHost, // deliverers send many requests to few hosts
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
		TLSClientConfig:       &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12},
	}
	return c, nil
}

// Close releases idle connections. The client stays usable.
func (c *Client) Close() { c.transport.CloseIdleConnections() }

// Do sends req once (no retries, no redirects) under ctx and Config.Timeout
// and returns the response with its body read up to MaxBody (the rest
// drained within DrainLimit and discarded; the body is closed). A 3xx is
// returned as a response, never followed; any status is a response, not an
// error (see StatusError). Every error is an *Error with a redacted URL. The
// request is not modified; like http.Client.Do, Do closes its body.
func (c *Client) Do(ctx context.Context, req *http.Request) (*Response, error) {
	if req == nil {
		return nil, &Error{Class: ClassBlocked, Op: "guard", Err: blockedf("nil request")}
	}
	method := methodOf(req)
	// The redacted URL is only for errors: computed when one is made.
	rurl := func() string {
		if req.URL == nil {
			return ""
		}
		return Redact(req.URL.String())
	}
	if err := c.precheck(req); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, &Error{Class: ClassBlocked, Method: method, URL: rurl(), Op: "guard", Err: err}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	// Config.Timeout needs a context of its own only when ctx ends later
	// (or never): a caller's earlier deadline already bounds the request,
	// and the timer and context would be 0.85 µs per request for nothing.
	if deadline, ok := ctx.Deadline(); !ok || time.Until(deadline) > c.timeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, c.timeout, &ownTimeout{c.timeout})
		defer cancel()
	}
	r := req
	if req.Context() != ctx {
		r = req.WithContext(ctx)
	}
	_, hasUA := r.Header["User-Agent"]
	basic := r.URL.User != nil && r.Header.Get("Authorization") == ""
	if !hasUA || basic {
		// Add headers to a copy: the caller's request is not ours to
		// change.
		if r == req {
			r = new(http.Request)
			*r = *req
		}
		r.Header = req.Header.Clone()
		if r.Header == nil {
			r.Header = make(http.Header)
		}
		if !hasUA {
			r.Header.Set("User-Agent", c.userAgent)
		}
		if basic {
			// What http.Client does with credentials in the URL.
			pass, _ := r.URL.User.Password()
			r.SetBasicAuth(r.URL.User.Username(), pass)
		}
	}
	// The transport, not an http.Client: a client parses a 3xx's Location
	// before it asks whether to follow it, and fails the whole request
	// when it does not parse. Redirects are never followed here, and a
	// bad Location is the receiver's answer like any other.
	resp, err := c.transport.RoundTrip(r)
	if err != nil {
		return nil, wrap(ctx, method, rurl(), "request", err)
	}
	defer resp.Body.Close()
	body, truncated, err := c.readBody(resp)
	out := &Response{
		StatusCode: resp.StatusCode,
		Status:     resp.Status,
		Header:     resp.Header,
		Body:       body,
		Truncated:  truncated,
	}
	if err != nil {
		// The answer arrived; only its body is incomplete. Dropping the
		// response here would turn an accepted 2xx into a retry (a
		// duplicate at the receiver) and lose a 429's Retry-After.
		out.BodyErr = wrap(ctx, method, rurl(), "read", err)
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		if loc := resp.Header.Get("Location"); loc != "" {
			if err := c.checkRedirect(ctx, r.URL, loc); err != nil {
				out.RedirectBlocked = &Error{Class: ClassBlocked, Method: method, URL: rurl(), Op: "redirect",
					StatusCode: resp.StatusCode, Err: err}
			}
		}
	}
	return out, nil
}

// checkRedirect reports whether the guard would refuse to follow a
// redirect to loc (resolved against base): a scheme other than http(s),
// plain http under HTTPSOnly, or an address the guard refuses, literal or
// resolved. A name that does not resolve is not a refusal. With a proxy,
// only literal addresses are checked, as for requests.
func (c *Client) checkRedirect(ctx context.Context, base *url.URL, loc string) error {
	u, err := base.Parse(loc)
	if err != nil {
		return nil // not a URL anyone could follow
	}
	host := u.Hostname()
	// The Location is not quoted: a receiver chose it, and it may echo
	// what it was sent.
	refuse := func(err error) error { return fmt.Errorf("redirect refused: %w", err) }
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if c.httpsOnly {
			return refuse(blockedf("plain http:// is refused (HTTPSOnly)"))
		}
	default:
		return refuse(blockedf("scheme %q is refused (http and https only)", u.Scheme))
	}
	if host == "" {
		return nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if err := checkAddr(a, c.allow); err != nil {
			return refuse(err)
		}
		return nil
	}
	if c.transport.Proxy != nil {
		return nil
	}
	ips, err := c.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, ip := range ips {
		if err := checkAddr(ip, c.allow); err != nil {
			if ge, ok := err.(*guardError); ok {
				ge.host = host
			}
			return refuse(err)
		}
	}
	return nil
}

// precheck refuses what can be refused before dialing: a missing URL or
// host, a scheme other than http(s), plain http with HTTPSOnly, and a
// literal IP host the guard refuses (checked here too, so that it is refused
// even when a proxy is dialed instead).
func (c *Client) precheck(req *http.Request) error {
	u := req.URL
	if u == nil {
		return blockedf("request has no URL")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if c.httpsOnly {
			return blockedf("plain http:// is refused (HTTPSOnly)")
		}
	default:
		return blockedf("scheme %q is refused (http and https only)", u.Scheme)
	}
	host := u.Hostname()
	if host == "" {
		return blockedf("URL has no host")
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return checkAddr(a, c.allow)
	}
	return nil
}

// readBody keeps up to maxBody bytes, then drains up to drainLimit more so
// the connection can be reused; Close (by the caller) then closes a
// connection whose body is not at its end.
func (c *Client) readBody(resp *http.Response) ([]byte, bool, error) {
	if resp.ContentLength == 0 {
		return nil, false, nil // 204 and friends: nothing to read
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(c.maxBody)+1))
	if err != nil {
		truncated := len(body) > c.maxBody
		body = body[:min(len(body), c.maxBody)]
		return body[:len(body):len(body)], truncated, err // what arrived, and why no more
	}
	if len(body) <= c.maxBody {
		return body[:len(body):len(body)], false, nil
	}
	_, _ = io.CopyN(io.Discard, resp.Body, c.drainLimit)
	return body[:c.maxBody:c.maxBody], true, nil
}

// dialContext is the transport's dialer: it resolves the host with the
// configured resolver, refuses the connection if the guard refuses any of
// the addresses, and dials the checked IP literals in turn, so the address
// connected to is one that was checked (DNS cannot change in between).
func (c *Client) dialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("safehttp: bad port in %q", address)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		if err := checkAddr(a, c.allow); err != nil {
			return nil, err
		}
		addrs = []netip.Addr{a}
	} else {
		ips, err := c.resolver.LookupNetIP(ctx, ipNetwork(network), host)
		if err != nil {
			return nil, err
		}
		for _, ip := range ips {
			if err := checkAddr(ip, c.allow); err != nil {
				if ge, ok := err.(*guardError); ok {
					ge.host = host
				}
				return nil, err
			}
		}
		addrs = ips
	}
	var first error
	for i, a := range addrs {
		a = a.Unmap()
		if (network == "tcp4" && !a.Is4()) || (network == "tcp6" && !a.Is6()) {
			continue
		}
		dctx, cancel := ctx, context.CancelFunc(func() {})
		if deadline, ok := ctx.Deadline(); ok && len(addrs)-i > 1 {
			dctx, cancel = context.WithDeadline(ctx, partialDeadline(time.Now(), deadline, len(addrs)-i))
		}
		conn, err := c.dial(dctx, network, netip.AddrPortFrom(a, uint16(port)).String())
		cancel()
		if err == nil {
			return conn, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	if first == nil {
		first = &net.DNSError{Err: "no address for " + network, Name: host, IsNotFound: true}
	}
	return nil, first
}

// control checks, as a second line of defense, the address a socket is
// about to connect to.
func (c *Client) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return blockedf("cannot check dialed address %q", address)
	}
	return checkAddr(ap.Addr(), c.allow)
}

func ipNetwork(network string) string {
	switch network {
	case "tcp4":
		return "ip4"
	case "tcp6":
		return "ip6"
	}
	return "ip"
}

// partialDeadline shares the time left among the addresses left to try,
// giving each at least 2 s when there is that much (as package net does).
func partialDeadline(now, deadline time.Time, remaining int) time.Time {
	left := deadline.Sub(now)
	if left <= 0 {
		return deadline
	}
	each := left / time.Duration(remaining)
	const minimum = 2 * time.Second
	if each < minimum {
		each = min(left, minimum)
	}
	return now.Add(each)
}
