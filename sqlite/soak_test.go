package sqlite_test

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/soaktest"
	"github.com/outhook/outhook/queue"
	"github.com/outhook/outhook/sqlite"
)

// TestSoak runs the fault soak (internal/soaktest: 5,000 events to five
// misbehaving webhook endpoints, every delivery checked against what its
// endpoint did) on the SQLite queue and store, sharing one file.
//
// The lease margin is 10 s: a run's bookkeeping after its attempt waits
// for the database's one connection, which on a loaded machine (and under
// the race detector, which slows the pure-Go SQLite tenfold) can take
// seconds. With the 3 s of the proofs, a run whose store write outlived
// the margin lost its context: the attempt, already made, was not recorded,
// and the delivery was sent again later.
func TestSoak(t *testing.T) {
	soaktest.Run(t, func(t *testing.T, logger *slog.Logger) (queue.Queue, outhook.Store) {
		db, err := sqlite.Open(filepath.Join(t.TempDir(), "soak.db"))
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		require.NoError(t, sqlite.Migrate(t.Context(), db))
		store, err := sqlite.NewStore(t.Context(), db, nil)
		require.NoError(t, err)
		q, err := sqlite.NewQueue(db, &sqlite.QueueConfig{
			Logger:            logger,
			FetchCooldown:     time.Millisecond,
			FetchPollInterval: 10 * time.Millisecond,
			LeaseMargin:       10 * time.Second,
			IdlePollInterval:  10 * time.Millisecond,
		})
		require.NoError(t, err)
		return q, store
	})
}
