package riverqueue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"

	"github.com/outhook/outhook/queue"
)

// worker is the one River worker of outhook jobs. It finds the job's group,
// runs its handler and turns the handler's Result into River's terms:
//
//   - Done: Work returns nil and River completes the job. With Next jobs,
//     Work inserts them and completes the job in one transaction (what
//     river.JobCompleteTx does, shared by concurrent runs: see
//     completeOnce), and River's later completion finds the job already
//     completed.
//   - Retry: Work returns a *retryError and NextRetry returns the Result's
//     RunAt (at once when zero or past). River records the error in the
//     job's errors with the attempt number, and its next fetch increments
//     the attempt, which is what queue.Job documents. River's retry schedule
//     never applies: NextRetry always answers.
//   - Dead: Work returns river.JobCancel(err): River cancels the job, keeps
//     the error, and never runs it again.
type worker[TTx any] struct {
	river.WorkerDefaults[jobArgs]
	q *Queue[TTx]
}

// Timeout is River's deadline for one run and the lease its rescuer
// honours: see Queue.lease.
func (w *worker[TTx]) Timeout(job *river.Job[jobArgs]) time.Duration {
	return w.q.lease(&job.Args)
}

// NextRetry returns when a retried job runs again: the handler's RunAt, or
// now. River calls it with the same *river.Job that Work received, after
// Work; its rescuer calls it with a fresh one, and gets now. It is never
// before the time River checks it against, which would make River fall back
// to its own schedule.
func (w *worker[TTx]) NextRetry(job *river.Job[jobArgs]) time.Time {
	now := time.Now().Add(time.Millisecond)
	if job.Args.retryAt.After(now) {
		return job.Args.retryAt
	}
	return now
}

// Work runs one job.
func (w *worker[TTx]) Work(ctx context.Context, job *river.Job[jobArgs]) error {
	q := w.q
	if err := job.Args.check(); err != nil {
		return river.JobCancel(err)
	}
	g := q.group(job.Args.Group)
	if g == nil || g.queue != job.Queue {
		// Per-group queues make this rare: a node only works the queues of
		// the groups it subscribed. Snoozing does not count as a run.
		q.log.Warn("riverqueue: job for a worker group this node does not run; snoozing it",
			"group", job.Args.Group, "queue", job.Queue, "river_job", job.ID)
		return river.JobSnooze(q.cfg.FetchPollInterval + time.Second)
	}

	if early := time.Until(job.Args.RunAt); early > 0 {
		return river.JobSnooze(early)
	}

	qj := toJob(job.JobRow, &job.Args)
	// The run's lease began when River fetched the job (see lease).
	began := time.Now()
	if job.AttemptedAt != nil && job.AttemptedAt.Before(began) {
		began = *job.AttemptedAt
	}
	hctx, cancel := context.WithTimeout(queue.WithLeaseEnd(ctx, began.Add(q.lease(&job.Args))), g.timeout+q.cfg.LeaseMargin)
	res := q.runHandler(hctx, g, qj)
	cancel()

	switch res.Disposition {
	case queue.Done:
		if len(res.Next) == 0 {
			if q.finished != nil {
				// Deleted now, with the jobs of the runs ending about now,
				// so that River's completer, which comes after this
				// returns, finds no row to complete. If that fails, or ctx
				// ends first, River's completer marks the job completed.
				_ = q.finished.Do(ctx, job)
			}
			return nil
		}
		if err := q.checkNext(res.Next); err != nil {
			return river.JobCancel(err)
		}
		if err := q.completeWithNext(ctx, job, res.Next); err != nil {
			// Neither the Next jobs nor the completion happened: the run
			// failed, and the job runs again.
			return &retryError{err: fmt.Errorf("riverqueue: complete job with its Next jobs: %w", err)}
		}
		return nil
	case queue.Retry:
		job.Args.retryAt = res.RunAt
		// A Retry carrying the context error of a run cut short by
		// StopAndCancel unwraps to context.Canceled: River then makes the
		// job available again without counting the attempt or recording
		// an error (its "soft stop" handling).
		return &retryError{err: res.Err}
	case queue.Snooze:
		// River does not count a snooze as an attempt.
		return river.JobSnooze(max(time.Until(res.RunAt), 0))
	case queue.Dead:
		if res.Err == nil {
			return river.JobCancel(errors.New(noErrorText))
		}
		return river.JobCancel(res.Err)
	default:
		err := fmt.Errorf("riverqueue: unknown disposition %d", int(res.Disposition))
		if res.Err != nil {
			err = fmt.Errorf("%w: %w", err, res.Err)
		}
		return river.JobCancel(err)
	}
}

