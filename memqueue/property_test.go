package memqueue_test

// A rapid state machine over the in-memory queue (issue 7, item 4): random
// batches of jobs, each with a script of what its handler does on each run
// (done, retry with or without an error, dead, snooze, panic, done with Next
// jobs valid or not, some after a short delay), enqueued alone or from
// several goroutines at once, and Stops with work in hand followed by a new
// queue. After every step, once the queue is idle (or stopped), the model
// checks that every job ran exactly its script, never twice at once and
// with Attempt and Errors as documented, that at most Concurrency handlers
// ran at once, that the dead list holds the right jobs, and, with one
// worker and no delays, that jobs ran in the documented order (FIFO, Next
// jobs at the head, retries at the tail).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/outhook/outhook/memqueue"
	"github.com/outhook/outhook/queue"
)

// propOp is what a handler does on one run.
type propOp struct {
	kind  byte // D done, N done with Next, I done with an invalid Next, X dead, R retry, r retry without error, S snooze, P panic
	delay bool // R, r, S: run again after a short delay
}

func (o propOp) terminal() bool {
	return o.kind == 'D' || o.kind == 'N' || o.kind == 'I' || o.kind == 'X'
}

// propSpec is a job and its script.
type propSpec struct {
	id, group string
	script    []propOp
	children  []*propSpec // the Next jobs of its N run
}

// propRun is what the queue did with a job.
type propRun struct {
	attempts []int // Job.Attempt at each run
	errs     []int // len(Job.Errors) at each run
	created  bool  // CreatedAt was set
}

var (
	propGroups = []string{"g1", "g2", "g3"}
	propLog    = slog.New(slog.DiscardHandler)
)

const propWait = 10 * time.Second

type propQueue struct {
	conc, capacity, deadLimit int

	q *memqueue.Queue

	mu         sync.Mutex
	specs      map[string]*propSpec
	runs       map[string]*propRun
	order      []string // job IDs, in the order their runs started
	inFlight   map[string]int
	running    int
	violations []string

	seq       int
	live      []*propSpec // jobs enqueued on the current queue, children included
	dead      []string    // jobs that died on the current queue
	deadOrder bool        // dead is in the order they died (every death came from a simulated step)
	exact     bool        // the current step's order can be simulated
	simulated []string    // expected run order of the current step
	simDead   []string    // expected deaths of the current step, in order
	stopped   bool        // the step stopped the queue
}

func (p *propQueue) violate(format string, args ...any) {
	p.violations = append(p.violations, fmt.Sprintf(format, args...))
}

