// Package soaktest is the fault soak every backend runs (issue 7, item 1):
// thousands of events to five subscriptions whose endpoints misbehave in
// every way a webhook receiver can, delivered by the real webhook deliverer
// through the SSRF-guarded HTTP client; at the end every delivery is
// checked against what its endpoint did to each of its requests.
//
// A backend's test runs it in a few lines, as the operations suite
// (internal/opstest):
//
//	func TestSoak(t *testing.T) {
//		soaktest.Run(t, func(t *testing.T, logger *slog.Logger) (queue.Queue, outhook.Store) {
//			return newQueue(t, logger), newStore(t)
//		})
//	}
//
// # The run
//
// One fault-injecting receiver (outhooktest/faultserver) serves the paths
// /sub-1 ... /sub-5, one per subscription, each with a weighted mix of its
// own drawn from a seeded stream: 2xx, 500, 501, 502, 503, 504, 429 with
// Retry-After in seconds and as an HTTP-date, 3xx redirects to this
// loopback server and to http://169.254.169.254/latest/meta-data, a hang
// past the timeout, a body trickled within and past the timeout (after a
// 200 and after a 503), a response reset mid-body (after a 200, a 503, and
// a 429 or 503 with Retry-After), a 1 MiB body, a connection closed without
// an answer, and 4xx. /sub-1 serves one 50 MiB body, scripted, so that the
// real size is exercised.
//
// A 410 makes a delivery fail for good and disables its subscription: it
// is scripted once, late, on /sub-5, after 80 % of the first batch's
// requests to it. Deliveries to /sub-5 that were pending then end failed
// without a further attempt ("subscription is disabled"), and events routed
// after it are not routed to /sub-5: the soak emits a second, small batch
// once the first is done and checks that none of it reaches /sub-5.
//
// The client has a short delivery timeout (DeliveryTimeout), retries
// without delay up to MaxAttempts attempts, and caps Retry-After at
// MaxRetryAfter, so that the run is bounded. It does not cap the attempts
// in flight to a failing subscription (Config.FailingMaxInFlight -1): the
// soak is about classification and accounting, and the cap would make a
// hanging endpoint's deliveries wait their turn for minutes (the opstest
// suite covers the caps).
//
// # The checks
//
// Once the client is idle, every delivery is read back from the store
// (Client.Deliveries, paged) and matched with the receiver's records by
// its webhook-id header, which is the delivery ID:
//
//   - every delivery is succeeded or failed, and each of its attempts has
//     the outcome, error class, status and Retry-After that the fault the
//     receiver applied to that request calls for (see expect), with one
//     request per attempt: none unrecorded, none lost;
//   - the attempts chain: every attempt but the last was retryable, the
//     last decides the state (succeeded, failed for good, failed after
//     MaxAttempts, or failed because the subscription was disabled), and a
//     retry never came before its Retry-After (capped);
//   - nothing is missing: every event has one delivery per subscription
//     that was enabled when it was routed, and every request the receiver
//     saw belongs to a delivery to its path;
//   - no delivery was in flight twice: the deliverer's calls for one
//     delivery never overlap (the soak wraps the webhook deliverer to
//     count them), its attempts' time spans do not either, and each
//     request arrived within its attempt (the receiver records arrivals).
//
// A machine too loaded to read an answer within the delivery timeout makes
// an attempt time out whatever the receiver sent: such attempts are
// counted apart in the report, and fail the soak past 1 % of the attempts,
// or past a fifth of one fault's (a fault misclassified as a timeout shows
// up there).
//
// The tallies (deliveries by state, attempts by class and fault by fault,
// the warnings and errors the client and the queue logged, and the
// receiver's own tally) are logged, and appended to the file named by
// OUTHOOK_PROOF_REPORT when it is set, as the cluster proofs do.
//
// # Running
//
//	go test -run TestSoak -v .            # in-memory queue and store
//	go test -run TestSoak -v ./sqlite
//	OUTHOOK_POSTGRES_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' \
//		go test -run TestSoak -v ./postgres
//	OUTHOOK_NATS_URL=nats://127.0.0.1:4222 go test -run TestSoak -v ./natsqueue
//	OUTHOOK_SOAK_EVENTS=100000 go test -run TestSoak -timeout 2h ./sqlite   # a long soak
//
// The Postgres and NATS soaks are skipped without their service, unless
// OUTHOOK_REQUIRE_SERVICES=1 (see internal/servicetest).
//
// # Size and seed
//
// The soak emits DefaultEvents (5,000) events: a twentieth of them under
// the race detector, a tenth with -short. OUTHOOK_SOAK_EVENTS sets the count, for long
// soaks; the deadline grows with it (Deadline per 5,000 events).
// OUTHOOK_SOAK_SEED sets the seed of the mixes (decimal); without it a
// random seed is used and logged, so a failing run can be replayed (the
// faults of each path then come in the same order, though requests
// interleave differently).
package soaktest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
	"github.com/outhook/outhook/outhooktest/faultserver"
	"github.com/outhook/outhook/queue"
	"github.com/outhook/outhook/safehttp"
	"github.com/outhook/outhook/webhook"
)

