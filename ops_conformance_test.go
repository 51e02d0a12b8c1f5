package outhook_test

import (
	"testing"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/opstest"
	"github.com/outhook/outhook/memqueue"
	"github.com/outhook/outhook/queue"
)

// TestOperationsConformance runs the operations suite (recovery, replay,
// delivery listings, CEL filters) on the in-memory queue and store.
func TestOperationsConformance(t *testing.T) {
	opstest.Run(t, func(t *testing.T) (queue.Queue, outhook.Store) {
		q, err := memqueue.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		return q, outhook.NewMemoryStore(nil)
	})
}
