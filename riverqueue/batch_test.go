package riverqueue

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook/queue"
)

// fakeInserter records inserts; it refuses any batch holding a job whose ID
// is "bad", as a database refuses a statement.
type fakeInserter struct {
	batches [][]string // IDs per call
	rows    map[string]int
}

func newFakeInserter() *fakeInserter { return &fakeInserter{rows: map[string]int{}} }

func (f *fakeInserter) insert(_ context.Context, params []river.InsertManyParams) error {
	ids := make([]string, len(params))
	for i, p := range params {
		ids[i] = p.Args.(*jobArgs).ID
	}
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

// TestCommitEnqueues: the jobs of every call go in one insert, a duplicate
// (Group, ID) once; when that insert fails, each call is inserted again on
// its own, so that only the refused call fails.
func TestCommitEnqueues(t *testing.T) {
	f := newFakeInserter()
	commit := commitEnqueues(f.insert)
	require.Equal(t, []error{nil}, commit(t.Context(), []enqueueItem{params("alone", "alone")}),
		"a lone call is inserted as it is")

	items := []enqueueItem{params("a", "shared"), params("b", "shared"), params("c")}
	require.Equal(t, []error{nil, nil, nil}, commit(t.Context(), items))

	const calls = 8
	items = make([]enqueueItem, calls)
	for i := range calls {
		id := fmt.Sprintf("job-%d", i)
		if i == 3 {
			id = "bad"
		}
		items[i] = params(id)
	}
	errs := commit(t.Context(), items)
	for i, err := range errs {
		if i == 3 {
			require.ErrorContains(t, err, "refused", "the refused call gets its error")
			continue
		}
		require.NoError(t, err, "call %d", i)
	}

	require.Equal(t, []string{"alone", "alone"}, f.batches[0])
	require.Equal(t, []string{"a", "shared", "b", "c"}, f.batches[1], "one insert, the duplicate once")
	require.Len(t, f.batches, 2+1+calls, "the failed insert, then each call alone")
	require.Len(t, f.batches[2], calls)
	for i := range calls {
		if i != 3 {
			require.Equal(t, 1, f.rows[fmt.Sprintf("job-%d", i)])
		}
	}
	require.Zero(t, f.rows["bad"])
}

// TestNewBatcher: commits get the items and the batcher's context, not the
// caller's; after Close, calls return queue.ErrClosed.
func TestNewBatcher(t *testing.T) {
	type key struct{}
	ctx := context.WithValue(t.Context(), key{}, "batcher")
	var got []any
	b := newBatcher(ctx, func(ctx context.Context, items []string) []error {
		got = append(got, ctx.Value(key{}))
		for _, it := range items {
			got = append(got, it)
		}
		return make([]error, len(items))
	}, nil, 0, 10, 1)
	require.NoError(t, b.Do(context.WithValue(t.Context(), key{}, "caller"), "x"))
	require.NoError(t, b.Wait(t.Context()))
	require.Equal(t, []any{"batcher", "x"}, got)
	b.Close()
	require.ErrorIs(t, b.Do(t.Context(), "y"), queue.ErrClosed)
}
