package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
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
	Backends        []string      // outhook backends to run
	Scaling         bool          // run the scaling rows
	ScalingDuration time.Duration // throughput phases of each scaling row, in all
	ScalingRounds   int           // the scaling rows' phases are interleaved in this many rounds
	ScalingSubs     []int
	ScalingPayloads []int
	Pending         int           // deliveries pending against a receiver that is down
	LatencyRate     int           // events/s offered in the latency phase
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
		Backends:        []string{"memory"},
		Scaling:         true,
		ScalingDuration: 2 * time.Second,
		ScalingRounds:   2,
		ScalingSubs:     []int{1, 10, 100},
		ScalingPayloads: []int{300, 10 << 10, 100 << 10},
		Pending:         100_000,
		LatencyRate:     1000,
		LatencyDuration: 3 * time.Second,
		QueueCapacity:   10_000,
		DrainTimeout:    2 * time.Minute,
		CPUProfileRow:   "outhook-memory",
	}
}

// Row is one line of the main table.
type Row struct {
	Name              string  `json:"name"`
	Emitted           int64   `json:"emitted"`
	Deliveries        int64   `json:"deliveries"`
	DeliveriesPerS    float64 `json:"deliveries_per_s"`
	RatioToCeiling    float64 `json:"ratio_to_ceiling"`
	P50ms             float64 `json:"p50_ms"`
	P99ms             float64 `json:"p99_ms"`
	AllocsPerDelivery float64 `json:"allocs_per_delivery"`
	CPUsPer1000       float64 `json:"cpu_s_per_1000"`
	PeakHeapMB        float64 `json:"peak_heap_mb"`
	NewConns          int64   `json:"new_conns"`
	LatencyEvents     int64   `json:"latency_events"`
	// Rounds is the number of throughput phases, interleaved with the other
	// rows'; RatioMin and RatioMax are the lowest and highest ratio to the
	// ceiling within one round.
	Rounds   int     `json:"rounds"`
	RatioMin float64 `json:"ratio_min"`
	RatioMax float64 `json:"ratio_max"`
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
	Skipped    []string     `json:"skipped,omitempty"`
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
		LatencyDuration float64 `json:"latency_duration_s"`
		ScalingDuration float64 `json:"scaling_duration_s"`
		ScalingRounds   int     `json:"scaling_rounds"`
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
	case o.LatencyRate <= 0 || o.LatencyDuration <= 0:
		return errors.New("-latency-rate and -latency-duration must be positive")
	case o.QueueCapacity <= 0:
		return errors.New("-queue-capacity must be positive")
	case o.Scaling && (o.ScalingDuration <= 0 || o.ScalingRounds <= 0 || o.ScalingDuration/time.Duration(max(o.ScalingRounds, 1)) <= 0):
		return errors.New("-scaling-duration and -scaling-rounds must be positive")
	case o.Pending < 0:
		return errors.New("-pending must not be negative")
	case o.CPUProfile != "" && !slices.Contains([]string{"ceiling", "handrolled", "outhook-memory"}, o.CPUProfileRow):
		return fmt.Errorf("-cpuprofile-row %q: want ceiling, handrolled or outhook-memory", o.CPUProfileRow)
	}
	return nil
}

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
	rep.Config.LatencyDuration = o.LatencyDuration.Seconds()
	rep.Config.ScalingDuration = o.ScalingDuration.Seconds()
	rep.Config.ScalingRounds = o.ScalingRounds

	memory := false
	for _, be := range o.Backends {
		switch be {
		case "memory":
			memory = true
		case "sqlite", "postgres", "nats":
			rep.Skipped = append(rep.Skipped, "outhook-"+be)
		}
	}

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
func (b *bench) throughput(row string, sys system, subs int, d time.Duration, cpuProfile string) (phase, error) {
	b.rcv.reset(false)
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
		deadline := time.Now().Add(d)
		for time.Now().Before(deadline) {
			if emitErr = sys.emit(ectx, event{seq: emitted, emitNs: b.clk.now()}); emitErr != nil {
				break
			}
			emitted++
		}
	}
	dctx, cancel := context.WithTimeout(b.ctx, b.opts.DrainTimeout)
	drainErr := sys.drain(dctx)
	cancel()
	if cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	use := m.stop()
	p := phase{emitted: emitted, received: b.rcv.count.Load(), span: time.Duration(b.rcv.last.Load() - start), use: use, conns: b.rcv.conns.Load()}
	if err := b.checkCount(row, "throughput", sys, p, subs, emitErr, drainErr); err != nil {
		return p, err
	}
	return p, nil
}

