package memqueue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/outhook/outhook/queue"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout bounds every wait in the tests.
const testTimeout = 10 * time.Second

// syncBuffer is a bytes.Buffer safe for concurrent use, for log output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// newQueue returns an unstarted queue whose Stop is registered for cleanup.
func newQueue(t *testing.T, cfg *Config) *Queue {
	t.Helper()
	if cfg == nil {
		cfg = &Config{}
	}
	if cfg.Logger == nil {
		cfg.Logger, _ = testLogger()
	}
	q, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		_ = q.Stop(ctx)
	})
	return q
}

func tctx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func shortCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func job(group, id string) *queue.Job {
	return &queue.Job{ID: id, Group: group}
}

func done(context.Context, *queue.Job) queue.Result { return queue.Result{} }

func start(t *testing.T, q *Queue) {
	t.Helper()
	require.NoError(t, q.Start(context.Background()))
}

func TestNewConfig(t *testing.T) {
	q, err := New(nil)
	require.NoError(t, err)
	require.Equal(t, DefaultCapacity, q.capacity)
	require.Equal(t, DefaultConcurrency, q.concurrency)
	require.Equal(t, DefaultDeadLimit, q.dead.limit)
	require.NotNil(t, q.log)
	require.NoError(t, q.Stop(context.Background()))

	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Capacity: -1}, "memqueue: Capacity must be >= 0, got -1"},
		{Config{Concurrency: -2}, "memqueue: Concurrency must be >= 0, got -2"},
		{Config{DeadLimit: -3}, "memqueue: DeadLimit must be >= 0, got -3"},
	} {
		_, err := New(&tc.cfg)
		require.EqualError(t, err, tc.want)
	}
}

func TestFIFO(t *testing.T) {
	q := newQueue(t, &Config{Concurrency: 1})
	var got []string
	require.NoError(t, q.Subscribe("g", func(_ context.Context, j *queue.Job) queue.Result {
		got = append(got, j.ID)
		return queue.Result{}
	}, queue.GroupOptions{}))
	var want []string
	for i := range 200 {
		id := strconv.Itoa(i)
		want = append(want, id)
		require.NoError(t, q.Enqueue(tctx(t), job("g", id)))
	}
	r, d, n := q.Len()
	require.Equal(t, [3]int{200, 0, 0}, [3]int{r, d, n}, "jobs wait for Start")
	start(t, q)
	require.NoError(t, q.WaitIdle(tctx(t)))
	require.Equal(t, want, got)
}

func TestConcurrencyLimit(t *testing.T) {
	const limit = 4
	q := newQueue(t, &Config{Concurrency: limit})
	var cur, peak atomic.Int32
	started := make(chan struct{}, 100)
	release := make(chan struct{})
	require.NoError(t, q.Subscribe("g", func(_ context.Context, j *queue.Job) queue.Result {
		c := cur.Add(1)
		for {
			p := peak.Load()
			if c <= p || peak.CompareAndSwap(p, c) {
				break
			}
		}
		started <- struct{}{}
		<-release
		cur.Add(-1)
		return queue.Result{}
	}, queue.GroupOptions{}))
	start(t, q)
	for i := range 50 {
		require.NoError(t, q.Enqueue(tctx(t), job("g", strconv.Itoa(i))))
	}
	for range limit { // limit handlers run at once: none has been released
		select {
		case <-started:
		case <-time.After(testTimeout):
			t.Fatal("concurrency limit not reached")
		}
	}
	_, _, running := q.Len()
	require.Equal(t, limit, running)
	close(release)
	require.NoError(t, q.WaitIdle(tctx(t)))
	require.Equal(t, int32(limit), peak.Load())
}

func TestDelayed(t *testing.T) {
	q := newQueue(t, nil)
	ran := make(chan time.Time, 1)
	require.NoError(t, q.Subscribe("g", func(_ context.Context, j *queue.Job) queue.Result {
		ran <- time.Now()
		return queue.Result{}
	}, queue.GroupOptions{}))
	start(t, q)
	runAt := time.Now().Add(50 * time.Millisecond)
	require.NoError(t, q.Enqueue(tctx(t), &queue.Job{ID: "1", Group: "g", RunAt: runAt}))
	r, d, n := q.Len()
	require.Equal(t, [3]int{0, 1, 0}, [3]int{r, d, n})
	require.NoError(t, q.WaitIdle(tctx(t)))
	at := <-ran
	require.False(t, at.Before(runAt), "ran %v before RunAt", runAt.Sub(at))
}

