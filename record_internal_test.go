package outhook

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook/queue"
)

// TestRecordContext: the record context outlives the handler's deadline by
// recordGrace, or by half of what is left of the lease past the deadline,
// whichever is shorter; it still ends with a cancellation of the handler's
// context; without a deadline it is the handler's context.
func TestRecordContext(t *testing.T) {
	plain := context.Background()
	rctx, cancel := recordContext(plain)
	cancel()
	require.Equal(t, plain, rctx)

	deadline := time.Now().Add(time.Hour)
	hctx, hcancel := context.WithDeadline(context.WithValue(context.Background(), leaseEndKeyForTest{}, 1), deadline)
	rctx, cancel = recordContext(hctx)
	got, ok := rctx.Deadline()
	require.True(t, ok)
	require.Equal(t, deadline.Add(recordGrace), got)
	require.Equal(t, 1, rctx.Value(leaseEndKeyForTest{}), "the handler's values are kept")
	hcancel() // a cancellation (a queue's Stop): the record context ends too
	select {
	case <-rctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the record context outlived a cancellation of the handler's")
	}
	cancel()

	// A lease that ends 2 s after the deadline: the record gets 1 s of it.
	hctx, hcancel = context.WithDeadline(queue.WithLeaseEnd(context.Background(), deadline.Add(2*time.Second)), deadline)
	defer hcancel()
	rctx, cancel = recordContext(hctx)
	defer cancel()
	got, _ = rctx.Deadline()
	require.Equal(t, deadline.Add(time.Second), got)

	// A handler deadline that has passed does not end the record context.
	past, pcancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Millisecond))
	defer pcancel()
	<-past.Done()
	rctx, cancel = recordContext(past)
	defer cancel()
	require.NoError(t, rctx.Err())
}

type leaseEndKeyForTest struct{}
