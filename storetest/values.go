package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/stretchr/testify/require"
)

var storeTests = []test{
	{"EmptyStoreAnswersEmpty", testEmpty},
	{"MissingIDsAreErrNotFound", testMissing},
	{"ReturnedValuesDoNotChange", testReturnedValues},
}

// testEmpty: a new store lists and matches nothing, without an error.
func testEmpty(t *testing.T, s outhook.Store) {
	require.Empty(t, listSubs(t, s), "ListSubscriptions")
	require.Empty(t, match(t, s, "incident.incident.created"), "MatchSubscriptions")
	require.Empty(t, listDeliveries(t, s, outhook.DeliveryQuery{}), "ListDeliveries")
	require.Empty(t, listDeliveries(t, s, outhook.DeliveryQuery{Status: outhook.DeliveryFailed, Limit: 5}), "ListDeliveries")
}

// testMissing: every method that takes an ID answers a missing one with an
// error matching ErrNotFound (errors.Is, so wrapping is fine), including
// IDs that differ from stored ones only in case, and stores nothing.
func testMissing(t *testing.T, s outhook.Store) {
	ctx := t.Context()
	sub := minimalSubscription("sub_1", at(0), "incident.incident.created")
	createSub(t, s, sub)
	d := newDelivery("dlv_1", "msg_1", "incident.incident.created", "sub_1", at(0))
	createDeliveries(t, s, d)
	finish(t, s, d, outhook.DeliveryFailed, at(1))

	for _, id := range []string{"sub_2", "SUB_1", "dlv_1"} {
		calls := map[string]error{}
		_, calls["GetSubscription"] = s.GetSubscription(ctx, id)
		calls["UpdateSubscription"] = s.UpdateSubscription(ctx, minimalSubscription(id, at(2), "a.b"))
		_, calls["SetSubscriptionDisabled"] = s.SetSubscriptionDisabled(ctx, id, true, "", at(2))
		calls["DeleteSubscription"] = s.DeleteSubscription(ctx, id)
		for name, err := range calls {
			require.Error(t, err, "%s(%q)", name, id)
			require.True(t, errors.Is(err, outhook.ErrNotFound), "%s(%q): want an error matching ErrNotFound, got %v", name, id, err)
		}
	}
	for _, id := range []string{"dlv_2", "DLV_1", "sub_1"} {
		calls := map[string]error{}
		_, calls["GetDelivery"] = s.GetDelivery(ctx, id)
		calls["UpdateDelivery"] = s.UpdateDelivery(ctx, id, &outhook.Attempt{Number: 1, StartedAt: at(2)},
			outhook.DeliveryUpdate{Status: outhook.DeliveryFailed, UpdatedAt: at(2)})
		_, calls["ReopenDelivery"] = s.ReopenDelivery(ctx, id, at(2))
		for name, err := range calls {
			require.Error(t, err, "%s(%q)", name, id)
			require.True(t, errors.Is(err, outhook.ErrNotFound), "%s(%q): want an error matching ErrNotFound, got %v", name, id, err)
		}
	}

	require.Equal(t, []string{"sub_1"}, subIDs(listSubs(t, s)), "nothing created, nothing deleted")
	require.Empty(t, match(t, s, "a.b"), "nothing created")
	require.Equal(t, []string{"sub_1"}, subIDs(match(t, s, "incident.incident.created")), "nothing deleted")
	requireSubscription(t, sub, getSub(t, s, "sub_1"), "the stored subscription is untouched")
	require.Equal(t, []string{"dlv_1"}, deliveryIDs(listDeliveries(t, s, outhook.DeliveryQuery{})), "nothing created")
	requireDelivery(t, d, getDelivery(t, s, "dlv_1"), "the stored delivery is untouched")
}

