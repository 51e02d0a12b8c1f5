package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/servicetest"
	"github.com/outhook/outhook/internal/sqlstore"
	"github.com/outhook/outhook/outhooktest"
	"github.com/outhook/outhook/postgres"
	"github.com/outhook/outhook/storetest"
	"github.com/stretchr/testify/require"
)

// newPool opens a pool on a schema of the test's own (servicetest), closed
// when the test ends, before the schema is dropped.
func newPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	url, _ := servicetest.PostgresSchema(tb)
	return openPool(tb, url)
}

func openPool(tb testing.TB, url string) *pgxpool.Pool {
	tb.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	require.NoError(tb, err)
	tb.Cleanup(pool.Close)
	return pool
}

// newStore returns a store on pool, closed when the test ends.
func newStore(tb testing.TB, pool *pgxpool.Pool, cfg *postgres.StoreConfig) *postgres.Store {
	tb.Helper()
	s, err := postgres.NewStore(context.Background(), pool, cfg)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func newMigratedPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	pool := newPool(tb)
	require.NoError(tb, postgres.MigrateStore(context.Background(), pool))
	return pool
}

func TestStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) outhook.Store {
		return newStore(t, newMigratedPool(t), nil)
	})
}

func TestNewStoreWithoutMigrations(t *testing.T) {
	pool := newPool(t)
	_, err := postgres.NewStore(t.Context(), pool, nil)
	require.EqualError(t, err, "outhook: postgres: the outhook tables are missing or out of date (schema version 0, want "+strconv.Itoa(sqlstore.SchemaVersion)+"): run postgres.Migrate(ctx, pool) first")
}

func TestNilPool(t *testing.T) {
	_, err := postgres.NewStore(t.Context(), nil, nil)
	require.ErrorContains(t, err, "pool is nil")
	require.ErrorContains(t, postgres.MigrateStore(t.Context(), nil), "pool is nil")
}

func migrations(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT count(*) FROM outhook_migrations`).Scan(&n))
	return n
}

func TestMigrateIsIdempotent(t *testing.T) {
	pool := newPool(t)
	for range 3 {
		require.NoError(t, postgres.MigrateStore(t.Context(), pool))
	}
	require.Equal(t, sqlstore.SchemaVersion, migrations(t, pool), "each migration is recorded once")
	newStore(t, pool, nil)
}

// TestConcurrentMigrate: nodes starting together (here, pools of their own
// on one schema) migrate at once; all succeed and each migration is applied
// once.
func TestConcurrentMigrate(t *testing.T) {
	url, _ := servicetest.PostgresSchema(t)
	pools := []*pgxpool.Pool{openPool(t, url), openPool(t, url), openPool(t, url)}
	errs := make([]error, len(pools))
	var wg sync.WaitGroup
	for i, pool := range pools {
		wg.Go(func() { errs[i] = postgres.MigrateStore(t.Context(), pool) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, sqlstore.SchemaVersion, migrations(t, pools[0]), "each migration is recorded once")
}

// TestTablesFollowSearchPath: the tables land in the schema of the pool's
// search_path, and a pool on another schema sees none of them.
func TestTablesFollowSearchPath(t *testing.T) {
	url, schema := servicetest.PostgresSchema(t)
	pool := openPool(t, url)
	require.NoError(t, postgres.MigrateStore(t.Context(), pool))
	var n int
	require.NoError(t, pool.QueryRow(t.Context(),
		`SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename LIKE 'outhook\_%'`, schema).Scan(&n))
	require.Equal(t, 6, n)
	_, err := postgres.NewStore(t.Context(), newPool(t), nil)
	require.ErrorContains(t, err, "schema version 0", "another schema has no tables")
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

// TestMatchSeesChangesFromOtherStores: two stores on one database (two
// nodes): a change made through one is routed by the other at once, by
// exact ID and by pattern.
func TestMatchSeesChangesFromOtherStores(t *testing.T) {
	ctx := t.Context()
	url, _ := servicetest.PostgresSchema(t)
	poolA, poolB := openPool(t, url), openPool(t, url)
	require.NoError(t, postgres.MigrateStore(ctx, poolA))
	a, b := newStore(t, poolA, nil), newStore(t, poolB, nil)
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
	require.NoError(t, b.CreateSubscription(ctx, subscription("s3", now, "inc.**")))
	require.Equal(t, []string{"s3"}, match(a, "inc.created"), "and the other way round")
}

// TestMaxSubscriptionStaleness: with a staleness window, a store routes with
// its cache for that long, without seeing other nodes' changes, but sees
// its own at once.
func TestMaxSubscriptionStaleness(t *testing.T) {
	ctx := t.Context()
	pool := newMigratedPool(t)
	a := newStore(t, pool, nil)
	b := newStore(t, pool, &postgres.StoreConfig{MaxSubscriptionStaleness: time.Hour})
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
	require.Equal(t, []string{"s1", "s2"}, ids(subs), "b's own change drops its cache")
}

// TestTextPostgresCannotHold: NUL bytes and invalid UTF-8, which Postgres
// text refuses, are replaced in free text and kept byte for byte in
// response excerpts; in IDs they are an error.
func TestTextPostgresCannotHold(t *testing.T) {
	ctx := t.Context()
	s := newStore(t, newMigratedPool(t), nil)
	now := time.Now()
	err := s.CreateSubscription(ctx, subscription("s\x00", now, "a.b"))
	require.ErrorContains(t, err, `outhook: postgres: subscription ID "s\x00" contains a NUL byte`)
	err = s.CreateDeliveries(ctx, []*outhook.Delivery{{ID: "d1", Payload: json.RawMessage("{\"a\":\"\xff\"}")}})
	require.ErrorContains(t, err, `delivery "d1": payload is not valid UTF-8 JSON`)

	require.NoError(t, s.CreateDeliveries(ctx, []*outhook.Delivery{{ID: "d1", Status: outhook.DeliveryPending, CreatedAt: now}}))
	a := outhook.Attempt{Number: 1, Error: "bad \xff byte\x00", Response: "\x00\xff raw"}
	require.NoError(t, s.UpdateDelivery(ctx, "d1", &a, outhook.DeliveryUpdate{Status: outhook.DeliveryFailed, LastError: a.Error}))
	d, err := s.GetDelivery(ctx, "d1")
	require.NoError(t, err)
	require.Equal(t, "bad \uFFFD byte\uFFFD", d.LastError)
	require.Equal(t, "bad \uFFFD byte\uFFFD", d.Attempts[0].Error)
	require.Equal(t, a.Response, d.Attempts[0].Response)
}

// TestClosedStore: calls after Close fail; the pool stays usable.
func TestClosedStore(t *testing.T) {
	pool := newMigratedPool(t)
	s, err := postgres.NewStore(t.Context(), pool, nil)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, err = s.GetSubscription(t.Context(), "x")
	require.Error(t, err)
	require.NoError(t, pool.Ping(t.Context()))
}

// TestClientOnPostgresStore runs a client on the store: an emitted event is
// routed through the store's index, delivered, and recorded.
func TestClientOnPostgresStore(t *testing.T) {
	s := newStore(t, newMigratedPool(t), nil)
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
	}
}
