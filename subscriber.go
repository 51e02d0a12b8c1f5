package outhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/trace"

	"github.com/outhook/outhook/internal/ident"
	"github.com/outhook/outhook/queue"
)

// routeEvent is the integration subscriber of one event: the handler of
// worker group "integration.<event ID>". It transforms the payload once,
// finds the matching subscriptions through the store's index, records one
// pending delivery per subscription and queues their delivery jobs together
// with its own completion.
//
// Delivery IDs are derived from the message ID and the subscription ID, so
// processing the same event again (after a crash, say) finds the deliveries
// it already made instead of making new ones.
func (c *Client) routeEvent(ctx context.Context, rec *eventRecord, job *queue.Job) (next []*queue.Job, err error) {
	if c.tel.tracer != nil {
		// The run's span continues the emit span's trace (hookHandler
		// extracted it from the job), and the delivery jobs carry it on.
		var span trace.Span
		ctx, span = c.tel.startRoute(ctx, rec, job.ID)
		defer func() { endRoute(span, recover(), len(next), err) }()
	}
	payload := json.RawMessage(job.Payload)
	if rec.transform != nil {
		out, err := rec.transform(job.Payload)
		if err != nil {
			return nil, err
		}
		payload = out
	} else if !json.Valid(payload) || !utf8.Valid(payload) {
		// EmitHook queues JSON it encoded itself; anything else is a damaged
		// or foreign job. Stored, it would reach receivers as it is and
		// break every listing that includes it; no retry can mend it.
		return nil, poison(fmt.Errorf("outhook: event %q: the queued payload is not one valid JSON value in UTF-8 (%d bytes)", rec.ID, len(payload)))
	}
	return c.route(ctx, rec, payload, job.ID, job.ID, job.CreatedAt, "")
}

// route records one pending delivery of an event's (transformed) payload
// per subscription that selects it now and whose filter passes it, and
// returns their delivery jobs. The deliveries' IDs derive from key, the
// event and the subscription: routing one key again finds the deliveries
// it made. Event routing's key is the message ID; a replay's its own. The
// first attempts are recorded with trigger (empty: TriggerScheduled).
func (c *Client) route(ctx context.Context, rec *eventRecord, payload json.RawMessage, key, messageID string, occurredAt time.Time, trigger AttemptTrigger) ([]*queue.Job, error) {
	subs, err := c.store.MatchSubscriptions(ctx, rec.ID)
	if err != nil {
		return nil, fmt.Errorf("outhook: match subscriptions of event %q: %w", rec.ID, err)
	}
	if len(subs) == 0 {
		return nil, nil
	}
	var (
		fin  = filterInput{raw: payload, messageID: messageID} // decoded once, when a filter needs it
		now  = time.Now()
		ds   = make([]*Delivery, 0, len(subs))
		next = make([]*queue.Job, 0, len(subs))
	)
	for _, sub := range subs {
		if sub.Disabled {
			continue
		}
		if sub.Filter != nil {
			pass, err := c.passFilter(ctx, rec, sub, &fin)
			if err != nil {
				return nil, err
			}
			if !pass {
				continue
			}
		}
		r := &routed{Delivery: Delivery{
			// Two events can share a hook, and so a message ID: the event ID
			// keeps their deliveries to one subscription apart.
			ID:                 ident.Derive("dlv_", key, rec.ID, sub.ID),
			MessageID:          messageID,
			EventID:            rec.ID,
			SubscriptionID:     sub.ID,
			DelivererID:        sub.DelivererID,
			Status:             DeliveryPending,
			Payload:            payload,
			OccurredAt:         occurredAt,
			CreatedAt:          now,
			UpdatedAt:          now,
			NextAttemptAt:      now,
			NextAttemptTrigger: trigger,
		}}
		if rec.ordering != nil {
			doc, err := fin.decode(rec.ID)
			if err != nil {
				return nil, err
			}
			r.OrderingKey = orderingValue(doc, rec.ordering)
		}
		r.job = queue.Job{ID: r.ID, Group: deliveryGroup, Kind: kindDelivery, CreatedAt: now, Trace: c.tel.jobTrace(ctx)}
		r.Attempts = r.first[:0:1]
		ds = append(ds, &r.Delivery)
		next = append(next, &r.job)
	}
	if len(ds) == 0 {
		return nil, nil
	}
	if err := c.store.CreateDeliveries(ctx, ds); err != nil {
		return nil, fmt.Errorf("outhook: record deliveries of event %q: %w", rec.ID, err)
	}
	return next, nil
}

