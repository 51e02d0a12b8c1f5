package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/opstest"
	"github.com/outhook/outhook/queue"
	"github.com/outhook/outhook/sqlite"
)

// TestOperationsConformance runs the operations suite (recovery, replay,
// delivery listings, CEL filters) on the SQLite queue and store, sharing a
// new file per subtest.
func TestOperationsConformance(t *testing.T) {
	opstest.Run(t, func(t *testing.T) (queue.Queue, outhook.Store) {
		db, err := sqlite.Open(filepath.Join(t.TempDir(), "ops.db"))
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		require.NoError(t, sqlite.Migrate(t.Context(), db))
		store, err := sqlite.NewStore(t.Context(), db, nil)
		require.NoError(t, err)
		q, err := sqlite.NewQueue(db, queueTestConfig())
		require.NoError(t, err)
		return q, store
	})
}
