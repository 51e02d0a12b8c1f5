package outhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/outhook/outhook/internal/ident"
	"github.com/outhook/outhook/memqueue"
	"github.com/outhook/outhook/queue"
)

// deliveryGroup is the worker group that makes delivery attempts.
const deliveryGroup = "outhook.deliveries"

// Job kinds.
const (
	kindHook     = "hook"
	kindDelivery = "delivery"
)

// Config configures a Client. The zero Config is valid: every field has a
// documented default.
type Config struct {
	// Registry holds the integration events the client routes. Events may
	// be added to it before or after Start. Nil means a new empty registry,
	// returned by Client.Registry.
	Registry *EventRegistry
	// Deliverers are the deliverers subscriptions may choose, by ID.
	Deliverers []Deliverer
	// Store keeps subscriptions and deliveries. Nil means a new MemoryStore.
	Store Store
	// Queue runs the work. Nil means a new in-memory queue with default
	// settings (see package memqueue). The client starts and stops it.
	Queue queue.Queue
	// DeliveryRetry schedules the retries of failed delivery attempts. Its
	// zero value means DeliverySchedule, with Retry-After capped at one hour.
	DeliveryRetry RetryPolicy
	// HandlerRetry schedules the retries of failed OnHook handlers and
	// event transforms. Its zero value means HandlerSchedule.
	HandlerRetry RetryPolicy
	// DeliveryTimeout bounds one delivery attempt. Zero means 30 seconds.
	// Queue backends that lease jobs keep a delivery's lease longer than
	// this, so that one delivery is never in flight twice.
	DeliveryTimeout time.Duration
	// HandlerTimeout bounds one run of an OnHook handler, and of an
	// event's transform and routing. Zero means one minute.
	HandlerTimeout time.Duration
	// DisableAfterFailingFor disables a subscription whose deliveries have
	// been failing for this long: a delivery fails for good at least this
	// long after the first delivery that failed since the last success.
	// Zero means DefaultDisableAfterFailingFor (5 days, as Svix);
	// negative, never. See Endpoint health in the package documentation.
	DisableAfterFailingFor time.Duration
	// DisableAfterFailures disables a subscription after this many of its
	// deliveries in a row failed for good (each delivery counts once,
	// whatever its number of attempts). Zero, the default, means never.
	DisableAfterFailures int
	// FailingAttemptsThreshold is the number of failed attempts in a row
	// of one delivery after which the client emits EventDeliveryFailing,
	// once, while the delivery is still being retried. Zero means
	// DefaultFailingAttemptsThreshold (3); negative, never.
	FailingAttemptsThreshold int
	// MaxInFlightPerSubscription caps the attempts in progress at once to
	// each subscription that sets no DeliveryLimits.MaxInFlight of its own,
	// in this process. Zero, the default, means no cap. See Rate limits and
	// fairness in the package documentation.
	MaxInFlightPerSubscription int
	// FailingMaxInFlight caps the attempts in progress at once to a
	// subscription whose destination is failing: its latest attempt in this
	// process failed and may be retried, or its latest delivery failed for
	// good. A dead or hanging destination then holds at most this many of
	// the queue's workers, and the others go on delivering to everyone
	// else. Zero means DefaultFailingMaxInFlight (2); negative, no cap.
	FailingMaxInFlight int
	// OrderingSettle is how long a delivery with an ordering key waits
	// after its event was emitted before it takes its turn (see
	// EventDefinition.OrderingKey), so that the events emitted just before
	// it, which may still be routing on another worker or node, are
	// recorded first. Events are delivered in emit order when each is
	// routed within this time of its emit. Zero means
	// DefaultOrderingSettle (1 s); negative, no wait. Deliveries without an
	// ordering key never wait.
	OrderingSettle time.Duration
	// Logger receives the client's logs. Nil means slog.Default(). Logs
	// carry the IDs of the delivery, event, subscription and message they
	// concern, never payloads, configurations or secrets.
	Logger *slog.Logger
	// MeterProvider receives the client's OpenTelemetry metrics (see
	// Observability in the package documentation). Nil means none are
	// recorded, at no cost.
	MeterProvider metric.MeterProvider
	// TracerProvider receives the client's OpenTelemetry spans: one per
	// EmitHook with listeners, one per routing run of an integration
	// event, and one per delivery attempt, whose context the Deliverer
	// receives. Queue jobs carry the trace context across the queue (and
	// across processes, on a shared queue), so the three make one trace
	// and OnHook handlers run in the emit span's context. Nil means no
	// spans, and no trace context in jobs, at no cost.
	TracerProvider trace.TracerProvider
	// Propagator writes the trace context into queue jobs and reads it
	// back (see TracerProvider); it is used only with a TracerProvider.
	// Nil means propagation.TraceContext{}: the W3C traceparent and
	// tracestate. Pass otel.GetTextMapPropagator() to use the
	// application's, with baggage for example.
	Propagator propagation.TextMapPropagator
}

