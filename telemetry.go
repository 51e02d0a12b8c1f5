package outhook

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/outhook/outhook/queue"
)

// instrumentationName is the OpenTelemetry instrumentation scope of the
// client's meter and tracer.
const instrumentationName = "github.com/outhook/outhook"

// Attribute keys of the client's metrics and spans. Metrics carry only the
// bounded ones (hook, event, deliverer, outcomes, error type, queue state);
// IDs of single deliveries, messages and subscriptions go on spans and logs.
const (
	attrHookID          = attribute.Key("outhook.hook.id")
	attrEventID         = attribute.Key("outhook.event.id")
	attrDelivererID     = attribute.Key("outhook.deliverer.id")
	attrDeliveryOutcome = attribute.Key("outhook.delivery.outcome")
	attrAttemptOutcome  = attribute.Key("outhook.attempt.outcome")
	attrErrorType       = attribute.Key("error.type")
	attrQueueState      = attribute.Key("outhook.queue.state")

	attrDeliveryID     = attribute.Key("outhook.delivery.id")
	attrMessageID      = attribute.Key("outhook.message.id")
	attrSubscriptionID = attribute.Key("outhook.subscription.id")
	attrAttemptNumber  = attribute.Key("outhook.attempt.number")
	attrStatusCode     = attribute.Key("outhook.response.status_code")
	attrRouted         = attribute.Key("outhook.route.deliveries") // deliveries a routing run made
)

// Values of outhook.delivery.outcome: what became of a delivery after a run
// of its job.
const (
	deliverySucceeded = "succeeded" // an attempt succeeded: the delivery is done
	deliveryFailed    = "failed"    // a permanent failure, or the retries ran out
	deliveryRetried   = "retried"   // an attempt failed and a retry is scheduled
	deliveryAbandoned = "abandoned" // ended without an attempt: its subscription was deleted or disabled
)

// Histogram bucket boundaries, in seconds. An attempt is bounded by
// Config.DeliveryTimeout (30 s by default); a delivery's latency runs from
// emission to success, across retries that may last days.
var (
	attemptDurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60}
	latencyBuckets         = []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 18000, 36000, 86400, 172800, 345600}
)

// telemetry holds the client's OpenTelemetry instruments. Its zero value,
// the state without providers, records nothing and costs a nil check on
// each hook point.
type telemetry struct {
	tracer trace.Tracer                  // nil without Config.TracerProvider
	prop   propagation.TextMapPropagator // of queue jobs' trace context; set with tracer
	m      *meters                       // nil without Config.MeterProvider
	names  *nameCache                    // span names; set with tracer
}

// Span start options, made once.
var (
	producerSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer)}
	consumerSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
	clientSpan   = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}
)

// meters are the client's metric instruments.
type meters struct {
	hooksEmitted      metric.Int64Counter
	eventsEmitted     metric.Int64Counter
	deliveriesCreated metric.Int64Counter
	deliveries        metric.Int64Counter
	attempts          metric.Int64Counter
	attemptDuration   metric.Float64Histogram
	latency           metric.Float64Histogram
	filteredOut       metric.Int64Counter
	filterErrors      metric.Int64Counter

	queueJobs metric.Int64ObservableUpDownCounter
	queueAge  metric.Float64ObservableGauge
	queueDead metric.Int64ObservableUpDownCounter
	reg       metric.Registration // of the queue callback; nil when there is none

	attrs attrCache
}

