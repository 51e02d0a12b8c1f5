package webhook

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/invopop/jsonschema"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/httpoutcome"
	"github.com/outhook/outhook/safehttp"
)

// ID is the deliverer's ID in subscriptions.
const ID = "webhook"

// Body modes (Config.Body).
const (
	// BodyEnvelope sends {"type": <event ID>, "timestamp": <occurred at,
	// RFC 3339>, "data": <payload>}, the payload shape the spec recommends.
	BodyEnvelope = "envelope"
	// BodyRaw sends the payload as it is (surrounding whitespace trimmed).
	BodyRaw = "raw"
)

// Auth types (Auth.Type).
const (
	AuthBearer = "bearer"
	AuthBasic  = "basic"
)

// DefaultMaxBody is the default limit on the size of a request body.
const DefaultMaxBody = 1 << 20

// Config is a subscription's configuration of the webhook deliverer.
type Config struct {
	URL string `json:"url" validate:"required,http_url,max=2048" jsonschema_extras:"x-outhook-secret=url" description:"Endpoint that receives the events (http or https). Its query values and userinfo password are secret: masked when the subscription is read, redacted in errors and attempt records."`
	// Secrets sign with v1 (HMAC-SHA256).
	Secrets []Secret `json:"secrets,omitempty" validate:"omitempty,max=10,dive" description:"Symmetric signing secrets (whsec_...). Each active secret adds a v1 signature; to rotate, add the new secret and give the old one a notAfter for a grace period."`
	// SigningKeys sign with v1a (ed25519).
	SigningKeys   []SigningKey      `json:"signingKeys,omitempty" validate:"omitempty,max=10,dive" description:"ed25519 signing keys (whsk_...). Each active key adds a v1a signature, which the receiver checks with the whpk_ public key."`
	Method        string            `json:"method,omitempty" validate:"omitempty,oneof=POST PUT PATCH" description:"HTTP method; POST by default."`
	Body          string            `json:"body,omitempty" validate:"omitempty,oneof=envelope raw" description:"Body shape: envelope (default) sends {type, timestamp, data}; raw sends the event's payload as it is."`
	Headers       map[string]string `json:"headers,omitempty" validate:"omitempty,max=32,dive,max=4096" description:"Extra request headers; their values are secret (masked when the subscription is read). The webhook-* headers, Content-Type, Content-Length, Host, User-Agent and hop-by-hop headers cannot be set; Authorization only without auth."`
	Auth          *Auth             `json:"auth,omitempty" description:"Credentials sent in the Authorization header, besides the signature."`
	RetryStatuses []int             `json:"retryStatuses,omitempty" validate:"omitempty,max=20,dive,min=400,max=499" description:"4xx statuses to retry instead of failing for good (429 is always retried; 410 always disables the subscription)."`
}

// JSONSchemaExtend marks the values of Headers secret (writeOnly): they
// often carry API keys. invopop/jsonschema ignores a writeOnly tag on a
// map field, so it is set here on the schema of the map's values.
func (Config) JSONSchemaExtend(s *jsonschema.Schema) {
	if h, ok := s.Properties.Get("headers"); ok && h.AdditionalProperties != nil {
		h.AdditionalProperties.WriteOnly = true
	}
}

// Secret is a symmetric signing secret.
type Secret struct {
	Secret   string    `json:"secret" validate:"required" jsonschema:"writeOnly=true" description:"whsec_ followed by the base64 of 24 to 64 random bytes."`
	NotAfter time.Time `json:"notAfter,omitzero" description:"When the secret stops signing (RFC 3339); absent means never."`
}

// SigningKey is an ed25519 private key for v1a signatures.
type SigningKey struct {
	Key      string    `json:"key" validate:"required" jsonschema:"writeOnly=true" description:"whsk_ followed by the base64 of an ed25519 private key (32-byte seed, or 64-byte seed and public key)."`
	NotAfter time.Time `json:"notAfter,omitzero" description:"When the key stops signing (RFC 3339); absent means never."`
}

