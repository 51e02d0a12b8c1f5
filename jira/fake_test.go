package jira_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/jira"
	"github.com/outhook/outhook/safehttp"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testEmail = "bot@example.com"
	testToken = "ATATT3xFfGF0-s3cr3t-T0k3n_value=="
)

// testNow is the clock of the deliverers under test.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// basicValue is the Authorization header the deliverer must send.
var basicValue = "Basic " + base64.StdEncoding.EncodeToString([]byte(testEmail+":"+testToken))

// loopbackHTTP returns a safehttp client that may reach 127.0.0.0/8.
func loopbackHTTP(t testing.TB) *safehttp.Client {
	t.Helper()
	c, err := safehttp.New(&safehttp.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// newDeliverer returns a deliverer that may reach loopback, on any host.
func newDeliverer(t testing.TB) *jira.Deliverer {
	t.Helper()
	d, err := jira.New(&jira.Options{HTTP: loopbackHTTP(t), Now: func() time.Time { return testNow }, AllowAnyHost: true})
	require.NoError(t, err)
	return d
}

// config returns a valid config for baseURL, changed by edits.
func config(t testing.TB, baseURL string, edits ...func(map[string]any)) json.RawMessage {
	t.Helper()
	m := map[string]any{"baseUrl": baseURL, "email": testEmail, "apiToken": testToken, "projectKey": "OPS"}
	for _, e := range edits {
		e(m)
	}
	raw, err := json.Marshal(m)
	require.NoError(t, err)
	return raw
}

func set(key string, value any) func(map[string]any) {
	return func(m map[string]any) { m[key] = value }
}

// request returns a delivery request for an incident event with payload.
func request(cfg json.RawMessage, payload string) *outhook.DeliveryRequest {
	return &outhook.DeliveryRequest{
		DeliveryID: "dlv_01KJ0000000000000000000001",
		MessageID:  "msg_01KJ0000000000000000000001",
		EventID:    "incident.incident.created",
		Event: outhook.Event{
			ID: "incident.incident.created", HookID: "incident.created", DisplayName: "Incident Created",
			Category: "Incidents", Plugin: outhook.PluginMetadata{PluginID: "incident"},
		},
		Subscription: outhook.Subscription{ID: "sub_1", DelivererID: jira.ID, Config: cfg},
		Payload:      json.RawMessage(payload),
		OccurredAt:   time.Date(2026, 3, 1, 11, 59, 30, 0, time.UTC),
		Attempt:      1,
	}
}

// recorded is a request the fake received.
type recorded struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
}

type fakeIssue struct {
	ID, Key, Project string
	Labels           []string
	Fields           map[string]any
}

// fakeJira is a stand-in for a Jira Cloud site: it searches its issues by
// project and label, and creates issues. Hooks change its answers.
type fakeJira struct {
	srv *httptest.Server

	mu       sync.Mutex
	issues   []fakeIssue
	searches []recorded
	creates  []recorded
	// onSearch, if set, may answer a search itself (returning true).
	onSearch func(w http.ResponseWriter, r *http.Request) bool
	// afterCreate, if set, runs after an issue was stored and may answer
	// in place of the 201 (returning true): to lose the response.
	afterCreate func(w http.ResponseWriter, r *http.Request, issue fakeIssue) bool
	// onCreate, if set, may answer a creation before any issue is stored.
	onCreate func(w http.ResponseWriter, r *http.Request) bool
}

var jqlRE = regexp.MustCompile(`^project = "([A-Z0-9_]+)" AND labels = "([^"\\]+)"$`)

func newFakeJira(t testing.TB) *fakeJira {
	t.Helper()
	f := &fakeJira{}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeJira) URL() string { return f.srv.URL }

func (f *fakeJira) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body}
	if r.Header.Get("Authorization") != basicValue {
		writeJSON(w, http.StatusUnauthorized, `{"errorMessages":["Client must be authenticated to access this resource."],"errors":{}}`)
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/rest/api/3/search/jql":
		f.mu.Lock()
		f.searches = append(f.searches, rec)
		hook := f.onSearch
		f.mu.Unlock()
		if hook != nil && hook(w, r) {
			return
		}
		f.search(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/rest/api/3/issue":
		f.mu.Lock()
		f.creates = append(f.creates, rec)
		hook := f.onCreate
		f.mu.Unlock()
		if hook != nil && hook(w, r) {
			return
		}
		f.create(w, r, body)
	default:
		writeJSON(w, http.StatusNotFound, `{"errorMessages":["no such endpoint"]}`)
	}
}

func (f *fakeJira) search(w http.ResponseWriter, r *http.Request) {
	m := jqlRE.FindStringSubmatch(r.URL.Query().Get("jql"))
	if m == nil {
		writeJSON(w, http.StatusBadRequest, `{"errorMessages":["Error in the JQL Query"],"errors":{}}`)
		return
	}
	type hit struct {
		ID   string `json:"id"`
		Key  string `json:"key"`
		Self string `json:"self"`
	}
	hits := []hit{}
	f.mu.Lock()
	for _, is := range f.issues {
		if is.Project == m[1] && slices.Contains(is.Labels, m[2]) && len(hits) < 1 {
			hits = append(hits, hit{ID: is.ID, Key: is.Key, Self: f.srv.URL + "/rest/api/3/issue/" + is.ID})
		}
	}
	f.mu.Unlock()
	out, _ := json.Marshal(map[string]any{"issues": hits, "isLast": true})
	writeJSON(w, http.StatusOK, string(out))
}

func (f *fakeJira) create(w http.ResponseWriter, r *http.Request, body []byte) {
	var req struct {
		Fields map[string]any `json:"fields"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, `{"errorMessages":["Unexpected character"]}`)
		return
	}
	project, _ := req.Fields["project"].(map[string]any)
	key, _ := project["key"].(string)
	var labels []string
	if ls, ok := req.Fields["labels"].([]any); ok {
		for _, l := range ls {
			s, _ := l.(string)
			labels = append(labels, s)
		}
	}
	f.mu.Lock()
	n := len(f.issues) + 1
	is := fakeIssue{ID: fmt.Sprint(10000 + n), Key: fmt.Sprintf("%s-%d", key, n), Project: key, Labels: labels, Fields: req.Fields}
	f.issues = append(f.issues, is)
	hook := f.afterCreate
	f.mu.Unlock()
	if hook != nil && hook(w, r, is) {
		return
	}
	writeJSON(w, http.StatusCreated, fmt.Sprintf(`{"id":%q,"key":%q,"self":%q}`, is.ID, is.Key, f.srv.URL+"/rest/api/3/issue/"+is.ID))
}

func (f *fakeJira) Issues() []fakeIssue {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.issues)
}

func (f *fakeJira) Searches() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.searches)
}

func (f *fakeJira) Creates() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.creates)
}

func (f *fakeJira) set(fn func(f *fakeJira)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func writeJSON(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}
