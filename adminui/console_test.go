package adminui_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/adminhttp"
	"github.com/outhook/outhook/adminui"
	"github.com/outhook/outhook/outhooktest"
	"github.com/outhook/outhook/webhook"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewRefusesBadInput(t *testing.T) {
	_, err := adminui.New(nil, nil)
	require.ErrorContains(t, err, "api is nil")
	f := newFixture(t)
	api, err := adminhttp.New(f.client, nil)
	require.NoError(t, err)
	_, err = adminui.New(api, &adminui.Options{BasePath: "console/"})
	require.ErrorContains(t, err, "BasePath")
	_, err = adminui.NewTokenAuth("short")
	require.ErrorContains(t, err, "at least 16")
	_, err = adminui.NewTokenAuth("has a space in it, sadly")
	require.ErrorContains(t, err, "printable ASCII")
	require.Len(t, adminui.NewToken(), 43)
}

func TestSignIn(t *testing.T) {
	f := newFixture(t)
	b := f.newBrowser(t)

	res, _ := b.get("/subscriptions")
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "a request without a session goes to the sign-in page")
	require.Equal(t, "/admin/console/login?next="+url.QueryEscape("/subscriptions"), res.Header.Get("Location"))

	_, page := b.get("/login?next=/deliveries")
	assert.Contains(t, page, `name="next" value="/deliveries"`)
	res, page = b.post("/login", url.Values{"token": {"not-the-token-at-all"}, "next": {"/deliveries"}})
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Contains(t, page, "That token is not valid.")
	assert.Empty(t, b.cookie("outhook_session"))

	res, _ = b.post("/login", url.Values{"token": {testToken}, "next": {"/deliveries"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/admin/console/deliveries", res.Header.Get("Location"))
	session := b.cookie("outhook_session")
	require.NotEmpty(t, session)
	assert.NotContains(t, session, testToken, "the cookie is derived from the token, not the token")

	res, _ = b.get("/deliveries")
	require.Equal(t, http.StatusOK, res.StatusCode)

	// Only console paths are kept as the next page.
	res, _ = b.post("/login", url.Values{"token": {testToken}, "next": {"//evil.example/"}})
	require.Equal(t, "/admin/console/subscriptions", res.Header.Get("Location"))

	// The same token opens the admin API to programs.
	req, err := http.NewRequest("GET", f.server.URL+"/admin/api/events", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testToken)
	apiRes, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	apiRes.Body.Close()
	require.Equal(t, http.StatusOK, apiRes.StatusCode)

	res, _ = b.post("/logout", url.Values{})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	res, _ = b.get("/subscriptions")
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "signed out")
}

// TestWithoutLoginTheApplicationSignsIn: a console without Options.Login
// shows a page saying the user must sign in to the application, and
// passes the application's own credentials (here a cookie) to the API's
// authorizer.
func TestWithoutLoginTheApplicationSignsIn(t *testing.T) {
	f := newFixture(t)
	var ops []string
	api, err := adminhttp.New(f.client, &adminhttp.Options{Authorize: func(r *http.Request, op adminhttp.Operation) error {
		ck, err := r.Cookie("app_session")
		if err != nil || ck.Value != "alice" {
			return adminhttp.ErrUnauthenticated
		}
		ops = append(ops, op.ID)
		if !op.ReadOnly {
			return errViewer
		}
		return nil
	}})
	require.NoError(t, err)
	console, err := adminui.New(api, nil)
	require.NoError(t, err)
	srv := newServer(t, console)
	b := f.newBrowser(t)
	b.base = srv.URL

	res, page := b.get("/subscriptions")
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Contains(t, page, "You are not signed in")

	u, _ := url.Parse(srv.URL)
	b.http.Jar.SetCookies(u, []*http.Cookie{{Name: "app_session", Value: "alice"}})
	res, _ = b.get("/subscriptions")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, ops, "listSubscriptions")

	s := f.webhookSub(t, "Ops", "whsec_"+strings.Repeat("QUJD", 8))
	res, page = b.post("/subscriptions/"+s.ID+"/disable", url.Values{})
	require.Equal(t, http.StatusForbidden, res.StatusCode, "the API's authorizer decides: viewers may only read")
	assert.Contains(t, page, "may not perform this operation")
	got, err := f.client.Subscription(context.Background(), s.ID)
	require.NoError(t, err)
	require.False(t, got.Disabled)
}

