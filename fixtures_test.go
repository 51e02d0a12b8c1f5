package outhook_test

import (
	"log/slog"
	"testing"

	"github.com/outhook/outhook"
	"github.com/stretchr/testify/require"
)

// The incident plugin of the seed document, as test fixtures.

type IncidentCreated struct {
	IncidentID string   `json:"incidentId" validate:"required" description:"Unique ID of the incident"`
	SystemIDs  []string `json:"systemIds" validate:"required,min=1,dive,required" description:"Systems the incident affects"`
	Title      string   `json:"title" validate:"required,max=200"`
	Severity   string   `json:"severity" validate:"required,oneof=critical major minor"`
}

type IncidentResolved struct {
	IncidentID string   `json:"incidentId" validate:"required"`
	SystemIDs  []string `json:"systemIds" validate:"required,min=1"`
}

// quiet is the logger of tests that do not look at logs.
var quiet = slog.New(slog.DiscardHandler)

var (
	incidentCreated  = outhook.MustNewHook[IncidentCreated]("incident.created")
	incidentResolved = outhook.MustNewHook[IncidentResolved]("incident.resolved")
	incidentPlugin   = outhook.PluginMetadata{PluginID: "incident", DisplayName: "Incidents"}
)

const (
	createdEvent  = "incident.incident.created"
	resolvedEvent = "incident.incident.resolved"
)

func newIncidentRegistry(t testing.TB) *outhook.EventRegistry {
	t.Helper()
	reg := outhook.NewEventRegistry()
	_, err := outhook.RegisterEvent(reg, outhook.EventDefinition[IncidentCreated]{
		Hook: incidentCreated, DisplayName: "Incident Created",
		Description: "Fires when a new incident is created", Category: outhook.CategoryIncidents,
	}, incidentPlugin)
	require.NoError(t, err)
	_, err = outhook.RegisterEvent(reg, outhook.EventDefinition[IncidentResolved]{
		Hook: incidentResolved, DisplayName: "Incident Resolved", Category: outhook.CategoryIncidents,
	}, incidentPlugin)
	require.NoError(t, err)
	return reg
}

func sampleIncident(id string, systems ...string) IncidentCreated {
	if len(systems) == 0 {
		systems = []string{"sys-1"}
	}
	return IncidentCreated{IncidentID: id, SystemIDs: systems, Title: "Database down", Severity: "critical"}
}
