package riverqueue

import (
	"context"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/outhook/outhook/queue"
)

// batcher is a group commit: the items of concurrent callers are written by
// one call of commit, in one transaction, while each caller waits for the
// commit that holds its own item and gets its own error. The queue has two:
// one for Enqueue (items are the jobs of one call) and one for the Next jobs
// of finished runs (items are a job to complete and its Next jobs).
//
// Up to maxFlushers flusher goroutines (one by default) run while there is
// work: each takes every item waiting (up to maxSize, by size) and commits
// them. Items that arrive while every flusher commits wait for the next
// round, so batches grow with the load by themselves.
//
// Under load, the callers a commit releases come straight back with their
// next items, a few microseconds apart, and a flusher that took whatever was
// waiting at once would commit them in dribs. So when the last batch held
// several items, a flusher lingers until as many are waiting again, for at
// most window. A lone caller (last batch of one item, or none) pays one
// transaction and no timer.
//
// A flusher exits when nothing is waiting.
type batcher[T any] struct {
	// commit writes items in one transaction and returns one error per
	// item (nil for success). It is where a failed batch falls back to
	// committing its items one by one, so that an item the database
	// refuses cannot fail the others.
	commit      func(ctx context.Context, items []T) []error
	size        func(T) int     // nil means 1 per item
	ctx         context.Context // of the commits; cancelled by a hard stop
	window      time.Duration
	maxSize     int
	maxFlushers int // at least 1

	more chan struct{} // cap 1: an item joined the waiting ones

	// queued, when set, is called with the number of waiting items
	// whenever one joins them, with mu held. For tests.
	queued func(pending int)

	mu        sync.Mutex
	pending   []*batchReq[T]
	flushers  int // running
	idle      int // running and not committing
	lastItems int // items in the last batch written
	closed    bool
	wg        sync.WaitGroup // the running flushers
}

// batchReq is one caller's share of a batch.
type batchReq[T any] struct {
	item  T
	done  chan error // receives the outcome; buffered
	taken bool       // a flusher has taken it; guarded by batcher.mu
}

// newBatcher returns a batcher; more is made here.
func newBatcher[T any](ctx context.Context, commit func(context.Context, []T) []error, size func(T) int, window time.Duration, maxSize, maxFlushers int) *batcher[T] {
	return &batcher[T]{
		commit: commit, size: size, ctx: ctx, window: max(window, 0),
		maxSize: max(maxSize, 1), maxFlushers: max(maxFlushers, 1), more: make(chan struct{}, 1),
	}
}

// submit queues item and waits for its commit. When ctx ends before a
// flusher takes it, nothing is written and ctx.Err() is returned. When ctx
// ends while its batch commits, submit returns ctx.Err() too, and the item
// may or may not have been written: the outcome of a commit in flight is
// unknowable to a caller that leaves.
func (b *batcher[T]) submit(ctx context.Context, item T) error {
	r := &batchReq[T]{item: item, done: make(chan error, 1)}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return queue.ErrClosed
	}
	b.pending = append(b.pending, r)
	if b.queued != nil {
		b.queued(len(b.pending))
	}
	select {
	case b.more <- struct{}{}:
	default:
	}
	if b.idle == 0 && b.flushers < b.maxFlushers {
		b.flushers++
		b.idle++
		b.wg.Add(1)
		go b.flushLoop()
	}
	b.mu.Unlock()

	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
	}
	b.mu.Lock()
	if !r.taken {
		for i, p := range b.pending {
			if p == r {
				b.pending = append(b.pending[:i], b.pending[i+1:]...)
				break
			}
		}
		b.mu.Unlock()
		return ctx.Err()
	}
	b.mu.Unlock()
	select {
	case err := <-r.done: // finished meanwhile: report the real outcome
		return err
	default:
		return ctx.Err()
	}
}

// close refuses new items. Items already submitted are still written.
func (b *batcher[T]) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
}

// wait waits for the flushers to finish the items submitted, or for ctx.
func (b *batcher[T]) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flushLoop writes batches until no item is waiting.
func (b *batcher[T]) flushLoop() {
	defer b.wg.Done()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		b.mu.Lock()
		if want := b.lastItems; b.window > 0 && want > 1 && len(b.pending) < want {
			// Under load: let the callers just released come back.
			b.mu.Unlock()
			if timer == nil {
				timer = time.NewTimer(b.window)
			} else {
				timer.Reset(b.window)
			}
		linger:
			for {
				select {
				case <-b.more:
					b.mu.Lock()
					n := len(b.pending)
					b.mu.Unlock()
					if n >= want {
						break linger
					}
				case <-timer.C:
					break linger
				case <-b.ctx.Done():
					break linger
				}
			}
			b.mu.Lock()
		}
		if len(b.pending) == 0 {
			b.lastItems = 0 // the load is gone
			b.flushers--
			b.idle--
			b.mu.Unlock()
			return
		}
		b.idle--
		n, size := 0, 0
		for n < len(b.pending) {
			s := 1
			if b.size != nil {
				s = b.size(b.pending[n].item)
			}
			if n > 0 && size+s > b.maxSize {
				break
			}
			b.pending[n].taken = true
			size += s
			n++
		}
		batch := make([]*batchReq[T], n)
		copy(batch, b.pending[:n])
		rest := copy(b.pending, b.pending[n:])
		clear(b.pending[rest:])
		b.pending = b.pending[:rest]
		b.mu.Unlock()

		items := make([]T, n)
		for i, r := range batch {
			items[i] = r.item
		}
		errs := b.commit(b.ctx, items)
		for i, r := range batch {
			r.done <- errs[i]
		}
		b.mu.Lock()
		b.lastItems = n
		b.idle++
		b.mu.Unlock()
	}
}

// enqueueItem is the jobs of one Enqueue call.
type enqueueItem struct {
	params []river.InsertManyParams
	keys   []string // dedupe key of each param, "" for none
}

// commitEnqueues returns the commit function of Enqueue's batcher: the jobs
// of every call in one insert. River inserts a batch with one INSERT ..
// ON CONFLICT, which cannot meet the same unique key twice: the second copy
// of a (Group, ID) in one batch is a duplicate of a live job anyway, and is
// left out. When the insert fails and the batch held more than one call,
// each call is inserted again on its own.
func commitEnqueues(insert func(context.Context, []river.InsertManyParams) error) func(context.Context, []enqueueItem) []error {
	return func(ctx context.Context, items []enqueueItem) []error {
		errs := make([]error, len(items))
		if len(items) == 1 {
			errs[0] = insert(ctx, items[0].params)
			return errs
		}
		n := 0
		for _, it := range items {
			n += len(it.params)
		}
		params := make([]river.InsertManyParams, 0, n)
		seen := make(map[string]struct{})
		for _, it := range items {
			for i, p := range it.params {
				if k := it.keys[i]; k != "" {
					if _, dup := seen[k]; dup {
						continue
					}
					seen[k] = struct{}{}
				}
				params = append(params, p)
			}
		}
		if insert(ctx, params) == nil {
			return errs
		}
		for i, it := range items {
			errs[i] = insert(ctx, it.params)
		}
		return errs
	}
}
