package queuetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook/queue"
)

// testStats: a queue that implements queue.StatsReporter counts its jobs
// by what they wait for. Jobs enqueued before Start and due now are ready,
// jobs due later are delayed once a node has seen them, a job its handler
// gave up on dead; the oldest ready job's time lies between its Enqueue and
// the Stats call; finished jobs are not counted. A queue that does not
// implement it passes (the interface is optional).
//
// Before Start, a job due later may still count as ready: a broker that
// cannot delay a message's first delivery (NATS JetStream before 2.12)
// learns its RunAt only when a node receives it, and reading every
// undelivered message would not be cheap. After Start, once the ready
// jobs are done, the jobs due later must count as delayed, not ready or
// running, and OldestDelayed must be set.
//
// A backend whose nodes share a database between subtests (Postgres) may
// hold other subtests' jobs, which no node runs any more: the counts are
// compared with a first snapshot, and unfinished jobs are counted together,
// as one of those may move between ready, delayed and running meanwhile
// (due, or taken back from a node that stopped).
func (s *suite) testStats(t *testing.T) {
	c := s.cluster(t, 1)
	sr, ok := c.nodes[0].q.(queue.StatsReporter)
	if !ok {
		t.Log("the queue does not implement queue.StatsReporter")
		return
	}
	stats := func() queue.Stats {
		t.Helper()
		st, err := sr.Stats(context.Background())
		require.NoError(t, err, "Stats")
		return st
	}
	live := func(st queue.Stats) int { return st.Ready + st.Delayed + st.Running }
	work, doomed := newGroup("stats"), newGroup("statsdead")
	rec := newRecorder()
	c.subscribe(work, queue.GroupOptions{}, rec, func(context.Context, *queue.Job, call) queue.Result { return queue.Result{} })
	c.subscribe(doomed, queue.GroupOptions{}, rec, func(context.Context, *queue.Job, call) queue.Result {
		return queue.Result{Disposition: queue.Dead, Err: errors.New("gave up")}
	})
	base := stats()

	// Some backends keep milliseconds, or a clock a little apart.
	before := time.Now().Add(-time.Millisecond - s.tol)
	c.enqueue(0, &queue.Job{ID: "r1", Group: work}, &queue.Job{ID: "r2", Group: work}, &queue.Job{ID: "d", Group: doomed})
	later := time.Now().Add(time.Hour)
	c.enqueue(0, &queue.Job{ID: "l1", Group: work, RunAt: later}, &queue.Job{ID: "l2", Group: work, RunAt: later})
	st := stats()
	require.Equal(t, 5, live(st)-live(base), "five unfinished jobs more: %+v, before %+v", st, base)
	require.GreaterOrEqual(t, st.Ready-base.Ready, 3, "not started: the jobs due now are ready (and no node runs the others)")
	require.GreaterOrEqual(t, st.Ready-base.Ready+st.Delayed-base.Delayed, 5,
		"not started: the jobs due in an hour are delayed, or ready until a node has seen them")
	require.Equal(t, base.Dead, st.Dead)
	if base.Ready == 0 {
		require.False(t, st.OldestReady.Before(before), "OldestReady %s, enqueued from %s", st.OldestReady, before)
	}
	require.False(t, st.OldestReady.After(time.Now().Add(s.tol)), "OldestReady %s is in the future", st.OldestReady)

	c.start()
	// A node that hands a job due later back to its broker (NATS) holds
	// it for a moment: wait until both jobs due later are delayed.
	eventually(t, s.wait, "the ready jobs finished, one of them dead, the others delayed", func() bool {
		st = stats()
		return st.Dead == base.Dead+1 && live(st) == live(base)+2 && st.Delayed >= 2
	})
	require.GreaterOrEqual(t, st.Delayed, 2, "the jobs due in an hour are delayed: %+v", st)
	require.False(t, st.OldestDelayed.IsZero(), "OldestDelayed")
	require.False(t, st.OldestDelayed.After(time.Now().Add(s.tol)), "OldestDelayed %s is in the future", st.OldestDelayed)
	if live(base) == 0 {
		require.Equal(t, 2, st.Delayed)
		require.True(t, st.OldestReady.IsZero(), "OldestReady with no ready job: %s", st.OldestReady)
	}
}
