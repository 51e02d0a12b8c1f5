package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/stretchr/testify/require"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/outhook/outhook/internal/servicetest"

	_ "modernc.org/sqlite"
)

func openSQLite(t *testing.T) *sql.DB {
	t.Helper()
	return openSQLiteFile(t, filepath.Join(t.TempDir(), "outhook.db"))
}

func openSQLiteFile(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)")
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// eachDialect runs test on a new, empty database of each dialect (Postgres
// in a schema of its own, skipped without OUTHOOK_POSTGRES_URL). open
// returns a new handle on that database at each call, as another node
// would have; the first is migrated.
func eachDialect(t *testing.T, test func(t *testing.T, d Dialect, open func() *sql.DB)) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "outhook.db")
		require.NoError(t, Migrate(t.Context(), openSQLiteFile(t, path), SQLite()))
		test(t, SQLite(), func() *sql.DB { return openSQLiteFile(t, path) })
	})
	t.Run("postgres", func(t *testing.T) {
		url, _ := servicetest.PostgresSchema(t)
		open := func() *sql.DB {
			pool, err := pgxpool.New(t.Context(), url)
			require.NoError(t, err)
			db := stdlib.OpenDBFromPool(pool)
			t.Cleanup(func() { _ = db.Close(); pool.Close() })
			return db
		}
		require.NoError(t, Migrate(t.Context(), open(), Postgres()))
		test(t, Postgres(), open)
	})
}

func newTestStore(t *testing.T, d Dialect, db *sql.DB) *Store {
	t.Helper()
	s, err := New(t.Context(), db, d, nil)
	require.NoError(t, err)
	return s
}

func TestRebind(t *testing.T) {
	require.Equal(t, "a = $1 AND b IN ($2, $3)", Postgres().rebind("a = ? AND b IN (?, ?)"))
	require.Equal(t, "a = ? AND b IN (?, ?)", SQLite().rebind("a = ? AND b IN (?, ?)"))
	require.Equal(t, "?, ?, ?", marks(3))
	require.Equal(t, "s.id, s.name", prefixed("s", "id, name"))
}

func TestText(t *testing.T) {
	for in, want := range map[string]string{
		"plain":            "plain",
		"日本 ✓":             "日本 ✓",
		"nul\x00byte":      "nul\uFFFDbyte",
		"bad \xc3\x28 end": "bad \uFFFD( end",
		"":                 "",
	} {
		require.Equal(t, want, text(in), "%q", in)
	}
}

func TestTimeDest(t *testing.T) {
	var got time.Time
	require.NoError(t, timeDest{&got}.Scan(nil))
	require.True(t, got.IsZero())
	now := time.Now().Truncate(time.Microsecond)
	require.NoError(t, timeDest{&got}.Scan(now.UnixMicro()))
	require.True(t, now.Equal(got))
	require.Equal(t, time.UTC, got.Location())
	// The zero time, stored as microseconds, comes back as the zero time.
	require.NoError(t, timeDest{&got}.Scan(SQLite().timeArg(time.Time{})))
	require.True(t, got.IsZero())
	require.Error(t, timeDest{&got}.Scan("2024-01-01"))

	// Times no database keeps fail to bind rather than overflow.
	for _, d := range []Dialect{SQLite(), Postgres()} {
		v, ok := d.timeArg(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)).(driver.Valuer)
		require.True(t, ok)
		_, err := v.Value()
		require.ErrorContains(t, err, "outside the years 1 to 9999")
	}
}

func TestUnknownDialect(t *testing.T) {
	db := openSQLite(t)
	_, err := New(t.Context(), db, Dialect{Name: "oracle"}, nil)
	require.ErrorContains(t, err, `unknown dialect "oracle"`)
	require.ErrorContains(t, Migrate(t.Context(), db, Dialect{}), "unknown dialect")
	require.ErrorContains(t, Migrate(t.Context(), nil, SQLite()), "nil")
}

