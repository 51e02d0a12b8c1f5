package teams_test

import (
	"context"
	"crypto/x509"
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
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
	"github.com/outhook/outhook/safehttp"
	"github.com/outhook/outhook/teams"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// The secret parts of the tests' webhook URL: they must never appear in an
// error or a recorded response.
const (
	sig        = "S3CR3TSIGnatur3xyzABC123"
	secretPath = "/workflows/0f1e2d3c4b5a/triggers/manual/paths/invoke"
	query      = "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=" + sig
)

var now = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

type received struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   []byte
}

type reply struct {
	Status int
	Header map[string]string
	Body   string
}

// workflow is a loopback TLS stand-in for a Workflows webhook.
type workflow struct {
	srv  *httptest.Server
	got  chan received
	hc   *safehttp.Client
	hook string // the webhook URL
}

func newWorkflow(t testing.TB, answer func(received) reply) *workflow {
	t.Helper()
	w := &workflow{got: make(chan received, 64)}
	w.srv = httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec := received{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body}
		w.got <- rec
		a := answer(rec)
		for k, v := range a.Header {
			rw.Header().Set(k, v)
		}
		rw.WriteHeader(a.Status)
		_, _ = io.WriteString(rw, a.Body)
	}))
	t.Cleanup(w.srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(w.srv.Certificate())
	hc, err := safehttp.New(&safehttp.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, RootCAs: pool})
	require.NoError(t, err)
	t.Cleanup(hc.Close)
	w.hc = hc
	w.hook = w.srv.URL + secretPath + query
	return w
}

func accepted(received) reply { return reply{Status: http.StatusAccepted} }

func (w *workflow) deliverer(t testing.TB) *teams.Deliverer {
	t.Helper()
	d, err := teams.New(&teams.Options{HTTP: w.hc, AllowAnyHost: true, Now: func() time.Time { return now }})
	require.NoError(t, err)
	return d
}

func (w *workflow) config(t testing.TB, extra map[string]any) json.RawMessage {
	t.Helper()
	cfg := map[string]any{"webhookUrl": w.hook}
	for k, v := range extra {
		cfg[k] = v
	}
	b, err := json.Marshal(cfg)
	require.NoError(t, err)
	return b
}

func request(cfg json.RawMessage, payload string) *outhook.DeliveryRequest {
	return &outhook.DeliveryRequest{
		DeliveryID:   "dlv_01HZX",
		MessageID:    "msg_01HZX",
		EventID:      "incident.incident.created",
		Event:        outhook.Event{ID: "incident.incident.created", DisplayName: "Incident created", Category: "incident"},
		Subscription: outhook.Subscription{ID: "sub_1", DelivererID: teams.ID, Config: cfg},
		Payload:      json.RawMessage(payload),
		OccurredAt:   time.Date(2026, 4, 30, 8, 42, 58, 315_000_000, time.FixedZone("CEST", 2*3600)),
		Attempt:      1,
	}
}

// Card is the part of a message tests look at.
type Card struct {
	Type        string `json:"type"`
	Attachments []struct {
		ContentType string `json:"contentType"`
		Content     struct {
			Body []struct {
				Type  string `json:"type"`
				Text  string `json:"text"`
				Size  string `json:"size"`
				Facts []struct {
					Title string `json:"title"`
					Value string `json:"value"`
				} `json:"facts"`
			} `json:"body"`
		} `json:"content"`
	} `json:"attachments"`
}

func (c *Card) texts() []string {
	var out []string
	for _, b := range c.Attachments[0].Content.Body {
		if b.Type == "TextBlock" {
			out = append(out, b.Text)
		}
	}
	return out
}

func (c *Card) facts() [][2]string {
	var out [][2]string
	for _, b := range c.Attachments[0].Content.Body {
		for _, f := range b.Facts {
			out = append(out, [2]string{f.Title, f.Value})
		}
	}
	return out
}

// sent delivers req to an accepting workflow and returns the raw body and
// the card it received.
func sent(t *testing.T, extra map[string]any, payload string, edit ...func(*outhook.DeliveryRequest)) ([]byte, *Card) {
	t.Helper()
	w := newWorkflow(t, accepted)
	req := request(w.config(t, extra), payload)
	for _, e := range edit {
		e(req)
	}
	_, err := w.deliverer(t).Deliver(context.Background(), req)
	require.NoError(t, err)
	r := <-w.got
	var c Card
	require.NoError(t, json.Unmarshal(r.Body, &c))
	return r.Body, &c
}

