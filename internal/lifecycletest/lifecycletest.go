// Package lifecycletest holds the Stop-under-load proof that every backend
// runs (issue 7, item 7): a client busy with deliveries is stopped with a
// deadline; Stop must return before it, with nothing left running; on a
// durable backend a client started afterwards on the same database or
// stream finishes the work, and nothing is lost or delivered twice.
//
// A backend supplies its node parts as for the cluster proofs
// (clustertest.NewParts).
package lifecycletest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/clustertest"
)

// Options configure StopUnderLoad.
type Options struct {
	// NewParts builds a node on the shared backend; it is called once for
	// the stopped node and, when Durable, once for the node that finishes.
	NewParts clustertest.NewParts
	// Durable says that jobs outlive the node that queued them: the proof
	// then starts a second node and requires every delivery to be made.
	// The in-memory queue drops what it has not run at Stop (as its
	// documentation says): only the drain is checked there.
	Durable bool
	// DrainsAll says that Stop itself runs every job that is ready
	// (memqueue): every delivery must then be made by the time it returns.
	DrainsAll bool
	// Events is how many events are emitted to two subscriptions. Default
	// 2,000 (a tenth under the race detector).
	Events int
	// Workers is the nodes' concurrency. Default 16.
	Workers int
	// StopWithin bounds Stop. Default 15 s.
	StopWithin time.Duration
}

// deliverer takes Delay per delivery and records it, and counts the
// deliveries in progress.
type deliverer struct {
	node     string
	rec      *clustertest.Receiver
	delay    time.Duration
	inFlight atomic.Int64
	started  atomic.Int64
	// busy is closed once armed and at least busyAt deliveries are in
	// progress at once: the moment to call Stop.
	armed  atomic.Bool
	busyAt int64
	busy   chan struct{}
	once   sync.Once
}

func (d *deliverer) ID() string                           { return clustertest.DelivererID }
func (d *deliverer) ConfigSchema() json.RawMessage        { return json.RawMessage(`{"type":"object"}`) }
func (d *deliverer) ValidateConfig(json.RawMessage) error { return nil }
func (d *deliverer) Deliver(ctx context.Context, req *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	if n := d.inFlight.Add(1); d.armed.Load() && n >= d.busyAt {
		d.once.Do(func() { close(d.busy) })
	}
	defer d.inFlight.Add(-1)
	d.started.Add(1)
	var p clustertest.Ping
	if err := json.Unmarshal(req.Payload, &p); err != nil {
		return outhook.DeliveryResult{}, outhook.Permanent(err)
	}
	t := time.NewTimer(d.delay)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return outhook.DeliveryResult{}, ctx.Err()
	}
	d.rec.Record(d.node, clustertest.Key(req.Subscription.ID, p.N))
	return outhook.DeliveryResult{StatusCode: 200}, nil
}

