package batch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a RunFunc that records its batches and can be held. It
// refuses the item "bad", as a database refuses a statement.
type recorder struct {
	mu      sync.Mutex
	batches [][]string
	ctxs    []context.Context // of each run
	hold    chan struct{}     // when non-nil, runs wait for it
	entered chan struct{}     // receives when a run begins (cap 1)
}

func newRecorder() *recorder { return &recorder{entered: make(chan struct{}, 1)} }

func (r *recorder) run(ctx context.Context, items []Item[string]) []error {
	r.mu.Lock()
	hold := r.hold
	r.ctxs = append(r.ctxs, ctx)
	r.mu.Unlock()
	select {
	case r.entered <- struct{}{}:
	default:
	}
	var cut error // as a database call cut short by its context
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			cut = ctx.Err()
		}
	}
	errs := make([]error, len(items))
	batch := make([]string, len(items))
	for i, it := range items {
		batch[i] = it.Value
		errs[i] = cut
		if it.Value == "bad" {
			errs[i] = errors.New("refused bad")
		}
	}
	r.mu.Lock()
	r.batches = append(r.batches, batch)
	r.mu.Unlock()
	return errs
}

// setHold makes the runs that begin from now on wait for hold (nil: none).
func (r *recorder) setHold(hold chan struct{}) {
	r.mu.Lock()
	r.hold = hold
	r.mu.Unlock()
}

func (r *recorder) all() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.batches)
}

func (r *recorder) lastCtx() context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ctxs[len(r.ctxs)-1]
}

// newTestBatcher returns a Batcher on r and a channel that receives the
// number of waiting items each time one joins them.
func newTestBatcher(r *recorder, o Options[string]) (*Batcher[string], chan int) {
	ch := make(chan int, 1000)
	b := New(r.run, o)
	b.queued = func(n int) { ch <- n }
	return b, ch
}

// awaitPending waits until n items wait in b.
func awaitPending(t *testing.T, queued chan int, n int) {
	t.Helper()
	timer := time.NewTimer(5 * time.Second)
	defer timer.Stop()
	for {
		select {
		case got := <-queued:
			if got == n {
				return
			}
		case <-timer.C:
			t.Fatalf("timed out waiting for %d waiting items", n)
		}
	}
}

// pending returns how many items wait in b.
func pending[T any](b *Batcher[T]) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}

// TestGroups: a lone call runs at once; calls made while a batch runs wait
// and run together, each with its own error; the flusher exits when
// nothing waits.
func TestGroups(t *testing.T) {
	r := newRecorder()
	b, queued := newTestBatcher(r, Options[string]{MaxSize: 100})
	require.NoError(t, b.Do(t.Context(), "alone"))
	require.Equal(t, [][]string{{"alone"}}, r.all())
	<-r.entered

	hold := make(chan struct{})
	r.setHold(hold)
	first := make(chan error, 1)
	go func() { first <- b.Do(t.Context(), "first") }()
	<-r.entered
	<-queued // first

	const callers = 32
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			item := fmt.Sprint(i)
			if i == 7 {
				item = "bad"
			}
			errs[i] = b.Do(t.Context(), item)
		})
	}
	awaitPending(t, queued, callers)
	r.setHold(nil)
	close(hold)
	wg.Wait()
	require.NoError(t, <-first)
	require.NoError(t, b.Wait(t.Context()), "the flusher exits when nothing waits")

	for i, err := range errs {
		if i == 7 {
			require.EqualError(t, err, "refused bad", "each call gets its own error")
			continue
		}
		require.NoError(t, err, "caller %d", i)
	}
	batches := r.all()
	require.Len(t, batches, 3)
	require.Equal(t, []string{"first"}, batches[1])
	require.Len(t, batches[2], callers, "the waiting calls ran together")
}