func TestCheckAndMigrate(t *testing.T) {
	ctx := t.Context()
	db := openSQLite(t)
	err := Check(ctx, db, SQLite())
	require.ErrorIs(t, err, ErrSchema)
	require.EqualError(t, err, "outhook: sqlite: the outhook tables are missing or out of date (schema version 0, want "+strconv.Itoa(SchemaVersion)+"): run sqlite.Migrate(ctx, db) first")
	_, err = New(ctx, db, SQLite(), nil)
	require.ErrorIs(t, err, ErrSchema)

	require.NoError(t, Migrate(ctx, db, SQLite()))
	require.NoError(t, Migrate(ctx, db, SQLite()), "idempotent")
	require.NoError(t, Check(ctx, db, SQLite()))
	v, err := Version(ctx, db, SQLite())
	require.NoError(t, err)
	require.Equal(t, SchemaVersion, v)

	_, err = New(ctx, db, SQLite(), &Config{MaxSubscriptionStaleness: -time.Second})
	require.ErrorContains(t, err, "MaxSubscriptionStaleness is negative")
}

func newSQLiteStore(t *testing.T) *Store {
	t.Helper()
	db := openSQLite(t)
	require.NoError(t, Migrate(t.Context(), db, SQLite()))
	s, err := New(t.Context(), db, SQLite(), nil)
	require.NoError(t, err)
	return s
}

func TestBadInput(t *testing.T) { eachDialect(t, testBadInput) }

