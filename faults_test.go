package outhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cenkalti/backoff/v4"
	"github.com/outhook/outhook"
	"github.com/outhook/outhook/memqueue"
	"github.com/outhook/outhook/outhooktest"
	"github.com/stretchr/testify/require"
)

func TestTwoEventsOnOneHookGetTheirOwnDeliveries(t *testing.T) {
	reg := outhook.NewEventRegistry()
	for _, plugin := range []string{"a", "b"} {
		_, err := outhook.RegisterEvent(reg, outhook.EventDefinition[IncidentCreated]{Hook: incidentCreated, DisplayName: "Created"},
			outhook.PluginMetadata{PluginID: plugin})
		require.NoError(t, err)
	}
	// A deliverer that tracks how many attempts of one delivery overlap.
	slow := &overlapDeliverer{Deliverer: outhooktest.NewDeliverer("slow"), inflight: map[string]int{}}
	c, _ := setup(t, &outhook.Config{Registry: reg, Deliverers: []outhook.Deliverer{slow}})
	subscribe(t, c, outhook.Subscription{Events: []string{"*.incident.created"}, DelivererID: "slow"})
	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	outhooktest.WaitIdle(t, c)

	calls := slow.Delivered()
	require.Len(t, calls, 2, "one delivery per event")
	require.NotEqual(t, calls[0].Request.DeliveryID, calls[1].Request.DeliveryID)
	require.ElementsMatch(t, []string{"a.incident.created", "b.incident.created"},
		[]string{calls[0].Request.EventID, calls[1].Request.EventID})
	require.Equal(t, calls[0].Request.MessageID, calls[1].Request.MessageID, "one emit, one message")
	require.Equal(t, 1, slow.maxOverlap)
}

type overlapDeliverer struct {
	*outhooktest.Deliverer
	mu         sync.Mutex
	inflight   map[string]int
	maxOverlap int
}

func (d *overlapDeliverer) Deliver(ctx context.Context, req *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	d.mu.Lock()
	d.inflight[req.DeliveryID]++
	d.maxOverlap = max(d.maxOverlap, d.inflight[req.DeliveryID])
	d.mu.Unlock()
	time.Sleep(5 * time.Millisecond) // widen the window in which a duplicate would overlap
	d.mu.Lock()
	d.inflight[req.DeliveryID]--
	d.mu.Unlock()
	return d.Deliverer.Deliver(ctx, req)
}

// flakyStore fails every update that records an attempt.
type flakyStore struct {
	*outhook.MemoryStore
	failures atomic.Int32
}

func (s *flakyStore) UpdateDelivery(ctx context.Context, id string, a *outhook.Attempt, u outhook.DeliveryUpdate) error {
	if a != nil {
		s.failures.Add(1)
		return errors.New("disk on fire")
	}
	return s.MemoryStore.UpdateDelivery(ctx, id, a, u)
}

func TestStoreFailureLeavesNoDeliveryStranded(t *testing.T) {
	store := &flakyStore{MemoryStore: outhook.NewMemoryStore(nil)}
	c, fake := setup(t, &outhook.Config{Store: store, HandlerRetry: outhooktest.NoDelay(2)})
	subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	outhooktest.WaitIdle(t, c)

	require.EqualValues(t, 2, store.failures.Load())
	require.Len(t, fake.Calls(), 2, "an unrecorded attempt is made again: at least once")
	ds, err := c.Deliveries(context.Background(), outhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	require.Equal(t, outhook.DeliveryFailed, ds[0].Status, "not pending without a job")
	require.Contains(t, ds[0].LastError, "disk on fire")
	require.NoError(t, c.Redeliver(context.Background(), ds[0].ID), "it can be redelivered")
	outhooktest.WaitIdle(t, c)
}

func TestHookTypeConflictsAreRefused(t *testing.T) {
	reg := outhook.NewEventRegistry()
	c, _ := setup(t, &outhook.Config{Registry: reg})
	require.NoError(t, outhook.OnHook(c, incidentCreated, func(context.Context, IncidentCreated) error { return nil }, outhook.WorkQueue("audit")))

	other := outhook.MustNewHook[IncidentResolved]("incident.created")
	_, err := outhook.RegisterEvent(reg, outhook.EventDefinition[IncidentResolved]{Hook: other, DisplayName: "x"}, incidentPlugin)
	require.ErrorContains(t, err, `hook "incident.created" carries outhook_test.IncidentCreated, not outhook_test.IncidentResolved`)
	for _, ev := range reg.Events() {
		require.Equal(t, outhook.OperationalPluginID, ev.Plugin.PluginID, "the conflicting event is not registered")
	}

	_, err = outhook.RegisterEvent(reg, outhook.EventDefinition[IncidentResolved]{Hook: incidentResolved, DisplayName: "Resolved"}, incidentPlugin)
	require.NoError(t, err)
	wrong := outhook.MustNewHook[IncidentCreated]("incident.resolved")
	err = outhook.OnHook(c, wrong, func(context.Context, IncidentCreated) error { return nil }, outhook.WorkQueue("audit"))
	require.ErrorContains(t, err, "carries")
}

// errorCounter is a slog handler that counts error records.
type errorCounter struct {
	slog.Handler
	n atomic.Int32
}

func (h *errorCounter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.n.Add(1)
	}
	return nil
}
func (h *errorCounter) Enabled(context.Context, slog.Level) bool { return true }

