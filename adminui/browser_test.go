package adminui_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
	"github.com/stretchr/testify/require"
)

// The browser tests drive headless Chromium (Debian's chromium package)
// through the console served on loopback, as a person would: with clicks,
// typing and the keyboard. They assert on the pages' content and save a
// screenshot of each page in the test's artifact directory (go test
// -artifacts -outputdir DIR); the README's screenshots come from there.
//
// Without Chromium they are skipped, unless CI or OUTHOOK_REQUIRE_BROWSER
// is set: then a missing browser fails them. OUTHOOK_CHROMIUM names the
// browser's binary when it is not on PATH as chromium.

// cspProbe runs before each page's own scripts and records every Content
// Security Policy violation, so that a test can require none. (Scripts
// added through DevTools are not subject to the page's policy.)
const cspProbe = `window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});`

func chromiumPath() string {
	if p := os.Getenv("OUTHOOK_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// newTab starts Chromium with a fresh profile and returns a tab's context;
// the browser is closed when the test ends.
func newTab(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		if os.Getenv("CI") != "" || os.Getenv("OUTHOOK_REQUIRE_BROWSER") != "" {
			t.Fatal("the browser tests need Chromium (CI or OUTHOOK_REQUIRE_BROWSER is set): apt-get install chromium, or set OUTHOOK_CHROMIUM")
		}
		t.Skip("no Chromium found (apt-get install chromium, or set OUTHOOK_CHROMIUM): skipping the browser tests")
	}
	// The flags keep the browser off the network and quiet: the only
	// server it talks to is the test's, on loopback. chromedp gives it a
	// new profile directory and removes it afterwards.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithErrorf(t.Logf))
	// A generous bound on the whole test, so that a stuck browser fails it
	// instead of hanging CI.
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc() // waits for the browser to exit
	})
	_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspProbe})
	require.NoError(t, err, "starting Chromium at %s", path)
	return ctx
}

// step runs browser actions and fails the test with what was being done.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx, actions...), what)
}

// submit clicks a button that submits a form and waits for the page that
// answers.
func submit(t *testing.T, ctx context.Context, what string, sel string) {
	t.Helper()
	_, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel)))
	require.NoError(t, err, what)
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	// Pages are loaded when this runs: an element that is not there
	// within a few seconds is missing.
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(t, err, "reading %s", sel)
	return s
}

// shot saves a screenshot of the whole page as name.png in the test's
// artifact directory, and checks the page broke no CSP rule.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100 gives PNG
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(t.ArtifactDir(), name+".png"), png, 0o644))
	noViolations(t, ctx)
}