// newTelemetry creates the instruments of the given providers; nil providers
// record nothing. prop carries trace context through queue jobs when there
// is a tracer; nil means W3C Trace Context. Errors creating instruments
// (which OpenTelemetry SDKs report for invalid names or options, returning
// a working instrument all the same) are returned joined, for the caller
// to log: they must not stop the application.
func newTelemetry(mp metric.MeterProvider, tp trace.TracerProvider, prop propagation.TextMapPropagator) (telemetry, error) {
	var t telemetry
	if tp != nil {
		t.tracer = tp.Tracer(instrumentationName)
		t.names = &nameCache{}
		t.prop = prop
		if t.prop == nil {
			t.prop = propagation.TraceContext{}
		}
	}
	if mp == nil {
		return t, nil
	}
	meter := mp.Meter(instrumentationName)
	m := &meters{}
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		if err != nil {
			errs = append(errs, err)
		}
		if c == nil {
			c = metricnoop.Int64Counter{}
		}
		return c
	}
	histogram := func(name, desc string, buckets []float64) metric.Float64Histogram {
		h, err := meter.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(buckets...))
		if err != nil {
			errs = append(errs, err)
		}
		if h == nil {
			h = metricnoop.Float64Histogram{}
		}
		return h
	}
	upDown := func(name, unit, desc string) metric.Int64ObservableUpDownCounter {
		c, err := meter.Int64ObservableUpDownCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		if err != nil {
			errs = append(errs, err)
		}
		if c == nil {
			c = metricnoop.Int64ObservableUpDownCounter{}
		}
		return c
	}
	m.hooksEmitted = counter("outhook.hooks.emitted", "{event}",
		"Hook events emitted and queued for at least one listener.")
	m.eventsEmitted = counter("outhook.events.emitted", "{event}",
		"Integration events routed to their subscriptions, once per emitted hook event and integration event.")
	m.deliveriesCreated = counter("outhook.deliveries.created", "{delivery}",
		"Deliveries created by routing integration events to matching subscriptions.")
	m.deliveries = counter("outhook.deliveries", "{delivery}",
		"Delivery outcomes after each run of a delivery: succeeded, failed (for good), retried or abandoned.")
	m.attempts = counter("outhook.delivery.attempts", "{attempt}",
		"Delivery attempts made, by attempt outcome.")
	m.attemptDuration = histogram("outhook.delivery.attempt.duration",
		"Duration of one delivery attempt: the deliverer's call.", attemptDurationBuckets)
	m.latency = histogram("outhook.delivery.latency",
		"Time from the emission of an event to the success of its delivery, retries included.", latencyBuckets)
	// Per event only, not per subscription: subscriptions are data, in
	// the thousands, and a subscription ID would make one time series each
	// (FilterStats and the logs name them).
	m.filteredOut = counter("outhook.filter.filtered_out", "{event}",
		"Integration events a subscription's filter did not select, once per subscription: not delivered to it, nothing recorded.")
	m.filterErrors = counter("outhook.filter.errors", "{event}",
		"Integration events whose subscription filter failed to evaluate, once per subscription: not delivered to it.")
	m.queueJobs = upDown("outhook.queue.jobs", "{job}",
		"Unfinished jobs in the work queue, by state (ready, delayed, running).")
	m.queueDead = upDown("outhook.queue.dead", "{job}",
		"Dead jobs the work queue keeps: events whose handler or routing failed on every attempt.")
	age, err := meter.Float64ObservableGauge("outhook.queue.oldest.age", metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest ready or delayed job in the work queue, since it was first enqueued; 0 when there is none."))
	if err != nil {
		errs = append(errs, err)
	}
	if age == nil {
		age = metricnoop.Float64ObservableGauge{}
	}
	m.queueAge = age
	t.m = m
	return t, errors.Join(errs...)
}

// observeQueue registers the queue gauges when the queue can report its
// contents. Call it last in NewClient: Client.Stop unregisters it.
func (t *telemetry) observeQueue(mp metric.MeterProvider, q queue.Queue) error {
	sr, ok := q.(queue.StatsReporter)
	if t.m == nil || !ok {
		return nil
	}
	ready := metric.WithAttributeSet(attribute.NewSet(attrQueueState.String("ready")))
	delayed := metric.WithAttributeSet(attribute.NewSet(attrQueueState.String("delayed")))
	running := metric.WithAttributeSet(attribute.NewSet(attrQueueState.String("running")))
	m := t.m
	reg, err := mp.Meter(instrumentationName).RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		s, err := sr.Stats(ctx)
		if err != nil {
			return err
		}
		now := time.Now()
		age := func(t time.Time) float64 {
			if t.IsZero() {
				return 0
			}
			return max(0, now.Sub(t).Seconds())
		}
		o.ObserveInt64(m.queueJobs, int64(s.Ready), ready)
		o.ObserveInt64(m.queueJobs, int64(s.Delayed), delayed)
		o.ObserveInt64(m.queueJobs, int64(s.Running), running)
		o.ObserveFloat64(m.queueAge, age(s.OldestReady), ready)
		o.ObserveFloat64(m.queueAge, age(s.OldestDelayed), delayed)
		o.ObserveInt64(m.queueDead, int64(s.Dead))
		return nil
	}, m.queueJobs, m.queueAge, m.queueDead)
	if err != nil {
		return err
	}
	m.reg = reg
	return nil
}

