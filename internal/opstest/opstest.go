// Package opstest is the conformance suite of outhook's operations on a
// client, run on every backend: recovery (Client.Recover), replay
// (Client.Replay), the delivery listing's cursors and time range
// (Client.Deliveries) and payload filters in CEL with their counters
// (Client.FilterStats), the per-subscription delivery limits
// (Subscription.Limits), ordering keys, and endpoint health (automatic
// disabling and the operational events). The store and queue suites (storetest,
// queuetest) check each interface alone; this one checks that the client's
// operations built on them behave alike on the in-memory, SQLite, Postgres
// and NATS backends, as issue 6 asks.
//
// A backend's test runs it in a few lines:
//
//	func TestOperations(t *testing.T) {
//		opstest.Run(t, func(t *testing.T) (queue.Queue, outhook.Store) {
//			return newQueue(t), newStore(t)
//		})
//	}
//
// The suite asserts only what the client documents: it never relies on
// one store's clock precision, on the order in which a durable queue runs
// jobs, or on timing; it waits for work with the client's WaitIdle.
package opstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
	"github.com/outhook/outhook/queue"
)

// WaitTimeout bounds every wait for the client's queue to be idle: durable
// backends take their time.
const WaitTimeout = 60 * time.Second

// NewParts returns an unstarted queue and a store, both empty and of the
// subtest's own (a NATS stream, a database schema or file no other subtest
// uses), and registers their cleanup with t.Cleanup. The suite builds a
// client on them, which it starts and stops. The queue must implement
// queue.Idler.
type NewParts func(t *testing.T) (queue.Queue, outhook.Store)

// Run runs the suite, one subtest per property, each on the parts of its
// own from newParts.
func Run(t *testing.T, newParts NewParts) {
	t.Helper()
	s := &suite{newParts: newParts}
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"RecoverRange", s.testRecoverRange},
		{"RecoverBounded", s.testRecoverBounded},
		{"RecoverIdempotentInFlight", s.testRecoverInFlight},
		{"RecoverErrors", s.testRecoverErrors},
		{"RedeliverAfterAbandoned", s.testRedeliverAfterAbandoned},
		{"Replay", s.testReplay},
		{"ReplayErrors", s.testReplayErrors},
		{"DeliveriesPaging", s.testPaging},
		{"DeliveriesTimeRange", s.testTimeRange},
		{"FilterExprRouting", s.testFilterRouting},
		{"FilterStats", s.testFilterStats},
		{"LimitsMaxInFlight", s.testLimitsMaxInFlight},
		{"LimitsRate", s.testLimitsRate},
		{"OrderingKeys", s.testOrdering},
		{"HealthDisable", s.testHealthDisable},
	} {
		t.Run(tc.name, tc.fn)
	}
}

type suite struct {
	newParts NewParts
}

// Alert is the payload of the suite's events.
type Alert struct {
	ID        string            `json:"id" validate:"required"`
	Severity  string            `json:"severity" validate:"required,oneof=critical major minor"`
	SystemIDs []string          `json:"systemIds"`
	Count     int               `json:"count"`
	Labels    map[string]string `json:"labels"`
}

// The suite's hooks, registered by the plugin "ops" as the events
// ops.raised, ops.cleared and ops.mapped (whose transform renames fields).
var (
	raised  = outhook.MustNewHook[Alert]("raised")
	cleared = outhook.MustNewHook[Alert]("cleared")
	mapped  = outhook.MustNewHook[Alert]("mapped")
	ordered = outhook.MustNewHook[Alert]("ordered")
	plugin  = outhook.PluginMetadata{PluginID: "ops", DisplayName: "Operations suite"}
)

const (
	raisedEvent  = "ops.raised"
	clearedEvent = "ops.cleared"
	mappedEvent  = "ops.mapped"
	orderedEvent = "ops.ordered"
)

