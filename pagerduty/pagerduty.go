package pagerduty

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/template"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/httpoutcome"
	"github.com/outhook/outhook/internal/ident"
	shared "github.com/outhook/outhook/internal/render"
	"github.com/outhook/outhook/safehttp"
)

// ID is the deliverer's stable ID in subscriptions.
const ID = "pagerduty"

// DefaultBaseURL is the Events API v2 host; events go to DefaultBaseURL +
// "/v2/enqueue".
const DefaultBaseURL = "https://events.pagerduty.com"

// Limits of the Events API v2
// (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/ and
// https://developer.pagerduty.com/docs/events-api-v2/overview/).
const (
	// RoutingKeyLength is the length of an integration's routing key.
	RoutingKeyLength = 32
	// MaxSummary is the most characters (runes) payload.summary may have.
	MaxSummary = 1024
	// MaxDedupKey is the most characters dedup_key may have.
	MaxDedupKey = 255
	// MaxEventBytes is the size limit of one event ("Events API payloads are
	// limited to 512 KB"). A larger custom_details is replaced by a note
	// and the payload's top-level scalar fields.
	MaxEventBytes = 512 << 10
)

// Event actions (event_action).
const (
	ActionTrigger     = "trigger"
	ActionAcknowledge = "acknowledge"
	ActionResolve     = "resolve"
)

// Severities (payload.severity).
const (
	SeverityCritical = "critical"
	SeverityError    = "error"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
)

// DefaultSource is payload.source when the config sets none.
const DefaultSource = "outhook"

// maxTemplateOutput caps what the summary template may write before the
// summary is cut to MaxSummary characters.
const maxTemplateOutput = 8 << 10

// Config is a subscription's configuration of the PagerDuty deliverer.
type Config struct {
	RoutingKey      string            `json:"routingKey" validate:"required,len=32" jsonschema:"writeOnly=true" description:"Integration key (32 characters) of an Events API v2 integration on a PagerDuty service or ruleset. A secret: never shown in errors or attempt records."`
	Actions         []ActionRule      `json:"actions,omitempty" validate:"omitempty,max=50,dive" description:"Ordered rules choosing the event_action of each event: the first rule whose pattern matches the event ID wins. Events no rule matches (and every event when there are no rules) trigger."`
	DedupKeyField   string            `json:"dedupKeyField,omitempty" validate:"omitempty,max=256" description:"Dot path of the payload field whose value is the dedup_key, such as incidentId or incident.id, so that the trigger and the resolve of one incident pair up. When unset, or when the field is missing or not a scalar, the delivery ID is used."`
	SummaryTemplate string            `json:"summaryTemplate,omitempty" validate:"omitempty,max=4096" description:"Go text/template for payload.summary, with .EventID, .Event.DisplayName, .Event.Category, .DeliveryID, .OccurredAt and .Payload.<field>. Cut to 1024 characters. Default: the event's display name (or ID) and the payload's title, summary, name or message field."`
	Source          string            `json:"source,omitempty" validate:"omitempty,max=1024" description:"payload.source: the affected system, such as a host name. Default: outhook."`
	Severity        string            `json:"severity,omitempty" validate:"omitempty,oneof=critical error warning info" description:"payload.severity when severityField gives none. Default: error."`
	SeverityField   string            `json:"severityField,omitempty" validate:"omitempty,max=256" description:"Dot path of the payload field that gives the severity, mapped through severityMap (case-insensitive); a value that is itself critical, error, warning or info is used as is, any other falls back to severity."`
	SeverityMap     map[string]string `json:"severityMap,omitempty" validate:"omitempty,max=100,dive,oneof=critical error warning info" description:"Maps values of severityField (compared case-insensitively) to critical, error, warning or info."`
	Component       string            `json:"component,omitempty" validate:"omitempty,max=1024" description:"payload.component: the part of the source that is affected, such as mysql."`
	Group           string            `json:"group,omitempty" validate:"omitempty,max=1024" description:"payload.group: a logical grouping of components, such as app-stack."`
	Class           string            `json:"class,omitempty" validate:"omitempty,max=1024" description:"payload.class: the class or type of the event, such as ping failure."`
}

