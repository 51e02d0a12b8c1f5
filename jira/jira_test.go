package jira_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/jira"
	"github.com/outhook/outhook/safehttp"
	"github.com/stretchr/testify/require"
)

const testDeliveryID = "dlv_01KJ0000000000000000000001"

// outcome names how the core reads a Deliver error.
type outcome struct {
	kind  string // "ok", "retry", "permanent", "gone"
	after time.Duration
}

func outcomeOf(err error) outcome {
	if err == nil {
		return outcome{kind: "ok"}
	}
	if _, ok := errors.AsType[*outhook.GoneError](err); ok {
		return outcome{kind: "gone"}
	}
	if _, ok := errors.AsType[*outhook.PermanentError](err); ok {
		return outcome{kind: "permanent"}
	}
	if ra, ok := errors.AsType[*outhook.RetryAfterError](err); ok {
		return outcome{kind: "retry", after: ra.After}
	}
	return outcome{kind: "retry"}
}

func errorClass(err error) string {
	if c, ok := errors.AsType[interface {
		error
		ErrorClass() string
	}](err); ok {
		return c.ErrorClass()
	}
	return ""
}

// createdFields decodes the fields of the i-th creation the fake received.
func createdFields(t *testing.T, f *fakeJira, i int) map[string]any {
	t.Helper()
	creates := f.Creates()
	require.Greater(t, len(creates), i)
	var body struct {
		Fields map[string]any `json:"fields"`
	}
	require.NoError(t, json.Unmarshal(creates[i].Body, &body))
	return body.Fields
}

// paragraphs returns the texts of an ADF description's paragraphs,
// checking its structure on the way.
func paragraphs(t *testing.T, description any) []string {
	t.Helper()
	doc, ok := description.(map[string]any)
	require.True(t, ok, "description is an object: %v", description)
	require.Equal(t, "doc", doc["type"])
	require.EqualValues(t, 1, doc["version"])
	var out []string
	for _, p := range doc["content"].([]any) {
		para := p.(map[string]any)
		require.Equal(t, "paragraph", para["type"])
		content := para["content"].([]any)
		require.Len(t, content, 1)
		text := content[0].(map[string]any)
		require.Equal(t, "text", text["type"])
		require.NotEmpty(t, text["text"], "ADF refuses empty text nodes")
		out = append(out, text["text"].(string))
	}
	return out
}

