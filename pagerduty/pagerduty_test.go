package pagerduty_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
	"github.com/outhook/outhook/pagerduty"
	"github.com/outhook/outhook/safehttp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// routingKey is the secret of the tests: it must never appear in an error
// or a recorded response.
const routingKey = "R0UT1NGKEYs3cr3t0123456789abcdef"

var now = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// received is one request the fake Events API got.
type received struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// reply is what the fake Events API answers.
type reply struct {
	Status int
	Header map[string]string
	Body   string
}

// fakePD starts a loopback server that records every request and answers
// with answer(request).
func fakePD(t *testing.T, answer func(received) reply) (*httptest.Server, <-chan received) {
	t.Helper()
	got := make(chan received, 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec := received{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
		got <- rec
		a := answer(rec)
		for k, v := range a.Header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.Status)
		_, _ = io.WriteString(w, a.Body)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// accepted answers 202 with PagerDuty's success body, echoing the dedup key.
func accepted(r received) reply {
	var ev struct {
		DedupKey string `json:"dedup_key"`
	}
	_ = json.Unmarshal(r.Body, &ev)
	b, _ := json.Marshal(map[string]string{"status": "success", "message": "Event processed", "dedup_key": ev.DedupKey})
	return reply{Status: http.StatusAccepted, Body: string(b)}
}

func loopbackClient(t testing.TB) *safehttp.Client {
	t.Helper()
	hc, err := safehttp.New(&safehttp.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	require.NoError(t, err)
	t.Cleanup(hc.Close)
	return hc
}

func newDeliverer(t testing.TB, baseURL string) *pagerduty.Deliverer {
	t.Helper()
	d, err := pagerduty.New(&pagerduty.Options{HTTP: loopbackClient(t), BaseURL: baseURL, Now: func() time.Time { return now }})
	require.NoError(t, err)
	return d
}

func config(t testing.TB, extra map[string]any) json.RawMessage {
	t.Helper()
	cfg := map[string]any{"routingKey": routingKey}
	for k, v := range extra {
		cfg[k] = v
	}
	b, err := json.Marshal(cfg)
	require.NoError(t, err)
	return b
}

func request(cfg json.RawMessage, eventID, payload string) *outhook.DeliveryRequest {
	return &outhook.DeliveryRequest{
		DeliveryID:   "dlv_01HZX",
		MessageID:    "msg_01HZX",
		EventID:      eventID,
		Event:        outhook.Event{ID: eventID, DisplayName: "Incident created", Category: "incident"},
		Subscription: outhook.Subscription{ID: "sub_1", DelivererID: pagerduty.ID, Config: cfg},
		Payload:      json.RawMessage(payload),
		OccurredAt:   time.Date(2026, 4, 30, 8, 42, 58, 315_000_000, time.FixedZone("CEST", 2*3600)),
		Attempt:      1,
	}
}

// sent delivers req to a server that accepts everything and returns the
// event it received, decoded.
func sent(t *testing.T, req *outhook.DeliveryRequest) map[string]any {
	t.Helper()
	srv, got := fakePD(t, accepted)
	_, err := newDeliverer(t, srv.URL).Deliver(context.Background(), req)
	require.NoError(t, err)
	r := <-got
	var ev map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &ev))
	return ev
}

func payloadOf(t *testing.T, ev map[string]any) map[string]any {
	t.Helper()
	p, ok := ev["payload"].(map[string]any)
	require.True(t, ok, "event has no payload object: %v", ev)
	return p
}

func TestTriggerWireFormat(t *testing.T) {
	srv, got := fakePD(t, accepted)
	d := newDeliverer(t, srv.URL+"/") // a trailing slash is fine
	cfg := config(t, map[string]any{
		"dedupKeyField": "incident.id", "source": "api.example.com", "severity": "warning",
		"component": "postgres", "group": "prod-datapipe", "class": "deploy",
	})
	payload := `{"incident": {"id": "inc_42"}, "title": "Database <down> & out", "systemIds": ["a", "b"], "load": 0.75}`
	res, err := d.Deliver(context.Background(), request(cfg, "incident.incident.created", payload))
	require.NoError(t, err)

	r := <-got
	require.Equal(t, http.MethodPost, r.Method)
	require.Equal(t, "/v2/enqueue", r.Path)
	require.Equal(t, "application/json", r.Header.Get("Content-Type"))
	require.Equal(t, "application/json", r.Header.Get("Accept"))
	require.Equal(t, "outhook/"+safehttp.Version, r.Header.Get("User-Agent"))

	var ev map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(r.Body, &ev))
	require.Len(t, ev, 4, "top-level fields: %s", r.Body)
	require.JSONEq(t, `"`+routingKey+`"`, string(ev["routing_key"]))
	require.JSONEq(t, `"trigger"`, string(ev["event_action"]))
	require.JSONEq(t, `"inc_42"`, string(ev["dedup_key"]))

	var p map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(ev["payload"], &p))
	require.Len(t, p, 8, "payload fields: %s", ev["payload"])
	require.JSONEq(t, `"Incident created: Database <down> & out"`, string(p["summary"]))
	require.JSONEq(t, `"api.example.com"`, string(p["source"]))
	require.JSONEq(t, `"warning"`, string(p["severity"]))
	require.JSONEq(t, `"2026-04-30T06:42:58.315Z"`, string(p["timestamp"]))
	require.JSONEq(t, `"postgres"`, string(p["component"]))
	require.JSONEq(t, `"prod-datapipe"`, string(p["group"]))
	require.JSONEq(t, `"deploy"`, string(p["class"]))
	require.JSONEq(t, payload, string(p["custom_details"]))
	// <, > and & are sent as they are, not as \u003c escapes.
	require.Contains(t, string(r.Body), `Database <down> & out`)

	require.NotEmpty(t, res.RequestHeaders["Content-Type"], "the request headers are reported")
	require.NotNil(t, res.ResponseHeaders, "the response headers are reported")
	res.RequestHeaders, res.ResponseHeaders = nil, nil
	require.Equal(t, outhook.DeliveryResult{
		ExternalID: "inc_42",
		StatusCode: http.StatusAccepted,
		Response:   `{"dedup_key":"inc_42","message":"Event processed","status":"success"}`,
	}, res)
}

