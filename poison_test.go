package outhook_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/memqueue"
	"github.com/outhook/outhook/outhooktest"
	"github.com/outhook/outhook/queue"
	"github.com/stretchr/testify/require"
)

// A hook job whose payload no longer decodes into the hook's type (written
// by an emitter of another version, or damaged in a durable queue) can never
// succeed: it dies on its first run, listed among the failed events, instead
// of being retried on the handler schedule.
func TestUndecodablePayloadDiesAtOnce(t *testing.T) {
	q, err := memqueue.New(nil)
	require.NoError(t, err)
	c, _ := setup(t, &outhook.Config{Queue: q, HandlerRetry: outhooktest.NoDelay(5)})
	var runs atomic.Int32
	require.NoError(t, outhook.OnHook(c, incidentCreated, func(ctx context.Context, p IncidentCreated) error {
		runs.Add(1)
		return nil
	}, outhook.WorkQueue("audit")))

	// What the client would have queued, with a payload of the wrong shape.
	require.NoError(t, q.Enqueue(context.Background(), &queue.Job{
		ID: "msg_poisoned", Group: "incident.created/audit", Kind: "hook",
		Payload: []byte(`{"incidentId": 42}`),
	}))
	outhooktest.WaitIdle(t, c)

	require.Zero(t, runs.Load(), "the handler never sees a payload that does not decode")
	failed, err := c.FailedEvents(context.Background(), 10)
	require.NoError(t, err)
	require.Len(t, failed, 1)
	require.Equal(t, "msg_poisoned", failed[0].MessageID)
	require.Equal(t, 1, failed[0].Attempts, "not retried: it can never succeed")
	require.Contains(t, failed[0].Errors[0].Error, `decode payload of hook "incident.created"`)
}
