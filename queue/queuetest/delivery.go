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

// testAtLeastOnce: a job that has not been completed runs again.
func (s *suite) testAtLeastOnce(t *testing.T) {
	t.Run("Retry", s.testRetry)
	t.Run("CrashedNode", s.testCrashedNode)
}

// testRetry: a job whose handler returns Retry runs again, and only once
// more when the second run is Done.
func (s *suite) testRetry(t *testing.T) {
	c := s.cluster(t, 1)
	g := newGroup("retry")
	rec := newRecorder()
	c.subscribe(g, queue.GroupOptions{}, rec, func(_ context.Context, _ *queue.Job, k call) queue.Result {
		if k.Run == 1 {
			return queue.Result{Disposition: queue.Retry, Err: errors.New("queuetest: first run fails")}
		}
		return queue.Result{}
	})
	c.start()
	c.enqueue(0, &queue.Job{ID: "job-1", Group: g, Kind: "retry", Payload: []byte("payload")})
	rec.awaitRuns(t, s.wait, g, "job-1", 2)
	c.settle(rec, g)
	runs := rec.of(g, "job-1")
	require.Len(t, runs, 2, "a job retried once, then done, runs twice:\n%s", rec.dump())
	for _, r := range runs {
		require.Equal(t, "retry", r.Kind)
		require.Equal(t, []byte("payload"), r.Payload)
	}
}

// testCrashedNode: the job of a node that died mid-run is run by another
// node once the lease has run out, and not before.
func (s *suite) testCrashedNode(t *testing.T) {
	if s.h.Crash == nil {
		t.Skip("queuetest: Harness.Crash is nil: crash recovery is not tested")
	}
	c := s.cluster(t, 2)
	g := newGroup("crash")
	rec := newRecorder()
	done := t.Context().Done()
	held := make(chan int, 1)
	c.subscribe(g, queue.GroupOptions{Timeout: s.lease}, rec, func(ctx context.Context, _ *queue.Job, k call) queue.Result {
		if k.Run > 1 {
			return queue.Result{}
		}
		held <- k.Node
		// The node is crashed while this run holds the job: its result,
		// if any, must not count.
		select {
		case <-ctx.Done():
		case <-done:
		}
		return queue.Result{Disposition: queue.Retry, Err: errors.New("queuetest: crashed run")}
	})
	c.start()
	c.enqueue(0, &queue.Job{ID: "job-1", Group: g, Kind: "crash"})
	holder := receive(t, s.wait, "the first run of the job", held)
	crashed := time.Now()
	c.crash(holder)
	t.Logf("crashed node %d while it ran the job", holder)

	rec.await(t, s.recovery, fmt.Sprintf("another node to run the crashed node's job (within %d × LeaseTimeout %v)",
		recoveryFactor, s.lease), func(runs []run) bool { return len(runsOf(runs, g, "job-1")) >= 2 })
	runs := rec.of(g, "job-1")
	first, second := runs[0], runs[1]
	t.Logf("run again %v after the crash, %v after the first run began", second.Start.Sub(crashed), second.Start.Sub(first.Start))
	require.NotEqual(t, holder, second.Node, "the crashed node ran the job again")
	require.Equal(t, 2, second.Attempt, "Attempt of the run after the crashed one")
	if gap := second.Start.Sub(first.Start); gap < s.lease-s.tol {
		t.Errorf("queuetest: the crashed node's job ran again %v after its run began, before GroupOptions.Timeout %v: "+
			"a lease must outlast Timeout, or a slow handler's job runs twice at once", gap, s.lease)
	}
	c.settle(rec, g)
	require.Len(t, rec.of(g, "job-1"), 2, "runs of the job:\n%s", rec.dump())
}

// testRunAt: a job does not run before its RunAt.
func (s *suite) testRunAt(t *testing.T) {
	t.Run("Enqueue", s.testRunAtEnqueue)
	t.Run("Retry", s.testRunAtRetry)
}

