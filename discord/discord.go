package discord

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/httpoutcome"
	"github.com/outhook/outhook/safehttp"
)

// ID is the deliverer's stable ID in subscriptions.
const ID = "discord"

// Hosts that serve Discord's API: the stable client's, its legacy name, and
// the public test build and canary ones.
var webhookHosts = []string{"discord.com", "discordapp.com", "ptb.discord.com", "canary.discord.com"}

// webhookPath is the path of an execute-webhook URL
// (https://discord.com/developers/docs/resources/webhook#execute-webhook):
// /api/webhooks/{webhook.id}/{webhook.token}, optionally with an API
// version (/api/v10/webhooks/...). The ID is a snowflake.
var webhookPath = regexp.MustCompile(`^/api(?:/v[0-9]{1,2})?/webhooks/([0-9]{1,20})/([A-Za-z0-9_-]{1,200})/?$`)

// Mention types that allowed_mentions.parse may list
// (https://discord.com/developers/docs/resources/message#allowed-mentions-object).
const (
	MentionRoles    = "roles"
	MentionUsers    = "users"
	MentionEveryone = "everyone"
)

// Config is a subscription's configuration of the Discord deliverer.
type Config struct {
	WebhookURL      string   `json:"webhookUrl" validate:"required,url,max=2048" jsonschema:"writeOnly=true" description:"Webhook URL of a Discord channel, https://discord.com/api/webhooks/{id}/{token}, optionally with ?thread_id=. The token is a secret: it is never shown in errors or attempt records."`
	ContentTemplate string   `json:"contentTemplate,omitempty" validate:"omitempty,max=10000" description:"Go text/template for the message content (Discord markdown, cut to 2000 characters), shown above the embed. Data: .EventID, .Event.DisplayName, .Event.Category, .DeliveryID, .OccurredAt, .Payload.<field>; a missing field renders empty. Default: no content, the embed alone."`
	Username        string   `json:"username,omitempty" validate:"omitempty,max=80" description:"Overrides the webhook's name for these messages (1 to 80 characters; Discord refuses names containing clyde or discord)."`
	AvatarURL       string   `json:"avatarUrl,omitempty" validate:"omitempty,url,max=2048" description:"Overrides the webhook's avatar: the http or https URL of an image."`
	Mentions        []string `json:"mentions,omitempty" validate:"omitempty,max=3,unique,dive,oneof=roles users everyone" description:"Mention types in the content that may notify people: roles, users, everyone (which includes @here). Default none: an @everyone in a payload never pings."`
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
	// AllowAnyHost accepts webhook URLs on any http or https host (the path
	// must still be /api/webhooks/{id}/{token}): for tests against a
	// loopback server. The HTTP client's SSRF guard still applies.
	AllowAnyHost bool
}

// Deliverer posts events to Discord webhooks. It is safe for concurrent
// use.
type Deliverer struct {
	http         *safehttp.Client
	now          func() time.Time
	allowAnyHost bool
	codec        *outhook.ConfigCodec[Config]
}

var _ outhook.Deliverer = (*Deliverer)(nil)

// New returns a Discord deliverer.
func New(opts *Options) (*Deliverer, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.HTTP == nil {
		c, err := safehttp.New(nil)
		if err != nil {
			return nil, fmt.Errorf("discord: %w", err)
		}
		o.HTTP = c
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	codec, err := outhook.NewConfigCodec[Config](ID)
	if err != nil {
		return nil, fmt.Errorf("discord: %w", err)
	}
	return &Deliverer{http: o.HTTP, now: o.Now, allowAnyHost: o.AllowAnyHost, codec: codec}, nil
}

// ID returns "discord".
func (d *Deliverer) ID() string { return ID }

// ConfigSchema returns the JSON Schema of Config.
func (d *Deliverer) ConfigSchema() json.RawMessage { return d.codec.Schema() }

// ValidateConfig checks a subscription's configuration: the fields' rules,
// that webhookUrl is a Discord webhook URL, that username is one Discord
// accepts, and that contentTemplate parses. Errors are *outhook.ConfigError
// naming the field; none of them quotes the URL.
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
	if fe := checkUsername(cfg.Username); fe != nil {
		fields = append(fields, *fe)
	}
	if cfg.AvatarURL != "" {
		if u, err := url.Parse(cfg.AvatarURL); err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
			fields = append(fields, outhook.FieldError{Field: "avatarUrl", Rule: "url", Message: "avatarUrl must be an http or https URL"})
		}
	}
	tmpl, err := parseTemplate("contentTemplate", cfg.ContentTemplate)
	if err != nil {
		fields = append(fields, outhook.FieldError{Field: "contentTemplate", Rule: "template", Message: "contentTemplate: " + err.Error()})
	}
	if len(fields) > 0 {
		return Config{}, nil, &outhook.ConfigError{Deliverer: ID, Fields: fields}
	}
	return cfg, tmpl, nil
}