// Auth is an Authorization header to send with every request.
type Auth struct {
	Type     string `json:"type" validate:"required,oneof=bearer basic" description:"bearer or basic."`
	Token    string `json:"token,omitempty" validate:"required_if=Type bearer,max=4096" jsonschema:"writeOnly=true" description:"Bearer token (type bearer)."`
	Username string `json:"username,omitempty" validate:"required_if=Type basic,max=256" description:"User name (type basic)."`
	Password string `json:"password,omitempty" validate:"max=1024" jsonschema:"writeOnly=true" description:"Password (type basic)."`
}

// String hides the secret, so that printing a Config does not reveal it.
func (s Secret) String() string { return redactedKey(SecretPrefix, s.NotAfter) }

// GoString hides the secret from %#v.
func (s Secret) GoString() string { return "webhook.Secret{" + s.String() + "}" }

// String hides the key, so that printing a Config does not reveal it.
func (k SigningKey) String() string { return redactedKey(SigningKeyPrefix, k.NotAfter) }

// GoString hides the key from %#v.
func (k SigningKey) GoString() string { return "webhook.SigningKey{" + k.String() + "}" }

// String shows the type and user name of the credentials, not the token or
// password.
func (a Auth) String() string {
	if a.Type == AuthBasic {
		return "basic " + a.Username + ":[redacted]"
	}
	return a.Type + " [redacted]"
}

// GoString hides the credentials from %#v.
func (a Auth) GoString() string { return "webhook.Auth{" + a.String() + "}" }

func redactedKey(prefix string, notAfter time.Time) string {
	if notAfter.IsZero() {
		return prefix + "[redacted]"
	}
	return prefix + "[redacted] notAfter " + notAfter.Format(time.RFC3339)
}

// Options are the deliverer's process-level options. A nil *Options means
// the defaults.
type Options struct {
	// HTTP sends the requests. Nil means safehttp.New(nil): public
	// addresses only, 15 s timeout. Tests pass a client that allows
	// loopback.
	HTTP *safehttp.Client
	// Now returns the time of an attempt, signed in webhook-timestamp, and
	// the time secrets' notAfter is compared with. Nil means time.Now.
	Now func() time.Time
	// MaxBody is the largest request body sent, in bytes; a larger one
	// fails the delivery for good. Zero means DefaultMaxBody (1 MiB).
	MaxBody int
}

// Deliverer delivers events as Standard Webhooks signed HTTP requests. It
// is safe for concurrent use.
type Deliverer struct {
	http    *safehttp.Client
	now     func() time.Time
	maxBody int
	codec   *outhook.ConfigCodec[Config]

	// cache holds prepared configs by their raw JSON, so that a delivery
	// does not decode, validate and parse keys again: that was 7 % of the
	// CPU of a delivery to a loopback receiver.
	cacheMu sync.Mutex
	cache   map[string]*prepared
}

// maxCached bounds the prepared-config cache; past it the cache starts
// again empty.
const maxCached = 1024

// cached returns the prepared config of raw at now, from the cache when a
// prepared copy is still valid at now (no key has expired or come into
// force since it was prepared).
func (d *Deliverer) cached(raw json.RawMessage, now time.Time) (*prepared, error) {
	d.cacheMu.Lock()
	p := d.cache[string(raw)]
	d.cacheMu.Unlock()
	if p != nil && (p.changesAt.IsZero() || now.Before(p.changesAt)) {
		return p, nil
	}
	p, err := d.prepare(raw, now)
	if err != nil {
		return nil, err
	}
	d.cacheMu.Lock()
	if d.cache == nil || len(d.cache) >= maxCached {
		d.cache = make(map[string]*prepared)
	}
	d.cache[string(raw)] = p
	d.cacheMu.Unlock()
	return p, nil
}

var _ outhook.Deliverer = (*Deliverer)(nil)

