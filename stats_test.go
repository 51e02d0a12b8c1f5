package outhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
)

// listingStore is a store without outhook.DeliveryCounter (the embedded
// interface hides it), so that DeliveryStats counts by listing. It counts
// its ListDeliveries calls.
type listingStore struct {
	outhook.Store
	lists atomic.Int64
}

func (s *listingStore) ListDeliveries(ctx context.Context, q outhook.DeliveryQuery) ([]*outhook.Delivery, error) {
	s.lists.Add(1)
	return s.Store.ListDeliveries(ctx, q)
}

// countingMemoryStore is a MemoryStore, DeliveryCounter included, that
// counts its ListDeliveries calls.
type countingMemoryStore struct {
	*outhook.MemoryStore
	lists atomic.Int64
}

func (s *countingMemoryStore) ListDeliveries(ctx context.Context, q outhook.DeliveryQuery) ([]*outhook.Delivery, error) {
	s.lists.Add(1)
	return s.MemoryStore.ListDeliveries(ctx, q)
}

// statsRun emits, through a client on store, three incidents created and
// two resolved to two subscriptions: "ok" (created only, through the
// deliverer "fake", which succeeds) and "bad" (both events, through
// "other", which fails for good). It returns the client, the two
// subscriptions and a time before the run.
func statsRun(t *testing.T, store outhook.Store) (c *outhook.Client, ok, bad outhook.Subscription, start time.Time) {
	t.Helper()
	other := outhooktest.NewDeliverer("other").SetDefault(outhooktest.FailPermanent(nil))
	c, _ = setup(t, &outhook.Config{Store: store, Deliverers: []outhook.Deliverer{other}})
	ok = subscribe(t, c, outhook.Subscription{Name: "ok", Events: []string{createdEvent}})
	bad = subscribe(t, c, outhook.Subscription{Name: "bad", Events: []string{createdEvent, resolvedEvent}, DelivererID: "other"})
	start = time.Now()
	for i := range 3 {
		emit(t, c, incidentCreated, sampleIncident(fmt.Sprint("inc-", i)))
	}
	for i := range 2 {
		emit(t, c, incidentResolved, IncidentResolved{IncidentID: fmt.Sprint("inc-", i), SystemIDs: []string{"sys-1"}})
	}
	outhooktest.WaitIdle(t, c)
	return c, ok, bad, start
}

// wantRunStats is what DeliveryStats counts after statsRun.
func wantRunStats(ok, bad outhook.Subscription) outhook.DeliveryStats {
	sc := func(succeeded, failed int) outhook.StatusCounts {
		return outhook.StatusCounts{Total: succeeded + failed, Succeeded: succeeded, Failed: failed}
	}
	subs := []outhook.SubscriptionCounts{{SubscriptionID: ok.ID, StatusCounts: sc(3, 0)}, {SubscriptionID: bad.ID, StatusCounts: sc(0, 5)}}
	if bad.ID < ok.ID {
		subs[0], subs[1] = subs[1], subs[0]
	}
	return outhook.DeliveryStats{
		StatusCounts:   sc(3, 5),
		ByEvent:        []outhook.EventCounts{{EventID: createdEvent, StatusCounts: sc(3, 3)}, {EventID: resolvedEvent, StatusCounts: sc(0, 2)}},
		ByDeliverer:    []outhook.DelivererCounts{{DelivererID: "fake", StatusCounts: sc(3, 0)}, {DelivererID: "other", StatusCounts: sc(0, 5)}},
		BySubscription: subs,
	}
}

// requireStats checks got against want, apart from the range.
func requireStats(t *testing.T, want, got outhook.DeliveryStats) {
	t.Helper()
	got.Since, got.Until = time.Time{}, time.Time{}
	require.Equal(t, want, got)
}

func TestDeliveryStatsCountsARun(t *testing.T) {
	store := &countingMemoryStore{MemoryStore: outhook.NewMemoryStore(nil)}
	c, ok, bad, start := statsRun(t, store)
	before := store.lists.Load()

	st, err := c.DeliveryStats(t.Context(), outhook.DeliveryStatsQuery{Since: start})
	require.NoError(t, err)
	requireStats(t, wantRunStats(ok, bad), st)
	require.Equal(t, start, st.Since)
	require.False(t, st.Until.Before(start), "a zero Until is now")
	require.False(t, st.Truncated)
	require.Equal(t, before, store.lists.Load(), "a store that counts is not listed")

	// One subscription.
	st, err = c.DeliveryStats(t.Context(), outhook.DeliveryStatsQuery{Since: start, SubscriptionID: ok.ID})
	require.NoError(t, err)
	require.Equal(t, ok.ID, st.SubscriptionID)
	require.Equal(t, outhook.StatusCounts{Total: 3, Succeeded: 3}, st.StatusCounts)
	require.Equal(t, []outhook.EventCounts{{EventID: createdEvent, StatusCounts: st.StatusCounts}}, st.ByEvent)
	require.Equal(t, []outhook.DelivererCounts{{DelivererID: "fake", StatusCounts: st.StatusCounts}}, st.ByDeliverer)
	require.Equal(t, []outhook.SubscriptionCounts{{SubscriptionID: ok.ID, StatusCounts: st.StatusCounts}}, st.BySubscription)

	// A range without deliveries: zeros and empty lists, which JSON shows
	// as [] rather than null.
	st, err = c.DeliveryStats(t.Context(), outhook.DeliveryStatsQuery{Since: start.Add(-time.Hour), Until: start})
	require.NoError(t, err)
	requireStats(t, outhook.DeliveryStats{ByEvent: []outhook.EventCounts{}, ByDeliverer: []outhook.DelivererCounts{},
		BySubscription: []outhook.SubscriptionCounts{}}, st)
	b, err := json.Marshal(st)
	require.NoError(t, err)
	require.JSONEq(t, fmt.Sprintf(`{"since":%q,"until":%q,"total":0,"pending":0,"succeeded":0,"failed":0,
		"byEvent":[],"byDeliverer":[],"bySubscription":[],"truncated":false}`,
		st.Since.Format(time.RFC3339Nano), st.Until.Format(time.RFC3339Nano)), string(b))

	// A subscription with no deliveries counts none, without an error.
	st, err = c.DeliveryStats(t.Context(), outhook.DeliveryStatsQuery{Since: start, SubscriptionID: "sub_none"})
	require.NoError(t, err)
	require.Zero(t, st.Total)
}

