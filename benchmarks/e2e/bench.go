package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outhook/outhook"
)

// options are the program's flags.
type options struct {
	Duration        time.Duration // throughput phases of each main row, in all
	Rounds          int           // the main rows' throughput phases are interleaved in this many rounds
	Concurrency     int           // senders / queue handlers
	Payload         int           // payload bytes
	Subs            int           // subscriptions per event (outhook rows)
	Backends        []string      // backends to run: memory, sqlite, postgres, nats, river-raw
	PostgresURL     string        // -postgres, or $OUTHOOK_POSTGRES_URL
	NATSURL         string        // -nats, or $OUTHOOK_NATS_URL
	SQLite          bool          // run outhook-sqlite when selected
	SQLiteDir       string        // where the SQLite files go ("" = os.TempDir)
	NATSStore       string        // the outhook-nats row's store: auto, postgres or sqlite
	Emitters        int           // goroutines emitting at once in the durable rows
	DurableBacklog  int           // most events a durable row holds emitted and undelivered
	DurableWorkers  int           // MaxWorkers of the durable queues and river-raw (0: their defaults)
	PGMaxConns      int           // pool size of each Postgres system (0: the URL's, or pgx's)
	Scaling         bool          // run the scaling rows
	ScalingDuration time.Duration // throughput phases of each scaling row, in all
	ScalingRounds   int           // the scaling rows' phases are interleaved in this many rounds
	ScalingSubs     []int
	ScalingPayloads []int
	Pending         int           // deliveries pending against a receiver that is down
	LatencyRate     int           // events/s offered in the latency phase
	DurableLatency  int           // events/s offered in the durable rows' latency phase
	LatencyDuration time.Duration // length of the latency phase
	QueueCapacity   int           // memqueue capacity, and the hand-rolled sender's channel
	DrainTimeout    time.Duration // bound on waiting for the deliveries of a phase
	CPUProfile      string        // CPU profile of a main row's throughput phase
	CPUProfileRow   string        // the row profiled
	MemProfile      string        // heap profile with the pending deliveries held
	JSONOnly        bool
}

func defaultOptions() options {
	return options{
		Duration:        10 * time.Second,
		Rounds:          5,
		Concurrency:     32,
		Payload:         300,
		Subs:            1,
		Backends:        slices.Clone(allBackends),
		SQLite:          true,
		NATSStore:       "auto",
		Emitters:        32,
		DurableBacklog:  2000,
		PGMaxConns:      40,
		Scaling:         true,
		ScalingDuration: 2 * time.Second,
		ScalingRounds:   2,
		ScalingSubs:     []int{1, 10, 100},
		ScalingPayloads: []int{300, 10 << 10, 100 << 10},
		Pending:         100_000,
		LatencyRate:     1000,
		DurableLatency:  100,
		LatencyDuration: 3 * time.Second,
		QueueCapacity:   10_000,
		DrainTimeout:    2 * time.Minute,
		CPUProfileRow:   "outhook-memory",
	}
}

// Row is one line of the main table.
type Row struct {
	Name           string  `json:"name"`
	Emitted        int64   `json:"emitted"`
	Deliveries     int64   `json:"deliveries"`
	DeliveriesPerS float64 `json:"deliveries_per_s"`
	// EmitsPerS is the rate of the emitting alone: events emitted over the
	// time the emitters took (the deliveries may go on after it).
	EmitsPerS         float64 `json:"emits_per_s"`
	RatioToCeiling    float64 `json:"ratio_to_ceiling"`
	P50ms             float64 `json:"p50_ms"`
	P99ms             float64 `json:"p99_ms"`
	AllocsPerDelivery float64 `json:"allocs_per_delivery"`
	CPUsPer1000       float64 `json:"cpu_s_per_1000"`
	PeakHeapMB        float64 `json:"peak_heap_mb"`
	NewConns          int64   `json:"new_conns"`
	LatencyEvents     int64   `json:"latency_events"`
	// LatencyRate is the load the latency phase was to offer, events/s:
	// -latency-rate, or -durable-latency-rate for the durable rows.
	LatencyRate int `json:"latency_rate"`
	// Rounds is the number of throughput phases, interleaved with the other
	// rows'; RatioMin and RatioMax are the lowest and highest ratio to the
	// ceiling within one round.
	Rounds   int     `json:"rounds"`
	RatioMin float64 `json:"ratio_min"`
	RatioMax float64 `json:"ratio_max"`
	// RatioToRiverRaw is a durable row's rate over river-raw's (river-raw's
	// own is 1), when river-raw ran; RatioToRiverRawMin and Max are the
	// lowest and highest within one round.
	RatioToRiverRaw    float64 `json:"ratio_to_river_raw,omitempty"`
	RatioToRiverRawMin float64 `json:"ratio_to_river_raw_min,omitempty"`
	RatioToRiverRawMax float64 `json:"ratio_to_river_raw_max,omitempty"`
	// Emitters is the number of goroutines of a durable row that emitted
	// at once (one EmitHook call each) in its throughput and latency
	// phases.
	Emitters int `json:"emitters,omitempty"`
	// LatencyOfferedPerS is the load the latency phase offered: the
	// configured rate, unless the emitters could not keep up with it (see
	// Note).
	LatencyOfferedPerS float64 `json:"latency_offered_per_s"`
	// P50FirstHalfMs and P50SecondHalfMs are the median latencies of the
	// events emitted in the first and in the second half of the latency
	// phase: a second much higher than the first means the deliveries fell
	// behind the offered load and a queue grew (see Note).
	P50FirstHalfMs  float64 `json:"p50_first_half_ms"`
	P50SecondHalfMs float64 `json:"p50_second_half_ms"`
	// Note says what the row's figures need to be read with.
	Note string `json:"note,omitempty"`
}

