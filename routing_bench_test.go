package outhook

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/outhook/outhook/memqueue"
	"github.com/outhook/outhook/queue"
)

// benchAlert is the payload of the routing benchmarks.
type benchAlert struct {
	ID        string   `json:"id"`
	Severity  string   `json:"severity"`
	SystemIDs []string `json:"systemIds"`
	Count     int      `json:"count"`
}

// routeOnlyStore is a MemoryStore that does not keep deliveries, so that a
// benchmark routing millions of events measures routing, not a growing
// store.
type routeOnlyStore struct{ *MemoryStore }

func (routeOnlyStore) CreateDeliveries(context.Context, []*Delivery) error { return nil }

type nopDeliverer struct{}

func (nopDeliverer) ID() string                           { return "nop" }
func (nopDeliverer) ConfigSchema() json.RawMessage        { return json.RawMessage(`{"type":"object"}`) }
func (nopDeliverer) ValidateConfig(json.RawMessage) error { return nil }
func (nopDeliverer) Deliver(context.Context, *DeliveryRequest) (DeliveryResult, error) {
	return DeliveryResult{}, nil
}

// benchEventID is the ID of event j of group g: 10 groups of 10 events.
func benchEventID(g, j int) string { return fmt.Sprintf("bench.g%d.e%d", g, j) }

// routingClient returns a client, not started, with 100 events
// (bench.g<0-9>.e<0-9>) on a MemoryStore, and their records.
func routingClient(b *testing.B) (*Client, []*eventRecord) {
	b.Helper()
	q, err := memqueue.New(&memqueue.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	reg := NewEventRegistry()
	var recs []*eventRecord
	for g := range 10 {
		for j := range 10 {
			h := MustNewHook[benchAlert](fmt.Sprintf("g%d.e%d", g, j))
			ev := MustRegisterEvent(reg, EventDefinition[benchAlert]{Hook: h, DisplayName: "Bench"}, PluginMetadata{PluginID: "bench"})
			recs = append(recs, reg.lookup(ev.ID))
		}
	}
	c, err := NewClient(&Config{Registry: reg, Queue: q, Store: routeOnlyStore{NewMemoryStore(nil)},
		Deliverers: []Deliverer{nopDeliverer{}}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Stop(context.Background()) })
	return c, recs
}

// benchFilter returns the filter of the i-th subscription: none for half of
// them, a CEL expression (ten distinct ones, half of which pass) or a field
// filter for the others.
func benchFilter(i int) *Filter {
	switch i % 4 {
	case 0, 2:
		return nil
	case 1:
		return &Filter{Expr: fmt.Sprintf(`payload.severity == "critical" && "sys-%d" in payload.systemIds`, i%10)}
	default:
		return &Filter{Field: "systemIds", AnyOf: []string{fmt.Sprintf("sys-%d", i%10)}}
	}
}

func benchSubscribe(b *testing.B, c *Client, i int, events ...string) {
	b.Helper()
	_, err := c.CreateSubscription(context.Background(), Subscription{Events: events, DelivererID: "nop", Filter: benchFilter(i)})
	if err != nil {
		b.Fatal(err)
	}
}

func benchJob(b *testing.B) *queue.Job {
	b.Helper()
	raw, err := json.Marshal(benchAlert{ID: "a-1", Severity: "critical", SystemIDs: []string{"sys-1", "sys-2", "sys-3", "sys-4", "sys-5"}, Count: 3})
	if err != nil {
		b.Fatal(err)
	}
	return &queue.Job{ID: "msg_bench", Payload: raw, CreatedAt: time.Now()}
}

// BenchmarkRouting measures routeEvent, the integration subscriber of an
// event, from the store's match to the deliveries it makes (which the store
// then drops), with n subscriptions across 100 event types on a MemoryStore.
// Half the subscriptions have filters: a quarter CEL, a quarter a field
// filter.
//
// spread: the subscriptions are spread evenly, nine in ten on one event ID
// and one in ten on a pattern that selects the ten events of a group, so
// an event matches about 1.9 % of them. ns/match, the cost per matching
// subscription, stays flat as n grows.
//
// fixed: the two routed events match 15 subscriptions each (5 by ID, 10
// by pattern) whatever n is; the others are on other events and patterns.
// The cost per event stays flat as n grows: the store answers from its
// index.
func BenchmarkRouting(b *testing.B) {
	for _, n := range []int{100, 1_000, 10_000} {
		b.Run(fmt.Sprintf("spread/subs=%d", n), func(b *testing.B) {
			c, recs := routingClient(b)
			for i := range n {
				if i%10 == 9 {
					benchSubscribe(b, c, i, fmt.Sprintf("bench.g%d.*", (i/10)%10))
				} else {
					benchSubscribe(b, c, i, recs[i%100].ID)
				}
			}
			benchRoute(b, c, recs)
		})
	}
	for _, n := range []int{100, 1_000, 10_000} {
		b.Run(fmt.Sprintf("fixed/subs=%d", n), func(b *testing.B) {
			c, recs := routingClient(b)
			// Events bench.g0.e0 and bench.g0.e1 have 5 subscriptions by
			// ID each, and group g0 has 10 patterns.
			for i := range 10 {
				benchSubscribe(b, c, i, recs[i%2].ID)
				benchSubscribe(b, c, i, "bench.g0.*")
			}
			for i := 20; i < n; i++ {
				if i%10 == 9 {
					benchSubscribe(b, c, i, fmt.Sprintf("bench.g%d.*", 1+i%9))
				} else {
					benchSubscribe(b, c, i, recs[10+i%90].ID)
				}
			}
			benchRoute(b, c, recs[:2])
		})
	}
}

// benchRoute routes events of recs in turn and reports the deliveries per
// event and the cost per matching subscription.
func benchRoute(b *testing.B, c *Client, recs []*eventRecord) {
	b.Helper()
	ctx := context.Background()
	job := benchJob(b)
	var matched, delivered int
	matches := make([]int, len(recs))
	for i, rec := range recs { // also warms the match cache and the compiled filters
		if _, err := c.routeEvent(ctx, rec, job); err != nil {
			b.Fatal(err)
		}
		subs, err := c.store.MatchSubscriptions(ctx, rec.ID)
		if err != nil {
			b.Fatal(err)
		}
		matches[i] = len(subs)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		next, err := c.routeEvent(ctx, recs[i%len(recs)], job)
		if err != nil {
			b.Fatal(err)
		}
		delivered += len(next)
		matched += matches[i%len(recs)]
	}
	b.ReportMetric(float64(matched)/float64(b.N), "matches/op")
	b.ReportMetric(float64(delivered)/float64(b.N), "deliveries/op")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(matched), "ns/match")
}

