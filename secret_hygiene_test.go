package outhook_test

// Secret hygiene (issue 7, item 5): subscriptions of every deliverer are
// configured with secrets that are easy to find, a full scenario runs
// against hostile loopback receivers that echo what they are sent, and every
// log line, attempt record, admin API answer, error string and operational
// event is scanned for the secrets.

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/adminhttp"
	"github.com/outhook/outhook/discord"
	"github.com/outhook/outhook/jira"
	"github.com/outhook/outhook/outhooktest"
	"github.com/outhook/outhook/pagerduty"
	"github.com/outhook/outhook/safehttp"
	"github.com/outhook/outhook/slack"
	"github.com/outhook/outhook/teams"
	"github.com/outhook/outhook/webhook"
	"github.com/stretchr/testify/require"
)

// hygMarker starts every secret of the test, so that a piece of one (a
// secret cut short by a truncation, say) is found as well as a whole one.
// Nothing else the test sends contains it.
const hygMarker = "SEKRET"

// The secrets of the valid subscriptions.
const (
	hygWhsecKey      = "SEKRET-whsec-hmac-key-00000001"   // 30 bytes: the HMAC key behind whsec_
	hygWhsecKey2     = "SEKRET-whsec-hmac-key-00000002"   // of the basic-auth webhook
	hygWhsecKey3     = "SEKRET-whsec-hmac-key-00000003"   // of the blocked webhook
	hygWhskSeed      = "SEKRET-whsk-ed25519-seed-0000001" // 32 bytes: the ed25519 seed behind whsk_
	hygBearer        = "SEKRET-bearer-token-0001"
	hygBasicUser     = "svc-hygiene"
	hygBasicPassword = "SEKRET-basic-pass-0001"
	hygHeaderAPIKey  = "SEKRET-header-apikey-0001" // X-Api-Key: named like a credential
	hygHeaderCustom  = "SEKRET-header-custom-0001" // X-Tenant-Ident: not named like one
	hygURLToken      = "SEKRET-webhook-urltoken-0001"
	hygBlockedToken  = "SEKRET-blocked-urltoken-0001"
	hygSlackToken    = "SEKRET-slack-token-0001"
	hygTeamsSig      = "SEKRET-teams-sig-0001"
	hygDiscordToken  = "SEKRET-discord-token-0001"
	hygPDKey         = "SEKRET-pd-routing-key-0123456789" // 32 characters
	hygJiraEmail     = "ops@example.com"
	hygJiraToken     = "SEKRET-jira-api-token-0001"
)

// Paths of the secret URLs on the receivers.
const (
	hygSlackPath   = "/services/T0HYGIENE/B0HYGIENE/" + hygSlackToken
	hygTeamsPath   = "/workflows/0f1e2d3c/triggers/manual/paths/invoke"
	hygTeamsQuery  = "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=" + hygTeamsSig
	hygDiscordPath = "/api/webhooks/123456789012345678/" + hygDiscordToken
)

var (
	hygWhsec  = webhook.SecretPrefix + base64.StdEncoding.EncodeToString([]byte(hygWhsecKey))
	hygWhsec2 = webhook.SecretPrefix + base64.StdEncoding.EncodeToString([]byte(hygWhsecKey2))
	hygWhsec3 = webhook.SecretPrefix + base64.StdEncoding.EncodeToString([]byte(hygWhsecKey3))
	hygWhsk   = webhook.SigningKeyPrefix + base64.StdEncoding.EncodeToString([]byte(hygWhskSeed))
)

// hygNeedle is one secret to look for, in each of its spellings.
type hygNeedle struct {
	name  string
	forms []string
}

// hygNeedles lists the secrets with the encodings they may travel in: as
// they are, escaped for a URL query or path or a JSON string, and for keys
// the decoded key bytes in hex and base64; the Basic credentials of the
// webhook and Jira as sent.
func hygNeedles(extra ...string) []hygNeedle {
	plain := func(name, s string) hygNeedle {
		n := hygNeedle{name: name}
		q, _ := json.Marshal(s)
		for _, f := range []string{s, url.QueryEscape(s), url.PathEscape(s), string(q[1 : len(q)-1])} {
			if !slices.Contains(n.forms, f) {
				n.forms = append(n.forms, f)
			}
		}
		return n
	}
	key := func(name, prefixed, raw string) hygNeedle {
		n := plain(name, prefixed)
		b := []byte(raw)
		for _, f := range []string{
			base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b),
			base64.URLEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b),
			hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)),
		} {
			n.forms = append(n.forms, f, url.QueryEscape(f))
		}
		return n
	}
	basic := func(name, user, password string) hygNeedle {
		return plain(name, base64.StdEncoding.EncodeToString([]byte(user+":"+password)))
	}
	out := []hygNeedle{
		key("webhook signing secret (whsec_)", hygWhsec, hygWhsecKey),
		key("second webhook signing secret (whsec_)", hygWhsec2, hygWhsecKey2),
		key("blocked webhook's signing secret (whsec_)", hygWhsec3, hygWhsecKey3),
		key("webhook ed25519 signing key (whsk_)", hygWhsk, hygWhskSeed),
		plain("webhook bearer token", hygBearer),
		plain("webhook basic-auth password", hygBasicPassword),
		basic("webhook basic-auth credentials (base64)", hygBasicUser, hygBasicPassword),
		plain("webhook header X-Api-Key value", hygHeaderAPIKey),
		plain("webhook header X-Tenant-Ident value", hygHeaderCustom),
		plain("webhook URL query token", hygURLToken),
		plain("blocked webhook URL query token", hygBlockedToken),
		plain("Slack webhook URL token", hygSlackToken),
		plain("Teams workflow URL sig", hygTeamsSig),
		plain("Discord webhook token", hygDiscordToken),
		plain("PagerDuty routing key", hygPDKey),
		plain("Jira API token", hygJiraToken),
		basic("Jira basic credentials (base64)", hygJiraEmail, hygJiraToken),
	}
	for _, s := range extra {
		out = append(out, plain("secret of an invalid config: "+s, s))
	}
	// Last: reported only where no whole secret was found.
	return append(out, hygNeedle{name: "a piece of a secret (marker " + hygMarker + ")", forms: []string{hygMarker}})
}

