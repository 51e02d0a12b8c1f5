package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/faulttest"
	"github.com/outhook/outhook/internal/servicetest"
	"github.com/outhook/outhook/outhooktest"
	"github.com/outhook/outhook/postgres"
	"github.com/outhook/outhook/queue"
	"github.com/outhook/outhook/riverqueue"
)

// The faults of issue 5, seen through an outhook.Client as an application
// sees them: tables never migrated, a database down at start, a database
// lost mid-run, and poisoned jobs. The queue-level versions are in
// queue_test.go (TestStartWithoutMigrations, TestStartDatabaseDown,
// TestPoisonedJob) and store_test.go (TestNewStoreWithoutMigrations).

// faultApp is an application with one integration event, incident.created
// of plugin "incident", and a fake deliverer "fake".
type faultApp struct {
	reg     *outhook.EventRegistry
	created outhook.Hook[incident]
	fake    *outhooktest.Deliverer
}

const faultEvent = "incident.incident.created"

func newFaultApp(t *testing.T) *faultApp {
	t.Helper()
	a := &faultApp{
		reg:     outhook.NewEventRegistry(),
		created: outhook.MustNewHook[incident]("incident.created"),
		fake:    outhooktest.NewDeliverer("fake"),
	}
	_, err := outhook.RegisterEvent(a.reg, outhook.EventDefinition[incident]{Hook: a.created, DisplayName: "Incident created"},
		outhook.PluginMetadata{PluginID: "incident"})
	require.NoError(t, err)
	return a
}

// config returns the client's configuration on q and store (nil: the
// in-memory store), with the test retry policy of outhooktest.
func (a *faultApp) config(q *postgres.Queue, store outhook.Store) *outhook.Config {
	cfg := &outhook.Config{
		Registry:      a.reg,
		Deliverers:    []outhook.Deliverer{a.fake},
		Queue:         q,
		Store:         store,
		Logger:        testLogger(),
		DeliveryRetry: outhooktest.NoDelay(3),
		HandlerRetry:  outhooktest.NoDelay(3),
	}
	return cfg
}

// faultClient creates an unstarted client, stopped when the test ends.
func faultClient(t *testing.T, cfg *outhook.Config) *outhook.Client {
	t.Helper()
	c, err := outhook.NewClient(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("Stop at cleanup: %v", err)
		}
	})
	return c
}

// TestFaultNotMigratedClient: a client on tables that were never migrated
// (or half migrated) fails to start, or its store fails to open, with an
// error naming postgres.Migrate; once the named function has run, the same
// client starts and delivers.
func TestFaultNotMigratedClient(t *testing.T) {
	const fix = "postgres.Migrate"
	for _, tc := range []struct {
		name                         string
		migrate                      func(context.Context, *pgxpool.Pool) error // what ran before; nil for nothing
		queueMigrated, storeMigrated bool
	}{
		{name: "nothing"},
		{name: "queue only", migrate: postgres.MigrateQueue, queueMigrated: true},
		{name: "store only", migrate: postgres.MigrateStore, storeMigrated: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxFor(t, 60*time.Second)
			url, _ := servicetest.PostgresSchema(t)
			pool := newQueuePool(t, url, nil)
			if tc.migrate != nil {
				require.NoError(t, tc.migrate(ctx, pool))
			}
			storeMigrated, queueMigrated := tc.storeMigrated, tc.queueMigrated

			// The store checks its tables when it is made.
			store, err := postgres.NewStore(ctx, pool, nil)
			var s outhook.Store // the client's; nil for the in-memory one
			if storeMigrated {
				require.NoError(t, err)
				t.Cleanup(func() { _ = store.Close() })
				s = store
			} else {
				require.ErrorContains(t, err, "outhook: postgres: the outhook tables are missing or out of date")
				require.ErrorContains(t, err, "run "+fix+"(ctx, pool) first")
				t.Logf("NewStore: %v", err)
			}

			// The queue checks its tables at the client's Start.
			q, err := postgres.NewQueue(pool, testConfig())
			require.NoError(t, err)
			app := newFaultApp(t)
			c := faultClient(t, app.config(q, s))
			err = c.Start(ctx)
			if queueMigrated {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, riverqueue.ErrNotMigrated)
				require.ErrorContains(t, err, "outhook: postgres:")
				require.ErrorContains(t, err, "run "+fix)
				t.Logf("Start: %v", err)
			}

			// Run what the errors name: then the store opens, and the same
			// client starts and delivers.
			require.NoError(t, postgres.Migrate(ctx, pool))
			if !storeMigrated {
				store, err := postgres.NewStore(ctx, pool, nil)
				require.NoError(t, err)
				require.NoError(t, store.Close())
			}
			if !queueMigrated {
				require.NoError(t, c.Start(ctx), "Start after postgres.Migrate")
			}
			_, err = c.CreateSubscription(ctx, outhook.Subscription{Events: []string{faultEvent}, DelivererID: "fake"})
			require.NoError(t, err)
			require.NoError(t, outhook.EmitHook(ctx, c, app.created, incident{ID: "after-migrate"}))
			require.NoError(t, c.WaitIdle(ctx))
			outhooktest.AssertDelivered(t, app.fake, faultEvent, incident{ID: "after-migrate"})
		})
	}
}

