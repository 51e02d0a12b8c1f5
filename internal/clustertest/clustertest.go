// Package clustertest holds the multi-node and crash proofs that every
// durable backend runs: several outhook clients sharing one database or
// stream, and a node in a separate OS process killed with SIGKILL in the
// middle of its work. A backend's tests supply how to build one node's
// queue and store; the proofs supply the events, the subscriptions, the
// deliverers and the accounting.
package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/queue"
)

// Ping is the proofs' event payload: N numbers the events of one run.
type Ping struct {
	N int `json:"n" validate:"gte=0"`
}

// PingHook is the proofs' hook; its event is EventID.
var PingHook = outhook.MustNewHook[Ping]("cluster.ping")

// EventID is the integration event the proofs subscribe to.
const EventID = "proof.cluster.ping"

// DelivererID is the ID of the deliverers the proofs install.
const DelivererID = "proof"

// NewRegistry returns a registry holding the proofs' event. Each node has
// a registry of its own, as separate processes would.
func NewRegistry() *outhook.EventRegistry {
	reg := outhook.NewEventRegistry()
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[Ping]{
		Hook:        PingHook,
		DisplayName: "Cluster ping",
	}, outhook.PluginMetadata{PluginID: "proof"})
	return reg
}

// Parts are what a backend supplies for one node.
type Parts struct {
	Queue queue.Queue
	Store outhook.Store
	// Close, when set, releases what the parts hold (pools, connections),
	// after the node's client has stopped.
	Close func()
}

// NodeConfig tells a backend how to build one node.
type NodeConfig struct {
	// Name names the node ("node-1", "child", ...).
	Name string
	// DeliveryTimeout is the client's delivery timeout and handler timeout
	// (routing an event is a handler run); leases must outlast it.
	DeliveryTimeout time.Duration
	// Workers is how many jobs of one worker group the node runs at once.
	Workers int
}

// NewParts builds one node's queue and store on the shared backend.
type NewParts func(ctx context.Context, cfg NodeConfig) (Parts, error)

// Receiver counts deliveries by key (subscription and event number) and by
// the node that made them.
type Receiver struct {
	mu     sync.Mutex
	counts map[string]int
	who    map[string][]string // the nodes that delivered each key, in order
	byNode map[string]int
	total  int
	unique int
	fails  map[string]int // failed attempts by key (the crash proof's retry phase)
	failed int
	// failByNode counts the failed attempts each node made.
	failByNode map[string]int
	notify     chan struct{} // closed and replaced on every new delivery
}

// NewReceiver returns an empty receiver.
func NewReceiver() *Receiver {
	return &Receiver{counts: map[string]int{}, who: map[string][]string{}, byNode: map[string]int{},
		fails: map[string]int{}, failByNode: map[string]int{}, notify: make(chan struct{})}
}

// Record counts one delivery of key made by node.
func (r *Receiver) Record(node, key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts[key]++
	if r.counts[key] == 1 {
		r.unique++
	}
	r.who[key] = append(r.who[key], node)
	r.byNode[node]++
	r.total++
	close(r.notify)
	r.notify = make(chan struct{})
}

// RecordFailure counts one failed attempt of key made by node: an attempt
// that a deliverer failed on purpose, which reached no one.
func (r *Receiver) RecordFailure(node, key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fails[key]++
	r.failed++
	r.failByNode[node]++
	close(r.notify)
	r.notify = make(chan struct{})
}

// Counts returns the distinct keys delivered and all deliveries.
func (r *Receiver) Counts() (unique, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unique, r.total
}

// ByNode returns how many deliveries each node made.
func (r *Receiver) ByNode() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]int, len(r.byNode))
	for k, v := range r.byNode {
		m[k] = v
	}
	return m
}

// Duplicated returns the keys delivered more than once, with their counts.
func (r *Receiver) Duplicated() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string]int{}
	for k, v := range r.counts {
		if v > 1 {
			m[k] = v
		}
	}
	return m
}