func TestWireFormat(t *testing.T) {
	w := newWorkflow(t, accepted)
	cfg := w.config(t, map[string]any{"textTemplate": "{{.Payload.title}} <on> {{.Payload.host}} & more"})
	payload := `{"title": "Database down", "host": "db-1", "systemIds": ["a", "b"], "count": 3, "ratio": 0.75, "ok": false,
		"owner": {"name": "x"}, "none": null, "empty": "", "mixed": [1, {"a": 1}], "big": 12345678901234567890}`
	res, err := w.deliverer(t).Deliver(context.Background(), request(cfg, payload))
	require.NoError(t, err)
	require.NotEmpty(t, res.RequestHeaders["Content-Type"], "the request headers are reported")
	require.NotNil(t, res.ResponseHeaders, "the response headers are reported")
	res.RequestHeaders, res.ResponseHeaders = nil, nil
	require.Equal(t, outhook.DeliveryResult{StatusCode: http.StatusAccepted}, res)

	r := <-w.got
	require.Equal(t, http.MethodPost, r.Method)
	require.Equal(t, secretPath, r.Path)
	require.Equal(t, query[1:], r.Query, "the query, sig included, is sent as configured")
	require.Equal(t, "application/json; charset=utf-8", r.Header.Get("Content-Type"))
	require.Equal(t, "outhook/"+safehttp.Version, r.Header.Get("User-Agent"))
	require.JSONEq(t, `{
		"type": "message",
		"attachments": [{
			"contentType": "application/vnd.microsoft.card.adaptive",
			"contentUrl": null,
			"content": {
				"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
				"type": "AdaptiveCard",
				"version": "1.4",
				"body": [
					{"type": "TextBlock", "text": "Incident created", "size": "Large", "weight": "Bolder", "wrap": true},
					{"type": "TextBlock", "text": "Database down <on> db-1 & more", "wrap": true},
					{"type": "FactSet", "facts": [
						{"title": "title", "value": "Database down"},
						{"title": "host", "value": "db-1"},
						{"title": "systemIds", "value": "a, b"},
						{"title": "count", "value": "3"},
						{"title": "ratio", "value": "0.75"},
						{"title": "ok", "value": "false"},
						{"title": "big", "value": "12345678901234567890"},
						{"title": "Event", "value": "incident.incident.created"},
						{"title": "Time", "value": "2026-04-30T06:42:58Z"}
					]}
				]
			}
		}]
	}`, string(r.Body))
	// The facts keep the payload's order, and <, > and & are not escaped.
	require.Contains(t, string(r.Body), `"facts":[{"title":"title","value":"Database down"},{"title":"host","value":"db-1"},{"title":"systemIds"`)
	require.Contains(t, string(r.Body), `<on> db-1 & more`)
}

func TestTitleAndText(t *testing.T) {
	for _, tc := range []struct {
		name        string
		extra       map[string]any
		displayName string
		payload     string
		want        []string // the TextBlocks
	}{
		{"display name", nil, "Incident created", `{"title": "x"}`, []string{"Incident created"}},
		{"event ID without display name", nil, "", `{}`, []string{"incident.incident.created"}},
		{"title template", map[string]any{"titleTemplate": "{{.Event.DisplayName}}: {{.Payload.incident.title}} [{{.Event.Category}}]"}, "Incident created",
			`{"incident": {"title": "DB down"}}`, []string{"Incident created: DB down [incident]"}},
		{"text template", map[string]any{"textTemplate": "Delivery {{.DeliveryID}} of {{.EventID}} at {{.OccurredAt.UTC.Format \"15:04\"}}"}, "Incident created",
			`{}`, []string{"Incident created", "Delivery dlv_01HZX of incident.incident.created at 06:42"}},
		{"missing field renders empty", map[string]any{"titleTemplate": "Down: {{.Payload.host}}!", "textTemplate": "[{{.Payload.nope}}]"}, "Incident created",
			`{}`, []string{"Down: !", "[]"}},
		{"blank renders: defaults", map[string]any{"titleTemplate": " {{.Payload.nope}} ", "textTemplate": "{{.Payload.nope}}"}, "Incident created",
			`{}`, []string{"Incident created"}},
		{"failing templates: defaults", map[string]any{"titleTemplate": "{{.Payload.a.b}}", "textTemplate": "{{.Payload.a.b}}"}, "Incident created",
			`{"a": "scalar"}`, []string{"Incident created"}},
		{"long title cut", map[string]any{"titleTemplate": "{{.Payload.t}}"}, "Incident created",
			`{"t": "` + strings.Repeat("ß", 600) + `"}`, []string{strings.Repeat("ß", 499) + "…"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, c := sent(t, tc.extra, tc.payload, func(r *outhook.DeliveryRequest) { r.Event.DisplayName = tc.displayName })
			require.Equal(t, tc.want, c.texts())
		})
	}
}

