package outhook_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/memqueue"
	"github.com/outhook/outhook/outhooktest"
	"github.com/stretchr/testify/require"
)

// setup returns a started client with the incident events and one fake
// deliverer with ID "fake".
func setup(t *testing.T, cfg *outhook.Config) (*outhook.Client, *outhooktest.Deliverer) {
	t.Helper()
	fake := outhooktest.NewDeliverer("fake")
	if cfg == nil {
		cfg = &outhook.Config{}
	}
	if cfg.Registry == nil {
		cfg.Registry = newIncidentRegistry(t)
	}
	cfg.Deliverers = append(cfg.Deliverers, fake)
	return outhooktest.NewClient(t, cfg), fake
}

func subscribe(t *testing.T, c *outhook.Client, sub outhook.Subscription) outhook.Subscription {
	t.Helper()
	if sub.DelivererID == "" {
		sub.DelivererID = "fake"
	}
	s, err := c.CreateSubscription(context.Background(), sub)
	require.NoError(t, err)
	return s
}

func emit[T any](t *testing.T, c *outhook.Client, h outhook.Hook[T], p T) {
	t.Helper()
	require.NoError(t, outhook.EmitHook(context.Background(), c, h, p))
}

func TestEmitRoutesToMatchingSubscriptions(t *testing.T) {
	c, fake := setup(t, nil)
	exact := subscribe(t, c, outhook.Subscription{Name: "exact", Events: []string{createdEvent}})
	wild := subscribe(t, c, outhook.Subscription{Name: "all incident events", Events: []string{"incident.**"}})
	oneSeg := subscribe(t, c, outhook.Subscription{Name: "one segment", Events: []string{"incident.*"}})
	disabled := subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}, Disabled: true})
	filtered := subscribe(t, c, outhook.Subscription{Events: []string{createdEvent},
		Filter: &outhook.Filter{Field: "systemIds", AnyOf: []string{"sys-2", "sys-9"}}})
	scalar := subscribe(t, c, outhook.Subscription{Events: []string{createdEvent},
		Filter: &outhook.Filter{Field: "severity", AnyOf: []string{"critical"}}})
	resolvedOnly := subscribe(t, c, outhook.Subscription{Events: []string{resolvedEvent}})

	emit(t, c, incidentCreated, sampleIncident("inc-1", "sys-1"))
	emit(t, c, incidentCreated, sampleIncident("inc-2", "sys-1", "sys-2"))
	emit(t, c, incidentResolved, IncidentResolved{IncidentID: "inc-1", SystemIDs: []string{"sys-1"}})
	outhooktest.WaitIdle(t, c)

	perSub := map[string]int{}
	for _, call := range fake.Delivered() {
		perSub[call.Request.Subscription.ID]++
	}
	require.Equal(t, 2, perSub[exact.ID])
	require.Equal(t, 3, perSub[wild.ID])
	require.Zero(t, perSub[oneSeg.ID], `"incident.*" matches one segment only`)
	require.Zero(t, perSub[disabled.ID])
	require.Equal(t, 1, perSub[filtered.ID], "array filter matches inc-2 only")
	require.Equal(t, 2, perSub[scalar.ID])
	require.Equal(t, 1, perSub[resolvedOnly.ID])

	outhooktest.AssertDelivered(t, fake, resolvedEvent,
		IncidentResolved{IncidentID: "inc-1", SystemIDs: []string{"sys-1"}},
		IncidentResolved{IncidentID: "inc-1", SystemIDs: []string{"sys-1"}})

	// One delivery per (event, subscription), each with its own ID; the
	// deliveries of one event share its message ID.
	ids := map[string]bool{}
	byMessage := map[string]int{}
	for _, call := range fake.Calls() {
		require.False(t, ids[call.Request.DeliveryID], "delivery IDs are unique")
		ids[call.Request.DeliveryID] = true
		byMessage[call.Request.MessageID]++
		require.Equal(t, 1, call.Request.Attempt)
		require.False(t, call.Request.OccurredAt.IsZero())
	}
	require.Len(t, byMessage, 3)
}

