package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/stretchr/testify/require"
)

var subscriptionTests = []test{
	{"CreateAndGetKeepEveryField", testCreateAndGet},
	{"CreateExistingIDIsErrDuplicate", testCreateDuplicate},
	{"ConcurrentCreatesOfOneIDOneWins", testConcurrentCreate},
	{"IDsAreCaseSensitive", testIDCase},
	{"ListOldestFirst", testListOldestFirst},
	{"UpdateReplacesEveryField", testUpdate},
	{"SetSubscriptionDisabledChangesOnlyItsFields", testSetDisabled},
	{"DeleteKeepsDeliveries", testDelete},
}

// createSub stores a copy of sub, keeping sub to compare with.
func createSub(t *testing.T, s outhook.Store, sub *outhook.Subscription) {
	t.Helper()
	require.NoError(t, s.CreateSubscription(t.Context(), cloneSubscription(sub)), "CreateSubscription(%q)", sub.ID)
}

func getSub(t *testing.T, s outhook.Store, id string) *outhook.Subscription {
	t.Helper()
	got, err := s.GetSubscription(t.Context(), id)
	require.NoError(t, err, "GetSubscription(%q)", id)
	return got
}

func listSubs(t *testing.T, s outhook.Store) []*outhook.Subscription {
	t.Helper()
	got, err := s.ListSubscriptions(t.Context())
	require.NoError(t, err, "ListSubscriptions")
	return got
}

// testCreateAndGet: every field of a subscription comes back from
// GetSubscription and ListSubscriptions as it was stored, for a subscription
// with every field set, one with only the required fields, and one with
// the longest IDs the client accepts.
func testCreateAndGet(t *testing.T, s outhook.Store) {
	long := strings.Repeat("a1234567.", 28) + "abc" // 255 bytes: the longest ID
	require.Len(t, long, 255)
	emptyConfig := minimalSubscription("empty-config", at(3), "incident.incident.created")
	emptyConfig.Config = json.RawMessage(`{}`)
	emptyConfig.Filter = &outhook.Filter{Field: "severity", AnyOf: []string{"critical"}}
	celOnly := minimalSubscription("cel-only", at(4), "incident.*")
	celOnly.Filter = &outhook.Filter{Expr: `payload.severity == "critical" && "sys-1" in payload.systemIds`}
	subs := []*outhook.Subscription{
		fullSubscription("sub_full", at(0)),
		minimalSubscription("sub_minimal", time.Now(), "maintenance.started"), // with a monotonic reading, in Local
		minimalSubscription(long, at(2), long, "incident.**"),
		emptyConfig,
		celOnly,
	}
	for _, sub := range subs {
		createSub(t, s, sub)
	}
	for _, want := range subs {
		requireSubscription(t, want, getSub(t, s, want.ID), fmt.Sprintf("GetSubscription(%.20q)", want.ID))
	}
	list := listSubs(t, s)
	require.Len(t, list, len(subs))
	byID := map[string]*outhook.Subscription{}
	for _, got := range list {
		byID[got.ID] = got
	}
	for _, want := range subs {
		requireSubscription(t, want, byID[want.ID], fmt.Sprintf("ListSubscriptions, %.20q", want.ID))
	}
}

// testCreateDuplicate: creating an ID that exists is an error matching
// ErrDuplicate and leaves the stored subscription as it was.
func testCreateDuplicate(t *testing.T, s outhook.Store) {
	orig := fullSubscription("sub_1", at(0))
	createSub(t, s, orig)
	again := minimalSubscription("sub_1", at(10), "other.event")
	err := s.CreateSubscription(t.Context(), cloneSubscription(again))
	require.Error(t, err)
	require.True(t, errors.Is(err, outhook.ErrDuplicate), "want an error matching ErrDuplicate, got %v", err)
	requireSubscription(t, orig, getSub(t, s, "sub_1"), "the first subscription stays")
	require.Len(t, listSubs(t, s), 1)
	match, err := s.MatchSubscriptions(t.Context(), "other.event")
	require.NoError(t, err)
	require.Empty(t, match, "the refused subscription's events are not indexed")
}

