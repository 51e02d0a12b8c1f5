package riverqueue

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/outhook/outhook/queue"
)

// jobKind is the River job kind of every outhook job. One kind serves all
// worker groups: the group travels in the args, and River's queue (one per
// group) decides who fetches the job.
const jobKind = "outhook"

// maxAttempts is the MaxAttempts of every job: the largest value River's
// attempt columns hold (smallint in Postgres). The outhook client decides
// when a job is dead, long before; River's own limit must never do it.
const maxAttempts = math.MaxInt16

// Priorities of jobs within their River queue (1 is fetched first). Next
// jobs replace the job that made them, so they go ahead of jobs enqueued
// from outside, as in the in-memory queue.
const (
	priorityNext    = 1
	priorityEnqueue = 2
)

// uniqueOpts makes an Enqueue of a live (Group, ID) a no-op: River unique
// jobs by kind, queue (which tells the copies of a broadcast job apart) and
// the args fields tagged `river:"unique"` (Group and ID), among jobs in the
// live states only. River requires available, pending, running and
// scheduled in ByState; retryable is added because a job waiting for its
// retry is live. Completed, cancelled and discarded jobs are left out, so
// the same (Group, ID) may run again once it is finished, as with the
// in-memory queue.
var uniqueOpts = river.UniqueOpts{
	ByArgs:  true,
	ByQueue: true,
	ByState: []rivertype.JobState{
		rivertype.JobStateAvailable,
		rivertype.JobStatePending,
		rivertype.JobStateRetryable,
		rivertype.JobStateRunning,
		rivertype.JobStateScheduled,
	},
}

// liveStates are the states of jobs that are not finished.
var liveStates = []rivertype.JobState{
	rivertype.JobStateAvailable,
	rivertype.JobStatePending,
	rivertype.JobStateRetryable,
	rivertype.JobStateRunning,
	rivertype.JobStateScheduled,
}

// deadStates are the states of dead jobs: cancelled by a handler's Dead (or
// as poisoned), or discarded by River.
var deadStates = []rivertype.JobState{
	rivertype.JobStateCancelled,
	rivertype.JobStateDiscarded,
}

// scheduleAhead is how far ahead a RunAt must lie for a job to be inserted
// in River's scheduled state. River moves scheduled jobs to available with a
// maintenance service on its leader, every 5 s (its scheduler interval), so
// a job due sooner would run up to that much late. Such jobs are inserted
// available instead, with their RunAt in the args: a worker that fetches one
// early snoozes it until RunAt, which River makes available again with that
// time (for snoozes shorter than its scheduler interval) and does not count
// as an attempt. River's executor uses the same trick for short retries.
const scheduleAhead = 5 * time.Second

