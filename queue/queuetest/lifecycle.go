package queuetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook/queue"
)

// testStop: Stop drains running work, closes the queue, and cancels
// handlers when its context is done.
func (s *suite) testStop(t *testing.T) {
	t.Run("WaitsForHandlers", s.testStopWaits)
	t.Run("Closed", s.testStopClosed)
	t.Run("CancelledContext", s.testStopCancelled)
}

// stopResult is what a Stop called in the background returned, and
// whether the test's handler had returned by then.
type stopResult struct {
	err         error
	handlerDone bool
}

// secondStop asserts that stopping a stopped queue again is safe.
func (c *cluster) secondStop(i int) {
	c.t.Helper()
	err := c.nodes[i].q.Stop(c.ctx())
	if err != nil && !errors.Is(err, queue.ErrClosed) {
		c.t.Errorf("queuetest: a second Stop returned %v, want nil or queue.ErrClosed", err)
	}
}

// testStopWaits: Stop waits for a running handler, and applies its result.
func (s *suite) testStopWaits(t *testing.T) {
	c := s.cluster(t, 1)
	g, probe := newGroup("stop-waits"), newGroup("stop-probe")
	rec := newRecorder()
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	var handlerDone atomic.Bool
	done := t.Context().Done()
	c.subscribe(g, queue.GroupOptions{}, rec, func(context.Context, *queue.Job, call) queue.Result {
		started <- struct{}{}
		select {
		case <-release:
		case <-done:
		}
		handlerDone.Store(true)
		return queue.Result{Disposition: queue.Dead, Err: errors.New("applied at stop")}
	})
	c.subscribe(probe, queue.GroupOptions{}, rec, nil)
	c.start()
	q := c.nodes[0].q
	c.enqueue(0, &queue.Job{ID: "held", Group: g, Kind: "stop"})
	receive(t, s.wait, "the job to run", started)

	stopped := make(chan stopResult, 1)
	c.nodes[0].stopped = true
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.wait)
		defer cancel()
		err := q.Stop(ctx)
		stopped <- stopResult{err: err, handlerDone: handlerDone.Load()}
	}()
	// Release the handler only once Stop has begun, which Enqueue reveals
	// by failing; until then the probes are ordinary jobs.
	var probes int
	var last error
	eventually(t, s.wait, "Enqueue to fail with queue.ErrClosed once Stop has begun", func() bool {
		probes++
		last = q.Enqueue(c.ctx(), &queue.Job{ID: fmt.Sprintf("probe-%d", probes), Group: probe})
		if last != nil && !errors.Is(last, queue.ErrClosed) {
			t.Errorf("queuetest: Enqueue during Stop returned %v, want nil or an error matching queue.ErrClosed", last)
			return true
		}
		return last != nil
	})
	close(release)
	res := receive(t, s.wait, "Stop to return", stopped)
	require.NoError(t, res.err, "Stop")
	require.True(t, res.handlerDone, "Stop returned before the running handler did")
	var found *queue.Job
	for _, j := range c.findDead(c.nodes[0], g) {
		if j.ID == "held" {
			found = j
		}
	}
	require.NotNil(t, found, "the Dead result of a handler running during Stop was not applied")
	require.Len(t, found.Errors, 1)
	require.Equal(t, "applied at stop", found.Errors[0].Error)
	c.secondStop(0)
}

// testStopClosed: after Stop, Enqueue and Subscribe fail with
// queue.ErrClosed, and a second Stop is safe.
func (s *suite) testStopClosed(t *testing.T) {
	c := s.cluster(t, 1)
	g := newGroup("stop-closed")
	rec := newRecorder()
	c.subscribe(g, queue.GroupOptions{}, rec, nil)
	c.start()
	c.enqueue(0, &queue.Job{ID: "before", Group: g})
	rec.awaitRuns(t, s.wait, g, "before", 1)
	c.stop(0)
	q := c.nodes[0].q
	require.ErrorIs(t, q.Enqueue(c.ctx(), &queue.Job{ID: "after", Group: g}), queue.ErrClosed, "Enqueue after Stop")
	require.ErrorIs(t, q.Subscribe(newGroup("late"), rec.handler(0, nil), queue.GroupOptions{}), queue.ErrClosed,
		"Subscribe after Stop")
	c.secondStop(0)
	require.Empty(t, rec.of(g, "after"), "a job enqueued after Stop ran")
}

