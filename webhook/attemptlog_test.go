package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
	"github.com/outhook/outhook/webhook"
	"github.com/stretchr/testify/require"
)

// TestAttemptLogKeepsNoSecret delivers through a client to a receiver that
// echoes every credential it gets, in its body and its headers, and fails
// twice before it succeeds; and to an endpoint that refuses connections.
// The attempts record the request and response headers, and no stored
// field holds a secret: the signing secret, the signatures, the bearer
// token, the extra headers' values, the URL's token.
func TestAttemptLogKeepsNoSecret(t *testing.T) {
	const (
		bearer    = "bearer-T0KEN-do-not-log-1"
		apiKey    = "apikey-do-not-log-2"
		custom    = "custom-do-not-log-3" // a header whose name says nothing
		urlToken  = "urltoken-do-not-log-4"
		tenant    = "acme" // too short to count as a secret: kept
		echoLimit = 3
	)
	var (
		mu         sync.Mutex
		signatures []string
		calls      int
	)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls++
		n := calls
		signatures = append(signatures, strings.Fields(r.Header.Get("Webhook-Signature"))...)
		mu.Unlock()
		for name, vs := range r.Header {
			for _, v := range vs {
				w.Header().Add("X-Echo-"+name, v)
			}
		}
		w.Header().Set("Location", "http://"+r.Host+r.URL.String())
		w.Header().Set("Set-Cookie", "session="+bearer+"; HttpOnly")
		w.Header().Set("X-Request-Id", "req-1")
		code := http.StatusOK
		if n < echoLimit {
			code = http.StatusServiceUnavailable
		}
		w.WriteHeader(code)
		_, _ = fmt.Fprintf(w, "url=%s\nheaders=%v\nbody=%s\n", r.URL.String(), r.Header, body)
	}))
	t.Cleanup(echo.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close() // connections to it are refused

	dl := newDeliverer(t, nil)
	reg := outhook.NewEventRegistry()
	type incident struct {
		Title string `json:"title"`
	}
	created := outhook.MustNewHook[incident]("incident.created")
	_, err := outhook.RegisterEvent(reg, outhook.EventDefinition[incident]{Hook: created, DisplayName: "Incident Created",
		Category: outhook.CategoryIncidents}, outhook.PluginMetadata{PluginID: "incident"})
	require.NoError(t, err)
	c, err := outhook.NewClient(&outhook.Config{
		Registry:      reg,
		Deliverers:    []outhook.Deliverer{dl},
		DeliveryRetry: outhooktest.NoDelay(echoLimit),
		Logger:        slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, c.Start(ctx))
	t.Cleanup(func() { require.NoError(t, c.Stop(context.Background())) })

	for _, u := range []string{echo.URL, closedURL} {
		_, err := c.CreateSubscription(ctx, outhook.Subscription{
			Events:      []string{"incident.incident.created"},
			DelivererID: webhook.ID,
			Config: config(t, map[string]any{
				"url":     u + "/in?token=" + urlToken + "&v=1",
				"secrets": []map[string]any{{"secret": secretA}},
				"auth":    map[string]any{"type": "bearer", "token": bearer},
				"headers": map[string]string{"X-Api-Key": apiKey, "X-Custom": custom, "X-Tenant": tenant},
			}),
		})
		require.NoError(t, err)
	}
	require.NoError(t, outhook.EmitHook(ctx, c, created, incident{Title: "Database down"}))
	outhooktest.WaitIdle(t, c)

	ds, err := c.Deliveries(ctx, outhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, ds, 2)
	mu.Lock()
	secrets := append([]string{secretA, strings.TrimPrefix(secretA, webhook.SecretPrefix), bearer, apiKey, custom, urlToken}, signatures...)
	mu.Unlock()
	require.Len(t, secrets, 6+echoLimit, "one signature per request")

	attempts := 0
	for _, d := range ds {
		for i, a := range d.Attempts {
			attempts++
			what := fmt.Sprintf("delivery to %s, attempt %d", d.SubscriptionID, i+1)
			fields := map[string]string{"Error": a.Error, "Response": a.Response, "ExternalID": a.ExternalID}
			for name, vs := range a.RequestHeaders {
				fields["RequestHeaders["+name+"]"] = name + ": " + strings.Join(vs, ", ")
			}
			for name, vs := range a.ResponseHeaders {
				fields["ResponseHeaders["+name+"]"] = name + ": " + strings.Join(vs, ", ")
			}
			all, err := json.Marshal(a)
			require.NoError(t, err)
			fields["the whole attempt"] = string(all)
			for field, v := range fields {
				for _, s := range secrets {
					require.NotContains(t, v, s, "%s: %s holds a secret", what, field)
				}
			}

			// What is recorded is there, redacted.
			req := a.RequestHeaders
			require.NotNil(t, req, what)
			require.Equal(t, []string{d.ID}, req["Webhook-Id"], what)
			require.Equal(t, []string{outhook.Redacted}, req["Authorization"], what)
			require.Equal(t, []string{outhook.Redacted}, req["Webhook-Signature"], what)
			require.Equal(t, []string{outhook.Redacted}, req["X-Api-Key"], what)
			require.Equal(t, []string{outhook.Redacted}, req["X-Custom"], what)
			require.Equal(t, []string{tenant}, req["X-Tenant"], what)
			require.Equal(t, []string{"application/json"}, req["Content-Type"], what)
		}
		require.NotContains(t, d.LastError, urlToken)
	}
	require.Equal(t, echoLimit+3, attempts, "three attempts to each endpoint")

	for _, d := range ds {
		a := d.Attempts[len(d.Attempts)-1]
		if a.Outcome != outhook.AttemptSucceeded {
			require.Nil(t, a.ResponseHeaders, "no answer from a closed port")
			require.Equal(t, outhook.ErrorClassConnect, a.ErrorClass)
			continue
		}
		res := a.ResponseHeaders
		require.Equal(t, 200, a.StatusCode)
		require.Equal(t, []string{"req-1"}, res["X-Request-Id"])
		require.NotContains(t, res, "Set-Cookie", "Set-Cookie is dropped")
		require.Equal(t, []string{outhook.Redacted}, res["X-Echo-Authorization"])
		require.Equal(t, []string{outhook.Redacted}, res["X-Echo-X-Custom"])
		require.Contains(t, res["Location"][0], "token=[redacted]")
		require.Contains(t, a.Response, "body={")
	}
}