// Settings of the soak.
const (
	// DefaultEvents is the number of events of a plain `go test` run.
	DefaultEvents = 5000
	// Subscriptions is the number of subscriptions, one per endpoint.
	Subscriptions = 5
	// DeliveryTimeout is the client's delivery timeout: the queue's leases
	// must outlast it (plus the store's bookkeeping after each attempt).
	DeliveryTimeout = 400 * time.Millisecond
	// MaxAttempts is the number of attempts after which a delivery that
	// keeps failing fails for good.
	MaxAttempts = 4
	// MaxRetryAfter caps the waits the endpoints ask for.
	MaxRetryAfter = time.Second
	// Deadline bounds a run of DefaultEvents events: emitting, delivering
	// and waiting for the client to be idle.
	Deadline = 4 * time.Minute
	// Emitters is the number of goroutines that emit the events.
	Emitters = 32
)

// Environment variables read by Run.
const (
	EnvEvents = "OUTHOOK_SOAK_EVENTS"
	EnvSeed   = "OUTHOOK_SOAK_SEED"
	EnvReport = "OUTHOOK_PROOF_REPORT"
)

// NewParts returns an unstarted queue and a store, both empty and of the
// test's own, and registers their cleanup with t.Cleanup. Run builds a
// client on them, which it starts and stops. The queue's leases must
// outlast DeliveryTimeout by a margin that covers the store's writes after
// an attempt on a loaded machine (a few seconds).
//
// logger counts the warnings and errors it receives for the report: pass it
// to the queue (the client gets it too).
type NewParts func(t *testing.T, logger *slog.Logger) (queue.Queue, outhook.Store)

// Ping is the soak's event payload: N numbers the events of a run.
type Ping struct {
	N int `json:"n" validate:"gte=0"`
}

// pingHook is the soak's hook, registered by the plugin "soak" as the
// event soak.ping.
var pingHook = outhook.MustNewHook[Ping]("ping")

const eventID = "soak.ping"

// secret signs the webhooks: "whsec_" + base64 of 32 bytes ("soak-...-32").
const secret = "whsec_c29hay1zb2FrLXNvYWstc29hay1zb2FrLXNvYWstMzI="

