package sqlite_test

import (
	"testing"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/opstest"
	"github.com/outhook/outhook/queue"
)

// TestOperationsConformance runs the operations suite (recovery, replay,
// delivery listings, CEL filters) on the SQLite queue and store, sharing a
// new file per subtest.
func TestOperationsConformance(t *testing.T) {
	opstest.Run(t, func(t *testing.T) (queue.Queue, outhook.Store) {
		_, q, store := newClientParts(t, "ops.db")
		return q, store
	})
}
