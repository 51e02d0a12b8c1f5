package outhook_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
	"github.com/stretchr/testify/require"
)

// healthSetup makes a client whose "fake" deliverer does what the test
// scripts, and an "ops" subscription to every operational event, through a
// deliverer of its own that always succeeds.
func healthSetup(t *testing.T, cfg outhook.Config) (c *outhook.Client, fake, ops *outhooktest.Deliverer) {
	t.Helper()
	ops = outhooktest.NewDeliverer("ops")
	cfg.Deliverers = append(cfg.Deliverers, ops)
	if cfg.DeliveryRetry.NewBackOff == nil {
		cfg.DeliveryRetry = outhooktest.NoDelay(1) // one attempt: each failure ends its delivery
	}
	c, fake = setup(t, &cfg)
	subscribe(t, c, outhook.Subscription{Name: "ops", Events: []string{"outhook.**"}, DelivererID: "ops"})
	return c, fake, ops
}

// clock is a test clock for endpoint health.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func getSubscription(t *testing.T, c *outhook.Client, id string) outhook.Subscription {
	t.Helper()
	s, err := c.Subscription(context.Background(), id)
	require.NoError(t, err)
	return s
}

// deliverOne emits one incident and waits until everything it caused is
// done.
func deliverOne(t *testing.T, c *outhook.Client, id string) {
	t.Helper()
	emit(t, c, incidentCreated, sampleIncident(id))
	outhooktest.WaitIdle(t, c)
}

func TestHealthDisablesAfterFailures(t *testing.T) {
	c, fake, ops := healthSetup(t, outhook.Config{DisableAfterFailures: 3})
	fake.SetDefault(outhooktest.FailRetryable(errors.New("503 Service Unavailable")))
	sub := subscribe(t, c, outhook.Subscription{Name: "crm", Events: []string{createdEvent}})

	for i, id := range []string{"inc-1", "inc-2"} {
		deliverOne(t, c, id)
		got := getSubscription(t, c, sub.ID)
		require.False(t, got.Disabled)
		require.Equal(t, i+1, got.Health.ConsecutiveFailures)
		require.False(t, got.Health.FailingSince.IsZero())
	}
	deliverOne(t, c, "inc-3")
	got := getSubscription(t, c, sub.ID)
	require.True(t, got.Disabled, "the third failed delivery in a row disables it")
	require.Equal(t, "3 deliveries failed in a row", got.DisabledReason)
	require.Equal(t, 3, got.Health.ConsecutiveFailures)

	exhausted := outhooktest.DeliveredTo[outhook.DeliveryHealthPayload](t, ops, outhook.EventDeliveryExhausted)
	require.Len(t, exhausted, 3, "one per delivery that failed for good")
	e := exhausted[2]
	require.Equal(t, createdEvent, e.EventID)
	require.Equal(t, sub.ID, e.SubscriptionID)
	require.Equal(t, "crm", e.SubscriptionName)
	require.Equal(t, "fake", e.DelivererID)
	require.Equal(t, 1, e.FailedAttempts)
	require.Equal(t, 1, e.Attempts)
	require.Equal(t, "503 Service Unavailable", e.LastError)
	require.Equal(t, outhook.ErrorClassDeliverer, e.ErrorClass)
	require.Nil(t, e.NextAttemptAt)
	require.NotEmpty(t, e.DeliveryID)
	require.NotEmpty(t, e.MessageID)

	disabled := outhooktest.DeliveredTo[outhook.SubscriptionHealthPayload](t, ops, outhook.EventSubscriptionDisabled)
	require.Len(t, disabled, 1)
	d := disabled[0]
	require.Equal(t, sub.ID, d.SubscriptionID)
	require.Equal(t, "crm", d.SubscriptionName)
	require.Equal(t, outhook.DisabledFailures, d.Cause)
	require.Equal(t, "3 deliveries failed in a row", d.Reason)
	require.Equal(t, 3, d.Health.ConsecutiveFailures)
	require.Equal(t, e.DeliveryID, d.DeliveryID)
	require.Equal(t, "503 Service Unavailable", d.LastError)
	require.Empty(t, outhooktest.DeliveredTo[outhook.SubscriptionHealthPayload](t, ops, outhook.EventSubscriptionRecovered))
	require.Empty(t, outhooktest.DeliveredTo[outhook.DeliveryHealthPayload](t, ops, outhook.EventDeliveryFailing),
		"one attempt per delivery: never failing, only exhausted")

	deliverOne(t, c, "inc-4")
	require.Len(t, fake.Calls(), 3, "a disabled subscription receives nothing")
	require.Len(t, ops.Calls(), 4, "and causes no operational event")
}

