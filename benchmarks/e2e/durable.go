package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/natsqueue"
	"github.com/outhook/outhook/postgres"
	"github.com/outhook/outhook/queue"
	"github.com/outhook/outhook/riverqueue"
	"github.com/outhook/outhook/sqlite"
)

// Environment variables the service URLs default to (as the backends'
// tests use them).
const (
	envPostgres = "OUTHOOK_POSTGRES_URL"
	envNATS     = "OUTHOOK_NATS_URL"
)

// Durable backends, by their -backends name.
const (
	beMemory   = "memory"
	beSQLite   = "sqlite"
	bePostgres = "postgres"
	beNATS     = "nats"
	beRiverRaw = "river-raw"
)

var allBackends = []string{beMemory, beSQLite, bePostgres, beNATS, beRiverRaw}

// Skip is a selected row that this run does not measure, and why.
type Skip struct {
	Row    string `json:"row"`
	Reason string `json:"reason"`
}

// plan decides which of the selected backends run: the durable ones need
// their service's URL (or, for SQLite, -sqlite). It touches nothing.
func plan(o options) (run []string, skipped []Skip) {
	for _, be := range o.Backends {
		switch {
		case be == beSQLite && !o.SQLite:
			skipped = append(skipped, Skip{Row: "outhook-sqlite", Reason: "-sqlite=false"})
		case (be == bePostgres || be == beRiverRaw) && o.PostgresURL == "":
			skipped = append(skipped, Skip{Row: rowName(be, ""), Reason: "no Postgres URL (set -postgres or " + envPostgres + ")"})
		case be == beNATS && o.NATSURL == "":
			skipped = append(skipped, Skip{Row: "outhook-nats", Reason: "no NATS URL (set -nats or " + envNATS + ")"})
		case be == beNATS && o.NATSStore == bePostgres && o.PostgresURL == "":
			skipped = append(skipped, Skip{Row: "outhook-nats", Reason: "-nats-store postgres, and no Postgres URL (set -postgres or " + envPostgres + ")"})
		default:
			run = append(run, be)
		}
	}
	return run, skipped
}

// natsStore is the store the outhook-nats row uses: -nats-store, or
// Postgres when there is one and SQLite otherwise.
func natsStore(o options) string {
	if o.NATSStore != "" && o.NATSStore != "auto" {
		return o.NATSStore
	}
	if o.PostgresURL != "" {
		return bePostgres
	}
	return beSQLite
}

// rowName is the name of a backend's row.
func rowName(be, store string) string {
	switch be {
	case beRiverRaw:
		return beRiverRaw
	case beNATS:
		return "outhook-nats (store: " + store + ")"
	}
	return "outhook-" + be
}

// rowKey is the part of a row's name before any " (…)": what
// -cpuprofile-row names.
func rowKey(name string) string {
	if i := strings.Index(name, " ("); i >= 0 {
		return name[:i]
	}
	return name
}

