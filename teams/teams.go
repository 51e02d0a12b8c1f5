package teams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/template"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/httpoutcome"
	shared "github.com/outhook/outhook/internal/render"
	"github.com/outhook/outhook/safehttp"
)

// ID is the deliverer's stable ID in subscriptions.
const ID = "teams"

// MaxBodyBytes is the most bytes a message body may have: Teams refuses
// messages over about 28 KB (413 Request Entity Too Large; see
// https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using).
// The card is shrunk to fit (see the package documentation).
const MaxBodyBytes = 28_000

// allowedHostSuffixes are the hosts of Teams Workflows (Power Automate) and
// legacy connector webhook URLs. A webhook URL's host must end with one of
// them unless Options.AllowAnyHost is set.
var allowedHostSuffixes = [...]string{".logic.azure.com", ".powerplatform.com", ".webhook.office.com"}

// Caps applied before the card is fitted to MaxBodyBytes.
const (
	maxTitle          = 500  // runes of the title
	maxText           = 8000 // runes of the text
	maxFactTitle      = 100  // runes of a fact's title
	maxFactValue      = 2000 // runes of a fact's value
	maxPayloadFacts   = 50   // facts taken from the payload
	maxTemplateOutput = 32 << 10
)

// Config is a subscription's configuration of the Teams deliverer.
type Config struct {
	WebhookURL    string `json:"webhookUrl" validate:"required,https_url,max=2048" jsonschema:"writeOnly=true" description:"The workflow's webhook URL (Teams: Workflows > Post to a channel when a webhook request is received), https on *.logic.azure.com, *.powerplatform.com or *.webhook.office.com. A secret, sig parameter included: never shown in errors or attempt records."`
	TitleTemplate string `json:"titleTemplate,omitempty" validate:"omitempty,max=2048" description:"Go text/template for the card's title, with .EventID, .Event.DisplayName, .Event.Category, .DeliveryID, .OccurredAt and .Payload.<field>. Default: the event's display name, or its ID."`
	TextTemplate  string `json:"textTemplate,omitempty" validate:"omitempty,max=8192" description:"Go text/template for a paragraph under the title (same data as titleTemplate). Default: none."`
}

// Options configures the deliverer for the whole process. A nil *Options
// means the defaults.
type Options struct {
	// HTTP sends the requests. Nil means safehttp.New(nil), which refuses
	// every non-public address.
	HTTP *safehttp.Client
	// Now gives the time for Retry-After dates. Nil means time.Now.
	Now func() time.Time
	// AllowAnyHost lifts the rule that webhook URLs be on a Microsoft host
	// (*.logic.azure.com, *.powerplatform.com, *.webhook.office.com), for
	// tests and local stand-ins. URLs must still be https.
	AllowAnyHost bool
}

// Deliverer posts Adaptive Cards to Microsoft Teams through Workflows
// webhooks. It is safe for concurrent use.
type Deliverer struct {
	http         *safehttp.Client
	now          func() time.Time
	allowAnyHost bool
	codec        *outhook.ConfigCodec[Config]
}

var _ outhook.Deliverer = (*Deliverer)(nil)

// New returns a Teams deliverer.
func New(opts *Options) (*Deliverer, error) {
	if opts == nil {
		opts = &Options{}
	}
	d := &Deliverer{http: opts.HTTP, now: opts.Now, allowAnyHost: opts.AllowAnyHost}
	if d.now == nil {
		d.now = time.Now
	}
	if d.http == nil {
		c, err := safehttp.New(nil)
		if err != nil {
			return nil, fmt.Errorf("teams: %w", err)
		}
		d.http = c
	}
	codec, err := outhook.NewConfigCodec[Config](ID)
	if err != nil {
		return nil, err
	}
	d.codec = codec
	return d, nil
}

// ID implements outhook.Deliverer: "teams".
func (d *Deliverer) ID() string { return ID }

// ConfigSchema implements outhook.Deliverer: the JSON Schema of Config.
func (d *Deliverer) ConfigSchema() json.RawMessage { return d.codec.Schema() }

// ValidateConfig implements outhook.Deliverer. Its errors are
// *outhook.ConfigError naming the field at fault; they never contain the
// webhook URL (at most its host).
func (d *Deliverer) ValidateConfig(raw json.RawMessage) error {
	_, err := d.compile(raw)
	return err
}

// plan is a decoded and checked Config.
type plan struct {
	url   *url.URL
	title *template.Template // nil: the default title
	text  *template.Template // nil: no text
	// secrets are the strings scrubbed from responses: the URL, its path
	// and its sig parameter.
	secrets []string
}

