package memqueue_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook/memqueue"
	"github.com/outhook/outhook/queue"
	"github.com/outhook/outhook/queue/queuetest"
)

// TestConformance runs the queue contract's conformance suite on the
// in-memory queue: one process, nothing survives Stop, and a job for a
// group without a handler is refused.
func TestConformance(t *testing.T) {
	queuetest.Run(t, queuetest.Harness{
		NewQueue: func(t *testing.T) queue.Queue {
			q, err := memqueue.New(&memqueue.Config{Logger: slog.New(slog.DiscardHandler)})
			require.NoError(t, err)
			return q
		},
		MultiNode:           false,
		Durable:             false,
		UnknownGroupRefused: true,
		// memqueue ignores GroupOptions.Timeout: a short one keeps the
		// Lease subtest, whose handlers run for most of it, quick.
		LeaseTimeout: 100 * time.Millisecond,
	})
}
