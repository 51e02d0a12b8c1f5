package queuetest

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/outhook/outhook/queue"
)

// Defaults for the zero fields of Harness.
const (
	// DefaultLeaseTimeout is the default Harness.LeaseTimeout.
	DefaultLeaseTimeout = 2 * time.Second
	// DefaultWaitTimeout is the default Harness.WaitTimeout.
	DefaultWaitTimeout = 10 * time.Second
)

// recoveryFactor bounds, in LeaseTimeouts, how long a crashed node's job
// may wait before another node runs it.
const recoveryFactor = 5

// Harness connects the suite to one backend.
type Harness struct {
	// NewQueue returns a new, unstarted queue on the backend. The suite
	// subscribes, starts and stops it (register t.Cleanup for anything
	// else). Queues made by one Harness value share their jobs when
	// MultiNode is true, as separate processes on one database would.
	NewQueue func(t *testing.T) queue.Queue
	// MultiNode: queues from NewQueue share jobs (several nodes, one
	// backend). The suite then runs up to 3 queues at once.
	MultiNode bool
	// Durable: jobs left in a queue that was stopped are found by a new
	// queue from NewQueue (restart), with their attempt counts and errors.
	Durable bool
	// Crash, when set, makes q vanish as a SIGKILLed process would: it
	// stops running handlers' bookkeeping, keeps its leases, records no
	// result. Other nodes must pick its jobs up after the lease. Needs
	// MultiNode. The suite calls no method of q afterwards; handlers still
	// running on q return when the subtest ends.
	Crash func(t *testing.T, q queue.Queue)
	// LeaseTimeout is the GroupOptions.Timeout the recovery and lease tests
	// use; the backend must re-run a crashed node's job within a few (5)
	// times this. Zero means DefaultLeaseTimeout (2s). The Lease subtest
	// takes about twice this, so in-memory backends set it lower.
	LeaseTimeout time.Duration
	// UnknownGroupRefused: Enqueue for a group nobody subscribed fails with
	// queue.ErrUnknownGroup (single-process queues). Durable multi-node
	// queues accept it (another node may serve the group); the suite then
	// checks that the job waits for a handler subscribed later, after
	// Start.
	UnknownGroupRefused bool
	// ClockTolerance is how much earlier than the process's own clock the
	// backend may see a time: skew between the process and the clock of
	// its database or broker, plus the rounding of stored timestamps. A
	// job may start up to this much before its RunAt, and a CreatedAt the
	// queue fills in may be off by this much. Zero means none, right for a
	// queue that compares times in the process; a backend that stores
	// RunAt and compares it with its database's or broker's clock sets a
	// few milliseconds (5ms is plenty on one host).
	ClockTolerance time.Duration
	// WaitTimeout bounds every wait for something that must happen: a run,
	// a Stop, a dead job. Zero means DefaultWaitTimeout (10s).
	WaitTimeout time.Duration
}

// suite is a validated Harness with its defaults applied.
type suite struct {
	h        Harness
	lease    time.Duration // LeaseTimeout
	wait     time.Duration // WaitTimeout
	recovery time.Duration // deadline for a crashed node's job to run again
	tol      time.Duration // ClockTolerance
	delay    time.Duration // how far ahead RunAt tests schedule a job
	barrier  time.Duration // how far ahead a barrier job is scheduled
}

// Run runs the conformance suite against the backend h describes, one
// subtest per property (see the package documentation). It fails t at once
// when h is not valid: NewQueue nil, Crash without MultiNode, or a
// negative duration.
func Run(t *testing.T, h Harness) {
	t.Helper()
	s := newSuite(t, h)
	t.Run("AtLeastOnce", s.testAtLeastOnce)
	t.Run("FanOut", s.testFanOut)
	t.Run("Exclusive", s.testExclusive)
	t.Run("RunAt", s.testRunAt)
	t.Run("Attempts", s.testAttempts)
	t.Run("Lease", s.testLease)
	t.Run("Dead", s.testDead)
	t.Run("Next", s.testNext)
	t.Run("DuplicateEnqueue", s.testDuplicateEnqueue)
	t.Run("Stop", s.testStop)
	t.Run("Broadcast", s.testBroadcast)
	t.Run("WaitIdle", s.testWaitIdle)
	t.Run("UnknownGroup", s.testUnknownGroup)
	t.Run("Subscribe", s.testSubscribe)
	t.Run("Stats", s.testStats)
}

func newSuite(t *testing.T, h Harness) *suite {
	t.Helper()
	switch {
	case h.NewQueue == nil:
		t.Fatal("queuetest: Harness.NewQueue is nil")
	case h.Crash != nil && !h.MultiNode:
		t.Fatal("queuetest: Harness.Crash needs MultiNode: another node must pick up the crashed node's jobs")
	case h.LeaseTimeout < 0:
		t.Fatalf("queuetest: Harness.LeaseTimeout must not be negative, got %v", h.LeaseTimeout)
	case h.ClockTolerance < 0:
		t.Fatalf("queuetest: Harness.ClockTolerance must not be negative, got %v", h.ClockTolerance)
	case h.WaitTimeout < 0:
		t.Fatalf("queuetest: Harness.WaitTimeout must not be negative, got %v", h.WaitTimeout)
	}
	s := &suite{h: h, lease: h.LeaseTimeout, wait: h.WaitTimeout, tol: h.ClockTolerance}
	if s.lease == 0 {
		s.lease = DefaultLeaseTimeout
	}
	if s.wait == 0 {
		s.wait = DefaultWaitTimeout
	}
	s.recovery = recoveryFactor * s.lease
	// A job scheduled this far ahead that starts at once is caught
	// whatever the tolerance.
	s.delay = max(200*time.Millisecond, 4*s.tol)
	s.barrier = max(250*time.Millisecond, 4*s.tol)
	return s
}

// nodes is how many queues a subtest that spreads work over nodes uses.
func (s *suite) nodes(multi int) int {
	if s.h.MultiNode {
		return multi
	}
	return 1
}

// newGroup returns a worker group name no other subtest or run uses.
func newGroup(name string) string {
	return fmt.Sprintf("queuetest.%s.%08x", name, rand.Uint32())
}
