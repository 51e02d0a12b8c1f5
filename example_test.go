package outhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/outhook/outhook"
)

// printDeliverer prints each delivery and succeeds.
type printDeliverer struct{}

func (printDeliverer) ID() string                           { return "print" }
func (printDeliverer) ConfigSchema() json.RawMessage        { return json.RawMessage(`{"type":"object"}`) }
func (printDeliverer) ValidateConfig(json.RawMessage) error { return nil }
func (printDeliverer) Deliver(_ context.Context, req *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	fmt.Printf("deliver %s to %q: %s\n", req.EventID, req.Subscription.Name, req.Payload)
	return outhook.DeliveryResult{StatusCode: 200}, nil
}

// startClient is the boilerplate of the examples: a started client with
// the print deliverer and a quiet logger.
func startClient(reg *outhook.EventRegistry, more ...outhook.Deliverer) *outhook.Client {
	c, err := outhook.NewClient(&outhook.Config{
		Registry:   reg,
		Deliverers: append([]outhook.Deliverer{printDeliverer{}}, more...),
		Logger:     slog.New(slog.DiscardHandler),
		DeliveryRetry: outhook.RetryPolicy{NewBackOff: func() backoff.BackOff {
			return backoff.WithMaxRetries(&backoff.ZeroBackOff{}, 2)
		}},
	})
	if err != nil {
		panic(err)
	}
	if err := c.Start(context.Background()); err != nil {
		panic(err)
	}
	return c
}

func waitIdle(c *outhook.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitIdle(ctx); err != nil {
		panic(err)
	}
}

func ExampleNewHook() {
	h, err := outhook.NewHook[IncidentCreated]("incident.created")
	fmt.Println(h.ID(), err)

	_, err = outhook.NewHook[IncidentCreated]("incident created")
	fmt.Println(err)
	// Output:
	// incident.created <nil>
	// outhook: invalid hook ID "incident created": has invalid character ' ' at byte 8 (allowed: letters, digits, '_', '-' and '.' between segments)
}

func ExampleRegisterEvent() {
	reg := outhook.NewEventRegistry()
	ev, err := outhook.RegisterEvent(reg, outhook.EventDefinition[IncidentCreated]{
		Hook:        outhook.MustNewHook[IncidentCreated]("incident.created"),
		DisplayName: "Incident Created",
		Description: "Fires when a new incident is created",
		Category:    outhook.CategoryIncidents,
	}, outhook.PluginMetadata{PluginID: "incident"})
	if err != nil {
		panic(err)
	}
	fmt.Println(ev.ID, "|", ev.DisplayName, "|", ev.Category)

	_, err = outhook.RegisterEvent(reg, outhook.EventDefinition[IncidentCreated]{
		Hook: outhook.MustNewHook[IncidentCreated]("incident.created"), DisplayName: "Again",
	}, outhook.PluginMetadata{PluginID: "incident"})
	fmt.Println(err)
	// Output:
	// incident.incident.created | Incident Created | Incidents
	// outhook: duplicate: event "incident.incident.created" is already registered
}

func ExampleEventRegistry_Categories() {
	reg := outhook.NewEventRegistry()
	for _, e := range []struct{ plugin, hook, category string }{
		{"auth", "user.login", outhook.CategoryAuth},
		{"incident", "incident.created", outhook.CategoryIncidents},
		{"maintenance", "started", outhook.CategoryMaintenance},
		{"healthcheck-http", "state.changed", outhook.CategoryHealth},
		{"misc", "thing.happened", ""},
	} {
		outhook.MustRegisterEvent(reg, outhook.EventDefinition[struct{}]{
			Hook: outhook.MustNewHook[struct{}](e.hook), DisplayName: e.hook, Category: e.category,
		}, outhook.PluginMetadata{PluginID: e.plugin})
	}
	for _, cat := range reg.Categories() {
		for _, ev := range cat.Events {
			fmt.Printf("%-13s %s\n", cat.Name, ev.ID)
		}
	}
	// Output:
	// Incidents     incident.incident.created
	// Maintenance   maintenance.started
	// Health        healthcheck-http.state.changed
	// Auth          auth.user.login
	// Uncategorized misc.thing.happened
}

