package outhook_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/memqueue"
	"github.com/outhook/outhook/outhooktest"
	"github.com/outhook/outhook/queue"
)

// The OpenTelemetry SDK is the application's business, not a dependency of
// outhook: these fakes embed the API's noop types and record what the
// client does with the instruments and spans it needs.

// measurement is one Add, Record or Observe call.
type measurement struct {
	name  string
	value float64
	attrs attribute.Set
}

type fakeMeterProvider struct {
	metricnoop.MeterProvider

	mu        sync.Mutex
	scopes    []string
	adds      []measurement // counters
	records   []measurement // histograms
	callbacks map[int]metric.Callback
	nextCB    int
}

func newFakeMeterProvider() *fakeMeterProvider {
	return &fakeMeterProvider{callbacks: map[int]metric.Callback{}}
}

func (p *fakeMeterProvider) Meter(name string, _ ...metric.MeterOption) metric.Meter {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.scopes = append(p.scopes, name)
	return &fakeMeter{p: p}
}

// sum adds up the counter measurements of name with exactly attrs.
func (p *fakeMeterProvider) sum(name string, attrs ...attribute.KeyValue) float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	want := attribute.NewSet(attrs...)
	var n float64
	for _, m := range p.adds {
		if m.name == name && m.attrs.Equals(&want) {
			n += m.value
		}
	}
	return n
}

// recorded returns the histogram values of name with exactly attrs.
func (p *fakeMeterProvider) recorded(name string, attrs ...attribute.KeyValue) []float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	want := attribute.NewSet(attrs...)
	var out []float64
	for _, m := range p.records {
		if m.name == name && m.attrs.Equals(&want) {
			out = append(out, m.value)
		}
	}
	return out
}

// all returns every counter and histogram measurement.
func (p *fakeMeterProvider) all() []measurement {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append(slices.Clone(p.adds), p.records...)
}

// collect runs the registered callbacks, as an SDK reader does, and returns
// what they observed.
func (p *fakeMeterProvider) collect(t *testing.T) []measurement {
	t.Helper()
	p.mu.Lock()
	cbs := make([]metric.Callback, 0, len(p.callbacks))
	for _, cb := range p.callbacks {
		cbs = append(cbs, cb)
	}
	p.mu.Unlock()
	o := &fakeObserver{}
	for _, cb := range cbs {
		require.NoError(t, cb(context.Background(), o))
	}
	return o.got
}

func (p *fakeMeterProvider) registered() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.callbacks)
}

type fakeMeter struct {
	metricnoop.Meter
	p *fakeMeterProvider
}

func (m *fakeMeter) Int64Counter(name string, _ ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	return &fakeCounter{p: m.p, name: name}, nil
}

func (m *fakeMeter) Float64Histogram(name string, _ ...metric.Float64HistogramOption) (metric.Float64Histogram, error) {
	return &fakeHistogram{p: m.p, name: name}, nil
}

func (m *fakeMeter) Int64ObservableUpDownCounter(name string, _ ...metric.Int64ObservableUpDownCounterOption) (metric.Int64ObservableUpDownCounter, error) {
	return &fakeInt64Observable{name: name}, nil
}

func (m *fakeMeter) Float64ObservableGauge(name string, _ ...metric.Float64ObservableGaugeOption) (metric.Float64ObservableGauge, error) {
	return &fakeFloat64Observable{name: name}, nil
}

func (m *fakeMeter) RegisterCallback(f metric.Callback, _ ...metric.Observable) (metric.Registration, error) {
	m.p.mu.Lock()
	defer m.p.mu.Unlock()
	m.p.nextCB++
	m.p.callbacks[m.p.nextCB] = f
	return &fakeRegistration{p: m.p, id: m.p.nextCB}, nil
}

type fakeRegistration struct {
	metricnoop.Registration
	p  *fakeMeterProvider
	id int
}

func (r *fakeRegistration) Unregister() error {
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	delete(r.p.callbacks, r.id)
	return nil
}

type fakeCounter struct {
	metricnoop.Int64Counter
	p    *fakeMeterProvider
	name string
}

func (c *fakeCounter) Add(_ context.Context, v int64, opts ...metric.AddOption) {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	c.p.adds = append(c.p.adds, measurement{c.name, float64(v), metric.NewAddConfig(opts).Attributes()})
}

type fakeHistogram struct {
	metricnoop.Float64Histogram
	p    *fakeMeterProvider
	name string
}

