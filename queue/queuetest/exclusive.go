package queuetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook/queue"
)

// testFanOut: the same job ID enqueued to two groups, in one call as the
// client does, is processed once by each group.
func (s *suite) testFanOut(t *testing.T) {
	nodes := s.nodes(2)
	c := s.cluster(t, nodes)
	ga, gb := newGroup("fan-out-a"), newGroup("fan-out-b")
	rec := newRecorder()
	c.subscribe(ga, queue.GroupOptions{}, rec, nil)
	c.subscribe(gb, queue.GroupOptions{}, rec, nil)
	c.start()
	const jobs = 20
	for i := range jobs {
		id := fmt.Sprintf("msg-%d", i)
		c.enqueue(i%nodes,
			&queue.Job{ID: id, Group: ga, Kind: "fan-out", Payload: []byte(id)},
			&queue.Job{ID: id, Group: gb, Kind: "fan-out", Payload: []byte(id)},
		)
	}
	rec.await(t, s.wait, fmt.Sprintf("%d jobs to run in each of two groups", jobs), func(runs []run) bool {
		return len(countByID(runs, ga)) == jobs && len(countByID(runs, gb)) == jobs
	})
	c.settle(rec, ga, gb)
	runs := rec.all()
	for _, g := range []string{ga, gb} {
		for id, n := range countByID(runs, g) {
			require.Equal(t, 1, n, "runs of job %s in group %s:\n%s", id, g, rec.dump())
		}
	}
	for _, r := range runs {
		require.Equal(t, []byte(r.ID), r.Payload, "payload of %s", r)
	}
}

// testExclusive: many jobs of one group, served by every node, are each
// processed exactly once.
func (s *suite) testExclusive(t *testing.T) {
	nodes := s.nodes(3)
	c := s.cluster(t, nodes)
	g := newGroup("exclusive")
	rec := newRecorder()
	c.subscribe(g, queue.GroupOptions{}, rec, nil)
	c.start()
	const jobs, batch = 300, 50
	for b := range jobs / batch {
		js := make([]*queue.Job, batch)
		for i := range js {
			js[i] = &queue.Job{ID: fmt.Sprintf("job-%d", b*batch+i), Group: g, Kind: "exclusive"}
		}
		c.enqueue(b%nodes, js...)
	}
	rec.await(t, s.wait, fmt.Sprintf("%d jobs to run", jobs), func(runs []run) bool {
		return len(countByID(runs, g)) == jobs
	})
	c.settle(rec, g)
	runs := rec.all()
	for id, n := range countByID(runs, g) {
		require.Equal(t, 1, n, "runs of job %s:\n%s", id, rec.dump())
	}
	split := make([]int, nodes)
	for _, r := range runs {
		require.Equal(t, 1, r.Attempt, "Attempt of %s", r)
		split[r.Node]++
	}
	parts := make([]string, nodes)
	for i, n := range split {
		parts[i] = fmt.Sprintf("node %d: %d", i, n)
	}
	t.Logf("%d jobs over %d node(s): %s", jobs, nodes, strings.Join(parts, ", "))
}

// testLease: a handler that runs for most of GroupOptions.Timeout is never
// running twice at once for the same job, on any node, and its context is
// not ended before Timeout.
func (s *suite) testLease(t *testing.T) {
	c := s.cluster(t, s.nodes(3))
	g := newGroup("lease")
	rec := newRecorder()
	const jobs = 6
	hold := s.lease * 8 / 10
	type counter struct{ now, peak atomic.Int32 }
	inFlight := make(map[string]*counter, jobs)
	for i := range jobs {
		inFlight[fmt.Sprintf("job-%d", i)] = &counter{}
	}
	var (
		mu       sync.Mutex
		cutShort []string
	)
	done := t.Context().Done()
	c.subscribe(g, queue.GroupOptions{Timeout: s.lease}, rec, func(ctx context.Context, j *queue.Job, k call) queue.Result {
		f := inFlight[j.ID]
		n := f.now.Add(1)
		defer f.now.Add(-1) // before the result is applied, so before any next run
		for p := f.peak.Load(); n > p && !f.peak.CompareAndSwap(p, n); p = f.peak.Load() {
		}
		timer := time.NewTimer(hold)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			mu.Lock()
			cutShort = append(cutShort, fmt.Sprintf("%s, run %d, after %v: %v", j.ID, k.Run, time.Since(k.Start), ctx.Err()))
			mu.Unlock()
			return queue.Result{Disposition: queue.Retry, Err: ctx.Err()}
		case <-done: // the subtest is over
			return queue.Result{}
		}
		if k.Run == 1 { // once more, on whichever node takes it
			return queue.Result{Disposition: queue.Retry, Err: errors.New("queuetest: run again")}
		}
		return queue.Result{}
	})
	c.start()
	for id := range inFlight {
		c.enqueue(0, &queue.Job{ID: id, Group: g, Kind: "lease"})
	}
	rec.await(t, s.wait+4*s.lease, "every job to run twice", func(runs []run) bool {
		for id := range inFlight {
			if n := len(runsOf(runs, g, id)); n < 2 || !runsOf(runs, g, id)[n-1].Ended {
				return false
			}
		}
		return true
	})
	c.settle(rec, g)
	mu.Lock()
	require.Empty(t, cutShort, "handler contexts ended before GroupOptions.Timeout %v", s.lease)
	mu.Unlock()
	for id, f := range inFlight {
		require.Equal(t, int32(1), f.peak.Load(), "job %s was running on %d handlers at once:\n%s", id, f.peak.Load(), rec.dump())
		require.Len(t, rec.of(g, id), 2, "runs of job %s:\n%s", id, rec.dump())
	}
}

