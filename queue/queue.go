// Package queue defines the work-queue contract that outhook's client runs on.
//
// A Queue moves jobs to worker groups. The outhook client is its only caller:
// it enqueues one job per worker group when a hook is emitted, one job per
// delivery when an event is routed, and it decides, for every job it handles,
// whether the job is done, must run again at a given time, or is dead. The
// queue owns none of that policy; it stores jobs, hands each one to exactly one
// handler of its group at a time, and applies the handler's Result. This is
// the seam the in-memory default (package memqueue) and the durable backends
// implement, in the manner of go-cloud's pubsub driver interfaces.
//
// Semantics every implementation provides:
//
//   - At-least-once: a job whose handler has not returned a Result (for
//     example because the process died) runs again.
//   - Within a worker group a job is handed to one handler at a time; a job
//     is never in flight twice.
//   - Run-at: a job does not run before its RunAt.
//   - Attempt counts survive retries: Job.Attempt is 1 on the first run and
//     grows by one on every run.
//   - A Result with Next jobs completes the job and admits the next jobs as
//     one step: either both happen or neither does.
package queue

import (
	"context"
	"errors"
	"time"
)

// Errors returned by queue implementations.
var (
	// ErrClosed is returned by Enqueue and Subscribe after Stop.
	ErrClosed = errors.New("queue: closed")
	// ErrUnknownGroup is returned by Enqueue for a job whose group has no
	// subscribed handler.
	ErrUnknownGroup = errors.New("queue: unknown worker group")
	// ErrQueueFull is wrapped by errors about jobs a queue cannot take for
	// lack of room. Each implementation documents when it returns it rather
	// than waiting for room.
	ErrQueueFull = errors.New("queue: full")
)

// Job is one unit of work for one worker group.
type Job struct {
	// ID identifies the job within its group. The client never enqueues a
	// (Group, ID) that is live, except when it processes an event a second
	// time (after a crash, say) and routes it again: a backend where that
	// can happen must treat an Enqueue of a live (Group, ID) as done
	// already, so that no delivery is in flight twice. The client uses a
	// message ID for hook jobs, so the copies of one emitted event share an
	// ID across groups, and a delivery ID for delivery jobs.
	ID string
	// Group is the worker group that processes the job.
	Group string
	// Kind tells the handler how to read Payload. Opaque to the queue.
	Kind string
	// Payload is the job's data. Opaque to the queue; never modified by it.
	Payload []byte
	// Attempt is 0 before the first run and the 1-based number of the
	// current run while a handler holds the job.
	Attempt int
	// RunAt is the earliest time the job may run. Zero means now.
	RunAt time.Time
	// CreatedAt is when the job was first enqueued. Set by the caller; the
	// queue fills it in when zero.
	CreatedAt time.Time
	// Errors holds the error of every failed run, oldest first.
	Errors []AttemptError
	// Trace is a text-map carrier of the trace context of the code that
	// enqueued the job (the W3C traceparent and tracestate headers, by
	// default), so that the run continues the trace that caused it. Opaque
	// to the queue: it is persisted with the job, as given, and handed back
	// on every run, retries included, and in Dead. Nil when tracing is off;
	// a backend adds nothing to a job whose Trace is nil, and returns nil
	// for jobs stored without one. The client may share one map between
	// the jobs of one call; neither queue nor handler modifies it.
	Trace map[string]string
}

// AttemptError records why one run of a job failed.
type AttemptError struct {
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
	Error   string    `json:"error"`
}

// Disposition is what a handler decided for its job.
type Disposition int

const (
	// Done completes the job.
	Done Disposition = iota
	// Retry runs the job again at Result.RunAt, with Attempt incremented.
	Retry
	// Dead gives up on the job; the queue keeps it as a dead job.
	Dead
	// Snooze runs the job again at Result.RunAt without counting the run:
	// the handler looked at the job and chose to wait (for a rate limit,
	// say) without working on it. Job.Attempt and Job.Errors stay as they
	// were, Result.Err is ignored, and snoozes never count against a
	// backend's bound on runs, however many there are.
	Snooze
)

// String returns the disposition's name.
func (d Disposition) String() string {
	switch d {
	case Done:
		return "done"
	case Retry:
		return "retry"
	case Dead:
		return "dead"
	case Snooze:
		return "snooze"
	default:
		return "unknown"
	}
}

