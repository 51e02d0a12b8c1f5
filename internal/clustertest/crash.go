package clustertest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/outhook/outhook"
)

// Environment of a crash proof's child process.
const (
	envChild    = "OUTHOOK_CLUSTERTEST_CHILD"
	envReceiver = "OUTHOOK_CLUSTERTEST_RECEIVER"
	envEmit     = "OUTHOOK_CLUSTERTEST_EMIT"
	envEmitters = "OUTHOOK_CLUSTERTEST_EMITTERS"
	envWorkers  = "OUTHOOK_CLUSTERTEST_WORKERS"
	envTimeout  = "OUTHOOK_CLUSTERTEST_TIMEOUT"
	envDelay    = "OUTHOOK_CLUSTERTEST_DELAY"
	envPhase    = "OUTHOOK_CLUSTERTEST_PHASE"
	envIdle     = "OUTHOOK_CLUSTERTEST_IDLE"
)

// EnvCrashSeed, when set to an unsigned integer, is the seed of the crash
// proofs' kill points, to replay a run; otherwise the seed is drawn from
// the clock. Either way the seed is logged and printed in every phase's
// report line.
const EnvCrashSeed = "OUTHOOK_CRASH_SEED"

// Phase names where in the work a crash proof kills its child.
type Phase string

const (
	// PhaseEmit: the child emits the events itself, reporting each
	// committed emit (EmitHook returned nil), and is killed part-way
	// through them, while it is also routing and delivering.
	PhaseEmit Phase = "emit"
	// PhaseDelivery: every event is emitted; the child is killed in the
	// middle of its deliveries.
	PhaseDelivery Phase = "delivery"
	// PhaseRetry: every node fails the first one or two attempts of each
	// delivery retryably, with a short backoff; the child is killed while
	// retries are pending and in flight.
	PhaseRetry Phase = "retry"
)

// Phases are the crash proof's phases, in order.
var Phases = []Phase{PhaseEmit, PhaseDelivery, PhaseRetry}

// retryBackoff is the wait between two attempts in the retry phase.
const retryBackoff = 200 * time.Millisecond

// retrySchedule is the delivery retry schedule of the retry phase: short
// waits, and many more of them than a delivery fails (failuresOf), so that
// none runs out of attempts.
func retrySchedule() backoff.BackOff {
	d := make([]time.Duration, 30)
	for i := range d {
		d[i] = retryBackoff
	}
	return outhook.NewSchedule(d...)
}

// failuresOf is how many first attempts of the delivery with key the
// retry phase's deliverers fail: one or two, by the key.
func failuresOf(key string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return 1 + int(h.Sum32()%2)
}

func errFailOnPurpose(attempt int, key string) error {
	return fmt.Errorf("clustertest: attempt %d of %s fails on purpose (retry phase)", attempt, key)
}

// nodeConfig is the client configuration of every node of a phase, the
// test's own and the child processes alike.
func nodeConfig(parts Parts, dl outhook.Deliverer, timeout time.Duration, phase Phase, log *slog.Logger) *outhook.Config {
	cfg := &outhook.Config{
		Registry:        NewRegistry(),
		Deliverers:      []outhook.Deliverer{dl},
		Store:           parts.Store,
		Queue:           parts.Queue,
		DeliveryTimeout: timeout,
		HandlerTimeout:  timeout,
		Logger:          log,
	}
	if phase == PhaseRetry {
		cfg.DeliveryRetry = outhook.RetryPolicy{NewBackOff: retrySchedule}
		// Every subscription's destination fails at first: without this,
		// the failing destinations' in-flight cap (2 by default) would
		// throttle the nodes, and the bound on what the child has in
		// flight would no longer be Workers.
		cfg.FailingMaxInFlight = -1
	}
	return cfg
}

// IsChild reports whether this process is a crash proof's child node. A
// backend's TestMain calls RunChild when it is.
func IsChild() bool { return os.Getenv(envChild) != "" }