func TestCallsAfterStop(t *testing.T) {
	reg := outhook.NewEventRegistry()
	logs := &errorCounter{Handler: slog.DiscardHandler}
	c, err := outhook.NewClient(&outhook.Config{Registry: reg, Logger: slog.New(logs)})
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background()))
	require.NoError(t, c.Stop(context.Background()))

	require.NoError(t, c.WaitIdle(context.Background()), "stopped with nothing left is idle")
	require.ErrorIs(t, outhook.OnHook(c, incidentCreated, func(context.Context, IncidentCreated) error { return nil }, outhook.WorkQueue("late")), outhook.ErrClosed)
	require.ErrorIs(t, c.Redeliver(context.Background(), "dlv_x"), outhook.ErrClosed)
	// The registry outlives the client: registering later is not an error
	// of the stopped client's.
	_, err = outhook.RegisterEvent(reg, outhook.EventDefinition[IncidentCreated]{Hook: incidentCreated, DisplayName: "Created"}, incidentPlugin)
	require.NoError(t, err)
	require.Zero(t, logs.n.Load())
}

func TestWorkerGroupNamesArePerHook(t *testing.T) {
	c, _ := setup(t, nil)
	var n atomic.Int32
	require.NoError(t, outhook.OnHook(c, incidentCreated, func(context.Context, IncidentCreated) error { n.Add(1); return nil }, outhook.WorkQueue("cache")))
	require.NoError(t, outhook.OnHook(c, incidentResolved, func(context.Context, IncidentResolved) error { n.Add(1); return nil }, outhook.WorkQueue("cache")))
	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	emit(t, c, incidentResolved, IncidentResolved{IncidentID: "inc-1", SystemIDs: []string{"s"}})
	outhooktest.WaitIdle(t, c)
	require.EqualValues(t, 2, n.Load())

	noop := func(context.Context, IncidentCreated) error { return nil }
	require.ErrorIs(t, outhook.OnHook(c, incidentCreated, noop, outhook.WorkQueue("broadcast.1")), outhook.ErrInvalidID)
	require.NoError(t, outhook.OnHook(c, incidentCreated, noop, outhook.WorkQueue("broadcasting")))
	require.NoError(t, outhook.OnHook(c, incidentCreated, noop, outhook.Broadcast()))
	require.NoError(t, outhook.OnHook(c, incidentCreated, noop, outhook.Broadcast()))
}

func TestCancelledContext(t *testing.T) {
	c, fake := setup(t, nil)
	subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, outhook.EmitHook(ctx, c, incidentCreated, sampleIncident("inc-1")), context.Canceled)
	outhooktest.WaitIdle(t, c)
	require.Empty(t, fake.Calls(), "a cancelled emit queues nothing")

	fake.Script(outhooktest.FailPermanent(nil))
	emit(t, c, incidentCreated, sampleIncident("inc-2"))
	outhooktest.WaitIdle(t, c)
	ds, err := c.Deliveries(context.Background(), outhook.DeliveryQuery{Status: outhook.DeliveryFailed})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	require.ErrorIs(t, c.Redeliver(ctx, ds[0].ID), context.Canceled)
	d, err := c.Delivery(context.Background(), ds[0].ID)
	require.NoError(t, err)
	require.Equal(t, outhook.DeliveryFailed, d.Status, "a cancelled redelivery changes nothing")
}

