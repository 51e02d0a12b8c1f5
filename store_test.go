package outhook_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
	"github.com/stretchr/testify/require"
)

// noScanStore refuses to list subscriptions: routing must answer from the
// index by event ID.
type noScanStore struct{ *outhook.MemoryStore }

func (noScanStore) ListSubscriptions(context.Context) ([]*outhook.Subscription, error) {
	return nil, errors.New("routing must not scan every subscription")
}

func TestRoutingUsesTheIndex(t *testing.T) {
	c, fake := setup(t, &outhook.Config{Store: noScanStore{outhook.NewMemoryStore(nil)}})
	subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	subscribe(t, c, outhook.Subscription{Events: []string{"incident.**"}})
	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	outhooktest.WaitIdle(t, c)
	require.Len(t, fake.Delivered(), 2)
}

func TestMemoryStoreMatchAndEvict(t *testing.T) {
	ctx := context.Background()
	s := outhook.NewMemoryStore(&outhook.MemoryStoreConfig{MaxFinishedDeliveries: 4})
	now := time.Now()
	for i, events := range [][]string{{"a.b.c"}, {"a.*.c"}, {"a.**"}, {"x.y"}, {"a.b.c", "x.y"}} {
		require.NoError(t, s.CreateSubscription(ctx, &outhook.Subscription{ID: fmt.Sprint("s", i), Events: events, CreatedAt: now.Add(time.Duration(i))}))
	}
	ids := func(subs []*outhook.Subscription) (out []string) {
		for _, sub := range subs {
			out = append(out, sub.ID)
		}
		return out
	}
	got, err := s.MatchSubscriptions(ctx, "a.b.c")
	require.NoError(t, err)
	require.Equal(t, []string{"s0", "s1", "s2", "s4"}, ids(got), "oldest first, each once")
	require.NoError(t, s.UpdateSubscription(ctx, &outhook.Subscription{ID: "s0", Events: []string{"x.y"}, CreatedAt: now}))
	got, _ = s.MatchSubscriptions(ctx, "a.b.c")
	require.Equal(t, []string{"s1", "s2", "s4"}, ids(got), "the cache follows updates")
	require.NoError(t, s.DeleteSubscription(ctx, "s4"))
	got, _ = s.MatchSubscriptions(ctx, "x.y")
	require.Equal(t, []string{"s0", "s3"}, ids(got))

	// Finished deliveries beyond the limit (plus a quarter) are forgotten,
	// oldest first; pending ones stay.
	var all []*outhook.Delivery
	for i := range 8 {
		all = append(all, &outhook.Delivery{ID: fmt.Sprint("d", i), Status: outhook.DeliveryPending})
	}
	require.NoError(t, s.CreateDeliveries(ctx, all))
	require.NoError(t, s.CreateDeliveries(ctx, all[:1]), "creating again is a no-op")
	for i := 1; i < 8; i++ {
		require.NoError(t, s.UpdateDelivery(ctx, fmt.Sprint("d", i), &outhook.Attempt{Number: 1}, outhook.DeliveryUpdate{Status: outhook.DeliverySucceeded}))
	}
	left, err := s.ListDeliveries(ctx, outhook.DeliveryQuery{Limit: 100})
	require.NoError(t, err)
	var leftIDs []string
	for _, d := range left {
		leftIDs = append(leftIDs, d.ID)
	}
	require.Equal(t, []string{"d7", "d6", "d5", "d4", "d3", "d0"}, leftIDs, "5 finished (4 + a quarter) are allowed; the sixth trims back to 4")
	_, err = s.GetDelivery(ctx, "d1")
	require.ErrorIs(t, err, outhook.ErrNotFound)
}

func BenchmarkMatchSubscriptions(b *testing.B) {
	ctx := context.Background()
	s := outhook.NewMemoryStore(nil)
	for i := range 10_000 {
		ev := fmt.Sprintf("plugin%d.thing.happened", i%1000)
		if err := s.CreateSubscription(ctx, &outhook.Subscription{ID: fmt.Sprint("s", i), Events: []string{ev}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		subs, err := s.MatchSubscriptions(ctx, "plugin7.thing.happened")
		if err != nil || len(subs) != 10 {
			b.Fatal(len(subs), err)
		}
	}
}

// TestMemoryStoreConcurrentFinishAndEvict: workers finishing deliveries of
// every shard at once, while routing creates more and readers list them,
// lose no pending delivery and keep about MaxFinishedDeliveries finished
// ones.
func TestMemoryStoreConcurrentFinishAndEvict(t *testing.T) {
	ctx := context.Background()
	const workers, perWorker, maxFinished = 8, 200, 50
	s := outhook.NewMemoryStore(&outhook.MemoryStoreConfig{MaxFinishedDeliveries: maxFinished})
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			_, err := s.ListDeliveries(ctx, outhook.DeliveryQuery{Limit: 1000})
			require.NoError(t, err)
		}
	})
	var writers sync.WaitGroup
	for w := range workers {
		writers.Go(func() {
			for i := range perWorker {
				id := fmt.Sprintf("d%d-%03d", w, i)
				if err := s.CreateDeliveries(ctx, []*outhook.Delivery{{ID: id, Status: outhook.DeliveryPending}}); err != nil {
					t.Error(err)
					return
				}
				if i%4 == 3 {
					continue // stays pending
				}
				a := &outhook.Attempt{Number: 1, Outcome: outhook.AttemptSucceeded}
				if err := s.UpdateDelivery(ctx, id, a, outhook.DeliveryUpdate{Status: outhook.DeliverySucceeded}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	writers.Wait()
	close(done)
	wg.Wait()

	pending, err := s.ListDeliveries(ctx, outhook.DeliveryQuery{Status: outhook.DeliveryPending, Limit: workers * perWorker})
	require.NoError(t, err)
	require.Len(t, pending, workers*perWorker/4, "pending deliveries are never evicted")
	finished, err := s.ListDeliveries(ctx, outhook.DeliveryQuery{Status: outhook.DeliverySucceeded, Limit: workers * perWorker})
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(finished), maxFinished)
	require.LessOrEqual(t, len(finished), maxFinished+maxFinished/4)
	for _, d := range finished {
		got, err := s.GetDelivery(ctx, d.ID)
		require.NoError(t, err)
		require.Len(t, got.Attempts, 1)
	}
}
