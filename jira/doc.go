// Package jira is the outhook deliverer that opens a Jira Cloud issue for
// each delivery, through the Jira Cloud platform REST API v3. Its ID is
// "jira".
//
//	d, err := jira.New(nil)
//	client, err := outhook.NewClient(&outhook.Config{Deliverers: []outhook.Deliverer{d}, ...})
//	client.CreateSubscription(ctx, outhook.Subscription{
//		Events:      []string{"incident.incident.created"},
//		DelivererID: jira.ID,
//		Config: json.RawMessage(`{"baseUrl": "https://example.atlassian.net",
//			"email": "bot@example.com", "apiToken": "...", "projectKey": "OPS"}`),
//	})
//
// # Configuration
//
// A subscription's Config (see the Config type and ConfigSchema):
//
//   - baseUrl: the site, https://<site>.atlassian.net, or
//     https://api.atlassian.com/ex/jira/<cloudId> for scoped API tokens.
//     Other hosts and plain http:// are refused unless Options.AllowAnyHost
//     is set; the SSRF guard of the HTTP client applies in every case.
//   - email and apiToken: the Atlassian account and its API token, sent as
//     HTTP Basic credentials. The account needs the Browse projects and
//     Create issues permissions in the project. The token is a secret: it
//     is never part of an error, an attempt record (DeliveryResult.Response
//     is scrubbed of it, in case a server echoes it) or a log line; the
//     schema marks it writeOnly, and a printed or logged Config shows
//     "[redacted]" in its place.
//   - projectKey, issueType (default "Task"), labels (extra labels: no white
//     space, at most 255 characters, not starting with "outhook-").
//   - summaryTemplate, descriptionTemplate: Go text/template texts executed
//     with a TemplateData ({{.EventID}}, {{.Event.DisplayName}},
//     {{.Payload.title}}, ...). Missing fields render as nothing. The
//     default summary is DefaultSummaryTemplate (the event's display name,
//     then the payload's title or summary); the default description names
//     the event and lists every top-level field of the payload. Templates
//     are parsed, and run once on a test event, when the subscription is
//     saved; errors name the field.
//
// # Wire format
//
// Each attempt first searches, then creates only when the search finds
// nothing (see Idempotency). Both requests carry
// "Authorization: Basic base64(email:apiToken)" and
// "Accept: application/json".
//
// The search, with the enhanced JQL search endpoint
// (https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-search/#api-rest-api-3-search-jql-get):
//
//	GET {baseUrl}/rest/api/3/search/jql?fields=key&jql=project+%3D+%22OPS%22+AND+labels+%3D+%22outhook-dlv_...%22&maxResults=1
//	200 {"issues": [{"id": "10001", "key": "OPS-7", ...}], "isLast": true}
//
// The creation
// (https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-post):
//
//	POST {baseUrl}/rest/api/3/issue
//	Content-Type: application/json
//
//	{"fields": {
//	  "project": {"key": "OPS"},
//	  "summary": "Incident Created: Database down",
//	  "issuetype": {"name": "Task"},
//	  "description": {"type": "doc", "version": 1, "content": [
//	    {"type": "paragraph", "content": [{"type": "text", "text": "Event: Incident Created (incident.incident.created)"}]},
//	    ...]},
//	  "labels": ["ops", "outhook-dlv_01K..."]}}
//
//	201 {"id": "10001", "key": "OPS-7", "self": "https://example.atlassian.net/rest/api/3/issue/10001"}
//
// The description is an Atlassian Document Format document
// (https://developer.atlassian.com/cloud/jira/platform/apis/document/structure/):
// one paragraph per non-blank line of the rendered description, each
// holding one text node, which is never empty (ADF refuses empty text
// nodes). The issue key is the delivery's external ID
// (DeliveryResult.ExternalID).
//
// # Idempotency
//
// Creating an issue is not idempotent, and a response can be lost after
// Jira has created the issue (a timeout, a reset connection, a proxy's
// 502). Every issue therefore carries the label IssueLabel(DeliveryID),
// "outhook-" followed by the delivery ID, which stays the same across the
// retries of a delivery. Before creating, an attempt searches the project
// for that label: when an issue has it, the attempt succeeds with that
// issue's key and creates nothing; only when the search finds none is the
// issue created. When the search itself fails (a network error, 429, 5xx,
// an unreadable answer) the attempt fails and is retried: it never creates
// blindly. Every attempt searches, the first included: an attempt cut off
// before its record was written (a crash, a lost queue lease) runs again
// under the same number. For the same reason Client.Redeliver of a delivery
// whose issue exists finds that issue rather than opening another; remove
// the label from the issue to have a new one created.
//
// A race remains. Jira's search is eventually consistent ("recent updates
// might not be immediately visible in the returned search results"): an
// issue created moments ago may not be indexed yet, so a retry that comes
// within that window after a lost response can create a second issue. The
// core's retry schedule (5 s after the first failure, minutes after later
// ones) makes this rare, not impossible. When it happens both issues carry
// the same label, so duplicates are easy to find in Jira (labels =
// "outhook-dlv_...") and to clean up, by hand or with an automation rule.
//
// # Outcomes
//
// The shared HTTP mapping of outhook (internal/httpoutcome), specialized
// for Jira, for either request:
//
//   - 201 (any 2xx) from the creation: success, ExternalID = the issue key;
//     an issue found by the search: success with its key;
//   - 400: permanent, with Jira's errorMessages and errors in the error (a
//     field that is not on the project's create screen, a missing project
//     in the JQL, ...) and the body in DeliveryResult.Response;
//   - 401, 403: permanent (bad credentials, missing permissions);
//   - 404: permanent, not Gone (a missing project or issue type is a
//     configuration error, and the subscription stays enabled);
//   - 410: permanent, not Gone either (Jira answers 410 from removed APIs);
//   - 429: retried after Retry-After (seconds or an HTTP date) or, without
//     it, after Jira's X-RateLimit-Reset time;
//   - 502, 503, 504: retried, honouring Retry-After; other 5xx retried, 501
//     excepted (permanent);
//   - 3xx: permanent (redirects are not followed);
//   - network errors: retried, except a refusal of the SSRF guard or an
//     untrusted certificate (permanent).
//
// A config that no longer validates, or a template that fails on a
// payload, is a permanent failure.
//
// # Limits
//
// The summary is made one line (white space runs become one space) and cut
// to 255 characters, as Jira counts them (UTF-16 code units), ending with
// "…"; an empty summary becomes the event's display name or ID. The
// description keeps at most 30,000 characters (Jira's field holds 32,767)
// in at most 1,000 paragraphs, and ends with "[… truncated by outhook]"
// when cut; control characters are dropped. At most 50 extra labels of at
// most 255 characters each. Template output is bounded while it runs
// (8 KiB for the summary, 256 KiB for the description). Response bodies are
// read up to 16 KiB by package safehttp.
package jira
