package outhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/memqueue"
	"github.com/outhook/outhook/outhooktest"
	"github.com/outhook/outhook/queue"
)

// jobRun is what a handler was given, or what a handler's Result admitted
// as a Next job: the job's kind ("hook" or "delivery") and its Trace.
type jobRun struct {
	kind  string
	next  bool // a Next job of a Result, not a run
	trace map[string]string
}

// traceQueue is a memqueue that records the Trace of every job its
// handlers run and admit.
type traceQueue struct {
	*memqueue.Queue

	mu   sync.Mutex
	runs []jobRun
}

func newTraceQueue(t *testing.T) *traceQueue {
	t.Helper()
	q, err := memqueue.New(&memqueue.Config{Logger: quiet})
	require.NoError(t, err)
	return &traceQueue{Queue: q}
}

func (q *traceQueue) Subscribe(group string, h queue.Handler, opts queue.GroupOptions) error {
	return q.Queue.Subscribe(group, func(ctx context.Context, j *queue.Job) queue.Result {
		q.record(jobRun{kind: j.Kind, trace: maps.Clone(j.Trace)})
		res := h(ctx, j)
		for _, n := range res.Next {
			q.record(jobRun{kind: n.Kind, next: true, trace: maps.Clone(n.Trace)})
		}
		return res
	}, opts)
}

func (q *traceQueue) record(r jobRun) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.runs = append(q.runs, r)
}

func (q *traceQueue) all() []jobRun {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.runs)
}

// traceparent is the W3C traceparent of a sampled span context.
func traceparent(sc trace.SpanContext) string {
	return fmt.Sprintf("00-%s-%s-01", sc.TraceID(), sc.SpanID())
}

// requireChildOf asserts that child's parent is the span parent.
func requireChildOf(t *testing.T, child, parent *fakeSpan) {
	t.Helper()
	require.True(t, child.parent.IsValid(), "%s has no parent", child.name)
	require.Equal(t, parent.sc.TraceID(), child.parent.TraceID(), "%s is not in the trace of %s", child.name, parent.name)
	require.Equal(t, parent.sc.SpanID(), child.parent.SpanID(), "%s is not a child of %s", child.name, parent.name)
}

func TestTelemetryTraceAcrossQueue(t *testing.T) {
	tp := &fakeTracerProvider{}
	q := newTraceQueue(t)
	spy := &spyDeliverer{codes: []int{503, 200}}
	c := outhooktest.NewClient(t, &outhook.Config{
		Registry:       newIncidentRegistry(t),
		Deliverers:     []outhook.Deliverer{spy},
		Queue:          q,
		TracerProvider: tp,
		DeliveryRetry:  outhooktest.NoDelay(3),
	})
	subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}, DelivererID: "spy"})
	var (
		mu        sync.Mutex
		inHandler trace.SpanContext
	)
	require.NoError(t, outhook.OnHook(c, incidentCreated, func(ctx context.Context, _ IncidentCreated) error {
		mu.Lock()
		defer mu.Unlock()
		inHandler = trace.SpanContextFromContext(ctx)
		return nil
	}, outhook.WorkQueue("audit")))

	// The application's request emits the event.
	ctx, request := tp.Tracer("app").Start(context.Background(), "request")
	require.NoError(t, outhook.EmitHook(ctx, c, incidentCreated, sampleIncident("inc-1")))
	request.End()
	outhooktest.WaitIdle(t, c)

	app := request.(*fakeSpan)
	emits := tp.named("outhook.emit " + incidentCreated.ID())
	require.Len(t, emits, 1)
	routes := tp.named("outhook.route " + createdEvent)
	require.Len(t, routes, 1, "one routing run")
	attempts := tp.named("outhook.deliver spy")
	require.Len(t, attempts, 2, "a failed attempt and its retry")
	emitSpan, route := emits[0], routes[0]

	// request → emit → route → each attempt: one trace.
	requireChildOf(t, emitSpan, app)
	requireChildOf(t, route, emitSpan)
	require.True(t, route.parent.IsRemote(), "the routing run's parent comes from its job")
	for _, a := range attempts {
		requireChildOf(t, a, route)
		require.True(t, a.parent.IsRemote(), "the attempt's parent comes from its job")
		require.Equal(t, app.sc.TraceID(), a.sc.TraceID())
	}

	require.Equal(t, trace.SpanKindConsumer, route.kind)
	require.True(t, route.ended)
	require.Equal(t, codes.Unset, route.status)
	require.Equal(t, createdEvent, route.attr("outhook.event.id"))
	require.Equal(t, incidentCreated.ID(), route.attr("outhook.hook.id"))
	require.Equal(t, emitSpan.attr("outhook.message.id"), route.attr("outhook.message.id"))
	require.NotNil(t, route.attr("outhook.message.id"))
	require.Equal(t, int64(1), route.attr("outhook.route.deliveries"))

	// The OnHook handler runs in the emit span's context.
	mu.Lock()
	got := inHandler
	mu.Unlock()
	require.Equal(t, emitSpan.sc.TraceID(), got.TraceID())
	require.Equal(t, emitSpan.sc.SpanID(), got.SpanID())

	// What the jobs carried: W3C trace context, and nothing else.
	var hooks, deliveries int
	for _, r := range q.all() {
		switch r.kind {
		case "hook":
			hooks++
			require.Equal(t, map[string]string{"traceparent": traceparent(emitSpan.sc)}, r.trace)
		case "delivery":
			deliveries++
			require.Equal(t, map[string]string{"traceparent": traceparent(route.sc)}, r.trace)
		}
	}
	require.Equal(t, 2, hooks, "the audit group's job and the integration event's")
	require.Equal(t, 3, deliveries, "the Next job, then two runs")
}

