package natsqueue_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook/natsqueue"
	"github.com/outhook/outhook/queue"
)

// TestStats: a job a handler holds is running, a job retried later is
// delayed (with the oldest one's CreatedAt), a dead job is counted from
// the dead-letter stream, and a job of a group no node has subscribed is
// ready, with its CreatedAt as the oldest ready time.
func TestStats(t *testing.T) {
	q, _ := newQueue(t, natsqueue.Config{Stream: newStream(t)})
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{}, 1)
	require.NoError(t, q.Subscribe("block", func(ctx context.Context, _ *queue.Job) queue.Result {
		started <- struct{}{}
		select {
		case <-release:
			return queue.Result{}
		case <-ctx.Done():
			return queue.Result{Disposition: queue.Retry, Err: ctx.Err()}
		}
	}, queue.GroupOptions{}))
	require.NoError(t, q.Subscribe("retry", func(context.Context, *queue.Job) queue.Result {
		return queue.Result{Disposition: queue.Retry, RunAt: time.Now().Add(time.Hour), Err: errors.New("later")}
	}, queue.GroupOptions{}))
	require.NoError(t, q.Subscribe("dead", func(context.Context, *queue.Job) queue.Result {
		return queue.Result{Disposition: queue.Dead, Err: errors.New("never")}
	}, queue.GroupOptions{}))

	st, err := q.Stats(ctx(t))
	require.NoError(t, err)
	require.Equal(t, queue.Stats{}, st, "nothing enqueued: no stream yet")

	start(t, q)
	t0 := time.Now().UTC()
	require.NoError(t, q.Enqueue(ctx(t),
		&queue.Job{ID: "elsewhere", Group: "no one here", CreatedAt: t0.Add(-3 * time.Minute)},
		&queue.Job{ID: "r1", Group: "retry", CreatedAt: t0.Add(-2 * time.Minute)},
		&queue.Job{ID: "r2", Group: "retry", CreatedAt: t0.Add(-time.Minute)},
		&queue.Job{ID: "b", Group: "block", CreatedAt: t0},
		&queue.Job{ID: "d", Group: "dead", CreatedAt: t0},
	))
	<-started
	want := queue.Stats{Ready: 1, Running: 1, Delayed: 2, Dead: 1, OldestReady: t0.Add(-3 * time.Minute), OldestDelayed: t0.Add(-2 * time.Minute)}
	require.Eventually(t, func() bool {
		st, err = q.Stats(ctx(t))
		require.NoError(t, err)
		return st.Ready == want.Ready && st.Running == want.Running && st.Delayed == want.Delayed && st.Dead == want.Dead
	}, testTimeout, 20*time.Millisecond, "want %+v", want)
	require.True(t, st.OldestReady.Equal(want.OldestReady), "OldestReady %s, want %s", st.OldestReady, want.OldestReady)
	require.True(t, st.OldestDelayed.Equal(want.OldestDelayed), "OldestDelayed %s, want %s", st.OldestDelayed, want.OldestDelayed)

	release <- struct{}{}
	require.Eventually(t, func() bool {
		st, err = q.Stats(ctx(t))
		require.NoError(t, err)
		return st.Running == 0
	}, testTimeout, 20*time.Millisecond)
	require.Equal(t, 1, st.Ready)
	require.Equal(t, 2, st.Delayed)
	require.Equal(t, 1, st.Dead)
}