func TestTriggerDefaults(t *testing.T) {
	ev := sent(t, request(config(t, nil), "incident.incident.created", `{"n": 1}`))
	require.Equal(t, "dlv_01HZX", ev["dedup_key"], "the delivery ID is the default dedup key")
	p := payloadOf(t, ev)
	require.Equal(t, map[string]any{
		"summary":        "Incident created",
		"source":         "outhook",
		"severity":       "error",
		"timestamp":      "2026-04-30T06:42:58.315Z",
		"custom_details": map[string]any{"n": float64(1)},
	}, p)
}

func TestResolveAndAcknowledgeWireFormat(t *testing.T) {
	cfg := config(t, map[string]any{
		"dedupKeyField":   "id",
		"summaryTemplate": "{{.Payload.title}}", "component": "db",
		"actions": []map[string]string{
			{"events": "incident.*.resolved", "action": "resolve"},
			{"events": "incident.*.acknowledged", "action": "acknowledge"},
		},
	})
	for _, tc := range []struct{ eventID, action string }{
		{"incident.incident.resolved", "resolve"},
		{"incident.incident.acknowledged", "acknowledge"},
	} {
		t.Run(tc.action, func(t *testing.T) {
			srv, got := fakePD(t, accepted)
			res, err := newDeliverer(t, srv.URL).Deliver(context.Background(), request(cfg, tc.eventID, `{"id": "inc_42", "title": "x"}`))
			require.NoError(t, err)
			require.Equal(t, "inc_42", res.ExternalID)
			r := <-got
			var ev map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(r.Body, &ev))
			require.Equal(t, map[string]json.RawMessage{
				"routing_key":  json.RawMessage(`"` + routingKey + `"`),
				"event_action": json.RawMessage(`"` + tc.action + `"`),
				"dedup_key":    json.RawMessage(`"inc_42"`),
			}, ev, "no payload on %s: %s", tc.action, r.Body)
		})
	}
}

func TestActionMapping(t *testing.T) {
	rules := []map[string]string{
		{"events": "incident.incident.resolved", "action": "resolve"},
		{"events": "incident.*.acknowledged", "action": "acknowledge"},
		{"events": "maintenance.**", "action": "resolve"},
		{"events": "**", "action": "trigger"},
	}
	for _, tc := range []struct {
		rules   []map[string]string
		eventID string
		want    string
	}{
		{nil, "incident.incident.resolved", "trigger"}, // no rules: every event triggers
		{rules, "incident.incident.resolved", "resolve"},
		{rules, "incident.incident.acknowledged", "acknowledge"},
		{rules, "incident.alert.acknowledged", "acknowledge"},
		{rules, "incident.incident.acknowledged.twice", "trigger"}, // * is one segment
		{rules, "maintenance.started", "resolve"},
		{rules, "maintenance.window.ended", "resolve"},
		{rules, "incident.incident.created", "trigger"},
		{rules[:1], "incident.incident.created", "trigger"}, // no match: trigger
		{[]map[string]string{{"events": "*.*.created", "action": "trigger"}, {"events": "incident.**", "action": "resolve"}}, "incident.incident.created", "trigger"}, // first match wins
		{[]map[string]string{{"events": "incident.**", "action": "resolve"}, {"events": "*.*.created", "action": "trigger"}}, "incident.incident.created", "resolve"},
		{[]map[string]string{{"events": "incident.**", "action": "resolve"}}, "outhook.test", "trigger"},
	} {
		t.Run(tc.eventID+"/"+tc.want, func(t *testing.T) {
			extra := map[string]any{}
			if tc.rules != nil {
				extra["actions"] = tc.rules
			}
			ev := sent(t, request(config(t, extra), tc.eventID, `{}`))
			require.Equal(t, tc.want, ev["event_action"])
			_, hasPayload := ev["payload"]
			require.Equal(t, tc.want == "trigger", hasPayload)
		})
	}
}

