package storetest

import (
	"encoding/json"
	"testing"

	"github.com/outhook/outhook"
	"github.com/stretchr/testify/require"
)

var matchTests = []test{
	{"ExactIDsAndPatterns", testMatchPatterns},
	{"FollowsEveryChange", testMatchFollowsChanges},
	{"ReturnsCurrentValues", testMatchCurrentValues},
}

func match(t *testing.T, s outhook.Store, eventID string) []*outhook.Subscription {
	t.Helper()
	got, err := s.MatchSubscriptions(t.Context(), eventID)
	require.NoError(t, err, "MatchSubscriptions(%q)", eventID)
	return got
}

// testMatchPatterns: MatchSubscriptions selects by exact event ID, by "*"
// (exactly one segment) and by a final "**" (one or more segments),
// case-sensitively and with '_' and '-' as plain characters (a store that
// translates patterns to SQL LIKE must escape them), returns each
// subscription once however many of its events match, includes disabled
// subscriptions, and orders oldest first.
func testMatchPatterns(t *testing.T, s outhook.Store) {
	// Created oldest first, with IDs that sort the other way, so that an
	// ID order fails.
	subs := []struct {
		id       string
		events   []string
		disabled bool
	}{
		{"s-k", []string{"inc.incident.created"}, false},
		{"s-j", []string{"inc.*.created"}, false},
		{"s-i", []string{"inc.**"}, false},
		{"s-h", []string{"**"}, false},
		{"s-g", []string{"*.incident.*"}, false},
		{"s-f", []string{"inc.incident.created", "inc.incident.*", "inc.**"}, false},
		{"s-e", []string{"my_plugin.*"}, false},
		{"s-d", []string{"Inc.incident.created", "INC.**"}, false},
		{"s-c", []string{"inc.*.**"}, false},
		{"s-b", []string{"inc.incident.created"}, true},
		{"s-a", []string{"maintenance.started"}, false},
		{"s-0", []string{"healthcheck-http.state.changed"}, false},
	}
	for i, sub := range subs {
		v := minimalSubscription(sub.id, at(i), sub.events...)
		v.Disabled = sub.disabled
		createSub(t, s, v)
	}
	cases := []struct {
		event string
		want  []string
	}{
		{"inc.incident.created", []string{"s-k", "s-j", "s-i", "s-h", "s-g", "s-f", "s-c", "s-b"}},
		{"inc.incident.updated", []string{"s-i", "s-h", "s-g", "s-f", "s-c"}},
		{"inc.incidentx.created", []string{"s-j", "s-i", "s-h", "s-f", "s-c"}},
		{"inc.created", []string{"s-i", "s-h", "s-f"}},
		{"inc.a.b.created", []string{"s-i", "s-h", "s-f", "s-c"}},
		{"inc.incident.created.v2", []string{"s-i", "s-h", "s-f", "s-c"}},
		{"inc", []string{"s-h"}},
		{"incx.incident.created", []string{"s-h", "s-g"}},
		{"x.incident.y", []string{"s-h", "s-g"}},
		{"a.b.incident.c", []string{"s-h"}},
		{"x.incident", []string{"s-h"}},
		{"my_plugin.created", []string{"s-h", "s-e"}},
		{"myxplugin.created", []string{"s-h"}},
		{"my_plugin.a.b", []string{"s-h"}},
		{"Inc.incident.created", []string{"s-h", "s-g", "s-d"}},
		{"INC.x", []string{"s-h", "s-d"}},
		{"INC.incident.created", []string{"s-h", "s-g", "s-d"}},
		{"maintenance.started", []string{"s-h", "s-a"}},
		{"MAINTENANCE.STARTED", []string{"s-h"}},
		{"healthcheck-http.state.changed", []string{"s-h", "s-0"}},
		{"healthcheck_http.state.changed", []string{"s-h"}},
		{"healthcheck-http.state", []string{"s-h"}},
	}
	for _, c := range cases {
		got := match(t, s, c.event)
		require.Equal(t, c.want, subIDs(got), "MatchSubscriptions(%q): each matching subscription once, disabled ones too, oldest first", c.event)
	}
	got := match(t, s, "inc.incident.created")
	require.True(t, got[len(got)-1].Disabled, "the disabled subscription is returned as disabled")

	// Without the catch-all, an event nobody selects matches nothing.
	require.NoError(t, s.DeleteSubscription(t.Context(), "s-h"))
	require.Empty(t, match(t, s, "nobody.listens"))
	require.Empty(t, match(t, s, "inc"))
}

