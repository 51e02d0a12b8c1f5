package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/httpoutcome"
	"github.com/outhook/outhook/safehttp"
)

// ID is the deliverer's stable ID in subscriptions.
const ID = "slack"

// Hosts of Slack incoming webhooks: the commercial one and GovSlack's.
var webhookHosts = []string{"hooks.slack.com", "hooks.slack-gov.com"}

// Config is a subscription's configuration of the Slack deliverer.
type Config struct {
	WebhookURL   string `json:"webhookUrl" validate:"required,url,max=2048" jsonschema:"writeOnly=true" description:"Incoming webhook URL of a Slack app, https://hooks.slack.com/services/T.../B.../.... A secret: it is never shown in errors or attempt records."`
	TextTemplate string `json:"textTemplate,omitempty" validate:"omitempty,max=10000" description:"Go text/template whose output (Slack mrkdwn) replaces the default fields section and the notification text. Data: .EventID, .Event.DisplayName, .Event.Category, .DeliveryID, .OccurredAt, .Payload.<field>; a missing field renders empty; {{escape .Payload.x}} neutralises Slack markup in a value. Default: the payload's top-level fields."`
}

// Options are process-level options of the deliverer. A nil *Options means
// the defaults.
type Options struct {
	// HTTP sends the requests. Nil means safehttp.New(nil): public
	// addresses only, 15 s timeout.
	HTTP *safehttp.Client
	// Now returns the current time, for Retry-After dates. Nil means
	// time.Now.
	Now func() time.Time
	// AllowAnyHost accepts webhook URLs on any http or https host, not only
	// https://hooks.slack.com/services/...: for tests against a loopback
	// server, or a Slack-compatible chat server. The HTTP client's SSRF
	// guard still applies.
	AllowAnyHost bool
}

// Deliverer posts events to Slack incoming webhooks. It is safe for
// concurrent use.
type Deliverer struct {
	http         *safehttp.Client
	now          func() time.Time
	allowAnyHost bool
	codec        *outhook.ConfigCodec[Config]
}

var _ outhook.Deliverer = (*Deliverer)(nil)

// New returns a Slack deliverer.
func New(opts *Options) (*Deliverer, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.HTTP == nil {
		c, err := safehttp.New(nil)
		if err != nil {
			return nil, fmt.Errorf("slack: %w", err)
		}
		o.HTTP = c
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	codec, err := outhook.NewConfigCodec[Config](ID)
	if err != nil {
		return nil, fmt.Errorf("slack: %w", err)
	}
	return &Deliverer{http: o.HTTP, now: o.Now, allowAnyHost: o.AllowAnyHost, codec: codec}, nil
}

// ID returns "slack".
func (d *Deliverer) ID() string { return ID }

// ConfigSchema returns the JSON Schema of Config.
func (d *Deliverer) ConfigSchema() json.RawMessage { return d.codec.Schema() }

// ValidateConfig checks a subscription's configuration: the fields' rules,
// that webhookUrl is a Slack incoming webhook URL, and that textTemplate
// parses. Errors are *outhook.ConfigError naming the field; none of them
// quotes the URL.
func (d *Deliverer) ValidateConfig(raw json.RawMessage) error {
	_, _, err := d.load(raw)
	return err
}

// load decodes and checks a config and parses its template (nil when there
// is none).
func (d *Deliverer) load(raw json.RawMessage) (Config, *template.Template, error) {
	cfg, err := d.codec.Decode(raw)
	if err != nil {
		return Config{}, nil, err
	}
	var fields []outhook.FieldError
	if fe := d.checkURL(cfg.WebhookURL); fe != nil {
		fields = append(fields, *fe)
	}
	tmpl, err := parseTemplate("textTemplate", cfg.TextTemplate)
	if err != nil {
		fields = append(fields, outhook.FieldError{Field: "textTemplate", Rule: "template", Message: "textTemplate: " + err.Error()})
	}
	if len(fields) > 0 {
		return Config{}, nil, &outhook.ConfigError{Deliverer: ID, Fields: fields}
	}
	return cfg, tmpl, nil
}

// checkURL checks webhookUrl. Its messages never quote the URL, which is a
// secret (url.Parse's errors do quote it, so they are not passed on).
func (d *Deliverer) checkURL(raw string) *outhook.FieldError {
	bad := func(rule, msg string) *outhook.FieldError {
		return &outhook.FieldError{Field: "webhookUrl", Rule: rule, Message: "webhookUrl " + msg}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return bad("url", "must be a valid URL")
	}
	if u.User != nil {
		return bad("url", "must not contain a user name or password")
	}
	if d.allowAnyHost {
		if u.Scheme != "https" && u.Scheme != "http" {
			return bad("url", "must be an http or https URL")
		}
		return nil
	}
	if u.Scheme != "https" {
		return bad("https", "must be an https URL")
	}
	host := strings.ToLower(u.Hostname())
	if !slices.Contains(webhookHosts, host) || u.Port() != "" {
		return bad("host", "must be a Slack incoming webhook URL on hooks.slack.com")
	}
	// https://api.slack.com/messaging/webhooks: incoming webhook URLs are
	// https://hooks.slack.com/services/T.../B.../<token>. Workflow Builder
	// URLs (/triggers/..., /workflows/...) take variables, not messages.
	rest, ok := strings.CutPrefix(u.EscapedPath(), "/services/")
	if !ok || strings.Trim(rest, "/") == "" {
		return bad("path", "must be an incoming webhook URL (https://hooks.slack.com/services/...); workflow webhook URLs are not supported")
	}
	return nil
}

// Deliver posts one message for req to the subscription's webhook. The
// outcome follows the shared HTTP mapping (package doc), with 404 as well as
// 410 meaning the webhook or its channel is gone.
func (d *Deliverer) Deliver(ctx context.Context, req *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	cfg, tmpl, err := d.load(req.Subscription.Config)
	if err != nil {
		return outhook.DeliveryResult{}, outhook.Permanent(err)
	}
	t := newTarget(cfg.WebhookURL)

	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false) // Slack reads JSON, not HTML: keep < > & as they are
	if err := enc.Encode(render(req, tmpl)); err != nil {
		return outhook.DeliveryResult{}, outhook.Permanent(fmt.Errorf("slack: encode message: %w", err))
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.WebhookURL, &body)
	if err != nil {
		// Not wrapped: the error of url.Parse quotes the URL.
		return outhook.DeliveryResult{}, outhook.Permanent(fmt.Errorf("slack: cannot build a request for %s", t.display))
	}
	hreq.Header.Set("Content-Type", "application/json")

	resp, err := d.http.Do(ctx, hreq)
	if err != nil {
		t.annotate(err, "")
		return httpoutcome.Request(hreq, httpoutcome.Policy{Secrets: t.secrets}), httpoutcome.FromError(err)
	}
	return d.outcome(hreq, resp, t)
}