// Client routes emitted hooks to their listeners and integration events to
// their subscriptions, and delivers them. Create one with NewClient, start it
// with Start and stop it with Stop. A Client is safe for concurrent use.
type Client struct {
	registry        *EventRegistry
	store           Store
	queue           queue.Queue
	deliverers      map[string]Deliverer
	secrets         map[string]*secretTree // by deliverer ID: the secret fields of its config
	deliveryRetry   RetryPolicy
	handlerRetry    RetryPolicy
	deliveryTimeout time.Duration
	handlerTimeout  time.Duration
	log             *slog.Logger
	validator       *payloadValidator
	errorTexts      textCache // shares the texts of failed attempts
	tel             telemetry // OpenTelemetry instruments; the zero value records nothing
	health          healthPolicy
	limits          *limiters // rate limits and in-flight caps, per subscription
	orderingSettle  time.Duration

	// filters holds compiled CEL filters and the filter counters; its zero
	// value is ready to use.
	filters filterEngine

	closed       atomic.Bool
	broadcastSeq atomic.Uint64
	watchToken   uint64 // of the registry watcher, removed by Stop

	mu     sync.Mutex                 // serializes route changes
	routes atomic.Pointer[routeTable] // read without locks by EmitHook
	groups map[string]groupInfo       // by queue group name
}

// groupInfo describes a worker group: the hook it listens to and the name
// its listener gave it.
type groupInfo struct {
	hookID string
	name   string
}

// routeTable maps hook IDs to the worker groups that listen to them. It is
// replaced, never modified, so EmitHook reads it without locking.
type routeTable struct {
	hooks map[string]*hookRoute
}

type hookRoute struct {
	id     string
	typ    reflect.Type
	groups []string
}