// routed is a new delivery, its job and room for its first attempt, in one
// allocation: a pending delivery keeps all three (the store the delivery
// and its attempts, the queue the job), and most deliveries make one
// attempt.
type routed struct {
	Delivery
	job   queue.Job
	first [1]Attempt
}

// storeErrorPrefix marks the job errors of store failures, which the
// delivery worker counts apart from delivery attempts.
const storeErrorPrefix = "outhook: store: "

// deliveryIDOf returns the delivery a delivery job is for: its payload, or
// its ID for jobs made before a redelivery (whose job IDs differ from the
// delivery's, so that the old and new jobs never share an ID).
func deliveryIDOf(job *queue.Job) string {
	if len(job.Payload) > 0 {
		return string(job.Payload)
	}
	return job.ID
}

// handleDelivery makes one attempt of one delivery: the handler of the
// delivery worker group.
func (c *Client) handleDelivery(ctx context.Context, job *queue.Job) queue.Result {
	ctx = c.tel.extractJob(ctx, job) // the attempt's span continues the routing run's trace
	d, err := c.readDelivery(ctx, deliveryIDOf(job))
	if errors.Is(err, ErrNotFound) {
		c.log.Warn("outhook: delivery job without a delivery record", "delivery", deliveryIDOf(job))
		return queue.Result{}
	}
	if err != nil {
		return c.storeFailure(ctx, job, err)
	}
	if d.Status != DeliveryPending {
		return queue.Result{} // finished already: a duplicate job
	}
	now := time.Now()
	sub, err := c.store.GetSubscription(ctx, d.SubscriptionID)
	switch {
	case errors.Is(err, ErrNotFound):
		c.limits.forget(d.SubscriptionID)
		return c.abandon(ctx, job, &d, "", "subscription was deleted")
	case err != nil:
		return c.storeFailure(ctx, job, err)
	case sub.Disabled:
		return c.abandon(ctx, job, &d, sub.DelivererID, "subscription is disabled")
	}
	// The turn of an ordered delivery, then the subscription's rate limit
	// and in-flight cap: a delivery that must wait gives its worker back
	// and runs again later. That is not an attempt: nothing is recorded,
	// and the retry schedule does not move.
	if d.OrderingKey != "" {
		wait, err := c.orderingWait(ctx, &d, c.limits.get(sub), now)
		if err != nil {
			return c.storeFailure(ctx, job, err)
		}
		if wait > 0 {
			return queue.Result{Disposition: queue.Snooze, RunAt: time.Now().Add(wait)}
		}
	}
	lim, wait := c.limits.acquire(sub, d.ID, time.Now())
	if lim == nil {
		return queue.Result{Disposition: queue.Snooze, RunAt: time.Now().Add(wait)}
	}
	released := false
	defer func() {
		if !released { // a panic below: give the slot back all the same
			lim.release("", 0)
		}
	}()

	// The attempt and the request escape to the heap (the store and the
	// deliverer are interfaces): one allocation holds both.
	w := &struct {
		attempt Attempt
		req     DeliveryRequest
	}{}
	attempt := &w.attempt
	*attempt = Attempt{Number: d.attempts + 1, StartedAt: now, Trigger: d.NextAttemptTrigger, DelivererID: sub.DelivererID}
	if attempt.Trigger == "" {
		attempt.Trigger = TriggerScheduled
	}
	var res DeliveryResult
	dl, ok := c.deliverers[sub.DelivererID]
	if !ok {
		err = fmt.Errorf("outhook: no deliverer %q is registered in this process", sub.DelivererID)
	} else {
		ev, _ := c.registry.Event(d.EventID)
		w.req = DeliveryRequest{
			DeliveryID:   d.ID,
			MessageID:    d.MessageID,
			EventID:      d.EventID,
			Event:        ev,
			Subscription: *sub,
			Payload:      d.Payload,
			OccurredAt:   d.OccurredAt,
			Attempt:      attempt.Number,
		}
		res, err = c.callDeliverer(ctx, dl, &w.req)
	}
	end := time.Now()
	if err != nil && ctx.Err() != nil {
		// The queue is shutting down: this attempt did not really happen.
		return queue.Result{Disposition: queue.Retry, Err: ctx.Err()}
	}
	attempt.record(res, err, end)
	released = true
	lim.release(attempt.Outcome, attempt.Duration)
	if err != nil {
		// A destination that is down fails every delivery with the same
		// text, which pending deliveries keep: keep it once.
		attempt.Error = c.errorTexts.intern(attempt.Error)
	}

	u := DeliveryUpdate{UpdatedAt: end}
	result := queue.Result{}
	switch attempt.Outcome {
	case AttemptSucceeded:
		u.Status, u.ExternalID = DeliverySucceeded, res.ExternalID
	case AttemptPermanent:
		u.Status = DeliveryFailed
	case AttemptRetryable:
		if at, ok := c.deliveryRetry.retryAt(end, d.round(attempt), attempt.RetryAfter, DeliverySchedule); ok {
			u.Status, u.NextAttemptAt = DeliveryPending, at
			attempt.NextAttemptAt = at
			// No Err: the attempt's error is in the delivery's attempt
			// log, and a copy in the job's Errors would be kept again per
			// pending delivery. Job.Errors holds the failures of the
			// handler itself (store failures, shutdowns); storeFailure
			// counts them.
			result = queue.Result{Disposition: queue.Retry, RunAt: at}
		} else {
			u.Status = DeliveryFailed
		}
	}
	u.LastError = attempt.Error
	// The attempt was made: from here on, a deadline of the handler's does
	// not stop its record (see recordContext).
	ctx, cancelRecord := recordContext(ctx)
	defer cancelRecord()
	if uerr := c.store.UpdateDelivery(ctx, d.ID, attempt, u); uerr != nil {
		return c.storeFailure(ctx, job, uerr)
	}
	c.tel.attemptRecorded(ctx, d.EventID, d.OccurredAt, attempt, u.Status)
	var gone error
	if _, ok := errors.AsType[*GoneError](err); ok {
		gone = err
	}
	// Endpoint health, and the operational events (see health.go). The
	// jobs of a delivery that ended are admitted with its completion.
	result.Next = c.afterAttempt(ctx, &d, sub, attempt, u.Status, gone)
	if err != nil {
		c.log.WarnContext(ctx, "outhook: delivery attempt failed", "delivery", d.ID, "event", d.EventID,
			"subscription", d.SubscriptionID, "message", d.MessageID, "deliverer", attempt.DelivererID,
			"attempt", attempt.Number, "outcome", attempt.Outcome, "error_class", attempt.ErrorClass,
			"status_code", attempt.StatusCode, "status", u.Status, "error", err)
	} else if c.log.Enabled(ctx, slog.LevelDebug) {
		c.log.DebugContext(ctx, "outhook: delivery attempt succeeded", "delivery", d.ID, "event", d.EventID,
			"subscription", d.SubscriptionID, "message", d.MessageID, "deliverer", attempt.DelivererID,
			"attempt", attempt.Number, "status_code", attempt.StatusCode, "duration", attempt.Duration)
	}
	return result
}

