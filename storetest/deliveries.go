package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/stretchr/testify/require"
)

var deliveryTests = []test{
	{"CreateAndGetKeepEveryField", testDeliveryRoundTrip},
	{"CreateLeavesExistingIDsAsTheyAre", testCreateIdempotent},
	{"ConcurrentCreatesOfOverlappingBatches", testConcurrentCreateDeliveries},
	{"CreateIsAllOrNone", testCreateAllOrNone},
	{"AttemptsKeepEveryFieldInOrder", testAttempts},
	{"AttemptHeadersRoundTrip", testAttemptHeaders},
	{"UpdateAppliesTheUpdate", testUpdateDelivery},
	{"ConcurrentUpdatesLoseNoAttempt", testConcurrentUpdates},
	{"ReopenFinishedDeliveries", testReopen},
	{"ReopenFailedDeliveryOnce", testReopenFailed},
	{"ListNewestFirst", testListNewestFirst},
	{"ListFilters", testListFilters},
	{"ListLimit", testListLimit},
	{"ListTimeRange", testListTimeRange},
	{"ListPagesWithCursors", testListCursor},
}

// createDeliveries stores copies of ds in one call, keeping ds to compare
// with.
func createDeliveries(t *testing.T, s outhook.Store, ds ...*outhook.Delivery) {
	t.Helper()
	batch := make([]*outhook.Delivery, len(ds))
	for i, d := range ds {
		batch[i] = cloneDelivery(d)
	}
	require.NoError(t, s.CreateDeliveries(t.Context(), batch), "CreateDeliveries")
}

func getDelivery(t *testing.T, s outhook.Store, id string) *outhook.Delivery {
	t.Helper()
	got, err := s.GetDelivery(t.Context(), id)
	require.NoError(t, err, "GetDelivery(%q)", id)
	return got
}

func listDeliveries(t *testing.T, s outhook.Store, q outhook.DeliveryQuery) []*outhook.Delivery {
	t.Helper()
	got, err := s.ListDeliveries(t.Context(), q)
	require.NoError(t, err, "ListDeliveries(%+v)", q)
	return got
}

// update calls UpdateDelivery and applies the same change to want, the
// suite's model of the stored delivery.
func update(t *testing.T, s outhook.Store, want *outhook.Delivery, a *outhook.Attempt, u outhook.DeliveryUpdate) {
	t.Helper()
	var arg *outhook.Attempt
	if a != nil {
		c := cloneAttempt(a)
		arg = &c
	}
	require.NoError(t, s.UpdateDelivery(t.Context(), want.ID, arg, u), "UpdateDelivery(%q)", want.ID)
	apply(want, a, u)
}

// apply is what UpdateDelivery does, on the suite's model.
func apply(d *outhook.Delivery, a *outhook.Attempt, u outhook.DeliveryUpdate) {
	if a != nil {
		d.Attempts = append(d.Attempts, *a)
	}
	d.Status, d.NextAttemptAt, d.NextAttemptTrigger = u.Status, u.NextAttemptAt, u.NextAttemptTrigger
	d.LastError, d.UpdatedAt = u.LastError, u.UpdatedAt
	if u.ExternalID != "" {
		d.ExternalID = u.ExternalID
	}
}

// finish records an attempt on d as the client would, leaving it with
// status: a retry for DeliveryPending.
func finish(t *testing.T, s outhook.Store, d *outhook.Delivery, status outhook.DeliveryStatus, when time.Time) {
	t.Helper()
	a := outhook.Attempt{Number: len(d.Attempts) + 1, Trigger: outhook.TriggerScheduled, StartedAt: when,
		DelivererID: d.DelivererID, Duration: 3 * time.Millisecond}
	u := outhook.DeliveryUpdate{Status: status, UpdatedAt: when.Add(a.Duration)}
	switch status {
	case outhook.DeliveryPending:
		a.Outcome, a.Error, a.ErrorClass = outhook.AttemptRetryable, "connection refused", outhook.ErrorClassConnect
		a.NextAttemptAt = when.Add(5 * time.Second)
		u.NextAttemptAt, u.LastError = a.NextAttemptAt, a.Error
	case outhook.DeliverySucceeded:
		a.Outcome, a.StatusCode = outhook.AttemptSucceeded, 204
	case outhook.DeliveryFailed:
		a.Outcome, a.StatusCode, a.Error, a.ErrorClass = outhook.AttemptPermanent, 400, "400 Bad Request", outhook.ErrorClassHTTPStatus
		u.LastError = a.Error
	}
	update(t, s, d, &a, u)
}

