package jira

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/httpoutcome"
	"github.com/outhook/outhook/safehttp"
)

// ID is the deliverer's stable ID, the DelivererID of subscriptions that
// open Jira issues.
const ID = "jira"

// DefaultIssueType is the issue type of a Config without one.
const DefaultIssueType = "Task"

// DefaultSummaryTemplate is the summary of a Config without a
// summaryTemplate: the event's display name (its ID when it has none),
// followed by the payload's "title" or, failing that, its "summary" field.
const DefaultSummaryTemplate = `{{or .Event.DisplayName .EventID}}{{with or .Payload.title .Payload.summary}}: {{.}}{{end}}`

// LabelPrefix starts the label that ties an issue to the delivery that
// created it (see IssueLabel). Subscriptions may not use it in their own
// labels.
const LabelPrefix = "outhook-"

// Limits Jira enforces, or that this deliverer keeps to.
const (
	// MaxSummary is the longest summary Jira accepts, in characters
	// (UTF-16 code units, as Jira counts them). Longer summaries are cut and
	// end with "…".
	MaxSummary = 255
	// MaxLabel is the longest label Jira accepts, in characters.
	MaxLabel = 255
	// MaxDescription bounds the text of the description, in characters
	// (UTF-16 code units), below Jira's limit of 32,767 for the field.
	MaxDescription = 30000
	// MaxDescriptionParagraphs bounds the number of paragraphs (lines) of
	// the description.
	MaxDescriptionParagraphs = 1000
)

// Config is a subscription's configuration for the Jira deliverer.
type Config struct {
	BaseURL string `json:"baseUrl" validate:"required,url" jsonschema_extras:"x-outhook-secret=url" description:"Base URL of the Jira Cloud site, such as https://example.atlassian.net (or https://api.atlassian.com/ex/jira/<cloudId> for scoped API tokens). HTTPS only. The API token is sent only here: an update that moves the site must send the token again."`
	Email   string `json:"email" validate:"required,email" description:"E-mail address of the Atlassian account the API token belongs to. The account needs the Browse projects and Create issues permissions in the project."`
	// APIToken is a secret: it is sent only in the Authorization header and
	// never appears in errors, attempt records or logs.
	APIToken   string `json:"apiToken" validate:"required,max=1024" jsonschema:"writeOnly=true" description:"Atlassian API token of the account (https://id.atlassian.com/manage-profile/security/api-tokens). Secret."`
	ProjectKey string `json:"projectKey" validate:"required,max=255" jsonschema:"pattern=^[A-Z][A-Z0-9_]+$" description:"Key of the project issues are created in, such as OPS."`
	IssueType  string `json:"issueType,omitempty" validate:"omitempty,max=255" jsonschema:"default=Task" description:"Name of the issue type, such as Task, Bug or Incident. Default: Task."`
	// SummaryTemplate and DescriptionTemplate are Go text/template texts
	// executed with a TemplateData.
	SummaryTemplate     string   `json:"summaryTemplate,omitempty" validate:"omitempty,max=4096" description:"Go text/template for the issue summary, executed with .EventID, .Event.DisplayName, .Event.Category, .DeliveryID, .OccurredAt and .Payload.<field>; missing fields render empty. Line breaks become spaces; the result is cut to 255 characters. Default: the event's display name, then the payload's title or summary field."`
	DescriptionTemplate string   `json:"descriptionTemplate,omitempty" validate:"omitempty,max=16384" description:"Go text/template for the issue description, with the same data as summaryTemplate. Each non-empty line becomes a paragraph. Default: the event and every top-level field of the payload."`
	Labels              []string `json:"labels,omitempty" validate:"omitempty,max=50,dive,required,max=255" jsonschema:"pattern=^\\S+$" description:"Extra labels for every issue: no spaces, at most 255 characters each. The label outhook-<delivery ID> is always added."`
}

// String describes c with the API token redacted, so that printing a
// Config (%v, %+v, %#v) never shows it.
func (c Config) String() string {
	if c.APIToken != "" {
		c.APIToken = redacted
	}
	type plain Config // without this method
	return fmt.Sprintf("%+v", plain(c))
}

// GoString is String, for %#v.
func (c Config) GoString() string { return c.String() }