func TestBatchLargerThanQueueIsRefused(t *testing.T) {
	q, err := memqueue.New(&memqueue.Config{Capacity: 1, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	c, _ := setup(t, &outhook.Config{Queue: q})
	// Two listeners: every emit is two jobs, more than the queue holds.
	require.NoError(t, outhook.OnHook(c, incidentCreated, func(context.Context, IncidentCreated) error { return nil }, outhook.WorkQueue("a")))
	err = outhook.EmitHook(context.Background(), c, incidentCreated, sampleIncident("inc-1"))
	require.ErrorIs(t, err, outhook.ErrQueueFull)
	require.ErrorContains(t, err, `"incident.created"`)
}

func TestZeroValuesAndNils(t *testing.T) {
	var reg outhook.EventRegistry
	ev, err := outhook.RegisterEvent(&reg, outhook.EventDefinition[IncidentCreated]{Hook: incidentCreated, DisplayName: "Created"}, incidentPlugin)
	require.NoError(t, err)
	require.Equal(t, createdEvent, ev.ID)
	require.Len(t, reg.Categories(), 1)

	require.Error(t, outhook.EmitHook(context.Background(), nil, incidentCreated, sampleIncident("x")))
	require.Error(t, outhook.OnHook(nil, incidentCreated, func(context.Context, IncidentCreated) error { return nil }, outhook.WorkQueue("g")))
	_, err = outhook.NewClient(&outhook.Config{Deliverers: []outhook.Deliverer{nil}})
	require.ErrorContains(t, err, "Deliverers[0] is nil")
	_, err = outhook.NewClient(&outhook.Config{Deliverers: []outhook.Deliverer{outhooktest.NewDeliverer("x"), outhooktest.NewDeliverer("x")}})
	require.ErrorIs(t, err, outhook.ErrDuplicate)
	_, err = outhook.NewClient(&outhook.Config{Deliverers: []outhook.Deliverer{outhooktest.NewDeliverer("bad id")}})
	require.ErrorIs(t, err, outhook.ErrInvalidID)
	_, err = outhook.NewClient(&outhook.Config{DeliveryTimeout: -1})
	require.ErrorContains(t, err, "DeliveryTimeout")
}

func TestRedeliveryRestartsTheSchedule(t *testing.T) {
	c, fake := setup(t, &outhook.Config{DeliveryRetry: outhooktest.NoDelay(2)})
	fake.SetDefault(outhooktest.FailRetryable(nil))
	subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	outhooktest.WaitIdle(t, c)
	ds, err := c.Deliveries(context.Background(), outhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, ds[0].Attempts, 2)

	require.NoError(t, c.Redeliver(context.Background(), ds[0].ID))
	outhooktest.WaitIdle(t, c)
	d, err := c.Delivery(context.Background(), ds[0].ID)
	require.NoError(t, err)
	require.Equal(t, outhook.DeliveryFailed, d.Status)
	var triggers []outhook.AttemptTrigger
	for _, a := range d.Attempts {
		triggers = append(triggers, a.Trigger)
		require.Equal(t, "fake", a.DelivererID)
	}
	require.Equal(t, []outhook.AttemptTrigger{"scheduled", "scheduled", "manual", "scheduled"}, triggers,
		"a redelivery gets a full round of attempts again")
	require.Empty(t, d.NextAttemptTrigger)
}

func TestHandlerTimeout(t *testing.T) {
	c, _ := setup(t, &outhook.Config{HandlerTimeout: 10 * time.Millisecond, HandlerRetry: outhooktest.NoDelay(2)})
	var runs atomic.Int32
	require.NoError(t, outhook.OnHook(c, incidentCreated, func(ctx context.Context, p IncidentCreated) error {
		runs.Add(1)
		<-ctx.Done()
		return ctx.Err()
	}, outhook.WorkQueue("stuck")))
	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	outhooktest.WaitIdle(t, c)
	require.EqualValues(t, 2, runs.Load())
	failed, err := c.FailedEvents(context.Background(), 10)
	require.NoError(t, err)
	require.Len(t, failed, 1)
	require.Contains(t, failed[0].Errors[0].Error, "deadline exceeded")
	_, err = outhook.NewClient(&outhook.Config{HandlerTimeout: -time.Second})
	require.ErrorContains(t, err, "HandlerTimeout")
}

func TestDeliveryRecordJSON(t *testing.T) {
	c, fake := setup(t, nil)
	fake.Script(outhooktest.FailRetryable(errors.New("boom")))
	subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	outhooktest.WaitIdle(t, c)
	ds, err := c.Deliveries(context.Background(), outhook.DeliveryQuery{EventID: createdEvent})
	require.NoError(t, err)
	b, err := json.Marshal(ds[0])
	require.NoError(t, err)
	var back outhook.Delivery
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, ds[0].ID, back.ID)
	require.Len(t, back.Attempts, 2)
	require.Equal(t, "boom", back.Attempts[0].Error)
	require.JSONEq(t, string(ds[0].Payload), string(back.Payload))
}

func TestWaitIdleAfterStopWithWorkLeft(t *testing.T) {
	fake := outhooktest.NewDeliverer("fake").Script(outhooktest.FailRetryable(nil))
	c, err := outhook.NewClient(&outhook.Config{Logger: quiet, Registry: newIncidentRegistry(t), Deliverers: []outhook.Deliverer{fake}})
	require.NoError(t, err)
	_, err = c.CreateSubscription(context.Background(), outhook.Subscription{Events: []string{createdEvent}, DelivererID: "fake"})
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background()))
	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, fake.WaitCalls(ctx, 1))
	// The retry is 5 s away on the default schedule: Stop leaves it.
	require.NoError(t, c.Stop(context.Background()))
	require.ErrorIs(t, c.WaitIdle(context.Background()), outhook.ErrClosed)
}