// testDeliveryRoundTrip: every field of a delivery comes back from
// GetDelivery and ListDeliveries as it was created: one with every field
// set, one without a next attempt (the zero time), one with the longest IDs
// and a large payload, one whose payload is a JSON array.
func testDeliveryRoundTrip(t *testing.T, s outhook.Store) {
	full := newDelivery("dlv_full", "msg_1", "incident.incident.created", "sub_1", at(0))
	full.Payload = json.RawMessage(`{ "incident": {"id": "inc-1", "title": "Ünïcode \"quoted\" 日本 <&>", "severity": 2,
		"ratio": 0.125, "big": 12345678901234567890, "systemIds": ["sys-2", "sys-1"], "resolved": false, "owner": null},
		"empty": {}, "list": [] }`)
	full.OccurredAt = at(-1).In(ist)
	full.UpdatedAt = at(1).In(ist)
	full.NextAttemptAt = at(2).Add(123_456_789)
	full.NextAttemptTrigger = outhook.TriggerManual
	full.ExternalID = "OPS-17"
	full.LastError = "safehttp: POST https://hooks.example.com/in?sig=REDACTED: 503 Service Unavailable\nsecond line"

	none := newDelivery("dlv_none", "msg_1", "incident.incident.created", "sub_2", at(1))
	none.NextAttemptAt = time.Time{}
	none.DelivererID = "slack"

	long := strings.Repeat("b1234567.", 28) + "xyz" // 255 bytes
	big := newDelivery(long, long, long, long, at(2))
	big.Payload = json.RawMessage(`{"blob":"` + strings.Repeat("0123456789abcdef", 16<<10) + `"}`) // 256 KiB

	array := newDelivery("dlv_array", "msg_2", "maintenance.started", "sub_1", time.Now()) // a monotonic reading, in Local
	array.Payload = json.RawMessage(`[1, "two", {"three": 3.5}, [], null, true]`)

	all := []*outhook.Delivery{full, none, big, array}
	createDeliveries(t, s, all...)
	for _, want := range all {
		got := getDelivery(t, s, want.ID)
		requireDelivery(t, want, got, fmt.Sprintf("GetDelivery(%.20q)", want.ID))
		require.Empty(t, got.Attempts, "a new delivery has no attempts")
	}
	list := listDeliveries(t, s, outhook.DeliveryQuery{})
	require.Len(t, list, len(all))
	for _, got := range list {
		i := slices.IndexFunc(all, func(d *outhook.Delivery) bool { return d.ID == got.ID })
		require.NotEqual(t, -1, i, "ListDeliveries returned an unknown ID %q", got.ID)
		requireDelivery(t, all[i], got, fmt.Sprintf("ListDeliveries, %.20q", got.ID))
	}
}

// testCreateIdempotent: creating a delivery whose ID is stored leaves the
// stored one as it is, attempts and state included, so routing an event
// twice neither duplicates nor resets its deliveries; the rest of the batch
// is created. Within one batch the first of two equal IDs is kept. An
// empty batch is no error.
func testCreateIdempotent(t *testing.T, s outhook.Store) {
	d1 := newDelivery("dlv_1", "msg_1", "incident.incident.created", "sub_1", at(0))
	d2 := newDelivery("dlv_2", "msg_1", "incident.incident.created", "sub_2", at(0))
	createDeliveries(t, s, d1, d2)
	finish(t, s, d2, outhook.DeliverySucceeded, at(1))

	// Routed again: same IDs, fresh values, plus a new delivery.
	again1 := newDelivery("dlv_1", "msg_1", "incident.incident.created", "sub_1", at(5))
	again1.Payload = json.RawMessage(`{"routed":"again"}`)
	again2 := newDelivery("dlv_2", "msg_1", "incident.incident.created", "sub_2", at(5))
	d3 := newDelivery("dlv_3", "msg_1", "incident.incident.created", "sub_3", at(5))
	createDeliveries(t, s, again1, again2, d3)
	requireDelivery(t, d1, getDelivery(t, s, "dlv_1"), "a pending delivery created again stays as it was")
	requireDelivery(t, d2, getDelivery(t, s, "dlv_2"), "a finished delivery created again keeps its state and attempts")
	requireDelivery(t, d3, getDelivery(t, s, "dlv_3"), "the new delivery of the batch is created")
	require.Len(t, listDeliveries(t, s, outhook.DeliveryQuery{}), 3, "no duplicates")

	// The same ID twice in one batch: the first is kept.
	first := newDelivery("dlv_4", "msg_2", "incident.incident.created", "sub_1", at(6))
	second := newDelivery("dlv_4", "msg_2", "incident.incident.updated", "sub_9", at(6))
	createDeliveries(t, s, first, second)
	requireDelivery(t, first, getDelivery(t, s, "dlv_4"), "the first of two equal IDs in a batch")
	require.Len(t, listDeliveries(t, s, outhook.DeliveryQuery{}), 4)

	require.NoError(t, s.CreateDeliveries(t.Context(), nil), "a nil batch")
	require.NoError(t, s.CreateDeliveries(t.Context(), []*outhook.Delivery{}), "an empty batch")
	require.Len(t, listDeliveries(t, s, outhook.DeliveryQuery{}), 4)
}

