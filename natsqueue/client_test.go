package natsqueue_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/natsqueue"
	"github.com/outhook/outhook/outhooktest"
)

type Ping struct {
	N int `json:"n"`
}

var (
	ping  = outhook.MustNewHook[Ping]("ping")
	audit = outhook.MustNewHook[Ping]("audit")
)

// node is one process of the end-to-end test: a client on its own queue
// and connection, sharing the stream and the store with the others.
type node struct {
	c         *outhook.Client
	fake      *outhooktest.Deliverer
	broadcast atomic.Int32
}

func newNode(t *testing.T, stream string, store outhook.Store) *node {
	t.Helper()
	reg := outhook.NewEventRegistry()
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[Ping]{Hook: ping, DisplayName: "Ping"}, outhook.PluginMetadata{PluginID: "test"})
	n := &node{fake: outhooktest.NewDeliverer("fake")}
	q, _ := newQueue(t, natsqueue.Config{Stream: stream})
	n.c = outhooktest.NewClient(t, &outhook.Config{
		Registry:      reg,
		Deliverers:    []outhook.Deliverer{n.fake},
		Store:         store,
		Queue:         q,
		DeliveryRetry: outhooktest.NoDelay(3),
		HandlerRetry:  outhooktest.NoDelay(2),
	})
	require.NoError(t, outhook.OnHook(n.c, ping, func(context.Context, Ping) error {
		n.broadcast.Add(1)
		return nil
	}, outhook.Broadcast()))
	return n
}

// TestClient runs two outhook clients on one stream and one store, as two
// processes of an application would: every event is delivered once, a
// failed attempt is retried with its attempt number, broadcast handlers
// run on both nodes, and a handler that always fails ends in FailedEvents.
func TestClient(t *testing.T) {
	stream := newStream(t)
	store := outhook.NewMemoryStore(nil)
	a, b := newNode(t, stream, store), newNode(t, stream, store)
	// Each node's first attempt fails, whichever delivery it is.
	a.fake.Script(outhooktest.FailRetryable(errors.New("503 once")))
	b.fake.Script(outhooktest.FailRetryable(errors.New("503 once")))

	var auditRuns sync.Map // payload -> runs
	for _, n := range []*node{a, b} {
		require.NoError(t, outhook.OnHook(n.c, audit, func(_ context.Context, p Ping) error {
			v, _ := auditRuns.LoadOrStore(p.N, new(atomic.Int32))
			v.(*atomic.Int32).Add(1)
			return fmt.Errorf("audit %d refused", p.N)
		}, outhook.WorkQueue("auditor")))
	}

	_, err := a.c.CreateSubscription(ctx(t), outhook.Subscription{Events: []string{"test.ping"}, DelivererID: "fake"})
	require.NoError(t, err)
	const events = 20
	want := make([]Ping, events)
	for i := range events {
		want[i] = Ping{N: i}
		emitter := a.c
		if i%2 == 1 {
			emitter = b.c
		}
		require.NoError(t, outhook.EmitHook(ctx(t), emitter, ping, want[i]))
	}
	require.NoError(t, outhook.EmitHook(ctx(t), a.c, audit, Ping{N: 7}))
	for _, n := range []*node{a, b} {
		outhooktest.WaitIdle(t, n.c)
	}

	// Every event was delivered, on one node or the other; the attempts
	// of each delivery are numbered 1, 2, ... across the nodes.
	var got []Ping
	for _, n := range []*node{a, b} {
		got = append(got, outhooktest.DeliveredTo[Ping](t, n.fake, "test.ping")...)
	}
	require.ElementsMatch(t, want, got)
	byDelivery := map[string][]outhooktest.Call{}
	for _, n := range []*node{a, b} {
		for _, c := range n.fake.Calls() {
			byDelivery[c.Request.DeliveryID] = append(byDelivery[c.Request.DeliveryID], c)
		}
	}
	require.Len(t, byDelivery, events)
	failures := 0
	for id, calls := range byDelivery {
		slices.SortFunc(calls, func(x, y outhooktest.Call) int { return x.Request.Attempt - y.Request.Attempt })
		for i, c := range calls {
			require.Equal(t, i+1, c.Request.Attempt, "attempts of delivery %s", id)
			require.Equal(t, i == len(calls)-1, c.Succeeded(), "attempt %d of delivery %s", i+1, id)
		}
		failures += len(calls) - 1
	}
	nodesUsed := 0
	for _, n := range []*node{a, b} {
		if len(n.fake.Calls()) > 0 {
			nodesUsed++
		}
	}
	require.Equal(t, nodesUsed, failures, "each node's fake fails its first attempt only")
	t.Logf("attempts: node a %d, node b %d", len(a.fake.Calls()), len(b.fake.Calls()))

	// Broadcast: both nodes saw every event.
	require.Equal(t, int32(events), a.broadcast.Load())
	require.Equal(t, int32(events), b.broadcast.Load())

	// The audit handler failed on both of its attempts, on either node.
	v, ok := auditRuns.Load(7)
	require.True(t, ok)
	require.Equal(t, int32(2), v.(*atomic.Int32).Load())
	failed, err := b.c.FailedEvents(ctx(t), 10)
	require.NoError(t, err)
	require.Len(t, failed, 1)
	f := failed[0]
	require.Equal(t, "audit", f.HookID)
	require.Equal(t, "auditor", f.Group)
	require.Equal(t, 2, f.Attempts)
	require.Len(t, f.Errors, 2)
	for i, e := range f.Errors {
		require.Equal(t, i+1, e.Attempt)
		require.Contains(t, e.Error, "audit 7 refused")
	}
	require.JSONEq(t, `{"n":7}`, string(f.Payload))
}
