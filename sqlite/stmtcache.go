package sqlite

import (
	"container/list"
	"context"
	"database/sql/driver"
	"errors"
	"reflect"
	"sync"
	"time"

	msqlite "modernc.org/sqlite"
)

// stmtCacheSize is how many prepared statements each connection keeps.
// River's SQLite driver and the store run a few dozen distinct statements;
// the batched ones have one text per batch size, which is what the rest of
// the room is for.
const stmtCacheSize = 256

// maxCachedQuery is the longest statement text kept: longer ones are the
// large batches, seldom repeated, whose prepared form is large too.
const maxCachedQuery = 16 << 10

// The statement cache.
//
// modernc.org/sqlite prepares a statement again, parsing its text and
// generating its bytecode, at every Query and Exec that database/sql sends
// to the connection. River's SQLite driver issues its queries that way, one
// per job for some (its completer sets each job's state with a statement
// of its own), and on outhook's delivery path that parsing was about 40% of
// the process's CPU (a pprof of the benchmark program's outhook-sqlite
// row). A connection of Open's pool keeps its prepared statements instead,
// by their text, and runs each again with sqlite3_reset and new bindings, as
// SQLite intends (https://sqlite.org/c3ref/stmt.html): the driver resets
// a statement reused this way when its rows are closed.
//
// A statement is run from the cache only when its previous rows are closed
// (database/sql lets a caller hold rows while it runs other statements on
// the connection, even the same text); otherwise the query runs as before,
// on a statement of its own. SQLite prepares a cached statement again by
// itself when the schema changes (sqlite3_prepare_v2).

// stmtCacheOff turns the cache off, for the benchmark that measures it.
var stmtCacheOff bool

// connector opens modernc.org/sqlite connections that keep their
// statements.
type connector struct {
	inner driver.Connector
}

func newConnector(dsn string) (*connector, error) {
	c, err := msqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return &connector{inner: c}, nil
}

// connectBusyWait bounds how long Connect retries a connection that found
// the file busy: the busy timeout Open sets.
const connectBusyWait = 10 * time.Second

// Connect opens a connection. One that fails with SQLITE_BUSY is opened
// again, with a growing pause, for up to connectBusyWait: opening a file
// switches it to WAL (see dsnParams), which takes an exclusive lock without
// waiting on the busy timeout when another connection holds a shared lock,
// as happens when several processes open a new file at once.
func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.inner.Connect(ctx)
	pause, deadline := time.Millisecond, time.Now().Add(connectBusyWait)
	for err != nil && isBusy(err) && time.Now().Before(deadline) {
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, 100*time.Millisecond)
		conn, err = c.inner.Connect(ctx)
	}
	if err != nil {
		return nil, err
	}
	ic, ok := conn.(innerConn)
	if !ok || stmtCacheOff { // not the driver this was written against: no cache
		return conn, nil
	}
	return &cachingConn{innerConn: ic, stmts: map[string]*list.Element{}, lru: list.New()}, nil
}

func (c *connector) Driver() driver.Driver { return c.inner.Driver() }

// sqliteBusy is SQLite's result code SQLITE_BUSY
// (https://sqlite.org/rescode.html#busy).
const sqliteBusy = 5

// isBusy reports whether err is SQLite's SQLITE_BUSY, or one of its
// extended codes.
func isBusy(err error) bool {
	se, ok := errors.AsType[*msqlite.Error](err)
	return ok && se.Code()&0xff == sqliteBusy
}

// innerConn is what cachingConn needs of modernc.org/sqlite's connection.
type innerConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

type cachingConn struct {
	innerConn

	// database/sql uses a connection from one goroutine at a time, but a
	// Rows may be closed from the goroutine that watches its context: mu
	// keeps the cache consistent regardless.
	mu     sync.Mutex
	stmts  map[string]*list.Element // of *cachedStmt, most recently used first in lru
	lru    *list.List
	closed bool
}

type cachedStmt struct {
	query   string
	stmt    stmtContext
	busy    bool // its rows are open
	evicted bool // left the cache while busy: closed when its rows are
}

type stmtContext interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// take returns the cached statement for query, prepared now if it is not
// cached, marked busy; nil when the cache cannot serve the query (the
// statement is busy, or the text is too long).
func (c *cachingConn) take(ctx context.Context, query string) (*cachedStmt, error) {
	if len(query) > maxCachedQuery {
		return nil, nil
	}
	c.mu.Lock()
	if e, ok := c.stmts[query]; ok {
		s := e.Value.(*cachedStmt)
		if s.busy {
			c.mu.Unlock()
			return nil, nil
		}
		s.busy = true
		c.lru.MoveToFront(e)
		c.mu.Unlock()
		return s, nil
	}
	c.mu.Unlock()

	ds, err := c.innerConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	st, ok := ds.(stmtContext)
	if !ok {
		_ = ds.Close()
		return nil, nil
	}
	s := &cachedStmt{query: query, stmt: st, busy: true}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stmts[query] = c.lru.PushFront(s)
	var closeErr error
	for c.lru.Len() > stmtCacheSize {
		old := c.lru.Back()
		o := c.lru.Remove(old).(*cachedStmt)
		delete(c.stmts, o.query)
		if o.busy {
			o.evicted = true
			continue
		}
		closeErr = errors.Join(closeErr, o.stmt.Close())
	}
	return s, closeErr
}

// release marks s free again, or closes it when it left the cache.
func (c *cachingConn) release(s *cachedStmt) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.busy = false
	if s.evicted && !c.closed { // a closed connection finalized it
		return s.stmt.Close()
	}
	return nil
}

// forget drops s from the cache and closes it: after an error, its state is
// not worth trusting.
func (c *cachingConn) forget(s *cachedStmt) {
	c.mu.Lock()
	if e, ok := c.stmts[s.query]; ok && e.Value == s {
		c.lru.Remove(e)
		delete(c.stmts, s.query)
	}
	c.mu.Unlock()
	_ = s.stmt.Close()
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	s, err := c.take(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.innerConn.QueryContext(ctx, query, args)
	}
	rows, err := s.stmt.QueryContext(ctx, args)
	if err != nil {
		c.forget(s)
		return nil, err
	}
	return &cachedRows{Rows: rows, c: c, s: s}, nil
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	s, err := c.take(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.innerConn.ExecContext(ctx, query, args)
	}
	res, err := s.stmt.ExecContext(ctx, args)
	if err != nil {
		c.forget(s)
		return nil, err
	}
	return res, c.release(s)
}

// Close closes the cached statements, then the connection.
func (c *cachingConn) Close() error {
	c.mu.Lock()
	var err error
	for e := c.lru.Front(); e != nil; e = e.Next() {
		if s := e.Value.(*cachedStmt); !s.busy {
			err = errors.Join(err, s.stmt.Close())
		} else {
			s.evicted = true
		}
	}
	c.lru.Init()
	clear(c.stmts)
	c.closed = true
	c.mu.Unlock()
	return errors.Join(err, c.innerConn.Close())
}

// cachedRows gives its statement back to the cache when closed, and passes
// on the column-type methods of the driver's rows, which database/sql
// looks for.
type cachedRows struct {
	driver.Rows
	c    *cachingConn
	s    *cachedStmt
	done bool
}

func (r *cachedRows) Close() error {
	if r.done {
		return nil
	}
	r.done = true
	err := r.Rows.Close()
	if err != nil {
		r.c.forget(r.s)
		return err
	}
	return r.c.release(r.s)
}

func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *cachedRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *cachedRows) ColumnTypeNullable(i int) (bool, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *cachedRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}
