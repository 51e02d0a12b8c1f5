package slack_test

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
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
	"github.com/outhook/outhook/safehttp"
	"github.com/outhook/outhook/slack"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// secretPath is the secret part of the test webhook URLs.
const secretPath = "T0001/B0002/SECRETtoken0123456789"

// fixedNow is the clock of the deliverers under test.
var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// received is a request the test server got.
type received struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// server is a loopback stand-in for Slack that records each request and
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
		s.reqs <- received{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
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
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// webhookURL is the test server's stand-in for a Slack webhook URL.
func (s *server) webhookURL() string { return s.URL + "/services/" + secretPath }

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

// loopbackHTTP is a safehttp client that may reach the test servers.
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

// newDeliverer returns a deliverer for the test servers.
func newDeliverer(t *testing.T) *slack.Deliverer {
	t.Helper()
	d, err := slack.New(&slack.Options{
		HTTP:         loopbackHTTP(t, 5*time.Second),
		Now:          func() time.Time { return fixedNow },
		AllowAnyHost: true,
	})
	require.NoError(t, err)
	return d
}

// config returns a subscription config JSON.
func config(t testing.TB, webhookURL string, extra ...string) json.RawMessage {
	t.Helper()
	m := map[string]string{"webhookUrl": webhookURL}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b
}

// request returns a delivery request of an incident event with payload.
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
		Subscription: outhook.Subscription{ID: "sub_1", DelivererID: slack.ID, Config: cfg},
		Payload:      json.RawMessage(payload),
		OccurredAt:   fixedNow.Add(-time.Minute),
		Attempt:      1,
	}
}

func TestDeliverWireFormat(t *testing.T) {
	srv := newServer(t, answer(http.StatusOK, "ok"))
	d := newDeliverer(t)

	req := request(config(t, srv.webhookURL()), `{
		"title": "Database down", "severity": "critical", "systemIds": ["api", "db"],
		"owner": {"email": "oncall@example.com"}, "count": 3, "acknowledged": false,
		"note": null, "tags": [], "empty": ""
	}`)
	res, err := d.Deliver(context.Background(), req)
	require.NoError(t, err)
	require.NotEmpty(t, res.RequestHeaders["Content-Type"], "the request headers are reported")
	require.NotNil(t, res.ResponseHeaders, "the response headers are reported")
	res.RequestHeaders, res.ResponseHeaders = nil, nil
	require.Equal(t, outhook.DeliveryResult{StatusCode: 200, Response: "ok"}, res)

	got := srv.next(t)
	require.Equal(t, http.MethodPost, got.Method)
	require.Equal(t, "/services/"+secretPath, got.Path)
	require.Equal(t, "application/json", got.Header.Get("Content-Type"))
	require.Equal(t, "outhook/"+safehttp.Version, got.Header.Get("User-Agent"))

	occurred := req.OccurredAt
	want := fmt.Sprintf(`{
		"text": "Incident Created: Database down",
		"blocks": [
			{"type": "header", "text": {"type": "plain_text", "text": "Incident Created", "emoji": true}},
			{"type": "section", "fields": [
				{"type": "mrkdwn", "text": "*title*\nDatabase down"},
				{"type": "mrkdwn", "text": "*severity*\ncritical"},
				{"type": "mrkdwn", "text": "*acknowledged*\nfalse"},
				{"type": "mrkdwn", "text": "*count*\n3"},
				{"type": "mrkdwn", "text": "*systemIds*\napi, db"}
			]},
			{"type": "context", "elements": [
				{"type": "mrkdwn", "text": "`+"`incident.incident.created`"+`"},
				{"type": "mrkdwn", "text": "<!date^%d^{date_short_pretty} at {time_secs}|2026-03-01T11:59:00Z>"}
			]}
		]
	}`, occurred.Unix())
	require.JSONEq(t, want, string(got.Body))
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
	for _, tc := range []struct {
		name   string
		status int
		body   string
		header []string
		want   string
	}{
		{"ok", 200, "ok", nil, "success"},
		{"2xx other body", 204, "", nil, "success"},
		{"invalid_payload", 400, "invalid_payload", nil, "permanent"},
		{"user_not_found", 400, "user_not_found", nil, "permanent"},
		{"action_prohibited", 403, "action_prohibited", nil, "permanent"},
		{"invalid_token", 403, "invalid_token", nil, "permanent"},
		{"channel_not_found", 404, "channel_not_found", nil, "gone"},
		{"no_service", 404, "no_service", nil, "gone"},
		{"channel_is_archived", 410, "channel_is_archived", nil, "gone"},
		{"rate limited, seconds", 429, "rate_limited", []string{"Retry-After", "30"}, "retry after 30s"},
		{"rate limited, HTTP date", 429, "rate_limited", []string{"Retry-After", fixedNow.Add(90 * time.Second).Format(http.TimeFormat)}, "retry after 1m30s"},
		{"rate limited, no header", 429, "rate_limited", nil, "retry"},
		{"rollup_error", 500, "rollup_error", nil, "retry"},
		{"bad gateway", 502, "", nil, "retry"},
		{"unavailable with Retry-After", 503, "", []string{"Retry-After", "5"}, "retry after 5s"},
		{"not implemented", 501, "", nil, "permanent"},
		{"redirect not followed", 302, "", []string{"Location", "https://example.com/"}, "permanent"},
		{"method not allowed", 405, "", nil, "permanent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, answer(tc.status, tc.body, tc.header...))
			res, err := newDeliverer(t).Deliver(context.Background(), request(config(t, srv.webhookURL()), `{"title":"x"}`))
			require.Equal(t, tc.want, outcome(err), "error: %v", err)
			require.Equal(t, tc.status, res.StatusCode)
			require.Equal(t, tc.body, res.Response)
			if err != nil {
				require.Contains(t, err.Error(), fmt.Sprint(tc.status))
				require.Contains(t, err.Error(), tc.body, "Slack's error string is in the error")
				se, ok := errors.AsType[*safehttp.Error](err)
				require.True(t, ok)
				require.Equal(t, safehttp.ClassHTTPStatus, se.Class)
			}
		})
	}
}

