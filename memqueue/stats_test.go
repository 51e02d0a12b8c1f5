package memqueue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook/queue"
)

func TestStats(t *testing.T) {
	q := newQueue(t, &Config{Concurrency: 1})
	s, err := q.Stats(tctx(t))
	require.NoError(t, err)
	require.Equal(t, queue.Stats{}, s, "an empty queue")

	release := make(chan struct{})
	running := make(chan struct{})
	require.NoError(t, q.Subscribe("g", func(_ context.Context, j *queue.Job) queue.Result {
		if j.ID == "dead" {
			return queue.Result{Disposition: queue.Dead, Err: errors.New("no")}
		}
		if j.ID == "block" {
			close(running)
			<-release
		}
		return queue.Result{}
	}, queue.GroupOptions{}))

	base := time.Now().Add(-time.Hour)
	later := &queue.Job{ID: "later", Group: "g", CreatedAt: base.Add(2 * time.Minute), RunAt: time.Now().Add(time.Hour)}
	olderDelayed := &queue.Job{ID: "older-delayed", Group: "g", CreatedAt: base.Add(time.Minute), RunAt: time.Now().Add(2 * time.Hour)}
	require.NoError(t, q.Enqueue(tctx(t), later, olderDelayed))
	require.NoError(t, q.Enqueue(tctx(t),
		&queue.Job{ID: "dead", Group: "g", CreatedAt: base.Add(3 * time.Minute)},
		&queue.Job{ID: "block", Group: "g", CreatedAt: base.Add(4 * time.Minute)},
		&queue.Job{ID: "r1", Group: "g", CreatedAt: base.Add(6 * time.Minute)},
		&queue.Job{ID: "r0", Group: "g", CreatedAt: base.Add(5 * time.Minute)},
	))
	s, err = q.Stats(tctx(t))
	require.NoError(t, err)
	require.Equal(t, queue.Stats{Ready: 4, Delayed: 2, OldestReady: base.Add(3 * time.Minute), OldestDelayed: base.Add(time.Minute)}, s)

	start(t, q)
	<-running // "dead" ran before "block": it is dead now
	s, err = q.Stats(tctx(t))
	require.NoError(t, err)
	require.Equal(t, queue.Stats{Ready: 2, Delayed: 2, Running: 1, Dead: 1, OldestReady: base.Add(5 * time.Minute), OldestDelayed: base.Add(time.Minute)}, s)
	close(release)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = q.Stats(ctx)
	require.ErrorIs(t, err, context.Canceled)
}
