package webhook_test

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
	"github.com/outhook/outhook/safehttp"
	"github.com/outhook/outhook/webhook"
)

type incidentCreated struct {
	Title    string `json:"title" validate:"required"`
	Severity string `json:"severity" validate:"oneof=critical major minor"`
}

// ExampleNew delivers an event to a receiver that verifies its signature.
func ExampleNew() {
	ctx := context.Background()
	// In production, make the secret with NewSecret and share it with the
	// receiver; a fixed one keeps the example short.
	secret := "whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="

	// The receiver: verify, then read the envelope.
	verifier, err := webhook.NewVerifier(secret)
	if err != nil {
		panic(err)
	}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := verifier.Verify(body, r.Header); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var env struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		_ = json.Unmarshal(body, &env)
		fmt.Printf("verified %s: %s\n", env.Type, env.Data)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()

	// The sender: the deliverer, with an HTTP client that may reach the
	// loopback receiver (the default client refuses private addresses).
	httpClient, err := safehttp.New(&safehttp.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	if err != nil {
		panic(err)
	}
	defer httpClient.Close()
	dl, err := webhook.New(&webhook.Options{HTTP: httpClient})
	if err != nil {
		panic(err)
	}

	reg := outhook.NewEventRegistry()
	created := outhook.MustNewHook[incidentCreated]("incident.created")
	if _, err := outhook.RegisterEvent(reg, outhook.EventDefinition[incidentCreated]{
		Hook: created, DisplayName: "Incident Created", Category: outhook.CategoryIncidents,
	}, outhook.PluginMetadata{PluginID: "incident"}); err != nil {
		panic(err)
	}
	client, err := outhook.NewClient(&outhook.Config{
		Registry:   reg,
		Deliverers: []outhook.Deliverer{dl},
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	if err := client.Start(ctx); err != nil {
		panic(err)
	}
	defer client.Stop(ctx)

	_, err = client.CreateSubscription(ctx, outhook.Subscription{
		Name:        "ops receiver",
		Events:      []string{"incident.incident.created"},
		DelivererID: webhook.ID,
		Config:      json.RawMessage(`{"url": "` + receiver.URL + `/hooks", "secrets": [{"secret": "` + secret + `"}]}`),
	})
	if err != nil {
		panic(err)
	}
	if err := outhook.EmitHook(ctx, client, created, incidentCreated{Title: "Database down", Severity: "critical"}); err != nil {
		panic(err)
	}
	if err := client.WaitIdle(ctx); err != nil {
		panic(err)
	}
	// Output:
	// verified incident.incident.created: {"title":"Database down","severity":"critical"}
}

// ExampleDeliverer_ConfigSchema lists what a subscription's config holds.
func ExampleDeliverer_ConfigSchema() {
	dl, err := webhook.New(nil)
	if err != nil {
		panic(err)
	}
	var schema struct {
		Properties map[string]json.RawMessage `json:"properties"`
		Required   []string                   `json:"required"`
	}
	if err := json.Unmarshal(dl.ConfigSchema(), &schema); err != nil {
		panic(err)
	}
	fmt.Println("required:", schema.Required)
	for _, p := range []string{"url", "secrets", "signingKeys", "method", "body", "headers", "auth", "retryStatuses"} {
		_, ok := schema.Properties[p]
		fmt.Println(p, ok)
	}
	err = dl.ValidateConfig(json.RawMessage(`{"url": "https://example.com/hooks", "secrets": [{"secret": "whsec_dG9vc2hvcnQ="}]}`))
	fmt.Println(err)
	// Output:
	// required: [url]
	// url true
	// secrets true
	// signingKeys true
	// method true
	// body true
	// headers true
	// auth true
	// retryStatuses true
	// outhook: invalid config for deliverer "webhook": secrets[0].secret is not a valid secret: secret decodes to 8 bytes, want 24 to 64
}

// ExampleSign signs a message with a secret and an ed25519 key, as the
// deliverer does for a subscription with both.
func ExampleSign() {
	secret := "whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
	// The seed of RFC 8032's first test vector, as a whsk_ key.
	signingKey := "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A="
	body := []byte(`{"type":"contact.created","timestamp":"2022-11-03T20:26:10.344522Z","data":{"id":"1f81eb52-5198-4599-803e-771906343485"}}`)

	sig, err := webhook.Sign("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", time.Unix(1674087231, 0), body, secret, signingKey)
	if err != nil {
		panic(err)
	}
	fmt.Println(sig)
	publicKey, err := webhook.PublicKey(signingKey)
	if err != nil {
		panic(err)
	}
	fmt.Println(publicKey)
	// Output:
	// v1,Kl4yF5FMmntv280wzeRiyYlxIj3W58L2MFyrNkLQXi4= v1a,pbpYBMlty2hExn4zt0UTGb6BaP2Vq5AfyzjB9GGV3x/wCJKd8UjOCf8Qhaji6TKY9C5eNMnlF0GG4udaO6B7Ag==
	// whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=
}

// ExampleVerifier checks received messages; errors say what failed.
func ExampleVerifier() {
	v, err := webhook.NewVerifier(
		"whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=", // a secret
		"whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",  // and a public key, for v1a
	)
	if err != nil {
		panic(err)
	}
	v.Now = func() time.Time { return time.Unix(1674087231+60, 0) } // a minute after sending

	body := []byte(`{"type":"contact.created","timestamp":"2022-11-03T20:26:10.344522Z","data":{"id":"1f81eb52-5198-4599-803e-771906343485"}}`)
	h := http.Header{}
	h.Set("webhook-id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W")
	h.Set("webhook-timestamp", "1674087231")
	h.Set("webhook-signature", "v1a,pbpYBMlty2hExn4zt0UTGb6BaP2Vq5AfyzjB9GGV3x/wCJKd8UjOCf8Qhaji6TKY9C5eNMnlF0GG4udaO6B7Ag==")
	fmt.Println(v.Verify(body, h))

	fmt.Println(v.Verify([]byte(`{"type":"contact.deleted"}`), h))

	v.Now = func() time.Time { return time.Unix(1674087231+3600, 0) } // an hour later: a replay
	fmt.Println(v.Verify(body, h))

	h.Del("webhook-timestamp")
	fmt.Println(v.Verify(body, h))
	// Output:
	// <nil>
	// webhook: no matching signature: 1 signature (0 v1, 1 v1a, 0 other) checked against 1 secret and 1 public key
	// webhook: timestamp too old: webhook-timestamp 1674087231 is 1h0m0s before now (tolerance 5m0s)
	// webhook: missing headers: webhook-timestamp
}