func TestFacts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload string
		want    [][2]string
	}{
		{"not an object", `["a", "b"]`, nil},
		{"empty", ``, nil},
		{"scalar", `"hello"`, nil},
		{"nested only", `{"a": {"b": 1}, "c": [{"d": 1}], "e": null, "f": []}`, nil},
		{"order kept", `{"z": 1, "a": 2, "m": "x"}`, [][2]string{{"z", "1"}, {"a", "2"}, {"m", "x"}}},
		{"array of scalars", `{"ids": [1, "two", true]}`, [][2]string{{"ids", "1, two, true"}}},
		{"array with null", `{"ids": [1, null]}`, nil},
		{"long value cut", `{"v": "` + strings.Repeat("x", 2500) + `"}`, [][2]string{{"v", strings.Repeat("x", 1999) + "…"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, c := sent(t, nil, tc.payload)
			want := append(tc.want, [2]string{"Event", "incident.incident.created"}, [2]string{"Time", "2026-04-30T06:42:58Z"})
			require.Equal(t, want, c.facts())
		})
	}

	t.Run("at most 50 payload facts", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("{")
		for i := range 60 {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `"f%02d": %d`, i, i)
		}
		b.WriteString("}")
		_, c := sent(t, nil, b.String())
		facts := c.facts()
		require.Len(t, facts, 50+3)
		require.Equal(t, [2]string{"f49", "49"}, facts[49])
		require.Equal(t, [2]string{"…", "10 more fields not shown"}, facts[50])
		require.Equal(t, "Event", facts[51][0])
	})

	t.Run("no time for a zero OccurredAt", func(t *testing.T) {
		_, c := sent(t, nil, `{}`, func(r *outhook.DeliveryRequest) { r.OccurredAt = time.Time{} })
		require.Equal(t, [][2]string{{"Event", "incident.incident.created"}}, c.facts())
	})
}

