package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// dsnParams are the connection settings Open applies, on every connection,
// in this order:
//
//   - busy_timeout 10 s: a connection that finds the file locked (by another
//     process) waits instead of failing at once. It comes first, so that the
//     pragmas after it wait too; switching a file to WAL does not wait on it
//     (SQLite will not block while holding the shared lock it upgrades), so
//     a connection that fails with SQLITE_BUSY there is opened again (see
//     connector.Connect);
//   - journal_mode WAL: readers do not block the writer, and River's test
//     suite found it necessary to avoid spurious "database is locked"
//     errors;
//   - foreign_keys on: SQLite leaves them off unless asked;
//   - synchronous FULL: a commit is on disk when it returns, so an event
//     emitted before a power cut is not lost (NORMAL would be faster but
//     may lose the last commits then);
//   - _txlock immediate: transactions take the write lock when they begin,
//     so two writers queue on the busy timeout instead of deadlocking when
//     both try to upgrade a read lock.
const dsnParams = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)" +
	"&_pragma=synchronous(FULL)&_txlock=immediate"

// Open opens, creating it when missing, the SQLite database file at path
// with modernc.org/sqlite (driver "sqlite", pure Go: no cgo), configured for
// outhook's queue and store: WAL journal, a busy timeout, foreign keys,
// synchronous commits, and immediate transactions (see the package
// documentation). Its connections keep the statements they prepare, by
// text, and run them again without parsing them again (see stmtcache.go):
// River's SQLite driver sends its statements as text, one per job for some.
// It checks that the file can be opened.
//
// The pool is limited to one connection, as River's SQLite driver
// recommends: River runs many operations concurrently, and SQLite, one
// writer at a time, would fail some of them with SQLITE_BUSY otherwise. One
// consequence: while the application holds a transaction from this pool,
// everything else that needs the database (the queue's workers, the store)
// waits for it, so keep transactions short, and never use the pool (only the
// transaction) inside one.
//
// Close the database after the queue and the store are stopped.
func Open(path string) (*sql.DB, error) {
	if path == "" {
		return nil, errors.New("outhook: sqlite: Open: empty path")
	}
	dsn := "file:" + escapePath(path) + "?" + dsnParams
	c, err := newConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("outhook: sqlite: open %s: %w", path, err)
	}
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("outhook: sqlite: open %s: %w", path, err)
	}
	return db, nil
}

// escapePath turns a file path into the path of a SQLite URI filename:
// SQLite percent-decodes it, and would take '?' and '#' for the start of
// the query and fragment.
func escapePath(path string) string {
	if path != ":memory:" {
		path = filepath.ToSlash(filepath.Clean(path))
	}
	return strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(path)
}
