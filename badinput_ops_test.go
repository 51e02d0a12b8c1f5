package outhook_test

// Bad input and faults of the operations API (issue 6): a recovery over a
// huge range, and replays and redeliveries of what does not exist.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
)

// recoveryStore records the work a recovery asks of the store: the
// delivery listings of failed deliveries and the reopened deliveries. When
// failReopen is set, the reopen with that number (from 1, counted over the
// store's life) fails.
type recoveryStore struct {
	*outhook.MemoryStore

	mu         sync.Mutex
	listings   []outhook.DeliveryQuery // listings of failed deliveries, since take
	reopens    int                     // reopen calls since take, failed ones included
	reopened   map[string]int          // delivery ID → successful reopens
	total      int                     // ReopenDelivery calls
	failReopen int
}

func newRecoveryStore() *recoveryStore {
	return &recoveryStore{MemoryStore: outhook.NewMemoryStore(nil), reopened: map[string]int{}}
}

func (s *recoveryStore) ListDeliveries(ctx context.Context, q outhook.DeliveryQuery) ([]*outhook.Delivery, error) {
	if q.Status == outhook.DeliveryFailed {
		s.mu.Lock()
		s.listings = append(s.listings, q)
		s.mu.Unlock()
	}
	return s.MemoryStore.ListDeliveries(ctx, q)
}

func (s *recoveryStore) ReopenDelivery(ctx context.Context, id string, at time.Time) (*outhook.Delivery, error) {
	return s.reopen(id, func() (*outhook.Delivery, error) { return s.MemoryStore.ReopenDelivery(ctx, id, at) })
}

// ReopenFailedDelivery is what Recover calls (outhook.FailedReopener).
func (s *recoveryStore) ReopenFailedDelivery(ctx context.Context, id string, attempts int, at time.Time) (*outhook.Delivery, error) {
	return s.reopen(id, func() (*outhook.Delivery, error) { return s.MemoryStore.ReopenFailedDelivery(ctx, id, attempts, at) })
}

func (s *recoveryStore) reopen(id string, do func() (*outhook.Delivery, error)) (*outhook.Delivery, error) {
	s.mu.Lock()
	s.reopens++
	s.total++
	fail := s.total == s.failReopen
	s.mu.Unlock()
	if fail {
		return nil, errors.New("store blip")
	}
	d, err := do()
	if err == nil {
		s.mu.Lock()
		s.reopened[id]++
		s.mu.Unlock()
	}
	return d, err
}

// take returns what was recorded since the last call, and forgets it.
func (s *recoveryStore) take() (listings []outhook.DeliveryQuery, reopens int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	listings, reopens = s.listings, s.reopens
	s.listings, s.reopens = nil, 0
	return listings, reopens
}

// failMany emits n events to the subscriptions of createdEvent, each of
// whose deliveries fails for good, and waits until all have.
func failMany(t *testing.T, c *outhook.Client, fake *outhooktest.Deliverer, n int) {
	t.Helper()
	fake.SetDefault(outhooktest.FailPermanent(nil))
	for i := range n {
		emit(t, c, incidentCreated, sampleIncident(fmt.Sprint("inc-", i)))
	}
	// Thousands of deliveries: under the race detector, beside the other
	// packages' tests, this takes longer than outhooktest's 10 s default.
	waitIdleWithin(t, c, time.Minute)
}

// waitIdleWithin waits until c is idle, failing the test after d.
func waitIdleWithin(t *testing.T, c *outhook.Client, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	require.NoError(t, c.WaitIdle(ctx), "client not idle after %s", d)
}

// allDeliveries lists every delivery q selects, following the cursors.
func allDeliveries(t *testing.T, c *outhook.Client, q outhook.DeliveryQuery) []outhook.Delivery {
	t.Helper()
	q.Limit = 1000
	var out []outhook.Delivery
	for {
		page, err := c.Deliveries(t.Context(), q)
		require.NoError(t, err)
		out = append(out, page...)
		if len(page) < q.Limit {
			return out
		}
		q.After = page[len(page)-1].Cursor()
	}
}