func TestEmitInvalidPayloadQueuesNothing(t *testing.T) {
	c, fake := setup(t, nil)
	subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})

	err := outhook.EmitHook(context.Background(), c, incidentCreated, IncidentCreated{
		IncidentID: "inc-1", Severity: "apocalyptic", SystemIDs: []string{""},
	})
	require.ErrorIs(t, err, outhook.ErrInvalidPayload)
	var pe *outhook.PayloadError
	require.ErrorAs(t, err, &pe)
	var fields []string
	for _, f := range pe.Fields {
		fields = append(fields, f.Field)
	}
	require.ElementsMatch(t, []string{"systemIds[0]", "title", "severity"}, fields)
	require.Contains(t, err.Error(), `"incident.created"`)

	outhooktest.WaitIdle(t, c)
	require.Empty(t, fake.Calls())
	ds, err := c.Deliveries(context.Background(), outhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Empty(t, ds)
}

func TestEmitWithoutListenersIsNoop(t *testing.T) {
	c, fake := setup(t, &outhook.Config{Registry: outhook.NewEventRegistry()})
	unheard := outhook.MustNewHook[IncidentCreated]("nobody.listens")
	require.NoError(t, outhook.EmitHook(context.Background(), c, unheard, sampleIncident("inc-1")))
	outhooktest.WaitIdle(t, c)
	require.Empty(t, fake.Calls())
}

func TestEmitZeroHook(t *testing.T) {
	c, _ := setup(t, nil)
	err := outhook.EmitHook(context.Background(), c, outhook.Hook[IncidentCreated]{}, sampleIncident("x"))
	require.ErrorIs(t, err, outhook.ErrInvalidID)
}

func TestEmitAfterStop(t *testing.T) {
	c, err := outhook.NewClient(&outhook.Config{Logger: quiet, Registry: newIncidentRegistry(t)})
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background()))
	require.NoError(t, c.Stop(context.Background()))
	require.NoError(t, c.Stop(context.Background()), "Stop twice")
	require.ErrorIs(t, outhook.EmitHook(context.Background(), c, incidentCreated, sampleIncident("x")), outhook.ErrClosed)
	_, err = c.CreateSubscription(context.Background(), outhook.Subscription{Events: []string{createdEvent}})
	require.ErrorIs(t, err, outhook.ErrClosed)
	require.ErrorIs(t, c.Start(context.Background()), outhook.ErrClosed)
}

func TestRetryThenSucceed(t *testing.T) {
	c, fake := setup(t, nil)
	fake.Script(outhooktest.FailRetryable(errors.New("503 from receiver")), outhooktest.SucceedWith("ext-1"))
	sub := subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	outhooktest.WaitIdle(t, c)

	calls := fake.Calls()
	require.Len(t, calls, 2)
	require.Equal(t, calls[0].Request.DeliveryID, calls[1].Request.DeliveryID, "a retry keeps the delivery ID")
	require.Equal(t, []int{1, 2}, []int{calls[0].Request.Attempt, calls[1].Request.Attempt})

	d, err := c.Delivery(context.Background(), calls[0].Request.DeliveryID)
	require.NoError(t, err)
	require.Equal(t, outhook.DeliverySucceeded, d.Status)
	require.Equal(t, sub.ID, d.SubscriptionID)
	require.Equal(t, "ext-1", d.ExternalID)
	require.Len(t, d.Attempts, 2)
	require.Equal(t, outhook.AttemptRetryable, d.Attempts[0].Outcome)
	require.Equal(t, "503 from receiver", d.Attempts[0].Error)
	require.Equal(t, 503, d.Attempts[0].StatusCode)
	require.False(t, d.Attempts[0].NextAttemptAt.IsZero())
	require.Equal(t, outhook.AttemptSucceeded, d.Attempts[1].Outcome)
	require.True(t, d.Attempts[1].NextAttemptAt.IsZero())
	require.Equal(t, 2, d.Attempts[1].Number)
}

