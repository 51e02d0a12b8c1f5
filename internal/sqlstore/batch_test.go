package sqlstore

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook/internal/batch"
)

// TestNewBatcher: run gets each caller's item and context; the context of
// the run carries none of the callers' values.
func TestNewBatcher(t *testing.T) {
	type key struct{}
	var got []any
	b := newBatcher(func(ctx context.Context, items []batchItem[string]) []error {
		got = append(got, ctx.Value(key{}))
		for _, it := range items {
			got = append(got, it.item, it.ctx.Value(key{}))
		}
		return make([]error, len(items))
	}, batch.Options[string]{})
	require.NoError(t, b.Do(context.WithValue(t.Context(), key{}, "caller"), "x"))
	require.NoError(t, b.Wait(t.Context()))
	require.Equal(t, []any{nil, "x", "caller"}, got)
}