// ScalingRow is one line of the scaling table.
type ScalingRow struct {
	Name              string  `json:"name"`
	Kind              string  `json:"kind"` // "subs", "payload" or "pending"
	System            string  `json:"system"`
	Subs              int     `json:"subs"`
	PayloadBytes      int     `json:"payload_bytes"`
	Emitted           int64   `json:"emitted,omitempty"`
	Deliveries        int64   `json:"deliveries,omitempty"`
	DeliveriesPerS    float64 `json:"deliveries_per_s,omitempty"`
	RatioToCeiling    float64 `json:"ratio_to_ceiling,omitempty"`
	AllocsPerDelivery float64 `json:"allocs_per_delivery,omitempty"`
	CPUsPer1000       float64 `json:"cpu_s_per_1000,omitempty"`
	PeakHeapMB        float64 `json:"peak_heap_mb,omitempty"`
	NewConns          int64   `json:"new_conns,omitempty"`
	RatioMin          float64 `json:"ratio_min,omitempty"`
	RatioMax          float64 `json:"ratio_max,omitempty"`
	// Pending deliveries against a receiver that is down.
	Pending                int     `json:"pending,omitempty"`
	HeapInuseMB            float64 `json:"heap_inuse_mb,omitempty"`
	HeapPerPendingBytes    float64 `json:"heap_per_pending_bytes,omitempty"`
	HeapBeyondPayloadBytes float64 `json:"heap_beyond_payload_bytes,omitempty"`
	LiveHeapPerPending     float64 `json:"live_heap_per_pending_bytes,omitempty"`
	SecondsToPend          float64 `json:"seconds_to_pend,omitempty"`
}

// Target is one of the targets, checked against this run.
type Target struct {
	Target string  `json:"target"`
	Value  float64 `json:"value"`
	Limit  float64 `json:"limit"`
	Met    bool    `json:"met"`
}

// Report is the program's result, printed as the last line of output.
type Report struct {
	Rows       []Row        `json:"rows"`
	Scaling    []ScalingRow `json:"scaling"`
	Targets    []Target     `json:"targets"`
	Skipped    []Skip       `json:"skipped,omitempty"`
	Go         string       `json:"go"`
	CPUs       int          `json:"cpus"`
	GOMAXPROCS int          `json:"gomaxprocs"`
	Config     struct {
		DurationS       float64 `json:"duration_s"`
		Rounds          int     `json:"rounds"`
		Concurrency     int     `json:"concurrency"`
		PayloadBytes    int     `json:"payload_bytes"`
		Subs            int     `json:"subs"`
		LatencyRate     int     `json:"latency_rate"`
		DurableLatency  int     `json:"durable_latency_rate"`
		LatencyDuration float64 `json:"latency_duration_s"`
		ScalingDuration float64 `json:"scaling_duration_s"`
		ScalingRounds   int     `json:"scaling_rounds"`
		Emitters        int     `json:"emitters"`
		DurableBacklog  int     `json:"durable_backlog"`
		DurableWorkers  int     `json:"durable_workers"`
		PGMaxConns      int     `json:"pg_max_conns"`
	} `json:"config"`
}

// CountError is a phase whose receiver did not get exactly emitted ×
// subscriptions deliveries.
type CountError struct {
	Row, Phase         string
	Emitted            int64
	Subs               int
	ExpectedDeliveries int64 // Emitted × Subs
	Received           int64
	Unreadable         int64  // requests the receiver could not read
	EmitErr, DrainErr  error  // why emitting or waiting stopped, if it did
	Diagnosis          string // the system's own account
}

func (e *CountError) Error() string {
	s := fmt.Sprintf("%s, %s phase: received %d deliveries, want %d (%d emitted × %d subscriptions)",
		e.Row, e.Phase, e.Received, e.ExpectedDeliveries, e.Emitted, e.Subs)
	if e.Unreadable > 0 {
		s += fmt.Sprintf("; %d requests unreadable", e.Unreadable)
	}
	if e.EmitErr != nil {
		s += fmt.Sprintf("; emit: %v", e.EmitErr)
	}
	if e.DrainErr != nil {
		s += fmt.Sprintf("; drain: %v", e.DrainErr)
	}
	if e.Diagnosis != "" {
		s += "; " + e.Diagnosis
	}
	return s
}

// bench runs one program run.
type bench struct {
	opts  options
	clk   clock
	rcv   *receiver
	log   io.Writer // progress
	ctx   context.Context
	shape payloadShape
	svc   *services // of the durable rows; nil when none runs
}

// run runs every row and returns the report. Progress goes to log.
func run(ctx context.Context, opts options, log io.Writer) (*Report, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	clk := newClock()
	rcv, err := startReceiver(clk)
	if err != nil {
		return nil, err
	}
	b := &bench{opts: opts, clk: clk, rcv: rcv, log: log, ctx: ctx, shape: newPayloadShape(opts.Payload)}
	rep, err := b.all()
	if cerr := rcv.close(); err == nil && cerr != nil {
		err = fmt.Errorf("stop receiver: %w", cerr)
	}
	return rep, err
}

