package riverqueue

import (
	"context"
	"time"

	"github.com/riverqueue/river"

	"github.com/outhook/outhook/internal/batch"
	"github.com/outhook/outhook/queue"
)

// newBatcher returns a group commit: the items of concurrent callers are
// written by one call of commit, in one transaction, while each caller waits
// for the commit that holds its own item and gets its own error (see
// batch.Batcher). The queue has three: one for Enqueue (items are the jobs
// of one call), one for the Next jobs of finished runs (items are a job to
// complete and its Next jobs) and one for the deletion of finished jobs.
//
// Commits run with ctx, not with their callers' contexts: a caller that
// gives up does not cut the transaction of the others, and a hard stop
// (the end of ctx) cuts them all. After Close, the batcher refuses items
// with queue.ErrClosed. size is an item's share of maxSize; nil counts 1.
func newBatcher[T any](ctx context.Context, commit func(context.Context, []T) []error, size func(T) int, window time.Duration, maxSize, maxFlushers int) *batch.Batcher[T] {
	run := func(ctx context.Context, items []batch.Item[T]) []error {
		values := make([]T, len(items))
		for i, it := range items {
			values[i] = it.Value
		}
		return commit(ctx, values)
	}
	return batch.New(run, batch.Options[T]{
		Size: size, Window: window, MaxSize: maxSize, MaxFlushers: maxFlushers,
		Context: ctx, ErrClosed: queue.ErrClosed,
	})
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
