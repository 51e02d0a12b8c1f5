package outhook_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
	"github.com/stretchr/testify/require"
)

// Alert is a payload with a field of every kind a schema maps to CEL.
type Alert struct {
	ID        string            `json:"id" validate:"required"`
	Severity  string            `json:"severity" validate:"required,oneof=critical major minor"`
	SystemIDs []string          `json:"systemIds"`
	Count     int               `json:"count"`
	Ratio     float64           `json:"ratio"`
	Paged     bool              `json:"paged"`
	Labels    map[string]string `json:"labels"`
	Owner     *AlertOwner       `json:"owner,omitempty"`
	Checks    []AlertCheck      `json:"checks"`
}

type AlertOwner struct {
	Team   string   `json:"team"`
	OnCall []string `json:"onCall"`
}

// AlertCheck is recursive: its schema refers to itself.
type AlertCheck struct {
	Name     string       `json:"name"`
	Latency  float64      `json:"latency"`
	Children []AlertCheck `json:"children,omitempty"`
}

// AlertCleared has fields of the same names as Alert's, of other types.
type AlertCleared struct {
	ID       string `json:"id"`
	Severity int    `json:"severity"`
}

var (
	alertRaised  = outhook.MustNewHook[Alert]("raised")
	alertCleared = outhook.MustNewHook[AlertCleared]("cleared")
	alertMapped  = outhook.MustNewHook[Alert]("mapped")
	alertPlugin  = outhook.PluginMetadata{PluginID: "alert", DisplayName: "Alerts"}
)

const (
	raisedEvent  = "alert.raised"
	clearedEvent = "alert.cleared"
	mappedEvent  = "alert.mapped"
)

// newAlertRegistry registers alert.raised, alert.cleared and alert.mapped,
// whose transform renames fields.
func newAlertRegistry(t testing.TB) *outhook.EventRegistry {
	t.Helper()
	reg := outhook.NewEventRegistry()
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[Alert]{Hook: alertRaised, DisplayName: "Alert raised"}, alertPlugin)
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[AlertCleared]{Hook: alertCleared, DisplayName: "Alert cleared"}, alertPlugin)
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[Alert]{
		Hook: alertMapped, DisplayName: "Alert, mapped",
		TransformPayload: func(a Alert) (map[string]any, error) {
			return map[string]any{"alert_id": a.ID, "level": a.Severity, "n": a.Count}, nil
		},
	}, alertPlugin)
	return reg
}

func sampleAlert(id string) Alert {
	return Alert{
		ID: id, Severity: "critical", SystemIDs: []string{"sys-1", "sys-2"}, Count: 3, Ratio: 1, Paged: true,
		Labels: map[string]string{"team": "db"},
		Checks: []AlertCheck{{Name: "ping", Latency: 12.5, Children: []AlertCheck{{Name: "dns", Latency: 2}}}},
	}
}

