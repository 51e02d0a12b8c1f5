package faultserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
	"github.com/outhook/outhook/outhooktest/faultserver"
	"github.com/outhook/outhook/safehttp"
	"github.com/outhook/outhook/webhook"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// clock is the fixed time, on a whole second, of the tests that compare
// Retry-After dates: the server and the deliverer share it, so a date
// Retry-After parses to exactly the wait the fault asked for.
var clock = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// secret is "whsec_" + base64 of 32 bytes 'A'.
const secret = "whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="

// waitTimeout bounds every wait of these tests.
const waitTimeout = 10 * time.Second

func fixed(t time.Time) func() time.Time { return func() time.Time { return t } }

// newDeliverer returns a webhook deliverer whose safehttp client allows
// the given ranges, with the given timeout (0: safehttp's default) and
// clock (nil: time.Now).
func newDeliverer(t testing.TB, allow []netip.Prefix, timeout time.Duration, now func() time.Time) *webhook.Deliverer {
	t.Helper()
	c, err := safehttp.New(&safehttp.Config{Allow: allow, Timeout: timeout})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	d, err := webhook.New(&webhook.Options{HTTP: c, Now: now})
	require.NoError(t, err)
	return d
}

// config is a webhook subscription's config for url.
func config(t testing.TB, url string) json.RawMessage {
	t.Helper()
	raw, err := json.Marshal(map[string]any{"url": url, "secrets": []map[string]any{{"secret": secret}}})
	require.NoError(t, err)
	return raw
}

// request is a delivery request to url.
func request(t testing.TB, url, deliveryID string) *outhook.DeliveryRequest {
	return &outhook.DeliveryRequest{
		DeliveryID:   deliveryID,
		MessageID:    "msg_" + deliveryID,
		EventID:      "incident.incident.created",
		Subscription: outhook.Subscription{ID: "sub_1", DelivererID: webhook.ID, Config: config(t, url)},
		Payload:      json.RawMessage(`{"title":"DB down"}`),
		OccurredAt:   clock,
		Attempt:      1,
	}
}

// want is how outhook classifies one attempt.
type want struct {
	outcome    outhook.AttemptOutcome
	class      string // the attempt's error class; "" on success
	status     int    // the HTTP status, 0 when there was no answer
	gone       bool   // a *outhook.GoneError (the subscription is disabled)
	op         string // safehttp.Error.Op, when it matters
	retryAfter time.Duration
}

var (
	success   = outhook.AttemptSucceeded
	retryable = outhook.AttemptRetryable
	permanent = outhook.AttemptPermanent
)

// checkError asserts what a Deliver error says: nil on success; otherwise
// a *safehttp.Error of the class, wrapped as PermanentError, GoneError or
// RetryAfterError as outhook's classify reads them.
func checkError(t *testing.T, w want, err error) {
	t.Helper()
	if w.outcome == success {
		require.NoError(t, err)
		return
	}
	require.Error(t, err)
	se, ok := errors.AsType[*safehttp.Error](err)
	require.True(t, ok, "a *safehttp.Error: %v", err)
	require.Equal(t, w.class, string(se.Class), "class of %v", err)
	if w.op != "" {
		require.Equal(t, w.op, se.Op, "op of %v", err)
	}
	_, isPermanent := errors.AsType[*outhook.PermanentError](err)
	_, isGone := errors.AsType[*outhook.GoneError](err)
	ra, isRetryAfter := errors.AsType[*outhook.RetryAfterError](err)
	require.Equal(t, w.gone, isGone, "gone: %v", err)
	require.Equal(t, w.outcome == permanent && !w.gone, isPermanent, "permanent: %v", err)
	require.Equal(t, w.retryAfter > 0, isRetryAfter, "retry-after: %v", err)
	if isRetryAfter {
		require.Equal(t, w.retryAfter, ra.After)
	}
}

// checkAttempt asserts the attempt record outhook's core made.
func checkAttempt(t *testing.T, w want, a outhook.Attempt) {
	t.Helper()
	require.Equal(t, w.outcome, a.Outcome, "outcome (%s)", a.Error)
	require.Equal(t, w.class, a.ErrorClass, "error class (%s)", a.Error)
	require.Equal(t, w.status, a.StatusCode)
	require.Equal(t, w.retryAfter, a.RetryAfter)
}