// testStopCancelled: Stop with a done context cancels the handlers'
// contexts, waits for them, and returns ctx.Err(). With Durable, the job
// whose run was cut short runs again on a new queue, its cancellation not
// recorded as a failure.
func (s *suite) testStopCancelled(t *testing.T) {
	c := s.cluster(t, 1)
	g := newGroup("stop-cancel")
	rec := newRecorder()
	started := make(chan struct{}, 1)
	giveUp := make(chan struct{})
	var sawCancel atomic.Bool
	done := t.Context().Done()
	const cutShort = "queuetest: cut short by Stop"
	c.subscribe(g, queue.GroupOptions{Timeout: s.lease}, rec, func(ctx context.Context, _ *queue.Job, k call) queue.Result {
		if k.Run > 1 {
			return queue.Result{}
		}
		started <- struct{}{}
		select {
		case <-ctx.Done():
			sawCancel.Store(true)
			return queue.Result{Disposition: queue.Retry, Err: fmt.Errorf("%s: %w", cutShort, ctx.Err())}
		case <-giveUp:
		case <-done:
		}
		return queue.Result{}
	})
	c.start()
	q := c.nodes[0].q
	c.enqueue(0, &queue.Job{ID: "held", Group: g, Kind: "cancel"})
	receive(t, s.wait, "the job to run", started)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	stopped := make(chan stopResult, 1)
	c.nodes[0].stopped = true
	go func() {
		err := q.Stop(ctx)
		stopped <- stopResult{err: err, handlerDone: sawCancel.Load()}
	}()
	timer := time.NewTimer(s.wait)
	defer timer.Stop()
	var res stopResult
	select {
	case res = <-stopped:
	case <-timer.C:
		close(giveUp)
		select { // the handler returns now; so should Stop
		case <-stopped:
		case <-time.After(s.wait):
		}
		t.Fatalf("queuetest: Stop with a cancelled context had not returned after %v: "+
			"it must cancel the handlers' contexts", s.wait)
	}
	require.ErrorIs(t, res.err, context.Canceled, "Stop with a cancelled context returns ctx.Err()")
	require.True(t, res.handlerDone, "Stop returned before the running handler saw its context cancelled and returned")
	c.secondStop(0)

	if !s.h.Durable {
		return
	}
	n := c.add()
	c.subscribeOn(n, g, queue.GroupOptions{Timeout: s.lease}, rec, nil)
	c.start()
	// The backend may hold the cut-short run's lease until it runs out.
	rec.await(t, s.wait+s.recovery, "a new queue to run the job cut short by Stop", func(runs []run) bool {
		return len(runsOf(runs, g, "held")) >= 2
	})
	r := rec.of(g, "held")[1]
	t.Logf("the job cut short by Stop ran again with Attempt %d, Errors %v", r.Attempt, r.Errors)
	for _, e := range r.Errors {
		require.False(t, strings.Contains(e.Error, cutShort),
			"a run cut short by Stop (Retry with a context error) was recorded as a failure: %v", e)
	}
}

