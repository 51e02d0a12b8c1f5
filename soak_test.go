package outhook_test

import (
	"log/slog"
	"math"
	"testing"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/soaktest"
	"github.com/outhook/outhook/memqueue"
	"github.com/outhook/outhook/queue"
)

// TestSoak runs the fault soak (internal/soaktest: 5,000 events to five
// misbehaving webhook endpoints, every delivery checked against what its
// endpoint did) on the in-memory queue and store.
func TestSoak(t *testing.T) {
	soaktest.Run(t, func(t *testing.T, logger *slog.Logger) (queue.Queue, outhook.Store) {
		q, err := memqueue.New(&memqueue.Config{Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		// Every delivery is kept, to be checked at the end.
		return q, outhook.NewMemoryStore(&outhook.MemoryStoreConfig{MaxFinishedDeliveries: math.MaxInt32})
	})
}