// close unregisters the queue callback.
func (t *telemetry) close() error {
	if t.m == nil || t.m.reg == nil {
		return nil
	}
	return t.m.reg.Unregister()
}

// emitObserved is emitPayload with a producer span and the emitted-hooks
// counter.
//
// Spans get their attributes once started, and only when they record: a
// span that is not sampled costs no attribute slices.
func (c *Client) emitObserved(ctx context.Context, route *hookRoute, p any, enq enqueueFunc) error {
	var span trace.Span
	if c.tel.tracer != nil {
		ctx, span = c.tel.tracer.Start(ctx, c.tel.names.get("outhook.emit ", route.id), producerSpan...)
		if span.IsRecording() {
			span.SetAttributes(attrHookID.String(route.id))
		} else {
			span = nil // nothing to end
		}
	}
	err := c.emitPayload(ctx, route, p, enq)
	if span != nil {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
	if err == nil && c.tel.m != nil {
		c.tel.m.hooksEmitted.Add(ctx, 1, c.tel.m.attrs.get(attrKey{hook: route.id}).add...)
	}
	return err
}

// setMessageID adds the message ID of an emitted hook event to the emit
// span in ctx.
func (t *telemetry) setMessageID(ctx context.Context, msgID string) {
	if t.tracer != nil {
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			span.SetAttributes(attrMessageID.String(msgID))
		}
	}
}

// eventRouted counts an integration event routed to n deliveries.
func (t *telemetry) eventRouted(ctx context.Context, eventID string, n int) {
	if t.m == nil {
		return
	}
	opts := t.m.attrs.get(attrKey{event: eventID}).add
	t.m.eventsEmitted.Add(ctx, 1, opts...)
	if n > 0 {
		t.m.deliveriesCreated.Add(ctx, int64(n), opts...)
	}
}

// eventFiltered counts an event a subscription's filter did not select
// (FilterStats.FilteredOut).
func (t *telemetry) eventFiltered(ctx context.Context, eventID string) {
	if t.m != nil {
		t.m.filteredOut.Add(ctx, 1, t.m.attrs.get(attrKey{event: eventID}).add...)
	}
}

// filterFailed counts an event whose subscription filter failed to
// evaluate (FilterStats.Errors).
func (t *telemetry) filterFailed(ctx context.Context, eventID string) {
	if t.m != nil {
		t.m.filterErrors.Add(ctx, 1, t.m.attrs.get(attrKey{event: eventID}).add...)
	}
}

// Trace context across the queue.
//
// A job carries the trace context of the code that enqueued it
// (queue.Job.Trace), and its handler continues that trace: EmitHook's span
// is the parent of the routing run's span, which is the parent of each
// delivery attempt's span, and OnHook handlers run in the emit span's
// context. Parent and child rather than span links: OpenTelemetry's
// messaging conventions need links where one consumer span covers a batch
// of messages, which can have one parent only, and allow the message's
// creation context as the parent when one message is processed on its
// own. Every outhook job is one message processed on its own, and a parent
// makes one trace, from the application's request through EmitHook to the
// deliverer's HTTP call, that a trace view shows whole and a parent-based
// sampler samples whole. The price is that a delivery retried for hours
// keeps adding attempt spans to a trace that began when the event was
// emitted.

// jobTrace returns the carrier of the trace context in ctx for the jobs
// enqueued there, nil when tracing is off or ctx holds no valid span
// context (with a no-op TracerProvider, say): then jobs carry nothing.
func (t *telemetry) jobTrace(ctx context.Context) map[string]string {
	if t.tracer == nil {
		return nil
	}
	return t.carrier(ctx)
}

func (t *telemetry) carrier(ctx context.Context) map[string]string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return nil
	}
	// The delivery jobs of one routing run share one carrier.
	if rc, ok := ctx.Value(routeTraceKey{}).(*routeTrace); ok && rc.sc.Equal(sc) {
		if !rc.done {
			rc.m, rc.done = t.inject(ctx), true
		}
		return rc.m
	}
	return t.inject(ctx)
}

// inject writes the trace context of ctx into a new carrier; nil when the
// propagator writes nothing.
func (t *telemetry) inject(ctx context.Context) map[string]string {
	m := make(propagation.MapCarrier, 2) // traceparent, tracestate
	t.prop.Inject(ctx, m)
	if len(m) == 0 {
		return nil
	}
	return m
}