func TestDelayedOrderAndEarlierArrival(t *testing.T) {
	q := newQueue(t, &Config{Concurrency: 1})
	ran := make(chan string, 10)
	require.NoError(t, q.Subscribe("g", func(_ context.Context, j *queue.Job) queue.Result {
		ran <- j.ID
		return queue.Result{}
	}, queue.GroupOptions{}))
	start(t, q)
	now := time.Now()
	// The far job arms the timer first; the nearer jobs must reset it.
	require.NoError(t, q.Enqueue(tctx(t), &queue.Job{ID: "far", Group: "g", RunAt: now.Add(time.Hour)}))
	require.NoError(t, q.Enqueue(tctx(t),
		&queue.Job{ID: "b", Group: "g", RunAt: now.Add(80 * time.Millisecond)},
		&queue.Job{ID: "a", Group: "g", RunAt: now.Add(40 * time.Millisecond)},
		&queue.Job{ID: "past", Group: "g", RunAt: now.Add(-time.Second)},
	))
	var got []string
	for range 3 {
		select {
		case id := <-ran:
			got = append(got, id)
		case <-time.After(testTimeout):
			t.Fatalf("delayed jobs did not run; got %v", got)
		}
	}
	require.Equal(t, []string{"past", "a", "b"}, got)
	// The far job waits; nothing is ready. (b's handler may still be
	// returning: it signals before it ends, so running can read 1.)
	r, d, _ := q.Len()
	require.Equal(t, [2]int{0, 1}, [2]int{r, d})
	begin := time.Now()
	require.NoError(t, q.Stop(tctx(t)))
	require.Less(t, time.Since(begin), time.Second, "Stop waited for a delayed job")
}

func TestManyDelayedOneScheduler(t *testing.T) {
	q := newQueue(t, nil)
	var ran atomic.Int32
	require.NoError(t, q.Subscribe("g", func(context.Context, *queue.Job) queue.Result {
		ran.Add(1)
		return queue.Result{}
	}, queue.GroupOptions{}))
	start(t, q)
	base := runtime.NumGoroutine()
	runAt := time.Now().Add(100 * time.Millisecond)
	for i := range 1000 {
		require.NoError(t, q.Enqueue(tctx(t), &queue.Job{
			ID: strconv.Itoa(i), Group: "g", RunAt: runAt.Add(time.Duration(i) * time.Microsecond),
		}))
	}
	require.Less(t, runtime.NumGoroutine()-base, 10)
	require.NoError(t, q.WaitIdle(tctx(t)))
	require.Equal(t, int32(1000), ran.Load())
}

func TestRetry(t *testing.T) {
	q := newQueue(t, nil)
	var final *queue.Job
	require.NoError(t, q.Subscribe("g", func(_ context.Context, j *queue.Job) queue.Result {
		switch j.Attempt {
		case 1:
			return queue.Result{Disposition: queue.Retry, Err: errors.New("first")}
		case 2:
			return queue.Result{Disposition: queue.Retry, Err: errors.New("second"),
				RunAt: time.Now().Add(20 * time.Millisecond)}
		case 3:
			return queue.Result{Disposition: queue.Retry} // no error recorded
		}
		final = j
		return queue.Result{}
	}, queue.GroupOptions{}))
	start(t, q)
	require.NoError(t, q.Enqueue(tctx(t), job("g", "1")))
	require.NoError(t, q.WaitIdle(tctx(t)))
	require.NotNil(t, final)
	require.Equal(t, 4, final.Attempt)
	require.Len(t, final.Errors, 2)
	require.Equal(t, 1, final.Errors[0].Attempt)
	require.Equal(t, "first", final.Errors[0].Error)
	require.Equal(t, 2, final.Errors[1].Attempt)
	require.Equal(t, "second", final.Errors[1].Error)
	require.False(t, final.Errors[0].At.IsZero())
	require.False(t, final.CreatedAt.IsZero())
}

