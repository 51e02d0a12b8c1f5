package opstest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
)

// hanging is a destination whose attempts hang until its gate opens (or
// the attempt's context ends), counting the attempts in progress and when
// each started.
type hanging struct {
	gate      chan struct{}
	mu        sync.Mutex
	active    int
	maxActive int
	starts    []time.Time
	done      atomic.Int32
	wait      bool // hang; otherwise answer at once
}

func (h *hanging) ID() string                           { return "hanging" }
func (h *hanging) ConfigSchema() json.RawMessage        { return json.RawMessage(`{"type":"object"}`) }
func (h *hanging) ValidateConfig(json.RawMessage) error { return nil }

func (h *hanging) Deliver(ctx context.Context, _ *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	h.mu.Lock()
	h.active++
	h.maxActive = max(h.maxActive, h.active)
	h.starts = append(h.starts, time.Now())
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.active--
		h.mu.Unlock()
	}()
	if h.wait {
		select {
		case <-h.gate:
		case <-ctx.Done():
			return outhook.DeliveryResult{}, ctx.Err()
		}
	}
	h.done.Add(1)
	return outhook.DeliveryResult{StatusCode: 204}, nil
}

func (h *hanging) stats() (maxActive int, starts []time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.maxActive, append([]time.Time(nil), h.starts...)
}

// limitsClient starts a client with the hanging destination (for
// ops.raised, with the given limits) beside the fake one (for ops.cleared).
func (s *suite) limitsClient(t *testing.T, h *hanging, limits outhook.DeliveryLimits) *env {
	t.Helper()
	q, store := s.newParts(t)
	fake := outhooktest.NewDeliverer("fake")
	c := outhooktest.NewClient(t, &outhook.Config{Registry: newRegistry(), Queue: q, Store: store,
		Deliverers: []outhook.Deliverer{h, fake}, DeliveryTimeout: WaitTimeout})
	e := &env{t: t, c: c, fake: fake}
	_, err := c.CreateSubscription(ctx(t), outhook.Subscription{Events: []string{raisedEvent}, DelivererID: "hanging", Limits: limits})
	require.NoError(t, err)
	e.subscribe(outhook.Subscription{Events: []string{clearedEvent}})
	return e
}

// testLimitsMaxInFlight: a destination that hangs never has more attempts
// in progress than its subscription's MaxInFlight, whatever the number of
// the queue's workers, and the other subscription's deliveries go through
// while it hangs. Waiting for a slot is not an attempt.
func (s *suite) testLimitsMaxInFlight(t *testing.T) {
	h := &hanging{gate: make(chan struct{}), wait: true}
	e := s.limitsClient(t, h, outhook.DeliveryLimits{MaxInFlight: 1})
	const n = 8
	for i := range n {
		e.emit(raised, alert(fmt.Sprint("r-", i)))
		e.emit(cleared, alert(fmt.Sprint("c-", i)))
	}
	require.NoError(t, e.fake.WaitCalls(ctx(t), n), "the other destination got its deliveries while one hung")
	assert.Len(t, e.fake.Delivered(), n)
	assert.EqualValues(t, 0, h.done.Load(), "the hanging destination answered nothing yet")
	close(h.gate)
	e.wait()
	maxActive, starts := h.stats()
	assert.Equal(t, 1, maxActive, "attempts in progress to the hanging destination")
	assert.Len(t, starts, n, "one attempt per delivery")
	for _, d := range e.deliveries(outhook.DeliveryQuery{EventID: raisedEvent}) {
		assert.Equal(t, outhook.DeliverySucceeded, d.Status, d.ID)
		assert.Len(t, d.Attempts, 1, "waiting for a slot is not an attempt")
	}
}

// testLimitsRate: a subscription's rate limit spaces its attempts out.
// The bound is a lower one: a slow backend only stretches the spacing.
func (s *suite) testLimitsRate(t *testing.T) {
	h := &hanging{}
	const rate, n = 20.0, 6
	e := s.limitsClient(t, h, outhook.DeliveryLimits{Rate: rate, Burst: 1})
	for i := range n {
		e.emit(raised, alert(fmt.Sprint("r-", i)))
	}
	e.wait()
	_, starts := h.stats()
	require.Len(t, starts, n, "one attempt per delivery")
	first, last := starts[0], starts[0]
	for _, at := range starts {
		if at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	want := time.Duration(float64(n-1) / rate * float64(time.Second))
	// Half an interval of slack: an attempt starts a store read after its
	// token is taken, and store reads vary.
	slack := time.Duration(float64(time.Second) / rate / 2)
	assert.GreaterOrEqual(t, last.Sub(first), want-slack, "attempts started faster than the rate")
	for _, d := range e.deliveries(outhook.DeliveryQuery{EventID: raisedEvent}) {
		assert.Equal(t, outhook.DeliverySucceeded, d.Status, d.ID)
		assert.Len(t, d.Attempts, 1, "waiting for the rate limit is not an attempt")
	}
}
