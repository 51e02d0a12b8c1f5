package postgres_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/servicetest"
	"github.com/outhook/outhook/internal/soaktest"
	"github.com/outhook/outhook/postgres"
	"github.com/outhook/outhook/queue"
)

// TestSoak runs the fault soak (internal/soaktest: 5,000 events to five
// misbehaving webhook endpoints, every delivery checked against what its
// endpoint did) on the River queue and the Postgres store, in a schema of
// its own. It is skipped without OUTHOOK_POSTGRES_URL, unless
// OUTHOOK_REQUIRE_SERVICES=1.
//
// The lease margin is 10 s: a run's bookkeeping after its attempt waits for
// a connection of a 20-connection pool shared by 100 workers, which on a
// loaded machine can take seconds; past the margin, the run loses its
// context and an attempt already made goes unrecorded.
func TestSoak(t *testing.T) {
	soaktest.Run(t, func(t *testing.T, logger *slog.Logger) (queue.Queue, outhook.Store) {
		url, _ := servicetest.PostgresSchema(t)
		pool := newQueuePool(t, url, nil)
		require.NoError(t, postgres.Migrate(t.Context(), pool))
		cfg := testConfig()
		cfg.LeaseMargin = 10 * time.Second
		cfg.Logger = logger
		q, err := postgres.NewQueue(pool, cfg)
		require.NoError(t, err)
		return q, newStore(t, pool, nil)
	})
}
