// Package pagerduty is the outhook deliverer for PagerDuty's Events API v2:
// each delivery becomes one alert event that triggers, acknowledges or
// resolves an alert on the PagerDuty service whose integration key the
// subscription holds.
//
//	d, err := pagerduty.New(nil)
//	client, err := outhook.NewClient(&outhook.Config{Deliverers: []outhook.Deliverer{d}})
//	client.CreateSubscription(ctx, outhook.Subscription{
//		Events:      []string{"incident.**"},
//		DelivererID: pagerduty.ID,
//		Config: json.RawMessage(`{
//			"routingKey": "<32-character integration key>",
//			"actions": [{"events": "incident.incident.resolved", "action": "resolve"}],
//			"dedupKeyField": "id",
//			"severityField": "severity",
//			"severityMap": {"major": "critical", "minor": "warning"}
//		}`),
//	})
//
// # Wire format
//
// One POST to {BaseURL}/v2/enqueue (https://events.pagerduty.com/v2/enqueue
// by default) with Content-Type application/json, as documented at
// https://developer.pagerduty.com/docs/events-api-v2/trigger-events/. A
// trigger event:
//
//	{"routing_key": "...", "event_action": "trigger", "dedup_key": "inc_42",
//	 "payload": {"summary": "Incident created: Database down", "source": "outhook",
//	   "severity": "critical", "timestamp": "2026-05-01T12:00:00Z",
//	   "component": "...", "group": "...", "class": "...",
//	   "custom_details": {...the payload...}}}
//
// Acknowledge and resolve events carry only routing_key, event_action and
// dedup_key, as the API documents.
//
// # Actions and dedup keys
//
// Config.Actions is an ordered list of rules {"events": pattern, "action":
// trigger|acknowledge|resolve}; patterns are those of subscriptions ("*" for
// one segment, a final "**" for the rest). The first matching rule wins;
// an event no rule matches triggers. Config.DedupKeyField names the payload
// field (a dot path such as "incident.id") whose value is the dedup_key, so
// that the resolve of an incident finds the alert its trigger opened; when
// the field is unset or absent, the delivery ID is used, which keeps the
// retries of one delivery on one alert. Keys longer than 255 characters keep
// their start and end in a SHA-256 of the whole.
//
// # Summary and severity
//
// payload.summary is Config.SummaryTemplate (Go text/template, executed with
// a TemplateData) or, by default, the event's display name (its ID when it
// has none) followed by the payload's title, summary, name or message field,
// cut to 1024 characters with "…". payload.severity is Config.Severity
// (default error), or the value of Config.SeverityField mapped through
// Config.SeverityMap (case-insensitive; a value that already is critical,
// error, warning or info passes as is; anything else falls back to
// Config.Severity). custom_details is the payload object (a payload that is
// not an object is wrapped as {"payload": value}); an event that would
// exceed PagerDuty's 512 KB limit keeps only the payload's top-level scalar
// fields in custom_details, with a note.
//
// # Outcomes
//
// Following https://developer.pagerduty.com/docs/events-api-v2/overview/#response-codes--retry-logic:
//
//   - 202 (any 2xx): success; the response's dedup_key is the delivery's
//     external ID;
//   - 400: permanent; the error and the attempt's response carry PagerDuty's
//     message and errors;
//   - 401, 403 and other 4xx: permanent; 410 also disables the subscription;
//   - 429: retried, after Retry-After when PagerDuty sends one (seconds or an
//     HTTP date);
//   - 5xx (but 501) and network errors: retried.
//
// Resolving an alert that was never triggered, or triggering one twice, is
// PagerDuty's business: it accepts such events and drops or merges them.
//
// # Secrets
//
// The routing key is a secret: it is never part of an error (validation
// errors name the field, not the value), and it is scrubbed from responses
// before they are recorded. Requests go through package safehttp, which
// refuses private and loopback addresses unless allowed.
package pagerduty
