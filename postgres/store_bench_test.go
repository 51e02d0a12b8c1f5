package postgres_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/postgres"
)

// benchSubscriptions stores 1,000 subscriptions over 100 event IDs, and a
// few patterns.
func benchSubscriptions(b *testing.B, s outhook.Store) {
	b.Helper()
	now := time.Now()
	for i := range 1_000 {
		sub := subscription(fmt.Sprint("s", i), now, fmt.Sprintf("plugin%d.thing.happened", i%100))
		if i%250 == 0 {
			sub.Events = append(sub.Events, fmt.Sprintf("plugin%d.**", i%100))
		}
		if err := s.CreateSubscription(b.Context(), sub); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMatchSubscriptions is the routing hot path: the match set is
// cached, and each call checks the subscription version (one small query).
func BenchmarkMatchSubscriptions(b *testing.B) {
	for _, bc := range []struct {
		name      string
		staleness time.Duration
	}{{"check-every-call", 0}, {"staleness-1m", time.Minute}} {
		b.Run(bc.name, func(b *testing.B) {
			s := newStore(b, newMigratedPool(b), &postgres.StoreConfig{MaxSubscriptionStaleness: bc.staleness})
			benchSubscriptions(b, s)
			b.ReportAllocs()
			for b.Loop() {
				subs, err := s.MatchSubscriptions(b.Context(), "plugin7.thing.happened")
				if err != nil || len(subs) != 10 {
					b.Fatal(len(subs), err)
				}
			}
		})
	}
}

// BenchmarkCreateAndUpdateDelivery is the store's share of one delivery:
// CreateDeliveries of one delivery, then UpdateDelivery with a successful
// attempt.
func BenchmarkCreateAndUpdateDelivery(b *testing.B) {
	s := newStore(b, newMigratedPool(b), nil)
	payload := []byte(`{"id":"inc-1","systemIds":["sys-1","sys-2"],"severity":"critical","title":"Database is down"}`)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		now := time.Now()
		d := &outhook.Delivery{ID: fmt.Sprint("dlv_", i), MessageID: fmt.Sprint("msg_", i), EventID: "plugin.thing.happened",
			SubscriptionID: "s1", DelivererID: "webhook", Status: outhook.DeliveryPending, Payload: payload,
			OccurredAt: now, CreatedAt: now, UpdatedAt: now, NextAttemptAt: now}
		if err := s.CreateDeliveries(b.Context(), []*outhook.Delivery{d}); err != nil {
			b.Fatal(err)
		}
		a := outhook.Attempt{Number: 1, Trigger: outhook.TriggerScheduled, StartedAt: now, DelivererID: "webhook",
			Duration: time.Millisecond, Outcome: outhook.AttemptSucceeded, StatusCode: 200, Response: "ok"}
		if err := s.UpdateDelivery(b.Context(), d.ID, &a, outhook.DeliveryUpdate{Status: outhook.DeliverySucceeded, UpdatedAt: now}); err != nil {
			b.Fatal(err)
		}
	}
}