var errViewer = errorString("viewers may only read")

type errorString string

func (e errorString) Error() string { return string(e) }

// TestPagesAreStrictCSPSafe: every page is served with a strict
// Content-Security-Policy and has no inline script, event handler
// attribute or inline style that the policy would block.
func TestPagesAreStrictCSPSafe(t *testing.T) {
	f := newFixture(t)
	s := f.webhookSub(t, "Ops", "whsec_"+strings.Repeat("QUJD", 8))
	f.emitIncident(t, "inc-1", "critical")
	ds, err := f.client.Deliveries(context.Background(), outhook.DeliveryQuery{SubscriptionID: s.ID})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	b := f.newBrowser(t)
	b.signIn()

	tags := regexp.MustCompile(`<[a-zA-Z][^>]*>`)
	handler := regexp.MustCompile(`(?i)\s(on[a-z]+|style)\s*=`)
	inlineCode := func(page string) []string {
		var bad []string
		for _, tag := range tags.FindAllString(page, -1) {
			if handler.MatchString(tag) || strings.Contains(strings.ToLower(tag), "javascript:") {
				bad = append(bad, tag)
			}
		}
		for i := strings.Index(page, "<script"); i >= 0; i = strings.Index(page, "<script") {
			end := strings.Index(page[i:], "</script>")
			if end < 0 || !strings.Contains(page[i:i+end], " src=") || !strings.HasSuffix(page[i:i+end], ">") {
				bad = append(bad, page[i:min(len(page), i+80)])
			}
			page = page[i+len("<script"):]
		}
		if strings.Contains(page, "<style") {
			bad = append(bad, "<style>")
		}
		return bad
	}
	for _, path := range []string{"/events", "/subscriptions", "/subscriptions/new", "/subscriptions/new?deliverer=fake",
		"/subscriptions/" + s.ID, "/subscriptions/" + s.ID + "/edit", "/subscriptions/" + s.ID + "/delete",
		"/deliveries", "/deliveries/" + ds[0].ID, "/login", "/no-such-page"} {
		res, page := b.get(path)
		if path == "/no-such-page" {
			require.Equal(t, http.StatusNotFound, res.StatusCode)
		} else {
			require.Equal(t, http.StatusOK, res.StatusCode, path)
		}
		csp := res.Header.Get("Content-Security-Policy")
		require.Contains(t, csp, "script-src 'self'", path)
		require.Contains(t, csp, "default-src 'none'", path)
		require.NotContains(t, csp, "unsafe-inline", path)
		require.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
		require.Empty(t, inlineCode(page), "%s has inline code", path)
		require.Contains(t, page, `<meta name="viewport" content="width=device-width, initial-scale=1">`)
	}
	for _, asset := range []string{"/static/console.css", "/static/console.js"} {
		res, body := b.get(asset)
		require.Equal(t, http.StatusOK, res.StatusCode, asset)
		require.NotEmpty(t, body)
	}
}