// Run runs the soak on the queue and store newParts returns.
func Run(t *testing.T, newParts NewParts) {
	t.Helper()
	seed := soakSeed(t)
	events, deadline := size(t)
	tail := max(events/50, 5) // the batch emitted after the 410
	first := events - tail
	goneAt := max(first*4/5, 1)
	t.Logf("soak: seed %d (replay with %s=%d), %d events (%d, then %d after the 410) × %d subscriptions, deadline %s",
		seed, EnvSeed, seed, events, first, tail, Subscriptions, deadline)

	// The receiver, the HTTP client and the deliverer. Cleanups run in
	// reverse: the client stops first, then the queue's and the store's
	// parts are released, then the HTTP client's idle connections close,
	// then the receiver.
	eps := endpoints(seed, goneAt)
	paths := make(map[string]faultserver.Plan, len(eps))
	for _, ep := range eps {
		paths[ep.path] = ep.plan
	}
	srv := faultserver.New(t, &faultserver.Options{Seed: seed, Paths: paths,
		Plan: faultserver.Plan{Default: faultserver.Status(404)}})
	hc, err := safehttp.New(&safehttp.Config{
		Allow:   []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Timeout: 10 * DeliveryTimeout, // the client's DeliveryTimeout comes first
	})
	if err != nil {
		t.Fatalf("soaktest: safehttp.New: %v", err)
	}
	t.Cleanup(hc.Close)
	wh, err := webhook.New(&webhook.Options{HTTP: hc})
	if err != nil {
		t.Fatalf("soaktest: webhook.New: %v", err)
	}
	tr := &tracker{Deliverer: wh, inflight: map[string]*call{}, calls: map[string]int{}}

	logs := newLogCounter()
	logger := slog.New(logs)
	q, store := newParts(t, logger)
	if q == nil || store == nil {
		t.Fatal("soaktest: newParts returned a nil queue or store")
	}
	if _, ok := q.(queue.Idler); !ok {
		t.Fatalf("soaktest: the queue %T does not implement queue.Idler", q)
	}
	backend := fmt.Sprintf("queue %T, store %T", q, store)
	reg := outhook.NewEventRegistry()
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[Ping]{Hook: pingHook, DisplayName: "Soak ping"},
		outhook.PluginMetadata{PluginID: "soak"})
	client := outhooktest.NewClient(t, &outhook.Config{
		Registry:   reg,
		Deliverers: []outhook.Deliverer{tr},
		Queue:      q,
		Store:      store,
		DeliveryRetry: outhook.RetryPolicy{
			NewBackOff:    outhooktest.NoDelay(MaxAttempts).NewBackOff,
			MaxRetryAfter: MaxRetryAfter,
		},
		DeliveryTimeout:    DeliveryTimeout,
		FailingMaxInFlight: -1,
		Logger:             logger,
	})

	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	subs := make([]string, len(eps)) // subscription IDs, by endpoint
	for i, ep := range eps {
		cfg, err := json.Marshal(map[string]any{"url": srv.URL() + ep.path, "secrets": []map[string]any{{"secret": secret}}})
		if err != nil {
			t.Fatal(err)
		}
		sub, err := client.CreateSubscription(ctx, outhook.Subscription{Name: "soak " + ep.path,
			Events: []string{eventID}, DelivererID: webhook.ID, Config: cfg})
		if err != nil {
			t.Fatalf("soaktest: CreateSubscription %s: %v", ep.path, err)
		}
		subs[i] = sub.ID
	}

	start := time.Now()
	emit(ctx, t, client, 0, first)
	emitted := time.Since(start)
	waitIdle(ctx, t, client, srv, start, deadline, "the first batch")
	firstDone := time.Since(start)
	// The 410 has been served: every delivery of the first batch to /sub-5
	// made an attempt, or was abandoned after it (see endpoints). The tail
	// must not be routed to /sub-5.
	emit(ctx, t, client, first, events)
	waitIdle(ctx, t, client, srv, start, deadline, "the batch after the 410")
	elapsed := time.Since(start)
	if err := srv.WaitIdle(ctx); err != nil {
		t.Fatalf("soaktest: the receiver still has requests in flight after %s: %v", time.Since(start).Round(time.Millisecond), err)
	}

	// Reading every delivery back gets time of its own.
	rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer rcancel()
	s := &soak{
		t: t, ctx: rctx, client: client, srv: srv, tr: tr, eps: eps, subs: subs,
		events: events, first: first, seed: seed, backend: backend, logs: logs,
	}
	s.collect()
	s.check()
	s.report(emitted, firstDone, elapsed)
	s.fail()
}