// hygCapture collects every text the scenario produced, each with where it
// came from.
type hygCapture struct {
	mu    sync.Mutex
	items []hygItem
}

type hygItem struct{ where, text string }

func (c *hygCapture) add(where, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.items = append(c.items, hygItem{where, text})
}

// addJSON records v marshalled, all of its fields.
func (c *hygCapture) addJSON(t *testing.T, where string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err, where)
	c.add(where, string(b))
}

// addErr records an error's text; a nil error records nothing.
func (c *hygCapture) addErr(where string, err error) {
	if err != nil {
		c.add("error of "+where, err.Error())
	}
}

// hygLog is a concurrency-safe log sink.
type hygLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *hygLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *hygLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// hygReceiver is a hostile destination for every deliverer: in each mode it
// answers with the request it received echoed back, in the body (in the
// fields where each service puts its error messages and IDs) and in
// response headers.
type hygReceiver struct {
	plain, tls *httptest.Server
	quit       chan struct{}

	mu    sync.Mutex
	mode  string
	count map[string]int // requests per mode
}

// Receiver modes.
const (
	hygOK              = "ok"               // success, echoing
	hygFail500         = "500"              // 500, echoing
	hygUnauthorized    = "401"              // 401, echoing
	hygHang            = "hang"             // no answer until the client gives up
	hygRedirect        = "redirect"         // 302 to loopback, the secrets in Location
	hygRedirectBlocked = "redirect-blocked" // 307 to the cloud metadata address, the secrets in Location
	hygGone            = "gone"             // 410 (Slack, Teams: 404), echoing
)

func newHygReceiver(t *testing.T) *hygReceiver {
	h := &hygReceiver{quit: make(chan struct{}), mode: hygOK, count: map[string]int{}}
	h.plain = httptest.NewServer(h)
	h.tls = httptest.NewTLSServer(h)
	t.Cleanup(func() {
		close(h.quit)
		h.plain.Close()
		h.tls.Close()
	})
	return h
}

func (h *hygReceiver) setMode(m string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mode = m
}

func (h *hygReceiver) requests(mode string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.count[mode]
}

// hygEcho is the request as text: request line, headers, body.
func hygEcho(r *http.Request, body []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", r.Method, r.URL.RequestURI())
	names := make([]string, 0, len(r.Header))
	for name := range r.Header {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, v := range r.Header[name] {
			fmt.Fprintf(&b, "%s: %s\n", name, v)
		}
	}
	b.WriteString("\n")
	b.Write(body)
	return b.String()
}

func (h *hygReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	mode := h.mode
	h.count[mode]++
	h.mu.Unlock()

	echo := hygEcho(r, body)
	for name, vs := range r.Header {
		for _, v := range vs {
			w.Header().Add("X-Echo-"+name, v)
		}
	}
	w.Header().Set("X-Echo-Uri", r.URL.RequestURI())
	auth := r.Header.Get("Authorization")
	// An answer in the shape of every service's errors, each message the
	// echo: Discord and PagerDuty read message, PagerDuty errors, Teams
	// error.message, Jira errorMessages, Slack the first line.
	failure := func(status int) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"message":       echo,
			"code":          0,
			"errors":        []string{echo, auth},
			"error":         map[string]string{"code": "Echo", "message": echo},
			"errorMessages": []string{echo, auth},
			"dedup_key":     auth,
		})
	}

	switch mode {
	case hygOK:
		h.succeed(w, r, echo, auth)
	case hygFail500:
		failure(http.StatusInternalServerError)
	case hygUnauthorized:
		w.Header().Set("WWW-Authenticate", `Basic realm="`+strings.ReplaceAll(auth, `"`, "")+`"`)
		failure(http.StatusUnauthorized)
	case hygHang:
		select {
		case <-r.Context().Done():
		case <-h.quit:
		}
	case hygRedirect, hygRedirectBlocked:
		q := url.Values{"uri": {r.URL.RequestURI()}, "auth": {auth}, "body": {string(body[:min(len(body), 2048)])}}
		loc := h.plain.URL + "/landing/" + url.PathEscape(auth) + r.URL.EscapedPath() + "?" + q.Encode()
		status := http.StatusFound
		if mode == hygRedirectBlocked {
			loc = "http://169.254.169.254/latest/meta-data/" + url.PathEscape(auth) + r.URL.EscapedPath() + "?" + q.Encode()
			status = http.StatusTemporaryRedirect
		}
		w.Header().Set("Location", loc)
		failure(status)
	case hygGone:
		status := http.StatusGone
		if strings.HasPrefix(r.URL.Path, "/services/") || strings.HasPrefix(r.URL.Path, "/workflows/") {
			status = http.StatusNotFound // Slack and Teams: the webhook was deleted
		}
		failure(status)
	}
}

