package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/stretchr/testify/require"
)

// statsTests check outhook.DeliveryCounter, which a store may leave out:
// they are skipped for a store that does not implement it (the client then
// counts by listing).
var statsTests = []test{
	{"CountByGroup", testCountByGroup},
	{"CountOneSubscription", testCountOneSubscription},
	{"CountTimeRange", testCountTimeRange},
	{"CountFollowsStatus", testCountFollowsStatus},
}

// counter returns s as a DeliveryCounter, or skips the test.
func counter(t *testing.T, s outhook.Store) outhook.DeliveryCounter {
	t.Helper()
	c, ok := s.(outhook.DeliveryCounter)
	if !ok {
		t.Skipf("%T does not implement outhook.DeliveryCounter (optional)", s)
	}
	return c
}

// groupKey is a DeliveryCount without its Count.
type groupKey struct {
	event, sub, deliverer string
	status                outhook.DeliveryStatus
}

func (k groupKey) String() string {
	return fmt.Sprintf("(event %q, subscription %q, deliverer %q, %s)", k.event, k.sub, k.deliverer, k.status)
}

// countDeliveries calls CountDeliveries and returns its groups as a map,
// checking that each group comes once, with a positive count.
func countDeliveries(t *testing.T, c outhook.DeliveryCounter, q outhook.DeliveryCountQuery) map[groupKey]int {
	t.Helper()
	got, err := c.CountDeliveries(t.Context(), q)
	require.NoError(t, err, "CountDeliveries(%+v)", q)
	out := map[groupKey]int{}
	for _, g := range got {
		k := groupKey{g.EventID, g.SubscriptionID, g.DelivererID, g.Status}
		_, dup := out[k]
		require.Falsef(t, dup, "CountDeliveries(%+v) returned the group %s twice", q, k)
		require.Positivef(t, g.Count, "CountDeliveries(%+v): group %s: a returned group has deliveries", q, k)
		out[k] = g.Count
	}
	return out
}

// tally is what CountDeliveries must return for ds, those for which keep
// returns true.
func tally(ds []*outhook.Delivery, keep func(*outhook.Delivery) bool) map[groupKey]int {
	out := map[groupKey]int{}
	for _, d := range ds {
		if keep == nil || keep(d) {
			out[groupKey{d.EventID, d.SubscriptionID, d.DelivererID, d.Status}]++
		}
	}
	return out
}

// statsFixture stores deliveries of two events to three subscriptions (two
// of whose IDs differ only in case) through two deliverers, at every
// status, and returns them as stored.
func statsFixture(t *testing.T, s outhook.Store) []*outhook.Delivery {
	t.Helper()
	subs := []string{"sub_1", "SUB_1", "sub_2"}
	events := []string{"incident.incident.created", "maintenance.started"}
	statuses := []outhook.DeliveryStatus{outhook.DeliveryPending, outhook.DeliverySucceeded, outhook.DeliveryFailed,
		outhook.DeliverySucceeded, outhook.DeliverySucceeded}
	var ds []*outhook.Delivery
	for i := range 23 {
		d := newDelivery(fmt.Sprintf("dlv_%02d", i), fmt.Sprint("msg_", i/2), events[i%len(events)], subs[i%len(subs)], at(i))
		if i%4 == 3 {
			d.DelivererID = "slack"
		}
		ds = append(ds, d)
	}
	createDeliveries(t, s, ds...)
	for i, d := range ds {
		if st := statuses[i%len(statuses)]; st != outhook.DeliveryPending {
			finish(t, s, d, st, at(i+1))
		}
	}
	return ds
}

// testCountByGroup: every delivery is counted once, in the group of its
// event, subscription, deliverer and status; IDs that differ only in case
// are different groups. An empty store counts nothing.
func testCountByGroup(t *testing.T, s outhook.Store) {
	c := counter(t, s)
	require.Empty(t, countDeliveries(t, c, outhook.DeliveryCountQuery{}), "an empty store")
	ds := statsFixture(t, s)
	want := tally(ds, nil)
	// 18 groups, some of several deliveries: a count that leaves out any
	// of the four columns merges some of them.
	require.Len(t, want, 18)
	require.Equal(t, want, countDeliveries(t, c, outhook.DeliveryCountQuery{}), "every delivery")
	require.Equal(t, want, countDeliveries(t, c, outhook.DeliveryCountQuery{Since: at(-100), Until: at(100)}),
		"every delivery, in a range that holds them all")

	// More in a group.
	more := []*outhook.Delivery{
		newDelivery("dlv_a", "msg_a", "incident.incident.created", "sub_1", at(0)),
		newDelivery("dlv_b", "msg_b", "incident.incident.created", "sub_1", at(0)),
		newDelivery("dlv_c", "msg_c", "incident.incident.created", "sub_1", at(50)),
	}
	createDeliveries(t, s, more...)
	ds = append(ds, more...)
	require.Equal(t, tally(ds, nil), countDeliveries(t, c, outhook.DeliveryCountQuery{}), "with groups of several")
}

