package outhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/outhook/outhook/internal/ident"
	"github.com/outhook/outhook/queue"
)

// Hook names something that happens in an application and the type of the
// payload that describes it. Hooks are values: define them once, usually as
// package-level variables, and share them between the code that emits them
// and the code that listens.
//
//	var IncidentCreated = outhook.MustNewHook[IncidentCreatedPayload]("incident.created")
//
// The zero Hook is not usable; EmitHook and OnHook refuse it.
type Hook[T any] struct {
	id string
}

// NewHook returns the hook with the given ID. IDs are dot-separated segments
// of letters, digits, '_' and '-', such as "incident.created"; any other ID
// is refused with an *IDError naming it.
func NewHook[T any](id string) (Hook[T], error) {
	if why := ident.Check(id); why != "" {
		return Hook[T]{}, &IDError{Kind: "hook", ID: id, Reason: why}
	}
	return Hook[T]{id: id}, nil
}

// MustNewHook is NewHook for package-level literals: it panics when id is
// not valid.
func MustNewHook[T any](id string) Hook[T] {
	h, err := NewHook[T](id)
	if err != nil {
		panic(err)
	}
	return h
}

// ID returns the hook's ID.
func (h Hook[T]) ID() string { return h.id }

// String returns the hook's ID.
func (h Hook[T]) String() string { return h.id }

// valid reports an error for the zero Hook.
func (h Hook[T]) check() error {
	if h.id == "" {
		return &IDError{Kind: "hook", Reason: "is empty (zero Hook; create hooks with NewHook)"}
	}
	return nil
}

// EmitHook announces that what h names has happened. It validates payload
// against the `validate` tags of T (an error matching ErrInvalidPayload names
// every failing field, and nothing is queued), encodes it to JSON once, and
// queues one job for every worker group listening to h: each OnHook listener
// and each integration event registered for h.
//
// When nothing listens to h, EmitHook returns nil at once without validating
// or encoding: emitting is free until somebody cares. Validation therefore
// applies from the first listener on; test emitting code with a listener
// (outhooktest does) to see validation errors.
//
// EmitHook returns once the jobs are queued; delivery happens in the
// background. A ctx that is already done queues nothing and returns its
// error. When the queue is full, EmitHook waits for room until ctx is done
// (see memqueue). After Stop it returns ErrClosed.
func EmitHook[T any](ctx context.Context, c *Client, h Hook[T], payload T) error {
	return emitHook(ctx, c, h, payload, nil)
}

// EmitHookTx is EmitHook inside a transaction of the application's own
// database: the event's jobs are written by tx, so they exist if and only if
// tx commits. A rolled-back transaction is never delivered; a committed one
// is delivered even if the process dies right after the commit. It returns
// once the jobs are written; they become visible to the workers at commit.
//
// It needs a queue that implements queue.TxEnqueuer for the type of tx, as
// the Postgres backend does for pgx.Tx (package postgres); with any other
// queue it returns an error and writes nothing. Validation, the no-listener
// shortcut and errors are those of EmitHook.
func EmitHookTx[T, TTx any](ctx context.Context, c *Client, tx TTx, h Hook[T], payload T) error {
	if c == nil {
		return errors.New("outhook: EmitHookTx: client is nil")
	}
	txq, ok := c.queue.(queue.TxEnqueuer[TTx])
	if !ok {
		return fmt.Errorf("outhook: EmitHookTx: queue %T cannot enqueue in a %T transaction", c.queue, tx)
	}
	return emitHook(ctx, c, h, payload, func(ctx context.Context, jobs ...*queue.Job) error {
		return txq.EnqueueTx(ctx, tx, jobs...)
	})
}

// enqueueFunc admits jobs; nil means the client's queue's Enqueue.
type enqueueFunc func(ctx context.Context, jobs ...*queue.Job) error

func emitHook[T any](ctx context.Context, c *Client, h Hook[T], payload T, enq enqueueFunc) error {
	if err := h.check(); err != nil {
		return err
	}
	if c == nil {
		return errors.New("outhook: EmitHook: client is nil")
	}
	if c.closed.Load() && ctx.Value(handlerKey{}) != c {
		// Handlers of this client may still emit while Stop drains the
		// queue; the queue decides whether it still takes their jobs.
		return ErrClosed
	}
	route := c.routes.Load().hooks[h.id]
	if route == nil || len(route.groups) == 0 {
		return nil
	}
	if route.typ != reflect.TypeFor[T]() {
		return fmt.Errorf("outhook: hook %q carries %v, not %v", h.id, route.typ, reflect.TypeFor[T]())
	}
	return emit(ctx, c, route, payload, enq)
}