func TestDedupKey(t *testing.T) {
	long := strings.Repeat("é", 300)
	for _, tc := range []struct {
		name, field, payload, want string
	}{
		{"string field", "incidentId", `{"incidentId": "inc_42"}`, "inc_42"},
		{"number field", "id", `{"id": 12345678901234567890}`, "12345678901234567890"},
		{"boolean field", "flag", `{"flag": true}`, "true"},
		{"nested field", "incident.id", `{"incident": {"id": "inc_7"}}`, "inc_7"},
		{"missing field", "incidentId", `{"id": "x"}`, "dlv_01HZX"},
		{"empty string", "incidentId", `{"incidentId": "  "}`, "dlv_01HZX"},
		{"object field", "incident", `{"incident": {"id": "inc_7"}}`, "dlv_01HZX"},
		{"array field", "ids", `{"ids": ["a"]}`, "dlv_01HZX"},
		{"null field", "incidentId", `{"incidentId": null}`, "dlv_01HZX"},
		{"path through a scalar", "incident.id", `{"incident": "inc_7"}`, "dlv_01HZX"},
		{"payload not an object", "id", `["a"]`, "dlv_01HZX"},
		{"no field configured", "", `{"id": "inc_42"}`, "dlv_01HZX"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			extra := map[string]any{}
			if tc.field != "" {
				extra["dedupKeyField"] = tc.field
			}
			ev := sent(t, request(config(t, extra), "incident.incident.created", tc.payload))
			require.Equal(t, tc.want, ev["dedup_key"])
		})
	}

	t.Run("longer than 255 characters", func(t *testing.T) {
		cfg := config(t, map[string]any{"dedupKeyField": "id"})
		key := func(id string) string {
			b, _ := json.Marshal(map[string]string{"id": id})
			return sent(t, request(cfg, "incident.incident.created", string(b)))["dedup_key"].(string)
		}
		a, a2, b := key(long+"a"), key(long+"a"), key(long+"b")
		require.Equal(t, pagerduty.MaxDedupKey, utf8.RuneCountInString(a))
		require.Equal(t, a, a2, "the same long key gives the same dedup key")
		require.NotEqual(t, a, b, "long keys that share a prefix stay apart")
		require.True(t, strings.HasPrefix(a, strings.Repeat("é", 100)))
	})
}

func TestSeverity(t *testing.T) {
	sevMap := map[string]string{"Major": "critical", "minor": "warning", "P5": "info"}
	for _, tc := range []struct {
		name    string
		extra   map[string]any
		payload string
		want    string
	}{
		{"default", nil, `{"severity": "critical"}`, "error"},
		{"static", map[string]any{"severity": "info"}, `{}`, "info"},
		{"mapped", map[string]any{"severityField": "severity", "severityMap": sevMap}, `{"severity": "major"}`, "critical"},
		{"mapped case-insensitively", map[string]any{"severityField": "severity", "severityMap": sevMap}, `{"severity": "MINOR"}`, "warning"},
		{"mapped key case-insensitively", map[string]any{"severityField": "severity", "severityMap": sevMap}, `{"severity": "p5"}`, "info"},
		{"nested field", map[string]any{"severityField": "incident.level", "severityMap": sevMap}, `{"incident": {"level": "Major"}}`, "critical"},
		{"number value", map[string]any{"severityField": "level", "severityMap": map[string]string{"1": "critical"}}, `{"level": 1}`, "critical"},
		{"value already a severity", map[string]any{"severityField": "severity"}, `{"severity": "Warning"}`, "warning"},
		{"value already a severity, with a map", map[string]any{"severityField": "severity", "severityMap": sevMap}, `{"severity": "info"}`, "info"},
		{"unknown value: static", map[string]any{"severityField": "severity", "severityMap": sevMap, "severity": "warning"}, `{"severity": "apocalyptic"}`, "warning"},
		{"unknown value: default", map[string]any{"severityField": "severity", "severityMap": sevMap}, `{"severity": "apocalyptic"}`, "error"},
		{"missing field", map[string]any{"severityField": "severity", "severityMap": sevMap, "severity": "info"}, `{}`, "info"},
		{"object field", map[string]any{"severityField": "severity", "severityMap": sevMap}, `{"severity": {"x": 1}}`, "error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := sent(t, request(config(t, tc.extra), "incident.incident.created", tc.payload))
			require.Equal(t, tc.want, payloadOf(t, ev)["severity"])
		})
	}
}