// ActionRule maps the events that match a pattern to an event action.
type ActionRule struct {
	Events string `json:"events" validate:"required,max=255" description:"Event ID or pattern: * stands for exactly one segment, a final ** for the rest (incident.*.resolved, incident.**)."`
	Action string `json:"action" validate:"required,oneof=trigger acknowledge resolve" description:"The event_action to send: trigger, acknowledge or resolve."`
}

// Options configures the deliverer for the whole process. A nil *Options
// means the defaults.
type Options struct {
	// HTTP sends the requests. Nil means safehttp.New(nil), which refuses
	// every non-public address.
	HTTP *safehttp.Client
	// Now gives the time for Retry-After dates. Nil means time.Now.
	Now func() time.Time
	// BaseURL is the Events API host, DefaultBaseURL when empty. Tests point
	// it at a local server.
	BaseURL string
}

// Deliverer sends events to PagerDuty. It is safe for concurrent use.
type Deliverer struct {
	http     *safehttp.Client
	now      func() time.Time
	endpoint string
	codec    *outhook.ConfigCodec[Config]
}

var _ outhook.Deliverer = (*Deliverer)(nil)

// New returns a PagerDuty deliverer. It fails when opts.BaseURL is not an
// absolute http or https URL without query or fragment.
func New(opts *Options) (*Deliverer, error) {
	if opts == nil {
		opts = &Options{}
	}
	d := &Deliverer{http: opts.HTTP, now: opts.Now}
	if d.now == nil {
		d.now = time.Now
	}
	if d.http == nil {
		c, err := safehttp.New(nil)
		if err != nil {
			return nil, fmt.Errorf("pagerduty: %w", err)
		}
		d.http = c
	}
	base := opts.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("pagerduty: Options.BaseURL %q must be an absolute http(s) URL without credentials, query or fragment", safehttp.Redact(base))
	}
	d.endpoint = strings.TrimRight(u.String(), "/") + "/v2/enqueue"
	codec, err := outhook.NewConfigCodec[Config](ID)
	if err != nil {
		return nil, err
	}
	d.codec = codec
	return d, nil
}

// ID implements outhook.Deliverer: "pagerduty".
func (d *Deliverer) ID() string { return ID }

// ConfigSchema implements outhook.Deliverer: the JSON Schema of Config.
func (d *Deliverer) ConfigSchema() json.RawMessage { return d.codec.Schema() }

// ValidateConfig implements outhook.Deliverer. Its errors are
// *outhook.ConfigError naming the field at fault; they never contain the
// routing key.
func (d *Deliverer) ValidateConfig(raw json.RawMessage) error {
	_, err := d.compile(raw)
	return err
}

// plan is a decoded and checked Config, ready to render events.
type plan struct {
	cfg         Config
	summary     *template.Template // nil: the default summary
	severityMap map[string]string  // lower-cased keys
	severity    string
	source      string
}

// compile decodes raw and makes the checks the validate tags cannot.
func (d *Deliverer) compile(raw json.RawMessage) (*plan, error) {
	cfg, err := d.codec.Decode(raw)
	if err != nil {
		return nil, err
	}
	p := &plan{cfg: cfg, severity: cfg.Severity, source: cfg.Source}
	if p.severity == "" {
		p.severity = SeverityError
	}
	if p.source == "" {
		p.source = DefaultSource
	}
	var fields []outhook.FieldError
	bad := func(field, rule, msg string) {
		fields = append(fields, outhook.FieldError{Field: field, Rule: rule, Message: field + " " + msg})
	}
	for i, a := range cfg.Actions {
		if why := ident.CheckPattern(a.Events); why != "" {
			bad(fmt.Sprintf("actions[%d].events", i), "pattern", why)
		}
	}
	if why := checkPath(cfg.DedupKeyField); why != "" {
		bad("dedupKeyField", "path", why)
	}
	if why := checkPath(cfg.SeverityField); why != "" {
		bad("severityField", "path", why)
	}
	if len(cfg.SeverityMap) > 0 {
		if cfg.SeverityField == "" {
			bad("severityMap", "required_with", "needs severityField, the payload field whose values it maps")
		}
		p.severityMap = make(map[string]string, len(cfg.SeverityMap))
		for k, v := range cfg.SeverityMap {
			lk := strings.ToLower(strings.TrimSpace(k))
			if prev, dup := p.severityMap[lk]; dup && prev != v {
				bad("severityMap", "unique", fmt.Sprintf("maps %q to both %s and %s (keys are compared case-insensitively)", lk, prev, v))
			}
			p.severityMap[lk] = v
		}
	}
	if cfg.SummaryTemplate != "" {
		t, err := parseTemplate("summaryTemplate", cfg.SummaryTemplate)
		if err != nil {
			bad("summaryTemplate", "template", err.Error())
		}
		p.summary = t
	}
	if len(fields) > 0 {
		return nil, &outhook.ConfigError{Deliverer: ID, Fields: fields}
	}
	return p, nil
}

