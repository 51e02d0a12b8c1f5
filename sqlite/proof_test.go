package sqlite_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/outhook/outhook/internal/clustertest"
	"github.com/outhook/outhook/sqlite"
	"github.com/stretchr/testify/require"
)

// envProofPath passes the database file to the restart proof's processes.
const envProofPath = "OUTHOOK_PROOF_SQLITE_PATH"

// proofParts builds the node of the restart proof on the SQLite file at
// path: the River queue and the store on one database handle. Leases (the
// delivery timeout plus twice a 3 s margin) are short enough that the
// restarted process takes the killed one's jobs back within seconds, and
// long enough that a loaded machine does not expire a live one's.
func proofParts(path string) clustertest.NewParts {
	return func(ctx context.Context, cfg clustertest.NodeConfig) (clustertest.Parts, error) {
		db, err := sqlite.Open(path)
		if err != nil {
			return clustertest.Parts{}, err
		}
		q, err := sqlite.NewQueue(db, &sqlite.QueueConfig{
			NodeID:         cfg.Name,
			MaxWorkers:     cfg.Workers,
			LeaseMargin:    3 * time.Second,
			RescueInterval: 250 * time.Millisecond,
			Logger:         slog.New(slog.DiscardHandler),
		})
		if err != nil {
			_ = db.Close()
			return clustertest.Parts{}, err
		}
		s, err := sqlite.NewStore(ctx, db, nil)
		if err != nil {
			_ = db.Close()
			return clustertest.Parts{}, err
		}
		return clustertest.Parts{Queue: q, Store: s, Close: func() { _ = db.Close() }}, nil
	}
}

// TestProofRestart: the process emits 2,000 events (each EmitHook returns
// once its jobs are committed to the file), is killed with SIGKILL in the
// middle of its deliveries, and a new process on the same file delivers
// everything that was left: nothing is lost, and duplicates are bounded by
// what the killed process had in flight.
func TestProofRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outhook.db")
	db, err := sqlite.Open(path)
	require.NoError(t, err)
	require.NoError(t, sqlite.Migrate(context.Background(), db))
	require.NoError(t, db.Close())
	clustertest.Crash(t, clustertest.CrashOptions{
		NewParts: proofParts(path),
		ChildEnv: []string{envProofPath + "=" + path},
		Restart:  true,
	})
}