// closedPortURL returns a Postgres URL whose port nothing listens on.
func closedPortURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "postgres://postgres@" + addr + "/test?sslmode=disable&connect_timeout=2"
}

// TestFaultDatabaseDownAtStart: with the database unreachable, NewStore
// and the client's Start fail at once with an error saying so, Stop is
// fine, and nothing is left running; a database that accepts connections
// but never answers fails Start when its context ends.
func TestFaultDatabaseDownAtStart(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		cfg, err := pgxpool.ParseConfig(closedPortURL(t))
		require.NoError(t, err)
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg) // connects lazily
		require.NoError(t, err)
		defer pool.Close()
		ctx := ctxFor(t, 30*time.Second)

		_, err = postgres.NewStore(ctx, pool, nil)
		require.Error(t, err)
		require.ErrorContains(t, err, "outhook: postgres:")
		require.ErrorContains(t, err, "connect")
		t.Logf("NewStore: %v", err)

		q, err := postgres.NewQueue(pool, testConfig())
		require.NoError(t, err)
		c, err := outhook.NewClient(newFaultApp(t).config(q, nil))
		require.NoError(t, err)
		start := time.Now()
		err = c.Start(ctx)
		require.ErrorContains(t, err, "outhook: postgres: cannot reach the database")
		require.ErrorContains(t, err, "connection refused")
		require.NotErrorIs(t, err, riverqueue.ErrNotMigrated)
		require.Less(t, time.Since(start), 5*time.Second, "a refused connection fails at once")
		t.Logf("Start: %v", err)
		require.NoError(t, c.Stop(ctx))
		require.ErrorIs(t, c.Start(ctx), outhook.ErrClosed)
	})

	t.Run("silent", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		// A server that accepts connections and never says a word.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		var (
			mu    sync.Mutex
			conns []net.Conn
			wg    sync.WaitGroup
		)
		wg.Go(func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		})
		defer func() {
			_ = l.Close()
			wg.Wait()
			mu.Lock()
			for _, c := range conns {
				_ = c.Close()
			}
			mu.Unlock()
		}()
		pool, err := pgxpool.New(context.Background(), "postgres://postgres@"+l.Addr().String()+"/test?sslmode=disable")
		require.NoError(t, err)
		defer pool.Close()
		q, err := postgres.NewQueue(pool, testConfig())
		require.NoError(t, err)
		c, err := outhook.NewClient(newFaultApp(t).config(q, nil))
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		err = c.Start(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded, "Start is bounded by its context")
		require.NoError(t, c.Stop(ctxFor(t, 10*time.Second)))
	})
}