func TestWireFormat(t *testing.T) {
	f := newFakeJira(t)
	d := newDeliverer(t)
	cfg := config(t, f.URL(), set("issueType", "Incident"), set("labels", []string{"ops", "alerts", "ops"}))
	req := request(cfg, `{"title":"Database down","severity":"critical","systemIds":["db-1","db-2"],"count":3,"note":null}`)

	res, err := d.Deliver(context.Background(), req)
	require.NoError(t, err)
	require.Equal(t, "OPS-1", res.ExternalID)
	require.Equal(t, http.StatusCreated, res.StatusCode)
	require.JSONEq(t, fmt.Sprintf(`{"id":"10001","key":"OPS-1","self":"%s/rest/api/3/issue/10001"}`, f.URL()), res.Response)

	// The search for an issue of this delivery comes first.
	searches := f.Searches()
	require.Len(t, searches, 1)
	s := searches[0]
	require.Equal(t, http.MethodGet, s.Method)
	require.Equal(t, "/rest/api/3/search/jql", s.Path)
	require.Equal(t, url.Values{
		"jql":        {`project = "OPS" AND labels = "outhook-` + testDeliveryID + `"`},
		"fields":     {"key"},
		"maxResults": {"1"},
	}, s.Query)
	require.Equal(t, basicValue, s.Header.Get("Authorization"))
	require.Equal(t, "application/json", s.Header.Get("Accept"))
	require.Equal(t, "outhook/"+safehttp.Version, s.Header.Get("User-Agent"))
	require.Empty(t, s.Body)

	creates := f.Creates()
	require.Len(t, creates, 1)
	c := creates[0]
	require.Equal(t, http.MethodPost, c.Method)
	require.Equal(t, "/rest/api/3/issue", c.Path)
	require.Empty(t, c.Query)
	require.Equal(t, basicValue, c.Header.Get("Authorization"))
	require.Equal(t, "application/json", c.Header.Get("Accept"))
	require.Equal(t, "application/json", c.Header.Get("Content-Type"))
	require.Equal(t, "outhook/"+safehttp.Version, c.Header.Get("User-Agent"))

	para := func(text string) string {
		return fmt.Sprintf(`{"type":"paragraph","content":[{"type":"text","text":%q}]}`, text)
	}
	want := `{"fields":{
		"project":{"key":"OPS"},
		"summary":"Incident Created: Database down",
		"issuetype":{"name":"Incident"},
		"description":{"type":"doc","version":1,"content":[` + strings.Join([]string{
		para("Event: Incident Created (incident.incident.created)"),
		para("Category: Incidents"),
		para("Occurred at: 2026-03-01T11:59:30Z"),
		para("Delivery: " + testDeliveryID),
		para("Payload fields:"),
		para("count: 3"),
		para("severity: critical"),
		para(`systemIds: ["db-1","db-2"]`),
		para("title: Database down"),
	}, ",") + `]},
		"labels":["ops","alerts","outhook-` + testDeliveryID + `"]}}`
	require.JSONEq(t, want, string(c.Body))

	// Field by field, too: the ADF structure the helper checks.
	fields := createdFields(t, f, 0)
	require.Equal(t, map[string]any{"key": "OPS"}, fields["project"])
	require.Equal(t, map[string]any{"name": "Incident"}, fields["issuetype"])
	require.Equal(t, "Incident Created: Database down", fields["summary"])
	require.Equal(t, []any{"ops", "alerts", "outhook-" + testDeliveryID}, fields["labels"])
	require.Len(t, paragraphs(t, fields["description"]), 9)
}

func TestDefaultIssueType(t *testing.T) {
	f := newFakeJira(t)
	_, err := newDeliverer(t).Deliver(context.Background(), request(config(t, f.URL()), `{}`))
	require.NoError(t, err)
	fields := createdFields(t, f, 0)
	require.Equal(t, map[string]any{"name": "Task"}, fields["issuetype"])
	require.Equal(t, []any{"outhook-" + testDeliveryID}, fields["labels"])
	require.Equal(t, "Incident Created", fields["summary"])
	require.Contains(t, paragraphs(t, fields["description"]), "The payload has no fields.")
}

func TestBaseURLWithPathAndTrailingSlash(t *testing.T) {
	f := newFakeJira(t)
	// A site behind a path prefix (AllowAnyHost); the fake serves at the
	// root, so strip the prefix in front of it.
	prefixed := httptest.NewServer(http.StripPrefix("/jira", f.srv.Config.Handler))
	t.Cleanup(prefixed.Close)
	res, err := newDeliverer(t).Deliver(context.Background(), request(config(t, prefixed.URL+"/jira/"), `{}`))
	require.NoError(t, err)
	require.Equal(t, "OPS-1", res.ExternalID)
}