// checkPath reports why a dot path is malformed, or "" when it is fine
// (or empty).
func checkPath(path string) string {
	if path == "" {
		return ""
	}
	for seg := range strings.SplitSeq(path, ".") {
		if strings.TrimSpace(seg) == "" {
			return "must be field names separated by dots, with no empty name"
		}
	}
	return ""
}

// Deliver implements outhook.Deliverer: it sends one event to the Events
// API. 2xx (202 Accepted) is success, with PagerDuty's dedup_key as the
// external ID; 400 and other 4xx are permanent, with PagerDuty's message
// and errors in the error; 429 and 5xx are retried, 429 honouring
// Retry-After.
func (d *Deliverer) Deliver(ctx context.Context, req *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	p, err := d.compile(req.Subscription.Config)
	if err != nil {
		return outhook.DeliveryResult{}, outhook.Permanent(fmt.Errorf("pagerduty: %w", err))
	}
	ev := p.event(req)
	body, err := encodeEvent(ev)
	if err != nil {
		return outhook.DeliveryResult{}, outhook.Permanent(fmt.Errorf("pagerduty: encode event: %w", err))
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, d.endpoint, bytes.NewReader(body))
	if err != nil {
		return outhook.DeliveryResult{}, outhook.Permanent(fmt.Errorf("pagerduty: %w", err))
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")

	secret := p.cfg.RoutingKey
	pol := httpoutcome.Policy{Now: d.now, Secrets: []string{secret}}
	resp, err := d.http.Do(ctx, hreq)
	if err != nil {
		return httpoutcome.Request(hreq, pol), fmt.Errorf("pagerduty: %w", httpoutcome.FromError(err))
	}
	res, err := httpoutcome.FromResponse(hreq, resp, pol)
	res.Response = scrub(res.Response, secret)
	var answer response
	_ = json.Unmarshal(resp.Body, &answer) // best effort: the body may be empty or not JSON
	if err != nil {
		if detail := answer.detail(); detail != "" {
			return res, fmt.Errorf("pagerduty: %w: %s", err, scrub(detail, secret))
		}
		return res, fmt.Errorf("pagerduty: %w", err)
	}
	res.ExternalID = answer.DedupKey
	if res.ExternalID == "" {
		res.ExternalID = ev.DedupKey
	}
	res.ExternalID = scrub(res.ExternalID, secret)
	return res, nil
}

// response is the Events API's answer, e.g. {"status":"success",
// "message":"Event processed","dedup_key":"..."} or {"status":"invalid
// event","message":"Event object is invalid","errors":["..."]}.
type response struct {
	Status   string `json:"status"`
	Message  string `json:"message"`
	DedupKey string `json:"dedup_key"`
	Errors   []any  `json:"errors"`
}

// detail is the message and errors of an error answer, for the error text.
func (r *response) detail() string {
	parts := make([]string, 0, 1+len(r.Errors))
	if m := strings.TrimSpace(r.Message); m != "" {
		parts = append(parts, m)
	}
	for _, e := range r.Errors {
		s, ok := e.(string)
		if !ok {
			b, _ := json.Marshal(e)
			s = string(b)
		}
		if s = strings.TrimSpace(s); s != "" {
			parts = append(parts, s)
		}
	}
	out := strings.Join(parts, "; ")
	const maxDetail = 2048
	if len(out) > maxDetail {
		out = shared.CutBytes(out, maxDetail-len("…")) + "…"
	}
	return out
}

// scrub replaces the secret wherever it appears in s.
func scrub(s, secret string) string {
	if secret == "" || !strings.Contains(s, secret) {
		return s
	}
	return strings.ReplaceAll(s, secret, "[redacted]")
}