func newRegistry() *outhook.EventRegistry {
	reg := outhook.NewEventRegistry()
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[Alert]{Hook: raised, DisplayName: "Alert raised"}, plugin)
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[Alert]{Hook: cleared, DisplayName: "Alert cleared"}, plugin)
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[Alert]{
		Hook: mapped, DisplayName: "Alert, mapped",
		TransformPayload: func(a Alert) (map[string]any, error) {
			return map[string]any{"alert_id": a.ID, "level": a.Severity}, nil
		},
	}, plugin)
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[Alert]{Hook: ordered, DisplayName: "Alert, ordered by ID", OrderingKey: "id"}, plugin)
	return reg
}

func alert(id string) Alert {
	return Alert{ID: id, Severity: "critical", SystemIDs: []string{"sys-1"}, Count: 3, Labels: map[string]string{"team": "db"}}
}

// env is one subtest's client, its fake deliverer and its store.
type env struct {
	t    *testing.T
	c    *outhook.Client
	fake *outhooktest.Deliverer
}

// client builds and starts a client on new parts; cfg, when not nil, sets
// the client's timeouts and retry policies.
func (s *suite) client(t *testing.T, cfg *outhook.Config) *env {
	t.Helper()
	q, store := s.newParts(t)
	require.NotNil(t, q, "newParts returned a nil queue")
	require.NotNil(t, store, "newParts returned a nil store")
	_, ok := q.(queue.Idler)
	require.True(t, ok, "the queue %T does not implement queue.Idler", q)
	var c outhook.Config
	if cfg != nil {
		c = *cfg
	}
	fake := outhooktest.NewDeliverer("fake")
	c.Registry = newRegistry()
	c.Deliverers = []outhook.Deliverer{fake}
	c.Queue, c.Store = q, store
	return &env{t: t, c: outhooktest.NewClient(t, &c), fake: fake}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	t.Cleanup(cancel)
	return c
}

// wait waits until the client has no work left.
func (e *env) wait() {
	e.t.Helper()
	c, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	start := time.Now()
	require.NoError(e.t, e.c.WaitIdle(c), "the client is not idle after %s", time.Since(start))
}

func (e *env) subscribe(sub outhook.Subscription) outhook.Subscription {
	e.t.Helper()
	sub.DelivererID = "fake"
	got, err := e.c.CreateSubscription(ctx(e.t), sub)
	require.NoError(e.t, err)
	return got
}

func (e *env) emit(h outhook.Hook[Alert], a Alert) {
	e.t.Helper()
	require.NoError(e.t, outhook.EmitHook(ctx(e.t), e.c, h, a))
}

func (e *env) deliveries(q outhook.DeliveryQuery) []outhook.Delivery {
	e.t.Helper()
	ds, err := e.c.Deliveries(ctx(e.t), q)
	require.NoError(e.t, err)
	return ds
}

func (e *env) delivery(id string) outhook.Delivery {
	e.t.Helper()
	d, err := e.c.Delivery(ctx(e.t), id)
	require.NoError(e.t, err)
	return d
}

// failAll emits n events to a new subscription whose deliveries all fail
// for good, and returns it with its failed deliveries, newest first.
func (e *env) failAll(n int) (outhook.Subscription, []outhook.Delivery) {
	e.t.Helper()
	e.fake.SetDefault(outhooktest.FailPermanent(nil))
	sub := e.subscribe(outhook.Subscription{Events: []string{raisedEvent}})
	for i := range n {
		e.emit(raised, alert(fmt.Sprint("a-", i)))
	}
	e.wait()
	ds := e.deliveries(outhook.DeliveryQuery{SubscriptionID: sub.ID, Status: outhook.DeliveryFailed, Limit: 1000})
	require.Len(e.t, ds, n)
	return sub, ds
}

// inRange reports whether d was created in [since, until).
func inRange(d outhook.Delivery, since, until time.Time) bool {
	return (since.IsZero() || !d.CreatedAt.Before(since)) && (until.IsZero() || d.CreatedAt.Before(until))
}

