package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/sqlstore"
	"github.com/outhook/outhook/outhooktest"
	"github.com/outhook/outhook/sqlite"
	"github.com/outhook/outhook/storetest"
	"github.com/stretchr/testify/require"
)

// openDB opens (or creates) the database file at path with the least the
// store needs (WAL, a busy timeout) and a pool of many connections, and
// closes it when the test ends.
func openDB(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)")
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

func tempPath(tb testing.TB) string { return filepath.Join(tb.TempDir(), "outhook.db") }

// newStore returns a store on a new, migrated file, opened with Open.
func newStore(tb testing.TB, cfg *sqlite.StoreConfig) (*sqlite.Store, *sql.DB) {
	tb.Helper()
	db, err := sqlite.Open(tempPath(tb))
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = db.Close() })
	require.NoError(tb, sqlite.MigrateStore(context.Background(), db))
	s, err := sqlite.NewStore(context.Background(), db, cfg)
	require.NoError(tb, err)
	return s, db
}

func TestStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) outhook.Store {
		s, _ := newStore(t, nil)
		return s
	})
}

// TestStoreConformanceManyConnections runs the suite on a database opened
// without Open: a pool of many connections, deferred transactions.
func TestStoreConformanceManyConnections(t *testing.T) {
	storetest.Run(t, func(t *testing.T) outhook.Store {
		db := openDB(t, tempPath(t))
		require.NoError(t, sqlite.MigrateStore(t.Context(), db))
		s, err := sqlite.NewStore(t.Context(), db, nil)
		require.NoError(t, err)
		return s
	})
}

func TestNewStoreWithoutMigrations(t *testing.T) {
	db := openDB(t, tempPath(t))
	_, err := sqlite.NewStore(t.Context(), db, nil)
	require.EqualError(t, err, "outhook: sqlite: the outhook tables are missing or out of date (schema version 0, want "+strconv.Itoa(sqlstore.SchemaVersion)+"): run sqlite.Migrate(ctx, db) first")
}