// RunChild runs this process as a crash proof's child node until it is
// killed (SIGKILL, the proof) or asked to stop (SIGTERM, a clean end). It
// reports every delivery, and in the retry phase every failed attempt, to
// the parent's receiver over HTTP. When asked, it emits the events itself
// and prints "emitted <n>" on stdout once the emit of event n is committed
// (EmitHook returned nil), then "emitted" after the last; when asked, it
// prints "idle" once the shared queue has no work left. It exits the
// process.
func RunChild(newParts NewParts) {
	name := os.Getenv(envChild)
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "clustertest child %s: %s\n", name, fmt.Sprintf(format, args...))
		os.Exit(2)
	}
	workers, _ := strconv.Atoi(os.Getenv(envWorkers))
	timeout, err := time.ParseDuration(os.Getenv(envTimeout))
	if err != nil {
		fail("bad %s: %v", envTimeout, err)
	}
	delay, _ := time.ParseDuration(os.Getenv(envDelay))
	phase := Phase(os.Getenv(envPhase))
	ctx := context.Background()
	parts, err := newParts(ctx, NodeConfig{Name: name, DeliveryTimeout: timeout, Workers: workers})
	if err != nil {
		fail("parts: %v", err)
	}
	dl := &poster{node: name, url: os.Getenv(envReceiver), delay: delay, failFirst: phase == PhaseRetry, client: &http.Client{}}
	level := slog.LevelWarn
	if phase == PhaseRetry {
		level = slog.LevelError // not a warning per failed attempt
	}
	c, err := outhook.NewClient(nodeConfig(parts, dl, timeout, phase,
		slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))))
	if err != nil {
		fail("NewClient: %v", err)
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	if err := c.Start(ctx); err != nil {
		fail("Start: %v", err)
	}
	fmt.Println("ready")
	if n, _ := strconv.Atoi(os.Getenv(envEmit)); n > 0 {
		emitters, _ := strconv.Atoi(os.Getenv(envEmitters))
		var next atomic.Int64
		var wg sync.WaitGroup
		for range max(emitters, 1) {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= n {
						return
					}
					if err := outhook.EmitHook(ctx, c, PingHook, Ping{N: i}); err != nil {
						fail("emit %d: %v", i, err)
					}
					// One write per line: lines of concurrent emitters
					// never interleave in the pipe.
					fmt.Println("emitted " + strconv.Itoa(i))
				}
			})
		}
		wg.Wait()
		fmt.Println("emitted")
	}
	if os.Getenv(envIdle) != "" {
		go func() {
			if err := c.WaitIdle(ctx); err == nil {
				fmt.Println("idle")
			}
		}()
	}
	<-term
	stopCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := c.Stop(stopCtx); err != nil {
		fail("Stop: %v", err)
	}
	if parts.Close != nil {
		parts.Close()
	}
	os.Exit(0)
}

// poster is the child's deliverer: it reports each delivery to the
// parent's receiver.
type poster struct {
	node      string
	url       string
	delay     time.Duration
	failFirst bool // the retry phase: fail the first attempts, see failuresOf
	client    *http.Client
}

type deliveryReport struct {
	Node   string `json:"node"`
	Key    string `json:"key"`
	Failed bool   `json:"failed,omitempty"` // a failed attempt, not a delivery
}

func (d *poster) ID() string                           { return DelivererID }
func (d *poster) ConfigSchema() json.RawMessage        { return json.RawMessage(`{"type":"object"}`) }
func (d *poster) ValidateConfig(json.RawMessage) error { return nil }
func (d *poster) Deliver(ctx context.Context, req *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
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
	key := Key(req.Subscription.ID, p.N)
	failed := d.failFirst && req.Attempt <= failuresOf(key)
	body, _ := json.Marshal(deliveryReport{Node: d.node, Key: key, Failed: failed})
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(body))
	if err != nil {
		return outhook.DeliveryResult{}, outhook.Permanent(err)
	}
	res, err := d.client.Do(hreq)
	if err != nil {
		return outhook.DeliveryResult{}, err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		return outhook.DeliveryResult{}, fmt.Errorf("receiver answered %s", res.Status)
	}
	if failed {
		return outhook.DeliveryResult{StatusCode: 503}, errFailOnPurpose(req.Attempt, key)
	}
	return outhook.DeliveryResult{}, nil
}

