// Command incidents is outhook's main demo, written to be read top to bottom
// by a plugin author. An "incident" plugin defines three hooks, registers
// them as integration events and emits incidents; subscriptions send them
// on to local stand-ins this program starts on 127.0.0.1: webhook receivers
// that verify every Standard Webhooks signature, Slack and PagerDuty. It
// runs on the in-memory default, with nothing to install, in a few seconds,
// and prints, section by section:
//
//  1. the registered events, outhook's own operational events among them;
//  2. the subscriptions, stored with their secrets masked, and one with a
//     bad secret refused;
//  3. a test event sent to Slack;
//  4. incidents emitted: a payload that breaks the hook's validation rules
//     refused, a webhook retried after its receiver fails once, and the
//     delivery log;
//  5. a CEL payload filter that lets only critical database incidents
//     through, the filter counters, and a filter that does not type-check
//     refused with its line and column;
//  6. endpoint health: a partner endpoint that keeps failing is disabled
//     after two failed deliveries, and outhook's operational events
//     (delivery exhausted, subscription disabled) reach a Slack channel;
//  7. recovery: the endpoint is fixed, the subscription enabled again, and
//     Client.Recover sends the failed deliveries again, which now succeed.
//
// With -serve it then keeps running with the admin console (package
// adminui) and the admin API (package adminhttp) on 127.0.0.1, and prints
// their addresses and a login token, until Ctrl-C:
//
//	go run ./examples/incidents -serve [-addr 127.0.0.1:8080]
//
// The stand-ins live in standins.go.
//
//	go run ./examples/incidents
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/outhook/outhook"
	"github.com/outhook/outhook/adminhttp"
	"github.com/outhook/outhook/adminui"
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
		// Subscribers get an external-friendly shape. Filters see this
		// shape too: severity is upper case here.
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

// ---- the demo ----

func main() {
	serveFlag := flag.Bool("serve", false, "after the demo, keep running with the admin console and API on -addr until Ctrl-C")
	addr := flag.String("addr", "127.0.0.1:8080", "the console's address with -serve; it should stay on loopback")
	flag.Parse()
	opts := options{}
	if *serveFlag {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		opts = options{Serve: true, Addr: *addr, Done: ctx.Done()}
	}
	if _, err := run(os.Stdout, opts); err != nil {
		log.Fatal(err)
	}
}

// options are the demo's command-line options.
type options struct {
	// Serve keeps the demo running with the console until Done is closed.
	Serve bool
	Done  <-chan struct{}
	// Addr is where the console listens.
	Addr string
	// Ready, when not nil, receives the console's URL and token once it
	// listens (for the test).
	Ready func(consoleURL, apiURL, token string)
}

// summary is what the demo observed, for its test.
type summary struct {
	// FilterStats are the client's filter counters after section 5.
	FilterStats outhook.FilterStats
	// DBCritical are the messages the CEL-filtered #db-critical channel
	// received.
	DBCritical []string
	// Disabled is the partner's subscription once outhook disabled it.
	Disabled outhook.Subscription
	// OpsAlerts are the operational events #ops-alerts received.
	OpsAlerts []string
	// Recovered is the number of deliveries Client.Recover sent again.
	Recovered int
	// Deliveries is the number of deliveries in the log at the end, every
	// one of them succeeded.
	Deliveries int
}

// demo holds what the sections share.
type demo struct {
	ctx    context.Context
	out    io.Writer
	client *outhook.Client
	stand  *standIns
	secret string            // the webhook receivers' signing secret
	names  map[string]string // subscription names by ID, for the delivery log
	sum    summary

	// outageStart is when the partner's endpoint started failing, as far
	// as the demo knows: where the recovery starts.
	outageStart                       time.Time
	receiverURL, partnerURL, slackURL string
}

