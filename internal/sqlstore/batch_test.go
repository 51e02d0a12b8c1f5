package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// recorder is a batcher's run function that records its batches and can be
// held.
type recorder struct {
	mu      sync.Mutex
	batches [][]string
	hold    chan struct{} // when non-nil, runs wait for it
	entered chan struct{} // receives when a run begins (cap 1)
	ctxs    []context.Context
}

func newRecorder() *recorder { return &recorder{entered: make(chan struct{}, 1)} }

func (r *recorder) run(ctx context.Context, items []batchItem[string]) []error {
	select {
	case r.entered <- struct{}{}:
	default:
	}
	r.mu.Lock()
	hold := r.hold
	r.ctxs = append(r.ctxs, ctx)
	r.mu.Unlock()
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
		batch[i] = it.item
		errs[i] = cut
		if it.item == "bad" {
			errs[i] = fmt.Errorf("refused %s", it.item)
		}
	}
	r.mu.Lock()
	r.batches = append(r.batches, batch)
	r.mu.Unlock()
	return errs
}

func (r *recorder) all() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.batches)
}

// waitPending waits until n items wait in b.
func waitPending[T any](t *testing.T, b *batcher[T], n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.pending) == n
	}, 5*time.Second, time.Millisecond)
}

// TestBatcherGroups: calls made while a batch runs wait and run together,
// each with its own error; a lone call runs at once.
func TestBatcherGroups(t *testing.T) {
	r := newRecorder()
	b := newBatcher(r.run, 0, 100, 1)
	require.NoError(t, b.do(t.Context(), "alone"))
	require.Equal(t, [][]string{{"alone"}}, r.all())
	<-r.entered

	r.hold = make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { err := b.do(t.Context(), "first"); require.NoError(t, err, "%v", r.all()) })
	<-r.entered
	errs := make(map[string]error)
	var mu sync.Mutex
	for _, item := range []string{"a", "bad", "c"} {
		wg.Go(func() {
			err := b.do(t.Context(), item)
			mu.Lock()
			errs[item] = err
			mu.Unlock()
		})
	}
	waitPending(t, b, 3)
	close(r.hold)
	wg.Wait()
	batches := r.all()
	require.Len(t, batches, 3)
	require.Equal(t, []string{"first"}, batches[1])
	require.ElementsMatch(t, []string{"a", "bad", "c"}, batches[2], "the three waiting calls ran together")
	require.NoError(t, errs["a"])
	require.NoError(t, errs["c"])
	require.EqualError(t, errs["bad"], "refused bad", "each call gets its own error")
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.flushers == 0
	}, 5*time.Second, time.Millisecond, "the flusher exits when nothing waits")
}

// TestBatcherLimits: a batch holds at most maxSize, by size, and never two
// items with one key; the others wait for the next batch, in order.
func TestBatcherLimits(t *testing.T) {
	r := newRecorder()
	b := newBatcher(r.run, 0, 4, 1)
	b.size = func(s string) int { return len(s) }
	b.key = func(s string) string { return s[:1] }
	r.hold = make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { require.NoError(t, b.do(t.Context(), "z")) })
	<-r.entered
	for i, item := range []string{"a1", "a2", "b", "c", "dd"} {
		wg.Go(func() { require.NoError(t, b.do(t.Context(), item)) })
		waitPending(t, b, i+1)
	}
	close(r.hold)
	wg.Wait()
	require.Equal(t, [][]string{{"z"}, {"a1", "b", "c"}, {"a2", "dd"}}, r.all())
}

// TestBatcherCanceled: a call whose context ends before its batch is taken
// is not run; the context of a run ends only when every caller in it has
// given up.
func TestBatcherCanceled(t *testing.T) {
	r := newRecorder()
	b := newBatcher(r.run, 0, 100, 1)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, b.do(ctx, "x"), context.Canceled)
	require.Empty(t, r.all(), "a call with a canceled context runs nothing")

	r.hold = make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { _ = b.do(t.Context(), "first") })
	<-r.entered
	ctx, cancel = context.WithCancel(t.Context())
	wg.Go(func() { require.ErrorIs(t, b.do(ctx, "gone"), context.Canceled) })
	waitPending(t, b, 1)
	cancel()
	waitPending(t, b, 0)
	close(r.hold)
	wg.Wait()
	require.Equal(t, [][]string{{"first"}}, r.all(), "the canceled call was never run")

	// Two callers in one batch: it runs on while one of them stays.
	r.mu.Lock()
	r.hold = make(chan struct{}) // never closed: the run ends with its context
	r.ctxs = nil
	r.mu.Unlock()
	ctx1, cancel1 := context.WithCancel(t.Context())
	ctx2, cancel2 := context.WithCancel(t.Context())
	wg.Go(func() { require.ErrorIs(t, b.do(ctx1, "one"), context.Canceled) })
	<-r.entered
	wg.Go(func() { require.ErrorIs(t, b.do(ctx2, "two"), context.Canceled) })
	waitPending(t, b, 1)
	r.mu.Lock()
	runCtx := r.ctxs[0]
	r.mu.Unlock()
	cancel2() // not in the running batch: removed
	waitPending(t, b, 0)
	require.NoError(t, runCtx.Err(), "the run's caller is still waiting")
	cancel1()
	<-runCtx.Done()
	wg.Wait()
}

// TestBatcherLingers: after a batch of several items, a flusher waits up
// to the window for as many to gather, rather than running the first that
// comes back alone.
func TestBatcherLingers(t *testing.T) {
	r := newRecorder()
	b := newBatcher(r.run, time.Second, 100, 1)
	b.lastItems = 3 // as if the last batch held three
	b.flushers, b.idle = 1, 1
	done := make(chan struct{})
	go func() {
		b.flushLoop()
		close(done)
	}()
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() { require.NoError(t, b.do(t.Context(), fmt.Sprint(i))) })
		if i < 2 {
			waitPending(t, b, i+1)
			require.Empty(t, r.all(), "still gathering")
		}
	}
	wg.Wait()
	require.Len(t, r.all(), 1)
	require.Len(t, r.all()[0], 3)
	<-done
}