// runHandler calls the handler, turning a panic into a Retry at once, as the
// in-memory queue does.
func (q *Queue[TTx]) runHandler(ctx context.Context, g *group, j *queue.Job) (res queue.Result) {
	defer func() {
		if r := recover(); r != nil {
			q.log.Error("riverqueue: handler panicked",
				"group", j.Group, "id", j.ID, "attempt", j.Attempt,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			res = queue.Result{Disposition: queue.Retry, Err: fmt.Errorf("panic: %v", r)}
		}
	}()
	return g.handler(ctx, j)
}

// completion is a finished run with Next jobs: the job to complete and the
// jobs to admit with it.
type completion struct {
	ctx  context.Context // the run's: River's client, and the lease's end
	job  *river.Job[jobArgs]
	next []*queue.Job
}

// completeWithNext admits a job's Next jobs and completes the job in one
// transaction: both happen or neither does. Concurrent runs share the
// transaction (group commit), each still getting its own outcome.
func (q *Queue[TTx]) completeWithNext(workCtx context.Context, job *river.Job[jobArgs], next []*queue.Job) error {
	c := &completion{ctx: workCtx, job: job, next: next}
	if q.completions == nil {
		return q.commitCompletions(q.runCtx, []*completion{c})[0]
	}
	// Not bounded by the run's context: the handler has finished, and its
	// verdict should be recorded even when a stop is cancelling runs. The
	// transaction is bounded by the lease (see completeTx).
	return q.completions.Do(context.WithoutCancel(workCtx), c)
}

// commitCompletions is the commit function of the completions batcher: all
// items in one transaction, or, when that fails and there were several,
// each in its own.
func (q *Queue[TTx]) commitCompletions(ctx context.Context, items []*completion) []error {
	if len(items) > 1 {
		if errs, err := q.completeTx(ctx, items); err == nil {
			return errs
		}
	}
	errs := make([]error, len(items))
	for i := range items {
		e, err := q.completeTx(ctx, items[i:i+1])
		if err != nil {
			errs[i] = err
		} else {
			errs[i] = e[0]
		}
	}
	return errs
}

// completeTx completes the jobs and admits their Next jobs in one
// transaction, retrying without the jobs that are no longer this run's
// (their lease ran out: they get an error of their own and their Next jobs
// are not admitted); any other failure fails the whole transaction. It must
// end by the earliest end of the jobs' leases (their runs' deadlines): past
// it, a job may be another node's.
func (q *Queue[TTx]) completeTx(bctx context.Context, items []*completion) ([]error, error) {
	deadline := time.Now().Add(q.cfg.LeaseMargin)
	if d, ok := items[0].ctx.Deadline(); ok {
		deadline = d
	}
	for _, c := range items[1:] {
		if d, ok := c.ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
	}
	ctx, cancel := context.WithDeadline(context.WithoutCancel(items[0].ctx), deadline)
	defer cancel()
	stop := context.AfterFunc(bctx, cancel)
	defer stop()

	errs := make([]error, len(items))
	live := make([]int, len(items)) // indexes of the items still to commit
	for i := range live {
		live[i] = i
	}
	for len(live) > 0 {
		stale, err := q.completeOnce(ctx, items, live)
		if err != nil {
			return nil, err
		}
		if len(stale) == 0 {
			return errs, nil
		}
		// Rolled back: commit the others without the stale jobs.
		keep := live[:0]
		for _, i := range live {
			if stale[i] {
				errs[i] = fmt.Errorf("riverqueue: job %d is no longer this run's (its lease ran out)", items[i].job.ID)
			} else {
				keep = append(keep, i)
			}
		}
		live = keep
	}
	return errs, nil
}

// completeOnce runs one transaction completing items[live...] (see finish)
// and admitting their Next jobs. When a job turns out not to be this run's
// any more, it rolls back and returns those jobs.
func (q *Queue[TTx]) completeOnce(ctx context.Context, items []*completion, live []int) (stale map[int]bool, err error) {
	tx, err := q.be.Begin(ctx)
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed {
			if rerr := q.be.Rollback(ctx, tx); rerr != nil {
				q.log.Debug("riverqueue: rollback", "error", rerr)
			}
		}
	}()
	jobs := make([]*river.Job[jobArgs], len(live))
	for k, i := range live {
		jobs[k] = items[i].job
	}
	done, err := q.finish(ctx, tx, jobs, false)
	if err != nil {
		return nil, err
	}
	for _, i := range live {
		if !done[items[i].job.ID] {
			if stale == nil {
				stale = map[int]bool{}
			}
			stale[i] = true
		}
	}
	if stale != nil {
		return stale, nil
	}

	var queues []*rivertype.Queue
	listed := false
	list := func(ctx context.Context) ([]*rivertype.Queue, error) {
		if !listed {
			res, err := q.client.QueueListTx(ctx, tx, river.NewQueueListParams().First(queueListMax))
			if err != nil {
				return nil, err
			}
			queues, listed = res.Queues, true
		}
		return queues, nil
	}
	var params []river.InsertManyParams
	seen := map[string]struct{}{}
	for _, i := range live {
		ps, keys, err := q.buildParams(ctx, items[i].next, priorityNext, list)
		if err != nil {
			return nil, err
		}
		for k, prm := range ps {
			if key := keys[k]; key != "" {
				if _, dup := seen[key]; dup {
					continue
				}
				seen[key] = struct{}{}
			}
			params = append(params, prm)
		}
	}
	if len(params) > 0 {
		if _, err := q.client.InsertManyTx(ctx, tx, params); err != nil {
			return nil, err
		}
	}
	if err := q.be.Commit(ctx, tx); err != nil {
		return nil, err
	}
	committed = true
	return nil, nil
}