func TestRetryPolicyValidation(t *testing.T) {
	_, err := outhook.NewClient(&outhook.Config{DeliveryRetry: outhook.RetryPolicy{NewBackOff: func() backoff.BackOff {
		return backoff.NewExponentialBackOff() // gives up after 15 min of elapsed time: cannot work replayed
	}}})
	require.ErrorContains(t, err, "Config.DeliveryRetry: an ExponentialBackOff with MaxElapsedTime 15m0s would never stop")
	_, err = outhook.NewClient(&outhook.Config{HandlerRetry: outhook.RetryPolicy{MaxRetryAfter: -1}})
	require.ErrorContains(t, err, "HandlerRetry.MaxRetryAfter")
	_, err = outhook.NewClient(&outhook.Config{HandlerRetry: outhook.RetryPolicy{NewBackOff: func() backoff.BackOff { return nil }}})
	require.ErrorContains(t, err, "returned nil")
	c, err := outhook.NewClient(&outhook.Config{Logger: quiet, DeliveryRetry: outhook.RetryPolicy{NewBackOff: func() backoff.BackOff {
		b := backoff.NewExponentialBackOff()
		b.MaxElapsedTime = 0
		return backoff.WithMaxRetries(b, 5)
	}}})
	require.NoError(t, err)
	require.NoError(t, c.Stop(context.Background()))
}