func TestSizeCap(t *testing.T) {
	check := func(t *testing.T, body []byte) {
		t.Helper()
		require.LessOrEqual(t, len(body), teams.MaxBodyBytes)
		require.True(t, json.Valid(body))
		require.True(t, utf8.Valid(body))
	}

	t.Run("many large fields: facts dropped from the end", func(t *testing.T) {
		fields := map[string]string{}
		var b strings.Builder
		b.WriteString("{")
		for i := range 40 {
			if i > 0 {
				b.WriteString(",")
			}
			v := strings.Repeat(string(rune('a'+i%26)), 1900)
			fields[fmt.Sprintf("f%02d", i)] = v
			fmt.Fprintf(&b, `"f%02d": %q`, i, v)
		}
		b.WriteString("}")
		body, c := sent(t, nil, b.String())
		check(t, body)
		require.Greater(t, len(body), teams.MaxBodyBytes-2000, "as many facts as fit are kept")
		facts := c.facts()
		n := len(facts) - 3
		require.Greater(t, n, 5)
		for i := range n {
			require.Equal(t, [2]string{fmt.Sprintf("f%02d", i), fields[fmt.Sprintf("f%02d", i)]}, facts[i], "the first facts are kept whole")
		}
		require.Equal(t, [2]string{"…", fmt.Sprintf("%d more fields not shown", 40-n)}, facts[n])
		require.Equal(t, [][2]string{{"Event", "incident.incident.created"}, {"Time", "2026-04-30T06:42:58Z"}}, facts[n+1:])
		require.Equal(t, []string{"Incident created"}, c.texts())
	})

	t.Run("huge text: facts dropped, then the text cut", func(t *testing.T) {
		// 8000 four-byte characters (the text's own cap) are over 28 KB.
		big := strings.Repeat("😀", 100_000)
		body, c := sent(t, map[string]any{"textTemplate": "{{.Payload.log}}"}, `{"log": "`+big+`", "n": 1}`)
		check(t, body)
		require.GreaterOrEqual(t, len(body), teams.MaxBodyBytes-8, "cut no more than needed")
		texts := c.texts()
		require.Len(t, texts, 2)
		require.Equal(t, "Incident created", texts[0])
		require.True(t, strings.HasSuffix(texts[1], "😀…"))
		require.Equal(t, [][2]string{{"…", "2 more fields not shown"}, {"Event", "incident.incident.created"}, {"Time", "2026-04-30T06:42:58Z"}}, c.facts())
	})

	t.Run("long text within the cap: only the text's own limit", func(t *testing.T) {
		big := strings.Repeat("é", 100_000)
		body, c := sent(t, map[string]any{"textTemplate": "{{.Payload.log}}"}, `{"log": "`+big+`", "n": 1}`)
		check(t, body)
		require.Equal(t, strings.Repeat("é", 7999)+"…", c.texts()[1])
		require.Equal(t, [2]string{"log", strings.Repeat("é", 1999) + "…"}, c.facts()[0])
		require.Equal(t, [2]string{"n", "1"}, c.facts()[1])
	})

	t.Run("text that JSON escapes six times over", func(t *testing.T) {
		big := strings.Repeat(`\u0001`, 8000)
		body, c := sent(t, map[string]any{"textTemplate": "{{.Payload.log}}", "titleTemplate": "{{.Payload.log}}"}, `{"log": "`+big+`"}`)
		check(t, body)
		require.GreaterOrEqual(t, len(body), teams.MaxBodyBytes-10, "cut no more than needed")
		texts := c.texts()
		require.Len(t, texts, 2)
		require.Equal(t, strings.Repeat("\x01", 499)+"…", texts[0])
		require.True(t, strings.HasSuffix(texts[1], "\x01…"))
	})

	t.Run("huge title: cut to 500 characters", func(t *testing.T) {
		big := strings.Repeat(`\u0002`, 8000)
		body, c := sent(t, map[string]any{"titleTemplate": "{{.Payload.log}}"}, `{"log": "`+big+`"}`)
		check(t, body)
		require.True(t, strings.HasSuffix(c.texts()[0], "\x02…"))
	})
}

func TestOutcomes(t *testing.T) {
	httpDate := now.Add(2 * time.Minute).Format(http.TimeFormat)
	for _, tc := range []struct {
		name       string
		reply      reply
		kind       string // "ok", "permanent", "gone", "retry"
		retryAfter time.Duration
		wantErr    []string
	}{
		{"200", reply{Status: 200, Body: "1"}, "ok", 0, nil},
		{"202", reply{Status: 202}, "ok", 0, nil},
		{"400", reply{Status: 400, Body: `{"error":{"code":"InvalidRequestContent","message":"The input body for trigger 'manual' of type 'Request' must be of type JSON."}}`},
			"permanent", 0, []string{"400 Bad Request", "InvalidRequestContent: The input body for trigger 'manual'"}},
		{"401", reply{Status: 401, Body: `{"error":{"code":"DirectApiAuthorizationRequired","message":"The request must be authenticated only by Shared Access scheme."}}`},
			"permanent", 0, []string{"401 Unauthorized", "DirectApiAuthorizationRequired"}},
		{"403", reply{Status: 403}, "permanent", 0, []string{"403 Forbidden"}},
		{"404: workflow deleted", reply{Status: 404, Body: `{"error":{"code":"WorkflowNotFound","message":"The workflow was not found."}}`}, "gone", 0, []string{"404 Not Found", "WorkflowNotFound"}},
		{"410", reply{Status: 410}, "gone", 0, []string{"410 Gone"}},
		{"413", reply{Status: 413}, "permanent", 0, []string{"413"}},
		{"429 Retry-After seconds", reply{Status: 429, Header: map[string]string{"Retry-After": "17"}}, "retry", 17 * time.Second, []string{"429 Too Many Requests"}},
		{"429 Retry-After date", reply{Status: 429, Header: map[string]string{"Retry-After": httpDate}}, "retry", 2 * time.Minute, []string{"429"}},
		{"429 without Retry-After", reply{Status: 429}, "retry", 0, []string{"429"}},
		{"500", reply{Status: 500}, "retry", 0, []string{"500 Internal Server Error"}},
		{"502", reply{Status: 502}, "retry", 0, []string{"502"}},
		{"503 Retry-After", reply{Status: 503, Header: map[string]string{"Retry-After": "3"}}, "retry", 3 * time.Second, []string{"503"}},
		{"501", reply{Status: 501}, "permanent", 0, []string{"501"}},
		{"307", reply{Status: 307, Header: map[string]string{"Location": "https://example.com/"}}, "permanent", 0, []string{"307"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorkflow(t, func(received) reply { return tc.reply })
			res, err := w.deliverer(t).Deliver(context.Background(), request(w.config(t, nil), `{}`))
			<-w.got
			require.Equal(t, tc.reply.Status, res.StatusCode)
			require.Equal(t, tc.reply.Body, res.Response)
			assertOutcome(t, err, tc.kind, tc.retryAfter)
			for _, s := range tc.wantErr {
				require.Contains(t, err.Error(), s)
			}
			if err != nil {
				require.NotContains(t, err.Error(), sig)
				require.NotContains(t, err.Error(), secretPath)
				require.Contains(t, err.Error(), "POST "+w.srv.URL+"/[redacted]")
			}
		})
	}
}

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