func TestSummary(t *testing.T) {
	for _, tc := range []struct {
		name        string
		template    string
		displayName string
		payload     string
		want        string
	}{
		{"display name and title", "", "Incident created", `{"title": "DB down", "name": "n"}`, "Incident created: DB down"},
		{"event ID without display name", "", "", `{"title": "DB down"}`, "incident.incident.created: DB down"},
		{"summary field", "", "Incident created", `{"summary": "Disk full", "name": "n"}`, "Incident created: Disk full"},
		{"name field", "", "Incident created", `{"name": "web-1", "message": "m"}`, "Incident created: web-1"},
		{"message field", "", "Incident created", `{"message": "hello"}`, "Incident created: hello"},
		{"number title", "", "Incident created", `{"title": 42}`, "Incident created: 42"},
		{"no title field", "", "Incident created", `{"id": "x"}`, "Incident created"},
		{"empty title skipped", "", "Incident created", `{"title": " ", "name": "web-1"}`, "Incident created: web-1"},
		{"template", "[{{.Event.Category}}] {{.Payload.title}} ({{.EventID}}, {{.DeliveryID}})", "Incident created", `{"title": "DB down"}`, "[incident] DB down (incident.incident.created, dlv_01HZX)"},
		{"template nested field", "{{.Payload.incident.title}} on {{.Payload.host}}", "Incident created", `{"incident": {"title": "DB down"}, "host": "db-1"}`, "DB down on db-1"},
		{"template missing field renders empty", "Down: {{.Payload.host}}!", "Incident created", `{}`, "Down: !"},
		{"template number", "{{.Payload.n}}", "Incident created", `{"n": 12345678901234567890}`, "12345678901234567890"},
		{"template time", `{{.OccurredAt.UTC.Format "2006-01-02"}}`, "Incident created", `{}`, "2026-04-30"},
		{"template failing at run time: default", "{{.Payload.incident.title}}", "Incident created", `{"title": "DB down"}`, "Incident created: DB down"},
		{"template rendering blank: default", "  {{.Payload.nope}} ", "Incident created", `{"title": "DB down"}`, "Incident created: DB down"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			extra := map[string]any{}
			if tc.template != "" {
				extra["summaryTemplate"] = tc.template
			}
			req := request(config(t, extra), "incident.incident.created", tc.payload)
			req.Event.DisplayName = tc.displayName
			ev := sent(t, req)
			require.Equal(t, tc.want, payloadOf(t, ev)["summary"])
		})
	}

	t.Run("truncated to 1024 characters", func(t *testing.T) {
		title := strings.Repeat("ü", 2000)
		b, _ := json.Marshal(map[string]string{"title": title})
		ev := sent(t, request(config(t, nil), "incident.incident.created", string(b)))
		s := payloadOf(t, ev)["summary"].(string)
		require.Equal(t, pagerduty.MaxSummary, utf8.RuneCountInString(s))
		require.True(t, utf8.ValidString(s))
		require.True(t, strings.HasPrefix(s, "Incident created: üü"))
		require.True(t, strings.HasSuffix(s, "ü…"))
	})

	t.Run("template output is capped", func(t *testing.T) {
		cfg := config(t, map[string]any{"summaryTemplate": "{{range .Payload.items}}{{.}}{{end}}"})
		items := make([]string, 10000)
		for i := range items {
			items[i] = "abcdefghij"
		}
		b, _ := json.Marshal(map[string]any{"items": items})
		ev := sent(t, request(cfg, "incident.incident.created", string(b)))
		s := payloadOf(t, ev)["summary"].(string)
		require.Equal(t, pagerduty.MaxSummary, utf8.RuneCountInString(s))
		require.True(t, strings.HasSuffix(s, "…"))
	})
}