func TestFilterExprErrors(t *testing.T) {
	c, _ := setup(t, &outhook.Config{Registry: newAlertRegistry(t)})
	for _, tc := range []struct {
		name         string
		events       []string
		expr         string
		line, column int
		event        string
		msg          string
	}{
		{"syntax", []string{raisedEvent}, `payload.severity == `, 1, 21, raisedEvent, "Syntax error"},
		{"syntax on line 2", []string{raisedEvent}, "payload.paged &&\n  payload.count >", 2, 18, raisedEvent, "Syntax error"},
		{"unknown field", []string{raisedEvent}, `payload.sevrity == "critical"`, 1, 8, raisedEvent, "undefined field 'sevrity'"},
		{"unknown nested field", []string{raisedEvent}, `has(payload.owner) && payload.owner.tem == "db"`, 1, 36, raisedEvent, "undefined field 'tem'"},
		{"unknown field in a recursive type", []string{raisedEvent}, `payload.checks.exists(c, c.children.exists(d, d.nam == "x"))`, 1, 48, raisedEvent, "undefined field 'nam'"},
		{"string compared with int", []string{raisedEvent}, `payload.count == "3"`, 1, 15, raisedEvent, "no matching overload for '_==_'"},
		{"in on a string", []string{raisedEvent}, `"sys-1" in payload.severity`, 1, 9, raisedEvent, "no matching overload for '@in'"},
		{"map value type", []string{raisedEvent}, `payload.labels["team"] > 3`, 1, 24, raisedEvent, "no matching overload"},
		{"not a bool", []string{raisedEvent}, `payload.severity`, 1, 1, raisedEvent, "must be a bool, not string"},
		{"unknown variable", []string{raisedEvent}, `event.severity == "critical"`, 1, 1, raisedEvent, "undeclared reference to 'event'"},
		{"unknown function", []string{raisedEvent}, `payload.severity.lowerAscii() == "critical"`, 1, 28, raisedEvent, "undeclared reference to 'lowerAscii'"},
		{"empty", []string{raisedEvent}, "  \n ", 0, 0, raisedEvent, "empty"},
		{"too long", []string{raisedEvent}, strings.Repeat("true && ", outhook.MaxFilterExprLen/8) + "true", 0, 0, raisedEvent, "expression code point size exceeds limit"},
		// A pattern: checked against every event it selects, and the error
		// names the one that fails.
		{"pattern, second event", []string{"alert.*"}, `payload.severity == "critical"`, 1, 18, clearedEvent, "no matching overload"},
		{"events and pattern", []string{raisedEvent, "alert.**"}, `payload.count > 1`, 1, 8, clearedEvent, "undefined field 'count'"},
		// A pattern that selects no registered event: payload is dyn, only
		// syntax and functions are checked.
		{"no event yet", []string{"other.**"}, `payload.a ==`, 1, 13, "", "Syntax error"},
		{"no event yet, not a bool", []string{"other.**"}, `"x"`, 1, 1, "", "must be a bool"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.CreateSubscription(t.Context(), outhook.Subscription{Events: tc.events, DelivererID: "fake",
				Filter: &outhook.Filter{Expr: tc.expr}})
			require.ErrorIs(t, err, outhook.ErrInvalidSubscription)
			var se *outhook.SubscriptionError
			require.ErrorAs(t, err, &se)
			require.Equal(t, "filter.expr", se.Field)
			var fe *outhook.FilterError
			require.ErrorAs(t, err, &fe)
			require.Contains(t, fe.Msg, tc.msg)
			require.Equal(t, tc.event, fe.EventID, "the event checked against")
			require.Equal(t, [2]int{tc.line, tc.column}, [2]int{fe.Line, fe.Column}, "line and column of %q", fe.Msg)
			if tc.line > 0 {
				require.ErrorContains(t, err, fmt.Sprintf("filter expression at %d:%d: ", tc.line, tc.column))
			}
		})
	}

	// An update is checked too, and a valid filter is accepted.
	sub := subscribe(t, c, outhook.Subscription{Events: []string{raisedEvent}})
	sub.Filter = &outhook.Filter{Expr: `payload.sevrity == "x"`}
	_, err := c.UpdateSubscription(t.Context(), sub)
	var fe *outhook.FilterError
	require.ErrorAs(t, err, &fe)
	sub.Filter.Expr = `payload.severity == "critical"`
	_, err = c.UpdateSubscription(t.Context(), sub)
	require.NoError(t, err)
}

func TestFilterExprValid(t *testing.T) {
	c, _ := setup(t, &outhook.Config{Registry: newAlertRegistry(t)})
	for _, tc := range []struct {
		events []string
		expr   string
	}{
		{[]string{raisedEvent}, `payload.severity == "critical" && "sys-1" in payload.systemIds`},
		{[]string{raisedEvent}, `payload.count >= 3 && payload.ratio > 0.5 && payload.ratio > 0 && payload.paged`},
		{[]string{raisedEvent}, `payload.labels["team"] == "db" || "env" in payload.labels`},
		{[]string{raisedEvent}, `has(payload.owner) && payload.owner.team.startsWith("db") && size(payload.owner.onCall) > 0`},
		{[]string{raisedEvent}, `payload.checks.exists(c, c.latency > 10.0 && c.children.all(d, d.name != ""))`},
		{[]string{raisedEvent}, `payload.id.matches("^inc-[0-9]+$")`},
		{[]string{raisedEvent, clearedEvent}, `payload.id != ""`},
		{[]string{"alert.*"}, `payload.id.startsWith("a")`},
		// The transformed payload is a map of anything.
		{[]string{mappedEvent}, `payload.level == "critical" && payload.n > 2`},
		{[]string{"other.**"}, `payload.anything.goes == 1`},
	} {
		_, err := c.CreateSubscription(t.Context(), outhook.Subscription{Events: tc.events, DelivererID: "fake",
			Filter: &outhook.Filter{Expr: tc.expr}})
		require.NoError(t, err, tc.expr)
	}
}

func TestFilterShape(t *testing.T) {
	c, _ := setup(t, &outhook.Config{Registry: newAlertRegistry(t)})
	for _, tc := range []struct {
		filter outhook.Filter
		field  string
	}{
		{outhook.Filter{}, "filter"},
		{outhook.Filter{Expr: "true", AnyOf: []string{"a"}}, "filter.field"},
		{outhook.Filter{Expr: "true", Field: "severity"}, "filter.anyOf"},
	} {
		_, err := c.CreateSubscription(t.Context(), outhook.Subscription{Events: []string{raisedEvent}, DelivererID: "fake", Filter: &tc.filter})
		var se *outhook.SubscriptionError
		require.ErrorAs(t, err, &se)
		require.Equal(t, tc.field, se.Field)
	}
}