// CrashOptions configures Crash.
type CrashOptions struct {
	// Backend prepares a fresh backend for one phase (a schema, a stream,
	// a file of its own, released when t ends) and returns how to build a
	// node on it, and what to add to the child's environment so that the
	// child's NewParts (through RunChild in the backend's TestMain) finds
	// it.
	Backend func(t *testing.T) (NewParts, []string)
	// Phases are the phases to run, each a subtest named after it, run in
	// parallel with the others (most of a phase is spent waiting for the
	// killed node's leases). Default Phases: all three.
	Phases []Phase
	// Events is how many events are emitted in a phase. Default 1,000 (a
	// tenth under the race detector). The retry phase emits half as many:
	// each of its deliveries takes two or three attempts.
	Events int
	// Workers is how many jobs of one group the child runs at once: what
	// may be in flight at the kill, and so the bound on duplicates.
	// Default 8.
	Workers int
	// Emitters is how many goroutines the child emits from, when it
	// emits: the bound on emits in flight at the kill. Default 4.
	Emitters int
	// DeliveryTimeout is the nodes' delivery and handler timeout: jobs of
	// the killed node come back after about this plus the backend's lease
	// margin. (With the default one-minute handler timeout, the events the
	// killed node was routing would wait a minute for their lease.)
	// Default 2 s.
	DeliveryTimeout time.Duration
	// Restart selects the single-node form (SQLite): the child emits the
	// events itself, is killed, and a second child process finishes the
	// work. Otherwise a node in the test's own process shares the work
	// with the child, emits the events (but in the emit phase, where the
	// child emits them), and finishes after the kill.
	Restart bool
}

// Crash is the crash proof: a node in a separate OS process is killed with
// SIGKILL at a random point (seeded, see EnvCrashSeed) of each phase
// (Phases: while it emits, while it delivers, while its deliveries are
// being retried), and a remaining or restarted node finishes the work.
// Every committed event must be delivered to both subscriptions (lost =
// 0); an event is delivered to all subscriptions or to none; duplicates
// come only from deliveries the killed node had in flight (each one made
// by it, at most Workers of them). Each phase prints its delivered,
// duplicated and lost counts in a line "clustertest: crash (...)".
func Crash(t *testing.T, o CrashOptions) {
	t.Helper()
	if o.Events == 0 {
		o.Events = 1000
	}
	o.Events = scaled(o.Events)
	if o.Workers == 0 {
		o.Workers = 8
	}
	if o.Emitters == 0 {
		o.Emitters = 4
	}
	if o.DeliveryTimeout == 0 {
		o.DeliveryTimeout = 2 * time.Second
	}
	phases := o.Phases
	if phases == nil {
		phases = Phases
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(EnvCrashSeed); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("clustertest: %s=%q is not an unsigned integer", EnvCrashSeed, s)
		}
		seed = v
	}
	t.Logf("clustertest: crash proof seed %d (replay with %s=%d)", seed, EnvCrashSeed, seed)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("clustertest: the crash proof failed with seed %d: replay with %s=%d", seed, EnvCrashSeed, seed)
		}
	})
	for i, ph := range phases {
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		t.Run(string(ph), func(t *testing.T) {
			t.Parallel()
			crashPhase(t, o, ph, seed, rng)
		})
	}
}