// TestClassification sends each fault through the webhook deliverer twice:
// once with Deliver, checking the error's wrapping, and once with
// Client.SendTest, checking the attempt record outhook's core makes of it.
func TestClassification(t *testing.T) {
	const timeout = time.Second // of the slow cases only
	for _, tc := range []struct {
		name  string
		fault faultserver.Fault
		slow  bool // a timeout ends it: use a short one
		want  want
		check func(t *testing.T, srv *faultserver.Server, res outhook.DeliveryResult, a outhook.Attempt)
	}{
		{name: "200", fault: faultserver.OK(), want: want{outcome: success, status: 200}},
		{name: "204", fault: faultserver.Status(204), want: want{outcome: success, status: 204}},
		{name: "500", fault: faultserver.Status(500), want: want{outcome: retryable, class: outhook.ErrorClassHTTPStatus, status: 500}},
		{name: "501", fault: faultserver.Status(501), want: want{outcome: permanent, class: outhook.ErrorClassHTTPStatus, status: 501}},
		{name: "502", fault: faultserver.Status(502), want: want{outcome: retryable, class: outhook.ErrorClassHTTPStatus, status: 502}},
		{name: "503", fault: faultserver.Status(503), want: want{outcome: retryable, class: outhook.ErrorClassHTTPStatus, status: 503}},
		{name: "504", fault: faultserver.Status(504), want: want{outcome: retryable, class: outhook.ErrorClassHTTPStatus, status: 504}},
		{name: "410", fault: faultserver.Status(410), want: want{outcome: permanent, class: outhook.ErrorClassHTTPStatus, status: 410, gone: true}},
		{name: "400", fault: faultserver.Status(400), want: want{outcome: permanent, class: outhook.ErrorClassHTTPStatus, status: 400}},
		{name: "429", fault: faultserver.Status(429), want: want{outcome: retryable, class: outhook.ErrorClassHTTPStatus, status: 429}},
		{name: "429 retry-after seconds", fault: faultserver.RetryAfter(429, 120*time.Second),
			want: want{outcome: retryable, class: outhook.ErrorClassHTTPStatus, status: 429, retryAfter: 120 * time.Second}},
		{name: "429 retry-after date", fault: faultserver.RetryAfterDate(429, 90*time.Second),
			want: want{outcome: retryable, class: outhook.ErrorClassHTTPStatus, status: 429, retryAfter: 90 * time.Second}},
		{name: "503 retry-after date", fault: faultserver.RetryAfterDate(503, time.Hour),
			want: want{outcome: retryable, class: outhook.ErrorClassHTTPStatus, status: 503, retryAfter: time.Hour}},
		{name: "500 retry-after ignored", fault: faultserver.RetryAfter(500, 30*time.Second),
			want: want{outcome: retryable, class: outhook.ErrorClassHTTPStatus, status: 500}},
		{name: "redirect to loopback", fault: faultserver.Redirect(http.StatusFound, "/moved"),
			want: want{outcome: permanent, class: outhook.ErrorClassHTTPStatus, status: 302},
			check: func(t *testing.T, srv *faultserver.Server, res outhook.DeliveryResult, _ outhook.Attempt) {
				require.Equal(t, []string{srv.URL() + "/moved"}, res.ResponseHeaders["Location"])
			}},
		{name: "redirect to metadata", fault: faultserver.Redirect(http.StatusTemporaryRedirect, "http://169.254.169.254/latest/meta-data"),
			// Never followed; recorded as blocked, since the Location is an
			// address the guard refuses (an SSRF attempt, not a move).
			want: want{outcome: permanent, class: outhook.ErrorClassBlocked, status: 307, op: "redirect"},
			check: func(t *testing.T, _ *faultserver.Server, res outhook.DeliveryResult, _ outhook.Attempt) {
				require.Equal(t, []string{"http://169.254.169.254/latest/meta-data"}, res.ResponseHeaders["Location"])
			}},
		{name: "hang", fault: faultserver.Hang(), slow: true, want: want{outcome: retryable, class: outhook.ErrorClassTimeout, op: "request"}},
		{name: "trickle within timeout", fault: faultserver.Trickle(4096, 512, 2*time.Millisecond), want: want{outcome: success, status: 200},
			check: func(t *testing.T, _ *faultserver.Server, res outhook.DeliveryResult, _ outhook.Attempt) {
				require.Equal(t, strings.Repeat("x", 4096), res.Response)
			}},
		// The status line (200) arrives at once, the body never in time:
		// the receiver accepted the request, so the attempt succeeds with
		// what arrived; sending it again would be a duplicate.
		{name: "trickle past timeout", fault: faultserver.Trickle(4096, 64, 100*time.Millisecond), slow: true,
			want: want{outcome: success, status: 200},
			check: func(t *testing.T, _ *faultserver.Server, res outhook.DeliveryResult, _ outhook.Attempt) {
				require.Less(t, len(res.Response), 4096, "the part of the body that arrived")
			}},
		// Likewise: "200 OK" and half the body arrive, then the reset.
		{name: "reset", fault: faultserver.Reset(), want: want{outcome: success, status: 200}},
		// A 503 cut mid-body keeps its status and Retry-After.
		{name: "503 retry-after then reset", fault: faultserver.Fault{Kind: faultserver.KindReset, Status: 503, RetryAfter: 30 * time.Second},
			want: want{outcome: retryable, class: outhook.ErrorClassHTTPStatus, status: 503, retryAfter: 30 * time.Second}},
		{name: "drop", fault: faultserver.Drop(), want: want{outcome: retryable, class: outhook.ErrorClassConnect, op: "request"}},
		{name: "50 MiB body", fault: faultserver.LargeBody(0), want: want{outcome: success, status: 200},
			check: func(t *testing.T, srv *faultserver.Server, res outhook.DeliveryResult, a outhook.Attempt) {
				// safehttp keeps 16 KiB, drains 64 KiB more, and closes the
				// connection: the attempt succeeds with the first 16 KiB.
				require.Len(t, res.Response, safehttp.DefaultMaxBody)
				require.Len(t, a.Response, outhook.MaxResponseExcerpt)
				ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
				defer cancel()
				require.NoError(t, srv.WaitIdle(ctx))
				for _, r := range srv.Requests() {
					require.True(t, r.Done)
					require.Less(t, r.Sent, int64(faultserver.LargeBodySize), "the client stopped reading")
					require.GreaterOrEqual(t, r.Sent, int64(safehttp.DefaultMaxBody))
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := faultserver.New(t, &faultserver.Options{Plan: faultserver.Plan{Default: tc.fault}, Now: fixed(clock)})
			var d *webhook.Deliverer
			cfg := &outhook.Config{}
			if tc.slow {
				// Deliver meets safehttp's own timeout; SendTest the
				// client's DeliveryTimeout (a context deadline), earlier.
				d = newDeliverer(t, loopback, timeout, fixed(clock))
				cfg.DeliveryTimeout = timeout / 2
			} else {
				d = newDeliverer(t, loopback, 0, fixed(clock))
			}
			cfg.Deliverers = []outhook.Deliverer{d}
			client := outhooktest.NewClient(t, cfg)
			ctx := context.Background()
			url := srv.URL() + "/hook"

			res, err := d.Deliver(ctx, request(t, url, "dlv_1"))
			t.Logf("Deliver: %v", err)
			checkError(t, tc.want, err)
			require.Equal(t, tc.want.status, res.StatusCode)

			sub, err := client.CreateSubscription(ctx, outhook.Subscription{Events: []string{"**"}, DelivererID: webhook.ID, Config: config(t, url)})
			require.NoError(t, err)
			a, err := client.SendTest(ctx, sub.ID)
			require.Equal(t, tc.want.outcome == success, err == nil, "SendTest: %v", err)
			t.Logf("SendTest: outcome %s, class %q, status %d, retry after %v, error %q", a.Outcome, a.ErrorClass, a.StatusCode, a.RetryAfter, a.Error)
			checkAttempt(t, tc.want, a)

			reqs := srv.Requests()
			require.Len(t, reqs, 2, "one request per attempt: no redirect followed, no transport retry")
			require.Equal(t, "dlv_1", reqs[0].WebhookID)
			require.True(t, strings.HasPrefix(reqs[1].WebhookID, "test_"))
			for _, r := range reqs {
				require.Equal(t, "/hook", r.Path)
				require.Equal(t, tc.fault, r.Fault)
				require.Equal(t, http.MethodPost, r.Method)
				require.Positive(t, r.BodySize)
			}
			if tc.check != nil {
				tc.check(t, srv, res, a)
			}
		})
	}
}

// TestRetryAfterDateRealClock: with real clocks on both sides, a date
// Retry-After parses to the wait asked for, less the fraction of a second
// the HTTP-date cannot carry.
func TestRetryAfterDateRealClock(t *testing.T) {
	t.Parallel()
	srv := faultserver.New(t, &faultserver.Options{Plan: faultserver.Plan{Default: faultserver.RetryAfterDate(429, 90*time.Second)}})
	d := newDeliverer(t, loopback, 0, nil)
	_, err := d.Deliver(context.Background(), request(t, srv.URL(), "dlv_1"))
	ra, ok := errors.AsType[*outhook.RetryAfterError](err)
	require.True(t, ok, "%v", err)
	require.LessOrEqual(t, ra.After, 90*time.Second)
	require.Greater(t, ra.After, 88*time.Second)
}

// TestRedirectNotFollowed: a redirect to another listener never reaches it.
func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	target := faultserver.New(t, nil)
	for _, code := range []int{301, 302, 303, 307, 308} {
		srv := faultserver.New(t, &faultserver.Options{Plan: faultserver.Plan{Default: faultserver.Redirect(code, target.URL()+"/internal")}})
		d := newDeliverer(t, loopback, 0, nil)
		res, err := d.Deliver(context.Background(), request(t, srv.URL(), "dlv_1"))
		checkError(t, want{outcome: permanent, class: outhook.ErrorClassHTTPStatus}, err)
		require.Equal(t, code, res.StatusCode)
		require.Equal(t, 1, srv.Len())
	}
	require.Zero(t, target.Connections(), "the redirect target saw no connection")
	require.Zero(t, target.Len())
}

