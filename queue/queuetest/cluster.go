package queuetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook/queue"
)

// pollInterval is how often eventually checks its condition.
const pollInterval = 5 * time.Millisecond

// cluster is the queues of one subtest, one per node.
type cluster struct {
	t       *testing.T
	s       *suite
	nodes   []*node
	barrier int             // barrier jobs enqueued so far
	opCtx   context.Context // see ctx
	opEnd   time.Time       // opCtx's deadline
}

// node is one queue of a cluster.
type node struct {
	id      int
	q       queue.Queue
	started bool
	stopped bool // Stop has been called
	crashed bool
}

// live reports whether the node may still run jobs.
func (n *node) live() bool { return !n.stopped && !n.crashed }

// cluster makes n queues from NewQueue; n must be 1 unless the harness is
// multi-node.
func (s *suite) cluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := &cluster{t: t, s: s}
	for range n {
		c.add()
	}
	return c
}

// add makes one more queue. Its Stop is registered for cleanup unless the
// test crashes it.
func (c *cluster) add() *node {
	t := c.t
	t.Helper()
	if !c.s.h.MultiNode {
		for _, n := range c.nodes {
			if n.live() {
				t.Fatal("queuetest: internal error: two live queues on a single-node harness")
			}
		}
	}
	q := c.s.h.NewQueue(t)
	require.NotNil(t, q, "Harness.NewQueue returned nil")
	n := &node{id: len(c.nodes), q: q}
	c.nodes = append(c.nodes, n)
	t.Cleanup(func() {
		if n.crashed {
			return
		}
		// The subtest's context is done by now, so blocked handlers of the
		// suite have returned.
		ctx, cancel := context.WithTimeout(context.Background(), c.s.wait)
		defer cancel()
		if err := q.Stop(ctx); err != nil && !errors.Is(err, queue.ErrClosed) && !n.stopped {
			t.Errorf("queuetest: Stop of node %d at cleanup: %v", n.id, err)
		}
	})
	return n
}

// live returns the nodes not stopped or crashed.
func (c *cluster) live() []*node {
	var out []*node
	for _, n := range c.nodes {
		if n.live() {
			out = append(out, n)
		}
	}
	return out
}

// subscribe subscribes group on every live node with a recording handler
// that calls fn.
func (c *cluster) subscribe(group string, opts queue.GroupOptions, rec *recorder, fn handlerFunc) {
	c.t.Helper()
	for _, n := range c.live() {
		c.subscribeOn(n, group, opts, rec, fn)
	}
}

// subscribeOn subscribes group on one node.
func (c *cluster) subscribeOn(n *node, group string, opts queue.GroupOptions, rec *recorder, fn handlerFunc) {
	c.t.Helper()
	require.NoError(c.t, n.q.Subscribe(group, rec.handler(n.id, fn), opts), "Subscribe %s on node %d", group, n.id)
}

// start starts every live node not started yet.
func (c *cluster) start() {
	c.t.Helper()
	for _, n := range c.live() {
		if !n.started {
			require.NoError(c.t, n.q.Start(context.Background()), "Start of node %d", n.id)
			n.started = true
		}
	}
}

// ctx returns a context for one call to a queue, which ends at least half
// the suite's wait timeout from now. Call it from the test's goroutine.
func (c *cluster) ctx() context.Context {
	if c.opCtx == nil || time.Until(c.opEnd) < c.s.wait/2 {
		c.opEnd = time.Now().Add(c.s.wait)
		ctx, cancel := context.WithDeadline(context.Background(), c.opEnd)
		c.t.Cleanup(cancel)
		c.opCtx = ctx
	}
	return c.opCtx
}

// enqueue enqueues jobs on node i, failing the test on error.
func (c *cluster) enqueue(i int, jobs ...*queue.Job) {
	c.t.Helper()
	require.NoError(c.t, c.nodes[i].q.Enqueue(c.ctx(), jobs...), "Enqueue on node %d", i)
}

// stop stops node i, failing the test on error.
func (c *cluster) stop(i int) {
	c.t.Helper()
	c.nodes[i].stopped = true
	require.NoError(c.t, c.nodes[i].q.Stop(c.ctx()), "Stop of node %d", i)
}

// crash crashes node i with Harness.Crash.
func (c *cluster) crash(i int) {
	c.t.Helper()
	c.nodes[i].crashed = true
	c.s.h.Crash(c.t, c.nodes[i].q)
}

// settle waits until the live nodes have run everything of groups that is
// due now, so that the test can assert that something did not happen: it
// waits for the handlers running on live nodes to return, then calls
// WaitIdle when every live queue is an Idler, and otherwise waits for a
// barrier job per group, due a little later, which rec's handlers record.
func (c *cluster) settle(rec *recorder, groups ...string) {
	c.t.Helper()
	live := c.live()
	require.NotEmpty(c.t, live, "queuetest: internal error: settle with no live node")
	isLive := make(map[int]bool, len(live))
	for _, n := range live {
		isLive[n.id] = true
	}
	rec.await(c.t, c.s.wait, "the running handlers to return", func(runs []run) bool {
		for _, r := range runs {
			if !r.Ended && isLive[r.Node] {
				return false
			}
		}
		return true
	})
	idlers := make([]queue.Idler, 0, len(live))
	for _, n := range live {
		if i, ok := n.q.(queue.Idler); ok {
			idlers = append(idlers, i)
		}
	}
	if len(idlers) == len(live) {
		for i, q := range idlers {
			require.NoError(c.t, q.WaitIdle(c.ctx()), "WaitIdle of node %d", live[i].id)
		}
		return
	}
	at := time.Now().Add(c.s.barrier)
	ids := make([]string, len(groups))
	for i, g := range groups {
		c.barrier++
		ids[i] = fmt.Sprintf("barrier-%d", c.barrier)
		c.enqueue(live[0].id, &queue.Job{ID: ids[i], Group: g, Kind: barrierKind, RunAt: at})
	}
	for i, g := range groups {
		rec.awaitBarrier(c.t, c.s.wait, g, ids[i])
	}
}

// eventually polls cond until it holds, failing t after within. It is the
// wait of last resort, for state a queue exposes only by being asked (its
// dead jobs, its being closed).
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("queuetest: timed out after %v waiting for %s", within, what)
		}
		<-tick.C
	}
}

// receive waits for a value on ch, failing t after within.
func receive[T any](t *testing.T, within time.Duration, what string, ch <-chan T) T {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("queuetest: timed out after %v waiting for %s", within, what)
		panic("unreachable")
	}
}

// notBefore asserts that a run that started at start did not start before
// at, allowing the harness's clock tolerance.
func (s *suite) notBefore(t *testing.T, start, at time.Time, what string) {
	t.Helper()
	if early := at.Sub(start); early > s.tol {
		t.Errorf("queuetest: %s started %v before its RunAt (ClockTolerance %v)", what, early, s.tol)
	}
}

// findDead returns the dead jobs of group among the most recent ones, most
// recent first.
func (c *cluster) findDead(n *node, group string) []*queue.Job {
	c.t.Helper()
	const limit = 1000
	jobs, err := n.q.Dead(c.ctx(), limit)
	require.NoError(c.t, err, "Dead")
	var out []*queue.Job
	for _, j := range jobs {
		require.NotNil(c.t, j, "Dead returned a nil job")
		if j.Group == group {
			out = append(out, j)
		}
	}
	return out
}