// testRecoverRange: Recover sends again the failed deliveries of a
// subscription created in [Since, Until), keeping their IDs, with a manual
// attempt; the others stay failed; a second call finds nothing to do.
func (s *suite) testRecoverRange(t *testing.T) {
	e := s.client(t, nil)
	sub, ds := e.failAll(6)
	e.fake.SetDefault(outhooktest.Succeed())

	// From the 2nd oldest to the newest, excluded. Deliveries routed
	// together may share a CreatedAt on a store that keeps microseconds:
	// what is in the range is read from the deliveries themselves.
	since, until := ds[4].CreatedAt, ds[0].CreatedAt
	want := map[string]bool{}
	for _, d := range ds {
		if inRange(d, since, until) {
			want[d.ID] = true
		}
	}
	require.NotEmpty(t, want)
	require.Less(t, len(want), len(ds), "the newest is outside the range")
	res, err := e.c.Recover(ctx(t), outhook.RecoverRequest{SubscriptionID: sub.ID, Since: since, Until: until})
	require.NoError(t, err)
	require.Equal(t, len(want), res.Redelivered)
	require.True(t, res.Next.IsZero(), "the range is done")
	e.wait()

	for _, d := range ds {
		got := e.delivery(d.ID)
		if want[d.ID] {
			require.Equal(t, outhook.DeliverySucceeded, got.Status, "delivery %s is in the range", d.ID)
			require.Len(t, got.Attempts, 2)
			require.Equal(t, outhook.TriggerManual, got.Attempts[1].Trigger)
			require.Equal(t, 2, got.Attempts[1].Number)
		} else {
			require.Equal(t, outhook.DeliveryFailed, got.Status, "delivery %s is outside the range", d.ID)
			require.Len(t, got.Attempts, 1)
		}
	}
	require.Len(t, e.fake.Delivered(), len(want))
	for _, call := range e.fake.Delivered() {
		require.True(t, want[call.Request.DeliveryID], "the same delivery ID, for receivers to deduplicate")
	}

	// Again: they succeeded, nothing is sent.
	res, err = e.c.Recover(ctx(t), outhook.RecoverRequest{SubscriptionID: sub.ID, Since: since, Until: until})
	require.NoError(t, err)
	require.Zero(t, res.Redelivered)
	require.True(t, res.Next.IsZero())
}

// testRecoverBounded: a recovery of more than Limit deliveries takes
// several calls, each resuming at the Next of the one before, and sends
// every failed delivery once.
func (s *suite) testRecoverBounded(t *testing.T) {
	e := s.client(t, nil)
	sub, ds := e.failAll(7)
	e.fake.SetDefault(outhooktest.Succeed())
	req := outhook.RecoverRequest{SubscriptionID: sub.ID, Limit: 3}
	var total, calls int
	for {
		calls++
		require.LessOrEqual(t, calls, 4, "7 deliveries, 3 a call: the recovery does not end")
		res, err := e.c.Recover(ctx(t), req)
		require.NoError(t, err)
		require.LessOrEqual(t, res.Redelivered, 3, "at most Limit a call")
		total += res.Redelivered
		if res.Next.IsZero() {
			break
		}
		// The cursor survives an API's round trip.
		next, err := outhook.ParseDeliveryCursor(res.Next.String())
		require.NoError(t, err)
		req.After = next
	}
	require.Equal(t, len(ds), total, "every failed delivery once")
	e.wait()
	require.Empty(t, e.deliveries(outhook.DeliveryQuery{SubscriptionID: sub.ID, Status: outhook.DeliveryFailed}))
	require.Len(t, e.fake.Delivered(), len(ds))
	seen := map[string]bool{}
	for _, call := range e.fake.Delivered() {
		require.False(t, seen[call.Request.DeliveryID], "delivery %s sent twice", call.Request.DeliveryID)
		seen[call.Request.DeliveryID] = true
	}
}