func (h *fakeHistogram) Record(_ context.Context, v float64, opts ...metric.RecordOption) {
	h.p.mu.Lock()
	defer h.p.mu.Unlock()
	h.p.records = append(h.p.records, measurement{h.name, v, metric.NewRecordConfig(opts).Attributes()})
}

type fakeInt64Observable struct {
	metricnoop.Int64ObservableUpDownCounter
	name string
}

type fakeFloat64Observable struct {
	metricnoop.Float64ObservableGauge
	name string
}

type fakeObserver struct {
	metricnoop.Observer
	got []measurement
}

func (o *fakeObserver) ObserveInt64(inst metric.Int64Observable, v int64, opts ...metric.ObserveOption) {
	o.got = append(o.got, measurement{inst.(*fakeInt64Observable).name, float64(v), metric.NewObserveConfig(opts).Attributes()})
}

func (o *fakeObserver) ObserveFloat64(inst metric.Float64Observable, v float64, opts ...metric.ObserveOption) {
	o.got = append(o.got, measurement{inst.(*fakeFloat64Observable).name, v, metric.NewObserveConfig(opts).Attributes()})
}

// observed returns the value observed for name with exactly attrs.
func observed(t *testing.T, ms []measurement, name string, attrs ...attribute.KeyValue) float64 {
	t.Helper()
	want := attribute.NewSet(attrs...)
	for _, m := range ms {
		if m.name == name && m.attrs.Equals(&want) {
			return m.value
		}
	}
	t.Fatalf("nothing observed for %s %v in %v", name, attrs, ms)
	return 0
}

type fakeTracerProvider struct {
	tracenoop.TracerProvider

	mu    sync.Mutex
	spans []*fakeSpan
	ids   uint64 // the last span ID given
}

func (p *fakeTracerProvider) Tracer(string, ...trace.TracerOption) trace.Tracer {
	return &fakeTracer{p: p}
}

// named returns the spans with the given name, in start order.
func (p *fakeTracerProvider) named(name string) []*fakeSpan {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*fakeSpan
	for _, s := range p.spans {
		if s.name == name {
			out = append(out, s)
		}
	}
	return out
}

type fakeTracer struct {
	tracenoop.Tracer
	p *fakeTracerProvider
}

// Start starts a sampled span with a span context of its own: in the
// trace of the span context in ctx (local, or remote as extracted from a
// queue job), or in a new trace.
func (t *fakeTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	cfg := trace.NewSpanStartConfig(opts...)
	parent := trace.SpanContextFromContext(ctx)
	t.p.mu.Lock()
	t.p.ids++
	id := t.p.ids
	t.p.mu.Unlock()
	var sc trace.SpanContextConfig
	if parent.IsValid() {
		sc.TraceID = parent.TraceID()
	} else {
		binary.BigEndian.PutUint64(sc.TraceID[8:], id)
		sc.TraceID[0] = 0x7a
	}
	binary.BigEndian.PutUint64(sc.SpanID[:], id)
	sc.TraceFlags = trace.FlagsSampled
	s := &fakeSpan{name: name, kind: cfg.SpanKind(), attrs: map[attribute.Key]attribute.Value{},
		sc: trace.NewSpanContext(sc), parent: parent}
	s.SetAttributes(cfg.Attributes()...)
	t.p.mu.Lock()
	t.p.spans = append(t.p.spans, s)
	t.p.mu.Unlock()
	return trace.ContextWithSpan(ctx, s), s
}

type fakeSpan struct {
	tracenoop.Span
	name   string
	kind   trace.SpanKind
	sc     trace.SpanContext
	parent trace.SpanContext // invalid for a root span

	mu         sync.Mutex
	attrs      map[attribute.Key]attribute.Value
	status     codes.Code
	statusDesc string
	ended      bool
}

func (s *fakeSpan) IsRecording() bool { return true }

func (s *fakeSpan) SpanContext() trace.SpanContext { return s.sc }

func (s *fakeSpan) SetAttributes(kvs ...attribute.KeyValue) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, kv := range kvs {
		s.attrs[kv.Key] = kv.Value
	}
}

func (s *fakeSpan) SetStatus(code codes.Code, desc string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.statusDesc = code, desc
}

func (s *fakeSpan) End(...trace.SpanEndOption) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended = true
}

// attr returns the value of a span attribute, as any.
func (s *fakeSpan) attr(k string) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.attrs[attribute.Key(k)]
	if !ok {
		return nil
	}
	return v.AsInterface()
}