// NewClient returns a client configured by cfg. A nil cfg means defaults.
func NewClient(cfg *Config) (*Client, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	c := &Client{
		registry:        cfg.Registry,
		store:           cfg.Store,
		queue:           cfg.Queue,
		deliverers:      map[string]Deliverer{},
		secrets:         map[string]*secretTree{},
		deliveryRetry:   cfg.DeliveryRetry,
		handlerRetry:    cfg.HandlerRetry,
		deliveryTimeout: cfg.DeliveryTimeout,
		handlerTimeout:  cfg.HandlerTimeout,
		log:             cfg.Logger,
		validator:       newPayloadValidator(),
		groups:          map[string]groupInfo{},
	}
	if c.deliveryTimeout < 0 {
		return nil, fmt.Errorf("outhook: Config.DeliveryTimeout must not be negative, got %s", c.deliveryTimeout)
	}
	if c.deliveryTimeout == 0 {
		c.deliveryTimeout = 30 * time.Second
	}
	if c.handlerTimeout < 0 {
		return nil, fmt.Errorf("outhook: Config.HandlerTimeout must not be negative, got %s", c.handlerTimeout)
	}
	if c.handlerTimeout == 0 {
		c.handlerTimeout = time.Minute
	}
	if err := c.deliveryRetry.validate("DeliveryRetry"); err != nil {
		return nil, err
	}
	if err := c.handlerRetry.validate("HandlerRetry"); err != nil {
		return nil, err
	}
	health, err := newHealthPolicy(cfg)
	if err != nil {
		return nil, err
	}
	c.health = health
	if c.limits, err = newLimiters(cfg); err != nil {
		return nil, err
	}
	switch c.orderingSettle = cfg.OrderingSettle; {
	case c.orderingSettle == 0:
		c.orderingSettle = DefaultOrderingSettle
	case c.orderingSettle < 0:
		c.orderingSettle = 0
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.registry == nil {
		c.registry = NewEventRegistry()
	}
	if err := registerOperationalEvents(c.registry); err != nil {
		return nil, err
	}
	if c.store == nil {
		c.store = NewMemoryStore(nil)
	}
	tel, err := newTelemetry(cfg.MeterProvider, cfg.TracerProvider, cfg.Propagator)
	if err != nil {
		// The providers return working instruments with their errors:
		// telemetry must not stop the application.
		c.log.Warn("outhook: creating OpenTelemetry instruments", "error", err)
	}
	c.tel = tel
	for i, d := range cfg.Deliverers {
		if d == nil {
			return nil, fmt.Errorf("outhook: Config.Deliverers[%d] is nil", i)
		}
		id := d.ID()
		if why := ident.Check(id); why != "" {
			return nil, &IDError{Kind: "deliverer", ID: id, Reason: why}
		}
		if _, dup := c.deliverers[id]; dup {
			return nil, fmt.Errorf("%w: two deliverers have ID %q", ErrDuplicate, id)
		}
		c.deliverers[id] = d
		secrets, err := secretsOf(d.ConfigSchema())
		if err != nil {
			return nil, fmt.Errorf("outhook: deliverer %q: %w", id, err)
		}
		c.secrets[id] = secrets
	}
	if c.queue == nil {
		q, err := memqueue.New(&memqueue.Config{Logger: c.log})
		if err != nil {
			return nil, err
		}
		c.queue = q
	}
	c.routes.Store(&routeTable{hooks: map[string]*hookRoute{}})
	if err := c.queue.Subscribe(deliveryGroup, c.handleDelivery, queue.GroupOptions{Timeout: c.deliveryTimeout}); err != nil {
		return nil, fmt.Errorf("outhook: subscribe delivery worker: %w", err)
	}
	c.watchToken = c.registry.watch(c.addEvent)
	if err := c.tel.observeQueue(cfg.MeterProvider, c.queue); err != nil {
		c.log.Warn("outhook: registering the OpenTelemetry queue gauges", "error", err)
	}
	return c, nil
}

// Registry returns the registry of the client's integration events.
func (c *Client) Registry() *EventRegistry { return c.registry }

// Store returns the client's store.
func (c *Client) Store() Store { return c.store }

// Start starts processing and returns at once. Events emitted before Start
// wait in the queue.
func (c *Client) Start(ctx context.Context) error {
	if c.closed.Load() {
		return ErrClosed
	}
	return closedErr(c.queue.Start(ctx))
}

// Stop stops the client: EmitHook and other calls return ErrClosed from now
// on (except from the client's own handlers while the queue drains), and
// Stop waits, bounded by ctx, for the work in progress (see the queue's Stop
// for what is drained). It returns ctx.Err() when ctx ends first. Calling
// Stop more than once is safe.
func (c *Client) Stop(ctx context.Context) error {
	if !c.closed.Swap(true) {
		c.registry.unwatch(c.watchToken)
		if err := c.tel.close(); err != nil {
			c.log.Warn("outhook: unregistering the OpenTelemetry queue gauges", "error", err)
		}
	}
	err := c.queue.Stop(ctx)
	if errors.Is(err, queue.ErrClosed) {
		return nil
	}
	return err
}

// WaitIdle blocks until the client has no work ready, delayed or running,
// or ctx is done. It needs a queue that implements queue.Idler, as the
// in-memory queue does. Tests use it instead of sleeping.
func (c *Client) WaitIdle(ctx context.Context) error {
	idler, ok := c.queue.(queue.Idler)
	if !ok {
		return fmt.Errorf("outhook: WaitIdle: queue %T cannot report idleness", c.queue)
	}
	return closedErr(idler.WaitIdle(ctx))
}

// closedErr turns the queue's ErrClosed into the client's.
func closedErr(err error) error {
	if errors.Is(err, queue.ErrClosed) {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return err
}

// addEvent subscribes the integration worker group of a newly registered
// event. It is the registry's watcher and runs with the registry locked.
func (c *Client) addEvent(rec *eventRecord) {
	h := func(ctx context.Context, job *queue.Job) ([]*queue.Job, error) {
		next, err := c.routeEvent(ctx, rec, job)
		if err == nil {
			c.tel.eventRouted(ctx, rec.ID, len(next))
		}
		return next, err
	}
	err := c.listen(rec.HookID, rec.typ, "integration."+rec.ID, queue.GroupOptions{}, h)
	if err != nil && !errors.Is(err, ErrClosed) {
		// The registry has already checked the hook's type and the event's
		// uniqueness, so this is the queue refusing the group.
		c.log.Error("outhook: cannot subscribe integration event", "event", rec.ID, "error", err)
	}
}

// queueGroup is the queue's name for a worker group of a hook: group names
// are unique per hook, as in River or Watermill, not per client.
func queueGroup(hookID, group string) string { return hookID + "/" + group }

// listen adds a worker group to a hook's route and subscribes its handler.
func (c *Client) listen(hookID string, typ reflect.Type, group string, opts queue.GroupOptions, run func(context.Context, *queue.Job) ([]*queue.Job, error)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return ErrClosed
	}
	old := c.routes.Load()
	if r := old.hooks[hookID]; r != nil && r.typ != typ {
		return fmt.Errorf("outhook: hook %q carries %v, not %v", hookID, r.typ, typ)
	}
	qg := queueGroup(hookID, group)
	if _, dup := c.groups[qg]; dup {
		return fmt.Errorf("%w: worker group %q already listens to hook %q", ErrDuplicate, group, hookID)
	}
	opts.Timeout = c.handlerTimeout
	if err := c.queue.Subscribe(qg, c.hookHandler(hookID, group, run), opts); err != nil {
		return closedErr(fmt.Errorf("outhook: subscribe worker group %q: %w", group, err))
	}
	c.groups[qg] = groupInfo{hookID: hookID, name: group}
	next := &routeTable{hooks: make(map[string]*hookRoute, len(old.hooks)+1)}
	for id, r := range old.hooks {
		next.hooks[id] = r
	}
	r := &hookRoute{id: hookID, typ: typ}
	if prev := old.hooks[hookID]; prev != nil {
		r.groups = slices.Clone(prev.groups)
	}
	r.groups = append(r.groups, qg)
	next.hooks[hookID] = r
	c.routes.Store(next)
	return nil
}

// enqueueHook queues one job per worker group listening to a hook. The jobs
// share the message ID and the payload bytes.
func (c *Client) enqueueHook(ctx context.Context, r *hookRoute, raw []byte, enq enqueueFunc) error {
	if enq == nil {
		enq = c.queue.Enqueue
	}
	now := time.Now()
	msgID := ident.New("msg_", now)
	c.tel.setMessageID(ctx, msgID)
	// The emit span's context, for the handlers to continue; nil, adding
	// nothing to the jobs, when tracing is off. The jobs share it.
	tr := c.tel.jobTrace(ctx)
	var err error
	if len(r.groups) == 1 {
		// The common case, in one allocation: the job and the slice that
		// points at it.
		one := &struct {
			job  queue.Job
			ptrs [1]*queue.Job
		}{job: queue.Job{ID: msgID, Group: r.groups[0], Kind: kindHook, Payload: raw, CreatedAt: now, Trace: tr}}
		one.ptrs[0] = &one.job
		err = enq(ctx, one.ptrs[:]...)
	} else {
		jobs := make([]queue.Job, len(r.groups))
		ptrs := make([]*queue.Job, len(r.groups))
		for i, g := range r.groups {
			jobs[i] = queue.Job{ID: msgID, Group: g, Kind: kindHook, Payload: raw, CreatedAt: now, Trace: tr}
			ptrs[i] = &jobs[i]
		}
		err = enq(ctx, ptrs...)
	}
	if err != nil {
		if errors.Is(err, queue.ErrClosed) {
			return ErrClosed
		}
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return ctxErr
		}
		return fmt.Errorf("outhook: emit hook %q: %w", r.id, err)
	}
	return nil
}