// deliveredIDs returns the alert IDs delivered to each subscription.
func deliveredIDs(t *testing.T, fake *outhooktest.Deliverer) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, call := range fake.Delivered() {
		var p struct {
			ID      string `json:"id"`
			AlertID string `json:"alert_id"`
		}
		require.NoError(t, json.Unmarshal(call.Request.Payload, &p))
		out[call.Request.Subscription.ID] = append(out[call.Request.Subscription.ID], p.ID+p.AlertID)
	}
	return out
}

func TestFilterExprRouting(t *testing.T) {
	logs := &recordingHandler{}
	c, fake := setup(t, &outhook.Config{Registry: newAlertRegistry(t), Logger: slog.New(logs)})
	sub := func(expr string, events ...string) string {
		return subscribe(t, c, outhook.Subscription{Events: events, Filter: &outhook.Filter{Expr: expr}}).ID
	}
	critical := sub(`payload.severity == "critical" && "sys-1" in payload.systemIds`, raisedEvent)
	numbers := sub(`payload.ratio * 2.0 == 2.0 && payload.count + 1 == 4`, raisedEvent) // ratio is 1 in JSON
	owned := sub(`has(payload.owner) && payload.owner.team == "db"`, raisedEvent)       // owner is null unless set
	nested := sub(`payload.checks.exists(c, c.children.exists(d, d.name == "dns"))`, raisedEvent)
	pattern := sub(`payload.id.endsWith("-2")`, "alert.*")
	mapped := sub(`payload.level == "critical"`, mappedEvent)
	missingKey := sub(`payload.labels["env"] == "prod"`, raisedEvent) // a runtime error when the key is missing
	both := subscribe(t, c, outhook.Subscription{Events: []string{raisedEvent},
		Filter: &outhook.Filter{Expr: `payload.count > 1`, Field: "systemIds", AnyOf: []string{"sys-2"}}}).ID

	a1 := sampleAlert("a-1")
	a2 := sampleAlert("a-2")
	a2.Severity, a2.SystemIDs, a2.Ratio = "minor", []string{"sys-2"}, 0.25
	a2.Owner = &AlertOwner{Team: "db"}
	a2.Labels = map[string]string{"env": "prod"}
	a2.Checks = nil
	emit(t, c, alertRaised, a1)
	emit(t, c, alertRaised, a2)
	emit(t, c, alertCleared, AlertCleared{ID: "a-2", Severity: 1})
	emit(t, c, alertMapped, a1)
	outhooktest.WaitIdle(t, c)

	got := deliveredIDs(t, fake)
	require.Equal(t, []string{"a-1"}, got[critical])
	require.Equal(t, []string{"a-1"}, got[numbers])
	require.Equal(t, []string{"a-2"}, got[owned])
	require.Equal(t, []string{"a-1"}, got[nested])
	require.ElementsMatch(t, []string{"a-2", "a-2"}, got[pattern], "alert.raised and alert.cleared")
	require.Equal(t, []string{"a-1"}, got[mapped])
	require.Equal(t, []string{"a-2"}, got[missingKey])
	require.ElementsMatch(t, []string{"a-1", "a-2"}, got[both])

	// Turned away: critical, numbers, owned, nested (a-2's checks are null:
	// an empty list) and pattern once each, both never. Failed:
	// missingKey on a-1, and pattern on alert.mapped, whose transformed
	// payload has no "id".
	stats := c.FilterStats()
	require.Equal(t, outhook.FilterStats{FilteredOut: 5, Errors: 2}, stats, "%q", logs.msgs)
	// Nothing turned away is recorded as a delivery, let alone a failed one.
	ds, err := c.Deliveries(t.Context(), outhook.DeliveryQuery{Status: outhook.DeliveryFailed})
	require.NoError(t, err)
	require.Empty(t, ds)

	logs.mu.Lock()
	defer logs.mu.Unlock()
	require.Len(t, logs.msgs, 2)
	all := strings.Join(logs.msgs, "\n")
	require.Contains(t, all, "subscription filter failed")
	require.Contains(t, all, "subscription="+missingKey+" message=msg_")
	require.Contains(t, all, "event="+raisedEvent)
	require.Contains(t, all, "no such key: env")
	require.Contains(t, all, "subscription="+pattern)
	require.Contains(t, all, "event="+mappedEvent)
}