// httpishError is a deliverer error with a class, as safehttp's are.
type httpishError struct{ code int }

func (e *httpishError) Error() string      { return fmt.Sprintf("destination answered %d", e.code) }
func (e *httpishError) ErrorClass() string { return outhook.ErrorClassHTTPStatus }

// spyDeliverer answers with the status codes it is given, in turn (200 and
// beyond the list: success; 5xx retryable; 4xx permanent), and records the
// span it finds in each attempt's context.
type spyDeliverer struct {
	mu    sync.Mutex
	codes []int
	spans []trace.Span
	reqs  []outhook.DeliveryRequest
}

func (d *spyDeliverer) ID() string                           { return "spy" }
func (d *spyDeliverer) ConfigSchema() json.RawMessage        { return json.RawMessage(`{"type":"object"}`) }
func (d *spyDeliverer) ValidateConfig(json.RawMessage) error { return nil }
func (d *spyDeliverer) Deliver(ctx context.Context, req *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.spans = append(d.spans, trace.SpanFromContext(ctx))
	d.reqs = append(d.reqs, *req)
	code := 200
	if len(d.codes) > 0 {
		code, d.codes = d.codes[0], d.codes[1:]
	}
	res := outhook.DeliveryResult{StatusCode: code}
	switch {
	case code >= 500:
		return res, &httpishError{code}
	case code >= 400:
		return res, outhook.Permanent(&httpishError{code})
	}
	return res, nil
}

func TestTelemetryMetricsByOutcome(t *testing.T) {
	mp := newFakeMeterProvider()
	ok := outhooktest.NewDeliverer("ok").Script(outhooktest.FailRetryable(nil))
	bad := outhooktest.NewDeliverer("bad").SetDefault(outhooktest.FailPermanent(nil))
	down := outhooktest.NewDeliverer("down").SetDefault(outhooktest.FailRetryable(nil))
	c := outhooktest.NewClient(t, &outhook.Config{
		Registry:      newIncidentRegistry(t),
		Deliverers:    []outhook.Deliverer{ok, bad, down},
		MeterProvider: mp,
		DeliveryRetry: outhooktest.NoDelay(3),
	})
	for _, d := range []string{"ok", "bad", "down"} {
		subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}, DelivererID: d})
	}
	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	outhooktest.WaitIdle(t, c)
	require.Equal(t, []string{"github.com/outhook/outhook"}, slices.Compact(mp.scopes))

	var (
		hook  = attribute.String("outhook.hook.id", incidentCreated.ID())
		event = attribute.String("outhook.event.id", createdEvent)
		by    = func(d string) attribute.KeyValue { return attribute.String("outhook.deliverer.id", d) }
		att   = func(o string) attribute.KeyValue { return attribute.String("outhook.attempt.outcome", o) }
		dlv   = func(o string) attribute.KeyValue { return attribute.String("outhook.delivery.outcome", o) }
		class = attribute.String("error.type", outhook.ErrorClassDeliverer)
	)
	require.Equal(t, 1.0, mp.sum("outhook.hooks.emitted", hook))
	require.Equal(t, 1.0, mp.sum("outhook.events.emitted", event))
	require.Equal(t, 3.0, mp.sum("outhook.deliveries.created", event))

	// Success after a retry.
	require.Equal(t, 1.0, mp.sum("outhook.delivery.attempts", event, by("ok"), att("retryable"), class))
	require.Equal(t, 1.0, mp.sum("outhook.delivery.attempts", event, by("ok"), att("succeeded")))
	require.Equal(t, 1.0, mp.sum("outhook.deliveries", event, by("ok"), dlv("retried")))
	require.Equal(t, 1.0, mp.sum("outhook.deliveries", event, by("ok"), dlv("succeeded")))
	latency := mp.recorded("outhook.delivery.latency", event, by("ok"), dlv("succeeded"))
	require.Len(t, latency, 1)
	require.GreaterOrEqual(t, latency[0], 0.0)
	// A permanent failure.
	require.Equal(t, 1.0, mp.sum("outhook.delivery.attempts", event, by("bad"), att("permanent"), class))
	require.Equal(t, 1.0, mp.sum("outhook.deliveries", event, by("bad"), dlv("failed")))
	// Retries used up.
	require.Equal(t, 3.0, mp.sum("outhook.delivery.attempts", event, by("down"), att("retryable"), class))
	require.Equal(t, 2.0, mp.sum("outhook.deliveries", event, by("down"), dlv("retried")))
	require.Equal(t, 1.0, mp.sum("outhook.deliveries", event, by("down"), dlv("failed")))
	require.Empty(t, mp.recorded("outhook.delivery.latency", event, by("down"), dlv("succeeded")))

	var durations int
	for _, m := range mp.all() {
		if m.name == "outhook.delivery.attempt.duration" {
			durations++
			require.GreaterOrEqual(t, m.value, 0.0)
		}
		// Bounded cardinality: no per-delivery, per-message or
		// per-subscription attribute on any metric.
		for _, kv := range m.attrs.ToSlice() {
			require.Contains(t, []attribute.Key{"outhook.hook.id", "outhook.event.id", "outhook.deliverer.id",
				"outhook.attempt.outcome", "outhook.delivery.outcome", "error.type"}, kv.Key, "metric %s", m.name)
		}
	}
	require.Equal(t, 6, durations, "one per attempt")

	// A delivery whose subscription was disabled before its redelivery is
	// abandoned, without an attempt.
	d, err := c.Deliveries(context.Background(), outhook.DeliveryQuery{})
	require.NoError(t, err)
	var badID string
	for _, x := range d {
		if x.DelivererID == "bad" {
			badID = x.ID
			_, err := c.SetSubscriptionEnabled(context.Background(), x.SubscriptionID, false)
			require.NoError(t, err)
		}
	}
	require.NoError(t, c.Redeliver(context.Background(), badID))
	outhooktest.WaitIdle(t, c)
	require.Equal(t, 1.0, mp.sum("outhook.deliveries", event, by("bad"), dlv("abandoned")))
	require.Len(t, bad.Calls(), 1)
}