// TestLostCreateResponseMakesNoDuplicate is the idempotency flow: Jira
// creates the issue but its answer is lost; the retry finds the issue by
// its label and creates no other.
func TestLostCreateResponseMakesNoDuplicate(t *testing.T) {
	for _, tc := range []struct {
		name      string
		lose      func(w http.ResponseWriter)
		wantClass string
		wantAfter time.Duration
	}{
		{name: "502 from a proxy", wantClass: "http_status", lose: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte("<html><body>502 Bad Gateway</body></html>"))
		}},
		{name: "503 with Retry-After", wantClass: "http_status", wantAfter: 7 * time.Second, lose: func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusServiceUnavailable)
		}},
		{name: "connection closed", wantClass: "connect", lose: func(w http.ResponseWriter) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeJira(t)
			lost := 0
			f.set(func(f *fakeJira) {
				f.afterCreate = func(w http.ResponseWriter, _ *http.Request, _ fakeIssue) bool {
					lost++
					if lost > 1 {
						return false
					}
					tc.lose(w)
					return true
				}
			})
			d := newDeliverer(t)
			req := request(config(t, f.URL()), `{"title":"Database down"}`)

			res, err := d.Deliver(context.Background(), req)
			require.Error(t, err)
			require.Equal(t, outcome{kind: "retry", after: tc.wantAfter}, outcomeOf(err), "%v", err)
			require.Equal(t, tc.wantClass, errorClass(err))
			require.Empty(t, res.ExternalID)
			require.Len(t, f.Issues(), 1, "Jira did create the issue")

			req.Attempt = 2
			res, err = d.Deliver(context.Background(), req)
			require.NoError(t, err)
			require.Equal(t, "OPS-1", res.ExternalID)
			require.Equal(t, http.StatusOK, res.StatusCode)
			require.Contains(t, res.Response, `"key":"OPS-1"`)

			require.Len(t, f.Issues(), 1, "exactly one issue")
			require.Len(t, f.Creates(), 1, "the retry did not create")
			require.Len(t, f.Searches(), 2)
			require.Equal(t, []string{"outhook-" + testDeliveryID}, f.Issues()[0].Labels)

			// And any later attempt finds the same issue.
			req.Attempt = 3
			res, err = d.Deliver(context.Background(), req)
			require.NoError(t, err)
			require.Equal(t, "OPS-1", res.ExternalID)
			require.Len(t, f.Creates(), 1)
		})
	}
}

func TestExistingIssueIsNotCreatedAgain(t *testing.T) {
	f := newFakeJira(t)
	f.set(func(f *fakeJira) {
		f.issues = append(f.issues,
			fakeIssue{ID: "10006", Key: "OPS-6", Project: "OPS", Labels: []string{"outhook-dlv_other"}},
			fakeIssue{ID: "10007", Key: "OPS-7", Project: "OPS", Labels: []string{"ops", "outhook-" + testDeliveryID}},
			fakeIssue{ID: "10008", Key: "DEV-8", Project: "DEV", Labels: []string{"outhook-dlv_2"}},
		)
	})
	res, err := newDeliverer(t).Deliver(context.Background(), request(config(t, f.URL()), `{}`))
	require.NoError(t, err)
	require.Equal(t, "OPS-7", res.ExternalID)
	require.Empty(t, f.Creates())

	// An answer with the ID alone, as a number or a string, is enough.
	for _, body := range []string{`{"issues":[{"id":10005}]}`, `{"issues":[{"id":"10005","self":"x"}],"isLast":true}`} {
		f.set(func(f *fakeJira) {
			f.onSearch = func(w http.ResponseWriter, _ *http.Request) bool {
				writeJSON(w, http.StatusOK, body)
				return true
			}
		})
		res, err = newDeliverer(t).Deliver(context.Background(), request(config(t, f.URL()), `{}`))
		require.NoError(t, err)
		require.Equal(t, "10005", res.ExternalID)
		require.Empty(t, f.Creates())
	}
}