func TestHealthSuccessResetsTheCount(t *testing.T) {
	c, fake, ops := healthSetup(t, outhook.Config{DisableAfterFailures: 3})
	fail := outhooktest.FailRetryable(errors.New("timeout"))
	fake.Script(fail, fail, outhooktest.Succeed(), fail, fail)
	sub := subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	for _, id := range []string{"inc-1", "inc-2", "inc-3"} {
		deliverOne(t, c, id)
	}
	got := getSubscription(t, c, sub.ID)
	require.Zero(t, got.Health.ConsecutiveFailures)
	require.True(t, got.Health.FailingSince.IsZero())
	require.False(t, got.Health.LastSuccessAt.IsZero())
	require.False(t, got.Health.LastFailureAt.IsZero())

	recovered := outhooktest.DeliveredTo[outhook.SubscriptionHealthPayload](t, ops, outhook.EventSubscriptionRecovered)
	require.Len(t, recovered, 1)
	require.Equal(t, sub.ID, recovered[0].SubscriptionID)
	require.Equal(t, 2, recovered[0].FailedDeliveries, "what it recovered from")
	require.NotNil(t, recovered[0].FailingSince)
	require.Zero(t, recovered[0].Health.ConsecutiveFailures)

	deliverOne(t, c, "inc-4")
	deliverOne(t, c, "inc-5")
	got = getSubscription(t, c, sub.ID)
	require.False(t, got.Disabled, "two failures since the success: under the limit")
	require.Equal(t, 2, got.Health.ConsecutiveFailures)
	require.Len(t, outhooktest.DeliveredTo[outhook.SubscriptionHealthPayload](t, ops, outhook.EventSubscriptionRecovered), 1,
		"a success of a healthy subscription is no recovery")
}

func TestHealthDisablesAfterFailingFor(t *testing.T) {
	start := time.Date(2026, time.November, 20, 10, 0, 0, 0, time.UTC)
	clk := &clock{now: start}
	c, fake, ops := healthSetup(t, outhook.Config{DisableAfterFailingFor: 48 * time.Hour})
	outhook.SetHealthClock(c, clk.Now)
	fake.SetDefault(outhooktest.FailPermanent(errors.New("400 Bad Request")))
	sub := subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})

	deliverOne(t, c, "inc-1")
	clk.Advance(47 * time.Hour)
	deliverOne(t, c, "inc-2")
	got := getSubscription(t, c, sub.ID)
	require.False(t, got.Disabled, "failing for 47 hours")
	require.True(t, got.Health.FailingSince.Equal(start))

	clk.Advance(time.Hour)
	deliverOne(t, c, "inc-3")
	got = getSubscription(t, c, sub.ID)
	require.True(t, got.Disabled)
	require.Equal(t, "failing since 2026-11-20T10:00:00Z (2 days)", got.DisabledReason)
	disabled := outhooktest.DeliveredTo[outhook.SubscriptionHealthPayload](t, ops, outhook.EventSubscriptionDisabled)
	require.Len(t, disabled, 1)
	require.Equal(t, outhook.DisabledFailingFor, disabled[0].Cause)
	require.Equal(t, got.DisabledReason, disabled[0].Reason)

	// Enabling starts afresh: the old run of failures no longer counts.
	got, err := c.SetSubscriptionEnabled(context.Background(), sub.ID, true)
	require.NoError(t, err)
	require.Zero(t, got.Health.ConsecutiveFailures)
	require.True(t, got.Health.FailingSince.IsZero())
	clk.Advance(time.Hour)
	deliverOne(t, c, "inc-4")
	got = getSubscription(t, c, sub.ID)
	require.False(t, got.Disabled, "one failure since it was enabled")
	require.Equal(t, 1, got.Health.ConsecutiveFailures)
	require.True(t, got.Health.FailingSince.Equal(start.Add(49*time.Hour)))
	require.Len(t, outhooktest.DeliveredTo[outhook.SubscriptionHealthPayload](t, ops, outhook.EventSubscriptionDisabled), 1)
}

