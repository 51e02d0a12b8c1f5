package sqlite_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
	"github.com/outhook/outhook/sqlite"
)

// BenchmarkDeliveries measures deliveries per second through a client on
// the SQLite queue, with the in-memory store and with the SQLite store, in
// one file opened with Open: 32 goroutines emit events one EmitHook at a
// time, each event (a payload of about 300 bytes) is routed to one
// subscription and delivered by a deliverer that only counts; the clock
// stops when the queue is idle. The queue and the store use their
// defaults. Besides deliveries/s, it reports the CPU of the process per
// delivery (go-µs/op): SQLite runs in it. The stmtcache=off rows open the
// database without Open's statement cache, to show what it saves.
func BenchmarkDeliveries(b *testing.B) {
	for _, store := range []string{"memory", "sqlite"} {
		b.Run("store="+store, func(b *testing.B) { benchDeliveries(b, store) })
		b.Run("store="+store+"/stmtcache=off", func(b *testing.B) {
			b.Cleanup(sqlite.SetStmtCacheOff())
			benchDeliveries(b, store)
		})
	}
}

type incident struct {
	ID       string `json:"id" validate:"required"`
	Severity string `json:"severity"`
}

func benchDeliveries(b *testing.B, storeKind string) {
	db, err := sqlite.Open(tempPath(b))
	require.NoError(b, err)
	b.Cleanup(func() { _ = db.Close() })
	ctx := context.Background()
	require.NoError(b, sqlite.Migrate(ctx, db))
	q, err := sqlite.NewQueue(db, &sqlite.QueueConfig{Logger: queueTestLogger()})
	require.NoError(b, err)
	var store outhook.Store
	if storeKind == "sqlite" {
		s, err := sqlite.NewStore(ctx, db, nil)
		require.NoError(b, err)
		store = s
	}
	reg := outhook.NewEventRegistry()
	created := outhook.MustNewHook[incident]("incident.created")
	_, err = outhook.RegisterEvent(reg, outhook.EventDefinition[incident]{Hook: created, DisplayName: "Incident created"},
		outhook.PluginMetadata{PluginID: "incident"})
	require.NoError(b, err)
	counter := &countingDeliverer{}
	c := outhooktest.NewClient(b, &outhook.Config{Registry: reg, Deliverers: []outhook.Deliverer{counter}, Queue: q, Store: store})
	_, err = c.CreateSubscription(ctx, outhook.Subscription{Events: []string{"incident.incident.created"}, DelivererID: counter.ID()})
	require.NoError(b, err)
	pad := strings.Repeat("x", 270)

	const goroutines = 32
	var next atomic.Int64
	var wg sync.WaitGroup
	cpu := processCPU()
	b.ResetTimer()
	for range goroutines {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if err := outhook.EmitHook(ctx, c, created, incident{ID: fmt.Sprintf("inc-%08d", i), Severity: pad}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	emitted := b.Elapsed()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	require.NoError(b, c.WaitIdle(wctx))
	b.StopTimer()
	cpu = processCPU() - cpu
	require.EqualValues(b, b.N, counter.n.Load())
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(float64(b.N)/emitted.Seconds(), "emits/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "go-µs/op")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// countingDeliverer delivers by counting.
type countingDeliverer struct{ n atomic.Int64 }

func (*countingDeliverer) ID() string { return "count" }
func (*countingDeliverer) ConfigSchema() json.RawMessage {
	return json.RawMessage(`{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object"}`)
}
func (*countingDeliverer) ValidateConfig(json.RawMessage) error { return nil }
func (d *countingDeliverer) Deliver(context.Context, *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	d.n.Add(1)
	return outhook.DeliveryResult{StatusCode: 204}, nil
}
