// Package batch runs the calls of concurrent callers together: a group
// commit for writes (one transaction, one fsync, for every call waiting),
// one query for reads. Each caller waits for the run that holds its own item
// and gets its own error.
//
// The River queue batches its enqueues and completions with it, the SQL
// store its hot reads and writes; they differ only in the options they pass.
package batch

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is what Do returns after Close, unless Options.ErrClosed says
// otherwise.
var ErrClosed = errors.New("batch: closed")

// Item is one caller's value and context, as a RunFunc sees it.
type Item[T any] struct {
	// Ctx is the caller's context. A run that falls back to running its
	// items one by one uses it, so that each bounds its own call.
	Ctx   context.Context
	Value T
}

// RunFunc runs items together and returns exactly one error per item (nil
// for success). It is where a failed batch falls back to running its items
// one by one, so that an item the database refuses cannot fail the others.
type RunFunc[T any] func(ctx context.Context, items []Item[T]) []error

// Options configure a Batcher. The zero value batches every item waiting,
// one at a time, with no lingering.
type Options[T any] struct {
	// Size is an item's share of MaxSize (rows, jobs). Nil counts 1 per
	// item.
	Size func(T) int
	// Key names what an item conflicts on: two items with the same
	// non-empty key never share a batch (the later one waits for a later
	// batch), as one statement cannot update a row twice. Nil, or "",
	// means no conflict.
	Key func(T) string
	// Window bounds how long a flusher lingers for items after a batch of
	// several (see Batcher). Zero never lingers.
	Window time.Duration
	// MaxSize bounds the size of a batch, at least 1; an item larger than
	// it runs alone.
	MaxSize int
	// MaxFlushers is how many batches may run at once, at least 1.
	MaxFlushers int
	// Context, when set, is the context of every run: runs outlive the
	// callers who give up, and a lingering flusher stops lingering once
	// it ends. Nil: the context of a run ends once every caller in its
	// batch has given up, and carries none of their values.
	Context context.Context
	// ErrClosed is what Do returns after Close. Nil means ErrClosed.
	ErrClosed error
}

// Batcher is a group of callers' items run together by a RunFunc.
//
// Up to MaxFlushers flusher goroutines run while there is work: each takes
// the items waiting (up to MaxSize, by Size; never two with the same Key)
// and runs them. Items that arrive meanwhile wait for the next round, so
// batches grow with the load by themselves; a lone caller is run at once.
//
// Under load, the callers a run releases come straight back with their next
// items, a few microseconds apart, and a flusher that took whatever was
// waiting at once would run them in dribs. So when the last batch held
// several items, a flusher lingers until as many are waiting again, for at
// most Window. A lone caller (last batch of one item, or none) pays one run
// and no timer.
//
// A flusher exits when nothing waits, so an idle Batcher has no goroutine
// and needs no stopping. Close and Wait are for owners with a lifecycle:
// refuse new items, then wait for those already given.
type Batcher[T any] struct {
	run         RunFunc[T]
	size        func(T) int
	key         func(T) string
	window      time.Duration
	maxSize     int
	maxFlushers int
	ctx         context.Context // nil: derived from the callers
	errClosed   error

	more chan struct{} // cap 1: an item joined the waiting ones

	// queued, when set, is called with the number of waiting items
	// whenever one joins them, with mu held. For tests.
	queued func(pending int)

	mu        sync.Mutex
	pending   []*request[T]
	flushers  int // running
	idle      int // running and not running a batch
	lastItems int // items in the last batch
	closed    bool
	drained   chan struct{} // closed when flushers drops to 0; nil while nobody waits
}

// request is one caller's share of a batch.
type request[T any] struct {
	Item[T]
	done  chan error // receives the outcome; buffered
	taken bool       // a flusher has taken it; guarded by Batcher.mu
}

// New returns a Batcher that runs items with run.
func New[T any](run RunFunc[T], o Options[T]) *Batcher[T] {
	errClosed := o.ErrClosed
	if errClosed == nil {
		errClosed = ErrClosed
	}
	return &Batcher[T]{
		run: run, size: o.Size, key: o.Key, window: max(o.Window, 0), maxSize: max(o.MaxSize, 1),
		maxFlushers: max(o.MaxFlushers, 1), ctx: o.Context, errClosed: errClosed, more: make(chan struct{}, 1),
	}
}

// Do runs item in a batch and returns its error. When ctx ends before a
// flusher takes the item, nothing is run and ctx.Err() is returned. When it
// ends while its batch runs, Do returns ctx.Err() too, and a write may or
// may not have happened: the outcome of a run in flight is unknowable to a
// caller that leaves. After Close, Do returns the ErrClosed of Options.
func (b *Batcher[T]) Do(ctx context.Context, item T) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &request[T]{Item: Item[T]{Ctx: ctx, Value: item}, done: make(chan error, 1)}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return b.errClosed
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

// Close refuses new items. Items already given to Do are still run.
func (b *Batcher[T]) Close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
}

// Wait waits until no flusher runs, or for ctx. After Close, that is when
// every item given to Do has been run.
func (b *Batcher[T]) Wait(ctx context.Context) error {
	b.mu.Lock()
	if b.flushers == 0 {
		b.mu.Unlock()
		return nil
	}
	if b.drained == nil {
		b.drained = make(chan struct{})
	}
	drained := b.drained
	b.mu.Unlock()
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flushLoop runs batches until no item waits.
func (b *Batcher[T]) flushLoop() {
	var (
		timer *time.Timer
		stop  <-chan struct{} // nil, which never fires, without a Context
	)
	if b.ctx != nil {
		stop = b.ctx.Done()
	}
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
				case <-stop:
					break linger
				}
			}
			b.mu.Lock()
		}
		if len(b.pending) == 0 {
			if timer != nil {
				timer.Stop()
			}
			b.lastItems = 0 // the load is gone
			b.flushers--
			b.idle--
			if b.flushers == 0 && b.drained != nil {
				close(b.drained)
				b.drained = nil
			}
			b.mu.Unlock()
			return
		}
		b.idle--
		batch := b.take()
		b.mu.Unlock()

		items := make([]Item[T], len(batch))
		for i, r := range batch {
			items[i] = r.Item
		}
		var errs []error
		if b.ctx != nil {
			errs = b.run(b.ctx, items)
		} else {
			ctx, release := callersContext(items)
			errs = b.run(ctx, items)
			release()
		}
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
func (b *Batcher[T]) take() []*request[T] {
	var (
		batch []*request[T]
		keys  map[string]struct{}
		size  int
	)
	rest := b.pending[:0]
	for i, r := range b.pending {
		s := 1
		if b.size != nil {
			s = b.size(r.Value)
		}
		if len(batch) > 0 && size+s > b.maxSize {
			rest = append(rest, b.pending[i:]...)
			break
		}
		if b.key != nil {
			if k := b.key(r.Value); k != "" {
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

// callersContext returns a context that ends when every item's context has
// ended, and a function that releases it.
func callersContext[T any](items []Item[T]) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var left atomic.Int64
	left.Store(int64(len(items)))
	stops := make([]func() bool, len(items))
	for i, it := range items {
		stops[i] = context.AfterFunc(it.Ctx, func() {
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