func (o *options) check() error {
	switch {
	case o.Duration <= 0:
		return errors.New("-duration must be positive")
	case o.Rounds <= 0 || o.Duration/time.Duration(max(o.Rounds, 1)) <= 0:
		return errors.New("-rounds must be positive and at most -duration in nanoseconds")
	case o.Concurrency <= 0:
		return errors.New("-concurrency must be positive")
	case o.Payload <= 0:
		return errors.New("-payload must be positive")
	case o.Subs <= 0:
		return errors.New("-subs must be positive")
	case o.LatencyRate <= 0 || o.DurableLatency <= 0 || o.LatencyDuration <= 0:
		return errors.New("-latency-rate, -durable-latency-rate and -latency-duration must be positive")
	case o.QueueCapacity <= 0:
		return errors.New("-queue-capacity must be positive")
	case o.Scaling && (o.ScalingDuration <= 0 || o.ScalingRounds <= 0 || o.ScalingDuration/time.Duration(max(o.ScalingRounds, 1)) <= 0):
		return errors.New("-scaling-duration and -scaling-rounds must be positive")
	case o.Pending < 0:
		return errors.New("-pending must not be negative")
	case o.CPUProfile != "" && !slices.Contains(profileRows, o.CPUProfileRow):
		return fmt.Errorf("-cpuprofile-row %q: want one of %s", o.CPUProfileRow, strings.Join(profileRows, ", "))
	case o.Emitters <= 0:
		return errors.New("-emitters must be positive")
	case o.DurableBacklog < 0 || o.DurableWorkers < 0 || o.PGMaxConns < 0:
		return errors.New("-durable-backlog, -durable-workers and -pg-max-conns must not be negative")
	case !slices.Contains([]string{"auto", bePostgres, beSQLite}, o.NATSStore):
		return fmt.Errorf("-nats-store %q: want auto, postgres or sqlite", o.NATSStore)
	}
	return nil
}

// profileRows are the rows -cpuprofile-row may name.
var profileRows = []string{"ceiling", "handrolled", "outhook-memory", "river-raw", "outhook-postgres", "outhook-sqlite", "outhook-nats"}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.log, format+"\n", args...)
}

func (b *bench) all() (*Report, error) {
	o := b.opts
	rep := &Report{Rows: []Row{}, Scaling: []ScalingRow{}, Go: runtime.Version(), CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	rep.Config.DurationS = o.Duration.Seconds()
	rep.Config.Rounds = o.Rounds
	rep.Config.Concurrency = o.Concurrency
	rep.Config.PayloadBytes = b.shape.size
	rep.Config.Subs = o.Subs
	rep.Config.LatencyRate = o.LatencyRate
	rep.Config.DurableLatency = o.DurableLatency
	rep.Config.LatencyDuration = o.LatencyDuration.Seconds()
	rep.Config.ScalingDuration = o.ScalingDuration.Seconds()
	rep.Config.ScalingRounds = o.ScalingRounds

	backends, skipped := plan(o)
	rep.Skipped = skipped
	rep.Config.Emitters = o.Emitters
	rep.Config.DurableBacklog = o.DurableBacklog
	rep.Config.DurableWorkers = o.DurableWorkers
	rep.Config.PGMaxConns = o.PGMaxConns
	memory := slices.Contains(backends, beMemory)

	// Main rows.
	specs := []rowSpec{
		{name: "ceiling", subs: 1, mk: func() (system, error) {
			return newCeiling(b.rcv.url, b.shape, o.Concurrency, o.QueueCapacity), nil
		}},
		{name: "handrolled", subs: 1, mk: func() (system, error) {
			return newHandrolled(b.rcv.url, b.shape, o.Concurrency, o.QueueCapacity)
		}},
	}
	if memory {
		specs = append(specs, rowSpec{name: "outhook-memory", subs: o.Subs, mk: func() (system, error) {
			return newOuthook(b.ctx, outhookConfig{url: b.rcv.url, shape: b.shape, subs: o.Subs,
				concurrency: o.Concurrency, capacity: o.QueueCapacity})
		}})
	}
	durable := slices.DeleteFunc(slices.Clone(backends), func(be string) bool { return be == beMemory })
	if len(durable) > 0 {
		svc, err := setupServices(b.ctx, o, durable, b.log)
		if err != nil {
			return nil, err
		}
		b.svc = svc
		defer svc.teardown()
	}
	// river-raw first, then the outhook rows on the durable backends.
	slices.SortStableFunc(durable, func(x, y string) int {
		rank := func(be string) int { return slices.Index([]string{beRiverRaw, bePostgres, beSQLite, beNATS}, be) }
		return rank(x) - rank(y)
	})
	for _, be := range durable {
		specs = append(specs, b.durableSpec(be))
	}
	rows, err := b.mainRows(specs)
	if err != nil {
		return nil, err
	}
	rep.Rows = rows

	if o.Scaling && memory {
		sc, err := b.scaling()
		if err != nil {
			return nil, err
		}
		rep.Scaling = sc
	}
	rep.Targets = targets(rep)
	return rep, nil
}

// phase is what the receiver saw of one phase and what it cost.
type phase struct {
	emitted, received int64
	span              time.Duration
	emitSpan          time.Duration // from the first emit to the return of the last
	use               usage
	conns             int64
}

func (p phase) perSecond() float64 {
	if p.span <= 0 {
		return 0
	}
	return float64(p.received) / p.span.Seconds()
}

// throughput emits as fast as sys takes events for d (or lets a blaster
// post back to back), waits until every event is delivered, and checks the
// count. The rate counts the deliveries over the whole span, from the first
// emit to the last delivery received.
func (b *bench) throughput(sp *rowSpec, sys system, d time.Duration, cpuProfile string) (phase, error) {
	t := b.resetTallies(sys, false)
	m := startMeter()
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return phase{}, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return phase{}, err
		}
	}
	start := b.clk.now()
	var emitted int64
	var emitErr error
	// Emitting waits when the system is full: bounded, in case it never
	// drains.
	ectx, ecancel := context.WithTimeout(b.ctx, d+b.opts.DrainTimeout)
	defer ecancel()
	if bl, ok := sys.(blaster); ok {
		emitted, emitErr = bl.blast(ectx, d, b.clk)
	} else {
		emitted, emitErr = b.emitFor(ectx, sp, sys, t, d)
	}
	emitSpan := time.Duration(b.clk.now() - start)
	dctx, cancel := context.WithTimeout(b.ctx, b.opts.DrainTimeout)
	drainErr := sys.drain(dctx)
	cancel()
	if cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	use := m.stop()
	p := phase{emitted: emitted, received: t.count.Load(), span: time.Duration(t.last.Load() - start), emitSpan: emitSpan,
		use: use, conns: b.rcv.conns.Load()}
	if err := b.checkCount(sp.name, "throughput", sys, p, sp.subs, emitErr, drainErr); err != nil {
		return p, err
	}
	return p, nil
}