func (p *propQueue) handler(group string) queue.Handler {
	return func(ctx context.Context, j *queue.Job) queue.Result {
		p.mu.Lock()
		spec, r := p.specs[j.ID], p.runs[j.ID]
		if spec == nil {
			p.violate("unknown job %q ran", j.ID)
			p.mu.Unlock()
			return queue.Result{}
		}
		p.running++
		if p.running > p.conc {
			p.violate("%d handlers at once, Concurrency %d", p.running, p.conc)
		}
		p.inFlight[j.ID]++
		if p.inFlight[j.ID] > 1 {
			p.violate("job %s runs twice at once", j.ID)
		}
		if j.Group != spec.group || group != spec.group {
			p.violate("job %s of group %s ran in group %s (handler of %s)", j.ID, spec.group, j.Group, group)
		}
		i := len(r.attempts)
		r.attempts = append(r.attempts, j.Attempt)
		r.errs = append(r.errs, len(j.Errors))
		r.created = r.created || !j.CreatedAt.IsZero()
		p.order = append(p.order, j.ID)
		var op propOp
		if i >= len(spec.script) {
			p.violate("job %s ran %d times, its script has %d runs", j.ID, i+1, len(spec.script))
			op = propOp{kind: 'D'}
		} else {
			op = spec.script[i]
		}
		p.mu.Unlock()
		defer func() {
			p.mu.Lock()
			p.running--
			p.inFlight[j.ID]--
			p.mu.Unlock()
		}()
		runtime.Gosched()
		var at time.Time
		if op.delay {
			at = time.Now().Add(time.Millisecond)
		}
		switch op.kind {
		case 'N':
			next := make([]*queue.Job, len(spec.children))
			for k, c := range spec.children {
				next[k] = &queue.Job{ID: c.id, Group: c.group}
			}
			return queue.Result{Next: next}
		case 'I':
			return queue.Result{Next: []*queue.Job{{ID: j.ID + ".bad", Group: "nobody"}}}
		case 'X':
			return queue.Result{Disposition: queue.Dead, Err: fmt.Errorf("dead at %d", j.Attempt)}
		case 'R':
			return queue.Result{Disposition: queue.Retry, RunAt: at, Err: fmt.Errorf("retry at %d", j.Attempt),
				Next: []*queue.Job{{ID: j.ID + ".ignored", Group: spec.group}}} // Next is ignored unless Done
		case 'r':
			return queue.Result{Disposition: queue.Retry, RunAt: at}
		case 'S':
			return queue.Result{Disposition: queue.Snooze, RunAt: at, Err: errors.New("snooze errors are ignored")}
		case 'P':
			panic(fmt.Sprintf("panic at %d", j.Attempt))
		}
		return queue.Result{}
	}
}

func (p *propQueue) newQueue(t *rapid.T) {
	q, err := memqueue.New(&memqueue.Config{Concurrency: p.conc, Capacity: p.capacity, DeadLimit: p.deadLimit, Logger: propLog})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for _, g := range propGroups {
		if err := q.Subscribe(g, p.handler(g), queue.GroupOptions{}); err != nil {
			t.Fatalf("Subscribe %s: %v", g, err)
		}
	}
	if err := q.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	p.q, p.live, p.dead, p.deadOrder = q, nil, nil, true
}

// drawSpec draws a job and, for a done-with-Next run, its children.
func (p *propQueue) drawSpec(t *rapid.T, depth int, delays bool) *propSpec {
	p.seq++
	s := &propSpec{id: fmt.Sprintf("j%d", p.seq), group: rapid.SampledFrom(propGroups).Draw(t, "group")}
	for range rapid.IntRange(0, 3).Draw(t, "retries") {
		op := propOp{kind: rapid.SampledFrom([]byte("RrSP")).Draw(t, "op")}
		if op.kind != 'P' && delays {
			op.delay = rapid.Bool().Draw(t, "delay")
		}
		s.script = append(s.script, op)
	}
	ends := []byte("DDXI")
	if depth < 2 {
		ends = append(ends, 'N', 'N')
	}
	end := propOp{kind: rapid.SampledFrom(ends).Draw(t, "end")}
	s.script = append(s.script, end)
	if end.kind == 'N' {
		for range rapid.IntRange(1, 3).Draw(t, "children") {
			s.children = append(s.children, p.drawSpec(t, depth+1, delays))
		}
	}
	return s
}

// register makes a job and its descendants known to the handler.
func (p *propQueue) register(s *propSpec) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var walk func(*propSpec)
	walk = func(s *propSpec) {
		p.specs[s.id] = s
		p.runs[s.id] = &propRun{}
		for _, c := range s.children {
			walk(c)
		}
	}
	walk(s)
}

// track notes a job the queue admitted; its children are admitted when it
// runs its done-with-Next run.
func (p *propQueue) track(s *propSpec) { p.live = append(p.live, s) }

