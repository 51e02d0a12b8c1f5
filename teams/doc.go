// Package teams is the outhook deliverer for Microsoft Teams: each delivery
// posts one Adaptive Card to a channel or chat through a Workflows (Power
// Automate) webhook, the successor of Office 365 connectors' incoming
// webhooks.
//
//	d, err := teams.New(nil)
//	client, err := outhook.NewClient(&outhook.Config{Deliverers: []outhook.Deliverer{d}})
//	client.CreateSubscription(ctx, outhook.Subscription{
//		Events:      []string{"incident.**"},
//		DelivererID: teams.ID,
//		Config: json.RawMessage(`{
//			"webhookUrl": "https://prod-12.westus.logic.azure.com:443/workflows/.../invoke?api-version=2016-06-01&sp=...&sv=1.0&sig=...",
//			"titleTemplate": "{{.Event.DisplayName}}: {{.Payload.title}}"
//		}`),
//	})
//
// In Teams, create the webhook with the Workflows app's template "Post to a
// channel when a webhook request is received" (the "When a Teams webhook
// request is received" trigger, https://learn.microsoft.com/en-us/connectors/teams/).
//
// # Wire format
//
// One POST to the webhook URL with Content-Type "application/json;
// charset=utf-8" and this body
// (https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using):
//
//	{"type": "message", "attachments": [{
//	  "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null,
//	  "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
//	    "type": "AdaptiveCard", "version": "1.4", "body": [
//	      {"type": "TextBlock", "text": "Incident created", "size": "Large", "weight": "Bolder", "wrap": true},
//	      {"type": "TextBlock", "text": "...", "wrap": true},
//	      {"type": "FactSet", "facts": [
//	        {"title": "title", "value": "Database down"}, ...,
//	        {"title": "Event", "value": "incident.incident.created"},
//	        {"title": "Time", "value": "2026-05-01T12:00:00Z"}]}]}}]}
//
// The title is Config.TitleTemplate, or the event's display name (its ID
// when it has none). The second TextBlock is Config.TextTemplate, left out
// when there is none or it renders empty. The facts are the payload's
// top-level scalar fields in the payload's order (arrays of scalars joined
// with ", "; objects and nulls left out; at most 50, values cut to 2000
// characters), then the event ID and the time it occurred (RFC 3339, UTC).
// Templates are Go text/template, executed with a TemplateData.
//
// # Limits
//
// Teams refuses messages over about 28 KB. The body is never more than
// MaxBodyBytes (28,000 bytes): payload facts are dropped from the end first
// (a last fact says how many are not shown), then the text and finally the
// title are shortened, ending with "…".
//
// # Outcomes
//
//   - 200, 202 (any 2xx): success;
//   - 400, 401, 403, 413 and other 4xx: permanent; the error carries the
//     service's error code and message when it sends them;
//   - 404 (the workflow was deleted or turned off for good) and 410: the
//     subscription is disabled (outhook.Gone);
//   - 429 and 5xx (but 501): retried, after Retry-After when the service
//     sends one (seconds or an HTTP date); network errors: retried.
//
// # Secrets
//
// The whole webhook URL is a secret: its sig parameter lets anyone post to
// the channel. Errors show only its scheme and host
// ("https://prod-12.westus.logic.azure.com:443/[redacted]"), validation
// errors name the field and at most the host, and the URL, its path and its
// sig are scrubbed from responses before they are recorded. Webhook URLs
// must be https on *.logic.azure.com, *.powerplatform.com or
// *.webhook.office.com (Options.AllowAnyHost lifts the host rule for tests).
// Requests go through package safehttp, which refuses private and loopback
// addresses unless allowed.
package teams
