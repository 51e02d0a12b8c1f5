package outhook

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// DeliveryCountQuery selects the deliveries DeliveryCounter counts. Its
// fields work as the fields of the same names of DeliveryQuery: zero
// fields match everything, and Since <= CreatedAt < Until.
type DeliveryCountQuery struct {
	SubscriptionID string
	Since, Until   time.Time
}

// DeliveryCount is one group of deliveries counted by DeliveryCounter: how
// many deliveries of one event to one subscription, through one deliverer,
// stand at one status.
type DeliveryCount struct {
	EventID        string
	SubscriptionID string
	DelivererID    string
	Status         DeliveryStatus
	Count          int
}

// DeliveryCounter is a Store that can count deliveries without listing
// them. It is optional: Client.DeliveryStats uses it when the store has it,
// and otherwise counts what ListDeliveries lists, up to a bound (see
// DeliveryStats.Truncated). MemoryStore and the stores of packages
// postgres and sqlite implement it.
type DeliveryCounter interface {
	// CountDeliveries counts the deliveries that match q by (EventID,
	// SubscriptionID, DelivererID, Status): one DeliveryCount, with a
	// positive Count, per group that has deliveries, in any order. It
	// counts each delivery at its status when it is read.
	CountDeliveries(ctx context.Context, q DeliveryCountQuery) ([]DeliveryCount, error)
}

// DeliveryStatsQuery selects the deliveries Client.DeliveryStats counts:
// those created from Since (included) to Until (excluded).
type DeliveryStatsQuery struct {
	// SubscriptionID, when not empty, counts the deliveries of this
	// subscription only. Deliveries outlive their subscription, so a
	// deleted subscription's deliveries are counted too; an ID that never
	// had any counts none, without an error.
	SubscriptionID string
	// Since is required. Until zero means now.
	Since, Until time.Time
}