// hookHandler adapts a hook job handler to the queue: a run is bounded by
// HandlerTimeout, and a failed run is retried on the HandlerRetry schedule
// and dies when it is exhausted.
func (c *Client) hookHandler(hookID, group string, run func(context.Context, *queue.Job) ([]*queue.Job, error)) queue.Handler {
	return func(queueCtx context.Context, job *queue.Job) queue.Result {
		// The handler, and the routing run of an integration event,
		// continue the trace of the EmitHook that queued the job.
		queueCtx = c.tel.extractJob(queueCtx, job)
		ctx, cancel := context.WithTimeout(queueCtx, c.handlerTimeout)
		next, err := c.safeRun(ctx, run, job)
		cancel()
		if err == nil {
			return queue.Result{Next: next}
		}
		if queueCtx.Err() != nil {
			// Cut short by shutdown: not a failure of the handler.
			return queue.Result{Disposition: queue.Retry, Err: queueCtx.Err()}
		}
		if pe := (*poisonError)(nil); errors.As(err, &pe) {
			c.log.Error("outhook: hook job cannot be processed, giving up at once", "hook", hookID, "group", group,
				"message", job.ID, "attempt", job.Attempt, "error", err)
			return queue.Result{Disposition: queue.Dead, Err: err}
		}
		at, ok := c.handlerRetry.retryAt(time.Now(), job.Attempt, 0, HandlerSchedule)
		if !ok {
			c.log.Error("outhook: hook handler failed, giving up", "hook", hookID, "group", group,
				"message", job.ID, "attempt", job.Attempt, "error", err)
			return queue.Result{Disposition: queue.Dead, Err: err}
		}
		c.log.Warn("outhook: hook handler failed, will retry", "hook", hookID, "group", group,
			"message", job.ID, "attempt", job.Attempt, "retry_at", at, "error", err)
		return queue.Result{Disposition: queue.Retry, RunAt: at, Err: err}
	}
}