// testConcurrentCreateDeliveries: batches created at the same time, with
// IDs in common (two nodes routing one event), all succeed and store each
// delivery once.
func testConcurrentCreateDeliveries(t *testing.T, s outhook.Store) {
	const goroutines, size = 8, 6
	want := make([]*outhook.Delivery, goroutines+size-1)
	for i := range want {
		want[i] = newDelivery(fmt.Sprintf("dlv_%02d", i), "msg_1", "incident.incident.created", fmt.Sprintf("sub_%02d", i), at(0))
	}
	errs := make([]error, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			batch := make([]*outhook.Delivery, size)
			for i := range batch {
				batch[i] = cloneDelivery(want[g+i]) // windows overlap, in one order
			}
			errs[g] = s.CreateDeliveries(t.Context(), batch)
		})
	}
	wg.Wait()
	for g, err := range errs {
		require.NoError(t, err, "batch %d", g)
	}
	list := listDeliveries(t, s, outhook.DeliveryQuery{MessageID: "msg_1"})
	require.Len(t, list, len(want), "each delivery once")
	for _, w := range want {
		requireDelivery(t, w, getDelivery(t, s, w.ID), w.ID)
	}
}

// testCreateAllOrNone: a batch becomes visible whole: a reader listing
// while batches are created sees all of a batch or none of it. A call that
// fails (here, if the store honours a canceled context) stores nothing.
func testCreateAllOrNone(t *testing.T, s outhook.Store) {
	const batches, size = 25, 8
	var (
		done       = make(chan struct{})
		partial    []string
		readerErr  error
		wg         sync.WaitGroup
		readerRuns int
	)
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			readerRuns++
			ds, err := s.ListDeliveries(t.Context(), outhook.DeliveryQuery{Limit: batches * size})
			if err != nil {
				readerErr = err
				return
			}
			count := map[string]int{}
			for _, d := range ds {
				count[d.MessageID]++
			}
			for msg, n := range count {
				if n != size {
					partial = append(partial, fmt.Sprintf("%s: %d of %d", msg, n, size))
				}
			}
		}
	})
	var writeErr error
	for b := range batches {
		batch := make([]*outhook.Delivery, size)
		for i := range batch {
			batch[i] = newDelivery(fmt.Sprintf("dlv_%02d_%d", b, i), fmt.Sprintf("msg_%02d", b), "incident.incident.created",
				fmt.Sprintf("sub_%d", i), at(b))
		}
		if writeErr = s.CreateDeliveries(t.Context(), batch); writeErr != nil {
			break
		}
	}
	close(done)
	wg.Wait()
	require.NoError(t, writeErr)
	require.NoError(t, readerErr)
	require.Empty(t, partial, "a reader saw part of a batch (%d reads)", readerRuns)
	require.Len(t, listDeliveries(t, s, outhook.DeliveryQuery{Limit: batches * size}), batches*size)

	// A call with a canceled context either fails and stores nothing, or
	// succeeds and stores everything.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	batch := []*outhook.Delivery{
		newDelivery("dlv_c1", "msg_c", "incident.incident.created", "sub_1", at(100)),
		newDelivery("dlv_c2", "msg_c", "incident.incident.created", "sub_2", at(100)),
	}
	err := s.CreateDeliveries(ctx, batch)
	got := listDeliveries(t, s, outhook.DeliveryQuery{MessageID: "msg_c"})
	if err != nil {
		require.Empty(t, got, "CreateDeliveries failed (%v) but stored part of its batch", err)
	} else {
		require.Len(t, got, 2, "CreateDeliveries succeeded but did not store its whole batch")
	}
}

// testAttempts: attempts come back from GetDelivery and ListDeliveries in
// the order they were appended, every field as recorded: a binary response
// excerpt with NUL bytes and invalid UTF-8, a full 16 KiB excerpt, error
// classes, triggers, durations, retry-after, and a zero NextAttemptAt.
func testAttempts(t *testing.T, s outhook.Store) {
	d := newDelivery("dlv_1", "msg_1", "incident.incident.created", "sub_1", at(0))
	other := newDelivery("dlv_2", "msg_1", "incident.incident.created", "sub_2", at(0))
	createDeliveries(t, s, d, other)
	attempts := fullAttempts(at(1))
	updates := []outhook.DeliveryUpdate{
		{Status: outhook.DeliveryPending, NextAttemptAt: attempts[0].NextAttemptAt, LastError: attempts[0].Error, UpdatedAt: at(2)},
		{Status: outhook.DeliveryPending, NextAttemptAt: attempts[1].NextAttemptAt, LastError: attempts[1].Error, UpdatedAt: at(130).In(ist)},
		{Status: outhook.DeliverySucceeded, ExternalID: "OPS-1234", UpdatedAt: at(3601)},
	}
	for i := range attempts {
		update(t, s, d, &attempts[i], updates[i])
		requireDelivery(t, d, getDelivery(t, s, "dlv_1"), fmt.Sprintf("after attempt %d", i+1))
	}
	require.Len(t, d.Attempts, 3)
	list := listDeliveries(t, s, outhook.DeliveryQuery{MessageID: "msg_1", SubscriptionID: "sub_1"})
	require.Len(t, list, 1)
	requireDelivery(t, d, list[0], "ListDeliveries returns the attempts too")
	requireDelivery(t, other, getDelivery(t, s, "dlv_2"), "another delivery's attempts are its own")
}

