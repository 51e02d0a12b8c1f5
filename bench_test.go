package outhook_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/memqueue"
	"github.com/outhook/outhook/outhooktest"
)

// countingDeliverer succeeds at once and only counts, so that benchmarks
// measure outhook rather than a fake's bookkeeping.
type countingDeliverer struct{ n atomic.Int64 }

func (d *countingDeliverer) ID() string { return "count" }
func (d *countingDeliverer) ConfigSchema() json.RawMessage {
	return json.RawMessage(`{"type":"object"}`)
}
func (d *countingDeliverer) ValidateConfig(json.RawMessage) error { return nil }
func (d *countingDeliverer) Deliver(context.Context, *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	d.n.Add(1)
	return outhook.DeliveryResult{}, nil
}

func benchClient(b *testing.B, cfg *outhook.Config) *outhook.Client {
	b.Helper()
	cfg.Logger = slog.New(slog.DiscardHandler)
	c, err := outhook.NewClient(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Stop(context.Background()) })
	return c
}

// BenchmarkEmitHook measures EmitHook with validation on and one listening
// worker group (a no-op handler) draining the queue in the background.
func BenchmarkEmitHook(b *testing.B) {
	c := benchClient(b, &outhook.Config{})
	if err := outhook.OnHook(c, incidentCreated, func(context.Context, IncidentCreated) error { return nil }, outhook.WorkQueue("noop")); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	p := sampleIncident("inc-1", "sys-1", "sys-2")
	b.ReportAllocs()
	for b.Loop() {
		if err := outhook.EmitHook(ctx, c, incidentCreated, p); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	outhooktest.WaitIdle(b, c)
}

// BenchmarkEmitHookQueued measures EmitHook alone: the queue is not started
// and large enough to hold every job, so no consumer shares the CPU.
func BenchmarkEmitHookQueued(b *testing.B) {
	q, err := memqueue.New(&memqueue.Config{Capacity: 1 << 30, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	c, err := outhook.NewClient(&outhook.Config{Queue: q, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = c.Stop(context.Background()) }()
	if err := outhook.OnHook(c, incidentCreated, func(context.Context, IncidentCreated) error { return nil }, outhook.WorkQueue("noop")); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	p := sampleIncident("inc-1", "sys-1", "sys-2")
	b.ReportAllocs()
	for b.Loop() {
		if err := outhook.EmitHook(ctx, c, incidentCreated, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEmitHookNoListener measures the no-op path.
func BenchmarkEmitHookNoListener(b *testing.B) {
	c := benchClient(b, &outhook.Config{})
	ctx := context.Background()
	p := sampleIncident("inc-1")
	b.ReportAllocs()
	for b.Loop() {
		_ = outhook.EmitHook(ctx, c, incidentCreated, p)
	}
}

// BenchmarkEmitToDelivery measures the whole in-memory path per event: emit,
// validation, the integration subscriber, routing to one subscription, the
// delivery record, and one successful attempt recorded.
func BenchmarkEmitToDelivery(b *testing.B) { benchEmitToDelivery(b, &outhook.Config{}) }

// benchEmitToDelivery is BenchmarkEmitToDelivery on a client configured by
// cfg (its registry, deliverers and store are set here).
func benchEmitToDelivery(b *testing.B, cfg *outhook.Config) {
	d := &countingDeliverer{}
	cfg.Registry, cfg.Deliverers = newIncidentRegistry(b), []outhook.Deliverer{d}
	cfg.Store = outhook.NewMemoryStore(&outhook.MemoryStoreConfig{MaxFinishedDeliveries: 1000})
	c := benchClient(b, cfg)
	if _, err := c.CreateSubscription(context.Background(), outhook.Subscription{Events: []string{createdEvent}, DelivererID: "count"}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	p := sampleIncident("inc-1", "sys-1", "sys-2")
	b.ReportAllocs()
	b.ResetTimer()
	// A counted loop rather than b.Loop, so that draining the queue is
	// inside the timed region.
	for range b.N {
		if err := outhook.EmitHook(ctx, c, incidentCreated, p); err != nil {
			b.Fatal(err)
		}
	}
	outhooktest.WaitIdle(b, c)
	b.StopTimer()
	if got := d.n.Load(); got != int64(b.N) {
		b.Fatalf("delivered %d of %d", got, b.N)
	}
}