func TestFilterExprRuntimeErrors(t *testing.T) {
	logs := &recordingHandler{}
	c, fake := setup(t, &outhook.Config{Registry: newAlertRegistry(t), Logger: slog.New(logs)})
	// Over the cost limit with 100 system IDs: 100³ iterations.
	costly := subscribe(t, c, outhook.Subscription{Events: []string{raisedEvent}, Filter: &outhook.Filter{
		Expr: `payload.systemIds.all(a, payload.systemIds.all(b, payload.systemIds.all(c, a != "" && b != "" && c != "")))`}}).ID
	divide := subscribe(t, c, outhook.Subscription{Events: []string{raisedEvent}, Filter: &outhook.Filter{
		Expr: `10 / (payload.count - 3) > 1`}}).ID
	ok := subscribe(t, c, outhook.Subscription{Events: []string{raisedEvent}, Filter: &outhook.Filter{
		Expr: `payload.count == 3`}}).ID

	a := sampleAlert("a-1")
	a.SystemIDs = nil
	for i := range 100 {
		a.SystemIDs = append(a.SystemIDs, fmt.Sprintf("sys-%d", i))
	}
	for range 3 {
		emit(t, c, alertRaised, a)
	}
	outhooktest.WaitIdle(t, c)

	got := deliveredIDs(t, fake)
	require.Empty(t, got[costly])
	require.Empty(t, got[divide])
	require.Len(t, got[ok], 3)
	require.Equal(t, outhook.FilterStats{Errors: 6}, c.FilterStats())

	// Logged once per expression however often it fails.
	logs.mu.Lock()
	defer logs.mu.Unlock()
	require.Len(t, logs.msgs, 2)
	all := strings.Join(logs.msgs, "\n")
	require.Contains(t, all, "cost limit exceeded")
	require.Contains(t, all, "division by zero")
}

// An event registered after a subscription whose pattern selects it, and
// whose payload the filter does not fit: the filter fails for it, and is
// counted and logged, rather than delivering everything.
func TestFilterExprLaterEvent(t *testing.T) {
	reg := outhook.NewEventRegistry()
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[Alert]{Hook: alertRaised, DisplayName: "Alert raised"}, alertPlugin)
	logs := &recordingHandler{}
	c, fake := setup(t, &outhook.Config{Registry: reg, Logger: slog.New(logs)})
	sub := subscribe(t, c, outhook.Subscription{Events: []string{"alert.*"}, Filter: &outhook.Filter{Expr: `payload.count > 1`}})

	outhook.MustRegisterEvent(reg, outhook.EventDefinition[AlertCleared]{Hook: alertCleared, DisplayName: "Alert cleared"}, alertPlugin)
	emit(t, c, alertCleared, AlertCleared{ID: "a-1"})
	emit(t, c, alertRaised, sampleAlert("a-2"))
	outhooktest.WaitIdle(t, c)

	require.Equal(t, []string{"a-2"}, deliveredIDs(t, fake)[sub.ID])
	require.Equal(t, outhook.FilterStats{Errors: 1}, c.FilterStats())
	logs.mu.Lock()
	defer logs.mu.Unlock()
	require.Len(t, logs.msgs, 1)
	require.Contains(t, logs.msgs[0], "undefined field 'count'")

	// Saving the subscription again now checks it against both events.
	_, err := c.UpdateSubscription(t.Context(), sub)
	var fe *outhook.FilterError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, clearedEvent, fe.EventID)
}

// An update of the expression takes effect at once: compiled filters are
// cached by expression, not by subscription.
func TestFilterExprUpdate(t *testing.T) {
	c, fake := setup(t, &outhook.Config{Registry: newAlertRegistry(t)})
	sub := subscribe(t, c, outhook.Subscription{Events: []string{raisedEvent}, Filter: &outhook.Filter{Expr: `payload.id == "a-1"`}})
	emit(t, c, alertRaised, sampleAlert("a-1"))
	emit(t, c, alertRaised, sampleAlert("a-2"))
	outhooktest.WaitIdle(t, c)
	sub.Filter.Expr = `payload.id == "a-2"`
	_, err := c.UpdateSubscription(t.Context(), sub)
	require.NoError(t, err)
	emit(t, c, alertRaised, sampleAlert("a-1"))
	emit(t, c, alertRaised, sampleAlert("a-2"))
	outhooktest.WaitIdle(t, c)
	require.Equal(t, []string{"a-1", "a-2"}, deliveredIDs(t, fake)[sub.ID])
	require.Equal(t, outhook.FilterStats{FilteredOut: 2}, c.FilterStats())
}

// The field filter counts what it turns away too.
func TestFilterFieldCounted(t *testing.T) {
	c, fake := setup(t, nil)
	subscribe(t, c, outhook.Subscription{Events: []string{createdEvent},
		Filter: &outhook.Filter{Field: "systemIds", AnyOf: []string{"sys-2"}}})
	emit(t, c, incidentCreated, sampleIncident("inc-1", "sys-1"))
	emit(t, c, incidentCreated, sampleIncident("inc-2", "sys-2"))
	outhooktest.WaitIdle(t, c)
	require.Len(t, fake.Delivered(), 1)
	require.Equal(t, outhook.FilterStats{FilteredOut: 1}, c.FilterStats())
}
