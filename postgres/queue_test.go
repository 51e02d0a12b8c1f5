package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook/internal/servicetest"
	"github.com/outhook/outhook/postgres"
	"github.com/outhook/outhook/queue"
	"github.com/outhook/outhook/queue/queuetest"
	"github.com/outhook/outhook/riverqueue"
)

// testLogger discards logs unless OUTHOOK_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("OUTHOOK_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testConfig is a queue configuration for tests: short polls and leases.
func testConfig() *postgres.QueueConfig {
	return &postgres.QueueConfig{
		Logger:            testLogger(),
		FetchCooldown:     2 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		LeaseMargin:       250 * time.Millisecond,
		RescueInterval:    100 * time.Millisecond,
		NodeTimeout:       3 * time.Second,
		IdlePollInterval:  10 * time.Millisecond,
		DefaultTimeout:    30 * time.Second,
	}
}

// migratedSchema creates a private schema, runs River's migrations in it,
// and returns its URL (search_path set).
func migratedSchema(t *testing.T) string {
	t.Helper()
	url, _ := servicetest.PostgresSchema(t)
	pool := newQueuePool(t, url, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, postgres.MigrateQueue(ctx, pool))
	return url
}

// newQueuePool opens a pool on url, closed when the test ends. With a dialer,
// its connections go through it.
func newQueuePool(t testing.TB, url string, d *crashDialer) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	cfg.MaxConns = 20
	if d != nil {
		cfg.ConnConfig.DialFunc = d.dial
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// crashDialer dials Postgres and can cut every connection it made at once,
// and refuse new ones: to Postgres and to the node, the node is gone.
type crashDialer struct {
	mu      sync.Mutex
	conns   []net.Conn
	crashed bool
}

func (d *crashDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.crashed {
		return nil, errors.New("crashDialer: the node has crashed")
	}
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.conns = append(d.conns, c)
	return c, nil
}

func (d *crashDialer) crash() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.crashed = true
	for _, c := range d.conns {
		_ = c.Close()
	}
}

// qnode is a queue with its own pool, as one process would have.
type qnode struct {
	q      *postgres.Queue
	pool   *pgxpool.Pool
	dialer *crashDialer
}

// newQNode makes an unstarted queue on url with its own pool; the queue is
// stopped when the test ends.
func newQNode(t *testing.T, url string, cfg *postgres.QueueConfig) *qnode {
	t.Helper()
	if cfg == nil {
		cfg = testConfig()
	}
	d := &crashDialer{}
	pool := newQueuePool(t, url, d)
	q, err := postgres.NewQueue(pool, cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := q.Stop(ctx); err != nil {
			t.Errorf("Stop at cleanup: %v", err)
		}
	})
	return &qnode{q: q, pool: pool, dialer: d}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds, failing t after within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond) // polling a database, with a deadline
	}
}

// runs records the runs of handlers.
type runs struct {
	mu   sync.Mutex
	jobs []queue.Job
	ch   chan struct{}
}

func newRuns() *runs { return &runs{ch: make(chan struct{}, 1)} }

func (r *runs) add(j *queue.Job) {
	r.mu.Lock()
	c := *j
	c.Payload = slices.Clone(j.Payload)
	c.Errors = slices.Clone(j.Errors)
	r.jobs = append(r.jobs, c)
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default:
	}
}

func (r *runs) of(id string) []queue.Job {
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

func (r *runs) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.jobs)
}

