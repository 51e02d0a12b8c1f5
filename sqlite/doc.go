// Package sqlite is outhook's SQLite backend: a durable work queue on River
// (Queue) and a store (Store) in one file, for a single process whose
// events and deliveries must survive restarts, without a database server.
//
// # Choosing this backend
//
// Use it when the in-memory queue's loss of pending work at exit is not
// acceptable and the application runs as one process. The queue is River
// (github.com/riverqueue/river) through its SQLite driver, on
// modernc.org/sqlite (pure Go, no cgo); see package riverqueue for how
// outhook's jobs map onto River. It behaves as the Postgres queue does,
// with one node: retries, dead jobs and attempt counts survive restarts,
// and a job interrupted by a crash runs again once its lease has passed.
// For several nodes, use package postgres. River documents its SQLite driver
// as young, and slower than its Postgres driver (it writes batches row by
// row).
//
// # Opening the file
//
// Open opens the file with the settings the queue and the store need: WAL
// journal, a busy timeout, foreign keys, synchronous (durable) commits,
// immediate transactions, and a pool of one connection, as River's SQLite
// driver recommends. Then migrate, once per start (it is idempotent):
//
//	db, err := sqlite.Open("/var/lib/app/outhook.db")
//	if err != nil {
//		return err
//	}
//	defer db.Close()
//	if err := sqlite.Migrate(ctx, db); err != nil {
//		return err
//	}
//	q, err := sqlite.NewQueue(db, nil)
//	...
//	store, err := sqlite.NewStore(ctx, db, nil)
//	...
//	client, err := outhook.NewClient(&outhook.Config{Queue: q, Store: store, ...})
//
// A queue started without River's tables fails at Start with an error
// wrapping riverqueue.ErrNotMigrated that names sqlite.Migrate.
//
// # Emitting in a transaction
//
// EmitHookTx takes a *sql.Tx of the same database: the event is queued if
// and only if the transaction commits.
//
//	tx, err := db.BeginTx(ctx, nil)
//	if err != nil {
//		return err
//	}
//	defer tx.Rollback()
//	if _, err := tx.ExecContext(ctx, `INSERT INTO notes (id) VALUES (?)`, note.ID); err != nil {
//		return err
//	}
//	if err := outhook.EmitHookTx(ctx, client, tx, NoteAdded, note); err != nil {
//		return err
//	}
//	return tx.Commit()
//
// With one connection, the queue's workers and the store wait while the
// application holds a transaction: keep transactions short, and use only
// the transaction inside one (a query on db there would wait forever).
package sqlite
