package outhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/memqueue"
	"github.com/outhook/outhook/outhooktest"
)

// hangingDeliverer is a destination whose attempts hang until the test opens
// its gate (or the attempt's context ends), after failing the first
// failFirst attempts at once. It counts the attempts in progress.
type hangingDeliverer struct {
	id        string
	failFirst int32
	gate      chan struct{}
	calls     atomic.Int32
	active    atomic.Int32
	maxActive atomic.Int32
	started   chan int32 // the number of each attempt that starts, if not nil
	done      atomic.Int32
}

func newHanging(id string) *hangingDeliverer {
	return &hangingDeliverer{id: id, gate: make(chan struct{}), started: make(chan int32, 1024)}
}

func (g *hangingDeliverer) ID() string { return g.id }
func (g *hangingDeliverer) ConfigSchema() json.RawMessage {
	return json.RawMessage(`{"type":"object"}`)
}
func (g *hangingDeliverer) ValidateConfig(json.RawMessage) error { return nil }

func (g *hangingDeliverer) Deliver(ctx context.Context, _ *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	n := g.calls.Add(1)
	active := g.active.Add(1)
	defer g.active.Add(-1)
	for {
		m := g.maxActive.Load()
		if active <= m || g.maxActive.CompareAndSwap(m, active) {
			break
		}
	}
	g.started <- n
	if n <= g.failFirst {
		return outhook.DeliveryResult{StatusCode: 503}, errors.New("503 Service Unavailable")
	}
	select {
	case <-g.gate:
		g.done.Add(1)
		return outhook.DeliveryResult{StatusCode: 200}, nil
	case <-ctx.Done():
		return outhook.DeliveryResult{}, ctx.Err()
	}
}

// limitsClient is a client on an in-memory queue with four workers, a slow
// destination ("slow", for incident.created) and a healthy one ("fast",
// for incident.resolved).
func limitsClient(t *testing.T, cfg outhook.Config, slow *hangingDeliverer, slowLimits outhook.DeliveryLimits) (*outhook.Client, *outhooktest.Deliverer) {
	t.Helper()
	q, err := memqueue.New(&memqueue.Config{Concurrency: 4, Logger: quiet})
	require.NoError(t, err)
	fast := outhooktest.NewDeliverer("fast")
	cfg.Registry = newIncidentRegistry(t)
	cfg.Queue = q
	cfg.Deliverers = []outhook.Deliverer{slow, fast}
	cfg.Logger = quiet
	c, err := outhook.NewClient(&cfg)
	require.NoError(t, err)
	ctx := context.Background()
	_, err = c.CreateSubscription(ctx, outhook.Subscription{Events: []string{createdEvent}, DelivererID: "slow", Limits: slowLimits})
	require.NoError(t, err)
	_, err = c.CreateSubscription(ctx, outhook.Subscription{Events: []string{resolvedEvent}, DelivererID: "fast"})
	require.NoError(t, err)
	require.NoError(t, c.Start(ctx))
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, c.Stop(sctx))
	})
	return c, fast
}

func emitBoth(t *testing.T, c *outhook.Client, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		require.NoError(t, outhook.EmitHook(ctx, c, incidentCreated, sampleIncident("inc-"+string(rune('a'+i)))))
	}
	for range n {
		require.NoError(t, outhook.EmitHook(ctx, c, incidentResolved, IncidentResolved{IncidentID: "inc", SystemIDs: []string{"sys-1"}}))
	}
}

