// Package faulttest holds the checks the durable backends' fault tests
// share: what a client and its queue must show after poisoned jobs.
package faulttest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/queue"
)

// DeadLister is the part of a durable queue the checks read.
type DeadLister interface {
	Dead(ctx context.Context, limit int) ([]*queue.Job, error)
}

// AssertPoisoned checks the end of a run with two poisoned jobs: a
// listener's job whose payload no longer decodes into the hook's type, and
// a row whose args River cannot decode at all.
//
//   - The first is a failed event of listener group on hook hookID, run
//     once (a payload that cannot decode is not retried), with the
//     decoding error.
//   - The second is dead in the queue, run once, with River's decoding
//     error and its raw args kept (they contain rowMarker); the client does
//     not list it among its failed events, as it names no hook or listener.
//   - Every other event was delivered: delivered succeeded deliveries.
func AssertPoisoned(t *testing.T, ctx context.Context, c *outhook.Client, q DeadLister, group, hookID, rowMarker string, delivered int) {
	t.Helper()
	failed, err := c.FailedEvents(ctx, 10)
	require.NoError(t, err)
	require.Len(t, failed, 1, "%+v", failed)
	require.Equal(t, group, failed[0].Group)
	require.Equal(t, hookID, failed[0].HookID)
	require.Equal(t, 1, failed[0].Attempts, "a payload that cannot decode is not retried")
	for _, e := range failed[0].Errors {
		require.Contains(t, e.Error, `outhook: decode payload of hook "`+hookID+`"`)
		require.Contains(t, e.Error, "cannot unmarshal number")
	}

	dead, err := q.Dead(ctx, 10)
	require.NoError(t, err)
	var reasons []string
	for _, j := range dead {
		if j.Group == "" {
			require.Len(t, j.Errors, 1, "%+v", j)
			reasons = append(reasons, j.Errors[0].Error)
			require.Contains(t, string(j.Payload), rowMarker, "the raw args are kept")
		}
	}
	require.Len(t, reasons, 1, "%q", reasons)
	require.Contains(t, reasons[0], "cannot unmarshal number")

	ds, err := c.Deliveries(ctx, outhook.DeliveryQuery{Status: outhook.DeliverySucceeded})
	require.NoError(t, err)
	require.Len(t, ds, delivered)
}