// TestBlockedNeverConnects: without loopback in its allow-list the
// deliverer refuses the server's address before connecting.
func TestBlockedNeverConnects(t *testing.T) {
	t.Parallel()
	srv := faultserver.New(t, nil)
	d := newDeliverer(t, nil, 0, nil)
	_, err := d.Deliver(context.Background(), request(t, srv.URL(), "dlv_1"))
	checkError(t, want{outcome: permanent, class: outhook.ErrorClassBlocked}, err)
	require.ErrorIs(t, err, safehttp.ErrBlocked)
	require.Zero(t, srv.Connections())
}

// post sends an empty POST to url and drains the answer, ignoring errors
// (some faults have no answer).
func post(c *http.Client, url string) {
	resp, err := c.Post(url, "application/json", strings.NewReader(`{}`))
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// httpClient is a plain client that does not follow redirects.
func httpClient(t testing.TB) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: waitTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// labels returns the fault labels of reqs, in order.
func labels(reqs []faultserver.Request) []string {
	out := make([]string, len(reqs))
	for i, r := range reqs {
		out[i] = r.Fault.String()
	}
	return out
}

func TestMixDeterministic(t *testing.T) {
	t.Parallel()
	mix := []faultserver.Weighted{
		faultserver.Weigh(5, faultserver.OK()),
		faultserver.Weigh(2, faultserver.Status(503)),
		faultserver.Weigh(1, faultserver.RetryAfter(429, time.Second)),
		faultserver.Weigh(1, faultserver.Redirect(302, "/moved")),
		faultserver.Weigh(1, faultserver.Drop()),
		faultserver.Weigh(0, faultserver.Status(410)), // never drawn
	}
	const n = 100
	run := func(seed uint64) []string {
		srv := faultserver.New(t, &faultserver.Options{Seed: seed,
			Plan: faultserver.Plan{Script: []faultserver.Fault{faultserver.Status(502), faultserver.Status(504)}, Mix: mix}})
		c := httpClient(t)
		for range n {
			post(c, srv.URL()+"/hook")
		}
		require.Equal(t, n, srv.Len())
		return labels(srv.Requests())
	}
	a := run(42)
	require.Equal(t, a, run(42), "same seed, same faults")
	require.NotEqual(t, a, run(43), "another seed, other faults")
	require.Equal(t, []string{"502", "504"}, a[:2], "the script comes first")
	count := map[string]int{}
	for _, l := range a[2:] {
		count[l]++
	}
	require.Zero(t, count["410"], "weight 0 is never drawn")
	for _, w := range mix[:5] {
		require.Positive(t, count[w.Fault.String()], "%s drawn", w.Fault)
	}
	require.Greater(t, count["200"], count["302 location /moved"], "weights count")
}

func TestScriptThenDefault(t *testing.T) {
	t.Parallel()
	srv := faultserver.New(t, &faultserver.Options{Plan: faultserver.Plan{
		Script:  []faultserver.Fault{faultserver.Status(500), faultserver.RetryAfter(503, 5*time.Second)},
		Default: faultserver.Status(202),
	}})
	c := httpClient(t)
	for range 4 {
		post(c, srv.URL()+"/x")
	}
	require.Equal(t, []string{"500", "503 retry-after 5s", "202", "202"}, labels(srv.Requests()))

	// SetPlan starts a script again.
	require.NoError(t, srv.SetPlan("", faultserver.Plan{Script: []faultserver.Fault{faultserver.Status(410)}}))
	require.NoError(t, srv.SetPlan("/y", faultserver.Plan{Default: faultserver.Status(504)}))
	post(c, srv.URL()+"/x")
	post(c, srv.URL()+"/x")
	post(c, srv.URL()+"/y")
	require.Equal(t, []string{"410", "200", "504"}, labels(srv.Requests()[4:]))
	require.ErrorContains(t, srv.SetPlan("y", faultserver.Plan{}), "does not start with /")
	require.ErrorContains(t, srv.SetPlan("/y", faultserver.Plan{Mix: []faultserver.Weighted{faultserver.Weigh(0, faultserver.OK())}}), `Paths["/y"].Mix has no positive weight`)
}

// TestPerPathMixes: one server stands in for five endpoints; each path's
// faults depend on the seed and its own requests only, however requests to
// the paths interleave.
func TestPerPathMixes(t *testing.T) {
	t.Parallel()
	paths := map[string]faultserver.Plan{
		"/sub-1": {Default: faultserver.OK()},
		"/sub-2": {Script: []faultserver.Fault{faultserver.Status(410)}, Default: faultserver.Status(500)},
		"/sub-3": {Mix: []faultserver.Weighted{faultserver.Weigh(1, faultserver.OK()), faultserver.Weigh(1, faultserver.Status(503))}},
		"/sub-4": {Mix: []faultserver.Weighted{faultserver.Weigh(3, faultserver.Status(502)), faultserver.Weigh(1, faultserver.Drop())}},
		"/sub-5": {Mix: []faultserver.Weighted{faultserver.Weigh(1, faultserver.RetryAfter(429, time.Second)), faultserver.Weigh(1, faultserver.Reset())}},
	}
	const perPath = 20
	byPath := func(srv *faultserver.Server) map[string][]string {
		out := map[string][]string{}
		for _, r := range srv.Requests() {
			out[r.Path] = append(out[r.Path], r.Fault.String())
		}
		return out
	}

	// In turn, one request per path at a time.
	seq := faultserver.New(t, &faultserver.Options{Seed: 7, Paths: paths, Plan: faultserver.Plan{Default: faultserver.Status(404)}})
	c := httpClient(t)
	for range perPath {
		for i := 1; i <= 5; i++ {
			post(c, fmt.Sprintf("%s/sub-%d", seq.URL(), i))
		}
	}
	post(c, seq.URL()+"/elsewhere")

	// At once: one goroutine per path, interleaving as it may.
	par := faultserver.New(t, &faultserver.Options{Seed: 7, Paths: paths, Plan: faultserver.Plan{Default: faultserver.Status(404)}})
	var wg sync.WaitGroup
	for i := 1; i <= 5; i++ {
		wg.Go(func() {
			c := httpClient(t)
			for range perPath {
				post(c, fmt.Sprintf("%s/sub-%d", par.URL(), i))
			}
		})
	}
	wg.Wait()

	a, b := byPath(seq), byPath(par)
	require.Equal(t, []string{"404"}, a["/elsewhere"], "paths without a plan use Options.Plan")
	delete(a, "/elsewhere")
	require.Equal(t, a, b)

	tally := seq.Tally()
	require.Equal(t, 5*perPath+1, tally.Total)
	for i := 1; i <= 5; i++ {
		require.Equal(t, perPath, tally.ByPath[fmt.Sprintf("/sub-%d", i)])
	}
	require.Equal(t, map[string]int{"200": perPath}, tally.ByPathFault["/sub-1"])
	require.Equal(t, map[string]int{"410": 1, "500": perPath - 1}, tally.ByPathFault["/sub-2"])
	require.Len(t, tally.ByPathFault["/sub-3"], 2)
	require.Len(t, tally.ByPathFault["/sub-4"], 2)
	require.Len(t, tally.ByPathFault["/sub-5"], 2)
	sum := 0
	for _, n := range tally.ByFault {
		sum += n
	}
	require.Equal(t, tally.Total, sum)
	require.Contains(t, tally.String(), "path  /sub-2")
	t.Logf("tally:\n%s", tally)
}

// TestWait: Wait returns once n requests are recorded, without polling; it
// gives up with ctx, and after Close.
func TestWait(t *testing.T) {
	t.Parallel()
	srv := faultserver.New(t, nil)
	c := httpClient(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 3 {
			post(c, srv.URL()+"/w")
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	require.NoError(t, srv.Wait(ctx, 3))
	<-done
	require.NoError(t, srv.WaitIdle(ctx))

	short, cancelShort := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancelShort()
	require.ErrorIs(t, srv.Wait(short, 4), context.DeadlineExceeded)

	srv.Close()
	require.ErrorIs(t, srv.Wait(ctx, 4), faultserver.ErrClosed)
	require.NoError(t, srv.Wait(ctx, 3), "already there")
	require.NoError(t, srv.WaitIdle(ctx))
	require.ErrorIs(t, srv.SetPlan("", faultserver.Plan{}), faultserver.ErrClosed)
}

// TestCloseEndsRequestsInFlight: hanging, trickling and streaming requests
// end when the server closes, long before the client's timeout, and leave
// no goroutine behind.
func TestCloseEndsRequestsInFlight(t *testing.T) {
	// Not parallel: goleak.VerifyNone at the end must not see other tests.
	srv := faultserver.New(nil, &faultserver.Options{Paths: map[string]faultserver.Plan{
		"/hang":    {Default: faultserver.Hang()},
		"/trickle": {Default: faultserver.Trickle(1<<20, 16, 50*time.Millisecond)},
		"/large":   {Default: faultserver.LargeBody(0)},
	}})
	defer srv.Close()
	d := newDeliverer(t, loopback, 0, nil) // 15 s timeout: Close must come first

	type result struct {
		path string
		err  error
	}
	results := make(chan result, 4)
	for i, path := range []string{"/hang", "/hang", "/trickle"} {
		go func() {
			_, err := d.Deliver(context.Background(), request(t, srv.URL()+path, fmt.Sprintf("dlv_%d", i)))
			results <- result{path, err}
		}()
	}
	// A client that asks for the large body and never reads it: the
	// server's writes block once the socket buffers are full.
	u, err := url.Parse(srv.URL())
	require.NoError(t, err)
	raw, err := net.Dial("tcp", u.Host)
	require.NoError(t, err)
	defer raw.Close()
	_, err = io.WriteString(raw, "POST /large HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	require.NoError(t, srv.Wait(ctx, 4))
	for _, r := range srv.Requests() {
		require.False(t, r.Done, "%s in flight", r.Path)
	}

	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("Close did not return")
	}
	for range 3 {
		select {
		case r := <-results:
			if r.path == "/trickle" && r.err == nil {
				// "200 OK" arrived before the cut: accepted. Close can
				// also come between the request's arrival (which Wait
				// counts) and the flush of its status line: then the cut
				// is a connection failure like the others. (That a 2xx
				// cut mid-body is accepted is shown by safehttp's
				// BodyErr tests and the soak's trickle tally.)
				continue
			}
			// Cut without an answer: a connection failure.
			checkError(t, want{outcome: retryable, class: outhook.ErrorClassConnect}, r.err)
			t.Logf("%s: %v", r.path, r.err)
		case <-ctx.Done():
			t.Fatal("a delivery did not end with Close")
		}
	}
	for _, r := range srv.Requests() {
		require.True(t, r.Done, "%s done", r.Path)
	}
	for _, r := range srv.Requests() {
		if r.Path == "/large" {
			require.Less(t, r.Sent, int64(faultserver.LargeBodySize))
		}
	}
	raw.Close()
	goleak.VerifyNone(t)
}

func TestInvalidOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opts *faultserver.Options
		want string
	}{
		{&faultserver.Options{Plan: faultserver.Plan{Default: faultserver.Status(99)}}, "Options.Plan.Default.Status 99 is not 200 to 599"},
		{&faultserver.Options{Plan: faultserver.Plan{Script: []faultserver.Fault{faultserver.OK(), faultserver.Trickle(10, 0, 0)}}}, "Options.Plan.Script[1].Chunk must be at least 1"},
		{&faultserver.Options{Plan: faultserver.Plan{Mix: []faultserver.Weighted{faultserver.Weigh(-1, faultserver.OK())}}}, "Options.Plan.Mix[0].Weight is negative"},
		{&faultserver.Options{Paths: map[string]faultserver.Plan{"sub-1": {}}}, `Options.Paths["sub-1"]: a path starts with /`},
		{&faultserver.Options{Paths: map[string]faultserver.Plan{"/sub-1": {Default: faultserver.RetryAfter(429, -time.Second)}}}, `Options.Paths["/sub-1"].Default.RetryAfter is negative`},
		{&faultserver.Options{Plan: faultserver.Plan{Default: faultserver.Fault{Kind: 42}}}, "Options.Plan.Default.Kind is unknown (42)"},
	} {
		require.ErrorContains(t, panicked(func() { faultserver.New(nil, tc.opts) }), "faultserver: "+tc.want)
	}
}

// panicked returns the error f panics with, nil if it does not panic.
func panicked(f func()) (err error) {
	defer func() { err, _ = recover().(error) }()
	f()
	return nil
}

func TestFaultString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		f    faultserver.Fault
		want string
	}{
		{faultserver.OK(), "200"},
		{faultserver.Status(503), "503"},
		{faultserver.RetryAfter(429, 2500*time.Millisecond), "429 retry-after 2s"},
		{faultserver.RetryAfterDate(503, 90*time.Second), "503 retry-after date +1m30s"},
		{faultserver.Redirect(302, "/moved"), "302 location /moved"},
		{faultserver.Hang(), "hang"},
		{faultserver.Trickle(4096, 512, 10*time.Millisecond), "trickle 200 4096B by 512B/10ms"},
		{faultserver.Reset(), "reset"},
		{faultserver.LargeBody(0), "large-body 52428800B"},
		{faultserver.Drop(), "drop"},
		{faultserver.Status(500).Named("flaky"), "flaky"},
	} {
		require.Equal(t, tc.want, tc.f.String())
	}
	require.Equal(t, 0, faultserver.Hang().Code())
	require.Equal(t, 200, faultserver.LargeBody(0).Code())
}