// TestLimits: a batch holds at most MaxSize, by Size, and never two items
// with one Key; the others wait for the next batch, in order.
func TestLimits(t *testing.T) {
	r := newRecorder()
	b, queued := newTestBatcher(r, Options[string]{
		Size:    func(s string) int { return len(s) },
		Key:     func(s string) string { return s[:1] },
		MaxSize: 4,
	})
	hold := make(chan struct{})
	r.setHold(hold)
	var wg sync.WaitGroup
	wg.Go(func() { require.NoError(t, b.Do(t.Context(), "z")) })
	<-r.entered
	<-queued
	for i, item := range []string{"a1", "a2", "b", "c", "dd", "eeeee"} {
		wg.Go(func() { require.NoError(t, b.Do(t.Context(), item)) })
		awaitPending(t, queued, i+1)
	}
	r.setHold(nil)
	close(hold)
	wg.Wait()
	require.Equal(t, [][]string{{"z"}, {"a1", "b", "c"}, {"a2", "dd"}, {"eeeee"}}, r.all(),
		"an item larger than MaxSize runs alone")
	require.NoError(t, b.Wait(t.Context()))
}

// TestDefaults: the zero Options run every item one at a time.
func TestDefaults(t *testing.T) {
	r := newRecorder()
	b, queued := newTestBatcher(r, Options[string]{})
	hold := make(chan struct{})
	r.setHold(hold)
	var wg sync.WaitGroup
	wg.Go(func() { require.NoError(t, b.Do(t.Context(), "first")) })
	<-r.entered
	<-queued
	for i, item := range []string{"a", "b"} {
		wg.Go(func() { require.NoError(t, b.Do(t.Context(), item)) })
		awaitPending(t, queued, i+1)
	}
	r.setHold(nil)
	close(hold)
	wg.Wait()
	require.Equal(t, [][]string{{"first"}, {"a"}, {"b"}}, r.all())
	require.NoError(t, b.Wait(t.Context()))
}

// TestCanceled: a call whose context ends before its batch is taken is not
// run; without a Context, the context of a run ends only when every caller
// in it has given up.
func TestCanceled(t *testing.T) {
	r := newRecorder()
	b, queued := newTestBatcher(r, Options[string]{MaxSize: 100})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, b.Do(ctx, "x"), context.Canceled)
	require.Empty(t, r.all(), "a call with a canceled context runs nothing")

	hold := make(chan struct{})
	r.setHold(hold)
	first := make(chan error, 1)
	go func() { first <- b.Do(t.Context(), "first") }()
	<-r.entered
	<-queued
	ctx, cancel = context.WithCancel(t.Context())
	gone := make(chan error, 1)
	go func() { gone <- b.Do(ctx, "gone") }()
	awaitPending(t, queued, 1)
	cancel()
	require.ErrorIs(t, <-gone, context.Canceled)
	require.Zero(t, pending(b), "the canceled call left")

	// Two callers wait for the next batch; it runs on while one of them
	// stays.
	ctx1, cancel1 := context.WithCancel(t.Context())
	ctx2, cancel2 := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { require.ErrorIs(t, b.Do(ctx1, "one"), context.Canceled) })
	wg.Go(func() { require.ErrorIs(t, b.Do(ctx2, "two"), context.Canceled) })
	awaitPending(t, queued, 2)
	r.setHold(make(chan struct{})) // never closed: the run ends with its context
	close(hold)
	require.NoError(t, <-first)
	<-r.entered
	runCtx := r.lastCtx()
	cancel1()
	require.NoError(t, runCtx.Err(), "a caller of the run is still waiting")
	cancel2()
	<-runCtx.Done()
	wg.Wait()
	require.NoError(t, b.Wait(t.Context()))
	batches := r.all()
	require.Len(t, batches, 2, "the canceled call was never run")
	require.ElementsMatch(t, []string{"one", "two"}, batches[1])
}

// TestContext: with a Context, runs use it: a caller that gives up does not
// cut its run, and the end of the Context does.
func TestContext(t *testing.T) {
	r := newRecorder()
	ctx, cancel := context.WithCancel(t.Context())
	b, _ := newTestBatcher(r, Options[string]{Context: ctx})
	hold := make(chan struct{})
	r.setHold(hold)
	callerCtx, callerCancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- b.Do(callerCtx, "x") }()
	<-r.entered
	runCtx := r.lastCtx()
	callerCancel()
	require.ErrorIs(t, <-done, context.Canceled, "the caller leaves")
	require.NoError(t, runCtx.Err(), "the run goes on without its caller")
	cancel()
	<-runCtx.Done()
	require.NoError(t, b.Wait(t.Context()))
	require.Equal(t, [][]string{{"x"}}, r.all())
}