// admitted returns the jobs the queue admitted, from those enqueued in this
// step: the Next jobs of those that ran their done-with-Next run too, the
// others must not have run.
func (p *propQueue) admitted(t *rapid.T) []*propSpec {
	var out []*propSpec
	var walk func(*propSpec, bool)
	walk = func(s *propSpec, in bool) {
		p.mu.Lock()
		runs := len(p.runs[s.id].attempts)
		p.mu.Unlock()
		if !in {
			if runs > 0 {
				t.Fatalf("job %s ran, though its parent never returned it as Next", s.id)
			}
		} else {
			out = append(out, s)
		}
		for _, c := range s.children {
			walk(c, in && runs == len(s.script))
		}
	}
	for _, s := range p.live {
		walk(s, true)
	}
	return out
}

func propJobs(batch []*propSpec) []*queue.Job {
	jobs := make([]*queue.Job, len(batch))
	for i, s := range batch {
		jobs[i] = &queue.Job{ID: s.id, Group: s.group}
	}
	return jobs
}

// simulate returns the run order of a batch enqueued on an idle queue with
// one worker and no delays, as the package documentation describes it, and
// the jobs that die, in order.
func simulate(batch []*propSpec) (order, dead []string) {
	type item struct {
		s   *propSpec
		run int
	}
	var ready []*item
	for _, s := range batch {
		ready = append(ready, &item{s: s})
	}
	for len(ready) > 0 {
		it := ready[0]
		ready = ready[1:]
		order = append(order, it.s.id)
		op := it.s.script[it.run]
		it.run++
		switch op.kind {
		case 'N':
			kids := make([]*item, len(it.s.children))
			for i, c := range it.s.children {
				kids[i] = &item{s: c}
			}
			ready = append(kids, ready...) // Next jobs go to the head, in order
		case 'I', 'X':
			dead = append(dead, it.s.id)
		case 'R', 'r', 'S', 'P':
			ready = append(ready, it) // retried at once: the tail
		}
	}
	return order, dead
}