// services are what the durable rows need, set up once per run and removed
// at its end, so that runs never collide and leave nothing behind: a
// Postgres schema of the run's own (outhook_bench_<random>) where River's
// and the store's tables are migrated, a NATS stream name prefix
// (OUTHOOK_BENCH_<random>, one stream per phase), and a temporary
// directory for the SQLite files (one file per phase).
type services struct {
	log io.Writer

	pgAdmin *pgx.ConnConfig // the URL's, for creating and dropping the schema
	pg      *pgxpool.Config // connections in the run's schema (search_path)
	schema  string

	natsURL      string
	streamPrefix string

	sqliteDir string

	mu      sync.Mutex
	phase   int
	streams []string // created, deleted at the end if a phase left them
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// setupServices prepares what the backends in run need. On error, what it
// prepared is already removed.
func setupServices(ctx context.Context, o options, run []string, log io.Writer) (s *services, err error) {
	s = &services{log: log}
	defer func() {
		if err != nil {
			s.teardown()
			s = nil
		}
	}()
	need := map[string]bool{}
	for _, be := range run {
		need[be] = true
	}
	if need[beNATS] {
		need[natsStore(o)] = true
	}
	if need[bePostgres] || need[beRiverRaw] {
		if err := s.setupPostgres(ctx, o); err != nil {
			return s, err
		}
	}
	if need[beNATS] {
		if err := s.setupNATS(ctx, o.NATSURL); err != nil {
			return s, err
		}
	}
	if need[beSQLite] {
		dir, err := os.MkdirTemp(o.SQLiteDir, "outhook-bench-")
		if err != nil {
			return s, fmt.Errorf("sqlite: %w", err)
		}
		s.sqliteDir = dir
		fmt.Fprintf(log, "sqlite: files in %s (removed at the end)\n", dir)
	}
	return s, nil
}

func (s *services) setupPostgres(ctx context.Context, o options) error {
	cfg, err := pgxpool.ParseConfig(o.PostgresURL)
	if err != nil {
		return fmt.Errorf("postgres: the URL: %w", err)
	}
	if o.PGMaxConns > 0 {
		cfg.MaxConns = int32(o.PGMaxConns)
	}
	s.pgAdmin = cfg.ConnConfig.Copy()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, s.pgAdmin)
	if err != nil {
		return fmt.Errorf("postgres: connect to %s: %w", redactPG(s.pgAdmin), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	schema := "outhook_bench_" + randomHex(8)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return fmt.Errorf("postgres: create schema %s: %w", schema, err)
	}
	s.schema = schema
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		// So that pg_stat_activity tells the benchmark's sessions apart.
		cfg.ConnConfig.RuntimeParams["application_name"] = "outhook-bench"
	}
	s.pg = cfg
	pool, err := pgxpool.NewWithConfig(ctx, cfg.Copy())
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer pool.Close()
	if err := postgres.Migrate(ctx, pool); err != nil {
		return fmt.Errorf("postgres: migrate schema %s: %w", schema, err)
	}
	var version string
	_ = conn.QueryRow(ctx, "SHOW server_version").Scan(&version)
	fmt.Fprintf(s.log, "postgres: %s at %s, schema %s (dropped at the end), pool of %d connections per system\n",
		version, redactPG(s.pgAdmin), schema, cfg.MaxConns)
	return nil
}

// redactPG names a Postgres server without its password.
func redactPG(c *pgx.ConnConfig) string {
	return fmt.Sprintf("%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}

func (s *services) setupNATS(ctx context.Context, url string) error {
	nc, err := nats.Connect(url, nats.Name("outhook-bench"), nats.Timeout(10*time.Second))
	if err != nil {
		return fmt.Errorf("nats: connect to %s: %w", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("nats: JetStream at %s: %w", url, err)
	}
	s.natsURL = url
	s.streamPrefix = "OUTHOOK_BENCH_" + strings.ToUpper(randomHex(6))
	fmt.Fprintf(s.log, "nats: server %s at %s, streams %s_* (deleted after each phase)\n", nc.ConnectedServerVersion(), url, s.streamPrefix)
	return nil
}

// nextPhase numbers the SQLite files and NATS streams of phases.
func (s *services) nextPhase() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.phase++
	return s.phase
}

// teardown drops the schema, deletes the streams phases left behind and
// removes the SQLite directory. It reports what it could not remove.
func (s *services) teardown() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if s.schema != "" {
		err := func() error {
			conn, err := pgx.ConnectConfig(ctx, s.pgAdmin)
			if err != nil {
				return err
			}
			defer conn.Close(ctx)
			_, err = conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{s.schema}.Sanitize()+" CASCADE")
			return err
		}()
		if err != nil {
			fmt.Fprintf(s.log, "postgres: could not drop schema %s: %v\n", s.schema, err)
		}
	}
	s.mu.Lock()
	streams := s.streams
	s.streams = nil
	s.mu.Unlock()
	if len(streams) > 0 {
		if err := deleteStreams(ctx, s.natsURL, streams...); err != nil {
			fmt.Fprintf(s.log, "nats: %v\n", err)
		}
	}
	if s.sqliteDir != "" {
		if err := os.RemoveAll(s.sqliteDir); err != nil {
			fmt.Fprintf(s.log, "sqlite: %v\n", err)
		}
	}
}

// natsNames are the streams and bucket natsqueue creates for a stream name.
func natsNames(stream string) (streams []string, bucket string) {
	return []string{stream, stream + "_DEAD", stream + "_BCAST"}, stream + "_LEDGER"
}

