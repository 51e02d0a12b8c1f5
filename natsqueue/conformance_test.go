package natsqueue_test

import (
	"sync"
	"testing"
	"time"

	"github.com/outhook/outhook/natsqueue"
	"github.com/outhook/outhook/queue"
	"github.com/outhook/outhook/queue/queuetest"
)

// TestConformance runs the queue contract's conformance suite on queues
// that share one stream, each on a connection of its own as separate
// processes would be. Crash cuts a queue's socket: its leases stay with
// the server until they run out, and nothing it buffered arrives.
func TestConformance(t *testing.T) {
	stream := newStream(t)
	var mu sync.Mutex
	conns := map[queue.Queue]*crashConn{}
	queuetest.Run(t, queuetest.Harness{
		NewQueue: func(t *testing.T) queue.Queue {
			q, conn := newQueue(t, natsqueue.Config{Stream: stream, AckMargin: 500 * time.Millisecond})
			mu.Lock()
			conns[q] = conn
			mu.Unlock()
			return q
		},
		MultiNode: true,
		Durable:   true,
		Crash: func(t *testing.T, q queue.Queue) {
			mu.Lock()
			conn := conns[q]
			mu.Unlock()
			conn.crash()
		},
		// A lease is Timeout + AckMargin: the crashed node's job runs
		// again 1.5 s after its run began.
		LeaseTimeout:        time.Second,
		UnknownGroupRefused: false,
		// RunAt and CreatedAt are compared with the process's clock only.
		ClockTolerance: 0,
	})
}