// TestSecretsNeverShown checks that no error or result shows the secret
// part of the webhook URL, whatever goes wrong.
func TestSecretsNeverShown(t *testing.T) {
	echo := func(w http.ResponseWriter, r *http.Request) {
		// A hostile or buggy server that quotes the URL it was sent to.
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, "invalid_payload for "+r.URL.Path+" ("+strings.TrimPrefix(r.URL.Path, "/services/")+")")
	}
	check := func(t *testing.T, res outhook.DeliveryResult, err error) {
		t.Helper()
		require.Error(t, err)
		for _, s := range []string{err.Error(), res.Response, fmt.Sprintf("%+v", err)} {
			require.NotContains(t, s, "SECRETtoken")
			require.NotContains(t, s, "T0001/B0002")
		}
		require.Contains(t, err.Error(), "/services/[redacted]")
	}

	t.Run("status errors", func(t *testing.T) {
		for _, status := range []int{400, 403, 404, 410, 429, 500, 503} {
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(status)
				_, _ = io.WriteString(w, "error at "+r.URL.String())
			})
			res, err := newDeliverer(t).Deliver(context.Background(), request(config(t, srv.webhookURL()), `{}`))
			check(t, res, err)
		}
	})
	t.Run("body quoting the token", func(t *testing.T) {
		srv := newServer(t, echo)
		res, err := newDeliverer(t).Deliver(context.Background(), request(config(t, srv.webhookURL()), `{}`))
		check(t, res, err)
		require.Contains(t, res.Response, "[redacted]")
	})
	t.Run("connection refused", func(t *testing.T) {
		srv := newServer(t, echo)
		u := srv.webhookURL()
		srv.Close()
		res, err := newDeliverer(t).Deliver(context.Background(), request(config(t, u), `{}`))
		check(t, res, err)
		require.Equal(t, "retry", outcome(err))
	})
	t.Run("timeout", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		d, err := slack.New(&slack.Options{HTTP: loopbackHTTP(t, 50*time.Millisecond), AllowAnyHost: true})
		require.NoError(t, err)
		res, err := d.Deliver(context.Background(), request(config(t, srv.webhookURL()), `{}`))
		check(t, res, err)
		require.Equal(t, "retry", outcome(err))
		se, ok := errors.AsType[*safehttp.Error](err)
		require.True(t, ok)
		require.Equal(t, safehttp.ClassTimeout, se.Class)
	})
	t.Run("blocked by the SSRF guard", func(t *testing.T) {
		srv := newServer(t, echo)
		d, err := slack.New(&slack.Options{AllowAnyHost: true}) // default client: loopback refused
		require.NoError(t, err)
		res, err := d.Deliver(context.Background(), request(config(t, srv.webhookURL()), `{}`))
		check(t, res, err)
		require.Equal(t, "permanent", outcome(err))
		require.ErrorIs(t, err, safehttp.ErrBlocked)
	})
	t.Run("real Slack URL, invalid config", func(t *testing.T) {
		d, err := slack.New(nil)
		require.NoError(t, err)
		// A subscription saved before the host rules, say: refused before
		// anything is sent, without quoting the URL.
		u := "http://hooks.slack.com/services/" + secretPath
		res, err := d.Deliver(context.Background(), request(config(t, u), `{}`))
		require.Equal(t, "permanent", outcome(err))
		require.ErrorIs(t, err, outhook.ErrInvalidConfig)
		require.NotContains(t, err.Error(), "SECRETtoken")
		require.Empty(t, res.Response)
	})
}