// TestTelemetryTraceOff: without a TracerProvider, or with a no-op one,
// no job carries a Trace, even when the emitting code runs in a span.
func TestTelemetryTraceOff(t *testing.T) {
	for name, cfg := range map[string]outhook.Config{
		"nil providers":  {},
		"noop providers": {MeterProvider: metricnoop.NewMeterProvider(), TracerProvider: tracenoop.NewTracerProvider()},
	} {
		t.Run(name, func(t *testing.T) {
			q := newTraceQueue(t)
			cfg.Registry = newIncidentRegistry(t)
			cfg.Deliverers = []outhook.Deliverer{&spyDeliverer{codes: []int{503}}}
			cfg.Queue = q
			cfg.DeliveryRetry = outhooktest.NoDelay(3)
			c := outhooktest.NewClient(t, &cfg)
			subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}, DelivererID: "spy"})
			require.NoError(t, outhook.OnHook(c, incidentCreated, func(context.Context, IncidentCreated) error { return nil },
				outhook.WorkQueue("audit")))
			ctx := context.Background()
			if cfg.TracerProvider == nil {
				// An application span the client has no tracer to continue.
				ctx, _ = (&fakeTracerProvider{}).Tracer("app").Start(ctx, "request")
			}
			require.NoError(t, outhook.EmitHook(ctx, c, incidentCreated, sampleIncident("inc-1")))
			outhooktest.WaitIdle(t, c)

			runs := q.all()
			kinds := map[string]int{}
			for _, r := range runs {
				kinds[r.kind]++
				require.Nil(t, r.trace, "a %s job carries a trace with tracing off", r.kind)
			}
			require.Equal(t, map[string]int{"hook": 2, "delivery": 3}, kinds)
		})
	}
}

// ctxDeliverer succeeds, handing each attempt's context to see.
type ctxDeliverer struct{ see func(context.Context) }

func (d *ctxDeliverer) ID() string                           { return "ctx" }
func (d *ctxDeliverer) ConfigSchema() json.RawMessage        { return json.RawMessage(`{"type":"object"}`) }
func (d *ctxDeliverer) ValidateConfig(json.RawMessage) error { return nil }
func (d *ctxDeliverer) Deliver(ctx context.Context, _ *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	d.see(ctx)
	return outhook.DeliveryResult{}, nil
}

// TestTelemetryTracePropagator: Config.Propagator decides what jobs carry;
// by default, W3C trace context without baggage.
func TestTelemetryTracePropagator(t *testing.T) {
	member, err := baggage.NewMember("tenant", "acme")
	require.NoError(t, err)
	bag, err := baggage.New(member)
	require.NoError(t, err)

	for name, tc := range map[string]struct {
		prop   propagation.TextMapPropagator
		tenant string // what the deliverer and the handler see
	}{
		"default":      {nil, ""},
		"with baggage": {propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}), "acme"},
	} {
		t.Run(name, func(t *testing.T) {
			tp := &fakeTracerProvider{}
			var (
				mu   sync.Mutex
				seen []string
			)
			see := func(ctx context.Context) {
				mu.Lock()
				defer mu.Unlock()
				seen = append(seen, baggage.FromContext(ctx).Member("tenant").Value())
			}
			c := outhooktest.NewClient(t, &outhook.Config{
				Registry:       newIncidentRegistry(t),
				Deliverers:     []outhook.Deliverer{&ctxDeliverer{see: see}},
				TracerProvider: tp,
				Propagator:     tc.prop,
			})
			subscribe(t, c, outhook.Subscription{Events: []string{createdEvent}, DelivererID: "ctx"})
			require.NoError(t, outhook.OnHook(c, incidentCreated, func(ctx context.Context, _ IncidentCreated) error {
				see(ctx)
				return nil
			}, outhook.WorkQueue("audit")))
			ctx := baggage.ContextWithBaggage(context.Background(), bag)
			require.NoError(t, outhook.EmitHook(ctx, c, incidentCreated, sampleIncident("inc-1")))
			outhooktest.WaitIdle(t, c)

			mu.Lock()
			defer mu.Unlock()
			require.Equal(t, []string{tc.tenant, tc.tenant}, seen, "the handler's and the deliverer's")
			attempts := tp.named("outhook.deliver ctx")
			require.Len(t, attempts, 1)
			requireChildOf(t, attempts[0], tp.named("outhook.route " + createdEvent)[0])
		})
	}
}

// panickyStore panics when routing looks for subscriptions.
type panickyStore struct{ outhook.Store }

func (panickyStore) MatchSubscriptions(context.Context, string) ([]*outhook.Subscription, error) {
	panic("store exploded")
}

// TestTelemetryRouteSpanOnFailure: a routing run that panics ends its
// span as failed, and the panic still fails the run.
func TestTelemetryRouteSpanOnFailure(t *testing.T) {
	tp := &fakeTracerProvider{}
	c := outhooktest.NewClient(t, &outhook.Config{
		Registry:       newIncidentRegistry(t),
		Store:          panickyStore{outhook.NewMemoryStore(nil)},
		TracerProvider: tp,
		HandlerRetry:   outhooktest.NoDelay(2),
	})
	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	outhooktest.WaitIdle(t, c)

	routes := tp.named("outhook.route " + createdEvent)
	require.Len(t, routes, 2, "one span per run")
	for _, r := range routes {
		require.True(t, r.ended)
		require.Equal(t, codes.Error, r.status)
		require.Contains(t, r.statusDesc, "store exploded")
		require.Nil(t, r.attr("outhook.route.deliveries"))
	}
	failed, err := c.FailedEvents(context.Background(), 10)
	require.NoError(t, err)
	require.Len(t, failed, 1)
	require.Contains(t, failed[0].Errors[0].Error, "panicked: store exploded")
}