// testRunAtEnqueue: a job enqueued with a future RunAt does not start
// before it; one with a past RunAt runs at once.
func (s *suite) testRunAtEnqueue(t *testing.T) {
	c := s.cluster(t, 1)
	g := newGroup("run-at")
	rec := newRecorder()
	c.subscribe(g, queue.GroupOptions{}, rec, nil)
	c.start()
	at := time.Now().Add(s.delay)
	c.enqueue(0,
		&queue.Job{ID: "later", Group: g, RunAt: at},
		&queue.Job{ID: "past", Group: g, RunAt: time.Now().Add(-time.Hour)},
		&queue.Job{ID: "now", Group: g},
	)
	rec.await(t, s.wait+s.delay, "the three jobs to run", func(runs []run) bool {
		return len(countByID(runs, g)) == 3
	})
	s.notBefore(t, rec.of(g, "later")[0].Start, at, "a job enqueued with RunAt in the future")
	c.settle(rec, g)
	require.Equal(t, map[string]int{"later": 1, "past": 1, "now": 1}, countByID(rec.all(), g))
}

// testRunAtRetry: a retry does not start before the RunAt of its Result.
func (s *suite) testRunAtRetry(t *testing.T) {
	c := s.cluster(t, 1)
	g := newGroup("retry-at")
	rec := newRecorder()
	retryAt := make(chan time.Time, 1)
	c.subscribe(g, queue.GroupOptions{}, rec, func(_ context.Context, _ *queue.Job, k call) queue.Result {
		if k.Run > 1 {
			return queue.Result{}
		}
		at := time.Now().Add(s.delay)
		retryAt <- at
		return queue.Result{Disposition: queue.Retry, RunAt: at, Err: errors.New("queuetest: retry later")}
	})
	c.start()
	c.enqueue(0, &queue.Job{ID: "job-1", Group: g})
	at := receive(t, s.wait, "the first run", retryAt)
	rec.awaitRuns(t, s.wait+s.delay, g, "job-1", 2)
	s.notBefore(t, rec.of(g, "job-1")[1].Start, at, "a retry")
}

// testAttempts: attempt counts and errors accumulate over runs.
func (s *suite) testAttempts(t *testing.T) {
	t.Run("Retries", s.testAttemptsRetries)
	t.Run("Restart", s.testAttemptsRestart)
	t.Run("Snooze", s.testAttemptsSnooze)
}

// testAttemptsSnooze: a snoozed run does not count: the job comes back no
// sooner than the snooze's RunAt with the Attempt and Errors it had. (A
// backend with a bound on runs tests on its own that snoozes do not reach
// it: River takes a quarter of a second per snooze, so the suite keeps
// their number small.)
func (s *suite) testAttemptsSnooze(t *testing.T) {
	c := s.cluster(t, 1)
	g := newGroup("snooze")
	rec := newRecorder()
	const snoozes = 5
	var lastAt time.Time
	c.subscribe(g, queue.GroupOptions{}, rec, func(_ context.Context, j *queue.Job, k call) queue.Result {
		switch {
		case k.Run == 1:
			return queue.Result{Disposition: queue.Retry, Err: errors.New("fail 1")}
		case k.Run == 2:
			lastAt = time.Now().Add(s.delay)
			return queue.Result{Disposition: queue.Snooze, RunAt: lastAt, Err: errors.New("ignored")}
		case k.Run <= snoozes+1:
			return queue.Result{Disposition: queue.Snooze}
		}
		return queue.Result{}
	})
	c.start()
	c.enqueue(0, &queue.Job{ID: "job-1", Group: g})
	rec.awaitRuns(t, s.wait+s.delay, g, "job-1", snoozes+2)
	c.settle(rec, g)
	runs := rec.of(g, "job-1")
	require.Len(t, runs, snoozes+2, "a job that snoozed %d times, then completed:\n%s", snoozes, rec.dump())
	require.Equal(t, 1, runs[0].Attempt)
	s.notBefore(t, runs[2].Start, lastAt, "a snoozed job")
	for i, r := range runs[1:] {
		require.Equal(t, 2, r.Attempt, "run %d: snoozes do not count as runs", i+2)
		checkErrors(t, r.Errors, 1, fmt.Sprintf("run %d", i+2))
	}
}