// testConcurrentCreate: of many concurrent creations of one ID exactly one
// succeeds; the others are ErrDuplicate, not some other error.
func testConcurrentCreate(t *testing.T, s outhook.Store) {
	const n = 10
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sub := minimalSubscription("sub_race", at(i), "incident.incident.created")
			sub.Name = fmt.Sprint("creator ", i)
			errs[i] = s.CreateSubscription(t.Context(), sub)
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		if err == nil {
			require.Equal(t, -1, winner, "two creations of one ID succeeded: %d and %d", winner, i)
			winner = i
			continue
		}
		require.True(t, errors.Is(err, outhook.ErrDuplicate), "creation %d: want an error matching ErrDuplicate, got %v", i, err)
	}
	require.NotEqual(t, -1, winner, "no creation succeeded")
	require.Equal(t, fmt.Sprint("creator ", winner), getSub(t, s, "sub_race").Name, "the stored subscription is the winner's")
	require.Len(t, listSubs(t, s), 1)
}

// testIDCase: IDs differing only in case name different subscriptions.
func testIDCase(t *testing.T, s outhook.Store) {
	lower := minimalSubscription("sub-a", at(0), "incident.incident.created")
	upper := minimalSubscription("SUB-A", at(1), "maintenance.started")
	createSub(t, s, lower)
	createSub(t, s, upper)
	requireSubscription(t, lower, getSub(t, s, "sub-a"), "GetSubscription(sub-a)")
	requireSubscription(t, upper, getSub(t, s, "SUB-A"), "GetSubscription(SUB-A)")
	_, err := s.GetSubscription(t.Context(), "Sub-A")
	require.ErrorIs(t, err, outhook.ErrNotFound)
	require.NoError(t, s.DeleteSubscription(t.Context(), "SUB-A"))
	requireSubscription(t, lower, getSub(t, s, "sub-a"), "deleting SUB-A keeps sub-a")
}

// testListOldestFirst: ListSubscriptions (and MatchSubscriptions) order by
// CreatedAt, not by ID, insertion or UpdatedAt; times one microsecond apart
// are told apart; equal CreatedAt falls back to the ID.
func testListOldestFirst(t *testing.T, s outhook.Store) {
	const ev = "order.test.event"
	mk := func(id string, created time.Time) *outhook.Subscription {
		sub := minimalSubscription(id, created, ev)
		sub.UpdatedAt = base.Add(-time.Duration(created.Sub(base))) // newest updated first: irrelevant
		return sub
	}
	// Inserted out of order, with IDs that sort against time.
	for _, sub := range []*outhook.Subscription{
		mk("s-d", at(3)),
		mk("s-g", at(0)),
		mk("s-c", at(4).In(ist)),
		mk("s-f", at(1)),
		mk("tie-b", at(5)), // same CreatedAt: ID order
		mk("s-e", at(2).In(ist)),
		mk("tie-a", at(5).In(ist)),
		mk("us-a", at(6).Add(time.Microsecond)), // a microsecond later
		mk("us-b", at(6)),
	} {
		createSub(t, s, sub)
	}
	want := []string{"s-g", "s-f", "s-e", "s-d", "s-c", "tie-a", "tie-b", "us-b", "us-a"}
	require.Equal(t, want, subIDs(listSubs(t, s)), "ListSubscriptions: oldest first, then by ID")
	match, err := s.MatchSubscriptions(t.Context(), ev)
	require.NoError(t, err)
	require.Equal(t, want, subIDs(match), "MatchSubscriptions: oldest first, then by ID")

	// Updating or disabling the oldest does not move it.
	upd := mk("s-g", at(0))
	upd.UpdatedAt = at(100)
	require.NoError(t, s.UpdateSubscription(t.Context(), upd))
	_, err = s.SetSubscriptionDisabled(t.Context(), "s-f", true, "", at(101))
	require.NoError(t, err)
	require.Equal(t, want, subIDs(listSubs(t, s)), "an update does not reorder")
	match, err = s.MatchSubscriptions(t.Context(), ev)
	require.NoError(t, err)
	require.Equal(t, want, subIDs(match), "an update does not reorder matches")
}

