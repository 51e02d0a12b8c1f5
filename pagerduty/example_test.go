package pagerduty_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/pagerduty"
	"github.com/outhook/outhook/safehttp"
)

type Incident struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Severity string `json:"severity"`
}

var (
	incidentCreated  = outhook.MustNewHook[Incident]("incident.created")
	incidentResolved = outhook.MustNewHook[Incident]("incident.resolved")
)

// An incident is triggered, then resolved: both events carry the incident's
// ID as the dedup key, so PagerDuty resolves the alert the trigger opened.
// A local server stands in for https://events.pagerduty.com.
func ExampleNew() {
	pd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Action   string `json:"event_action"`
			DedupKey string `json:"dedup_key"`
			Payload  *struct {
				Summary  string `json:"summary"`
				Severity string `json:"severity"`
			} `json:"payload"`
		}
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &ev)
		fmt.Println(r.URL.Path, ev.Action, ev.DedupKey)
		if ev.Payload != nil {
			fmt.Printf("  %s (%s)\n", ev.Payload.Summary, ev.Payload.Severity)
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = fmt.Fprintf(w, `{"status":"success","message":"Event processed","dedup_key":%q}`, ev.DedupKey)
	}))
	defer pd.Close()

	// Only tests and demos allow loopback; by default nothing private is
	// reachable.
	hc, _ := safehttp.New(&safehttp.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	defer hc.Close()
	d, err := pagerduty.New(&pagerduty.Options{HTTP: hc, BaseURL: pd.URL})
	if err != nil {
		panic(err)
	}

	reg := outhook.NewEventRegistry()
	plugin := outhook.PluginMetadata{PluginID: "incident"}
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[Incident]{Hook: incidentCreated, DisplayName: "Incident created"}, plugin)
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[Incident]{Hook: incidentResolved, DisplayName: "Incident resolved"}, plugin)
	client, err := outhook.NewClient(&outhook.Config{Registry: reg, Deliverers: []outhook.Deliverer{d}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	_ = client.Start(ctx)
	defer client.Stop(ctx)

	_, err = client.CreateSubscription(ctx, outhook.Subscription{
		Name:        "on-call",
		Events:      []string{"incident.**"},
		DelivererID: pagerduty.ID,
		Config: json.RawMessage(`{
			"routingKey": "0123456789abcdef0123456789abcdef",
			"actions": [{"events": "incident.incident.resolved", "action": "resolve"}],
			"dedupKeyField": "id",
			"severityField": "severity",
			"severityMap": {"major": "critical", "minor": "warning"}
		}`),
	})
	if err != nil {
		panic(err)
	}

	inc := Incident{ID: "inc_42", Title: "Database down", Severity: "Major"}
	_ = outhook.EmitHook(ctx, client, incidentCreated, inc)
	_ = client.WaitIdle(ctx)
	_ = outhook.EmitHook(ctx, client, incidentResolved, inc)
	_ = client.WaitIdle(ctx)
	// Output:
	// /v2/enqueue trigger inc_42
	//   Incident created: Database down (critical)
	// /v2/enqueue resolve inc_42
}