// TestRecoverHugeRange recovers thousands of failed deliveries over the
// widest range there is (from the zero time to now). Each call does at
// most Limit redeliveries, reading the store a bounded page at a time; a
// call interrupted by a store error resumes from its Next; every failed
// delivery of the subscription is sent again exactly once, and no other's;
// and repeating the whole recovery afterwards sends nothing.
func TestRecoverHugeRange(t *testing.T) {
	const n = 2500
	store := newRecoveryStore()
	c, fake := setup(t, &outhook.Config{Store: store})
	sub := subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	other := subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	failMany(t, c, fake, n)
	failed := allDeliveries(t, c, outhook.DeliveryQuery{SubscriptionID: sub.ID, Status: outhook.DeliveryFailed})
	require.Len(t, failed, n)
	fake.SetDefault(outhooktest.Succeed())
	callsBefore := len(fake.Calls())

	// recoverAll runs a recovery to its end, checking each call's bounds,
	// and returns how many it redelivered and in how many calls.
	// failAt, when not zero, makes the recovery's failAt-th redelivery
	// fail in the store.
	recoverAll := func(failAt int) (total, calls, interrupted int) {
		t.Helper()
		req := outhook.RecoverRequest{SubscriptionID: sub.ID, Since: time.Time{}} // Limit 0: DefaultRecoverLimit
		store.take()
		store.mu.Lock()
		store.failReopen = store.total + failAt
		store.mu.Unlock()
		for {
			calls++
			require.LessOrEqual(t, calls, n/outhook.DefaultRecoverLimit+3, "the recovery does not end")
			res, err := c.Recover(t.Context(), req)
			listings, reopens := store.take()
			require.LessOrEqual(t, res.Redelivered, outhook.DefaultRecoverLimit, "at most Limit a call")
			require.LessOrEqual(t, reopens, outhook.DefaultRecoverLimit+1, "at most Limit redeliveries a call (and the one that failed)")
			require.LessOrEqual(t, len(listings), outhook.DefaultRecoverLimit/100+1, "pages a call")
			for _, q := range listings {
				require.Equal(t, sub.ID, q.SubscriptionID, "only the subscription's deliveries are read")
				require.Positive(t, q.Limit)
				require.LessOrEqual(t, q.Limit, 100, "the store is read a bounded page at a time")
				require.False(t, q.Until.IsZero(), "the range's end is fixed when the call starts")
			}
			total += res.Redelivered
			if err != nil {
				interrupted++
				require.ErrorContains(t, err, "store blip")
				require.False(t, res.Next.IsZero(), "an interrupted recovery can resume")
			} else if res.Next.IsZero() {
				return total, calls, interrupted
			}
			// The cursor survives an API's round trip.
			next, perr := outhook.ParseDeliveryCursor(res.Next.String())
			require.NoError(t, perr)
			require.Equal(t, res.Next.ID, next.ID)
			require.True(t, res.Next.CreatedAt.Equal(next.CreatedAt))
			req.After = next
		}
	}

	// The 1,500th redelivery fails: the second call stops there, and the
	// third resumes at that delivery.
	total, calls, interrupted := recoverAll(1500)
	require.Equal(t, 1, interrupted)
	require.Equal(t, n, total, "every failed delivery once")
	require.Equal(t, 4, calls, "1,000, then 499 and the error, then 1,000 and 1")
	waitIdleWithin(t, c, time.Minute)

	store.mu.Lock()
	require.Len(t, store.reopened, n)
	for _, d := range failed {
		require.Equal(t, 1, store.reopened[d.ID], "delivery %s reopened", d.ID)
	}
	store.mu.Unlock()
	calls2 := fake.Calls()[callsBefore:]
	require.Len(t, calls2, n, "one attempt per recovered delivery")
	seen := map[string]bool{}
	for _, call := range calls2 {
		require.Equal(t, sub.ID, call.Request.Subscription.ID)
		require.False(t, seen[call.Request.DeliveryID], "delivery %s sent twice", call.Request.DeliveryID)
		seen[call.Request.DeliveryID] = true
	}
	for _, d := range allDeliveries(t, c, outhook.DeliveryQuery{SubscriptionID: sub.ID}) {
		require.Equal(t, outhook.DeliverySucceeded, d.Status)
		require.Len(t, d.Attempts, 2)
		require.Equal(t, outhook.TriggerManual, d.Attempts[1].Trigger)
	}
	others := allDeliveries(t, c, outhook.DeliveryQuery{SubscriptionID: other.ID})
	require.Len(t, others, n)
	for _, d := range others {
		require.Equal(t, outhook.DeliveryFailed, d.Status, "another subscription's deliveries are left alone")
		require.Len(t, d.Attempts, 1)
	}

	// Repeated, the recovery finds nothing to send.
	total, calls, _ = recoverAll(0)
	require.Zero(t, total)
	require.Equal(t, 1, calls)
	_, reopens := store.take()
	require.Zero(t, reopens)
	outhooktest.WaitIdle(t, c)
	require.Len(t, fake.Calls(), callsBefore+n)
}

// gateDeliverer holds every attempt while held, until released.
type gateDeliverer struct {
	*outhooktest.Deliverer
	mu      sync.Mutex
	held    bool
	release chan struct{}
}