func TestSearchFailureCreatesNothing(t *testing.T) {
	status := func(code int, header map[string]string, body string) func(w http.ResponseWriter, r *http.Request) bool {
		return func(w http.ResponseWriter, _ *http.Request) bool {
			for k, v := range header {
				w.Header().Set(k, v)
			}
			writeJSON(w, code, body)
			return true
		}
	}
	for _, tc := range []struct {
		name     string
		onSearch func(w http.ResponseWriter, r *http.Request) bool
		want     outcome
		contains string
	}{
		{"500", status(500, nil, `{"errorMessages":["Internal server error"]}`), outcome{kind: "retry"}, "Internal server error"},
		{"502", status(502, nil, ``), outcome{kind: "retry"}, "502"},
		{"503 Retry-After", status(503, map[string]string{"Retry-After": "30"}, ``), outcome{kind: "retry", after: 30 * time.Second}, "503"},
		{"504", status(504, nil, ``), outcome{kind: "retry"}, "504"},
		{"429 Retry-After", status(429, map[string]string{"Retry-After": "120"}, `{"errorMessages":["Rate limit exceeded."]}`), outcome{kind: "retry", after: 2 * time.Minute}, "Rate limit exceeded."},
		{"429 X-RateLimit-Reset", status(429, map[string]string{"X-RateLimit-Reset": "2026-03-01T12:03Z"}, ``), outcome{kind: "retry", after: 3 * time.Minute}, "429"},
		{"200 unreadable", status(200, nil, `{"issues":[`), outcome{kind: "retry"}, "unreadable answer"},
		{"200 HTML", status(200, nil, `<html>login</html>`), outcome{kind: "retry"}, "unreadable answer"},
		{"200 hit without key", status(200, nil, `{"issues":[{}]}`), outcome{kind: "retry"}, "neither key nor id"},
		// A complete "no issue" answer, but the connection is cut before
		// the announced length: the rest might have listed the issue.
		{"200 cut", func(w http.ResponseWriter, _ *http.Request) bool {
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"issues\":[]}")
				_ = buf.Flush()
				_ = conn.Close()
			}
			return true
		}, outcome{kind: "retry"}, "unreadable answer"},
		{"connection closed", func(w http.ResponseWriter, _ *http.Request) bool {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return true
		}, outcome{kind: "retry"}, "connect"},
		{"400 bad JQL", status(400, nil, `{"errorMessages":["The value 'OPS' does not exist for the field 'project'."],"errors":{}}`), outcome{kind: "permanent"}, "The value 'OPS' does not exist for the field 'project'."},
		{"401", status(401, nil, `{"errorMessages":["Client must be authenticated to access this resource."]}`), outcome{kind: "permanent"}, "Client must be authenticated"},
		{"403", status(403, nil, ``), outcome{kind: "permanent"}, "403"},
		{"410", status(410, nil, `{"errorMessages":["The requested API has been removed."]}`), outcome{kind: "permanent"}, "has been removed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeJira(t)
			f.set(func(f *fakeJira) { f.onSearch = tc.onSearch })
			_, err := newDeliverer(t).Deliver(context.Background(), request(config(t, f.URL()), `{}`))
			require.Error(t, err)
			require.Equal(t, tc.want, outcomeOf(err), "%v", err)
			require.Contains(t, err.Error(), tc.contains)
			require.Contains(t, err.Error(), "jira: search project OPS")
			require.Empty(t, f.Creates(), "a failed search must not lead to a creation")
		})
	}

	t.Run("server down", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		base := srv.URL
		srv.Close()
		_, err := newDeliverer(t).Deliver(context.Background(), request(config(t, base), `{}`))
		require.Error(t, err)
		require.Equal(t, outcome{kind: "retry"}, outcomeOf(err), "%v", err)
		require.Equal(t, "connect", errorClass(err))
	})
}

