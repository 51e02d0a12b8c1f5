package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"

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
		Finish:   completeRunning,
		Stats: func(ctx context.Context, schema string) ([]riverqueue.StateCount, error) {
			return stats(ctx, db, schema)
		},
		Name:    "outhook: sqlite",
		Migrate: "sqlite.Migrate (or sqlite.MigrateQueue)",
	}, cfg)
}

// completeRunning is the queue's completion (riverqueue.Backend.Finish):
// the jobs still running with the given attempts are marked completed, 500
// per statement, rather than one statement each as River's SQLite driver
// does. They are not deleted: SQLite reuses the rowid of a deleted row with
// the highest ID, and River's completer, which comes after every run,
// completes jobs by ID.
//
// SQLite has one writer at a time and no row locks: skipLocked changes
// nothing.
func completeRunning(ctx context.Context, tx *sql.Tx, schema string, ids []int64, attempts []int, _ bool) ([]int64, error) {
	table := "river_job"
	if schema != "" {
		table = `"` + strings.ReplaceAll(schema, `"`, `""`) + `".river_job`
	}
	var done []int64
	for lo := 0; lo < len(ids); lo += 500 {
		hi := min(lo+500, len(ids))
		args := make([]any, 0, 2*(hi-lo))
		for i := lo; i < hi; i++ {
			args = append(args, ids[i], attempts[i])
		}
		err := func() error {
			// River's own format for times: see riversqlite.
			rows, err := tx.QueryContext(ctx, `UPDATE `+table+` SET state = 'completed', finalized_at = datetime('now', 'subsec')
				WHERE state = 'running' AND (id, attempt) IN (VALUES `+strings.TrimSuffix(strings.Repeat("(?, ?), ", hi-lo), ", ")+`)
				RETURNING id`, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					return err
				}
				done = append(done, id)
			}
			return rows.Err()
		}()
		if err != nil {
			return nil, err
		}
	}
	return done, nil
}

// riverTimeFormat is how River's SQLite driver writes times: UTC, to the
// millisecond.
const riverTimeFormat = "2006-01-02 15:04:05.000"

// stats is Queue.Stats' query (see riverqueue.Backend): outhook's jobs
// counted by state, with the oldest creation time of each. Completed jobs
// are not counted.
func stats(ctx context.Context, db *sql.DB, schema string) ([]riverqueue.StateCount, error) {
	table := "river_job"
	if schema != "" {
		table = `"` + strings.ReplaceAll(schema, `"`, `""`) + `".river_job`
	}
	rows, err := db.QueryContext(ctx, `SELECT state, count(*), min(created_at) FROM `+table+`
		WHERE kind = 'outhook' AND state <> 'completed' GROUP BY state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []riverqueue.StateCount
	for rows.Next() {
		var (
			c      riverqueue.StateCount
			state  string
			oldest sql.NullString
		)
		if err := rows.Scan(&state, &c.N, &oldest); err != nil {
			return nil, err
		}
		c.State = rivertype.JobState(state)
		if oldest.Valid {
			t, err := time.Parse(riverTimeFormat, oldest.String)
			if err != nil {
				return nil, fmt.Errorf("oldest %s job: %w", state, err)
			}
			c.Oldest = t
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