func noViolations(t *testing.T, ctx context.Context) {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__cspViolations || []`))
	require.NoError(t, err)
	require.Empty(t, v, "Content-Security-Policy violations")
}

// TestBrowserConsole walks the console as an operator would: sign in,
// read the events, create a subscription from the generated form (and see
// its validation errors), toggle it, send a test event, watch a failed
// delivery appear in the log and redeliver it.
func TestBrowserConsole(t *testing.T) {
	ctx := newTab(t)
	f := newFixture(t)
	secret := "whsec_" + strings.Repeat("QnJvd3Nl", 4)

	// Sign in: the console sends the browser to its sign-in page.
	step(t, ctx, "open the console", chromedp.Navigate(f.console+"/subscriptions"),
		chromedp.WaitVisible(chromedp.ID("token")))
	require.Contains(t, text(t, ctx, "h1"), "Sign in")
	shot(t, ctx, "login")
	step(t, ctx, "type a wrong token", chromedp.SendKeys(chromedp.ID("token"), "wrong-token-wrong-token"))
	submit(t, ctx, "sign in with a wrong token", `form button[type=submit]`)
	require.Contains(t, text(t, ctx, "#token-error"), "not valid")
	step(t, ctx, "type the token", chromedp.SendKeys(chromedp.ID("token"), testToken))
	submit(t, ctx, "sign in", `main form button[type=submit]`)
	require.Equal(t, "Subscriptions", text(t, ctx, "h1"))
	require.Contains(t, text(t, ctx, "main"), "No subscriptions yet")

	// Events, with their schemas as field tables.
	step(t, ctx, "open events", chromedp.Navigate(f.console+"/events"), chromedp.WaitVisible(chromedp.CSS("table.fields")))
	events := text(t, ctx, "main")
	for _, want := range []string{"Incident Created", "incident.incident.created", "owner.name", "string[]", "one of: critical, major, minor"} {
		require.Contains(t, events, want)
	}
	shot(t, ctx, "events")

	// The form follows the chosen deliverer, once asked ("Show its
	// settings"): the fake deliverer has no settings, the webhook has many.
	step(t, ctx, "open the new subscription form", chromedp.Navigate(f.console+"/subscriptions/new"),
		chromedp.WaitVisible(chromedp.ID("f-config_url")))
	step(t, ctx, "choose the fake deliverer", chromedp.SetValue(chromedp.ID("f-deliverer"), "fake"))
	submit(t, ctx, "show its settings", `button[value=change-deliverer]`)
	require.Contains(t, text(t, ctx, "#f-config legend"), "fake settings")
	step(t, ctx, "choose the webhook deliverer", chromedp.SetValue(chromedp.ID("f-deliverer"), "webhook"))
	submit(t, ctx, "show its settings", `button[value=change-deliverer]`)
	require.Contains(t, text(t, ctx, "#f-config legend"), "webhook settings")

	// A bad URL: the API's error appears next to the URL input, and the
	// secret typed is not filled back in.
	step(t, ctx, "fill the form",
		chromedp.SendKeys(chromedp.ID("f-name"), "On-call pager"),
		chromedp.Click(chromedp.CSS(`input[name=events][value="`+incidentEvent+`"]`)),
		chromedp.SendKeys(chromedp.ID("f-config_url"), "ftp://example.invalid/hooks"),
		chromedp.SendKeys(chromedp.ID("f-config_secrets_0__secret"), secret),
		chromedp.SendKeys(chromedp.ID("f-filter-expr"), `payload.severity == "critical" &&`),
	)
	submit(t, ctx, "save with a bad url", `button[value=save]`)
	require.Contains(t, text(t, ctx, "#f-config_url-error"), "valid HTTP or HTTPS URL")
	require.Contains(t, text(t, ctx, "#form-errors"), "not saved")
	focused, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.id`))
	require.NoError(t, err)
	require.Equal(t, "form-errors", focused, "console.js moves the focus to the errors")
	typed, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("f-config_secrets_0__secret")))
	require.NoError(t, err)
	require.Empty(t, typed, "a secret is never sent back to the browser")
	shot(t, ctx, "subscription-form-errors")

	// A good URL, but a filter that does not compile: its error, with
	// line and column, appears under the filter.
	step(t, ctx, "correct the url",
		chromedp.SetValue(chromedp.ID("f-config_url"), f.receiver.URL+"/hooks"),
		chromedp.SendKeys(chromedp.ID("f-config_secrets_0__secret"), secret))
	submit(t, ctx, "save with a bad filter", `button[value=save]`)
	require.Contains(t, text(t, ctx, "#f-filter-expr-error"), "line 1, column")
	urlOK, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("f-config_url-error") === null`))
	require.NoError(t, err)
	require.True(t, urlOK, "the url's error is gone")
	shot(t, ctx, "subscription-filter-error")

	step(t, ctx, "correct the filter",
		chromedp.SetValue(chromedp.ID("f-filter-expr"), `payload.severity == "critical"`),
		chromedp.SendKeys(chromedp.ID("f-config_secrets_0__secret"), secret))
	submit(t, ctx, "create", `button[value=save]`)
	require.Equal(t, "Subscription created.", text(t, ctx, ".flash"))
	require.Equal(t, "On-call pager", text(t, ctx, "h1"))
	s, err := f.subscriptionNamed(t, "On-call pager")
	require.NoError(t, err)
	require.Equal(t, []string{incidentEvent}, s.Events)
	require.NotContains(t, text(t, ctx, "main"), secret)

	// Send a test event and see its attempt.
	submit(t, ctx, "send a test event", `form[action$="/test"] button`)
	result := text(t, ctx, "#test-result")
	require.Contains(t, result, "Test event delivered")
	require.Contains(t, result, "HTTP 200")
	require.Equal(t, 1, f.receiver.requests())
	shot(t, ctx, "subscription")

	// Toggle it off and on from the list.
	step(t, ctx, "open the list", chromedp.Navigate(f.console+"/subscriptions"), chromedp.WaitVisible(chromedp.CSS("table.subs")))
	submit(t, ctx, "disable", `#sub-`+s.ID+` button.toggle`)
	require.Equal(t, "Subscription disabled.", text(t, ctx, ".flash"))
	checked, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`#sub-`+s.ID+` button.toggle`), "aria-checked"))
	require.NoError(t, err)
	require.Equal(t, "false", checked.Value)
	got, err := f.client.Subscription(context.Background(), s.ID)
	require.NoError(t, err)
	require.True(t, got.Disabled)
	submit(t, ctx, "enable", `#sub-`+s.ID+` button.toggle`)
	require.Equal(t, "Subscription enabled.", text(t, ctx, ".flash"))

	// A delivery fails for good; it appears in the log, with its attempt.
	f.receiver.script(http.StatusUnprocessableEntity)
	f.emitIncident(t, "inc-42", "critical")
	f.receiver.script(http.StatusOK)
	f.emitIncident(t, "inc-43", "critical")
	step(t, ctx, "open the log", chromedp.Navigate(f.console+"/deliveries"), chromedp.WaitVisible(chromedp.CSS("table.deliveries")))
	require.Contains(t, text(t, ctx, "table.deliveries"), "failed")
	shot(t, ctx, "deliveries")
	step(t, ctx, "filter failed ones", chromedp.SetValue(chromedp.ID("f-status"), "failed"))
	submit(t, ctx, "filter", `form.filters button[type=submit]`)
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("table.deliveries tbody tr").length`))
	require.NoError(t, err)
	require.Equal(t, 1, rows)
	submit(t, ctx, "open the failed delivery", `table.deliveries tbody tr a`)
	require.Contains(t, text(t, ctx, "#attempt-1"), "HTTP 422")
	require.Contains(t, text(t, ctx, "#attempt-1"), "permanent")
	shot(t, ctx, "delivery")

	// Redeliver it: a second attempt succeeds.
	submit(t, ctx, "redeliver", `form[action$="/redeliver"] button`)
	require.Contains(t, text(t, ctx, ".flash"), "Redelivery queued")
	outhooktest.WaitIdle(t, f.client)
	_, err = chromedp.RunResponse(ctx, chromedp.Reload())
	require.NoError(t, err)
	require.Contains(t, text(t, ctx, "#attempt-2"), "succeeded")
	require.Contains(t, text(t, ctx, ".facts"), "succeeded")
	ds, err := f.client.Deliveries(context.Background(), outhook.DeliveryQuery{SubscriptionID: s.ID, Status: outhook.DeliveryFailed})
	require.NoError(t, err)
	require.Empty(t, ds, "nothing is left failed")
	shot(t, ctx, "delivery-redelivered")

	step(t, ctx, "open the list again", chromedp.Navigate(f.console+"/subscriptions"), chromedp.WaitVisible(chromedp.CSS("table.subs")))
	shot(t, ctx, "subscriptions")
}

// TestBrowserPhoneAndKeyboard: on a phone-width screen no page is wider
// than the screen (tables scroll inside their box), and the console can
// be used with the keyboard alone: a skip link first, then every control
// in order, forms sent with Enter.
func TestBrowserPhoneAndKeyboard(t *testing.T) {
	ctx := newTab(t)
	f := newFixture(t)
	s := f.webhookSub(t, "Status page", "whsec_"+strings.Repeat("UGhvbmVz", 4))
	f.receiver.script(http.StatusServiceUnavailable, http.StatusOK)
	f.emitIncident(t, "inc-1", "major")

	// Keyboard only: the token field has focus, Enter signs in.
	step(t, ctx, "open the console", chromedp.Navigate(f.console+"/login"), chromedp.WaitVisible(chromedp.ID("token")))
	focused, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.id`))
	require.NoError(t, err)
	require.Equal(t, "token", focused, "the token field has focus")
	_, err = chromedp.RunResponse(ctx, chromedp.KeyEvent(testToken+kb.Enter))
	require.NoError(t, err, "sign in with Enter")
	require.Equal(t, "Subscriptions", text(t, ctx, "h1"))

	step(t, ctx, "press Tab", chromedp.KeyEvent(kb.Tab))
	first, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.className + ":" + document.activeElement.textContent`))
	require.NoError(t, err)
	require.Equal(t, "skip:Skip to content", first, "the first Tab stop skips to the content")

	// Tab through the page to the subscription's toggle and press it.
	var reached bool
	for range 30 {
		step(t, ctx, "press Tab", chromedp.KeyEvent(kb.Tab))
		cls, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.className`))
		require.NoError(t, err)
		if cls == "toggle" {
			reached = true
			break
		}
	}
	require.True(t, reached, "the toggle is reachable with Tab")
	_, err = chromedp.RunResponse(ctx, chromedp.KeyEvent(kb.Enter))
	require.NoError(t, err)
	require.Equal(t, "Subscription disabled.", text(t, ctx, ".flash"))
	got, err := f.client.Subscription(context.Background(), s.ID)
	require.NoError(t, err)
	require.True(t, got.Disabled)

	// Phone width: 390 CSS pixels, as a current phone.
	step(t, ctx, "emulate a phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	ds, err := f.client.Deliveries(context.Background(), outhook.DeliveryQuery{SubscriptionID: s.ID})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	for _, p := range []struct{ name, path, wait string }{
		{"phone-subscriptions", "/subscriptions", "table.subs"},
		{"phone-events", "/events", "table.fields"},
		{"phone-subscription-form", "/subscriptions/new", "#f-config_url"},
		{"phone-deliveries", "/deliveries", "table.deliveries"},
		{"phone-delivery", "/deliveries/" + ds[0].ID, "#attempt-1"},
		{"phone-subscription", "/subscriptions/" + s.ID, "h1"},
	} {
		step(t, ctx, "open "+p.path, chromedp.Navigate(f.console+p.path), chromedp.WaitVisible(chromedp.CSS(p.wait)))
		width, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
		require.NoError(t, err)
		require.LessOrEqual(t, width[0], width[1], "%s is wider than the phone's screen", p.path)
		shot(t, ctx, p.name)
	}
}

// TestBrowserNoInlineCodeRuns double-checks the CSP probe itself: a page
// with an inline script, served with the console's policy, reports a
// violation. Otherwise "no violations" above would prove nothing.
func TestBrowserNoInlineCodeRuns(t *testing.T) {
	ctx := newTab(t)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'")
		fmt.Fprint(w, `<!doctype html><title>probe</title><script>document.title = "ran"</script>`)
	}))
	step(t, ctx, "open the probe", chromedp.Navigate(srv.URL))
	title, err := chromedp.Run(ctx, chromedp.Title())
	require.NoError(t, err)
	require.Equal(t, "probe", title, "the inline script was blocked")
	v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__cspViolations`))
	require.NoError(t, err)
	require.NotEmpty(t, v)
}
