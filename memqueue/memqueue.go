// Package memqueue is the in-memory implementation of [queue.Queue], the
// default queue of the outhook client.
//
// Jobs live only in the process's memory: they are lost when the process
// exits, so the at-least-once promise of [queue.Queue] holds only for as
// long as the process runs. Use a durable backend when that matters.
//
// # Capacity and back-pressure
//
// [Config.Capacity] bounds the jobs ready to run or running: the work in
// hand. Delayed jobs (retries waiting for their time, which can be hours
// away) do not count, so that an endpoint that is down cannot stall the
// emitters of every other event; they are bounded instead by the retry
// schedule, which ends every job after a finite number of attempts, and
// cost a few hundred bytes each. [Queue.Enqueue] is all-or-none; when
// the queue has no room for all of a call's jobs it blocks until it has, or
// until the caller's context is done, in which case it returns ctx.Err() and
// admits nothing. A call holding more jobs than Capacity can never fit and
// fails at once with an error wrapping [ErrQueueFull].
//
// Two kinds of admission skip the capacity check, so that work already in
// the queue can always make progress and a full queue can never deadlock on
// itself:
//
//   - jobs returned in [queue.Result.Next] by a handler, which replace the
//     job that produced them;
//   - Enqueue calls made with a context derived from a handler's context,
//     that is from inside a running handler of the same queue.
//
// Exempt jobs, and delayed jobs that come due, still count once they are
// ready, so the queue may briefly hold more than Capacity jobs in hand;
// external Enqueue calls then wait until it has drained below Capacity
// again.
//
// # Scheduling
//
// Ready jobs run in FIFO order, except that the Next jobs of a handler's
// Result go to the head of the queue: an event's deliveries go out before
// the events queued behind it are routed, which keeps the work in hand, and
// the latency of a delivery, independent of the backlog. A job whose RunAt
// lies in the future waits
// in a min-heap ordered by RunAt (ties in admission order) and moves to the
// ready queue when due. One scheduler goroutine with a single timer serves
// all delayed jobs, however many there are. At most [Config.Concurrency]
// handlers run at once, across all worker groups, on a fixed pool of worker
// goroutines started by [Queue.Start]. Jobs enqueued before Start wait for
// it.
//
// Before each run the queue increments Job.Attempt. The handler's [Result]
// is then applied:
//
//   - Done drops the job and admits its Next jobs, as one step under the
//     queue's lock, so the queue is never observed idle in between. Next is
//     honoured only with Done; it is ignored with Retry and Dead. If a Next
//     job is invalid (nil, no group, or a group with no handler) the parent
//     is made dead instead, with the reason recorded in its Errors, and none
//     of the Next jobs are admitted.
//   - Retry records Err (when non-nil) in Job.Errors and puts the job back:
//     ready at once when Result.RunAt is zero or past, delayed otherwise.
//   - Dead records Err (when non-nil) and moves the job to the dead list,
//     which keeps the [Config.DeadLimit] most recent dead jobs.
//
// A handler that panics is treated as if it had returned Retry with the
// error "panic: <value>"; the panic and its stack are logged at Error level.
//
// # Handler context
//
// Handlers run with a context owned by the queue, not derived from the
// context passed to Start (which governs only the start-up call itself). It
// is cancelled only when [Queue.Stop] runs out of time.
//
// # Stopping
//
// [Queue.Stop] closes the queue (Enqueue and Subscribe then return
// [queue.ErrClosed]) and drains it: workers keep running every job that is
// ready, including retries due at once and Next jobs, until none is ready or
// running. Delayed jobs due later are not waited for; they are abandoned,
// and Stop logs a warning with their number. If Stop's context is done
// before the drain finishes, Stop cancels the handlers' context, waits for
// the running handlers to return, discards their results (the jobs stay in
// the queue, unrun), and returns ctx.Err(). During the drain, Enqueue calls
// made from inside a handler are still admitted, so that the work being
// drained is not lost.
//
// # Worker groups
//
// Every worker group has exactly one handler. A broadcast group
// ([queue.GroupOptions].Broadcast) behaves like any other group: in a single
// process there is only one instance to broadcast to.
package memqueue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/outhook/outhook/queue"
)

