package outhook

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/outhook/outhook/queue"
)

// SubscriptionHealth is how a subscription's deliveries have been ending:
// the Health of a Subscription, kept by outhook. A delivery counts once,
// when it ends: succeeded, or failed for good (its retries exhausted, a
// permanent failure, a destination that is gone), not at each attempt.
// Deliveries that end because their subscription was disabled or deleted
// do not count.
type SubscriptionHealth struct {
	// ConsecutiveFailures is the number of deliveries that failed for good
	// since the last one that succeeded (or since the subscription was
	// created or enabled again).
	ConsecutiveFailures int `json:"consecutiveFailures"`
	// FailingSince is when the first of those failures ended; zero when
	// ConsecutiveFailures is zero.
	FailingSince time.Time `json:"failingSince,omitzero"`
	// LastFailureAt is when the latest delivery that failed for good
	// ended; zero if none has.
	LastFailureAt time.Time `json:"lastFailureAt,omitzero"`
	// LastSuccessAt is when the latest delivery that succeeded ended; zero
	// if none has. The SQL stores update it at most once a minute while the
	// subscription is healthy (see Store.RecordDeliveryOutcome).
	LastSuccessAt time.Time `json:"lastSuccessAt,omitzero"`
}

// Failing reports whether the latest delivery that ended failed.
func (h SubscriptionHealth) Failing() bool { return h.ConsecutiveFailures > 0 }

// Record returns h after a delivery that ended at the given time, succeeded
// or failed for good: the rule every Store's RecordDeliveryOutcome applies.
// A success clears ConsecutiveFailures and FailingSince; a failure adds
// one, and starts FailingSince when it is the first. Outcomes may be
// recorded out of time order (concurrent deliveries end in any order):
// LastFailureAt and LastSuccessAt only move forward, and FailingSince only
// back.
func (h SubscriptionHealth) Record(succeeded bool, at time.Time) SubscriptionHealth {
	if succeeded {
		h.ConsecutiveFailures, h.FailingSince = 0, time.Time{}
		if at.After(h.LastSuccessAt) {
			h.LastSuccessAt = at
		}
		return h
	}
	if h.ConsecutiveFailures == 0 || at.Before(h.FailingSince) {
		h.FailingSince = at
	}
	h.ConsecutiveFailures++
	if at.After(h.LastFailureAt) {
		h.LastFailureAt = at
	}
	return h
}

// failingFor returns how long h has been failing, by the failures recorded:
// from FailingSince to LastFailureAt; zero when it is not failing.
func (h SubscriptionHealth) failingFor() time.Duration {
	if !h.Failing() || h.LastFailureAt.IsZero() {
		return 0
	}
	return h.LastFailureAt.Sub(h.FailingSince)
}

// DefaultDisableAfterFailingFor is the default of
// Config.DisableAfterFailingFor: five days, as Svix.
const DefaultDisableAfterFailingFor = 5 * 24 * time.Hour

// DefaultFailingAttemptsThreshold is the default of
// Config.FailingAttemptsThreshold.
const DefaultFailingAttemptsThreshold = 3

// OperationalPluginID is the plugin ID of the events outhook emits about
// its own deliveries and subscriptions (see Endpoint health in the package
// documentation). Every client registers them in its registry.
const OperationalPluginID = "outhook"

// The operational events. Their hook IDs are their event IDs, so that they
// never take a hook ID an application uses.
const (
	// EventDeliveryFailing: a delivery has failed
	// Config.FailingAttemptsThreshold attempts in a row and will be
	// retried. Emitted once per delivery (and again after a redelivery
	// fails as many times). Payload: DeliveryHealthPayload.
	EventDeliveryFailing = "outhook.delivery.failing"
	// EventDeliveryExhausted: a delivery failed for good, because its
	// retries ran out or the failure was permanent. Payload:
	// DeliveryHealthPayload.
	EventDeliveryExhausted = "outhook.delivery.exhausted"
	// EventSubscriptionDisabled: outhook disabled a subscription, because
	// its destination is gone or it kept failing. Payload:
	// SubscriptionHealthPayload.
	EventSubscriptionDisabled = "outhook.subscription.disabled"
	// EventSubscriptionRecovered: a delivery of a failing subscription
	// succeeded. Payload: SubscriptionHealthPayload.
	EventSubscriptionRecovered = "outhook.subscription.recovered"
)