// TestCSRF: a state-changing form needs the CSRF token and must come from
// the console's own origin; a refused one changes nothing.
func TestCSRF(t *testing.T) {
	f := newFixture(t)
	s := f.webhookSub(t, "Ops", "whsec_"+strings.Repeat("QUJD", 8))
	b := f.newBrowser(t)
	b.signIn()

	res, page := b.post("/subscriptions/"+s.ID+"/disable", url.Values{"csrf": {"forged-token-forged-token-forged-token"}})
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	assert.Contains(t, page, "security token")

	// A cross-site request with the right token is refused too.
	req, err := http.NewRequest("POST", b.base+"/subscriptions/"+s.ID+"/disable",
		strings.NewReader(url.Values{"csrf": {b.cookie("outhook_csrf")}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	res, _ = b.do(req)
	require.Equal(t, http.StatusForbidden, res.StatusCode)

	got, err := f.client.Subscription(context.Background(), s.ID)
	require.NoError(t, err)
	require.False(t, got.Disabled, "refused forms change nothing")

	res, _ = b.post("/subscriptions/"+s.ID+"/disable", url.Values{})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	got, err = f.client.Subscription(context.Background(), s.ID)
	require.NoError(t, err)
	require.True(t, got.Disabled)
}

func TestEventsPage(t *testing.T) {
	f := newFixture(t)
	b := f.newBrowser(t)
	b.signIn()
	res, page := b.get("/events")
	require.Equal(t, http.StatusOK, res.StatusCode)
	for _, want := range []string{
		"<h2 id=\"f-Incidents\">Incidents</h2>", "Incident Created", "<code>incident.incident.created</code>",
		"Incidents (incident)", "An incident was opened.", "Maintenance Started", "<code>maintenance.started</code>",
		"<code>owner.name</code>", "<code>systemIds</code>", "string[]", "one of: critical, major, minor",
		"Who handles the incident.",
	} {
		assert.Contains(t, page, want)
	}
	// The severity row says it is required.
	assert.Regexp(t, `<code>severity</code></td><td>string</td><td>yes</td>`, page)
}

// TestCreateSubscriptionFromForm: the form is built from the webhook
// deliverer's config schema; problems found by the console and by the API
// are shown next to their inputs, with secrets never filled back in; a
// valid form creates the subscription.
func TestCreateSubscriptionFromForm(t *testing.T) {
	f := newFixture(t)
	b := f.newBrowser(t)
	b.signIn()

	_, page := b.get("/subscriptions/new?deliverer=webhook")
	for _, want := range []string{
		`name="config.url"`, `type="url"`, `name="config.secrets[0].secret"`, `type="password"`,
		`name="config.secrets.rows" value="1"`, `name="config.auth.type"`, `<option value="bearer"`,
		`name="config.headers"`, `name="config.retryStatuses"`, `name="filter.expr"`,
		`value="incident.incident.created"`, `value="maintenance.started"`,
	} {
		assert.Contains(t, page, want)
	}

	secret := "whsec_" + strings.Repeat("U2VjcmV0", 4)
	form := url.Values{
		"name": {"Pager"}, "delivererId": {"webhook"}, "events": {incidentEvent},
		"config.url": {"ftp://nowhere"}, "config.secrets.rows": {"1"}, "config.secrets[0].secret": {secret},
		"config.retryStatuses": {"409\nforty"}, "filter.expr": {`payload.severity == `}, "action": {"save"},
	}
	res, page := b.post("/subscriptions/new", form)
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	assert.Contains(t, page, `id="f-config_retryStatuses-error"`, "the console's own check")
	assert.Contains(t, page, `&#34;forty&#34; is not a whole number`)
	assert.NotContains(t, page, secret, "a secret is never echoed back")

	form.Set("config.retryStatuses", "409")
	res, page = b.post("/subscriptions/new", form)
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	assert.Regexp(t, `id="f-config_url-error">url must be a valid HTTP or HTTPS URL`, page, "the API's error on the url, in place")
	assert.Contains(t, page, `value="ftp://nowhere"`, "other inputs are kept")
	assert.Contains(t, page, `payload.severity ==</textarea>`)
	assert.NotContains(t, page, secret)

	form.Set("config.url", f.receiver.URL+"/hooks")
	res, page = b.post("/subscriptions/new", form)
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	assert.Regexp(t, `id="f-filter-expr-error">line 1, column \d+:`, page, "the CEL compile error, in place")
	assert.NotContains(t, page, secret)
	_, err := f.subscriptionNamed(t, "Pager")
	require.ErrorIs(t, err, errNoSub, "nothing was saved")

	form.Set("filter.expr", `payload.severity == "critical"`)
	form.Set("config.headers", "X-Team: sre-9f8e7d6c")
	res, _ = b.post("/subscriptions/new", form)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	s, err := f.subscriptionNamed(t, "Pager")
	require.NoError(t, err)
	require.Equal(t, "/admin/console/subscriptions/"+s.ID+"?done=created", res.Header.Get("Location"))
	require.Equal(t, []string{incidentEvent}, s.Events)
	require.Equal(t, `payload.severity == "critical"`, s.Filter.Expr)

	// The detail and edit pages never show the secrets.
	for _, path := range []string{"/subscriptions/" + s.ID, "/subscriptions/" + s.ID + "/edit"} {
		_, page = b.get(path)
		assert.NotContains(t, page, secret, path)
		assert.NotContains(t, page, "sre-9f8e7d6c", path)
	}
	assert.Contains(t, page, `placeholder="stored: leave blank to keep"`)

	// The stored secret signs what the receiver gets.
	f.emitIncident(t, "inc-7", "critical")
	require.Equal(t, 1, f.receiver.requests())
	require.NoError(t, webhook.Verify(f.receiver.bodies[0], f.receiver.headers[0], secret))
	require.Equal(t, "sre-9f8e7d6c", f.receiver.headers[0].Get("X-Team"))
}

// TestEditKeepsSecrets: saving the edit form with the secret inputs left
// blank keeps the stored secrets; a new value replaces one; a ticked
// remove box drops an item.
func TestEditKeepsSecrets(t *testing.T) {
	f := newFixture(t)
	oldSecret := "whsec_" + strings.Repeat("T2xkU2Vj", 4)
	s := f.webhookSub(t, "Ops", oldSecret)
	b := f.newBrowser(t)
	b.signIn()

	_, page := b.get("/subscriptions/" + s.ID + "/edit")
	require.Contains(t, page, `name="config.secrets[0].secret.stored" value="1"`)
	require.Contains(t, page, `name="config.secrets.rows" value="2"`, "the stored item and a blank one")
	form := url.Values{
		"name": {"Ops renamed"}, "delivererId": {"webhook"}, "eventPatterns": {"incident.**"},
		"config.url": {f.receiver.URL + "/hooks"}, "config.secrets.rows": {"2"},
		"config.secrets[0].secret.stored": {"1"}, "config.secrets[0].secret": {""}, "config.secrets[1].secret": {""},
		"action": {"save"},
	}
	res, page := b.post("/subscriptions/"+s.ID+"/edit", form)
	require.Equal(t, http.StatusSeeOther, res.StatusCode, page)
	f.emitIncident(t, "inc-1", "minor")
	require.NoError(t, webhook.Verify(f.receiver.bodies[0], f.receiver.headers[0], oldSecret), "the stored secret still signs")

	newSecret := "whsec_" + strings.Repeat("TmV3U2Vj", 4)
	form.Set("config.secrets[0].remove", "1")
	form.Set("config.secrets[1].secret", newSecret)
	res, _ = b.post("/subscriptions/"+s.ID+"/edit", form)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	f.emitIncident(t, "inc-2", "minor")
	require.NoError(t, webhook.Verify(f.receiver.bodies[1], f.receiver.headers[1], newSecret))
	require.Error(t, webhook.Verify(f.receiver.bodies[1], f.receiver.headers[1], oldSecret), "the removed secret no longer signs")
	got, err := f.client.Subscription(context.Background(), s.ID)
	require.NoError(t, err)
	require.Equal(t, "Ops renamed", got.Name)
}

func TestToggleTestAndRecover(t *testing.T) {
	f := newFixture(t)
	s := f.webhookSub(t, "Ops", "whsec_"+strings.Repeat("QUJD", 8))
	b := f.newBrowser(t)
	b.signIn()

	_, page := b.get("/subscriptions")
	assert.Contains(t, page, `aria-checked="true"`)
	assert.Contains(t, page, "healthy")
	res, _ := b.post("/subscriptions/"+s.ID+"/disable", url.Values{"from": {"list"}})
	require.Equal(t, "/admin/console/subscriptions?done=disabled", res.Header.Get("Location"))
	_, page = b.get("/subscriptions?done=disabled")
	assert.Contains(t, page, "Subscription disabled.")
	assert.Contains(t, page, `aria-checked="false"`)
	b.post("/subscriptions/"+s.ID+"/enable", url.Values{})

	res, page = b.post("/subscriptions/"+s.ID+"/test", url.Values{})
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, page, "Test event delivered")
	assert.Contains(t, page, "HTTP 200")
	require.Equal(t, 1, f.receiver.requests())

	// Two deliveries fail for good, then recovery sends them again.
	f.receiver.script(http.StatusBadRequest)
	f.emitIncident(t, "inc-1", "major")
	f.emitIncident(t, "inc-2", "major")
	_, page = b.get("/subscriptions")
	assert.Contains(t, page, "failing")
	assert.Contains(t, page, "2 failed")
	f.receiver.script(http.StatusOK)
	res, page = b.post("/subscriptions/"+s.ID+"/recover", url.Values{"since": {"2000-01-01T00:00"}})
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, page, "2 failed deliveries queued again.")
	outhooktest.WaitIdle(t, f.client)
	ds, err := f.client.Deliveries(context.Background(), outhook.DeliveryQuery{SubscriptionID: s.ID, Status: outhook.DeliverySucceeded})
	require.NoError(t, err)
	require.Len(t, ds, 2)

	res, page = b.post("/subscriptions/"+s.ID+"/recover", url.Values{"since": {"yesterday"}})
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, page, "since: must be a date and time")
}

