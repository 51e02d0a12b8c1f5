// Package postgres is outhook's Postgres backend: a durable work queue on
// River (Queue) and a store (Store), shared by every node of an application
// that points at the same database.
//
// # Choosing this backend
//
// The in-memory queue loses its jobs when the process exits. Use this
// package when events must survive restarts and crashes, when several
// nodes share the work, or when events must be emitted inside the
// application's own database transaction (EmitHookTx): an event is then
// queued if and only if the transaction commits, with no outbox relay to
// run. Use package sqlite for a single process that must survive restarts
// without a database server.
//
// The queue is River (github.com/riverqueue/river) through its pgx v5
// driver; see package riverqueue for how outhook's jobs, retries, dead jobs,
// leases and broadcast groups map onto River. In short: each worker group is
// a River queue of its own, the outhook client alone decides retries and
// dead jobs, a job's lease outlasts its group's timeout so that a delivery
// is never in flight twice, and concurrent EmitHook calls share their
// commits (group commit).
//
// # Migrations
//
// River's tables and the store's must exist before the queue starts and the
// store opens. Run Migrate (both), or MigrateQueue and MigrateStore apart,
// at deployment or at start-up; they are idempotent:
//
//	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
//	...
//	if err := postgres.Migrate(ctx, pool); err != nil {
//		return err
//	}
//
// Applications that already run River's migrations with River's own tools
// may skip MigrateQueue. A queue started without the tables fails at Start
// with an error wrapping riverqueue.ErrNotMigrated that names the function
// to run; an unreachable database fails Start too.
//
// # A client on Postgres
//
//	q, err := postgres.NewQueue(pool, nil)
//	...
//	store, err := postgres.NewStore(ctx, pool, nil)
//	...
//	client, err := outhook.NewClient(&outhook.Config{Queue: q, Store: store, ...})
//	...
//	if err := client.Start(ctx); err != nil { ... }
//	defer client.Stop(stopCtx) // stops the queue too
//
// # Throughput
//
// The queue and the store batch their work: concurrent EmitHook calls share
// a transaction (group commit), so do the completions of the jobs that
// admit others (an event's routing and its deliveries), and the store's
// calls on the delivery path (creating deliveries, reading them and their
// subscriptions, recording attempts) run in groups, one statement for all
// the calls waiting (see the internal/sqlstore package). So a small pool
// suffices: pgx's default (four connections, or the number of CPUs) holds
// River's listener, its fetches and completer, and the groups of both; more
// connections add contention rather than throughput. Each worker group runs
// riverqueue.DefaultMaxWorkers (100) jobs at once per node
// (QueueConfig.MaxWorkers, GroupMaxWorkers); the delivery group's figure is
// also how many requests one node may have in flight to a slow receiver.
// On a small machine the database's CPU is the bound, not the workers: each
// delivery costs two River jobs (the event's routing, then the delivery)
// and three row writes in the store. BENCHMARKS.md has the figures.
//
// A job is deleted as soon as its handler is done with it, rather than kept
// marked completed as River does (see QueueConfig.KeepCompleted): outhook
// has no use for completed jobs, and River's table stays small.
//
// # Emitting in a transaction
//
// EmitHookTx writes the event's jobs with the application's pgx.Tx: a
// rolled-back transaction is never delivered, a committed one is delivered
// even if the process dies right after the commit.
//
//	tx, err := pool.Begin(ctx)
//	if err != nil {
//		return err
//	}
//	defer tx.Rollback(ctx)
//	if _, err := tx.Exec(ctx, `INSERT INTO incidents (id, title) VALUES ($1, $2)`, inc.ID, inc.Title); err != nil {
//		return err
//	}
//	if err := outhook.EmitHookTx(ctx, client, tx, IncidentCreated, inc); err != nil {
//		return err
//	}
//	return tx.Commit(ctx)
//
// The transaction must come from a pool on the same database (and schema)
// as the queue's.
//
// # Schemas and search_path
//
// Every table is unqualified: River's and the store's live in the first
// schema of the connections' search_path, which is where the migrations
// create them. To keep outhook in a schema of its own, set search_path on
// the pool, for example in the URL (pgx passes unknown parameters to the
// server):
//
//	postgres://app@db/app?search_path=outhook
//
// or in pgxpool.Config.ConnConfig.RuntimeParams["search_path"]. Every node,
// and the transactions given to EmitHookTx, must use the same search_path.
// QueueConfig.Schema (River's Config.Schema) instead qualifies River's table
// names explicitly; it does not move the store's tables, and MigrateQueue
// follows search_path, so prefer search_path. Two applications sharing a
// database must use different schemas: outhook's River queues are named
// after worker groups, which two applications could share.
package postgres