// testCountOneSubscription: SubscriptionID counts that subscription's
// deliveries only, by exact ID; an ID no delivery has counts nothing.
func testCountOneSubscription(t *testing.T, s outhook.Store) {
	c := counter(t, s)
	ds := statsFixture(t, s)
	for _, sub := range []string{"sub_1", "SUB_1", "sub_2"} {
		want := tally(ds, func(d *outhook.Delivery) bool { return d.SubscriptionID == sub })
		require.NotEmpty(t, want)
		require.Equal(t, want, countDeliveries(t, c, outhook.DeliveryCountQuery{SubscriptionID: sub}), "subscription %q", sub)
	}
	want := tally(ds, func(d *outhook.Delivery) bool {
		return d.SubscriptionID == "sub_2" && !d.CreatedAt.Before(at(5)) && d.CreatedAt.Before(at(15))
	})
	require.NotEmpty(t, want)
	require.Equal(t, want, countDeliveries(t, c, outhook.DeliveryCountQuery{SubscriptionID: "sub_2", Since: at(5), Until: at(15)}),
		"subscription sub_2 in a range")
	for _, sub := range []string{"sub_missing", "sub", "sub_1 ", "bad\x00id", "bad\xffid"} {
		require.Empty(t, countDeliveries(t, c, outhook.DeliveryCountQuery{SubscriptionID: sub}), "subscription %q has no deliveries", sub)
	}
}

// testCountTimeRange: Since is included and Until excluded, at the
// microsecond; a zero bound leaves its side open; an empty or inverted
// range counts nothing.
func testCountTimeRange(t *testing.T, s outhook.Store) {
	c := counter(t, s)
	created := []time.Time{base, base.Add(time.Microsecond), base.Add(2 * time.Microsecond).In(ist), at(1), at(2)}
	var ds []*outhook.Delivery
	for i, tm := range created {
		ds = append(ds, newDelivery(fmt.Sprint("d", i), fmt.Sprint("m", i), "a.created", fmt.Sprint("s", i%2), tm))
	}
	createDeliveries(t, s, ds...)
	// Bounds the store keeps as they are, read back (see ListTimeRange).
	stored := func(i int) time.Time { return getDelivery(t, s, fmt.Sprint("d", i)).CreatedAt }
	count := func(q outhook.DeliveryCountQuery) int {
		n := 0
		for _, v := range countDeliveries(t, c, q) {
			n += v
		}
		return n
	}
	cases := []struct {
		q    outhook.DeliveryCountQuery
		want int
	}{
		{outhook.DeliveryCountQuery{Since: stored(1)}, 4},
		{outhook.DeliveryCountQuery{Until: stored(1)}, 1},
		{outhook.DeliveryCountQuery{Since: stored(1), Until: stored(2)}, 1},
		{outhook.DeliveryCountQuery{Since: stored(1), Until: stored(4)}, 3},
		{outhook.DeliveryCountQuery{Since: stored(2), Until: stored(2)}, 0},
		{outhook.DeliveryCountQuery{Since: stored(4), Until: stored(1)}, 0},
		{outhook.DeliveryCountQuery{Since: stored(0), Until: stored(4), SubscriptionID: "s1"}, 2},
		{outhook.DeliveryCountQuery{Since: at(100)}, 0},
		{outhook.DeliveryCountQuery{Until: at(-100)}, 0},
		{outhook.DeliveryCountQuery{}, 5},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, count(tc.q), "CountDeliveries(%+v): the number of deliveries counted", tc.q)
	}
}

// testCountFollowsStatus: a delivery is counted at its status now: after
// an update and after a reopen.
func testCountFollowsStatus(t *testing.T, s outhook.Store) {
	c := counter(t, s)
	d := newDelivery("dlv_1", "msg_1", "incident.incident.created", "sub_1", at(0))
	createDeliveries(t, s, d)
	key := func(st outhook.DeliveryStatus) groupKey {
		return groupKey{"incident.incident.created", "sub_1", "webhook", st}
	}
	require.Equal(t, map[groupKey]int{key(outhook.DeliveryPending): 1}, countDeliveries(t, c, outhook.DeliveryCountQuery{}), "created")
	finish(t, s, d, outhook.DeliveryPending, at(1)) // a retryable failure: still pending
	require.Equal(t, map[groupKey]int{key(outhook.DeliveryPending): 1}, countDeliveries(t, c, outhook.DeliveryCountQuery{}), "after a retryable failure")
	finish(t, s, d, outhook.DeliveryFailed, at(2))
	require.Equal(t, map[groupKey]int{key(outhook.DeliveryFailed): 1}, countDeliveries(t, c, outhook.DeliveryCountQuery{}), "failed")
	_, err := s.ReopenDelivery(t.Context(), d.ID, at(3))
	require.NoError(t, err)
	require.Equal(t, map[groupKey]int{key(outhook.DeliveryPending): 1}, countDeliveries(t, c, outhook.DeliveryCountQuery{}), "reopened")
	d.Status = outhook.DeliveryPending
	finish(t, s, d, outhook.DeliverySucceeded, at(4))
	require.Equal(t, map[groupKey]int{key(outhook.DeliverySucceeded): 1}, countDeliveries(t, c, outhook.DeliveryCountQuery{}), "succeeded")
}
