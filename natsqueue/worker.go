package natsqueue

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/outhook/outhook/queue"
)

const (
	// pullExpiry bounds one pull request. The server holds it open and
	// delivers new messages into it as they arrive
	// (https://docs.nats.io/nats-concepts/jetstream/consumers);
	// Stop cancels it.
	pullExpiry = 5 * time.Second
	// republishDelay is when a job whose Next jobs or dead letter could
	// not be published is delivered again.
	republishDelay = time.Second
	// maxBackoff bounds the wait between failed pull requests.
	maxBackoff = 5 * time.Second
)

// fetchLoop pulls the jobs of g, never more than it has idle workers for,
// until Stop.
func (q *Queue) fetchLoop(g *group) {
	defer q.fetchers.Done()
	var backoff time.Duration
	for {
		select {
		case g.slots <- struct{}{}:
		case <-q.quit:
			return
		}
		n := 1
	fill:
		for n < cap(g.slots) {
			select {
			case g.slots <- struct{}{}:
				n++
			default:
				break fill
			}
		}
		err := q.fetch(g, n)
		if err == nil {
			backoff = 0
			continue
		}
		if q.closing() {
			return
		}
		if q.nc.IsClosed() {
			q.log.Error("natsqueue: the NATS connection is closed; the group stops pulling jobs", "group", g.name)
			return
		}
		backoff = min(max(2*backoff, 50*time.Millisecond), maxBackoff)
		q.log.Warn("natsqueue: pull jobs", "group", g.name, "error", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-q.quit:
			t.Stop()
			return
		}
		if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
			errors.Is(err, nats.ErrNoResponders) {
			ctx, cancel := context.WithTimeout(q.fetchCtx, q.cfg.RequestTimeout)
			if err := q.ensureConsumer(ctx, g); err != nil && !q.closing() {
				q.log.Warn("natsqueue: recreate consumer", "group", g.name, "error", err)
			}
			cancel()
		}
	}
}

