package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/faulttest"
	"github.com/outhook/outhook/internal/sqlstore"
	"github.com/outhook/outhook/outhooktest"
	"github.com/outhook/outhook/riverqueue"
	"github.com/outhook/outhook/sqlite"
)

// The faults of issue 5 that apply to SQLite, seen through an
// outhook.Client: tables never migrated, and poisoned jobs. The queue-level
// check of migrations is TestStartWithoutMigrations (queue_test.go), the
// store's TestNewStoreWithoutMigrations (store_test.go).

type faultNote struct {
	ID string `json:"id" validate:"required"`
}

// faultApp is an application with one integration event, notes.note.added,
// and a fake deliverer "fake".
type faultApp struct {
	reg   *outhook.EventRegistry
	added outhook.Hook[faultNote]
	fake  *outhooktest.Deliverer
}

const faultEvent = "notes.note.added"

func newFaultApp(t *testing.T) *faultApp {
	t.Helper()
	a := &faultApp{
		reg:   outhook.NewEventRegistry(),
		added: outhook.MustNewHook[faultNote]("note.added"),
		fake:  outhooktest.NewDeliverer("fake"),
	}
	_, err := outhook.RegisterEvent(a.reg, outhook.EventDefinition[faultNote]{Hook: a.added, DisplayName: "Note added"},
		outhook.PluginMetadata{PluginID: "notes"})
	require.NoError(t, err)
	return a
}

// client creates an unstarted client on q and store (nil: the in-memory
// store), with outhooktest's retry policy, stopped when the test ends.
func (a *faultApp) client(t *testing.T, q *sqlite.Queue, store *sqlite.Store) *outhook.Client {
	t.Helper()
	cfg := &outhook.Config{
		Registry:      a.reg,
		Deliverers:    []outhook.Deliverer{a.fake},
		Queue:         q,
		Logger:        queueTestLogger(),
		DeliveryRetry: outhooktest.NoDelay(3),
		HandlerRetry:  outhooktest.NoDelay(3),
	}
	if store != nil {
		cfg.Store = store
	}
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

// openFaultDB opens a new, unmigrated file, closed when the test ends.
func openFaultDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "app.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// TestFaultNotMigratedClient: a client on a file never migrated (or half
// migrated) fails to start, or its store fails to open, with an error
// naming sqlite.Migrate; once it has run, the same client starts and
// delivers.
func TestFaultNotMigratedClient(t *testing.T) {
	const fix = "sqlite.Migrate"
	for _, tc := range []struct {
		name                 string
		migrate              func(context.Context, *sql.DB) error // nil for nothing
		queueDone, storeDone bool
	}{
		{name: "nothing"},
		{name: "queue only", migrate: sqlite.MigrateQueue, queueDone: true},
		{name: "store only", migrate: sqlite.MigrateStore, storeDone: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			db := openFaultDB(t)
			if tc.migrate != nil {
				require.NoError(t, tc.migrate(ctx, db))
			}

			// The store checks its tables when it is made.
			store, err := sqlite.NewStore(ctx, db, nil)
			if tc.storeDone {
				require.NoError(t, err)
			} else {
				require.EqualError(t, err, "outhook: sqlite: the outhook tables are missing or out of date (schema version 0, want "+strconv.Itoa(sqlstore.SchemaVersion)+"): run "+fix+"(ctx, db) first")
				store = nil
			}

			// The queue checks its tables at the client's Start.
			q, err := sqlite.NewQueue(db, queueTestConfig())
			require.NoError(t, err)
			app := newFaultApp(t)
			c := app.client(t, q, store)
			err = c.Start(ctx)
			if tc.queueDone {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, riverqueue.ErrNotMigrated)
				require.ErrorContains(t, err, "outhook: sqlite:")
				require.ErrorContains(t, err, "run "+fix)
				t.Logf("Start: %v", err)
			}

			// Run what the errors name: then the store opens, and the same
			// client starts and delivers.
			require.NoError(t, sqlite.Migrate(ctx, db))
			if !tc.storeDone {
				_, err := sqlite.NewStore(ctx, db, nil)
				require.NoError(t, err)
			}
			if !tc.queueDone {
				require.NoError(t, c.Start(ctx), "Start after sqlite.Migrate")
			}
			_, err = c.CreateSubscription(ctx, outhook.Subscription{Events: []string{faultEvent}, DelivererID: "fake"})
			require.NoError(t, err)
			require.NoError(t, outhook.EmitHook(ctx, c, app.added, faultNote{ID: "after-migrate"}))
			require.NoError(t, c.WaitIdle(ctx))
			outhooktest.AssertDelivered(t, app.fake, faultEvent, faultNote{ID: "after-migrate"})
		})
	}
}