// New returns a webhook deliverer.
func New(opts *Options) (*Deliverer, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxBody < 0 {
		return nil, fmt.Errorf("webhook: Options.MaxBody is negative (%d)", o.MaxBody)
	}
	if o.MaxBody == 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTP == nil {
		c, err := safehttp.New(nil)
		if err != nil {
			return nil, fmt.Errorf("webhook: %w", err)
		}
		o.HTTP = c
	}
	codec, err := outhook.NewConfigCodec[Config](ID)
	if err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	return &Deliverer{http: o.HTTP, now: o.Now, maxBody: o.MaxBody, codec: codec}, nil
}

// ID returns "webhook".
func (d *Deliverer) ID() string { return ID }

// ConfigSchema returns the JSON Schema of Config.
func (d *Deliverer) ConfigSchema() json.RawMessage { return d.codec.Schema() }

// ValidateConfig checks a subscription's configuration: the fields' rules,
// then that every secret and key decodes, that at least one of them is
// active now, and the headers and credentials. The error is a
// *outhook.ConfigError naming each field at fault; it never quotes a
// secret, key, token, password or header value.
func (d *Deliverer) ValidateConfig(raw json.RawMessage) error {
	_, err := d.prepare(raw, d.now())
	return err
}

// Deliver makes one signed request for req. See the package documentation
// for the wire format and the status mapping.
func (d *Deliverer) Deliver(ctx context.Context, req *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	now := d.now()
	p, err := d.cached(req.Subscription.Config, now)
	if err != nil {
		// The config passed ValidateConfig when it was saved: since then a
		// key has expired, or the rules have changed. Retrying cannot fix
		// it; updating the subscription can.
		return outhook.DeliveryResult{}, outhook.Permanent(fmt.Errorf("webhook: subscription config: %w", err))
	}
	if err := checkID(req.DeliveryID); err != nil {
		return outhook.DeliveryResult{}, outhook.Permanent(fmt.Errorf("webhook: delivery ID: %w", err))
	}

	payload, err := payloadOf(req)
	if err != nil {
		return outhook.DeliveryResult{}, outhook.Permanent(err)
	}
	ts := now.Unix()
	c, bodyLen, err := d.content(p.bodyMode, req, ts, payload)
	if err != nil {
		return outhook.DeliveryResult{}, outhook.Permanent(err)
	}
	var body io.Reader
	if c.parts[1] == nil {
		// One piece (a raw payload, or an envelope built after the signed
		// prefix): a *bytes.Reader, which the transport writes behind the
		// headers instead of flushing them on their own first.
		b := c.parts[0]
		if b == nil {
			b = c.prefix[len(c.prefix)-bodyLen:]
		}
		body = bytes.NewReader(b)
	} else {
		// A large envelope: its head, the payload and its tail are sent
		// where they lie, never copied into one buffer.
		bufs := net.Buffers(c.parts[:])
		body = &bufs
	}
	hreq, err := http.NewRequestWithContext(ctx, p.method, p.url, body)
	if err != nil {
		// Unreachable for a validated URL; the parse error would quote the
		// URL whole, so it is not wrapped.
		return outhook.DeliveryResult{}, outhook.Permanent(fmt.Errorf("webhook: %s %s: cannot build the request", p.method, safehttp.Redact(p.url)))
	}
	if c.parts[1] != nil {
		// NewRequest knows the length and the replay of a *bytes.Reader
		// only.
		parts := c.parts
		hreq.ContentLength = int64(bodyLen)
		hreq.GetBody = func() (io.ReadCloser, error) {
			bufs := net.Buffers(slices.Clone(parts[:]))
			return io.NopCloser(&bufs), nil
		}
	}

	// The webhook-* headers, then Content-Type and User-Agent, are set by
	// assignment with their canonical names (the names Header.Set would
	// use, and so the names sent): the config's headers cannot hold any of
	// them. The timestamp and the signature share one string, and the five
	// values one backing array.
	var buf [128]byte
	sig := strconv.AppendInt(buf[:0], ts, 10)
	tsLen := len(sig)
	sig = p.signer.appendHeader(sig, &c)
	tsSig := string(sig)
	vals := []string{req.DeliveryID, tsSig[:tsLen], tsSig[tsLen:], "application/json", "outhook/" + safehttp.Version}
	h := hreq.Header
	for k, v := range p.headers {
		h[k] = v
	}
	h["Webhook-Id"] = vals[0:1:1]
	h["Webhook-Timestamp"] = vals[1:2:2]
	h["Webhook-Signature"] = vals[2:3:3]
	h["Content-Type"] = vals[3:4:4]
	h["User-Agent"] = vals[4:5:5]

	// The attempt record keeps neither the credentials nor this request's
	// signatures, wherever a receiver echoes them.
	secrets := append(p.secrets[:len(p.secrets):len(p.secrets)], strings.Fields(vals[2])...)
	pol := httpoutcome.Policy{Retry: p.retry, Now: d.now, Secrets: secrets}
	resp, err := d.http.Do(ctx, hreq)
	if err != nil {
		return httpoutcome.Request(hreq, pol), httpoutcome.FromError(err)
	}
	res, err := httpoutcome.FromResponse(hreq, resp, pol)
	res.Response = redact(res.Response, secrets)
	return res, err
}

