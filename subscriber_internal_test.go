package outhook

import (
	"context"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

func TestTextCacheSharesEqualTexts(t *testing.T) {
	var c textCache
	text := func() string { return strings.Repeat("dial tcp 127.0.0.1:9: connect: connection refused ", 2) }
	first := c.intern(text())
	second := c.intern(text())
	require.Equal(t, text(), second)
	require.Same(t, unsafe.StringData(first), unsafe.StringData(second), "an equal text is shared")
	other := c.intern("another error")
	require.Equal(t, "another error", other)
	require.Empty(t, c.intern(""))
}

// TestDeliveryStateAgreesWithGetDelivery: the state the delivery worker
// reads from a MemoryStore without copying is the state of GetDelivery.
func TestDeliveryStateAgreesWithGetDelivery(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore(nil)
	d := &Delivery{ID: "dlv_1", MessageID: "msg_1", EventID: "a.b", SubscriptionID: "sub_1", Status: DeliveryPending,
		Payload: []byte(`{}`)}
	require.NoError(t, s.CreateDeliveries(ctx, []*Delivery{d}))
	for i, trig := range []AttemptTrigger{TriggerScheduled, TriggerScheduled, TriggerManual, TriggerScheduled} {
		u := DeliveryUpdate{Status: DeliveryPending, LastError: "boom", NextAttemptTrigger: TriggerManual}
		require.NoError(t, s.UpdateDelivery(ctx, "dlv_1", &Attempt{Number: i + 1, Trigger: trig}, u))
		got, err := s.deliveryState("dlv_1")
		require.NoError(t, err)
		full, err := s.GetDelivery(ctx, "dlv_1")
		require.NoError(t, err)
		require.Equal(t, stateOf(full), got)
		require.Equal(t, i+1, got.attempts)
	}
	st, _ := s.deliveryState("dlv_1")
	require.Equal(t, 3, st.round(&Attempt{Trigger: TriggerScheduled}), "two attempts since the manual one, that one included")
	require.Equal(t, 1, st.round(&Attempt{Trigger: TriggerManual}))
	_, err := s.deliveryState("dlv_missing")
	require.ErrorIs(t, err, ErrNotFound)
}
