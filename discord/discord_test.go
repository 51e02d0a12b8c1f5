package discord_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/discord"
	"github.com/outhook/outhook/outhooktest"
	"github.com/outhook/outhook/safehttp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const (
	webhookID = "123456789012345678"
	token     = "SECRETtoken_abc-0123456789"
	hookPath  = "/api/webhooks/" + webhookID + "/" + token
)

// fixedNow is the clock of the deliverers under test.
var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// received is a request the test server got.
type received struct {
	Method string
	URL    *url.URL
	Header http.Header
	Body   []byte
}

// server is a loopback stand-in for Discord that records each request and
// answers with respond.
type server struct {
	*httptest.Server
	reqs chan received
}

func newServer(t *testing.T, respond func(w http.ResponseWriter, r *http.Request)) *server {
	t.Helper()
	s := &server{reqs: make(chan received, 16)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.reqs <- received{Method: r.Method, URL: r.URL, Header: r.Header.Clone(), Body: body}
		respond(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// answer responds with a status, a body and headers.
func answer(status int, body string, header ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		if strings.HasPrefix(body, "{") {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// created is Discord's answer to ?wait=true: the message.
const created = `{"id":"1100000000000000001","type":0,"content":"","channel_id":"1","webhook_id":"` + webhookID + `"}`

func (s *server) webhookURL() string { return s.URL + hookPath }

// next returns the request the server received.
func (s *server) next(t *testing.T) received {
	t.Helper()
	select {
	case r := <-s.reqs:
		return r
	default:
		t.Fatal("the server received no request")
		return received{}
	}
}

func loopbackHTTP(t *testing.T, timeout time.Duration) *safehttp.Client {
	t.Helper()
	c, err := safehttp.New(&safehttp.Config{
		Allow:   []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Timeout: timeout,
	})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func newDeliverer(t *testing.T) *discord.Deliverer {
	t.Helper()
	d, err := discord.New(&discord.Options{
		HTTP:         loopbackHTTP(t, 5*time.Second),
		Now:          func() time.Time { return fixedNow },
		AllowAnyHost: true,
	})
	require.NoError(t, err)
	return d
}

// config returns a subscription config JSON with the given fields.
func config(t testing.TB, fields map[string]any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(fields)
	require.NoError(t, err)
	return b
}

func request(cfg json.RawMessage, payload string) *outhook.DeliveryRequest {
	return &outhook.DeliveryRequest{
		DeliveryID: "del_1",
		MessageID:  "msg_1",
		EventID:    "incident.incident.created",
		Event: outhook.Event{
			ID:          "incident.incident.created",
			HookID:      "incident.created",
			DisplayName: "Incident Created",
			Category:    "Incidents",
		},
		Subscription: outhook.Subscription{ID: "sub_1", DelivererID: discord.ID, Config: cfg},
		Payload:      json.RawMessage(payload),
		OccurredAt:   fixedNow.Add(-time.Minute),
		Attempt:      1,
	}
}

func TestDeliverWireFormat(t *testing.T) {
	srv := newServer(t, answer(http.StatusOK, created))
	d := newDeliverer(t)
	cfg := config(t, map[string]any{
		"webhookUrl": srv.webhookURL(),
		"username":   "Status",
		"avatarUrl":  "https://example.com/avatar.png",
	})
	req := request(cfg, `{
		"title": "Database down", "summary": "Primary DB unreachable", "severity": "critical",
		"systemIds": ["api", "db"], "owner": {"email": "oncall@example.com"}, "count": 3,
		"notes": "@everyone look <@123>", "nothing": null
	}`)
	res, err := d.Deliver(context.Background(), req)
	require.NoError(t, err)
	require.NotEmpty(t, res.RequestHeaders["Content-Type"], "the request headers are reported")
	require.NotNil(t, res.ResponseHeaders, "the response headers are reported")
	res.RequestHeaders, res.ResponseHeaders = nil, nil
	require.Equal(t, outhook.DeliveryResult{StatusCode: 200, Response: created, ExternalID: "1100000000000000001"}, res)

	got := srv.next(t)
	require.Equal(t, http.MethodPost, got.Method)
	require.Equal(t, hookPath, got.URL.Path)
	require.Equal(t, url.Values{"wait": {"true"}}, got.URL.Query())
	require.Equal(t, "application/json", got.Header.Get("Content-Type"))
	require.Equal(t, "outhook/"+safehttp.Version, got.Header.Get("User-Agent"))
	require.JSONEq(t, `{
		"username": "Status",
		"avatar_url": "https://example.com/avatar.png",
		"allowed_mentions": {"parse": []},
		"embeds": [{
			"title": "Incident Created",
			"description": "Primary DB unreachable",
			"color": 14232864,
			"fields": [
				{"name": "title", "value": "Database down", "inline": true},
				{"name": "severity", "value": "critical", "inline": true},
				{"name": "count", "value": "3", "inline": true},
				{"name": "notes", "value": "@everyone look <@123>", "inline": true},
				{"name": "systemIds", "value": "api, db", "inline": true}
			],
			"footer": {"text": "incident.incident.created"},
			"timestamp": "2026-03-01T11:59:00Z"
		}]
	}`, string(got.Body))
}

func TestDeliverContentAndMentions(t *testing.T) {
	srv := newServer(t, answer(http.StatusOK, created))
	d := newDeliverer(t)
	cfg := config(t, map[string]any{
		"webhookUrl":      srv.webhookURL() + "?thread_id=42",
		"contentTemplate": `**{{.Event.DisplayName}}**: {{.Payload.title}} {{.Payload.owner.mention}}{{.Payload.missing.deep}}`,
		"mentions":        []string{"users"},
	})
	require.NoError(t, d.ValidateConfig(cfg))
	_, err := d.Deliver(context.Background(), request(cfg, `{"title":"DB down","owner":{"mention":"<@42>"}}`))
	require.NoError(t, err)

	got := srv.next(t)
	require.Equal(t, url.Values{"wait": {"true"}, "thread_id": {"42"}}, got.URL.Query())
	var msg struct {
		Content         string              `json:"content"`
		AllowedMentions map[string][]string `json:"allowed_mentions"`
		Embeds          []map[string]any    `json:"embeds"`
	}
	require.NoError(t, json.Unmarshal(got.Body, &msg))
	require.Equal(t, "**Incident Created**: DB down <@42>", msg.Content)
	require.Equal(t, map[string][]string{"parse": {"users"}}, msg.AllowedMentions)
	require.Len(t, msg.Embeds, 1)
	require.Equal(t, "DB down", msg.Embeds[0]["description"])
}

// outcome names what an error asks of the core.
func outcome(err error) string {
	if err == nil {
		return "success"
	}
	if _, ok := errors.AsType[*outhook.GoneError](err); ok {
		return "gone"
	}
	if _, ok := errors.AsType[*outhook.PermanentError](err); ok {
		return "permanent"
	}
	if ra, ok := errors.AsType[*outhook.RetryAfterError](err); ok {
		return "retry after " + ra.After.String()
	}
	return "retry"
}

func TestDeliverOutcomes(t *testing.T) {
	const (
		formBody     = `{"code": 50035, "errors": {"embeds": {"0": {"fields": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 1024 or fewer in length."}]}}}}, "message": "Invalid Form Body"}`
		badToken     = `{"message": "Invalid Webhook Token", "code": 50027}`
		noPermission = `{"message": "Missing Permissions", "code": 50013}`
		unknownHook  = `{"message": "Unknown Webhook", "code": 10015}`
		unknownChan  = `{"message": "Unknown Channel", "code": 10003}`
	)
	rateLimited := func(retryAfter string) string {
		return `{"message": "You are being rate limited.", "retry_after": ` + retryAfter + `, "global": false}`
	}
	for _, tc := range []struct {
		name     string
		status   int
		body     string
		header   []string
		want     string
		detail   string // in the error
		external string
	}{
		{"created", 200, created, nil, "success", "", "1100000000000000001"},
		{"no content", 204, "", nil, "success", "", ""},
		{"invalid form body", 400, formBody, nil, "permanent", "Invalid Form Body (code 50035)", ""},
		{"invalid token", 401, badToken, nil, "permanent", "Invalid Webhook Token (code 50027)", ""},
		{"missing permissions", 403, noPermission, nil, "permanent", "Missing Permissions (code 50013)", ""},
		{"unknown webhook", 404, unknownHook, nil, "gone", "Unknown Webhook (code 10015)", ""},
		{"other 404", 404, unknownChan, nil, "permanent", "Unknown Channel (code 10003)", ""},
		{"404 not JSON", 404, "<html>not found</html>", nil, "permanent", "", ""},
		{"gone", 410, "", nil, "gone", "", ""},
		{"429 body longer", 429, rateLimited("5.5"), []string{"Retry-After", "2"}, "retry after 5.5s", "You are being rate limited.", ""},
		{"429 header longer", 429, rateLimited("0.5"), []string{"Retry-After", "10"}, "retry after 10s", "", ""},
		{"429 body only", 429, rateLimited("1.2341"), nil, "retry after 1.235s", "", ""},
		{"429 HTTP date", 429, "", []string{"Retry-After", fixedNow.Add(90 * time.Second).Format(http.TimeFormat)}, "retry after 1m30s", "", ""},
		{"429 decimal header", 429, "", []string{"Retry-After", "1.5"}, "retry after 1.5s", "", ""},
		{"429 negative body", 429, rateLimited("-3"), nil, "retry", "", ""},
		{"429 nothing", 429, "", nil, "retry", "", ""},
		{"server error", 500, `{"message": "500: Internal Server Error", "code": 0}`, nil, "retry", "500: Internal Server Error", ""},
		{"bad gateway with Retry-After", 502, "", []string{"Retry-After", "7"}, "retry after 7s", "", ""},
		{"not implemented", 501, "", nil, "permanent", "", ""},
		{"redirect not followed", 301, "", []string{"Location", "https://example.com/"}, "permanent", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, answer(tc.status, tc.body, tc.header...))
			res, err := newDeliverer(t).Deliver(context.Background(), request(config(t, map[string]any{"webhookUrl": srv.webhookURL()}), `{"title":"x"}`))
			require.Equal(t, tc.want, outcome(err), "error: %v", err)
			require.Equal(t, tc.status, res.StatusCode)
			require.Equal(t, tc.body, res.Response)
			require.Equal(t, tc.external, res.ExternalID)
			if err != nil {
				require.Contains(t, err.Error(), fmt.Sprint(tc.status))
				require.Contains(t, err.Error(), tc.detail)
				se, ok := errors.AsType[*safehttp.Error](err)
				require.True(t, ok)
				require.Equal(t, safehttp.ClassHTTPStatus, se.Class)
			}
		})
	}
}

// TestSecretsNeverShown checks that no error or result shows the webhook
// token, whatever goes wrong.
func TestSecretsNeverShown(t *testing.T) {
	check := func(t *testing.T, res outhook.DeliveryResult, err error) {
		t.Helper()
		require.Error(t, err)
		for _, s := range []string{err.Error(), res.Response, fmt.Sprintf("%+v", err)} {
			require.NotContains(t, s, token)
			require.NotContains(t, s, "SECRETtoken")
		}
	}
	quoting := func(status int) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			_, _ = fmt.Fprintf(w, `{"message": "bad request to %s", "code": 0, "url": %q}`, r.URL.Path, r.URL.String())
		}
	}

	t.Run("status errors", func(t *testing.T) {
		for _, status := range []int{400, 401, 403, 404, 410, 429, 500, 503} {
			srv := newServer(t, quoting(status))
			res, err := newDeliverer(t).Deliver(context.Background(), request(config(t, map[string]any{"webhookUrl": srv.webhookURL()}), `{}`))
			check(t, res, err)
			require.Contains(t, err.Error(), "/api/webhooks/"+webhookID+"/[redacted]")
			require.Contains(t, res.Response, "[redacted]")
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		srv := newServer(t, quoting(400))
		u := srv.webhookURL()
		srv.Close()
		res, err := newDeliverer(t).Deliver(context.Background(), request(config(t, map[string]any{"webhookUrl": u}), `{}`))
		check(t, res, err)
		require.Equal(t, "retry", outcome(err))
		require.Contains(t, err.Error(), "/api/webhooks/"+webhookID+"/[redacted]")
	})
	t.Run("timeout", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		d, err := discord.New(&discord.Options{HTTP: loopbackHTTP(t, 50*time.Millisecond), AllowAnyHost: true})
		require.NoError(t, err)
		res, err := d.Deliver(context.Background(), request(config(t, map[string]any{"webhookUrl": srv.webhookURL()}), `{}`))
		check(t, res, err)
		se, ok := errors.AsType[*safehttp.Error](err)
		require.True(t, ok)
		require.Equal(t, safehttp.ClassTimeout, se.Class)
	})
	t.Run("blocked by the SSRF guard", func(t *testing.T) {
		srv := newServer(t, quoting(400))
		d, err := discord.New(&discord.Options{AllowAnyHost: true})
		require.NoError(t, err)
		res, err := d.Deliver(context.Background(), request(config(t, map[string]any{"webhookUrl": srv.webhookURL()}), `{}`))
		check(t, res, err)
		require.Equal(t, "permanent", outcome(err))
		require.ErrorIs(t, err, safehttp.ErrBlocked)
	})
	t.Run("invalid config", func(t *testing.T) {
		d, err := discord.New(nil)
		require.NoError(t, err)
		res, err := d.Deliver(context.Background(), request(config(t, map[string]any{"webhookUrl": "http://discord.com" + hookPath}), `{}`))
		check(t, res, err)
		require.Equal(t, "permanent", outcome(err))
		require.ErrorIs(t, err, outhook.ErrInvalidConfig)
	})
}

func TestValidateConfig(t *testing.T) {
	strict, err := discord.New(nil)
	require.NoError(t, err)
	valid := "https://discord.com" + hookPath
	for _, tc := range []struct {
		name   string
		config map[string]any
		field  string // "" when valid
		rule   string
	}{
		{"valid", map[string]any{"webhookUrl": valid}, "", ""},
		{"discordapp.com", map[string]any{"webhookUrl": "https://discordapp.com" + hookPath}, "", ""},
		{"ptb", map[string]any{"webhookUrl": "https://ptb.discord.com" + hookPath}, "", ""},
		{"canary", map[string]any{"webhookUrl": "https://canary.discord.com" + hookPath}, "", ""},
		{"API version", map[string]any{"webhookUrl": "https://discord.com/api/v10/webhooks/" + webhookID + "/" + token}, "", ""},
		{"thread", map[string]any{"webhookUrl": valid + "?thread_id=42"}, "", ""},
		{"everything", map[string]any{"webhookUrl": valid, "username": "Status", "avatarUrl": "https://example.com/a.png", "mentions": []string{"users", "roles"}, "contentTemplate": "{{.Payload.title}}"}, "", ""},
		{"missing URL", map[string]any{}, "webhookUrl", "required"},
		{"plain http", map[string]any{"webhookUrl": "http://discord.com" + hookPath}, "webhookUrl", "https"},
		{"other host", map[string]any{"webhookUrl": "https://discord.example.com" + hookPath}, "webhookUrl", "host"},
		{"look-alike host", map[string]any{"webhookUrl": "https://discord.com.evil.example" + hookPath}, "webhookUrl", "host"},
		{"port", map[string]any{"webhookUrl": "https://discord.com:8443" + hookPath}, "webhookUrl", "host"},
		{"user info", map[string]any{"webhookUrl": "https://u:p@discord.com" + hookPath}, "webhookUrl", "url"},
		{"no token", map[string]any{"webhookUrl": "https://discord.com/api/webhooks/" + webhookID}, "webhookUrl", "path"},
		{"ID not a snowflake", map[string]any{"webhookUrl": "https://discord.com/api/webhooks/abc/" + token}, "webhookUrl", "path"},
		{"other API path", map[string]any{"webhookUrl": "https://discord.com/api/channels/1/messages"}, "webhookUrl", "path"},
		{"other query", map[string]any{"webhookUrl": valid + "?token=x"}, "webhookUrl", "query"},
		{"bad thread", map[string]any{"webhookUrl": valid + "?thread_id=general"}, "webhookUrl", "query"},
		{"username clyde", map[string]any{"webhookUrl": valid, "username": "Clyde bot"}, "username", "username"},
		{"username discord", map[string]any{"webhookUrl": valid, "username": "My Discord hook"}, "username", "username"},
		{"username too long", map[string]any{"webhookUrl": valid, "username": strings.Repeat("n", 81)}, "username", "max"},
		{"username blank", map[string]any{"webhookUrl": valid, "username": "   "}, "username", "username"},
		{"avatar not http", map[string]any{"webhookUrl": valid, "avatarUrl": "ftp://example.com/a.png"}, "avatarUrl", "url"},
		{"unknown mention", map[string]any{"webhookUrl": valid, "mentions": []string{"here"}}, "mentions[0]", "oneof"},
		{"duplicate mention", map[string]any{"webhookUrl": valid, "mentions": []string{"users", "users"}}, "mentions", "unique"},
		{"bad template", map[string]any{"webhookUrl": valid, "contentTemplate": "{{if}}"}, "contentTemplate", "template"},
		{"unbounded loop", map[string]any{"webhookUrl": valid, "contentTemplate": "{{range 1000000000}}x{{end}}"}, "contentTemplate", "template"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := strict.ValidateConfig(config(t, tc.config))
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, outhook.ErrInvalidConfig)
			ce, ok := errors.AsType[*outhook.ConfigError](err)
			require.True(t, ok)
			require.Equal(t, discord.ID, ce.Deliverer)
			require.Len(t, ce.Fields, 1, "%v", err)
			require.Equal(t, tc.field, ce.Fields[0].Field)
			require.Equal(t, tc.rule, ce.Fields[0].Rule)
			require.NotContains(t, err.Error(), "SECRETtoken", "the URL is not quoted")
		})
	}

	t.Run("unknown field", func(t *testing.T) {
		err := strict.ValidateConfig(json.RawMessage(`{"webhookUrl":"` + valid + `","tts":true}`))
		require.ErrorIs(t, err, outhook.ErrInvalidConfig)
		require.Contains(t, err.Error(), `"tts"`)
	})
	t.Run("AllowAnyHost keeps the path rule", func(t *testing.T) {
		d, err := discord.New(&discord.Options{AllowAnyHost: true})
		require.NoError(t, err)
		require.NoError(t, d.ValidateConfig(config(t, map[string]any{"webhookUrl": "http://127.0.0.1:8080" + hookPath})))
		err = d.ValidateConfig(config(t, map[string]any{"webhookUrl": "http://127.0.0.1:8080/hook"}))
		ce, ok := errors.AsType[*outhook.ConfigError](err)
		require.True(t, ok)
		require.Equal(t, "path", ce.Fields[0].Rule)
	})
}