// TestFaultPoisonedJobClient: among events waiting in the queue, one
// whose River row no longer decodes is dead-lettered with the reason, one
// whose hook payload no longer decodes into the hook's type fails its
// listener on every attempt and is listed among the failed events with the
// reason; every other event is delivered.
func TestFaultPoisonedJobClient(t *testing.T) {
	url := migratedSchema(t)
	pool := newQueuePool(t, url, nil)
	ctx := ctxFor(t, 60*time.Second)
	require.NoError(t, postgres.MigrateStore(ctx, pool))
	store := newStore(t, pool, nil)
	q, err := postgres.NewQueue(pool, testConfig())
	require.NoError(t, err)
	app := newFaultApp(t)
	c := faultClient(t, app.config(q, store))
	var (
		mu      sync.Mutex
		audited []string
	)
	require.NoError(t, outhook.OnHook(c, app.created, func(_ context.Context, p incident) error {
		mu.Lock()
		audited = append(audited, p.ID)
		mu.Unlock()
		return nil
	}, outhook.WorkQueue("audit")))
	_, err = c.CreateSubscription(ctx, outhook.Subscription{Events: []string{faultEvent}, DelivererID: "fake"})
	require.NoError(t, err)

	// Emitted before Start: the jobs wait in River's table, where they
	// are damaged.
	var want []incident
	for i := range 5 {
		inc := incident{ID: fmt.Sprintf("ok-%d", i)}
		want = append(want, inc)
		require.NoError(t, outhook.EmitHook(ctx, c, app.created, inc))
	}
	require.NoError(t, outhook.EmitHook(ctx, c, app.created, incident{ID: "bad-row"}))
	require.NoError(t, outhook.EmitHook(ctx, c, app.created, incident{ID: "bad-payload"}))
	// The routing job of "bad-row": its group becomes a number.
	tag, err := pool.Exec(ctx, `UPDATE river_job SET args = jsonb_set(args, '{group}', '5')
		WHERE args->>'payload' LIKE '%"bad-row"%' AND args->>'group' LIKE '%/integration.%'`)
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected())
	// The audit job of "bad-payload": the id becomes a number.
	tag, err = pool.Exec(ctx, `UPDATE river_job SET args = jsonb_set(args, '{payload}', to_jsonb('{"id":5,"severity":""}'::text))
		WHERE args->>'payload' LIKE '%"bad-payload"%' AND args->>'group' LIKE '%/audit'`)
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected())

	require.NoError(t, c.Start(ctx))
	require.NoError(t, c.WaitIdle(ctx))

	// Deliveries: every event but the one whose routing job was poisoned
	// (the other poisoned job was the listener's, not the routing's).
	outhooktest.AssertDelivered(t, app.fake, faultEvent, append(slices.Clone(want), incident{ID: "bad-payload"})...)
	mu.Lock()
	slices.Sort(audited)
	require.Equal(t, []string{"bad-row", "ok-0", "ok-1", "ok-2", "ok-3", "ok-4"}, audited)
	mu.Unlock()

	// The bad payload: a failed event of the audit listener. The bad row:
	// dead in the queue with River's decoding error.
	faulttest.AssertPoisoned(t, ctx, c, q, "audit", "incident.created", "bad-row", len(want)+1)
}

// lostEmitter is what one emitting goroutine saw.
type lostEmitter struct {
	ok     []string       // IDs of the events whose EmitHook returned nil
	failed []string       // and of those whose EmitHook returned an error
	errs   map[string]int // the errors, cut short, by count
}

// TestFaultDatabaseLostMidRun: a client on Postgres (queue and store on one
// pool) delivers a steady stream of events while every connection of its
// pool is cut from the server side every 100 ms for 2 s: with the pool
// reconnecting between the cuts ("flapping"), and with the pool unable to
// dial meanwhile ("unreachable"). Emits during the outage succeed or fail
// with an error; every event whose emit succeeded is delivered at least
// once, deliveries resume after the outage, and nothing is left pending,
// failed or dead.
func TestFaultDatabaseLostMidRun(t *testing.T) {
	t.Run("flapping", func(t *testing.T) { testDatabaseLost(t, false) })
	t.Run("unreachable", func(t *testing.T) { testDatabaseLost(t, true) })
}