// payloadOf returns req's payload with surrounding whitespace trimmed,
// "null" when it is empty, and refuses one that is not valid JSON.
func payloadOf(req *outhook.DeliveryRequest) ([]byte, error) {
	payload := bytes.TrimSpace(req.Payload)
	if len(payload) == 0 {
		return []byte("null"), nil
	}
	if !json.Valid(payload) {
		return nil, errors.New("webhook: payload is not valid JSON")
	}
	return payload, nil
}

// maxCopy is the largest payload copied into an envelope built in one
// buffer after the signed prefix. A larger one is sent and signed where it
// lies, between the envelope's head and tail: copying it would cost more
// than the one extra write the transport then makes (it flushes the
// headers on their own before a body that is not a *bytes.Reader).
const maxCopy = 32 << 10

// content lays out the signed content of the request body for payload:
// the raw payload as it is, or the envelope around it, the body counting
// bodyLen bytes.
func (d *Deliverer) content(mode string, req *outhook.DeliveryRequest, ts int64, payload []byte) (c content, bodyLen int, err error) {
	id := req.DeliveryID
	switch mode {
	case BodyRaw:
		c.prefix = signedContent(make([]byte, 0, len(id)+22), id, ts, nil)
		c.parts[0] = payload
		bodyLen = len(payload)
	default:
		// The envelope, written by hand rather than with json.Marshal,
		// which would re-encode the payload (escaping <, > and &).
		size := len(id) + 22 + len(`{"type":,"timestamp":"","data":}`) + len(req.EventID) + 2 + len(time.RFC3339Nano)
		if len(payload) <= maxCopy {
			size += len(payload)
		}
		buf := signedContent(make([]byte, 0, size), id, ts, nil)
		start := len(buf)
		buf = append(buf, `{"type":`...)
		buf = appendJSONString(buf, req.EventID)
		buf = append(buf, `,"timestamp":"`...)
		buf = req.OccurredAt.UTC().AppendFormat(buf, time.RFC3339Nano)
		buf = append(buf, `","data":`...)
		bodyLen = len(buf) - start + len(payload) + 1
		if len(payload) <= maxCopy {
			buf = append(buf, payload...)
			c.prefix = append(buf, '}')
		} else {
			c.prefix = buf[:start:start]
			c.parts = [3][]byte{buf[start:], payload, []byte("}")}
		}
	}
	if bodyLen > d.maxBody {
		return content{}, 0, fmt.Errorf("webhook: body is %d bytes, more than the limit of %d", bodyLen, d.maxBody)
	}
	return c, bodyLen, nil
}