// crashPhase runs one phase of the crash proof on a backend of its own.
func crashPhase(t *testing.T, o CrashOptions, phase Phase, seed uint64, rng *rand.Rand) {
	if phase == PhaseRetry {
		o.Events = max(o.Events/2, 1) // each delivery takes two or three attempts
	}
	newParts, childEnv := o.Backend(t)
	rec := NewReceiver()
	url := serveReceiver(t, rec)
	ctx := context.Background()

	var parent *outhook.Client
	var subs []string
	var backend string
	if o.Restart {
		// Create the subscriptions, then leave the backend to the children.
		parts, err := newParts(ctx, NodeConfig{Name: "setup", DeliveryTimeout: o.DeliveryTimeout, Workers: o.Workers})
		if err != nil {
			t.Fatalf("clustertest: setup node: %v", err)
		}
		c, err := outhook.NewClient(&outhook.Config{Registry: NewRegistry(), Deliverers: []outhook.Deliverer{&recorder{rec: rec}},
			Store: parts.Store, Queue: parts.Queue, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		subs = subscribe(t, c, 2)
		backend = backendName(parts)
		stopCtx, cancel := context.WithTimeout(ctx, time.Minute)
		err = c.Stop(stopCtx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if parts.Close != nil {
			parts.Close()
		}
	} else {
		parts, err := newParts(ctx, NodeConfig{Name: "parent", DeliveryTimeout: o.DeliveryTimeout, Workers: o.Workers})
		if err != nil {
			t.Fatalf("clustertest: parent node: %v", err)
		}
		backend = backendName(parts)
		dl := &recorder{node: "parent", rec: rec, delay: 2 * time.Millisecond, failFirst: phase == PhaseRetry}
		parent = startClient(t, parts, nodeConfig(parts, dl, o.DeliveryTimeout, phase, slog.New(slog.DiscardHandler)))
		subs = subscribe(t, parent, 2)
	}
	want := o.Events * len(subs)
	// expectedAttempts is how many attempts all the deliveries take without
	// a kill: one, and in the retry phase one or two failed ones first.
	expectedAttempts := want
	if phase == PhaseRetry {
		expectedAttempts = 0
		for _, s := range subs {
			for n := range o.Events {
				expectedAttempts += 1 + failuresOf(Key(s, n))
			}
		}
	}

	childEmits := o.Restart || phase == PhaseEmit
	emit := 0
	if childEmits {
		emit = o.Events
	}
	start := time.Now()
	child := startChild(t, childSpec{name: "child", url: url, emit: emit, phase: phase, env: childEnv}, o)

	// Kill the child at a random point of the phase.
	var killPoint string
	switch phase {
	case PhaseEmit:
		k := o.Events/10 + rng.IntN(o.Events*8/10+1)
		waitUntil(t, 2*time.Minute, fmt.Sprintf("%d confirmed emits", k), rec, child, func() bool { return child.confirmedCount() >= k })
		child.kill(t)
		killPoint = fmt.Sprintf("after %d of %d emits confirmed (kill point drawn: %d)", child.confirmedCount(), o.Events, k)
	default:
		if childEmits {
			child.waitLine(t, "emitted")
		} else {
			emitAll(t, []*outhook.Client{parent}, o.Events)
		}
		// The kill point is drawn between where the work stands now that
		// every event is emitted and three quarters of it (deliveries in
		// the delivery phase; attempts, failed ones included, in the
		// retry phase).
		progress := func() int { u, _ := rec.Counts(); return u }
		total, unit := want, "deliveries"
		if phase == PhaseRetry {
			progress = func() int { _, n := rec.Counts(); return n + rec.Failed() }
			total, unit = expectedAttempts, "attempts"
		}
		from, to := progress(), total*3/4
		k := from
		if to > from {
			k += rng.IntN(to - from + 1)
		}
		// The child must be at work: it made an attempt at least.
		waitUntil(t, 2*time.Minute, fmt.Sprintf("%d %s, one by the child at least", k, unit), rec, child,
			func() bool { return progress() >= k && rec.attemptsBy("child") > 0 })
		child.kill(t)
		killPoint = fmt.Sprintf("after %d of about %d %s (kill point drawn: %d between %d and %d)", progress(), total, unit, k, from, to)
	}
	killedAt := time.Since(start)
	uniqueAtKill, _ := rec.Counts()
	childBefore := rec.ByNode()["child"]
	pendingAtKill := 0
	if phase == PhaseRetry {
		pendingAtKill = rec.pendingRetries()
	}
	if phase != PhaseEmit && uniqueAtKill >= want {
		t.Fatalf("clustertest: everything was delivered before the kill; the proof needs a slower child")
	}

	// The events whose emit was committed and confirmed: all of them,
	// unless the child emitted them in the emit phase.
	confirmed := make([]bool, o.Events)
	nConfirmed := o.Events
	if phase == PhaseEmit {
		nConfirmed = 0
		for n := range confirmed {
			confirmed[n] = child.isConfirmed(n)
			if confirmed[n] {
				nConfirmed++
			}
		}
	} else {
		for n := range confirmed {
			confirmed[n] = true
		}
	}
	wanted := make([]string, 0, nConfirmed*len(subs))
	for n, ok := range confirmed {
		if ok {
			for _, s := range subs {
				wanted = append(wanted, Key(s, n))
			}
		}
	}

	var finisher *childProc
	if o.Restart {
		finisher = startChild(t, childSpec{name: "restarted", url: url, phase: phase, idle: true, env: childEnv}, o)
	}
	waitUntil(t, 3*time.Minute, fmt.Sprintf("all %d deliveries of the committed events after the kill", len(wanted)), rec, finisher,
		func() bool { return rec.deliveredAll(wanted) })
	// Then until the queue is empty: the events whose emit was in flight
	// at the kill, if committed, are delivered too.
	if o.Restart {
		finisher.waitLine(t, "idle")
		finisher.stop(t)
	} else {
		waitIdle(t, parent)
	}
	elapsed := time.Since(start)

	// The accounting.
	unique, total := rec.Counts()
	dups := total - unique
	lost := 0
	for _, k := range wanted {
		if !rec.Delivered(k) {
			lost++
		}
	}
	var partial []string      // events delivered to some subscriptions only
	unconfirmedDelivered := 0 // events whose emit was not confirmed, delivered all the same
	for n := range o.Events {
		got := 0
		for _, s := range subs {
			if rec.Delivered(Key(s, n)) {
				got++
			}
		}
		if got > 0 && got < len(subs) {
			partial = append(partial, fmt.Sprintf("event %d to %d of %d subscriptions", n, got, len(subs)))
		}
		if !confirmed[n] && got > 0 {
			unconfirmedDelivered++
		}
	}
	badDups := rec.duplicatesNotFrom("child")
	var detail string
	switch phase {
	case PhaseEmit:
		detail = fmt.Sprintf("; emits confirmed %d, not confirmed %d (%d of them delivered all the same, bound %d in flight)",
			nConfirmed, o.Events-nConfirmed, unconfirmedDelivered, o.Emitters)
	case PhaseRetry:
		detail = fmt.Sprintf("; failed attempts %d, retries pending at the kill %d", rec.Failed(), pendingAtKill)
	}
	report("clustertest: crash (%s; %s phase; seed %d): %d events × %d subscriptions; child killed at %s %s, after %d of its deliveries (%d of %d deliveries done in all); all done at %s; delivered %d, duplicated %d (bound %d in flight), lost %d%s; split: %s\n",
		backend, phase, seed, o.Events, len(subs), killedAt.Round(time.Millisecond), killPoint, childBefore, uniqueAtKill, want,
		elapsed.Round(time.Millisecond), unique, dups, o.Workers, lost, detail, splitString(rec.ByNode()))

	if lost > 0 {
		t.Errorf("clustertest: lost %d deliveries of committed events, for example %v", lost, firstMissing(rec, wanted, 10))
	}
	if len(partial) > 0 {
		t.Errorf("clustertest: %d events were delivered to some of their subscriptions only: %v", len(partial), partial[:min(len(partial), 10)])
	}
	if unconfirmedDelivered > o.Emitters {
		t.Errorf("clustertest: %d events whose emit the child never confirmed were delivered, more than the %d emits it had in flight",
			unconfirmedDelivered, o.Emitters)
	}
	if dups > o.Workers {
		t.Errorf("clustertest: %d duplicates, more than the %d deliveries the killed node could have had in flight: %v",
			dups, o.Workers, firstN(rec.Duplicated(), 10))
	}
	if len(badDups) > 0 {
		t.Errorf("clustertest: %d deliveries were made more than once without one of them by the killed node, or twice by one node: %v",
			len(badDups), badDups[:min(len(badDups), 10)])
	}
	if phase == PhaseRetry {
		if pendingAtKill == 0 {
			t.Errorf("clustertest: no retry was pending at the kill: the retry phase did not test retries")
		}
		if under := rec.underFailed(wanted); len(under) > 0 {
			t.Errorf("clustertest: %d deliveries succeeded with fewer failed attempts before than their deliverers fail: %v",
				len(under), under[:min(len(under), 10)])
		}
	}
}

// serveReceiver serves the reports of the child processes' deliverers into
// rec, until the test ends, and returns its URL.
func serveReceiver(t *testing.T, rec *Receiver) string {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rep deliveryReport
		if err := json.NewDecoder(r.Body).Decode(&rep); err != nil || rep.Key == "" {
			http.Error(w, "bad report", http.StatusBadRequest)
			return
		}
		if rep.Failed {
			rec.RecordFailure(rep.Node, rep.Key)
		} else {
			rec.Record(rep.Node, rep.Key)
		}
		w.WriteHeader(http.StatusNoContent)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + "/"
}

// startClient starts a client of cfg, stopped (and its parts closed) when
// the test ends.
func startClient(t testing.TB, parts Parts, cfg *outhook.Config) *outhook.Client {
	t.Helper()
	c, err := outhook.NewClient(cfg)
	if err != nil {
		t.Fatalf("clustertest: NewClient: %v", err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("clustertest: Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("clustertest: Stop: %v", err)
		}
		if parts.Close != nil {
			parts.Close()
		}
	})
	return c
}

// waitUntil polls cond until it holds, failing the test after timeout, or
// as soon as child (when not nil) has exited.
func waitUntil(t *testing.T, timeout time.Duration, what string, rec *Receiver, child *childProc, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		// Take the signals before reading the state, so that no change
		// between the two is missed.
		recChanged := rec.changed()
		var childChanged, childDone <-chan struct{}
		if child != nil {
			childChanged, childDone = child.changed(), child.done
		}
		if cond() {
			return
		}
		select {
		case <-recChanged:
		case <-childChanged:
		case <-childDone:
			t.Fatalf("clustertest: child %s exited while waiting for %s: %v", child.name, what, child.exitErr())
		case <-deadline.C:
			t.Fatalf("clustertest: waited %s for %s", timeout, what)
		}
	}
}

// Delivered reports whether key was delivered.
func (r *Receiver) Delivered(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[key] > 0
}

// deliveredAll reports whether every key was delivered.
func (r *Receiver) deliveredAll(keys []string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range keys {
		if r.counts[k] == 0 {
			return false
		}
	}
	return true
}

// attemptsBy returns how many attempts node made, failed ones included.
func (r *Receiver) attemptsBy(node string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byNode[node] + r.failByNode[node]
}

// Failed returns how many failed attempts were recorded.
func (r *Receiver) Failed() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// pendingRetries counts the keys with a failed attempt and no delivery.
func (r *Receiver) pendingRetries() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for k := range r.fails {
		if r.counts[k] == 0 {
			n++
		}
	}
	return n
}

// duplicatesNotFrom lists the keys delivered more than once that do not
// come from one delivery of the killed node plus one redelivery: a
// duplicate with no delivery by killed, or a key one node delivered twice.
func (r *Receiver) duplicatesNotFrom(killed string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var bad []string
	for k, nodes := range r.who {
		if len(nodes) < 2 {
			continue
		}
		seen := map[string]bool{}
		ok := false
		for _, n := range nodes {
			if seen[n] {
				ok = false
				break
			}
			seen[n] = true
			ok = ok || n == killed
		}
		if !ok {
			bad = append(bad, fmt.Sprintf("%s by %s", k, strings.Join(nodes, ", ")))
		}
	}
	sort.Strings(bad)
	return bad
}

// underFailed lists the delivered keys that recorded fewer failed attempts
// than their deliverers fail before a success (failuresOf).
func (r *Receiver) underFailed(keys []string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var bad []string
	for _, k := range keys {
		if r.counts[k] > 0 && r.fails[k] < failuresOf(k) {
			bad = append(bad, fmt.Sprintf("%s (%d failed, want %d)", k, r.fails[k], failuresOf(k)))
		}
	}
	return bad
}

func firstMissing(r *Receiver, keys []string, n int) []string {
	var out []string
	for _, k := range keys {
		if !r.Delivered(k) {
			out = append(out, k)
			if len(out) == n {
				break
			}
		}
	}
	return out
}

// childSpec describes one child process.
type childSpec struct {
	name  string
	url   string // of the receiver
	emit  int    // events to emit, 0 for none
	phase Phase
	idle  bool // print "idle" once the queue has no work left
	env   []string
}

type childProc struct {
	name  string
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}
	mu    sync.Mutex
	err   error
	// confirmed holds the events whose emit the child reported committed.
	confirmed map[int]bool
	notify    chan struct{} // closed and replaced on every confirmed emit
}