func TestCreateStatusClasses(t *testing.T) {
	badRequest := `{"errorMessages":["Issue type is not valid"],"errors":{"summary":"Field 'summary' cannot be set. It is not on the appropriate screen, or unknown.","labels":"Field 'labels' cannot be set."}}`
	for _, tc := range []struct {
		code     int
		header   map[string]string
		body     string
		want     outcome
		external string
		contains []string
	}{
		{code: 200, body: `{"id":"10009","key":"OPS-9"}`, want: outcome{kind: "ok"}, external: "OPS-9"},
		{code: 201, body: `{"id":"10042"}`, want: outcome{kind: "ok"}, external: "10042"},
		{code: 201, body: `{"id":10043}`, want: outcome{kind: "ok"}, external: "10043"},
		{code: 201, body: `not json`, want: outcome{kind: "ok"}},
		{code: 301, header: map[string]string{"Location": "https://elsewhere.example/"}, want: outcome{kind: "permanent"}, contains: []string{"301"}},
		{code: 400, body: badRequest, want: outcome{kind: "permanent"}, contains: []string{
			"400 Bad Request", "Issue type is not valid",
			"labels: Field 'labels' cannot be set.",
			"summary: Field 'summary' cannot be set. It is not on the appropriate screen, or unknown."}},
		{code: 401, body: `{"errorMessages":["Client must be authenticated to access this resource."]}`, want: outcome{kind: "permanent"}, contains: []string{"401", "Client must be authenticated"}},
		{code: 403, body: `{"errorMessages":["You do not have permission to create issues in this project."]}`, want: outcome{kind: "permanent"}, contains: []string{"403", "permission"}},
		{code: 404, body: `{"errorMessages":["Project not found"]}`, want: outcome{kind: "permanent"}, contains: []string{"404", "Project not found"}},
		{code: 410, want: outcome{kind: "permanent"}, contains: []string{"410"}},
		{code: 429, header: map[string]string{"Retry-After": "120"}, want: outcome{kind: "retry", after: 2 * time.Minute}, contains: []string{"429"}},
		{code: 429, header: map[string]string{"Retry-After": testNow.Add(90 * time.Second).Format(http.TimeFormat)}, want: outcome{kind: "retry", after: 90 * time.Second}},
		{code: 429, header: map[string]string{"X-RateLimit-Reset": "2026-03-01T12:05Z"}, want: outcome{kind: "retry", after: 5 * time.Minute}},
		{code: 429, header: map[string]string{"Retry-After": "10", "X-RateLimit-Reset": "2026-03-01T12:05Z"}, want: outcome{kind: "retry", after: 10 * time.Second}},
		{code: 429, want: outcome{kind: "retry"}},
		{code: 500, want: outcome{kind: "retry"}, contains: []string{"500 Internal Server Error"}},
		{code: 501, want: outcome{kind: "permanent"}},
		{code: 502, want: outcome{kind: "retry"}},
		{code: 503, header: map[string]string{"Retry-After": "30"}, want: outcome{kind: "retry", after: 30 * time.Second}},
		{code: 504, want: outcome{kind: "retry"}},
	} {
		name := fmt.Sprintf("%d %v", tc.code, tc.header)
		t.Run(name, func(t *testing.T) {
			f := newFakeJira(t)
			f.set(func(f *fakeJira) {
				f.onCreate = func(w http.ResponseWriter, _ *http.Request) bool {
					for k, v := range tc.header {
						w.Header().Set(k, v)
					}
					writeJSON(w, tc.code, tc.body)
					return true
				}
			})
			res, err := newDeliverer(t).Deliver(context.Background(), request(config(t, f.URL()), `{}`))
			require.Equal(t, tc.want, outcomeOf(err), "%v", err)
			require.Equal(t, tc.code, res.StatusCode)
			require.Equal(t, tc.body, res.Response)
			require.Equal(t, tc.external, res.ExternalID)
			if err != nil {
				require.Equal(t, "http_status", errorClass(err))
				require.Contains(t, err.Error(), "jira: create Task issue in project OPS")
				_, gone := errors.AsType[*outhook.GoneError](err)
				require.False(t, gone, "no Jira answer disables the subscription")
			}
			for _, s := range tc.contains {
				require.Contains(t, err.Error(), s)
			}
			require.Len(t, f.Creates(), 1)
		})
	}
}