// A destination that hangs holds no more workers than its subscription's
// MaxInFlight: the other subscription's deliveries all go through while it
// hangs. Without the cap the hanging attempts would take all four workers,
// and nothing would reach the healthy destination until they ended.
func TestMaxInFlightKeepsSlowEndpointFromHoldingOthers(t *testing.T) {
	slow := newHanging("slow")
	c, fast := limitsClient(t, outhook.Config{DeliveryTimeout: time.Minute}, slow, outhook.DeliveryLimits{MaxInFlight: 1})
	emitBoth(t, c, 12)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, fast.WaitCalls(ctx, 12), "the healthy destination got everything while the slow one hung")
	assert.Len(t, fast.Delivered(), 12)
	assert.EqualValues(t, 0, slow.done.Load(), "the slow destination is still hanging")
	assert.EqualValues(t, 1, slow.maxActive.Load(), "never more than MaxInFlight attempts to the slow destination")

	close(slow.gate)
	outhooktest.WaitIdle(t, c)
	assert.EqualValues(t, 12, slow.done.Load())
	assert.EqualValues(t, 1, slow.maxActive.Load())
	ds, err := c.Deliveries(context.Background(), outhook.DeliveryQuery{EventID: createdEvent})
	require.NoError(t, err)
	require.Len(t, ds, 12)
	for _, d := range ds {
		assert.Equal(t, outhook.DeliverySucceeded, d.Status)
		assert.Len(t, d.Attempts, 1, "waiting for a slot is not an attempt")
	}
}

