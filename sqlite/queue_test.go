package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
	"github.com/outhook/outhook/queue"
	"github.com/outhook/outhook/queue/queuetest"
	"github.com/outhook/outhook/riverqueue"
	"github.com/outhook/outhook/sqlite"
)

// queueTestLogger discards logs unless OUTHOOK_TEST_LOG is set.
func queueTestLogger() *slog.Logger {
	if os.Getenv("OUTHOOK_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// queueTestConfig is a queue configuration for tests: short polls. River's
// SQLite driver learns of new jobs by polling a notification table every
// 50 ms; fetching on a 10 ms poll instead keeps chains of jobs (each
// admitted by the one before) quick under the race detector.
func queueTestConfig() *sqlite.QueueConfig {
	return &sqlite.QueueConfig{
		Logger:            queueTestLogger(),
		FetchCooldown:     time.Millisecond,
		FetchPollInterval: 10 * time.Millisecond,
		LeaseMargin:       250 * time.Millisecond,
		IdlePollInterval:  10 * time.Millisecond,
		DefaultTimeout:    30 * time.Second,
	}
}

// openQueueDB opens the file at path with sqlite.Open, closed when the test
// ends, and runs River's migrations.
func openQueueDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sqlite.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	require.NoError(t, sqlite.MigrateQueue(context.Background(), db))
	return db
}

// newSQLiteQueue makes an unstarted queue on db, stopped when the test ends.
func newSQLiteQueue(t *testing.T, db *sql.DB) *sqlite.Queue {
	t.Helper()
	q, err := sqlite.NewQueue(db, queueTestConfig())
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := q.Stop(ctx); err != nil {
			t.Errorf("Stop at cleanup: %v", err)
		}
	})
	return q
}

// raceDetector is set in race builds (queue_race_test.go).
var raceDetector bool

// TestQueueConformance runs the queue contract's conformance suite on
// SQLite: one node, whose jobs survive a restart on the same file.
func TestQueueConformance(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	openQueueDB(t, path)   // migrate once
	var wait time.Duration // the suite's default, 10 s
	if raceDetector {
		// The WaitIdle subtest runs a chain of 100 jobs, each admitted by
		// the one before: about 1.5 s normally, 15 s under the race
		// detector.
		wait = time.Minute
	}
	queuetest.Run(t, queuetest.Harness{
		WaitTimeout: wait,
		NewQueue: func(t *testing.T) queue.Queue {
			db, err := sqlite.Open(path)
			require.NoError(t, err)
			t.Cleanup(func() { _ = db.Close() })
			return newSQLiteQueue(t, db)
		},
		Durable:             true,
		UnknownGroupRefused: true,
		LeaseTimeout:        time.Second,
		// River's SQLite driver keeps times to the millisecond.
		ClockTolerance: 5 * time.Millisecond,
	})
}

type recorder struct {
	mu   sync.Mutex
	jobs []queue.Job
}

func (r *recorder) handler(res func(*queue.Job) queue.Result) queue.Handler {
	return func(_ context.Context, j *queue.Job) queue.Result {
		r.mu.Lock()
		c := *j
		c.Payload = slices.Clone(j.Payload)
		c.Errors = slices.Clone(j.Errors)
		r.jobs = append(r.jobs, c)
		r.mu.Unlock()
		if res == nil {
			return queue.Result{}
		}
		return res(j)
	}
}

func (r *recorder) of(id string) []queue.Job {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []queue.Job
	for _, j := range r.jobs {
		if j.ID == id {
			out = append(out, j)
		}
	}
	return out
}

// TestQueueResults: Done with Next, Retry with errors and attempts, Dead,
// payloads byte for byte, and EnqueueTx with a database/sql transaction.
func TestQueueResults(t *testing.T) {
	db := openQueueDB(t, filepath.Join(t.TempDir(), "q.db"))
	q := newSQLiteQueue(t, db)
	rec := &recorder{}
	require.NoError(t, q.Subscribe("child", rec.handler(nil), queue.GroupOptions{}))
	require.NoError(t, q.Subscribe("work", rec.handler(func(j *queue.Job) queue.Result {
		switch {
		case j.ID == "next":
			return queue.Result{Next: []*queue.Job{{ID: "c1", Group: "child", Payload: []byte(`{"z":1, "a":2}`)}}}
		case j.ID == "retry" && j.Attempt < 3:
			return queue.Result{Disposition: queue.Retry, Err: fmt.Errorf("fail %d", j.Attempt)}
		case j.ID == "dead":
			return queue.Result{Disposition: queue.Dead, Err: errors.New("gave up")}
		}
		return queue.Result{}
	}), queue.GroupOptions{}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, q.Start(ctx))

	require.NoError(t, q.Enqueue(ctx,
		&queue.Job{ID: "next", Group: "work"},
		&queue.Job{ID: "retry", Group: "work", Kind: "k", Payload: []byte{0, 1, 2}},
		&queue.Job{ID: "dead", Group: "work"},
	))
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, q.EnqueueTx(ctx, tx, &queue.Job{ID: "rolled-back", Group: "work"}))
	require.NoError(t, tx.Rollback())
	tx, err = db.BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, q.EnqueueTx(ctx, tx, &queue.Job{ID: "committed", Group: "work"}))
	require.NoError(t, tx.Commit())
	require.NoError(t, q.WaitIdle(ctx))

	require.Len(t, rec.of("c1"), 1)
	require.Equal(t, []byte(`{"z":1, "a":2}`), rec.of("c1")[0].Payload)
	rs := rec.of("retry")
	require.Len(t, rs, 3)
	require.Equal(t, []int{1, 2, 3}, []int{rs[0].Attempt, rs[1].Attempt, rs[2].Attempt})
	require.Len(t, rs[2].Errors, 2)
	require.Equal(t, "fail 2", rs[2].Errors[1].Error)
	require.Equal(t, 2, rs[2].Errors[1].Attempt)
	require.Equal(t, []byte{0, 1, 2}, rs[2].Payload, "a binary payload survives")
	require.Len(t, rec.of("committed"), 1)
	require.Empty(t, rec.of("rolled-back"))
	dead, err := q.Dead(ctx, 10)
	require.NoError(t, err)
	require.Len(t, dead, 1)
	require.Equal(t, "gave up", dead[0].Errors[0].Error)
}