// recordGrace is how long past the handler's deadline the record of an
// attempt that was made may still be written.
const recordGrace = 5 * time.Second

// recordContext returns the context the record of an attempt that was made
// is written under, with its operational events. A durable queue gives a
// handler a deadline a margin short of its lease; a store slow enough that
// the deadline passes while it writes the record would otherwise lose the
// record, and the job would run again: the receiver gets the event twice
// and the attempt log misses one. The record context keeps ctx's values,
// ends recordGrace after ctx's deadline, but no later than halfway from
// the deadline to the end of the run's lease (queue.LeaseEnd), which leaves
// the queue the other half to apply the result, and is still cancelled
// with ctx (a queue's Stop running out of time). Without a deadline (the
// in-memory and NATS queues) it is ctx itself, at no cost.
func recordContext(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return ctx, func() {}
	}
	end := deadline.Add(recordGrace)
	if lease, ok := queue.LeaseEnd(ctx); ok {
		if half := deadline.Add(lease.Sub(deadline) / 2); half.Before(end) {
			end = half
		}
	}
	if !end.After(deadline) {
		return ctx, func() {}
	}
	rctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), end)
	stop := context.AfterFunc(ctx, func() {
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			cancel()
		}
	})
	return rctx, func() { stop(); cancel() }
}