func TestDeliveriesLogAndRedeliver(t *testing.T) {
	f := newFixture(t)
	s := f.webhookSub(t, "Ops", "whsec_"+strings.Repeat("QUJD", 8))
	f.receiver.script(http.StatusUnprocessableEntity)
	f.emitIncident(t, "inc-1", "critical")
	f.receiver.script(http.StatusOK)
	require.NoError(t, outhook.EmitHook(context.Background(), f.client, maintenanceStarted, MaintenanceStarted{WindowID: "w-1"}))
	outhooktest.WaitIdle(t, f.client)
	b := f.newBrowser(t)
	b.signIn()

	_, page := b.get("/deliveries")
	assert.Contains(t, page, "badge-failed")
	_, page = b.get("/deliveries?status=failed&eventId=" + incidentEvent + "&subscriptionId=" + s.ID)
	assert.Equal(t, 1, strings.Count(page, `<tr id="delivery-`))
	assert.Contains(t, page, "HTTP 422"[5:]) // the last error names the status
	res, page := b.get("/deliveries?since=not-a-time")
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Contains(t, page, "since must be a date and time")
	_, page = b.get("/deliveries?since=2000-01-01T00:00&until=2000-01-02T00:00")
	assert.Contains(t, page, "No deliveries match.")

	ds, err := f.client.Deliveries(context.Background(), outhook.DeliveryQuery{SubscriptionID: s.ID, Status: outhook.DeliveryFailed})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	_, page = b.get("/deliveries/" + ds[0].ID)
	assert.Contains(t, page, "Attempt 1")
	assert.Contains(t, page, "HTTP 422")
	assert.Contains(t, page, "Webhook-Signature: [redacted]", "request headers, secrets removed")
	assert.Contains(t, page, "&#34;incidentId&#34;: &#34;inc-1&#34;")

	res, _ = b.post("/deliveries/"+ds[0].ID+"/redeliver", url.Values{})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	outhooktest.WaitIdle(t, f.client)
	_, page = b.get("/deliveries/" + ds[0].ID + "?done=redelivered")
	assert.Contains(t, page, "Redelivery queued")
	assert.Contains(t, page, "Attempt 2")
	assert.Contains(t, page, `badge-succeeded">succeeded`)

	res, page = b.get("/deliveries/no-such-delivery")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	assert.Contains(t, page, "not found")
}