// LogValue is String, for log/slog.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Options are the process-level options of a Deliverer; nil means the
// defaults.
type Options struct {
	// HTTP sends the requests. nil means safehttp.New(nil), which refuses
	// every internal address; tests pass one that allows loopback.
	HTTP *safehttp.Client
	// Now returns the current time, for Retry-After dates; nil means
	// time.Now.
	Now func() time.Time
	// AllowAnyHost lets baseUrl name any host, over plain http:// too.
	// Without it baseUrl must be https:// and a Jira Cloud host
	// (<site>.atlassian.net, or api.atlassian.com/ex/jira/<cloudId>). Tests
	// against local stand-ins, and sites behind a proxy of their own, set
	// it; the SSRF guard of HTTP applies either way.
	AllowAnyHost bool
}

// Deliverer opens a Jira Cloud issue for each delivery. It is safe for
// concurrent use.
type Deliverer struct {
	http         *safehttp.Client
	now          func() time.Time
	allowAnyHost bool
	codec        *outhook.ConfigCodec[Config]
}

var _ outhook.Deliverer = (*Deliverer)(nil)

// New returns a Jira deliverer with opts; nil opts means the defaults.
func New(opts *Options) (*Deliverer, error) {
	if opts == nil {
		opts = &Options{}
	}
	codec, err := outhook.NewConfigCodec[Config](ID)
	if err != nil {
		return nil, err
	}
	d := &Deliverer{http: opts.HTTP, now: opts.Now, allowAnyHost: opts.AllowAnyHost, codec: codec}
	if d.http == nil {
		if d.http, err = safehttp.New(nil); err != nil {
			return nil, err
		}
	}
	if d.now == nil {
		d.now = time.Now
	}
	return d, nil
}

// ID implements outhook.Deliverer; it returns ID.
func (d *Deliverer) ID() string { return ID }

// ConfigSchema implements outhook.Deliverer: the JSON Schema of Config.
func (d *Deliverer) ConfigSchema() json.RawMessage { return d.codec.Schema() }

// ValidateConfig implements outhook.Deliverer. Besides the rules of the
// schema it checks that baseUrl is a Jira Cloud site over HTTPS (see
// Options.AllowAnyHost), that the templates parse and run, and the labels.
// Errors are *outhook.ConfigError naming the field; they never quote the API
// token.
func (d *Deliverer) ValidateConfig(raw json.RawMessage) error {
	_, err := d.config(raw)
	return err
}

// settings is a checked Config, ready to use.
type settings struct {
	Config
	base        *url.URL // normalized: no trailing slash, no query
	summary     *templateSet
	description *templateSet // nil: the default description
}

// config decodes and checks raw.
func (d *Deliverer) config(raw json.RawMessage) (*settings, error) {
	cfg, err := d.codec.Decode(raw)
	if err != nil {
		return nil, err
	}
	s := &settings{Config: cfg}
	var fields []outhook.FieldError
	bad := func(field, rule, msg string) {
		fields = append(fields, outhook.FieldError{Field: field, Rule: rule, Message: field + ": " + msg})
	}
	if s.base, err = parseBaseURL(cfg.BaseURL, d.allowAnyHost); err != nil {
		bad("baseUrl", "jira_site", err.Error())
	}
	if !projectKeyRE.MatchString(cfg.ProjectKey) {
		bad("projectKey", "pattern", "must be an uppercase letter followed by uppercase letters, digits or '_' (such as OPS)")
	}
	for i, l := range cfg.Labels {
		field := fmt.Sprintf("labels[%d]", i)
		switch {
		case strings.IndexFunc(l, isSpace) >= 0:
			bad(field, "pattern", fmt.Sprintf("%q contains white space, which Jira labels cannot", l))
		case utf16Len(l) > MaxLabel:
			bad(field, "max", fmt.Sprintf("must be at most %d characters long", MaxLabel))
		case strings.HasPrefix(strings.ToLower(l), LabelPrefix):
			bad(field, "reserved", fmt.Sprintf("the prefix %q is reserved for the label that ties an issue to its delivery", LabelPrefix))
		}
	}
	summary := cfg.SummaryTemplate
	if summary == "" {
		summary = DefaultSummaryTemplate
	}
	if s.summary, err = newTemplateSet("summaryTemplate", summary); err != nil {
		bad("summaryTemplate", "template", err.Error())
	}
	if cfg.DescriptionTemplate != "" {
		if s.description, err = newTemplateSet("descriptionTemplate", cfg.DescriptionTemplate); err != nil {
			bad("descriptionTemplate", "template", err.Error())
		}
	}
	if len(fields) > 0 {
		return nil, &outhook.ConfigError{Deliverer: ID, Fields: fields}
	}
	if s.IssueType == "" {
		s.IssueType = DefaultIssueType
	}
	return s, nil
}

