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

// TestProofRestart: a process on a SQLite file is killed with SIGKILL at a
// random point while it emits (each EmitHook returns once its jobs are
// committed to the file), while it delivers, and while its deliveries are
// being retried; a new process on the same file delivers everything that
// was left: every committed event is delivered, and duplicates are bounded
// by what the killed process had in flight. Each phase has a file of its
// own.
func TestProofRestart(t *testing.T) {
	clustertest.Crash(t, clustertest.CrashOptions{
		Backend: func(t *testing.T) (clustertest.NewParts, []string) {
			path := filepath.Join(t.TempDir(), "outhook.db")
			db, err := sqlite.Open(path)
			require.NoError(t, err)
			require.NoError(t, sqlite.Migrate(context.Background(), db))
			require.NoError(t, db.Close())
			return proofParts(path), []string{envProofPath + "=" + path}
		},
		Restart: true,
	})
}