// await waits until cond holds over the runs.
func (r *runs) await(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for !cond() {
		select {
		case <-r.ch:
		case <-timer.C:
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
	}
}

func TestResultMapping(t *testing.T) {
	url := migratedSchema(t)
	n := newQNode(t, url, nil)
	rec := newRuns()
	require.NoError(t, n.q.Subscribe("child", func(_ context.Context, j *queue.Job) queue.Result {
		rec.add(j)
		return queue.Result{}
	}, queue.GroupOptions{}))
	require.NoError(t, n.q.Subscribe("work", func(_ context.Context, j *queue.Job) queue.Result {
		rec.add(j)
		switch {
		case j.ID == "done":
			return queue.Result{}
		case j.ID == "next":
			return queue.Result{Next: []*queue.Job{
				{ID: "c1", Group: "child", Kind: "k", Payload: []byte(`{"b":1, "a":2}`)},
				{ID: "c2", Group: "child"},
			}}
		case j.ID == "retry" && j.Attempt < 3:
			return queue.Result{Disposition: queue.Retry, Err: fmt.Errorf("fail %d", j.Attempt)}
		case j.ID == "retry":
			return queue.Result{}
		case j.ID == "retry-noerr" && j.Attempt == 1:
			return queue.Result{Disposition: queue.Retry}
		case j.ID == "dead":
			return queue.Result{Disposition: queue.Dead, Err: errors.New("gave up")}
		case j.ID == "dead-noerr":
			return queue.Result{Disposition: queue.Dead}
		case j.ID == "panic" && j.Attempt == 1:
			panic("boom")
		}
		return queue.Result{}
	}, queue.GroupOptions{Timeout: time.Second}))
	ctx := ctxFor(t, 30*time.Second)
	require.NoError(t, n.q.Start(ctx))

	ids := []string{"done", "next", "retry", "retry-noerr", "dead", "dead-noerr", "panic"}
	for _, id := range ids {
		require.NoError(t, n.q.Enqueue(ctx, &queue.Job{ID: id, Group: "work", Kind: "kind-" + id, Payload: []byte("p-" + id)}))
	}
	require.NoError(t, n.q.WaitIdle(ctx))

	require.Len(t, rec.of("done"), 1)
	require.Equal(t, "kind-done", rec.of("done")[0].Kind)
	require.Equal(t, []byte("p-done"), rec.of("done")[0].Payload)
	require.Equal(t, 1, rec.of("done")[0].Attempt)

	// Next: children run once, their payload byte for byte (jsonb would
	// reorder the keys and add spaces).
	require.Len(t, rec.of("next"), 1)
	require.Len(t, rec.of("c1"), 1)
	require.Equal(t, []byte(`{"b":1, "a":2}`), rec.of("c1")[0].Payload)
	require.Len(t, rec.of("c2"), 1)
	require.Nil(t, rec.of("c2")[0].Payload, "a nil payload stays nil")

	// Retry: attempts 1, 2, 3, errors oldest first with attempt numbers.
	rs := rec.of("retry")
	require.Len(t, rs, 3)
	for i, r := range rs {
		require.Equal(t, i+1, r.Attempt)
		require.Len(t, r.Errors, i)
		for k, e := range r.Errors {
			require.Equal(t, k+1, e.Attempt)
			require.Equal(t, fmt.Sprintf("fail %d", k+1), e.Error)
			require.False(t, e.At.IsZero())
		}
	}
	// A Retry without an error runs again and records nothing.
	rs = rec.of("retry-noerr")
	require.Len(t, rs, 2)
	require.Equal(t, 2, rs[1].Attempt)
	require.Empty(t, rs[1].Errors)
	// A panic is a Retry with the panic as its error.
	rs = rec.of("panic")
	require.Len(t, rs, 2)
	require.Len(t, rs[1].Errors, 1)
	require.Equal(t, "panic: boom", rs[1].Errors[0].Error)

	// Dead: listed most recent first with the error; never run again.
	dead, err := n.q.Dead(ctx, 10)
	require.NoError(t, err)
	require.Len(t, dead, 2)
	byID := map[string]*queue.Job{}
	for _, j := range dead {
		byID[j.ID] = j
	}
	require.Len(t, byID["dead"].Errors, 1)
	require.Equal(t, "gave up", byID["dead"].Errors[0].Error)
	require.Equal(t, 1, byID["dead"].Errors[0].Attempt)
	require.Equal(t, "kind-dead", byID["dead"].Kind)
	require.Equal(t, []byte("p-dead"), byID["dead"].Payload)
	require.Empty(t, byID["dead-noerr"].Errors, "Dead without an error records none")
	require.Len(t, rec.of("dead"), 1)
}

// TestQueueConformance runs the queue contract's conformance suite on
// Postgres: several nodes (each its own pool) on one schema, jobs that
// survive a restart, and crashes that cut a node's connections.
func TestQueueConformance(t *testing.T) {
	url := migratedSchema(t)
	var (
		mu    sync.Mutex
		nodes = map[queue.Queue]*qnode{}
	)
	queuetest.Run(t, queuetest.Harness{
		NewQueue: func(t *testing.T) queue.Queue {
			n := newQNode(t, url, nil)
			mu.Lock()
			nodes[n.q] = n
			mu.Unlock()
			return n.q
		},
		MultiNode: true,
		Durable:   true,
		Crash: func(t *testing.T, q queue.Queue) {
			mu.Lock()
			n := nodes[q]
			mu.Unlock()
			// The node's connections drop and it cannot reconnect: its
			// running handlers' results, and its leases' renewals, never
			// reach the database.
			n.dialer.crash()
			n.pool.Close()
		},
		LeaseTimeout:        time.Second,
		UnknownGroupRefused: true,
		ClockTolerance:      10 * time.Millisecond,
	})
}

// TestGroupCommit: 32 goroutines enqueue at once; their jobs share
// transactions, yet each caller gets its own outcome: the one whose job
// cannot be written fails, alone, and every other job runs once.
func TestGroupCommit(t *testing.T) {
	url := migratedSchema(t)
	n := newQNode(t, url, nil)
	rec := newRuns()
	require.NoError(t, n.q.Subscribe("g", func(_ context.Context, j *queue.Job) queue.Result {
		rec.add(j)
		return queue.Result{}
	}, queue.GroupOptions{}))
	ctx := ctxFor(t, 60*time.Second)
	require.NoError(t, n.q.Start(ctx))

	const callers, perCaller = 32, 20
	const bad = 13
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for i := range perCaller {
				j := &queue.Job{ID: fmt.Sprintf("c%d-%d", c, i), Group: "g", Payload: []byte(`{"n":1}`)}
				if c == bad && i == perCaller/2 {
					// A time JSON cannot encode: this call's jobs are refused.
					j.RunAt = time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC)
				}
				if err := n.q.Enqueue(ctx, j); err != nil && errs[c] == nil {
					errs[c] = err
				}
			}
		})
	}
	wg.Wait()
	for c, err := range errs {
		if c == bad {
			require.ErrorContains(t, err, "outhook: postgres: enqueue", "the refused caller gets its own error")
			continue
		}
		require.NoError(t, err, "caller %d", c)
	}
	require.NoError(t, n.q.WaitIdle(ctx))
	require.Equal(t, callers*perCaller-1, rec.count(), "every admitted job ran once")
	for c := range callers {
		for i := range perCaller {
			id := fmt.Sprintf("c%d-%d", c, i)
			want := 1
			if c == bad && i == perCaller/2 {
				want = 0
			}
			require.Len(t, rec.of(id), want, id)
		}
	}
}