func TestDeadLimit(t *testing.T) {
	q := newQueue(t, &Config{Concurrency: 1, DeadLimit: 3})
	require.NoError(t, q.Subscribe("g", func(_ context.Context, j *queue.Job) queue.Result {
		return queue.Result{Disposition: queue.Dead, Err: errors.New("bad " + j.ID)}
	}, queue.GroupOptions{}))
	start(t, q)
	for i := range 5 {
		require.NoError(t, q.Enqueue(tctx(t), job("g", strconv.Itoa(i))))
	}
	require.NoError(t, q.WaitIdle(tctx(t)))

	ids := func(jobs []*queue.Job) []string {
		var out []string
		for _, j := range jobs {
			out = append(out, j.ID)
		}
		return out
	}
	dead, err := q.Dead(tctx(t), 10)
	require.NoError(t, err)
	require.Equal(t, []string{"4", "3", "2"}, ids(dead))
	require.Equal(t, []queue.AttemptError{{Attempt: 1, At: dead[0].Errors[0].At, Error: "bad 4"}}, dead[0].Errors)
	dead, err = q.Dead(tctx(t), 2)
	require.NoError(t, err)
	require.Equal(t, []string{"4", "3"}, ids(dead))
	dead, err = q.Dead(tctx(t), 0)
	require.NoError(t, err)
	require.Empty(t, dead)

	// Before the list is full, too.
	var d deadList
	d.limit = 4
	d.push(job("g", "a"))
	d.push(job("g", "b"))
	require.Equal(t, []string{"b", "a"}, ids(d.newest(10)))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = q.Dead(ctx, 1)
	require.ErrorIs(t, err, context.Canceled)
}

func TestPanicRetried(t *testing.T) {
	logger, logs := testLogger()
	q := newQueue(t, &Config{Logger: logger})
	var final *queue.Job
	require.NoError(t, q.Subscribe("g", func(_ context.Context, j *queue.Job) queue.Result {
		if j.Attempt == 1 {
			panic("boom")
		}
		final = j
		return queue.Result{}
	}, queue.GroupOptions{}))
	start(t, q)
	require.NoError(t, q.Enqueue(tctx(t), job("g", "1")))
	require.NoError(t, q.WaitIdle(tctx(t)))
	require.NotNil(t, final)
	require.Equal(t, 2, final.Attempt)
	require.Len(t, final.Errors, 1)
	require.Equal(t, "panic: boom", final.Errors[0].Error)
	require.Contains(t, logs.String(), "level=ERROR")
	require.Contains(t, logs.String(), "handler panicked")
	require.Contains(t, logs.String(), "memqueue_test.go") // the stack
}

func TestUnknownDispositionIsDead(t *testing.T) {
	q := newQueue(t, nil)
	require.NoError(t, q.Subscribe("g", func(context.Context, *queue.Job) queue.Result {
		return queue.Result{Disposition: queue.Disposition(42)}
	}, queue.GroupOptions{}))
	start(t, q)
	require.NoError(t, q.Enqueue(tctx(t), job("g", "1")))
	require.NoError(t, q.WaitIdle(tctx(t)))
	dead, err := q.Dead(tctx(t), 1)
	require.NoError(t, err)
	require.Len(t, dead, 1)
	require.Contains(t, dead[0].Errors[0].Error, "unknown disposition 42")
}

func TestNextAtomic(t *testing.T) {
	const chain = 2000
	q := newQueue(t, &Config{Concurrency: 4})
	var count atomic.Int32
	require.NoError(t, q.Subscribe("g", func(_ context.Context, j *queue.Job) queue.Result {
		n := count.Add(1)
		if n >= chain {
			return queue.Result{}
		}
		next := []*queue.Job{job("g", strconv.Itoa(int(n)))}
		if n%100 == 0 { // now and then a child due a little later
			next[0].RunAt = time.Now().Add(time.Millisecond)
		}
		return queue.Result{Next: next}
	}, queue.GroupOptions{}))
	start(t, q)
	ctx := tctx(t)
	require.NoError(t, q.Enqueue(ctx, job("g", "0")))

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			if err := q.WaitIdle(ctx); err != nil {
				errs <- err
			} else if n := count.Load(); n != chain {
				errs <- fmt.Errorf("WaitIdle returned after %d of %d jobs", n, chain)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, int32(chain), count.Load())
}