// testUpdate: UpdateSubscription replaces every field, clearing those the
// new value leaves empty; a missing ID is ErrNotFound and creates nothing.
func testUpdate(t *testing.T, s outhook.Store) {
	full := fullSubscription("sub_1", at(0))
	other := fullSubscription("sub_2", at(1))
	createSub(t, s, full)
	createSub(t, s, other)

	// Full to minimal: Name, Config, Filter, DisabledReason cleared.
	minimal := minimalSubscription("sub_1", at(0), "maintenance.started")
	minimal.UpdatedAt = at(50)
	require.NoError(t, s.UpdateSubscription(t.Context(), cloneSubscription(minimal)))
	requireSubscription(t, minimal, getSub(t, s, "sub_1"), "after an update to the required fields")

	// Minimal to full, every field different, CreatedAt included: the
	// store replaces, the client keeps CreatedAt.
	full2 := fullSubscription("sub_1", at(-10))
	full2.Name = "renamed"
	full2.Events = []string{"a.b", "c.*"}
	full2.Config = json.RawMessage(`{"url":"https://elsewhere.example.com/"}`)
	full2.Filter = &outhook.Filter{Expr: `payload.x == "y"`}
	full2.DisabledReason = "another reason"
	full2.UpdatedAt = at(60).In(ist)
	require.NoError(t, s.UpdateSubscription(t.Context(), cloneSubscription(full2)))
	requireSubscription(t, full2, getSub(t, s, "sub_1"), "after an update of every field")

	requireSubscription(t, other, getSub(t, s, "sub_2"), "the other subscription is untouched")

	err := s.UpdateSubscription(t.Context(), minimalSubscription("sub_missing", at(2), "a.b"))
	require.True(t, errors.Is(err, outhook.ErrNotFound), "update of a missing ID: want an error matching ErrNotFound, got %v", err)
	_, err = s.GetSubscription(t.Context(), "sub_missing")
	require.ErrorIs(t, err, outhook.ErrNotFound, "an update does not create")
	require.Len(t, listSubs(t, s), 2)
}

// testSetDisabled: SetSubscriptionDisabled sets Disabled, DisabledReason
// and UpdatedAt, leaves every other field as it is, and returns the result,
// which GetSubscription then returns too.
func testSetDisabled(t *testing.T, s outhook.Store) {
	orig := fullSubscription("sub_1", at(0))
	orig.Disabled, orig.DisabledReason = false, ""
	createSub(t, s, orig)

	steps := []struct {
		disabled bool
		reason   string
		at       time.Time
		why      string
	}{
		{true, "destination gone: 410 Gone", at(10), "outhook disables, with a reason"},
		{true, "destination gone: channel_is_archived", at(11).In(ist), "disabled again: the reason is replaced"},
		{false, "", at(12), "enabled: the reason is cleared"},
		{true, "", at(13), "a person disables: no reason"},
		{false, "", at(14), "enabled again"},
	}
	for _, step := range steps {
		want := cloneSubscription(orig)
		want.Disabled, want.DisabledReason, want.UpdatedAt = step.disabled, step.reason, step.at
		got, err := s.SetSubscriptionDisabled(t.Context(), "sub_1", step.disabled, step.reason, step.at)
		require.NoError(t, err, step.why)
		requireSubscription(t, want, got, step.why+": the returned subscription")
		requireSubscription(t, want, getSub(t, s, "sub_1"), step.why+": GetSubscription")
	}

	_, err := s.SetSubscriptionDisabled(t.Context(), "sub_missing", true, "x", at(20))
	require.True(t, errors.Is(err, outhook.ErrNotFound), "missing ID: want an error matching ErrNotFound, got %v", err)
	_, err = s.GetSubscription(t.Context(), "sub_missing")
	require.ErrorIs(t, err, outhook.ErrNotFound, "disabling does not create")
}

