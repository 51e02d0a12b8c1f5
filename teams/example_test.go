package teams_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/safehttp"
	"github.com/outhook/outhook/teams"
)

type Incident struct {
	ID        string   `json:"id"`
	Title     string   `json:"title"`
	Severity  string   `json:"severity"`
	SystemIDs []string `json:"systemIds"`
}

var incidentCreated = outhook.MustNewHook[Incident]("incident.created")

// An incident posted to a Teams channel as an Adaptive Card. A local https
// server stands in for the workflow's webhook; it prints the card.
func ExampleNew() {
	workflow := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var msg struct {
			Attachments []struct {
				ContentType string `json:"contentType"`
				Content     struct {
					Version string `json:"version"`
					Body    []struct {
						Type  string `json:"type"`
						Text  string `json:"text"`
						Facts []struct{ Title, Value string }
					} `json:"body"`
				} `json:"content"`
			} `json:"attachments"`
		}
		_ = json.Unmarshal(body, &msg)
		a := msg.Attachments[0]
		fmt.Println(a.ContentType, a.Content.Version)
		for _, b := range a.Content.Body {
			if b.Text != "" {
				fmt.Println(b.Type, b.Text)
			} else {
				fmt.Println(b.Type)
			}
			for _, f := range b.Facts {
				if f.Title != "Time" { // the time varies from run to run
					fmt.Printf("  %s: %s\n", f.Title, f.Value)
				}
			}
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer workflow.Close()

	// Tests and demos allow loopback and trust the test server's
	// certificate; AllowAnyHost lets the webhook URL point at it.
	roots := x509.NewCertPool()
	roots.AddCert(workflow.Certificate())
	hc, _ := safehttp.New(&safehttp.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, RootCAs: roots})
	defer hc.Close()
	d, err := teams.New(&teams.Options{HTTP: hc, AllowAnyHost: true})
	if err != nil {
		panic(err)
	}

	reg := outhook.NewEventRegistry()
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[Incident]{Hook: incidentCreated, DisplayName: "Incident created"},
		outhook.PluginMetadata{PluginID: "incident"})
	client, err := outhook.NewClient(&outhook.Config{Registry: reg, Deliverers: []outhook.Deliverer{d}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	_ = client.Start(ctx)
	defer client.Stop(ctx)

	cfg, _ := json.Marshal(map[string]string{
		"webhookUrl":    workflow.URL + "/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sig=secret",
		"titleTemplate": "{{.Event.DisplayName}}: {{.Payload.title}}",
		"textTemplate":  "Severity {{.Payload.severity}}. Open the incident to respond.",
	})
	if _, err := client.CreateSubscription(ctx, outhook.Subscription{Events: []string{"incident.**"}, DelivererID: teams.ID, Config: cfg}); err != nil {
		panic(err)
	}

	_ = outhook.EmitHook(ctx, client, incidentCreated, Incident{ID: "inc_42", Title: "Database down", Severity: "major", SystemIDs: []string{"db-1", "db-2"}})
	_ = client.WaitIdle(ctx)
	// Output:
	// application/vnd.microsoft.card.adaptive 1.4
	// TextBlock Incident created: Database down
	// TextBlock Severity major. Open the incident to respond.
	// FactSet
	//   id: inc_42
	//   title: Database down
	//   severity: major
	//   systemIds: db-1, db-2
	//   Event: incident.incident.created
}