// TestEnqueueTx: jobs written in the application's transaction exist if and
// only if it commits.
func TestEnqueueTx(t *testing.T) {
	url := migratedSchema(t)
	n := newQNode(t, url, nil)
	rec := newRuns()
	require.NoError(t, n.q.Subscribe("g", func(_ context.Context, j *queue.Job) queue.Result {
		rec.add(j)
		return queue.Result{}
	}, queue.GroupOptions{}))
	require.NoError(t, n.q.Subscribe("b", func(_ context.Context, j *queue.Job) queue.Result {
		rec.add(j)
		return queue.Result{}
	}, queue.GroupOptions{Broadcast: true}))
	ctx := ctxFor(t, 30*time.Second)
	require.NoError(t, n.q.Start(ctx))

	tx, err := n.pool.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, n.q.EnqueueTx(ctx, tx, &queue.Job{ID: "rolled-back", Group: "g"}, &queue.Job{ID: "rolled-back-b", Group: "b"}))
	require.NoError(t, tx.Rollback(ctx))

	tx, err = n.pool.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, n.q.EnqueueTx(ctx, tx, &queue.Job{ID: "committed", Group: "g", Payload: []byte("x")}, &queue.Job{ID: "committed-b", Group: "b"}))
	// Not visible before the commit.
	require.NoError(t, n.q.WaitIdle(ctx))
	require.Empty(t, rec.of("committed"))
	require.NoError(t, tx.Commit(ctx))

	rec.await(t, 10*time.Second, "the committed jobs", func() bool {
		return len(rec.of("committed")) == 1 && len(rec.of("committed-b")) == 1
	})
	require.NoError(t, n.q.WaitIdle(ctx))
	require.Empty(t, rec.of("rolled-back"))
	require.Empty(t, rec.of("rolled-back-b"))
	require.Equal(t, []byte("x"), rec.of("committed")[0].Payload)

	// Errors are those of Enqueue, and nothing is written.
	tx, err = n.pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	require.ErrorIs(t, n.q.EnqueueTx(ctx, tx, &queue.Job{ID: "x", Group: "nobody"}), queue.ErrUnknownGroup)
}