func TestHealthDefaults(t *testing.T) {
	start := time.Date(2026, time.November, 20, 10, 0, 0, 0, time.UTC)
	clk := &clock{now: start}
	c, fake, _ := healthSetup(t, outhook.Config{})
	outhook.SetHealthClock(c, clk.Now)
	fake.SetDefault(outhooktest.FailPermanent(errors.New("400 Bad Request")))
	sub := subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	for i := range 20 {
		deliverOne(t, c, "inc-"+string(rune('a'+i)))
	}
	require.False(t, getSubscription(t, c, sub.ID).Disabled, "no limit on the count by default")
	clk.Advance(outhook.DefaultDisableAfterFailingFor)
	deliverOne(t, c, "inc-last")
	got := getSubscription(t, c, sub.ID)
	require.True(t, got.Disabled, "failing for 5 days")
	require.Equal(t, "failing since 2026-11-20T10:00:00Z (5 days)", got.DisabledReason)

	_, err := outhook.NewClient(&outhook.Config{DisableAfterFailures: -1})
	require.ErrorContains(t, err, "Config.DisableAfterFailures")
}

func TestHealthNeverDisables(t *testing.T) {
	clk := &clock{now: time.Now()}
	c, fake, _ := healthSetup(t, outhook.Config{DisableAfterFailingFor: -1})
	outhook.SetHealthClock(c, clk.Now)
	fake.SetDefault(outhooktest.FailPermanent(errors.New("400 Bad Request")))
	sub := subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	deliverOne(t, c, "inc-1")
	clk.Advance(365 * 24 * time.Hour)
	deliverOne(t, c, "inc-2")
	got := getSubscription(t, c, sub.ID)
	require.False(t, got.Disabled)
	require.Equal(t, 2, got.Health.ConsecutiveFailures)
}

func TestHealthGoneDisablesOnce(t *testing.T) {
	gone := goneDeliverer{outhooktest.NewDeliverer("gone")}
	c, _, ops := healthSetup(t, outhook.Config{Deliverers: []outhook.Deliverer{gone}, DisableAfterFailures: 1})
	sub := subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}, DelivererID: "gone"})
	deliverOne(t, c, "inc-1")
	got := getSubscription(t, c, sub.ID)
	require.True(t, got.Disabled)
	require.Equal(t, "destination gone: 410 Gone", got.DisabledReason, "410 wins over the count")
	disabled := outhooktest.DeliveredTo[outhook.SubscriptionHealthPayload](t, ops, outhook.EventSubscriptionDisabled)
	require.Len(t, disabled, 1)
	require.Equal(t, outhook.DisabledGone, disabled[0].Cause)
	require.Equal(t, "destination gone: 410 Gone", disabled[0].Reason)
	require.Equal(t, 1, disabled[0].Health.ConsecutiveFailures)
}

func TestHealthDeliveryFailingOncePerDelivery(t *testing.T) {
	c, fake, ops := healthSetup(t, outhook.Config{DeliveryRetry: outhooktest.NoDelay(5), FailingAttemptsThreshold: 2})
	fail := outhooktest.FailRetryable(errors.New("502 Bad Gateway"))
	fake.Script(fail, fail, fail, outhooktest.Succeed())
	sub := subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	deliverOne(t, c, "inc-1")

	failing := outhooktest.DeliveredTo[outhook.DeliveryHealthPayload](t, ops, outhook.EventDeliveryFailing)
	require.Len(t, failing, 1, "once, after the second failed attempt")
	f := failing[0]
	require.Equal(t, sub.ID, f.SubscriptionID)
	require.Equal(t, createdEvent, f.EventID)
	require.Equal(t, 2, f.FailedAttempts)
	require.Equal(t, 2, f.Attempts)
	require.Equal(t, "502 Bad Gateway", f.LastError)
	require.NotNil(t, f.NextAttemptAt, "it will be retried")
	require.Empty(t, outhooktest.DeliveredTo[outhook.DeliveryHealthPayload](t, ops, outhook.EventDeliveryExhausted))
	require.Empty(t, outhooktest.DeliveredTo[outhook.SubscriptionHealthPayload](t, ops, outhook.EventSubscriptionRecovered),
		"the subscription was not failing: its delivery was retried, and succeeded")
	got := getSubscription(t, c, sub.ID)
	require.Zero(t, got.Health.ConsecutiveFailures)
	require.False(t, got.Health.LastSuccessAt.IsZero())
}