// TestStoreBlipLateInRetries: a brief store failure late in a delivery's
// retries does not use up the delivery.
func TestStoreBlipLateInRetries(t *testing.T) {
	store := &blipStore{MemoryStore: outhook.NewMemoryStore(nil)}
	c, fake := setup(t, &outhook.Config{Store: store, DeliveryRetry: outhooktest.NoDelay(10), HandlerRetry: outhooktest.NoDelay(3)})
	fake.Script(outhooktest.FailRetryable(nil), outhooktest.FailRetryable(nil), outhooktest.FailRetryable(nil))
	store.failGetAfterAttempts.Store(3)
	subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	outhooktest.WaitIdle(t, c)
	ds, err := c.Deliveries(context.Background(), outhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Equal(t, outhook.DeliverySucceeded, ds[0].Status, ds[0].LastError)
	require.Len(t, ds[0].Attempts, 4)
	require.EqualValues(t, 1, store.blips.Load())
}

// TestStoreBlipsBetweenAttemptsAreNotInARow: store failures with attempts
// between them are each the first in a row, although a failed attempt
// records no error in the job: two in a row would fail the delivery here.
func TestStoreBlipsBetweenAttemptsAreNotInARow(t *testing.T) {
	store := &blipsStore{MemoryStore: outhook.NewMemoryStore(nil), blips: map[int]bool{}}
	c, fake := setup(t, &outhook.Config{Store: store, DeliveryRetry: outhooktest.NoDelay(10), HandlerRetry: outhooktest.NoDelay(2)})
	fake.Script(outhooktest.FailRetryable(nil), outhooktest.FailRetryable(nil), outhooktest.FailRetryable(nil))
	subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	outhooktest.WaitIdle(t, c)
	ds, err := c.Deliveries(context.Background(), outhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Equal(t, outhook.DeliverySucceeded, ds[0].Status, ds[0].LastError)
	require.Len(t, ds[0].Attempts, 4)
	store.mu.Lock()
	defer store.mu.Unlock()
	require.Len(t, store.blips, 3, "one store failure after each failed attempt")
}

// blipsStore fails GetDelivery once per number of attempts, from 1 to 3.
type blipsStore struct {
	*outhook.MemoryStore
	mu    sync.Mutex
	blips map[int]bool // by number of attempts
}

func (s *blipsStore) GetDelivery(ctx context.Context, id string) (*outhook.Delivery, error) {
	d, err := s.MemoryStore.GetDelivery(ctx, id)
	if err != nil {
		return d, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(d.Attempts); n >= 1 && n <= 3 && !s.blips[n] {
		s.blips[n] = true
		return nil, errors.New("transient store blip")
	}
	return d, nil
}

// blipStore fails one GetDelivery once the delivery has the given number
// of attempts.
type blipStore struct {
	*outhook.MemoryStore
	failGetAfterAttempts atomic.Int32
	blips                atomic.Int32
}

func (s *blipStore) GetDelivery(ctx context.Context, id string) (*outhook.Delivery, error) {
	d, err := s.MemoryStore.GetDelivery(ctx, id)
	if err == nil && len(d.Attempts) == int(s.failGetAfterAttempts.Load()) && s.blips.CompareAndSwap(0, 1) {
		return nil, errors.New("transient store blip")
	}
	return d, err
}

// bigResponder answers with a long response body.
type bigResponder struct{ *outhooktest.Deliverer }

func (b bigResponder) Deliver(ctx context.Context, req *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	_, _ = b.Deliverer.Deliver(ctx, req)
	return outhook.DeliveryResult{StatusCode: 202, Response: strings.Repeat("é", 20<<10), ExternalID: "ext-9"}, nil
}

func TestAttemptRecordsTimeAndResponseExcerpt(t *testing.T) {
	big := bigResponder{outhooktest.NewDeliverer("big")}
	c, _ := setup(t, &outhook.Config{Deliverers: []outhook.Deliverer{big}})
	subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}, DelivererID: "big"})
	before := time.Now()
	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	outhooktest.WaitIdle(t, c)
	ds, err := c.Deliveries(context.Background(), outhook.DeliveryQuery{})
	require.NoError(t, err)
	a := ds[0].Attempts[0]
	require.False(t, a.StartedAt.Before(before))
	require.Positive(t, a.Duration)
	require.Equal(t, 202, a.StatusCode)
	require.Equal(t, "ext-9", a.ExternalID)
	require.LessOrEqual(t, len(a.Response), outhook.MaxResponseExcerpt)
	require.Greater(t, len(a.Response), outhook.MaxResponseExcerpt-2)
	require.True(t, utf8.ValidString(a.Response), "cut on a rune boundary")
}

// recordingHandler keeps the messages and errors of warning records.
type recordingHandler struct {
	mu   sync.Mutex
	msgs []string
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler            { return h }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return nil
	}
	line := r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += " " + a.Key + "=" + a.Value.String()
		return true
	})
	h.mu.Lock()
	h.msgs = append(h.msgs, line)
	h.mu.Unlock()
	return nil
}

func TestTransformPanicIsLoggedWhenRetried(t *testing.T) {
	reg := outhook.NewEventRegistry()
	var calls atomic.Int32
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[IncidentCreated]{
		Hook: incidentCreated, DisplayName: "Created",
		TransformPayload: func(p IncidentCreated) (map[string]any, error) {
			if calls.Add(1) == 1 {
				panic("transform bug")
			}
			return map[string]any{"id": p.IncidentID}, nil
		},
	}, incidentPlugin)
	logs := &recordingHandler{}
	c, fake := setup(t, &outhook.Config{Registry: reg, Logger: slog.New(logs)})
	subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	outhooktest.WaitIdle(t, c)
	require.Len(t, fake.Delivered(), 1)
	logs.mu.Lock()
	defer logs.mu.Unlock()
	require.Len(t, logs.msgs, 1)
	require.Contains(t, logs.msgs[0], "hook handler failed, will retry")
	require.Contains(t, logs.msgs[0], "group=integration."+createdEvent)
	require.Contains(t, logs.msgs[0], "attempt=1")
	require.Contains(t, logs.msgs[0], `transform of event "incident.incident.created": panic: transform bug`)
}