// StatusCounts counts deliveries by status. Total is the sum of the three.
type StatusCounts struct {
	Total     int `json:"total"`
	Pending   int `json:"pending"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
}

// add counts n deliveries at status st.
func (c *StatusCounts) add(st DeliveryStatus, n int) {
	switch st {
	case DeliveryPending:
		c.Pending += n
	case DeliverySucceeded:
		c.Succeeded += n
	case DeliveryFailed:
		c.Failed += n
	default:
		return // no store keeps another status; Total stays the sum
	}
	c.Total += n
}

// EventCounts counts the deliveries of one event.
type EventCounts struct {
	EventID string `json:"eventId"`
	StatusCounts
}

// DelivererCounts counts the deliveries made through one deliverer.
type DelivererCounts struct {
	DelivererID string `json:"delivererId"`
	StatusCounts
}

// SubscriptionCounts counts the deliveries to one subscription.
type SubscriptionCounts struct {
	SubscriptionID string `json:"subscriptionId"`
	StatusCounts
}

// DeliveryStats counts the deliveries created in a time range: in all, and
// by event, by deliverer and by subscription, each by status.
//
// The breakdowns are lists of rows sorted by their key (event ID,
// deliverer ID, subscription ID; byte order) rather than maps: JSON clients
// get a stable order, and each row carries its key and its counts flat, as
// in
//
//	{"eventId": "incident.incident.created", "total": 7, "pending": 1, "succeeded": 5, "failed": 1}
//
// A delivery is counted at its status when the stats are read: a pending
// delivery counted now may be counted as succeeded later. Its deliverer is
// the one its subscription had when the delivery was created.
type DeliveryStats struct {
	// Since and Until are the range counted: Since <= CreatedAt < Until.
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// SubscriptionID is the query's: when set, only that subscription's
	// deliveries are counted.
	SubscriptionID string `json:"subscriptionId,omitempty"`
	// StatusCounts counts every delivery in the range.
	StatusCounts
	ByEvent        []EventCounts        `json:"byEvent"`
	ByDeliverer    []DelivererCounts    `json:"byDeliverer"`
	BySubscription []SubscriptionCounts `json:"bySubscription"`
	// Truncated reports that the counts cover only the newest deliveries
	// of the range. It happens only with a store that does not implement
	// DeliveryCounter: the client then lists the range's deliveries to
	// count them, and stops after 10,000.
	Truncated bool `json:"truncated"`
}

// maxStatsListed bounds the deliveries DeliveryStats lists, with a store
// that cannot count them, before it gives up and reports Truncated:
// listing reads every delivery with its attempts, too much to do without
// bound on a request path.
const maxStatsListed = 10_000

// statsPageSize is how many deliveries one ListDeliveries call of the
// listing fallback asks for.
const statsPageSize = 1000

// DeliveryStats counts the deliveries created from q.Since to q.Until by
// status, event, deliverer and subscription (see DeliveryStats). A store
// that implements DeliveryCounter counts them; with any other store the
// client lists them, page by page, and counts at most the newest 10,000,
// reporting Truncated when more remain.
//
// A zero Since, or a Since that is not before Until, is an error that
// names it.
func (c *Client) DeliveryStats(ctx context.Context, q DeliveryStatsQuery) (DeliveryStats, error) {
	if q.Since.IsZero() {
		return DeliveryStats{}, errors.New("outhook: delivery stats: Since is required")
	}
	if q.Until.IsZero() {
		q.Until = time.Now()
	}
	if !q.Since.Before(q.Until) {
		return DeliveryStats{}, fmt.Errorf("outhook: delivery stats: Since %s is not before Until %s",
			q.Since.Format(time.RFC3339Nano), q.Until.Format(time.RFC3339Nano))
	}
	if err := ctx.Err(); err != nil {
		return DeliveryStats{}, err
	}
	cq := DeliveryCountQuery{SubscriptionID: q.SubscriptionID, Since: q.Since, Until: q.Until}
	var (
		counts    []DeliveryCount
		truncated bool
		err       error
	)
	if dc, ok := c.store.(DeliveryCounter); ok {
		counts, err = dc.CountDeliveries(ctx, cq)
	} else {
		counts, truncated, err = countByListing(ctx, c.store, cq)
	}
	if err != nil {
		return DeliveryStats{}, err
	}
	st := summarize(counts)
	st.Since, st.Until, st.SubscriptionID, st.Truncated = q.Since, q.Until, q.SubscriptionID, truncated
	return st, nil
}

// countByListing counts the deliveries that match q by listing them, newest
// first, at most maxStatsListed of them. truncated reports that more
// remain.
func countByListing(ctx context.Context, s Store, q DeliveryCountQuery) (counts []DeliveryCount, truncated bool, err error) {
	groups := map[DeliveryCount]int{} // by the key fields; Count zero
	lq := DeliveryQuery{SubscriptionID: q.SubscriptionID, Since: q.Since, Until: q.Until}
	listed := 0
	for listed < maxStatsListed {
		lq.Limit = min(statsPageSize, maxStatsListed-listed)
		page, err := s.ListDeliveries(ctx, lq)
		if err != nil {
			return nil, false, err
		}
		for _, d := range page {
			groups[DeliveryCount{EventID: d.EventID, SubscriptionID: d.SubscriptionID, DelivererID: d.DelivererID, Status: d.Status}]++
		}
		listed += len(page)
		if len(page) < lq.Limit {
			return groupCounts(groups), false, nil // the range is done
		}
		lq.After = page[len(page)-1].Cursor()
	}
	// At the bound: is anything left?
	lq.Limit = 1
	rest, err := s.ListDeliveries(ctx, lq)
	if err != nil {
		return nil, false, err
	}
	return groupCounts(groups), len(rest) > 0, nil
}

func groupCounts(groups map[DeliveryCount]int) []DeliveryCount {
	out := make([]DeliveryCount, 0, len(groups))
	for k, n := range groups {
		k.Count = n
		out = append(out, k)
	}
	return out
}

// summarize adds up the groups a store counted into the totals and the
// sorted breakdowns. Every list is empty rather than nil, for JSON.
func summarize(counts []DeliveryCount) DeliveryStats {
	var (
		st     DeliveryStats
		events = map[string]*StatusCounts{}
		delivs = map[string]*StatusCounts{}
		subs   = map[string]*StatusCounts{}
	)
	at := func(m map[string]*StatusCounts, k string) *StatusCounts {
		c := m[k]
		if c == nil {
			c = &StatusCounts{}
			m[k] = c
		}
		return c
	}
	for _, g := range counts {
		if g.Count <= 0 {
			continue
		}
		st.add(g.Status, g.Count)
		at(events, g.EventID).add(g.Status, g.Count)
		at(delivs, g.DelivererID).add(g.Status, g.Count)
		at(subs, g.SubscriptionID).add(g.Status, g.Count)
	}
	st.ByEvent = rows(events, func(k string, c StatusCounts) EventCounts { return EventCounts{k, c} })
	st.ByDeliverer = rows(delivs, func(k string, c StatusCounts) DelivererCounts { return DelivererCounts{k, c} })
	st.BySubscription = rows(subs, func(k string, c StatusCounts) SubscriptionCounts { return SubscriptionCounts{k, c} })
	return st
}

// rows turns the counts by key into rows sorted by key, leaving out keys
// whose deliveries all had unknown statuses.
func rows[R any](m map[string]*StatusCounts, row func(string, StatusCounts) R) []R {
	out := make([]R, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if c := m[k]; c.Total > 0 {
			out = append(out, row(k, *c))
		}
	}
	return out
}