func TestDeleteSubscription(t *testing.T) {
	f := newFixture(t)
	s := f.webhookSub(t, "Ops", "whsec_"+strings.Repeat("QUJD", 8))
	b := f.newBrowser(t)
	b.signIn()
	_, page := b.get("/subscriptions/" + s.ID + "/delete")
	assert.Contains(t, page, "Delete Ops?")
	res, _ := b.post("/subscriptions/"+s.ID+"/delete", url.Values{})
	require.Equal(t, "/admin/console/subscriptions?done=deleted", res.Header.Get("Location"))
	_, err := f.client.Subscription(context.Background(), s.ID)
	require.ErrorIs(t, err, outhook.ErrNotFound)
}

// TestFakeDelivererForm: a deliverer whose schema has no properties gets a
// form with no settings, and the subscription is created with {}.
func TestFakeDelivererForm(t *testing.T) {
	f := newFixture(t)
	b := f.newBrowser(t)
	b.signIn()
	res, _ := b.post("/subscriptions/new", url.Values{"name": {"F"}, "delivererId": {"fake"},
		"events": {incidentEvent, maintenanceEvent}, "action": {"save"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	s, err := f.subscriptionNamed(t, "F")
	require.NoError(t, err)
	require.Equal(t, []string{incidentEvent, maintenanceEvent}, s.Events)
	var cfg map[string]any
	require.NoError(t, json.Unmarshal(s.Config, &cfg))

	res, page := b.post("/subscriptions/new", url.Values{"delivererId": {"fake"}, "action": {"save"}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	assert.Contains(t, page, "choose at least one event")
}

// TestReviewFindings covers what the console's review found: each case
// failed before its fix.
func TestReviewFindings(t *testing.T) {
	t.Run("removing a stored secret above another asks for that one again", func(t *testing.T) {
		f := newFixture(t)
		oldSecret, newSecret := "whsec_"+strings.Repeat("T2xkU2Vj", 4), "whsec_"+strings.Repeat("TmV3U2Vj", 4)
		cfg, err := json.Marshal(map[string]any{"url": f.receiver.URL + "/hooks",
			"secrets": []map[string]string{{"secret": oldSecret}, {"secret": newSecret}}})
		require.NoError(t, err)
		s, err := f.client.CreateSubscription(context.Background(), outhook.Subscription{
			Name: "Rotating", Events: []string{"incident.**"}, DelivererID: webhook.ID, Config: cfg})
		require.NoError(t, err)
		b := f.newBrowser(t)
		b.signIn()
		form := url.Values{"delivererId": {"webhook"}, "eventPatterns": {"incident.**"}, "config.url": {f.receiver.URL + "/hooks"},
			"config.secrets.rows": {"3"}, "config.secrets[0].secret.stored": {"1"}, "config.secrets[1].secret.stored": {"1"},
			"config.secrets[0].remove": {"1"}, "action": {"save"}}
		res, page := b.post("/subscriptions/"+s.ID+"/edit", form)
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
		assert.Contains(t, page, "type this secret again")
		f.emitIncident(t, "inc-1", "minor")
		require.NoError(t, webhook.Verify(f.receiver.bodies[0], f.receiver.headers[0], oldSecret), "nothing was saved")

		form.Set("config.secrets[1].secret", newSecret)
		res, _ = b.post("/subscriptions/"+s.ID+"/edit", form)
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		f.emitIncident(t, "inc-2", "minor")
		require.NoError(t, webhook.Verify(f.receiver.bodies[1], f.receiver.headers[1], newSecret))
		require.Error(t, webhook.Verify(f.receiver.bodies[1], f.receiver.headers[1], oldSecret), "the removed one is gone")
	})

	t.Run("limits are edited and kept", func(t *testing.T) {
		f := newFixture(t)
		b := f.newBrowser(t)
		b.signIn()
		form := url.Values{"name": {"L"}, "delivererId": {"fake"}, "events": {incidentEvent},
			"limits.rate": {"0.5"}, "limits.burst": {"2"}, "limits.maxInFlight": {"x"}, "action": {"save"}}
		res, page := b.post("/subscriptions/new", form)
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
		assert.Contains(t, page, `&#34;x&#34; is not a whole number`)
		form.Set("limits.maxInFlight", "3")
		res, _ = b.post("/subscriptions/new", form)
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		s, err := f.subscriptionNamed(t, "L")
		require.NoError(t, err)
		require.Equal(t, outhook.DeliveryLimits{Rate: 0.5, Burst: 2, MaxInFlight: 3}, s.Limits)
		_, page = b.get("/subscriptions/" + s.ID + "/edit")
		assert.Contains(t, page, `name="limits.rate" value="0.5"`)
		res, _ = b.post("/subscriptions/"+s.ID+"/edit", url.Values{"name": {"L2"}, "delivererId": {"fake"}, "events": {incidentEvent},
			"limits.rate": {"0.5"}, "limits.burst": {"2"}, "limits.maxInFlight": {"3"}, "action": {"save"}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		got, err := f.client.Subscription(context.Background(), s.ID)
		require.NoError(t, err)
		require.Equal(t, s.Limits, got.Limits)
	})

	t.Run("the delivery log pages with its filters", func(t *testing.T) {
		f := newFixture(t)
		s := f.webhookSub(t, "Ops", "whsec_"+strings.Repeat("QUJD", 8))
		f.receiver.script(http.StatusBadRequest)
		for i := range 55 {
			require.NoError(t, outhook.EmitHook(context.Background(), f.client, incidentCreated,
				IncidentCreated{IncidentID: "inc-" + strconv.Itoa(i), Severity: "minor", SystemIDs: []string{"s"}}))
		}
		outhooktest.WaitIdle(t, f.client)
		b := f.newBrowser(t)
		b.signIn()
		_, page := b.get("/deliveries?status=failed&subscriptionId=" + s.ID)
		require.Equal(t, 50, strings.Count(page, `<tr id="delivery-`))
		next := regexp.MustCompile(`<a href="([^"]+)" class="older">`).FindStringSubmatch(page)
		require.NotNil(t, next, "a link to the next page")
		href := strings.ReplaceAll(next[1], "&amp;", "&")
		require.Contains(t, href, "status=failed")
		_, page = b.get(strings.TrimPrefix(href, "/admin/console"))
		require.Equal(t, 5, strings.Count(page, `<tr id="delivery-`), "the second page, still filtered")
		require.NotContains(t, page, `class="older"`)
	})

	t.Run("sign-in never redirects off the console", func(t *testing.T) {
		f := newFixture(t)
		b := f.newBrowser(t)
		b.get("/login")
		for _, next := range []string{"/\t/evil.example/", "//evil.example", "/\\evil.example", "https://evil.example/", "/\n/x"} {
			res, _ := b.post("/login", url.Values{"token": {testToken}, "next": {next}})
			require.Equal(t, "/admin/console/subscriptions", res.Header.Get("Location"), "next %q", next)
		}
	})

	t.Run("a proxy's Basic credentials do not hide the session cookie", func(t *testing.T) {
		f := newFixture(t)
		b := f.newBrowser(t)
		b.signIn()
		req, err := http.NewRequest("GET", b.base+"/subscriptions", nil)
		require.NoError(t, err)
		req.SetBasicAuth("proxy-user", "proxy-pass")
		res, _ := b.do(req)
		require.Equal(t, http.StatusOK, res.StatusCode)
	})

	t.Run("a typed secret is not taken as stored after a refused save", func(t *testing.T) {
		f := newFixture(t)
		b := f.newBrowser(t)
		b.signIn()
		res, page := b.post("/subscriptions/new", url.Values{"delivererId": {"webhook"}, "events": {incidentEvent},
			"config.url": {"not a url"}, "config.secrets.rows": {"1"}, "config.secrets[0].secret": {"whsec_typed-value-1234"},
			"config.headers": {"X-Key: typed-header-secret"}, "action": {"save"}})
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
		assert.NotContains(t, page, "typed-value-1234")
		assert.NotContains(t, page, "typed-header-secret")
		assert.NotContains(t, page, "stored: leave blank to keep")
		assert.Contains(t, page, "X-Key: </textarea>", "the header's name stays, its value is typed again")
	})

	t.Run("numbers outside JSON's grammar are field errors", func(t *testing.T) {
		f := newFixture(t)
		b := f.newBrowser(t)
		b.signIn()
		for _, v := range []string{"+429", "0429", "4e2", "0x1ad"} {
			res, page := b.post("/subscriptions/new", url.Values{"delivererId": {"webhook"}, "events": {incidentEvent},
				"config.url": {f.receiver.URL}, "config.secrets.rows": {"1"}, "config.secrets[0].secret": {"whsec_" + strings.Repeat("QUJD", 8)},
				"config.retryStatuses": {v}, "action": {"save"}})
			require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, v)
			assert.Contains(t, page, "is not a whole number", v)
		}
	})

	t.Run("a stored secret outside a list can be removed", func(t *testing.T) {
		f := newFixture(t)
		cfg := `{"url":"` + f.receiver.URL + `/hooks","secrets":[{"secret":"whsec_` + strings.Repeat("QUJD", 8) + `"}],"auth":{"type":"bearer","token":"bearer-token-123456"}}`
		s, err := f.client.CreateSubscription(context.Background(), outhook.Subscription{
			Name: "A", Events: []string{"incident.**"}, DelivererID: webhook.ID, Config: json.RawMessage(cfg)})
		require.NoError(t, err)
		b := f.newBrowser(t)
		b.signIn()
		_, page := b.get("/subscriptions/" + s.ID + "/edit")
		require.Contains(t, page, `name="config.auth.token.clear"`)
		res, page := b.post("/subscriptions/"+s.ID+"/edit", url.Values{"delivererId": {"webhook"}, "eventPatterns": {"incident.**"},
			"config.url": {f.receiver.URL + "/hooks"}, "config.secrets.rows": {"2"}, "config.secrets[0].secret.stored": {"1"},
			"config.auth.token.stored": {"1"}, "config.auth.token.clear": {"1"}, "action": {"save"}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode, page)
		f.emitIncident(t, "inc-1", "minor")
		require.Empty(t, f.receiver.headers[0].Get("Authorization"), "no bearer token any more")
	})
}
