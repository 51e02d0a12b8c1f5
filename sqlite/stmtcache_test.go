package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// cacheDB returns a database opened with Open, with one table t(k, v), and
// a function that reports how many statements its connection keeps.
func cacheDB(t *testing.T) (*sql.DB, func() int) {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "cache.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	_, err = db.Exec(`CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)`)
	require.NoError(t, err)
	cached := func() int {
		conn, err := db.Conn(context.Background())
		require.NoError(t, err)
		defer conn.Close()
		n := -1
		require.NoError(t, conn.Raw(func(dc any) error {
			c := dc.(*cachingConn)
			c.mu.Lock()
			defer c.mu.Unlock()
			require.Len(t, c.stmts, c.lru.Len())
			n = c.lru.Len()
			return nil
		}))
		return n
	}
	return db, cached
}

func TestStmtCacheReusesStatements(t *testing.T) {
	db, cached := cacheDB(t)
	before := cached()
	for i := range 50 {
		_, err := db.Exec(`INSERT INTO t (k, v) VALUES (?, ?)`, i, fmt.Sprint("v", i))
		require.NoError(t, err)
	}
	for i := range 50 {
		var v string
		require.NoError(t, db.QueryRow(`SELECT v FROM t WHERE k = ?`, i).Scan(&v))
		require.Equal(t, fmt.Sprint("v", i), v, "each run sees its own bindings")
	}
	require.Equal(t, before+2, cached(), "one statement per text")
}

// TestStmtCacheBusyStatement: a caller holding the rows of a statement
// while it runs the same text again (database/sql allows it, in a
// transaction for instance) gets both results right.
func TestStmtCacheBusyStatement(t *testing.T) {
	db, _ := cacheDB(t)
	for i := range 5 {
		_, err := db.Exec(`INSERT INTO t (k, v) VALUES (?, ?)`, i, fmt.Sprint("v", i))
		require.NoError(t, err)
	}
	tx, err := db.Begin()
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	const q = `SELECT k, v FROM t WHERE k >= ? ORDER BY k`
	outer, err := tx.Query(q, 0)
	require.NoError(t, err)
	var got []string
	for outer.Next() {
		var k int
		var v string
		require.NoError(t, outer.Scan(&k, &v))
		// The same text while outer is open.
		inner, err := tx.Query(q, k)
		require.NoError(t, err)
		n := 0
		for inner.Next() {
			n++
		}
		require.NoError(t, inner.Err())
		require.NoError(t, inner.Close())
		got = append(got, fmt.Sprintf("%d:%s:%d", k, v, n))
	}
	require.NoError(t, outer.Err())
	require.NoError(t, outer.Close())
	require.Equal(t, []string{"0:v0:5", "1:v1:4", "2:v2:3", "3:v3:2", "4:v4:1"}, got)
	require.NoError(t, tx.Commit())
}

// TestStmtCacheBounded: the cache keeps at most stmtCacheSize statements,
// and a statement evicted and seen again is prepared again.
func TestStmtCacheBounded(t *testing.T) {
	db, cached := cacheDB(t)
	for i := range stmtCacheSize + 40 {
		var n int
		require.NoError(t, db.QueryRow(fmt.Sprintf(`SELECT %d + count(*) FROM t`, i)).Scan(&n))
		require.Equal(t, i, n)
	}
	require.Equal(t, stmtCacheSize, cached())
	var n int
	require.NoError(t, db.QueryRow(`SELECT 0 + count(*) FROM t`).Scan(&n), "evicted long ago")
	require.Equal(t, 0, n)
}

// TestStmtCacheAfterErrors: a statement that fails (a constraint, a
// cancelled context) leaves the cache usable, with the same text working
// the next time.
func TestStmtCacheAfterErrors(t *testing.T) {
	db, _ := cacheDB(t)
	const ins = `INSERT INTO t (k, v) VALUES (?, ?)`
	_, err := db.Exec(ins, 1, "a")
	require.NoError(t, err)
	_, err = db.Exec(ins, 1, "b")
	require.ErrorContains(t, err, "UNIQUE constraint failed")
	_, err = db.Exec(ins, 2, "c")
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = db.ExecContext(ctx, ins, 3, "d")
	require.ErrorIs(t, err, context.Canceled)
	_, err = db.Exec(ins, 3, "d")
	require.NoError(t, err)

	var vs string
	require.NoError(t, db.QueryRow(`SELECT group_concat(v, ',') FROM (SELECT v FROM t ORDER BY k)`).Scan(&vs))
	require.Equal(t, "a,c,d", vs)
}

// TestStmtCacheSchemaChange: a kept statement follows the schema (SQLite
// prepares it again when the schema changes).
func TestStmtCacheSchemaChange(t *testing.T) {
	db, _ := cacheDB(t)
	_, err := db.Exec(`INSERT INTO t (k, v) VALUES (1, 'a')`)
	require.NoError(t, err)
	const q = `SELECT * FROM t`
	cols := func() []string {
		rows, err := db.Query(q)
		require.NoError(t, err)
		defer rows.Close()
		c, err := rows.Columns()
		require.NoError(t, err)
		return c
	}
	require.Equal(t, []string{"k", "v"}, cols())
	_, err = db.Exec(`ALTER TABLE t ADD COLUMN w TEXT`)
	require.NoError(t, err)
	require.Equal(t, []string{"k", "v", "w"}, cols())
}

// TestStmtCacheScripts: text with several statements still runs them all.
func TestStmtCacheScripts(t *testing.T) {
	db, _ := cacheDB(t)
	for range 2 {
		_, err := db.Exec(`DELETE FROM t; INSERT INTO t (k, v) VALUES (1, 'a'); INSERT INTO t (k, v) VALUES (2, 'b')`)
		require.NoError(t, err)
	}
	var n int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM t`).Scan(&n))
	require.Equal(t, 2, n)
}