func TestTelemetryAttemptSpans(t *testing.T) {
	tp := &fakeTracerProvider{}
	spy := &spyDeliverer{codes: []int{503, 200, 404}}
	c := outhooktest.NewClient(t, &outhook.Config{
		Registry:       newIncidentRegistry(t),
		Deliverers:     []outhook.Deliverer{spy},
		TracerProvider: tp,
		DeliveryRetry:  outhooktest.NoDelay(3),
	})
	sub := subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}, DelivererID: "spy"})
	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	outhooktest.WaitIdle(t, c)

	spans := tp.named("outhook.deliver spy")
	require.Len(t, spans, 2)
	spy.mu.Lock()
	reqs, seen := slices.Clone(spy.reqs), slices.Clone(spy.spans)
	spy.mu.Unlock()
	require.Len(t, reqs, 2)
	for i, s := range spans {
		require.Same(t, s, seen[i], "the deliverer runs in the attempt's span")
		require.True(t, s.ended)
		require.Equal(t, trace.SpanKindClient, s.kind)
		require.Equal(t, createdEvent, s.attr("outhook.event.id"))
		require.Equal(t, reqs[i].DeliveryID, s.attr("outhook.delivery.id"))
		require.Equal(t, reqs[i].MessageID, s.attr("outhook.message.id"))
		require.Equal(t, sub.ID, s.attr("outhook.subscription.id"))
		require.Equal(t, "spy", s.attr("outhook.deliverer.id"))
		require.Equal(t, int64(i+1), s.attr("outhook.attempt.number"))
	}
	failed, succeeded := spans[0], spans[1]
	require.Equal(t, "retryable", failed.attr("outhook.attempt.outcome"))
	require.Equal(t, int64(503), failed.attr("outhook.response.status_code"))
	require.Equal(t, outhook.ErrorClassHTTPStatus, failed.attr("error.type"))
	require.Equal(t, codes.Error, failed.status)
	require.Equal(t, "destination answered 503", failed.statusDesc)

	require.Equal(t, "succeeded", succeeded.attr("outhook.attempt.outcome"))
	require.Equal(t, int64(200), succeeded.attr("outhook.response.status_code"))
	require.Nil(t, succeeded.attr("error.type"))
	require.Equal(t, codes.Unset, succeeded.status)

	emits := tp.named("outhook.emit " + incidentCreated.ID())
	require.Len(t, emits, 1)
	require.Equal(t, trace.SpanKindProducer, emits[0].kind)
	require.Equal(t, incidentCreated.ID(), emits[0].attr("outhook.hook.id"))
	require.Equal(t, reqs[0].MessageID, emits[0].attr("outhook.message.id"))
	require.True(t, emits[0].ended)

	// A test event gets its span too; a permanent failure marks it.
	a, err := c.SendTest(context.Background(), sub.ID)
	require.Error(t, err)
	require.Equal(t, outhook.AttemptPermanent, a.Outcome)
	spans = tp.named("outhook.deliver spy")
	require.Len(t, spans, 3)
	require.Equal(t, "permanent", spans[2].attr("outhook.attempt.outcome"))
	require.Equal(t, int64(404), spans[2].attr("outhook.response.status_code"))
	require.Equal(t, codes.Error, spans[2].status)

	// A payload that fails validation fails the emit span.
	require.Error(t, outhook.EmitHook(context.Background(), c, incidentCreated, IncidentCreated{}))
	emits = tp.named("outhook.emit " + incidentCreated.ID())
	require.Len(t, emits, 2)
	require.Equal(t, codes.Error, emits[1].status)
	require.Nil(t, emits[1].attr("outhook.message.id"))
}