// soakSeed returns the seed from OUTHOOK_SOAK_SEED, or a random one.
func soakSeed(t *testing.T) uint64 {
	t.Helper()
	if v := os.Getenv(EnvSeed); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("soaktest: %s=%q is not a decimal uint64: %v", EnvSeed, v, err)
		}
		return seed
	}
	return rand.Uint64()
}

// size returns the number of events and the deadline of the run.
func size(t *testing.T) (int, time.Duration) {
	t.Helper()
	n := DefaultEvents
	if v := os.Getenv(EnvEvents); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 10 {
			t.Fatalf("soaktest: %s=%q is not a number of events of at least 10", EnvEvents, v)
		}
	} else if raceEnabled {
		n /= 20 // runs three times in CI (-race -count=3)
	} else if testing.Short() {
		n /= 10
	}
	return n, time.Duration(max(1, (n+DefaultEvents-1)/DefaultEvents)) * Deadline
}

// emit emits events [from, to) from Emitters goroutines.
func emit(ctx context.Context, t *testing.T, c *outhook.Client, from, to int) {
	t.Helper()
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	errs := make(chan error, Emitters)
	for range Emitters {
		wg.Go(func() {
			for {
				n := int(next.Add(1) - 1)
				if n >= to {
					return
				}
				if err := outhook.EmitHook(ctx, c, pingHook, Ping{N: n}); err != nil {
					errs <- fmt.Errorf("emit event %d: %w", n, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("soaktest: %v", err)
	}
}

// waitIdle waits for the client to have no work left, failing the test
// with the progress made when ctx ends first.
func waitIdle(ctx context.Context, t *testing.T, c *outhook.Client, srv *faultserver.Server, start time.Time, deadline time.Duration, what string) {
	t.Helper()
	if err := c.WaitIdle(ctx); err == nil {
		return
	}
	// Out of time: say how far the run got.
	pctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pending, err := c.Deliveries(pctx, outhook.DeliveryQuery{Status: outhook.DeliveryPending, Limit: 1000})
	progress := fmt.Sprintf("%d pending deliveries or more", len(pending))
	if err != nil {
		progress = fmt.Sprintf("cannot list pending deliveries: %v", err)
	}
	t.Fatalf("soaktest: the soak did not finish %s within its deadline of %s (%s=%s): after %s the receiver has served %d requests; %s; receiver tally:\n%s",
		what, deadline, EnvEvents, os.Getenv(EnvEvents), time.Since(start).Round(time.Millisecond), srv.Len(), progress, srv.Tally())
}

// tracker wraps the webhook deliverer and records, per delivery, how many
// calls were made and whether two were ever in progress at once.
type tracker struct {
	*webhook.Deliverer

	mu       sync.Mutex
	inflight map[string]*call // the call in progress, by delivery ID
	calls    map[string]int   // calls made, by delivery ID
	overlaps []string         // calls made while another for the same delivery was in progress
}

// call is a Deliver call in progress.
type call struct {
	attempt int
	start   time.Time
	n       int // calls in progress for the delivery
}

// Deliver implements outhook.Deliverer.
func (d *tracker) Deliver(ctx context.Context, req *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	id, start := req.DeliveryID, time.Now()
	d.mu.Lock()
	d.calls[id]++
	c := d.inflight[id]
	if c == nil {
		c = &call{attempt: req.Attempt, start: start}
		d.inflight[id] = c
	} else {
		d.overlaps = append(d.overlaps, fmt.Sprintf("%s: attempt %d started at %s while attempt %d, started at %s, was in progress",
			id, req.Attempt, start.Format(time.StampMicro), c.attempt, c.start.Format(time.StampMicro)))
	}
	c.n++
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		if c.n--; c.n == 0 {
			delete(d.inflight, id)
		}
		d.mu.Unlock()
	}()
	return d.Deliverer.Deliver(ctx, req)
}