func TestPermanentFailureAndRedeliver(t *testing.T) {
	c, fake := setup(t, nil)
	fake.Script(outhooktest.FailPermanent(errors.New("400 bad request")))
	subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	outhooktest.WaitIdle(t, c)

	failed, err := c.Deliveries(context.Background(), outhook.DeliveryQuery{Status: outhook.DeliveryFailed})
	require.NoError(t, err)
	require.Len(t, failed, 1)
	d := failed[0]
	require.Len(t, d.Attempts, 1, "a permanent failure is not retried")
	require.Equal(t, outhook.AttemptPermanent, d.Attempts[0].Outcome)
	require.Equal(t, "400 bad request", d.LastError)

	require.NoError(t, c.Redeliver(context.Background(), d.ID))
	outhooktest.WaitIdle(t, c)
	got, err := c.Delivery(context.Background(), d.ID)
	require.NoError(t, err)
	require.Equal(t, outhook.DeliverySucceeded, got.Status)
	require.Len(t, got.Attempts, 2)
	calls := fake.Calls()
	require.Equal(t, d.ID, calls[1].Request.DeliveryID, "redelivery keeps the delivery ID")

	_, err = c.Delivery(context.Background(), "dlv_missing")
	require.ErrorIs(t, err, outhook.ErrNotFound)
	require.ErrorIs(t, c.Redeliver(context.Background(), "dlv_missing"), outhook.ErrNotFound)
}

func TestRetriesExhausted(t *testing.T) {
	c, fake := setup(t, &outhook.Config{DeliveryRetry: outhooktest.NoDelay(4)})
	fake.SetDefault(outhooktest.FailRetryable(nil))
	subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	outhooktest.WaitIdle(t, c)

	require.Len(t, fake.Calls(), 4)
	failed, err := c.Deliveries(context.Background(), outhook.DeliveryQuery{Status: outhook.DeliveryFailed})
	require.NoError(t, err)
	require.Len(t, failed, 1)
	require.Len(t, failed[0].Attempts, 4)
	for i, a := range failed[0].Attempts {
		require.Equal(t, i+1, a.Number)
		require.Equal(t, outhook.AttemptRetryable, a.Outcome)
	}
	require.True(t, failed[0].Attempts[3].NextAttemptAt.IsZero(), "the last attempt schedules nothing")
}