// poisonError marks a job that can never succeed however often it runs:
// its payload does not decode into the hook's type (an emitter of another
// version, a damaged row). Such a job dies at once instead of being retried
// on the handler schedule.
type poisonError struct{ err error }

func (e *poisonError) Error() string { return e.err.Error() }
func (e *poisonError) Unwrap() error { return e.err }

// poison marks err as the error of a job that cannot succeed.
func poison(err error) error { return &poisonError{err} }

// safeRun runs a hook handler, turning a panic into an error.
func (c *Client) safeRun(ctx context.Context, run func(context.Context, *queue.Job) ([]*queue.Job, error), job *queue.Job) (next []*queue.Job, err error) {
	defer func() {
		if r := recover(); r != nil {
			next, err = nil, fmt.Errorf("outhook: handler panicked: %v", r)
		}
	}()
	return run(ctx, job)
}

// FailedEvent is a hook event whose handler or transform failed on every
// attempt its retry policy allowed.
type FailedEvent struct {
	MessageID string
	HookID    string
	// Group is the worker group whose handler failed; for an integration
	// event it is "integration." + the event ID.
	Group     string
	Payload   []byte
	EmittedAt time.Time
	Attempts  int
	Errors    []queue.AttemptError
}

// FailedEvents returns up to limit events that no retry could process, most
// recent first.
func (c *Client) FailedEvents(ctx context.Context, limit int) ([]FailedEvent, error) {
	jobs, err := c.queue.Dead(ctx, limit)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]FailedEvent, 0, len(jobs))
	for _, j := range jobs {
		if j.Kind != kindHook {
			continue
		}
		g := c.groups[j.Group]
		out = append(out, FailedEvent{
			MessageID: j.ID, HookID: g.hookID, Group: g.name, Payload: j.Payload,
			EmittedAt: j.CreatedAt, Attempts: j.Attempt, Errors: slices.Clone(j.Errors),
		})
	}
	return out, nil
}