func ExampleSchemaFor() {
	type Resolved struct {
		IncidentID string   `json:"incidentId" validate:"required" description:"Unique ID of the incident"`
		SystemIDs  []string `json:"systemIds" validate:"required,min=1"`
	}
	schema, err := outhook.SchemaFor[Resolved]()
	if err != nil {
		panic(err)
	}
	fmt.Println(string(schema))
	// Output:
	// {
	//   "$schema": "https://json-schema.org/draft/2020-12/schema",
	//   "properties": {
	//     "incidentId": {
	//       "type": "string",
	//       "minLength": 1,
	//       "description": "Unique ID of the incident"
	//     },
	//     "systemIds": {
	//       "items": {
	//         "type": "string"
	//       },
	//       "type": "array",
	//       "minItems": 1
	//     }
	//   },
	//   "additionalProperties": false,
	//   "type": "object",
	//   "required": [
	//     "incidentId",
	//     "systemIds"
	//   ]
	// }
}

func ExampleEmitHook() {
	reg := outhook.NewEventRegistry()
	created := outhook.MustNewHook[IncidentCreated]("incident.created")
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[IncidentCreated]{Hook: created, DisplayName: "Incident Created"},
		outhook.PluginMetadata{PluginID: "incident"})
	c := startClient(reg)
	defer c.Stop(context.Background())
	ctx := context.Background()
	if _, err := c.CreateSubscription(ctx, outhook.Subscription{Name: "ops", Events: []string{"incident.incident.created"}, DelivererID: "print"}); err != nil {
		panic(err)
	}

	err := outhook.EmitHook(ctx, c, created, IncidentCreated{IncidentID: "inc-1", SystemIDs: []string{"sys-1"}, Title: "DB down", Severity: "critical"})
	waitIdle(c) // the delivery happens in the background; wait for it before printing
	fmt.Println("emit:", err)

	// A payload that breaks the validate tags is refused, naming every
	// failing field by its JSON name; nothing is queued.
	err = outhook.EmitHook(ctx, c, created, IncidentCreated{IncidentID: "inc-2", Severity: "bad"})
	fmt.Println(errors.Is(err, outhook.ErrInvalidPayload))
	fmt.Println(err)
	// Output:
	// deliver incident.incident.created to "ops": {"incidentId":"inc-1","systemIds":["sys-1"],"title":"DB down","severity":"critical"}
	// emit: <nil>
	// true
	// outhook: invalid payload for hook "incident.created": systemIds is required; title is required; severity must be one of [critical major minor]
}

func ExampleOnHook() {
	c := startClient(nil)
	defer c.Stop(context.Background())
	resolved := outhook.MustNewHook[IncidentResolved]("incident.resolved")

	// Work-queue mode: once per group, retried when the handler fails.
	err := outhook.OnHook(c, resolved, func(ctx context.Context, p IncidentResolved) error {
		fmt.Println("close tickets of", p.IncidentID)
		return nil
	}, outhook.WorkQueue("ticketing"))
	if err != nil {
		panic(err)
	}
	if err := outhook.EmitHook(context.Background(), c, resolved, IncidentResolved{IncidentID: "inc-7", SystemIDs: []string{"sys-1"}}); err != nil {
		panic(err)
	}
	waitIdle(c)
	// Output:
	// close tickets of inc-7
}

func ExampleTransformFunc() {
	reg := outhook.NewEventRegistry()
	created := outhook.MustNewHook[IncidentCreated]("incident.created")
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[IncidentCreated]{
		Hook: created, DisplayName: "Incident Created",
		// Runs once per event, before routing: filters see its output.
		TransformPayload: func(p IncidentCreated) (map[string]any, error) {
			return map[string]any{"id": p.IncidentID, "severity": strings.ToUpper(p.Severity), "affected_systems": len(p.SystemIDs)}, nil
		},
	}, outhook.PluginMetadata{PluginID: "incident"})
	c := startClient(reg)
	defer c.Stop(context.Background())
	ctx := context.Background()
	if _, err := c.CreateSubscription(ctx, outhook.Subscription{Name: "pager", Events: []string{"incident.**"}, DelivererID: "print",
		Filter: &outhook.Filter{Field: "severity", AnyOf: []string{"CRITICAL"}}}); err != nil {
		panic(err)
	}
	for _, sev := range []string{"minor", "critical"} {
		if err := outhook.EmitHook(ctx, c, created, IncidentCreated{IncidentID: "inc-" + sev, SystemIDs: []string{"a", "b"}, Title: "t", Severity: sev}); err != nil {
			panic(err)
		}
		waitIdle(c)
	}
	// Output:
	// deliver incident.incident.created to "pager": {"affected_systems":2,"id":"inc-critical","severity":"CRITICAL"}
}

