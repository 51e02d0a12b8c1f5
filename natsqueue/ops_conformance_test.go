package natsqueue_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/opstest"
	"github.com/outhook/outhook/natsqueue"
	"github.com/outhook/outhook/queue"
	"github.com/outhook/outhook/sqlite"
)

// TestOperationsConformance runs the operations suite (recovery, replay,
// delivery listings, CEL filters) on the NATS queue, with a stream of each
// subtest's own, and the SQLite store: NATS holds no deliveries.
func TestOperationsConformance(t *testing.T) {
	opstest.Run(t, func(t *testing.T) (queue.Queue, outhook.Store) {
		q, _ := newQueue(t, natsqueue.Config{Stream: newStream(t)})
		db, err := sqlite.Open(filepath.Join(t.TempDir(), "ops.db"))
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		require.NoError(t, sqlite.MigrateStore(t.Context(), db))
		store, err := sqlite.NewStore(t.Context(), db, nil)
		require.NoError(t, err)
		return q, store
	})
}