func (p *propQueue) enqueue(t *rapid.T) {
	delays := rapid.IntRange(0, 3).Draw(t, "delays") == 0
	n := rapid.IntRange(1, p.capacity+1).Draw(t, "n")
	batch := make([]*propSpec, n)
	for i := range batch {
		batch[i] = p.drawSpec(t, 0, delays)
		p.register(batch[i])
	}
	ctx, cancel := context.WithTimeout(context.Background(), propWait)
	defer cancel()
	err := p.q.Enqueue(ctx, propJobs(batch)...)
	if n > p.capacity {
		// More jobs than the capacity can never fit: refused at once, all
		// of them.
		if !errors.Is(err, memqueue.ErrQueueFull) {
			t.Fatalf("Enqueue of %d jobs, capacity %d: got %v, want ErrQueueFull", n, p.capacity, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	for _, s := range batch {
		p.track(s)
	}
	if p.conc == 1 && !delays {
		p.exact = true
		p.simulated, p.simDead = simulate(batch)
	}
}

// enqueueConcurrently enqueues batches from several goroutines at once, more
// than the capacity in all: the calls wait for room and all get in.
func (p *propQueue) enqueueConcurrently(t *rapid.T) {
	k := rapid.IntRange(2, 4).Draw(t, "callers")
	batches := make([][]*propSpec, k)
	for i := range batches {
		for range rapid.IntRange(1, p.capacity).Draw(t, "n") {
			s := p.drawSpec(t, 0, rapid.Bool().Draw(t, "delays"))
			p.register(s)
			batches[i] = append(batches[i], s)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), propWait)
	defer cancel()
	errs := make([]error, k)
	var wg sync.WaitGroup
	for i := range k {
		wg.Go(func() { errs[i] = p.q.Enqueue(ctx, propJobs(batches[i])...) })
	}
	wg.Wait()
	for i := range k {
		if errs[i] != nil {
			t.Fatalf("Enqueue from goroutine %d: %v", i, errs[i])
		}
		for _, s := range batches[i] {
			p.track(s)
		}
	}
}

// stop stops the queue, maybe with a batch in hand, checks that the stopped
// queue refuses further use, and makes a new one for the next steps.
func (p *propQueue) stop(t *rapid.T) {
	if rapid.Bool().Draw(t, "withWork") {
		delays := rapid.Bool().Draw(t, "delays")
		var batch []*propSpec
		for range rapid.IntRange(1, p.capacity).Draw(t, "n") {
			s := p.drawSpec(t, 0, delays)
			p.register(s)
			batch = append(batch, s)
		}
		ctx, cancel := context.WithTimeout(context.Background(), propWait)
		err := p.q.Enqueue(ctx, propJobs(batch)...)
		cancel()
		if err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
		for _, s := range batch {
			p.track(s)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), propWait)
	defer cancel()
	if err := p.q.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	p.stopped = true
	if err := p.q.Enqueue(ctx, &queue.Job{ID: "late", Group: "g1"}); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("Enqueue after Stop: got %v, want ErrClosed", err)
	}
	if err := p.q.Start(ctx); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("Start after Stop: got %v, want ErrClosed", err)
	}
	if err := p.q.Subscribe("g4", p.handler("g4"), queue.GroupOptions{}); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("Subscribe after Stop: got %v, want ErrClosed", err)
	}
	if err := p.q.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

// check runs after every step.
func (p *propQueue) check(t *rapid.T) {
	ctx, cancel := context.WithTimeout(context.Background(), propWait)
	defer cancel()
	stopped := p.stopped
	exact, simulated, simDead := p.exact, p.simulated, p.simDead
	p.stopped, p.exact, p.simulated, p.simDead = false, false, nil, nil
	if !stopped {
		if err := p.q.WaitIdle(ctx); err != nil {
			t.Fatalf("WaitIdle: %v", err)
		}
	}
	p.mu.Lock()
	violations, order := p.violations, p.order
	p.violations, p.order = nil, nil
	p.mu.Unlock()
	if len(violations) > 0 {
		t.Fatalf("%d violations: %v", len(violations), violations)
	}
	if exact && !slices.Equal(order, simulated) {
		t.Fatalf("one worker, no delays: jobs ran in the order %v, want %v", order, simulated)
	}

	abandoned := 0
	var died []string
	for _, s := range p.admitted(t) {
		p.mu.Lock()
		r := *p.runs[s.id]
		p.mu.Unlock()
		done := len(r.attempts) == len(s.script)
		if !done {
			// Only a Stop leaves a job unfinished: one waiting for a
			// delayed run, which Stop abandons.
			if !stopped || len(r.attempts) == 0 || !s.script[len(r.attempts)-1].delay {
				t.Fatalf("job %s ran %d of its %d runs (%s) and the queue is idle (stopped %v)",
					s.id, len(r.attempts), len(s.script), propScript(s), stopped)
			}
			abandoned++
		}
		if len(r.attempts) > 0 && !r.created {
			t.Fatalf("job %s ran without a CreatedAt", s.id)
		}
		// Attempt counts the runs that were not snoozes; Errors holds the
		// errors of the retries and panics before.
		attempt, errs := 1, 0
		for i, op := range s.script[:len(r.attempts)] {
			if r.attempts[i] != attempt || r.errs[i] != errs {
				t.Fatalf("job %s (%s), run %d: Attempt %d with %d errors, want %d with %d",
					s.id, propScript(s), i+1, r.attempts[i], r.errs[i], attempt, errs)
			}
			if op.kind != 'S' {
				attempt++
			}
			if op.kind == 'R' || op.kind == 'P' {
				errs++
			}
		}
		if k := s.script[len(s.script)-1].kind; done && (k == 'X' || k == 'I') {
			died = append(died, s.id)
		}
	}
	p.live = nil // every job finished, or was abandoned by a Stop
	if exact {
		if !slices.Equal(slices.Sorted(slices.Values(died)), slices.Sorted(slices.Values(simDead))) {
			t.Fatalf("jobs %v died, want %v", died, simDead)
		}
		died = simDead // in the order they died
	} else if len(died) > 0 {
		p.deadOrder = false
	}
	p.dead = append(p.dead, died...)

	// After Stop, Len reports the jobs abandoned: delayed ones, and any
	// that came due (moved to the ready list by the scheduler) after the
	// drain had ended, which Stop does not wait for either.
	ready, delayed, running := p.q.Len()
	if running != 0 || ready+delayed != abandoned || !stopped && ready != 0 {
		t.Fatalf("Len: %d ready, %d delayed, %d running; want %d abandoned (stopped %v)", ready, delayed, running, abandoned, stopped)
	}
	if stopped {
		err := p.q.WaitIdle(ctx)
		if abandoned == 0 && err != nil || abandoned > 0 && !errors.Is(err, queue.ErrClosed) {
			t.Fatalf("WaitIdle after Stop with %d jobs abandoned: %v", abandoned, err)
		}
	}
	p.checkDead(ctx, t)
	if stopped {
		p.newQueue(t)
	}
}

// checkDead compares the dead list with the jobs that died, most recent
// first: their order is known with one worker.
func (p *propQueue) checkDead(ctx context.Context, t *rapid.T) {
	jobs, err := p.q.Dead(ctx, len(p.dead)+5)
	if err != nil {
		t.Fatalf("Dead: %v", err)
	}
	want := min(len(p.dead), p.deadLimit)
	if len(jobs) != want {
		t.Fatalf("%d dead jobs kept, want %d (%d died, DeadLimit %d)", len(jobs), want, len(p.dead), p.deadLimit)
	}
	got := make([]string, len(jobs))
	for i, j := range jobs {
		got[i] = j.ID
		s := p.specs[j.ID]
		if s == nil || !slices.Contains(p.dead, j.ID) {
			t.Fatalf("dead list holds %s, which did not die", j.ID)
		}
		// Errors: one per retry with an error and panic, and the death's.
		var wantErrs []int
		attempt := 1
		for _, op := range s.script {
			if op.kind == 'R' || op.kind == 'P' || op.kind == 'X' || op.kind == 'I' {
				wantErrs = append(wantErrs, attempt)
			}
			if op.kind != 'S' {
				attempt++
			}
		}
		var gotErrs []int
		for _, e := range j.Errors {
			gotErrs = append(gotErrs, e.Attempt)
		}
		if !slices.Equal(gotErrs, wantErrs) || j.Attempt != attempt-1 {
			t.Fatalf("dead job %s (%s): Attempt %d, errors at attempts %v; want %d, %v", j.ID, propScript(s), j.Attempt, gotErrs, attempt-1, wantErrs)
		}
	}
	if p.deadOrder {
		recent := slices.Clone(p.dead)
		slices.Reverse(recent)
		if !slices.Equal(got, recent[:want]) {
			t.Fatalf("dead list %v, want the most recent first %v", got, recent[:want])
		}
	}
}

func propScript(s *propSpec) string {
	b := make([]byte, 0, 2*len(s.script))
	for _, op := range s.script {
		b = append(b, op.kind)
		if op.delay {
			b = append(b, '~')
		}
	}
	return string(b)
}

func TestPropertyQueue(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := &propQueue{
			conc:      rapid.SampledFrom([]int{1, 1, 2, 4}).Draw(t, "concurrency"),
			capacity:  rapid.IntRange(1, 8).Draw(t, "capacity"),
			deadLimit: rapid.IntRange(1, 6).Draw(t, "deadLimit"),
			specs:     map[string]*propSpec{},
			runs:      map[string]*propRun{},
			inFlight:  map[string]int{},
		}
		p.newQueue(t)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), propWait)
			defer cancel()
			_ = p.q.Stop(ctx)
		})
		t.Repeat(map[string]func(*rapid.T){
			"":                    p.check,
			"Enqueue":             p.enqueue,
			"Enqueue2":            p.enqueue,
			"EnqueueConcurrently": p.enqueueConcurrently,
			"StopAndRenew":        p.stop,
		})
	})
}
