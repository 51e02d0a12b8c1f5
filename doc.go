// Package outhook bridges an application's in-process hooks to the outside
// world: signed webhooks, Slack, PagerDuty and other destinations, with
// validation, routing, retries and a record of every attempt.
//
// An application's plugins define typed hooks, emit them where things
// happen, and register them as integration events that outside systems
// subscribe to. A work queue (in memory by default; durable backends plug in
// behind the same interface) routes each event to every matching
// subscription and hands each delivery, one attempt at a time, to a
// Deliverer.
//
// # Hooks
//
// A Hook[T] names something that happens and the Go type of its payload.
// IDs are dot-separated segments of letters, digits, '_' and '-':
//
//	var IncidentCreated = outhook.MustNewHook[IncidentCreatedPayload]("incident.created")
//
// EmitHook validates the payload against the `validate` tags of T
// (github.com/go-playground/validator/v10), encodes it once, and queues one
// job per listening worker group. A payload that fails validation is refused
// with an error matching ErrInvalidPayload that names every failing field by
// its JSON name, and nothing is queued. Emitting a hook nothing listens to is
// a cheap no-op.
//
// OnHook listens to a hook in one of two modes: WorkQueue(group), where each
// event is handled once per group, retried on error (Config.HandlerRetry);
// and Broadcast(), where every instance handles every event. One hook ID
// carries one payload type, across listeners and events alike.
//
// # Events and the registry
//
// RegisterEvent exposes a hook as an integration event of a plugin. Its ID
// is the plugin ID, a dot and the hook ID: plugin "incident" and hook
// "incident.created" give "incident.incident.created". An EventRegistry lists
// events by ID, looks them up, and groups them by category for a UI
// (Incidents, Maintenance, Health, Catalog, Auth, then others, then
// Uncategorized). Each event carries the JSON Schema (draft 2020-12) of its
// payload, generated from T with github.com/invopop/jsonschema, with field
// descriptions from `description` tags and the `validate` rules mapped into
// schema keywords.
//
// An event may have a TransformPayload, which turns the hook's payload into
// what subscribers receive. It runs once per event, before routing; an error
// or panic is recorded and retried like a handler failure.
//
// # Subscriptions
//
// A Subscription selects events by ID or pattern ("*" for one segment, a
// final "**" for the rest), names a Deliverer and its configuration, and may
// filter the payload: Filter.Expr is a CEL expression over payload (after
// the event's transform), type-checked against the event's JSON Schema when
// the subscription is saved (a FilterError names the line and column) and
// bounded by FilterCostLimit when it runs; Filter.Field and AnyOf keep the
// simple form (any of these values appears in the field, scalar or array).
// Events a filter turns away are counted (Client.FilterStats), not recorded
// as failures. The client validates a subscription when it is created or
// updated: events must be registered, the deliverer must exist, and the
// deliverer must accept the configuration; errors match
// ErrInvalidSubscription and name the field. Subscriptions live in a Store
// (MemoryStore by default), which routes through an index by event ID.
//
// # Endpoint health
//
// Each subscription keeps its health (Subscription.Health): the deliveries
// that failed for good in a row, and since when it has been failing; any
// success resets it. A subscription is disabled at once when its
// destination answers 410 Gone, after it has failed for
// Config.DisableAfterFailingFor (5 days by default), or after
// Config.DisableAfterFailures failed deliveries in a row (off by default);
// enabling it again resets its health. The client registers outhook's own
// operational events in its registry, under plugin "outhook":
// outhook.delivery.failing, outhook.delivery.exhausted,
// outhook.subscription.disabled and outhook.subscription.recovered, which
// operators subscribe to like any other event. Deliveries of these events
// never emit them, so a failing subscription to "outhook.**" cannot feed
// itself.
//
// # Rate limits and fairness
//
// A subscription may bound the pace of its attempts (Subscription.Limits):
// a rate, as a token bucket from golang.org/x/time/rate (Slack's incoming
// webhooks take about one message a second), and a cap on the attempts in
// progress at once; Config.MaxInFlightPerSubscription sets a cap for the
// subscriptions that set none. A subscription whose destination is failing
// (its latest attempt failed and may be retried, or its latest delivery
// failed for good) gets at most Config.FailingMaxInFlight attempts at once
// (2 by default), whatever its own cap. A delivery that must wait gives its
// queue worker back and runs again when its turn comes; waiting is not an
// attempt and does not move its retry schedule, and waiting deliveries
// come back one by one, paced, rather than all together. So once an
// attempt to a destination that is down or hanging has failed (or timed
// out), it holds a few of the queue's workers, and first attempts to every
// other destination go on; until then, a destination that has just begun
// to hang can hold as many workers as its cap allows for one
// Config.DeliveryTimeout, all of them without a cap: set
// Config.MaxInFlightPerSubscription (a quarter of the queue's workers, say)
// to bound that too. Limits hold per process: several nodes sharing a
// durable queue each apply them.
//
// # Ordering keys
//
// Deliveries are made in any order by default. An event definition may
// name a payload field as its ordering key (EventDefinition.OrderingKey,
// for example "incidentId"): the deliveries to one subscription whose
// payloads hold the same value there are then made one at a time, in emit
// order (the event's emit time, then its message ID). A delivery that
// keeps failing holds up only the later deliveries of its own key, until
// it succeeds or fails for good; other keys and other subscriptions go on.
// A delivery waiting for its turn gives its worker back, as with the rate
// limits, and makes no attempt. An ordered delivery also waits
// Config.OrderingSettle (1 s by default) after its event was emitted, so
// that events emitted just before it, still being routed by another worker
// or node, are recorded first: order holds for events routed within that
// time of their emit. A redelivered or replayed delivery takes its place in
// emit order again, ahead of the later pending deliveries of its key, but
// a later delivery already being attempted is not stopped: for that moment
// two attempts of the key are in progress. A delivery left pending without
// its queue job (after a store outage that outlasted the handler's
// retries) holds up its key until it is dealt with.
//
// # Deliveries and retries
//
// Each (event, subscription) pair becomes one Delivery with its own stable
// ID, sent to receivers as an idempotency key. A Deliverer makes one attempt
// per call and classifies the outcome: a nil error is success, an error is
// retried unless wrapped with Permanent, and RetryAfter asks for a later
// retry. A panicking deliverer makes a failed attempt, not a crash. The
// client owns the retries (Config.DeliveryRetry, built on
// github.com/cenkalti/backoff/v4): by default at once, then after 5 s,
// 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h, with jitter. A
// Retry-After never brings a retry earlier and is capped. Every attempt is
// recorded (time, duration, outcome, error, status code, the first 16 KiB
// of the response, and the request and response headers with secrets
// removed: see Attempt) and a delivery ends succeeded or failed;
// Client.Deliveries lists them and Client.Redeliver sends one again under
// the same ID.
//
// # Deliverers
//
// Built-in deliverers live in packages of their own: webhook (Standard
// Webhooks, signed with v1 HMAC-SHA256 and v1a ed25519, with Verify for
// receivers), slack, pagerduty, teams, discord and jira. They send through
// package safehttp, whose dialer refuses private, loopback, link-local and
// reserved addresses in every spelling at connect time, never follows
// redirects and redacts secrets from errors. Config fields a deliverer marks
// writeOnly in its schema come back from the client as SecretMask.
// Client.SendTest makes one attempt with a test event. A deliverer that
// returns Gone (HTTP 410, say) disables its subscription.
//
// # Queues
//
// The client runs on a queue.Queue. The default, package memqueue, is
// bounded (EmitHook waits for room until its context is done; an event is
// never dropped), runs delayed retries from one timer, limits concurrency,
// and drains ready work on Stop. Durable and multi-node backends implement
// the same interface.
//
// # Observability
//
// The client speaks the OpenTelemetry API (go.opentelemetry.io/otel/metric
// and trace); the application brings the SDK and hands its providers to
// Config.MeterProvider and Config.TracerProvider. With nil providers, the
// default, nothing is recorded and the hot path costs a nil check. Wiring
// an SDK looks like this (the SDK's packages are the application's
// dependencies, not outhook's):
//
//	import (
//		sdkmetric "go.opentelemetry.io/otel/sdk/metric"
//		sdktrace "go.opentelemetry.io/otel/sdk/trace"
//		"go.opentelemetry.io/otel/exporters/prometheus"
//	)
//
//	exporter, err := prometheus.New()
//	…
//	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
//	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(spanExporter))
//	client, err := outhook.NewClient(&outhook.Config{
//		MeterProvider:  mp,
//		TracerProvider: tp,
//		// …
//	})
//
// Metrics, under the instrumentation scope "github.com/outhook/outhook".
// Their attributes are bounded: hook, event and deliverer IDs, outcomes
// and error classes, never delivery, message or subscription IDs.
//
//	outhook.hooks.emitted              counter    {event}     outhook.hook.id
//	    EmitHook calls that queued jobs (hooks somebody listens to).
//	outhook.events.emitted             counter    {event}     outhook.event.id
//	    integration events routed to their subscriptions.
//	outhook.deliveries.created         counter    {delivery}  outhook.event.id
//	    deliveries made by routing.
//	outhook.deliveries                 counter    {delivery}  outhook.event.id, outhook.deliverer.id,
//	                                                          outhook.delivery.outcome
//	    what each run of a delivery did: succeeded, failed (for good:
//	    a permanent failure or the retries used up), retried (a retry is
//	    scheduled) or abandoned (its subscription was deleted or disabled).
//	outhook.delivery.attempts          counter    {attempt}   outhook.event.id, outhook.deliverer.id,
//	                                                          outhook.attempt.outcome, error.type
//	    attempts, by outcome: succeeded, retryable or permanent; error.type
//	    is the attempt's error class (Attempt.ErrorClass) on failures.
//	outhook.delivery.attempt.duration  histogram  s           as outhook.delivery.attempts
//	    the deliverer's call.
//	outhook.delivery.latency           histogram  s           outhook.event.id, outhook.deliverer.id,
//	                                                          outhook.delivery.outcome (succeeded)
//	    from the event's emission (Delivery.OccurredAt) to the end of the
//	    successful attempt, retries included.
//	outhook.filter.filtered_out        counter    {event}     outhook.event.id
//	    events a subscription's Filter did not select, once per
//	    subscription (FilterStats.FilteredOut).
//	outhook.filter.errors              counter    {event}     outhook.event.id
//	    events whose subscription Filter failed to evaluate, once per
//	    subscription (FilterStats.Errors). Neither filter counter names
//	    the subscription: FilterStats and the logs do.
//	outhook.queue.jobs                 observable up-down counter  {job}  outhook.queue.state
//	    unfinished jobs in the work queue: ready, delayed or running.
//	outhook.queue.oldest.age           observable gauge  s    outhook.queue.state (ready, delayed)
//	    age of the oldest ready and oldest delayed job, since it was first
//	    enqueued; 0 when there is none.
//	outhook.queue.dead                 observable up-down counter  {job}  (none)
//	    dead jobs the queue keeps (hook events whose handler or routing
//	    failed on every attempt; see Client.FailedEvents).
//
// The three queue instruments report only for queues that implement
// queue.StatsReporter, as memqueue does; the durable backends do not yet.
//
// Spans. Each delivery attempt, including Client.SendTest, runs in a span
// "outhook.deliver <deliverer ID>" of kind client, and the Deliverer
// receives its context, so an instrumented HTTP client propagates it to
// the destination. It carries outhook.event.id, outhook.delivery.id,
// outhook.message.id, outhook.subscription.id, outhook.deliverer.id and
// outhook.attempt.number, then outhook.attempt.outcome,
// outhook.response.status_code (when the destination gave one) and, on
// failure, error.type and an error status with the error's text. EmitHook
// runs in a span "outhook.emit <hook ID>" of kind producer with
// outhook.hook.id and outhook.message.id, and each routing run of an
// integration event in a span "outhook.route <event ID>" of kind consumer
// with outhook.event.id, outhook.hook.id, outhook.message.id and
// outhook.route.deliveries (the deliveries it made). Attributes are set
// only on spans that record (are sampled).
//
// Queue jobs carry the trace context of the code that enqueued them
// (queue.Job.Trace, persisted by every backend), so one trace runs across
// the queue, and across processes on a shared one: the emit span is the
// parent of the routing span, which is the parent of every attempt of the
// deliveries it made, retries included; OnHook handlers run in the emit
// span's context. Client.Replay, Client.Redeliver and Client.Recover
// enqueue in their caller's context, so the attempts they cause join the
// caller's trace. Config.Propagator writes
// and reads the context: W3C Trace Context (traceparent, tracestate) by
// default. Without a TracerProvider jobs carry nothing.
//
// Logs go to Config.Logger with the same IDs under the keys "delivery",
// "event", "subscription", "message", "deliverer", "attempt", "hook" and
// "group", written through the slog ...Context methods so that a handler
// can add trace context (the log of a panicking deliverer is inside the
// attempt's span; the others follow it). Payloads, deliverer configurations and secrets are never
// logged; deliverer errors are, and the built-in deliverers redact URLs and
// secrets from theirs. A failed attempt logs at Warn, a successful one at
// Debug.
//
// # Lifecycle
//
// NewClient builds a client from a Config whose zero value is valid. Start
// returns at once; Stop waits for the work in progress, bounded by its
// context; calls after Stop return ErrClosed.
//
// # Testing
//
// Package outhooktest provides a recording fake Deliverer with scripted
// outcomes, a retry policy without delays, and helpers that wait until the
// client is idle and assert, typed, what was delivered.
package outhook
