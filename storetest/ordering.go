package storetest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
)

// orderingTests check Store.FirstPending and the ordering key a delivery
// keeps (see outhook.EventDefinition.OrderingKey).
var orderingTests = []test{
	{"FirstPendingEmitOrder", testFirstPendingEmitOrder},
	{"FirstPendingFollowsStatus", testFirstPendingFollowsStatus},
	{"OrderingKeyKept", testOrderingKeyKept},
}

// keyed is a pending delivery of ordering key key, emitted at base plus
// the given seconds.
func keyed(id, messageID, subID, key string, emitted int) *outhook.Delivery {
	d := newDelivery(id, messageID, "incident.incident.created", subID, at(emitted+10))
	d.OrderingKey = key
	d.OccurredAt = at(emitted)
	return d
}

func firstPending(t *testing.T, s outhook.Store, subID, key string) string {
	t.Helper()
	h, err := s.FirstPending(t.Context(), subID, key)
	require.NoError(t, err, "FirstPending(%q, %q)", subID, key)
	if h == nil {
		return ""
	}
	return h.ID
}

// testFirstPendingEmitOrder: the first pending delivery is the earliest
// emitted (OccurredAt), then the lowest message ID, then the lowest ID,
// whatever the order of creation; lanes are per subscription and key.
func testFirstPendingEmitOrder(t *testing.T, s outhook.Store) {
	require.Empty(t, firstPending(t, s, "sub_1", "inc-1"), "an empty store")
	createDeliveries(t, s,
		keyed("dlv_c", "msg_3", "sub_1", "inc-1", 3),
		keyed("dlv_b", "msg_2", "sub_1", "inc-1", 2),
		keyed("dlv_x", "msg_1", "sub_1", "inc-2", 1),                               // another key
		keyed("dlv_y", "msg_1", "sub_2", "inc-1", 1),                               // another subscription
		newDelivery("dlv_z", "msg_0", "incident.incident.created", "sub_1", at(0)), // no key
	)
	require.Equal(t, "dlv_b", firstPending(t, s, "sub_1", "inc-1"))
	require.Equal(t, "dlv_x", firstPending(t, s, "sub_1", "inc-2"))
	require.Equal(t, "dlv_y", firstPending(t, s, "sub_2", "inc-1"))
	require.Empty(t, firstPending(t, s, "sub_1", "inc-3"))
	require.Empty(t, firstPending(t, s, "sub_3", "inc-1"))

	// Emitted at the same instant: the message ID decides, then the ID.
	createDeliveries(t, s, keyed("dlv_e", "msg_5", "sub_1", "inc-1", 1), keyed("dlv_d", "msg_4", "sub_1", "inc-1", 1))
	require.Equal(t, "dlv_d", firstPending(t, s, "sub_1", "inc-1"))
	createDeliveries(t, s, keyed("dlv_a", "msg_4", "sub_1", "inc-1", 1))
	require.Equal(t, "dlv_a", firstPending(t, s, "sub_1", "inc-1"))

	h, err := s.FirstPending(t.Context(), "sub_1", "inc-1")
	require.NoError(t, err)
	requireTime(t, at(11), h.NextAttemptAt, "NextAttemptAt")
}

// testFirstPendingFollowsStatus: a delivery that ends leaves its lane, a
// retried one stays at its head with its new NextAttemptAt, and a reopened
// one comes back at its place in emit order.
func testFirstPendingFollowsStatus(t *testing.T, s outhook.Store) {
	d1, d2, d3 := keyed("dlv_1", "msg_1", "sub_1", "k", 1), keyed("dlv_2", "msg_2", "sub_1", "k", 2), keyed("dlv_3", "msg_3", "sub_1", "k", 3)
	createDeliveries(t, s, d1, d2, d3)
	require.Equal(t, "dlv_1", firstPending(t, s, "sub_1", "k"))

	finish(t, s, d1, outhook.DeliveryPending, at(20)) // a retryable failure
	h, err := s.FirstPending(t.Context(), "sub_1", "k")
	require.NoError(t, err)
	require.Equal(t, "dlv_1", h.ID, "a retried delivery keeps its turn")
	requireTime(t, at(25), h.NextAttemptAt, "NextAttemptAt after the retryable failure")

	finish(t, s, d1, outhook.DeliveryFailed, at(30))
	require.Equal(t, "dlv_2", firstPending(t, s, "sub_1", "k"), "after the head failed for good")
	finish(t, s, d2, outhook.DeliverySucceeded, at(31))
	require.Equal(t, "dlv_3", firstPending(t, s, "sub_1", "k"), "after the next succeeded")

	_, err = s.ReopenDelivery(t.Context(), "dlv_1", at(40))
	require.NoError(t, err)
	require.Equal(t, "dlv_1", firstPending(t, s, "sub_1", "k"), "a redelivered delivery takes its place in emit order again")
	d1.Status = outhook.DeliveryPending
	finish(t, s, d1, outhook.DeliverySucceeded, at(41))
	finish(t, s, d3, outhook.DeliverySucceeded, at(42))
	require.Empty(t, firstPending(t, s, "sub_1", "k"), "every delivery ended")
}

// testOrderingKeyKept: a delivery's ordering key reads back as stored, in
// every read, text beyond ASCII included.
func testOrderingKeyKept(t *testing.T, s outhook.Store) {
	d := keyed("dlv_1", "msg_1", "sub_1", `inc "1" — 日本`, 1)
	createDeliveries(t, s, d)
	require.Equal(t, d.OrderingKey, getDelivery(t, s, "dlv_1").OrderingKey, "GetDelivery")
	ds, err := s.ListDeliveries(t.Context(), outhook.DeliveryQuery{SubscriptionID: "sub_1"})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	require.Equal(t, d.OrderingKey, ds[0].OrderingKey, "ListDeliveries")
	require.Equal(t, "dlv_1", firstPending(t, s, "sub_1", d.OrderingKey))
}
