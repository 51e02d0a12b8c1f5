package outhook

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/outhook/outhook/internal/ident"
	"github.com/outhook/outhook/queue"
)

// DefaultRecoverLimit is the default of RecoverRequest.Limit.
const DefaultRecoverLimit = 1000

// maxRecoverLimit bounds RecoverRequest.Limit: one call redelivers at most
// this many deliveries, each a store read, a store write and an enqueue.
const maxRecoverLimit = 10_000

// RecoverRequest selects the failed deliveries of one subscription to send
// again: those created from Since (included) to Until (excluded; zero means
// now). Svix's and Convoy's "recover" work the same way: after an outage of
// the receiving end, the operator sends again what failed meanwhile.
type RecoverRequest struct {
	SubscriptionID string
	Since, Until   time.Time
	// Limit bounds how many deliveries one call redelivers; zero means
	// DefaultRecoverLimit, and at most 10,000. When more remain,
	// RecoverResult.Next resumes.
	Limit int
	// After resumes a recovery: the Next of the call before. The zero
	// value starts from the newest delivery in the range.
	After DeliveryCursor
}

// RecoverResult is what one Recover call did.
type RecoverResult struct {
	// Redelivered counts the deliveries sent again, each as Redeliver
	// does: same delivery ID, the next attempt with TriggerManual.
	Redelivered int
	// Next, when not zero, is where a further call (with it as
	// RecoverRequest.After, and the same range) carries on: the call
	// stopped at Limit. Zero means the range is done.
	Next DeliveryCursor
}

// Recover redelivers the failed deliveries of a subscription created in a
// time range, newest first, at most Limit per call (see RecoverRequest).
//
// It is idempotent: a delivery it sends again is pending until its new
// attempts end, and a pending delivery is not failed, so repeating the
// call, or calling it while an earlier one's deliveries are still being
// attempted, sends none of them twice. Concurrent calls (two operators,
// two nodes) send each failed delivery once: a delivery is reopened only
// if it is still failed with the attempts it was listed with, in one step
// of the store (FailedReopener). Deliveries that fail again are failed
// again, and a later call sends them again.
//
// An unknown subscription is an error matching ErrNotFound; a range that
// ends before it starts, or a negative Limit, an error naming it. When a
// redelivery fails (the store or the queue refused it), Recover stops and
// returns what it did with the error; Next then resumes at the delivery
// that failed (zero: from the start of the range).
func (c *Client) Recover(ctx context.Context, r RecoverRequest) (RecoverResult, error) {
	if c.closed.Load() {
		return RecoverResult{}, ErrClosed
	}
	switch {
	case r.SubscriptionID == "":
		return RecoverResult{}, errors.New("outhook: recover: no subscription ID")
	case r.Limit < 0:
		return RecoverResult{}, fmt.Errorf("outhook: recover: Limit %d is negative", r.Limit)
	case r.Limit > maxRecoverLimit:
		return RecoverResult{}, fmt.Errorf("outhook: recover: Limit %d is more than %d", r.Limit, maxRecoverLimit)
	case !r.Until.IsZero() && !r.Since.IsZero() && !r.Since.Before(r.Until):
		return RecoverResult{}, fmt.Errorf("outhook: recover: Since %s is not before Until %s",
			r.Since.Format(time.RFC3339Nano), r.Until.Format(time.RFC3339Nano))
	}
	if _, err := c.store.GetSubscription(ctx, r.SubscriptionID); err != nil {
		return RecoverResult{}, err
	}
	limit := r.Limit
	if limit == 0 {
		limit = DefaultRecoverLimit
	}
	until := r.Until
	if until.IsZero() {
		// Fixed now, so that deliveries created during the recovery (which
		// would be recovered by a later call) do not shift its pages.
		until = time.Now()
	}
	q := DeliveryQuery{SubscriptionID: r.SubscriptionID, Status: DeliveryFailed, Since: r.Since, Until: until, After: r.After}
	var res RecoverResult
	for res.Redelivered < limit {
		q.Limit = min(limit-res.Redelivered, 100)
		page, err := c.store.ListDeliveries(ctx, q)
		if err != nil {
			return res, err
		}
		for _, d := range page {
			if err := c.recoverOne(ctx, d); err != nil && !errors.Is(err, ErrDeliveryPending) && !errors.Is(err, ErrDeliveryChanged) {
				// Next resumes at this delivery: After is the one before it
				// (zero: from the start of the range).
				res.Next = q.After
				return res, fmt.Errorf("outhook: recover: redeliver %s: %w", d.ID, err)
			} else if err == nil {
				res.Redelivered++
			}
			q.After = d.Cursor()
		}
		if len(page) < q.Limit {
			return res, nil // the range is done
		}
	}
	// Stopped at the limit: more may remain.
	res.Next = q.After
	return res, nil
}

