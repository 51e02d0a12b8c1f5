package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/adminhttp"
	"github.com/outhook/outhook/outhooktest"
	"github.com/stretchr/testify/require"
)

const adminToken = "tok-admin-test-1234"

type incident struct {
	ID       string `json:"id" validate:"required"`
	Severity string `json:"severity"`
}

type maintenance struct {
	WindowID string `json:"windowId"`
}

var (
	incidentHook    = outhook.MustNewHook[incident]("incident.created")
	maintenanceHook = outhook.MustNewHook[maintenance]("started")
)

const incidentEvent = "incident.incident.created"

// adminEnv is a running client with its admin API on a test server.
type adminEnv struct {
	client *outhook.Client
	fake   *outhooktest.Deliverer
	srv    *httptest.Server
	url    string // where the API is mounted
	sub    outhook.Subscription
}

func newAdminEnv(t *testing.T) *adminEnv {
	t.Helper()
	reg := outhook.NewEventRegistry()
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[incident]{
		Hook: incidentHook, DisplayName: "Incident Created", Category: outhook.CategoryIncidents,
	}, outhook.PluginMetadata{PluginID: "incident"})
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[maintenance]{
		Hook: maintenanceHook, DisplayName: "Maintenance Started", Category: outhook.CategoryMaintenance,
	}, outhook.PluginMetadata{PluginID: "maintenance"})

	e := &adminEnv{fake: outhooktest.NewDeliverer("fake")}
	deliverers := []outhook.Deliverer{e.fake}
	e.client = outhooktest.NewClient(t, &outhook.Config{Registry: reg, Deliverers: deliverers})
	h, err := adminhttp.New(e.client, &adminhttp.Options{
		Authorize: func(r *http.Request, _ adminhttp.Operation) error {
			if r.Header.Get("Authorization") != "Bearer "+adminToken {
				return adminhttp.ErrUnauthenticated
			}
			return nil
		},
		Deliverers: deliverers,
		Logger:     slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/admin/outhook/", http.StripPrefix("/admin/outhook", h))
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close) // before the client stops: cleanups run last first
	e.url = e.srv.URL + "/admin/outhook"

	e.sub, err = e.client.CreateSubscription(t.Context(), outhook.Subscription{
		Name: "ops", Events: []string{"incident.**"}, DelivererID: "fake"})
	require.NoError(t, err)
	return e
}

// admin runs "outhook admin args..." against the environment's API, the
// URL and token taken from the environment variables.
func (e *adminEnv) admin(t *testing.T, args ...string) result {
	t.Helper()
	env := map[string]string{envAdminURL: e.url, envToken: adminToken}
	return runCmd(t, "", env, append([]string{"admin"}, args...)...)
}

// ok runs an admin command that must succeed and returns its output.
func (e *adminEnv) ok(t *testing.T, args ...string) string {
	t.Helper()
	r := e.admin(t, args...)
	require.Equal(t, 0, r.code, "%v: stderr: %s", args, r.stderr)
	return r.stdout
}

// emit emits an incident and waits until its delivery ends.
func (e *adminEnv) emit(t *testing.T, id string) {
	t.Helper()
	require.NoError(t, outhook.EmitHook(t.Context(), e.client, incidentHook, incident{ID: id, Severity: "critical"}))
	outhooktest.WaitIdle(t, e.client)
}

// deliveries returns the deliveries of the environment's subscription,
// newest first.
func (e *adminEnv) deliveries(t *testing.T) []outhook.Delivery {
	t.Helper()
	ds, err := e.client.Deliveries(t.Context(), outhook.DeliveryQuery{SubscriptionID: e.sub.ID})
	require.NoError(t, err)
	return ds
}

// rows splits a table into its rows of cells.
func rows(out string) [][]string {
	var rs [][]string
	for line := range strings.SplitSeq(strings.TrimRight(out, "\n"), "\n") {
		rs = append(rs, regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), -1))
	}
	return rs
}