// projectKeyRE is the shape of a Jira project key.
var projectKeyRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]+$`)

// cloudIDPathRE is the path of an api.atlassian.com base URL.
var cloudIDPathRE = regexp.MustCompile(`^/ex/jira/[0-9A-Za-z-]{1,64}$`)

// parseBaseURL checks a site's base URL and returns it without a trailing
// slash.
func parseBaseURL(raw string, allowAnyHost bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return nil, errors.New("must be an absolute URL such as https://example.atlassian.net")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowAnyHost:
	default:
		return nil, errors.New("must be an https:// URL")
	}
	if u.User != nil {
		return nil, errors.New("must not hold credentials: give them as email and apiToken")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, errors.New("must not have a query or a fragment")
	}
	path := strings.TrimRight(u.EscapedPath(), "/")
	if !allowAnyHost {
		host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
		if p := u.Port(); p != "" && p != "443" {
			return nil, errors.New("must not name a port")
		}
		switch {
		case strings.HasSuffix(host, ".atlassian.net") && len(host) > len(".atlassian.net"):
			if path != "" {
				return nil, fmt.Errorf("must be the site's root URL, such as https://%s, without a path", host)
			}
		case host == "api.atlassian.com":
			if !cloudIDPathRE.MatchString(path) {
				return nil, errors.New("must be https://api.atlassian.com/ex/jira/<cloudId> on api.atlassian.com")
			}
		default:
			return nil, fmt.Errorf("host %q is not a Jira Cloud site (<site>.atlassian.net or api.atlassian.com)", host)
		}
	}
	base := &url.URL{Scheme: strings.ToLower(u.Scheme), Host: u.Host}
	if path != "" {
		p, err := url.PathUnescape(path)
		if err != nil {
			return nil, errors.New("has a malformed path")
		}
		base.Path, base.RawPath = p, path
	}
	return base, nil
}

// endpoint returns base with path appended and query set.
func endpoint(base *url.URL, path string, query url.Values) *url.URL {
	u := *base
	u.Path = base.Path + path
	if base.RawPath != "" {
		u.RawPath = base.RawPath + path
	}
	u.RawQuery = query.Encode()
	return &u
}

// Deliver implements outhook.Deliverer. It looks for the issue an earlier
// attempt of the same delivery may have created (by its label, see
// IssueLabel) and creates one only when there is none. See the package
// documentation for the outcome of each answer.
func (d *Deliverer) Deliver(ctx context.Context, req *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	s, err := d.config(req.Subscription.Config)
	if err != nil {
		return outhook.DeliveryResult{}, outhook.Permanent(err)
	}
	fields, err := s.issueFields(req)
	if err != nil {
		return outhook.DeliveryResult{}, outhook.Permanent(err)
	}
	sec := secretsOf(s.Email, s.APIToken)

	key, res, err := d.findIssue(ctx, s, fields.label, sec)
	if err != nil || key != "" {
		return res, err
	}
	return d.createIssue(ctx, s, fields, sec)
}

// findIssue searches the project for an issue with label. It returns the
// issue's key, or "" with a nil error when there is none.
func (d *Deliverer) findIssue(ctx context.Context, s *settings, label string, sec secrets) (string, outhook.DeliveryResult, error) {
	q := url.Values{
		"jql":        {searchJQL(s.ProjectKey, label)},
		"fields":     {"key"},
		"maxResults": {"1"},
	}
	u := endpoint(s.base, "/rest/api/3/search/jql", q)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", outhook.DeliveryResult{}, outhook.Permanent(fmt.Errorf("jira: search request: %w", err))
	}
	d.authorize(hreq, s)
	op := fmt.Sprintf("search project %s for the issue of this delivery (label %s)", s.ProjectKey, label)
	resp, err := d.http.Do(ctx, hreq)
	if err != nil {
		return "", httpoutcome.Request(hreq, httpoutcome.Policy{Secrets: sec}), httpoutcome.FromError(fmt.Errorf("jira: %s: %w", op, err))
	}
	res, err := d.outcome(hreq, resp, op, sec)
	if err != nil {
		return "", res, err
	}
	var found struct {
		Issues []issueRef `json:"issues"`
	}
	if err := json.Unmarshal(resp.Body, &found); err != nil || resp.Truncated || resp.BodyErr != nil {
		// Without a readable answer the issue may exist: creating one now
		// could make a duplicate, so try again later.
		switch {
		case resp.BodyErr != nil:
			err = resp.BodyErr
		case err == nil:
			err = errors.New("answer longer than the client reads")
		}
		return "", res, fmt.Errorf("jira: %s: unreadable answer (%d): %w", op, resp.StatusCode, err)
	}
	if len(found.Issues) == 0 {
		return "", res, nil
	}
	key := found.Issues[0].Key
	if key == "" {
		key = string(found.Issues[0].ID)
	}
	if key == "" {
		return "", res, fmt.Errorf("jira: %s: the issue found has neither key nor id", op)
	}
	// The key is the receiver's text: scrubbed like the rest of its answer
	// before it reaches the record.
	res.ExternalID = sec.scrub(key)
	return key, res, nil
}

// createIssue creates the issue.
func (d *Deliverer) createIssue(ctx context.Context, s *settings, fields *issueFields, sec secrets) (outhook.DeliveryResult, error) {
	body, err := json.Marshal(createRequest{Fields: fields.wire(s)})
	if err != nil {
		return outhook.DeliveryResult{}, outhook.Permanent(fmt.Errorf("jira: encode issue: %w", err))
	}
	u := endpoint(s.base, "/rest/api/3/issue", nil)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return outhook.DeliveryResult{}, outhook.Permanent(fmt.Errorf("jira: create request: %w", err))
	}
	d.authorize(hreq, s)
	hreq.Header.Set("Content-Type", "application/json")
	op := fmt.Sprintf("create %s issue in project %s", s.IssueType, s.ProjectKey)
	resp, err := d.http.Do(ctx, hreq)
	if err != nil {
		// The issue may have been created all the same: the next attempt
		// finds it by its label.
		return httpoutcome.Request(hreq, httpoutcome.Policy{Secrets: sec}), httpoutcome.FromError(fmt.Errorf("jira: %s: %w", op, err))
	}
	res, err := d.outcome(hreq, resp, op, sec)
	if err != nil {
		return res, err
	}
	var created issueRef
	// The issue exists whatever the body says: an unreadable body leaves
	// the delivery without an external ID, not failed.
	if json.Unmarshal(resp.Body, &created) == nil {
		res.ExternalID = created.Key
		if res.ExternalID == "" {
			res.ExternalID = string(created.ID)
		}
		res.ExternalID = sec.scrub(res.ExternalID)
	}
	return res, nil
}

// issueRef is an issue in Jira's answers: {"id": "10001", "key": "OPS-7",
// ...}. Jira sends the ID as a string; a number is accepted too.
type issueRef struct {
	ID  jsonID `json:"id"`
	Key string `json:"key"`
}

// jsonID is a string or a number in JSON.
type jsonID string

func (id *jsonID) UnmarshalJSON(b []byte) error {
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil {
		*id = jsonID(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*id = jsonID(s)
	return nil
}

// authorize sets the headers every request carries.
func (d *Deliverer) authorize(r *http.Request, s *settings) {
	r.SetBasicAuth(s.Email, s.APIToken)
	r.Header.Set("Accept", "application/json")
}

// outcome classifies a response with the shared HTTP mapping
// (internal/httpoutcome), with two changes for Jira: 410 is permanent
// without disabling the subscription (Jira answers 410 from APIs it has
// removed: the endpoint is gone, not the project), and a 429 without
// Retry-After honours X-RateLimit-Reset. Errors carry Jira's own messages;
// the excerpt and the errors are scrubbed of the credentials.
func (d *Deliverer) outcome(r *http.Request, resp *safehttp.Response, op string, sec secrets) (outhook.DeliveryResult, error) {
	res, verdict := httpoutcome.FromResponse(r, resp, httpoutcome.Policy{Now: d.now, Secrets: sec})
	res.Response = sec.scrub(res.Response)
	if verdict == nil {
		return res, nil
	}
	var err error = safehttp.StatusError(r, resp)
	if resp.RedirectBlocked != nil {
		err = resp.RedirectBlocked // class blocked, as for every deliverer
	}
	if detail := errorDetail(resp.Body); detail != "" {
		err = &detailError{err: err, detail: sec.scrub(detail)}
	}
	err = fmt.Errorf("jira: %s: %w", op, err)
	if _, ok := errors.AsType[*outhook.GoneError](verdict); ok {
		return res, outhook.Permanent(err)
	}
	if _, ok := errors.AsType[*outhook.PermanentError](verdict); ok {
		return res, outhook.Permanent(err)
	}
	if ra, ok := errors.AsType[*outhook.RetryAfterError](verdict); ok {
		return res, outhook.RetryAfter(err, ra.After)
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		if after, ok := rateLimitReset(resp.Header.Get("X-RateLimit-Reset"), d.now()); ok && after > 0 {
			return res, outhook.RetryAfter(err, after)
		}
	}
	return res, err
}