// checkURL checks webhookUrl. Its messages never quote the URL, which holds
// a secret (url.Parse's errors do quote it, so they are not passed on).
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
	} else {
		if u.Scheme != "https" {
			return bad("https", "must be an https URL")
		}
		if !slices.Contains(webhookHosts, strings.ToLower(u.Hostname())) || u.Port() != "" {
			return bad("host", "must be a Discord webhook URL on discord.com")
		}
	}
	if !webhookPath.MatchString(u.EscapedPath()) {
		return bad("path", "must be a Discord webhook URL, https://discord.com/api/webhooks/{id}/{token}")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return bad("query", "has a malformed query")
	}
	for k, vs := range q {
		switch {
		case k == "wait":
		case k == "thread_id" && len(vs) == 1 && isSnowflake(vs[0]):
		default:
			return bad("query", "may only set thread_id (the ID of a thread of the channel)")
		}
	}
	return nil
}

func isSnowflake(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

// checkUsername applies Discord's rules for webhook names
// (https://discord.com/developers/docs/resources/webhook#create-webhook and
// https://discord.com/developers/docs/resources/user#usernames-and-nicknames):
// 1 to 80 characters, not containing "clyde" or "discord". Discord answers
// 400 to a message that breaks them.
func checkUsername(name string) *outhook.FieldError {
	if name == "" {
		return nil
	}
	lower := strings.ToLower(name)
	switch {
	case strings.TrimSpace(name) == "":
		return &outhook.FieldError{Field: "username", Rule: "username", Message: "username must not be blank"}
	case utf8.RuneCountInString(name) > MaxUsername:
		return &outhook.FieldError{Field: "username", Rule: "max", Param: "80", Message: "username must be at most 80 characters long"}
	case strings.Contains(lower, "clyde") || strings.Contains(lower, "discord"):
		return &outhook.FieldError{Field: "username", Rule: "username", Message: `username must not contain "clyde" or "discord" (Discord refuses such names)`}
	}
	return nil
}

// Deliver executes the subscription's webhook once with a message for req,
// with ?wait=true so that Discord answers with the message (whose ID is the
// result's ExternalID) or an error. The outcome follows the shared HTTP
// mapping (package doc), with 404 Unknown Webhook meaning the webhook is
// gone and 429 waiting the longer of Retry-After and the body's
// retry_after.
func (d *Deliverer) Deliver(ctx context.Context, req *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	cfg, tmpl, err := d.load(req.Subscription.Config)
	if err != nil {
		return outhook.DeliveryResult{}, outhook.Permanent(err)
	}
	t := newTarget(cfg.WebhookURL)
	u, err := url.Parse(cfg.WebhookURL)
	if err != nil { // checked by load
		return outhook.DeliveryResult{}, outhook.Permanent(errors.New("discord: webhookUrl is not a valid URL"))
	}
	q := u.Query()
	q.Set("wait", "true")
	u.RawQuery, u.Fragment, u.RawFragment = q.Encode(), "", ""

	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(render(req, &cfg, tmpl)); err != nil {
		return outhook.DeliveryResult{}, outhook.Permanent(fmt.Errorf("discord: encode message: %w", err))
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), &body)
	if err != nil {
		// Not wrapped: the error of url.Parse quotes the URL.
		return outhook.DeliveryResult{}, outhook.Permanent(fmt.Errorf("discord: cannot build a request for %s", t.display))
	}
	hreq.Header.Set("Content-Type", "application/json")

	resp, err := d.http.Do(ctx, hreq)
	if err != nil {
		t.annotate(err, "")
		return httpoutcome.Request(hreq, httpoutcome.Policy{Secrets: t.secrets}), httpoutcome.FromError(err)
	}
	return d.outcome(hreq, resp, t)
}

// apiError is the JSON body of Discord's errors
// (https://discord.com/developers/docs/reference#error-messages) and of a
// 429 (https://discord.com/developers/docs/topics/rate-limits#exceeding-a-rate-limit).
type apiError struct {
	Code       int      `json:"code"`
	Message    string   `json:"message"`
	RetryAfter *float64 `json:"retry_after"` // seconds
	Global     bool     `json:"global"`
}

