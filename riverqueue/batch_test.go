package riverqueue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook/queue"
)

// fakeInserter records inserts; it refuses any batch holding a job whose ID
// is "bad", as a database refuses a statement, and can be held.
type fakeInserter struct {
	mu      sync.Mutex
	batches [][]string // IDs per call
	rows    map[string]int
	hold    chan struct{} // when non-nil, inserts wait for it
	entered chan struct{} // receives when an insert begins (cap 1)
}

func newFakeInserter() *fakeInserter {
	return &fakeInserter{rows: map[string]int{}, entered: make(chan struct{}, 1)}
}

func (f *fakeInserter) insert(ctx context.Context, params []river.InsertManyParams) error {
	select {
	case f.entered <- struct{}{}:
	default:
	}
	f.mu.Lock()
	hold := f.hold
	f.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	ids := make([]string, len(params))
	for i, p := range params {
		ids[i] = p.Args.(*jobArgs).ID
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, ids)
	for _, id := range ids {
		if id == "bad" {
			return errors.New("fake: refused")
		}
	}
	for _, id := range ids {
		f.rows[id]++
	}
	return nil
}

func params(ids ...string) enqueueItem {
	ps := make([]river.InsertManyParams, len(ids))
	keys := make([]string, len(ids))
	for i, id := range ids {
		ps[i] = river.InsertManyParams{Args: &jobArgs{Group: "g", ID: id}}
		keys[i] = "g\x00" + id
	}
	return enqueueItem{params: ps, keys: keys}
}

// newTestBatcher returns a batcher on f and a channel that receives the
// number of waiting requests each time one joins them.
func newTestBatcher(f *fakeInserter) (*batcher[enqueueItem], chan int) {
	ch := make(chan int, 100)
	b := newBatcher(context.Background(), commitEnqueues(f.insert),
		func(it enqueueItem) int { return len(it.params) }, 0, 1000, 1)
	b.queued = func(n int) { ch <- n }
	return b, ch
}

// awaitPending waits until n requests wait behind the running insert.
func awaitPending(t *testing.T, ch chan int, n int) {
	t.Helper()
	timer := time.NewTimer(5 * time.Second)
	defer timer.Stop()
	for {
		select {
		case got := <-ch:
			if got == n {
				return
			}
		case <-timer.C:
			t.Fatalf("timed out waiting for %d waiting requests", n)
		}
	}
}

// TestBatcherGroupsConcurrentCalls: calls that arrive while a batch commits
// share the next one, and each gets its own outcome: a call the "database"
// refuses fails alone.
func TestBatcherGroupsConcurrentCalls(t *testing.T) {
	f := newFakeInserter()
	b, queued := newTestBatcher(f)
	// Hold the first insert so that the other callers pile up behind it.
	f.hold = make(chan struct{})
	first := make(chan error, 1)
	go func() {
		it := params("first")
		first <- b.submit(context.Background(), it)
	}()
	<-f.entered
	<-queued // first

	const callers = 32
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			id := fmt.Sprintf("job-%d", i)
			if i == 7 {
				id = "bad"
			}
			it := params(id, "shared") // every caller also sends a duplicate
			errs[i] = b.submit(context.Background(), it)
		})
	}
	// Wait until all callers are queued, then let the first batch commit.
	awaitPending(t, queued, callers)
	f.mu.Lock()
	close(f.hold)
	f.hold = nil
	f.mu.Unlock()
	wg.Wait()
	require.NoError(t, <-first)
	require.NoError(t, b.wait(context.Background()))

	for i, err := range errs {
		if i == 7 {
			require.ErrorContains(t, err, "refused", "the refused caller gets its error")
			continue
		}
		require.NoError(t, err, "caller %d", i)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// first; one batch of all 32 (refused as a whole); then each alone.
	require.Len(t, f.batches, 2+callers)
	require.Len(t, f.batches[1], callers+1, "one batch holds every caller's job and the duplicate once")
	for i := range callers {
		if i != 7 {
			require.Equal(t, 1, f.rows[fmt.Sprintf("job-%d", i)])
		}
	}
	require.Zero(t, f.rows["bad"])
}

// TestBatcherContext: a caller whose context ends before its jobs are taken
// admits nothing.
func TestBatcherContext(t *testing.T) {
	f := newFakeInserter()
	b, queued := newTestBatcher(f)
	f.hold = make(chan struct{})
	go func() {
		it := params("first")
		_ = b.submit(context.Background(), it)
	}()
	<-f.entered
	<-queued
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		it := params("late")
		done <- b.submit(ctx, it)
	}()
	awaitPending(t, queued, 1)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	f.mu.Lock()
	close(f.hold)
	f.hold = nil
	f.mu.Unlock()
	require.NoError(t, b.wait(context.Background()))
	require.Zero(t, f.rows["late"], "a caller that left before its batch admitted its jobs")
	require.Equal(t, 1, f.rows["first"])
}

func TestBatcherClose(t *testing.T) {
	f := newFakeInserter()
	b, _ := newTestBatcher(f)
	it := params("a")
	require.NoError(t, b.submit(context.Background(), it))
	b.close()
	require.ErrorIs(t, b.submit(context.Background(), it), queue.ErrClosed)
	require.NoError(t, b.wait(context.Background()))
}

func TestBatcherMaxJobs(t *testing.T) {
	f := newFakeInserter()
	b, queued := newTestBatcher(f)
	b.maxSize = 3
	f.hold = make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		it := params("first")
		require.NoError(t, b.submit(context.Background(), it))
	})
	<-f.entered
	<-queued
	for i := range 5 {
		wg.Go(func() {
			it := params(fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i))
			require.NoError(t, b.submit(context.Background(), it))
		})
	}
	awaitPending(t, queued, 5)
	f.mu.Lock()
	close(f.hold)
	f.hold = nil
	f.mu.Unlock()
	wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, batch := range f.batches[1:] {
		require.Len(t, batch, 2, "two calls of two jobs exceed 3: one call per batch")
	}
}

// TestBatcherConcurrentFlushers: with two flushers, a call made while a
// batch commits starts its own transaction at once.
func TestBatcherConcurrentFlushers(t *testing.T) {
	f := newFakeInserter()
	b, _ := newTestBatcher(f)
	b.maxFlushers = 2
	hold := make(chan struct{})
	f.hold = hold
	first := make(chan error, 1)
	go func() {
		it := params("first")
		first <- b.submit(context.Background(), it)
	}()
	<-f.entered
	f.mu.Lock()
	f.hold = nil // the second insert goes through
	f.mu.Unlock()
	it := params("second")
	require.NoError(t, b.submit(context.Background(), it), "committed while the first batch is still in flight")
	select {
	case err := <-first:
		t.Fatalf("the first batch finished early: %v", err)
	default:
	}
	f.mu.Lock()
	require.Equal(t, 1, f.rows["second"])
	f.mu.Unlock()
	close(hold)
	require.NoError(t, <-first)
	require.NoError(t, b.wait(context.Background()))
}
