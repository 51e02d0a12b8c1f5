package queuetest_test

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook/memqueue"
	"github.com/outhook/outhook/queue"
	"github.com/outhook/outhook/queue/queuetest"
)

// flawEnv names the flaw TestFlawedBackend runs the suite against.
const flawEnv = "QUEUETEST_FLAW"

// flaw is a backend bug and the property of the suite that must catch it.
type flaw struct {
	name     string
	property string // the top-level subtest of Run that must fail
	fake     fakeFlaws
	onFake   bool // a flaw of the fake multi-node backend; else of memqueue
}

var flaws = []flaw{
	{name: "retry-is-done", property: "AtLeastOnce"},
	{name: "crashed-job-never-rescued", property: "AtLeastOnce", onFake: true, fake: fakeFlaws{noRescue: true}},
	{name: "fan-out-drops-second-group", property: "FanOut"},
	{name: "double-enqueue", property: "Exclusive"},
	{name: "run-at-ignored", property: "RunAt"},
	{name: "attempt-stuck", property: "Attempts"},
	{name: "errors-dropped", property: "Attempts"},
	{name: "trace-dropped", property: "Attempts"},
	{name: "trace-lost-on-retry", property: "Attempts"},
	{name: "restart-forgets-attempts", property: "Attempts", onFake: true, fake: fakeFlaws{forgetful: true}},
	{name: "lease-overlap", property: "Lease"},
	{name: "lease-shorter-than-timeout", property: "Lease", onFake: true, fake: fakeFlaws{shortLease: true}},
	{name: "dead-is-done", property: "Dead"},
	{name: "dead-runs-again", property: "Dead"},
	{name: "next-dropped", property: "Next"},
	{name: "live-duplicate-runs", property: "DuplicateEnqueue", onFake: true, fake: fakeFlaws{noDedup: true}},
	{name: "stop-returns-early", property: "Stop"},
	{name: "stop-never-cancels", property: "Stop"},
	{name: "closed-accepts", property: "Stop"},
	{name: "broadcast-twice", property: "Broadcast"},
	{name: "broadcast-one-node", property: "Broadcast", onFake: true, fake: fakeFlaws{noBroadcast: true}},
	{name: "idle-early", property: "WaitIdle"},
	{name: "unknown-group-accepted", property: "UnknownGroup"},
}

// TestSuiteCatchesFlaws runs the suite, in a child process, against
// backends with one bug each, and checks that the property meant to catch
// the bug fails: a suite that passes a broken backend proves nothing.
func TestSuiteCatchesFlaws(t *testing.T) {
	if os.Getenv(flawEnv) != "" {
		t.Skip("running a flawed backend")
	}
	t.Parallel()
	// The children mostly wait for timers: run several at once, more than
	// -test.parallel (GOMAXPROCS) would allow, but not so many that they
	// starve each other.
	type result struct {
		out []byte
		err error
	}
	results := make([]chan result, len(flaws))
	sem := make(chan struct{}, 8)
	for i, f := range flaws {
		results[i] = make(chan result, 1)
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			cmd := exec.CommandContext(t.Context(), os.Args[0],
				"-test.run=^TestFlawedBackend$/^"+f.property+"$", "-test.count=1", "-test.timeout=2m")
			cmd.Env = append(os.Environ(), flawEnv+"="+f.name)
			out, err := cmd.CombinedOutput()
			results[i] <- result{out, err}
		}()
	}
	for i, f := range flaws {
		t.Run(f.name, func(t *testing.T) {
			r := <-results[i]
			require.Error(t, r.err, "the suite passed a backend whose flaw is %s:\n%s", f.name, r.out)
			require.Contains(t, string(r.out), "--- FAIL: TestFlawedBackend/"+f.property+" ",
				"the flaw %s was not caught by %s:\n%s", f.name, f.property, r.out)
		})
	}
}

// TestFlawedBackend runs the suite on the backend with the flaw named by
// QUEUETEST_FLAW; TestSuiteCatchesFlaws runs it.
func TestFlawedBackend(t *testing.T) {
	name := os.Getenv(flawEnv)
	if name == "" {
		t.Skip("run by TestSuiteCatchesFlaws")
	}
	for _, f := range flaws {
		if f.name != name {
			continue
		}
		var h queuetest.Harness
		if f.onFake {
			h = fakeHarness(f.fake)
		} else {
			h = queuetest.Harness{
				NewQueue: func(t *testing.T) queue.Queue {
					q, err := memqueue.New(&memqueue.Config{Logger: slog.New(slog.DiscardHandler)})
					require.NoError(t, err)
					return &flawedQueue{Queue: q, flaw: name, groups: make(map[string]queue.GroupOptions)}
				},
				UnknownGroupRefused: true,
				LeaseTimeout:        100 * time.Millisecond,
			}
		}
		// Flaws that lose work show as timeouts: keep them short.
		h.WaitTimeout = 500 * time.Millisecond
		queuetest.Run(t, h)
		return
	}
	t.Fatalf("unknown flaw %q", name)
}