// CategoryOperations is the category of the operational events.
const CategoryOperations = "Operations"

// DeliveryHealthPayload is the payload of EventDeliveryFailing and
// EventDeliveryExhausted. It carries no payload of the delivery and no
// configuration of the subscription: LastError is the attempt's recorded
// error text, from which deliverers keep secrets out.
type DeliveryHealthPayload struct {
	DeliveryID       string `json:"deliveryId"`
	MessageID        string `json:"messageId"`
	EventID          string `json:"eventId"`
	SubscriptionID   string `json:"subscriptionId"`
	SubscriptionName string `json:"subscriptionName,omitempty"`
	DelivererID      string `json:"delivererId"`
	// FailedAttempts is the number of attempts that failed in a row, since
	// the delivery was created or redelivered.
	FailedAttempts int `json:"failedAttempts"`
	// Attempts is the number of attempts of the delivery, all told.
	Attempts int `json:"attempts"`
	// ErrorClass, LastError and StatusCode describe the latest attempt.
	ErrorClass string `json:"errorClass,omitempty"`
	LastError  string `json:"lastError,omitempty"`
	StatusCode int    `json:"statusCode,omitempty"`
	// OccurredAt is when the delivered event was emitted.
	OccurredAt time.Time `json:"occurredAt"`
	// LastAttemptAt is when the latest attempt started.
	LastAttemptAt time.Time `json:"lastAttemptAt"`
	// NextAttemptAt is when the delivery is tried again; absent when it
	// is exhausted.
	NextAttemptAt *time.Time `json:"nextAttemptAt,omitempty"`
}

// Causes of EventSubscriptionDisabled (SubscriptionHealthPayload.Cause).
const (
	// DisabledGone: the destination said it no longer exists (HTTP 410).
	DisabledGone = "gone"
	// DisabledFailures: Config.DisableAfterFailures deliveries failed in a
	// row.
	DisabledFailures = "failures"
	// DisabledFailingFor: the subscription failed for
	// Config.DisableAfterFailingFor.
	DisabledFailingFor = "failing_for"
)

// SubscriptionHealthPayload is the payload of EventSubscriptionDisabled and
// EventSubscriptionRecovered.
type SubscriptionHealthPayload struct {
	SubscriptionID   string `json:"subscriptionId"`
	SubscriptionName string `json:"subscriptionName,omitempty"`
	DelivererID      string `json:"delivererId"`
	// Reason is the subscription's DisabledReason (disabled only).
	Reason string `json:"reason,omitempty"`
	// Cause is DisabledGone, DisabledFailures or DisabledFailingFor
	// (disabled only).
	Cause string `json:"cause,omitempty"`
	// Health is the subscription's health after the delivery that caused
	// the change. For a recovery, FailedDeliveries and FailingSince say
	// what it recovered from.
	Health           SubscriptionHealth `json:"health"`
	FailedDeliveries int                `json:"failedDeliveries,omitempty"`
	FailingSince     *time.Time         `json:"failingSince,omitempty"`
	// DeliveryID and EventID name the delivery whose end caused the
	// change; ErrorClass and LastError its latest attempt's failure.
	DeliveryID string    `json:"deliveryId"`
	EventID    string    `json:"eventId"`
	ErrorClass string    `json:"errorClass,omitempty"`
	LastError  string    `json:"lastError,omitempty"`
	At         time.Time `json:"at"`
}

// The hooks of the operational events. Only the client emits them.
var (
	hookDeliveryFailing        = MustNewHook[DeliveryHealthPayload](EventDeliveryFailing)
	hookDeliveryExhausted      = MustNewHook[DeliveryHealthPayload](EventDeliveryExhausted)
	hookSubscriptionDisabled   = MustNewHook[SubscriptionHealthPayload](EventSubscriptionDisabled)
	hookSubscriptionRecovered  = MustNewHook[SubscriptionHealthPayload](EventSubscriptionRecovered)
	operationalPlugin          = PluginMetadata{PluginID: OperationalPluginID, DisplayName: "outhook", Description: "Events about outhook's own deliveries and subscriptions."}
	operationalDeliveryType    = reflect.TypeFor[DeliveryHealthPayload]()
	operationalSubscriptionTyp = reflect.TypeFor[SubscriptionHealthPayload]()
)