// latency offers events at a fixed rate, each stamped with its emit time,
// and returns the emit→received latencies of their deliveries.
func (b *bench) latency(row string, sys system, subs int) (p50, p99 time.Duration, events int64, err error) {
	runtime.GC()
	b.rcv.reset(true)
	n := int64(max(1, int(float64(b.opts.LatencyRate)*b.opts.LatencyDuration.Seconds())))
	interval := time.Second / time.Duration(b.opts.LatencyRate)
	start := time.Now()
	var emitErr error
	var emitted int64
	ectx, ecancel := context.WithTimeout(b.ctx, b.opts.LatencyDuration+b.opts.DrainTimeout)
	defer ecancel()
	for i := range n {
		// Paced by a schedule, not by sleeping an interval after each
		// emit: a late event is sent at once and the offered load stays
		// at the rate.
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		if emitErr = sys.emit(ectx, event{seq: i, emitNs: b.clk.now()}); emitErr != nil {
			break
		}
		emitted++
	}
	dctx, cancel := context.WithTimeout(b.ctx, b.opts.DrainTimeout)
	drainErr := sys.drain(dctx)
	cancel()
	p := phase{emitted: emitted, received: b.rcv.count.Load()}
	if err := b.checkCount(row, "latency", sys, p, subs, emitErr, drainErr); err != nil {
		return 0, 0, emitted, err
	}
	lat := b.rcv.latencies()
	if int64(len(lat)) != p.received {
		return 0, 0, emitted, fmt.Errorf("%s, latency phase: %d latencies for %d deliveries", row, len(lat), p.received)
	}
	p50, p99 = percentiles(lat)
	return p50, p99, emitted, nil
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
	var rows []Row
	for i := range specs {
		sp := &specs[i]
		row := rowOf(sp.name, sumPhases(sp.ph))
		row.Rounds = len(sp.ph)
		row.RatioToCeiling = round(row.DeliveriesPerS/round(ceil, 0), 3)
		row.RatioMin, row.RatioMax = roundRatios(sp.ph, specs[0].ph)
		b.progress("%s: latency at %d events/s for %s …", sp.name, o.LatencyRate, o.LatencyDuration)
		err := b.with(sp, func(sys system) error {
			p50, p99, n, err := b.latency(sp.name, sys, sp.subs)
			row.P50ms, row.P99ms, row.LatencyEvents = ms(p50), ms(p99), n
			return err
		})
		if err != nil {
			return nil, err
		}
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
			if r == 0 && sp.name == profileRow {
				profile = o.CPUProfile
			}
			err := b.with(sp, func(sys system) error {
				p, err := b.throughput(sp.name, sys, sp.subs, d, profile)
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
// ceiling's in the same round.
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
		ready, delayed, running := s.q.Len()
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
// EmitHook target is measured by go test -bench; the durable backends' by
// their rows, when they exist.)
func targets(rep *Report) []Target {
	out := []Target{}
	row := func(name string) *Row {
		i := slices.IndexFunc(rep.Rows, func(r Row) bool { return r.Name == name })
		if i < 0 {
			return nil
		}
		return &rep.Rows[i]
	}
	mem, hand := row("outhook-memory"), row("handrolled")
	if mem == nil {
		return out
	}
	out = append(out, Target{Target: "outhook-memory deliveries/s >= 0.8 x ceiling", Value: mem.RatioToCeiling, Limit: 0.8, Met: mem.RatioToCeiling >= 0.8})
	if hand != nil && hand.DeliveriesPerS > 0 {
		v := round(mem.DeliveriesPerS/hand.DeliveriesPerS, 3)
		out = append(out, Target{Target: "outhook-memory deliveries/s > handrolled (ratio)", Value: v, Limit: 1, Met: v > 1})
	}
	out = append(out, Target{Target: fmt.Sprintf("outhook-memory p99 emit->received at %d events/s <= 5 ms", rep.Config.LatencyRate), Value: mem.P99ms, Limit: 5, Met: mem.P99ms <= 5})
	for _, s := range rep.Scaling {
		if s.Kind == "pending" {
			out = append(out, Target{Target: "heap per pending delivery beyond its payload <= 1 KB (bytes)", Value: s.HeapBeyondPayloadBytes, Limit: 1024, Met: s.HeapBeyondPayloadBytes <= 1024})
		}
	}
	return out
}