func (d *Deliverer) compile(raw json.RawMessage) (*plan, error) {
	cfg, err := d.codec.Decode(raw)
	if err != nil {
		return nil, err
	}
	var fields []outhook.FieldError
	bad := func(field, rule, msg string) {
		fields = append(fields, outhook.FieldError{Field: field, Rule: rule, Message: field + " " + msg})
	}
	p := &plan{}
	u, err := url.Parse(cfg.WebhookURL)
	switch {
	case err != nil || !strings.EqualFold(u.Scheme, "https") || u.Host == "":
		bad("webhookUrl", "https_url", "must be a valid HTTPS URL")
	case u.User != nil:
		bad("webhookUrl", "url", "must not contain credentials")
	case !d.allowAnyHost && !allowedHost(u.Hostname()):
		bad("webhookUrl", "host", fmt.Sprintf("host %q is not a Teams Workflows host (*%s)", u.Hostname(), strings.Join(allowedHostSuffixes[:], ", *")))
	default:
		p.url = u
		p.secrets = secretsOf(cfg.WebhookURL, u)
	}
	if cfg.TitleTemplate != "" {
		if p.title, err = parseTemplate("titleTemplate", cfg.TitleTemplate); err != nil {
			bad("titleTemplate", "template", err.Error())
		}
	}
	if cfg.TextTemplate != "" {
		if p.text, err = parseTemplate("textTemplate", cfg.TextTemplate); err != nil {
			bad("textTemplate", "template", err.Error())
		}
	}
	if len(fields) > 0 {
		return nil, &outhook.ConfigError{Deliverer: ID, Fields: fields}
	}
	return p, nil
}

// allowedHost reports whether host ends with one of allowedHostSuffixes.
func allowedHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, s := range allowedHostSuffixes {
		if strings.HasSuffix(host, s) && len(host) > len(s) {
			return true
		}
	}
	return false
}

// secretsOf lists the parts of a webhook URL that must not be recorded,
// longest first so that replacing them in turn leaves no piece behind.
func secretsOf(raw string, u *url.URL) []string {
	s := []string{raw, u.String()}
	if p := u.EscapedPath(); len(p) > 1 {
		s = append(s, p)
		if u.Path != p {
			s = append(s, u.Path)
		}
	}
	for _, v := range u.Query()["sig"] {
		if v != "" {
			s = append(s, v, url.QueryEscape(v))
		}
	}
	return s
}

// scrub replaces every secret of the webhook URL in s.
func (p *plan) scrub(s string) string {
	for _, secret := range p.secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
}

// displayURL is how errors show the webhook URL: its scheme and host only.
func (p *plan) displayURL() string {
	return p.url.Scheme + "://" + p.url.Host + "/[redacted]"
}

// hideURL replaces the (already redacted) URL of a safehttp error in err's
// chain with displayURL, so that not even the workflow's path is shown.
func (p *plan) hideURL(err error) {
	if se, ok := errors.AsType[*safehttp.Error](err); ok && se.URL != "" {
		se.URL = p.displayURL()
	}
}

// Deliver implements outhook.Deliverer: it posts one Adaptive Card. 200 and
// 202 are success; 404 (the workflow was deleted) and 410 disable the
// subscription; 400, 401, 403 and other 4xx are permanent; 429 and 5xx are
// retried, honouring Retry-After.
func (d *Deliverer) Deliver(ctx context.Context, req *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	p, err := d.compile(req.Subscription.Config)
	if err != nil {
		return outhook.DeliveryResult{}, outhook.Permanent(fmt.Errorf("teams: %w", err))
	}
	body, err := p.message(req)
	if err != nil {
		return outhook.DeliveryResult{}, outhook.Permanent(fmt.Errorf("teams: encode card: %w", err))
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url.String(), bytes.NewReader(body))
	if err != nil {
		return outhook.DeliveryResult{}, outhook.Permanent(fmt.Errorf("teams: build request to %s", p.displayURL()))
	}
	// Without a charset, the connector service has been seen to count the
	// body in UTF-16 and refuse bodies over 14 KB.
	hreq.Header.Set("Content-Type", "application/json; charset=utf-8")

	pol := httpoutcome.Policy{Gone: []int{http.StatusNotFound}, Now: d.now, Secrets: p.secrets}
	resp, err := d.http.Do(ctx, hreq)
	if err != nil {
		p.hideURL(err)
		return httpoutcome.Request(hreq, pol), fmt.Errorf("teams: %w", httpoutcome.FromError(err))
	}
	res, err := httpoutcome.FromResponse(hreq, resp, pol)
	res.Response = p.scrub(res.Response)
	if err == nil {
		return res, nil
	}
	p.hideURL(err)
	if detail := errorDetail(resp.Body); detail != "" {
		return res, fmt.Errorf("teams: %w: %s", err, p.scrub(detail))
	}
	return res, fmt.Errorf("teams: %w", err)
}

// errorDetail reads the error of a Power Automate / Logic Apps answer,
// {"error": {"code": "...", "message": "..."}}, as "code: message".
func errorDetail(body []byte) string {
	var answer struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &answer) != nil {
		return ""
	}
	parts := make([]string, 0, 2)
	for _, s := range []string{answer.Error.Code, answer.Error.Message} {
		if s = strings.TrimSpace(s); s != "" {
			parts = append(parts, s)
		}
	}
	return shared.Shorten(strings.Join(parts, ": "), 1024)
}