func TestDelivererPanicIsAFailedAttempt(t *testing.T) {
	c, fake := setup(t, nil)
	fake.Script(outhooktest.Panic("deliverer bug"))
	subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	outhooktest.WaitIdle(t, c)

	ds, err := c.Deliveries(context.Background(), outhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	require.Equal(t, outhook.DeliverySucceeded, ds[0].Status)
	require.Len(t, ds[0].Attempts, 2)
	require.Equal(t, outhook.AttemptRetryable, ds[0].Attempts[0].Outcome)
	require.Contains(t, ds[0].Attempts[0].Error, "panicked: deliverer bug")
}

func TestRetryAfterIsRecorded(t *testing.T) {
	c, fake := setup(t, nil)
	fake.Script(outhooktest.FailRetryAfter(errors.New("429"), 30*time.Millisecond))
	subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	outhooktest.WaitIdle(t, c)

	ds, err := c.Deliveries(context.Background(), outhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	first, second := ds[0].Attempts[0], ds[0].Attempts[1]
	require.Equal(t, 30*time.Millisecond, first.RetryAfter)
	end := first.StartedAt.Add(first.Duration)
	require.GreaterOrEqual(t, first.NextAttemptAt.Sub(end), 30*time.Millisecond, "Retry-After delays the retry")
	require.False(t, second.StartedAt.Before(first.NextAttemptAt), "the retry did not run early")
}

func TestDeliveryTimeout(t *testing.T) {
	c, fake := setup(t, &outhook.Config{DeliveryTimeout: 20 * time.Millisecond})
	fake.Script(outhooktest.Block())
	subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	outhooktest.WaitIdle(t, c)

	ds, err := c.Deliveries(context.Background(), outhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Equal(t, outhook.DeliverySucceeded, ds[0].Status)
	require.Contains(t, ds[0].Attempts[0].Error, context.DeadlineExceeded.Error())
}

func TestTransformRunsOncePerEvent(t *testing.T) {
	reg := outhook.NewEventRegistry()
	var calls atomic.Int32
	_, err := outhook.RegisterEvent(reg, outhook.EventDefinition[IncidentCreated]{
		Hook: incidentCreated, DisplayName: "Incident Created",
		TransformPayload: func(p IncidentCreated) (map[string]any, error) {
			calls.Add(1)
			return map[string]any{"id": p.IncidentID, "type": "INCIDENT_CREATED", "system_ids": p.SystemIDs}, nil
		},
	}, incidentPlugin)
	require.NoError(t, err)
	c, fake := setup(t, &outhook.Config{Registry: reg})
	for range 3 {
		subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	}
	// Filters see the transformed payload.
	subscribe(t, c, outhook.Subscription{Events: []string{createdEvent},
		Filter: &outhook.Filter{Field: "system_ids", AnyOf: []string{"sys-1"}}})
	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	outhooktest.WaitIdle(t, c)

	require.EqualValues(t, 1, calls.Load())
	type external struct {
		ID        string   `json:"id"`
		Type      string   `json:"type"`
		SystemIDs []string `json:"system_ids"`
	}
	want := external{ID: "inc-1", Type: "INCIDENT_CREATED", SystemIDs: []string{"sys-1"}}
	outhooktest.AssertDelivered(t, fake, createdEvent, want, want, want, want)
}

func TestTransformFailureIsRetriedAndRecorded(t *testing.T) {
	reg := outhook.NewEventRegistry()
	var calls atomic.Int32
	_, err := outhook.RegisterEvent(reg, outhook.EventDefinition[IncidentCreated]{
		Hook: incidentCreated, DisplayName: "Incident Created",
		TransformPayload: func(p IncidentCreated) (map[string]any, error) {
			n := calls.Add(1)
			switch {
			case p.IncidentID == "always-bad":
				return nil, errors.New("cannot transform")
			case n == 1:
				panic("transform bug")
			}
			return map[string]any{"id": p.IncidentID}, nil
		},
	}, incidentPlugin)
	require.NoError(t, err)
	c, fake := setup(t, &outhook.Config{Registry: reg, HandlerRetry: outhooktest.NoDelay(3)})
	subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})

	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	outhooktest.WaitIdle(t, c)
	require.EqualValues(t, 2, calls.Load(), "a panic is retried")
	require.Len(t, fake.Delivered(), 1)

	emit(t, c, incidentCreated, sampleIncident("always-bad"))
	outhooktest.WaitIdle(t, c)
	require.Len(t, fake.Delivered(), 1)
	failed, err := c.FailedEvents(context.Background(), 10)
	require.NoError(t, err)
	require.Len(t, failed, 1)
	require.Equal(t, "integration."+createdEvent, failed[0].Group)
	require.Equal(t, "incident.created", failed[0].HookID)
	require.Equal(t, 3, failed[0].Attempts)
	require.Len(t, failed[0].Errors, 3)
	require.Contains(t, failed[0].Errors[2].Error, "cannot transform")
	require.Contains(t, string(failed[0].Payload), "always-bad")
}

func TestRegisterEventAfterStart(t *testing.T) {
	reg := outhook.NewEventRegistry()
	c, fake := setup(t, &outhook.Config{Registry: reg})
	_, err := outhook.RegisterEvent(reg, outhook.EventDefinition[IncidentCreated]{
		Hook: incidentCreated, DisplayName: "Incident Created"}, incidentPlugin)
	require.NoError(t, err)
	subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	emit(t, c, incidentCreated, sampleIncident("late"))
	outhooktest.WaitIdle(t, c)
	require.Len(t, fake.Delivered(), 1)
}

// gatedDeliverer fails its first attempt only once the test opens the gate.
type gatedDeliverer struct {
	*outhooktest.Deliverer
	entered, gate chan struct{}
	once          atomic.Bool
}

func (g *gatedDeliverer) Deliver(ctx context.Context, req *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	if g.once.CompareAndSwap(false, true) {
		close(g.entered)
		<-g.gate
		return outhook.DeliveryResult{}, errors.New("first attempt fails")
	}
	return g.Deliverer.Deliver(ctx, req)
}

func TestDisabledSubscriptionEndsPendingDelivery(t *testing.T) {
	gated := &gatedDeliverer{Deliverer: outhooktest.NewDeliverer("gated"), entered: make(chan struct{}), gate: make(chan struct{})}
	c, fake := setup(t, &outhook.Config{Deliverers: []outhook.Deliverer{gated}})
	ctx := context.Background()
	sub := subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}, DelivererID: "gated"})
	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	<-gated.entered
	_, err := c.SetSubscriptionEnabled(ctx, sub.ID, false)
	require.NoError(t, err)
	close(gated.gate)
	outhooktest.WaitIdle(t, c)

	ds, err := c.Deliveries(ctx, outhook.DeliveryQuery{SubscriptionID: sub.ID})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	require.Equal(t, outhook.DeliveryFailed, ds[0].Status)
	require.Equal(t, "subscription is disabled", ds[0].LastError)
	require.Len(t, ds[0].Attempts, 1, "no attempt is made for a disabled subscription")

	// Enabled again, redelivery goes through.
	_, err = c.SetSubscriptionEnabled(ctx, sub.ID, true)
	require.NoError(t, err)
	require.NoError(t, c.Redeliver(ctx, ds[0].ID))
	outhooktest.WaitIdle(t, c)
	require.Len(t, gated.Delivered(), 1)
	require.Empty(t, fake.Calls())

	require.NoError(t, c.DeleteSubscription(ctx, sub.ID))
	_, err = c.Subscription(ctx, sub.ID)
	require.ErrorIs(t, err, outhook.ErrNotFound)
	require.ErrorIs(t, c.DeleteSubscription(ctx, sub.ID), outhook.ErrNotFound)
	require.NoError(t, c.Redeliver(ctx, ds[0].ID))
	outhooktest.WaitIdle(t, c)
	d, err := c.Delivery(ctx, ds[0].ID)
	require.NoError(t, err)
	require.Equal(t, outhook.DeliveryFailed, d.Status)
	require.Equal(t, "subscription was deleted", d.LastError)
}