// TestDedupe: an Enqueue of a live (Group, ID) is a no-op; once the job is
// finished, the same (Group, ID) runs again. Duplicates within one call
// are admitted once.
func TestDedupe(t *testing.T) {
	url := migratedSchema(t)
	n := newQNode(t, url, nil)
	rec := newRuns()
	require.NoError(t, n.q.Subscribe("g", func(_ context.Context, j *queue.Job) queue.Result {
		rec.add(j)
		return queue.Result{}
	}, queue.GroupOptions{}))
	require.NoError(t, n.q.Subscribe("h", func(_ context.Context, j *queue.Job) queue.Result {
		rec.add(j)
		return queue.Result{}
	}, queue.GroupOptions{}))
	ctx := ctxFor(t, 30*time.Second)
	require.NoError(t, n.q.Start(ctx))

	// Scheduled far ahead, so it is live throughout.
	later := time.Now().Add(time.Hour)
	require.NoError(t, n.q.Enqueue(ctx, &queue.Job{ID: "a", Group: "g", Kind: "first", RunAt: later}))
	require.NoError(t, n.q.Enqueue(ctx, &queue.Job{ID: "a", Group: "g", Kind: "second"}))
	var live int
	require.NoError(t, n.pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE args->>'id' = 'a'`).Scan(&live))
	require.Equal(t, 1, live, "one job for a live (Group, ID)")

	// The same ID in another group is another job; duplicates in one call
	// are written once.
	require.NoError(t, n.q.Enqueue(ctx,
		&queue.Job{ID: "b", Group: "g"}, &queue.Job{ID: "b", Group: "g"}, &queue.Job{ID: "b", Group: "h"}))
	rec.await(t, 10*time.Second, "b in both groups", func() bool { return len(rec.of("b")) == 2 })

	// Finished (deleted, or marked completed by River, a little after the
	// handler returns): runs again.
	waitFor(t, 10*time.Second, "b to be finished", func() bool {
		var live int
		require.NoError(t, n.pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE args->>'id' = 'b' AND state <> 'completed'`).Scan(&live))
		return live == 0
	})
	require.NoError(t, n.q.Enqueue(ctx, &queue.Job{ID: "b", Group: "h"}))
	rec.await(t, 10*time.Second, "b to run again", func() bool { return len(rec.of("b")) == 3 })
	require.Empty(t, rec.of("a"))
}

// TestCompletedJobsAreDeleted: a job whose handler is done, with or without
// Next jobs, is deleted from River's table; with KeepCompleted, River marks
// it completed and keeps it.
func TestCompletedJobsAreDeleted(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep=%v", keep), func(t *testing.T) {
			url := migratedSchema(t)
			cfg := testConfig()
			cfg.KeepCompleted = keep
			n := newQNode(t, url, cfg)
			rec := newRuns()
			require.NoError(t, n.q.Subscribe("g", func(_ context.Context, j *queue.Job) queue.Result {
				rec.add(j)
				if j.ID == "parent" {
					return queue.Result{Next: []*queue.Job{{ID: "child", Group: "g"}}}
				}
				return queue.Result{}
			}, queue.GroupOptions{}))
			ctx := ctxFor(t, 30*time.Second)
			require.NoError(t, n.q.Start(ctx))
			require.NoError(t, n.q.Enqueue(ctx, &queue.Job{ID: "alone", Group: "g"}, &queue.Job{ID: "parent", Group: "g"}))
			require.NoError(t, n.q.WaitIdle(ctx))
			require.Len(t, rec.of("child"), 1)
			rows := func() map[string]string {
				r, err := n.pool.Query(ctx, `SELECT args->>'id', state FROM river_job`)
				require.NoError(t, err)
				defer r.Close()
				out := map[string]string{}
				for r.Next() {
					var id, state string
					require.NoError(t, r.Scan(&id, &state))
					out[id] = state
				}
				require.NoError(t, r.Err())
				return out
			}
			if !keep {
				// The one without Next jobs is deleted a moment after its
				// run, by then idle.
				waitFor(t, 10*time.Second, "the finished jobs to be deleted", func() bool { return len(rows()) == 0 })
				return
			}
			waitFor(t, 10*time.Second, "River to complete the jobs", func() bool {
				return maps.Equal(rows(), map[string]string{"alone": "completed", "parent": "completed", "child": "completed"})
			})
		})
	}
}