// Wait blocks until cond holds for the receiver, or fails the test after
// timeout.
func (r *Receiver) Wait(t testing.TB, timeout time.Duration, what string, cond func(unique, total int, byNode map[string]int) bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ok := cond(r.unique, r.total, r.byNode)
		ch := r.notify
		unique, total := r.unique, r.total
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("clustertest: waited %s for %s; %d distinct deliveries, %d in all, by node %v",
				timeout, what, unique, total, r.ByNode())
		}
	}
}

// changed returns a channel closed at the next delivery or failure the
// receiver records.
func (r *Receiver) changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.notify
}

// Key is the receiver's key of one delivery.
func Key(subscriptionID string, n int) string { return fmt.Sprintf("%s|%d", subscriptionID, n) }

// recorder is an in-process deliverer that records into a Receiver.
type recorder struct {
	node  string
	rec   *Receiver
	delay time.Duration
	// failFirst fails the first attempts of each delivery retryably
	// (failuresOf), as the crash proof's retry phase asks.
	failFirst bool
	calls     atomic.Int64
}

func (d *recorder) ID() string                           { return DelivererID }
func (d *recorder) ConfigSchema() json.RawMessage        { return json.RawMessage(`{"type":"object"}`) }
func (d *recorder) ValidateConfig(json.RawMessage) error { return nil }
func (d *recorder) Deliver(ctx context.Context, req *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	var p Ping
	if err := json.Unmarshal(req.Payload, &p); err != nil {
		return outhook.DeliveryResult{}, outhook.Permanent(err)
	}
	if d.delay > 0 {
		t := time.NewTimer(d.delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return outhook.DeliveryResult{}, ctx.Err()
		}
	}
	d.calls.Add(1)
	key := Key(req.Subscription.ID, p.N)
	if d.failFirst && req.Attempt <= failuresOf(key) {
		d.rec.RecordFailure(d.node, key)
		return outhook.DeliveryResult{StatusCode: 503}, errFailOnPurpose(req.Attempt, key)
	}
	d.rec.Record(d.node, key)
	return outhook.DeliveryResult{}, nil
}

// NewClient builds a started client for one node and stops it (and closes
// its parts) when the test ends.
func newClient(t testing.TB, parts Parts, dl outhook.Deliverer, timeout time.Duration) *outhook.Client {
	t.Helper()
	return startClient(t, parts, &outhook.Config{
		Registry:        NewRegistry(),
		Deliverers:      []outhook.Deliverer{dl},
		Store:           parts.Store,
		Queue:           parts.Queue,
		DeliveryTimeout: timeout,
		HandlerTimeout:  timeout,
		Logger:          slog.New(slog.DiscardHandler),
	})
}

func subscribe(t testing.TB, c *outhook.Client, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		s, err := c.CreateSubscription(context.Background(), outhook.Subscription{
			Name:        fmt.Sprintf("proof subscription %d", i+1),
			Events:      []string{EventID},
			DelivererID: DelivererID,
			Config:      json.RawMessage(`{}`),
		})
		if err != nil {
			t.Fatalf("clustertest: CreateSubscription: %v", err)
		}
		ids[i] = s.ID
	}
	return ids
}