// emitFor emits events into sys for d from sp.emitters goroutines, one
// event per call, waiting while sp.backlog deliveries are outstanding, and
// returns how many were emitted and why emitting stopped early, if it did.
func (b *bench) emitFor(ctx context.Context, sp *rowSpec, sys system, t *tally, d time.Duration) (int64, error) {
	deadline := time.Now().Add(d)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var seq, emitted atomic.Int64
	var once sync.Once
	var firstErr error
	var g *gate // nil: no backlog bound
	if sp.backlog > 0 {
		g = newGate(ctx, deadline, func() bool { return emitted.Load()*int64(sp.subs)-t.count.Load() < int64(sp.backlog) })
		defer g.stop()
	}
	work := func() {
		for time.Now().Before(deadline) && g.wait() {
			if err := sys.emit(ctx, event{seq: seq.Add(1) - 1, emitNs: b.clk.now()}); err != nil {
				once.Do(func() { firstErr = err; cancel() })
				return
			}
			emitted.Add(1)
		}
	}
	runEmitters(sp.emitters, work)
	return emitted.Load(), firstErr
}

// gate holds emitters while a condition is false (the backlog is full),
// looking at it again every millisecond from one goroutine rather than
// from every waiting emitter.
type gate struct {
	open     func() bool
	deadline time.Time
	mu       sync.Mutex
	cond     *sync.Cond
	done     chan struct{}
	ended    bool // the deadline passed or ctx ended
	wg       sync.WaitGroup
}

func newGate(ctx context.Context, deadline time.Time, open func() bool) *gate {
	g := &gate{open: open, deadline: deadline, done: make(chan struct{})}
	g.cond = sync.NewCond(&g.mu)
	g.wg.Go(func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
			case <-ctx.Done():
			case <-g.done:
			}
			g.mu.Lock()
			g.ended = ctx.Err() != nil || !time.Now().Before(deadline)
			select {
			case <-g.done:
				g.ended = true
			default:
			}
			ended := g.ended
			g.cond.Broadcast()
			g.mu.Unlock()
			if ended {
				return
			}
		}
	})
	return g
}