// testUpdateDelivery: UpdateDelivery sets every field of the update,
// clearing those it leaves empty (NextAttemptAt, NextAttemptTrigger,
// LastError), except ExternalID, which only a non-empty value replaces; a
// nil attempt adds none; the fields that make the delivery (IDs, payload,
// times of the event) never change; a missing ID is ErrNotFound and
// creates nothing.
func testUpdateDelivery(t *testing.T, s outhook.Store) {
	d := newDelivery("dlv_1", "msg_1", "incident.incident.created", "sub_1", at(0))
	d.NextAttemptTrigger = outhook.TriggerManual
	other := newDelivery("dlv_2", "msg_1", "incident.incident.created", "sub_2", at(0))
	createDeliveries(t, s, d, other)
	check := func(msg string) {
		t.Helper()
		requireDelivery(t, d, getDelivery(t, s, "dlv_1"), msg)
	}

	a1 := outhook.Attempt{Number: 1, Trigger: outhook.TriggerManual, StartedAt: at(1), DelivererID: "webhook",
		Duration: time.Second, Outcome: outhook.AttemptRetryable, Error: "boom", ErrorClass: outhook.ErrorClassConnect,
		NextAttemptAt: at(6)}
	update(t, s, d, &a1, outhook.DeliveryUpdate{Status: outhook.DeliveryPending, NextAttemptAt: at(6), LastError: "boom", UpdatedAt: at(2)})
	check("a retry: the manual trigger is cleared, the next attempt set")

	update(t, s, d, nil, outhook.DeliveryUpdate{Status: outhook.DeliveryFailed, LastError: "subscription is disabled", UpdatedAt: at(3)})
	check("abandoned without an attempt: no attempt added, NextAttemptAt cleared")

	update(t, s, d, nil, outhook.DeliveryUpdate{Status: outhook.DeliveryPending, NextAttemptAt: at(4), NextAttemptTrigger: outhook.TriggerManual,
		ExternalID: "EXT-1", UpdatedAt: at(4)})
	check("every field set: LastError cleared, trigger and ExternalID set")

	update(t, s, d, nil, outhook.DeliveryUpdate{Status: outhook.DeliverySucceeded, UpdatedAt: at(5)})
	check("an empty ExternalID leaves the stored one")
	require.Equal(t, "EXT-1", getDelivery(t, s, "dlv_1").ExternalID)

	a2 := outhook.Attempt{Number: 2, Trigger: outhook.TriggerScheduled, StartedAt: at(7), DelivererID: "webhook",
		Duration: 2 * time.Second, Outcome: outhook.AttemptSucceeded, StatusCode: 200, ExternalID: "EXT-2"}
	update(t, s, d, &a2, outhook.DeliveryUpdate{Status: outhook.DeliverySucceeded, ExternalID: "EXT-2", UpdatedAt: at(9).In(ist)})
	check("a non-empty ExternalID replaces the stored one")

	// The rollback of Client.Redeliver: put back what the delivery was.
	update(t, s, d, nil, outhook.DeliveryUpdate{Status: outhook.DeliveryFailed, LastError: "boom", ExternalID: "EXT-2", UpdatedAt: at(3)})
	check("an update may move UpdatedAt back")

	requireDelivery(t, other, getDelivery(t, s, "dlv_2"), "another delivery is untouched")

	err := s.UpdateDelivery(t.Context(), "dlv_missing", &a1, outhook.DeliveryUpdate{Status: outhook.DeliveryFailed, UpdatedAt: at(10)})
	require.True(t, errors.Is(err, outhook.ErrNotFound), "missing ID: want an error matching ErrNotFound, got %v", err)
	_, err = s.GetDelivery(t.Context(), "dlv_missing")
	require.ErrorIs(t, err, outhook.ErrNotFound, "an update does not create")
	require.Len(t, listDeliveries(t, s, outhook.DeliveryQuery{}), 2)
}