type Ping struct {
	N int `json:"n"`
}

var ping = outhook.MustNewHook[Ping]("ping")

// expect is how outhook classifies an attempt that met fault f (DESIGN.md,
// Delivery semantics): the oracle a soak checks every attempt against.
func expect(f faultserver.Fault) want {
	switch f.Kind {
	case faultserver.KindDrop:
		return want{outcome: retryable, class: outhook.ErrorClassConnect}
	case faultserver.KindHang:
		return want{outcome: retryable, class: outhook.ErrorClassTimeout}
	}
	// Every other fault sends its status line: a body cut by a reset or
	// a timeout afterwards does not change what the status says.
	code := f.Code()
	w := want{class: outhook.ErrorClassHTTPStatus, status: code}
	switch {
	case code < 300:
		return want{outcome: success, status: code}
	case code < 400 && f.Location != "" && !strings.HasPrefix(f.Location, "/") && !strings.HasPrefix(f.Location, "http://127."):
		// A redirect off loopback (which these tests allow) is toward an
		// address the guard refuses.
		w.outcome, w.class, w.op = permanent, outhook.ErrorClassBlocked, "redirect"
	case code == 410:
		w.outcome, w.gone = permanent, true
	case code == 429 || code == 502 || code == 503 || code == 504:
		w.outcome, w.retryAfter = retryable, f.RetryAfter.Truncate(time.Second)
	case code == 501:
		w.outcome = permanent
	case code >= 500:
		w.outcome = retryable
	default:
		w.outcome = permanent
	}
	return w
}