// finish completes jobs in tx, if they are still running with the attempt
// number of this run, and returns the IDs of those it completed: with the
// backend's Finish (which deletes them on Postgres, see
// Config.KeepCompleted), or as River's JobCompleteTx does, for many jobs in
// one call (the same pilot operation, JobSetStateIfRunningMany, with the
// parameters of riverdriver.JobSetStateCompleted). Unlike JobCompleteTx,
// which only notices a job whose row is gone, it checks each row's attempt:
// a job taken back by a rescuer (and perhaps fetched again) is not this
// run's.
//
// With skipLocked, the jobs whose rows are locked are left out (see
// Backend.Finish): for the jobs done without Next jobs, which River's
// completer may be completing at the same time, in another order.
func (q *Queue[TTx]) finish(ctx context.Context, tx TTx, jobs []*river.Job[jobArgs], skipLocked bool) (map[int64]bool, error) {
	done := make(map[int64]bool, len(jobs))
	if q.be.Finish != nil && (!q.be.FinishDeletes || q.deletes()) {
		ids := make([]int64, len(jobs))
		attempts := make([]int, len(jobs))
		for i, j := range jobs {
			ids[i], attempts[i] = j.ID, j.Attempt
		}
		finished, err := q.be.Finish(ctx, tx, q.cfg.Schema, ids, attempts, skipLocked)
		if err != nil {
			return nil, err
		}
		for _, id := range finished {
			done[id] = true
		}
		return done, nil
	}
	now := time.Now()
	p := &riverdriver.JobSetStateIfRunningManyParams{Schema: q.cfg.Schema}
	for _, j := range jobs {
		c := riverdriver.JobSetStateCompleted(j.ID, now, nil)
		p.ID = append(p.ID, c.ID)
		p.Attempt = append(p.Attempt, c.Attempt)
		p.ErrData = append(p.ErrData, c.ErrData)
		p.FinalizedAt = append(p.FinalizedAt, c.FinalizedAt)
		p.MetadataDoMerge = append(p.MetadataDoMerge, c.MetadataDoMerge)
		p.MetadataUpdates = append(p.MetadataUpdates, c.MetadataUpdates)
		p.ScheduledAt = append(p.ScheduledAt, c.ScheduledAt)
		p.State = append(p.State, c.State)
	}
	rows, err := q.client.Pilot().JobSetStateIfRunningMany(ctx, q.be.Driver.UnwrapExecutor(tx), p)
	if err != nil {
		return nil, err
	}
	attempt := make(map[int64]int, len(jobs))
	for _, j := range jobs {
		attempt[j.ID] = j.Attempt
	}
	for _, r := range rows {
		if r.State == rivertype.JobStateCompleted && r.Attempt == attempt[r.ID] {
			done[r.ID] = true
		}
	}
	return done, nil
}