// TestLingers: after a batch of several items, a flusher waits up to the
// window for as many to gather, rather than running the first that comes
// back alone; the end of the Context ends the wait.
func TestLingers(t *testing.T) {
	r := newRecorder()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	b, queued := newTestBatcher(r, Options[string]{Window: time.Hour, MaxSize: 100, Context: ctx})

	// A batch of three.
	hold := make(chan struct{})
	r.setHold(hold)
	var wg sync.WaitGroup
	wg.Go(func() { require.NoError(t, b.Do(t.Context(), "first")) })
	<-r.entered
	<-queued
	for i := range 3 {
		wg.Go(func() { require.NoError(t, b.Do(t.Context(), fmt.Sprint("a", i))) })
	}
	awaitPending(t, queued, 3)
	r.setHold(nil)
	close(hold)
	wg.Wait()
	require.Len(t, r.all(), 2)

	// The next three gather, one by one.
	for i := range 3 {
		wg.Go(func() { require.NoError(t, b.Do(t.Context(), fmt.Sprint("b", i))) })
		awaitPending(t, queued, i+1)
		if i < 2 {
			require.Len(t, r.all(), 2, "still gathering")
		}
	}
	wg.Wait()
	batches := r.all()
	require.Len(t, batches, 3)
	require.ElementsMatch(t, []string{"b0", "b1", "b2"}, batches[2])

	// The flusher lingers again, for an hour, unless the Context ends.
	cancel()
	require.NoError(t, b.Wait(t.Context()))
}

// TestLingerWindow: a flusher lingers for at most the window, then runs
// what came.
func TestLingerWindow(t *testing.T) {
	r := newRecorder()
	b, queued := newTestBatcher(r, Options[string]{Window: 5 * time.Millisecond, MaxSize: 100})
	hold := make(chan struct{})
	r.setHold(hold)
	var wg sync.WaitGroup
	wg.Go(func() { require.NoError(t, b.Do(t.Context(), "first")) })
	<-r.entered
	<-queued
	for i := range 3 {
		wg.Go(func() { require.NoError(t, b.Do(t.Context(), fmt.Sprint("a", i))) })
	}
	awaitPending(t, queued, 3)
	r.setHold(nil)
	close(hold)
	wg.Wait()

	require.NoError(t, b.Do(t.Context(), "lone"), "ran once the window passed")
	require.Equal(t, []string{"lone"}, r.all()[2])
	require.NoError(t, b.Wait(t.Context()))
}

// TestClose: Close refuses new items with the ErrClosed of the options;
// items already given still run, and Wait waits for them.
func TestClose(t *testing.T) {
	errMine := errors.New("mine")
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"default", nil, ErrClosed},
		{"given", errMine, errMine},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecorder()
			b, queued := newTestBatcher(r, Options[string]{MaxSize: 100, ErrClosed: tc.err})
			hold := make(chan struct{})
			r.setHold(hold)
			errs := make(chan error, 2)
			go func() { errs <- b.Do(t.Context(), "running") }()
			<-r.entered
			<-queued
			go func() { errs <- b.Do(t.Context(), "waiting") }()
			awaitPending(t, queued, 1)
			b.Close()
			require.ErrorIs(t, b.Do(t.Context(), "late"), tc.want)

			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			require.ErrorIs(t, b.Wait(ctx), context.Canceled, "Wait gives up with its context")

			r.setHold(nil)
			close(hold)
			require.NoError(t, b.Wait(t.Context()))
			require.NoError(t, <-errs)
			require.NoError(t, <-errs)
			require.Equal(t, [][]string{{"running"}, {"waiting"}}, r.all())
		})
	}
}

// TestFlushers: with two flushers, a call made while a batch runs starts
// its own run at once.
func TestFlushers(t *testing.T) {
	r := newRecorder()
	b, _ := newTestBatcher(r, Options[string]{MaxSize: 100, MaxFlushers: 2})
	hold := make(chan struct{})
	r.setHold(hold)
	first := make(chan error, 1)
	go func() { first <- b.Do(t.Context(), "first") }()
	<-r.entered
	r.setHold(nil)
	require.NoError(t, b.Do(t.Context(), "second"), "ran while the first batch is still running")
	select {
	case err := <-first:
		t.Fatalf("the first batch finished early: %v", err)
	default:
	}
	require.Equal(t, [][]string{{"second"}}, r.all())
	close(hold)
	require.NoError(t, <-first)
	require.NoError(t, b.Wait(t.Context()))
}