// Defaults for the zero fields of Config.
const (
	// DefaultCapacity is the default Config.Capacity.
	DefaultCapacity = 10_000
	// DefaultConcurrency is the default Config.Concurrency.
	DefaultConcurrency = 32
	// DefaultDeadLimit is the default Config.DeadLimit.
	DefaultDeadLimit = 1000
)

// ErrQueueFull is wrapped by the error Enqueue returns for a call holding
// more jobs than the queue's capacity: such a call could never be admitted.
// A queue that is merely full makes Enqueue wait instead.
var ErrQueueFull = queue.ErrQueueFull

var (
	_ queue.Queue         = (*Queue)(nil)
	_ queue.Idler         = (*Queue)(nil)
	_ queue.StatsReporter = (*Queue)(nil)
)

// Config configures a Queue. The zero value of every field selects its
// default; negative values are invalid.
type Config struct {
	// Capacity bounds the jobs ready to run or running; delayed jobs do not
	// count (see the package documentation). Default 10_000.
	Capacity int
	// Concurrency is the number of handlers run at once across all groups.
	// Default 32.
	Concurrency int
	// DeadLimit is how many dead jobs are kept for Dead, the oldest being
	// evicted first. Default 1000.
	DeadLimit int
	// Logger receives the warning Stop logs about abandoned jobs and the
	// errors logged for handler panics. Nil means slog.Default().
	Logger *slog.Logger
}

type state uint8

const (
	stateNew      state = iota // created, not started
	stateRunning               // started
	stateDraining              // Stop has begun
	stateStopped               // Stop has finished
)

// handlerKey is the context key whose value, on handler contexts, is the
// *Queue running the handler.
type handlerKey struct{}

// Queue is an in-memory [queue.Queue]. Create one with New. All methods are
// safe for concurrent use.
type Queue struct {
	capacity    int
	concurrency int
	log         *slog.Logger

	hctx   context.Context    // context of every handler run
	cancel context.CancelFunc // cancels hctx

	wake    chan struct{} // tells the scheduler the earliest delayed job changed; cap 1
	quit    chan struct{} // closed by Stop to end the scheduler
	stopped chan struct{} // closed when Stop has finished
	wg      sync.WaitGroup

	mu          sync.Mutex
	work        sync.Cond // on mu; signalled when jobs become ready or workers must exit
	state       state
	groups      map[string]queue.Handler
	ready       ring
	delayed     delayHeap
	running     int
	idleWorkers int  // workers waiting on work and not yet signalled
	exit        bool // workers must exit
	hardStop    bool // Stop ran out of time; results are discarded
	dead        deadList
	room        chan struct{} // made by a waiting Enqueue; closed when jobs finish or Stop begins
	idle        chan struct{} // made by WaitIdle; closed when the queue becomes idle
	drained     chan struct{} // made by Stop; closed when nothing is ready or running
}