// testRecoverInFlight: the deliveries a recovery sent are pending until
// their new attempts end, so a second recovery meanwhile sends none of
// them; each ends with one redelivery's attempts, never two.
func (s *suite) testRecoverInFlight(t *testing.T) {
	// Each redelivery's attempt hangs until the test releases it, while
	// the second call comes. (The subscription is failing, so its attempts
	// run two at a time, which changes nothing here.)
	e := s.client(t, &outhook.Config{DeliveryTimeout: WaitTimeout, DeliveryRetry: outhooktest.NoDelay(1)})
	sub, ds := e.failAll(4)
	release := make(chan struct{})
	e.fake.SetDefault(outhooktest.BlockUntil(release))
	res, err := e.c.Recover(ctx(t), outhook.RecoverRequest{SubscriptionID: sub.ID})
	require.NoError(t, err)
	require.Equal(t, len(ds), res.Redelivered)
	res, err = e.c.Recover(ctx(t), outhook.RecoverRequest{SubscriptionID: sub.ID})
	require.NoError(t, err)
	require.Zero(t, res.Redelivered, "every delivery is pending")
	for _, d := range ds {
		require.ErrorIs(t, e.c.Redeliver(ctx(t), d.ID), outhook.ErrDeliveryPending)
	}
	close(release)
	e.wait()
	got := e.deliveries(outhook.DeliveryQuery{SubscriptionID: sub.ID})
	require.Len(t, got, len(ds))
	for _, d := range got {
		require.Equal(t, outhook.DeliveryFailed, d.Status)
		require.Len(t, d.Attempts, 2, "the first attempt and one redelivery's")
	}
}

// testRecoverErrors: bad requests are refused and change nothing.
func (s *suite) testRecoverErrors(t *testing.T) {
	e := s.client(t, nil)
	sub, _ := e.failAll(1)
	now := time.Now()
	_, err := e.c.Recover(ctx(t), outhook.RecoverRequest{SubscriptionID: "sub_missing"})
	require.ErrorIs(t, err, outhook.ErrNotFound)
	_, err = e.c.Recover(ctx(t), outhook.RecoverRequest{})
	require.Error(t, err)
	_, err = e.c.Recover(ctx(t), outhook.RecoverRequest{SubscriptionID: sub.ID, Since: now, Until: now.Add(-time.Hour)})
	require.Error(t, err)
	_, err = e.c.Recover(ctx(t), outhook.RecoverRequest{SubscriptionID: sub.ID, Limit: -1})
	require.Error(t, err)
	require.Len(t, e.deliveries(outhook.DeliveryQuery{SubscriptionID: sub.ID, Status: outhook.DeliveryFailed}), 1,
		"bad requests change nothing")
	require.Len(t, e.fake.Calls(), 1)
}

// testReplay: Replay sends an event again to the subscriptions that select
// it now (filters applied, disabled ones left out), as new deliveries of
// the same message; every call makes new ones.
func (s *suite) testReplay(t *testing.T) {
	e := s.client(t, nil)
	a := e.subscribe(outhook.Subscription{Events: []string{raisedEvent}})
	b := e.subscribe(outhook.Subscription{Events: []string{"ops.**"}})
	e.emit(raised, alert("a-1"))
	e.wait()
	first := e.deliveries(outhook.DeliveryQuery{})
	require.Len(t, first, 2)
	msg := first[0].MessageID

	// Since then: a subscription more, one whose filter turns the event
	// away, and b disabled.
	c := e.subscribe(outhook.Subscription{Events: []string{raisedEvent}})
	e.subscribe(outhook.Subscription{Events: []string{raisedEvent}, Filter: &outhook.Filter{Expr: `payload.severity == "minor"`}})
	_, err := e.c.SetSubscriptionEnabled(ctx(t), b.ID, false)
	require.NoError(t, err)

	res, err := e.c.Replay(ctx(t), msg, "")
	require.NoError(t, err)
	require.Equal(t, raisedEvent, res.EventID)
	require.Len(t, res.Deliveries, 2, "to a and c: b is disabled, the last turns it away")
	e.wait()
	to := map[string]bool{}
	for _, id := range res.Deliveries {
		d := e.delivery(id)
		require.Equal(t, outhook.DeliverySucceeded, d.Status)
		require.Equal(t, msg, d.MessageID, "the same message")
		require.Equal(t, raisedEvent, d.EventID)
		require.True(t, first[0].OccurredAt.Equal(d.OccurredAt), "occurred at %s, replayed as %s", first[0].OccurredAt, d.OccurredAt)
		require.JSONEq(t, string(first[0].Payload), string(d.Payload))
		require.Equal(t, outhook.TriggerManual, d.Attempts[0].Trigger)
		for _, f := range first {
			require.NotEqual(t, f.ID, d.ID, "a new delivery ID")
		}
		to[d.SubscriptionID] = true
	}
	require.Equal(t, map[string]bool{a.ID: true, c.ID: true}, to)
	require.Len(t, e.fake.Calls(), 4, "two first deliveries, two replayed")
	require.Equal(t, outhook.FilterStats{FilteredOut: 1}, e.c.FilterStats())
	require.Len(t, e.deliveries(outhook.DeliveryQuery{MessageID: msg}), 4)

	again, err := e.c.Replay(ctx(t), msg, raisedEvent)
	require.NoError(t, err)
	require.Len(t, again.Deliveries, 2)
	for _, id := range again.Deliveries {
		require.NotContains(t, res.Deliveries, id, "every replay makes new deliveries")
	}
	e.wait()
	require.Len(t, e.deliveries(outhook.DeliveryQuery{MessageID: msg}), 6)
}