// emitAll emits events 0..n-1 from 32 goroutines, spreading them over
// clients one EmitHook call at a time.
func emitAll(t testing.TB, clients []*outhook.Client, n int) {
	t.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				c := clients[i%len(clients)]
				if err := outhook.EmitHook(context.Background(), c, PingHook, Ping{N: i}); err != nil {
					errs <- fmt.Errorf("emit %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("clustertest: %v", err)
	}
}

func waitIdle(t testing.TB, clients ...*outhook.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, c := range clients {
		if err := c.WaitIdle(ctx); err != nil {
			t.Fatalf("clustertest: WaitIdle: %v", err)
		}
	}
}

func splitString(byNode map[string]int) string {
	names := make([]string, 0, len(byNode))
	for n := range byNode {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", n, byNode[n])
	}
	return b.String()
}

// MultiNode is the multi-node proof: nodes clients, each with its own
// queue and store on the shared backend, two subscriptions, and events
// emitted one EmitHook call at a time from 32 goroutines spread over the
// nodes. Each subscription must receive each event exactly once, and every
// node must have done part of the work; the split is printed.
func MultiNode(t *testing.T, newParts NewParts, nodes, events int) {
	t.Helper()
	events = scaled(events)
	rec := NewReceiver()
	clients := make([]*outhook.Client, nodes)
	backend := ""
	for i := range clients {
		name := fmt.Sprintf("node-%d", i+1)
		parts, err := newParts(context.Background(), NodeConfig{Name: name, DeliveryTimeout: 10 * time.Second, Workers: 20})
		if err != nil {
			t.Fatalf("clustertest: node %s: %v", name, err)
		}
		backend = backendName(parts)
		clients[i] = newClient(t, parts, &recorder{node: name, rec: rec}, 10*time.Second)
	}
	subs := subscribe(t, clients[0], 2)
	start := time.Now()
	emitAll(t, clients, events)
	want := events * len(subs)
	rec.Wait(t, 5*time.Minute, fmt.Sprintf("%d deliveries", want), func(unique, _ int, _ map[string]int) bool { return unique >= want })
	waitIdle(t, clients...)
	elapsed := time.Since(start)

	unique, total := rec.Counts()
	byNode := rec.ByNode()
	report("clustertest: multi-node (%s): %d events × %d subscriptions over %d nodes in %s (%.0f deliveries/s): delivered %d, duplicated %d, lost %d; split: %s\n",
		backend, events, len(subs), nodes, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(),
		unique, total-unique, want-unique, splitString(byNode))
	if total != want || unique != want {
		t.Fatalf("clustertest: want each of %d deliveries exactly once, got %d distinct and %d in all; duplicated: %v",
			want, unique, total, firstN(rec.Duplicated(), 10))
	}
	for _, c := range subs {
		for i := 0; i < events; i++ {
			if rec.counts[Key(c, i)] != 1 {
				t.Fatalf("clustertest: delivery %s made %d times", Key(c, i), rec.counts[Key(c, i)])
			}
		}
	}
	for i := range clients {
		name := fmt.Sprintf("node-%d", i+1)
		if byNode[name] < want/(nodes*10) {
			t.Errorf("clustertest: %s made %d of %d deliveries: the work is not spread (split: %s)",
				name, byNode[name], want, splitString(byNode))
		}
	}
}

func firstN(m map[string]int, n int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		if len(out) == n {
			break
		}
		out[k] = v
	}
	return out
}

// EnvReport names a file the proofs append their summary lines to, so that
// CI can print them after a `go test ./...` that hides passing tests'
// output.
const EnvReport = "OUTHOOK_PROOF_REPORT"

// report prints a proof's summary line, and appends it to the file named by
// OUTHOOK_PROOF_REPORT when set.
func report(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	if !strings.HasSuffix(line, "\n") {
		line += "\n"
	}
	fmt.Print(line)
	if path := os.Getenv(EnvReport); path != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			_, _ = f.WriteString(line)
			_ = f.Close()
		}
	}
}

// backendName names a node's queue and store for the proofs' reports.
func backendName(p Parts) string {
	return fmt.Sprintf("queue %T, store %T", p.Queue, p.Store)
}

// scaled is n, or a tenth of it under the race detector.
func scaled(n int) int {
	if raceEnabled {
		report("clustertest: race detector on: %d events instead of %d", max(n/10, 1), n)
		return max(n/10, 1)
	}
	return n
}

// Getenv is os.Getenv, for the child process's settings.
func Getenv(key string) string { return os.Getenv(key) }

// Report prints a summary line of a proof of a backend's own (see report),
// appending it to the file named by OUTHOOK_PROOF_REPORT when set.
func Report(format string, args ...any) { report(format, args...) }

// RaceEnabled reports whether the race detector is on, under which the
// proofs scale their work down.
func RaceEnabled() bool { return raceEnabled }