func (g *gateDeliverer) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held = true
}

func (g *gateDeliverer) Deliver(ctx context.Context, req *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	g.mu.Lock()
	held := g.held
	g.mu.Unlock()
	if held {
		select {
		case <-g.release:
		case <-ctx.Done():
			return outhook.DeliveryResult{}, ctx.Err()
		}
	}
	return g.Deliverer.Deliver(ctx, req)
}

// TestRecoverRepeatedWhileInFlight: a recovery of a large range repeated
// while the first call's redeliveries are still being attempted sends none
// of them again: it goes on with the deliveries the first call left, and a
// third finds nothing. Each delivery ends with two attempts, never three.
func TestRecoverRepeatedWhileInFlight(t *testing.T) {
	const n = 1500
	gate := &gateDeliverer{Deliverer: outhooktest.NewDeliverer("gate"), release: make(chan struct{})}
	c, _ := setup(t, &outhook.Config{Deliverers: []outhook.Deliverer{gate}, DeliveryTimeout: time.Minute})
	var once sync.Once
	release := func() { once.Do(func() { close(gate.release) }) }
	t.Cleanup(release) // before the client stops, should the test fail
	sub := subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}, DelivererID: "gate"})
	failMany(t, c, gate.Deliverer, n)
	gate.SetDefault(outhooktest.Succeed())
	gate.hold()

	req := outhook.RecoverRequest{SubscriptionID: sub.ID}
	first, err := c.Recover(t.Context(), req)
	require.NoError(t, err)
	require.Equal(t, outhook.DefaultRecoverLimit, first.Redelivered)
	require.False(t, first.Next.IsZero())
	// The same request again, while the first's are pending: the rest.
	second, err := c.Recover(t.Context(), req)
	require.NoError(t, err)
	require.Equal(t, n-outhook.DefaultRecoverLimit, second.Redelivered)
	require.True(t, second.Next.IsZero())
	third, err := c.Recover(t.Context(), req)
	require.NoError(t, err)
	require.Zero(t, third.Redelivered, "every delivery is pending")

	release()
	waitIdleWithin(t, c, time.Minute)
	ds := allDeliveries(t, c, outhook.DeliveryQuery{SubscriptionID: sub.ID})
	require.Len(t, ds, n)
	for _, d := range ds {
		require.Equal(t, outhook.DeliverySucceeded, d.Status)
		require.Len(t, d.Attempts, 2, "the first attempt and one redelivery's")
	}
	require.Len(t, gate.Delivered(), n)
}

// TestUnknownTargets: replaying an unknown message, redelivering an
// unknown delivery, and recovering or testing an unknown subscription are
// errors matching ErrNotFound, and change nothing.
func TestUnknownTargets(t *testing.T) {
	c, fake := setup(t, nil)
	sub := subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	failMany(t, c, fake, 1)
	ds := allDeliveries(t, c, outhook.DeliveryQuery{})
	require.Len(t, ds, 1)

	_, err := c.Replay(t.Context(), "msg_unknown", "")
	require.ErrorIs(t, err, outhook.ErrNotFound)
	require.ErrorContains(t, err, "msg_unknown")
	_, err = c.Replay(t.Context(), "msg_unknown", createdEvent)
	require.ErrorIs(t, err, outhook.ErrNotFound)
	_, err = c.Replay(t.Context(), ds[0].MessageID, resolvedEvent)
	require.ErrorIs(t, err, outhook.ErrNotFound, "the message does not carry that event")
	require.ErrorIs(t, c.Redeliver(t.Context(), "dlv_unknown"), outhook.ErrNotFound)
	_, err = c.Recover(t.Context(), outhook.RecoverRequest{SubscriptionID: "sub_unknown", Limit: 10_000})
	require.ErrorIs(t, err, outhook.ErrNotFound)
	_, err = c.SendTest(t.Context(), "sub_unknown")
	require.ErrorIs(t, err, outhook.ErrNotFound)
	outhooktest.WaitIdle(t, c)

	got := allDeliveries(t, c, outhook.DeliveryQuery{})
	require.Equal(t, ds, got, "nothing changed")
	require.Len(t, fake.Calls(), 1)

	// A message whose subscription was deleted since is known, and goes to
	// the subscriptions that select it now: none.
	require.NoError(t, c.DeleteSubscription(t.Context(), sub.ID))
	res, err := c.Replay(t.Context(), ds[0].MessageID, "")
	require.NoError(t, err)
	require.Equal(t, createdEvent, res.EventID)
	require.Empty(t, res.Deliveries)
	outhooktest.WaitIdle(t, c)
	require.Len(t, allDeliveries(t, c, outhook.DeliveryQuery{}), 1)
}
