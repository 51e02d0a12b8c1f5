// Package adminhttp is the admin HTTP API of an outhook client: an
// http.Handler that an application mounts on its own server, behind its own
// authentication, to let operators and UIs list events, manage
// subscriptions, send test events and inspect and redeliver deliveries.
// Package adminui is a web console built on this handler, and the outhook
// command (cmd/outhook) a command-line client of it.
//
// # Mounting
//
// New returns the handler. Its routes are relative to where it is mounted,
// so mount it under a prefix with http.StripPrefix:
//
//	admin, err := adminhttp.New(client, &adminhttp.Options{
//		Authorize: func(r *http.Request, op adminhttp.Operation) error {
//			user, ok := sessionUser(r) // the application's own authentication
//			switch {
//			case !ok:
//				return adminhttp.ErrUnauthenticated // 401
//			case !op.ReadOnly && !user.IsAdmin:
//				return errors.New("viewers may only read") // 403
//			}
//			return nil
//		},
//		Deliverers: deliverers, // as given to outhook.Config, for GET /deliverers
//	})
//	mux.Handle("/admin/outhook/", http.StripPrefix("/admin/outhook", admin))
//
// # Authorization
//
// Every request, including GET /openapi.json and requests that match no
// route, goes through Options.Authorize before anything else happens; a
// denied request reads no body and changes nothing. Authorize tells 401
// (an error matching ErrUnauthenticated) from 403 (any other error). The
// zero Options has no authorizer and denies every request with 403, so an
// API mounted by mistake is closed. Operation describes what the request
// would do, with the operationId of the OpenAPI document and whether it is
// read-only; Operations lists them all.
//
// # Routes
//
//	GET    /openapi.json                                  the OpenAPI 3.1 document of these routes
//	GET    /events                                        events by category, with JSON Schemas and property paths
//	GET    /events/{eventId}                              one event
//	GET    /deliverers                                    Options.Deliverers with their config schemas
//	GET    /subscriptions?limit&cursor                    subscriptions, oldest first
//	POST   /subscriptions                                 create (201, Location)
//	GET    /subscriptions/{subscriptionId}                read
//	PUT    /subscriptions/{subscriptionId}                replace
//	DELETE /subscriptions/{subscriptionId}                delete (204)
//	POST   /subscriptions/{subscriptionId}/enable         enable
//	POST   /subscriptions/{subscriptionId}/disable        disable
//	POST   /subscriptions/{subscriptionId}/test           send a test event now; returns the attempt
//	POST   /subscriptions/{subscriptionId}/recover        redeliver its failed deliveries in a time range
//	GET    /deliveries?subscriptionId&eventId&messageId&status&since&until&limit&cursor
//	                                                      deliveries, newest first, without attempts
//	GET    /deliveries/{deliveryId}                       one delivery with its attempts
//	POST   /deliveries/{deliveryId}/redeliver             send a finished delivery again (202)
//	POST   /messages/{messageId}/replay                   send an event again to today's subscriptions
//	GET    /failed-events?limit                           events whose handler or transform gave up
//	GET    /stats?hours&subscriptionId                    delivery counts by status, event, deliverer, subscription
//
// Bodies and answers are JSON with the field names of the root package's
// types (outhook.Subscription, outhook.Delivery, outhook.Attempt, ...).
// Request bodies must be application/json, are capped at
// Options.MaxBodyBytes, and may not carry unknown fields; unknown query
// parameters are refused too. Lists answer {"items": [...], "nextCursor":
// "..."}: pass nextCursor back as cursor for the next page.
//
// # Errors
//
// Errors are RFC 9457 problem details (application/problem+json) with
// type, title, status, detail and instance. A request with bad values is a
// 400 of type TypeValidation whose "errors" member names each field at
// fault ("events[0]", "config.url", "limit"); a subscription, delivery or
// event that does not exist is a 404 of type TypeNotFound; an ID already
// taken or a redelivery of a pending delivery is a 409 of type TypeConflict.
//
// # Secrets
//
// Subscriptions are shown with the secrets of their config replaced by
// outhook.SecretMask, as the client returns them; an update may send the
// mask back to keep a secret. The handler also removes a subscription's
// secret values from every text a deliverer may have written (attempt
// errors and responses, last errors, disabled reasons) and from error
// details, in case a deliverer quotes one.
//
// # Property paths
//
// Each listed event carries the paths of its payload's properties
// ("severity", "systemIds[]", "owner.name"), for building templates and
// filters; see PropertyPaths. The walk follows references and
// oneOf/anyOf/allOf and ends on recursive schemas.
package adminhttp