func TestConfigSchemaGolden(t *testing.T) {
	d, err := discord.New(nil)
	require.NoError(t, err)
	var v any
	require.NoError(t, json.Unmarshal(d.ConfigSchema(), &v))
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	require.NoError(t, enc.Encode(v))
	got := buf.Bytes()

	golden := filepath.Join("testdata", "config.schema.json")
	if *update {
		require.NoError(t, os.WriteFile(golden, got, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run go test ./discord -run TestConfigSchemaGolden -update to create it")
	require.Equal(t, string(want), string(got), "run with -update to accept the new schema")
}

// TestSendTest sends the core's test event through a real client.
func TestSendTest(t *testing.T) {
	type incidentCreated struct {
		Title string `json:"title"`
	}
	reg := outhook.NewEventRegistry()
	_, err := outhook.RegisterEvent(reg, outhook.EventDefinition[incidentCreated]{
		Hook:        outhook.MustNewHook[incidentCreated]("incident.created"),
		DisplayName: "Incident Created",
		Category:    outhook.CategoryIncidents,
	}, outhook.PluginMetadata{PluginID: "incident"})
	require.NoError(t, err)

	srv := newServer(t, answer(http.StatusOK, created))
	d := newDeliverer(t)
	client := outhooktest.NewClient(t, &outhook.Config{Registry: reg, Deliverers: []outhook.Deliverer{d}})
	ctx := context.Background()

	for _, tc := range []struct {
		events         []string
		title, eventID string
	}{
		{[]string{"incident.incident.created"}, "Incident Created", "incident.incident.created"},
		{[]string{"billing.**"}, outhook.TestEventID, outhook.TestEventID}, // selects no registered event
	} {
		sub, err := client.CreateSubscription(ctx, outhook.Subscription{
			Name: "ops", Events: tc.events, DelivererID: discord.ID,
			Config: config(t, map[string]any{
				"webhookUrl":      srv.webhookURL(),
				"contentTemplate": "{{.Event.DisplayName}} {{.Payload.incident.title}}", // fields the test payload lacks
			}),
		})
		require.NoError(t, err)

		a, err := client.SendTest(ctx, sub.ID)
		require.NoError(t, err)
		require.Equal(t, outhook.AttemptSucceeded, a.Outcome)
		require.Equal(t, outhook.TriggerTest, a.Trigger)
		require.Equal(t, 200, a.StatusCode)
		require.Equal(t, "1100000000000000001", a.ExternalID)

		var msg struct {
			Content string `json:"content"`
			Embeds  []struct {
				Title       string
				Description string
				Fields      []struct {
					Name, Value string
					Inline      bool
				}
				Footer struct{ Text string }
			} `json:"embeds"`
		}
		require.NoError(t, json.Unmarshal(srv.next(t).Body, &msg))
		require.Len(t, msg.Embeds, 1)
		e := msg.Embeds[0]
		require.Equal(t, tc.title, e.Title)
		require.Equal(t, "This is a test event from outhook: if you can read it, subscription "+sub.ID+" reaches its destination.", e.Description)
		require.Len(t, e.Fields, 2)
		require.Equal(t, "subscriptionId", e.Fields[0].Name)
		require.Equal(t, sub.ID, e.Fields[0].Value)
		require.Equal(t, "test", e.Fields[1].Name)
		require.Equal(t, "true", e.Fields[1].Value)
		require.Equal(t, tc.eventID, e.Footer.Text)
		if tc.title == "Incident Created" {
			require.Equal(t, "Incident Created ", msg.Content, "missing fields render empty")
		} else {
			require.Empty(t, msg.Content, "a blank template output sends no content")
		}
	}
}

func TestNewDefaults(t *testing.T) {
	d, err := discord.New(nil)
	require.NoError(t, err)
	require.Equal(t, "discord", d.ID())
	var schema struct {
		Properties map[string]any `json:"properties"`
		Required   []string       `json:"required"`
	}
	require.NoError(t, json.Unmarshal(d.ConfigSchema(), &schema))
	for _, p := range []string{"webhookUrl", "contentTemplate", "username", "avatarUrl", "mentions"} {
		require.Contains(t, schema.Properties, p)
	}
	require.Equal(t, []string{"webhookUrl"}, schema.Required)
}
