package outhook_test

import (
	"encoding/json"
	"sync"
	"testing"

	"github.com/outhook/outhook"
	"github.com/stretchr/testify/require"
)

func TestEventIDNamespacing(t *testing.T) {
	// The namespacing table of the seed document.
	for _, tc := range []struct{ plugin, hook, event string }{
		{"incident", "incident.created", "incident.incident.created"},
		{"maintenance", "started", "maintenance.started"},
		{"healthcheck-http", "state.changed", "healthcheck-http.state.changed"},
	} {
		reg := outhook.NewEventRegistry()
		ev, err := outhook.RegisterEvent(reg, outhook.EventDefinition[struct{}]{
			Hook: outhook.MustNewHook[struct{}](tc.hook), DisplayName: "x",
		}, outhook.PluginMetadata{PluginID: tc.plugin})
		require.NoError(t, err)
		require.Equal(t, tc.event, ev.ID)
		require.Equal(t, tc.hook, ev.HookID)
		require.Equal(t, tc.plugin, ev.Plugin.PluginID)
		got, ok := reg.Event(tc.event)
		require.True(t, ok)
		require.Equal(t, ev, got)
	}
}

func TestRegisterEventErrors(t *testing.T) {
	reg := newIncidentRegistry(t)
	before := reg.Events()

	_, err := outhook.RegisterEvent(reg, outhook.EventDefinition[IncidentCreated]{Hook: incidentCreated, DisplayName: "Again"}, incidentPlugin)
	require.ErrorIs(t, err, outhook.ErrDuplicate)
	require.ErrorContains(t, err, createdEvent)

	_, err = outhook.RegisterEvent(reg, outhook.EventDefinition[IncidentCreated]{Hook: incidentCreated}, outhook.PluginMetadata{PluginID: "other"})
	require.ErrorContains(t, err, "DisplayName is required")

	for _, bad := range []string{"", "in cident", "a..b", "x/y"} {
		_, err = outhook.RegisterEvent(reg, outhook.EventDefinition[IncidentCreated]{Hook: incidentCreated, DisplayName: "x"}, outhook.PluginMetadata{PluginID: bad})
		require.ErrorIs(t, err, outhook.ErrInvalidID, bad)
		require.ErrorContains(t, err, "plugin")
	}
	_, err = outhook.RegisterEvent(reg, outhook.EventDefinition[IncidentCreated]{DisplayName: "x"}, outhook.PluginMetadata{PluginID: "p"})
	require.ErrorIs(t, err, outhook.ErrInvalidID, "zero hook")
	_, err = outhook.RegisterEvent[IncidentCreated](nil, outhook.EventDefinition[IncidentCreated]{Hook: incidentCreated, DisplayName: "x"}, incidentPlugin)
	require.Error(t, err)

	require.Equal(t, before, reg.Events(), "failed registrations leave the registry unchanged")
}

func TestRegistryListsAndGroups(t *testing.T) {
	reg := outhook.NewEventRegistry()
	add := func(plugin, hook, category string) {
		_, err := outhook.RegisterEvent(reg, outhook.EventDefinition[struct{}]{
			Hook: outhook.MustNewHook[struct{}](hook), DisplayName: hook, Category: category,
		}, outhook.PluginMetadata{PluginID: plugin})
		require.NoError(t, err)
	}
	add("zeta", "thing.happened", "")
	add("auth", "user.login", outhook.CategoryAuth)
	add("maintenance", "started", outhook.CategoryMaintenance)
	add("incident", "incident.created", outhook.CategoryIncidents)
	add("billing", "invoice.paid", "Billing")
	add("catalog", "system.created", outhook.CategoryCatalog)
	add("healthcheck-http", "state.changed", outhook.CategoryHealth)
	add("incident", "incident.resolved", outhook.CategoryIncidents)

	var ids []string
	for _, ev := range reg.Events() {
		ids = append(ids, ev.ID)
	}
	require.Equal(t, []string{
		"auth.user.login", "billing.invoice.paid", "catalog.system.created", "healthcheck-http.state.changed",
		"incident.incident.created", "incident.incident.resolved", "maintenance.started", "zeta.thing.happened",
	}, ids)

	var names []string
	for _, cat := range reg.Categories() {
		names = append(names, cat.Name)
	}
	require.Equal(t, []string{"Incidents", "Maintenance", "Health", "Catalog", "Auth", "Billing", "Uncategorized"}, names)
	require.Len(t, reg.Categories()[0].Events, 2)

	_, ok := reg.Event("no.such.event")
	require.False(t, ok)
}

func TestRegistryEventSchema(t *testing.T) {
	reg := newIncidentRegistry(t)
	ev, ok := reg.Event(createdEvent)
	require.True(t, ok)
	var schema map[string]any
	require.NoError(t, json.Unmarshal(ev.Schema, &schema))
	require.Equal(t, "https://json-schema.org/draft/2020-12/schema", schema["$schema"])
	props := schema["properties"].(map[string]any)
	require.Contains(t, props, "systemIds")
	require.Equal(t, "Unique ID of the incident", props["incidentId"].(map[string]any)["description"])
	require.ElementsMatch(t, []any{"incidentId", "systemIds", "title", "severity"}, schema["required"])
}

func TestRegistryConcurrentUse(t *testing.T) {
	reg := outhook.NewEventRegistry()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			h := outhook.MustNewHook[IncidentCreated]("h" + string(rune('a'+i)))
			_, err := outhook.RegisterEvent(reg, outhook.EventDefinition[IncidentCreated]{Hook: h, DisplayName: "x"}, incidentPlugin)
			require.NoError(t, err)
			_ = reg.Events()
			_ = reg.Categories()
		})
	}
	wg.Wait()
	require.Len(t, reg.Events(), 8)
}