// changed returns a channel closed at the next confirmed emit.
func (p *childProc) changed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.notify
}

func startChild(t *testing.T, s childSpec, o CrashOptions) *childProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		envChild+"="+s.name,
		envReceiver+"="+s.url,
		envEmit+"="+strconv.Itoa(s.emit),
		envEmitters+"="+strconv.Itoa(o.Emitters),
		envWorkers+"="+strconv.Itoa(o.Workers),
		envTimeout+"="+o.DeliveryTimeout.String(),
		envDelay+"=3ms",
		envPhase+"="+string(s.phase),
	)
	if s.idle {
		cmd.Env = append(cmd.Env, envIdle+"=1")
	}
	cmd.Env = append(cmd.Env, s.env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("clustertest: start child %s: %v", s.name, err)
	}
	p := &childProc{name: s.name, cmd: cmd, lines: make(chan string, 16), done: make(chan struct{}), confirmed: map[int]bool{}, notify: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l := sc.Text()
			if n, ok := strings.CutPrefix(l, "emitted "); ok {
				if i, err := strconv.Atoi(n); err == nil {
					p.mu.Lock()
					p.confirmed[i] = true
					close(p.notify)
					p.notify = make(chan struct{})
					p.mu.Unlock()
					continue
				}
			}
			select {
			case p.lines <- l:
			default:
			}
		}
		// Every line the child wrote before it died has been read.
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	p.waitLine(t, "ready")
	return p
}

func (p *childProc) confirmedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.confirmed)
}

func (p *childProc) isConfirmed(n int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.confirmed[n]
}

func (p *childProc) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *childProc) waitLine(t *testing.T, want string) {
	t.Helper()
	deadline := time.NewTimer(2 * time.Minute)
	defer deadline.Stop()
	for {
		select {
		case l := <-p.lines:
			if l == want {
				return
			}
		case <-p.done:
			// A line read just before the exit may still be waiting.
			for len(p.lines) > 0 {
				if <-p.lines == want {
					return
				}
			}
			t.Fatalf("clustertest: child %s exited before printing %q: %v", p.name, want, p.exitErr())
		case <-deadline.C:
			t.Fatalf("clustertest: child %s did not print %q", p.name, want)
		}
	}
}

// kill kills the child with SIGKILL, and returns once it is dead and every
// line it printed has been read.
func (p *childProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("clustertest: kill child %s: %v", p.name, err)
	}
	<-p.done
}

func (p *childProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("clustertest: stop child %s: %v", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("clustertest: child %s did not stop", p.name)
	}
	if err := p.exitErr(); err != nil {
		t.Fatalf("clustertest: child %s ended badly: %v", p.name, err)
	}
}