// run runs the demo, printing to w.
func run(w io.Writer, opts options) (summary, error) {
	ctx := context.Background()
	out := &lockedWriter{w: w}

	// The signing secret the webhook receivers share with their
	// subscriptions.
	secret, err := webhook.NewSecret()
	if err != nil {
		return summary{}, err
	}
	verifier, err := webhook.NewVerifier(secret)
	if err != nil {
		return summary{}, err
	}
	stand := &standIns{out: out, verifier: verifier}
	stand.partnerDown.Store(true) // until section 7
	d := &demo{ctx: ctx, out: out, stand: stand, secret: secret, names: map[string]string{}}
	var pagerDutyURL string
	for _, s := range []struct {
		url     *string
		handler func(http.ResponseWriter, *http.Request)
	}{
		{&d.receiverURL, stand.receiver},
		{&d.partnerURL, stand.partner},
		{&d.slackURL, stand.slackAPI},
		{&pagerDutyURL, stand.pagerDuty},
	} {
		url, stop, err := serve(s.handler)
		if err != nil {
			return summary{}, err
		}
		defer stop()
		*s.url = url
	}

	// The plugin registers its events.
	reg := outhook.NewEventRegistry()
	if err := registerIncidentEvents(reg); err != nil {
		return summary{}, err
	}

	// Deliverers share one outbound HTTP client whose SSRF guard refuses
	// private addresses; the demo's stand-ins live on loopback, so it
	// allows loopback explicitly. Nothing else does.
	httpClient, err := safehttp.New(&safehttp.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	if err != nil {
		return summary{}, err
	}
	defer httpClient.Close()
	webhooks, err := webhook.New(&webhook.Options{HTTP: httpClient})
	if err != nil {
		return summary{}, err
	}
	slackMessages, err := slack.New(&slack.Options{HTTP: httpClient, AllowAnyHost: true})
	if err != nil {
		return summary{}, err
	}
	pagerDuty, err := pagerduty.New(&pagerduty.Options{HTTP: httpClient, BaseURL: pagerDutyURL})
	if err != nil {
		return summary{}, err
	}
	deliverers := []outhook.Deliverer{webhooks, slackMessages, pagerDuty}
	client, err := outhook.NewClient(&outhook.Config{
		Registry:   reg,
		Deliverers: deliverers,
		// A demo-sized schedule: an attempt at once, then retries after
		// 50 ms and 250 ms, so a delivery that keeps failing ends within
		// half a second. The default retries after 5 s, 5 min, 30 min, ...
		// over about three days.
		DeliveryRetry: outhook.RetryPolicy{NewBackOff: func() backoff.BackOff {
			return outhook.NewSchedule(50*time.Millisecond, 250*time.Millisecond)
		}},
		// Endpoint health: disable a subscription once 2 of its deliveries
		// in a row have failed for good (each delivery counts once,
		// whatever its number of attempts). Off by default; a destination
		// that answers 410 Gone is disabled at once, and one failing for
		// DisableAfterFailingFor (5 days by default) too.
		DisableAfterFailures: 2,
		Logger:               slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		return summary{}, err
	}
	if err := client.Start(ctx); err != nil {
		return summary{}, err
	}
	defer func() {
		// Stop is safe to call twice; this one is for the error paths.
		stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = client.Stop(stopCtx)
	}()
	d.client = client

	for _, section := range []func() error{
		d.registeredEvents,
		d.subscriptions,
		d.testEvent,
		d.emitIncidents,
		d.celFilter,
		d.endpointHealth,
		d.recovery,
	} {
		if err := section(); err != nil {
			return d.sum, err
		}
	}
	if opts.Serve {
		if err := d.serveConsole(opts, deliverers); err != nil {
			return d.sum, err
		}
	}

	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return d.sum, client.Stop(stopCtx)
}

// section prints a section heading.
func (d *demo) section(title string) { fmt.Fprintf(d.out, "\n== %s ==\n", title) }

// waitIdle waits until the client has nothing left to do: every event
// routed, every delivery ended, retries included. Tests and demos wait on
// this rather than sleep.
func (d *demo) waitIdle() error {
	ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
	defer cancel()
	return d.client.WaitIdle(ctx)
}

// subscribe creates a subscription, as a user would in a UI.
func (d *demo) subscribe(s outhook.Subscription) (outhook.Subscription, error) {
	created, err := d.client.CreateSubscription(d.ctx, s)
	if err != nil {
		return outhook.Subscription{}, fmt.Errorf("subscription %q: %w", s.Name, err)
	}
	d.names[created.ID] = created.Name
	return created, nil
}

// webhookConfig is the configuration of a webhook subscription to url,
// signed with the demo's secret.
func (d *demo) webhookConfig(url string) json.RawMessage {
	return json.RawMessage(`{"url":"` + url + `/hooks","secrets":[{"secret":"` + d.secret + `"}]}`)
}

// slackConfig is the configuration of a Slack subscription to a channel of
// the Slack stand-in, with an optional message template.
func (d *demo) slackConfig(channel, textTemplate string) json.RawMessage {
	cfg, _ := json.Marshal(map[string]string{
		"webhookUrl":   d.slackURL + "/services/T000/B000/" + channel,
		"textTemplate": textTemplate,
	})
	return cfg
}

// 1. The registered events. NewClient has added outhook's own operational
// events, under plugin "outhook", to the plugin's.
func (d *demo) registeredEvents() error {
	d.section("1. Registered events")
	tw := tabwriter.NewWriter(d.out, 2, 4, 2, ' ', 0)
	for _, cat := range d.client.Registry().Categories() {
		for _, ev := range cat.Events {
			fmt.Fprintf(tw, "  [%s]\t%s\t%s\n", cat.Name, ev.ID, ev.DisplayName)
		}
	}
	return tw.Flush()
}

// 2. Subscriptions. Each names the events it wants (an ID or a pattern), a
// deliverer, and the deliverer's configuration, which the deliverer checks.
func (d *demo) subscriptions() error {
	d.section("2. Subscriptions")
	ops, err := d.subscribe(outhook.Subscription{
		Name: "ops webhook", Events: []string{"incident.**"}, DelivererID: webhook.ID,
		Config: d.webhookConfig(d.receiverURL),
	})
	if err != nil {
		return err
	}
	if _, err := d.subscribe(outhook.Subscription{
		Name: "#incidents", Events: []string{"incident.incident.created", "incident.incident.resolved"}, DelivererID: slack.ID,
		Config: d.slackConfig("incidents", ""),
		// Only incidents that touch the database.
		Filter: &outhook.Filter{Field: "systemIds", AnyOf: []string{"sys-db"}},
	}); err != nil {
		return err
	}
	if _, err := d.subscribe(outhook.Subscription{
		Name: "on-call", Events: []string{"incident.incident.created", "incident.incident.resolved"}, DelivererID: pagerduty.ID,
		Config: json.RawMessage(`{
			"routingKey": "0123456789abcdef0123456789abcdef",
			"actions": [{"events": "incident.incident.resolved", "action": "resolve"}],
			"dedupKeyField": "incidentId",
			"severityField": "severity",
			"severityMap": {"CRITICAL": "critical", "MAJOR": "error", "MINOR": "warning"}
		}`),
	}); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "Created ops webhook, #incidents and on-call; secrets are stored masked:\n  %s\n", ops.Config)

	// A subscription with a bad secret is refused, naming the field.
	_, err = d.client.CreateSubscription(d.ctx, outhook.Subscription{
		Events: []string{"incident.**"}, DelivererID: webhook.ID,
		Config: json.RawMessage(`{"url":"https://example.com/hooks","secrets":[{"secret":"whsec_tooshort"}]}`),
	})
	if err == nil {
		return errors.New("a subscription with a bad secret was accepted")
	}
	fmt.Fprintf(d.out, "A subscription with a bad secret is refused:\n  %v\n", err)
	return nil
}

// 3. Before real events flow, the user sends a test event to Slack.
func (d *demo) testEvent() error {
	d.section("3. A test event to #incidents")
	id := d.subscriptionID("#incidents")
	attempt, err := d.client.SendTest(d.ctx, id)
	if err != nil {
		return fmt.Errorf("test event: %w", err)
	}
	fmt.Fprintf(d.out, "  test attempt: %s %d (%s)\n", attempt.Outcome, attempt.StatusCode, attempt.Trigger)
	return nil
}

// subscriptionID returns the ID of the subscription with the given name.
func (d *demo) subscriptionID(name string) string {
	for id, n := range d.names {
		if n == name {
			return id
		}
	}
	return ""
}

// 4. The application emits hooks where things happen.
func (d *demo) emitIncidents() error {
	d.section("4. Emitting incidents: validation, delivery, a retry")
	ctx := d.ctx
	emits := []error{
		outhook.EmitHook(ctx, d.client, incidentCreated, IncidentCreated{
			IncidentID: "inc-1", SystemIDs: []string{"sys-db", "sys-api"}, Title: "Primary database unreachable", Severity: "critical"}),
		outhook.EmitHook(ctx, d.client, incidentUpdated, IncidentUpdated{
			IncidentID: "inc-1", SystemIDs: []string{"sys-db"}, StatusChange: "identified"}),
	}
	if err := errors.Join(emits...); err != nil {
		return err
	}
	// A payload that breaks the validation rules is refused, and nothing is
	// queued.
	err := outhook.EmitHook(ctx, d.client, incidentCreated, IncidentCreated{IncidentID: "inc-2", Severity: "apocalyptic"})
	if !errors.Is(err, outhook.ErrInvalidPayload) {
		return fmt.Errorf("expected a validation error, got %v", err)
	}
	fmt.Fprintf(d.out, "  invalid payload refused:\n    %v\n", err)
	if err := d.waitIdle(); err != nil {
		return err
	}
	// Resolved once the rest is through, so the stand-ins print in order.
	if err := outhook.EmitHook(ctx, d.client, incidentResolved, IncidentResolved{IncidentID: "inc-1", SystemIDs: []string{"sys-db"}}); err != nil {
		return err
	}
	if err := d.waitIdle(); err != nil {
		return err
	}

	// The delivery log: every attempt of every delivery is recorded.
	deliveries, err := d.client.Deliveries(ctx, outhook.DeliveryQuery{})
	if err != nil {
		return err
	}
	fmt.Fprintln(d.out, "\nDelivery log:")
	failures := d.printLog(deliveries)
	// 3 events to the webhook, 2 to Slack (created and resolved touch
	// sys-db), 2 to PagerDuty.
	if failures > 0 || len(deliveries) != 7 {
		return fmt.Errorf("expected 7 succeeded deliveries, got %d deliveries with %d not succeeded", len(deliveries), failures)
	}
	fmt.Fprintf(d.out, "\nAll %d deliveries succeeded.\n", len(deliveries))
	return nil
}

// printLog prints deliveries, oldest first, with their attempts, and
// returns how many did not succeed.
func (d *demo) printLog(deliveries []outhook.Delivery) (failures int) {
	tw := tabwriter.NewWriter(d.out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  EVENT\tSUBSCRIPTION\tDELIVERER\tSTATUS\tATTEMPTS")
	for i := len(deliveries) - 1; i >= 0; i-- {
		dl := deliveries[i]
		var trail []string
		for _, a := range dl.Attempts {
			step := fmt.Sprintf("#%d %s %d", a.Number, a.Outcome, a.StatusCode)
			if a.ErrorClass != "" {
				step += " " + a.ErrorClass
			}
			if a.Trigger == outhook.TriggerManual {
				step += " (manual)"
			}
			trail = append(trail, step)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", dl.EventID, d.names[dl.SubscriptionID], dl.DelivererID, dl.Status, strings.Join(trail, ", "))
		if dl.Status != outhook.DeliverySucceeded {
			failures++
		}
	}
	_ = tw.Flush()
	return failures
}

// 5. A CEL filter: a subscription narrows the events it receives with an
// expression over the payload.
func (d *demo) celFilter() error {
	d.section("5. A CEL payload filter")
	// Filters see the payload as subscribers receive it, after the event's
	// TransformPayload: in incident.created's, severity is upper case.
	const expr = `payload.severity == "CRITICAL" && "sys-db" in payload.systemIds`
	if _, err := d.subscribe(outhook.Subscription{
		Name: "#db-critical", Events: []string{"incident.incident.created"}, DelivererID: slack.ID,
		Config: d.slackConfig("db-critical", "{{.Payload.severity}} {{.Payload.incidentId}}: {{.Payload.title}}"),
		Filter: &outhook.Filter{Expr: expr},
	}); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "Created #db-critical with the filter\n  %s\n", expr)

	// A filter is compiled and type-checked when the subscription is saved,
	// against the JSON Schema of every event it selects, so a misspelt
	// field is refused with its line and column. incident.updated has no
	// transform, so its fields are known. (The payload of an event with a
	// TransformPayload is a map to the checker: a misspelt key there is
	// found at run time, and counted in FilterStats.Errors.)
	const badExpr = "payload.statusChange == \"identified\" &&\n  \"sys-db\" in payload.systemId"
	_, err := d.client.CreateSubscription(d.ctx, outhook.Subscription{
		Name: "#db-updates", Events: []string{"incident.incident.updated"}, DelivererID: slack.ID,
		Config: d.slackConfig("db-updates", ""),
		Filter: &outhook.Filter{Expr: badExpr},
	})
	var fe *outhook.FilterError
	if !errors.As(err, &fe) {
		return fmt.Errorf("expected a FilterError, got %v", err)
	}
	fmt.Fprintf(d.out, "A filter that does not type-check is refused when saved:\n  %s\n  -> line %d, column %d: %s\n  %v\n",
		strings.ReplaceAll(badExpr, "\n", "\n  "), fe.Line, fe.Column, fe.Msg, err)

	// Three incidents; only the critical one on sys-db passes. Each is
	// emitted once the one before is through, so the output reads in order.
	fmt.Fprintln(d.out, "Emitting three incidents:")
	for _, inc := range []IncidentCreated{
		{IncidentID: "inc-2", SystemIDs: []string{"sys-api"}, Title: "API latency above 2 s", Severity: "critical"},
		{IncidentID: "inc-3", SystemIDs: []string{"sys-db"}, Title: "Replica lag", Severity: "minor"},
		{IncidentID: "inc-4", SystemIDs: []string{"sys-db", "sys-web"}, Title: "Database disk full", Severity: "critical"},
	} {
		fmt.Fprintf(d.out, "  emit %s: %s on %s\n", inc.IncidentID, inc.Severity, strings.Join(inc.SystemIDs, ", "))
		if err := outhook.EmitHook(d.ctx, d.client, incidentCreated, inc); err != nil {
			return err
		}
		if err := d.waitIdle(); err != nil {
			return err
		}
	}
	d.sum.DBCritical = d.stand.slackMessages("#db-critical")
	fmt.Fprintf(d.out, "#db-critical received %d of the 3:\n", len(d.sum.DBCritical))
	for _, m := range d.sum.DBCritical {
		fmt.Fprintf(d.out, "  %s\n", m)
	}
	// Events a filter turns away are counted, not recorded as deliveries
	// or failures: one count per (event, subscription) pair.
	d.sum.FilterStats = d.client.FilterStats()
	fmt.Fprintf(d.out, "Client.FilterStats: %+v\n", d.sum.FilterStats)
	fmt.Fprintln(d.out, "  (inc-2 and inc-3 turned away by #db-critical, inc-2 by #incidents' systemIds filter)")
	return nil
}

// 6. Endpoint health: a destination that keeps failing is disabled, and
// outhook says so with its own events.
func (d *demo) endpointHealth() error {
	d.section("6. A failing endpoint is disabled")
	// outhook registers operational events under plugin "outhook":
	// outhook.delivery.failing, outhook.delivery.exhausted,
	// outhook.subscription.disabled and outhook.subscription.recovered.
	// Operators subscribe to them like to any other event, here in a Slack
	// channel. Their payloads (outhook.DeliveryHealthPayload and
	// outhook.SubscriptionHealthPayload) have no title, so the message is
	// a template. Deliveries of these events never emit them in turn.
	const opsTemplate = `{{.Event.DisplayName}}: {{.Payload.subscriptionName}}, ` +
		`{{if eq .EventID "outhook.subscription.disabled"}}{{.Payload.reason}}` +
		`{{else}}{{.Payload.eventId}} failed {{.Payload.attempts}} attempts (HTTP {{.Payload.statusCode}}){{end}}`
	if _, err := d.subscribe(outhook.Subscription{
		Name:        "#ops-alerts",
		Events:      []string{outhook.EventDeliveryExhausted, outhook.EventSubscriptionDisabled},
		DelivererID: slack.ID,
		Config:      d.slackConfig("ops-alerts", opsTemplate),
	}); err != nil {
		return err
	}
	// A partner's endpoint, down for now: it answers 500.
	partner, err := d.subscribe(outhook.Subscription{
		Name: "partner webhook", Events: []string{"incident.incident.updated"}, DelivererID: webhook.ID,
		Config: d.webhookConfig(d.partnerURL),
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(d.out, "Created #ops-alerts (outhook's operational events) and partner webhook (down: answers 500)")
	d.outageStart = time.Now()

	// Each update is tried three times (at once, 50 ms, 250 ms) and fails
	// for good; the second such delivery in a row trips
	// DisableAfterFailures.
	for _, u := range []IncidentUpdated{
		{IncidentID: "inc-2", SystemIDs: []string{"sys-api"}, StatusChange: "investigating"},
		{IncidentID: "inc-4", SystemIDs: []string{"sys-db"}, StatusChange: "identified"},
	} {
		fmt.Fprintf(d.out, "  emit %s update: %s\n", u.IncidentID, u.StatusChange)
		if err := outhook.EmitHook(d.ctx, d.client, incidentUpdated, u); err != nil {
			return err
		}
		// The delivery's retries, and the operational events that follow
		// it, are all work of the client: WaitIdle waits for them.
		if err := d.waitIdle(); err != nil {
			return err
		}
	}
	sub, err := d.client.Subscription(d.ctx, partner.ID)
	if err != nil {
		return err
	}
	if !sub.Disabled {
		return errors.New("the partner's subscription was not disabled")
	}
	d.sum.Disabled = sub
	fmt.Fprintf(d.out, "partner webhook is disabled (Subscription.Disabled=%t), DisabledReason %q, Health.ConsecutiveFailures %d\n",
		sub.Disabled, sub.DisabledReason, sub.Health.ConsecutiveFailures)
	d.sum.OpsAlerts = d.stand.slackMessages("#ops-alerts")
	fmt.Fprintf(d.out, "#ops-alerts received %d operational events\n", len(d.sum.OpsAlerts))
	return nil
}

// 7. Recovery: once the partner's endpoint works again, enable the
// subscription and send what failed meanwhile.
func (d *demo) recovery() error {
	d.section("7. Recovery")
	id := d.subscriptionID("partner webhook")
	d.stand.partnerDown.Store(false)
	fmt.Fprintln(d.out, "The partner fixed its endpoint.")
	// Enabling a subscription starts its health afresh. Events emitted
	// while it was disabled were not routed to it, so there is nothing of
	// theirs to recover (Client.Replay sends an event again, as new
	// deliveries to every subscription that selects it now).
	if _, err := d.client.SetSubscriptionEnabled(d.ctx, id, true); err != nil {
		return err
	}
	// Recover sends the subscription's failed deliveries created in a time
	// range again, each under its own delivery ID (webhook-id), so the
	// receiver can deduplicate. Repeating the call is harmless: a delivery
	// it sent again is pending, not failed, until its new attempts end.
	res, err := d.client.Recover(d.ctx, outhook.RecoverRequest{SubscriptionID: id, Since: d.outageStart})
	if err != nil {
		return err
	}
	d.sum.Recovered = res.Redelivered
	fmt.Fprintf(d.out, "Client.Recover sent %d failed deliveries again:\n", res.Redelivered)
	if err := d.waitIdle(); err != nil {
		return err
	}
	recovered, err := d.client.Deliveries(d.ctx, outhook.DeliveryQuery{SubscriptionID: id})
	if err != nil {
		return err
	}
	fmt.Fprintln(d.out, "\nDelivery log of partner webhook:")
	if failures := d.printLog(recovered); failures > 0 || len(recovered) != res.Redelivered {
		return fmt.Errorf("expected %d recovered deliveries to succeed, got %d deliveries with %d not succeeded", res.Redelivered, len(recovered), failures)
	}

	// The whole log: after the recovery, every delivery has succeeded.
	all, err := d.client.Deliveries(d.ctx, outhook.DeliveryQuery{Limit: 1000})
	if err != nil {
		return err
	}
	for _, dl := range all {
		if dl.Status != outhook.DeliverySucceeded {
			return fmt.Errorf("delivery %s of %s to %s is %s", dl.ID, dl.EventID, d.names[dl.SubscriptionID], dl.Status)
		}
	}
	d.sum.Deliveries = len(all)
	fmt.Fprintf(d.out, "\nAll %d deliveries in the log succeeded, %d of them after the recovery.\n", len(all), res.Redelivered)
	return nil
}

// serveConsole mounts the admin API and the console on opts.Addr, as an
// application would on its own server, and serves them until opts.Serve is
// done. One random token guards both: the console asks for it once, and
// programs such as the outhook CLI send it as a bearer token.
func (d *demo) serveConsole(opts options, deliverers []outhook.Deliverer) error {
	d.section("Admin console")
	token := adminui.NewToken()
	auth, err := adminui.NewTokenAuth(token)
	if err != nil {
		return err
	}
	api, err := adminhttp.New(d.client, &adminhttp.Options{Authorize: auth.Authorize, Deliverers: deliverers})
	if err != nil {
		return err
	}
	console, err := adminui.New(api, &adminui.Options{Title: "incidents demo", Login: auth})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/outhook/api/", http.StripPrefix("/admin/outhook/api", api))
	mux.Handle("/admin/outhook/console/", http.StripPrefix("/admin/outhook/console", console))
	mux.Handle("GET /{$}", http.RedirectHandler("/admin/outhook/console/", http.StatusFound))

	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return fmt.Errorf("console: %w (choose another address with -addr)", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()

	base := "http://" + ln.Addr().String()
	consoleURL, apiURL := base+"/admin/outhook/console/", base+"/admin/outhook/api"
	fmt.Fprintf(d.out, "  console     %s\n", consoleURL)
	fmt.Fprintf(d.out, "  admin API   %s\n", apiURL)
	fmt.Fprintf(d.out, "  token       %s\n", token)
	fmt.Fprintf(d.out, "  CLI         OUTHOOK_ADMIN_URL=%s OUTHOOK_TOKEN=%s go run ./cmd/outhook admin subscriptions list\n", apiURL, token)
	fmt.Fprintf(d.out, "  Sign in with the token. Press Ctrl-C to stop.\n")
	if opts.Ready != nil {
		opts.Ready(consoleURL, apiURL, token)
	}

	select {
	case <-opts.Done:
	case err := <-done:
		return fmt.Errorf("console: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(ctx)
	<-done
	fmt.Fprintln(d.out, "  console stopped")
	return err
}