// testWaitIdle: WaitIdle returns only once nothing is ready, delayed or
// running.
func (s *suite) testWaitIdle(t *testing.T) {
	c := s.cluster(t, 1)
	idler, ok := c.nodes[0].q.(queue.Idler)
	if !ok {
		t.Skipf("queuetest: %T does not implement queue.Idler", c.nodes[0].q)
	}
	g, gc := newGroup("idle"), newGroup("idle-chain")
	rec := newRecorder()
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	var handlerDone atomic.Bool
	done := t.Context().Done()
	c.subscribe(g, queue.GroupOptions{}, rec, func(context.Context, *queue.Job, call) queue.Result {
		started <- struct{}{}
		select {
		case <-release:
		case <-done:
		}
		handlerDone.Store(true)
		return queue.Result{}
	})
	// A chain of jobs, each admitting the next as it completes; some fail
	// once and some children wait a little: the queue is never idle until
	// the last has run.
	const chain = 100
	var finished atomic.Int32
	c.subscribe(gc, queue.GroupOptions{}, rec, func(_ context.Context, j *queue.Job, k call) queue.Result {
		var i int
		_, _ = fmt.Sscanf(j.ID, "link-%d", &i)
		if i%10 == 3 && k.Run == 1 {
			return queue.Result{Disposition: queue.Retry, Err: errors.New("queuetest: once more")}
		}
		finished.Add(1)
		if i+1 == chain {
			return queue.Result{}
		}
		next := &queue.Job{ID: fmt.Sprintf("link-%d", i+1), Group: gc}
		if i%25 == 7 {
			next.RunAt = time.Now().Add(5 * time.Millisecond)
		}
		return queue.Result{Next: []*queue.Job{next}}
	})
	c.start()

	require.NoError(t, idler.WaitIdle(c.ctx()), "WaitIdle on an empty queue")

	c.enqueue(0, &queue.Job{ID: "held", Group: g})
	receive(t, s.wait, "the job to run", started)
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, idler.WaitIdle(short), context.DeadlineExceeded, "WaitIdle while a handler runs")
	close(release)
	require.NoError(t, idler.WaitIdle(c.ctx()))
	require.True(t, handlerDone.Load(), "WaitIdle returned before the running handler did")

	c.enqueue(0, &queue.Job{ID: "link-0", Group: gc})
	const waiters = 4
	errs := make(chan error, waiters)
	ctx := c.ctx()
	for range waiters {
		go func() {
			if err := idler.WaitIdle(ctx); err != nil {
				errs <- err
			} else if n := finished.Load(); n != chain {
				errs <- fmt.Errorf("WaitIdle returned after %d of %d chained jobs", n, chain)
			} else {
				errs <- nil
			}
		}()
	}
	for range waiters {
		require.NoError(t, receive(t, s.wait, "WaitIdle to return", errs))
	}
}

// testUnknownGroup: a job for a group nobody subscribed is refused, and
// nothing of its call admitted, by single-process queues; others keep it
// until a handler of its group comes.
func (s *suite) testUnknownGroup(t *testing.T) {
	c := s.cluster(t, 1)
	g, unknown := newGroup("known"), newGroup("unknown")
	rec := newRecorder()
	c.subscribe(g, queue.GroupOptions{}, rec, nil)
	c.start()
	q := c.nodes[0].q
	if s.h.UnknownGroupRefused {
		err := q.Enqueue(c.ctx(), &queue.Job{ID: "valid", Group: g}, &queue.Job{ID: "orphan", Group: unknown})
		require.ErrorIs(t, err, queue.ErrUnknownGroup, "Enqueue with a job for an unknown group")
		require.ErrorIs(t, q.Enqueue(c.ctx(), &queue.Job{ID: "orphan", Group: unknown}), queue.ErrUnknownGroup)
		c.settle(rec, g)
		require.Empty(t, rec.of(g, "valid"), "Enqueue refused a call but admitted some of its jobs")
		return
	}
	require.NoError(t, q.Enqueue(c.ctx(), &queue.Job{ID: "orphan", Group: unknown}),
		"Enqueue for a group no node serves yet (Harness.UnknownGroupRefused is false)")
	c.subscribeOn(c.nodes[0], unknown, queue.GroupOptions{}, rec, nil)
	rec.awaitRuns(t, s.wait, unknown, "orphan", 1)
}

// testSubscribe: groups subscribed before and after Start both run, and a
// group cannot be subscribed twice.
func (s *suite) testSubscribe(t *testing.T) {
	c := s.cluster(t, 1)
	early, late := newGroup("early"), newGroup("late")
	rec := newRecorder()
	c.subscribe(early, queue.GroupOptions{}, rec, nil)
	c.start()
	c.subscribe(late, queue.GroupOptions{}, rec, nil)
	require.Error(t, c.nodes[0].q.Subscribe(early, rec.handler(0, nil), queue.GroupOptions{}), "a second Subscribe of a group")
	c.enqueue(0, &queue.Job{ID: "1", Group: early}, &queue.Job{ID: "2", Group: late})
	rec.awaitRuns(t, s.wait, early, "1", 1)
	rec.awaitRuns(t, s.wait, late, "2", 1)
}