// wait returns true once the condition holds, false when emitting must
// stop. A nil gate is always open.
func (g *gate) wait() bool {
	if g == nil || g.open() {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for !g.ended && !g.open() {
		g.cond.Wait()
	}
	return !g.ended
}

func (g *gate) stop() {
	close(g.done)
	g.wg.Wait()
}

// latency offers events at a fixed rate, each stamped with its emit time,
// and returns the emit→received latencies of their deliveries and the load
// actually offered: sp.emitters goroutines emit, one event per call, so a
// backend whose EmitHook waits for a commit can be offered the rate too;
// when they cannot keep up, the offered load is lower than the rate.
func (b *bench) latency(sp *rowSpec, sys system) (res latencyResult, err error) {
	// Warm up: one event through the whole pipeline first, so that the
	// phase measures a system in its steady state, not a durable queue's
	// start (its listeners connecting, its producers' first fetches).
	wctx, wcancel := context.WithTimeout(b.ctx, b.opts.DrainTimeout)
	err = sys.emit(wctx, event{seq: 0, emitNs: b.clk.now()})
	if err == nil {
		err = sys.drain(wctx)
	}
	wcancel()
	if err != nil {
		return res, fmt.Errorf("%s, latency phase: warm-up: %w", sp.name, err)
	}
	runtime.GC()
	t := b.resetTallies(sys, true)
	rate := b.latencyRate(sp)
	n := int64(max(1, int(float64(rate)*b.opts.LatencyDuration.Seconds())))
	interval := time.Second / time.Duration(rate)
	ectx, ecancel := context.WithTimeout(b.ctx, b.opts.LatencyDuration+b.opts.DrainTimeout)
	defer ecancel()
	var next, emitted, lastAt atomic.Int64
	var once sync.Once
	var emitErr error
	start := time.Now()
	work := func() {
		for {
			i := next.Add(1) - 1
			if i >= n {
				return
			}
			// Paced by a schedule, not by sleeping an interval after each
			// emit: a late event is sent at once and the offered load
			// stays at the rate.
			if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
				time.Sleep(wait)
			}
			if ectx.Err() != nil {
				return
			}
			if i == n-1 {
				lastAt.Store(int64(time.Since(start)))
			}
			if err := sys.emit(ectx, event{seq: i, emitNs: b.clk.now()}); err != nil {
				once.Do(func() { emitErr = err; ecancel() })
				return
			}
			emitted.Add(1)
		}
	}
	runEmitters(sp.emitters, work)
	res.events = emitted.Load()
	// The schedule's span is (n-1) intervals; offered over the span the
	// emits took (at least that), plus one interval for the last event.
	res.offered = float64(n) / (max(time.Duration(lastAt.Load()), time.Duration(n-1)*interval) + interval).Seconds()
	dctx, cancel := context.WithTimeout(b.ctx, b.opts.DrainTimeout)
	drainErr := sys.drain(dctx)
	cancel()
	p := phase{emitted: res.events, received: t.count.Load()}
	if err := b.checkCount(sp.name, "latency", sys, p, sp.subs, emitErr, drainErr); err != nil {
		return res, err
	}

	lat := t.latencies()
	if int64(len(lat)) != p.received {
		return res, fmt.Errorf("%s, latency phase: %d latencies for %d deliveries", sp.name, len(lat), p.received)
	}
	res.p50, res.p99 = percentiles(lat)
	res.first, res.second = t.halves()
	return res, nil
}

// latencyResult is what a latency phase measured.
type latencyResult struct {
	p50, p99      time.Duration
	events        int64
	offered       float64       // events/s
	first, second time.Duration // median latency of the first and second half of the events
}

// latencyRate is the load a row's latency phase offers, events/s.
func (b *bench) latencyRate(sp *rowSpec) int {
	if sp.durable {
		return b.opts.DurableLatency
	}
	return b.opts.LatencyRate
}

func (b *bench) checkCount(row, name string, sys system, p phase, subs int, emitErr, drainErr error) error {
	want := p.emitted * int64(subs)
	bad := b.rcv.bad.Load()
	if p.received == want && emitErr == nil && drainErr == nil && bad == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(b.ctx), 5*time.Second)
	defer cancel()
	return &CountError{Row: row, Phase: name, Emitted: p.emitted, Subs: subs, Received: p.received,
		ExpectedDeliveries: want, Unreadable: bad, Diagnosis: sys.diagnose(ctx), EmitErr: emitErr, DrainErr: drainErr}
}

// rowSpec is a main row to measure.
type rowSpec struct {
	name string
	subs int
	mk   func() (system, error)
	ph   []phase
	// emitters is how many goroutines emit at once, one event per call (0
	// or 1: one); backlog, when positive, makes them wait while that many
	// deliveries are emitted and not yet received.
	emitters, backlog int
	durable           bool // a durable row: compared with river-raw
}

// durableSpec returns the row of a durable backend.
func (b *bench) durableSpec(be string) rowSpec {
	o := b.opts
	sp := rowSpec{name: rowName(be, natsStore(o)), subs: o.Subs, emitters: o.Emitters, backlog: o.DurableBacklog * o.Subs, durable: true}
	if be == beRiverRaw {
		sp.subs = 1
		sp.backlog = o.DurableBacklog
		sp.mk = func() (system, error) { return b.newRiverRaw(b.ctx, o.DurableBacklog) }
		return sp
	}
	mkBackend := map[string]func(context.Context, *slog.Logger) (backend, error){
		bePostgres: b.postgresBackend,
		beSQLite:   b.sqliteBackend,
		beNATS:     b.natsBackend,
	}[be]
	sp.mk = func() (system, error) {
		return newOuthook(b.ctx, outhookConfig{url: b.rcv.url, shape: b.shape, subs: o.Subs,
			concurrency: o.Concurrency, capacity: o.QueueCapacity, backend: mkBackend})
	}
	return sp
}

// tallyOf returns where a system's deliveries are counted: at the
// receiver, or by the system itself.
func (b *bench) tallyOf(sys system) *tally {
	if t, ok := sys.(tallier); ok {
		return t.counts()
	}
	return &b.rcv.tally
}

// resetTallies starts a phase on the receiver and on sys's own tally.
func (b *bench) resetTallies(sys system, recordLatency bool) *tally {
	b.rcv.reset(recordLatency)
	t := b.tallyOf(sys)
	t.reset(recordLatency)
	return t
}

// with runs fn on a new system of the row and closes it: every phase has a
// system of its own, so that no row holds memory or goroutines while
// another is measured.
func (b *bench) with(sp *rowSpec, fn func(system) error) (err error) {
	sys, err := sp.mk()
	if err != nil {
		return fmt.Errorf("%s: %w", sp.name, err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(b.ctx), 10*time.Second)
		defer cancel()
		if cerr := sys.close(cctx); err == nil && cerr != nil {
			err = fmt.Errorf("%s: close: %w", sp.name, cerr)
		}
	}()
	return fn(sys)
}

