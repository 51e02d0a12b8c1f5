package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/outhook/outhook"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestDemo runs the demo and checks that it shows what it promises.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	sum, err := run(&out, options{})
	text := out.String()
	require.NoError(t, err, text)

	for _, want := range []string{
		"== 1. Registered events ==",
		"== 2. Subscriptions ==",
		"== 3. A test event to #incidents ==",
		"== 4. Emitting incidents: validation, delivery, a retry ==",
		"== 5. A CEL payload filter ==",
		"== 6. A failing endpoint is disabled ==",
		"== 7. Recovery ==",
	} {
		require.Contains(t, text, want, "section heading")
	}

	t.Run("events, subscriptions, emits and retries", func(t *testing.T) {
		for _, want := range []string{
			"[Incidents]   incident.incident.created",
			"[Operations]  outhook.subscription.disabled",
			`"secrets":[{"secret":"[secret]"}]`,
			`config.secrets[0].secret: rejected by deliverer "webhook"`,
			"test attempt: succeeded 200 (test)",
			`invalid payload for hook "incident.created": systemIds is required; title is required; severity must be one of [critical major minor]`,
			"-> 503 (failing once on purpose)",
			"#1 retryable 503 http_status, #2 succeeded 204",
			"pagerduty /v2/enqueue trigger dedup_key=inc-1 severity=critical",
			"pagerduty /v2/enqueue resolve dedup_key=inc-1",
			"slack     #incidents   Incident Created: Primary database unreachable",
			"All 7 deliveries succeeded.",
		} {
			require.Contains(t, text, want)
		}
		// 8 events reach the ops webhook, one of them twice; the partner's
		// receiver gets 2 events 3 times while it is down and once more
		// after the recovery. All signed.
		require.Equal(t, 9+8, strings.Count(text, "signature verified"))
		require.NotContains(t, text, "SIGNATURE REJECTED")
		require.NotContains(t, text, "0123456789abcdef0123456789abcdef", "the routing key never shows")
	})

	t.Run("CEL filter", func(t *testing.T) {
		require.Contains(t, text, "-> line 2, column 22: undefined field 'systemId'")
		require.Contains(t, text, `filter.expr: is not a valid filter: outhook: filter expression at 2:22: undefined field 'systemId' (payload of event "incident.incident.updated")`)
		require.Equal(t, []string{"CRITICAL inc-4: Database disk full"}, sum.DBCritical, "only the critical incident on sys-db passes")
		require.Equal(t, outhook.FilterStats{FilteredOut: 3}, sum.FilterStats)
		require.Contains(t, text, "Client.FilterStats: {FilteredOut:3 Errors:0}")
	})

	t.Run("endpoint disabled, operational events delivered", func(t *testing.T) {
		require.True(t, sum.Disabled.Disabled)
		require.Equal(t, "2 deliveries failed in a row", sum.Disabled.DisabledReason)
		require.Equal(t, 2, sum.Disabled.Health.ConsecutiveFailures)
		require.Equal(t, 6, strings.Count(text, "-> 500 (down)"), "two deliveries, three attempts each")
		exhausted := "Delivery exhausted: partner webhook, incident.incident.updated failed 3 attempts (HTTP 500)"
		require.ElementsMatch(t, []string{
			exhausted, exhausted,
			"Subscription disabled: partner webhook, 2 deliveries failed in a row",
		}, sum.OpsAlerts)
		require.Contains(t, text, "slack     #ops-alerts  Subscription disabled: partner webhook, 2 deliveries failed in a row")
	})

	t.Run("recovery", func(t *testing.T) {
		require.Equal(t, 2, sum.Recovered)
		require.Contains(t, text, "Client.Recover sent 2 failed deliveries again")
		require.Equal(t, 2, strings.Count(text, "#1 retryable 500 http_status, #2 retryable 500 http_status, #3 retryable 500 http_status, #4 succeeded 204 (manual)"))
		// A recovered delivery keeps its ID, so the partner can deduplicate:
		// each incident's four requests carried one webhook-id.
		ids := map[string]map[string]bool{}
		for _, m := range regexp.MustCompile(`partner   incident\.incident\.updated (inc-\d) .* id=(\S+)`).FindAllStringSubmatch(text, -1) {
			if ids[m[1]] == nil {
				ids[m[1]] = map[string]bool{}
			}
			ids[m[1]][m[2]] = true
		}
		require.Len(t, ids, 2)
		for inc, set := range ids {
			require.Len(t, set, 1, "webhook-ids of %s", inc)
		}
		require.Equal(t, 23, sum.Deliveries)
		require.Contains(t, text, "All 23 deliveries in the log succeeded, 2 of them after the recovery.")
	})
}

// TestServe runs the demo with -serve: the console and the admin API
// answer on loopback with the printed token, show the demo's
// subscriptions, and stop when asked.
func TestServe(t *testing.T) {
	var out bytes.Buffer
	done := make(chan struct{})
	type urls struct{ console, api, token string }
	ready := make(chan urls, 1)
	errc := make(chan error, 1)
	go func() {
		_, err := run(&out, options{Serve: true, Addr: "127.0.0.1:0", Done: done,
			Ready: func(c, a, tok string) { ready <- urls{c, a, tok} }})
		errc <- err
	}()
	var u urls
	select {
	case u = <-ready:
	case err := <-errc:
		t.Fatalf("the demo ended before serving: %v", err)
	}

	// The admin API takes the token as a bearer credential.
	req, err := http.NewRequest("GET", u.api+"/subscriptions", nil)
	require.NoError(t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusUnauthorized, res.StatusCode, "no token, no access")
	req.Header.Set("Authorization", "Bearer "+u.token)
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, string(body), `"name":"ops webhook"`)

	// The console's sign-in page takes the token, then lists them.
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	browser := &http.Client{Jar: jar}
	res, err = browser.Get(u.console + "login")
	require.NoError(t, err)
	res.Body.Close()
	consoleURL, err := url.Parse(u.console)
	require.NoError(t, err)
	var csrf string
	for _, c := range jar.Cookies(consoleURL) {
		if c.Name == "outhook_csrf" {
			csrf = c.Value
		}
	}
	require.NotEmpty(t, csrf)
	form := url.Values{"token": {u.token}, "csrf": {csrf}}
	req, err = http.NewRequest("POST", u.console+"login", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", consoleURL.Scheme+"://"+consoleURL.Host)
	res, err = browser.Do(req)
	require.NoError(t, err)
	page, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, "redirected to the subscriptions page")
	require.Contains(t, string(page), "ops webhook")
	require.Contains(t, string(page), "partner webhook")

	close(done)
	require.NoError(t, <-errc)
	text := out.String()
	require.Contains(t, text, "== Admin console ==")
	require.Contains(t, text, "token       "+u.token)
	require.Contains(t, text, "console stopped")
}
