// Package slack is the outhook deliverer for Slack incoming webhooks: each
// delivery posts one message to the channel a webhook URL is bound to.
//
//	d, err := slack.New(nil)
//	client, err := outhook.NewClient(&outhook.Config{Registry: reg, Deliverers: []outhook.Deliverer{d}})
//	sub, err := client.CreateSubscription(ctx, outhook.Subscription{
//		Events:      []string{"incident.incident.*"},
//		DelivererID: slack.ID,
//		Config:      json.RawMessage(`{"webhookUrl":"https://hooks.slack.com/services/T000/B000/XXXX"}`),
//	})
//
// # Configuration
//
// A subscription's Config (see ConfigSchema for its JSON Schema):
//
//   - webhookUrl (required): the incoming webhook URL of a Slack app,
//     https://hooks.slack.com/services/T.../B.../<token>
//     (https://api.slack.com/messaging/webhooks). Anyone who has it can post
//     to the channel, so it is a secret: errors, attempt records and
//     response excerpts show https://hooks.slack.com/services/[redacted]
//     instead. Only https URLs on hooks.slack.com (or GovSlack's
//     hooks.slack-gov.com) are accepted, unless Options.AllowAnyHost is set.
//   - textTemplate (optional): a Go text/template whose output replaces the
//     default fields section and the notification text. It is executed with
//     a TemplateData: {{.EventID}}, {{.Event.DisplayName}},
//     {{.Event.Category}}, {{.DeliveryID}}, {{.OccurredAt}},
//     {{.Payload.<field>}}. A missing field, nested or not, renders empty;
//     {{escape .Payload.x}} shows Slack markup in a value as typed. A
//     template that fails to parse is refused when the subscription is
//     saved; one that fails while running (a field of a string, say) gives
//     the default layout with a note saying why.
//
// # The message
//
// The body is JSON {"text": ..., "blocks": [...]}
// (https://api.slack.com/messaging/webhooks#advanced_message_formatting,
// https://api.slack.com/reference/block-kit/blocks):
//
//   - a header block (plain_text) with the event's display name, or its ID
//     when it has none (test events);
//   - a section: with a template, its output as mrkdwn; otherwise up to 10
//     fields "*key*\nvalue" from the payload's top-level strings, numbers,
//     booleans and arrays of them (joined with ", "), title, summary,
//     message, description, name, severity, priority, status, state and id
//     first and the rest sorted, nested objects left out; a payload that is
//     not an object is shown as a code block;
//   - a context block with the event ID, the time the event occurred (Slack's
//     <!date^...> syntax, shown in each reader's time zone), how many fields
//     did not fit, and why the template was not used if it failed;
//   - text, the notification and fallback text: the template's output, or
//     "<display name>: <summary>" where the summary is the payload's first
//     non-empty summary, title, message or description string.
//
// Payload values are escaped (&, < and > become entities,
// https://api.slack.com/reference/surfaces/formatting#escaping) so that a
// "<!channel>" in a payload is shown rather than notifying a channel.
//
// # Limits
//
// Slack refuses a message that breaks a Block Kit limit, so text is cut to
// fit and ends with "…" (lengths in characters, not bytes): header text 150,
// section text 3000, 10 fields of 2000 each, 50 blocks (a message here has
// three), and the top-level text 40,000, beyond which Slack truncates. Slack
// accepts about one message per second per webhook and answers 429 beyond.
//
// # Outcomes
//
// Slack answers 200 with the body "ok"; its errors are a short string in the
// body, which goes into the attempt's error and response
// (https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks):
//
//	2xx                                    success
//	400 invalid_payload, user_not_found    permanent
//	403 action_prohibited, invalid_token   permanent
//	404 channel_not_found, no_service      gone: permanent, subscription disabled
//	410 channel_is_archived                gone: permanent, subscription disabled
//	429 rate limited                       retried, honouring Retry-After
//	500, 502, 503, 504                     retried (Retry-After honoured on 502-504)
//	501, 3xx, other 4xx                    permanent
//	network errors                         retried, except those package safehttp calls permanent
//
// Requests go through a safehttp.Client, which refuses internal addresses
// and never follows redirects.
package slack