func TestCustomDetails(t *testing.T) {
	t.Run("payload not an object", func(t *testing.T) {
		ev := sent(t, request(config(t, nil), "incident.incident.created", `["a", 1]`))
		require.Equal(t, map[string]any{"payload": []any{"a", float64(1)}}, payloadOf(t, ev)["custom_details"])
	})
	t.Run("no payload", func(t *testing.T) {
		ev := sent(t, request(config(t, nil), "incident.incident.created", ``))
		require.NotContains(t, payloadOf(t, ev), "custom_details")
	})
	t.Run("over the 512 KB event limit", func(t *testing.T) {
		b, _ := json.Marshal(map[string]any{
			"title": "DB down", "n": 7,
			"log":  strings.Repeat("x", pagerduty.MaxEventBytes),
			"rows": []string{strings.Repeat("y", 1000)},
		})
		srv, got := fakePD(t, accepted)
		_, err := newDeliverer(t, srv.URL).Deliver(context.Background(), request(config(t, nil), "incident.incident.created", string(b)))
		require.NoError(t, err)
		r := <-got
		require.LessOrEqual(t, len(r.Body), pagerduty.MaxEventBytes)
		var ev map[string]any
		require.NoError(t, json.Unmarshal(r.Body, &ev))
		details := payloadOf(t, ev)["custom_details"].(map[string]any)
		require.Contains(t, details["outhook_truncated"], "512 KB")
		// The log string alone is over the limit: only a note is left.
		require.Len(t, details, 1)
		require.Equal(t, "Incident created: DB down", payloadOf(t, ev)["summary"])
	})
	t.Run("over the limit, scalars kept", func(t *testing.T) {
		rows := make([]string, 600)
		for i := range rows {
			rows[i] = strings.Repeat("y", 1000)
		}
		b, _ := json.Marshal(map[string]any{"title": "DB down", "n": 7, "rows": rows, "obj": map[string]int{"a": 1}})
		ev := sent(t, request(config(t, nil), "incident.incident.created", string(b)))
		details := payloadOf(t, ev)["custom_details"].(map[string]any)
		require.Equal(t, "DB down", details["title"])
		require.Equal(t, float64(7), details["n"])
		require.NotContains(t, details, "rows")
		require.NotContains(t, details, "obj")
		require.Contains(t, details, "outhook_truncated")
	})
}

func TestOutcomes(t *testing.T) {
	httpDate := now.Add(90 * time.Second).Format(http.TimeFormat)
	for _, tc := range []struct {
		name       string
		reply      reply
		wantKind   string // "ok", "permanent", "gone", "retry"
		retryAfter time.Duration
		wantErr    []string
	}{
		{"202", reply{Status: 202, Body: `{"status":"success","message":"Event processed","dedup_key":"srv01/HTTP"}`}, "ok", 0, nil},
		{"200 without a body", reply{Status: 200}, "ok", 0, nil},
		{"400 with errors", reply{Status: 400, Body: `{"status":"invalid event","message":"Event object is invalid","errors":["'payload.summary' is missing or blank"]}`},
			"permanent", 0, []string{"400 Bad Request", "Event object is invalid", "'payload.summary' is missing or blank"}},
		{"400 not JSON", reply{Status: 400, Body: `bad`}, "permanent", 0, []string{"400 Bad Request"}},
		{"401", reply{Status: 401}, "permanent", 0, []string{"401 Unauthorized"}},
		{"403", reply{Status: 403}, "permanent", 0, []string{"403 Forbidden"}},
		{"404", reply{Status: 404}, "permanent", 0, []string{"404 Not Found"}},
		{"410", reply{Status: 410}, "gone", 0, []string{"410 Gone"}},
		{"429 Retry-After seconds", reply{Status: 429, Header: map[string]string{"Retry-After": "30"}, Body: `{"status":"throttled","message":"Too many requests"}`},
			"retry", 30 * time.Second, []string{"429 Too Many Requests", "Too many requests"}},
		{"429 Retry-After date", reply{Status: 429, Header: map[string]string{"Retry-After": httpDate}}, "retry", 90 * time.Second, []string{"429"}},
		{"429 without Retry-After", reply{Status: 429}, "retry", 0, []string{"429"}},
		{"500", reply{Status: 500}, "retry", 0, []string{"500 Internal Server Error"}},
		{"502", reply{Status: 502}, "retry", 0, []string{"502"}},
		{"503 Retry-After", reply{Status: 503, Header: map[string]string{"Retry-After": "5"}}, "retry", 5 * time.Second, []string{"503"}},
		{"501", reply{Status: 501}, "permanent", 0, []string{"501"}},
		{"302", reply{Status: 302, Header: map[string]string{"Location": "https://example.com/"}}, "permanent", 0, []string{"302"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, got := fakePD(t, func(received) reply { return tc.reply })
			res, err := newDeliverer(t, srv.URL).Deliver(context.Background(), request(config(t, nil), "incident.incident.created", `{}`))
			<-got
			require.Equal(t, tc.reply.Status, res.StatusCode)
			require.Equal(t, tc.reply.Body, res.Response)
			assertOutcome(t, err, tc.wantKind, tc.retryAfter)
			for _, s := range tc.wantErr {
				require.Contains(t, err.Error(), s)
			}
			if tc.wantKind == "ok" {
				if tc.reply.Body == "" {
					require.Equal(t, "dlv_01HZX", res.ExternalID, "the sent dedup key when PagerDuty returns none")
				} else {
					require.Equal(t, "srv01/HTTP", res.ExternalID)
				}
			}
		})
	}
}