// flawedQueue is a memqueue with one bug.
type flawedQueue struct {
	*memqueue.Queue
	flaw    string
	stopped atomic.Bool

	mu     sync.Mutex
	groups map[string]queue.GroupOptions
	rerun  map[string]bool // jobs dead-runs-again has run again
}

func (q *flawedQueue) Subscribe(group string, h queue.Handler, opts queue.GroupOptions) error {
	q.mu.Lock()
	q.groups[group] = opts
	q.mu.Unlock()
	return q.Queue.Subscribe(group, q.wrap(h, opts), opts)
}

// wrap gives a handler the queue's flaw.
func (q *flawedQueue) wrap(h queue.Handler, opts queue.GroupOptions) queue.Handler {
	return func(ctx context.Context, j *queue.Job) queue.Result {
		switch q.flaw {
		case "attempt-stuck":
			c := *j
			c.Attempt = 1
			return h(ctx, &c)
		case "lease-overlap":
			if opts.Timeout > 0 { // a second run while the first holds the job
				c := *j
				var wg sync.WaitGroup
				wg.Go(func() { h(ctx, &c) })
				defer wg.Wait()
			}
		}
		res := h(ctx, j)
		switch q.flaw {
		case "retry-is-done":
			if res.Disposition == queue.Retry {
				res = queue.Result{}
			}
		case "run-at-ignored":
			res.RunAt = time.Time{}
		case "errors-dropped":
			res.Err = nil
		case "dead-is-done":
			if res.Disposition == queue.Dead {
				res = queue.Result{}
			}
		case "dead-runs-again":
			q.mu.Lock()
			again := res.Disposition == queue.Dead && !q.rerun[j.ID]
			if again {
				if q.rerun == nil {
					q.rerun = make(map[string]bool)
				}
				q.rerun[j.ID] = true
			}
			q.mu.Unlock()
			if again {
				_ = q.Queue.Enqueue(ctx, &queue.Job{ID: j.ID, Group: j.Group, Kind: j.Kind, Payload: j.Payload})
			}
		case "next-dropped":
			res.Next = nil
		case "trace-lost-on-retry":
			if res.Disposition == queue.Retry {
				j.Trace = nil // memqueue keeps the job: its next run sees this
			}
		}
		return res
	}
}

func (q *flawedQueue) Enqueue(ctx context.Context, jobs ...*queue.Job) error {
	if q.flaw == "closed-accepts" && q.stopped.Load() {
		return nil
	}
	var out []*queue.Job
	seen := make(map[string]bool)
	q.mu.Lock()
	for _, j := range jobs {
		if j == nil {
			out = append(out, j)
			continue
		}
		opts, known := q.groups[j.Group]
		switch q.flaw {
		case "run-at-ignored":
			c := *j
			c.RunAt = time.Time{}
			j = &c
		case "trace-dropped":
			c := *j
			c.Trace = nil
			j = &c
		case "double-enqueue":
			c := *j
			out = append(out, &c)
		case "broadcast-twice":
			if opts.Broadcast {
				c := *j
				out = append(out, &c)
			}
		case "fan-out-drops-second-group":
			if seen[j.ID] {
				continue
			}
			seen[j.ID] = true
		case "unknown-group-accepted":
			if !known {
				continue
			}
		}
		out = append(out, j)
	}
	q.mu.Unlock()
	return q.Queue.Enqueue(ctx, out...)
}

func (q *flawedQueue) Stop(ctx context.Context) error {
	q.stopped.Store(true)
	switch q.flaw {
	case "stop-returns-early":
		// Stops in the background; TestMain's goleak is the child
		// process's, which fails anyway.
		go func() { _ = q.Queue.Stop(context.Background()) }()
		return nil
	case "stop-never-cancels":
		return q.Queue.Stop(context.WithoutCancel(ctx))
	}
	return q.Queue.Stop(ctx)
}

func (q *flawedQueue) WaitIdle(ctx context.Context) error {
	if q.flaw == "idle-early" {
		return nil
	}
	return q.Queue.WaitIdle(ctx)
}
