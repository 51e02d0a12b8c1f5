package outhook_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/memqueue"
	"github.com/outhook/outhook/outhooktest"
	"github.com/outhook/outhook/queue"
)

// deadlineQueue gives every handler run a deadline, as the durable queues
// do (their lease, less a margin).
type deadlineQueue struct {
	*memqueue.Queue
	deadline time.Duration
}

func (q *deadlineQueue) Subscribe(group string, h queue.Handler, opts queue.GroupOptions) error {
	return q.Queue.Subscribe(group, func(ctx context.Context, job *queue.Job) queue.Result {
		ctx, cancel := context.WithTimeout(ctx, q.deadline)
		defer cancel()
		return h(ctx, job)
	}, opts)
}

// slowRecordStore takes a while to record an attempt, and fails as a
// database client would when its context ends first.
type slowRecordStore struct {
	*outhook.MemoryStore
	delay time.Duration
}

func (s *slowRecordStore) UpdateDelivery(ctx context.Context, id string, a *outhook.Attempt, u outhook.DeliveryUpdate) error {
	if a != nil {
		t := time.NewTimer(s.delay) // the store's own slowness, not a wait for other work
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	return s.MemoryStore.UpdateDelivery(ctx, id, a, u)
}

// TestAttemptRecordOutlivesHandlerDeadline: an attempt that was made is
// recorded even when the handler's deadline passes while the store writes
// the record. The fault soak found it on SQLite with a short lease margin:
// the record was lost, the job ran again, and the receiver got the event
// twice with one attempt missing from the log.
func TestAttemptRecordOutlivesHandlerDeadline(t *testing.T) {
	mq, err := memqueue.New(nil)
	require.NoError(t, err)
	store := &slowRecordStore{MemoryStore: outhook.NewMemoryStore(nil), delay: 300 * time.Millisecond}
	c, fake := setup(t, &outhook.Config{Queue: &deadlineQueue{Queue: mq, deadline: 100 * time.Millisecond}, Store: store})
	sub := subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	emit(t, c, incidentCreated, sampleIncident("inc-1", "sys-1"))
	outhooktest.WaitIdle(t, c)

	require.Len(t, fake.Calls(), 1, "one attempt, made once")
	ds, err := c.Deliveries(t.Context(), outhook.DeliveryQuery{SubscriptionID: sub.ID})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	require.Equal(t, outhook.DeliverySucceeded, ds[0].Status)
	require.Len(t, ds[0].Attempts, 1, "the attempt is recorded")
}