// TestSmallSoak runs events through a real client to five subscriptions
// served by one server with a plan per path, and checks every delivery's
// attempts against what its endpoint did, matched by webhook-id.
func TestSmallSoak(t *testing.T) {
	t.Parallel()
	const events, maxAttempts = 20, 3
	srv := faultserver.New(t, &faultserver.Options{Seed: 2026, Paths: map[string]faultserver.Plan{
		"/sub-1": {Default: faultserver.OK()},
		"/sub-2": {Mix: []faultserver.Weighted{faultserver.Weigh(3, faultserver.OK()), faultserver.Weigh(1, faultserver.Status(503)),
			faultserver.Weigh(1, faultserver.RetryAfter(429, time.Second)), faultserver.Weigh(1, faultserver.Status(500))}},
		"/sub-3": {Mix: []faultserver.Weighted{faultserver.Weigh(2, faultserver.OK()), faultserver.Weigh(1, faultserver.Drop()),
			faultserver.Weigh(1, faultserver.Reset()), faultserver.Weigh(1, faultserver.Status(502))}},
		"/sub-4": {Mix: []faultserver.Weighted{faultserver.Weigh(3, faultserver.Status(201)), faultserver.Weigh(1, faultserver.Redirect(302, "/elsewhere")),
			faultserver.Weigh(1, faultserver.Status(400))}},
		"/sub-5": {Script: []faultserver.Fault{faultserver.Status(410)}, Default: faultserver.OK()},
	}})
	reg := outhook.NewEventRegistry()
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[Ping]{Hook: ping, DisplayName: "Ping"}, outhook.PluginMetadata{PluginID: "test"})
	retry := outhooktest.NoDelay(maxAttempts)
	retry.MaxRetryAfter = time.Millisecond // honoured, but not waited for here
	c := outhooktest.NewClient(t, &outhook.Config{Registry: reg, DeliveryRetry: retry,
		Deliverers: []outhook.Deliverer{newDeliverer(t, loopback, 0, nil)}})
	ctx := context.Background()
	subs := map[string]string{} // subscription ID -> path
	for i := 1; i <= 5; i++ {
		path := fmt.Sprintf("/sub-%d", i)
		sub, err := c.CreateSubscription(ctx, outhook.Subscription{Events: []string{"test.ping"}, DelivererID: webhook.ID, Config: config(t, srv.URL()+path)})
		require.NoError(t, err)
		subs[sub.ID] = path
	}
	for n := range events {
		require.NoError(t, outhook.EmitHook(ctx, c, ping, Ping{N: n}))
	}
	outhooktest.WaitIdle(t, c)

	byID := map[string][]faultserver.Request{}
	for _, r := range srv.Requests() {
		byID[r.WebhookID] = append(byID[r.WebhookID], r)
	}
	attempts := 0
	for id, path := range subs {
		ds, err := c.Store().ListDeliveries(ctx, outhook.DeliveryQuery{SubscriptionID: id, Limit: 1000})
		require.NoError(t, err)
		if path != "/sub-5" {
			require.Len(t, ds, events, "%s: no delivery missing", path)
		}
		for _, d := range ds {
			reqs := byID[d.ID]
			require.Len(t, d.Attempts, len(reqs), "%s %s: one request per attempt", path, d.ID)
			attempts += len(reqs)
			for i, a := range d.Attempts {
				require.Equal(t, path, reqs[i].Path)
				checkAttempt(t, expect(reqs[i].Fault), a)
			}
			if len(d.Attempts) == 0 {
				// Abandoned: its subscription was disabled by a 410 first.
				require.Equal(t, "/sub-5", path)
				require.Equal(t, outhook.DeliveryFailed, d.Status)
				continue
			}
			last := d.Attempts[len(d.Attempts)-1]
			switch {
			case last.Outcome == outhook.AttemptSucceeded:
				require.Equal(t, outhook.DeliverySucceeded, d.Status, "%s %s", path, d.ID)
			case last.Outcome == outhook.AttemptPermanent || len(d.Attempts) == maxAttempts:
				require.Equal(t, outhook.DeliveryFailed, d.Status, "%s %s", path, d.ID)
			default:
				t.Fatalf("%s %s: %s after a retryable attempt %d of %d", path, d.ID, d.Status, len(d.Attempts), maxAttempts)
			}
		}
	}
	require.Equal(t, srv.Len(), attempts, "every request is an attempt of a delivery")
	for id, path := range subs {
		if path == "/sub-5" {
			sub, err := c.Subscription(ctx, id)
			require.NoError(t, err)
			require.True(t, sub.Disabled, "410 disabled the subscription")
			require.NotEmpty(t, sub.DisabledReason)
		}
	}
	t.Logf("tally:\n%s", srv.Tally())
}