// fetch makes one pull request for up to n jobs, for which it holds n
// worker slots, and starts a handler for each job as it arrives.
func (q *Queue) fetch(g *group, n int) error {
	ctx, cancel := context.WithTimeout(q.pulls.Load().ctx, pullExpiry)
	defer cancel()
	b, err := g.cons.Fetch(n, jetstream.FetchContext(ctx))
	if err != nil {
		for range n {
			<-g.slots
		}
		return err
	}
	got := 0
	for m := range b.Messages() {
		got++
		q.handlers.Add(1)
		q.running.Add(1)
		g.running.Add(1)
		q.activity.Add(1)
		go q.handle(g, m, time.Now())
	}
	for range n - got {
		<-g.slots
	}
	err = b.Error()
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// closing reports whether Stop has begun.
func (q *Queue) closing() bool {
	select {
	case <-q.quit:
		return true
	default:
		return false
	}
}

func (q *Queue) ledgerOf(g *group) ledger {
	if g.broadcast {
		return g.mem
	}
	return q.ledger
}

// handle runs one delivered message, received at the given time (when the
// server's AckWait for it was already running).
func (q *Queue) handle(g *group, m jetstream.Msg, received time.Time) {
	defer func() {
		<-g.slots
		g.running.Add(-1)
		q.running.Add(-1)
		q.activity.Add(1)
		q.handlers.Done()
	}()
	meta, err := m.Metadata()
	if err != nil {
		// Not a JetStream delivery: nothing to acknowledge.
		q.log.Error("natsqueue: message without JetStream metadata", "group", g.name, "subject", m.Subject(), "error", err)
		return
	}
	d, seq := meta.NumDelivered, meta.Sequence.Stream
	if g.broadcast {
		for {
			last := g.lastSeq.Load()
			if seq <= last || g.lastSeq.CompareAndSwap(last, seq) {
				break
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), q.cfg.RequestTimeout)
	defer cancel()
	lg := q.ledgerOf(g)
	key := ledgerKey(g.token, seq)
	now := time.Now()

	job, err := decodeJob(g.name, g.token, m.Subject(), m.Headers(), m.Data())
	if err != nil {
		id, _ := url.PathUnescape(m.Headers().Get(hdrID))
		q.log.Error("natsqueue: dead-lettering a message that is not a job", "group", g.name, "sequence", seq, "error", err)
		poisoned := &queue.Job{
			ID: id, Group: g.name, Payload: m.Data(), Attempt: int(d),
			Errors: []queue.AttemptError{{Attempt: int(d), At: now, Error: err.Error()}},
		}
		q.bury(ctx, g, m, seq, poisoned, key, false)
		return
	}

	var e *entry
	if d > 1 || g.broadcast {
		// Only a message delivered before can have an entry.
		e, err = lg.get(ctx, key)
		if err != nil {
			q.log.Warn("natsqueue: the job's earlier errors are unknown", "group", g.name, "id", job.ID, "error", err)
		}
		if e != nil && (e.ID != job.ID || e.Group != job.Group) {
			e = nil // left by another stream of the same name
		}
	}
	attempt := e.attempt(d)
	runAt := job.RunAt
	if e != nil {
		job.Errors = e.Errors
		if !e.RunAt.IsZero() {
			runAt = e.RunAt
		}
	}
	if wait := runAt.Sub(now); wait > 0 {
		// Too early: a job enqueued with a future RunAt (JetStream 2.9
		// cannot delay a message's first delivery), or a redelivery that
		// came before its time. Hand it back without counting a run.
		q.handBack(ctx, g, m, key, job, attempt, d, runAt, wait)
		return
	}
	if q.closing() {
		q.handBack(ctx, g, m, key, job, attempt, d, time.Time{}, 0)
		return
	}
	if q.cfg.MaxDeliver > 0 && attempt > q.cfg.MaxDeliver {
		job.Attempt = attempt - 1
		job.Errors = appendError(job.Errors, queue.AttemptError{Attempt: attempt - 1, At: now, Error: fmt.Sprintf(
			"natsqueue: delivered again after %d runs, the most Config.MaxDeliver allows "+
				"(runs that crashed their process or outlived their lease count too)", attempt-1)})
		q.log.Error("natsqueue: giving up on a job after MaxDeliver runs", "group", g.name, "id", job.ID, "runs", attempt-1)
		q.bury(ctx, g, m, seq, job, key, e != nil)
		return
	}
	job.Attempt = attempt
	res := q.run(g, m, job, received)
	q.apply(g, m, seq, d, key, job, e != nil, res)
}

// handBack returns a message to the stream without counting a run: the
// ledger records that delivery d was not one.
func (q *Queue) handBack(ctx context.Context, g *group, m jetstream.Msg, key string, job *queue.Job, attempt int, d uint64, runAt time.Time, delay time.Duration) {
	ne := &entry{ID: job.ID, Group: job.Group, Runs: attempt - 1, Delivery: d, RunAt: runAt, Errors: job.Errors}
	if err := q.ledgerOf(g).put(ctx, key, ne); err != nil {
		q.log.Warn("natsqueue: a delivery that did not run will count as a run", "group", g.name, "id", job.ID, "error", err)
	}
	var err error
	if delay > 0 {
		err = m.NakWithDelay(delay)
	} else {
		err = m.Nak()
	}
	if err != nil {
		q.log.Warn("natsqueue: hand back a job", "group", g.name, "id", job.ID, "error", err)
	}
}

// keepAlive tells the server, every half lease, that a job is still being
// worked on (InProgress resets its AckWait), so that a handler running
// longer than its group's Timeout does not lose its lease.
type keepAlive struct {
	mu    sync.Mutex
	t     *time.Timer
	done  bool
	m     jetstream.Msg
	every time.Duration
}

func startKeepAlive(m jetstream.Msg, every time.Duration, received time.Time) *keepAlive {
	k := &keepAlive{m: m, every: every}
	k.mu.Lock()
	// The server's AckWait has run since the message was received, not
	// since the handler started: the ledger read and the decoding came
	// in between, which a starved process can stretch.
	k.t = time.AfterFunc(max(every-time.Since(received), time.Millisecond), k.fire)
	k.mu.Unlock()
	return k
}

func (k *keepAlive) fire() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.done {
		return
	}
	_ = k.m.InProgress() // a lost one only shortens this lease
	k.t.Reset(k.every)
}

func (k *keepAlive) stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.done = true
	k.t.Stop()
}

