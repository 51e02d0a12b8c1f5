// Command incidents is outhook's main demo. An "incident" plugin defines
// three hooks, registers them as integration events and emits incidents.
// Three subscriptions send them on: signed Standard Webhooks to a receiver
// that verifies every signature, Slack messages and PagerDuty events, each
// to a local stand-in this program starts on 127.0.0.1. The webhook receiver
// fails its first request, so the demo shows a retry; a payload that breaks
// the hook's validation rules, and a subscription with a bad secret, show
// the errors outhook returns. It ends by printing the delivery log.
//
//	go run ./examples/incidents
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/outhook/outhook"
	"github.com/outhook/outhook/pagerduty"
	"github.com/outhook/outhook/safehttp"
	"github.com/outhook/outhook/slack"
	"github.com/outhook/outhook/webhook"
)

// ---- the incident plugin: payloads, hooks and events ----

// IncidentCreated is the payload of incident.created.
type IncidentCreated struct {
	IncidentID string   `json:"incidentId" validate:"required" description:"Unique ID of the incident"`
	SystemIDs  []string `json:"systemIds" validate:"required,min=1,dive,required" description:"Systems the incident affects"`
	Title      string   `json:"title" validate:"required,max=200" description:"One-line summary"`
	Severity   string   `json:"severity" validate:"required,oneof=critical major minor" description:"How bad it is"`
}

// IncidentUpdated is the payload of incident.updated.
type IncidentUpdated struct {
	IncidentID   string   `json:"incidentId" validate:"required"`
	SystemIDs    []string `json:"systemIds" validate:"required,min=1"`
	StatusChange string   `json:"statusChange,omitempty" validate:"omitempty,oneof=investigating identified monitoring"`
}

// IncidentResolved is the payload of incident.resolved.
type IncidentResolved struct {
	IncidentID string   `json:"incidentId" validate:"required"`
	SystemIDs  []string `json:"systemIds" validate:"required,min=1"`
}

var (
	incidentCreated  = outhook.MustNewHook[IncidentCreated]("incident.created")
	incidentUpdated  = outhook.MustNewHook[IncidentUpdated]("incident.updated")
	incidentResolved = outhook.MustNewHook[IncidentResolved]("incident.resolved")

	plugin = outhook.PluginMetadata{PluginID: "incident", DisplayName: "Incidents", Version: "1.0.0"}
)

// registerIncidentEvents is what the plugin does at start-up.
func registerIncidentEvents(reg *outhook.EventRegistry) error {
	_, err1 := outhook.RegisterEvent(reg, outhook.EventDefinition[IncidentCreated]{
		Hook:        incidentCreated,
		DisplayName: "Incident Created",
		Description: "Fires when a new incident is created",
		Category:    outhook.CategoryIncidents,
		// Subscribers get an external-friendly shape.
		TransformPayload: func(p IncidentCreated) (map[string]any, error) {
			return map[string]any{
				"incidentId":       p.IncidentID,
				"type":             "INCIDENT_CREATED",
				"severity":         strings.ToUpper(p.Severity),
				"affected_systems": len(p.SystemIDs),
				"systemIds":        p.SystemIDs,
				"title":            p.Title,
			}, nil
		},
	}, plugin)
	_, err2 := outhook.RegisterEvent(reg, outhook.EventDefinition[IncidentUpdated]{
		Hook: incidentUpdated, DisplayName: "Incident Updated",
		Description: "Fires when an incident is updated", Category: outhook.CategoryIncidents,
	}, plugin)
	_, err3 := outhook.RegisterEvent(reg, outhook.EventDefinition[IncidentResolved]{
		Hook: incidentResolved, DisplayName: "Incident Resolved",
		Description: "Fires when an incident is resolved", Category: outhook.CategoryIncidents,
	}, plugin)
	return errors.Join(err1, err2, err3)
}

// ---- local stand-ins for the outside world ----

// standIns are the loopback servers the demo delivers to. Each prints what
// it receives.
type standIns struct {
	out      io.Writer
	verifier *webhook.Verifier
	requests atomic.Int32
}