func TestTelemetryPanickingDelivererEndsSpan(t *testing.T) {
	tp := &fakeTracerProvider{}
	mp := newFakeMeterProvider()
	fake := outhooktest.NewDeliverer("fake").Script(outhooktest.Panic("boom"))
	c := outhooktest.NewClient(t, &outhook.Config{
		Registry: newIncidentRegistry(t), Deliverers: []outhook.Deliverer{fake},
		TracerProvider: tp, MeterProvider: mp, DeliveryRetry: outhooktest.NoDelay(3),
	})
	subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}})
	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	outhooktest.WaitIdle(t, c)

	spans := tp.named("outhook.deliver fake")
	require.Len(t, spans, 2)
	require.True(t, spans[0].ended)
	require.Equal(t, codes.Error, spans[0].status)
	require.Contains(t, spans[0].statusDesc, "panicked")
	require.Equal(t, "retryable", spans[0].attr("outhook.attempt.outcome"))
	require.Equal(t, "succeeded", spans[1].attr("outhook.attempt.outcome"))
	require.Equal(t, 1.0, mp.sum("outhook.deliveries",
		attribute.String("outhook.event.id", createdEvent), attribute.String("outhook.deliverer.id", "fake"),
		attribute.String("outhook.delivery.outcome", "succeeded")))
}

func TestTelemetryOffByDefault(t *testing.T) {
	for name, cfg := range map[string]outhook.Config{
		"nil providers":  {},
		"noop providers": {MeterProvider: metricnoop.NewMeterProvider(), TracerProvider: tracenoop.NewTracerProvider()},
	} {
		t.Run(name, func(t *testing.T) {
			spy := &spyDeliverer{codes: []int{503, 200, 404}}
			cfg.Registry = newIncidentRegistry(t)
			cfg.Deliverers = []outhook.Deliverer{spy}
			cfg.DeliveryRetry = outhooktest.NoDelay(3)
			c := outhooktest.NewClient(t, &cfg)
			sub := subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}, DelivererID: "spy"})
			emit(t, c, incidentCreated, sampleIncident("inc-1"))
			outhooktest.WaitIdle(t, c)
			_, err := c.SendTest(context.Background(), sub.ID)
			require.Error(t, err)
			require.Error(t, outhook.EmitHook(context.Background(), c, incidentCreated, IncidentCreated{}))

			spy.mu.Lock()
			defer spy.mu.Unlock()
			require.Len(t, spy.spans, 3)
			for _, s := range spy.spans {
				require.False(t, s.IsRecording())
				require.False(t, s.SpanContext().IsValid())
			}
		})
	}
}