// failing returns a handler that fails the first fail runs of every job
// with Retry and the error "fail <run>", and completes the next one.
func failing(fail int) handlerFunc {
	return func(_ context.Context, _ *queue.Job, k call) queue.Result {
		if k.Run > fail {
			return queue.Result{}
		}
		return queue.Result{Disposition: queue.Retry, Err: fmt.Errorf("fail %d", k.Run)}
	}
}

// sampleTrace returns the trace context the suite gives some jobs: W3C
// trace context headers, as the outhook client's default propagator
// writes them.
func sampleTrace() map[string]string {
	return map[string]string{
		"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"tracestate":  "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
	}
}

// checkErrors asserts that errs records runs 1..n of a failing handler,
// oldest first.
func checkErrors(t *testing.T, errs []queue.AttemptError, n int, what string) {
	t.Helper()
	require.Len(t, errs, n, "%s: Errors %v", what, errs)
	for i, e := range errs {
		require.Equal(t, i+1, e.Attempt, "%s: Errors[%d].Attempt", what, i)
		require.Equal(t, fmt.Sprintf("fail %d", i+1), e.Error, "%s: Errors[%d].Error", what, i)
		require.False(t, e.At.IsZero(), "%s: Errors[%d].At is zero", what, i)
		if i > 0 {
			require.False(t, e.At.Before(errs[i-1].At), "%s: Errors not oldest first: %v", what, errs)
		}
	}
}

// testAttemptsRetries: Attempt is 1, 2, 3 over three runs, Errors grows by
// the error of each failed run, and the job's other fields are unchanged.
func (s *suite) testAttemptsRetries(t *testing.T) {
	c := s.cluster(t, s.nodes(2))
	g := newGroup("attempts")
	rec := newRecorder()
	c.subscribe(g, queue.GroupOptions{}, rec, failing(2))
	c.start()
	created := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	before := time.Now()
	c.enqueue(0,
		&queue.Job{ID: "set", Group: g, Kind: "attempts", Payload: []byte(`{"n":1}`), CreatedAt: created, Trace: sampleTrace()},
		&queue.Job{ID: "zero", Group: g, Kind: "attempts", Payload: []byte(`{"n":2}`)},
	)
	after := time.Now()
	for _, id := range []string{"set", "zero"} {
		rec.awaitRuns(t, s.wait, g, id, 3)
	}
	c.settle(rec, g)
	for _, id := range []string{"set", "zero"} {
		runs := rec.of(g, id)
		require.Equal(t, []int{1, 2, 3}, attempts(runs), "Attempt of the runs of job %s", id)
		for i, r := range runs {
			checkErrors(t, r.Errors, i, fmt.Sprintf("job %s, run %d", id, i+1))
			require.Equal(t, "attempts", r.Kind, "Kind")
			require.False(t, r.CreatedAt.IsZero(), "CreatedAt of job %s is zero", id)
			require.True(t, r.CreatedAt.Equal(runs[0].CreatedAt), "CreatedAt of job %s changed: %v, then %v", id, runs[0].CreatedAt, r.CreatedAt)
			if id == "set" {
				require.Equal(t, sampleTrace(), r.Trace, "Trace of job %s, run %d", id, i+1)
			} else {
				require.Nil(t, r.Trace, "Trace of job %s, enqueued without one, run %d", id, i+1)
			}
		}
		switch id {
		case "set":
			require.Equal(t, []byte(`{"n":1}`), runs[0].Payload)
			require.True(t, runs[0].CreatedAt.Equal(created), "CreatedAt set by the caller became %v", runs[0].CreatedAt)
		case "zero":
			require.Equal(t, []byte(`{"n":2}`), runs[0].Payload)
			require.WithinRange(t, runs[0].CreatedAt, before.Add(-s.tol), after.Add(s.tol), "CreatedAt filled in by the queue")
		}
	}
}