func testBadInput(t *testing.T, d Dialect, open func() *sql.DB) {
	ctx := t.Context()
	s := newTestStore(t, d, open())
	now := time.Now()
	cases := []struct {
		sub  *outhook.Subscription
		want string
	}{
		{nil, "subscription is nil"},
		{&outhook.Subscription{Events: []string{"a.b"}}, "subscription ID is empty"},
		{&outhook.Subscription{ID: "s\x00", Events: []string{"a.b"}}, "contains a NUL byte"},
		{&outhook.Subscription{ID: "s\xff", Events: []string{"a.b"}}, "not valid UTF-8"},
		{&outhook.Subscription{ID: "s", Events: []string{""}}, `subscription "s": events[0] is empty`},
		{&outhook.Subscription{ID: "s", Events: []string{"a.b"}, Config: json.RawMessage(`{"x":`)}, `subscription "s": config is not valid UTF-8 JSON`},
	}
	for _, c := range cases {
		err := s.CreateSubscription(ctx, c.sub)
		require.ErrorContains(t, err, c.want)
		require.ErrorContains(t, s.UpdateSubscription(ctx, c.sub), c.want)
	}
	subs, err := s.ListSubscriptions(ctx)
	require.NoError(t, err)
	require.Empty(t, subs)

	err = s.CreateDeliveries(ctx, []*outhook.Delivery{
		{ID: "d1", Status: outhook.DeliveryPending, Payload: json.RawMessage(`{}`), CreatedAt: now},
		{ID: "d2", Status: outhook.DeliveryPending, Payload: json.RawMessage(`not json`), CreatedAt: now},
	})
	require.ErrorContains(t, err, `outhook: `+d.Name+`: delivery "d2": payload is not valid UTF-8 JSON`)
	require.ErrorContains(t, s.CreateDeliveries(ctx, []*outhook.Delivery{nil}), "delivery is nil")
	ds, err := s.ListDeliveries(ctx, outhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Empty(t, ds, "all or none")
}

func TestCanceledContext(t *testing.T) {
	s := newSQLiteStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.GetSubscription(ctx, "x")
	require.True(t, errors.Is(err, context.Canceled), "got %v", err)
	_, err = s.MatchSubscriptions(ctx, "a.b")
	require.Equal(t, context.Canceled, err, "context errors are returned as they are")
}

func TestTimesOutOfRange(t *testing.T) { eachDialect(t, testTimesOutOfRange) }

func testTimesOutOfRange(t *testing.T, d Dialect, open func() *sql.DB) {
	s := newTestStore(t, d, open())
	sub := &outhook.Subscription{ID: "s", Events: []string{"a.b"}, CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	err := s.CreateSubscription(t.Context(), sub)
	require.EqualError(t, err, `outhook: `+d.Name+`: subscription "s": time 10000-01-01T00:00:00Z is outside the years 1 to 9999 that outhook stores`)
	sub.CreatedAt = time.Time{}.Add(-time.Second)
	require.ErrorContains(t, s.CreateSubscription(t.Context(), sub), "outside the years 1 to 9999")
	sub.CreatedAt = time.Time{}
	require.NoError(t, s.CreateSubscription(t.Context(), sub), "the zero time is stored")
	got, err := s.GetSubscription(t.Context(), "s")
	require.NoError(t, err)
	require.True(t, got.CreatedAt.IsZero())
}

// TestUnstorableIDsAreNotFound: an ID the database cannot hold was never
// stored: lookups say not found rather than failing.
func TestUnstorableIDsAreNotFound(t *testing.T) { eachDialect(t, testUnstorableIDs) }

func testUnstorableIDs(t *testing.T, d Dialect, open func() *sql.DB) {
	ctx := t.Context()
	s := newTestStore(t, d, open())
	for _, id := range []string{"nul\x00", "bad\xff"} {
		_, err := s.GetSubscription(ctx, id)
		require.ErrorIs(t, err, outhook.ErrNotFound)
		_, err = s.SetSubscriptionDisabled(ctx, id, true, "", time.Now())
		require.ErrorIs(t, err, outhook.ErrNotFound)
		require.ErrorIs(t, s.DeleteSubscription(ctx, id), outhook.ErrNotFound)
		_, err = s.GetDelivery(ctx, id)
		require.ErrorIs(t, err, outhook.ErrNotFound)
		require.ErrorIs(t, s.UpdateDelivery(ctx, id, nil, outhook.DeliveryUpdate{}), outhook.ErrNotFound)
		_, err = s.ReopenDelivery(ctx, id, time.Now())
		require.ErrorIs(t, err, outhook.ErrNotFound)
		ds, err := s.ListDeliveries(ctx, outhook.DeliveryQuery{EventID: id})
		require.NoError(t, err)
		require.Empty(t, ds)
	}
	require.NoError(t, s.CreateSubscription(ctx, &outhook.Subscription{ID: "all", Events: []string{"**"}}))
	subs, err := s.MatchSubscriptions(ctx, "bad\xff")
	require.NoError(t, err)
	require.Len(t, subs, 1, "patterns still match, as in MemoryStore")
}

// TestMatchUnderConcurrentChanges: while goroutines route through store b,
// every change made through store a (another node) is seen by b's next
// call after it returns, and no stale answer is cached.
func TestMatchUnderConcurrentChanges(t *testing.T) { eachDialect(t, testMatchUnderConcurrentChanges) }

func testMatchUnderConcurrentChanges(t *testing.T, d Dialect, open func() *sql.DB) {
	ctx := t.Context()
	a, b := newTestStore(t, d, open()), newTestStore(t, d, open())

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, ev := range []string{"x.a", "x.b", "y.a"} {
					if _, err := b.MatchSubscriptions(ctx, ev); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	now := time.Now()
	for i := range 15 {
		id := fmt.Sprint("s", i)
		events := []string{"x.a"}
		if i%2 == 1 {
			events = []string{"x.*"}
		}
		require.NoError(t, a.CreateSubscription(ctx, &outhook.Subscription{ID: id, Events: events, CreatedAt: now}))
		got, err := b.MatchSubscriptions(ctx, "x.a")
		require.NoError(t, err)
		require.Len(t, got, i+1, "after creating %s", id)
		require.NoError(t, a.UpdateSubscription(ctx, &outhook.Subscription{ID: id, Events: []string{"y.a"}, CreatedAt: now}))
		got, err = b.MatchSubscriptions(ctx, "x.a")
		require.NoError(t, err)
		require.Len(t, got, i, "after moving %s away", id)
		require.NoError(t, a.UpdateSubscription(ctx, &outhook.Subscription{ID: id, Events: events, CreatedAt: now}))
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// TestCreateDeliveriesInChunks: a batch larger than one INSERT is still all
// or none, and deliveries that carry attempts keep them, unless their ID
// was stored already.
func TestCreateDeliveriesInChunks(t *testing.T) { eachDialect(t, testCreateDeliveriesInChunks) }

func testCreateDeliveriesInChunks(t *testing.T, d Dialect, open func() *sql.DB) {
	ctx := t.Context()
	s := newTestStore(t, d, open())
	now := time.Now()
	mk := func(n int) []*outhook.Delivery {
		ds := make([]*outhook.Delivery, n)
		for i := range ds {
			ds[i] = &outhook.Delivery{ID: fmt.Sprintf("d%04d", i), Status: outhook.DeliveryPending, CreatedAt: now}
		}
		return ds
	}
	count := func() int {
		ds, err := s.ListDeliveries(ctx, outhook.DeliveryQuery{Limit: 10_000})
		require.NoError(t, err)
		return len(ds)
	}

	ds := mk(3*rowsPerInsert + 7)
	ds[len(ds)-1].CreatedAt = time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC) // fails in the last INSERT
	require.ErrorContains(t, s.CreateDeliveries(ctx, ds), "outside the years")
	require.Zero(t, count(), "all or none")

	ds[len(ds)-1].CreatedAt = now
	require.NoError(t, s.CreateDeliveries(ctx, ds))
	require.Equal(t, len(ds), count())

	// With attempts: the new delivery gets its attempts, the stored one
	// keeps its own (none).
	withAttempts := []*outhook.Delivery{
		{ID: "d0000", Status: outhook.DeliveryFailed, Attempts: []outhook.Attempt{{Number: 1, Error: "x"}}},
		{ID: "new", Status: outhook.DeliveryFailed, CreatedAt: now, Attempts: []outhook.Attempt{{Number: 1, Error: "a"}, {Number: 2, Error: "b"}}},
		{ID: "new", Status: outhook.DeliveryPending, Attempts: []outhook.Attempt{{Number: 9}}},
	}
	require.NoError(t, s.CreateDeliveries(ctx, withAttempts))
	old, err := s.GetDelivery(ctx, "d0000")
	require.NoError(t, err)
	require.Equal(t, outhook.DeliveryPending, old.Status)
	require.Empty(t, old.Attempts)
	got, err := s.GetDelivery(ctx, "new")
	require.NoError(t, err)
	require.Equal(t, outhook.DeliveryFailed, got.Status, "the first of two equal IDs")
	require.Len(t, got.Attempts, 2)
	require.Equal(t, "b", got.Attempts[1].Error)
	// The next attempt is numbered after the stored ones.
	require.NoError(t, s.UpdateDelivery(ctx, "new", &outhook.Attempt{Number: 3, Error: "c"}, outhook.DeliveryUpdate{Status: outhook.DeliveryFailed}))
	got, err = s.GetDelivery(ctx, "new")
	require.NoError(t, err)
	require.Len(t, got.Attempts, 3)
	require.Equal(t, "c", got.Attempts[2].Error)
}

// TestGroupedCalls: the calls the store runs in groups (see grouped.go)
// give each caller its own answer: deliveries created together, read
// together (missing ones not found, one asked twice given twice) and
// updated together (a missing one not found) are each as if alone; and when
// the database refuses one call of a group, the others still succeed and
// the refused one changes nothing.
func TestGroupedCalls(t *testing.T) { eachDialect(t, testGroupedCalls) }

func testGroupedCalls(t *testing.T, d Dialect, open func() *sql.DB) {
	ctx := t.Context()
	db := open()
	s := newTestStore(t, d, db)
	now := time.Now().UTC().Truncate(time.Microsecond)
	mk := func(id string) *outhook.Delivery {
		return &outhook.Delivery{ID: id, MessageID: "m", EventID: "e", SubscriptionID: "s", DelivererID: "w",
			Status: outhook.DeliveryPending, Payload: json.RawMessage(`{"id":"` + id + `"}`), OccurredAt: now,
			CreatedAt: now, UpdatedAt: now, NextAttemptAt: now}
	}
	rows := func(ds ...*outhook.Delivery) [][]any {
		out := make([][]any, len(ds))
		for i, d := range ds {
			var err error
			out[i], err = s.deliveryArgs(d)
			require.NoError(t, err)
		}
		return out
	}
	creates := []batchItem[[][]any]{
		{ctx, rows(mk("d1"), mk("d2"))},
		{ctx, rows(mk("d3"))},
		{ctx, rows(mk("d2"), mk("d4"))}, // d2 again: left as it is
	}
	require.Equal(t, []error{nil, nil, nil}, s.runCreates(ctx, creates))

	gets := []batchItem[*getDeliveryReq]{{ctx, &getDeliveryReq{id: "d1"}}, {ctx, &getDeliveryReq{id: "nope"}},
		{ctx, &getDeliveryReq{id: "d4"}}, {ctx, &getDeliveryReq{id: "d1"}}}
	errs := s.runGets(ctx, gets)
	require.NoError(t, errs[0])
	require.ErrorIs(t, errs[1], outhook.ErrNotFound)
	require.NoError(t, errs[2])
	require.NoError(t, errs[3])
	require.Equal(t, "d1", gets[0].item.d.ID)
	require.Equal(t, "d4", gets[2].item.d.ID)
	require.Equal(t, gets[0].item.d, gets[3].item.d)
	require.NotSame(t, gets[0].item.d, gets[3].item.d, "each caller gets its own value")
	require.JSONEq(t, `{"id":"d4"}`, string(gets[2].item.d.Payload))

	attempt := func(n int, msg string) *outhook.Attempt {
		return &outhook.Attempt{Number: n, Trigger: outhook.TriggerScheduled, StartedAt: now, DelivererID: "w",
			Duration: time.Millisecond, Outcome: outhook.AttemptRetryable, Error: msg, StatusCode: 503, Response: "busy\x00",
			RetryAfter: time.Second, NextAttemptAt: now.Add(time.Minute)}
	}
	updates := []batchItem[*updateReq]{
		{ctx, &updateReq{id: "d1", attempt: attempt(1, "a"), u: outhook.DeliveryUpdate{Status: outhook.DeliveryPending,
			NextAttemptAt: now.Add(time.Minute), LastError: "a", UpdatedAt: now.Add(time.Second)}}},
		{ctx, &updateReq{id: "missing", attempt: attempt(1, "x"), u: outhook.DeliveryUpdate{Status: outhook.DeliveryFailed, UpdatedAt: now}}},
		{ctx, &updateReq{id: "d2", u: outhook.DeliveryUpdate{Status: outhook.DeliveryFailed, LastError: "abandoned",
			ExternalID: "X-1", UpdatedAt: now.Add(2 * time.Second)}}},
		{ctx, &updateReq{id: "d3", attempt: attempt(1, "ok"), u: outhook.DeliveryUpdate{Status: outhook.DeliverySucceeded,
			UpdatedAt: now.Add(3 * time.Second)}}},
	}
	errs = s.runUpdates(ctx, updates)
	require.NoError(t, errs[0])
	require.ErrorIs(t, errs[1], outhook.ErrNotFound)
	require.NoError(t, errs[2])
	require.NoError(t, errs[3])
	d1, err := s.GetDelivery(ctx, "d1")
	require.NoError(t, err)
	require.Equal(t, outhook.DeliveryPending, d1.Status)
	require.Equal(t, "a", d1.LastError)
	require.True(t, now.Add(time.Minute).Equal(d1.NextAttemptAt))
	require.Len(t, d1.Attempts, 1)
	require.Equal(t, *attempt(1, "a"), d1.Attempts[0])
	d2, err := s.GetDelivery(ctx, "d2")
	require.NoError(t, err)
	require.Equal(t, outhook.DeliveryFailed, d2.Status)
	require.Equal(t, "X-1", d2.ExternalID)
	require.True(t, d2.NextAttemptAt.IsZero())
	require.Empty(t, d2.Attempts)
	d3, err := s.GetDelivery(ctx, "d3")
	require.NoError(t, err)
	require.Equal(t, outhook.DeliverySucceeded, d3.Status)
	require.Len(t, d3.Attempts, 1)

	// The database refuses the attempts and deliveries that say "boom".
	if d.kind == kindPostgres {
		_, err = db.ExecContext(ctx, `CREATE FUNCTION boom_attempt() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN IF NEW.error = 'boom' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$`)
		require.NoError(t, err)
		_, err = db.ExecContext(ctx, `CREATE FUNCTION boom_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN IF NEW.last_error = 'boom' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$`)
		require.NoError(t, err)
		_, err = db.ExecContext(ctx, `CREATE TRIGGER boom BEFORE INSERT ON outhook_attempts FOR EACH ROW EXECUTE FUNCTION boom_attempt()`)
		require.NoError(t, err)
		_, err = db.ExecContext(ctx, `CREATE TRIGGER boom BEFORE INSERT ON outhook_deliveries FOR EACH ROW EXECUTE FUNCTION boom_delivery()`)
		require.NoError(t, err)
	} else {
		_, err = db.ExecContext(ctx, `CREATE TRIGGER boom BEFORE INSERT ON outhook_attempts WHEN NEW.error = 'boom'
			BEGIN SELECT RAISE(ABORT, 'boom'); END`)
		require.NoError(t, err)
		_, err = db.ExecContext(ctx, `CREATE TRIGGER boom_delivery BEFORE INSERT ON outhook_deliveries WHEN NEW.last_error = 'boom'
			BEGIN SELECT RAISE(ABORT, 'boom'); END`)
		require.NoError(t, err)
	}
	updates = []batchItem[*updateReq]{
		{ctx, &updateReq{id: "d1", attempt: attempt(2, "boom"), u: outhook.DeliveryUpdate{Status: outhook.DeliveryFailed, UpdatedAt: now}}},
		{ctx, &updateReq{id: "d4", attempt: attempt(1, "fine"), u: outhook.DeliveryUpdate{Status: outhook.DeliverySucceeded, UpdatedAt: now}}},
	}
	errs = s.runUpdates(ctx, updates)
	require.ErrorContains(t, errs[0], "boom")
	require.NoError(t, errs[1])
	d1, err = s.GetDelivery(ctx, "d1")
	require.NoError(t, err)
	require.Equal(t, outhook.DeliveryPending, d1.Status, "the refused update changed nothing")
	require.Len(t, d1.Attempts, 1)
	d4, err := s.GetDelivery(ctx, "d4")
	require.NoError(t, err)
	require.Equal(t, outhook.DeliverySucceeded, d4.Status)
	require.Len(t, d4.Attempts, 1)

	bad := mk("d6")
	bad.LastError = "boom"
	creates = []batchItem[[][]any]{{ctx, rows(mk("d5"))}, {ctx, rows(mk("d7"), bad)}, {ctx, rows(mk("d8"))}}
	errs = s.runCreates(ctx, creates)
	require.NoError(t, errs[0])
	require.ErrorContains(t, errs[1], "boom")
	require.NoError(t, errs[2])
	for id, want := range map[string]bool{"d5": true, "d6": false, "d7": false, "d8": true} {
		_, err := s.GetDelivery(ctx, id)
		if want {
			require.NoError(t, err, id)
		} else {
			require.ErrorIs(t, err, outhook.ErrNotFound, "%s: the refused call stored nothing", id)
		}
	}
}

// TestGroupedCallsConcurrently: many workers creating, reading and updating
// their deliveries at once, as the client's do, each see their own.
func TestGroupedCallsConcurrently(t *testing.T) { eachDialect(t, testGroupedCallsConcurrently) }

func testGroupedCallsConcurrently(t *testing.T, d Dialect, open func() *sql.DB) {
	ctx := t.Context()
	s := newTestStore(t, d, open())
	require.NoError(t, s.CreateSubscription(ctx, &outhook.Subscription{ID: "s", Events: []string{"e.x"}, DelivererID: "w"}))
	now := time.Now().UTC().Truncate(time.Microsecond)
	const workers, each = 16, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			err := func() error {
				for i := range each {
					id := fmt.Sprintf("d%02d_%02d", w, i)
					subs, err := s.MatchSubscriptions(ctx, "e.x")
					if err != nil || len(subs) != 1 {
						return fmt.Errorf("match: %v %v", subs, err)
					}
					if err := s.CreateDeliveries(ctx, []*outhook.Delivery{{ID: id, SubscriptionID: "s", Status: outhook.DeliveryPending,
						Payload: json.RawMessage(`{"w":` + fmt.Sprint(w) + `}`), CreatedAt: now, UpdatedAt: now}}); err != nil {
						return err
					}
					got, err := s.GetDelivery(ctx, id)
					if err != nil {
						return err
					}
					if got.ID != id || string(got.Payload) != `{"w":`+fmt.Sprint(w)+`}` {
						return fmt.Errorf("%s: got %s %s", id, got.ID, got.Payload)
					}
					if _, err := s.GetSubscription(ctx, "s"); err != nil {
						return err
					}
					a := outhook.Attempt{Number: 1, Trigger: outhook.TriggerScheduled, StartedAt: now, Outcome: outhook.AttemptSucceeded, Error: id}
					if err := s.UpdateDelivery(ctx, id, &a, outhook.DeliveryUpdate{Status: outhook.DeliverySucceeded, LastError: id, UpdatedAt: now}); err != nil {
						return err
					}
					got, err = s.GetDelivery(ctx, id)
					if err != nil {
						return err
					}
					if got.Status != outhook.DeliverySucceeded || len(got.Attempts) != 1 || got.Attempts[0].Error != id || got.LastError != id {
						return fmt.Errorf("%s: got %+v", id, got)
					}
				}
				return nil
			}()
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	ds, err := s.ListDeliveries(ctx, outhook.DeliveryQuery{Limit: 1000})
	require.NoError(t, err)
	require.Len(t, ds, workers*each)
}
