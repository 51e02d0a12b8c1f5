package storetest

import (
	"sync"
	"testing"

	"github.com/outhook/outhook"
	"github.com/stretchr/testify/require"
)

var healthTests = []test{
	{"NewSubscriptionHasZeroHealth", testHealthZero},
	{"RecordRoundTrip", testHealthRoundTrip},
	{"SuccessResetsFailures", testHealthReset},
	{"UpdateSubscriptionKeepsHealth", testHealthUpdate},
	{"EnablingResetsFailures", testHealthEnable},
	{"ConcurrentFailuresAreAllCounted", testHealthConcurrent},
	{"MissingSubscriptionIsErrNotFound", testHealthMissing},
}

// requireHealth checks every field of got against want.
func requireHealth(t *testing.T, want, got outhook.SubscriptionHealth, msg string) {
	t.Helper()
	require.Equal(t, want.ConsecutiveFailures, got.ConsecutiveFailures, msg+": ConsecutiveFailures")
	requireTime(t, want.FailingSince, got.FailingSince, msg+": FailingSince")
	requireTime(t, want.LastFailureAt, got.LastFailureAt, msg+": LastFailureAt")
	requireTime(t, want.LastSuccessAt, got.LastSuccessAt, msg+": LastSuccessAt")
}

func record(t *testing.T, s outhook.Store, id string, ok bool, n int) (before, after outhook.SubscriptionHealth) {
	t.Helper()
	before, after, err := s.RecordDeliveryOutcome(t.Context(), id, ok, at(n))
	require.NoError(t, err, "RecordDeliveryOutcome(%q, %v, at(%d))", id, ok, n)
	return before, after
}

// testHealthZero: a new subscription's health is zero, whatever the
// caller passed.
func testHealthZero(t *testing.T, s outhook.Store) {
	sub := healthSub("sub_1")
	sub.Health = outhook.SubscriptionHealth{ConsecutiveFailures: 7, FailingSince: at(1), LastSuccessAt: at(2)}
	createSub(t, s, sub)
	requireHealth(t, outhook.SubscriptionHealth{}, getSub(t, s, "sub_1").Health, "new subscription")
}

// testHealthRoundTrip: failures count up, keep the first failure's time and
// come back from GetSubscription and ListSubscriptions.
func testHealthRoundTrip(t *testing.T, s outhook.Store) {
	createSub(t, s, healthSub("sub_1"))
	createSub(t, s, healthSub("sub_2"))
	before, after := record(t, s, "sub_1", false, 10)
	requireHealth(t, outhook.SubscriptionHealth{}, before, "first failure: before")
	want := outhook.SubscriptionHealth{ConsecutiveFailures: 1, FailingSince: at(10), LastFailureAt: at(10)}
	requireHealth(t, want, after, "first failure: after")
	before, after = record(t, s, "sub_1", false, 20)
	requireHealth(t, want, before, "second failure: before")
	want = outhook.SubscriptionHealth{ConsecutiveFailures: 2, FailingSince: at(10), LastFailureAt: at(20)}
	requireHealth(t, want, after, "second failure: after")
	requireHealth(t, want, getSub(t, s, "sub_1").Health, "GetSubscription")
	for _, sub := range listSubs(t, s) {
		if sub.ID == "sub_1" {
			requireHealth(t, want, sub.Health, "ListSubscriptions")
		} else {
			requireHealth(t, outhook.SubscriptionHealth{}, sub.Health, "another subscription is untouched")
		}
	}
	requireTime(t, at(0), getSub(t, s, "sub_1").UpdatedAt, "UpdatedAt: recording health leaves it")
}