// appendJSONString appends s as json.Marshal encodes it: quoted, and
// copied as it is when it holds only printable ASCII that needs no escape
// (every event ID does).
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			enc, _ := json.Marshal(s) // a string always encodes
			return append(dst, enc...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// prepared is a decoded and checked config, ready to send with.
type prepared struct {
	url      string
	method   string
	bodyMode string
	headers  http.Header // extra headers and Authorization
	signer   *signer
	retry    []int
	secrets  []string // values to redact from response excerpts
	// changesAt is the first notAfter still to come when it was prepared:
	// from then on a key it signs with has expired. Zero means never.
	changesAt time.Time
}

// minRedact is the length below which a value is not redacted from
// response excerpts: replacing every "a" would garble the excerpt and
// protect nothing.
const minRedact = 6

// redact replaces each of secrets (the credentials a request sends) with
// "[redacted]" in s, a response excerpt: an echo server would otherwise put
// them in the attempt record.
func redact(s string, secrets []string) string {
	for _, secret := range secrets {
		s = strings.ReplaceAll(s, secret, "[redacted]")
	}
	return s
}

// prepare decodes and checks raw at time now. Every problem found is listed
// in the returned *outhook.ConfigError.
func (d *Deliverer) prepare(raw json.RawMessage, now time.Time) (*prepared, error) {
	cfg, err := d.codec.Decode(raw)
	if err != nil {
		return nil, err
	}
	var fields []outhook.FieldError
	fail := func(field, rule, format string, args ...any) {
		fields = append(fields, outhook.FieldError{Field: field, Rule: rule, Message: field + " " + fmt.Sprintf(format, args...)})
	}
	p := &prepared{url: cfg.URL, method: cfg.Method, bodyMode: cfg.Body, headers: http.Header{}, retry: cfg.RetryStatuses}
	if p.method == "" {
		p.method = http.MethodPost
	}
	if p.bodyMode == "" {
		p.bodyMode = BodyEnvelope
	}

	if u, err := url.Parse(cfg.URL); err == nil {
		if u.User != nil {
			fail("url", "credentials", "must not hold credentials (user:password@): use auth")
		}
		// Query values may be tokens (?token=..., ?sig=...): redact them
		// from the attempt record as they are sent and as they are read.
		for _, vs := range u.Query() {
			for _, v := range vs {
				p.addSecret(v)
				p.addSecret(url.QueryEscape(v))
			}
		}
	}

	var keys []string
	active := 0
	for i, s := range cfg.Secrets {
		if _, err := parseSecret(s.Secret); err != nil {
			fail(fmt.Sprintf("secrets[%d].secret", i), "whsec", "is not a valid secret: %s", strings.TrimPrefix(err.Error(), "invalid key: "))
			continue
		}
		p.secrets = append(p.secrets, s.Secret)
		if s.NotAfter.IsZero() || now.Before(s.NotAfter) {
			keys = append(keys, s.Secret)
			active++
			p.noteChange(s.NotAfter)
		}
	}
	for i, k := range cfg.SigningKeys {
		if _, err := parseSigningKey(k.Key); err != nil {
			fail(fmt.Sprintf("signingKeys[%d].key", i), "whsk", "is not a valid signing key: %s", strings.TrimPrefix(err.Error(), "invalid key: "))
			continue
		}
		p.secrets = append(p.secrets, k.Key)
		if k.NotAfter.IsZero() || now.Before(k.NotAfter) {
			keys = append(keys, k.Key)
			active++
			p.noteChange(k.NotAfter)
		}
	}
	if active == 0 && len(fields) == 0 {
		if len(cfg.Secrets)+len(cfg.SigningKeys) == 0 {
			fail("secrets", "required", "must hold at least one secret (or signingKeys one signing key)")
		} else {
			fail("secrets", "active", "has no active secret, nor signingKeys an active key: every notAfter has passed")
		}
	}

	names := make([]string, 0, len(cfg.Headers))
	for name := range cfg.Headers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		field := "headers." + name
		value := cfg.Headers[name]
		switch {
		case !validHeaderName(name):
			fail(field, "header_name", "is not a valid header name")
		case reservedHeader(name):
			fail(field, "reserved", "is set by the deliverer and cannot be overridden")
		case strings.EqualFold(name, "Authorization") && cfg.Auth != nil:
			fail(field, "excluded_with", "cannot be set together with auth")
		case !validHeaderValue(value):
			fail(field, "header_value", "has a control character in its value")
		case len(p.headers.Values(name)) > 0:
			fail(field, "unique", "repeats another header's name (names are case-insensitive)")
		default:
			p.headers.Add(name, value)
			p.addSecret(value)
			if _, last, ok := strings.Cut(value, " "); ok {
				p.addSecret(strings.TrimSpace(last)) // the credential of "Bearer xyz"
			}
		}
	}

	if a := cfg.Auth; a != nil {
		switch a.Type {
		case AuthBearer:
			switch {
			case a.Username != "" || a.Password != "":
				fail("auth", "excluded_with", "of type bearer takes a token, not a username or password")
			case !validToken(a.Token):
				fail("auth.token", "header_value", "has spaces or control characters")
			default:
				p.headers.Set("Authorization", "Bearer "+a.Token)
				p.addSecret(a.Token)
			}
		case AuthBasic:
			switch {
			case a.Token != "":
				fail("auth", "excluded_with", "of type basic takes a username and password, not a token")
			case strings.Contains(a.Username, ":") || !validHeaderValue(a.Username):
				fail("auth.username", "basic_username", "must not contain ':' or control characters")
			case !validHeaderValue(a.Password):
				fail("auth.password", "header_value", "has control characters")
			default:
				cred := base64.StdEncoding.EncodeToString([]byte(a.Username + ":" + a.Password))
				p.headers.Set("Authorization", "Basic "+cred)
				p.addSecret(cred)
				p.addSecret(a.Password)
			}
		}
	}

	for i, code := range cfg.RetryStatuses {
		if code == http.StatusGone {
			fail(fmt.Sprintf("retryStatuses[%d]", i), "ne", "cannot be 410: 410 Gone always disables the subscription")
		}
	}

	if len(fields) > 0 {
		return nil, &outhook.ConfigError{Deliverer: ID, Fields: fields}
	}
	if p.signer, err = newSigner(keys, true); err != nil {
		// Unreachable: every key was parsed above.
		return nil, &outhook.ConfigError{Deliverer: ID, Err: err}
	}
	return p, nil
}