func start(t *testing.T, o Options, name string, d *deliverer) (*outhook.Client, clustertest.Parts) {
	t.Helper()
	ctx := context.Background()
	parts, err := o.NewParts(ctx, clustertest.NodeConfig{Name: name, DeliveryTimeout: 10 * time.Second, Workers: o.Workers})
	if err != nil {
		t.Fatalf("lifecycletest: node %s: %v", name, err)
	}
	c, err := outhook.NewClient(&outhook.Config{
		Registry:        clustertest.NewRegistry(),
		Deliverers:      []outhook.Deliverer{d},
		Store:           parts.Store,
		Queue:           parts.Queue,
		DeliveryTimeout: 10 * time.Second,
		HandlerTimeout:  10 * time.Second,
		Logger:          slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("lifecycletest: NewClient: %v", err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatalf("lifecycletest: Start: %v", err)
	}
	return c, parts
}

// StopUnderLoad is the proof. It prints (and appends to the proof report)
// how long Stop took, how much was done before it and, on a durable
// backend, what the second node did.
func StopUnderLoad(t *testing.T, o Options) {
	t.Helper()
	if o.Events == 0 {
		o.Events = 2000
	}
	if raceEnabled {
		o.Events = max(o.Events/10, 50)
	}
	if o.Workers == 0 {
		o.Workers = 16
	}
	if o.StopWithin == 0 {
		o.StopWithin = 15 * time.Second
	}
	ctx := context.Background()
	rec := clustertest.NewReceiver()
	// Deliveries long enough that several are in progress when Stop is
	// called, and short enough that Stop drains them well within its
	// deadline.
	first := &deliverer{node: "stopped", rec: rec, delay: 20 * time.Millisecond, busyAt: 2, busy: make(chan struct{})}
	c, parts := start(t, o, "stopped", first)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			sctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			_ = c.Stop(sctx)
		}
		if parts.Close != nil {
			parts.Close()
		}
	})
	var subs []string
	for i := range 2 {
		s, err := c.CreateSubscription(ctx, outhook.Subscription{Name: fmt.Sprint("stop ", i), Events: []string{clustertest.EventID},
			DelivererID: clustertest.DelivererID, Config: json.RawMessage(`{}`)})
		if err != nil {
			t.Fatalf("lifecycletest: CreateSubscription: %v", err)
		}
		subs = append(subs, s.ID)
	}
	want := o.Events * len(subs)

	// Emit from several goroutines; the emitters stop at the first
	// ErrClosed, since Stop may begin while they run.
	var emitted atomic.Int64
	var emitErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 8 {
		wg.Go(func() {
			for {
				n := int(next.Add(1) - 1)
				if n >= o.Events {
					return
				}
				if err := outhook.EmitHook(ctx, c, clustertest.PingHook, clustertest.Ping{N: n}); err != nil {
					mu.Lock()
					if emitErr == nil {
						emitErr = fmt.Errorf("emit %d: %w", n, err)
					}
					mu.Unlock()
					return
				}
				emitted.Add(1)
			}
		})
	}
	wg.Wait()
	if emitErr != nil {
		t.Fatalf("lifecycletest: %v", emitErr)
	}
	// Stop in the thick of it: a tenth done, many more in the queue, and
	// deliveries in progress.
	rec.Wait(t, 2*time.Minute, "a tenth of the deliveries", func(unique, _ int, _ map[string]int) bool { return unique >= want/10 })
	first.armed.Store(true)
	select {
	case <-first.busy:
	case <-time.After(2 * time.Minute):
		t.Fatalf("lifecycletest: never %d deliveries in progress at once", first.busyAt)
	}
	sctx, cancel := context.WithTimeout(ctx, o.StopWithin)
	defer cancel()
	begin := time.Now()
	inFlightAtStop := first.inFlight.Load()
	doneAtStop, _ := rec.Counts()
	err := c.Stop(sctx)
	took := time.Since(begin)
	stopped = true
	if err != nil {
		t.Fatalf("lifecycletest: Stop under load: %v after %s (deadline %s, %d deliveries in progress at Stop)", err, took, o.StopWithin, inFlightAtStop)
	}
	if n := first.inFlight.Load(); n != 0 {
		t.Fatalf("lifecycletest: Stop returned with %d deliveries still in progress", n)
	}
	if err := outhook.EmitHook(ctx, c, clustertest.PingHook, clustertest.Ping{N: o.Events}); !errors.Is(err, outhook.ErrClosed) {
		t.Fatalf("lifecycletest: EmitHook after Stop returned %v, want ErrClosed", err)
	}
	startedBefore := first.started.Load()
	doneByFirst, _ := rec.Counts()
	if parts.Close != nil {
		parts.Close()
		parts.Close = nil
	}

	backend := fmt.Sprintf("%T", parts.Queue)
	if !o.Durable {
		report(t, "lifecycletest: stop under load (%s): %d events × %d subscriptions; Stop took %s with %d deliveries in progress "+
			"(%d done at Stop, %d when it returned)",
			backend, o.Events, len(subs), took.Round(time.Millisecond), inFlightAtStop, doneAtStop, doneByFirst)
		if o.DrainsAll {
			if unique, total := rec.Counts(); unique != want || total != want {
				t.Fatalf("lifecycletest: Stop returned with %d of %d deliveries made (%d attempts); the drain must make them all, once", unique, want, total)
			}
		}
		return
	}

	// A second node on the same backend finishes the work.
	second := &deliverer{node: "after", rec: rec, delay: 0}
	c2, parts2 := start(t, o, "after", second)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := c2.Stop(sctx); err != nil {
			t.Errorf("lifecycletest: Stop of the second node: %v", err)
		}
		if parts2.Close != nil {
			parts2.Close()
		}
	})
	rec.Wait(t, 3*time.Minute, fmt.Sprintf("all %d deliveries after the restart", want), func(unique, _ int, _ map[string]int) bool { return unique >= want })
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer wcancel()
	if err := c2.WaitIdle(wctx); err != nil {
		t.Fatalf("lifecycletest: WaitIdle: %v", err)
	}
	unique, total := rec.Counts()
	dups := total - unique
	report(t, "lifecycletest: stop under load (%s): %d events × %d subscriptions; Stop took %s with %d deliveries in progress "+
		"(%d done at Stop, %d when it returned, %d attempts begun); the next node did %d; delivered %d, duplicated %d, lost %d",
		backend, o.Events, len(subs), took.Round(time.Millisecond), inFlightAtStop, doneAtStop, doneByFirst, startedBefore,
		rec.ByNode()["after"], unique, dups, want-unique)
	if unique != want {
		t.Fatalf("lifecycletest: lost %d deliveries", want-unique)
	}
	// Stop let every delivery in progress finish and recorded it: none is
	// made again.
	if dups != 0 {
		t.Fatalf("lifecycletest: %d deliveries made twice after a clean Stop: %v", dups, rec.Duplicated())
	}
}

// report logs a line and appends it to the proof report CI prints.
func report(t *testing.T, format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	t.Log(line)
	if path := os.Getenv(clustertest.EnvReport); path != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Errorf("lifecycletest: report: %v", err)
			return
		}
		defer f.Close()
		fmt.Fprintln(f, line)
	}
}
