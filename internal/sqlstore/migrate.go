package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SchemaVersion is the version of the tables this package reads and writes:
// the highest migration it has.
const SchemaVersion = 4

// migrationLine names the store's migrations in outhook_migrations, which
// other parts of outhook may share with lines of their own.
const migrationLine = "store"

// ErrSchema is matched by the errors of Check (every *SchemaError).
var ErrSchema = errors.New("outhook: the outhook tables are missing or out of date")

// SchemaError reports tables that are missing or older than this package
// needs.
type SchemaError struct {
	Dialect     string // "postgres", "sqlite"
	Have, Want  int    // the schema's version (0: no tables) and the one needed
	MigrateCall string // what to run, e.g. "postgres.Migrate(ctx, pool)"
}

func (e *SchemaError) Error() string {
	return fmt.Sprintf("outhook: %s: the outhook tables are missing or out of date (schema version %d, want %d): run %s first",
		e.Dialect, e.Have, e.Want, e.MigrateCall)
}

// Is makes a *SchemaError match ErrSchema.
func (e *SchemaError) Is(target error) bool { return target == ErrSchema }

//go:embed migrations
var migrationFiles embed.FS

// migration is one file of migrations/<dialect>/, named
// "<version>_<name>.sql".
type migration struct {
	version int
	name    string
	sql     string
}

func (d Dialect) dir() string {
	if d.kind == kindPostgres {
		return "migrations/postgres"
	}
	return "migrations/sqlite"
}

// migrations returns the dialect's migrations by version.
func (d Dialect) migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, d.dir())
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("outhook: sqlstore: migration file %q is not named <version>_<name>.sql", e.Name())
		}
		b, err := migrationFiles.ReadFile(path.Join(d.dir(), e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	return out, nil
}

// The table of applied migrations, created by Migrate before anything else.
const (
	createMigrationsPostgres = `CREATE TABLE IF NOT EXISTS outhook_migrations (
    line       text COLLATE "C" NOT NULL,
    version    integer NOT NULL,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL,
    PRIMARY KEY (line, version)
)`
	createMigrationsSQLite = `CREATE TABLE IF NOT EXISTS outhook_migrations (
    line       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    name       TEXT NOT NULL,
    applied_at INTEGER NOT NULL,
    PRIMARY KEY (line, version)
) STRICT`
	// Migrations of one schema wait for each other; those of different
	// schemas (a test's, another application's) do not.
	lockPostgres = `SELECT pg_advisory_xact_lock(hashtext('outhook_migrations'), hashtext(coalesce(current_schema(), '')))`
)

// execQuerier is what Migrate needs of a *sql.Tx or *sql.Conn.
type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Migrate brings the store's tables to SchemaVersion, applying the
// migrations that are missing and recording each in outhook_migrations, all
// in one transaction: it is idempotent, and concurrent runs (from several
// processes starting at once) apply each migration once.
//
// On Postgres the run holds a transaction-level advisory lock keyed by the
// current schema; the tables are created unqualified, in the first schema
// of the connection's search_path. On SQLite it runs in a BEGIN IMMEDIATE
// transaction, which takes the write lock at once (waiting for it up to
// the connection's busy_timeout).
func Migrate(ctx context.Context, db *sql.DB, d Dialect) error {
	if err := d.valid(); err != nil {
		return err
	}
	if db == nil {
		return fmt.Errorf("outhook: %s: migrate: the *sql.DB is nil", d.Name)
	}
	ms, err := d.migrations()
	if err != nil {
		return err
	}
	var run func(context.Context, *sql.DB, []migration) error
	if d.kind == kindPostgres {
		run = d.migratePostgres
	} else {
		run = d.migrateSQLite
	}
	if err := run(ctx, db, ms); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("outhook: %s: migrate the outhook tables: %w", d.Name, err)
	}
	return nil
}

func (d Dialect) migratePostgres(ctx context.Context, db *sql.DB, ms []migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, lockPostgres); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	if _, err := tx.ExecContext(ctx, createMigrationsPostgres); err != nil {
		return err
	}
	if err := d.apply(ctx, tx, ms); err != nil {
		return err
	}
	return tx.Commit()
}

// migrateSQLite runs on one connection in a transaction it begins itself:
// database/sql has no way to ask for BEGIN IMMEDIATE, and a deferred
// transaction that reads the versions before it writes can fail with
// SQLITE_BUSY when another process migrates at the same time.
func (d Dialect) migrateSQLite(ctx context.Context, db *sql.DB, ms []migration) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	defer func() {
		if err == nil {
			return
		}
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
			// Never hand a connection with an open transaction back to the
			// pool: tell database/sql to throw it away.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	if _, err := conn.ExecContext(ctx, createMigrationsSQLite); err != nil {
		return err
	}
	if err := d.apply(ctx, conn, ms); err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, "COMMIT")
	return err
}

// apply runs the migrations newer than the recorded version, inside the
// caller's transaction.
func (d Dialect) apply(ctx context.Context, tx execQuerier, ms []migration) error {
	var have int
	if err := tx.QueryRowContext(ctx, d.rebind(`SELECT coalesce(max(version), 0) FROM outhook_migrations WHERE line = ?`), migrationLine).Scan(&have); err != nil {
		return fmt.Errorf("read the applied migrations: %w", err)
	}
	for _, m := range ms {
		if m.version <= have {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
		}
		if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO outhook_migrations (line, version, name, applied_at) VALUES (?, ?, ?, ?)`),
			migrationLine, m.version, m.name, d.timeArg(time.Now())); err != nil {
			return fmt.Errorf("record migration %d (%s): %w", m.version, m.name, err)
		}
	}
	return nil
}

// Version returns the version of the store's tables: 0 when there are none.
func Version(ctx context.Context, db *sql.DB, d Dialect) (int, error) {
	if err := d.valid(); err != nil {
		return 0, err
	}
	if db == nil {
		return 0, fmt.Errorf("outhook: %s: the *sql.DB is nil", d.Name)
	}
	exists := `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'outhook_migrations'`
	if d.kind == kindPostgres {
		exists = `SELECT count(*) FROM (SELECT to_regclass('outhook_migrations') AS t) r WHERE t IS NOT NULL`
	}
	var n int
	if err := db.QueryRowContext(ctx, exists).Scan(&n); err != nil {
		return 0, d.wrap(ctx, "read the schema version", err)
	}
	if n == 0 {
		return 0, nil
	}
	var v int
	if err := db.QueryRowContext(ctx, d.rebind(`SELECT coalesce(max(version), 0) FROM outhook_migrations WHERE line = ?`), migrationLine).Scan(&v); err != nil {
		return 0, d.wrap(ctx, "read the schema version", err)
	}
	return v, nil
}

// Check returns a *SchemaError, which names the call to run, when the
// store's tables are missing or older than SchemaVersion. A newer schema
// passes: migrations are written so that the code of the release before
// them still runs, which lets nodes be upgraded one at a time.
func Check(ctx context.Context, db *sql.DB, d Dialect) error {
	v, err := Version(ctx, db, d)
	if err != nil {
		return err
	}
	if v < SchemaVersion {
		return &SchemaError{Dialect: d.Name, Have: v, Want: SchemaVersion, MigrateCall: d.MigrateCall}
	}
	return nil
}

// wrap names the dialect and the operation in err, except for context
// errors, which are returned as they are.
func (d Dialect) wrap(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		// The driver's error may or may not wrap it; the cause is the
		// context.
		return ctxErr
	}
	return fmt.Errorf("outhook: %s: %s: %w", d.Name, op, err)
}