// deleteStreams deletes what natsqueue created for each stream name.
func deleteStreams(ctx context.Context, url string, names ...string) error {
	nc, err := nats.Connect(url, nats.Name("outhook-bench-cleanup"))
	if err != nil {
		return fmt.Errorf("delete streams %v: %w", names, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	return deleteStreamsJS(ctx, js, names...)
}

func deleteStreamsJS(ctx context.Context, js jetstream.JetStream, names ...string) error {
	var errs []error
	for _, name := range names {
		streams, bucket := natsNames(name)
		for _, st := range streams {
			if err := js.DeleteStream(ctx, st); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
				errs = append(errs, fmt.Errorf("delete stream %s: %w", st, err))
			}
		}
		if err := js.DeleteKeyValue(ctx, bucket); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			errs = append(errs, fmt.Errorf("delete bucket %s: %w", bucket, err))
		}
	}
	return errors.Join(errs...)
}

// backend is the queue and store of an outhook row, and what to release
// once the client has stopped (which stops the queue).
type backend struct {
	queue   queue.Queue
	store   outhook.Store // nil: the client's MemoryStore
	release func(ctx context.Context) error
}

// releaseAll runs fs in reverse order and joins their errors.
func releaseAll(fs ...func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		var errs []error
		for i := len(fs) - 1; i >= 0; i-- {
			errs = append(errs, fs[i](ctx))
		}
		return errors.Join(errs...)
	}
}

// riverConfig is the configuration of the River queues of outhook-postgres
// and outhook-sqlite: the defaults, but for -durable-workers.
func (b *bench) riverConfig(log *slog.Logger) *riverqueue.Config {
	return &riverqueue.Config{Logger: log, MaxWorkers: b.opts.DurableWorkers}
}