// jobArgs are the River args of an outhook job.
//
// The payload is kept as a JSON string rather than as embedded JSON
// (json.RawMessage): Postgres stores args as jsonb, which reorders object
// keys and rewrites whitespace, while the queue contract says a payload is
// never modified, and hook payloads end up signed and sent byte for byte. A
// string survives jsonb exactly. Payloads that are not valid UTF-8 or hold
// NUL bytes (which jsonb strings refuse) go base64-encoded in PayloadB64.
type jobArgs struct {
	Group      string    `json:"group" river:"unique"`
	ID         string    `json:"id" river:"unique"`
	JobKind    string    `json:"kind,omitempty"` // queue.Job.Kind
	Payload    *string   `json:"payload,omitempty"`
	PayloadB64 []byte    `json:"payload_b64,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	// RunAt is the job's RunAt when it lay in the future at Enqueue. Jobs
	// due within scheduleAhead are inserted available rather than
	// scheduled, and a run fetched before RunAt is snoozed until then.
	RunAt time.Time `json:"run_at,omitzero"`
	// TimeoutMS is the group's Timeout on the node that enqueued the job,
	// so that a node that does not know the group (the River leader running
	// the rescuer, say) still knows the job's lease.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
	// Trace is queue.Job.Trace. Omitted when nil, so that jobs enqueued
	// with tracing off keep the args they had before the field existed,
	// and rows written before it decode with a nil Trace. Not part of the
	// job's uniqueness (it has no river:"unique" tag).
	Trace map[string]string `json:"trace,omitempty"`

	// retryAt carries a handler's Retry time from Work to NextRetry, which
	// River calls with the same *river.Job. Never encoded.
	retryAt time.Time
}

// Kind implements river.JobArgs.
func (jobArgs) Kind() string { return jobKind }

// setPayload stores p in the args.
func (a *jobArgs) setPayload(p []byte) {
	switch {
	case p == nil:
	case utf8.Valid(p) && bytes.IndexByte(p, 0) < 0:
		s := string(p)
		a.Payload = &s
	default:
		a.PayloadB64 = p
	}
}

// payload returns the payload stored in the args.
func (a *jobArgs) payload() []byte {
	switch {
	case a.Payload != nil:
		return []byte(*a.Payload)
	case a.PayloadB64 != nil:
		return a.PayloadB64
	default:
		return nil
	}
}

// check reports args that cannot be a job: a poisoned row.
func (a *jobArgs) check() error {
	if a.Group == "" {
		return errors.New("riverqueue: poisoned job: its args name no worker group")
	}
	if a.Payload != nil && a.PayloadB64 != nil {
		return errors.New("riverqueue: poisoned job: its args hold two payloads")
	}
	return nil
}

// checkJob reports a job that cannot be enqueued; i is its index in the call.
func checkJob(i int, j *queue.Job) error {
	if j == nil {
		return fmt.Errorf("riverqueue: enqueue: job %d is nil", i)
	}
	if j.Group == "" {
		return fmt.Errorf("riverqueue: enqueue: job %d (id %q) has no group", i, j.ID)
	}
	// Args are JSON strings, which jsonb refuses with NUL bytes and
	// encoding/json would change when not UTF-8.
	clean := func(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }
	for _, f := range [...]struct{ name, v string }{{"group", j.Group}, {"id", j.ID}, {"kind", j.Kind}} {
		if !clean(f.v) {
			return fmt.Errorf("riverqueue: enqueue: job %d: %s %q is not valid UTF-8 without NUL bytes", i, f.name, f.v)
		}
	}
	for k, v := range j.Trace {
		if !clean(k) || !clean(v) {
			return fmt.Errorf("riverqueue: enqueue: job %d: trace entry %q is not valid UTF-8 without NUL bytes", i, k)
		}
	}
	return nil
}

// sentinel error texts: recorded in River so that a run with no error can
// still be retried or cancelled, and left out of Job.Errors.
const (
	noErrorText = "riverqueue: no error given"
	// cancelPrefix starts the text River records for an error returned
	// through river.JobCancel.
	cancelPrefix = "JobCancelError: "
)

// toJob turns a River row and its decoded args into the queue's Job.
func toJob(row *rivertype.JobRow, args *jobArgs) *queue.Job {
	j := &queue.Job{
		ID:        args.ID,
		Group:     args.Group,
		Kind:      args.JobKind,
		Payload:   args.payload(),
		Attempt:   row.Attempt,
		RunAt:     row.ScheduledAt,
		CreatedAt: args.CreatedAt,
		Trace:     args.Trace,
	}
	if j.CreatedAt.IsZero() {
		j.CreatedAt = row.CreatedAt
	}
	j.Errors = attemptErrors(row)
	return j
}

// attemptErrors converts River's error records, oldest first, leaving out
// the sentinel of runs that failed without an error and the prefix River
// adds to the error of a cancelled (dead) job.
func attemptErrors(row *rivertype.JobRow) []queue.AttemptError {
	if len(row.Errors) == 0 {
		return nil
	}
	out := make([]queue.AttemptError, 0, len(row.Errors))
	last := len(row.Errors) - 1
	for i, e := range row.Errors {
		text := e.Error
		if i == last && row.State == rivertype.JobStateCancelled {
			text = strings.TrimPrefix(text, cancelPrefix)
		}
		if text == noErrorText {
			continue
		}
		out = append(out, queue.AttemptError{Attempt: e.Attempt, At: e.At, Error: text})
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// decodeArgs decodes a row's args.
func decodeArgs(row *rivertype.JobRow) (*jobArgs, error) {
	var a jobArgs
	if err := json.Unmarshal(row.EncodedArgs, &a); err != nil {
		return nil, fmt.Errorf("riverqueue: poisoned job: args do not decode: %w", err)
	}
	if err := a.check(); err != nil {
		return nil, err
	}
	return &a, nil
}