// TestOperationalEventsDoNotRecurse: a subscription to the operational
// events whose destination always fails causes no operational events of
// its own, so the chain ends.
func TestOperationalEventsDoNotRecurse(t *testing.T) {
	c, fake := setup(t, &outhook.Config{DeliveryRetry: outhooktest.NoDelay(3), FailingAttemptsThreshold: 2, DisableAfterFailures: 2})
	fake.SetDefault(outhooktest.FailRetryable(errors.New("connection refused")))
	app := subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	opsSub := subscribe(t, c, outhook.Subscription{Events: []string{"outhook.**"}})
	deliverOne(t, c, "inc-1")

	count := map[string]int{}
	for _, call := range fake.Calls() {
		count[call.Request.EventID]++
	}
	require.Equal(t, map[string]int{
		createdEvent:                   3, // 3 attempts
		outhook.EventDeliveryFailing:   3, // one event, 3 attempts
		outhook.EventDeliveryExhausted: 3,
	}, count)
	got := getSubscription(t, c, opsSub.ID)
	require.True(t, got.Disabled, "its own two failed deliveries disable it...")
	require.Equal(t, 2, got.Health.ConsecutiveFailures)
	ds, err := c.Deliveries(context.Background(), outhook.DeliveryQuery{EventID: outhook.EventSubscriptionDisabled})
	require.NoError(t, err)
	require.Empty(t, ds, "...without an operational event")
	require.Equal(t, 1, getSubscription(t, c, app.ID).Health.ConsecutiveFailures)
}

// TestHealthConcurrentDeliveries: deliveries of one subscription that end
// at the same time are all counted, and the limit trips once.
func TestHealthConcurrentDeliveries(t *testing.T) {
	const n = 40
	c, fake, ops := healthSetup(t, outhook.Config{DisableAfterFailures: n})
	fake.SetDefault(outhooktest.FailPermanent(errors.New("422")))
	sub := subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	for i := range n {
		emit(t, c, incidentCreated, sampleIncident("inc-"+string(rune('A'+i))))
	}
	outhooktest.WaitIdle(t, c)
	got := getSubscription(t, c, sub.ID)
	require.Equal(t, n, got.Health.ConsecutiveFailures)
	require.True(t, got.Disabled)
	require.Len(t, outhooktest.DeliveredTo[outhook.DeliveryHealthPayload](t, ops, outhook.EventDeliveryExhausted), n)
	require.Len(t, outhooktest.DeliveredTo[outhook.SubscriptionHealthPayload](t, ops, outhook.EventSubscriptionDisabled), 1)
}

func TestOperationalEventsAreRegistered(t *testing.T) {
	reg := newIncidentRegistry(t)
	setup(t, &outhook.Config{Registry: reg})
	setup(t, &outhook.Config{Registry: reg}) // a second client of the registry finds them there
	for _, id := range []string{outhook.EventDeliveryFailing, outhook.EventDeliveryExhausted,
		outhook.EventSubscriptionDisabled, outhook.EventSubscriptionRecovered} {
		ev, ok := reg.Event(id)
		require.True(t, ok, id)
		require.Equal(t, outhook.OperationalPluginID, ev.Plugin.PluginID)
		require.Equal(t, outhook.CategoryOperations, ev.Category)
		require.Contains(t, string(ev.Schema), `"subscriptionId"`)
	}
	_, err := outhook.RegisterEvent(reg, outhook.EventDefinition[IncidentCreated]{
		Hook: outhook.MustNewHook[IncidentCreated]("subscription.disabled"), DisplayName: "x"},
		outhook.PluginMetadata{PluginID: "outhook"})
	require.ErrorIs(t, err, outhook.ErrDuplicate)
	require.ErrorContains(t, err, "operational events")

	// An application that took the ID first: NewClient says so.
	taken := outhook.NewEventRegistry()
	_, err = outhook.RegisterEvent(taken, outhook.EventDefinition[IncidentCreated]{
		Hook: outhook.MustNewHook[IncidentCreated]("delivery.failing"), DisplayName: "x"},
		outhook.PluginMetadata{PluginID: "outhook"})
	require.NoError(t, err)
	_, err = outhook.NewClient(&outhook.Config{Registry: taken})
	require.ErrorIs(t, err, outhook.ErrDuplicate)
	require.ErrorContains(t, err, `event "outhook.delivery.failing", registered by plugin "outhook"`)
}
