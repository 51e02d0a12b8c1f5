package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

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
		Driver:        riverpgxv5.New(pool),
		Begin:         func(ctx context.Context) (pgx.Tx, error) { return pool.Begin(ctx) },
		Commit:        func(ctx context.Context, tx pgx.Tx) error { return tx.Commit(ctx) },
		Rollback:      func(ctx context.Context, tx pgx.Tx) error { return tx.Rollback(ctx) },
		Finish:        deleteRunning,
		FinishDeletes: true,
		Live: func(ctx context.Context, schema string, names []string) (bool, error) {
			return live(ctx, pool, schema, names)
		},
		Stats: func(ctx context.Context, schema string) ([]riverqueue.StateCount, error) {
			return stats(ctx, pool, schema)
		},
		Name:    "outhook: postgres",
		Migrate: "postgres.Migrate (or postgres.MigrateQueue)",
	}, cfg)
}

// deleteRunning is the queue's completion (riverqueue.Backend.Finish): the
// jobs still running with the given attempts are deleted, in one statement.
// With KeepCompleted, the queue marks them completed instead, as River does.
// The rows are locked in ID order first, so that two deletions wait for
// each other rather than deadlock; with skipLocked, rows another
// transaction holds are left out (River's completer, whose order is its
// own, is completing them).
func deleteRunning(ctx context.Context, tx pgx.Tx, schema string, ids []int64, attempts []int, skipLocked bool) ([]int64, error) {
	table := "river_job"
	if schema != "" {
		table = pgx.Identifier{schema, "river_job"}.Sanitize()
	}
	lock := "FOR UPDATE"
	if skipLocked {
		lock += " SKIP LOCKED"
	}
	rows, err := tx.Query(ctx, `WITH t AS MATERIALIZED (
			SELECT id FROM `+table+` WHERE id = ANY($1::bigint[]) AND state = 'running' ORDER BY id `+lock+`
		)
		DELETE FROM `+table+` j USING t, unnest($1::bigint[], $2::integer[]) AS d(id, attempt)
		WHERE j.id = t.id AND j.id = d.id AND j.attempt = d.attempt RETURNING j.id`, ids, attempts)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

// live is WaitIdle's poll (see riverqueue.Backend): one EXISTS per live
// state, each an index scan of River's fetch index by (state, queue) that
// stops at the first live job. River's JobList, ordered by ID, would step
// over every finished job in the table, at every poll.
func live(ctx context.Context, pool *pgxpool.Pool, schema string, names []string) (bool, error) {
	table := "river_job"
	if schema != "" {
		table = pgx.Identifier{schema, "river_job"}.Sanitize()
	}
	var busy bool
	err := pool.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM `+table+` WHERE state = 'available' AND queue = ANY($1)) OR
		EXISTS (SELECT 1 FROM `+table+` WHERE state = 'running' AND queue = ANY($1)) OR
		EXISTS (SELECT 1 FROM `+table+` WHERE state = 'retryable' AND queue = ANY($1)) OR
		EXISTS (SELECT 1 FROM `+table+` WHERE state = 'scheduled' AND queue = ANY($1)) OR
		EXISTS (SELECT 1 FROM `+table+` WHERE state = 'pending' AND queue = ANY($1))`, names).Scan(&busy)
	return busy, err
}

// stats is Queue.Stats' query (see riverqueue.Backend): outhook's jobs
// counted by state, with the oldest creation time of each. Completed jobs,
// which the queue deletes (or River prunes), are not counted.
func stats(ctx context.Context, pool *pgxpool.Pool, schema string) ([]riverqueue.StateCount, error) {
	table := "river_job"
	if schema != "" {
		table = pgx.Identifier{schema, "river_job"}.Sanitize()
	}
	rows, err := pool.Query(ctx, `SELECT state::text, count(*), min(created_at) FROM `+table+`
		WHERE kind = 'outhook' AND state <> 'completed' GROUP BY state`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (riverqueue.StateCount, error) {
		var c riverqueue.StateCount
		var state string
		err := row.Scan(&state, &c.N, &c.Oldest)
		c.State = rivertype.JobState(state)
		return c, err
	})
}