// readDelivery reads the state of a delivery before an attempt. The
// in-memory store answers without copying the delivery; other stores
// through GetDelivery.
func (c *Client) readDelivery(ctx context.Context, id string) (deliveryState, error) {
	if ms, ok := c.store.(*MemoryStore); ok {
		return ms.deliveryState(id)
	}
	d, err := c.store.GetDelivery(ctx, id)
	if err != nil {
		return deliveryState{}, err
	}
	return stateOf(d), nil
}

// callDeliverer makes one attempt within the delivery timeout, turning a
// panic into a retryable error.
func (c *Client) callDeliverer(ctx context.Context, dl Deliverer, req *DeliveryRequest) (res DeliveryResult, err error) {
	if span := trace.Span(nil); c.tel.tracer != nil {
		// The span of the attempt, ended after the panic handler below;
		// the deliverer's HTTP client can propagate its context.
		ctx, span = c.tel.startAttempt(ctx, dl.ID(), req)
		defer func() { endAttempt(span, res, err) }()
	}
	ctx, cancel := context.WithTimeout(ctx, c.deliveryTimeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			c.log.ErrorContext(ctx, "outhook: deliverer panicked", "delivery", req.DeliveryID, "event", req.EventID,
				"subscription", req.Subscription.ID, "message", req.MessageID, "deliverer", dl.ID(),
				"attempt", req.Attempt, "panic", r, "stack", string(debug.Stack()))
			res, err = DeliveryResult{}, fmt.Errorf("outhook: deliverer %q panicked: %v", dl.ID(), r)
		}
	}()
	return dl.Deliver(ctx, req)
}

// abandon ends a delivery without an attempt, because its subscription can no
// longer receive it. It can be redelivered later. delivererID is the
// subscription's deliverer, empty when the subscription is gone.
func (c *Client) abandon(ctx context.Context, job *queue.Job, d *deliveryState, delivererID, why string) queue.Result {
	u := DeliveryUpdate{Status: DeliveryFailed, LastError: why, UpdatedAt: time.Now()}
	if err := c.store.UpdateDelivery(ctx, d.ID, nil, u); err != nil {
		return c.storeFailure(ctx, job, err)
	}
	c.tel.deliveryAbandoned(ctx, d.EventID, delivererID)
	c.log.InfoContext(ctx, "outhook: delivery abandoned", "delivery", d.ID, "event", d.EventID,
		"subscription", d.SubscriptionID, "message", d.MessageID, "reason", why)
	return queue.Result{}
}

