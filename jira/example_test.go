package jira_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/jira"
	"github.com/outhook/outhook/safehttp"
)

// A stand-in for a Jira Cloud site receives the search for an issue of the
// delivery, then the creation of the issue; the issue key becomes the
// delivery's external ID.
func ExampleNew() {
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.Method + " " + r.URL.Path {
		case "GET /rest/api/3/search/jql":
			fmt.Println("search:", strings.Split(r.URL.Query().Get("jql"), "outhook-")[0]+`outhook-<delivery ID>"`)
			io.WriteString(w, `{"issues":[],"isLast":true}`)
		case "POST /rest/api/3/issue":
			var body struct {
				Fields struct {
					Summary   string
					IssueType struct{ Name string }
					Labels    []string
				}
			}
			_ = json.NewDecoder(r.Body).Decode(&body)
			fmt.Printf("create: %q, %s, %d labels\n", body.Fields.Summary, body.Fields.IssueType.Name, len(body.Fields.Labels))
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"id":"10001","key":"OPS-1","self":"https://example.atlassian.net/rest/api/3/issue/10001"}`)
		}
	}))
	defer site.Close()

	// Tests and demos allow loopback explicitly, and AllowAnyHost lets the
	// stand-in replace https://<site>.atlassian.net.
	hc, _ := safehttp.New(&safehttp.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	defer hc.Close()
	d, err := jira.New(&jira.Options{HTTP: hc, AllowAnyHost: true})
	if err != nil {
		panic(err)
	}

	reg := outhook.NewEventRegistry()
	created := outhook.MustNewHook[incident]("incident.created")
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[incident]{Hook: created, DisplayName: "Incident Created"},
		outhook.PluginMetadata{PluginID: "incident"})
	c, err := outhook.NewClient(&outhook.Config{Registry: reg, Deliverers: []outhook.Deliverer{d},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		panic(err)
	}
	defer c.Stop(ctx)

	sub, err := c.CreateSubscription(ctx, outhook.Subscription{
		Events:      []string{"incident.incident.created"},
		DelivererID: jira.ID,
		Config: json.RawMessage(`{"baseUrl": "` + site.URL + `", "email": "bot@example.com",
			"apiToken": "secret-token", "projectKey": "OPS", "labels": ["incident"]}`),
	})
	if err != nil {
		panic(err)
	}
	if err := outhook.EmitHook(ctx, c, created, incident{IncidentID: "inc-1", Title: "Database down"}); err != nil {
		panic(err)
	}
	if err := c.WaitIdle(ctx); err != nil {
		panic(err)
	}
	ds, _ := c.Deliveries(ctx, outhook.DeliveryQuery{SubscriptionID: sub.ID})
	fmt.Println(ds[0].Status, ds[0].ExternalID)
	// Output:
	// search: project = "OPS" AND labels = "outhook-<delivery ID>"
	// create: "Incident Created: Database down", Task, 2 labels
	// succeeded OPS-1
}

func ExampleIssueLabel() {
	fmt.Println(jira.IssueLabel("dlv_01KJ0000000000000000000001"))
	// Output:
	// outhook-dlv_01KJ0000000000000000000001
}