// testConcurrentUpdates: 20 goroutines updating one delivery at once, while
// another reads it, lose no attempt, and each call applies as one step:
// every attempt is whole, and the delivery's fields all come from one of the
// calls. (The order of attempts appended concurrently is not asserted.)
func testConcurrentUpdates(t *testing.T, s outhook.Store) {
	const n = 20
	createDeliveries(t, s, newDelivery("dlv_1", "msg_1", "incident.incident.created", "sub_1", at(0)))
	var (
		wg       sync.WaitGroup
		errs     = make([]error, n)
		done     = make(chan struct{})
		readErr  error
		shrunk   bool
		maxSeen  int
		observed int
	)
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			d, err := s.GetDelivery(t.Context(), "dlv_1")
			if err != nil {
				readErr = err
				return
			}
			observed++
			if len(d.Attempts) < maxSeen {
				shrunk = true
			}
			maxSeen = max(maxSeen, len(d.Attempts))
		}
	})
	var writers sync.WaitGroup
	for i := range n {
		writers.Go(func() {
			k := i + 1
			a := outhook.Attempt{Number: k, Trigger: outhook.TriggerScheduled, StartedAt: at(k), DelivererID: "webhook",
				Duration: time.Duration(k) * time.Millisecond, Outcome: outhook.AttemptRetryable, Error: fmt.Sprint("attempt ", k),
				ErrorClass: outhook.ErrorClassTimeout, NextAttemptAt: at(100 + k)}
			errs[i] = s.UpdateDelivery(t.Context(), "dlv_1", &a, outhook.DeliveryUpdate{Status: outhook.DeliveryPending,
				NextAttemptAt: at(100 + k), LastError: fmt.Sprint("attempt ", k), UpdatedAt: at(200 + k)})
		})
	}
	writers.Wait()
	close(done)
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "UpdateDelivery %d", i+1)
	}
	require.NoError(t, readErr)
	require.False(t, shrunk, "a reader saw the number of attempts go down (%d reads)", observed)

	d := getDelivery(t, s, "dlv_1")
	require.Len(t, d.Attempts, n, "no attempt lost")
	var numbers []int
	for _, a := range d.Attempts {
		numbers = append(numbers, a.Number)
		k := a.Number
		require.Equal(t, fmt.Sprint("attempt ", k), a.Error, "attempt %d is whole", k)
		requireTime(t, at(k), a.StartedAt, fmt.Sprintf("attempt %d StartedAt", k))
		requireDuration(t, time.Duration(k)*time.Millisecond, a.Duration, fmt.Sprintf("attempt %d Duration", k))
	}
	slices.Sort(numbers)
	for i, num := range numbers {
		require.Equal(t, i+1, num, "every attempt once")
	}
	var k int
	_, err := fmt.Sscanf(d.LastError, "attempt %d", &k)
	require.NoError(t, err, "LastError %q comes from one of the updates", d.LastError)
	requireTime(t, at(100+k), d.NextAttemptAt, "NextAttemptAt comes from the same update as LastError")
	requireTime(t, at(200+k), d.UpdatedAt, "UpdatedAt comes from the same update as LastError")
}

// testReopen: ReopenDelivery sets a failed or succeeded delivery pending,
// due at the given time, with TriggerManual and UpdatedAt the given time,
// keeping its attempts, LastError and ExternalID, and returns what
// GetDelivery then returns. A pending delivery is ErrDeliveryPending and
// stays as it is; a missing one is ErrNotFound.
func testReopen(t *testing.T, s outhook.Store) {
	ctx := t.Context()
	failed := newDelivery("dlv_failed", "msg_1", "incident.incident.created", "sub_1", at(0))
	succeeded := newDelivery("dlv_ok", "msg_1", "incident.incident.created", "sub_2", at(0))
	pending := newDelivery("dlv_pending", "msg_1", "incident.incident.created", "sub_3", at(0))
	createDeliveries(t, s, failed, succeeded, pending)
	finish(t, s, failed, outhook.DeliveryFailed, at(1))
	finish(t, s, succeeded, outhook.DeliverySucceeded, at(1))
	update(t, s, succeeded, nil, outhook.DeliveryUpdate{Status: outhook.DeliverySucceeded, ExternalID: "EXT-1", UpdatedAt: at(2)})

	reopen := func(d *outhook.Delivery, when time.Time) {
		t.Helper()
		got, err := s.ReopenDelivery(ctx, d.ID, when)
		require.NoError(t, err, "ReopenDelivery(%q)", d.ID)
		d.Status, d.NextAttemptAt, d.NextAttemptTrigger, d.UpdatedAt = outhook.DeliveryPending, when, outhook.TriggerManual, when
		requireDelivery(t, d, got, "the delivery ReopenDelivery returns")
		requireDelivery(t, d, getDelivery(t, s, d.ID), "GetDelivery after ReopenDelivery")
	}
	reopen(failed, at(10).In(ist))
	require.NotEmpty(t, failed.LastError)
	reopen(succeeded, at(11))
	require.Equal(t, "EXT-1", succeeded.ExternalID)

	// Reopened deliveries are pending: reopening again is refused.
	for _, d := range []*outhook.Delivery{failed, succeeded, pending} {
		got, err := s.ReopenDelivery(ctx, d.ID, at(20))
		require.True(t, errors.Is(err, outhook.ErrDeliveryPending), "ReopenDelivery(%q) of a pending delivery: want an error matching ErrDeliveryPending, got %v", d.ID, err)
		require.Nil(t, got)
		requireDelivery(t, d, getDelivery(t, s, d.ID), "a pending delivery stays as it was")
	}

	// The next attempt, the manual one, clears the trigger; the delivery
	// can then be reopened again.
	a := outhook.Attempt{Number: 2, Trigger: outhook.TriggerManual, StartedAt: at(12), DelivererID: "webhook",
		Duration: time.Millisecond, Outcome: outhook.AttemptSucceeded, StatusCode: 200}
	update(t, s, failed, &a, outhook.DeliveryUpdate{Status: outhook.DeliverySucceeded, UpdatedAt: at(13)})
	require.Empty(t, getDelivery(t, s, failed.ID).NextAttemptTrigger)
	reopen(failed, at(14))
	require.Len(t, failed.Attempts, 2)

	_, err := s.ReopenDelivery(ctx, "dlv_missing", at(30))
	require.True(t, errors.Is(err, outhook.ErrNotFound), "missing ID: want an error matching ErrNotFound, got %v", err)
	_, err = s.GetDelivery(ctx, "dlv_missing")
	require.ErrorIs(t, err, outhook.ErrNotFound, "reopening does not create")
}