func TestSummary(t *testing.T) {
	long := strings.Repeat("x", 300)
	fire := strings.Repeat("🔥", 300)
	for _, tc := range []struct {
		name    string
		edit    func(map[string]any)
		event   *outhook.Event
		payload string
		check   func(t *testing.T, summary string)
	}{
		{name: "title", payload: `{"title":"Database down","summary":"ignored"}`, check: equal("Incident Created: Database down")},
		{name: "summary field", payload: `{"summary":"Disk full"}`, check: equal("Incident Created: Disk full")},
		{name: "empty title", payload: `{"title":"","summary":"Disk full"}`, check: equal("Incident Created: Disk full")},
		{name: "no title", payload: `{"severity":"minor"}`, check: equal("Incident Created")},
		{name: "null title", payload: `{"title":null}`, check: equal("Incident Created")},
		{name: "not an object", payload: `[1,2,3]`, check: equal("Incident Created")},
		{name: "unregistered event", event: &outhook.Event{}, payload: `{"title":"t"}`, check: equal("incident.incident.created: t")},
		{name: "one line", payload: `{"title":"line one\nline two\r\n\tthree  \u0007four"}`, check: equal("Incident Created: line one line two three four")},
		{name: "truncated", payload: `{"title":"` + long + `"}`, check: func(t *testing.T, s string) {
			require.Equal(t, jira.MaxSummary, utf8.RuneCountInString(s))
			require.True(t, strings.HasPrefix(s, "Incident Created: xxx"))
			require.True(t, strings.HasSuffix(s, "x…"))
		}},
		{name: "truncated in UTF-16 units", payload: `{"title":"` + fire + `"}`, check: func(t *testing.T, s string) {
			require.True(t, utf8.ValidString(s))
			require.LessOrEqual(t, len(utf16.Encode([]rune(s))), jira.MaxSummary)
			require.Greater(t, len(utf16.Encode([]rune(s))), jira.MaxSummary-3)
			require.True(t, strings.HasSuffix(s, "🔥…"))
		}},
		{name: "template", edit: set("summaryTemplate", `[{{.Payload.severity}}] {{.Payload.title}} {{.Payload.missing}}{{.Payload.owner.email}}`),
			payload: `{"title":"Database down","severity":"critical"}`, check: equal("[critical] Database down")},
		{name: "template nested", edit: set("summaryTemplate", `{{.Payload.owner.name}} <{{.Payload.owner.email}}> {{.Event.Category}}`),
			payload: `{"owner":{"name":"Ada","email":null}}`, check: equal("Ada <> Incidents")},
		{name: "template renders empty", edit: set("summaryTemplate", `{{.Payload.nothing}}`), payload: `{}`, check: equal("Incident Created")},
		{name: "template output bounded", edit: set("summaryTemplate", `{{range .Payload.n}}{{$.Payload.s}}{{end}}`),
			payload: `{"n":[` + strings.Repeat("1,", 999) + `1],"s":"` + strings.Repeat("y", 100) + `"}`, check: func(t *testing.T, s string) {
				require.Equal(t, jira.MaxSummary, utf8.RuneCountInString(s))
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeJira(t)
			var edits []func(map[string]any)
			if tc.edit != nil {
				edits = append(edits, tc.edit)
			}
			req := request(config(t, f.URL(), edits...), tc.payload)
			if tc.event != nil {
				req.Event = *tc.event
			}
			_, err := newDeliverer(t).Deliver(context.Background(), req)
			require.NoError(t, err)
			summary := createdFields(t, f, 0)["summary"].(string)
			require.NotContains(t, summary, "<no value>")
			tc.check(t, summary)
		})
	}
}

func equal(want string) func(t *testing.T, got string) {
	return func(t *testing.T, got string) { require.Equal(t, want, got) }
}

