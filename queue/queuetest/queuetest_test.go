package queuetest_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/outhook/outhook/queue"
	"github.com/outhook/outhook/queue/queuetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeHarness describes a fake multi-node, durable backend with flaws.
func fakeHarness(flaws fakeFlaws) queuetest.Harness {
	b := newFakeBackend(flaws)
	return queuetest.Harness{
		NewQueue:  func(*testing.T) queue.Queue { return b.newNode() },
		MultiNode: true,
		Durable:   true,
		Crash: func(t *testing.T, q queue.Queue) {
			q.(*fakeNode).crash(t)
		},
		LeaseTimeout: 150 * time.Millisecond,
	}
}

// TestFakeBackend runs the suite on the fake multi-node backend, so that
// the subtests for MultiNode, Durable and Crash backends are themselves
// tested before a real backend runs them.
func TestFakeBackend(t *testing.T) {
	t.Parallel() // with TestSuiteCatchesFlaws, which mostly waits
	queuetest.Run(t, fakeHarness(fakeFlaws{}))
}