// mainRows measures the main rows. Their throughput phases are interleaved
// in rounds, the order rotating from round to round, so that the machine's
// ups and downs fall on every row alike; then each row's latency is
// measured at the fixed rate. The first row is the ceiling.
func (b *bench) mainRows(specs []rowSpec) ([]Row, error) {
	o := b.opts
	b.progress("main rows: %d round(s) of %s per row, concurrency %d, %s payload, %d subscription(s) per outhook event",
		o.Rounds, o.Duration/time.Duration(o.Rounds), o.Concurrency, sizeLabel(b.shape.size), o.Subs)
	if err := b.interleave(specs, o.Rounds, o.Duration, o.CPUProfileRow); err != nil {
		return nil, err
	}
	ceil := sumPhases(specs[0].ph).perSecond()
	raw, rawPh := 0.0, []phase(nil)
	for _, sp := range specs {
		if sp.name == beRiverRaw {
			raw, rawPh = round(sumPhases(sp.ph).perSecond(), 0), sp.ph
		}
	}
	var rows []Row
	for i := range specs {
		sp := &specs[i]
		row := rowOf(sp.name, sumPhases(sp.ph))
		row.Rounds = len(sp.ph)
		row.RatioToCeiling = round(row.DeliveriesPerS/round(ceil, 0), 3)
		row.RatioMin, row.RatioMax = roundRatios(sp.ph, specs[0].ph)
		if sp.durable && raw > 0 {
			row.RatioToRiverRaw = round(row.DeliveriesPerS/raw, 3)
			row.RatioToRiverRawMin, row.RatioToRiverRawMax = roundRatios(sp.ph, rawPh)
		}
		if sp.durable {
			row.Emitters = max(sp.emitters, 1)
		}
		rate := b.latencyRate(sp)
		row.LatencyRate = rate
		b.progress("%s: latency at %d events/s for %s …", sp.name, rate, o.LatencyDuration)
		err := b.with(sp, func(sys system) error {
			res, err := b.latency(sp, sys)
			row.P50ms, row.P99ms, row.LatencyEvents = ms(res.p50), ms(res.p99), res.events
			row.LatencyOfferedPerS = round(res.offered, 0)
			row.P50FirstHalfMs, row.P50SecondHalfMs = ms(res.first), ms(res.second)
			return err
		})
		if err != nil {
			return nil, err
		}
		var notes []string
		if row.LatencyOfferedPerS < 0.98*float64(rate) {
			notes = append(notes, fmt.Sprintf("its %d emitter(s) could offer only %.0f events/s", max(sp.emitters, 1), row.LatencyOfferedPerS))
		}
		// A median that more than doubles, and by more than 50 ms, from the
		// first half of the events to the second: a queue grew (or the
		// machine stalled; the flag cannot tell).
		if first, second := row.P50FirstHalfMs, row.P50SecondHalfMs; second > 2*first && second-first > 50 {
			notes = append(notes, fmt.Sprintf("the median latency rose from %.0f ms (first half of the events) to %.0f ms (second half): the deliveries may have fallen behind the offered load",
				first, second))
		}
		row.Note = strings.Join(notes, "; ")
		rows = append(rows, row)
	}
	return rows, nil
}