func TestAdminEvents(t *testing.T) {
	e := newAdminEnv(t)
	rs := rows(e.ok(t, "events"))
	require.Equal(t, [][]string{
		{"ID", "NAME", "CATEGORY", "PLUGIN"},
		{incidentEvent, "Incident Created", "Incidents", "incident"},
		{"maintenance.started", "Maintenance Started", "Maintenance", "maintenance"},
	}, rs[:3])
	require.Contains(t, rs, []string{"outhook.delivery.exhausted", "Delivery exhausted", "Operations", "outhook"}, "outhook's own events")

	out := e.ok(t, "events", "-o", "json")
	require.True(t, strings.HasPrefix(out, "{\n  \"categories\": ["), "pretty-printed: %s", out)
	var answer struct {
		Categories []struct {
			Name   string          `json:"name"`
			Events []outhook.Event `json:"events"`
		} `json:"categories"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &answer))
	require.Len(t, answer.Categories, 3)
	require.Equal(t, incidentEvent, answer.Categories[0].Events[0].ID)
	require.NotEmpty(t, answer.Categories[0].Events[0].Schema, "json shows the API's answer whole")
}

func TestAdminSubscriptions(t *testing.T) {
	e := newAdminEnv(t)
	second, err := e.client.CreateSubscription(t.Context(), outhook.Subscription{
		Name: "audit", Events: []string{incidentEvent, "maintenance.*"}, DelivererID: "fake"})
	require.NoError(t, err)

	header := []string{"ID", "NAME", "DELIVERER", "EVENTS", "STATE", "FAILURES"}
	first := []string{e.sub.ID, "ops", "fake", "incident.**", "enabled", "0"}
	require.Equal(t, [][]string{header, first,
		{second.ID, "audit", "fake", incidentEvent + ",maintenance.*", "enabled", "0"},
	}, rows(e.ok(t, "subscriptions", "list")))

	var page struct {
		Items      []outhook.Subscription `json:"items"`
		NextCursor string                 `json:"nextCursor"`
	}
	require.NoError(t, json.Unmarshal([]byte(e.ok(t, "subscriptions", "list", "--limit", "1", "-o", "json")), &page))
	require.Len(t, page.Items, 1)
	require.Equal(t, e.sub.ID, page.Items[0].ID)
	require.NotEmpty(t, page.NextCursor, "--limit stopped before the end")

	require.Equal(t, [][]string{header, first}, rows(e.ok(t, "subscriptions", "get", e.sub.ID)))
	require.Equal(t, [][]string{header, {e.sub.ID, "ops", "fake", "incident.**", "disabled", "0"}},
		rows(e.ok(t, "subscriptions", "disable", e.sub.ID)))

	var got outhook.Subscription
	require.NoError(t, json.Unmarshal([]byte(e.ok(t, "subscriptions", "get", e.sub.ID, "-o", "json")), &got))
	require.True(t, got.Disabled)
	require.Equal(t, e.sub.ID, got.ID)

	require.Equal(t, [][]string{header, first}, rows(e.ok(t, "subscriptions", "enable", e.sub.ID)))

	r := e.admin(t, "subscriptions", "get", "sub_missing")
	require.Equal(t, 1, r.code)
	require.Regexp(t, `^outhook: 404 Not found: .*sub_missing.*\n$`, r.stderr)
	require.NotContains(t, r.stderr, "--url", "a 404 of the API's own is no routing problem")
}

func TestAdminListFollowsPages(t *testing.T) {
	e := newAdminEnv(t)
	for range 2 {
		_, err := e.client.CreateSubscription(t.Context(), outhook.Subscription{Events: []string{"incident.**"}, DelivererID: "fake"})
		require.NoError(t, err)
	}
	c, err := (&adminOptions{env: func(string) string { return "" }, url: e.url, token: adminToken,
		output: outputTable, timeout: waitTimeout}).connect()
	require.NoError(t, err)
	defer c.close()

	items, next, err := c.list(t.Context(), "subscriptions", nil, 0, 1)
	require.NoError(t, err)
	require.Len(t, items, 3, "three pages of one")
	require.Empty(t, next)

	items, next, err = c.list(t.Context(), "subscriptions", nil, 2, 1)
	require.NoError(t, err)
	require.Len(t, items, 2)
	require.NotEmpty(t, next)
}

func TestAdminDeliveries(t *testing.T) {
	e := newAdminEnv(t)
	e.fake.Script(outhooktest.FailPermanent(errors.New("endpoint said no\tthrice\nreally")))
	e.emit(t, "inc_1")
	e.emit(t, "inc_2")
	ds := e.deliveries(t)
	require.Len(t, ds, 2)
	succeeded, failed := ds[0], ds[1] // newest first
	require.Equal(t, outhook.DeliveryFailed, failed.Status)
	require.Equal(t, outhook.DeliverySucceeded, succeeded.Status)

	rs := rows(e.ok(t, "deliveries", "list"))
	require.Equal(t, []string{"ID", "CREATED", "EVENT", "SUBSCRIPTION", "STATUS", "ATTEMPTS", "LAST ERROR"}, rs[0])
	require.Len(t, rs, 3)
	require.Equal(t, []string{succeeded.ID, formatTime(succeeded.CreatedAt), incidentEvent, e.sub.ID, "succeeded", "1", "-"}, rs[1])
	require.Equal(t, []string{failed.ID, formatTime(failed.CreatedAt), incidentEvent, e.sub.ID, "failed", "1"}, rs[2][:6])
	require.Contains(t, rs[2][6], "endpoint said no thrice really", "one line, no tabs")

	rs = rows(e.ok(t, "deliveries", "list", "--status", "failed", "--since", "1h", "--subscription", e.sub.ID, "--event", incidentEvent))
	require.Len(t, rs, 2)
	require.Equal(t, failed.ID, rs[1][0])
	require.Len(t, rows(e.ok(t, "deliveries", "list", "--until", "1h")), 1, "only the header")

	var list struct {
		Items []struct {
			ID           string          `json:"id"`
			AttemptCount int             `json:"attemptCount"`
			Payload      json.RawMessage `json:"payload"`
		} `json:"items"`
		NextCursor string `json:"nextCursor"`
	}
	require.NoError(t, json.Unmarshal([]byte(e.ok(t, "deliveries", "list", "--limit", "1", "-o", "json")), &list))
	require.Len(t, list.Items, 1)
	require.Equal(t, succeeded.ID, list.Items[0].ID)
	require.Equal(t, 1, list.Items[0].AttemptCount)
	require.JSONEq(t, `{"id":"inc_2","severity":"critical"}`, string(list.Items[0].Payload))
	require.NotEmpty(t, list.NextCursor)
	r := e.admin(t, "deliveries", "list", "--limit", "1")
	require.Equal(t, 0, r.code)
	require.Contains(t, r.stderr, "raise --limit")

	out := e.ok(t, "deliveries", "get", failed.ID)
	require.Contains(t, out, "ID:            "+failed.ID+"\n")
	require.Contains(t, out, "Status:        failed\n")
	require.Contains(t, out, "Subscription:  "+e.sub.ID+"\n")
	rs = rows(out[strings.Index(out, "ATTEMPT"):])
	require.Equal(t, []string{"ATTEMPT", "TRIGGER", "STARTED", "DURATION", "OUTCOME", "STATUS", "CLASS", "ERROR"}, rs[0])
	require.Len(t, rs, 2)
	require.Equal(t, []string{"1", "scheduled"}, rs[1][:2])
	require.Contains(t, rs[1], "permanent")

	var d outhook.Delivery
	require.NoError(t, json.Unmarshal([]byte(e.ok(t, "deliveries", "get", failed.ID, "-o", "json")), &d))
	require.Equal(t, failed.ID, d.ID)
	require.Len(t, d.Attempts, 1)

	for _, args := range [][]string{
		{"deliveries", "list", "--status", "lost"},
		{"deliveries", "list", "--since", "last week"},
		{"deliveries", "list", "--limit", "0"},
	} {
		r := e.admin(t, args...)
		require.Equal(t, 2, r.code, "%v: %s", args, r.stderr)
	}
	r = e.admin(t, "deliveries", "get", "dlv_missing")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "outhook: 404 Not found: ")
}

func TestAdminRedeliver(t *testing.T) {
	e := newAdminEnv(t)
	e.fake.Script(outhooktest.FailPermanent(nil))
	e.emit(t, "inc_1")
	failed := e.deliveries(t)[0]
	require.Equal(t, outhook.DeliveryFailed, failed.Status)

	out := e.ok(t, "redeliver", failed.ID)
	require.Regexp(t, `^redelivery of `+failed.ID+` queued: status (pending|succeeded), [12] attempt\(s\) so far\n$`, out)
	outhooktest.WaitIdle(t, e.client)

	rs := rows(e.ok(t, "deliveries", "get", failed.ID))
	attempts := rs[len(rs)-2:]
	require.Equal(t, []string{"1", "scheduled"}, attempts[0][:2])
	require.Equal(t, []string{"2", "manual"}, attempts[1][:2])
	require.Contains(t, attempts[1], "succeeded")
	require.Len(t, e.fake.Calls(), 2)

	var d outhook.Delivery
	require.NoError(t, json.Unmarshal([]byte(e.ok(t, "redeliver", failed.ID, "-o", "json")), &d))
	require.Equal(t, failed.ID, d.ID, "a succeeded delivery can be sent again too")
	outhooktest.WaitIdle(t, e.client)

	r := e.admin(t, "redeliver", "dlv_missing")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "outhook: 404 Not found: ")
}

func TestAdminRecover(t *testing.T) {
	e := newAdminEnv(t)
	e.fake.Script(outhooktest.FailPermanent(nil), outhooktest.FailPermanent(nil))
	e.emit(t, "inc_1")
	e.emit(t, "inc_2")
	e.emit(t, "inc_3")

	require.Equal(t, "redelivered 2 failed deliveries of subscription "+e.sub.ID+"\n",
		e.ok(t, "recover", e.sub.ID, "--since", "1h", "--until", time.Now().Add(time.Minute).Format(time.RFC3339)))
	outhooktest.WaitIdle(t, e.client)
	for _, d := range e.deliveries(t) {
		require.Equal(t, outhook.DeliverySucceeded, d.Status, d.ID)
	}
	require.JSONEq(t, `{"redelivered":0}`, e.ok(t, "recover", e.sub.ID, "--since", "1h", "-o", "json"))

	// The API's validation problem, with its field.
	r := e.admin(t, "recover", e.sub.ID, "--since", "1h", "--until", "2h")
	require.Equal(t, 1, r.code)
	require.Regexp(t, `^outhook: 400 Invalid request: .*\n  until: must be after since\n$`, r.stderr)

	r = e.admin(t, "recover", e.sub.ID)
	require.Equal(t, 2, r.code, "--since is required")
	require.Contains(t, r.stderr, `required flag(s) "since" not set`)
}

func TestAdminErrors(t *testing.T) {
	e := newAdminEnv(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	unreachable := "http://" + closed.Addr().String() + "/admin/outhook"
	require.NoError(t, closed.Close())

	for _, c := range []struct {
		name   string
		env    map[string]string
		args   []string
		code   int
		stderr string
	}{
		{"no token", map[string]string{envAdminURL: e.url}, []string{"events"}, 1,
			"outhook: 401 Unauthenticated: The request lacks valid credentials. (pass --token or set OUTHOOK_TOKEN)\n"},
		{"wrong token", map[string]string{envAdminURL: e.url, envToken: "nope"}, []string{"events"}, 1,
			"(the token was refused: check --token or OUTHOOK_TOKEN)\n"},
		{"--token beats the environment", map[string]string{envAdminURL: e.url, envToken: "nope"}, []string{"events", "--token", adminToken}, 0, ""},
		{"--url beats the environment", map[string]string{envAdminURL: unreachable, envToken: adminToken}, []string{"events", "--url", e.url}, 0, ""},
		{"unreachable", map[string]string{envAdminURL: unreachable, envToken: adminToken}, []string{"subscriptions", "list"}, 1,
			"outhook: cannot reach the admin API at " + unreachable + ": connection refused"},
		{"wrong mount point", map[string]string{envAdminURL: e.srv.URL + "/elsewhere", envToken: adminToken}, []string{"events"}, 1,
			"outhook: 404 Not Found: 404 page not found (no such route: is --url where the admin API is mounted?)\n"},
		{"no URL", map[string]string{envToken: adminToken}, []string{"events"}, 2, "outhook: no admin API URL: pass --url or set OUTHOOK_ADMIN_URL"},
		{"bad URL", map[string]string{envAdminURL: "localhost:8080", envToken: adminToken}, []string{"events"}, 2, `outhook: --url "localhost:8080": want an http or https URL`},
		{"bad output", map[string]string{envAdminURL: e.url, envToken: adminToken}, []string{"events", "-o", "yaml"}, 2, `outhook: --output "yaml": want table or json`},
		{"bad flag", map[string]string{envAdminURL: e.url, envToken: adminToken}, []string{"events", "--bogus"}, 2, "outhook: unknown flag: --bogus"},
		{"bad timeout", map[string]string{envAdminURL: e.url, envToken: adminToken}, []string{"events", "--timeout", "soon"}, 2, `outhook: invalid argument "soon" for "--timeout"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runCmd(t, "", c.env, append([]string{"admin"}, c.args...)...)
			require.Equal(t, c.code, r.code, "stderr: %s", r.stderr)
			require.Contains(t, r.stderr, c.stderr)
			require.NotContains(t, r.stderr, adminToken)
			if c.code != 0 {
				require.Empty(t, r.stdout)
			}
		})
	}
}

func TestAdminTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	r := runCmd(t, "", map[string]string{envAdminURL: srv.URL}, "admin", "events", "--timeout", "50ms")
	require.Equal(t, 1, r.code)
	require.Equal(t, "outhook: the admin API at "+srv.URL+" did not answer within 50ms (--timeout)\n", r.stderr)
}

func TestAdminCancelled(t *testing.T) {
	entered := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	var stderr syncBuffer
	go func() {
		done <- run(ctx, []string{"admin", "events", "--url", srv.URL}, strings.NewReader(""), &syncBuffer{}, &stderr, func(string) string { return "" })
	}()
	<-entered
	cancel()
	select {
	case code := <-done:
		require.Equal(t, 1, code)
		require.Equal(t, "outhook: interrupted before the admin API answered: context canceled\n", stderr.String())
	case <-time.After(waitTimeout):
		t.Fatal("the command did not stop")
	}
}
