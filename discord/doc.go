// Package discord is the outhook deliverer for Discord webhooks: each
// delivery executes a channel's webhook once, posting one message with one
// embed.
//
//	d, err := discord.New(nil)
//	client, err := outhook.NewClient(&outhook.Config{Registry: reg, Deliverers: []outhook.Deliverer{d}})
//	sub, err := client.CreateSubscription(ctx, outhook.Subscription{
//		Events:      []string{"incident.incident.*"},
//		DelivererID: discord.ID,
//		Config:      json.RawMessage(`{"webhookUrl":"https://discord.com/api/webhooks/123/TOKEN","username":"Status"}`),
//	})
//
// # Configuration
//
// A subscription's Config (see ConfigSchema for its JSON Schema):
//
//   - webhookUrl (required): https://discord.com/api/webhooks/{id}/{token}
//     (also on discordapp.com, ptb.discord.com and canary.discord.com, with
//     an optional API version, /api/v10/webhooks/..., and an optional
//     ?thread_id=). Anyone who has the token can post to the channel, so
//     errors, attempt records and response excerpts show
//     https://discord.com/api/webhooks/{id}/[redacted] instead. Other hosts
//     are accepted only with Options.AllowAnyHost.
//   - contentTemplate (optional): a Go text/template for the message content
//     (Discord markdown), shown above the embed. It is executed with a
//     TemplateData: {{.EventID}}, {{.Event.DisplayName}},
//     {{.Event.Category}}, {{.DeliveryID}}, {{.OccurredAt}},
//     {{.Payload.<field>}}; a missing field, nested or not, renders empty. A
//     template that fails to parse is refused when the subscription is
//     saved; one that fails while running sends the embed alone, with the
//     reason in its footer. Without a template the message has no content.
//   - username, avatarUrl (optional): override the webhook's name (1 to 80
//     characters, without "clyde" or "discord") and avatar.
//   - mentions (optional): the mention types in the content that may notify
//     people, any of "roles", "users" and "everyone". The default is none:
//     allowed_mentions is always sent, {"parse": []} unless set, so an
//     @everyone in a payload never pings anyone.
//
// # The message
//
// POST {webhookUrl}?wait=true with a JSON body
// (https://discord.com/developers/docs/resources/webhook#execute-webhook):
//
//	{
//	  "content": "<template output, if any>",
//	  "username": "...", "avatar_url": "...",
//	  "allowed_mentions": {"parse": []},
//	  "embeds": [{
//	    "title": "<event display name, or its ID>",
//	    "description": "<the payload's summary, message, description or title>",
//	    "color": <from the payload's severity, if any>,
//	    "fields": [{"name": "<key>", "value": "<value>", "inline": <short value>}, ...],
//	    "footer": {"text": "<event ID>"},
//	    "timestamp": "<when the event occurred, ISO 8601>"
//	  }]
//	}
//
// The fields are the payload's top-level strings, numbers, booleans and
// arrays of them (joined with ", "), title, summary, message, description,
// name, severity, priority, status, state and id first and the rest sorted;
// nested objects, nulls and empty values are left out. A payload that is not
// an object is shown as a code block in the description. With ?wait=true
// Discord answers with the created message, whose ID becomes the delivery's
// external ID, or with an error instead of accepting the request blindly.
//
// # Limits
//
// Discord refuses a message that breaks a limit, so text is cut to fit and
// ends with "…" (lengths in characters, not bytes): content 2000; embed
// title 256, description 4096, 25 fields with names of 256 and values of
// 1024, footer 2048, and 6000 for all of the embed's text together, within
// which the title, footer and description come first and the fields that
// do not fit are left out, counted in the footer. A message may hold 10
// embeds; one is sent.
//
// # Outcomes
//
//	200, 204 (any 2xx)                    success
//	400 Invalid Form Body and the like    permanent; Discord's JSON error is the response
//	401, 403 (bad token, no permission)   permanent
//	404 Unknown Webhook (code 10015)      gone: permanent, subscription disabled
//	404 otherwise                         permanent
//	410                                   gone
//	429 rate limited                      retried after the longer of the Retry-After
//	                                      header and the body's retry_after (seconds)
//	500, 502, 503, 504                    retried (Retry-After honoured on 502-504)
//	501, 3xx, other 4xx                   permanent
//	network errors                        retried, except those package safehttp calls permanent
//
// Discord's error message and code ("Unknown Webhook (code 10015)") go into
// the attempt's error. Requests go through a safehttp.Client, which refuses
// internal addresses and never follows redirects.
package discord