// pgPool opens a pool in the run's schema after emptying its tables (but
// the migrations' records), so that every phase starts from empty tables
// and no subscription of an earlier phase is routed to.
func (b *bench) pgPool(ctx context.Context) (*pgxpool.Pool, error) {
	pool, err := pgxpool.NewWithConfig(ctx, b.svc.pg.Copy())
	if err != nil {
		return nil, err
	}
	if err := truncateSchema(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

func truncateSchema(ctx context.Context, pool *pgxpool.Pool) error {
	rows, err := pool.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema()
		AND tablename NOT IN ('river_migration', 'outhook_migrations')`)
	if err != nil {
		return err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return nil
	}
	ids := make([]string, len(names))
	for i, n := range names {
		ids[i] = pgx.Identifier{n}.Sanitize()
	}
	_, err = pool.Exec(ctx, "TRUNCATE "+strings.Join(ids, ", ")+" CASCADE")
	return err
}

// postgresBackend is River on Postgres and the Postgres store, on one pool.
func (b *bench) postgresBackend(ctx context.Context, log *slog.Logger) (backend, error) {
	pool, err := b.pgPool(ctx)
	if err != nil {
		return backend{}, fmt.Errorf("postgres: %w", err)
	}
	q, err := postgres.NewQueue(pool, b.riverConfig(log))
	if err != nil {
		pool.Close()
		return backend{}, err
	}
	st, err := postgres.NewStore(ctx, pool, nil)
	if err != nil {
		pool.Close()
		return backend{}, err
	}
	return backend{queue: q, store: st, release: func(context.Context) error {
		err := st.Close()
		pool.Close()
		return err
	}}, nil
}

// sqliteFile opens a new SQLite file for a phase, migrated; release closes
// and removes it.
func (b *bench) sqliteFile(ctx context.Context) (*sql.DB, func(context.Context) error, error) {
	path := filepath.Join(b.svc.sqliteDir, fmt.Sprintf("phase-%d.db", b.svc.nextPhase()))
	db, err := sqlite.Open(path)
	if err != nil {
		return nil, nil, err
	}
	release := func(context.Context) error {
		err := db.Close()
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if rerr := os.Remove(path + suffix); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				err = errors.Join(err, rerr)
			}
		}
		return err
	}
	if err := sqlite.Migrate(ctx, db); err != nil {
		return nil, nil, errors.Join(err, release(ctx))
	}
	return db, release, nil
}

// sqliteBackend is River on SQLite and the SQLite store, in one file (one
// connection, as sqlite.Open sets it).
func (b *bench) sqliteBackend(ctx context.Context, log *slog.Logger) (backend, error) {
	db, release, err := b.sqliteFile(ctx)
	if err != nil {
		return backend{}, fmt.Errorf("sqlite: %w", err)
	}
	q, err := sqlite.NewQueue(db, b.riverConfig(log))
	if err != nil {
		return backend{}, errors.Join(err, release(ctx))
	}
	st, err := sqlite.NewStore(ctx, db, nil)
	if err != nil {
		return backend{}, errors.Join(err, release(ctx))
	}
	return backend{queue: q, store: st, release: release}, nil
}

// natsBackend is natsqueue on streams of the phase's own, with the store
// -nats-store names (Postgres or SQLite).
func (b *bench) natsBackend(ctx context.Context, log *slog.Logger) (be backend, err error) {
	var releases []func(context.Context) error
	defer func() {
		if err != nil {
			err = errors.Join(err, releaseAll(releases...)(context.WithoutCancel(ctx)))
		}
	}()
	nc, err := nats.Connect(b.svc.natsURL, nats.Name("outhook-bench"), nats.MaxReconnects(-1))
	if err != nil {
		return be, fmt.Errorf("nats: %w", err)
	}
	releases = append(releases, func(context.Context) error { nc.Close(); return nil })
	js, err := jetstream.New(nc)
	if err != nil {
		return be, fmt.Errorf("nats: %w", err)
	}
	stream := fmt.Sprintf("%s_%d", b.svc.streamPrefix, b.svc.nextPhase())
	b.svc.mu.Lock()
	b.svc.streams = append(b.svc.streams, stream)
	b.svc.mu.Unlock()
	releases = append(releases, func(ctx context.Context) error {
		if err := deleteStreamsJS(ctx, js, stream); err != nil {
			return err
		}
		b.svc.mu.Lock()
		defer b.svc.mu.Unlock()
		if i := slices.Index(b.svc.streams, stream); i >= 0 {
			b.svc.streams = append(b.svc.streams[:i], b.svc.streams[i+1:]...)
		}
		return nil
	})
	q, err := natsqueue.New(js, &natsqueue.Config{Stream: stream, Logger: log, MaxWorkers: b.opts.DurableWorkers})
	if err != nil {
		return be, err
	}
	var st outhook.Store
	switch natsStore(b.opts) {
	case bePostgres:
		pool, err := b.pgPool(ctx)
		if err != nil {
			return be, fmt.Errorf("postgres: %w", err)
		}
		releases = append(releases, func(context.Context) error { pool.Close(); return nil })
		pst, err := postgres.NewStore(ctx, pool, nil)
		if err != nil {
			return be, err
		}
		releases = append(releases, func(context.Context) error { return pst.Close() })
		st = pst
	default:
		db, release, err := b.sqliteFile(ctx)
		if err != nil {
			return be, fmt.Errorf("sqlite: %w", err)
		}
		releases = append(releases, release)
		if st, err = sqlite.NewStore(ctx, db, nil); err != nil {
			return be, err
		}
	}
	return backend{queue: q, store: st, release: releaseAll(releases...)}, nil
}

// logTap is a slog handler that keeps the first few warnings and errors a
// system logs, for the diagnosis of a phase whose counts do not match.
type logTap struct {
	mu   *sync.Mutex
	recs *[]string
}

const logTapMax = 5

func newLogTap() logTap { return logTap{mu: new(sync.Mutex), recs: new([]string)} }

func (t logTap) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (t logTap) Handle(_ context.Context, r slog.Record) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(*t.recs) >= logTapMax {
		return nil
	}
	var sb strings.Builder
	sb.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		sb.WriteString(" " + a.String())
		return true
	})
	*t.recs = append(*t.recs, sb.String())
	return nil
}

func (t logTap) WithAttrs([]slog.Attr) slog.Handler { return t }
func (t logTap) WithGroup(string) slog.Handler      { return t }

// String returns the records kept, "; "-separated.
func (t logTap) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(*t.recs, "; ")
}
