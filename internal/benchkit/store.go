package benchkit

import (
	"fmt"
	"testing"
	"time"

	"github.com/outhook/outhook"
)

// NewStore returns an empty store whose match cache is trusted for
// staleness (zero: the subscription version is checked at every call).
type NewStore func(b *testing.B, staleness time.Duration) outhook.Store

// MatchSubscriptions is the store's share of routing, the hot path of
// every event: n subscriptions spread over 100 event IDs (one in 250 also
// has a pattern), and the match of one event ID, whose set is cached per
// subscription version. It runs for n = 100, 1,000 and 10,000, and
// reports ns/match, the cost per matching subscription, which must stay
// flat as n grows (issue 6).
func MatchSubscriptions(b *testing.B, newStore NewStore) {
	for _, staleness := range []time.Duration{0, time.Minute} {
		name := "check-every-call"
		if staleness > 0 {
			name = "staleness-1m"
		}
		for _, n := range []int{100, 1_000, 10_000} {
			b.Run(fmt.Sprintf("%s/subs=%d", name, n), func(b *testing.B) {
				s := newStore(b, staleness)
				now := time.Now()
				for i := range n {
					sub := &outhook.Subscription{ID: fmt.Sprint("s", i), DelivererID: "fake", CreatedAt: now, UpdatedAt: now,
						Events: []string{fmt.Sprintf("plugin%d.thing.happened", i%100)}}
					if i%250 == 0 {
						sub.Events = append(sub.Events, fmt.Sprintf("plugin%d.**", i%100))
					}
					if err := s.CreateSubscription(b.Context(), sub); err != nil {
						b.Fatal(err)
					}
				}
				want := n / 100
				b.ReportAllocs()
				for b.Loop() {
					subs, err := s.MatchSubscriptions(b.Context(), "plugin7.thing.happened")
					if err != nil || len(subs) != want {
						b.Fatal(len(subs), want, err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*want), "ns/match")
			})
		}
	}
}

// CreateAndUpdateDelivery is the store's share of one delivery:
// CreateDeliveries of one delivery, then UpdateDelivery with a successful
// attempt.
func CreateAndUpdateDelivery(b *testing.B, s outhook.Store) {
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