// testDuplicateEnqueue: enqueueing a (Group, ID) that is live again is
// accepted as done already: it produces no second run.
func (s *suite) testDuplicateEnqueue(t *testing.T) {
	if !s.h.MultiNode && !s.h.Durable {
		t.Skip("queuetest: neither MultiNode nor Durable: the client never enqueues a live (Group, ID) " +
			"on a single-process queue, which need not detect it (see queue.Job.ID)")
	}
	t.Run("Pending", s.testDuplicatePending)
	t.Run("Running", s.testDuplicateRunning)
}

// testDuplicatePending: a job waiting for its RunAt, enqueued again to
// run at once, runs once, at its first RunAt.
func (s *suite) testDuplicatePending(t *testing.T) {
	nodes := s.nodes(2)
	c := s.cluster(t, nodes)
	g := newGroup("duplicate-pending")
	rec := newRecorder()
	gate := make(chan struct{})
	done := t.Context().Done()
	// The handler holds the job until the duplicate is in, so that the job
	// is live throughout, however slow Enqueue is.
	c.subscribe(g, queue.GroupOptions{}, rec, func(context.Context, *queue.Job, call) queue.Result {
		select {
		case <-gate:
		case <-done:
		}
		return queue.Result{}
	})
	c.start()
	at := time.Now().Add(s.delay)
	c.enqueue(0, &queue.Job{ID: "dup", Group: g, Kind: "first", RunAt: at})
	c.enqueue(nodes-1, &queue.Job{ID: "dup", Group: g, Kind: "second"})
	close(gate)
	rec.awaitRuns(t, s.wait+s.delay, g, "dup", 1)
	c.settle(rec, g)
	runs := rec.of(g, "dup")
	require.Len(t, runs, 1, "runs of a job enqueued twice while pending:\n%s", rec.dump())
	require.Equal(t, "first", runs[0].Kind, "the duplicate replaced the live job")
	s.notBefore(t, runs[0].Start, at, "a job enqueued again while pending")
}

// testDuplicateRunning: a job enqueued again while a handler runs it runs
// once.
func (s *suite) testDuplicateRunning(t *testing.T) {
	nodes := s.nodes(2)
	c := s.cluster(t, nodes)
	g := newGroup("duplicate-running")
	rec := newRecorder()
	started := make(chan struct{}, 2)
	gate := make(chan struct{})
	done := t.Context().Done()
	c.subscribe(g, queue.GroupOptions{}, rec, func(context.Context, *queue.Job, call) queue.Result {
		started <- struct{}{}
		select {
		case <-gate:
		case <-done:
		}
		return queue.Result{}
	})
	c.start()
	c.enqueue(0, &queue.Job{ID: "dup", Group: g})
	receive(t, s.wait, "the job to run", started)
	c.enqueue(nodes-1, &queue.Job{ID: "dup", Group: g})
	close(gate)
	c.settle(rec, g)
	require.Len(t, rec.of(g, "dup"), 1, "runs of a job enqueued again while running:\n%s", rec.dump())
}

// testBroadcast: a broadcast group's job runs once on every node; on a
// single node, once.
func (s *suite) testBroadcast(t *testing.T) {
	nodes := s.nodes(3)
	c := s.cluster(t, nodes)
	g := newGroup("broadcast")
	rec := newRecorder()
	c.subscribe(g, queue.GroupOptions{Broadcast: true}, rec, nil)
	c.start()
	// Every node has started: each of them gets the job.
	c.enqueue(0, &queue.Job{ID: "all", Group: g, Kind: "broadcast"})
	rec.await(t, s.wait, fmt.Sprintf("the broadcast job to run on %d node(s)", nodes), func(runs []run) bool {
		seen := make(map[int]bool)
		for _, r := range runsOf(runs, g, "all") {
			seen[r.Node] = true
		}
		return len(seen) == nodes
	})
	c.settle(rec, g)
	perNode := make([]int, nodes)
	for _, r := range rec.of(g, "all") {
		perNode[r.Node]++
	}
	for i, n := range perNode {
		require.Equal(t, 1, n, "runs of the broadcast job on node %d:\n%s", i, rec.dump())
	}
}
