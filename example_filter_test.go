package outhook_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/outhook/outhook"
)

// A CEL filter selects events by their payload. It is checked against the
// event's JSON Schema when the subscription is saved, so a misspelt field is
// refused with its position; events it turns away are counted, not failed.
func ExampleFilter() {
	reg := outhook.NewEventRegistry()
	created := outhook.MustNewHook[IncidentCreated]("incident.created")
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[IncidentCreated]{Hook: created, DisplayName: "Incident Created"},
		outhook.PluginMetadata{PluginID: "incident"})
	c := startClient(reg)
	defer func() { _ = c.Stop(context.Background()) }()
	ctx := context.Background()

	_, err := c.CreateSubscription(ctx, outhook.Subscription{
		Name:        "db on-call",
		Events:      []string{"incident.**"},
		DelivererID: "print",
		Filter:      &outhook.Filter{Expr: `payload.severity == "critical" && "sys-db" in payload.systemIds`},
	})
	if err != nil {
		panic(err)
	}

	_, err = c.CreateSubscription(ctx, outhook.Subscription{
		Events:      []string{"incident.incident.created"},
		DelivererID: "print",
		Filter:      &outhook.Filter{Expr: `payload.severity == "critical" &&` + "\n" + `payload.systemId == "sys-db"`},
	})
	var fe *outhook.FilterError
	if errors.As(err, &fe) {
		fmt.Printf("refused at %d:%d: %s\n", fe.Line, fe.Column, fe.Msg)
	}

	for _, inc := range []IncidentCreated{
		{IncidentID: "inc-1", SystemIDs: []string{"sys-web"}, Title: "Slow pages", Severity: "minor"},
		{IncidentID: "inc-2", SystemIDs: []string{"sys-web", "sys-db"}, Title: "Database down", Severity: "critical"},
	} {
		if err := outhook.EmitHook(ctx, c, created, inc); err != nil {
			panic(err)
		}
	}
	waitIdle(c)
	fmt.Printf("%+v\n", c.FilterStats())
	// Output:
	// refused at 2:8: undefined field 'systemId'
	// deliver incident.incident.created to "db on-call": {"incidentId":"inc-2","systemIds":["sys-web","sys-db"],"title":"Database down","severity":"critical"}
	// {FilteredOut:1 Errors:0}
}