func TestTelemetryQueueGauges(t *testing.T) {
	mp := newFakeMeterProvider()
	q, err := memqueue.New(&memqueue.Config{Logger: quiet})
	require.NoError(t, err)
	c, err := outhook.NewClient(&outhook.Config{
		Queue: q, Logger: quiet, MeterProvider: mp,
		HandlerRetry: outhooktest.NoDelay(1),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	require.NoError(t, outhook.OnHook(c, incidentCreated, func(_ context.Context, p IncidentCreated) error {
		if p.IncidentID == "inc-bad" {
			return errors.New("handler fails")
		}
		return nil
	}, outhook.WorkQueue("audit")))
	require.Equal(t, 1, mp.registered())

	// Before Start the jobs wait in the queue.
	for _, id := range []string{"inc-1", "inc-2", "inc-bad"} {
		emit(t, c, incidentCreated, sampleIncident(id))
	}
	got := mp.collect(t)
	ready := attribute.String("outhook.queue.state", "ready")
	delayed := attribute.String("outhook.queue.state", "delayed")
	running := attribute.String("outhook.queue.state", "running")
	require.Equal(t, 3.0, observed(t, got, "outhook.queue.jobs", ready))
	require.Equal(t, 0.0, observed(t, got, "outhook.queue.jobs", delayed))
	require.Equal(t, 0.0, observed(t, got, "outhook.queue.jobs", running))
	require.GreaterOrEqual(t, observed(t, got, "outhook.queue.oldest.age", ready), 0.0)
	require.Equal(t, 0.0, observed(t, got, "outhook.queue.oldest.age", delayed))
	require.Equal(t, 0.0, observed(t, got, "outhook.queue.dead"))

	require.NoError(t, c.Start(context.Background()))
	outhooktest.WaitIdle(t, c)
	got = mp.collect(t)
	require.Equal(t, 0.0, observed(t, got, "outhook.queue.jobs", ready))
	require.Equal(t, 0.0, observed(t, got, "outhook.queue.oldest.age", ready))
	require.Equal(t, 1.0, observed(t, got, "outhook.queue.dead"), "the failing handler's event is dead")

	require.NoError(t, c.Stop(context.Background()))
	require.Zero(t, mp.registered(), "Stop unregisters the gauges")
}

func TestTelemetryFilterCounters(t *testing.T) {
	mp := newFakeMeterProvider()
	fake := outhooktest.NewDeliverer("fake")
	c := outhooktest.NewClient(t, &outhook.Config{
		Registry: newIncidentRegistry(t), Deliverers: []outhook.Deliverer{fake}, MeterProvider: mp,
	})
	// Per emitted event: turned away by an expression, by a field filter,
	// and by an expression that fails at run time (index out of range).
	subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}, Filter: &outhook.Filter{Expr: `payload.severity == "minor"`}})
	subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}, Filter: &outhook.Filter{Field: "systemIds", AnyOf: []string{"sys-9"}}})
	subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}, Filter: &outhook.Filter{Expr: `payload.systemIds[5] == "x"`}})
	pass := subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}, Filter: &outhook.Filter{Expr: `payload.severity == "critical"`}})
	for _, id := range []string{"inc-1", "inc-2"} {
		emit(t, c, incidentCreated, sampleIncident(id))
	}
	outhooktest.WaitIdle(t, c)
	require.Len(t, fake.Calls(), 2)
	for _, call := range fake.Calls() {
		require.Equal(t, pass.ID, call.Request.Subscription.ID)
	}

	event := attribute.String("outhook.event.id", createdEvent)
	require.Equal(t, outhook.FilterStats{FilteredOut: 4, Errors: 2}, c.FilterStats())
	require.Equal(t, 4.0, mp.sum("outhook.filter.filtered_out", event), "the counter agrees with FilterStats")
	require.Equal(t, 2.0, mp.sum("outhook.filter.errors", event), "the counter agrees with FilterStats")
	for _, m := range mp.all() {
		if m.name == "outhook.filter.filtered_out" || m.name == "outhook.filter.errors" {
			// The event only: a subscription ID would make one series
			// per subscription.
			require.Equal(t, []attribute.KeyValue{event}, m.attrs.ToSlice(), "attributes of %s", m.name)
		}
	}
}

// opaqueQueue hides every optional interface of the queue it wraps.
type opaqueQueue struct{ queue.Queue }

func TestTelemetryQueueGaugesNeedStats(t *testing.T) {
	mp := newFakeMeterProvider()
	q, err := memqueue.New(&memqueue.Config{Logger: quiet})
	require.NoError(t, err)
	c, err := outhook.NewClient(&outhook.Config{Queue: opaqueQueue{q}, Logger: quiet, MeterProvider: mp})
	require.NoError(t, err)
	require.Zero(t, mp.registered(), "a queue without queue.StatsReporter reports no gauges")
	require.NoError(t, c.Stop(context.Background()))
}

// BenchmarkEmitToDeliveryTelemetry is BenchmarkEmitToDelivery with the
// OpenTelemetry API's noop providers configured: the cost of the
// instrumentation itself, without an SDK's.
func BenchmarkEmitToDeliveryTelemetry(b *testing.B) {
	benchEmitToDelivery(b, &outhook.Config{MeterProvider: metricnoop.NewMeterProvider(), TracerProvider: tracenoop.NewTracerProvider()})
}
