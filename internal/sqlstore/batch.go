package sqlstore

import (
	"context"

	"github.com/outhook/outhook/internal/batch"
)

// batchItem is one caller's item and context, as the store's run functions
// see it.
type batchItem[T any] struct {
	ctx  context.Context
	item T
}

// newBatcher returns a batch.Batcher that runs the calls of concurrent
// callers with run (see grouped.go). It has no Context: the context of a
// run ends only once every caller in its batch has given up, since a store
// call has no lifecycle but its caller's. Nor is it ever closed: a flusher
// exits when nothing waits, so an idle store has no goroutine.
func newBatcher[T any](run func(context.Context, []batchItem[T]) []error, o batch.Options[T]) *batch.Batcher[T] {
	return batch.New(func(ctx context.Context, items []batch.Item[T]) []error {
		its := make([]batchItem[T], len(items))
		for i, it := range items {
			its[i] = batchItem[T]{ctx: it.Ctx, item: it.Value}
		}
		return run(ctx, its)
	}, o)
}
