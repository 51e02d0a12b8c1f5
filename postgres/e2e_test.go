package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/benchkit"
	"github.com/outhook/outhook/outhooktest"
	"github.com/outhook/outhook/postgres"
)

type incident struct {
	ID       string `json:"id" validate:"required"`
	Severity string `json:"severity"`
}

// TestClientOnPostgresQueue runs an outhook client on the Postgres queue:
// events emitted with EmitHook, and with EmitHookTx inside the
// application's transaction, are delivered once the transaction commits and
// never when it rolls back; failed attempts are retried through River, and
// a handler that keeps failing ends among the failed events.
func TestClientOnPostgresQueue(t *testing.T) {
	url := migratedSchema(t)
	pool := newQueuePool(t, url, nil)
	q, err := postgres.NewQueue(pool, testConfig())
	require.NoError(t, err)

	reg := outhook.NewEventRegistry()
	created := outhook.MustNewHook[incident]("incident.created")
	_, err = outhook.RegisterEvent(reg, outhook.EventDefinition[incident]{Hook: created, DisplayName: "Incident created"},
		outhook.PluginMetadata{PluginID: "incident"})
	require.NoError(t, err)
	fake := outhooktest.NewDeliverer("fake")
	c := outhooktest.NewClient(t, &outhook.Config{Registry: reg, Deliverers: []outhook.Deliverer{fake}, Queue: q})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err = c.CreateSubscription(ctx, outhook.Subscription{Events: []string{"incident.incident.created"}, DelivererID: "fake"})
	require.NoError(t, err)
	// A listener that always fails: its event ends among the failed events.
	require.NoError(t, outhook.OnHook(c, created, func(_ context.Context, p incident) error {
		if p.ID == "inc-poison" {
			return errors.New("listener refuses")
		}
		return nil
	}, outhook.WorkQueue("audit")))

	// EmitHook, one at a time; the first attempt of one delivery fails.
	fake.Script(outhooktest.FailRetryable(errors.New("503")))
	for i := range 5 {
		require.NoError(t, outhook.EmitHook(ctx, c, created, incident{ID: fmt.Sprintf("inc-%d", i), Severity: "high"}))
	}
	require.NoError(t, outhook.EmitHook(ctx, c, created, incident{ID: "inc-poison"}))

	// EmitHookTx: rolled back, never delivered.
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, outhook.EmitHookTx(ctx, c, tx, created, incident{ID: "inc-rolled-back"}))
	require.NoError(t, tx.Rollback(ctx))
	// Committed, delivered.
	tx, err = pool.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, outhook.EmitHookTx(ctx, c, tx, created, incident{ID: "inc-committed"}))
	require.NoError(t, tx.Commit(ctx))
	// Validation still applies, and writes nothing.
	tx, err = pool.Begin(ctx)
	require.NoError(t, err)
	require.ErrorIs(t, outhook.EmitHookTx(ctx, c, tx, created, incident{}), outhook.ErrInvalidPayload)
	require.NoError(t, tx.Rollback(ctx))

	outhooktest.WaitIdle(t, c)
	want := []incident{{ID: "inc-poison"}, {ID: "inc-committed"}}
	for i := range 5 {
		want = append(want, incident{ID: fmt.Sprintf("inc-%d", i), Severity: "high"})
	}
	outhooktest.AssertDelivered(t, fake, "incident.incident.created", want...)
	require.Len(t, fake.Calls(), len(want)+1, "one attempt was retried")

	failed, err := c.FailedEvents(ctx, 10)
	require.NoError(t, err)
	require.Len(t, failed, 1)
	require.Equal(t, "audit", failed[0].Group)
	require.Equal(t, 3, failed[0].Attempts, "the handler retry policy of outhooktest allows 3 attempts")
	require.Len(t, failed[0].Errors, 3)
	require.Equal(t, "listener refuses", failed[0].Errors[2].Error)
	require.JSONEq(t, `{"id":"inc-poison","severity":""}`, string(failed[0].Payload))
}

// BenchmarkDeliveries measures deliveries per second through a client on
// the Postgres queue (River), with the in-memory store and with the
// Postgres store: 32 goroutines emit events one EmitHook at a time, each
// event (a payload of about 300 bytes) is routed to one subscription and
// delivered by a deliverer that only counts; the clock stops when the queue
// is idle. The queue and the store use their defaults, as in production, on
// one pool (OUTHOOK_BENCH_CONNS connections, default 40). The river-raw
// row is River alone on the same database, as the ceiling: jobs inserted
// with InsertMany in batches of 1,000 and worked by a no-op worker, with the
// queue's default workers and fetch cooldown. With -count, the rows
// interleave, so that the machine's slow moments fall on each alike.
//
// Besides deliveries/s, each row reports the CPU it cost per delivery, in
// this process (go-µs/op) and in the Postgres backends of its pool
// (pg-µs/op, when Postgres runs on this machine), which vary less than the
// throughput on a shared machine. With OUTHOOK_BENCH_TRACE set, it prints
// the statements each delivery cost.
func BenchmarkDeliveries(b *testing.B) {
	b.Run("river-raw", benchRiverRaw)
	b.Run("store=memory", func(b *testing.B) { benchDeliveries(b, "memory") })
	b.Run("store=postgres", func(b *testing.B) { benchDeliveries(b, "postgres") })
}

func benchDeliveries(b *testing.B, storeKind string) {
	pool, tr := benchPool(b)
	q, err := postgres.NewQueue(pool, &postgres.QueueConfig{Logger: testLogger()})
	require.NoError(b, err)
	var store outhook.Store
	if storeKind == "postgres" {
		s, err := postgres.NewStore(context.Background(), pool, nil)
		require.NoError(b, err)
		b.Cleanup(func() { _ = s.Close() })
		store = s
	}
	var m *measure
	benchkit.Deliveries(b, q, store, func() { m = startMeasure(b, pool, tr) }, func() { m.stop() })
}