func TestValidateConfig(t *testing.T) {
	strict, err := slack.New(nil)
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		config string
		field  string // "" when valid
		rule   string
	}{
		{"valid", `{"webhookUrl":"https://hooks.slack.com/services/T0001/B0002/XXXX"}`, "", ""},
		{"valid GovSlack", `{"webhookUrl":"https://hooks.slack-gov.com/services/T0001/B0002/XXXX"}`, "", ""},
		{"valid with template", `{"webhookUrl":"https://hooks.slack.com/services/T/B/X","textTemplate":"*{{.Event.DisplayName}}*: {{.Payload.title}}"}`, "", ""},
		{"missing URL", `{}`, "webhookUrl", "required"},
		{"not a URL", `{"webhookUrl":"hooks slack"}`, "webhookUrl", "url"},
		{"plain http", `{"webhookUrl":"http://hooks.slack.com/services/T/B/X"}`, "webhookUrl", "https"},
		{"other host", `{"webhookUrl":"https://hooks.example.com/services/T/B/X"}`, "webhookUrl", "host"},
		{"look-alike host", `{"webhookUrl":"https://hooks.slack.com.evil.example/services/T/B/X"}`, "webhookUrl", "host"},
		{"port", `{"webhookUrl":"https://hooks.slack.com:8443/services/T/B/X"}`, "webhookUrl", "host"},
		{"user info", `{"webhookUrl":"https://me:pw@hooks.slack.com/services/T/B/X"}`, "webhookUrl", "url"},
		{"workflow URL", `{"webhookUrl":"https://hooks.slack.com/triggers/T/1/X"}`, "webhookUrl", "path"},
		{"no path", `{"webhookUrl":"https://hooks.slack.com/services/"}`, "webhookUrl", "path"},
		{"bad template", `{"webhookUrl":"https://hooks.slack.com/services/T/B/X","textTemplate":"{{.Payload.title"}`, "textTemplate", "template"},
		{"unbounded loop", `{"webhookUrl":"https://hooks.slack.com/services/T/B/X","textTemplate":"{{range 1000000000}}{{end}}"}`, "textTemplate", "template"},
		{"template too long", `{"webhookUrl":"https://hooks.slack.com/services/T/B/X","textTemplate":"` + strings.Repeat("x", 10001) + `"}`, "textTemplate", "max"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := strict.ValidateConfig(json.RawMessage(tc.config))
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, outhook.ErrInvalidConfig)
			ce, ok := errors.AsType[*outhook.ConfigError](err)
			require.True(t, ok)
			require.Equal(t, slack.ID, ce.Deliverer)
			require.Len(t, ce.Fields, 1, "%v", err)
			require.Equal(t, tc.field, ce.Fields[0].Field)
			require.Equal(t, tc.rule, ce.Fields[0].Rule)
			require.Contains(t, ce.Fields[0].Message, tc.field)
			require.NotContains(t, err.Error(), "T0001", "the URL is not quoted")
		})
	}

	t.Run("unknown field", func(t *testing.T) {
		err := strict.ValidateConfig(json.RawMessage(`{"webhookUrl":"https://hooks.slack.com/services/T/B/X","channel":"#ops"}`))
		require.ErrorIs(t, err, outhook.ErrInvalidConfig)
		require.Contains(t, err.Error(), `"channel"`)
	})

	t.Run("AllowAnyHost", func(t *testing.T) {
		d, err := slack.New(&slack.Options{AllowAnyHost: true})
		require.NoError(t, err)
		require.NoError(t, d.ValidateConfig(json.RawMessage(`{"webhookUrl":"http://127.0.0.1:8080/hooks/abc"}`)))
		err = d.ValidateConfig(json.RawMessage(`{"webhookUrl":"ftp://127.0.0.1/hooks/abc"}`))
		ce, ok := errors.AsType[*outhook.ConfigError](err)
		require.True(t, ok)
		require.Equal(t, "webhookUrl", ce.Fields[0].Field)
	})
}

