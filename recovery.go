package outhook

import (
	"context"
	"errors"
	"fmt"
	"time"
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
// attempted, sends none of them twice. Deliveries that fail again are
// failed again, and a later call sends them again.
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
			if err := c.Redeliver(ctx, d.ID); err != nil && !errors.Is(err, ErrDeliveryPending) {
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
