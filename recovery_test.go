package outhook_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
)

// failAll emits n events to a subscription whose deliveries all fail for
// good, and returns the subscription and the failed deliveries, newest
// first.
func failAll(t *testing.T, c *outhook.Client, fake *outhooktest.Deliverer, n int) (outhook.Subscription, []outhook.Delivery) {
	t.Helper()
	fake.SetDefault(outhooktest.FailPermanent(nil))
	sub := subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	for i := range n {
		emit(t, c, incidentCreated, sampleIncident(fmt.Sprint("inc-", i)))
	}
	outhooktest.WaitIdle(t, c)
	ds, err := c.Deliveries(t.Context(), outhook.DeliveryQuery{SubscriptionID: sub.ID, Status: outhook.DeliveryFailed, Limit: 1000})
	require.NoError(t, err)
	require.Len(t, ds, n)
	return sub, ds
}

func TestRecoverRedeliversFailedInRange(t *testing.T) {
	c, fake := setup(t, nil)
	sub, ds := failAll(t, c, fake, 6)
	fake.SetDefault(outhooktest.Succeed())

	// The range holds the deliveries from the 2nd oldest to the 2nd
	// newest: Since included, Until excluded.
	since, until := ds[4].CreatedAt, ds[0].CreatedAt
	res, err := c.Recover(t.Context(), outhook.RecoverRequest{SubscriptionID: sub.ID, Since: since, Until: until})
	require.NoError(t, err)
	require.Equal(t, 4, res.Redelivered)
	require.True(t, res.Next.IsZero(), "the range is done")
	outhooktest.WaitIdle(t, c)

	for i, d := range ds {
		got, err := c.Delivery(t.Context(), d.ID)
		require.NoError(t, err)
		inRange := i >= 1 && i <= 4
		if inRange {
			require.Equal(t, outhook.DeliverySucceeded, got.Status, "delivery %d is in the range", i)
			require.Equal(t, outhook.TriggerManual, got.Attempts[len(got.Attempts)-1].Trigger)
			require.Equal(t, d.ID, got.ID, "same delivery ID, for receivers to deduplicate")
		} else {
			require.Equal(t, outhook.DeliveryFailed, got.Status, "delivery %d is outside the range", i)
		}
	}

	// Repeating it sends nothing again: they succeeded.
	res, err = c.Recover(t.Context(), outhook.RecoverRequest{SubscriptionID: sub.ID, Since: since, Until: until})
	require.NoError(t, err)
	require.Zero(t, res.Redelivered)
}

func TestRecoverIsIdempotentWhileDeliveriesAreInFlight(t *testing.T) {
	c, fake := setup(t, &outhook.Config{DeliveryTimeout: 50 * time.Millisecond, DeliveryRetry: outhooktest.NoDelay(2)})
	sub, _ := failAll(t, c, fake, 5)
	// The redeliveries hang until the delivery timeout, twice, and fail.
	fake.SetDefault(outhooktest.Block())
	res, err := c.Recover(t.Context(), outhook.RecoverRequest{SubscriptionID: sub.ID})
	require.NoError(t, err)
	require.Equal(t, 5, res.Redelivered)
	// They are pending until then: a repeat finds nothing failed.
	res, err = c.Recover(t.Context(), outhook.RecoverRequest{SubscriptionID: sub.ID})
	require.NoError(t, err)
	require.Zero(t, res.Redelivered)
	outhooktest.WaitIdle(t, c)
	ds, err := c.Deliveries(t.Context(), outhook.DeliveryQuery{SubscriptionID: sub.ID})
	require.NoError(t, err)
	require.Len(t, ds, 5)
	for _, d := range ds {
		require.Equal(t, outhook.DeliveryFailed, d.Status)
		require.Len(t, d.Attempts, 3, "the first attempt, then one redelivery's two: never two redeliveries")
	}
}

func TestRecoverInBoundedBatches(t *testing.T) {
	c, fake := setup(t, nil)
	sub, ds := failAll(t, c, fake, 7)
	fake.SetDefault(outhooktest.Succeed())
	var total, calls int
	req := outhook.RecoverRequest{SubscriptionID: sub.ID, Limit: 3}
	for {
		calls++
		require.LessOrEqual(t, calls, 5, "recovery does not end")
		res, err := c.Recover(t.Context(), req)
		require.NoError(t, err)
		require.LessOrEqual(t, res.Redelivered, 3, "at most Limit per call")
		total += res.Redelivered
		if res.Next.IsZero() {
			break
		}
		req.After = res.Next
	}
	require.Equal(t, len(ds), total, "every failed delivery once")
	outhooktest.WaitIdle(t, c)
	failed, err := c.Deliveries(t.Context(), outhook.DeliveryQuery{SubscriptionID: sub.ID, Status: outhook.DeliveryFailed})
	require.NoError(t, err)
	require.Empty(t, failed)
}