// succeed answers as each service does on success, with the echo, and the
// IDs it reports set to what it was sent.
func (h *hygReceiver) succeed(w http.ResponseWriter, r *http.Request, echo, auth string) {
	w.Header().Set("Content-Type", "application/json")
	switch {
	case strings.HasSuffix(r.URL.Path, "/rest/api/3/search/jql"):
		_ = json.NewEncoder(w).Encode(map[string]any{"issues": []any{}, "echo": echo})
	case strings.HasSuffix(r.URL.Path, "/rest/api/3/issue"):
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"id": "10001", "key": auth, "self": echo})
	case strings.HasSuffix(r.URL.Path, "/v2/enqueue"):
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "message": echo, "dedup_key": echo})
	case strings.HasPrefix(r.URL.Path, "/api/webhooks/"):
		_ = json.NewEncoder(w).Encode(map[string]any{"id": r.URL.RequestURI(), "content": echo})
	default:
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "echo": echo})
	}
}

// HygieneAlert is the payload of the scenario's events. Nothing in it is a
// secret.
type HygieneAlert struct {
	AlertID  string `json:"alertId" validate:"required"`
	Title    string `json:"title" validate:"required,max=100"`
	Severity string `json:"severity" validate:"required,oneof=critical warning info"`
}

var (
	hygAlertRaised = outhook.MustNewHook[HygieneAlert]("alert.raised")
	hygAlertBroken = outhook.MustNewHook[HygieneAlert]("alert.broken")
)

