package slack_test

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
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/safehttp"
	"github.com/outhook/outhook/slack"
)

type IncidentCreated struct {
	Title     string   `json:"title" validate:"required"`
	Severity  string   `json:"severity"`
	SystemIDs []string `json:"systemIds"`
}

func ExampleNew() {
	// A loopback stand-in for Slack that prints the message it receives.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct {
			Text   string `json:"text"`
			Blocks []struct {
				Type   string `json:"type"`
				Text   struct{ Text string }
				Fields []struct{ Text string }
			} `json:"blocks"`
		}
		_ = json.NewDecoder(r.Body).Decode(&msg)
		fmt.Println("text:  ", msg.Text)
		fmt.Println("header:", msg.Blocks[0].Text.Text)
		for _, f := range msg.Blocks[1].Fields {
			fmt.Println("field: ", strings.ReplaceAll(f.Text, "\n", " "))
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()

	// Tests and demos allow loopback explicitly, and any host for the URL.
	httpClient, err := safehttp.New(&safehttp.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	if err != nil {
		panic(err)
	}
	defer httpClient.Close()
	d, err := slack.New(&slack.Options{HTTP: httpClient, AllowAnyHost: true})
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

	// In production the URL is https://hooks.slack.com/services/T.../B.../...
	_, err = client.CreateSubscription(ctx, outhook.Subscription{
		Name:        "#ops",
		Events:      []string{"incident.incident.created"},
		DelivererID: slack.ID,
		Config:      json.RawMessage(`{"webhookUrl":"` + srv.URL + `/services/T000/B000/XXXX"}`),
	})
	if err != nil {
		panic(err)
	}

	err = outhook.EmitHook(ctx, client, hook, IncidentCreated{
		Title: "Database down", Severity: "critical", SystemIDs: []string{"api", "db"},
	})
	if err != nil {
		panic(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := client.WaitIdle(waitCtx); err != nil {
		panic(err)
	}
	// Output:
	// text:   Incident Created: Database down
	// header: Incident Created
	// field:  *title* Database down
	// field:  *severity* critical
	// field:  *systemIds* api, db
}
