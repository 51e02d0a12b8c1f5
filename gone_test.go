package outhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
	"github.com/stretchr/testify/require"
)

// goneDeliverer answers like an endpoint that was deleted.
type goneDeliverer struct{ *outhooktest.Deliverer }

func (g goneDeliverer) Deliver(ctx context.Context, req *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	_, _ = g.Deliverer.Deliver(ctx, req)
	return outhook.DeliveryResult{StatusCode: 410}, outhook.Gone(errors.New("410 Gone"))
}

func TestGoneDisablesTheSubscription(t *testing.T) {
	gone := goneDeliverer{outhooktest.NewDeliverer("gone")}
	c, _ := setup(t, &outhook.Config{Deliverers: []outhook.Deliverer{gone}})
	sub := subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}, DelivererID: "gone"})
	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	outhooktest.WaitIdle(t, c)

	ds, err := c.Deliveries(context.Background(), outhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	require.Equal(t, outhook.DeliveryFailed, ds[0].Status)
	require.Len(t, ds[0].Attempts, 1, "gone is not retried")
	require.Equal(t, outhook.AttemptPermanent, ds[0].Attempts[0].Outcome)

	got, err := c.Subscription(context.Background(), sub.ID)
	require.NoError(t, err)
	require.True(t, got.Disabled)
	require.Equal(t, "destination gone: 410 Gone", got.DisabledReason)

	emit(t, c, incidentCreated, sampleIncident("inc-2"))
	outhooktest.WaitIdle(t, c)
	require.Len(t, gone.Calls(), 1, "a disabled subscription receives nothing")

	got, err = c.SetSubscriptionEnabled(context.Background(), sub.ID, true)
	require.NoError(t, err)
	require.False(t, got.Disabled)
	require.Empty(t, got.DisabledReason)
}

// classedError carries an error class, as safehttp's errors do.
type classedError struct{ class string }

func (e classedError) Error() string      { return "dial tcp: connection refused" }
func (e classedError) ErrorClass() string { return e.class }

func TestAttemptErrorClass(t *testing.T) {
	c, fake := setup(t, &outhook.Config{DeliveryRetry: outhooktest.NoDelay(3)})
	fake.Script(
		outhooktest.FailRetryable(classedError{class: outhook.ErrorClassConnect}),
		outhooktest.FailRetryable(context.DeadlineExceeded),
		outhooktest.FailPermanent(errors.New("bad config")),
	)
	subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	outhooktest.WaitIdle(t, c)
	ds, err := c.Deliveries(context.Background(), outhook.DeliveryQuery{})
	require.NoError(t, err)
	var classes []string
	for _, a := range ds[0].Attempts {
		classes = append(classes, a.ErrorClass)
	}
	require.Equal(t, []string{"connect", "timeout", "deliverer"}, classes)
}

func TestSendTest(t *testing.T) {
	c, fake := setup(t, nil)
	ctx := context.Background()
	sub := subscribe(t, c, outhook.Subscription{Events: []string{"incident.**"}, Disabled: true})

	a, err := c.SendTest(ctx, sub.ID)
	require.NoError(t, err)
	require.Equal(t, outhook.TriggerTest, a.Trigger)
	require.Equal(t, outhook.AttemptSucceeded, a.Outcome)
	calls := fake.Calls()
	require.Len(t, calls, 1)
	req := calls[0].Request
	require.Equal(t, createdEvent, req.EventID, "the first registered event the subscription selects")
	require.Equal(t, "Incident Created", req.Event.DisplayName)
	var payload map[string]any
	require.NoError(t, json.Unmarshal(req.Payload, &payload))
	require.Equal(t, true, payload["test"])
	require.Equal(t, sub.ID, payload["subscriptionId"])

	fake.Script(outhooktest.FailPermanent(errors.New("401 Unauthorized")))
	a, err = c.SendTest(ctx, sub.ID)
	require.ErrorContains(t, err, "401 Unauthorized")
	require.Equal(t, outhook.AttemptPermanent, a.Outcome)
	require.Equal(t, "401 Unauthorized", a.Error)

	outhooktest.WaitIdle(t, c)
	ds, err := c.Deliveries(ctx, outhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Empty(t, ds, "tests are not stored or queued")

	_, err = c.SendTest(ctx, "sub_missing")
	require.ErrorIs(t, err, outhook.ErrNotFound)
}