// testReturnedValues: a value a store has returned stays as it was returned
// when the store is called again. A subscription from GetSubscription,
// ListSubscriptions, MatchSubscriptions or SetSubscriptionDisabled is not
// changed by later updates, disables or deletes; a delivery from
// GetDelivery, ListDeliveries or ReopenDelivery is not changed by later
// attempts, updates or reopens: no field, no appended attempt. (The client
// hands these values to deliverers and callers while the store goes on.)
func testReturnedValues(t *testing.T, s outhook.Store) {
	ctx := t.Context()
	const ev = "incident.incident.created"
	sub := fullSubscription("sub_1", at(0))
	sub.Events = []string{ev}
	createSub(t, s, sub)
	createSub(t, s, minimalSubscription("sub_2", at(1), "incident.**"))

	gotSub := getSub(t, s, "sub_1")
	gotList := listSubs(t, s)
	gotMatch := match(t, s, ev)
	disabled, err := s.SetSubscriptionDisabled(ctx, "sub_1", true, "first", at(2))
	require.NoError(t, err)
	snapSub, snapList, snapMatch, snapDisabled := cloneSubscription(gotSub), cloneSubs(gotList), cloneSubs(gotMatch), cloneSubscription(disabled)

	_, err = s.SetSubscriptionDisabled(ctx, "sub_1", false, "", at(3))
	require.NoError(t, err)
	upd := minimalSubscription("sub_1", at(0), ev, "maintenance.started")
	upd.Name, upd.UpdatedAt = "changed", at(4)
	require.NoError(t, s.UpdateSubscription(ctx, upd))
	require.NoError(t, s.UpdateSubscription(ctx, minimalSubscription("sub_2", at(1), "other.event")))
	createSub(t, s, minimalSubscription("sub_0", at(-1), ev))
	_ = match(t, s, ev)
	require.NoError(t, s.DeleteSubscription(ctx, "sub_2"))
	_ = match(t, s, ev)
	_ = listSubs(t, s)

	require.Equal(t, snapSub, gotSub, "a subscription from GetSubscription changed after later calls")
	require.Equal(t, snapList, gotList, "the result of ListSubscriptions changed after later calls")
	require.Equal(t, snapMatch, gotMatch, "the result of MatchSubscriptions changed after later calls")
	require.Equal(t, snapDisabled, disabled, "the result of SetSubscriptionDisabled changed after later calls")

	d := newDelivery("dlv_1", "msg_1", ev, "sub_1", at(0))
	createDeliveries(t, s, d, newDelivery("dlv_2", "msg_1", ev, "sub_2", at(0)))
	finish(t, s, d, outhook.DeliveryFailed, at(1))
	gotD := getDelivery(t, s, "dlv_1")
	gotDs := listDeliveries(t, s, outhook.DeliveryQuery{})
	reopened, err := s.ReopenDelivery(ctx, "dlv_1", at(2))
	require.NoError(t, err)
	snapD, snapDs, snapReopened := cloneDelivery(gotD), cloneDeliveries(gotDs), cloneDelivery(reopened)

	for i := range 3 {
		a := outhook.Attempt{Number: 2 + i, Trigger: outhook.TriggerManual, StartedAt: at(3 + i), DelivererID: "webhook",
			Duration: time.Millisecond, Outcome: outhook.AttemptRetryable, Error: "again", NextAttemptAt: at(10 + i)}
		require.NoError(t, s.UpdateDelivery(ctx, "dlv_1", &a, outhook.DeliveryUpdate{Status: outhook.DeliveryPending,
			NextAttemptAt: at(10 + i), LastError: "again", ExternalID: "EXT", UpdatedAt: at(4 + i)}))
		require.NoError(t, s.UpdateDelivery(ctx, "dlv_2", &a, outhook.DeliveryUpdate{Status: outhook.DeliveryFailed, UpdatedAt: at(4 + i)}))
	}
	require.NoError(t, s.UpdateDelivery(ctx, "dlv_1", nil, outhook.DeliveryUpdate{Status: outhook.DeliverySucceeded, UpdatedAt: at(20)}))
	_, err = s.ReopenDelivery(ctx, "dlv_1", at(21))
	require.NoError(t, err)
	createDeliveries(t, s, newDelivery("dlv_3", "msg_2", ev, "sub_1", at(22)))

	require.Equal(t, snapD, gotD, "a delivery from GetDelivery changed after later calls")
	require.Equal(t, snapDs, gotDs, "the result of ListDeliveries changed after later calls")
	require.Equal(t, snapReopened, reopened, "the result of ReopenDelivery changed after later calls")
}

func cloneSubs(subs []*outhook.Subscription) []*outhook.Subscription {
	out := make([]*outhook.Subscription, len(subs))
	for i, s := range subs {
		out[i] = cloneSubscription(s)
	}
	return out
}

func cloneDeliveries(ds []*outhook.Delivery) []*outhook.Delivery {
	out := make([]*outhook.Delivery, len(ds))
	for i, d := range ds {
		out[i] = cloneDelivery(d)
	}
	return out
}