// TestStartWithoutMigrations: Start says which function creates the tables.
func TestStartWithoutMigrations(t *testing.T) {
	url, _ := servicetest.PostgresSchema(t)
	n := newQNode(t, url, nil)
	err := n.q.Start(ctxFor(t, 10*time.Second))
	require.ErrorIs(t, err, riverqueue.ErrNotMigrated)
	require.ErrorContains(t, err, "postgres.Migrate")
	require.NoError(t, postgres.MigrateQueue(ctxFor(t, 30*time.Second), n.pool))
	require.NoError(t, n.q.Start(ctxFor(t, 10*time.Second)), "Start after the migrations")
}

// TestStartDatabaseDown: Start fails clearly when Postgres cannot be
// reached, and Stop is still fine.
func TestStartDatabaseDown(t *testing.T) {
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	pool := newQueuePool(t, "postgres://postgres@"+addr+"/test?sslmode=disable&connect_timeout=2", nil)
	q, err := postgres.NewQueue(pool, testConfig())
	require.NoError(t, err)
	err = q.Start(ctxFor(t, 10*time.Second))
	require.ErrorContains(t, err, "outhook: postgres: cannot reach the database")
	require.NoError(t, q.Stop(ctxFor(t, 10*time.Second)))
}

// TestPoisonedJob: a job whose args no longer decode is dead-lettered with
// the reason; the others run.
func TestPoisonedJob(t *testing.T) {
	url := migratedSchema(t)
	n := newQNode(t, url, nil)
	rec := newRuns()
	require.NoError(t, n.q.Subscribe("g", func(_ context.Context, j *queue.Job) queue.Result {
		rec.add(j)
		return queue.Result{}
	}, queue.GroupOptions{}))
	ctx := ctxFor(t, 30*time.Second)
	require.NoError(t, n.q.Start(ctx))

	later := time.Now().Add(time.Hour)
	require.NoError(t, n.q.Enqueue(ctx, &queue.Job{ID: "poison", Group: "g", RunAt: later}))
	require.NoError(t, n.q.Enqueue(ctx, &queue.Job{ID: "wrong-type", Group: "g", RunAt: later}))
	// Someone rewrites the rows: the group becomes a number; then the group
	// goes missing.
	_, err := n.pool.Exec(ctx, `UPDATE river_job SET args = jsonb_set(args, '{group}', '5'), state = 'available', scheduled_at = now() WHERE args->>'id' = 'poison'`)
	require.NoError(t, err)
	_, err = n.pool.Exec(ctx, `UPDATE river_job SET args = args - 'group', state = 'available', scheduled_at = now() WHERE args->>'id' = 'wrong-type'`)
	require.NoError(t, err)
	require.NoError(t, n.q.Enqueue(ctx, &queue.Job{ID: "fine", Group: "g"}))

	var dead []*queue.Job
	waitFor(t, 10*time.Second, "two dead jobs", func() bool {
		dead, err = n.q.Dead(ctx, 10)
		require.NoError(t, err)
		return len(dead) == 2
	})
	rec.await(t, 10*time.Second, "the healthy job", func() bool { return len(rec.of("fine")) == 1 })
	var reasons []string
	for _, j := range dead {
		require.Len(t, j.Errors, 1, "%+v", j)
		reasons = append(reasons, j.Errors[0].Error)
	}
	slices.Sort(reasons)
	require.Contains(t, reasons[0], "cannot unmarshal number")
	require.Contains(t, reasons[1], "poisoned job: its args name no worker group")
	require.Empty(t, rec.of("poison"))
	require.Empty(t, rec.of("wrong-type"))
}