// assertOutcome checks how the core will read err.
func assertOutcome(t *testing.T, err error, kind string, retryAfter time.Duration) {
	t.Helper()
	if kind == "ok" {
		require.NoError(t, err)
		return
	}
	require.Error(t, err)
	var perm *outhook.PermanentError
	var gone *outhook.GoneError
	var ra *outhook.RetryAfterError
	require.Equal(t, kind == "permanent", errors.As(err, &perm), "permanent: %v", err)
	require.Equal(t, kind == "gone", errors.As(err, &gone), "gone: %v", err)
	require.Equal(t, retryAfter > 0, errors.As(err, &ra), "retry-after: %v", err)
	if retryAfter > 0 {
		require.Equal(t, retryAfter, ra.After)
	}
}

func TestNetworkErrors(t *testing.T) {
	t.Run("connection refused: retried", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		_, err := newDeliverer(t, url).Deliver(context.Background(), request(config(t, nil), "incident.incident.created", `{}`))
		assertOutcome(t, err, "retry", 0)
		require.NotContains(t, err.Error(), routingKey)
	})
	t.Run("blocked address: permanent", func(t *testing.T) {
		srv, _ := fakePD(t, accepted)
		d, err := pagerduty.New(&pagerduty.Options{BaseURL: srv.URL}) // the default client refuses loopback
		require.NoError(t, err)
		_, err = d.Deliver(context.Background(), request(config(t, nil), "incident.incident.created", `{}`))
		assertOutcome(t, err, "permanent", 0)
		require.ErrorIs(t, err, safehttp.ErrBlocked)
	})
	t.Run("canceled context", func(t *testing.T) {
		srv, _ := fakePD(t, accepted)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := newDeliverer(t, srv.URL).Deliver(ctx, request(config(t, nil), "incident.incident.created", `{}`))
		require.ErrorIs(t, err, context.Canceled)
	})
}

func TestRoutingKeyNeverLeaks(t *testing.T) {
	// A destination that echoes the key back in every part of its answer.
	echo := `{"status":"invalid event","message":"routing key ` + routingKey + ` is not valid","errors":["unknown key ` + routingKey + `"],"dedup_key":"` + routingKey + `"}`
	for _, status := range []int{400, 202, 429, 500} {
		srv, _ := fakePD(t, func(received) reply { return reply{Status: status, Body: echo} })
		res, err := newDeliverer(t, srv.URL).Deliver(context.Background(), request(config(t, nil), "incident.incident.created", `{}`))
		if err != nil {
			require.NotContains(t, err.Error(), routingKey)
		}
		require.NotContains(t, res.Response, routingKey)
		require.NotContains(t, res.ExternalID, routingKey)
		require.Contains(t, res.Response, "[redacted]")
	}

	// Invalid configs: the errors name fields, never the key.
	d := newDeliverer(t, "https://events.pagerduty.com")
	for _, raw := range []string{
		`{"routingKey": "` + routingKey + `x"}`,
		`{"routingKey": "` + routingKey[:31] + `"}`,
		`{"routingKey": "` + routingKey + `", "bogus": 1}`,
		`{"routingKey": "` + routingKey + `", "severity": "` + routingKey + `"}`,
		`{"routingKey": "` + routingKey + `", "summaryTemplate": "{{.` + routingKey + `"}`,
		`{"routingKey": ` + routingKey + `}`,
	} {
		err := d.ValidateConfig(json.RawMessage(raw))
		require.Error(t, err, raw)
		require.NotContains(t, err.Error(), routingKey[:20], raw)
	}
}