// By default a subscription has no cap, but once an attempt to it has
// failed (the destination is down, overloaded or timing out) it gets
// FailingMaxInFlight (2) attempts at a time: a dead destination's retries
// and new deliveries hold two workers, and the other two keep delivering
// first attempts to the healthy destination.
func TestFailingEndpointGetsFewWorkers(t *testing.T) {
	slow := newHanging("slow")
	slow.failFirst = 1 // the first attempt fails at once; every later one hangs
	c, fast := limitsClient(t, outhook.Config{DeliveryTimeout: time.Minute, DeliveryRetry: outhooktest.NoDelay(10)}, slow, outhook.DeliveryLimits{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	require.NoError(t, outhook.EmitHook(ctx, c, incidentCreated, sampleIncident("inc-0")))
	// The retry of the first delivery starts after its failed attempt was
	// recorded: from then on, the subscription is failing.
	for n := range 2 {
		select {
		case got := <-slow.started:
			require.EqualValues(t, n+1, got)
		case <-ctx.Done():
			t.Fatal("the failed delivery was not retried")
		}
	}
	slow.maxActive.Store(slow.active.Load())
	emitBoth(t, c, 12)
	require.NoError(t, fast.WaitCalls(ctx, 12), "the healthy destination got everything while the failing one hung")
	assert.EqualValues(t, 0, slow.done.Load(), "the failing destination is still hanging")
	assert.LessOrEqual(t, slow.maxActive.Load(), int32(outhook.DefaultFailingMaxInFlight))

	close(slow.gate)
	outhooktest.WaitIdle(t, c)
	assert.EqualValues(t, 13, slow.done.Load(), "every delivery to the failing destination went through once it answered")
}

// A rate limit spaces attempts out; deliveries that wait for their turn
// make no extra attempt and keep their order of arrival.
func TestRateLimitSpacesAttempts(t *testing.T) {
	var (
		mu     sync.Mutex
		starts []time.Time
	)
	dl := outhooktest.NewDeliverer("fast")
	q, err := memqueue.New(&memqueue.Config{Concurrency: 8, Logger: quiet})
	require.NoError(t, err)
	c, err := outhook.NewClient(&outhook.Config{Registry: newIncidentRegistry(t), Queue: q, Deliverers: []outhook.Deliverer{recordStarts{dl, &mu, &starts}}, Logger: quiet})
	require.NoError(t, err)
	ctx := context.Background()
	const rate, n = 50.0, 10
	_, err = c.CreateSubscription(ctx, outhook.Subscription{Events: []string{createdEvent}, DelivererID: "fast",
		Limits: outhook.DeliveryLimits{Rate: rate, Burst: 1}})
	require.NoError(t, err)
	require.NoError(t, c.Start(ctx))
	defer func() { require.NoError(t, c.Stop(ctx)) }()

	for i := range n {
		require.NoError(t, outhook.EmitHook(ctx, c, incidentCreated, sampleIncident("inc-"+string(rune('a'+i)))))
	}
	outhooktest.WaitIdle(t, c)
	require.Len(t, dl.Delivered(), n)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, starts, n)
	// A token bucket of one token refilled 50 times a second lets n
	// attempts start no faster than (n-1)/50 s from first to last. A slow
	// machine can only stretch that.
	span := starts[n-1].Sub(starts[0])
	assert.GreaterOrEqual(t, span, time.Duration(float64(n-1)/rate*float64(time.Second))-5*time.Millisecond, "attempts started faster than the rate")
	ds, err := c.Deliveries(ctx, outhook.DeliveryQuery{})
	require.NoError(t, err)
	for _, d := range ds {
		assert.Len(t, d.Attempts, 1, "waiting for the rate limit is not an attempt")
	}
}

// recordStarts notes when each attempt starts.
type recordStarts struct {
	*outhooktest.Deliverer
	mu     *sync.Mutex
	starts *[]time.Time
}

func (r recordStarts) Deliver(ctx context.Context, req *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	r.mu.Lock()
	*r.starts = append(*r.starts, time.Now())
	r.mu.Unlock()
	return r.Deliverer.Deliver(ctx, req)
}

func TestDeliveryLimitsValidation(t *testing.T) {
	c := outhooktest.NewClient(t, &outhook.Config{Registry: newIncidentRegistry(t), Deliverers: []outhook.Deliverer{outhooktest.NewDeliverer("fake")}})
	ctx := context.Background()
	for _, tc := range []struct {
		limits outhook.DeliveryLimits
		field  string
		reason string
	}{
		{outhook.DeliveryLimits{Rate: -1}, "limits.rate", "must be between 0 and 1e+06 attempts per second, got -1"},
		{outhook.DeliveryLimits{Rate: 2e6}, "limits.rate", "must be between 0 and 1e+06 attempts per second, got 2e+06"},
		{outhook.DeliveryLimits{Burst: 3}, "limits.burst", "needs a rate"},
		{outhook.DeliveryLimits{Rate: 1, Burst: -2}, "limits.burst", "must be between 0 and 65536, got -2"},
		{outhook.DeliveryLimits{MaxInFlight: -1}, "limits.maxInFlight", "must be between 0 and 65536, got -1"},
	} {
		_, err := c.CreateSubscription(ctx, outhook.Subscription{Events: []string{createdEvent}, DelivererID: "fake", Limits: tc.limits})
		se, ok := errors.AsType[*outhook.SubscriptionError](err)
		require.True(t, ok, "%+v: %v", tc.limits, err)
		assert.Equal(t, tc.field, se.Field)
		assert.Equal(t, tc.reason, se.Reason)
		assert.ErrorIs(t, err, outhook.ErrInvalidSubscription)
	}
	subs, err := c.Subscriptions(ctx)
	require.NoError(t, err)
	assert.Empty(t, subs, "nothing was stored")

	// Limits are kept, and changed by an update.
	s, err := c.CreateSubscription(ctx, outhook.Subscription{Events: []string{createdEvent}, DelivererID: "fake", Limits: outhook.DeliveryLimits{Rate: 0.5, MaxInFlight: 3}})
	require.NoError(t, err)
	s.Limits = outhook.DeliveryLimits{Rate: 10, Burst: 20}
	_, err = c.UpdateSubscription(ctx, s)
	require.NoError(t, err)
	got, err := c.Subscription(ctx, s.ID)
	require.NoError(t, err)
	assert.Equal(t, outhook.DeliveryLimits{Rate: 10, Burst: 20}, got.Limits)

	for _, cfg := range []struct {
		cfg  outhook.Config
		want string
	}{
		{outhook.Config{MaxInFlightPerSubscription: -1}, "outhook: Config.MaxInFlightPerSubscription must be between 0 and 65536, got -1"},
		{outhook.Config{FailingMaxInFlight: 1 << 20}, "outhook: Config.FailingMaxInFlight must be at most 65536, got 1048576"},
	} {
		_, err := outhook.NewClient(&cfg.cfg)
		assert.EqualError(t, err, cfg.want)
	}
}

// countingStore counts the delivery reads of the delivery worker: one per
// run of a delivery job (the MemoryStore's fast path is bypassed).
type countingStore struct {
	*outhook.MemoryStore
	reads atomic.Int64
}

func (s *countingStore) GetDelivery(ctx context.Context, id string) (*outhook.Delivery, error) {
	s.reads.Add(1)
	return s.MemoryStore.GetDelivery(ctx, id)
}

// Deliveries waiting at a cap are paced: they come back one by one, a step
// apart (20 ms while no attempt has ended), instead of polling in a loop. (Before
// pacing, 500 waiting deliveries made about 60,000 runs a second.)
func TestWaitingDeliveriesArePaced(t *testing.T) {
	slow := newHanging("slow")
	store := &countingStore{MemoryStore: outhook.NewMemoryStore(nil)}
	c, _ := limitsClient(t, outhook.Config{DeliveryTimeout: time.Minute, Store: store}, slow, outhook.DeliveryLimits{MaxInFlight: 1})
	ctx := context.Background()
	const waiting = 200
	for i := range waiting + 1 {
		require.NoError(t, outhook.EmitHook(ctx, c, incidentCreated, sampleIncident(fmt.Sprint("inc-", i))))
	}
	select {
	case <-slow.started:
	case <-time.After(20 * time.Second):
		t.Fatal("no attempt started")
	}
	// A measuring window, not a wait for work: count the runs in it.
	const window = 500 * time.Millisecond
	before := store.reads.Load()
	start := time.Now()
	<-time.After(window)
	runs, took := store.reads.Load()-before, time.Since(start)
	// At most every waiting delivery's first run, plus one run per 20 ms
	// step (no attempt has ended yet), twice over for slack.
	bound := int64(waiting) + 2*int64(took/(20*time.Millisecond))
	assert.LessOrEqual(t, runs, bound, "runs of waiting deliveries in %s", took)
	t.Logf("%d runs of %d waiting deliveries in %s", runs, waiting, took)
	close(slow.gate)
	outhooktest.WaitIdle(t, c)
	assert.EqualValues(t, waiting+1, slow.done.Load())
}

// brokenErr panics in Error when it is a nil pointer, as a careless
// deliverer's error type may.
type brokenErr struct{ msg string }

func (e *brokenErr) Error() string { return e.msg }

type brokenDeliverer struct{ *outhooktest.Deliverer }

func (b brokenDeliverer) Deliver(ctx context.Context, req *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	if req.Attempt == 1 {
		var e *brokenErr
		return outhook.DeliveryResult{}, e // a non-nil error holding a nil pointer
	}
	return b.Deliverer.Deliver(ctx, req)
}

// An error whose Error method panics is a failed, retried attempt, and it
// leaves the subscription's in-flight cap as it was.
func TestBrokenErrorReleasesTheSlot(t *testing.T) {
	fake := outhooktest.NewDeliverer("fake")
	c := outhooktest.NewClient(t, &outhook.Config{Registry: newIncidentRegistry(t), Deliverers: []outhook.Deliverer{brokenDeliverer{fake}},
		DeliveryRetry: outhooktest.NoDelay(3)})
	ctx := context.Background()
	_, err := c.CreateSubscription(ctx, outhook.Subscription{Events: []string{createdEvent}, DelivererID: "fake", Limits: outhook.DeliveryLimits{MaxInFlight: 1}})
	require.NoError(t, err)
	for i := range 3 {
		require.NoError(t, outhook.EmitHook(ctx, c, incidentCreated, sampleIncident(fmt.Sprint("inc-", i))))
	}
	outhooktest.WaitIdle(t, c)
	ds, err := c.Deliveries(ctx, outhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, ds, 3)
	for _, d := range ds {
		require.Equal(t, outhook.DeliverySucceeded, d.Status)
		require.Len(t, d.Attempts, 2)
		a := d.Attempts[0]
		assert.Equal(t, outhook.AttemptRetryable, a.Outcome)
		assert.Equal(t, outhook.ErrorClassDeliverer, a.ErrorClass)
		assert.Contains(t, a.Error, "reading the deliverer's error (*outhook_test.brokenErr) panicked")
	}
}