func TestSecretsNeverLeak(t *testing.T) {
	t.Run("echoed in answers", func(t *testing.T) {
		for _, status := range []int{200, 400, 401, 404, 429, 500} {
			var hook string
			w := newWorkflow(t, func(received) reply {
				return reply{Status: status, Body: `{"error":{"code":"Bad` + sig + `","message":"url ` + hook + ` path ` + secretPath + ` sig=` + sig + `"}}`}
			})
			hook = w.hook
			res, err := w.deliverer(t).Deliver(context.Background(), request(w.config(t, nil), `{}`))
			for _, s := range []string{sig, secretPath, "0f1e2d3c4b5a"} {
				require.NotContains(t, res.Response, s, status)
				if err != nil {
					require.NotContains(t, err.Error(), s, status)
				}
			}
			require.Contains(t, res.Response, "[redacted]")
		}
	})

	t.Run("connection refused", func(t *testing.T) {
		w := newWorkflow(t, accepted)
		d := w.deliverer(t)
		cfg := w.config(t, nil)
		w.srv.Close()
		_, err := d.Deliver(context.Background(), request(cfg, `{}`))
		assertOutcome(t, err, "retry", 0)
		require.NotContains(t, err.Error(), sig)
		require.NotContains(t, err.Error(), secretPath)
		require.Contains(t, err.Error(), "/[redacted]")
		var se *safehttp.Error
		require.ErrorAs(t, err, &se)
		require.Equal(t, outhook.ErrorClassConnect, string(se.Class))
	})

	t.Run("blocked address", func(t *testing.T) {
		w := newWorkflow(t, accepted)
		d, err := teams.New(&teams.Options{AllowAnyHost: true}) // the default client refuses loopback
		require.NoError(t, err)
		_, err = d.Deliver(context.Background(), request(w.config(t, nil), `{}`))
		assertOutcome(t, err, "permanent", 0)
		require.ErrorIs(t, err, safehttp.ErrBlocked)
		require.NotContains(t, err.Error(), sig)
		require.NotContains(t, err.Error(), secretPath)
	})

	t.Run("real hosts are redacted too", func(t *testing.T) {
		// Nothing listens there: DNS fails or the guard refuses; either way
		// the error shows the host only.
		hc, err := safehttp.New(&safehttp.Config{Resolver: safehttp.LookupFunc(func(context.Context, string, string) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr("10.0.0.1")}, nil
		})})
		require.NoError(t, err)
		t.Cleanup(hc.Close)
		d, err := teams.New(&teams.Options{HTTP: hc})
		require.NoError(t, err)
		hook := "https://prod-12.westus.logic.azure.com:443" + secretPath + query
		_, err = d.Deliver(context.Background(), request(json.RawMessage(`{"webhookUrl": "`+hook+`"}`), `{}`))
		require.Error(t, err)
		require.Contains(t, err.Error(), "https://prod-12.westus.logic.azure.com:443/[redacted]")
		require.NotContains(t, err.Error(), sig)
		require.NotContains(t, err.Error(), "0f1e2d3c4b5a")
	})
}