// TestLifecycle: Start twice, Start after Stop, Stop before Start, calls
// after Stop.
func TestLifecycle(t *testing.T) {
	url := migratedSchema(t)
	ctx := ctxFor(t, 30*time.Second)
	h := func(context.Context, *queue.Job) queue.Result { return queue.Result{} }

	a := newQNode(t, url, nil)
	require.NoError(t, a.q.Stop(ctx), "Stop before Start")
	require.ErrorIs(t, a.q.Start(ctx), queue.ErrClosed)

	b := newQNode(t, url, nil)
	require.NoError(t, b.q.Subscribe("g", h, queue.GroupOptions{}))
	require.Error(t, b.q.Subscribe("g", h, queue.GroupOptions{}), "a group twice")
	require.Error(t, b.q.Subscribe("", h, queue.GroupOptions{}))
	require.Error(t, b.q.Subscribe("x", nil, queue.GroupOptions{}))
	require.Error(t, b.q.Subscribe("y", h, queue.GroupOptions{Timeout: -1}))
	require.NoError(t, b.q.Start(ctx))
	require.ErrorContains(t, b.q.Start(ctx), "already started")
	require.ErrorIs(t, b.q.Enqueue(ctx, &queue.Job{ID: "1", Group: "nobody"}), queue.ErrUnknownGroup)
	require.ErrorContains(t, b.q.Enqueue(ctx, nil), "job 0 is nil")
	require.NoError(t, b.q.Enqueue(ctx), "no jobs")
	require.NoError(t, b.q.Stop(ctx))
	require.NoError(t, b.q.Stop(ctx), "a second Stop")
	require.ErrorIs(t, b.q.Enqueue(ctx, &queue.Job{ID: "1", Group: "g"}), queue.ErrClosed)
	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	require.ErrorIs(t, b.q.EnqueueTx(ctx, tx, &queue.Job{ID: "1", Group: "g"}), queue.ErrClosed)
	require.ErrorIs(t, b.q.Subscribe("z", h, queue.GroupOptions{}), queue.ErrClosed)
	_, err = b.q.Dead(ctx, 5)
	require.NoError(t, err, "Dead after Stop")

	_, err = postgres.NewQueue(nil, nil)
	require.ErrorContains(t, err, "pool is nil")
	_, err = postgres.NewQueue(b.pool, &postgres.QueueConfig{LeaseMargin: -1})
	require.ErrorContains(t, err, "LeaseMargin")
}