// extractJob returns ctx with the trace context job carries, which the
// spans started in the job's handler continue. Without a tracer, or for a
// job without Trace, it returns ctx as it is.
func (t *telemetry) extractJob(ctx context.Context, job *queue.Job) context.Context {
	if t.tracer == nil || len(job.Trace) == 0 {
		return ctx
	}
	return t.prop.Extract(ctx, propagation.MapCarrier(job.Trace))
}

// routeTraceKey marks the context of a routing run with its routeTrace.
type routeTraceKey struct{}

// routeTrace is the carrier of a routing run's span context, made at the
// first delivery job that needs it and shared by the others. A routing run
// is one goroutine: no lock.
type routeTrace struct {
	sc   trace.SpanContext // of the routing run's span
	m    map[string]string
	done bool
}

// startRoute starts the span of a routing run of an integration event: a
// consumer of the hook job with message ID msgID. The context it returns
// carries the span to the run's delivery jobs.
func (t *telemetry) startRoute(ctx context.Context, rec *eventRecord, msgID string) (context.Context, trace.Span) {
	ctx, span := t.tracer.Start(ctx, t.names.get("outhook.route ", rec.ID), consumerSpan...)
	if span.IsRecording() {
		span.SetAttributes(attrEventID.String(rec.ID), attrHookID.String(rec.HookID), attrMessageID.String(msgID))
	}
	if sc := span.SpanContext(); sc.IsValid() {
		ctx = context.WithValue(ctx, routeTraceKey{}, &routeTrace{sc: sc})
	}
	return ctx, span
}

// endRoute ends the span of a routing run that made n delivery jobs or
// failed with err. Call it deferred, with recover(): a run that panicked
// fails its span, and the panic goes on to the handler's recovery.
func endRoute(span trace.Span, panicked any, n int, err error) {
	if panicked != nil {
		err = fmt.Errorf("outhook: handler panicked: %v", panicked)
	}
	if span.IsRecording() {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		} else {
			span.SetAttributes(attrRouted.Int(n))
		}
	}
	span.End()
	if panicked != nil {
		panic(panicked)
	}
}

// startAttempt starts the span of one delivery attempt, whose context the
// deliverer receives. It returns a nil span when tracing is off.
func (t *telemetry) startAttempt(ctx context.Context, delivererID string, req *DeliveryRequest) (context.Context, trace.Span) {
	if t.tracer == nil {
		return ctx, nil
	}
	ctx, span := t.tracer.Start(ctx, t.names.get("outhook.deliver ", delivererID), clientSpan...)
	if span.IsRecording() {
		span.SetAttributes(
			attrEventID.String(req.EventID),
			attrDeliveryID.String(req.DeliveryID),
			attrMessageID.String(req.MessageID),
			attrSubscriptionID.String(req.Subscription.ID),
			attrDelivererID.String(delivererID),
			attrAttemptNumber.Int(req.Attempt),
		)
	}
	return ctx, span
}