func TestQueueFullBlocksUntilContextDone(t *testing.T) {
	q, err := memqueue.New(&memqueue.Config{Capacity: 1, Logger: quiet})
	require.NoError(t, err)
	fake := outhooktest.NewDeliverer("fake")
	c, err := outhook.NewClient(&outhook.Config{Logger: quiet, Registry: newIncidentRegistry(t), Queue: q, Deliverers: []outhook.Deliverer{fake}})
	require.NoError(t, err)
	_, err = c.CreateSubscription(context.Background(), outhook.Subscription{Events: []string{createdEvent}, DelivererID: "fake"})
	require.NoError(t, err)

	// Not started: the first event fills the queue.
	require.NoError(t, outhook.EmitHook(context.Background(), c, incidentCreated, sampleIncident("inc-1")))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err = outhook.EmitHook(ctx, c, incidentCreated, sampleIncident("inc-2"))
	require.ErrorIs(t, err, context.DeadlineExceeded)

	require.NoError(t, c.Start(context.Background()))
	outhooktest.WaitIdle(t, c)
	outhooktest.AssertDelivered(t, fake, createdEvent, sampleIncident("inc-1"))
	require.NoError(t, c.Stop(context.Background()))
}

func TestStopDrainsEmittedEvents(t *testing.T) {
	fake := outhooktest.NewDeliverer("fake")
	c, err := outhook.NewClient(&outhook.Config{Logger: quiet, Registry: newIncidentRegistry(t), Deliverers: []outhook.Deliverer{fake}})
	require.NoError(t, err)
	_, err = c.CreateSubscription(context.Background(), outhook.Subscription{Events: []string{createdEvent}, DelivererID: "fake"})
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background()))
	for i := range 50 {
		emit(t, c, incidentCreated, sampleIncident("inc-"+string(rune('A'+i))))
	}
	require.NoError(t, c.Stop(context.Background()))
	require.Len(t, fake.Delivered(), 50)
}

func TestStopCancelsStuckDelivery(t *testing.T) {
	fake := outhooktest.NewDeliverer("fake").SetDefault(outhooktest.Block())
	c, err := outhook.NewClient(&outhook.Config{Logger: quiet, Registry: newIncidentRegistry(t), Deliverers: []outhook.Deliverer{fake}})
	require.NoError(t, err)
	_, err = c.CreateSubscription(context.Background(), outhook.Subscription{Events: []string{createdEvent}, DelivererID: "fake"})
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background()))
	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, fake.WaitCalls(ctx, 1))

	stopCtx, stopCancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer stopCancel()
	require.ErrorIs(t, c.Stop(stopCtx), context.DeadlineExceeded)
	// The attempt cut short by shutdown is not recorded as a failure.
	ds, err := c.Deliveries(context.Background(), outhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	require.Equal(t, outhook.DeliveryPending, ds[0].Status)
	require.Empty(t, ds[0].Attempts)
}