// testHealthReset: a success clears the failures and FailingSince, and
// keeps LastFailureAt.
func testHealthReset(t *testing.T, s outhook.Store) {
	createSub(t, s, healthSub("sub_1"))
	record(t, s, "sub_1", false, 10)
	record(t, s, "sub_1", false, 20)
	before, after := record(t, s, "sub_1", true, 30)
	require.Equal(t, 2, before.ConsecutiveFailures, "before the success")
	want := outhook.SubscriptionHealth{LastFailureAt: at(20), LastSuccessAt: at(30)}
	requireHealth(t, want, after, "after the success")
	requireHealth(t, want, getSub(t, s, "sub_1").Health, "GetSubscription after the success")
	_, after = record(t, s, "sub_1", false, 40)
	requireHealth(t, outhook.SubscriptionHealth{ConsecutiveFailures: 1, FailingSince: at(40), LastFailureAt: at(40), LastSuccessAt: at(30)},
		after, "a new run of failures")
}

// testHealthUpdate: UpdateSubscription keeps the stored health.
func testHealthUpdate(t *testing.T, s outhook.Store) {
	createSub(t, s, healthSub("sub_1"))
	_, want := record(t, s, "sub_1", false, 10)
	upd := healthSub("sub_1")
	upd.Name = "renamed"
	upd.Health = outhook.SubscriptionHealth{ConsecutiveFailures: 99}
	require.NoError(t, s.UpdateSubscription(t.Context(), upd))
	got := getSub(t, s, "sub_1")
	require.Equal(t, "renamed", got.Name)
	requireHealth(t, want, got.Health, "after UpdateSubscription")
}

// testHealthEnable: enabling a disabled subscription clears its failures;
// disabling, or enabling one that is enabled, does not.
func testHealthEnable(t *testing.T, s outhook.Store) {
	createSub(t, s, healthSub("sub_1"))
	record(t, s, "sub_1", true, 5)
	_, want := record(t, s, "sub_1", false, 10)
	got, err := s.SetSubscriptionDisabled(t.Context(), "sub_1", false, "", at(11))
	require.NoError(t, err)
	requireHealth(t, want, got.Health, "enabling an enabled subscription")
	got, err = s.SetSubscriptionDisabled(t.Context(), "sub_1", true, "failing", at(12))
	require.NoError(t, err)
	requireHealth(t, want, got.Health, "disabling")
	got, err = s.SetSubscriptionDisabled(t.Context(), "sub_1", false, "", at(13))
	require.NoError(t, err)
	want = outhook.SubscriptionHealth{LastFailureAt: at(10), LastSuccessAt: at(5)}
	requireHealth(t, want, got.Health, "enabling a disabled subscription")
	requireHealth(t, want, getSub(t, s, "sub_1").Health, "GetSubscription after enabling")
}

// testHealthConcurrent: N concurrent failures count N, and exactly one of
// them saw the count before it at each value.
func testHealthConcurrent(t *testing.T, s outhook.Store) {
	createSub(t, s, healthSub("sub_1"))
	const n = 20
	seen := make([]int, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			before, _, err := s.RecordDeliveryOutcome(t.Context(), "sub_1", false, at(10+i))
			errs[i] = err
			if err == nil {
				seen[i] = before.ConsecutiveFailures
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	got := getSub(t, s, "sub_1").Health
	require.Equal(t, n, got.ConsecutiveFailures, "every concurrent failure is counted")
	requireTime(t, at(10), got.FailingSince, "FailingSince: the earliest failure")
	requireTime(t, at(10+n-1), got.LastFailureAt, "LastFailureAt: the latest failure")
	counts := map[int]bool{}
	for _, c := range seen {
		require.False(t, counts[c], "two calls saw the count %d before them: they were not applied one after the other", c)
		counts[c] = true
	}
}

// testHealthMissing: recording for a missing subscription is ErrNotFound.
func testHealthMissing(t *testing.T, s outhook.Store) {
	_, _, err := s.RecordDeliveryOutcome(t.Context(), "sub_missing", false, at(1))
	require.ErrorIs(t, err, outhook.ErrNotFound)
}

func healthSub(id string) *outhook.Subscription {
	return minimalSubscription(id, at(0), "incident.created")
}
