package queuetest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outhook/outhook/queue"
)

// barrierKind marks the jobs the suite enqueues to wait for a queue without
// WaitIdle; recording handlers run them without recording a run.
const barrierKind = "queuetest.barrier"

// run is what a handler saw of one run of a job: a copy, since the queue
// owns the job and may change it once the handler has returned.
type run struct {
	Node      int
	Group     string
	ID        string
	Kind      string
	Payload   []byte
	Attempt   int
	CreatedAt time.Time
	Errors    []queue.AttemptError
	Trace     map[string]string
	Start     time.Time // when the handler was called, by the process's clock

	Ended       bool              // the handler has returned
	Disposition queue.Disposition // what it returned
}

func (r run) String() string {
	s := fmt.Sprintf("%s/%s attempt %d on node %d at %s", r.Group, r.ID, r.Attempt, r.Node,
		r.Start.Format("15:04:05.000000"))
	if r.Ended {
		return s + ": " + r.Disposition.String()
	}
	return s + ": running"
}

// call is what a test's handler learns besides the job.
type call struct {
	Node  int // index of the queue running the handler
	Run   int // 1-based number of this run of the job, over all nodes
	Start time.Time
}

// handlerFunc is a test's handler. It may block, but must return once ctx
// or the subtest's context is done.
type handlerFunc func(ctx context.Context, j *queue.Job, c call) queue.Result

// recorder records every run of the jobs of one subtest and lets the test
// wait for runs without sleeping.
type recorder struct {
	mu       sync.Mutex
	runs     []run
	barriers map[string]bool // group + "/" + ID of barrier jobs that ran
	changed  chan struct{}   // cap 1: a value when runs or barriers changed
}

func newRecorder() *recorder {
	return &recorder{barriers: make(map[string]bool), changed: make(chan struct{}, 1)}
}

// handler returns a queue.Handler for node that records each run and then
// calls fn; a nil fn returns Done.
func (r *recorder) handler(node int, fn handlerFunc) queue.Handler {
	return func(ctx context.Context, j *queue.Job) queue.Result {
		start := time.Now()
		if j.Kind == barrierKind {
			r.mu.Lock()
			r.barriers[j.Group+"/"+j.ID] = true
			r.mu.Unlock()
			r.notify()
			return queue.Result{}
		}
		rec := run{
			Node: node, Group: j.Group, ID: j.ID, Kind: j.Kind, Payload: slices.Clone(j.Payload),
			Attempt: j.Attempt, CreatedAt: j.CreatedAt, Errors: slices.Clone(j.Errors), Trace: maps.Clone(j.Trace),
			Start: start,
		}
		r.mu.Lock()
		i := len(r.runs)
		r.runs = append(r.runs, rec)
		n := len(runsOf(r.runs, j.Group, j.ID))
		r.mu.Unlock()
		r.notify()
		var res queue.Result
		if fn != nil {
			res = fn(ctx, j, call{Node: node, Run: n, Start: start})
		}
		r.mu.Lock()
		r.runs[i].Ended, r.runs[i].Disposition = true, res.Disposition
		r.mu.Unlock()
		r.notify()
		return res
	}
}

func (r *recorder) notify() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// all returns a copy of every run so far.
func (r *recorder) all() []run {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.runs)
}

// of returns the runs of one job, in the order they began.
func (r *recorder) of(group, id string) []run {
	r.mu.Lock()
	defer r.mu.Unlock()
	return runsOf(r.runs, group, id)
}

// await waits until cond, called with the runs so far, holds, failing t
// when within passes first. cond must not keep the slice.
func (r *recorder) await(t *testing.T, within time.Duration, what string, cond func(runs []run) bool) {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		r.mu.Lock()
		ok := cond(r.runs)
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.changed:
		case <-timer.C:
			t.Fatalf("queuetest: timed out after %v waiting for %s; runs so far:\n%s", within, what, r.dump())
		}
	}
}

// awaitRuns waits until the job has run at least n times.
func (r *recorder) awaitRuns(t *testing.T, within time.Duration, group, id string, n int) {
	t.Helper()
	r.await(t, within, fmt.Sprintf("%d run(s) of job %s in group %s", n, id, group), func(runs []run) bool {
		return len(runsOf(runs, group, id)) >= n
	})
}

// awaitBarrier waits until the barrier job id of group has run.
func (r *recorder) awaitBarrier(t *testing.T, within time.Duration, group, id string) {
	t.Helper()
	r.await(t, within, "barrier job "+id+" in group "+group, func([]run) bool {
		return r.barriers[group+"/"+id]
	})
}

// dump describes the runs so far, for failure messages.
func (r *recorder) dump() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	const most = 40
	var b strings.Builder
	for i, x := range r.runs {
		if i == most {
			fmt.Fprintf(&b, "  ... and %d more\n", len(r.runs)-most)
			break
		}
		fmt.Fprintf(&b, "  %s\n", x)
	}
	if len(r.runs) == 0 {
		b.WriteString("  (none)\n")
	}
	return b.String()
}

// runsOf returns the runs of one job.
func runsOf(runs []run, group, id string) []run {
	var out []run
	for _, x := range runs {
		if x.Group == group && x.ID == id {
			out = append(out, x)
		}
	}
	return out
}

// countByID counts the runs of each job of group.
func countByID(runs []run, group string) map[string]int {
	out := make(map[string]int)
	for _, x := range runs {
		if x.Group == group {
			out[x.ID]++
		}
	}
	return out
}

// attempts returns the Attempt of each run.
func attempts(runs []run) []int {
	out := make([]int, len(runs))
	for i, x := range runs {
		out[i] = x.Attempt
	}
	return out
}