// outcome classifies Slack's answer. Slack answers 200 "ok"; its errors are
// a short string in the body, such as "invalid_payload", which goes into
// both the error and the result. Per Slack's changelog
// (https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks)
// 200 is success and every other status a failure: 400 invalid_payload,
// 403 action_prohibited, 404 channel_not_found, 410 channel_is_archived,
// 500 rollup_error.
func (d *Deliverer) outcome(hreq *http.Request, resp *safehttp.Response, t target) (outhook.DeliveryResult, error) {
	text := t.scrub(string(resp.Body))
	res, err := httpoutcome.FromResponse(hreq, resp, httpoutcome.Policy{
		// 404 is channel_not_found, no_service (the webhook was removed)
		// or no_team: the destination no longer exists.
		Gone:    []int{http.StatusNotFound},
		Now:     d.now,
		Secrets: t.secrets,
	})
	res.Response = text
	if err != nil {
		t.annotate(err, errorDetail(text))
	}
	return res, err
}

// errorDetail is the part of an error body that goes into the error text:
// its first line, cut to 200 characters. Slack's bodies are one short word.
func errorDetail(body string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(body), "\n")
	return truncate(strings.ToValidUTF8(strings.TrimSpace(line), "\uFFFD"), 200)
}

// target is what may be shown of a webhook URL, and what must not.
type target struct {
	// display is the URL with its secret path replaced by "[redacted]".
	display string
	// secrets are the strings to scrub from response bodies.
	secrets []string
}

// newTarget splits a webhook URL into its displayable and secret parts: the
// first path segment ("services") is kept, the rest is a secret, whatever
// the host (safehttp.Redact does the same for hooks.slack.com only, and
// tests post to loopback).
func newTarget(raw string) target {
	u, err := url.Parse(raw)
	if err != nil {
		return target{display: "[unparseable URL]"}
	}
	path := strings.TrimPrefix(u.EscapedPath(), "/")
	first, rest, _ := strings.Cut(path, "/")
	t := target{display: u.Scheme + "://" + u.Host + "/" + first}
	if rest = strings.Trim(rest, "/"); rest != "" {
		t.display += "/[redacted]"
		t.secrets = append(t.secrets, rest)
		if unesc, err := url.PathUnescape(rest); err == nil && unesc != rest {
			t.secrets = append(t.secrets, unesc)
		}
		// The token alone (the last segment), should a body quote it.
		segs := strings.Split(rest, "/")
		if last := segs[len(segs)-1]; len(last) >= 8 && last != rest {
			t.secrets = append(t.secrets, last)
		}
	}
	if first == "" && rest == "" {
		t.display = u.Scheme + "://" + u.Host
	}
	slices.SortFunc(t.secrets, func(a, b string) int { return len(b) - len(a) }) // longest first
	return t
}

// scrub replaces the secrets in s.
func (t target) scrub(s string) string {
	for _, sec := range t.secrets {
		s = strings.ReplaceAll(s, sec, "[redacted]")
	}
	return s
}

// annotate puts the redacted URL, and Slack's error string if any, into the
// *safehttp.Error in err's chain. That error is new for each request, so
// changing it is safe.
func (t target) annotate(err error, detail string) {
	se, ok := errors.AsType[*safehttp.Error](err)
	if !ok {
		return
	}
	se.URL = t.display
	if detail != "" {
		se.Err = fmt.Errorf("%w: %s", se.Err, detail)
	}
}