// codeUnknownWebhook is the JSON error code of a webhook that was deleted
// (https://discord.com/developers/docs/topics/opcodes-and-status-codes#json).
const codeUnknownWebhook = 10015

// outcome classifies Discord's answer.
func (d *Deliverer) outcome(hreq *http.Request, resp *safehttp.Response, t target) (outhook.DeliveryResult, error) {
	text := t.scrub(string(resp.Body))
	res, err := httpoutcome.FromResponse(hreq, resp, httpoutcome.Policy{Now: d.now, Secrets: t.secrets})
	res.Response = text
	if err == nil {
		// With ?wait=true Discord answers 200 with the message object.
		res.ExternalID = t.scrub(messageID(resp.Body)) // the receiver's text, like the rest
		return res, nil
	}

	var ae apiError
	isJSON := json.Unmarshal(resp.Body, &ae) == nil
	detail := ""
	if isJSON && ae.Message != "" {
		detail = fmt.Sprintf("%s (code %d)", truncate(strings.TrimSpace(ae.Message), 200), ae.Code)
	}
	t.annotate(err, t.scrub(detail))
	inner := unwrapOutcome(err)

	switch resp.StatusCode {
	case http.StatusNotFound:
		if isJSON && ae.Code == codeUnknownWebhook {
			return res, outhook.Gone(inner)
		}
	case http.StatusTooManyRequests:
		wait := time.Duration(0)
		if h := resp.Header.Get("Retry-After"); h != "" {
			if dh, ok := safehttp.RetryAfter(h, d.now()); ok {
				wait = dh
			} else if dh, ok := seconds(h); ok { // Discord may send "1.5"
				wait = dh
			}
		}
		if isJSON && ae.RetryAfter != nil {
			if db, ok := secondsFloat(*ae.RetryAfter); ok {
				wait = max(wait, db)
			}
		}
		if wait > 0 {
			return res, outhook.RetryAfter(inner, wait)
		}
		return res, inner
	}
	return res, err
}

// messageID returns the top-level "id" of a message object, or "". It reads
// the JSON token by token, so that it finds the ID in a body that was cut
// (safehttp keeps 16 KiB; a message with long embeds in four-byte
// characters is longer) as long as the ID comes before the cut.
func messageID(body []byte) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ""
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return ""
		}
		if key == "id" {
			var id string
			if dec.Decode(&id) != nil {
				return ""
			}
			return id
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return ""
		}
	}
	return ""
}

// unwrapOutcome returns the error inside the outcome wrapper that
// httpoutcome put around it.
func unwrapOutcome(err error) error {
	switch e := err.(type) {
	case *outhook.GoneError:
		return e.Err
	case *outhook.PermanentError:
		return e.Err
	case *outhook.RetryAfterError:
		return e.Err
	}
	return err
}

// seconds parses a decimal number of seconds.
func seconds(s string) (time.Duration, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, false
	}
	return secondsFloat(f)
}

// secondsFloat converts f seconds, rounded up to the millisecond; it
// refuses negative, non-finite and absurd (over safehttp.MaxRetryAfter)
// values.
func secondsFloat(f float64) (time.Duration, bool) {
	if math.IsNaN(f) || f < 0 || f > safehttp.MaxRetryAfter.Seconds() {
		return 0, false
	}
	return time.Duration(math.Ceil(f*1000)) * time.Millisecond, true
}

// target is what may be shown of a webhook URL, and what must not.
type target struct {
	// display is the URL with the token replaced by "[redacted]" and no
	// query: https://discord.com/api/webhooks/123/[redacted].
	display string
	// secrets are the strings to scrub from response bodies.
	secrets []string
}

// newTarget splits a webhook URL into its displayable and secret parts,
// whatever the host (safehttp.Redact knows discord.com, but tests post to
// loopback).
func newTarget(raw string) target {
	u, err := url.Parse(raw)
	if err != nil {
		return target{display: "[unparseable URL]"}
	}
	path := u.EscapedPath()
	m := webhookPath.FindStringSubmatchIndex(path)
	if m == nil {
		return target{display: u.Scheme + "://" + u.Host + "/[redacted]"}
	}
	token := path[m[4]:m[5]]
	return target{
		display: u.Scheme + "://" + u.Host + path[:m[4]] + "[redacted]",
		secrets: []string{token},
	}
}

// scrub replaces the secrets in s.
func (t target) scrub(s string) string {
	for _, sec := range t.secrets {
		s = strings.ReplaceAll(s, sec, "[redacted]")
	}
	return s
}

// annotate puts the redacted URL, and Discord's error message if any, into
// the *safehttp.Error in err's chain. That error is new for each request,
// so changing it is safe.
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