// isOperationalEvent reports whether eventID is an operational event's:
// deliveries of those never cause operational events, so they cannot
// recurse.
func isOperationalEvent(eventID string) bool {
	switch eventID {
	case EventDeliveryFailing, EventDeliveryExhausted, EventSubscriptionDisabled, EventSubscriptionRecovered:
		return true
	}
	return false
}

// isOperationalRecord reports whether rec is an operational event as
// registerOperationalEvents registers it.
func isOperationalRecord(rec *eventRecord) bool {
	return rec != nil && isOperationalEvent(rec.ID) && rec.HookID == rec.ID &&
		rec.Plugin.PluginID == OperationalPluginID &&
		(rec.typ == operationalDeliveryType || rec.typ == operationalSubscriptionTyp)
}

// registerOperationalEvents registers the operational events in r, unless
// another client using r has already. An event of an application that
// took one of their IDs is an error naming it.
func registerOperationalEvents(r *EventRegistry) error {
	check := func(existing *eventRecord) (bool, error) {
		if existing == nil {
			return false, nil
		}
		if isOperationalRecord(existing) {
			return true, nil // registered by another client of r
		}
		return false, fmt.Errorf("%w: event %q, registered by plugin %q, takes the ID of one of outhook's operational events: plugin ID %q is outhook's own, choose another",
			ErrDuplicate, existing.ID, existing.Plugin.PluginID, OperationalPluginID)
	}
	reg := func(err error) error {
		if err != nil {
			return fmt.Errorf("outhook: registering the operational events: %w", err)
		}
		return nil
	}
	if _, err := registerEvent(r, EventDefinition[DeliveryHealthPayload]{
		Hook: hookDeliveryFailing, DisplayName: "Delivery failing", Category: CategoryOperations,
		Description: "A delivery failed several attempts in a row (Config.FailingAttemptsThreshold) and will be retried.",
	}, operationalPlugin, EventDeliveryFailing, check); err != nil {
		return reg(err)
	}
	if _, err := registerEvent(r, EventDefinition[DeliveryHealthPayload]{
		Hook: hookDeliveryExhausted, DisplayName: "Delivery exhausted", Category: CategoryOperations,
		Description: "A delivery failed for good: its retries ran out, or the failure was permanent.",
	}, operationalPlugin, EventDeliveryExhausted, check); err != nil {
		return reg(err)
	}
	if _, err := registerEvent(r, EventDefinition[SubscriptionHealthPayload]{
		Hook: hookSubscriptionDisabled, DisplayName: "Subscription disabled", Category: CategoryOperations,
		Description: "outhook disabled a subscription: its destination is gone, or it kept failing.",
	}, operationalPlugin, EventSubscriptionDisabled, check); err != nil {
		return reg(err)
	}
	if _, err := registerEvent(r, EventDefinition[SubscriptionHealthPayload]{
		Hook: hookSubscriptionRecovered, DisplayName: "Subscription recovered", Category: CategoryOperations,
		Description: "A delivery to a failing subscription succeeded.",
	}, operationalPlugin, EventSubscriptionRecovered, check); err != nil {
		return reg(err)
	}
	return nil
}

// failingEnqueueWait bounds the wait for room in the queue of an
// EventDeliveryFailing.
const failingEnqueueWait = 5 * time.Second

// healthPolicy is the client's configuration of endpoint health.
type healthPolicy struct {
	failingFor      time.Duration // 0: never
	failures        int           // 0: never
	failingAttempts int           // 0: never
	now             func() time.Time
}