// New returns a queue configured by cfg; a nil cfg selects all defaults.
// It returns an error naming the field when a value is negative.
func New(cfg *Config) (*Queue, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	for _, f := range []struct {
		name string
		v    *int
		def  int
	}{
		{"Capacity", &c.Capacity, DefaultCapacity},
		{"Concurrency", &c.Concurrency, DefaultConcurrency},
		{"DeadLimit", &c.DeadLimit, DefaultDeadLimit},
	} {
		if *f.v < 0 {
			return nil, fmt.Errorf("memqueue: %s must be >= 0, got %d", f.name, *f.v)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	q := &Queue{
		capacity:    c.Capacity,
		concurrency: c.Concurrency,
		log:         c.Logger,
		wake:        make(chan struct{}, 1),
		quit:        make(chan struct{}),
		stopped:     make(chan struct{}),
		groups:      make(map[string]queue.Handler),
		dead:        deadList{limit: c.DeadLimit},
	}
	q.work.L = &q.mu
	base, cancel := context.WithCancel(context.Background())
	q.hctx = context.WithValue(base, handlerKey{}, q)
	q.cancel = cancel
	return q, nil
}

// Subscribe registers h as the handler of group. It may be called before or
// after Start. An empty group, a nil handler or a group already subscribed
// is an error; after Stop has begun Subscribe returns [queue.ErrClosed].
// opts.Broadcast makes no difference to an in-memory queue, and neither does
// opts.Timeout: jobs never leave the process, so none can be in flight twice.
func (q *Queue) Subscribe(group string, h queue.Handler, opts queue.GroupOptions) error {
	if group == "" {
		return errors.New("memqueue: subscribe: empty group")
	}
	if h == nil {
		return fmt.Errorf("memqueue: subscribe %q: nil handler", group)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.state >= stateDraining {
		return queue.ErrClosed
	}
	if _, ok := q.groups[group]; ok {
		return fmt.Errorf("memqueue: group %q already subscribed", group)
	}
	q.groups[group] = h
	return nil
}

// Enqueue admits jobs, all or none, handing the queue ownership of them:
// the caller must not touch them afterwards. It fills in CreatedAt when zero.
// Jobs whose RunAt is zero or not after now are ready at once; the others
// are delayed until RunAt.
//
// It returns an error, admitting nothing, when a job is nil, has no group,
// or names a group with no subscribed handler (the error then wraps
// [queue.ErrUnknownGroup]); when the call holds more jobs than the capacity
// ([ErrQueueFull]); and, with [queue.ErrClosed], once Stop has begun.
//
// A ctx that is already done admits nothing: Enqueue returns ctx.Err(). When
// the queue lacks room for all the jobs, Enqueue blocks until it has room or
// ctx is done; in the latter case it returns ctx.Err() as is and admits
// nothing. A ctx derived from a handler's context marks a call made
// from inside a running handler: such a call is admitted at once regardless
// of capacity, and is still admitted while Stop drains the queue.
func (q *Queue) Enqueue(ctx context.Context, jobs ...*queue.Job) error {
	if err := ctx.Err(); err != nil {
		return err // a caller that has given up admits nothing
	}
	needNow := false
	for i, j := range jobs {
		if j == nil {
			return fmt.Errorf("memqueue: enqueue: job %d is nil", i)
		}
		if j.Group == "" {
			return fmt.Errorf("memqueue: enqueue: job %d (id %q) has no group", i, j.ID)
		}
		if j.CreatedAt.IsZero() || !j.RunAt.IsZero() {
			needNow = true
		}
	}
	if len(jobs) > q.capacity && !q.fromHandler(ctx) {
		return fmt.Errorf("memqueue: %d jobs exceed capacity %d: %w", len(jobs), q.capacity, ErrQueueFull)
	}
	var now time.Time
	if needNow {
		now = time.Now()
	}

	q.mu.Lock()
	if err := q.checkGroups(jobs); err != nil {
		q.mu.Unlock()
		return err
	}
	for {
		if q.closedFor(ctx) {
			q.mu.Unlock()
			return queue.ErrClosed
		}
		if q.load()+len(jobs) <= q.capacity || q.fromHandler(ctx) {
			break
		}
		if q.room == nil {
			q.room = make(chan struct{})
		}
		room := q.room
		q.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
		q.mu.Lock()
	}
	q.signal(q.admit(jobs, now, false))
	q.mu.Unlock()
	return nil
}

// fromHandler reports whether ctx derives from a handler context of q.
func (q *Queue) fromHandler(ctx context.Context) bool {
	v, _ := ctx.Value(handlerKey{}).(*Queue)
	return v == q
}

// closedFor reports whether an Enqueue with ctx must be refused as closed.
// Calls from inside a handler are accepted while Stop drains. Call with mu
// held.
func (q *Queue) closedFor(ctx context.Context) bool {
	switch q.state {
	case stateNew, stateRunning:
		return false
	case stateDraining:
		return q.exit || !q.fromHandler(ctx)
	default:
		return true
	}
}

// checkGroups returns an error if a job's group has no handler. Call with
// mu held.
func (q *Queue) checkGroups(jobs []*queue.Job) error {
	for _, j := range jobs {
		if _, ok := q.groups[j.Group]; !ok {
			return fmt.Errorf("memqueue: job %q: %w %q", j.ID, queue.ErrUnknownGroup, j.Group)
		}
	}
	return nil
}

// admit adds valid jobs to the ready queue or the delay heap and returns
// how many became ready. now must be set when a job has a zero CreatedAt or
// a non-zero RunAt. first puts the ready ones at the head of the queue.
// Call with mu held.
func (q *Queue) admit(jobs []*queue.Job, now time.Time, first bool) int {
	n := 0
	// With first, ready jobs go to the head of the queue, in their order:
	// walk them backwards.
	for i := range jobs {
		j := jobs[i]
		if first {
			j = jobs[len(jobs)-1-i]
		}
		if j.CreatedAt.IsZero() {
			j.CreatedAt = now
		}
		switch {
		case !j.RunAt.IsZero() && j.RunAt.After(now):
			q.delay(j, j.RunAt)
			continue
		case first:
			q.ready.pushFront(j)
		default:
			q.ready.push(j)
		}
		n++
	}
	return n
}

// delay puts j on the delay heap, waking the scheduler when j becomes the
// earliest delayed job. Call with mu held.
func (q *Queue) delay(j *queue.Job, at time.Time) {
	if q.delayed.push(j, at) {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// signal wakes up to n idle workers. Call with mu held.
func (q *Queue) signal(n int) {
	for ; n > 0 && q.idleWorkers > 0; n-- {
		q.idleWorkers--
		q.work.Signal()
	}
}

// load is the number of jobs that count against the capacity: ready and
// running. Call with mu held.
func (q *Queue) load() int { return q.ready.n + q.running }

// size is the number of unfinished jobs. Call with mu held.
func (q *Queue) size() int {
	return q.ready.n + q.delayed.len() + q.running
}

// Len reports the number of jobs ready to run, waiting for their RunAt, and
// running. After Stop it reports the jobs abandoned.
func (q *Queue) Len() (ready, delayed, running int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.ready.n, q.delayed.len(), q.running
}

// Stats reports the jobs ready, delayed and running, the dead jobs kept,
// and the creation times of the oldest ready and delayed jobs. Finding the
// oldest jobs walks the ready and delayed jobs under the queue's lock, in
// time linear in their number (about a millisecond per hundred thousand):
// call it at metric-collection intervals, not per job.
func (q *Queue) Stats(ctx context.Context) (queue.Stats, error) {
	if err := ctx.Err(); err != nil {
		return queue.Stats{}, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	s := queue.Stats{Ready: q.ready.n, Delayed: q.delayed.len(), Running: q.running, Dead: len(q.dead.buf)}
	for i := range q.ready.n {
		if t := q.ready.buf[(q.ready.head+i)&(len(q.ready.buf)-1)].CreatedAt; s.OldestReady.IsZero() || t.Before(s.OldestReady) {
			s.OldestReady = t
		}
	}
	for i := range q.delayed.items {
		if t := q.delayed.items[i].job.CreatedAt; s.OldestDelayed.IsZero() || t.Before(s.OldestDelayed) {
			s.OldestDelayed = t
		}
	}
	return s, nil
}

// Start starts the scheduler and Concurrency workers and returns at once.
// ctx governs only the call itself: handlers do not run under it. Start
// returns an error when called twice and [queue.ErrClosed] after Stop has
// begun.
func (q *Queue) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	switch q.state {
	case stateRunning:
		return errors.New("memqueue: already started")
	case stateDraining, stateStopped:
		return queue.ErrClosed
	}
	q.state = stateRunning
	q.wg.Add(q.concurrency + 1)
	for range q.concurrency {
		go q.worker()
	}
	go q.scheduler()
	return nil
}

// Stop closes the queue and drains it, bounded by ctx: it waits until no
// job is ready or running, then stops the scheduler and the workers and
// returns nil. Delayed jobs due later are not waited for; Stop logs a
// warning with their number.
//
// If ctx is done first, Stop cancels the handlers' context, waits for the
// running handlers to return, discards their results, and returns
// ctx.Err(). A handler that ignores its context therefore keeps Stop
// waiting.
//
// Stop is idempotent: a later call waits for the first one to finish (or
// for its own ctx) and returns nil. Stop before Start is valid; jobs
// already enqueued are abandoned.
func (q *Queue) Stop(ctx context.Context) error {
	q.mu.Lock()
	switch q.state {
	case stateDraining, stateStopped:
		q.mu.Unlock()
		select {
		case <-q.stopped:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	case stateNew:
		q.state = stateStopped
		q.wakeRoom()
		ready, delayed := q.ready.n, q.delayed.len()
		q.mu.Unlock()
		q.cancel()
		close(q.stopped)
		q.warnAbandoned(ready, delayed)
		return nil
	}

	q.state = stateDraining
	q.wakeRoom() // blocked Enqueue calls return ErrClosed
	q.drained = make(chan struct{})
	drained := q.drained
	q.checkDrained()
	q.mu.Unlock()

	var err error
	select {
	case <-drained:
	case <-ctx.Done():
		select {
		case <-drained:
		default:
			err = ctx.Err()
		}
	}

	q.mu.Lock()
	q.exit = true
	q.hardStop = err != nil
	q.idleWorkers = 0
	q.work.Broadcast()
	q.mu.Unlock()
	q.cancel() // after hardStop is set: results of cancelled runs are discarded
	close(q.quit)
	q.wg.Wait()

	q.mu.Lock()
	q.state = stateStopped
	ready, delayed := q.ready.n, q.delayed.len()
	q.mu.Unlock()
	close(q.stopped)
	q.warnAbandoned(ready, delayed)
	return err
}

// warnAbandoned logs the jobs Stop left behind, if any.
func (q *Queue) warnAbandoned(ready, delayed int) {
	switch {
	case ready == 0 && delayed == 0:
	case ready == 0:
		q.log.Warn(fmt.Sprintf("memqueue: stopped with %d delayed jobs not run", delayed),
			"delayed", delayed)
	default:
		q.log.Warn(fmt.Sprintf("memqueue: stopped with %d jobs not run", ready+delayed),
			"ready", ready, "delayed", delayed)
	}
}

// wakeRoom wakes the Enqueue calls waiting for room. Call with mu held.
func (q *Queue) wakeRoom() {
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
}

// checkDrained closes q.drained when Stop is draining and nothing is ready
// or running. Call with mu held.
func (q *Queue) checkDrained() {
	if q.drained != nil && q.ready.n == 0 && q.running == 0 {
		close(q.drained)
		q.drained = nil
	}
}

// checkIdle wakes WaitIdle callers when the queue is idle. Call with mu held.
func (q *Queue) checkIdle() {
	if q.idle != nil && q.size() == 0 {
		close(q.idle)
		q.idle = nil
	}
}

// WaitIdle blocks until no job is ready, delayed or running, and returns
// nil, or until ctx is done, and returns ctx.Err(). After Stop has finished
// with jobs left, which will never run, it returns an error wrapping
// [queue.ErrClosed].
func (q *Queue) WaitIdle(ctx context.Context) error {
	for {
		q.mu.Lock()
		n := q.size()
		if n == 0 {
			q.mu.Unlock()
			return nil
		}
		if q.state == stateStopped {
			q.mu.Unlock()
			return fmt.Errorf("memqueue: stopped with %d jobs left: %w", n, queue.ErrClosed)
		}
		if q.idle == nil {
			q.idle = make(chan struct{})
		}
		idle := q.idle
		q.mu.Unlock()
		select {
		case <-idle:
			return nil
		case <-q.stopped:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Dead returns up to limit dead jobs, most recent first; none when limit is
// not positive. The jobs are the queue's own: callers must not modify them.
func (q *Queue) Dead(ctx context.Context, limit int) ([]*queue.Job, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dead.newest(limit), nil
}

// worker runs ready jobs until Stop tells it to exit.
func (q *Queue) worker() {
	defer q.wg.Done()
	// Each worker runs its handlers under a context of its own, derived from
	// the handler context: the contexts a handler derives (a timeout per
	// run) then register with this one rather than with one context shared
	// by every worker, whose lock they all contended for.
	hctx, cancel := context.WithCancel(q.hctx)
	defer cancel()
	q.mu.Lock()
	for {
		for q.ready.n == 0 && !q.exit {
			q.idleWorkers++
			q.work.Wait()
		}
		if q.exit {
			break
		}
		j := q.ready.pop()
		h := q.groups[j.Group]
		q.running++
		q.mu.Unlock()

		j.Attempt++
		res := q.run(hctx, h, j)
		var now time.Time
		if res.Disposition != queue.Done || len(res.Next) > 0 {
			now = time.Now()
		}
		var errText string
		if res.Err != nil && res.Disposition != queue.Done {
			errText = res.Err.Error()
		}

		q.mu.Lock()
		q.apply(j, res, now, errText)
	}
	q.mu.Unlock()
}

// run calls h with ctx, turning a panic into a Retry.
func (q *Queue) run(ctx context.Context, h queue.Handler, j *queue.Job) (res queue.Result) {
	defer func() {
		if r := recover(); r != nil {
			q.log.Error("memqueue: handler panicked",
				"group", j.Group, "id", j.ID, "attempt", j.Attempt,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			res = queue.Result{Disposition: queue.Retry, Err: fmt.Errorf("panic: %v", r)}
		}
	}()
	return h(ctx, j)
}

// apply applies the result of one run of j. errText is res.Err's text for
// Retry and Dead. Call with mu held.
func (q *Queue) apply(j *queue.Job, res queue.Result, now time.Time, errText string) {
	q.running--
	if q.hardStop {
		// The run was cut short by Stop: it does not count.
		q.ready.push(j)
		return
	}
	disp, hasErr := res.Disposition, res.Err != nil
	switch disp {
	case queue.Done:
		if len(res.Next) > 0 {
			if err := q.checkNext(res.Next); err != nil {
				disp, hasErr, errText = queue.Dead, true, err.Error()
			}
		}
	case queue.Retry, queue.Dead:
	case queue.Snooze:
		// Not a run: as if the job had not been taken.
		j.Attempt--
		disp, hasErr = queue.Retry, false
	default:
		disp, hasErr = queue.Dead, true
		errText = fmt.Sprintf("memqueue: unknown disposition %d", int(res.Disposition))
		if res.Err != nil {
			errText += ": " + res.Err.Error()
		}
	}
	if hasErr && disp != queue.Done {
		j.Errors = append(j.Errors, queue.AttemptError{Attempt: j.Attempt, At: now, Error: errText})
	}
	switch disp {
	case queue.Done:
		if n := q.admit(res.Next, now, true); n > 1 {
			q.signal(n - 1) // this worker takes one itself
		}
		q.wakeRoom()
	case queue.Retry:
		if res.RunAt.After(now) {
			q.delay(j, res.RunAt)
			q.wakeRoom() // delayed jobs do not count against the capacity
		} else {
			q.ready.push(j) // this worker takes it itself
		}
	case queue.Dead:
		q.dead.push(j)
		q.wakeRoom()
	}
	q.checkIdle()
	q.checkDrained()
}

// checkNext validates the Next jobs of a Result. Call with mu held.
func (q *Queue) checkNext(jobs []*queue.Job) error {
	for i, j := range jobs {
		if j == nil {
			return fmt.Errorf("memqueue: Next job %d is nil", i)
		}
		if j.Group == "" {
			return fmt.Errorf("memqueue: Next job %d (id %q) has no group", i, j.ID)
		}
	}
	if err := q.checkGroups(jobs); err != nil {
		return fmt.Errorf("memqueue: Next: %w", err)
	}
	return nil
}

// scheduler moves delayed jobs to the ready queue when they are due. It is
// the only goroutine waiting on delayed jobs, with a single timer set for
// the earliest one.
func (q *Queue) scheduler() {
	defer q.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		q.mu.Lock()
		now := time.Now()
		n := 0
		for q.delayed.len() > 0 && q.delayed.due(now) {
			q.ready.push(q.delayed.pop())
			n++
		}
		q.signal(n)
		wait := time.Duration(-1)
		if q.delayed.len() > 0 {
			wait = q.delayed.wait(now)
		}
		q.mu.Unlock()

		// Since Go 1.23, Stop and Reset leave no stale value in timer.C.
		if wait >= 0 {
			timer.Reset(wait)
		} else {
			timer.Stop()
		}
		select {
		case <-q.quit:
			return
		case <-q.wake:
		case <-timer.C:
		}
	}
}

// ring is a FIFO of jobs backed by a power-of-two circular buffer.
type ring struct {
	buf  []*queue.Job
	head int
	n    int
}

func (r *ring) push(j *queue.Job) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.n)&(len(r.buf)-1)] = j
	r.n++
}

func (r *ring) pushFront(j *queue.Job) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.head = (r.head - 1 + len(r.buf)) & (len(r.buf) - 1)
	r.buf[r.head] = j
	r.n++
}

func (r *ring) pop() *queue.Job {
	j := r.buf[r.head]
	r.buf[r.head] = nil
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
	return j
}

func (r *ring) grow() {
	buf := make([]*queue.Job, max(16, 2*len(r.buf)))
	k := copy(buf, r.buf[r.head:])
	copy(buf[k:], r.buf[:r.head])
	r.buf, r.head = buf, 0
}

// delayHeap is a min-heap of delayed jobs ordered by run time, then by
// admission order.
//
// Run times are kept as offsets from the heap's epoch, a reading of the
// monotonic clock: 8 bytes instead of a time.Time's 24, in an item every
// delayed job keeps, and compared as time.Time compares them (a run time
// with a monotonic reading is measured on that clock).
type delayHeap struct {
	items []delayed
	seq   uint64
	epoch time.Time
}

type delayed struct {
	at  time.Duration // run time, since epoch
	seq uint64
	job *queue.Job
}

func (a *delayed) less(b *delayed) bool {
	if a.at == b.at {
		return a.seq < b.seq
	}
	return a.at < b.at
}

func (h *delayHeap) len() int { return len(h.items) }

// since returns t as an offset from the epoch.
func (h *delayHeap) since(t time.Time) time.Duration {
	if h.epoch.IsZero() {
		h.epoch = time.Now()
	}
	return t.Sub(h.epoch)
}

// due reports whether the earliest job is due at now. The heap must not be
// empty.
func (h *delayHeap) due(now time.Time) bool { return h.items[0].at <= h.since(now) }

// wait returns how long after now the earliest job is due. The heap must
// not be empty.
func (h *delayHeap) wait(now time.Time) time.Duration { return h.items[0].at - h.since(now) }

// push adds j to run at at and reports whether it is now the earliest.
func (h *delayHeap) push(j *queue.Job, at time.Time) bool {
	h.seq++
	h.items = append(h.items, delayed{at: h.since(at), seq: h.seq, job: j})
	i := len(h.items) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h.items[i].less(&h.items[p]) {
			break
		}
		h.items[i], h.items[p] = h.items[p], h.items[i]
		i = p
	}
	return i == 0
}

// pop removes and returns the earliest job. The heap must not be empty.
func (h *delayHeap) pop() *queue.Job {
	j := h.items[0].job
	last := len(h.items) - 1
	h.items[0] = h.items[last]
	h.items[last] = delayed{}
	h.items = h.items[:last]
	for i := 0; ; {
		m, l, r := i, 2*i+1, 2*i+2
		if l < last && h.items[l].less(&h.items[m]) {
			m = l
		}
		if r < last && h.items[r].less(&h.items[m]) {
			m = r
		}
		if m == i {
			break
		}
		h.items[i], h.items[m] = h.items[m], h.items[i]
		i = m
	}
	return j
}

// deadList keeps the limit most recent dead jobs.
type deadList struct {
	buf   []*queue.Job
	next  int // where the next job goes once buf is full
	limit int
}

func (d *deadList) push(j *queue.Job) {
	if len(d.buf) < d.limit {
		d.buf = append(d.buf, j)
		return
	}
	d.buf[d.next] = j
	d.next = (d.next + 1) % d.limit
}

// newest returns up to limit jobs, most recent first.
func (d *deadList) newest(limit int) []*queue.Job {
	n := min(limit, len(d.buf))
	if n <= 0 {
		return nil
	}
	out := make([]*queue.Job, n)
	l := len(d.buf)
	for i := range out {
		out[i] = d.buf[((d.next-1-i)%l+l)%l]
	}
	return out
}