// receiver is a webhook endpoint: it verifies the Standard Webhooks
// signature of every request and fails the first one on purpose.
func (s *standIns) receiver(w http.ResponseWriter, r *http.Request) {
	n := s.requests.Add(1)
	body, _ := io.ReadAll(r.Body)
	var msg struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	_ = json.Unmarshal(body, &msg)
	verified := "signature verified"
	if err := s.verifier.Verify(body, r.Header); err != nil {
		verified = "SIGNATURE REJECTED: " + err.Error()
	}
	if n == 1 {
		fmt.Fprintf(s.out, "  webhook   #%d %-27s %s -> 503 (failing once on purpose)\n", n, msg.Type, verified)
		http.Error(w, "warming up", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintf(s.out, "  webhook   #%d %-27s %s -> 204  id=%s\n", n, msg.Type, verified, r.Header.Get("webhook-id"))
	w.WriteHeader(http.StatusNoContent)
}

// slack stands in for https://hooks.slack.com/services/...
func (s *standIns) slack(w http.ResponseWriter, r *http.Request) {
	var msg struct {
		Text string `json:"text"`
	}
	_ = json.NewDecoder(r.Body).Decode(&msg)
	fmt.Fprintf(s.out, "  slack     %s\n", msg.Text)
	_, _ = io.WriteString(w, "ok")
}

// pagerDuty stands in for https://events.pagerduty.com/v2/enqueue.
func (s *standIns) pagerDuty(w http.ResponseWriter, r *http.Request) {
	var ev struct {
		Action   string `json:"event_action"`
		DedupKey string `json:"dedup_key"`
		Payload  *struct {
			Summary  string `json:"summary"`
			Severity string `json:"severity"`
		} `json:"payload"`
	}
	_ = json.NewDecoder(r.Body).Decode(&ev)
	line := fmt.Sprintf("  pagerduty %s %s dedup_key=%s", r.URL.Path, ev.Action, ev.DedupKey)
	if ev.Payload != nil {
		line += fmt.Sprintf(" severity=%s summary=%q", ev.Payload.Severity, ev.Payload.Summary)
	}
	fmt.Fprintln(s.out, line)
	w.WriteHeader(http.StatusAccepted)
	_, _ = fmt.Fprintf(w, `{"status":"success","message":"Event processed","dedup_key":%q}`, ev.DedupKey)
}

// serve starts handler on a loopback port and returns its URL.
func serve(handler http.HandlerFunc) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close(); <-done }, nil
}

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// lockedWriter lets the stand-ins' goroutines and the main one print to one
// writer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func run(w io.Writer) error {
	ctx := context.Background()
	out := &lockedWriter{w: w}

	// The signing secret the receiver shares with the subscription.
	secret, err := webhook.NewSecret()
	if err != nil {
		return err
	}
	verifier, err := webhook.NewVerifier(secret)
	if err != nil {
		return err
	}
	stand := &standIns{out: out, verifier: verifier}
	receiverURL, stopReceiver, err := serve(stand.receiver)
	if err != nil {
		return err
	}
	defer stopReceiver()
	slackURL, stopSlack, err := serve(stand.slack)
	if err != nil {
		return err
	}
	defer stopSlack()
	pagerDutyURL, stopPagerDuty, err := serve(stand.pagerDuty)
	if err != nil {
		return err
	}
	defer stopPagerDuty()

	// The plugin registers its events.
	reg := outhook.NewEventRegistry()
	if err := registerIncidentEvents(reg); err != nil {
		return err
	}
	fmt.Fprintln(out, "Registered events:")
	for _, cat := range reg.Categories() {
		for _, ev := range cat.Events {
			fmt.Fprintf(out, "  [%s] %-28s %s\n", cat.Name, ev.ID, ev.DisplayName)
		}
	}

	// Deliverers share one outbound HTTP client whose SSRF guard refuses
	// private addresses; the demo's stand-ins live on loopback, so it
	// allows loopback explicitly. Nothing else does.
	httpClient, err := safehttp.New(&safehttp.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	if err != nil {
		return err
	}
	defer httpClient.Close()
	webhooks, err := webhook.New(&webhook.Options{HTTP: httpClient})
	if err != nil {
		return err
	}
	slackMessages, err := slack.New(&slack.Options{HTTP: httpClient, AllowAnyHost: true})
	if err != nil {
		return err
	}
	pagerDuty, err := pagerduty.New(&pagerduty.Options{HTTP: httpClient, BaseURL: pagerDutyURL})
	if err != nil {
		return err
	}
	client, err := outhook.NewClient(&outhook.Config{
		Registry:   reg,
		Deliverers: []outhook.Deliverer{webhooks, slackMessages, pagerDuty},
		// A demo-sized schedule; the default waits 5 s, 5 min, 30 min, ...
		DeliveryRetry: outhook.RetryPolicy{NewBackOff: func() backoff.BackOff {
			return outhook.NewSchedule(100*time.Millisecond, 500*time.Millisecond)
		}},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		return err
	}
	if err := client.Start(ctx); err != nil {
		return err
	}

	// Three subscriptions, as a user would create them in a UI.
	subs := []outhook.Subscription{{
		Name: "ops webhook", Events: []string{"incident.**"}, DelivererID: webhook.ID,
		Config: json.RawMessage(`{"url":"` + receiverURL + `/hooks","secrets":[{"secret":"` + secret + `"}]}`),
	}, {
		Name: "#incidents", Events: []string{"incident.incident.created", "incident.incident.resolved"}, DelivererID: slack.ID,
		Config: json.RawMessage(`{"webhookUrl":"` + slackURL + `/services/T000/B000/XXXXXXXX"}`),
		// Only incidents that touch the database.
		Filter: &outhook.Filter{Field: "systemIds", AnyOf: []string{"sys-db"}},
	}, {
		Name: "on-call", Events: []string{"incident.incident.created", "incident.incident.resolved"}, DelivererID: pagerduty.ID,
		Config: json.RawMessage(`{
			"routingKey": "0123456789abcdef0123456789abcdef",
			"actions": [{"events": "incident.incident.resolved", "action": "resolve"}],
			"dedupKeyField": "incidentId",
			"severityField": "severity",
			"severityMap": {"CRITICAL": "critical", "MAJOR": "error", "MINOR": "warning"}
		}`),
	}}
	names := map[string]string{}
	for i, s := range subs {
		created, err := client.CreateSubscription(ctx, s)
		if err != nil {
			return fmt.Errorf("subscription %q: %w", s.Name, err)
		}
		subs[i], names[created.ID] = created, created.Name
	}
	fmt.Fprintf(out, "\nSubscriptions are stored with their secrets masked:\n  %s\n", subs[0].Config)

	// A subscription with a bad secret is refused, naming the field.
	_, err = client.CreateSubscription(ctx, outhook.Subscription{
		Events: []string{"incident.**"}, DelivererID: webhook.ID,
		Config: json.RawMessage(`{"url":"https://example.com/hooks","secrets":[{"secret":"whsec_tooshort"}]}`),
	})
	fmt.Fprintf(out, "\nA subscription with a bad secret is refused:\n  %v\n", err)

	// Before real events flow, the user sends a test event to Slack.
	fmt.Fprintln(out, "\nSending a test event to #incidents:")
	attempt, err := client.SendTest(ctx, subs[1].ID)
	if err != nil {
		return fmt.Errorf("test event: %w", err)
	}
	fmt.Fprintf(out, "  test attempt: %s %d (%s)\n", attempt.Outcome, attempt.StatusCode, attempt.Trigger)

	// The application emits hooks where things happen.
	fmt.Fprintln(out, "\nEmitting incidents:")
	emits := []error{
		outhook.EmitHook(ctx, client, incidentCreated, IncidentCreated{
			IncidentID: "inc-1", SystemIDs: []string{"sys-db", "sys-api"}, Title: "Primary database unreachable", Severity: "critical"}),
		outhook.EmitHook(ctx, client, incidentUpdated, IncidentUpdated{
			IncidentID: "inc-1", SystemIDs: []string{"sys-db"}, StatusChange: "identified"}),
	}
	if err := errors.Join(emits...); err != nil {
		return err
	}
	// A payload that breaks the validation rules is refused, and nothing is
	// queued.
	err = outhook.EmitHook(ctx, client, incidentCreated, IncidentCreated{IncidentID: "inc-2", Severity: "apocalyptic"})
	if !errors.Is(err, outhook.ErrInvalidPayload) {
		return fmt.Errorf("expected a validation error, got %v", err)
	}
	fmt.Fprintf(out, "  invalid payload refused:\n    %v\n", err)
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := client.WaitIdle(waitCtx); err != nil {
		return err
	}
	// Resolved once the rest is through, so the stand-ins print in order.
	if err := outhook.EmitHook(ctx, client, incidentResolved, IncidentResolved{IncidentID: "inc-1", SystemIDs: []string{"sys-db"}}); err != nil {
		return err
	}
	if err := client.WaitIdle(waitCtx); err != nil {
		return err
	}

	// The delivery log.
	deliveries, err := client.Deliveries(ctx, outhook.DeliveryQuery{})
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "\nDelivery log:")
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  EVENT\tSUBSCRIPTION\tDELIVERER\tSTATUS\tATTEMPTS")
	failures := 0
	for i := len(deliveries) - 1; i >= 0; i-- {
		d := deliveries[i]
		var trail []string
		for _, a := range d.Attempts {
			step := fmt.Sprintf("#%d %s %d", a.Number, a.Outcome, a.StatusCode)
			if a.ErrorClass != "" {
				step += " " + a.ErrorClass
			}
			trail = append(trail, step)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", d.EventID, names[d.SubscriptionID], d.DelivererID, d.Status, strings.Join(trail, ", "))
		if d.Status != outhook.DeliverySucceeded {
			failures++
		}
	}
	tw.Flush()

	stopCtx, stopCancel := context.WithTimeout(ctx, 10*time.Second)
	defer stopCancel()
	if err := client.Stop(stopCtx); err != nil {
		return err
	}
	// 3 events to the webhook, 2 to Slack (created and resolved touch
	// sys-db), 2 to PagerDuty.
	if failures > 0 || len(deliveries) != 7 {
		return fmt.Errorf("expected 7 succeeded deliveries, got %d deliveries with %d not succeeded", len(deliveries), failures)
	}
	fmt.Fprintf(out, "\nAll %d deliveries succeeded.\n", len(deliveries))
	return nil
}