// Result is a handler's verdict on one run of a job.
type Result struct {
	Disposition Disposition
	// RunAt is when a retried job runs again. Zero means at once.
	RunAt time.Time
	// Err is recorded in Job.Errors for Retry and Dead.
	Err error
	// Next are jobs admitted together with this job's completion (only with
	// Done). They are never refused for lack of capacity: they replace the
	// job that produced them, and refusing them would lose work.
	Next []*Job
}

// Handler processes one job. It must return promptly when ctx is done; the
// queue treats a run cut short by its own shutdown as not having happened
// when the handler returns a Result with Disposition Retry and a context
// error.
type Handler func(ctx context.Context, job *Job) Result

// GroupOptions configures a worker group.
type GroupOptions struct {
	// Broadcast asks that every instance sharing the queue run the job,
	// instead of exactly one. Single-process queues treat both alike.
	Broadcast bool
	// Timeout is the longest one run of a handler of this group is allowed
	// (the handler's own context ends then). A backend that leases jobs
	// keeps each lease longer than Timeout plus a margin for the handler's
	// bookkeeping, so that a job is never in flight twice. Zero means no
	// bound is known.
	Timeout time.Duration
}

// Queue is the contract between the outhook client and a queue backend.
type Queue interface {
	// Subscribe registers the handler of a worker group. It may be called
	// before or after Start. Subscribing a group twice is an error.
	Subscribe(group string, h Handler, opts GroupOptions) error
	// Enqueue admits jobs, all or none. What happens when the queue is full
	// is documented by each implementation.
	Enqueue(ctx context.Context, jobs ...*Job) error
	// Start begins processing and returns at once.
	Start(ctx context.Context) error
	// Stop stops taking new work and waits, bounded by ctx, for running
	// handlers to return. When ctx is done first, it cancels the handlers'
	// contexts, waits for them, and returns ctx.Err().
	Stop(ctx context.Context) error
	// Dead lists up to limit dead jobs, most recent first.
	Dead(ctx context.Context, limit int) ([]*Job, error)
}

// TxEnqueuer is implemented by queues that can admit jobs inside a
// transaction of the application's own database, so that the jobs exist if
// and only if the transaction commits (the transactional outbox, without a
// relay). TTx is the backend's transaction type, such as pgx.Tx. The jobs
// become visible to handlers when tx commits; EnqueueTx neither commits nor
// rolls back.
type TxEnqueuer[TTx any] interface {
	EnqueueTx(ctx context.Context, tx TTx, jobs ...*Job) error
}

// Idler is implemented by queues that can tell when they have nothing left
// to do. Tests use it to wait for the pipeline instead of sleeping.
type Idler interface {
	// WaitIdle blocks until no job is ready, delayed or running, or ctx is
	// done.
	WaitIdle(ctx context.Context) error
}

// Stats is a snapshot of what a queue holds, for metrics.
type Stats struct {
	// Ready, Delayed and Running count the unfinished jobs: ready to run,
	// waiting for their RunAt, and held by a handler.
	Ready, Delayed, Running int
	// Dead counts the dead jobs the queue keeps (those Dead can list).
	Dead int
	// OldestReady and OldestDelayed are the CreatedAt of the oldest ready
	// and the oldest delayed job; zero when there is none.
	OldestReady, OldestDelayed time.Time
}

// StatsReporter is implemented by queues that can describe their contents
// cheaply enough to be asked at every metric collection (every few seconds
// to a minute), as the in-memory queue does. The client's queue gauges
// report only for queues that implement it.
type StatsReporter interface {
	// Stats returns a snapshot of the queue's contents.
	Stats(ctx context.Context) (Stats, error)
}

type leaseEndKey struct{}

// WithLeaseEnd returns ctx carrying the end of the lease of a handler run:
// past it the queue may give the job to another run. A queue whose handler
// context ends some margin before the lease sets it, so that what a
// handler must still do after its deadline (outhook records an attempt
// that was made) stays within the lease, leaving the queue time to apply
// the result.
func WithLeaseEnd(ctx context.Context, end time.Time) context.Context {
	return context.WithValue(ctx, leaseEndKey{}, end)
}

// LeaseEnd returns the lease end WithLeaseEnd put in ctx.
func LeaseEnd(ctx context.Context) (time.Time, bool) {
	end, ok := ctx.Value(leaseEndKey{}).(time.Time)
	return end, ok
}
