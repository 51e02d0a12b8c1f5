package postgres_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/outhook/outhook/internal/clustertest"
	"github.com/outhook/outhook/internal/servicetest"
	"github.com/outhook/outhook/postgres"
	"github.com/stretchr/testify/require"
)

// envProofURL passes the proof's schema to the crash proof's child process.
const envProofURL = "OUTHOOK_PROOF_POSTGRES_URL"

// proofParts builds one node on the Postgres backend: a pool of its own,
// the River queue and the Postgres store. Leases (the delivery timeout
// plus twice a 3 s margin) are short enough that the crash proof's killed
// node's jobs come back within seconds, and long enough that a loaded
// machine does not expire the leases of live nodes.
func proofParts(url string) clustertest.NewParts {
	return func(ctx context.Context, cfg clustertest.NodeConfig) (clustertest.Parts, error) {
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			return clustertest.Parts{}, err
		}
		q, err := postgres.NewQueue(pool, &postgres.QueueConfig{
			NodeID:         cfg.Name,
			MaxWorkers:     cfg.Workers,
			LeaseMargin:    3 * time.Second,
			RescueInterval: 250 * time.Millisecond,
			Logger:         slog.New(slog.DiscardHandler),
		})
		if err != nil {
			pool.Close()
			return clustertest.Parts{}, err
		}
		s, err := postgres.NewStore(ctx, pool, nil)
		if err != nil {
			pool.Close()
			return clustertest.Parts{}, err
		}
		return clustertest.Parts{Queue: q, Store: s, Close: func() { _ = s.Close(); pool.Close() }}, nil
	}
}

func proofSchema(t *testing.T) string {
	url, _ := servicetest.PostgresSchema(t)
	pool, err := pgxpool.New(context.Background(), url)
	require.NoError(t, err)
	defer pool.Close()
	require.NoError(t, postgres.Migrate(context.Background(), pool))
	return url
}

// TestProofMultiNode: three clients with pools of their own on one
// database share 10,000 events to two subscriptions; each subscription gets
// each event exactly once, and all three nodes do part of the work.
func TestProofMultiNode(t *testing.T) {
	clustertest.MultiNode(t, proofParts(proofSchema(t)), 3, 10_000)
}

// TestProofCrash: a node in a separate OS process is killed with SIGKILL at
// a random point while it emits, while it delivers, and while its
// deliveries are being retried; the node in this process takes its jobs
// back after their lease, every committed event is delivered, and
// duplicates are bounded by what the killed node had in flight. Each phase
// has a schema of its own.
func TestProofCrash(t *testing.T) {
	clustertest.Crash(t, clustertest.CrashOptions{
		Backend: func(t *testing.T) (clustertest.NewParts, []string) {
			url := proofSchema(t)
			return proofParts(url), []string{envProofURL + "=" + url}
		},
	})
}