func TestMigrateIsIdempotent(t *testing.T) {
	ctx := t.Context()
	db := openDB(t, tempPath(t))
	for range 3 {
		require.NoError(t, sqlite.MigrateStore(ctx, db))
	}
	var n int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM outhook_migrations`).Scan(&n))
	require.Equal(t, sqlstore.SchemaVersion, n, "each migration is recorded once")
	_, err := sqlite.NewStore(ctx, db, nil)
	require.NoError(t, err)
}

// TestConcurrentMigrate: processes (here, handles on one file) that open
// a new file and migrate it at once all succeed, and apply each migration
// once. Opening a new file switches it to WAL, which fails at once with
// SQLITE_BUSY, busy timeout or not, when another connection holds it:
// Open's connections retry that.
func TestConcurrentMigrate(t *testing.T) {
	path := tempPath(t)
	dbs := make([]*sql.DB, 3)
	errs := make([]error, len(dbs))
	var wg sync.WaitGroup
	for i := range dbs {
		wg.Go(func() {
			db, err := sqlite.Open(path)
			if err != nil {
				errs[i] = err
				return
			}
			dbs[i] = db
			errs[i] = sqlite.MigrateStore(t.Context(), db)
		})
	}
	wg.Wait()
	for _, db := range dbs {
		if db != nil {
			t.Cleanup(func() { _ = db.Close() })
		}
	}
	for _, err := range errs {
		require.NoError(t, err)
	}
	var n int
	require.NoError(t, dbs[0].QueryRowContext(t.Context(), `SELECT count(*) FROM outhook_migrations`).Scan(&n))
	require.Equal(t, sqlstore.SchemaVersion, n, "each migration is recorded once")
}

func subscription(id string, created time.Time, events ...string) *outhook.Subscription {
	return &outhook.Subscription{ID: id, Events: events, DelivererID: "fake", CreatedAt: created, UpdatedAt: created}
}

func ids(subs []*outhook.Subscription) []string {
	out := []string{}
	for _, s := range subs {
		out = append(out, s.ID)
	}
	return out
}

// TestMatchSeesChangesFromOtherStores: two stores on one file (two
// processes, say): a change made through one is routed by the other at
// once, by exact ID and by pattern.
func TestMatchSeesChangesFromOtherStores(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	a, _ := newStoreAt(t, path, nil)
	b, _ := newStoreAt(t, path, nil)
	now := time.Now()
	match := func(s outhook.Store, ev string) []string {
		t.Helper()
		subs, err := s.MatchSubscriptions(ctx, ev)
		require.NoError(t, err)
		return ids(subs)
	}
	require.Empty(t, match(b, "inc.created"), "b caches an empty answer")
	require.NoError(t, a.CreateSubscription(ctx, subscription("s1", now, "inc.created")))
	require.Equal(t, []string{"s1"}, match(b, "inc.created"), "a create through a")
	require.NoError(t, a.CreateSubscription(ctx, subscription("s2", now.Add(time.Second), "inc.*")))
	require.Equal(t, []string{"s1", "s2"}, match(b, "inc.created"), "a pattern through a")
	require.NoError(t, a.UpdateSubscription(ctx, subscription("s1", now, "other.event")))
	require.Equal(t, []string{"s2"}, match(b, "inc.created"), "an update through a")
	_, err := a.SetSubscriptionDisabled(ctx, "s2", true, "gone", now)
	require.NoError(t, err)
	got, err := b.MatchSubscriptions(ctx, "inc.created")
	require.NoError(t, err)
	require.True(t, got[0].Disabled, "disabling through a")
	require.NoError(t, a.DeleteSubscription(ctx, "s2"))
	require.Empty(t, match(b, "inc.created"), "a delete through a")
	// And the other way round.
	require.NoError(t, b.CreateSubscription(ctx, subscription("s3", now, "inc.**")))
	require.Equal(t, []string{"s3"}, match(a, "inc.created"))
}

func newStoreAt(tb testing.TB, path string, cfg *sqlite.StoreConfig) (*sqlite.Store, *sql.DB) {
	tb.Helper()
	db := openDB(tb, path)
	require.NoError(tb, sqlite.MigrateStore(context.Background(), db))
	s, err := sqlite.NewStore(context.Background(), db, cfg)
	require.NoError(tb, err)
	return s, db
}

// TestMaxSubscriptionStaleness: with a staleness window, a store routes with
// its cache for that long, without seeing other stores' changes, but sees
// its own at once.
func TestMaxSubscriptionStaleness(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	a, _ := newStoreAt(t, path, nil)
	b, _ := newStoreAt(t, path, &sqlite.StoreConfig{MaxSubscriptionStaleness: time.Hour})
	now := time.Now()
	subs, err := b.MatchSubscriptions(ctx, "inc.created")
	require.NoError(t, err)
	require.Empty(t, subs)
	require.NoError(t, a.CreateSubscription(ctx, subscription("s1", now, "inc.created")))
	subs, err = b.MatchSubscriptions(ctx, "inc.created")
	require.NoError(t, err)
	require.Empty(t, subs, "within the window, b answers from its cache")
	require.NoError(t, b.CreateSubscription(ctx, subscription("s2", now.Add(time.Second), "inc.*")))
	subs, err = b.MatchSubscriptions(ctx, "inc.created")
	require.NoError(t, err)
	require.Equal(t, []string{"s1", "s2"}, ids(subs), "b's own change drops its cache, and it reads everything again")

	_, err = sqlite.NewStore(ctx, openDB(t, path), &sqlite.StoreConfig{MaxSubscriptionStaleness: -1})
	require.ErrorContains(t, err, "negative")
}

// TestReopenFile: everything stored is there after the file is closed and
// opened again.
func TestReopenFile(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	now := time.Now()
	sub := subscription("s1", now, "inc.created", "maint.**")
	sub.Config = json.RawMessage(`{"url":"https://example.com/hook"}`)
	sub.Filter = &outhook.Filter{Field: "severity", AnyOf: []string{"critical"}}
	d := &outhook.Delivery{ID: "d1", MessageID: "m1", EventID: "inc.created", SubscriptionID: "s1", DelivererID: "fake",
		Status: outhook.DeliveryPending, Payload: json.RawMessage(`{"id":1}`), OccurredAt: now, CreatedAt: now, UpdatedAt: now, NextAttemptAt: now}
	a := outhook.Attempt{Number: 1, Trigger: outhook.TriggerScheduled, StartedAt: now, DelivererID: "fake", Duration: time.Second,
		Outcome: outhook.AttemptRetryable, Error: "boom", Response: "\x00binary\xff", NextAttemptAt: now.Add(time.Minute)}
	{
		db := openDB(t, path)
		require.NoError(t, sqlite.MigrateStore(ctx, db))
		s, err := sqlite.NewStore(ctx, db, nil)
		require.NoError(t, err)
		require.NoError(t, s.CreateSubscription(ctx, sub))
		require.NoError(t, s.CreateDeliveries(ctx, []*outhook.Delivery{d}))
		require.NoError(t, s.UpdateDelivery(ctx, "d1", &a, outhook.DeliveryUpdate{Status: outhook.DeliveryPending, NextAttemptAt: a.NextAttemptAt, LastError: "boom", UpdatedAt: now}))
		require.NoError(t, db.Close())
	}
	db := openDB(t, path)
	s, err := sqlite.NewStore(ctx, db, nil)
	require.NoError(t, err, "the file is migrated already")
	got, err := s.GetSubscription(ctx, "s1")
	require.NoError(t, err)
	require.Equal(t, sub.Events, got.Events)
	require.JSONEq(t, string(sub.Config), string(got.Config))
	require.Equal(t, sub.Filter, got.Filter)
	require.True(t, sub.CreatedAt.Truncate(time.Microsecond).Equal(got.CreatedAt))
	matched, err := s.MatchSubscriptions(ctx, "maint.window.started")
	require.NoError(t, err)
	require.Equal(t, []string{"s1"}, ids(matched))
	gd, err := s.GetDelivery(ctx, "d1")
	require.NoError(t, err)
	require.Equal(t, "boom", gd.LastError)
	require.Len(t, gd.Attempts, 1)
	require.Equal(t, a.Response, gd.Attempts[0].Response)
	require.Equal(t, a.Duration, gd.Attempts[0].Duration)
	require.True(t, a.NextAttemptAt.Truncate(time.Microsecond).Equal(gd.Attempts[0].NextAttemptAt))
}

// TestClientOnSQLiteStore runs a client on the store: an emitted event is
// routed through the store's index, delivered, and recorded.
func TestClientOnSQLiteStore(t *testing.T) {
	s, _ := newStore(t, nil)
	reg := outhook.NewEventRegistry()
	type payload struct {
		ID string `json:"id"`
	}
	hook, err := outhook.NewHook[payload]("thing.happened")
	require.NoError(t, err)
	_, err = outhook.RegisterEvent(reg, outhook.EventDefinition[payload]{Hook: hook, DisplayName: "Thing happened"}, outhook.PluginMetadata{PluginID: "plugin"})
	require.NoError(t, err)
	fake := outhooktest.NewDeliverer("fake")
	c := outhooktest.NewClient(t, &outhook.Config{Registry: reg, Deliverers: []outhook.Deliverer{fake}, Store: s})
	_, err = c.CreateSubscription(t.Context(), outhook.Subscription{Events: []string{"plugin.**"}, DelivererID: "fake"})
	require.NoError(t, err)
	for i := range 3 {
		require.NoError(t, outhook.EmitHook(t.Context(), c, hook, payload{ID: fmt.Sprint(i)}))
	}
	outhooktest.WaitIdle(t, c)
	require.Len(t, fake.Delivered(), 3)
	ds, err := c.Deliveries(t.Context(), outhook.DeliveryQuery{Status: outhook.DeliverySucceeded})
	require.NoError(t, err)
	require.Len(t, ds, 3)
	for _, d := range ds {
		require.Len(t, d.Attempts, 1)
		require.Equal(t, outhook.AttemptSucceeded, d.Attempts[0].Outcome)
	}
}
