package natsqueue_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/outhook/outhook/internal/clustertest"
	"github.com/outhook/outhook/internal/servicetest"
	"github.com/outhook/outhook/natsqueue"
	"github.com/outhook/outhook/sqlite"
	"github.com/stretchr/testify/require"
)

// Settings of the crash proof's child process.
const (
	envProofNATS   = "OUTHOOK_PROOF_NATS_URL"
	envProofStream = "OUTHOOK_PROOF_NATS_STREAM"
	envProofStore  = "OUTHOOK_PROOF_SQLITE_STORE"
)

// proofParts builds one node on NATS: a connection and queue of its own,
// and the SQLite store in storePath that all the proof's nodes share (on
// NATS, subscriptions and deliveries live in a store the application
// chooses; nodes sharing a stream must share it).
func proofParts(url, stream, storePath string) clustertest.NewParts {
	return func(ctx context.Context, cfg clustertest.NodeConfig) (clustertest.Parts, error) {
		nc, err := nats.Connect(url, nats.Name("outhook-proof-"+cfg.Name))
		if err != nil {
			return clustertest.Parts{}, err
		}
		js, err := jetstream.New(nc)
		if err != nil {
			nc.Close()
			return clustertest.Parts{}, err
		}
		q, err := natsqueue.New(js, &natsqueue.Config{
			Stream:     stream,
			MaxWorkers: cfg.Workers,
			AckMargin:  3 * time.Second,
			Logger:     slog.New(slog.DiscardHandler),
		})
		if err != nil {
			nc.Close()
			return clustertest.Parts{}, err
		}
		db, err := sqlite.Open(storePath)
		if err != nil {
			nc.Close()
			return clustertest.Parts{}, err
		}
		s, err := sqlite.NewStore(ctx, db, nil)
		if err != nil {
			_ = db.Close()
			nc.Close()
			return clustertest.Parts{}, err
		}
		return clustertest.Parts{Queue: q, Store: s, Close: func() { _ = db.Close(); nc.Close() }}, nil
	}
}

func proofStore(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "store.db")
	db, err := sqlite.Open(path)
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, sqlite.MigrateStore(context.Background(), db))
	return path
}

// TestProofMultiNode: three clients with connections of their own on one
// stream share 10,000 events to two subscriptions; each subscription gets
// each event exactly once, and all three nodes do part of the work.
func TestProofMultiNode(t *testing.T) {
	url := servicetest.NATSURL(t)
	clustertest.MultiNode(t, proofParts(url, newStream(t), proofStore(t)), 3, 10_000)
}

// TestProofCrash: a node in a separate OS process is killed with SIGKILL at
// a random point while it emits, while it delivers, and while its
// deliveries are being retried; its jobs come back after AckWait to the
// node in this process, every committed event is delivered, and duplicates
// are bounded by what the killed node had in flight. Each phase has a
// stream and a store of its own.
func TestProofCrash(t *testing.T) {
	url := servicetest.NATSURL(t)
	clustertest.Crash(t, clustertest.CrashOptions{
		Backend: func(t *testing.T) (clustertest.NewParts, []string) {
			stream, store := newStream(t), proofStore(t)
			return proofParts(url, stream, store),
				[]string{envProofNATS + "=" + url, envProofStream + "=" + stream, envProofStore + "=" + store}
		},
	})
}