// recoverOne redelivers d, a failed delivery as listed, if it is still that
// delivery: failed, with the same attempts. Otherwise another recovery (or
// a Redeliver) sent it since, and it is not sent again: an error matching
// ErrDeliveryChanged or ErrDeliveryPending.
func (c *Client) recoverOne(ctx context.Context, d *Delivery) error {
	if c.closed.Load() {
		return ErrClosed
	}
	return c.redeliver(ctx, d, func(now time.Time) error {
		if fr, ok := c.store.(FailedReopener); ok {
			_, err := fr.ReopenFailedDelivery(ctx, d.ID, len(d.Attempts), now)
			return err
		}
		cur, err := c.store.GetDelivery(ctx, d.ID)
		if err != nil {
			return err
		}
		if cur.Status != DeliveryFailed || len(cur.Attempts) != len(d.Attempts) {
			return fmt.Errorf("%w: %q", ErrDeliveryChanged, d.ID)
		}
		_, err = c.store.ReopenDelivery(ctx, d.ID, now)
		return err
	})
}

// ReplayResult is what Replay did.
type ReplayResult struct {
	// EventID is the event replayed.
	EventID string
	// Deliveries are the new deliveries' IDs: one per subscription that
	// selects the event now and whose filter passes it. Empty when none
	// does.
	Deliveries []string
}

// Replay sends an emitted event again, to the subscriptions that select it
// now, as new deliveries: new delivery IDs (a receiver sees a new
// webhook-id), the same message ID and occurrence time, the first attempt
// recorded with TriggerManual. The subscriptions are matched and filtered
// as routing does, against the payload the event's deliveries carry (after
// its transform); a subscription created since receives it too, one
// disabled since does not. Every call makes new deliveries: it is not
// idempotent.
//
// outhook keeps an event's payload only with its deliveries, so an event
// that no subscription received cannot be replayed: that, and an unknown
// message, is an error matching ErrNotFound. A hook's message carries one
// event per plugin that registered it: eventID names which, and may be
// empty when the message carries one. The event must be registered in
// this process. When the new deliveries cannot be queued, they are
// recorded as failed, with the reason, and the error is returned.
func (c *Client) Replay(ctx context.Context, messageID, eventID string) (ReplayResult, error) {
	if c.closed.Load() {
		return ReplayResult{}, ErrClosed
	}
	if messageID == "" {
		return ReplayResult{}, errors.New("outhook: replay: no message ID")
	}
	ds, err := c.store.ListDeliveries(ctx, DeliveryQuery{MessageID: messageID, EventID: eventID, Limit: 1000})
	if err != nil {
		return ReplayResult{}, err
	}
	if len(ds) == 0 {
		what := fmt.Sprintf("message %q", messageID)
		if eventID != "" {
			what += fmt.Sprintf(" of event %q", eventID)
		}
		return ReplayResult{}, fmt.Errorf("%w: replay: no delivery of %s is recorded (outhook keeps an event's payload with its deliveries)", ErrNotFound, what)
	}
	if eventID == "" {
		events := map[string]bool{}
		for _, d := range ds {
			events[d.EventID] = true
		}
		if len(events) > 1 {
			return ReplayResult{}, fmt.Errorf("outhook: replay: message %q carries %d events (%s): name one", messageID, len(events), strings.Join(slices.Sorted(maps.Keys(events)), ", "))
		}
		eventID = ds[0].EventID
	}
	rec := c.registry.lookup(eventID)
	if rec == nil {
		return ReplayResult{}, fmt.Errorf("%w: replay: event %q is not registered in this process", ErrNotFound, eventID)
	}
	src := ds[0]
	now := time.Now()
	// The replay's own key: its deliveries' IDs differ from the event's
	// first deliveries', and from every other replay's.
	key := ident.New("rpl_", now) + "." + messageID
	jobs, err := c.route(ctx, rec, src.Payload, key, messageID, src.OccurredAt, TriggerManual)
	if err != nil {
		return ReplayResult{}, err
	}
	res := ReplayResult{EventID: eventID, Deliveries: make([]string, len(jobs))}
	for i, j := range jobs {
		res.Deliveries[i] = j.ID
	}
	if len(jobs) == 0 {
		return res, nil
	}
	if err := c.queue.Enqueue(ctx, jobs...); err != nil {
		// Leave no delivery pending without a job.
		u := DeliveryUpdate{Status: DeliveryFailed, LastError: "outhook: replay could not be queued: " + err.Error(), UpdatedAt: time.Now()}
		var errs []error
		for _, id := range res.Deliveries {
			errs = append(errs, c.store.UpdateDelivery(context.WithoutCancel(ctx), id, nil, u))
		}
		if errors.Is(err, queue.ErrClosed) {
			err = ErrClosed
		}
		return ReplayResult{}, errors.Join(append([]error{fmt.Errorf("outhook: replay: %w", err)}, errs...)...)
	}
	return res, nil
}