func TestDescription(t *testing.T) {
	deliver := func(t *testing.T, payload string, edits ...func(map[string]any)) []string {
		t.Helper()
		f := newFakeJira(t)
		_, err := newDeliverer(t).Deliver(context.Background(), request(config(t, f.URL(), edits...), payload))
		require.NoError(t, err)
		fields := createdFields(t, f, 0)
		if fields["description"] == nil {
			return nil
		}
		return paragraphs(t, fields["description"])
	}

	t.Run("template lines become paragraphs", func(t *testing.T) {
		got := deliver(t, `{"severity":"critical","owner":{"name":"Ada"}}`, set("descriptionTemplate",
			"Severity: {{.Payload.severity}}\n\n\nOwner: {{.Payload.owner.email}}\r\n{{.EventID}} {{.DeliveryID}}\n   \n\t\n{{.Payload.owner.name}}\n"))
		require.Equal(t, []string{"Severity: critical", "Owner:", "incident.incident.created " + testDeliveryID, "Ada"}, got)
	})
	t.Run("template rendering nothing", func(t *testing.T) {
		require.Nil(t, deliver(t, `{}`, set("descriptionTemplate", "{{.Payload.none}}\n\n")))
	})
	t.Run("default lists top-level fields", func(t *testing.T) {
		got := deliver(t, `{"b":true,"a":"multi\nline","n":1.5,"o":{"k":[1,{"z":null}]},"z":null}`)
		require.Equal(t, []string{
			"Event: Incident Created (incident.incident.created)", "Category: Incidents",
			"Occurred at: 2026-03-01T11:59:30Z", "Delivery: " + testDeliveryID,
			"Payload fields:", "a: multi", "line", "b: true", "n: 1.5", `o: {"k":[1,{}]}`,
		}, got)
	})
	t.Run("default with a payload that is not an object", func(t *testing.T) {
		got := deliver(t, `["x",2]`)
		require.Equal(t, `Payload: ["x",2]`, got[len(got)-1])
	})
	t.Run("default cuts long values", func(t *testing.T) {
		got := deliver(t, `{"big":"`+strings.Repeat("v", 5000)+`"}`)
		last := got[len(got)-1]
		require.True(t, strings.HasPrefix(last, "big: vvv"))
		require.True(t, strings.HasSuffix(last, "…"))
		require.Equal(t, len("big: ")+2000, utf8.RuneCountInString(last))
	})
	t.Run("too many paragraphs", func(t *testing.T) {
		got := deliver(t, `{"lines":[`+strings.Repeat(`"l",`, 1999)+`"l"]}`,
			set("descriptionTemplate", "{{range .Payload.lines}}{{.}}\n{{end}}"))
		require.Len(t, got, jira.MaxDescriptionParagraphs)
		require.Equal(t, "[… truncated by outhook]", got[len(got)-1])
	})
	t.Run("too long", func(t *testing.T) {
		got := deliver(t, `{"big":"`+strings.Repeat("w", 40000)+`"}`, set("descriptionTemplate", "start\n{{.Payload.big}}\nend"))
		require.Len(t, got, 3)
		require.Equal(t, "start", got[0])
		require.Equal(t, "[… truncated by outhook]", got[2])
		total := 0
		for _, p := range got {
			total += len(utf16.Encode([]rune(p)))
		}
		require.LessOrEqual(t, total, jira.MaxDescription)
		require.Greater(t, total, jira.MaxDescription-10)
	})
	t.Run("control characters dropped", func(t *testing.T) {
		got := deliver(t, `{"t":"a\u0000b\u001bc"}`, set("descriptionTemplate", "{{.Payload.t}}"))
		require.Equal(t, []string{"abc"}, got)
	})
}

func TestTemplateFailureIsPermanent(t *testing.T) {
	f := newFakeJira(t)
	// Valid when saved (the test payload has no title), fails on a payload
	// whose title is a string.
	cfg := config(t, f.URL(), set("summaryTemplate", `{{.Payload.title.text}}`))
	require.NoError(t, newDeliverer(t).ValidateConfig(cfg))
	_, err := newDeliverer(t).Deliver(context.Background(), request(cfg, `{"title":"plain"}`))
	require.Equal(t, outcome{kind: "permanent"}, outcomeOf(err), "%v", err)
	require.Contains(t, err.Error(), "summaryTemplate")
	require.Empty(t, f.Searches())
	require.Empty(t, f.Creates())
}

func TestInvalidConfigAtDeliveryIsPermanent(t *testing.T) {
	f := newFakeJira(t)
	_, err := newDeliverer(t).Deliver(context.Background(), request(config(t, f.URL(), set("projectKey", "ops")), `{}`))
	require.Equal(t, outcome{kind: "permanent"}, outcomeOf(err), "%v", err)
	require.ErrorIs(t, err, outhook.ErrInvalidConfig)
	require.Empty(t, f.Searches())
}

func TestSSRFGuardStillApplies(t *testing.T) {
	f := newFakeJira(t)
	// AllowAnyHost lifts the Jira host rule, not the SSRF guard of the
	// default client.
	d, err := jira.New(&jira.Options{AllowAnyHost: true})
	require.NoError(t, err)
	_, err = d.Deliver(context.Background(), request(config(t, f.URL()), `{}`))
	require.Equal(t, outcome{kind: "permanent"}, outcomeOf(err), "%v", err)
	require.Equal(t, "blocked", errorClass(err))
	require.Empty(t, f.Searches())
}

