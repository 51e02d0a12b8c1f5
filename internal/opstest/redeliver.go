package opstest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
)

// testRedeliverAfterAbandoned: a redelivery that ends without an attempt
// (its subscription was disabled meanwhile) leaves the delivery failed with
// the same attempts; redelivering it again, at once, is attempted. Both
// redeliveries' jobs would have had the same ID when it was derived from
// the attempt count alone, and a queue that drops a job ID it has seen
// recently (JetStream's duplicate window) dropped the second: the delivery
// stayed pending with no job, for good.
func (s *suite) testRedeliverAfterAbandoned(t *testing.T) {
	e := s.client(t, nil)
	sub, ds := e.failAll(1)
	d := ds[0]
	_, err := e.c.SetSubscriptionEnabled(ctx(t), sub.ID, false)
	require.NoError(t, err)
	require.NoError(t, e.c.Redeliver(ctx(t), d.ID))
	e.wait()
	got := e.delivery(d.ID)
	require.Equal(t, outhook.DeliveryFailed, got.Status, "abandoned: its subscription is disabled")
	require.Len(t, got.Attempts, 1, "no attempt was made")

	_, err = e.c.SetSubscriptionEnabled(ctx(t), sub.ID, true)
	require.NoError(t, err)
	e.fake.SetDefault(outhooktest.Succeed())
	require.NoError(t, e.c.Redeliver(ctx(t), d.ID))
	e.wait()
	got = e.delivery(d.ID)
	require.Equal(t, outhook.DeliverySucceeded, got.Status, "the second redelivery is attempted")
	require.Len(t, got.Attempts, 2)
	require.Equal(t, outhook.TriggerManual, got.Attempts[1].Trigger)
}