// finishDone is the commit function of the finished batcher: the jobs of
// runs that ended Done, finished in one transaction if still this run's,
// within LeaseMargin. Its errors go nowhere: River's completer completes
// the jobs anyway.
func (q *Queue[TTx]) finishDone(ctx context.Context, jobs []*river.Job[jobArgs]) []error {
	errs := make([]error, len(jobs))
	ctx, cancel := context.WithTimeout(ctx, q.cfg.LeaseMargin)
	defer cancel()
	err := func() error {
		tx, err := q.be.Begin(ctx)
		if err != nil {
			return err
		}
		if _, err := q.finish(ctx, tx, jobs, true); err != nil {
			_ = q.be.Rollback(ctx, tx)
			return err
		}
		return q.be.Commit(ctx, tx)
	}()
	if err != nil && ctx.Err() == nil {
		q.log.Debug("riverqueue: finish done jobs; River completes them instead", "jobs", len(jobs), "error", err)
	}
	return errs
}

// retryError is what Work returns for a Retry.
type retryError struct{ err error }

func (e *retryError) Error() string {
	if e.err == nil {
		return noErrorText
	}
	return e.err.Error()
}

func (e *retryError) Unwrap() error { return e.err }

// retryNow is River's client retry policy: at once. River falls back to it
// only where the worker's NextRetry is not asked (the rescuer asks it too),
// so River's exponential schedule never applies to outhook jobs.
type retryNow struct{}

func (retryNow) NextRetry(*rivertype.JobRow) time.Time { return time.Now() }

// errorHandler dead-letters poisoned jobs. Every error Work returns for a
// Retry is a *retryError, and Dead goes through river.JobCancel, which River
// applies without asking the handler; any other error reached River before
// Work ran (the args no longer decode, the row could not be read), and such a
// job would fail the same way forever. Cancelling it keeps River's error as
// the reason and lists the job among the dead.
type errorHandler struct{ log *slog.Logger }

func (h *errorHandler) HandleError(ctx context.Context, row *rivertype.JobRow, err error) *river.ErrorHandlerResult {
	if _, ok := errors.AsType[*retryError](err); ok {
		return nil
	}
	h.log.Error("riverqueue: poisoned job dead-lettered", "river_job", row.ID, "queue", row.Queue, "error", err)
	return &river.ErrorHandlerResult{SetCancelled: true}
}

func (h *errorHandler) HandlePanic(ctx context.Context, row *rivertype.JobRow, v any, trace string) *river.ErrorHandlerResult {
	h.log.Error("riverqueue: panic outside a handler", "river_job", row.ID, "panic", fmt.Sprint(v), "stack", trace)
	return nil
}
