package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/outhook/outhook/riverqueue"
)

// Queue is the outhook work queue on Postgres, through River: a
// queue.Queue, a queue.Idler, and a queue.TxEnqueuer[pgx.Tx] for
// outhook.EmitHookTx. See package riverqueue for its semantics.
type Queue = riverqueue.Queue[pgx.Tx]

// QueueConfig configures NewQueue; see riverqueue.Config for the fields
// and their defaults. A nil *QueueConfig means all defaults.
type QueueConfig = riverqueue.Config

// NewQueue returns a queue that keeps its jobs in River's tables, reached
// through pool (River's riverpgxv5 driver). It does not touch the database:
// Start checks that the tables exist and fails, naming Migrate, when they do
// not. The pool must outlive the queue; the queue never closes it.
//
// River's tables are found through the pool's search_path unless cfg.Schema
// names a schema. Every node of an application uses the same database and
// schema; two applications sharing one must use different schemas.
func NewQueue(pool *pgxpool.Pool, cfg *QueueConfig) (*Queue, error) {
	if pool == nil {
		return nil, errors.New("outhook: postgres: NewQueue: the pool is nil")
	}
	return riverqueue.New(riverqueue.Backend[pgx.Tx]{
		Driver:   riverpgxv5.New(pool),
		Begin:    func(ctx context.Context) (pgx.Tx, error) { return pool.Begin(ctx) },
		Commit:   func(ctx context.Context, tx pgx.Tx) error { return tx.Commit(ctx) },
		Rollback: func(ctx context.Context, tx pgx.Tx) error { return tx.Rollback(ctx) },
		Name:     "outhook: postgres",
		Migrate:  "postgres.Migrate (or postgres.MigrateQueue)",
	}, cfg)
}