// testReplayErrors: an unknown message, or one no subscription received,
// cannot be replayed.
func (s *suite) testReplayErrors(t *testing.T) {
	e := s.client(t, nil)
	_, err := e.c.Replay(ctx(t), "msg_unknown", "")
	require.ErrorIs(t, err, outhook.ErrNotFound)
	_, err = e.c.Replay(ctx(t), "", "")
	require.Error(t, err)
	e.subscribe(outhook.Subscription{Events: []string{raisedEvent}})
	e.emit(raised, alert("a-1"))
	e.wait()
	ds := e.deliveries(outhook.DeliveryQuery{})
	require.Len(t, ds, 1)
	_, err = e.c.Replay(ctx(t), ds[0].MessageID, clearedEvent)
	require.ErrorIs(t, err, outhook.ErrNotFound, "the message carries no such event")
}

// page lists every delivery q selects, limit at a time, following the
// cursors (through their string form, as an API hands them out).
func (e *env) page(q outhook.DeliveryQuery, limit int) []outhook.Delivery {
	e.t.Helper()
	q.Limit = limit
	var all []outhook.Delivery
	for pages := 0; ; pages++ {
		require.Less(e.t, pages, 100, "the listing does not end")
		ds := e.deliveries(q)
		require.LessOrEqual(e.t, len(ds), limit)
		all = append(all, ds...)
		if len(ds) < limit {
			return all
		}
		after, err := outhook.ParseDeliveryCursor(ds[len(ds)-1].Cursor().String())
		require.NoError(e.t, err)
		q.After = after
	}
}

// requireListed checks that ds is in listing order (newest first, then by
// ID, descending) without repeats.
func requireListed(t *testing.T, ds []outhook.Delivery) {
	t.Helper()
	seen := map[string]bool{}
	for i, d := range ds {
		require.False(t, seen[d.ID], "delivery %s listed twice", d.ID)
		seen[d.ID] = true
		if i > 0 {
			p := ds[i-1]
			require.True(t, d.CreatedAt.Before(p.CreatedAt) || (d.CreatedAt.Equal(p.CreatedAt) && d.ID < p.ID),
				"%s (%s) listed after %s (%s)", d.ID, d.CreatedAt, p.ID, p.CreatedAt)
		}
	}
}

