package outhook_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/memqueue"
)

// latencyDeliverer answers at once and notes each delivery's latency from
// emit to attempt.
type latencyDeliverer struct {
	hangingDeliverer
	mu  sync.Mutex
	lat []time.Duration
	got chan struct{}
}

func (l *latencyDeliverer) Deliver(_ context.Context, req *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	l.mu.Lock()
	l.lat = append(l.lat, time.Since(req.OccurredAt))
	l.mu.Unlock()
	l.got <- struct{}{}
	return outhook.DeliveryResult{StatusCode: 204}, nil
}

// BenchmarkSlowNeighbour measures the latency, from emit to attempt, of a
// healthy destination's deliveries while another subscription's
// destination hangs with 100 deliveries queued, on an in-memory queue
// with 8 workers and Config.MaxInFlightPerSubscription 2. Without the cap
// the hanging deliveries would hold all 8 workers and the healthy ones
// would wait for the delivery timeout (a minute here). It reports the p50
// and p99 latency of the healthy deliveries.
func BenchmarkSlowNeighbour(b *testing.B) {
	for _, hanging := range []int{0, 100} {
		b.Run(fmt.Sprintf("hanging=%d", hanging), func(b *testing.B) {
			slow := newHanging("slow")
			fast := &latencyDeliverer{hangingDeliverer: hangingDeliverer{id: "fast"}, got: make(chan struct{}, 1)}
			q, err := memqueue.New(&memqueue.Config{Concurrency: 8, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			reg := newIncidentRegistry(b)
			c, err := outhook.NewClient(&outhook.Config{Registry: reg, Queue: q, Deliverers: []outhook.Deliverer{slow, fast},
				Logger: quiet, DeliveryTimeout: time.Minute, MaxInFlightPerSubscription: 2})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			for _, s := range []outhook.Subscription{{Events: []string{createdEvent}, DelivererID: "slow"}, {Events: []string{resolvedEvent}, DelivererID: "fast"}} {
				if _, err := c.CreateSubscription(ctx, s); err != nil {
					b.Fatal(err)
				}
			}
			if err := c.Start(ctx); err != nil {
				b.Fatal(err)
			}
			for i := range hanging {
				if err := outhook.EmitHook(ctx, c, incidentCreated, sampleIncident(fmt.Sprint("inc-", i))); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				if err := outhook.EmitHook(ctx, c, incidentResolved, IncidentResolved{IncidentID: "inc", SystemIDs: []string{"sys-1"}}); err != nil {
					b.Fatal(err)
				}
				<-fast.got
			}
			b.StopTimer()
			close(slow.gate)
			sctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			if err := c.Stop(sctx); err != nil {
				b.Fatal(err)
			}
			lat := slices.Clone(fast.lat)
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