func TestValidateConfig(t *testing.T) {
	d := newDeliverer(t, "https://events.pagerduty.com")
	valid := []string{
		`{"routingKey": "` + routingKey + `"}`,
		`{"routingKey": "` + routingKey + `", "actions": [{"events": "incident.*.resolved", "action": "resolve"}, {"events": "**", "action": "trigger"}],
		  "dedupKeyField": "incident.id", "summaryTemplate": "{{.Event.DisplayName}}: {{.Payload.incident.title}}", "source": "s",
		  "severity": "critical", "severityField": "level", "severityMap": {"P1": "critical", "p2": "error"},
		  "component": "c", "group": "g", "class": "k"}`,
		`{"routingKey": "` + routingKey + `", "summaryTemplate": "{{range .Payload.items}}{{.name}}{{end}}"}`,
	}
	for _, raw := range valid {
		require.NoError(t, d.ValidateConfig(json.RawMessage(raw)), raw)
	}

	for _, tc := range []struct {
		name   string
		raw    string
		fields []string // the fields the error names; none: a decode error
		msg    string
	}{
		{"empty", `{}`, []string{"routingKey"}, "routingKey is required"},
		{"short key", `{"routingKey": "abc"}`, []string{"routingKey"}, "routingKey must be exactly 32 characters long"},
		{"unknown field", `{"routingKey": "` + routingKey + `", "routing_key": "x"}`, nil, `unknown field "routing_key"`},
		{"wrong type", `{"routingKey": "` + routingKey + `", "actions": {}}`, nil, "actions"},
		{"bad action", `{"routingKey": "` + routingKey + `", "actions": [{"events": "a.b", "action": "escalate"}]}`, []string{"actions[0].action"}, "actions[0].action must be one of [trigger acknowledge resolve]"},
		{"missing events", `{"routingKey": "` + routingKey + `", "actions": [{"action": "resolve"}]}`, []string{"actions[0].events"}, "actions[0].events is required"},
		{"bad pattern", `{"routingKey": "` + routingKey + `", "actions": [{"events": "a.b", "action": "resolve"}, {"events": "incident.**.x", "action": "resolve"}]}`, []string{"actions[1].events"}, `actions[1].events uses "**" before the last segment`},
		{"bad pattern characters", `{"routingKey": "` + routingKey + `", "actions": [{"events": "inc ident", "action": "resolve"}]}`, []string{"actions[0].events"}, "actions[0].events"},
		{"bad severity", `{"routingKey": "` + routingKey + `", "severity": "high"}`, []string{"severity"}, "severity must be one of [critical error warning info]"},
		{"bad severity map value", `{"routingKey": "` + routingKey + `", "severityField": "s", "severityMap": {"P1": "high"}}`, []string{"severityMap[P1]"}, "severityMap[P1] must be one of"},
		{"severity map without field", `{"routingKey": "` + routingKey + `", "severityMap": {"P1": "critical"}}`, []string{"severityMap"}, "severityMap needs severityField"},
		{"severity map clash", `{"routingKey": "` + routingKey + `", "severityField": "s", "severityMap": {"P1": "critical", "p1": "info"}}`, []string{"severityMap"}, "case-insensitively"},
		{"bad dedup path", `{"routingKey": "` + routingKey + `", "dedupKeyField": "incident..id"}`, []string{"dedupKeyField"}, "dedupKeyField must be field names"},
		{"bad severity path", `{"routingKey": "` + routingKey + `", "severityField": "."}`, []string{"severityField"}, "severityField must be field names"},
		{"template syntax", `{"routingKey": "` + routingKey + `", "summaryTemplate": "{{.Payload.title"}`, []string{"summaryTemplate"}, "summaryTemplate template: summaryTemplate:1: unclosed action"},
		{"template unknown field", `{"routingKey": "` + routingKey + `", "summaryTemplate": "{{.EventId}}"}`, []string{"summaryTemplate"}, "can't evaluate field EventId"},
		{"template unknown event field", `{"routingKey": "` + routingKey + `", "summaryTemplate": "{{.Event.Title}}"}`, []string{"summaryTemplate"}, "can't evaluate field Title"},
		{"template unknown function", `{"routingKey": "` + routingKey + `", "summaryTemplate": "{{upper .EventID}}"}`, []string{"summaryTemplate"}, `function "upper" not defined`},
		{"two errors", `{"routingKey": "` + routingKey + `", "dedupKeyField": "a..b", "summaryTemplate": "{{"}`, []string{"dedupKeyField", "summaryTemplate"}, "dedupKeyField"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := d.ValidateConfig(json.RawMessage(tc.raw))
			require.ErrorIs(t, err, outhook.ErrInvalidConfig)
			var ce *outhook.ConfigError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, pagerduty.ID, ce.Deliverer)
			var fields []string
			for _, f := range ce.Fields {
				fields = append(fields, f.Field)
			}
			require.Equal(t, tc.fields, fields)
			require.Contains(t, err.Error(), tc.msg)
		})
	}

	t.Run("an invalid config fails the delivery for good", func(t *testing.T) {
		srv, got := fakePD(t, accepted)
		_, err := newDeliverer(t, srv.URL).Deliver(context.Background(), request(json.RawMessage(`{"routingKey": "short"}`), "a.b", `{}`))
		assertOutcome(t, err, "permanent", 0)
		require.ErrorIs(t, err, outhook.ErrInvalidConfig)
		require.Empty(t, got, "nothing is sent")
	})
}