// testAttemptsRestart: the attempt count and errors of a job survive a
// stop and a new queue.
func (s *suite) testAttemptsRestart(t *testing.T) {
	if !s.h.Durable {
		t.Skip("queuetest: Harness.Durable is false: jobs do not survive a restart")
	}
	c := s.cluster(t, 1)
	g := newGroup("restart")
	rec := newRecorder()
	// Every run on the first queue fails and asks to run again after the
	// restart delay, so that the job waits in the queue while it stops.
	c.subscribe(g, queue.GroupOptions{Timeout: s.lease}, rec, func(_ context.Context, _ *queue.Job, k call) queue.Result {
		if k.Node > 0 {
			return queue.Result{}
		}
		return queue.Result{Disposition: queue.Retry, RunAt: time.Now().Add(s.delay), Err: fmt.Errorf("fail %d", k.Run)}
	})
	c.start()
	c.enqueue(0, &queue.Job{ID: "job-1", Group: g, Kind: "restart", Payload: []byte("p"), Trace: sampleTrace()})
	rec.awaitRuns(t, s.wait, g, "job-1", 1)
	c.stop(0)
	before := len(rec.of(g, "job-1"))

	n := c.add()
	c.subscribeOn(n, g, queue.GroupOptions{Timeout: s.lease}, rec, nil)
	c.start()
	rec.awaitRuns(t, s.wait+s.delay, g, "job-1", before+1)
	r := rec.of(g, "job-1")[before]
	require.Equal(t, n.id, r.Node, "a stopped queue ran the job")
	require.Equal(t, before+1, r.Attempt, "Attempt after %d runs and a restart", before)
	checkErrors(t, r.Errors, before, "after a restart")
	require.Equal(t, []byte("p"), r.Payload)
	require.Equal(t, "restart", r.Kind)
	require.Equal(t, sampleTrace(), r.Trace, "Trace after a restart")
}

// testDead: a Dead result lists the job in Dead, most recent first, with
// its errors and attempt count, and the job never runs again.
func (s *suite) testDead(t *testing.T) {
	c := s.cluster(t, 1)
	g := newGroup("dead")
	rec := newRecorder()
	c.subscribe(g, queue.GroupOptions{}, rec, func(_ context.Context, j *queue.Job, k call) queue.Result {
		if j.ID == "a" && k.Run == 1 {
			return queue.Result{Disposition: queue.Retry, Err: errors.New("fail 1")}
		}
		return queue.Result{Disposition: queue.Dead, Err: fmt.Errorf("fail %d", k.Run)}
	})
	c.start()
	n := c.nodes[0]
	isDead := func(id string) func() bool {
		return func() bool {
			for _, j := range c.findDead(n, g) {
				if j.ID == id {
					return true
				}
			}
			return false
		}
	}
	// One at a time, so that b is the more recent.
	c.enqueue(0, &queue.Job{ID: "a", Group: g, Kind: "dead", Payload: []byte("pa"), Trace: sampleTrace()})
	eventually(t, s.wait, "job a in Dead", isDead("a"))
	c.enqueue(0, &queue.Job{ID: "b", Group: g, Kind: "dead", Payload: []byte("pb")})
	eventually(t, s.wait, "job b in Dead", isDead("b"))

	dead := c.findDead(n, g)
	require.Len(t, dead, 2, "dead jobs of the group")
	require.Equal(t, "b", dead[0].ID, "Dead lists the most recent first")
	require.Equal(t, "a", dead[1].ID, "Dead lists the most recent first")
	a, b := dead[1], dead[0]
	checkErrors(t, a.Errors, 2, "dead job a")
	checkErrors(t, b.Errors, 1, "dead job b")
	require.Equal(t, 2, a.Attempt, "Attempt of a job dead on its second run")
	require.Equal(t, 1, b.Attempt, "Attempt of a job dead on its first run")
	require.Equal(t, "dead", a.Kind)
	require.Equal(t, []byte("pa"), a.Payload)
	require.Equal(t, []byte("pb"), b.Payload)
	require.False(t, a.CreatedAt.IsZero(), "CreatedAt of a dead job")
	require.Equal(t, sampleTrace(), a.Trace, "Trace of a dead job")
	require.Nil(t, b.Trace, "Trace of a dead job enqueued without one")

	one, err := n.q.Dead(c.ctx(), 1)
	require.NoError(t, err)
	require.Len(t, one, 1, "Dead(ctx, 1)")
	none, err := n.q.Dead(c.ctx(), 0)
	require.NoError(t, err)
	require.Empty(t, none, "Dead(ctx, 0)")

	c.settle(rec, g)
	require.Equal(t, map[string]int{"a": 2, "b": 1}, countByID(rec.all(), g), "a dead job ran again:\n%s", rec.dump())
}