func TestValidateConfig(t *testing.T) {
	strict, err := teams.New(nil)
	require.NoError(t, err)
	for _, hook := range []string{
		"https://prod-12.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=" + sig,
		"https://default0a1b2c3d.4e.environment.api.powerplatform.com:443/powerautomate/automations/direct/workflows/abc/triggers/manual/paths/invoke?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=" + sig,
		"https://contoso.webhook.office.com/webhookb2/abc@def/IncomingWebhook/123/456",
		"https://PROD-1.WESTUS.LOGIC.AZURE.COM/workflows/abc",
	} {
		require.NoError(t, strict.ValidateConfig(json.RawMessage(`{"webhookUrl": "`+hook+`"}`)), hook)
	}

	for _, tc := range []struct {
		name   string
		d      *teams.Deliverer
		raw    string
		fields []string
		msg    string
	}{
		{"empty", strict, `{}`, []string{"webhookUrl"}, "webhookUrl is required"},
		{"not a URL", strict, `{"webhookUrl": "prod.logic.azure.com/x?sig=` + sig + `"}`, []string{"webhookUrl"}, "webhookUrl must be a valid HTTPS URL"},
		{"plain http", strict, `{"webhookUrl": "http://prod.logic.azure.com/workflows/x?sig=` + sig + `"}`, []string{"webhookUrl"}, "webhookUrl must be a valid HTTPS URL"},
		{"other host", strict, `{"webhookUrl": "https://example.com/workflows/x?sig=` + sig + `"}`, []string{"webhookUrl"}, `webhookUrl host "example.com" is not a Teams Workflows host (*.logic.azure.com, *.powerplatform.com, *.webhook.office.com)`},
		{"lookalike host", strict, `{"webhookUrl": "https://logic.azure.com.evil.example/workflows/x?sig=` + sig + `"}`, []string{"webhookUrl"}, "is not a Teams Workflows host"},
		{"suffix without a dot", strict, `{"webhookUrl": "https://evillogic.azure.com/workflows/x?sig=` + sig + `"}`, []string{"webhookUrl"}, "is not a Teams Workflows host"},
		{"bare suffix", strict, `{"webhookUrl": "https://logic.azure.com/workflows/x?sig=` + sig + `"}`, []string{"webhookUrl"}, "is not a Teams Workflows host"},
		{"loopback", strict, `{"webhookUrl": "https://127.0.0.1:8443/workflows/x?sig=` + sig + `"}`, []string{"webhookUrl"}, "is not a Teams Workflows host"},
		{"credentials", strict, `{"webhookUrl": "https://me:` + sig + `@prod.logic.azure.com/x"}`, []string{"webhookUrl"}, "webhookUrl must not contain credentials"},
		{"unknown field", strict, `{"webhookUrl": "https://prod.logic.azure.com/x", "url": "y"}`, nil, `unknown field "url"`},
		{"title template", strict, `{"webhookUrl": "https://prod.logic.azure.com/x", "titleTemplate": "{{.Payload.title"}`, []string{"titleTemplate"}, "titleTemplate template: titleTemplate:1: unclosed action"},
		{"text template field", strict, `{"webhookUrl": "https://prod.logic.azure.com/x", "textTemplate": "{{.Event.Name}}"}`, []string{"textTemplate"}, "can't evaluate field Name"},
		{"everything wrong", strict, `{"webhookUrl": "https://example.com/?sig=` + sig + `", "titleTemplate": "{{", "textTemplate": "{{end}}"}`, []string{"webhookUrl", "titleTemplate", "textTemplate"}, "webhookUrl host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.d.ValidateConfig(json.RawMessage(tc.raw))
			require.ErrorIs(t, err, outhook.ErrInvalidConfig)
			var ce *outhook.ConfigError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, teams.ID, ce.Deliverer)
			var fields []string
			for _, f := range ce.Fields {
				fields = append(fields, f.Field)
			}
			require.Equal(t, tc.fields, fields)
			require.Contains(t, err.Error(), tc.msg)
			require.NotContains(t, err.Error(), sig)
			require.NotContains(t, err.Error(), "/workflows/x")
		})
	}

	t.Run("AllowAnyHost", func(t *testing.T) {
		d, err := teams.New(&teams.Options{AllowAnyHost: true})
		require.NoError(t, err)
		require.NoError(t, d.ValidateConfig(json.RawMessage(`{"webhookUrl": "https://127.0.0.1:8443/workflows/x?sig=s"}`)))
		require.Error(t, d.ValidateConfig(json.RawMessage(`{"webhookUrl": "http://127.0.0.1:8443/workflows/x?sig=s"}`)), "https is still required")
	})

	t.Run("an invalid config fails the delivery for good", func(t *testing.T) {
		w := newWorkflow(t, accepted)
		d, err := teams.New(&teams.Options{HTTP: w.hc})
		require.NoError(t, err)
		_, err = d.Deliver(context.Background(), request(w.config(t, nil), `{}`))
		assertOutcome(t, err, "permanent", 0)
		require.ErrorIs(t, err, outhook.ErrInvalidConfig)
		require.Empty(t, w.got, "nothing is sent")
	})
}

