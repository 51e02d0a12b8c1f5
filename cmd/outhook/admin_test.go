package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
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

	items, next, more, err := c.list(t.Context(), "subscriptions", nil, 0, 1)
	require.NoError(t, err)
	require.Len(t, items, 3, "three pages of one")
	require.Empty(t, next)
	require.False(t, more)

	items, next, more, err = c.list(t.Context(), "subscriptions", nil, 2, 1)
	require.NoError(t, err)
	require.Len(t, items, 2)
	require.NotEmpty(t, next)
	require.True(t, more)
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
	unreachable := "http://" + refusingAddr(t) + "/admin/outhook"

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
		{"bad URL with credentials", map[string]string{envToken: adminToken}, []string{"events", "--url", "ftp://ops:s3cret@example.com/api"}, 2,
			`outhook: --url "ftp://xxxxx@example.com/api": want an http or https URL`},
		{"bad URL with credentials, no scheme", map[string]string{envToken: adminToken}, []string{"events", "--url", "ops:s3cret@example.com:8080/api"}, 2,
			`outhook: --url "xxxxx@example.com:8080/api": want an http or https URL`},
		{"URL with credentials that does not parse", map[string]string{envToken: adminToken}, []string{"events", "--url", "http://ops:s3cret@example.com:port/api"}, 2,
			`outhook: --url "http://xxxxx@example.com:port/api": want an http or https URL`},
		{"bad output", map[string]string{envAdminURL: e.url, envToken: adminToken}, []string{"events", "-o", "yaml"}, 2, `outhook: --output "yaml": want table or json`},
		{"bad flag", map[string]string{envAdminURL: e.url, envToken: adminToken}, []string{"events", "--bogus"}, 2, "outhook: unknown flag: --bogus"},
		{"bad timeout", map[string]string{envAdminURL: e.url, envToken: adminToken}, []string{"events", "--timeout", "soon"}, 2, `outhook: invalid argument "soon" for "--timeout"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runCmd(t, "", c.env, append([]string{"admin"}, c.args...)...)
			require.Equal(t, c.code, r.code, "stderr: %s", r.stderr)
			require.Contains(t, r.stderr, c.stderr)
			require.NotContains(t, r.stderr, adminToken)
			require.NotContains(t, r.stderr, "s3cret")
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

// fakeAPI serves answer on a test server as the admin API, counting the
// requests; past 50 it answers 508, so that a command that would page on
// forever fails instead.
func fakeAPI(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) (url string, requests *atomic.Int32) {
	t.Helper()
	requests = new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(requests.Add(1))
		if n > 50 {
			http.Error(w, "looped", http.StatusLoopDetected)
			return
		}
		answer(n, w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, requests
}

func TestAdminPagesThatDoNotEnd(t *testing.T) {
	for _, c := range []struct {
		name     string
		args     []string
		page     func(n int) string // the answer to request n
		requests int32
		stderr   string
	}{
		{"list, same cursor", []string{"subscriptions", "list"},
			func(int) string { return `{"items":[{"id":"sub_1"}],"nextCursor":"c1"}` }, 2,
			`outhook: listing subscriptions: the API answered the same nextCursor "c1" twice: its pages would not end` + "\n"},
		{"list, cursor of an earlier page", []string{"deliveries", "list", "--limit", "500"},
			func(n int) string { return fmt.Sprintf(`{"items":[{"id":"dlv_%d"}],"nextCursor":"c%d"}`, n, n%2) }, 3,
			`outhook: listing deliveries: the API answered the same nextCursor "c1" twice`},
		{"list, empty page with a cursor", []string{"subscriptions", "list"},
			func(int) string { return `{"items":[],"nextCursor":"c1"}` }, 1,
			"outhook: listing subscriptions: the API answered an empty page with a nextCursor: its pages would not end\n"},
		{"recover, same cursor", []string{"recover", "sub_1", "--since", "1h"},
			func(n int) string { return fmt.Sprintf(`{"redelivered":%d,"nextCursor":"c1"}`, 2-n) }, 2,
			`outhook: recovering: the API answered the same nextCursor "c1" twice: its pages would not end (after redelivering 1)` + "\n"},
		{"recover, redelivering none, cursor not moving", []string{"recover", "sub_1", "--since", "1h"},
			func(int) string { return `{"redelivered":0,"nextCursor":"c1"}` }, 2,
			`outhook: recovering: the API answered the same nextCursor "c1" twice`},
	} {
		t.Run(c.name, func(t *testing.T) {
			api, requests := fakeAPI(t, func(n int, w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, c.page(n))
			})
			r := runCmd(t, "", map[string]string{envAdminURL: api}, append([]string{"admin"}, c.args...)...)
			require.Equal(t, 1, r.code, "stderr: %s", r.stderr)
			require.Empty(t, r.stdout)
			require.Contains(t, r.stderr, c.stderr)
			require.Equal(t, c.requests, requests.Load())
		})
	}
}

func TestAdminPageCap(t *testing.T) {
	defer func(n int) { maxPages = n }(maxPages)
	maxPages = 3
	api, requests := fakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			fmt.Fprintf(w, `{"redelivered":1,"nextCursor":"c%d"}`, n)
			return
		}
		fmt.Fprintf(w, `{"items":[{"id":"sub_%d"}],"nextCursor":"c%d"}`, n, n)
	})
	env := map[string]string{envAdminURL: api}
	r := runCmd(t, "", env, "admin", "subscriptions", "list")
	require.Equal(t, 1, r.code, "stderr: %s", r.stderr)
	require.Equal(t, "outhook: listing subscriptions: stopped after 3 requests: the API's pages do not end\n", r.stderr)
	require.Equal(t, int32(3), requests.Load())

	requests.Store(0)
	r = runCmd(t, "", env, "admin", "recover", "sub_1", "--since", "1h")
	require.Equal(t, 1, r.code, "stderr: %s", r.stderr)
	require.Equal(t, "outhook: recovering: stopped after 3 requests: the API's pages do not end (after redelivering 3)\n", r.stderr)
	require.Equal(t, int32(3), requests.Load())
}

func TestAdminListKeepsToLimit(t *testing.T) {
	// An API that ignores limit and answers five items a page.
	api, _ := fakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
		var items []string
		for i := range 5 {
			items = append(items, fmt.Sprintf(`{"id":"x_%d_%d"}`, n, i))
		}
		fmt.Fprintf(w, `{"items":[%s],"nextCursor":"c%d"}`, strings.Join(items, ","), n)
	})
	env := map[string]string{envAdminURL: api}
	var page struct {
		Items      []outhook.Subscription `json:"items"`
		NextCursor *string                `json:"nextCursor"`
	}
	require.NoError(t, json.Unmarshal([]byte(runCmd(t, "", env, "admin", "subscriptions", "list", "--limit", "2", "-o", "json").stdout), &page))
	require.Len(t, page.Items, 2)
	require.Nil(t, page.NextCursor, "no cursor leads to the items dropped")

	r := runCmd(t, "", env, "admin", "deliveries", "list", "--limit", "7")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	require.Len(t, rows(r.stdout), 8, "the header and 7 deliveries")
	require.Contains(t, r.stderr, "raise --limit")
}

func TestAdminBadIDs(t *testing.T) {
	e := newAdminEnv(t)
	for _, c := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"deliveries", "get", ""}, "outhook: DELIVERY_ID is empty"},
		{[]string{"deliveries", "get", "."}, `outhook: DELIVERY_ID "." is not an ID`},
		{[]string{"deliveries", "get", ".."}, `outhook: DELIVERY_ID ".." is not an ID`},
		{[]string{"deliveries", "get", "dlv_\x1b[2J"}, `outhook: DELIVERY_ID "dlv_\x1b[2J" contains control characters`},
		{[]string{"deliveries", "get", "dlv_\u202e1"}, `outhook: DELIVERY_ID "dlv_\u202e1" contains control characters`},
		{[]string{"redeliver", ".."}, `outhook: DELIVERY_ID ".." is not an ID`},
		{[]string{"subscriptions", "get", ""}, "outhook: SUBSCRIPTION_ID is empty"},
		{[]string{"subscriptions", "disable", ".."}, `outhook: SUBSCRIPTION_ID ".." is not an ID`},
		{[]string{"recover", ".", "--since", "1h"}, `outhook: SUBSCRIPTION_ID "." is not an ID`},
	} {
		t.Run(fmt.Sprintf("%q", c.args), func(t *testing.T) {
			r := e.admin(t, c.args...)
			require.Equal(t, 2, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
			require.Empty(t, r.stdout)
			require.Contains(t, r.stderr, c.stderr)
			require.Contains(t, r.stderr, "--help")
		})
	}

	// An ID with a slash stays one path segment: the API's own 404.
	r := e.admin(t, "deliveries", "get", "dlv/../../subscriptions")
	require.Equal(t, 1, r.code, "stdout: %s", r.stdout)
	require.Contains(t, r.stderr, "outhook: 404 Not found: ")
	require.NotContains(t, r.stderr, "--url", "the route was found")
}

func TestAdminEscapesControls(t *testing.T) {
	e := newAdminEnv(t)
	e.fake.Script(outhooktest.FailPermanent(errors.New("500 \x1b[2Jboom\u009b31m\u202eevil")))
	e.emit(t, "inc_1")
	const escaped = `500 \x1b[2Jboom\u009b31m\u202eevil`
	for _, args := range [][]string{{"deliveries", "list"}, {"deliveries", "get", e.deliveries(t)[0].ID}} {
		out := e.ok(t, args...)
		require.Contains(t, out, escaped, "%v", args)
		require.NotContains(t, out, "\x1b", "%v", args)
		require.NotContains(t, out, "\u009b", "%v", args)
		require.NotContains(t, out, "\u202e", "%v", args)
	}
	out := e.ok(t, "deliveries", "list", "-o", "json")
	require.Contains(t, out, `\u001b[2Jboom`, "JSON is left as the API wrote it")
}

func TestAdminProblemEscapesControls(t *testing.T) {
	api, _ := fakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"title":"Invalid\u009b","status":400,"detail":"no \u001b[31mred\nline",`+
				`"errors":[{"field":"since\u202e","detail":"bad\u001b]0;title\u0007"}]}`)
			return
		}
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprint(w, "\x1b[2Jdown\xff")
	})
	env := map[string]string{envAdminURL: api}
	r := runCmd(t, "", env, "admin", "events")
	require.Equal(t, 1, r.code)
	require.Equal(t, `outhook: 400 Invalid\u009b: no \x1b[31mred\x0aline`+"\n"+`  since\u202e: bad\x1b]0;title\x07`+"\n", r.stderr)
	r = runCmd(t, "", env, "admin", "events")
	require.Equal(t, 1, r.code)
	require.Equal(t, `outhook: 502 Bad Gateway: \x1b[2Jdown\xff`+"\n", r.stderr)
}

func TestAdminDoesNotFollowRedirects(t *testing.T) {
	var followed atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/login?next=%2Fapi", http.StatusFound)
	})
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		followed.Store(true)
		fmt.Fprint(w, `{"categories":[]}`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	r := runCmd(t, "", map[string]string{envAdminURL: srv.URL + "/api", envToken: adminToken}, "admin", "events")
	require.Equal(t, 1, r.code, "stdout: %s", r.stdout)
	require.Equal(t, "outhook: the API answered a redirect to "+srv.URL+"/login?next=%2Fapi; point --url at the API itself\n", r.stderr)
	require.False(t, followed.Load(), "the token went to the API only")
}
