package webhook_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
	"github.com/outhook/outhook/safehttp"
	"github.com/outhook/outhook/webhook"
)

// envSSRFAddrs, when set (by .ci/run, which adds 169.254.169.254 and
// 10.0.0.1 to the loopback interface as root), makes the listeners on
// those addresses mandatory in TestSSRFEndToEnd.
const envSSRFAddrs = "OUTHOOK_SSRF_LISTENERS"

// trap is a listener at an address outhook must never reach: it counts
// every connection it accepts.
type trap struct {
	ln    net.Listener
	conns atomic.Int32
	done  chan struct{}
}

// listenTrap listens on addr, or returns nil when addr cannot be bound
// here (the address is not on any interface, or the port needs root) and
// envSSRFAddrs is unset.
func listenTrap(t *testing.T, addr string) *trap {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if os.Getenv(envSSRFAddrs) != "" || !(errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EACCES)) {
			t.Fatalf("listen on %s: %v", addr, err)
		}
		t.Logf("no listener on %s (%v): the refusal is still checked, the absence of packets only by the guard; "+
			"run as root with the address on lo (as .ci/run does) to watch for them", addr, err)
		return nil
	}
	tr := &trap{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(tr.done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			tr.conns.Add(1)
			conn.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-tr.done })
	return tr
}

// TestSSRFEndToEnd (issue 7, item 6): subscriptions whose endpoints are a
// loopback address, the cloud metadata address, an IPv4-mapped private
// address, a receiver that redirects to a private address, and a host name
// whose resolver switches to a private address after its first answer. A
// real client delivers one event to each; every delivery fails for good
// with its last attempt recorded as blocked, and a listener at each
// forbidden address sees no connection at all.
func TestSSRFEndToEnd(t *testing.T) {
	// The one address deliveries may reach: a receiver standing in for a
	// public host. Everything else on loopback is as forbidden as in
	// production.
	const allowedIP = "127.0.0.3"
	allowed := []netip.Prefix{netip.MustParsePrefix(allowedIP + "/32")}

	loopTrap := listenTrap(t, "127.0.0.1:0")
	require.NotNil(t, loopTrap, "127.0.0.1 is always there")
	_, loopPort, _ := net.SplitHostPort(loopTrap.ln.Addr().String())
	metaTrap := listenTrap(t, "169.254.169.254:80")
	mappedTrap := listenTrap(t, "10.0.0.1:80")

	// The redirector and the rebinding host's first answer, at the allowed
	// address and on the loopback trap's port, so that one URL reaches
	// either, depending on what the name resolves to.
	ln, err := net.Listen("tcp", allowedIP+":"+loopPort)
	require.NoError(t, err)
	allowedPort := loopPort
	var allowedHits sync.Map // path -> *atomic.Int32
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := allowedHits.LoadOrStore(r.URL.Path, new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
		switch r.URL.Path {
		case "/redirect":
			w.Header().Set("Location", "http://127.0.0.1:"+loopPort+"/internal")
			w.WriteHeader(http.StatusTemporaryRedirect)
		default: // the rebinding host, while it still resolves here
			// Closing makes the retry dial, and so resolve, again: a
			// kept-alive connection stays with the address checked when
			// it was dialed, whatever the name resolves to later.
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	var lookups atomic.Int32
	resolver := safehttp.LookupFunc(func(_ context.Context, _, host string) ([]netip.Addr, error) {
		if host != "rebind.example" {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		if lookups.Add(1) == 1 {
			return []netip.Addr{netip.MustParseAddr(allowedIP)}, nil
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	})
	hc, err := safehttp.New(&safehttp.Config{Allow: allowed, Resolver: resolver})
	require.NoError(t, err)
	t.Cleanup(hc.Close)
	d, err := webhook.New(&webhook.Options{HTTP: hc})
	require.NoError(t, err)

	reg := outhook.NewEventRegistry()
	hook := outhook.MustNewHook[struct{ N int }]("ping")
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[struct{ N int }]{Hook: hook, DisplayName: "Ping"}, outhook.PluginMetadata{PluginID: "test"})
	c := outhooktest.NewClient(t, &outhook.Config{Registry: reg, Deliverers: []outhook.Deliverer{d},
		DeliveryRetry: outhooktest.NoDelay(3)})
	ctx := context.Background()

	cases := []struct {
		name     string
		url      string
		trap     *trap
		attempts int    // the rebinding host is reached once, then refused
		reason   string // part of the last attempt's error
	}{
		{"loopback", "http://127.0.0.1:" + loopPort + "/hook", loopTrap, 1, "127.0.0.1 is in the loopback range"},
		{"metadata", "http://169.254.169.254/latest/meta-data", metaTrap, 1, "169.254.169.254 is in the link-local range"},
		{"mapped private", "http://[::ffff:10.0.0.1]/hook", mappedTrap, 1, "10.0.0.1"},
		{"redirect to private", "http://" + allowedIP + ":" + allowedPort + "/redirect", loopTrap, 1, "redirect refused: 127.0.0.1 is in the loopback range"},
		{"rebinding", "http://rebind.example:" + loopPort + "/hook", loopTrap, 2, "rebind.example resolved to 127.0.0.1"},
	}
	subs := map[string]int{}
	for i, tc := range cases {
		sub, err := c.CreateSubscription(ctx, outhook.Subscription{Name: tc.name, Events: []string{"test.ping"}, DelivererID: webhook.ID,
			Config: config(t, map[string]any{"url": tc.url, "secrets": []map[string]any{{"secret": secretA}}})})
		require.NoError(t, err, tc.name)
		subs[sub.ID] = i
	}
	require.NoError(t, outhook.EmitHook(ctx, c, hook, struct{ N int }{1}))
	outhooktest.WaitIdle(t, c)

	ds, err := c.Deliveries(ctx, outhook.DeliveryQuery{Limit: 100})
	require.NoError(t, err)
	require.Len(t, ds, len(cases))
	for _, dl := range ds {
		tc := cases[subs[dl.SubscriptionID]]
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, outhook.DeliveryFailed, dl.Status)
			require.Len(t, dl.Attempts, tc.attempts)
			last := dl.Attempts[len(dl.Attempts)-1]
			require.Equal(t, outhook.AttemptPermanent, last.Outcome, last.Error)
			require.Equal(t, outhook.ErrorClassBlocked, last.ErrorClass, last.Error)
			require.Contains(t, last.Error, tc.reason)
			t.Logf("%s: %s", tc.url, last.Error)
		})
	}
	for name, tr := range map[string]*trap{"127.0.0.1": loopTrap, "169.254.169.254": metaTrap, "10.0.0.1": mappedTrap} {
		if tr != nil {
			require.Zero(t, tr.conns.Load(), "%s saw a connection", name)
		}
	}
	hits := func(path string) int32 {
		n, ok := allowedHits.Load(path)
		if !ok {
			return 0
		}
		return n.(*atomic.Int32).Load()
	}
	require.Equal(t, int32(1), hits("/redirect"), "the redirect was asked for once, never followed")
	require.Equal(t, int32(1), hits("/hook"), "the rebinding host was reached while it resolved to the allowed address")
	require.GreaterOrEqual(t, lookups.Load(), int32(2))
}