// run calls the group's handler, turning a panic into a Retry.
func (q *Queue) run(g *group, m jetstream.Msg, j *queue.Job, received time.Time) (res queue.Result) {
	ka := startKeepAlive(m, g.ackWait/2, received)
	defer ka.stop()
	defer func() {
		if r := recover(); r != nil {
			q.log.Error("natsqueue: handler panicked",
				"group", j.Group, "id", j.ID, "attempt", j.Attempt,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			res = queue.Result{Disposition: queue.Retry, Err: fmt.Errorf("panic: %v", r)}
		}
	}()
	return g.handler(q.hctx, j)
}

// apply carries out a handler's Result for delivery d of the message with
// stream sequence seq. hadEntry says whether the ledger has an entry for
// it.
func (q *Queue) apply(g *group, m jetstream.Msg, seq, d uint64, key string, job *queue.Job, hadEntry bool, res queue.Result) {
	ctx, cancel := context.WithTimeout(context.Background(), q.cfg.RequestTimeout)
	defer cancel()
	now := time.Now()
	disp := res.Disposition
	var errText string
	if res.Err != nil {
		errText = res.Err.Error()
	}
	switch disp {
	case queue.Done:
		if err := checkNext(res.Next); err != nil {
			disp, errText = queue.Dead, err.Error()
		}
	case queue.Retry:
		if q.hctx.Err() != nil && (errors.Is(res.Err, context.Canceled) || errors.Is(res.Err, context.DeadlineExceeded)) {
			// Cut short by Stop: this run did not happen.
			q.handBack(ctx, g, m, key, job, job.Attempt, d, time.Time{}, 0)
			return
		}
	case queue.Snooze:
		// Not a run: the ledger keeps the runs as they were.
		var delay time.Duration
		if res.RunAt.After(now) {
			delay = res.RunAt.Sub(now)
		}
		q.handBack(ctx, g, m, key, job, job.Attempt, d, res.RunAt, delay)
		return
	case queue.Dead:
	default:
		disp = queue.Dead
		errText = fmt.Sprintf("natsqueue: unknown disposition %d", int(res.Disposition))
		if res.Err != nil {
			errText += ": " + res.Err.Error()
		}
	}
	lg := q.ledgerOf(g)

	switch disp {
	case queue.Done:
		if len(res.Next) > 0 {
			// Next jobs first, then the acknowledgement: a crash in
			// between runs the job again, and its Next jobs, which have
			// the same IDs, are dropped by the duplicate window.
			if err := q.publish(ctx, res.Next, now); err != nil {
				q.log.Error("natsqueue: publish Next jobs; the job will run again", "group", g.name, "id", job.ID, "error", err)
				if err := m.NakWithDelay(republishDelay); err != nil {
					q.log.Warn("natsqueue: hand back a job", "group", g.name, "id", job.ID, "error", err)
				}
				return
			}
		}
		q.ack(g, m, job)
		if hadEntry || g.broadcast {
			if err := lg.del(ctx, key); err != nil {
				q.log.Warn("natsqueue: clear run ledger entry", "group", g.name, "id", job.ID, "error", err)
			}
		}
	case queue.Retry:
		ne := &entry{ID: job.ID, Group: job.Group, Runs: job.Attempt, Delivery: d, Errors: job.Errors}
		if res.Err != nil {
			ne.Errors = appendError(ne.Errors, queue.AttemptError{Attempt: job.Attempt, At: now, Error: errText})
		}
		var delay time.Duration
		if res.RunAt.After(now) {
			ne.RunAt, delay = res.RunAt, res.RunAt.Sub(now)
		}
		// Record first, hand back second: a crash in between leaves the
		// job delivered again after its lease, with this run counted and
		// its error known.
		if res.Err != nil || delay > 0 {
			if err := lg.put(ctx, key, ne); err != nil {
				q.log.Warn("natsqueue: the error of a failed run is lost", "group", g.name, "id", job.ID, "error", err)
			}
		}
		var err error
		if delay > 0 {
			err = m.NakWithDelay(delay)
		} else {
			err = m.Nak()
		}
		if err != nil {
			q.log.Warn("natsqueue: hand back a job; it runs again after its lease", "group", g.name, "id", job.ID, "error", err)
		}
	case queue.Dead:
		if errText != "" {
			job.Errors = appendError(slices.Clip(job.Errors), queue.AttemptError{Attempt: job.Attempt, At: now, Error: errText})
		}
		q.bury(ctx, g, m, seq, job, key, hadEntry)
	}
}

// bury publishes job to the dead-letter stream, then acknowledges its
// message. If the publish fails, the message is delivered again soon.
func (q *Queue) bury(ctx context.Context, g *group, m jetstream.Msg, seq uint64, job *queue.Job, key string, hadEntry bool) {
	msg, err := encodeDead(q.cfg.Stream, g.token, g.stream, seq, job, time.Now())
	if err == nil {
		_, err = q.js.PublishMsg(ctx, msg)
	}
	if err != nil {
		q.log.Error("natsqueue: dead-letter a job; it will be delivered again", "group", g.name, "id", job.ID, "error", err)
		if err := m.NakWithDelay(republishDelay); err != nil {
			q.log.Warn("natsqueue: hand back a job", "group", g.name, "id", job.ID, "error", err)
		}
		return
	}
	q.ack(g, m, job)
	if hadEntry || g.broadcast {
		if err := q.ledgerOf(g).del(ctx, key); err != nil {
			q.log.Warn("natsqueue: clear run ledger entry", "group", g.name, "id", job.ID, "error", err)
		}
	}
}

// ack acknowledges a finished message. The acknowledgement is not awaited:
// if it is lost, the job runs again after its lease (at least once).
func (q *Queue) ack(g *group, m jetstream.Msg, job *queue.Job) {
	if err := m.Ack(); err != nil {
		q.log.Warn("natsqueue: acknowledge a job; it may run again after its lease", "group", g.name, "id", job.ID, "error", err)
	}
}

// appendError appends ae to errs, keeping the newest maxLedgerErrors.
func appendError(errs []queue.AttemptError, ae queue.AttemptError) []queue.AttemptError {
	errs = append(slices.Clip(errs), ae)
	if len(errs) > maxLedgerErrors {
		errs = slices.Clone(errs[len(errs)-maxLedgerErrors:])
	}
	return errs
}

// checkNext validates the Next jobs of a Result.
func checkNext(jobs []*queue.Job) error {
	for i, j := range jobs {
		if j == nil {
			return fmt.Errorf("natsqueue: Next job %d is nil", i)
		}
		if j.Group == "" {
			return fmt.Errorf("natsqueue: Next job %d (id %q) has no group", i, j.ID)
		}
	}
	return nil
}
