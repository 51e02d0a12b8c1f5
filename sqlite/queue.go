package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/riverqueue/river/riverdriver/riversqlite"

	"github.com/outhook/outhook/riverqueue"
)

// Queue is the outhook work queue in a SQLite file, through River: a
// queue.Queue, a queue.Idler, and a queue.TxEnqueuer[*sql.Tx] for
// outhook.EmitHookTx. See package riverqueue for its semantics.
type Queue = riverqueue.Queue[*sql.Tx]

// QueueConfig configures NewQueue; see riverqueue.Config for the fields
// and their defaults. A nil *QueueConfig means all defaults.
type QueueConfig = riverqueue.Config

// NewQueue returns a queue that keeps its jobs in River's tables in db
// (River's riversqlite driver), a database opened with Open. It does not
// touch the database: Start checks that the tables exist and fails, naming
// Migrate, when they do not. db must outlive the queue; the queue never
// closes it.
func NewQueue(db *sql.DB, cfg *QueueConfig) (*Queue, error) {
	if db == nil {
		return nil, errors.New("outhook: sqlite: NewQueue: the database is nil")
	}
	return riverqueue.New(riverqueue.Backend[*sql.Tx]{
		Driver:   riversqlite.New(db),
		Begin:    func(ctx context.Context) (*sql.Tx, error) { return db.BeginTx(ctx, nil) },
		Commit:   func(_ context.Context, tx *sql.Tx) error { return tx.Commit() },
		Rollback: func(_ context.Context, tx *sql.Tx) error { return tx.Rollback() },
		Name:     "outhook: sqlite",
		Migrate:  "sqlite.Migrate (or sqlite.MigrateQueue)",
	}, cfg)
}