// BenchmarkCELFilter measures the CEL filter of one subscription per event.
//
// eval: the compiled program alone, on a payload already converted.
// event: what routing pays for the first CEL filter of an event: decoding
// the payload, converting it for CEL and evaluating; further filters of
// the same event pay only eval.
// field: the field filter, for comparison, on a decoded payload.
func BenchmarkCELFilter(b *testing.B) {
	c, recs := routingClient(b)
	rec := recs[0]
	job := benchJob(b)
	sub := &Subscription{ID: "sub_bench", Filter: &Filter{Expr: `payload.severity == "critical" && "sys-4" in payload.systemIds`}}
	if err := c.checkFilter(&Subscription{Events: []string{rec.ID}, Filter: sub.Filter}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("eval", func(b *testing.B) {
		in := filterInput{raw: job.Payload}
		if ok, err := c.passFilter(ctx, rec, sub, &in); err != nil || !ok {
			b.Fatal(ok, err)
		}
		p := c.filters.program(rec, sub.Filter.Expr)
		b.ReportAllocs()
		for b.Loop() {
			if ok, err := evalFilter(ctx, p.prg, in.act); err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("event", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			in := filterInput{raw: job.Payload}
			if ok, err := c.passFilter(ctx, rec, sub, &in); err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("field", func(b *testing.B) {
		f := &Filter{Field: "systemIds", AnyOf: []string{"sys-4"}}
		in := filterInput{raw: job.Payload}
		doc, err := in.decode(rec.ID)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if !f.match(doc) {
				b.Fatal("no match")
			}
		}
	})
}