// testReopenFailed: a store that implements outhook.FailedReopener reopens
// a delivery only while it is failed with the given number of attempts;
// of concurrent callers that saw it failed, exactly one reopens it.
func testReopenFailed(t *testing.T, s outhook.Store) {
	fr, ok := s.(outhook.FailedReopener)
	if !ok {
		t.Log("the store does not implement outhook.FailedReopener (optional): nothing to check")
		return
	}
	ctx := t.Context()
	failed := newDelivery("dlv_failed", "msg_1", "incident.incident.created", "sub_1", at(0))
	succeeded := newDelivery("dlv_ok", "msg_1", "incident.incident.created", "sub_2", at(0))
	pending := newDelivery("dlv_pending", "msg_1", "incident.incident.created", "sub_3", at(0))
	createDeliveries(t, s, failed, succeeded, pending)
	finish(t, s, failed, outhook.DeliveryFailed, at(1))
	finish(t, s, succeeded, outhook.DeliverySucceeded, at(1))
	n := len(getDelivery(t, s, failed.ID).Attempts)

	for _, tc := range []struct {
		d        *outhook.Delivery
		attempts int
		want     error
	}{
		{succeeded, len(getDelivery(t, s, succeeded.ID).Attempts), outhook.ErrDeliveryChanged},
		{pending, 0, outhook.ErrDeliveryPending},
		{failed, n + 1, outhook.ErrDeliveryChanged},
	} {
		before := getDelivery(t, s, tc.d.ID)
		got, err := fr.ReopenFailedDelivery(ctx, tc.d.ID, tc.attempts, at(10))
		require.True(t, errors.Is(err, tc.want), "ReopenFailedDelivery(%q, %d): want an error matching %v, got %v", tc.d.ID, tc.attempts, tc.want, err)
		require.Nil(t, got)
		requireDelivery(t, before, getDelivery(t, s, tc.d.ID), "a refused reopen changes nothing")
	}
	_, err := fr.ReopenFailedDelivery(ctx, "dlv_missing", 0, at(10))
	require.True(t, errors.Is(err, outhook.ErrNotFound), "missing ID: want an error matching ErrNotFound, got %v", err)

	// Eight callers at once: one reopens, the others find it pending.
	var wg sync.WaitGroup
	var won atomic.Int32
	for range 8 {
		wg.Go(func() {
			got, err := fr.ReopenFailedDelivery(ctx, failed.ID, n, at(11))
			switch {
			case err == nil:
				won.Add(1)
				if got.Status != outhook.DeliveryPending || got.NextAttemptTrigger != outhook.TriggerManual {
					t.Errorf("ReopenFailedDelivery returned %s with trigger %q, want pending and manual", got.Status, got.NextAttemptTrigger)
				}
			case errors.Is(err, outhook.ErrDeliveryPending):
			default:
				t.Errorf("ReopenFailedDelivery: %v", err)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(1), won.Load(), "exactly one concurrent caller reopens a failed delivery")
	got := getDelivery(t, s, failed.ID)
	require.Equal(t, outhook.DeliveryPending, got.Status)
	require.Len(t, got.Attempts, n)
}

// testListNewestFirst: ListDeliveries orders by CreatedAt, newest first,
// telling apart times a microsecond apart, whatever the updates since;
// deliveries created together at one time are listed together; each comes
// with its attempts.
func testListNewestFirst(t *testing.T, s outhook.Store) {
	var all []*outhook.Delivery
	mk := func(id string, created time.Time) *outhook.Delivery {
		d := newDelivery(id, "msg_"+id, "incident.incident.created", "sub_1", created)
		all = append(all, d)
		return d
	}
	// Created in the order of their CreatedAt.
	createDeliveries(t, s, mk("d1", at(0)))
	createDeliveries(t, s, mk("d2", at(1).In(ist)))
	createDeliveries(t, s, mk("d3", at(2)))
	createDeliveries(t, s, mk("d4", at(3)), mk("d5", at(3)), mk("d6", at(3))) // one routing batch
	createDeliveries(t, s, mk("d7", at(4).In(ist)))
	createDeliveries(t, s, mk("d8", at(4).Add(time.Microsecond)))
	// Updates do not reorder.
	finish(t, s, all[0], outhook.DeliveryFailed, at(50))
	finish(t, s, all[1], outhook.DeliveryPending, at(51))

	got := listDeliveries(t, s, outhook.DeliveryQuery{})
	ids := deliveryIDs(got)
	require.Len(t, ids, 8)
	require.Equal(t, []string{"d8", "d7"}, ids[:2], "newest first, a microsecond apart")
	require.ElementsMatch(t, []string{"d4", "d5", "d6"}, ids[2:5], "deliveries created at one time are listed together, in any order")
	require.Equal(t, []string{"d3", "d2", "d1"}, ids[5:], "newest first, whatever the updates since")
	for _, g := range got {
		i := slices.IndexFunc(all, func(d *outhook.Delivery) bool { return d.ID == g.ID })
		requireDelivery(t, all[i], g, "ListDeliveries, "+g.ID)
	}
}

// testListFilters: each DeliveryQuery field selects alone and combined with
// the others; the zero query selects everything; newest first throughout.
func testListFilters(t *testing.T, s outhook.Store) {
	type spec struct {
		id, msg, event, sub string
		status              outhook.DeliveryStatus
	}
	specs := []spec{
		{"d1", "m1", "a.created", "s1", outhook.DeliveryPending},
		{"d2", "m1", "a.created", "s2", outhook.DeliverySucceeded},
		{"d3", "m2", "a.updated", "s1", outhook.DeliveryFailed},
		{"d4", "m2", "a.updated", "s2", outhook.DeliveryPending},
		{"d5", "m3", "a.created", "s1", outhook.DeliverySucceeded},
		{"d6", "m3", "a.created", "s2", outhook.DeliveryFailed},
	}
	for i, sp := range specs {
		d := newDelivery(sp.id, sp.msg, sp.event, sp.sub, at(i))
		createDeliveries(t, s, d)
		if sp.status != outhook.DeliveryPending {
			finish(t, s, d, sp.status, at(100-i))
		}
	}
	cases := []struct {
		q    outhook.DeliveryQuery
		want []string
	}{
		{outhook.DeliveryQuery{}, []string{"d6", "d5", "d4", "d3", "d2", "d1"}},
		{outhook.DeliveryQuery{SubscriptionID: "s1"}, []string{"d5", "d3", "d1"}},
		{outhook.DeliveryQuery{EventID: "a.created"}, []string{"d6", "d5", "d2", "d1"}},
		{outhook.DeliveryQuery{MessageID: "m2"}, []string{"d4", "d3"}},
		{outhook.DeliveryQuery{Status: outhook.DeliveryFailed}, []string{"d6", "d3"}},
		{outhook.DeliveryQuery{Status: outhook.DeliveryPending}, []string{"d4", "d1"}},
		{outhook.DeliveryQuery{Status: outhook.DeliverySucceeded}, []string{"d5", "d2"}},
		{outhook.DeliveryQuery{SubscriptionID: "s1", EventID: "a.created"}, []string{"d5", "d1"}},
		{outhook.DeliveryQuery{SubscriptionID: "s2", Status: outhook.DeliveryFailed}, []string{"d6"}},
		{outhook.DeliveryQuery{MessageID: "m3", EventID: "a.created"}, []string{"d6", "d5"}},
		{outhook.DeliveryQuery{MessageID: "m1", SubscriptionID: "s2", EventID: "a.created", Status: outhook.DeliverySucceeded}, []string{"d2"}},
		{outhook.DeliveryQuery{MessageID: "m1", Status: outhook.DeliveryFailed}, nil},
		{outhook.DeliveryQuery{MessageID: "m2", EventID: "a.created"}, nil},
		{outhook.DeliveryQuery{SubscriptionID: "S1"}, nil}, // IDs are case-sensitive
		{outhook.DeliveryQuery{SubscriptionID: "s"}, nil},  // and whole
		{outhook.DeliveryQuery{EventID: "a.*"}, nil},       // not patterns
		{outhook.DeliveryQuery{Status: "other"}, nil},
	}
	for _, c := range cases {
		want := c.want
		if want == nil {
			want = []string{}
		}
		require.Equal(t, want, deliveryIDs(listDeliveries(t, s, c.q)), "ListDeliveries(%+v)", c.q)
	}
}

// testListLimit: Limit returns the newest deliveries that match, after the
// filter; zero or a negative Limit means 100.
func testListLimit(t *testing.T, s outhook.Store) {
	const n = 120
	ds := make([]*outhook.Delivery, n)
	for i := range ds {
		ds[i] = newDelivery(fmt.Sprintf("d%03d", i), "msg_1", "incident.incident.created", fmt.Sprint("sub_", i), base.Add(time.Duration(i)*time.Millisecond))
	}
	createDeliveries(t, s, ds...)
	var failed []string // newest first
	for i := n - 1; i >= 0; i -= 10 {
		finish(t, s, ds[i], outhook.DeliveryFailed, at(100))
		failed = append(failed, ds[i].ID)
	}
	newest := func(k int) []string {
		var out []string
		for i := n - 1; i >= n-k; i-- {
			out = append(out, ds[i].ID)
		}
		return out
	}
	cases := []struct {
		q    outhook.DeliveryQuery
		want []string
	}{
		{outhook.DeliveryQuery{}, newest(100)},
		{outhook.DeliveryQuery{Limit: -1}, newest(100)},
		{outhook.DeliveryQuery{Limit: 1}, newest(1)},
		{outhook.DeliveryQuery{Limit: 3}, newest(3)},
		{outhook.DeliveryQuery{Limit: 100}, newest(100)},
		{outhook.DeliveryQuery{Limit: 101}, newest(101)},
		{outhook.DeliveryQuery{Limit: 500}, newest(n)},
		{outhook.DeliveryQuery{Status: outhook.DeliveryFailed, Limit: 2}, failed[:2]},
		{outhook.DeliveryQuery{Status: outhook.DeliveryFailed}, failed},
		{outhook.DeliveryQuery{MessageID: "msg_1", Limit: 5}, newest(5)},
	}
	for _, c := range cases {
		require.Equal(t, c.want, deliveryIDs(listDeliveries(t, s, c.q)), "ListDeliveries(%+v)", c.q)
	}
}

// testListTimeRange: Since and Until bound CreatedAt, Since included and
// Until not, alone, together and with the other filters.
func testListTimeRange(t *testing.T, s outhook.Store) {
	for i := range 6 {
		sub := fmt.Sprint("s", i%2)
		createDeliveries(t, s, newDelivery(fmt.Sprint("d", i), fmt.Sprint("m", i), "a.created", sub, at(i)))
	}
	// The bounds are times the store keeps as they are: at(i) is a whole
	// microsecond after base, which the fixtures already round to what the
	// store keeps by reading one back.
	stored := func(i int) time.Time { return getDelivery(t, s, fmt.Sprint("d", i)).CreatedAt }
	cases := []struct {
		q    outhook.DeliveryQuery
		want []string
	}{
		{outhook.DeliveryQuery{Since: stored(2)}, []string{"d5", "d4", "d3", "d2"}},
		{outhook.DeliveryQuery{Until: stored(2)}, []string{"d1", "d0"}},
		{outhook.DeliveryQuery{Since: stored(1), Until: stored(4)}, []string{"d3", "d2", "d1"}},
		{outhook.DeliveryQuery{Since: stored(1), Until: stored(1)}, []string{}},
		{outhook.DeliveryQuery{Since: stored(4), Until: stored(1)}, []string{}},
		{outhook.DeliveryQuery{Since: stored(1), Until: stored(5), SubscriptionID: "s1"}, []string{"d3", "d1"}},
		{outhook.DeliveryQuery{Since: at(100)}, []string{}},
		{outhook.DeliveryQuery{Until: at(-100)}, []string{}},
		{outhook.DeliveryQuery{Since: at(-100), Until: at(100), Limit: 2}, []string{"d5", "d4"}},
	}
	for _, c := range cases {
		require.Equal(t, c.want, orEmpty(deliveryIDs(listDeliveries(t, s, c.q))), "ListDeliveries(%+v)", c.q)
	}
}

// testListCursor: paging with After, each page's last delivery's Cursor
// asking for the next, lists every delivery once in the order of a single
// listing: newest first, and by ID, descending, among deliveries created
// at one time; deliveries created meanwhile, newer than the first page,
// neither repeat nor shift the pages. A cursor survives its String form.
func testListCursor(t *testing.T, s outhook.Store) {
	var ds []*outhook.Delivery
	for i := range 11 {
		created := at(i / 3) // three at a time: ties broken by ID
		ds = append(ds, newDelivery(fmt.Sprintf("d%02d", i), "m1", "a.created", fmt.Sprint("s", i%2), created))
	}
	createDeliveries(t, s, ds...)
	want := make([]string, 0, len(ds))
	for i := len(ds) - 1; i >= 0; i-- {
		want = append(want, ds[i].ID) // same time: the higher ID first
	}
	require.Equal(t, want, deliveryIDs(listDeliveries(t, s, outhook.DeliveryQuery{})), "one listing")

	var news []string // created during earlier pagings, newest first
	for k, limit := range []int{1, 3, 4, 11, 20} {
		expect := append(slices.Clone(news), want...)
		var got []string
		var after outhook.DeliveryCursor
		for pages := 0; ; pages++ {
			require.Less(t, pages, 20, "paging does not end")
			page := listDeliveries(t, s, outhook.DeliveryQuery{After: after, Limit: limit})
			if len(page) == 0 {
				break
			}
			got = append(got, deliveryIDs(page)...)
			parsed, err := outhook.ParseDeliveryCursor(page[len(page)-1].Cursor().String())
			require.NoError(t, err)
			after = parsed
			if pages == 0 {
				// Created after the first page: newer than everything
				// listed, so never in a later page.
				id := fmt.Sprintf("new%d", k)
				createDeliveries(t, s, newDelivery(id, "m2", "a.created", "s0", at(50+k)))
				news = append([]string{id}, news...)
			}
		}
		require.Equal(t, expect, got, "pages of %d", limit)
	}

	// With a filter, the cursor of a delivery the filter excludes still
	// places the page.
	page := listDeliveries(t, s, outhook.DeliveryQuery{SubscriptionID: "s1", After: ds[7].Cursor(), MessageID: "m1"})
	require.Equal(t, []string{"d05", "d03", "d01"}, deliveryIDs(page))
	_, err := outhook.ParseDeliveryCursor("not a cursor")
	require.Error(t, err, "a token that is not a cursor")
}
