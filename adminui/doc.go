// Package adminui is the admin console of an outhook client: server-rendered
// pages that an application mounts next to its admin API (package
// adminhttp) to let operators see the registered events, manage
// subscriptions and follow deliveries.
//
// # Mounting
//
// The console is built on an adminhttp.Handler and does everything through
// it, in process, with the browser's own request headers: the API's
// authorizer decides what each user may see and do in the console exactly
// as it does for API clients, and the console adds no path to the data of
// its own. Mount both with http.StripPrefix:
//
//	api, err := adminhttp.New(client, &adminhttp.Options{
//		Authorize:  authorize, // the application's own, as for the API alone
//		Deliverers: deliverers,
//	})
//	console, err := adminui.New(api, nil)
//	mux.Handle("/admin/outhook/api/", http.StripPrefix("/admin/outhook/api", api))
//	mux.Handle("/admin/outhook/console/", http.StripPrefix("/admin/outhook/console", console))
//
// An application that signs its users in itself needs nothing more: the
// authorizer reads its session cookie from the requests the console passes
// on, and a request the API answers 401 shows a page asking the user to
// sign in to the application. An application without sign-in (a demo, a
// development server, a small internal tool) can guard both with one
// shared token: TokenAuth authorizes bearer tokens for programs such as the
// outhook CLI, and, given as Options.Login, gives the console a sign-in
// page that keeps the browser signed in with a cookie.
//
// # Pages
//
//	/events                        events by category, with their payload fields
//	/subscriptions                 subscriptions: enabled toggle, health, deliveries in the last 24 hours
//	/subscriptions/new             a form built from the chosen deliverer's config JSON Schema
//	/subscriptions/{id}            one subscription: send a test event, recover failed deliveries
//	/subscriptions/{id}/edit       the same form, filled in; secrets are never shown
//	/deliveries                    the delivery log, filtered by subscription, event, status and time
//	/deliveries/{id}               one delivery with its attempts; redeliver
//
// The subscription form has an input per property of the deliverer's
// config schema: text, URL, number and checkbox inputs, a select for an
// enum, a group for a nested object, a list of items with a blank one to
// add for an array of objects, one value per line for an array of
// scalars, "Name: value" lines for a map, and JSON for anything else.
// writeOnly properties (signing secrets, tokens, Slack's webhook URL) are
// password inputs that are never filled in: left blank, they keep the
// stored value. The admin API's validation errors, including a CEL
// filter's compile error with its line and column, are shown next to the
// input they name.
//
// # Security
//
// Pages are sent with a strict Content-Security-Policy (default-src
// 'none'; script and style from the console itself only): the console has
// no inline script or style, and its one small script (console.js) is an
// enhancement; every page works without it. Every form that changes state
// is checked twice against cross-site request forgery: the request must
// come from the console's own origin (http.CrossOriginProtection, which
// reads Sec-Fetch-Site and Origin), and it must carry the random token of
// the console's CSRF cookie (double submit). Cookies are HttpOnly,
// SameSite=Strict, scoped to the console's path, and Secure over TLS.
// Answers are never cached.
//
// # Accessibility
//
// Pages work on a phone-width screen (tables scroll inside their box) and
// by keyboard alone: a skip link comes first, every control is a native
// link, button or input in reading order, errors are announced and marked
// with aria-invalid, and the first field in error gets the focus.
package adminui
