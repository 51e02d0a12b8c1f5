package opstest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
)

// routedSignal is a store that says when deliveries are recorded: routing
// an event ends with CreateDeliveries.
type routedSignal struct {
	outhook.Store
	routed chan int
}

func (s *routedSignal) CreateDeliveries(ctx context.Context, ds []*outhook.Delivery) error {
	err := s.Store.CreateDeliveries(ctx, ds)
	if err == nil {
		s.routed <- len(ds)
	}
	return err
}

// orderedDest is a destination that holds the first attempt of alert
// ("A", 1) until its gate opens and then fails it; every other attempt
// succeeds. It notes the order of the successes per alert ID, and the most
// attempts in progress at once per ID.
type orderedDest struct {
	gate    chan struct{}
	started chan struct{} // closed when the held attempt starts

	mu        sync.Mutex
	held      bool
	active    map[string]int
	maxActive map[string]int
	order     map[string][]int
	attempts  int
	succeeded chan string
}

func (o *orderedDest) ID() string                           { return "ordered" }
func (o *orderedDest) ConfigSchema() json.RawMessage        { return json.RawMessage(`{"type":"object"}`) }
func (o *orderedDest) ValidateConfig(json.RawMessage) error { return nil }

func (o *orderedDest) Deliver(ctx context.Context, req *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	var a Alert
	if err := json.Unmarshal(req.Payload, &a); err != nil {
		return outhook.DeliveryResult{}, outhook.Permanent(err)
	}
	o.mu.Lock()
	o.attempts++
	o.active[a.ID]++
	o.maxActive[a.ID] = max(o.maxActive[a.ID], o.active[a.ID])
	hold := a.ID == "A" && a.Count == 1 && !o.held
	o.held = o.held || hold
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		o.active[a.ID]--
		o.mu.Unlock()
	}()
	if hold {
		close(o.started)
		select {
		case <-o.gate:
			return outhook.DeliveryResult{StatusCode: 503}, fmt.Errorf("503 from the held attempt")
		case <-ctx.Done():
			return outhook.DeliveryResult{}, ctx.Err()
		}
	}
	o.mu.Lock()
	o.order[a.ID] = append(o.order[a.ID], a.Count)
	o.mu.Unlock()
	o.succeeded <- fmt.Sprint(a.ID, a.Count)
	return outhook.DeliveryResult{StatusCode: 204}, nil
}

// testOrdering: deliveries of one ordering key to a subscription are made
// one at a time in emit order, and a failing first delivery holds up only
// its own key. The test knows when each event is routed (the store
// signals it), so it needs no settle time (OrderingSettle -1).
func (s *suite) testOrdering(t *testing.T) {
	q, store := s.newParts(t)
	sig := &routedSignal{Store: store, routed: make(chan int, 64)}
	dest := &orderedDest{gate: make(chan struct{}), started: make(chan struct{}), active: map[string]int{},
		maxActive: map[string]int{}, order: map[string][]int{}, succeeded: make(chan string, 64)}
	c := outhooktest.NewClient(t, &outhook.Config{Registry: newRegistry(), Queue: q, Store: sig,
		Deliverers: []outhook.Deliverer{dest}, OrderingSettle: -1, DeliveryTimeout: WaitTimeout,
		DeliveryRetry: outhooktest.NoDelay(3)})
	e := &env{t: t, c: c}
	sub, err := c.CreateSubscription(ctx(t), outhook.Subscription{Events: []string{orderedEvent}, DelivererID: "ordered"})
	require.NoError(t, err)

	wait := func(ch <-chan int, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-ctx(t).Done():
			t.Fatalf("timed out waiting for %s", what)
		}
	}
	emit := func(id string, n int) {
		t.Helper()
		a := alert(id)
		a.Count = n
		e.emit(ordered, a)
		wait(sig.routed, fmt.Sprintf("%s%d to be routed", id, n))
	}

	emit("A", 1)
	select {
	case <-dest.started:
	case <-ctx(t).Done():
		t.Fatal("the first delivery of key A was not attempted")
	}
	for _, ev := range []struct {
		id string
		n  int
	}{{"A", 2}, {"B", 1}, {"A", 3}, {"B", 2}, {"A", 4}, {"B", 3}} {
		emit(ev.id, ev.n)
	}
	// Key B is delivered in full while A's first delivery hangs.
	for range 3 {
		select {
		case got := <-dest.succeeded:
			require.Equal(t, byte('B'), got[0], "only key B moves while A's first delivery hangs, got %s", got)
		case <-ctx(t).Done():
			t.Fatal("key B was held up by key A")
		}
	}
	dest.mu.Lock()
	require.Equal(t, 4, dest.attempts, "A's later deliveries were not attempted before their turn")
	dest.mu.Unlock()

	close(dest.gate) // A1 fails, is retried, succeeds; then A2, A3, A4
	e.wait()
	dest.mu.Lock()
	defer dest.mu.Unlock()
	assert.Equal(t, []int{1, 2, 3, 4}, dest.order["A"], "key A in emit order")
	assert.Equal(t, []int{1, 2, 3}, dest.order["B"], "key B in emit order")
	assert.Equal(t, 1, dest.maxActive["A"], "one attempt at a time for key A")
	assert.Equal(t, 1, dest.maxActive["B"], "one attempt at a time for key B")
	ds := e.deliveries(outhook.DeliveryQuery{SubscriptionID: sub.ID, Limit: 100})
	require.Len(t, ds, 7)
	for _, d := range ds {
		assert.Equal(t, outhook.DeliverySucceeded, d.Status, d.ID)
		var a Alert
		require.NoError(t, json.Unmarshal(d.Payload, &a))
		assert.Equal(t, a.ID, d.OrderingKey)
		want := 1
		if a.ID == "A" && a.Count == 1 {
			want = 2
		}
		assert.Len(t, d.Attempts, want, "%s%d: waiting for its turn is not an attempt", a.ID, a.Count)
	}
}
