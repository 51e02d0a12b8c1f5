package outhook_test

import (
	"context"
	"sync"
	"testing"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/memqueue"
	"github.com/outhook/outhook/outhooktest"
	"github.com/outhook/outhook/queue"
	"github.com/stretchr/testify/require"
)

// fakeTx stands in for a database transaction: jobs written through it are
// held until it commits, and dropped when it rolls back.
type fakeTx struct {
	q    queue.Queue
	mu   sync.Mutex
	jobs []*queue.Job
}

func (tx *fakeTx) Commit(ctx context.Context) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	return tx.q.Enqueue(ctx, tx.jobs...)
}

func (tx *fakeTx) Rollback() {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	tx.jobs = nil
}

// txQueue is the in-memory queue with EnqueueTx for *fakeTx.
type txQueue struct{ *memqueue.Queue }

func (q txQueue) EnqueueTx(ctx context.Context, tx *fakeTx, jobs ...*queue.Job) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	tx.jobs = append(tx.jobs, jobs...)
	return nil
}

func TestEmitHookTx(t *testing.T) {
	mq, err := memqueue.New(nil)
	require.NoError(t, err)
	q := txQueue{mq}
	c, d := setup(t, &outhook.Config{Queue: q})
	subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})

	rolledBack := &fakeTx{q: q}
	require.NoError(t, outhook.EmitHookTx(context.Background(), c, rolledBack, incidentCreated, sampleIncident("inc-rolled-back")))
	rolledBack.Rollback()

	committed := &fakeTx{q: q}
	require.NoError(t, outhook.EmitHookTx(context.Background(), c, committed, incidentCreated, sampleIncident("inc-committed")))
	require.NoError(t, committed.Commit(context.Background()))

	outhooktest.WaitIdle(t, c)
	got := outhooktest.DeliveredTo[IncidentCreated](t, d, createdEvent)
	require.Len(t, got, 1)
	require.Equal(t, "inc-committed", got[0].IncidentID, "only the committed emit is delivered")

	err = outhook.EmitHookTx(context.Background(), c, committed, incidentCreated, IncidentCreated{})
	require.ErrorIs(t, err, outhook.ErrInvalidPayload, "EmitHookTx validates as EmitHook does")
}

func TestEmitHookTxNeedsATransactionalQueue(t *testing.T) {
	c, _ := setup(t, nil)
	subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	err := outhook.EmitHookTx(context.Background(), c, &fakeTx{}, incidentCreated, sampleIncident("inc-1"))
	require.ErrorContains(t, err, "cannot enqueue in a *outhook_test.fakeTx transaction")
	outhooktest.WaitIdle(t, c)
}