func ExampleClient_CreateSubscription() {
	reg := outhook.NewEventRegistry()
	created := outhook.MustNewHook[IncidentCreated]("incident.created")
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[IncidentCreated]{Hook: created, DisplayName: "Incident Created"},
		outhook.PluginMetadata{PluginID: "incident"})
	c := startClient(reg)
	defer c.Stop(context.Background())
	ctx := context.Background()

	// Only incidents that touch sys-db, whichever position it has in the
	// systemIds array.
	sub, err := c.CreateSubscription(ctx, outhook.Subscription{
		Name:        "db team",
		Events:      []string{"incident.incident.*"},
		DelivererID: "print",
		Filter:      &outhook.Filter{Field: "systemIds", AnyOf: []string{"sys-db"}},
	})
	fmt.Println(sub.Events, err)

	_, err = c.CreateSubscription(ctx, outhook.Subscription{Events: []string{"incident.incident.deleted"}, DelivererID: "print"})
	fmt.Println(err)

	for _, systems := range [][]string{{"sys-web"}, {"sys-web", "sys-db"}} {
		if err := outhook.EmitHook(ctx, c, created, IncidentCreated{IncidentID: "inc-1", SystemIDs: systems, Title: "t", Severity: "major"}); err != nil {
			panic(err)
		}
		waitIdle(c)
	}
	// Output:
	// [incident.incident.*] <nil>
	// outhook: invalid subscription: events[0]: unknown event "incident.incident.deleted": outhook: not found
	// deliver incident.incident.created to "db team": {"incidentId":"inc-1","systemIds":["sys-web","sys-db"],"title":"t","severity":"major"}
}

// flakyDeliverer fails permanently until it is fixed.
type flakyDeliverer struct{ fixed bool }

func (*flakyDeliverer) ID() string                           { return "flaky" }
func (*flakyDeliverer) ConfigSchema() json.RawMessage        { return json.RawMessage(`{"type":"object"}`) }
func (*flakyDeliverer) ValidateConfig(json.RawMessage) error { return nil }
func (d *flakyDeliverer) Deliver(context.Context, *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	if !d.fixed {
		return outhook.DeliveryResult{StatusCode: 404}, outhook.Permanent(errors.New("404 Not Found"))
	}
	return outhook.DeliveryResult{StatusCode: 204}, nil
}

func ExampleClient_Redeliver() {
	reg := outhook.NewEventRegistry()
	created := outhook.MustNewHook[IncidentCreated]("incident.created")
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[IncidentCreated]{Hook: created, DisplayName: "Incident Created"},
		outhook.PluginMetadata{PluginID: "incident"})
	flaky := &flakyDeliverer{}
	c := startClient(reg, flaky)
	defer c.Stop(context.Background())
	ctx := context.Background()
	if _, err := c.CreateSubscription(ctx, outhook.Subscription{Events: []string{"incident.**"}, DelivererID: "flaky"}); err != nil {
		panic(err)
	}
	if err := outhook.EmitHook(ctx, c, created, IncidentCreated{IncidentID: "inc-1", SystemIDs: []string{"s"}, Title: "t", Severity: "minor"}); err != nil {
		panic(err)
	}
	waitIdle(c)

	failed, _ := c.Deliveries(ctx, outhook.DeliveryQuery{Status: outhook.DeliveryFailed})
	fmt.Println(len(failed), failed[0].Status, failed[0].LastError)

	// The receiver is fixed: send it again, under the same delivery ID.
	flaky.fixed = true
	if err := c.Redeliver(ctx, failed[0].ID); err != nil {
		panic(err)
	}
	waitIdle(c)
	d, _ := c.Delivery(ctx, failed[0].ID)
	for _, a := range d.Attempts {
		fmt.Println(a.Number, a.Outcome, a.StatusCode)
	}
	// Output:
	// 1 failed 404 Not Found
	// 1 permanent 404
	// 2 succeeded 204
}

func ExampleNewSchedule() {
	// Five attempts: at once, then after 1 s, 10 s, 1 min and 10 min, each
	// randomized by ±10 %.
	policy := outhook.RetryPolicy{
		NewBackOff: func() backoff.BackOff {
			return outhook.NewSchedule(time.Second, 10*time.Second, time.Minute, 10*time.Minute)
		},
		MaxRetryAfter: 30 * time.Minute,
	}
	c, err := outhook.NewClient(&outhook.Config{DeliveryRetry: policy})
	fmt.Println(err)
	_ = c.Stop(context.Background())
	// Output:
	// <nil>
}
