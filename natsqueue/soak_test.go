package natsqueue_test

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/soaktest"
	"github.com/outhook/outhook/natsqueue"
	"github.com/outhook/outhook/queue"
	"github.com/outhook/outhook/sqlite"
)

// TestSoak runs the fault soak (internal/soaktest: 5,000 events to five
// misbehaving webhook endpoints, every delivery checked against what its
// endpoint did) on the NATS queue, with a stream of its own, and the SQLite
// store: NATS holds no deliveries. It is skipped without OUTHOOK_NATS_URL,
// unless OUTHOOK_REQUIRE_SERVICES=1.
//
// The ack margin is 10 s. With the 3 s of the proofs, one soak under the
// race detector on a machine at load average 13 saw two deliveries in
// flight twice (the deliverer called for a delivery while a call for it was
// in progress): most likely a lease that ended before the handler's first keep-alive,
// which the queue sends half a lease after the run starts rather than
// after the server delivered the job. 64 workers, so that the endpoints
// that hang do not hold most of them.
func TestSoak(t *testing.T) {
	soaktest.Run(t, func(t *testing.T, logger *slog.Logger) (queue.Queue, outhook.Store) {
		q, _ := newQueue(t, natsqueue.Config{Stream: newStream(t), AckMargin: 10 * time.Second, MaxWorkers: 64, Logger: logger})
		db, err := sqlite.Open(filepath.Join(t.TempDir(), "soak.db"))
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		require.NoError(t, sqlite.MigrateStore(t.Context(), db))
		store, err := sqlite.NewStore(t.Context(), db, nil)
		require.NoError(t, err)
		return q, store
	})
}
