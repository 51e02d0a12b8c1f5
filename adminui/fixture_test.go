package adminui_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/adminhttp"
	"github.com/outhook/outhook/adminui"
	"github.com/outhook/outhook/outhooktest"
	"github.com/outhook/outhook/safehttp"
	"github.com/outhook/outhook/webhook"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The payloads of the test events.
type Owner struct {
	Name  string `json:"name" validate:"required" description:"Who handles the incident."`
	Email string `json:"email,omitempty" description:"Their e-mail address."`
}

type IncidentCreated struct {
	IncidentID string   `json:"incidentId" validate:"required" description:"The incident's ID."`
	Severity   string   `json:"severity" validate:"required,oneof=critical major minor" description:"How bad it is."`
	SystemIDs  []string `json:"systemIds" validate:"required,min=1" description:"The systems affected."`
	Owner      *Owner   `json:"owner,omitempty"`
}

type MaintenanceStarted struct {
	WindowID string `json:"windowId" validate:"required"`
}

var (
	incidentCreated    = outhook.MustNewHook[IncidentCreated]("incident.created")
	maintenanceStarted = outhook.MustNewHook[MaintenanceStarted]("started")
)

const (
	incidentEvent    = "incident.incident.created"
	maintenanceEvent = "maintenance.started"
	testToken        = "console-test-token-5d1e8a2c"
)

// receiver is a webhook endpoint on loopback whose answers a test scripts.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int // answered in order; the last one repeats; empty means 200
	bodies   [][]byte
	headers  []http.Header
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.bodies = append(rc.bodies, body)
		rc.headers = append(rc.headers, r.Header.Clone())
		status := http.StatusOK
		if len(rc.statuses) > 0 {
			status = rc.statuses[0]
			if len(rc.statuses) > 1 {
				rc.statuses = rc.statuses[1:]
			}
		}
		rc.mu.Unlock()
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) script(statuses ...int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.statuses = statuses
}

func (rc *receiver) requests() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.bodies)
}

// fixture is an outhook client with a console and its admin API mounted
// on a loopback server, as an application would mount them:
//
//	/admin/api/      the admin API (adminhttp)
//	/admin/console/  the console (adminui)
//
// both guarded by one TokenAuth.
type fixture struct {
	client   *outhook.Client
	fake     *outhooktest.Deliverer
	receiver *receiver
	server   *httptest.Server
	console  string // the console's URL, without a final slash
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	reg := outhook.NewEventRegistry()
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[IncidentCreated]{
		Hook: incidentCreated, DisplayName: "Incident Created", Description: "An incident was opened.",
		Category: outhook.CategoryIncidents,
	}, outhook.PluginMetadata{PluginID: "incident", DisplayName: "Incidents"})
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[MaintenanceStarted]{
		Hook: maintenanceStarted, DisplayName: "Maintenance Started", Category: outhook.CategoryMaintenance,
	}, outhook.PluginMetadata{PluginID: "maintenance"})

	hc, err := safehttp.New(&safehttp.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	require.NoError(t, err)
	wh, err := webhook.New(&webhook.Options{HTTP: hc})
	require.NoError(t, err)
	fake := outhooktest.NewDeliverer("fake")
	deliverers := []outhook.Deliverer{wh, fake}
	client := outhooktest.NewClient(t, &outhook.Config{Registry: reg, Deliverers: deliverers})

	auth, err := adminui.NewTokenAuth(testToken)
	require.NoError(t, err)
	api, err := adminhttp.New(client, &adminhttp.Options{Authorize: auth.Authorize, Deliverers: deliverers})
	require.NoError(t, err)
	console, err := adminui.New(api, &adminui.Options{Title: "Acme Status", Login: auth})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/admin/api/", http.StripPrefix("/admin/api", api))
	mux.Handle("/admin/console/", http.StripPrefix("/admin/console", console))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &fixture{client: client, fake: fake, receiver: newReceiver(t), server: srv, console: srv.URL + "/admin/console"}
}

// emitIncident emits one incident event and waits until its deliveries
// are done.
func (f *fixture) emitIncident(t *testing.T, id, severity string) {
	t.Helper()
	require.NoError(t, outhook.EmitHook(context.Background(), f.client, incidentCreated,
		IncidentCreated{IncidentID: id, Severity: severity, SystemIDs: []string{"sys-1"}}))
	outhooktest.WaitIdle(t, f.client)
}

// webhookSub creates a webhook subscription to the receiver through the
// client, with the given signing secret.
func (f *fixture) webhookSub(t *testing.T, name, secret string) outhook.Subscription {
	t.Helper()
	cfg, err := json.Marshal(map[string]any{"url": f.receiver.URL + "/hooks", "secrets": []map[string]string{{"secret": secret}}})
	require.NoError(t, err)
	s, err := f.client.CreateSubscription(context.Background(), outhook.Subscription{
		Name: name, Events: []string{"incident.**"}, DelivererID: webhook.ID, Config: cfg,
	})
	require.NoError(t, err)
	return s
}

// browser is an HTTP client that keeps cookies and does not follow
// redirects, so that tests see each answer.
type browser struct {
	t    *testing.T
	http *http.Client
	base string
}

func (f *fixture) newBrowser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &browser{t: t, base: f.console, http: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// signIn signs the browser in with the token.
func (b *browser) signIn() {
	b.t.Helper()
	b.get("/login")
	res, _ := b.post("/login", url.Values{"token": {testToken}})
	require.Equal(b.t, http.StatusSeeOther, res.StatusCode, "sign-in answer")
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	res, err := b.http.Do(req)
	require.NoError(b.t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(b.t, err)
	return res, string(body)
}

func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest("GET", b.base+path, nil)
	require.NoError(b.t, err)
	return b.do(req)
}

// post submits a form as the console's own page would: same origin, with
// the CSRF token from the browser's cookie.
func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	if form.Get("csrf") == "" {
		form.Set("csrf", b.cookie("outhook_csrf"))
	}
	req, err := http.NewRequest("POST", b.base+path, strings.NewReader(form.Encode()))
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.origin())
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return b.do(req)
}

func (b *browser) origin() string {
	u, err := url.Parse(b.base)
	require.NoError(b.t, err)
	return u.Scheme + "://" + u.Host
}

func (b *browser) cookie(name string) string {
	u, err := url.Parse(b.base + "/")
	require.NoError(b.t, err)
	for _, c := range b.http.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

var errNoSub = errors.New("no such subscription")

// subscriptionNamed finds a subscription by name through the client.
func (f *fixture) subscriptionNamed(t *testing.T, name string) (outhook.Subscription, error) {
	t.Helper()
	subs, err := f.client.Subscriptions(context.Background())
	require.NoError(t, err)
	for _, s := range subs {
		if s.Name == name {
			return s, nil
		}
	}
	return outhook.Subscription{}, errNoSub
}

// newServer serves h at the root of a loopback server.
func newServer(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}