// emit validates, encodes and queues a payload. It is apart from EmitHook so
// that only emissions somebody listens to move the payload to the heap.
func emit[T any](ctx context.Context, c *Client, route *hookRoute, payload T, enq enqueueFunc) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Validate and encode through one pointer: boxing the value twice
	// would cost two copies and two allocations.
	p := &payload
	if c.tel.tracer != nil || c.tel.m != nil {
		return c.emitObserved(ctx, route, p, enq)
	}
	return c.emitPayload(ctx, route, p, enq)
}

// emitPayload validates, encodes and queues the payload p points to.
func (c *Client) emitPayload(ctx context.Context, route *hookRoute, p any, enq enqueueFunc) error {
	if err := c.validator.validate(route.id, p); err != nil {
		return err
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("outhook: encode payload of hook %q: %w", route.id, err)
	}
	return c.enqueueHook(ctx, route, raw, enq)
}

// Mode says how the listeners of a hook share its events. Create one with
// WorkQueue or Broadcast.
type Mode struct {
	group     string
	broadcast bool
}

// WorkQueue is the mode in which each event is processed once by the named
// worker group, by exactly one of the instances that share the queue, and
// retried with backoff when the handler fails (see Config.HandlerRetry).
func WorkQueue(group string) Mode { return Mode{group: group} }

// Broadcast is the mode in which every instance sharing the queue runs the
// handler for every event, for work such as cache invalidation.
func Broadcast() Mode { return Mode{broadcast: true} }

// String describes the mode.
func (m Mode) String() string {
	if m.broadcast {
		return "broadcast"
	}
	return "work-queue(" + m.group + ")"
}

// handlerKey marks the contexts of OnHook handlers with their client.
type handlerKey struct{}

// HandlerFunc handles one event of a hook. A non-nil error fails this run;
// the event is retried according to Config.HandlerRetry.
type HandlerFunc[T any] func(ctx context.Context, payload T) error

// OnHook runs handler for every event emitted on h, in the given mode. It may
// be called before or after Start.
//
// The handler receives its own copy of the payload, decoded from the JSON
// that EmitHook encoded, so fields that JSON does not carry (json:"-",
// unexported fields) arrive empty. Its context ends after
// Config.HandlerTimeout.
//
// Work-queue group names follow the hook ID rules and are unique per hook:
// two hooks may each have a group "audit". The "integration" and
// "broadcast" prefixes are reserved.
func OnHook[T any](c *Client, h Hook[T], handler HandlerFunc[T], mode Mode) error {
	if err := h.check(); err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("outhook: OnHook(%q): client is nil", h.id)
	}
	if handler == nil {
		return fmt.Errorf("outhook: OnHook(%q): handler is nil", h.id)
	}
	group := mode.group
	if mode.broadcast {
		group = fmt.Sprintf("broadcast.%d", c.broadcastSeq.Add(1))
	} else {
		if why := ident.Check(group); why != "" {
			return &IDError{Kind: "worker group", ID: group, Reason: why}
		}
		for _, reserved := range []string{"integration", "broadcast"} {
			if first, _, _ := strings.Cut(group, "."); first == reserved {
				return &IDError{Kind: "worker group", ID: group, Reason: fmt.Sprintf("uses the reserved prefix %q", reserved)}
			}
		}
	}
	typ := reflect.TypeFor[T]()
	if err := c.registry.claimHook(h.id, typ); err != nil {
		return err
	}
	run := func(ctx context.Context, job *queue.Job) ([]*queue.Job, error) {
		var payload T
		if err := json.Unmarshal(job.Payload, &payload); err != nil {
			return nil, poison(fmt.Errorf("outhook: decode payload of hook %q: %w", h.id, err))
		}
		return nil, handler(context.WithValue(ctx, handlerKey{}, c), payload)
	}
	return c.listen(h.id, typ, group, queue.GroupOptions{Broadcast: mode.broadcast}, run)
}
