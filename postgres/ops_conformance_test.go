package postgres_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/opstest"
	"github.com/outhook/outhook/internal/servicetest"
	"github.com/outhook/outhook/postgres"
	"github.com/outhook/outhook/queue"
)

// TestOperationsConformance runs the operations suite (recovery, replay,
// delivery listings, CEL filters) on the Postgres queue and store, in a
// schema of each subtest's own.
func TestOperationsConformance(t *testing.T) {
	opstest.Run(t, func(t *testing.T) (queue.Queue, outhook.Store) {
		url, _ := servicetest.PostgresSchema(t)
		pool := newQueuePool(t, url, nil)
		require.NoError(t, postgres.Migrate(t.Context(), pool))
		q, err := postgres.NewQueue(pool, testConfig())
		require.NoError(t, err)
		return q, newStore(t, pool, nil)
	})
}