// TestFaultPoisonedJobClient: among events waiting in the queue, one whose
// River row no longer decodes is dead-lettered with the reason; one whose
// hook payload no longer decodes into the hook's type fails its listener on
// every attempt and is listed among the failed events with the reason;
// every other event is delivered.
func TestFaultPoisonedJobClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	db := openFaultDB(t)
	require.NoError(t, sqlite.Migrate(ctx, db))
	store, err := sqlite.NewStore(ctx, db, nil)
	require.NoError(t, err)
	q, err := sqlite.NewQueue(db, queueTestConfig())
	require.NoError(t, err)
	app := newFaultApp(t)
	c := app.client(t, q, store)
	var (
		mu      sync.Mutex
		audited []string
	)
	require.NoError(t, outhook.OnHook(c, app.added, func(_ context.Context, n faultNote) error {
		mu.Lock()
		audited = append(audited, n.ID)
		mu.Unlock()
		return nil
	}, outhook.WorkQueue("audit")))
	_, err = c.CreateSubscription(ctx, outhook.Subscription{Events: []string{faultEvent}, DelivererID: "fake"})
	require.NoError(t, err)

	// Emitted before Start: the jobs wait in River's table, where they
	// are damaged.
	var want []faultNote
	for i := range 5 {
		n := faultNote{ID: fmt.Sprintf("ok-%d", i)}
		want = append(want, n)
		require.NoError(t, outhook.EmitHook(ctx, c, app.added, n))
	}
	for _, id := range []string{"bad-group", "bad-payload"} {
		require.NoError(t, outhook.EmitHook(ctx, c, app.added, faultNote{ID: id}))
	}
	// damage runs set on the one job of group (by suffix) carrying the
	// event id.
	damage := func(set, id, group string) {
		t.Helper()
		var rowID int64
		require.NoError(t, db.QueryRowContext(ctx, `SELECT id FROM river_job
			WHERE json_extract(args, '$.payload') LIKE '%"' || ? || '"%' AND json_extract(args, '$.group') LIKE '%' || ?`,
			id, group).Scan(&rowID), "%s: the job to damage", id)
		_, err := db.ExecContext(ctx, `UPDATE river_job SET `+set+` WHERE id = ?`, rowID)
		require.NoError(t, err)
	}
	// Routing jobs: the group becomes a number.
	damage(`args = jsonb_set(args, '$.group', 5)`, "bad-group", "/integration."+faultEvent)
	// The audit job of "bad-payload": its id becomes a number.
	damage(`args = jsonb_set(args, '$.payload', '{"id":5}')`, "bad-payload", "/audit")

	require.NoError(t, c.Start(ctx))
	require.NoError(t, c.WaitIdle(ctx))

	// Delivered: every event but the one whose routing job was poisoned.
	outhooktest.AssertDelivered(t, app.fake, faultEvent, append(slices.Clone(want), faultNote{ID: "bad-payload"})...)
	mu.Lock()
	slices.Sort(audited)
	require.Equal(t, []string{"bad-group", "ok-0", "ok-1", "ok-2", "ok-3", "ok-4"}, audited)
	mu.Unlock()

	// The bad payload: a failed event of the audit listener. The bad row:
	// dead in the queue with the decoding error.
	//
	// (Args that are not JSON at all are dead-lettered too, and the other
	// jobs run; but River's SQLite JobList fails with "malformed JSON" on
	// such a row, which River guards against only in its fetch: Dead, and
	// so FailedEvents, fail for as long as the dead row is kept, and
	// WaitIdle may while it is live.)
	faulttest.AssertPoisoned(t, ctx, c, q, "audit", "note.added", "bad-group", len(want)+1)
}