func TestConfigSchemaGolden(t *testing.T) {
	d, err := slack.New(nil)
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
	require.NoError(t, err, "run go test ./slack -run TestConfigSchemaGolden -update to create it")
	require.Equal(t, string(want), string(got), "run with -update to accept the new schema")
}

// TestDeliverTemplate checks a template's output replaces the fields and
// the text, through Deliver.
func TestDeliverTemplate(t *testing.T) {
	srv := newServer(t, answer(http.StatusOK, "ok"))
	d := newDeliverer(t)
	tmpl := `:rotating_light: *{{.Event.DisplayName}}* in {{.Event.Category}}: {{escape .Payload.title}} (owner: {{.Payload.owner.email}}{{.Payload.team.lead.name}})`
	cfg := config(t, srv.webhookURL(), "textTemplate", tmpl)
	require.NoError(t, d.ValidateConfig(cfg))

	_, err := d.Deliver(context.Background(), request(cfg, `{"title":"<!channel> DB down","owner":{"email":"oncall@example.com"}}`))
	require.NoError(t, err)

	var msg struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type   string         `json:"type"`
			Text   map[string]any `json:"text"`
			Fields []any          `json:"fields"`
		} `json:"blocks"`
	}
	require.NoError(t, json.Unmarshal(srv.next(t).Body, &msg))
	want := ":rotating_light: *Incident Created* in Incidents: &lt;!channel&gt; DB down (owner: oncall@example.com)"
	require.Equal(t, want, msg.Text)
	require.Len(t, msg.Blocks, 3)
	require.Equal(t, "section", msg.Blocks[1].Type)
	require.Equal(t, map[string]any{"type": "mrkdwn", "text": want}, msg.Blocks[1].Text)
	require.Empty(t, msg.Blocks[1].Fields)
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

	srv := newServer(t, answer(http.StatusOK, "ok"))
	d := newDeliverer(t)
	client := outhooktest.NewClient(t, &outhook.Config{Registry: reg, Deliverers: []outhook.Deliverer{d}})
	ctx := context.Background()

	for _, tc := range []struct {
		events []string
		header string
	}{
		{[]string{"incident.incident.created"}, "Incident Created"},
		{[]string{"billing.**"}, outhook.TestEventID}, // selects no registered event
	} {
		sub, err := client.CreateSubscription(ctx, outhook.Subscription{
			Name: "ops", Events: tc.events, DelivererID: slack.ID, Config: config(t, srv.webhookURL()),
		})
		require.NoError(t, err)

		a, err := client.SendTest(ctx, sub.ID)
		require.NoError(t, err)
		require.Equal(t, outhook.AttemptSucceeded, a.Outcome)
		require.Equal(t, outhook.TriggerTest, a.Trigger)
		require.Equal(t, 200, a.StatusCode)
		require.Equal(t, "ok", a.Response)

		var msg struct {
			Text   string `json:"text"`
			Blocks []struct {
				Type   string `json:"type"`
				Text   struct{ Text string }
				Fields []struct{ Text string }
			} `json:"blocks"`
		}
		require.NoError(t, json.Unmarshal(srv.next(t).Body, &msg))
		require.Equal(t, tc.header, msg.Blocks[0].Text.Text)
		require.True(t, strings.HasPrefix(msg.Text, tc.header+": This is a test event from outhook"), msg.Text)
		require.Contains(t, msg.Text, sub.ID)
		var fields []string
		for _, f := range msg.Blocks[1].Fields {
			fields = append(fields, f.Text)
		}
		require.Equal(t, []string{
			"*message*\nThis is a test event from outhook: if you can read it, subscription " + sub.ID + " reaches its destination.",
			"*subscriptionId*\n" + sub.ID,
			"*test*\ntrue",
		}, fields)
	}
}

func TestNewDefaults(t *testing.T) {
	d, err := slack.New(nil)
	require.NoError(t, err)
	require.Equal(t, "slack", d.ID())
	var schema struct {
		Properties map[string]any `json:"properties"`
		Required   []string       `json:"required"`
	}
	require.NoError(t, json.Unmarshal(d.ConfigSchema(), &schema))
	require.Contains(t, schema.Properties, "webhookUrl")
	require.Contains(t, schema.Properties, "textTemplate")
	require.Equal(t, []string{"webhookUrl"}, schema.Required)
}

func TestDeliverCanceledContext(t *testing.T) {
	srv := newServer(t, answer(http.StatusOK, "ok"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := newDeliverer(t).Deliver(ctx, request(config(t, srv.webhookURL()), `{}`))
	require.ErrorIs(t, err, context.Canceled)
	require.NotContains(t, err.Error(), "SECRETtoken")
}