func TestRecoverBadRequests(t *testing.T) {
	c, fake := setup(t, nil)
	sub, _ := failAll(t, c, fake, 1)
	now := time.Now()
	_, err := c.Recover(t.Context(), outhook.RecoverRequest{SubscriptionID: "sub_missing"})
	require.ErrorIs(t, err, outhook.ErrNotFound)
	_, err = c.Recover(t.Context(), outhook.RecoverRequest{})
	require.ErrorContains(t, err, "no subscription ID")
	_, err = c.Recover(t.Context(), outhook.RecoverRequest{SubscriptionID: sub.ID, Since: now, Until: now.Add(-time.Hour)})
	require.ErrorContains(t, err, "is not before Until")
	_, err = c.Recover(t.Context(), outhook.RecoverRequest{SubscriptionID: sub.ID, Limit: -1})
	require.ErrorContains(t, err, "Limit -1 is negative")
	_, err = c.Recover(t.Context(), outhook.RecoverRequest{SubscriptionID: sub.ID, Limit: 10_001})
	require.ErrorContains(t, err, "more than 10000")
	ds, err := c.Deliveries(t.Context(), outhook.DeliveryQuery{SubscriptionID: sub.ID, Status: outhook.DeliveryFailed})
	require.NoError(t, err)
	require.Len(t, ds, 1, "bad requests change nothing")
}

func TestReplaySendsAnEventAgainToTodaysSubscriptions(t *testing.T) {
	c, fake := setup(t, nil)
	a := subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	b := subscribe(t, c, outhook.Subscription{Events: []string{"incident.**"}})
	emit(t, c, incidentCreated, sampleIncident("inc-1", "sys-1", "sys-2"))
	outhooktest.WaitIdle(t, c)
	first, err := c.Deliveries(t.Context(), outhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, first, 2)
	msg := first[0].MessageID

	// Since then: a subscription more, one disabled, one filtering the
	// event out.
	cSub := subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}, Filter: &outhook.Filter{Expr: `payload.severity == "minor"`}})
	_, err = c.SetSubscriptionEnabled(t.Context(), b.ID, false)
	require.NoError(t, err)

	res, err := c.Replay(t.Context(), msg, "")
	require.NoError(t, err)
	require.Equal(t, createdEvent, res.EventID)
	require.Len(t, res.Deliveries, 2, "to a and c: b is disabled, the last filters it out")
	outhooktest.WaitIdle(t, c)
	got := map[string]string{} // subscription → delivery
	for _, id := range res.Deliveries {
		d, err := c.Delivery(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, outhook.DeliverySucceeded, d.Status)
		require.Equal(t, msg, d.MessageID, "the same message")
		require.Equal(t, first[0].OccurredAt, d.OccurredAt)
		require.JSONEq(t, string(first[0].Payload), string(d.Payload))
		require.Equal(t, outhook.TriggerManual, d.Attempts[0].Trigger)
		for _, f := range first {
			require.NotEqual(t, f.ID, d.ID, "a new delivery ID")
		}
		got[d.SubscriptionID] = d.ID
	}
	require.Contains(t, got, a.ID)
	require.Contains(t, got, cSub.ID)
	require.Len(t, fake.Calls(), 4, "two first deliveries, two replayed")

	again, err := c.Replay(t.Context(), msg, createdEvent)
	require.NoError(t, err)
	require.Len(t, again.Deliveries, 2)
	for _, id := range again.Deliveries {
		require.NotContains(t, res.Deliveries, id, "every replay makes new deliveries")
	}
	outhooktest.WaitIdle(t, c)
}

func TestReplayErrors(t *testing.T) {
	reg := newIncidentRegistry(t)
	// A second plugin turns the same hook into an event of its own: one
	// message, two events.
	_, err := outhook.RegisterEvent(reg, outhook.EventDefinition[IncidentCreated]{Hook: incidentCreated, DisplayName: "Paging"},
		outhook.PluginMetadata{PluginID: "pager"})
	require.NoError(t, err)
	c, _ := setup(t, &outhook.Config{Registry: reg})

	_, err = c.Replay(t.Context(), "msg_unknown", "")
	require.ErrorIs(t, err, outhook.ErrNotFound)
	_, err = c.Replay(t.Context(), "", "")
	require.ErrorContains(t, err, "no message ID")

	emit(t, c, incidentCreated, sampleIncident("nobody-listens"))
	outhooktest.WaitIdle(t, c)
	subscribe(t, c, outhook.Subscription{Events: []string{createdEvent, "pager.incident.created"}})
	emit(t, c, incidentCreated, sampleIncident("inc-2"))
	outhooktest.WaitIdle(t, c)
	ds, err := c.Deliveries(t.Context(), outhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, ds, 2, "one delivery per event of the message")
	_, err = c.Replay(t.Context(), ds[0].MessageID, "")
	require.ErrorContains(t, err, "carries 2 events (incident.incident.created, pager.incident.created): name one")
	res, err := c.Replay(t.Context(), ds[0].MessageID, "pager.incident.created")
	require.NoError(t, err)
	require.Len(t, res.Deliveries, 1)
	outhooktest.WaitIdle(t, c)
	_, err = c.Replay(t.Context(), ds[0].MessageID, "other.event")
	require.ErrorIs(t, err, outhook.ErrNotFound)
}