func TestNew(t *testing.T) {
	d, err := pagerduty.New(nil)
	require.NoError(t, err)
	require.Equal(t, "pagerduty", d.ID())
	for _, base := range []string{"ftp://events.pagerduty.com", "events.pagerduty.com", "https://events.pagerduty.com?x=1", "https://user:pw@events.pagerduty.com", "https://events.pagerduty.com#f", "::"} {
		_, err := pagerduty.New(&pagerduty.Options{BaseURL: base})
		require.Error(t, err, base)
		require.NotContains(t, err.Error(), "pw")
	}
}

func TestConfigSchemaGolden(t *testing.T) {
	d := newDeliverer(t, "https://events.pagerduty.com")
	got := d.ConfigSchema()
	require.True(t, json.Valid(got))
	path := filepath.Join("testdata", "config.schema.json")
	if *update {
		require.NoError(t, os.WriteFile(path, append(got, '\n'), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./pagerduty -run TestConfigSchemaGolden -update to create it")
	require.Equal(t, strings.TrimSpace(string(want)), strings.TrimSpace(string(got)))
}

func TestSendTest(t *testing.T) {
	var failing atomic.Bool
	srv, got := fakePD(t, func(r received) reply {
		if failing.Load() {
			return reply{Status: http.StatusBadRequest, Body: `{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect"]}`}
		}
		return accepted(r)
	})
	d := newDeliverer(t, srv.URL)
	c := outhooktest.NewClient(t, &outhook.Config{Deliverers: []outhook.Deliverer{d}})
	ctx := context.Background()
	cfg := config(t, map[string]any{
		"dedupKeyField": "incidentId", "severityField": "severity", "severityMap": map[string]string{"major": "critical"},
		"summaryTemplate": "{{.Payload.title}}",
		"actions":         []map[string]string{{"events": "incident.*.resolved", "action": "resolve"}},
	})
	sub, err := c.CreateSubscription(ctx, outhook.Subscription{Events: []string{"incident.**"}, DelivererID: pagerduty.ID, Config: cfg})
	require.NoError(t, err)

	a, err := c.SendTest(ctx, sub.ID)
	require.NoError(t, err)
	require.Equal(t, outhook.AttemptSucceeded, a.Outcome)
	require.Equal(t, outhook.TriggerTest, a.Trigger)
	require.Equal(t, http.StatusAccepted, a.StatusCode)
	require.NotContains(t, a.Response, routingKey)

	r := <-got
	var ev struct {
		RoutingKey  string `json:"routing_key"`
		EventAction string `json:"event_action"`
		DedupKey    string `json:"dedup_key"`
		Payload     struct {
			Summary       string         `json:"summary"`
			Source        string         `json:"source"`
			Severity      string         `json:"severity"`
			Timestamp     string         `json:"timestamp"`
			CustomDetails map[string]any `json:"custom_details"`
		} `json:"payload"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &ev))
	require.Equal(t, routingKey, ev.RoutingKey)
	require.Equal(t, "trigger", ev.EventAction)
	require.True(t, strings.HasPrefix(ev.DedupKey, "test_"), "the test delivery's ID: %s", ev.DedupKey)
	require.Equal(t, ev.DedupKey, a.ExternalID)
	require.Equal(t, "outhook.test: This is a test event from outhook: if you can read it, subscription "+sub.ID+" reaches its destination.", ev.Payload.Summary)
	require.Equal(t, "outhook", ev.Payload.Source)
	require.Equal(t, "error", ev.Payload.Severity)
	_, err = time.Parse(time.RFC3339Nano, ev.Payload.Timestamp)
	require.NoError(t, err)
	require.Equal(t, true, ev.Payload.CustomDetails["test"])
	require.Equal(t, sub.ID, ev.Payload.CustomDetails["subscriptionId"])

	// A failing destination: the attempt records PagerDuty's message, not the key.
	failing.Store(true)
	a, err = c.SendTest(ctx, sub.ID)
	<-got
	require.Error(t, err)
	require.Equal(t, outhook.AttemptPermanent, a.Outcome)
	require.Contains(t, a.Error, "Length of 'routing_key' is incorrect")
	require.NotContains(t, a.Error, routingKey)
}

func BenchmarkDeliver(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"status":"success","message":"Event processed","dedup_key":"inc_42"}`)
	}))
	defer srv.Close()
	d := newDeliverer(b, srv.URL)
	cfg := config(b, map[string]any{"dedupKeyField": "id", "summaryTemplate": "{{.Payload.title}}", "severityField": "sev", "severityMap": map[string]string{"major": "critical"}})
	req := request(cfg, "incident.incident.created", `{"id": "inc_42", "title": "Database down", "sev": "major", "systemIds": ["a", "b"]}`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Deliver(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}