// ids returns the IDs of ds in order; nil when there is none.
func ids(ds []outhook.Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

// testPaging: the listing is newest first; pages of any size, each
// resuming at the cursor of the page before, list every delivery once,
// with the filters applied, and deliveries created between two pages do
// not shift the later pages.
func (s *suite) testPaging(t *testing.T) {
	e := s.client(t, nil)
	sub := e.subscribe(outhook.Subscription{Events: []string{raisedEvent, clearedEvent}})
	for i := range 9 {
		h := raised
		if i%3 == 2 {
			h = cleared
		}
		e.emit(h, alert(fmt.Sprint("a-", i)))
	}
	e.wait()
	all := e.deliveries(outhook.DeliveryQuery{Limit: 1000})
	require.Len(t, all, 9)
	requireListed(t, all)
	for _, limit := range []int{1, 2, 4, 9, 10} {
		require.Equal(t, ids(all), ids(e.page(outhook.DeliveryQuery{}, limit)), "pages of %d", limit)
	}
	var want []string
	for _, d := range all {
		if d.EventID == clearedEvent {
			want = append(want, d.ID)
		}
	}
	require.Len(t, want, 3)
	require.Equal(t, want, ids(e.page(outhook.DeliveryQuery{SubscriptionID: sub.ID, EventID: clearedEvent}, 2)))
	require.Empty(t, e.page(outhook.DeliveryQuery{SubscriptionID: "sub_other"}, 2))

	// A cursor stays valid while deliveries are created: the listing
	// resumes where it was, and the new ones are listed first next time.
	q := outhook.DeliveryQuery{Limit: 4}
	firstPage := e.deliveries(q)
	require.Equal(t, ids(all[:4]), ids(firstPage))
	e.emit(raised, alert("a-new-1"))
	e.emit(raised, alert("a-new-2"))
	e.wait()
	q.After = firstPage[len(firstPage)-1].Cursor()
	rest := e.page(q, 4)
	require.Equal(t, ids(all[4:]), ids(rest))
	now := e.deliveries(outhook.DeliveryQuery{Limit: 1000})
	require.Len(t, now, 11)
	requireListed(t, now)
	require.Equal(t, ids(all), ids(now[2:]), "the new deliveries come first")
}

// testTimeRange: Since (included) and Until (excluded) bound CreatedAt,
// alone, together and with paging.
func (s *suite) testTimeRange(t *testing.T) {
	e := s.client(t, nil)
	e.subscribe(outhook.Subscription{Events: []string{raisedEvent}})
	for i := range 8 {
		e.emit(raised, alert(fmt.Sprint("a-", i)))
		if i%2 == 1 {
			// Apart in time, so that the bounds fall between deliveries
			// whatever the store's precision.
			e.wait()
		}
	}
	e.wait()
	all := e.deliveries(outhook.DeliveryQuery{Limit: 1000})
	require.Len(t, all, 8)
	since, until := all[6].CreatedAt, all[1].CreatedAt
	filter := func(since, until time.Time) []string {
		var out []string
		for _, d := range all {
			if inRange(d, since, until) {
				out = append(out, d.ID)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name         string
		since, until time.Time
	}{
		{"since", since, time.Time{}},
		{"until", time.Time{}, until},
		{"both", since, until},
		{"one instant", since, since.Add(time.Microsecond)},
		{"empty", until, until},
		{"future", time.Now().Add(time.Hour), time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := filter(tc.since, tc.until)
			q := outhook.DeliveryQuery{Since: tc.since, Until: tc.until}
			require.Equal(t, want, ids(e.deliveries(q)), "one page")
			require.Equal(t, want, ids(e.page(q, 2)), "pages of 2")
		})
	}
	require.Contains(t, filter(since, until), all[6].ID, "Since is included")
	require.NotContains(t, filter(since, until), all[1].ID, "Until is excluded")
}

// delivered returns the alert IDs delivered to each subscription.
func (e *env) delivered() map[string][]string {
	e.t.Helper()
	out := map[string][]string{}
	for _, call := range e.fake.Delivered() {
		var p struct {
			ID      string `json:"id"`
			AlertID string `json:"alert_id"`
		}
		require.NoError(e.t, json.Unmarshal(call.Request.Payload, &p))
		out[call.Request.Subscription.ID] = append(out[call.Request.Subscription.ID], p.ID+p.AlertID)
	}
	for _, v := range out {
		slices.Sort(v)
	}
	return out
}

// testFilterRouting: CEL filters select the events a subscription
// receives, against the transformed payload; an event turned away is
// counted and not recorded as a delivery; a filter that fails at run time
// is counted as an error and delivers nothing.
func (s *suite) testFilterRouting(t *testing.T) {
	e := s.client(t, nil)
	sub := func(expr string, events ...string) string {
		return e.subscribe(outhook.Subscription{Events: events, Filter: &outhook.Filter{Expr: expr}}).ID
	}
	critical := sub(`payload.severity == "critical" && "sys-1" in payload.systemIds`, raisedEvent)
	count := sub(`payload.count + 1 == 4`, raisedEvent)
	pattern := sub(`payload.id.endsWith("-2")`, "ops.*")
	transformed := sub(`payload.level == "minor"`, mappedEvent)
	missingKey := sub(`payload.labels["env"] == "prod"`, raisedEvent) // an error when the key is missing
	both := e.subscribe(outhook.Subscription{Events: []string{raisedEvent},
		Filter: &outhook.Filter{Expr: `payload.count > 1`, Field: "systemIds", AnyOf: []string{"sys-2"}}}).ID

	a1 := alert("a-1")
	a2 := alert("a-2")
	a2.Severity, a2.SystemIDs, a2.Count = "minor", []string{"sys-2"}, 5
	a2.Labels = map[string]string{"env": "prod"}
	e.emit(raised, a1)
	e.emit(raised, a2)
	e.emit(cleared, a2)
	e.emit(mapped, a1)
	e.emit(mapped, a2)
	e.wait()

	got := e.delivered()
	require.Equal(t, []string{"a-1"}, got[critical])
	require.Equal(t, []string{"a-1"}, got[count])
	require.Equal(t, []string{"a-2", "a-2"}, got[pattern], "ops.raised and ops.cleared; ops.mapped has no id")
	require.Equal(t, []string{"a-2"}, got[transformed])
	require.Equal(t, []string{"a-2"}, got[missingKey])
	require.Equal(t, []string{"a-2"}, got[both])

	// Turned away: pattern and both (by its field) on a-1 raised,
	// critical and count on a-2 raised, transformed on a-1 mapped. Errors:
	// missingKey on a-1 raised, pattern on both ops.mapped events (no "id"
	// after the transform).
	require.Equal(t, outhook.FilterStats{FilteredOut: 5, Errors: 3}, e.c.FilterStats())
	ds := e.deliveries(outhook.DeliveryQuery{Limit: 1000})
	require.Len(t, ds, 7, "one per delivered call: nothing turned away is recorded")
	for _, d := range ds {
		require.Equal(t, outhook.DeliverySucceeded, d.Status)
	}
}

// testFilterStats: the field filter and the CEL filter count what they
// turn away, per client, and an update of the expression takes effect at
// once.
func (s *suite) testFilterStats(t *testing.T) {
	e := s.client(t, nil)
	require.Equal(t, outhook.FilterStats{}, e.c.FilterStats())
	e.subscribe(outhook.Subscription{Events: []string{raisedEvent}, Filter: &outhook.Filter{Field: "systemIds", AnyOf: []string{"sys-2"}}})
	expr := e.subscribe(outhook.Subscription{Events: []string{raisedEvent}, Filter: &outhook.Filter{Expr: `payload.id == "a-1"`}})
	a2 := alert("a-2")
	a2.SystemIDs = []string{"sys-2"}
	e.emit(raised, alert("a-1"))
	e.emit(raised, a2)
	e.wait()
	require.Len(t, e.fake.Delivered(), 2)
	require.Equal(t, outhook.FilterStats{FilteredOut: 2}, e.c.FilterStats())

	expr.Filter.Expr = `payload.id == "a-2"`
	_, err := e.c.UpdateSubscription(ctx(t), expr)
	require.NoError(t, err)
	e.emit(raised, alert("a-1"))
	e.emit(raised, a2)
	e.wait()
	require.Equal(t, []string{"a-1", "a-2"}, e.delivered()[expr.ID])
	require.Equal(t, outhook.FilterStats{FilteredOut: 4}, e.c.FilterStats())

	// A filter that does not type-check is refused when saved.
	_, err = e.c.CreateSubscription(ctx(t), outhook.Subscription{Events: []string{raisedEvent}, DelivererID: "fake",
		Filter: &outhook.Filter{Expr: `payload.count == "3"`}})
	var fe *outhook.FilterError
	require.True(t, errors.As(err, &fe), "a FilterError: %v", err)
	require.Equal(t, outhook.FilterStats{FilteredOut: 4}, e.c.FilterStats())
}