// endAttempt ends the span of an attempt with its outcome.
func endAttempt(span trace.Span, res DeliveryResult, err error) {
	if !span.IsRecording() {
		span.End()
		return
	}
	outcome, _ := classify(err)
	span.SetAttributes(attrAttemptOutcome.String(string(outcome)))
	if res.StatusCode != 0 {
		span.SetAttributes(attrStatusCode.Int(res.StatusCode))
	}
	if err != nil {
		span.SetAttributes(attrErrorType.String(errorClass(err)))
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// attemptRecorded counts an attempt recorded for a delivery of eventID
// that occurred at occurredAt, and what became of the delivery: status is
// its state after the attempt.
func (t *telemetry) attemptRecorded(ctx context.Context, eventID string, occurredAt time.Time, a *Attempt, status DeliveryStatus) {
	if t.m == nil {
		return
	}
	m := t.m
	k := attrKey{event: eventID, deliverer: a.DelivererID, attemptOutcome: string(a.Outcome), errorType: a.ErrorClass}
	opts := m.attrs.get(k)
	m.attempts.Add(ctx, 1, opts.add...)
	m.attemptDuration.Record(ctx, a.Duration.Seconds(), opts.record...)

	k = attrKey{event: eventID, deliverer: a.DelivererID}
	switch status {
	case DeliverySucceeded:
		k.deliveryOutcome = deliverySucceeded
		if !occurredAt.IsZero() {
			m.latency.Record(ctx, max(0, a.StartedAt.Add(a.Duration).Sub(occurredAt).Seconds()), m.attrs.get(k).record...)
		}
	case DeliveryFailed:
		k.deliveryOutcome = deliveryFailed
	default:
		k.deliveryOutcome = deliveryRetried
	}
	m.deliveries.Add(ctx, 1, m.attrs.get(k).add...)
}

// deliveryAbandoned counts a delivery ended without an attempt.
func (t *telemetry) deliveryAbandoned(ctx context.Context, eventID, delivererID string) {
	if t.m == nil {
		return
	}
	k := attrKey{event: eventID, deliverer: delivererID, deliveryOutcome: deliveryAbandoned}
	t.m.deliveries.Add(ctx, 1, t.m.attrs.get(k).add...)
}

// attrKey names an attribute set; empty fields are left out of the set.
type attrKey struct {
	hook, event, deliverer          string
	deliveryOutcome, attemptOutcome string
	errorType                       string
}

// attrOpts are the measurement options of one attribute set, ready to pass
// to Add and Record without allocating.
type attrOpts struct {
	add    []metric.AddOption
	record []metric.RecordOption
}

// maxAttrSets bounds the attribute sets an attrCache keeps. Sets are bounded
// by the events, deliverers, outcomes and error types there are; past the
// bound (event IDs from other processes, say) sets are built per call.
const maxAttrSets = 4096

// attrCache keeps the measurement options of the attribute sets in use, so
// that recording a measurement allocates nothing. Reads take no lock: the
// map is replaced, never modified.
type attrCache struct {
	mu   sync.Mutex // serializes additions
	sets atomic.Pointer[map[attrKey]*attrOpts]
}

// get returns the options of the attribute set k names.
func (c *attrCache) get(k attrKey) *attrOpts {
	if m := c.sets.Load(); m != nil {
		if o, ok := (*m)[k]; ok {
			return o
		}
	}
	o := newAttrOpts(k)
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.sets.Load()
	var next map[attrKey]*attrOpts
	if old != nil {
		if prev, ok := (*old)[k]; ok {
			return prev
		}
		if len(*old) >= maxAttrSets {
			return o
		}
		next = maps.Clone(*old)
	} else {
		next = map[attrKey]*attrOpts{}
	}
	next[k] = o
	c.sets.Store(&next)
	return o
}

func newAttrOpts(k attrKey) *attrOpts {
	kvs := make([]attribute.KeyValue, 0, 6)
	for _, kv := range []struct {
		key attribute.Key
		v   string
	}{
		{attrHookID, k.hook},
		{attrEventID, k.event},
		{attrDelivererID, k.deliverer},
		{attrDeliveryOutcome, k.deliveryOutcome},
		{attrAttemptOutcome, k.attemptOutcome},
		{attrErrorType, k.errorType},
	} {
		if kv.v != "" {
			kvs = append(kvs, kv.key.String(kv.v))
		}
	}
	opt := metric.WithAttributeSet(attribute.NewSet(kvs...))
	return &attrOpts{add: []metric.AddOption{opt}, record: []metric.RecordOption{opt}}
}

// nameCache keeps span names, a prefix and an ID (of a hook or a
// deliverer), so that starting a span does not build its name. Reads take
// no lock: the map is replaced, never modified.
type nameCache struct {
	mu    sync.Mutex // serializes additions
	names atomic.Pointer[map[[2]string]string]
}

// maxSpanNames bounds a nameCache; hooks and deliverers are defined in
// code, so it is not reached in practice.
const maxSpanNames = 1024

// get returns prefix + id.
func (c *nameCache) get(prefix, id string) string {
	k := [2]string{prefix, id}
	if m := c.names.Load(); m != nil {
		if name, ok := (*m)[k]; ok {
			return name
		}
	}
	name := prefix + id
	c.mu.Lock()
	defer c.mu.Unlock()
	next := map[[2]string]string{}
	if old := c.names.Load(); old != nil {
		if len(*old) >= maxSpanNames {
			return name
		}
		next = maps.Clone(*old)
	}
	next[k] = name
	c.names.Store(&next)
	return name
}