// newHealthPolicy reads the health fields of cfg.
func newHealthPolicy(cfg *Config) (healthPolicy, error) {
	p := healthPolicy{
		failingFor:      cfg.DisableAfterFailingFor,
		failures:        cfg.DisableAfterFailures,
		failingAttempts: cfg.FailingAttemptsThreshold,
		now:             time.Now,
	}
	switch {
	case p.failingFor == 0:
		p.failingFor = DefaultDisableAfterFailingFor
	case p.failingFor < 0:
		p.failingFor = 0
	}
	if p.failures < 0 {
		return healthPolicy{}, fmt.Errorf("outhook: Config.DisableAfterFailures must not be negative (0 means never), got %d", p.failures)
	}
	switch {
	case p.failingAttempts == 0:
		p.failingAttempts = DefaultFailingAttemptsThreshold
	case p.failingAttempts < 0:
		p.failingAttempts = 0
	}
	return p, nil
}

// afterAttempt keeps the health of a subscription after an attempt of one
// of its deliveries was recorded, disables the subscription when its
// destination is gone or a limit of the health policy trips, and emits the
// operational events that follow. status is the delivery's new status,
// gone the attempt's *GoneError, if any.
//
// The events of a delivery that ended are returned as jobs, for the queue
// to admit together with the delivery job's completion; EventDeliveryFailing,
// whose delivery job is retried instead, is enqueued at once. Deliveries of
// operational events emit none, so the events cannot feed themselves.
func (c *Client) afterAttempt(ctx context.Context, d *deliveryState, sub *Subscription, a *Attempt, status DeliveryStatus, gone error) []*queue.Job {
	ops := !isOperationalEvent(d.EventID)
	failedInARow := d.round(a)
	if status == DeliveryPending {
		// A failed attempt, to be retried.
		if ops && c.health.failingAttempts > 0 && failedInARow == c.health.failingAttempts {
			p := c.deliveryHealthPayload(d, sub, a, failedInARow)
			next := a.NextAttemptAt
			p.NextAttemptAt = &next
			jobs := operationalJobs(ctx, c, hookDeliveryFailing, p)
			if len(jobs) > 0 {
				// A delivery worker must not wait long for room in a full
				// queue, which only workers empty: past the bound the
				// event is dropped, and logged.
				ectx, cancel := context.WithTimeout(ctx, failingEnqueueWait)
				err := c.queue.Enqueue(ectx, jobs...)
				cancel()
				if err != nil {
					c.log.WarnContext(ctx, "outhook: cannot emit operational event", "event", EventDeliveryFailing,
						"delivery", d.ID, "subscription", sub.ID, "error", err)
				}
			}
		}
		return nil
	}

	// The delivery ended: count it. Store failures here do not undo the
	// attempt, which is recorded already; the delivery worker goes on.
	sctx := context.WithoutCancel(ctx)
	at := c.health.now()
	succeeded := status == DeliverySucceeded
	before, after, err := c.store.RecordDeliveryOutcome(sctx, sub.ID, succeeded, at)
	if err != nil {
		c.log.ErrorContext(ctx, "outhook: cannot record the health of subscription", "subscription", sub.ID,
			"delivery", d.ID, "error", err)
		if !succeeded && gone != nil {
			c.disableGone(sctx, sub.ID, gone)
		}
		return nil
	}
	var jobs []*queue.Job
	if succeeded {
		if before.Failing() && ops {
			since := before.FailingSince
			p := c.subscriptionHealthPayload(d, sub, a, after, at)
			p.FailedDeliveries, p.FailingSince = before.ConsecutiveFailures, &since
			jobs = append(jobs, operationalJobs(ctx, c, hookSubscriptionRecovered, p)...)
			c.log.InfoContext(ctx, "outhook: subscription recovered", "subscription", sub.ID,
				"failed_deliveries", before.ConsecutiveFailures, "failing_since", since)
		}
		return jobs
	}
	if ops {
		jobs = append(jobs, operationalJobs(ctx, c, hookDeliveryExhausted, c.deliveryHealthPayload(d, sub, a, failedInARow))...)
	}
	cause, reason := c.disableCause(before, after, gone)
	if cause == "" || sub.Disabled && cause != DisabledGone {
		return jobs
	}
	if cause == DisabledGone {
		if !c.disableGone(sctx, sub.ID, gone) {
			return jobs
		}
	} else if !c.disableUnhealthy(sctx, sub.ID, reason) {
		return jobs
	}
	if ops {
		p := c.subscriptionHealthPayload(d, sub, a, after, at)
		p.Cause = cause
		p.Reason = reason
		if cause == DisabledGone {
			p.Reason = goneReason(gone)
		}
		jobs = append(jobs, operationalJobs(ctx, c, hookSubscriptionDisabled, p)...)
	}
	return jobs
}