// TestDeliveryStatsByListing: with a store that cannot count, the client
// lists the deliveries and counts the same.
func TestDeliveryStatsByListing(t *testing.T) {
	store := &listingStore{Store: outhook.NewMemoryStore(nil)}
	_, isCounter := outhook.Store(store).(outhook.DeliveryCounter)
	require.False(t, isCounter)
	c, ok, bad, start := statsRun(t, store)
	st, err := c.DeliveryStats(t.Context(), outhook.DeliveryStatsQuery{Since: start})
	require.NoError(t, err)
	requireStats(t, wantRunStats(ok, bad), st)
	require.False(t, st.Truncated)
	require.Positive(t, store.lists.Load())

	st, err = c.DeliveryStats(t.Context(), outhook.DeliveryStatsQuery{Since: start, SubscriptionID: bad.ID})
	require.NoError(t, err)
	require.Equal(t, outhook.StatusCounts{Total: 5, Failed: 5}, st.StatusCounts)
}

// TestDeliveryStatsByListingIsBounded: listing stops after 10,000
// deliveries, the newest, and says so; exactly 10,000 is not truncated.
func TestDeliveryStatsByListingIsBounded(t *testing.T) {
	const bound = 10_000 // the listing bound documented on DeliveryStats.Truncated
	mem := outhook.NewMemoryStore(&outhook.MemoryStoreConfig{MaxFinishedDeliveries: 2 * bound})
	store := &listingStore{Store: mem}
	c, _ := setup(t, &outhook.Config{Store: store})
	start := time.Now().Add(-time.Hour)
	ds := make([]*outhook.Delivery, bound)
	for i := range ds {
		ds[i] = &outhook.Delivery{ID: fmt.Sprintf("dlv_%05d", i), MessageID: "msg_1", EventID: createdEvent, SubscriptionID: "sub_1",
			DelivererID: "fake", Status: outhook.DeliverySucceeded, CreatedAt: start.Add(time.Duration(i+1) * time.Millisecond)}
		ds[i].UpdatedAt = ds[i].CreatedAt
	}
	require.NoError(t, mem.CreateDeliveries(t.Context(), ds))

	st, err := c.DeliveryStats(t.Context(), outhook.DeliveryStatsQuery{Since: start})
	require.NoError(t, err)
	require.Equal(t, bound, st.Succeeded)
	require.False(t, st.Truncated, "exactly the bound")

	// One more, the oldest: the newest 10,000 are counted.
	oldest := &outhook.Delivery{ID: "dlv_old", MessageID: "msg_1", EventID: createdEvent, SubscriptionID: "sub_1",
		DelivererID: "fake", Status: outhook.DeliveryFailed, CreatedAt: start, UpdatedAt: start}
	require.NoError(t, mem.CreateDeliveries(t.Context(), []*outhook.Delivery{oldest}))
	st, err = c.DeliveryStats(t.Context(), outhook.DeliveryStatsQuery{Since: start})
	require.NoError(t, err)
	require.True(t, st.Truncated)
	require.Equal(t, outhook.StatusCounts{Total: bound, Succeeded: bound}, st.StatusCounts)

	// The MemoryStore itself counts them all.
	c2, _ := setup(t, &outhook.Config{Store: mem})
	st, err = c2.DeliveryStats(t.Context(), outhook.DeliveryStatsQuery{Since: start})
	require.NoError(t, err)
	require.False(t, st.Truncated)
	require.Equal(t, outhook.StatusCounts{Total: bound + 1, Succeeded: bound, Failed: 1}, st.StatusCounts)
}

func TestDeliveryStatsBadInput(t *testing.T) {
	c, _ := setup(t, nil)
	now := time.Now()
	for _, tc := range []struct {
		name string
		q    outhook.DeliveryStatsQuery
		want string
	}{
		{"no Since", outhook.DeliveryStatsQuery{}, "Since is required"},
		{"no Since, an Until", outhook.DeliveryStatsQuery{Until: now}, "Since is required"},
		{"Until before Since", outhook.DeliveryStatsQuery{Since: now, Until: now.Add(-time.Hour)}, "is not before Until"},
		{"Until at Since", outhook.DeliveryStatsQuery{Since: now, Until: now}, "is not before Until"},
		{"Since in the future", outhook.DeliveryStatsQuery{Since: now.Add(time.Hour)}, "is not before Until"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.DeliveryStats(t.Context(), tc.q)
			require.ErrorContains(t, err, "outhook: delivery stats: ")
			require.ErrorContains(t, err, tc.want)
		})
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := c.DeliveryStats(ctx, outhook.DeliveryStatsQuery{Since: now.Add(-time.Hour)})
	require.ErrorIs(t, err, context.Canceled)
}