// testMatchFollowsChanges: the match set follows every create, update and
// delete at once, for exact IDs and patterns, however the store indexes or
// caches it: create, match, update the events, match, delete, match.
func testMatchFollowsChanges(t *testing.T, s outhook.Store) {
	const created, updated, started = "inc.incident.created", "inc.incident.updated", "maint.window.started"
	expect := func(event string, want ...string) {
		t.Helper()
		if want == nil {
			want = []string{}
		}
		require.Equal(t, want, subIDs(match(t, s, event)), "MatchSubscriptions(%q)", event)
	}
	createSub(t, s, minimalSubscription("a", at(0), created))
	createSub(t, s, minimalSubscription("b", at(1), "inc.*.created"))
	expect(created, "a", "b")
	expect(updated)
	expect(started)

	// Update the events: the exact ID moves.
	require.NoError(t, s.UpdateSubscription(t.Context(), minimalSubscription("a", at(0), updated)))
	expect(created, "b")
	expect(updated, "a")

	// A new pattern joins results already asked for.
	createSub(t, s, minimalSubscription("c", at(2), "inc.**"))
	expect(created, "b", "c")
	expect(updated, "a", "c")
	expect(started)

	// An exact ID becomes a pattern, a pattern becomes an exact ID.
	require.NoError(t, s.UpdateSubscription(t.Context(), minimalSubscription("a", at(0), "maint.*.started")))
	require.NoError(t, s.UpdateSubscription(t.Context(), minimalSubscription("b", at(1), started)))
	expect(created, "c")
	expect(updated, "c")
	expect(started, "a", "b")

	// Delete: gone from every result.
	require.NoError(t, s.DeleteSubscription(t.Context(), "c"))
	expect(created)
	expect(updated)
	expect(started, "a", "b")

	// Disabling keeps a subscription matched.
	_, err := s.SetSubscriptionDisabled(t.Context(), "a", true, "", at(5))
	require.NoError(t, err)
	expect(started, "a", "b")

	// Deleted and recreated under the same ID, newer, with other events.
	require.NoError(t, s.DeleteSubscription(t.Context(), "a"))
	expect(started, "b")
	createSub(t, s, minimalSubscription("a", at(10), started, created))
	expect(started, "b", "a")
	expect(created, "a")

	// Everything deleted: nothing matches.
	require.NoError(t, s.DeleteSubscription(t.Context(), "a"))
	require.NoError(t, s.DeleteSubscription(t.Context(), "b"))
	expect(started)
	expect(created)
}

// testMatchCurrentValues: MatchSubscriptions returns the subscriptions as
// they are now, every field: routing reads Disabled, Filter and DelivererID
// from it, so a stale copy delivers to a disabled subscription or through
// an old filter.
func testMatchCurrentValues(t *testing.T, s outhook.Store) {
	const ev = "inc.incident.created"
	sub := fullSubscription("sub_1", at(0))
	sub.Events = []string{"inc.**"}
	sub.Disabled, sub.DisabledReason = false, ""
	createSub(t, s, sub)
	got := match(t, s, ev)
	require.Len(t, got, 1)
	requireSubscription(t, sub, got[0], "matched before any change")

	upd := cloneSubscription(sub)
	upd.DelivererID = "slack"
	upd.Config = json.RawMessage(`{"url":"https://hooks.slack.com/services/T0/B0/x"}`)
	upd.Filter = &outhook.Filter{Field: "severity", AnyOf: []string{"critical"}, Expr: `payload.count > 2`}
	upd.UpdatedAt = at(1)
	require.NoError(t, s.UpdateSubscription(t.Context(), cloneSubscription(upd)))
	got = match(t, s, ev)
	require.Len(t, got, 1)
	requireSubscription(t, upd, got[0], "matched after an update of the config and filter")

	disabled, err := s.SetSubscriptionDisabled(t.Context(), "sub_1", true, "destination gone", at(2))
	require.NoError(t, err)
	got = match(t, s, ev)
	require.Len(t, got, 1)
	requireSubscription(t, disabled, got[0], "matched after being disabled")
	require.True(t, got[0].Disabled)

	enabled, err := s.SetSubscriptionDisabled(t.Context(), "sub_1", false, "", at(3))
	require.NoError(t, err)
	got = match(t, s, ev)
	require.Len(t, got, 1)
	requireSubscription(t, enabled, got[0], "matched after being enabled again")
	require.False(t, got[0].Disabled)

	upd.Filter = nil
	upd.UpdatedAt = at(4)
	require.NoError(t, s.UpdateSubscription(t.Context(), cloneSubscription(upd)))
	got = match(t, s, ev)
	require.Len(t, got, 1)
	requireSubscription(t, upd, got[0], "matched after the filter was removed")
}
