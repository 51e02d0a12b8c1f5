package discord_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/discord"
	"github.com/outhook/outhook/safehttp"
)

type IncidentCreated struct {
	Title    string `json:"title" validate:"required"`
	Summary  string `json:"summary"`
	Severity string `json:"severity"`
}

func ExampleNew() {
	// A loopback stand-in for Discord that prints the message it receives
	// and answers, as Discord does with ?wait=true, with the message.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct {
			Content         string              `json:"content"`
			AllowedMentions map[string][]string `json:"allowed_mentions"`
			Embeds          []struct {
				Title       string `json:"title"`
				Description string `json:"description"`
				Fields      []struct{ Name, Value string }
			} `json:"embeds"`
		}
		_ = json.NewDecoder(r.Body).Decode(&msg)
		fmt.Println("wait:    ", r.URL.Query().Get("wait"))
		fmt.Println("content: ", msg.Content)
		fmt.Println("mentions:", msg.AllowedMentions)
		fmt.Println("title:   ", msg.Embeds[0].Title)
		fmt.Println("desc:    ", msg.Embeds[0].Description)
		for _, f := range msg.Embeds[0].Fields {
			fmt.Printf("field:    %s = %s\n", f.Name, f.Value)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"1100000000000000001","channel_id":"1"}`)
	}))
	defer srv.Close()

	// Tests and demos allow loopback explicitly, and any host for the URL.
	httpClient, err := safehttp.New(&safehttp.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	if err != nil {
		panic(err)
	}
	defer httpClient.Close()
	d, err := discord.New(&discord.Options{HTTP: httpClient, AllowAnyHost: true})
	if err != nil {
		panic(err)
	}

	reg := outhook.NewEventRegistry()
	hook := outhook.MustNewHook[IncidentCreated]("incident.created")
	if _, err := outhook.RegisterEvent(reg, outhook.EventDefinition[IncidentCreated]{
		Hook: hook, DisplayName: "Incident Created", Category: outhook.CategoryIncidents,
	}, outhook.PluginMetadata{PluginID: "incident"}); err != nil {
		panic(err)
	}
	client, err := outhook.NewClient(&outhook.Config{
		Registry: reg, Deliverers: []outhook.Deliverer{d}, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := client.Start(ctx); err != nil {
		panic(err)
	}
	defer func() { _ = client.Stop(ctx) }()

	// In production the URL is https://discord.com/api/webhooks/{id}/{token}.
	_, err = client.CreateSubscription(ctx, outhook.Subscription{
		Name:        "#incidents",
		Events:      []string{"incident.incident.created"},
		DelivererID: discord.ID,
		Config: json.RawMessage(`{
			"webhookUrl": "` + srv.URL + `/api/webhooks/123/TOKEN",
			"contentTemplate": "New incident: **{{.Payload.title}}** @everyone"
		}`),
	})
	if err != nil {
		panic(err)
	}

	err = outhook.EmitHook(ctx, client, hook, IncidentCreated{
		Title: "Database down", Summary: "Primary DB unreachable", Severity: "critical",
	})
	if err != nil {
		panic(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := client.WaitIdle(waitCtx); err != nil {
		panic(err)
	}
	deliveries, err := client.Deliveries(ctx, outhook.DeliveryQuery{})
	if err != nil {
		panic(err)
	}
	fmt.Println("status:  ", deliveries[0].Status, deliveries[0].ExternalID)
	// Output:
	// wait:     true
	// content:  New incident: **Database down** @everyone
	// mentions: map[parse:[]]
	// title:    Incident Created
	// desc:     Primary DB unreachable
	// field:    title = Database down
	// field:    severity = critical
	// status:   succeeded 1100000000000000001
}