// interleave runs the throughput phases of specs in rounds, d/rounds per
// row and round, rotating the order from round to round, and appends each
// phase to its spec. With -cpuprofile, the first-round phase of the row
// named profileRow is profiled.
func (b *bench) interleave(specs []rowSpec, rounds int, d time.Duration, profileRow string) error {
	o := b.opts
	d /= time.Duration(rounds)
	for r := range rounds {
		for k := range specs {
			sp := &specs[(r+k)%len(specs)]
			profile := ""
			if r == 0 && rowKey(sp.name) == profileRow {
				profile = o.CPUProfile
			}
			err := b.with(sp, func(sys system) error {
				p, err := b.throughput(sp, sys, d, profile)
				if err != nil {
					return err
				}
				sp.ph = append(sp.ph, p)
				b.progress("  round %d/%d  %-30s %8d deliveries in %5.2fs: %6.0f/s", r+1, rounds, sp.name, p.received, p.span.Seconds(), p.perSecond())
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// sumPhases adds up the rounds of a row: deliveries, spans and costs add;
// the peak heap is the median of the rounds' peaks, since one round slowed
// down by the machine can overshoot the GC's heap goal.
func sumPhases(ps []phase) phase {
	var t phase
	peaks := make([]uint64, 0, len(ps))
	for _, p := range ps {
		t.emitted += p.emitted
		t.received += p.received
		t.span += p.span
		t.emitSpan += p.emitSpan
		t.conns += p.conns
		t.use.cpu += p.use.cpu
		t.use.mallocs += p.use.mallocs
		peaks = append(peaks, p.use.peakHeap)
	}
	if len(peaks) > 0 {
		slices.Sort(peaks)
		t.use.peakHeap = peaks[len(peaks)/2]
	}
	return t
}

// roundRatios returns the lowest and highest ratio of a row's rate to the
// ceiling's (or another row's) in the same round.
func roundRatios(ps, ceil []phase) (lo, hi float64) {
	for i, p := range ps {
		r := p.perSecond() / ceil[i].perSecond()
		if i == 0 || r < lo {
			lo = r
		}
		if i == 0 || r > hi {
			hi = r
		}
	}
	return round(lo, 3), round(hi, 3)
}

func rowOf(name string, p phase) Row {
	r := Row{Name: name, Emitted: p.emitted, Deliveries: p.received, DeliveriesPerS: round(p.perSecond(), 0), NewConns: p.conns}
	if p.emitSpan > 0 {
		r.EmitsPerS = round(float64(p.emitted)/p.emitSpan.Seconds(), 0)
	}
	r.AllocsPerDelivery, r.CPUsPer1000, r.PeakHeapMB = perDelivery(p)
	return r
}

func perDelivery(p phase) (allocs, cpuPer1000, peakMB float64) {
	if p.received == 0 {
		return 0, 0, 0
	}
	n := float64(p.received)
	return round(float64(p.use.mallocs)/n, 1), round(p.use.cpu.Seconds()/n*1000, 4), round(float64(p.use.peakHeap)/(1<<20), 1)
}

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }

// scaling runs the shorter rows: subscriptions per event, payload sizes, and
// deliveries pending against a receiver that is down.
func (b *bench) scaling() ([]ScalingRow, error) {
	o := b.opts
	var out []ScalingRow
	newMem := func(shape payloadShape, subs int) func() (system, error) {
		return func() (system, error) {
			return newOuthook(b.ctx, outhookConfig{url: b.rcv.url, shape: shape, subs: subs, concurrency: o.Concurrency, capacity: o.QueueCapacity})
		}
	}
	newCeil := func(shape payloadShape) func() (system, error) {
		return func() (system, error) { return newCeiling(b.rcv.url, shape, o.Concurrency, o.QueueCapacity), nil }
	}
	if len(o.ScalingSubs) > 0 {
		// Subscriptions per event, against a ceiling with the same payload
		// in the same rounds.
		specs := []rowSpec{{name: "ceiling (subs rows)", subs: 1, mk: newCeil(b.shape)}}
		for _, subs := range o.ScalingSubs {
			specs = append(specs, rowSpec{name: fmt.Sprintf("outhook-memory subs=%d", subs), subs: subs, mk: newMem(b.shape, subs)})
		}
		rows, err := b.scalingGroup("subs", b.shape, specs)
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	for _, size := range o.ScalingPayloads {
		shape := newPayloadShape(size)
		rows, err := b.scalingGroup("payload", shape, []rowSpec{
			{name: "ceiling payload=" + sizeLabel(shape.size), subs: 1, mk: newCeil(shape)},
			{name: "outhook-memory payload=" + sizeLabel(shape.size), subs: 1, mk: newMem(shape, 1)},
		})
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	if o.Pending > 0 {
		r, err := b.pending()
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// scalingGroup measures rows side by side in -scaling-rounds interleaved
// rounds; the first is the ceiling the others' ratios are to.
func (b *bench) scalingGroup(kind string, shape payloadShape, specs []rowSpec) ([]ScalingRow, error) {
	o := b.opts
	b.progress("scaling (%s): %d round(s) of %s per row, %s payload", kind, o.ScalingRounds, o.ScalingDuration/time.Duration(o.ScalingRounds), sizeLabel(shape.size))
	if err := b.interleave(specs, o.ScalingRounds, o.ScalingDuration, ""); err != nil {
		return nil, err
	}
	ceil := round(sumPhases(specs[0].ph).perSecond(), 0)
	var out []ScalingRow
	for i, sp := range specs {
		p := sumPhases(sp.ph)
		system := "outhook-memory"
		if i == 0 {
			system = "ceiling"
		}
		r := ScalingRow{Name: sp.name, Kind: kind, System: system, Subs: sp.subs, PayloadBytes: shape.size,
			Emitted: p.emitted, Deliveries: p.received, DeliveriesPerS: round(p.perSecond(), 0), NewConns: p.conns}
		r.RatioToCeiling = round(r.DeliveriesPerS/ceil, 3)
		r.RatioMin, r.RatioMax = roundRatios(sp.ph, specs[0].ph)
		r.AllocsPerDelivery, r.CPUsPer1000, r.PeakHeapMB = perDelivery(p)
		out = append(out, r)
	}
	return out, nil
}

// pending emits events to a subscription whose receiver is down: a
// loopback port nobody listens on, so every first attempt fails to connect
// and its retry is scheduled an hour later. Once every delivery waits for
// its retry, the heap they hold is divided among them.
func (b *bench) pending() (ScalingRow, error) {
	o := b.opts
	name := fmt.Sprintf("outhook-memory pending=%d", o.Pending)
	url, err := deadURL()
	if err != nil {
		return ScalingRow{}, err
	}
	s, err := newOuthook(b.ctx, outhookConfig{url: url, shape: b.shape, subs: 1, concurrency: o.Concurrency,
		capacity: o.QueueCapacity, retryFirst: time.Hour})
	if err != nil {
		return ScalingRow{}, fmt.Errorf("%s: %w", name, err)
	}
	b.progress("%s: %d events to a receiver that is down (connection refused; retry in 1 h) …", name, o.Pending)
	r, err := b.measurePending(name, s)
	// Stopping abandons the delayed retries, as expected: the queue's
	// warning about them goes to the discarded log.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(b.ctx), 10*time.Second)
	defer cancel()
	if cerr := s.close(cctx); err == nil && cerr != nil {
		err = fmt.Errorf("%s: close: %w", name, cerr)
	}
	return r, err
}

func (b *bench) measurePending(name string, s *outhookSys) (ScalingRow, error) {
	o := b.opts
	b.rcv.reset(false)
	inuse0, alloc0 := heapInuseAfterGC()
	start := time.Now()
	ectx, ecancel := context.WithTimeout(b.ctx, o.DrainTimeout)
	defer ecancel()
	for i := range int64(o.Pending) {
		if err := s.emit(ectx, event{seq: i, emitNs: b.clk.now()}); err != nil {
			return ScalingRow{}, fmt.Errorf("%s: emit: %w", name, err)
		}
	}
	// Wait until every delivery has made its first attempt and waits for
	// its retry: nothing ready or running, every job delayed.
	deadline := time.Now().Add(o.DrainTimeout)
	for {
		ready, delayed, running := s.mem.Len()
		if ready == 0 && running == 0 && delayed == o.Pending {
			break
		}
		if time.Now().After(deadline) || b.ctx.Err() != nil {
			return ScalingRow{}, fmt.Errorf("%s: after %s, %d ready, %d delayed, %d running; want %d delayed",
				name, o.DrainTimeout, ready, delayed, running, o.Pending)
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	inuse1, alloc1 := heapInuseAfterGC()
	if o.MemProfile != "" {
		if err := writeHeapProfile(o.MemProfile); err != nil {
			return ScalingRow{}, err
		}
	}
	// Every delivery is pending, after exactly one failed attempt.
	ds, err := s.client.Deliveries(b.ctx, outhook.DeliveryQuery{Limit: 1})
	if err != nil {
		return ScalingRow{}, err
	}
	if len(ds) != 1 || ds[0].Status != outhook.DeliveryPending || len(ds[0].Attempts) != 1 {
		return ScalingRow{}, fmt.Errorf("%s: the newest delivery is %+v, want pending after one attempt", name, ds)
	}
	if got := b.rcv.count.Load(); got != 0 {
		return ScalingRow{}, fmt.Errorf("%s: the live receiver got %d deliveries meant for the dead one", name, got)
	}
	n := float64(o.Pending)
	per := (float64(inuse1) - float64(inuse0)) / n
	r := ScalingRow{Name: name, Kind: "pending", System: "outhook-memory", Subs: 1, PayloadBytes: b.shape.size,
		Pending: o.Pending, HeapInuseMB: round(float64(inuse1)/(1<<20), 1),
		HeapPerPendingBytes:    round(per, 0),
		HeapBeyondPayloadBytes: round(per-float64(b.shape.size), 0),
		LiveHeapPerPending:     round((float64(alloc1)-float64(alloc0))/n, 0),
		SecondsToPend:          round(took.Seconds(), 2)}
	return r, nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// targets checks the targets that this program measures. (The
// EmitHook target is measured by go test -bench.)
func targets(rep *Report) []Target {
	out := []Target{}
	row := func(name string) *Row {
		i := slices.IndexFunc(rep.Rows, func(r Row) bool { return r.Name == name })
		if i < 0 {
			return nil
		}
		return &rep.Rows[i]
	}
	if mem, hand := row("outhook-memory"), row("handrolled"); mem != nil {
		out = append(out, Target{Target: "outhook-memory deliveries/s >= 0.8 x ceiling", Value: mem.RatioToCeiling, Limit: 0.8, Met: mem.RatioToCeiling >= 0.8})
		if hand != nil && hand.DeliveriesPerS > 0 {
			v := round(mem.DeliveriesPerS/hand.DeliveriesPerS, 3)
			out = append(out, Target{Target: "outhook-memory deliveries/s > handrolled (ratio)", Value: v, Limit: 1, Met: v > 1})
		}
		out = append(out, Target{Target: fmt.Sprintf("outhook-memory p99 emit->received at %d events/s <= 5 ms", rep.Config.LatencyRate), Value: mem.P99ms, Limit: 5, Met: mem.P99ms <= 5})
	}
	for _, s := range rep.Scaling {
		if s.Kind == "pending" {
			out = append(out, Target{Target: "heap per pending delivery beyond its payload <= 1 KB (bytes)", Value: s.HeapBeyondPayloadBytes, Limit: 1024, Met: s.HeapBeyondPayloadBytes <= 1024})
		}
	}
	if pg := row("outhook-postgres"); pg != nil && pg.RatioToRiverRaw > 0 {
		out = append(out, Target{Target: "outhook-postgres deliveries/s >= 0.5 x river-raw", Value: pg.RatioToRiverRaw, Limit: 0.5, Met: pg.RatioToRiverRaw >= 0.5})
	}
	if sq := row("outhook-sqlite"); sq != nil {
		out = append(out, Target{Target: "outhook-sqlite deliveries/s >= 2000", Value: sq.DeliveriesPerS, Limit: 2000, Met: sq.DeliveriesPerS >= 2000})
	}
	return out
}

// runEmitters runs work in n goroutines (in this one when n is at most 1)
// and returns when all have.
func runEmitters(n int, work func()) {
	if n <= 1 {
		work()
		return
	}
	var wg sync.WaitGroup
	for range n {
		wg.Go(work)
	}
	wg.Wait()
}