// testDelete: DeleteSubscription removes the subscription from
// GetSubscription, ListSubscriptions and MatchSubscriptions, keeps its
// deliveries, frees its ID, and is ErrNotFound the second time.
func testDelete(t *testing.T, s outhook.Store) {
	ctx := t.Context()
	gone := fullSubscription("sub_gone", at(0))
	gone.Events = []string{"incident.incident.created", "incident.**"}
	kept := minimalSubscription("sub_kept", at(1), "incident.incident.created")
	createSub(t, s, gone)
	createSub(t, s, kept)
	d := newDelivery("dlv_1", "msg_1", "incident.incident.created", "sub_gone", at(2))
	createDeliveries(t, s, d)
	a := fullAttempts(at(3))[0]
	u := outhook.DeliveryUpdate{Status: outhook.DeliveryPending, NextAttemptAt: a.NextAttemptAt, LastError: a.Error, UpdatedAt: at(4)}
	require.NoError(t, s.UpdateDelivery(ctx, "dlv_1", &a, u))
	d.Attempts = []outhook.Attempt{a}
	d.NextAttemptAt, d.LastError, d.UpdatedAt = u.NextAttemptAt, u.LastError, u.UpdatedAt

	require.NoError(t, s.DeleteSubscription(ctx, "sub_gone"))

	_, err := s.GetSubscription(ctx, "sub_gone")
	require.True(t, errors.Is(err, outhook.ErrNotFound), "GetSubscription after delete: want ErrNotFound, got %v", err)
	require.Equal(t, []string{"sub_kept"}, subIDs(listSubs(t, s)))
	match, err := s.MatchSubscriptions(ctx, "incident.incident.created")
	require.NoError(t, err)
	require.Equal(t, []string{"sub_kept"}, subIDs(match), "a deleted subscription is not matched")
	match, err = s.MatchSubscriptions(ctx, "incident.incident.updated")
	require.NoError(t, err)
	require.Empty(t, match, "a deleted subscription's patterns are not matched")
	requireSubscription(t, kept, getSub(t, s, "sub_kept"), "the other subscription is untouched")

	got, err := s.GetDelivery(ctx, "dlv_1")
	require.NoError(t, err, "the deleted subscription's delivery stays")
	requireDelivery(t, d, got, "the deleted subscription's delivery")
	list, err := s.ListDeliveries(ctx, outhook.DeliveryQuery{SubscriptionID: "sub_gone"})
	require.NoError(t, err)
	require.Equal(t, []string{"dlv_1"}, deliveryIDs(list), "the deleted subscription's deliveries are listed by its ID")

	err = s.DeleteSubscription(ctx, "sub_gone")
	require.True(t, errors.Is(err, outhook.ErrNotFound), "second delete: want an error matching ErrNotFound, got %v", err)

	// The ID is free again; the new subscription is matched by its own events.
	again := minimalSubscription("sub_gone", at(10), "maintenance.started")
	createSub(t, s, again)
	requireSubscription(t, again, getSub(t, s, "sub_gone"), "a subscription recreated under a deleted ID")
	match, err = s.MatchSubscriptions(ctx, "incident.incident.created")
	require.NoError(t, err)
	require.Equal(t, []string{"sub_kept"}, subIDs(match), "the recreated subscription has only its own events")
	match, err = s.MatchSubscriptions(ctx, "maintenance.started")
	require.NoError(t, err)
	require.Equal(t, []string{"sub_gone"}, subIDs(match))
}