func TestNextInvalidMakesParentDead(t *testing.T) {
	q := newQueue(t, nil)
	var childRan atomic.Bool
	require.NoError(t, q.Subscribe("g", func(_ context.Context, j *queue.Job) queue.Result {
		if j.ID == "child" {
			childRan.Store(true)
			return queue.Result{}
		}
		return queue.Result{Next: []*queue.Job{job("g", "child"), job("nope", "x")}}
	}, queue.GroupOptions{}))
	start(t, q)
	require.NoError(t, q.Enqueue(tctx(t), job("g", "parent")))
	require.NoError(t, q.WaitIdle(tctx(t)))
	require.False(t, childRan.Load())
	dead, err := q.Dead(tctx(t), 1)
	require.NoError(t, err)
	require.Len(t, dead, 1)
	require.Equal(t, "parent", dead[0].ID)
	require.Contains(t, dead[0].Errors[0].Error, `"nope"`)
}

func TestNextIgnoredUnlessDone(t *testing.T) {
	q := newQueue(t, nil)
	var runs atomic.Int32
	require.NoError(t, q.Subscribe("g", func(_ context.Context, j *queue.Job) queue.Result {
		runs.Add(1)
		return queue.Result{Disposition: queue.Dead, Next: []*queue.Job{job("g", "child")}}
	}, queue.GroupOptions{}))
	start(t, q)
	require.NoError(t, q.Enqueue(tctx(t), job("g", "parent")))
	require.NoError(t, q.WaitIdle(tctx(t)))
	require.Equal(t, int32(1), runs.Load())
}

// blockingQueue returns a started queue with capacity c and one worker
// whose handler for group "g" waits for release; started receives a value
// when a run begins.
func blockingQueue(t *testing.T, c int) (q *Queue, started chan string, release chan struct{}) {
	q = newQueue(t, &Config{Capacity: c, Concurrency: 1})
	started = make(chan string, 100)
	release = make(chan struct{})
	require.NoError(t, q.Subscribe("g", func(_ context.Context, j *queue.Job) queue.Result {
		started <- j.ID
		<-release
		return queue.Result{}
	}, queue.GroupOptions{}))
	start(t, q)
	return q, started, release
}

