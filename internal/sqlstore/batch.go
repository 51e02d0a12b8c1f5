package sqlstore

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// batcher runs the calls of concurrent callers together: a group commit for
// writes (one transaction, one fsync, for every call waiting), one query for
// reads. Each caller waits for the run that holds its own item and gets its
// own error.
//
// Up to maxFlushers flusher goroutines run while there is work: each takes
// the items waiting (up to maxSize, by size; never two with the same key)
// and runs them. Items that arrive meanwhile wait for the next round, so
// batches grow with the load by themselves; a lone caller is run at once.
// When the last batch held several items, a flusher lingers until as many
// wait again, for at most window: under load, the callers a run releases
// come back a few microseconds apart, and taking them at once would run
// them in dribs. A flusher exits when nothing waits, so an idle store has
// no goroutine.
//
// The run's context is cancelled once every caller in the batch has given
// up (their contexts are done); it carries none of their values.
//
// (riverqueue has the same machinery for Enqueue; the two differ in what
// they batch, and in that the store's has no lifecycle of its own.)
type batcher[T any] struct {
	// run runs items together and returns one error per item. It is where
	// a failed batch falls back to running its items one by one, each with
	// its caller's context, so that one caller's failure is not another's.
	run         func(ctx context.Context, items []batchItem[T]) []error
	size        func(T) int    // nil: 1 per item
	key         func(T) string // nil, or "": no conflict
	window      time.Duration
	maxSize     int
	maxFlushers int

	more chan struct{} // cap 1: an item joined the waiting ones

	mu        sync.Mutex
	pending   []*batchReq[T]
	flushers  int // running
	idle      int // running and not running a batch
	lastItems int // items in the last batch
}

// batchItem is one caller's item and context, as run sees it.
type batchItem[T any] struct {
	ctx  context.Context
	item T
}

type batchReq[T any] struct {
	batchItem[T]
	done  chan error // buffered
	taken bool       // guarded by batcher.mu
}

func newBatcher[T any](run func(context.Context, []batchItem[T]) []error, window time.Duration, maxSize, maxFlushers int) *batcher[T] {
	return &batcher[T]{
		run: run, window: max(window, 0), maxSize: max(maxSize, 1), maxFlushers: max(maxFlushers, 1),
		more: make(chan struct{}, 1),
	}
}

// do runs item in a batch and returns its error. When ctx ends before a
// flusher takes the item, nothing is run and ctx.Err() is returned; when
// it ends while its batch runs, do returns ctx.Err() too, and a write may
// or may not have happened (as with any call cut short).
func (b *batcher[T]) do(ctx context.Context, item T) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &batchReq[T]{batchItem: batchItem[T]{ctx: ctx, item: item}, done: make(chan error, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, r)
	select {
	case b.more <- struct{}{}:
	default:
	}
	if b.idle == 0 && b.flushers < b.maxFlushers {
		b.flushers++
		b.idle++
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
	case err := <-r.done: // finished meanwhile: the real outcome
		return err
	default:
		return ctx.Err()
	}
}

// flushLoop runs batches until no item waits.
func (b *batcher[T]) flushLoop() {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		b.mu.Lock()
		if want := b.lastItems; b.window > 0 && want > 1 && len(b.pending) < want {
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
				}
			}
			b.mu.Lock()
		}
		if len(b.pending) == 0 {
			b.lastItems = 0
			b.flushers--
			b.idle--
			b.mu.Unlock()
			return
		}
		b.idle--
		batch := b.take()
		b.mu.Unlock()

		items := make([]batchItem[T], len(batch))
		for i, r := range batch {
			items[i] = r.batchItem
		}
		ctx, stop := batchContext(items)
		errs := b.run(ctx, items)
		stop()
		for i, r := range batch {
			r.done <- errs[i]
		}
		b.mu.Lock()
		b.lastItems = len(batch)
		b.idle++
		b.mu.Unlock()
	}
}

// take removes from pending, and returns, the items of the next batch: in
// order, up to maxSize (but at least one), skipping items whose key is
// already in the batch, which stay for a later one. Called with mu held.
func (b *batcher[T]) take() []*batchReq[T] {
	var (
		batch []*batchReq[T]
		keys  map[string]struct{}
		size  int
	)
	rest := b.pending[:0]
	for i, r := range b.pending {
		s := 1
		if b.size != nil {
			s = b.size(r.item)
		}
		if len(batch) > 0 && size+s > b.maxSize {
			rest = append(rest, b.pending[i:]...)
			break
		}
		if b.key != nil {
			if k := b.key(r.item); k != "" {
				if _, dup := keys[k]; dup {
					rest = append(rest, r)
					continue
				}
				if keys == nil {
					keys = map[string]struct{}{}
				}
				keys[k] = struct{}{}
			}
		}
		r.taken = true
		size += s
		batch = append(batch, r)
	}
	clear(b.pending[len(rest):])
	b.pending = rest
	return batch
}

// batchContext returns a context that ends when every item's context has
// ended, and a function that releases it.
func batchContext[T any](items []batchItem[T]) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var left atomic.Int64
	left.Store(int64(len(items)))
	stops := make([]func() bool, len(items))
	for i, it := range items {
		stops[i] = context.AfterFunc(it.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}