// TestBroadcastNodes: a broadcast job goes to every live node; a node gone
// silent stops being addressed after NodeTimeout, and the copies waiting for
// it are deleted.
func TestBroadcastNodes(t *testing.T) {
	url := migratedSchema(t)
	cfg := testConfig()
	cfg.NodeTimeout = 600 * time.Millisecond
	a, b := newQNode(t, url, cfg), newQNode(t, url, cfg)
	recA, recB := newRuns(), newRuns()
	for _, x := range []struct {
		n   *qnode
		rec *runs
	}{{a, recA}, {b, recB}} {
		rec := x.rec
		require.NoError(t, x.n.q.Subscribe("cache", func(_ context.Context, j *queue.Job) queue.Result {
			rec.add(j)
			return queue.Result{}
		}, queue.GroupOptions{Broadcast: true}))
	}
	ctx := ctxFor(t, 90*time.Second)
	require.NoError(t, a.q.Start(ctx))
	require.NoError(t, b.q.Start(ctx))

	require.NoError(t, a.q.Enqueue(ctx, &queue.Job{ID: "1", Group: "cache"}))
	recA.await(t, 10*time.Second, "node a", func() bool { return len(recA.of("1")) == 1 })
	recB.await(t, 10*time.Second, "node b", func() bool { return len(recB.of("1")) == 1 })

	// b goes silent: its connections drop.
	b.dialer.crash()
	b.pool.Close()
	// Still fresh: b gets a copy, which nobody runs...
	require.NoError(t, a.q.Enqueue(ctx, &queue.Job{ID: "2", Group: "cache"}))
	countFor := func(id string) int {
		var n int
		require.NoError(t, a.pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE args->>'id' = $1 AND state <> 'completed'`, id).Scan(&n))
		return n
	}
	// ...until a deletes it, once b has been silent for NodeTimeout. (The
	// bound is generous: under the race detector, with other packages'
	// tests on the same two cores, CI twice saw 10 s go by; the cause is
	// not established, see the closing note of that session.)
	waitFor(t, 60*time.Second, "the copy addressed to the silent node to be deleted", func() bool { return countFor("2") == 0 })
	require.NoError(t, a.q.Enqueue(ctx, &queue.Job{ID: "3", Group: "cache"}))
	recA.await(t, 10*time.Second, "node a", func() bool { return len(recA.of("3")) == 1 })
	require.NoError(t, a.q.WaitIdle(ctx))
	require.Zero(t, countFor("3"), "no copy for the silent node")
	require.Len(t, recA.of("2"), 1)
}

// BenchmarkEnqueue measures Enqueue from 32 goroutines, one job per call,
// as EmitHook makes them, with and without group commit. The queue is not
// started: only the writes are measured. Reported as jobs/s.
func BenchmarkEnqueue(b *testing.B) {
	url, _ := servicetest.PostgresSchema(b)
	pool := newQueuePool(b, url, nil)
	require.NoError(b, postgres.MigrateQueue(context.Background(), pool))
	payload := []byte(`{"incident_id":"inc-123456","title":"Database latency above threshold","severity":"critical","system_ids":["sys-1","sys-2"],"started_at":"2025-01-02T03:04:05Z"}`)
	for _, bc := range []struct {
		name string
		cfg  func(*postgres.QueueConfig)
	}{
		{"GroupCommit", func(*postgres.QueueConfig) {}}, // the defaults
		{"GroupCommitNoLinger", func(c *postgres.QueueConfig) { c.EnqueueWindow = -1 }},
		{"GroupCommit2Flushers", func(c *postgres.QueueConfig) { c.EnqueueFlushers = 2 }},
		{"NoGroupCommit", func(c *postgres.QueueConfig) { c.DisableGroupCommit = true }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := testConfig()
			cfg.EnqueueWindow = 0 // testConfig leaves the defaults
			bc.cfg(cfg)
			bpool := newQueuePool(b, url, nil) // 20 connections
			q, err := postgres.NewQueue(bpool, cfg)
			require.NoError(b, err)
			group := servicetest.Name("bench")
			require.NoError(b, q.Subscribe(group, func(context.Context, *queue.Job) queue.Result { return queue.Result{} }, queue.GroupOptions{}))
			ctx := context.Background()
			const goroutines = 32
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range goroutines {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						j := &queue.Job{ID: fmt.Sprintf("msg-%d", i), Group: group, Kind: "hook", Payload: payload}
						if err := q.Enqueue(ctx, j); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
			require.NoError(b, q.Stop(ctx))
		})
	}
}

// TestRiverRescuer: with RescueInterval zero, River's own rescuer, run by
// the elected leader, takes back the job of a crashed node, not before the
// job's lease (its group's Timeout plus two margins), and the next run has
// the next attempt number and the crashed run's error. It takes a while:
// the crashed node was the leader, and its leadership must expire (River's
// leader TTL is about 15 s) before the other node's rescuer runs.
func TestRiverRescuer(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for River's leader election")
	}
	url := migratedSchema(t)
	cfg := testConfig()
	cfg.RescueInterval = 0
	a := newQNode(t, url, cfg)
	held := make(chan time.Time, 1)
	rec := newRuns()
	h := func(ctx context.Context, j *queue.Job) queue.Result {
		rec.add(j)
		if j.Attempt == 1 {
			held <- time.Now()
			<-ctx.Done()
		}
		return queue.Result{}
	}
	const timeout = time.Second
	require.NoError(t, a.q.Subscribe("g", h, queue.GroupOptions{Timeout: timeout}))
	ctx := ctxFor(t, 2*time.Minute)
	require.NoError(t, a.q.Start(ctx))
	require.NoError(t, a.q.Enqueue(ctx, &queue.Job{ID: "job", Group: "g"}))
	var first time.Time
	select {
	case first = <-held:
	case <-ctx.Done():
		t.Fatal("the job never ran")
	}
	a.dialer.crash()
	a.pool.Close()

	b := newQNode(t, url, cfg)
	require.NoError(t, b.q.Subscribe("g", h, queue.GroupOptions{Timeout: timeout}))
	require.NoError(t, b.q.Start(ctx))
	rec.await(t, time.Minute, "River's rescuer to give the job to node b", func() bool { return len(rec.of("job")) == 2 })
	again := rec.of("job")[1]
	require.Equal(t, 2, again.Attempt)
	require.Len(t, again.Errors, 1)
	require.Equal(t, "Stuck job rescued by JobRescuer", again.Errors[0].Error)
	require.GreaterOrEqual(t, again.Errors[0].At.Sub(first), timeout+2*cfg.LeaseMargin-10*time.Millisecond,
		"rescued before the end of its lease")
	t.Logf("rescued by River %v after the run began", again.Errors[0].At.Sub(first))
}

// TestNextAtomicity: runs that end with Next jobs at the same moment share
// a transaction, yet every parent completes once and every child is admitted
// once. A run whose job was taken back meanwhile (its row shows another
// attempt) admits nothing and is retried.
func TestNextAtomicity(t *testing.T) {
	url := migratedSchema(t)
	n := newQNode(t, url, nil)
	rec := newRuns()
	require.NoError(t, n.q.Subscribe("child", func(_ context.Context, j *queue.Job) queue.Result {
		rec.add(j)
		return queue.Result{}
	}, queue.GroupOptions{}))
	taken := make(chan struct{})
	require.NoError(t, n.q.Subscribe("parent", func(_ context.Context, j *queue.Job) queue.Result {
		rec.add(j)
		if j.ID == "fenced" && j.Attempt == 1 {
			<-taken // the test makes the row another run's
		}
		return queue.Result{Next: []*queue.Job{
			{ID: j.ID + "/a", Group: "child"},
			{ID: j.ID + "/b", Group: "child", Payload: []byte(j.ID)},
		}}
	}, queue.GroupOptions{}))
	ctx := ctxFor(t, 60*time.Second)
	require.NoError(t, n.q.Start(ctx))

	const parents = 300
	jobs := make([]*queue.Job, parents)
	for i := range jobs {
		jobs[i] = &queue.Job{ID: fmt.Sprintf("p%d", i), Group: "parent"}
	}
	require.NoError(t, n.q.Enqueue(ctx, jobs...))
	require.NoError(t, n.q.WaitIdle(ctx))
	for i := range parents {
		id := fmt.Sprintf("p%d", i)
		require.Len(t, rec.of(id), 1, id)
		require.Len(t, rec.of(id+"/a"), 1, id)
		require.Len(t, rec.of(id+"/b"), 1, id)
		require.Equal(t, []byte(id), rec.of(id + "/b")[0].Payload)
	}

	require.NoError(t, n.q.Enqueue(ctx, &queue.Job{ID: "fenced", Group: "parent"}))
	rec.await(t, 10*time.Second, "the fenced job to run", func() bool { return len(rec.of("fenced")) == 1 })
	// As if a rescuer had taken the job back and another node fetched it.
	_, err := n.pool.Exec(ctx, `UPDATE river_job SET attempt = attempt + 1 WHERE args->>'id' = 'fenced'`)
	require.NoError(t, err)
	close(taken)
	rec.await(t, 10*time.Second, "the fenced job to run again", func() bool { return len(rec.of("fenced")) == 2 })
	require.NoError(t, n.q.WaitIdle(ctx))
	again := rec.of("fenced")[1]
	require.Len(t, again.Errors, 1)
	require.Contains(t, again.Errors[0].Error, "no longer this run's")
	require.Len(t, rec.of("fenced/a"), 1, "the stale run admitted nothing; the next one did")
}