func TestStartWithoutMigrations(t *testing.T) {
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "empty.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	q := newSQLiteQueue(t, db)
	err = q.Start(t.Context())
	require.ErrorIs(t, err, riverqueue.ErrNotMigrated)
	require.ErrorContains(t, err, "sqlite.Migrate")
}

func TestOpen(t *testing.T) {
	_, err := sqlite.Open("")
	require.ErrorContains(t, err, "empty path")
	_, err = sqlite.Open(filepath.Join(t.TempDir(), "missing-dir", "x.db"))
	require.ErrorContains(t, err, "outhook: sqlite: open")

	// A path SQLite's URI syntax would misread.
	path := filepath.Join(t.TempDir(), "a?b#c%d.db")
	db, err := sqlite.Open(path)
	require.NoError(t, err)
	defer db.Close()
	_, err = os.Stat(path)
	require.NoError(t, err, "the file is created at the path given")
	var mode string
	require.NoError(t, db.QueryRow("PRAGMA journal_mode").Scan(&mode))
	require.Equal(t, "wal", mode)
	var fk, busy, sync int
	require.NoError(t, db.QueryRow("PRAGMA foreign_keys").Scan(&fk))
	require.Equal(t, 1, fk)
	require.NoError(t, db.QueryRow("PRAGMA busy_timeout").Scan(&busy))
	require.Equal(t, 10000, busy)
	require.NoError(t, db.QueryRow("PRAGMA synchronous").Scan(&sync))
	require.Equal(t, 2, sync, "FULL")
	require.Equal(t, 1, db.Stats().MaxOpenConnections)
}

func TestMigrate(t *testing.T) {
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "m.db"))
	require.NoError(t, err)
	defer db.Close()
	for range 2 {
		require.NoError(t, sqlite.Migrate(t.Context(), db))
	}
	_, err = sqlite.NewStore(t.Context(), db, nil)
	require.NoError(t, err, "Migrate created the store's tables too")
	require.ErrorContains(t, sqlite.MigrateQueue(t.Context(), nil), "database is nil")
	_, err = sqlite.NewQueue(nil, nil)
	require.ErrorContains(t, err, "database is nil")
}

type note struct {
	ID string `json:"id" validate:"required"`
}

// TestClientOnSQLite runs an outhook client on the SQLite queue and store,
// with EmitHookTx in a database/sql transaction of the same file.
func TestClientOnSQLite(t *testing.T) {
	db, q, store := newClientParts(t, "app.db")
	var err error

	reg := outhook.NewEventRegistry()
	hook := outhook.MustNewHook[note]("note.added")
	_, err = outhook.RegisterEvent(reg, outhook.EventDefinition[note]{Hook: hook, DisplayName: "Note added"},
		outhook.PluginMetadata{PluginID: "notes"})
	require.NoError(t, err)
	fake := outhooktest.NewDeliverer("fake")
	c := outhooktest.NewClient(t, &outhook.Config{Registry: reg, Deliverers: []outhook.Deliverer{fake}, Queue: q, Store: store})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = c.CreateSubscription(ctx, outhook.Subscription{Events: []string{"notes.note.added"}, DelivererID: "fake"})
	require.NoError(t, err)

	require.NoError(t, outhook.EmitHook(ctx, c, hook, note{ID: "n1"}))
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, outhook.EmitHookTx(ctx, c, tx, hook, note{ID: "rolled-back"}))
	require.NoError(t, tx.Rollback())
	tx, err = db.BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, outhook.EmitHookTx(ctx, c, tx, hook, note{ID: "n2"}))
	require.NoError(t, tx.Commit())

	outhooktest.WaitIdle(t, c)
	outhooktest.AssertDelivered(t, fake, "notes.note.added", note{ID: "n1"}, note{ID: "n2"})
}

// newClientParts opens a new migrated file named name, closed when the test
// ends, and makes a queue (test configuration) and a store on it.
func newClientParts(t *testing.T, name string) (*sql.DB, *sqlite.Queue, *sqlite.Store) {
	t.Helper()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), name))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	require.NoError(t, sqlite.Migrate(t.Context(), db))
	store, err := sqlite.NewStore(t.Context(), db, nil)
	require.NoError(t, err)
	q, err := sqlite.NewQueue(db, queueTestConfig())
	require.NoError(t, err)
	return db, q, store
}