// storeFailure retries a delivery job whose store access failed, on the
// handler schedule; the delivery itself is untouched.
//
// Store failures are counted apart from delivery attempts: the handler
// schedule is indexed by the failures in a row, which a recorded attempt
// ends, so a brief store outage late in a delivery's retries does not use
// up the delivery.
func (c *Client) storeFailure(ctx context.Context, job *queue.Job, err error) queue.Result {
	if ctx.Err() != nil {
		return queue.Result{Disposition: queue.Retry, Err: ctx.Err()}
	}
	id := deliveryIDOf(job)
	err = fmt.Errorf("%s%w", storeErrorPrefix, err)
	// Store failures in a row: those of the runs just before this one. A
	// run that made an attempt records no error, so it leaves a gap in the
	// attempt numbers.
	inARow := 1
	for i := len(job.Errors) - 1; i >= 0; i-- {
		e := job.Errors[i]
		if e.Attempt != job.Attempt-inARow || !strings.HasPrefix(e.Error, storeErrorPrefix) {
			break
		}
		inARow++
	}
	at, ok := c.handlerRetry.retryAt(time.Now(), inARow, 0, HandlerSchedule)
	if !ok {
		// Leave no delivery pending without a job: mark it failed, so that
		// it is listed and can be redelivered, if the store lets us.
		u := DeliveryUpdate{Status: DeliveryFailed, LastError: err.Error(), UpdatedAt: time.Now()}
		if uerr := c.store.UpdateDelivery(context.WithoutCancel(ctx), id, nil, u); uerr != nil && !errors.Is(uerr, ErrNotFound) {
			c.log.Error("outhook: store failed, delivery left pending without a job", "delivery", id, "error", err, "update_error", uerr)
		} else {
			c.log.Error("outhook: store failed, giving up on delivery", "delivery", id, "error", err)
		}
		return queue.Result{Disposition: queue.Dead, Err: err}
	}
	c.log.Warn("outhook: store failed, will retry delivery job", "delivery", id, "error", err)
	return queue.Result{Disposition: queue.Retry, RunAt: at, Err: err}
}

// round returns the number of attempt a within the delivery's current round
// of retries: 1 for the first attempt after the delivery was created or
// redelivered. The retry schedule is indexed by it, so that runs of the job
// that made no attempt (a store failure, a shutdown) do not advance it.
func (d *deliveryState) round(a *Attempt) int {
	if a.Trigger == TriggerManual {
		return 1
	}
	return d.sinceManual + 1
}

// record fills in the outcome of an attempt that ended at end.
func (a *Attempt) record(res DeliveryResult, err error, end time.Time) {
	a.Duration = end.Sub(a.StartedAt)
	a.StatusCode = res.StatusCode
	a.Response = truncate(res.Response, MaxResponseExcerpt)
	a.RequestHeaders = recordHeaders(res.RequestHeaders, false)
	a.ResponseHeaders = recordHeaders(res.ResponseHeaders, true)
	a.ExternalID = res.ExternalID
	a.Outcome, a.RetryAfter, a.Error, a.ErrorClass = readError(err)
}

// readError classifies a deliverer's error and reads its text. A broken
// error (a nil pointer in an interface, say) whose methods panic is a
// retryable failure of class ErrorClassDeliverer, not a crash.
func readError(err error) (outcome AttemptOutcome, retryAfter time.Duration, text, class string) {
	if err == nil {
		return AttemptSucceeded, 0, "", ""
	}
	defer func() {
		if r := recover(); r != nil {
			outcome, retryAfter, class = AttemptRetryable, 0, ErrorClassDeliverer
			text = fmt.Sprintf("outhook: reading the deliverer's error (%T) panicked: %v", err, r)
		}
	}()
	outcome, retryAfter = classify(err)
	return outcome, retryAfter, err.Error(), errorClass(err)
}

// disableGone disables a subscription whose destination is gone, and
// reports whether it did.
func (c *Client) disableGone(ctx context.Context, subID string, err error) bool {
	reason := goneReason(err)
	if _, derr := c.store.SetSubscriptionDisabled(context.WithoutCancel(ctx), subID, true, reason, time.Now()); derr != nil {
		c.log.Error("outhook: cannot disable subscription whose destination is gone", "subscription", subID, "error", derr)
		return false
	}
	c.log.Warn("outhook: subscription disabled", "subscription", subID, "reason", reason)
	return true
}

// textCache shares equal strings: the texts of failed attempts, which a
// destination that is down repeats for every delivery, and which each
// pending delivery keeps in its attempt, its LastError and its queue job.
// It holds the last text seen per slot, so it never grows; a text that
// misses is returned as it is. The zero value is ready to use.
type textCache struct {
	slots [64]atomic.Pointer[string]
}

// intern returns a string equal to s, shared with earlier calls when one
// is cached.
func (c *textCache) intern(s string) string {
	if s == "" {
		return s
	}
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	slot := &c.slots[h%uint32(len(c.slots))]
	if p := slot.Load(); p != nil && *p == s {
		return *p
	}
	p := new(string)
	*p = s
	slot.Store(p)
	return s
}
