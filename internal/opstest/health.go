package opstest

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
)

// testHealthDisable: a subscription whose deliveries fail for good
// Config.DisableAfterFailures times in a row is disabled, with its health
// and reason stored; the operational event outhook.subscription.disabled
// reaches a subscription to it (and the deliveries' exhaustion events, to
// a pattern), and never feeds itself; a disabled subscription gets no new
// deliveries; enabling it starts its health afresh.
func (s *suite) testHealthDisable(t *testing.T) {
	q, store := s.newParts(t)
	failing := outhooktest.NewDeliverer("fake").SetDefault(outhooktest.FailPermanent(nil))
	ops := outhooktest.NewDeliverer("ops")
	c := outhooktest.NewClient(t, &outhook.Config{Registry: newRegistry(), Queue: q, Store: store,
		Deliverers: []outhook.Deliverer{failing, ops}, DisableAfterFailures: 2})
	e := &env{t: t, c: c, fake: failing}
	sub := e.subscribe(outhook.Subscription{Name: "partner", Events: []string{raisedEvent}})
	_, err := c.CreateSubscription(ctx(t), outhook.Subscription{Events: []string{"outhook.**"}, DelivererID: "ops"})
	require.NoError(t, err)

	for i := range 2 {
		e.emit(raised, alert(fmt.Sprint("a-", i)))
		e.wait() // one after the other: the second failure disables
	}
	got, err := c.Subscription(ctx(t), sub.ID)
	require.NoError(t, err)
	require.True(t, got.Disabled, "disabled after two failed deliveries")
	assert.Equal(t, "2 deliveries failed in a row", got.DisabledReason)
	assert.Equal(t, 2, got.Health.ConsecutiveFailures)
	assert.False(t, got.Health.FailingSince.IsZero())

	byEvent := map[string]int{}
	for _, call := range ops.Delivered() {
		byEvent[call.Request.EventID]++
		if call.Request.EventID == outhook.EventSubscriptionDisabled {
			var p outhook.SubscriptionHealthPayload
			require.NoError(t, json.Unmarshal(call.Request.Payload, &p))
			assert.Equal(t, sub.ID, p.SubscriptionID)
			assert.Equal(t, "partner", p.SubscriptionName)
			assert.Equal(t, outhook.DisabledFailures, p.Cause)
		}
	}
	assert.Equal(t, map[string]int{outhook.EventDeliveryExhausted: 2, outhook.EventSubscriptionDisabled: 1}, byEvent,
		"the operational events, each once")

	calls := len(failing.Calls())
	e.emit(raised, alert("a-2"))
	e.wait()
	assert.Len(t, failing.Calls(), calls, "a disabled subscription gets no new delivery")
	assert.Len(t, e.deliveries(outhook.DeliveryQuery{SubscriptionID: sub.ID}), 2)

	got, err = c.SetSubscriptionEnabled(ctx(t), sub.ID, true)
	require.NoError(t, err)
	assert.False(t, got.Disabled)
	assert.Zero(t, got.Health.ConsecutiveFailures, "enabling starts the health afresh")
}