// disableCause says whether a delivery that failed for good, taking the
// health from before to after, disables its subscription, and why. A limit
// trips once per run of failures: when this failure crosses it.
func (c *Client) disableCause(before, after SubscriptionHealth, gone error) (cause, reason string) {
	if gone != nil {
		return DisabledGone, ""
	}
	if n := c.health.failures; n > 0 && before.ConsecutiveFailures < n && after.ConsecutiveFailures >= n {
		return DisabledFailures, fmt.Sprintf("%d deliveries failed in a row", after.ConsecutiveFailures)
	}
	if p := c.health.failingFor; p > 0 && after.failingFor() >= p && !(before.Failing() && before.failingFor() >= p) {
		return DisabledFailingFor, fmt.Sprintf("failing since %s (%s)", after.FailingSince.UTC().Format(time.RFC3339), humanDuration(p))
	}
	return "", ""
}

// disableUnhealthy disables a subscription that kept failing, and reports
// whether it did.
func (c *Client) disableUnhealthy(ctx context.Context, subID, reason string) bool {
	if _, err := c.store.SetSubscriptionDisabled(ctx, subID, true, reason, time.Now()); err != nil {
		c.log.Error("outhook: cannot disable failing subscription", "subscription", subID, "reason", reason, "error", err)
		return false
	}
	c.log.Warn("outhook: subscription disabled", "subscription", subID, "reason", reason)
	return true
}

// humanDuration writes d in days when it is a whole number of them.
func humanDuration(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == day:
		return "1 day"
	case d%day == 0:
		return fmt.Sprintf("%d days", d/day)
	}
	return d.String()
}

func (c *Client) deliveryHealthPayload(d *deliveryState, sub *Subscription, a *Attempt, failedInARow int) DeliveryHealthPayload {
	return DeliveryHealthPayload{
		DeliveryID: d.ID, MessageID: d.MessageID, EventID: d.EventID,
		SubscriptionID: sub.ID, SubscriptionName: sub.Name, DelivererID: a.DelivererID,
		FailedAttempts: failedInARow, Attempts: a.Number,
		ErrorClass: a.ErrorClass, LastError: a.Error, StatusCode: a.StatusCode,
		OccurredAt: d.OccurredAt, LastAttemptAt: a.StartedAt,
	}
}

func (c *Client) subscriptionHealthPayload(d *deliveryState, sub *Subscription, a *Attempt, h SubscriptionHealth, at time.Time) SubscriptionHealthPayload {
	return SubscriptionHealthPayload{
		SubscriptionID: sub.ID, SubscriptionName: sub.Name, DelivererID: sub.DelivererID,
		Health: h, DeliveryID: d.ID, EventID: d.EventID,
		ErrorClass: a.ErrorClass, LastError: a.Error, At: at,
	}
}

// operationalJobs validates and encodes an operational event and returns
// its jobs, one per worker group listening to its hook, without queueing
// them. Failures are logged: an operational event never fails a delivery.
func operationalJobs[T any](ctx context.Context, c *Client, h Hook[T], payload T) []*queue.Job {
	route := c.routes.Load().hooks[h.ID()]
	if route == nil || len(route.groups) == 0 {
		return nil
	}
	var jobs []*queue.Job
	collect := func(_ context.Context, js ...*queue.Job) error {
		jobs = append(jobs, js...)
		return nil
	}
	if err := emit(ctx, c, route, payload, collect); err != nil {
		c.log.WarnContext(ctx, "outhook: cannot emit operational event", "event", h.ID(), "error", err)
		return nil
	}
	return jobs
}

// goneReason is the DisabledReason of a subscription whose destination is
// gone.
func goneReason(err error) string {
	return "destination gone: " + err.Error()
}