func TestConfigSchemaGolden(t *testing.T) {
	d, err := teams.New(nil)
	require.NoError(t, err)
	require.Equal(t, "teams", d.ID())
	got := d.ConfigSchema()
	require.True(t, json.Valid(got))
	path := filepath.Join("testdata", "config.schema.json")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, append(got, '\n'), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./teams -run TestConfigSchemaGolden -update to create it")
	require.Equal(t, strings.TrimSpace(string(want)), strings.TrimSpace(string(got)))
}

func TestSendTest(t *testing.T) {
	var failing atomic.Bool
	w := newWorkflow(t, func(received) reply {
		if failing.Load() {
			return reply{Status: http.StatusNotFound, Body: `{"error":{"code":"WorkflowNotFound","message":"The workflow was not found."}}`}
		}
		return reply{Status: http.StatusAccepted}
	})
	c := outhooktest.NewClient(t, &outhook.Config{Deliverers: []outhook.Deliverer{w.deliverer(t)}})
	ctx := context.Background()
	sub, err := c.CreateSubscription(ctx, outhook.Subscription{Events: []string{"incident.**"}, DelivererID: teams.ID,
		Config: w.config(t, map[string]any{"titleTemplate": "{{.Payload.title}}", "textTemplate": "{{.Payload.message}}"})})
	require.NoError(t, err)

	a, err := c.SendTest(ctx, sub.ID)
	require.NoError(t, err)
	require.Equal(t, outhook.AttemptSucceeded, a.Outcome)
	require.Equal(t, outhook.TriggerTest, a.Trigger)
	require.Equal(t, http.StatusAccepted, a.StatusCode)

	r := <-w.got
	var card Card
	require.NoError(t, json.Unmarshal(r.Body, &card))
	msg := "This is a test event from outhook: if you can read it, subscription " + sub.ID + " reaches its destination."
	require.Equal(t, []string{"outhook.test", msg}, card.texts(), "no title field in the test payload: the event ID")
	facts := card.facts()
	require.Equal(t, [][2]string{{"message", msg}, {"subscriptionId", sub.ID}, {"test", "true"}, {"Event", "outhook.test"}}, facts[:4])
	require.Equal(t, "Time", facts[4][0])

	// The workflow is deleted: the attempt fails for good, the URL hidden.
	failing.Store(true)
	a, err = c.SendTest(ctx, sub.ID)
	<-w.got
	require.Error(t, err)
	var gone *outhook.GoneError
	require.ErrorAs(t, err, &gone)
	require.Equal(t, outhook.AttemptPermanent, a.Outcome)
	require.Equal(t, http.StatusNotFound, a.StatusCode)
	require.Contains(t, a.Error, "WorkflowNotFound")
	require.NotContains(t, a.Error, sig)
	require.NotContains(t, a.Error, secretPath)
}

func BenchmarkDeliver(b *testing.B) {
	w := newWorkflow(b, accepted)
	d := w.deliverer(b)
	req := request(w.config(b, map[string]any{"titleTemplate": "{{.Event.DisplayName}}: {{.Payload.title}}"}),
		`{"id": "inc_42", "title": "Database down", "severity": "major", "systemIds": ["a", "b"], "owner": {"name": "x"}}`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Deliver(ctx, req); err != nil {
			b.Fatal(err)
		}
		<-w.got
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}

func BenchmarkFitHugePayload(b *testing.B) {
	w := newWorkflow(b, accepted)
	d := w.deliverer(b)
	var sb strings.Builder
	sb.WriteString("{")
	for i := range 200 {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `"f%03d": %q`, i, strings.Repeat("v", 1500))
	}
	sb.WriteString("}")
	req := request(w.config(b, map[string]any{"textTemplate": "{{.Payload.f000}}{{.Payload.f001}}"}), sb.String())
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Deliver(ctx, req); err != nil {
			b.Fatal(err)
		}
		<-w.got
	}
}