func TestFullQueueBlocksUntilRoom(t *testing.T) {
	q, started, release := blockingQueue(t, 2)
	require.NoError(t, q.Enqueue(tctx(t), job("g", "1")))
	require.Equal(t, "1", <-started)
	require.NoError(t, q.Enqueue(tctx(t), job("g", "2"))) // full: 1 running, 1 ready

	res := make(chan error, 1)
	go func() { res <- q.Enqueue(tctx(t), job("g", "3")) }()
	select {
	case err := <-res:
		t.Fatalf("Enqueue on a full queue returned %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	r, d, n := q.Len()
	require.Equal(t, [3]int{1, 0, 1}, [3]int{r, d, n}, "nothing admitted while blocked")
	close(release)
	select {
	case err := <-res:
		require.NoError(t, err)
	case <-time.After(testTimeout):
		t.Fatal("Enqueue still blocked after room freed")
	}
	require.NoError(t, q.WaitIdle(tctx(t)))
}

func TestFullQueueTimeout(t *testing.T) {
	q := newQueue(t, &Config{Capacity: 3})
	require.NoError(t, q.Subscribe("g", done, queue.GroupOptions{}))
	require.NoError(t, q.Enqueue(tctx(t), job("g", "1"), job("g", "2")))
	// Two more jobs do not fit; the batch is refused as a whole.
	err := q.Enqueue(shortCtx(t, 50*time.Millisecond), job("g", "3"), job("g", "4"))
	require.Equal(t, context.DeadlineExceeded, err)
	r, d, n := q.Len()
	require.Equal(t, [3]int{2, 0, 0}, [3]int{r, d, n})
	// One more still fits.
	require.NoError(t, q.Enqueue(shortCtx(t, 50*time.Millisecond), job("g", "3")))
}

func TestOverCapacity(t *testing.T) {
	q := newQueue(t, &Config{Capacity: 2})
	require.NoError(t, q.Subscribe("g", done, queue.GroupOptions{}))
	err := q.Enqueue(tctx(t), job("g", "1"), job("g", "2"), job("g", "3"))
	require.ErrorIs(t, err, ErrQueueFull)
	require.Contains(t, err.Error(), "memqueue: ")
	r, d, n := q.Len()
	require.Equal(t, [3]int{0, 0, 0}, [3]int{r, d, n})
}

func TestEnqueueFromHandlerWhenFull(t *testing.T) {
	q := newQueue(t, &Config{Capacity: 1, Concurrency: 1})
	var children atomic.Int32
	errs := make(chan error, 1)
	require.NoError(t, q.Subscribe("child", func(context.Context, *queue.Job) queue.Result {
		children.Add(1)
		return queue.Result{}
	}, queue.GroupOptions{}))
	require.NoError(t, q.Subscribe("g", func(ctx context.Context, j *queue.Job) queue.Result {
		// The queue is full (this job is running); a derived context still
		// marks the call as coming from a handler.
		ctx, cancel := context.WithTimeout(ctx, testTimeout)
		defer cancel()
		errs <- q.Enqueue(ctx, job("child", "a"), job("child", "b"), job("child", "c"))
		return queue.Result{}
	}, queue.GroupOptions{}))
	start(t, q)
	require.NoError(t, q.Enqueue(tctx(t), job("g", "parent")))
	select {
	case err := <-errs:
		require.NoError(t, err)
	case <-time.After(testTimeout):
		t.Fatal("Enqueue from a handler blocked")
	}
	require.NoError(t, q.WaitIdle(tctx(t)))
	require.Equal(t, int32(3), children.Load())
}

func TestEnqueueOtherQueueHandlerContextNotExempt(t *testing.T) {
	other := newQueue(t, nil)
	q := newQueue(t, &Config{Capacity: 1})
	require.NoError(t, q.Subscribe("g", done, queue.GroupOptions{}))
	require.NoError(t, q.Enqueue(tctx(t), job("g", "1")))
	ctx, cancel := context.WithTimeout(other.hctx, 20*time.Millisecond)
	defer cancel()
	require.Equal(t, context.DeadlineExceeded, q.Enqueue(ctx, job("g", "2")))
}

func TestEnqueueValidation(t *testing.T) {
	q := newQueue(t, nil)
	require.NoError(t, q.Subscribe("g", done, queue.GroupOptions{}))

	err := q.Enqueue(tctx(t), job("g", "1"), job("missing", "2"))
	require.ErrorIs(t, err, queue.ErrUnknownGroup)
	require.Contains(t, err.Error(), `"missing"`)
	require.Contains(t, err.Error(), "memqueue: ")

	require.Error(t, q.Enqueue(tctx(t), job("g", "1"), nil))
	require.Error(t, q.Enqueue(tctx(t), job("", "1")))
	r, d, n := q.Len()
	require.Equal(t, [3]int{0, 0, 0}, [3]int{r, d, n}, "nothing admitted")

	require.NoError(t, q.Enqueue(tctx(t)))
}

func TestCreatedAt(t *testing.T) {
	q := newQueue(t, nil)
	require.NoError(t, q.Subscribe("g", done, queue.GroupOptions{}))
	set := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	a, b := job("g", "a"), &queue.Job{ID: "b", Group: "g", CreatedAt: set}
	before := time.Now()
	require.NoError(t, q.Enqueue(tctx(t), a, b))
	require.False(t, a.CreatedAt.Before(before))
	require.Equal(t, set, b.CreatedAt)
}

func TestSubscribeErrors(t *testing.T) {
	q := newQueue(t, nil)
	require.Error(t, q.Subscribe("", done, queue.GroupOptions{}))
	require.Error(t, q.Subscribe("g", nil, queue.GroupOptions{}))
	require.NoError(t, q.Subscribe("g", done, queue.GroupOptions{}))
	err := q.Subscribe("g", done, queue.GroupOptions{Broadcast: true})
	require.ErrorContains(t, err, `"g"`)
	require.NoError(t, q.Subscribe("b", done, queue.GroupOptions{Broadcast: true}))
	start(t, q)
	require.NoError(t, q.Subscribe("late", done, queue.GroupOptions{}))
	require.NoError(t, q.Enqueue(tctx(t), job("b", "1"), job("late", "2")))
	require.NoError(t, q.WaitIdle(tctx(t)))
}

func TestClosed(t *testing.T) {
	q := newQueue(t, nil)
	require.NoError(t, q.Subscribe("g", done, queue.GroupOptions{}))
	start(t, q)
	require.NoError(t, q.Stop(tctx(t)))
	require.ErrorIs(t, q.Enqueue(tctx(t), job("g", "1")), queue.ErrClosed)
	require.ErrorIs(t, q.Subscribe("h", done, queue.GroupOptions{}), queue.ErrClosed)
	require.ErrorIs(t, q.Start(tctx(t)), queue.ErrClosed)
}

func TestBlockedEnqueueReturnsClosedOnStop(t *testing.T) {
	q := newQueue(t, &Config{Capacity: 1})
	require.NoError(t, q.Subscribe("g", done, queue.GroupOptions{}))
	require.NoError(t, q.Enqueue(tctx(t), job("g", "1")))
	res := make(chan error, 1)
	go func() { res <- q.Enqueue(tctx(t), job("g", "2")) }()
	select {
	case err := <-res:
		t.Fatalf("Enqueue on a full queue returned %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	require.NoError(t, q.Stop(tctx(t))) // before Start: the job is abandoned
	select {
	case err := <-res:
		require.ErrorIs(t, err, queue.ErrClosed)
	case <-time.After(testTimeout):
		t.Fatal("blocked Enqueue not woken by Stop")
	}
}

func TestStartTwice(t *testing.T) {
	q := newQueue(t, nil)
	start(t, q)
	require.Error(t, q.Start(tctx(t)))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q2 := newQueue(t, nil)
	require.ErrorIs(t, q2.Start(ctx), context.Canceled)
}

func TestHandlerContextOutlivesStartContext(t *testing.T) {
	q := newQueue(t, nil)
	ctxErr := make(chan error, 1)
	require.NoError(t, q.Subscribe("g", func(ctx context.Context, j *queue.Job) queue.Result {
		ctxErr <- ctx.Err()
		return queue.Result{}
	}, queue.GroupOptions{}))
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, q.Start(ctx))
	cancel()
	require.NoError(t, q.Enqueue(tctx(t), job("g", "1")))
	require.NoError(t, q.WaitIdle(tctx(t)))
	require.NoError(t, <-ctxErr)
}

func TestStopDrains(t *testing.T) {
	q := newQueue(t, &Config{Concurrency: 2})
	var runs, children, emitted atomic.Int32
	require.NoError(t, q.Subscribe("child", func(context.Context, *queue.Job) queue.Result {
		children.Add(1)
		return queue.Result{}
	}, queue.GroupOptions{}))
	require.NoError(t, q.Subscribe("g", func(ctx context.Context, j *queue.Job) queue.Result {
		runs.Add(1)
		i, _ := strconv.Atoi(j.ID)
		switch i % 4 {
		case 0: // a retry due at once is run by the drain
			if j.Attempt == 1 {
				return queue.Result{Disposition: queue.Retry, Err: errors.New("again")}
			}
		case 1: // so is a Next job
			return queue.Result{Next: []*queue.Job{job("child", j.ID)}}
		case 2: // and a job enqueued from a handler
			if err := q.Enqueue(ctx, job("child", "e"+j.ID)); err == nil {
				emitted.Add(1)
			}
		}
		return queue.Result{}
	}, queue.GroupOptions{}))
	const n = 300
	for i := range n {
		require.NoError(t, q.Enqueue(tctx(t), job("g", strconv.Itoa(i))))
	}
	start(t, q)
	require.NoError(t, q.Stop(tctx(t)))
	require.Equal(t, int32(n+n/4), runs.Load())
	require.Equal(t, int32(n/4), emitted.Load())
	require.Equal(t, int32(n/4+n/4), children.Load())
	r, d, running := q.Len()
	require.Equal(t, [3]int{0, 0, 0}, [3]int{r, d, running})
	require.NoError(t, q.WaitIdle(tctx(t)))
}

func TestStopAbandonsDelayed(t *testing.T) {
	logger, logs := testLogger()
	q := newQueue(t, &Config{Logger: logger})
	require.NoError(t, q.Subscribe("g", done, queue.GroupOptions{}))
	start(t, q)
	require.NoError(t, q.Enqueue(tctx(t),
		&queue.Job{ID: "1", Group: "g", RunAt: time.Now().Add(time.Hour)},
		&queue.Job{ID: "2", Group: "g", RunAt: time.Now().Add(time.Hour)},
		job("g", "3")))
	begin := time.Now()
	require.NoError(t, q.Stop(tctx(t)))
	require.Less(t, time.Since(begin), time.Second)
	require.Contains(t, logs.String(), "memqueue: stopped with 2 delayed jobs not run")
	require.Contains(t, logs.String(), "level=WARN")
	_, d, _ := q.Len()
	require.Equal(t, 2, d)
	// Those jobs will never run: WaitIdle says so instead of blocking.
	require.ErrorIs(t, q.WaitIdle(tctx(t)), queue.ErrClosed)
}

func TestStopHard(t *testing.T) {
	q := newQueue(t, nil)
	var runs atomic.Int32
	running := make(chan struct{})
	sawCancel := make(chan struct{})
	require.NoError(t, q.Subscribe("g", func(ctx context.Context, j *queue.Job) queue.Result {
		if runs.Add(1) == 1 {
			close(running)
		}
		<-ctx.Done()
		if j.ID == "1" {
			close(sawCancel)
		}
		return queue.Result{Disposition: queue.Retry, Err: ctx.Err()}
	}, queue.GroupOptions{}))
	start(t, q)
	require.NoError(t, q.Enqueue(tctx(t), job("g", "1")))
	<-running

	err := q.Stop(shortCtx(t, 50*time.Millisecond))
	require.Equal(t, context.DeadlineExceeded, err)
	select {
	case <-sawCancel:
	default:
		t.Fatal("handler did not see its context cancelled")
	}
	require.Equal(t, int32(1), runs.Load(), "cancelled run was retried")
	r, d, n := q.Len()
	require.Equal(t, [3]int{1, 0, 0}, [3]int{r, d, n}, "job stays, unrun")
	require.NoError(t, q.Stop(tctx(t)), "second Stop")
	goleak.VerifyNone(t)
}

func TestStopIdempotent(t *testing.T) {
	q := newQueue(t, nil)
	require.NoError(t, q.Subscribe("g", done, queue.GroupOptions{}))
	start(t, q)
	require.NoError(t, q.Enqueue(tctx(t), job("g", "1")))
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() { errs <- q.Stop(tctx(t)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, q.Stop(tctx(t)))
}

func TestStopBeforeStart(t *testing.T) {
	logger, logs := testLogger()
	q := newQueue(t, &Config{Logger: logger})
	require.NoError(t, q.Subscribe("g", done, queue.GroupOptions{}))
	require.NoError(t, q.Enqueue(tctx(t), job("g", "1")))
	require.NoError(t, q.Stop(tctx(t)))
	require.NoError(t, q.Stop(tctx(t)))
	require.Contains(t, logs.String(), "memqueue: stopped with 1 jobs not run")
	require.ErrorIs(t, q.Start(tctx(t)), queue.ErrClosed)
	require.ErrorIs(t, q.WaitIdle(tctx(t)), queue.ErrClosed)
}

func TestWaitIdle(t *testing.T) {
	q, started, release := blockingQueue(t, 10)
	require.NoError(t, q.WaitIdle(shortCtx(t, time.Millisecond)), "empty queue is idle")
	require.NoError(t, q.Enqueue(tctx(t), job("g", "1")))
	<-started
	require.Equal(t, context.DeadlineExceeded, q.WaitIdle(shortCtx(t, 30*time.Millisecond)))
	res := make(chan error, 1)
	go func() { res <- q.WaitIdle(tctx(t)) }()
	close(release)
	require.NoError(t, <-res)
}

// TestStress runs many producers against a small queue with retries and
// children, checking every job finishes exactly once.
func TestStress(t *testing.T) {
	q := newQueue(t, &Config{Capacity: 16, Concurrency: 8})
	var finished atomic.Int32
	require.NoError(t, q.Subscribe("g", func(_ context.Context, j *queue.Job) queue.Result {
		if j.Attempt == 1 && len(j.ID)%2 == 0 {
			return queue.Result{Disposition: queue.Retry, Err: errors.New("x")}
		}
		if j.Kind == "" {
			return queue.Result{Next: []*queue.Job{{ID: j.ID + "c", Group: "g", Kind: "child"}}}
		}
		finished.Add(1)
		return queue.Result{}
	}, queue.GroupOptions{}))
	start(t, q)
	const producers, per = 8, 500
	ctx := tctx(t)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range per {
				if err := q.Enqueue(ctx, job("g", fmt.Sprintf("%d-%d", p, i))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, q.WaitIdle(ctx))
	require.Equal(t, int32(producers*per), finished.Load())
}

func BenchmarkEnqueueRun(b *testing.B) {
	q, err := New(&Config{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(b, err)
	require.NoError(b, q.Subscribe("g", done, queue.GroupOptions{}))
	require.NoError(b, q.Start(context.Background()))
	jobs := make([]queue.Job, b.N)
	now := time.Now()
	for i := range jobs {
		jobs[i] = queue.Job{ID: "id", Group: "g", CreatedAt: now}
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range jobs {
		if err := q.Enqueue(ctx, &jobs[i]); err != nil {
			b.Fatal(err)
		}
	}
	require.NoError(b, q.WaitIdle(ctx))
	b.StopTimer()
	require.NoError(b, q.Stop(ctx))
}

// BenchmarkEnqueue measures Enqueue alone, from parallel producers, on a
// queue that is not started and large enough to hold every job.
func BenchmarkEnqueue(b *testing.B) {
	q, err := New(&Config{Capacity: b.N + 1, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(b, err)
	require.NoError(b, q.Subscribe("g", done, queue.GroupOptions{}))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		// The queue never runs the jobs, so a producer may hand it the same
		// job repeatedly; this keeps job allocation out of the measurement.
		j := &queue.Job{ID: "id", Group: "g", CreatedAt: time.Now()}
		for pb.Next() {
			if err := q.Enqueue(ctx, j); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.StopTimer()
	require.NoError(b, q.Stop(ctx))
}

// Retries waiting for a later time do not take room from new work: a dead
// endpoint must not stall every emitter.
func TestDelayedJobsDoNotCountAgainstCapacity(t *testing.T) {
	q := newQueue(t, &Config{Capacity: 2})
	retried := make(chan struct{}, 10)
	require.NoError(t, q.Subscribe("g", func(ctx context.Context, j *queue.Job) queue.Result {
		if j.ID == "dead-endpoint" {
			retried <- struct{}{}
			return queue.Result{Disposition: queue.Retry, RunAt: time.Now().Add(time.Hour)}
		}
		return queue.Result{}
	}, queue.GroupOptions{}))
	start(t, q)
	require.NoError(t, q.Enqueue(tctx(t), job("g", "dead-endpoint"), &queue.Job{ID: "later", Group: "g", RunAt: time.Now().Add(time.Hour)}))
	<-retried
	// Once the retry is delayed, both jobs wait an hour: the queue holds
	// 2 jobs, its capacity, yet takes two more (Enqueue waits only while the
	// retried job is still running).
	require.NoError(t, q.Enqueue(shortCtx(t, 5*time.Second), job("g", "a"), job("g", "b")))
	ready, delayed, running := q.Len()
	require.Equal(t, 2, delayed)
	require.LessOrEqual(t, ready+running, 2)
}

// The Next jobs of a handler run before the jobs queued behind it, in
// their order.
func TestNextJobsRunFirst(t *testing.T) {
	q := newQueue(t, &Config{Concurrency: 1})
	var (
		mu    sync.Mutex
		order []string
	)
	require.NoError(t, q.Subscribe("g", func(ctx context.Context, j *queue.Job) queue.Result {
		mu.Lock()
		order = append(order, j.ID)
		mu.Unlock()
		if j.ID == "A" {
			return queue.Result{Next: []*queue.Job{job("g", "A1"), job("g", "A2"), job("g", "A3")}}
		}
		return queue.Result{}
	}, queue.GroupOptions{}))
	require.NoError(t, q.Enqueue(tctx(t), job("g", "A"), job("g", "B"), job("g", "C")))
	start(t, q)
	require.NoError(t, q.WaitIdle(tctx(t)))
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"A", "A1", "A2", "A3", "B", "C"}, order)
}

func TestRingPushFront(t *testing.T) {
	var r ring
	for i := range 20 { // across growth and wrap-around
		if i%2 == 0 {
			r.push(&queue.Job{ID: fmt.Sprint("b", i)})
		} else {
			r.pushFront(&queue.Job{ID: fmt.Sprint("f", i)})
		}
	}
	var got []string
	for r.n > 0 {
		got = append(got, r.pop().ID)
	}
	require.Equal(t, []string{"f19", "f17", "f15", "f13", "f11", "f9", "f7", "f5", "f3", "f1",
		"b0", "b2", "b4", "b6", "b8", "b10", "b12", "b14", "b16", "b18"}, got)
}