func TestSecretHygiene(t *testing.T) {
	ctx := context.Background()
	capt := &hygCapture{}
	logs := &hygLog{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	recv := newHygReceiver(t)

	// One client for every deliverer: loopback allowed, the TLS receiver
	// trusted; a short timeout for the hanging receiver.
	pool := x509.NewCertPool()
	pool.AddCert(recv.tls.Certificate())
	hc, err := safehttp.New(&safehttp.Config{
		Allow:   []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		RootCAs: pool,
		Timeout: 2 * time.Second,
	})
	require.NoError(t, err)
	t.Cleanup(hc.Close)

	whd, err := webhook.New(&webhook.Options{HTTP: hc})
	require.NoError(t, err)
	sld, err := slack.New(&slack.Options{HTTP: hc, AllowAnyHost: true})
	require.NoError(t, err)
	tmd, err := teams.New(&teams.Options{HTTP: hc, AllowAnyHost: true})
	require.NoError(t, err)
	dcd, err := discord.New(&discord.Options{HTTP: hc, AllowAnyHost: true})
	require.NoError(t, err)
	pdd, err := pagerduty.New(&pagerduty.Options{HTTP: hc, BaseURL: recv.plain.URL + "/pd"})
	require.NoError(t, err)
	jrd, err := jira.New(&jira.Options{HTTP: hc, AllowAnyHost: true})
	require.NoError(t, err)
	ops := outhooktest.NewDeliverer("ops")
	deliverers := []outhook.Deliverer{whd, sld, tmd, dcd, pdd, jrd, ops}

	reg := outhook.NewEventRegistry()
	plugin := outhook.PluginMetadata{PluginID: "hygiene", DisplayName: "Hygiene"}
	_, err = outhook.RegisterEvent(reg, outhook.EventDefinition[HygieneAlert]{
		Hook: hygAlertRaised, DisplayName: "Alert raised", Category: outhook.CategoryHealth,
	}, plugin)
	require.NoError(t, err)
	_, err = outhook.RegisterEvent(reg, outhook.EventDefinition[HygieneAlert]{
		Hook: hygAlertBroken, DisplayName: "Alert with a broken transform",
		TransformPayload: func(a HygieneAlert) (map[string]any, error) {
			return nil, fmt.Errorf("transform refused alert %s", a.AlertID)
		},
	}, plugin)
	require.NoError(t, err)

	client := outhooktest.NewClient(t, &outhook.Config{
		Registry:                 reg,
		Deliverers:               deliverers,
		Logger:                   logger,
		DeliveryRetry:            outhooktest.NoDelay(2),
		HandlerRetry:             outhooktest.NoDelay(2),
		FailingAttemptsThreshold: 1,
		DeliveryTimeout:          5 * time.Second,
	})
	admin, err := adminhttp.New(client, &adminhttp.Options{
		Authorize:  func(*http.Request, adminhttp.Operation) error { return nil },
		Deliverers: deliverers,
		Logger:     logger,
	})
	require.NoError(t, err)
	// call sends one admin request and records the answer.
	call := func(method, path string, body any) *httptest.ResponseRecorder {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, ok := body.([]byte)
			if !ok {
				var err error
				b, err = json.Marshal(body)
				require.NoError(t, err)
			}
			rd = bytes.NewReader(b)
		}
		r := httptest.NewRequest(method, path, rd)
		if body != nil {
			r.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		admin.ServeHTTP(w, r)
		var hdr strings.Builder
		_ = w.Header().Write(&hdr)
		capt.add(fmt.Sprintf("admin %s %s (%d)", method, path, w.Code), hdr.String()+"\n"+w.Body.String())
		return w
	}

	// The subscriptions, each with its secrets.
	webhookConfig := map[string]any{
		"url":         recv.plain.URL + "/webhook/full?token=" + hygURLToken,
		"secrets":     []map[string]any{{"secret": hygWhsec}},
		"signingKeys": []map[string]any{{"key": hygWhsk}},
		"headers":     map[string]string{"X-Api-Key": hygHeaderAPIKey, "X-Tenant-Ident": hygHeaderCustom},
		"auth":        map[string]any{"type": "bearer", "token": hygBearer},
	}
	subs := []struct {
		name, deliverer string
		config          any
	}{
		{"webhook-full", webhook.ID, webhookConfig},
		{"webhook-basic", webhook.ID, map[string]any{
			"url":     recv.plain.URL + "/webhook/basic",
			"secrets": []map[string]any{{"secret": hygWhsec2}},
			"auth":    map[string]any{"type": "basic", "username": hygBasicUser, "password": hygBasicPassword},
		}},
		{"webhook-blocked", webhook.ID, map[string]any{
			"url":     "http://10.0.0.1:9/blocked?token=" + hygBlockedToken,
			"secrets": []map[string]any{{"secret": hygWhsec3}},
		}},
		{"slack", slack.ID, map[string]any{"webhookUrl": recv.plain.URL + hygSlackPath}},
		{"teams", teams.ID, map[string]any{"webhookUrl": recv.tls.URL + hygTeamsPath + hygTeamsQuery}},
		{"discord", discord.ID, map[string]any{"webhookUrl": recv.plain.URL + hygDiscordPath}},
		{"pagerduty", pagerduty.ID, map[string]any{"routingKey": hygPDKey}},
		{"jira", jira.ID, map[string]any{
			"baseUrl": recv.plain.URL + "/jira", "email": hygJiraEmail, "apiToken": hygJiraToken, "projectKey": "OPS",
		}},
	}
	var subIDs []string
	for i, s := range subs {
		raw, err := json.Marshal(s.config)
		require.NoError(t, err)
		in := outhook.Subscription{Name: s.name, Events: []string{"hygiene.**"}, DelivererID: s.deliverer, Config: raw}
		if i%2 == 0 {
			created, err := client.CreateSubscription(ctx, in)
			require.NoError(t, err, s.name)
			capt.addJSON(t, "CreateSubscription result "+s.name, created)
			subIDs = append(subIDs, created.ID)
			continue
		}
		w := call("POST", "/subscriptions", map[string]any{
			"name": in.Name, "events": in.Events, "delivererId": in.DelivererID, "config": s.config,
		})
		require.Equal(t, http.StatusCreated, w.Code, "%s: %s", s.name, w.Body.String())
		var created outhook.Subscription
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &created))
		subIDs = append(subIDs, created.ID)
	}
	opsSub, err := client.CreateSubscription(ctx, outhook.Subscription{
		Name: "ops", Events: []string{"outhook.**"}, DelivererID: ops.ID(), Config: json.RawMessage(`{}`),
	})
	require.NoError(t, err)

	// Invalid configs, each holding a secret an error might quote.
	invalid := []struct {
		deliverer string
		config    string
	}{
		{webhook.ID, `{"url":"` + recv.plain.URL + `/x?token=SEKRET-invalid-urltoken-0001","secrets":[{"secret":"whsec_SEKRET-invalid-whsec-0001!"}]}`},
		{webhook.ID, `{"url":"http://svc:SEKRET-invalid-urlpassword-0001@127.0.0.1/x","secrets":[{"secret":"` + hygWhsec + `"}]}`},
		{webhook.ID, `{"url":"http://127.0.0.1/x","secrets":[{"secret":"` + hygWhsec + `"}],"auth":{"type":"bearer","token":"SEKRET-invalid bearer-0001"}}`},
		{webhook.ID, `{"url":"http://127.0.0.1/x","secrets":[{"secret":"` + hygWhsec + `"}],"auth":{"type":"basic","username":"a:b","password":"SEKRET-invalid-basic-0001"}}`},
		{webhook.ID, `{"url":"http://127.0.0.1/x","secrets":[{"secret":"` + hygWhsec + `"}],"headers":{"X-Api-Key":"SEKRET-invalid-header\u0001-0001"}}`},
		{webhook.ID, `{"url":"http://127.0.0.1/x","secrets":[{"secret":"` + hygWhsec + `"}],"headers":{"Webhook-Id":"SEKRET-invalid-reserved-0001"}}`},
		{webhook.ID, `{"url":"not a url SEKRET-invalid-url-0001","secrets":[{"secret":"` + hygWhsec + `"}]}`},
		{webhook.ID, `{"url":"http://127.0.0.1/x","secrets":"SEKRET-invalid-type-0001"}`},
		{webhook.ID, `{"url":"http://127.0.0.1/x","secrets":[{"secret":"whsk_SEKRET-invalid-prefix-0001"}],"signingKeys":[{"key":"whsec_SEKRET-invalid-key-0001"}]}`},
		// notAfter is no secret, and its decoding error quotes it: not-a-time.
		{webhook.ID, `{"url":"http://127.0.0.1/x","secrets":[{"secret":"` + hygWhsec + `","notAfter":"not-a-time"}],"auth":{"type":"bearer","token":"SEKRET-invalid-bearer-0002"}}`},
		{slack.ID, `{"webhookUrl":"ftp://127.0.0.1/services/T0/B0/SEKRET-invalid-slack-0001"}`},
		{slack.ID, `{"webhookUrl":"http://[::1/services/T0/B0/SEKRET-invalid-slack-0002"}`},
		{slack.ID, `{"webhookUrl":"http://u:SEKRET-invalid-slack-0003@127.0.0.1/services/T0/B0/x"}`},
		{teams.ID, `{"webhookUrl":"http://127.0.0.1/workflows/x?sig=SEKRET-invalid-teams-0001"}`},
		{teams.ID, `{"webhookUrl":"https://u:SEKRET-invalid-teams-0002@127.0.0.1/workflows/x?sig=s"}`},
		{discord.ID, `{"webhookUrl":"http://127.0.0.1/api/webhooks/notanid/SEKRET-invalid-discord-0001"}`},
		{discord.ID, `{"webhookUrl":"http://127.0.0.1/api/webhooks/1/tok?secret=SEKRET-invalid-discord-0002"}`},
		{pagerduty.ID, `{"routingKey":"SEKRET-invalid-pd-key"}`},
		{pagerduty.ID, `{"routingKey":"SEKRET-invalid-pd-key-01234567890"}`},
		{jira.ID, `{"baseUrl":"http://ops:SEKRET-invalid-jira-0001@127.0.0.1/jira","email":"ops@example.com","apiToken":"SEKRET-invalid-jira-0002","projectKey":"OPS"}`},
		{jira.ID, `{"baseUrl":"http://127.0.0.1/jira","email":"not-an-email","apiToken":"SEKRET-invalid-jira-0003","projectKey":"lower case"}`},
		{jira.ID, `{"baseUrl":"http://127.0.0.1/jira","email":"ops@example.com","apiToken":"SEKRET-invalid-jira-0004` + strings.Repeat("x", 1100) + `","projectKey":"OPS"}`},
		{"unknown", `{"token":"SEKRET-invalid-unknown-0001"}`},
		{webhook.ID, `{"url":"http://127.0.0.1/x","secrets":[{"secret":"SEKRET-invalid-trailing-0001"}]} "SEKRET-invalid-trailing-0002"`},
	}
	var invalidSecrets []string
	for _, c := range invalid {
		invalidSecrets = append(invalidSecrets, hygInvalidSecrets(c.config)...)
	}
	for i, c := range invalid {
		where := fmt.Sprintf("invalid config %d (%s)", i, c.deliverer)
		_, err := client.CreateSubscription(ctx, outhook.Subscription{
			Name: "invalid", Events: []string{"hygiene.**"}, DelivererID: c.deliverer, Config: json.RawMessage(c.config),
		})
		require.Error(t, err, where)
		capt.addErr("CreateSubscription, "+where, err)
		body := []byte(`{"name":"invalid","events":["hygiene.**"],"delivererId":"` + c.deliverer + `","config":` + c.config + `}`)
		w := call("POST", "/subscriptions", body)
		require.GreaterOrEqual(t, w.Code, 400, where)
		// An update to an existing subscription, with the same config.
		upd := call("PUT", "/subscriptions/"+subIDs[0], body)
		require.GreaterOrEqual(t, upd.Code, 400, where)
		_, err = client.UpdateSubscription(ctx, outhook.Subscription{
			ID: subIDs[0], Name: "invalid", Events: []string{"hygiene.**"}, DelivererID: c.deliverer, Config: json.RawMessage(c.config),
		})
		require.Error(t, err, where)
		capt.addErr("UpdateSubscription, "+where, err)
	}

	// The scenario: each phase emits an alert and waits for its deliveries
	// to end.
	var seq int
	emit := func(phase string) {
		t.Helper()
		seq++
		id := fmt.Sprintf("alert-%d-%s", seq, phase)
		require.NoError(t, outhook.EmitHook(ctx, client, hygAlertRaised, HygieneAlert{AlertID: id, Title: "Disk full on db-1", Severity: "critical"}))
		require.NoError(t, outhook.EmitHook(ctx, client, hygAlertBroken, HygieneAlert{AlertID: id, Title: "Broken", Severity: "info"}))
		outhooktest.WaitIdle(t, client)
	}
	phase := func(mode string) {
		t.Helper()
		recv.setMode(mode)
		emit(mode)
	}
	phase(hygOK)
	phase(hygFail500)
	// Tests of each subscription against the failing receiver, through the
	// client and the admin API.
	for _, id := range subIDs {
		a, err := client.SendTest(ctx, id)
		capt.addJSON(t, "SendTest attempt "+id, a)
		capt.addErr("SendTest "+id, err)
		call("POST", "/subscriptions/"+id+"/test", nil)
	}
	phase(hygOK) // recovers the subscriptions
	phase(hygUnauthorized)
	phase(hygHang)
	phase(hygRedirect)
	phase(hygRedirectBlocked)

	// An invalid payload, and emitting after a failed transform.
	err = outhook.EmitHook(ctx, client, hygAlertRaised, HygieneAlert{Title: strings.Repeat("t", 101), Severity: "sev"})
	require.ErrorIs(t, err, outhook.ErrInvalidPayload)
	capt.addErr("EmitHook of an invalid payload", err)

	phase(hygGone) // disables the subscriptions whose destination is gone

	// Enable them again, update each with its config as the admin API shows
	// it (secrets masked, so kept), redeliver, and check that the secrets
	// still work: the deliveries succeed.
	recv.setMode(hygOK)
	for _, id := range subIDs {
		call("POST", "/subscriptions/"+id+"/enable", nil)
		w := call("GET", "/subscriptions/"+id, nil)
		require.Equal(t, http.StatusOK, w.Code)
		var shown outhook.Subscription
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &shown))
		upd := call("PUT", "/subscriptions/"+id, map[string]any{
			"name": shown.Name, "events": shown.Events, "delivererId": shown.DelivererID, "config": shown.Config,
		})
		require.Equal(t, http.StatusOK, upd.Code, "update %s with its masked config: %s", shown.Name, upd.Body.String())
		failed, err := client.Deliveries(ctx, outhook.DeliveryQuery{SubscriptionID: id, Status: outhook.DeliveryFailed, Limit: 1})
		require.NoError(t, err)
		if len(failed) > 0 {
			call("POST", "/deliveries/"+failed[0].ID+"/redeliver", nil)
		}
	}
	emit("final")
	call("POST", "/subscriptions/"+subIDs[1]+"/recover", map[string]any{"since": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)})
	if fe, err := client.FailedEvents(ctx, 10); err == nil && len(fe) > 0 {
		call("POST", "/messages/"+fe[0].MessageID+"/replay", map[string]any{})
	}
	outhooktest.WaitIdle(t, client)

	// The scenario did what it says: every mode was answered, and the
	// attempts failed in each way.
	for _, m := range []string{hygOK, hygFail500, hygUnauthorized, hygHang, hygRedirect, hygRedirectBlocked, hygGone} {
		require.Positive(t, recv.requests(m), "the receivers got no request in mode %s", m)
	}
	var all []outhook.Delivery
	for after := (outhook.DeliveryCursor{}); ; {
		page, err := client.Deliveries(ctx, outhook.DeliveryQuery{After: after, Limit: 100})
		require.NoError(t, err)
		all = append(all, page...)
		if len(page) < 100 {
			break
		}
		after = page[len(page)-1].Cursor()
	}
	classes := map[string]bool{}
	statuses := map[int]bool{}
	for _, d := range all {
		for _, a := range d.Attempts {
			classes[a.ErrorClass] = true
			statuses[a.StatusCode] = true
		}
	}
	for _, c := range []string{outhook.ErrorClassTimeout, outhook.ErrorClassBlocked, outhook.ErrorClassHTTPStatus} {
		require.True(t, classes[c], "no attempt failed with class %s: %v", c, classes)
	}
	for _, code := range []int{200, 201, 202, 302, 401, 404, 410, 500} {
		require.True(t, statuses[code], "no attempt was answered %d: %v", code, statuses)
	}
	// The receivers' echoes reached the attempt records, scrubbed: the scan
	// below looks at records that held the secrets.
	scrubbed := map[string]bool{}
	for _, d := range all {
		for _, a := range d.Attempts {
			if strings.Contains(a.Response, "[redacted]") {
				scrubbed[a.DelivererID] = true
			}
		}
	}
	for _, id := range []string{webhook.ID, slack.ID, teams.ID, discord.ID, pagerduty.ID, jira.ID} {
		require.True(t, scrubbed[id], "no response excerpt of %s had a secret scrubbed: did the echo arrive?", id)
	}
	// The last event reached every destination but the blocked one with
	// the secrets kept through the masked update.
	for i, id := range subIDs {
		if subs[i].name == "webhook-blocked" {
			continue
		}
		got, err := client.Deliveries(ctx, outhook.DeliveryQuery{SubscriptionID: id, EventID: "hygiene.alert.raised", Limit: 1})
		require.NoError(t, err)
		require.NotEmpty(t, got)
		require.Equal(t, outhook.DeliverySucceeded, got[0].Status, "%s after its masked update: %s", subs[i].name, got[0].LastError)
	}

	// Capture everything.
	for _, d := range all {
		where := fmt.Sprintf("delivery %s (%s, %s)", d.ID, d.EventID, d.DelivererID)
		for _, a := range d.Attempts {
			capt.addJSON(t, fmt.Sprintf("attempt %d of %s", a.Number, where), a)
		}
		d.Attempts = nil
		capt.addJSON(t, where, d)
		one, err := client.Delivery(ctx, d.ID)
		capt.addErr("Delivery "+d.ID, err)
		capt.addJSON(t, "Client.Delivery "+d.ID, one)
	}
	views, err := client.Subscriptions(ctx)
	require.NoError(t, err)
	capt.addJSON(t, "Client.Subscriptions", views)
	for _, id := range append(slices.Clone(subIDs), opsSub.ID) {
		v, err := client.Subscription(ctx, id)
		capt.addErr("Subscription "+id, err)
		capt.addJSON(t, "Client.Subscription "+id, v)
	}
	failedEvents, err := client.FailedEvents(ctx, 100)
	require.NoError(t, err)
	require.NotEmpty(t, failedEvents, "the broken transform's events")
	capt.addJSON(t, "Client.FailedEvents", failedEvents)
	stats, err := client.DeliveryStats(ctx, outhook.DeliveryStatsQuery{Since: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Minute)})
	require.NoError(t, err)
	capt.addJSON(t, "Client.DeliveryStats", stats)
	opsCalls := ops.Calls()
	require.NotEmpty(t, opsCalls)
	opsEvents := map[string]bool{}
	for i, c := range opsCalls {
		opsEvents[c.Request.EventID] = true
		capt.add(fmt.Sprintf("ops event %d (%s)", i, c.Request.EventID), string(c.Request.Payload))
	}
	for _, ev := range []string{outhook.EventDeliveryFailing, outhook.EventDeliveryExhausted, outhook.EventSubscriptionDisabled, outhook.EventSubscriptionRecovered} {
		require.True(t, opsEvents[ev], "no %s event: %v", ev, opsEvents)
	}

	// Every GET route of the admin API, for every value of its parameters.
	events := reg.Events()
	params := map[string][]string{"subscriptionId": append(slices.Clone(subIDs), opsSub.ID)}
	for _, ev := range events {
		params["eventId"] = append(params["eventId"], ev.ID)
	}
	for _, d := range all {
		params["deliveryId"] = append(params["deliveryId"], d.ID)
	}
	for _, op := range adminhttp.Operations() {
		if op.Method != "GET" {
			continue
		}
		paths := []string{op.Path}
		for name, values := range params {
			var next []string
			for _, p := range paths {
				if !strings.Contains(p, "{"+name+"}") {
					next = append(next, p)
					continue
				}
				for _, v := range values {
					next = append(next, strings.ReplaceAll(p, "{"+name+"}", url.PathEscape(v)))
				}
			}
			paths = next
		}
		for _, p := range paths {
			require.NotContains(t, p, "{", "route %s has a parameter the test does not fill", op.Path)
			w := call("GET", p, nil)
			require.Equal(t, http.StatusOK, w.Code, "GET %s: %s", p, w.Body.String())
		}
	}
	for _, id := range subIDs {
		call("GET", "/deliveries?limit=500&subscriptionId="+id, nil)
		call("GET", "/stats?subscriptionId="+id, nil)
	}
	for _, st := range []string{"failed", "succeeded", "pending"} {
		call("GET", "/deliveries?limit=500&status="+st, nil)
	}
	call("GET", "/subscriptions?limit=1", nil)
	call("GET", "/failed-events?limit=100", nil)

	// The deliverers' own errors, for the real hosts of each service (the
	// URLs they redact by host), resolved to a private address: refused
	// before anything is sent.
	blockedHC, err := safehttp.New(&safehttp.Config{Resolver: safehttp.LookupFunc(func(context.Context, string, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("10.0.0.1")}, nil
	})})
	require.NoError(t, err)
	t.Cleanup(blockedHC.Close)
	strict := []struct {
		d      outhook.Deliverer
		config any
	}{
		{hygMust(slack.New(&slack.Options{HTTP: blockedHC})), map[string]any{"webhookUrl": "https://hooks.slack.com" + hygSlackPath}},
		{hygMust(teams.New(&teams.Options{HTTP: blockedHC})), map[string]any{"webhookUrl": "https://prod-12.westus.logic.azure.com:443" + hygTeamsPath + hygTeamsQuery}},
		{hygMust(discord.New(&discord.Options{HTTP: blockedHC})), map[string]any{"webhookUrl": "https://discord.com" + hygDiscordPath}},
		{hygMust(pagerduty.New(&pagerduty.Options{HTTP: blockedHC})), map[string]any{"routingKey": hygPDKey}},
		{hygMust(jira.New(&jira.Options{HTTP: blockedHC})), map[string]any{"baseUrl": "https://hygiene.atlassian.net", "email": hygJiraEmail, "apiToken": hygJiraToken, "projectKey": "OPS"}},
		{hygMust(webhook.New(&webhook.Options{HTTP: blockedHC})), webhookConfig},
	}
	for _, s := range strict {
		raw, err := json.Marshal(s.config)
		require.NoError(t, err)
		require.NoError(t, s.d.ValidateConfig(raw), s.d.ID())
		res, err := s.d.Deliver(ctx, &outhook.DeliveryRequest{
			DeliveryID: "dlv_hygiene", MessageID: "msg_hygiene", EventID: "hygiene.alert.raised",
			Subscription: outhook.Subscription{ID: "sub_hygiene", DelivererID: s.d.ID(), Config: raw},
			Payload:      json.RawMessage(`{"alertId":"a","title":"t","severity":"info"}`), OccurredAt: time.Now(), Attempt: 1,
		})
		require.Error(t, err, "%s: the address is blocked", s.d.ID())
		capt.addErr("Deliver of the strict "+s.d.ID()+" deliverer", err)
		capt.addJSON(t, "DeliveryResult of the strict "+s.d.ID()+" deliverer", res)
	}
	for _, c := range []struct {
		d      outhook.Deliverer
		config string
	}{
		{strict[0].d, `{"webhookUrl":"https://hooks.slack.com:8443/services/T0/B0/SEKRET-invalid-strict-0001"}`},
		{strict[0].d, `{"webhookUrl":"http://hooks.slack.com/services/T0/B0/SEKRET-invalid-strict-0002"}`},
		{strict[0].d, `{"webhookUrl":"https://hooks.slack.com/workflows/T0/SEKRET-invalid-strict-0003"}`},
		{strict[1].d, `{"webhookUrl":"https://example.com/workflows?sig=SEKRET-invalid-strict-0004"}`},
		{strict[2].d, `{"webhookUrl":"https://discord.com/api/webhooks/SEKRET-invalid-strict-0005"}`},
		{strict[4].d, `{"baseUrl":"https://example.com/?t=SEKRET-invalid-strict-0006","email":"ops@example.com","apiToken":"SEKRET-invalid-strict-0007","projectKey":"OPS"}`},
	} {
		err := c.d.ValidateConfig(json.RawMessage(c.config))
		require.Error(t, err, c.config)
		capt.addErr("ValidateConfig of the strict "+c.d.ID()+" deliverer", err)
		invalidSecrets = append(invalidSecrets, hygInvalidSecrets(c.config)...)
	}

	// Stop the client, so that its last log lines are written, and scan.
	stopCtx, cancel := context.WithTimeout(ctx, outhooktest.DefaultTimeout)
	defer cancel()
	require.NoError(t, client.Stop(stopCtx))
	for i, line := range strings.Split(logs.String(), "\n") {
		capt.add(fmt.Sprintf("log line %d", i+1), line)
	}

	// Report each secret found once, with every place it was found in and
	// the text around its first sighting.
	needles := hygNeedles(invalidSecrets...)
	type hits struct {
		places  []string
		example string
	}
	found := map[string]*hits{}
	for _, it := range capt.items {
		named := false // a whole secret was found: the marker adds nothing
		for _, n := range needles {
			for _, f := range n.forms {
				i := strings.Index(it.text, f)
				if i < 0 || named && f == hygMarker {
					continue
				}
				named = true
				h := found[n.name]
				if h == nil {
					h = &hits{example: fmt.Sprintf("%s, as %q: …%s…", it.where, f, hygContext(it.text, i, len(f)))}
					found[n.name] = h
				}
				h.places = append(h.places, it.where)
				break
			}
		}
	}
	t.Logf("scanned %d texts (%d log lines, %d deliveries, %d operational events) for %d secrets",
		len(capt.items), strings.Count(logs.String(), "\n"), len(all), len(opsCalls), len(needles))
	for _, n := range needles {
		if h := found[n.name]; h != nil {
			const shown = 12
			places := h.places
			more := ""
			if len(places) > shown {
				more = fmt.Sprintf("\n    … and %d more", len(places)-shown)
				places = places[:shown]
			}
			t.Errorf("%s leaked in %d places:\n    %s%s\n  first in %s", n.name, len(h.places), strings.Join(places, "\n    "), more, h.example)
		}
	}
}

// hygContext is the text around a hit.
func hygContext(s string, i, n int) string {
	from, to := max(i-60, 0), min(i+n+60, len(s))
	return strings.ReplaceAll(s[from:to], "\n", `\n`)
}

// hygMust returns v, panicking on err: for constructors that cannot fail
// with the options given.
func hygMust[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// hygInvalidSecrets returns the secrets of an invalid config: each run of
// letters, digits, '-' and '_' that starts with the marker.
func hygInvalidSecrets(config string) []string {
	var out []string
	for rest := config; ; {
		i := strings.Index(rest, hygMarker+"-invalid")
		if i < 0 {
			return out
		}
		rest = rest[i:]
		end := strings.IndexFunc(rest, func(r rune) bool {
			return !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
		})
		if end < 0 {
			end = len(rest)
		}
		out = append(out, rest[:end])
		rest = rest[end:]
	}
}