// TestSecretsNeverLeak has a server echo the credentials in every answer:
// neither errors nor the recorded response may carry them.
func TestSecretsNeverLeak(t *testing.T) {
	basic := strings.TrimPrefix(basicValue, "Basic ")
	leaks := []string{testToken, basic, url.QueryEscape(testToken)}
	noLeak := func(t *testing.T, texts ...string) {
		t.Helper()
		for _, text := range texts {
			for _, l := range leaks {
				require.NotContains(t, text, l)
			}
		}
	}
	for _, where := range []string{"search", "create"} {
		for _, code := range []int{200, 201, 400, 401, 403, 404, 410, 429, 500, 502, 503} {
			t.Run(fmt.Sprintf("%s %d", where, code), func(t *testing.T) {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					auth := r.Header.Get("Authorization")
					body, _ := json.Marshal(map[string]any{
						"errorMessages": []string{"you sent " + auth, "token " + testToken},
						"errors":        map[string]string{"auth": strings.TrimPrefix(auth, "Basic "), "q": url.QueryEscape(testToken)},
						"issues":        []any{},
						"key":           "OPS-1",
					})
					if r.Method == http.MethodGet && where == "search" || r.Method == http.MethodPost && where == "create" {
						writeJSON(w, code, string(body))
						return
					}
					writeJSON(w, http.StatusOK, `{"issues":[]}`)
				}))
				t.Cleanup(srv.Close)
				res, err := newDeliverer(t).Deliver(context.Background(), request(config(t, srv.URL), `{}`))
				noLeak(t, res.Response, fmt.Sprint(res))
				if err != nil {
					noLeak(t, err.Error(), fmt.Sprintf("%+v", err))
				}
				if code >= 400 {
					require.Error(t, err)
					require.Contains(t, err.Error(), "[redacted]")
					require.Contains(t, res.Response, "[redacted]")
				}
			})
		}
	}
	t.Run("network error", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		base := srv.URL
		srv.Close()
		_, err := newDeliverer(t).Deliver(context.Background(), request(config(t, base), `{}`))
		require.Error(t, err)
		noLeak(t, err.Error())
	})
	t.Run("config errors", func(t *testing.T) {
		err := newDeliverer(t).ValidateConfig(config(t, "https://"+testToken+"@x.example", set("projectKey", testToken), set("email", testToken)))
		require.Error(t, err)
		noLeak(t, err.Error())
	})
}

func TestIssueLabel(t *testing.T) {
	require.Equal(t, "outhook-dlv_01KJ0000000000000000000001", jira.IssueLabel("dlv_01KJ0000000000000000000001"))
	require.Equal(t, "outhook-test_01KJ", jira.IssueLabel("test_01KJ"))
	for _, id := range []string{"", "has space", "dash-ed", "dot.ted", strings.Repeat("a", jira.MaxLabel)} {
		l := jira.IssueLabel(id)
		require.True(t, strings.HasPrefix(l, "outhook-sha256-"), id)
		require.Len(t, l, len("outhook-sha256-")+64)
		require.Equal(t, l, jira.IssueLabel(id), "stable")
	}
	require.NotEqual(t, jira.IssueLabel("a b"), jira.IssueLabel("a-b"))
	longest := strings.Repeat("a", jira.MaxLabel-len(jira.LabelPrefix))
	require.Equal(t, jira.LabelPrefix+longest, jira.IssueLabel(longest))
}

// TestRedirectToBlockedAddressIsBlocked: a search answered with a redirect
// to the metadata address fails for good with class blocked, as for every
// deliverer, and creates nothing.
func TestRedirectToBlockedAddressIsBlocked(t *testing.T) {
	f := newFakeJira(t)
	f.set(func(f *fakeJira) {
		f.onSearch = func(w http.ResponseWriter, _ *http.Request) bool {
			w.Header().Set("Location", "http://169.254.169.254/latest/meta-data")
			w.WriteHeader(http.StatusTemporaryRedirect)
			return true
		}
	})
	_, err := newDeliverer(t).Deliver(context.Background(), request(config(t, f.URL()), `{}`))
	require.Error(t, err)
	require.Equal(t, outcome{kind: "permanent"}, outcomeOf(err), "%v", err)
	require.Equal(t, "blocked", errorClass(err), "%v", err)
	require.Empty(t, f.Creates())
}