// testNext: the Next jobs of a Done result run in their groups, each once,
// and the job that produced them does not run again.
func (s *suite) testNext(t *testing.T) {
	c := s.cluster(t, s.nodes(2))
	gp, gc := newGroup("next"), newGroup("next-child")
	rec := newRecorder()
	laterAt := make(chan time.Time, 1)
	c.subscribe(gp, queue.GroupOptions{}, rec, func(_ context.Context, j *queue.Job, _ call) queue.Result {
		if j.ID != "parent" {
			return queue.Result{}
		}
		at := time.Now().Add(s.delay)
		laterAt <- at
		return queue.Result{Next: []*queue.Job{
			{ID: "child-1", Group: gc, Kind: "child", Payload: []byte("one"), Trace: sampleTrace()},
			{ID: "child-2", Group: gp, Kind: "child", Payload: []byte("two")},
			{ID: "child-3", Group: gc, Kind: "child", Payload: []byte("three"), RunAt: at},
		}}
	})
	c.subscribe(gc, queue.GroupOptions{}, rec, nil)
	c.start()
	c.enqueue(0, &queue.Job{ID: "parent", Group: gp, Kind: "parent"})
	at := receive(t, s.wait, "the parent job to run", laterAt)
	rec.await(t, s.wait+s.delay, "the three Next jobs to run", func(runs []run) bool {
		return len(runsOf(runs, gc, "child-1")) > 0 && len(runsOf(runs, gp, "child-2")) > 0 &&
			len(runsOf(runs, gc, "child-3")) > 0
	})
	c.settle(rec, gp, gc)
	runs := rec.all()
	require.Equal(t, map[string]int{"parent": 1, "child-2": 1}, countByID(runs, gp), "runs:\n%s", rec.dump())
	require.Equal(t, map[string]int{"child-1": 1, "child-3": 1}, countByID(runs, gc), "runs:\n%s", rec.dump())
	for _, x := range []struct{ g, id, payload string }{{gc, "child-1", "one"}, {gp, "child-2", "two"}, {gc, "child-3", "three"}} {
		r := runsOf(runs, x.g, x.id)[0]
		require.Equal(t, 1, r.Attempt, "Attempt of Next job %s", x.id)
		require.Equal(t, "child", r.Kind)
		require.Equal(t, []byte(x.payload), r.Payload)
		if x.id == "child-1" {
			require.Equal(t, sampleTrace(), r.Trace, "Trace of Next job %s", x.id)
		} else {
			require.Nil(t, r.Trace, "Trace of Next job %s, made without one", x.id)
		}
	}
	s.notBefore(t, runsOf(runs, gc, "child-3")[0].Start, at, "a Next job with RunAt")
}