func testDatabaseLost(t *testing.T, refuseDials bool) {
	const (
		emitters   = 4
		emitEvery  = 5 * time.Millisecond // per emitter
		maxEmits   = 100_000              // per emitter: a bound the test never reaches
		killEvery  = 100 * time.Millisecond
		outage     = 2 * time.Second
		warmup     = 50 // deliveries before the outage
		afterwards = 50 // deliveries after it, before the emitters stop
	)
	base := servicetest.PostgresURL(t)
	url, _ := servicetest.PostgresSchema(t)
	// The pool's connections carry an application_name of their own, by
	// which the test finds them, and only them, in pg_stat_activity.
	appName := servicetest.Name("outhook_lost")
	pcfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	pcfg.MaxConns = 20
	pcfg.ConnConfig.RuntimeParams["application_name"] = appName
	var unreachable atomic.Bool
	pcfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if unreachable.Load() {
			return nil, errors.New("test: the database is unreachable")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	ctx := ctxFor(t, 3*time.Minute)
	require.NoError(t, postgres.Migrate(ctx, pool))
	store := newStore(t, pool, nil)
	q, err := postgres.NewQueue(pool, testConfig())
	require.NoError(t, err)

	app := newFaultApp(t)
	cfg := app.config(q, store)
	// Retries that outlast the outage, as the default schedules do
	// (HandlerSchedule retries for about two minutes): 50 ms apart, for
	// 20 s. The outage costs a job one or two failed runs at most (no job
	// is fetched while the database is away), so outhooktest's three
	// immediate attempts pass too, but with no margin.
	patient := outhook.RetryPolicy{NewBackOff: func() backoff.BackOff {
		return backoff.WithMaxRetries(backoff.NewConstantBackOff(50*time.Millisecond), 400)
	}}
	cfg.HandlerRetry, cfg.DeliveryRetry = patient, patient
	// Short leases, so that a job whose completion was lost with its
	// connection (River gives up recording it after a few seconds) is
	// taken back within seconds rather than after the one-minute default.
	cfg.HandlerTimeout, cfg.DeliveryTimeout = 3*time.Second, 3*time.Second
	c := faultClient(t, cfg)
	require.NoError(t, c.Start(ctx))
	_, err = c.CreateSubscription(ctx, outhook.Subscription{Events: []string{faultEvent}, DelivererID: "fake"})
	require.NoError(t, err)

	// The server-side killer, on a connection of its own.
	admin, err := pgx.Connect(ctx, base)
	require.NoError(t, err)
	defer admin.Close(context.Background())
	kill := func() int {
		// Postgres may evaluate the conditions of a WHERE in any order: the
		// CASE makes it check the name before it terminates anything.
		var n int
		err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE CASE WHEN application_name = $1 AND pid <> pg_backend_pid() THEN pg_terminate_backend(pid) ELSE false END`,
			appName).Scan(&n)
		require.NoError(t, err)
		return n
	}

	// The stream.
	stop := make(chan struct{})
	results := make([]lostEmitter, emitters)
	var wg sync.WaitGroup
	for e := range emitters {
		wg.Go(func() {
			r := &results[e]
			r.errs = map[string]int{}
			tick := time.NewTicker(emitEvery)
			defer tick.Stop()
			for i := range maxEmits {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				id := fmt.Sprintf("e%d-%d", e, i)
				ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err := outhook.EmitHook(ectx, c, app.created, incident{ID: id})
				cancel()
				if err != nil {
					r.failed = append(r.failed, id)
					msg := err.Error()
					if len(msg) > 140 {
						msg = msg[:140] + "..."
					}
					r.errs[msg]++
					continue
				}
				r.ok = append(r.ok, id)
			}
		})
	}
	var stopOnce sync.Once
	stopEmitters := func() {
		stopOnce.Do(func() {
			close(stop)
			wg.Wait()
		})
	}
	defer stopEmitters()

	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	require.NoError(t, app.fake.WaitCalls(wctx, warmup), "deliveries before the outage")
	cancel()

	// The outage: every connection of the pool is cut, again and again.
	began := time.Now()
	kills, rounds := 0, 0
	before := len(app.fake.Calls())
	unreachable.Store(refuseDials)
	tick := time.NewTicker(killEvery)
	for time.Since(began) < outage {
		kills += kill()
		rounds++
		<-tick.C
	}
	tick.Stop()
	unreachable.Store(false)
	outageTook := time.Since(began)
	atEnd := len(app.fake.Calls())

	// The deliveries resume while events keep coming.
	resumed := time.Now()
	wctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	require.NoError(t, app.fake.WaitCalls(wctx, atEnd+afterwards), "deliveries after the outage")
	cancel()
	resumeTook := time.Since(resumed)
	stopEmitters()

	idleFrom := time.Now()
	wctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	require.NoError(t, c.WaitIdle(wctx), "the client drains")
	cancel()
	idleTook := time.Since(idleFrom)

	// The tally.
	delivered := map[string]int{}
	for _, inc := range outhooktest.DeliveredTo[incident](t, app.fake, faultEvent) {
		delivered[inc.ID]++
	}
	emittedIDs := map[string]bool{}
	var ok, failed []string
	emitErrs := map[string]int{}
	for _, r := range results {
		ok = append(ok, r.ok...)
		failed = append(failed, r.failed...)
		for m, n := range r.errs {
			emitErrs[m] += n
		}
	}
	var lost []string
	duplicated, failedButDelivered := 0, 0
	for _, id := range ok {
		emittedIDs[id] = true
		switch n := delivered[id]; {
		case n == 0:
			lost = append(lost, id)
		case n > 1:
			duplicated++
		}
	}
	for _, id := range failed {
		emittedIDs[id] = true
		if delivered[id] > 0 {
			failedButDelivered++
		}
	}
	t.Logf("outage: %d kill rounds in %s cut %d connections; %d deliveries during it, %d before",
		rounds, outageTook.Round(time.Millisecond), kills, atEnd-before, before)
	t.Logf("emits: %d returned nil, %d returned an error (%d of those delivered all the same)",
		len(ok), len(failed), failedButDelivered)
	for m, n := range emitErrs {
		t.Logf("  %d× %s", n, m)
	}
	t.Logf("delivered: %d events, %d of them more than once; lost: %d; resumed %s after the outage, idle %s after the emits stopped",
		len(delivered), duplicated, len(lost), resumeTook.Round(time.Millisecond), idleTook.Round(time.Millisecond))
	require.Positive(t, kills, "the outage cut connections")
	require.Empty(t, lost, "events emitted without an error but never delivered")
	for id := range delivered {
		require.True(t, emittedIDs[id], "delivered %q was never emitted", id)
	}

	// Nothing left pending, nothing given up.
	requireNothingLeft(t, ctx, c, q)
}

// requireNothingLeft asserts that no delivery is pending or failed, no
// event failed and no job is dead.
func requireNothingLeft(t *testing.T, ctx context.Context, c *outhook.Client, q interface {
	Dead(context.Context, int) ([]*queue.Job, error)
}) {
	t.Helper()
	for _, st := range []outhook.DeliveryStatus{outhook.DeliveryPending, outhook.DeliveryFailed} {
		ds, err := c.Deliveries(ctx, outhook.DeliveryQuery{Status: st, Limit: 10})
		require.NoError(t, err)
		require.Empty(t, ds, "deliveries %s", st)
	}
	fe, err := c.FailedEvents(ctx, 10)
	require.NoError(t, err)
	require.Empty(t, fe, "failed events")
	dead, err := q.Dead(ctx, 10)
	require.NoError(t, err)
	require.Empty(t, dead, "dead jobs")
}
