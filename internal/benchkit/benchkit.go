// Package benchkit holds what the durable backends' throughput benchmarks
// share: the pipeline they measure (32 goroutines emitting one event at a
// time, each routed to one subscription whose deliverer only counts) and
// River's own throughput on the same database (river-raw), so that the
// Postgres and SQLite rows measure the same work.
//
// A benchmark passes start and stop functions: start is called when the
// work begins (it resets the timer and takes its own readings, such as
// the CPU used so far), stop when the last delivery or job is done (it
// stops the timer and reports).
package benchkit

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
	"github.com/outhook/outhook/queue"
	"github.com/outhook/outhook/riverqueue"
)

// Emitters is how many goroutines emit at once: one EmitHook call each,
// as the throughput target is stated.
const Emitters = 32

// timeout bounds the wait for the last delivery or job.
const timeout = 10 * time.Minute

// pad fills an event's payload to about 300 bytes.
var pad = strings.Repeat("x", 270)

// Incident is the benchmarks' event payload.
type Incident struct {
	ID       string `json:"id" validate:"required"`
	Severity string `json:"severity"`
}

// CountingDeliverer delivers by counting.
type CountingDeliverer struct{ N atomic.Int64 }

func (*CountingDeliverer) ID() string { return "count" }
func (*CountingDeliverer) ConfigSchema() json.RawMessage {
	return json.RawMessage(`{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object"}`)
}
func (*CountingDeliverer) ValidateConfig(json.RawMessage) error { return nil }
func (d *CountingDeliverer) Deliver(context.Context, *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	d.N.Add(1)
	return outhook.DeliveryResult{StatusCode: 204}, nil
}

// Deliveries runs b.N events through a client on q and store (nil: the
// in-memory store): Emitters goroutines call EmitHook one event at a
// time, each event is routed to one subscription and delivered by a
// CountingDeliverer. stop is called once the client is idle; then every
// event must have been delivered once. It reports emits/s, the emitting
// alone.
func Deliveries(b *testing.B, q queue.Queue, store outhook.Store, start, stop func()) {
	reg := outhook.NewEventRegistry()
	created := outhook.MustNewHook[Incident]("incident.created")
	_, err := outhook.RegisterEvent(reg, outhook.EventDefinition[Incident]{Hook: created, DisplayName: "Incident created"},
		outhook.PluginMetadata{PluginID: "incident"})
	require.NoError(b, err)
	counter := &CountingDeliverer{}
	c := outhooktest.NewClient(b, &outhook.Config{Registry: reg, Deliverers: []outhook.Deliverer{counter}, Queue: q, Store: store})
	ctx := context.Background()
	_, err = c.CreateSubscription(ctx, outhook.Subscription{Events: []string{"incident.incident.created"}, DelivererID: counter.ID()})
	require.NoError(b, err)

	var next atomic.Int64
	var wg sync.WaitGroup
	start()
	for range Emitters {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if err := outhook.EmitHook(ctx, c, created, Incident{ID: fmt.Sprintf("inc-%08d", i), Severity: pad}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	emitted := b.Elapsed()
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	require.NoError(b, c.WaitIdle(wctx))
	stop()
	require.EqualValues(b, b.N, counter.N.Load())
	b.ReportMetric(float64(b.N)/emitted.Seconds(), "emits/s")
}

// rawArgs is river-raw's job: a payload of the same size.
type rawArgs struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
}

func (rawArgs) Kind() string { return "outhook_bench_raw" }

type rawWorker struct {
	river.WorkerDefaults[rawArgs]
	done atomic.Int64
	n    int64
	all  chan struct{}
}

func (w *rawWorker) Work(context.Context, *river.Job[rawArgs]) error {
	if w.done.Add(1) == w.n {
		close(w.all)
	}
	return nil
}

// RiverRaw is River alone on driver's database, the durable rows'
// yardstick: b.N jobs of the same payload inserted with InsertMany in
// batches of 1,000 from one goroutine and worked by a no-op worker, with
// riverqueue's default workers and fetch cooldown. River's tables must
// exist.
func RiverRaw[TTx any](b *testing.B, driver riverdriver.Driver[TTx], log *slog.Logger, start, stop func()) {
	w := &rawWorker{n: int64(b.N), all: make(chan struct{})}
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	client, err := river.NewClient(driver, &river.Config{
		Logger:        log,
		Workers:       workers,
		Queues:        map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: riverqueue.DefaultMaxWorkers}},
		FetchCooldown: riverqueue.DefaultFetchCooldown,
	})
	require.NoError(b, err)
	ctx := context.Background()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	require.NoError(b, client.Start(rctx))
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_ = client.Stop(sctx)
	}()
	start()
	params := make([]river.InsertManyParams, 0, 1000)
	for i := range b.N {
		params = append(params, river.InsertManyParams{Args: rawArgs{ID: fmt.Sprintf("inc-%08d", i), Severity: pad}})
		if len(params) == cap(params) || i == b.N-1 {
			_, err := client.InsertMany(ctx, params)
			require.NoError(b, err)
			params = params[:0]
		}
	}
	select {
	case <-w.all:
	case <-time.After(timeout):
		b.Fatal("river-raw: timed out")
	}
	stop()
}

// ProcessCPU returns the CPU time this process has used, user and system.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