// noteChange records a key's notAfter, if it has one, as a time at which
// the prepared config stops being valid.
func (p *prepared) noteChange(notAfter time.Time) {
	if !notAfter.IsZero() && (p.changesAt.IsZero() || notAfter.Before(p.changesAt)) {
		p.changesAt = notAfter
	}
}

func (p *prepared) addSecret(s string) {
	if len(s) >= minRedact && !slices.Contains(p.secrets, s) {
		p.secrets = append(p.secrets, s)
	}
}

// reservedHeader reports headers a config cannot set: those the deliverer
// writes (the Standard Webhooks headers, Content-Type, User-Agent), those
// the HTTP client owns (Host, Content-Length, the hop-by-hop headers of RFC
// 9110 §7.6.1) and proxy credentials.
func reservedHeader(name string) bool {
	n := strings.ToLower(name)
	if strings.HasPrefix(n, "webhook-") || strings.HasPrefix(n, "proxy-") {
		return true
	}
	switch n {
	case "content-type", "content-length", "content-encoding", "host", "user-agent",
		"connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "expect":
		return true
	}
	return false
}

// validHeaderName reports whether name is an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue reports whether v can be sent as a header value: no
// control characters other than tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// validToken reports whether a bearer token is non-empty printable text
// without spaces.
func validToken(t string) bool {
	return t != "" && validHeaderValue(t) && !strings.ContainsAny(t, " \t")
}
