// Command incidents is outhook's main demo. An "incident" plugin defines
// three hooks, registers them as integration events and emits incidents; two
// subscriptions send them to a webhook receiver this program starts on
// 127.0.0.1. The receiver fails its first request, so the demo shows a retry;
// a payload that breaks the hook's validation rules shows the error EmitHook
// returns. It ends by printing the delivery log.
//
//	go run ./examples/incidents
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/outhook/outhook"
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
				"id":               p.IncidentID,
				"type":             "INCIDENT_CREATED",
				"severity":         strings.ToUpper(p.Severity),
				"affected_systems": len(p.SystemIDs),
				"system_ids":       p.SystemIDs,
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

// ---- a minimal webhook deliverer (the real, signed one is package webhook) ----

type postConfig struct {
	URL string `json:"url" validate:"required,http_url" description:"Where to POST events"`
}

type postDeliverer struct {
	codec  *outhook.ConfigCodec[postConfig]
	client *http.Client
}

func (d *postDeliverer) ID() string                    { return "http-post" }
func (d *postDeliverer) ConfigSchema() json.RawMessage { return d.codec.Schema() }
func (d *postDeliverer) ValidateConfig(raw json.RawMessage) error {
	_, err := d.codec.Decode(raw)
	return err
}

func (d *postDeliverer) Deliver(ctx context.Context, req *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	cfg, err := d.codec.Decode(req.Subscription.Config)
	if err != nil {
		return outhook.DeliveryResult{}, outhook.Permanent(err)
	}
	body, err := json.Marshal(map[string]any{"type": req.EventID, "timestamp": req.OccurredAt, "data": req.Payload})
	if err != nil {
		return outhook.DeliveryResult{}, outhook.Permanent(err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.URL, bytes.NewReader(body))
	if err != nil {
		return outhook.DeliveryResult{}, outhook.Permanent(err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("webhook-id", req.DeliveryID)
	resp, err := d.client.Do(hreq)
	if err != nil {
		return outhook.DeliveryResult{}, err // network errors are retried
	}
	defer resp.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	res := outhook.DeliveryResult{StatusCode: resp.StatusCode, Response: string(excerpt)}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return res, nil
	case resp.StatusCode == 429 || resp.StatusCode >= 500:
		return res, fmt.Errorf("receiver answered %s", resp.Status)
	default:
		return res, outhook.Permanent(fmt.Errorf("receiver answered %s", resp.Status))
	}
}

// ---- the receiver: fails its first request, then accepts ----

type receiver struct {
	out      io.Writer
	requests atomic.Int32
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	n := r.requests.Add(1)
	var msg struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	_ = json.NewDecoder(req.Body).Decode(&msg)
	if n == 1 {
		fmt.Fprintf(r.out, "  receiver: #%d %-28s -> 503 (failing once on purpose)\n", n, msg.Type)
		http.Error(w, "warming up", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintf(r.out, "  receiver: #%d %-28s -> 204  data=%s\n", n, msg.Type, msg.Data)
	w.WriteHeader(http.StatusNoContent)
}

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// lockedWriter lets the receiver's goroutines and the main one print to one
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

	// A receiver on loopback.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: &receiver{out: out}, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/hooks"

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

	codec, err := outhook.NewConfigCodec[postConfig]("http-post")
	if err != nil {
		return err
	}
	httpClient := &http.Client{Timeout: 5 * time.Second, CheckRedirect: noRedirects}
	defer httpClient.CloseIdleConnections()
	client, err := outhook.NewClient(&outhook.Config{
		Registry:   reg,
		Deliverers: []outhook.Deliverer{&postDeliverer{codec: codec, client: httpClient}},
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

	// Two subscriptions: everything from the incident plugin, and only the
	// incidents that touch the database.
	all, err := client.CreateSubscription(ctx, outhook.Subscription{
		Name: "ops webhook", Events: []string{"incident.**"}, DelivererID: "http-post",
		Config: json.RawMessage(`{"url":"` + url + `"}`),
	})
	if err != nil {
		return err
	}
	_, err = client.CreateSubscription(ctx, outhook.Subscription{
		Name: "db team", Events: []string{"incident.incident.created"}, DelivererID: "http-post",
		Config: json.RawMessage(`{"url":"` + url + `"}`),
		Filter: &outhook.Filter{Field: "system_ids", AnyOf: []string{"sys-db"}},
	})
	if err != nil {
		return err
	}
	// A subscription with a bad configuration is refused, naming the field.
	_, err = client.CreateSubscription(ctx, outhook.Subscription{
		Events: []string{"incident.incident.created"}, DelivererID: "http-post", Config: json.RawMessage(`{"url":"ftp:/x"}`),
	})
	fmt.Fprintf(out, "\nA subscription with a bad URL is refused:\n  %v\n", err)

	// The application emits hooks where things happen.
	fmt.Fprintln(out, "\nEmitting incidents:")
	emits := []error{
		outhook.EmitHook(ctx, client, incidentCreated, IncidentCreated{
			IncidentID: "inc-1", SystemIDs: []string{"sys-db", "sys-api"}, Title: "Primary database unreachable", Severity: "critical"}),
		outhook.EmitHook(ctx, client, incidentUpdated, IncidentUpdated{
			IncidentID: "inc-1", SystemIDs: []string{"sys-db"}, StatusChange: "identified"}),
		outhook.EmitHook(ctx, client, incidentResolved, IncidentResolved{IncidentID: "inc-1", SystemIDs: []string{"sys-db"}}),
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

	// The delivery log.
	deliveries, err := client.Deliveries(ctx, outhook.DeliveryQuery{})
	if err != nil {
		return err
	}
	subs := map[string]string{}
	list, _ := client.Subscriptions(ctx)
	for _, s := range list {
		subs[s.ID] = s.Name
	}
	fmt.Fprintln(out, "\nDelivery log:")
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  DELIVERY\tEVENT\tSUBSCRIPTION\tSTATUS\tATTEMPTS")
	failures := 0
	for i := len(deliveries) - 1; i >= 0; i-- {
		d := deliveries[i]
		var trail []string
		for _, a := range d.Attempts {
			trail = append(trail, fmt.Sprintf("#%d %s %d (%s)", a.Number, a.Outcome, a.StatusCode, a.Duration.Round(100*time.Microsecond)))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", d.ID, d.EventID, subs[d.SubscriptionID], d.Status, strings.Join(trail, ", "))
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
	if failures > 0 || len(deliveries) != 4 {
		return fmt.Errorf("expected 4 succeeded deliveries, got %d deliveries with %d not succeeded", len(deliveries), failures)
	}
	fmt.Fprintf(out, "\nAll %d deliveries succeeded (subscription %q got every incident event).\n", len(deliveries), all.Name)
	return nil
}

// noRedirects makes a 3xx answer a failure instead of a request elsewhere.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
