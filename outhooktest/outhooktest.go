// Package outhooktest helps test code that uses outhook: a recording fake
// Deliverer with scriptable outcomes, a retry policy without delays, and
// helpers that start a client, wait until it is idle and assert what was
// delivered, typed by payload.
//
//	fake := outhooktest.NewDeliverer("fake")
//	c := outhooktest.NewClient(t, &outhook.Config{Registry: reg, Deliverers: []outhook.Deliverer{fake}})
//	... create a subscription, emit ...
//	outhooktest.WaitIdle(t, c)
//	outhooktest.AssertDelivered(t, fake, "incident.incident.created", want)
package outhooktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/outhook/outhook"
)

// outcomeKind says what a scripted attempt does.
type outcomeKind int

const (
	succeed outcomeKind = iota
	failRetryable
	failPermanent
	doPanic
	block
)

// Outcome is what the fake deliverer does on one attempt. Build one with
// Succeed, FailRetryable, FailRetryAfter, FailPermanent, Panic or Block.
type Outcome struct {
	kind       outcomeKind
	err        error
	retryAfter time.Duration
	result     outhook.DeliveryResult
	panicValue any
	release    <-chan struct{} // ends a Block early
}

// Succeed is an attempt that succeeds.
func Succeed() Outcome {
	return Outcome{kind: succeed, result: outhook.DeliveryResult{StatusCode: 200}}
}

// SucceedWith is an attempt that succeeds with the given external ID.
func SucceedWith(externalID string) Outcome {
	return Outcome{kind: succeed, result: outhook.DeliveryResult{StatusCode: 200, ExternalID: externalID}}
}

// FailRetryable is an attempt that fails with err (a default error when
// nil) and may be retried.
func FailRetryable(err error) Outcome {
	return Outcome{kind: failRetryable, err: orDefault(err, "fake: retryable failure"), result: outhook.DeliveryResult{StatusCode: 503}}
}

// FailRetryAfter is FailRetryable with a request to wait d before retrying.
func FailRetryAfter(err error, d time.Duration) Outcome {
	o := FailRetryable(err)
	o.retryAfter = d
	o.result.StatusCode = 429
	return o
}

// FailPermanent is an attempt that fails with err (a default error when nil)
// and must not be retried.
func FailPermanent(err error) Outcome {
	return Outcome{kind: failPermanent, err: orDefault(err, "fake: permanent failure"), result: outhook.DeliveryResult{StatusCode: 400}}
}

// Panic is an attempt that panics with v.
func Panic(v any) Outcome { return Outcome{kind: doPanic, panicValue: v} }

// Block is an attempt that waits until its context is done and fails with
// the context's error, as a destination that never answers.
func Block() Outcome { return Outcome{kind: block} }

// BlockUntil is an attempt that waits until release is closed, and then
// fails with a retryable error, as a destination that answers 503 late;
// or until its context is done, and then fails with the context's error.
// Tests use it to hold deliveries in flight for as long as they need,
// whatever the machine's speed.
func BlockUntil(release <-chan struct{}) Outcome {
	return Outcome{kind: block, release: release, err: errors.New("fake: answered late"), result: outhook.DeliveryResult{StatusCode: 503}}
}

func orDefault(err error, msg string) error {
	if err == nil {
		return errors.New(msg)
	}
	return err
}

// String names the outcome.
func (o Outcome) String() string {
	return [...]string{"succeed", "fail-retryable", "fail-permanent", "panic", "block"}[o.kind]
}

// Call is one attempt the fake deliverer received.
type Call struct {
	Request outhook.DeliveryRequest
	Outcome Outcome
	// Err is what Deliver returned (nil on success; unset for a panic).
	Err error
}

// Succeeded reports whether the attempt succeeded.
func (c Call) Succeeded() bool { return c.Outcome.kind == succeed }

// Deliverer is a recording fake outhook.Deliverer. Each attempt takes the
// next scripted outcome, or the default outcome (Succeed unless changed with
// SetDefault) when the script is used up. Its configuration may be any JSON
// object. It is safe for concurrent use.
type Deliverer struct {
	id string

	mu      sync.Mutex
	script  []Outcome
	dflt    Outcome
	calls   []Call
	changed chan struct{} // closed and replaced on every call
}

var _ outhook.Deliverer = (*Deliverer)(nil)

// NewDeliverer returns a fake deliverer with the given ID that succeeds on
// every attempt until scripted otherwise.
func NewDeliverer(id string) *Deliverer {
	return &Deliverer{id: id, dflt: Succeed(), changed: make(chan struct{})}
}

// Script appends outcomes for the next attempts, in order, and returns d.
func (d *Deliverer) Script(outcomes ...Outcome) *Deliverer {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.script = append(d.script, outcomes...)
	return d
}

// SetDefault sets the outcome of attempts beyond the script.
func (d *Deliverer) SetDefault(o Outcome) *Deliverer {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dflt = o
	return d
}

// ID implements outhook.Deliverer.
func (d *Deliverer) ID() string { return d.id }

// ConfigSchema implements outhook.Deliverer: any JSON object.
func (d *Deliverer) ConfigSchema() json.RawMessage {
	return json.RawMessage(`{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object"}`)
}

// ValidateConfig implements outhook.Deliverer: the configuration must be
// empty or a JSON object.
func (d *Deliverer) ValidateConfig(config json.RawMessage) error {
	if len(config) == 0 || string(config) == "null" {
		return nil
	}
	var obj map[string]any
	if err := json.Unmarshal(config, &obj); err != nil {
		return &outhook.ConfigError{Deliverer: d.id, Err: fmt.Errorf("config must be a JSON object: %w", err)}
	}
	return nil
}

// Deliver implements outhook.Deliverer.
func (d *Deliverer) Deliver(ctx context.Context, req *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	d.mu.Lock()
	o := d.dflt
	if len(d.script) > 0 {
		o = d.script[0]
		d.script = d.script[1:]
	}
	call := Call{Request: *req, Outcome: o}
	switch o.kind {
	case failRetryable:
		call.Err = o.err
		if o.retryAfter > 0 {
			call.Err = outhook.RetryAfter(o.err, o.retryAfter)
		}
	case failPermanent:
		call.Err = outhook.Permanent(o.err)
	}
	d.record(call)
	d.mu.Unlock()

	switch o.kind {
	case doPanic:
		panic(o.panicValue)
	case block:
		select {
		case <-ctx.Done():
			return outhook.DeliveryResult{}, ctx.Err()
		case <-o.release: // a nil channel never is
			return o.result, o.err
		}
	}
	return o.result, call.Err
}

// record appends a call and wakes waiters; d.mu is held.
func (d *Deliverer) record(c Call) {
	d.calls = append(d.calls, c)
	close(d.changed)
	d.changed = make(chan struct{})
}

// Calls returns every attempt received so far, in order.
func (d *Deliverer) Calls() []Call {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.calls)
}

// Delivered returns the attempts that succeeded, in order.
func (d *Deliverer) Delivered() []Call {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Call
	for _, c := range d.calls {
		if c.Succeeded() {
			out = append(out, c)
		}
	}
	return out
}

// Reset forgets the recorded calls and the script.
func (d *Deliverer) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls, d.script = nil, nil
}

// WaitCalls blocks until the deliverer has received at least n attempts or
// ctx is done.
func (d *Deliverer) WaitCalls(ctx context.Context, n int) error {
	for {
		d.mu.Lock()
		got, ch := len(d.calls), d.changed
		d.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("outhooktest: %d of %d calls: %w", got, n, ctx.Err())
		}
	}
}

// DefaultTimeout bounds the waits of the helpers that take a testing.TB.
const DefaultTimeout = 10 * time.Second

// NoDelay is a retry policy for tests: up to maxAttempts attempts in all,
// each retry at once.
func NoDelay(maxAttempts int) outhook.RetryPolicy {
	return outhook.RetryPolicy{NewBackOff: func() backoff.BackOff {
		return backoff.WithMaxRetries(&backoff.ZeroBackOff{}, uint64(max(maxAttempts-1, 0)))
	}}
}

// NewClient creates a client from cfg, starts it and stops it when the test
// ends. A nil cfg means defaults. Unless cfg says otherwise, the client logs
// nowhere and retries deliveries and handlers three times without delay.
func NewClient(tb testing.TB, cfg *outhook.Config) *outhook.Client {
	tb.Helper()
	var c outhook.Config
	if cfg != nil {
		c = *cfg
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.DeliveryRetry.NewBackOff == nil {
		c.DeliveryRetry.NewBackOff = NoDelay(3).NewBackOff
	}
	if c.HandlerRetry.NewBackOff == nil {
		c.HandlerRetry.NewBackOff = NoDelay(3).NewBackOff
	}
	client, err := outhook.NewClient(&c)
	if err != nil {
		tb.Fatalf("outhooktest: NewClient: %v", err)
	}
	if err := client.Start(context.Background()); err != nil {
		tb.Fatalf("outhooktest: Start: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
		defer cancel()
		if err := client.Stop(ctx); err != nil {
			tb.Errorf("outhooktest: Stop: %v", err)
		}
	})
	return client
}

// WaitIdle waits until c has no work left, failing the test after
// DefaultTimeout.
func WaitIdle(tb testing.TB, c *outhook.Client) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	if err := c.WaitIdle(ctx); err != nil {
		tb.Fatalf("outhooktest: client not idle after %s: %v", DefaultTimeout, err)
	}
}

// Payloads decodes the payloads of calls into T, failing the test when one
// does not decode.
func Payloads[T any](tb testing.TB, calls []Call) []T {
	tb.Helper()
	out := make([]T, 0, len(calls))
	for _, c := range calls {
		var v T
		if err := json.Unmarshal(c.Request.Payload, &v); err != nil {
			tb.Fatalf("outhooktest: decode payload of delivery %s as %T: %v", c.Request.DeliveryID, v, err)
		}
		out = append(out, v)
	}
	return out
}

// DeliveredTo returns the payloads of the successful deliveries of eventID,
// decoded into T, in the order they were delivered.
func DeliveredTo[T any](tb testing.TB, d *Deliverer, eventID string) []T {
	tb.Helper()
	var calls []Call
	for _, c := range d.Delivered() {
		if c.Request.EventID == eventID {
			calls = append(calls, c)
		}
	}
	return Payloads[T](tb, calls)
}

// AssertDelivered fails the test unless the successful deliveries of eventID
// are exactly want, in any order.
func AssertDelivered[T any](tb testing.TB, d *Deliverer, eventID string, want ...T) {
	tb.Helper()
	got := DeliveredTo[T](tb, d, eventID)
	if len(got) != len(want) {
		tb.Fatalf("outhooktest: %d deliveries of %s, want %d:\n got: %s\nwant: %s", len(got), eventID, len(want), jsonOf(got), jsonOf(want))
	}
	left := slices.Clone(got)
	for _, w := range want {
		wj := jsonOf(w)
		i := slices.IndexFunc(left, func(g T) bool { return jsonOf(g) == wj })
		if i < 0 {
			tb.Fatalf("outhooktest: no delivery of %s matches %s;\n got: %s", eventID, wj, jsonOf(got))
		}
		left = slices.Delete(left, i, i+1)
	}
}

func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}
	return string(b)
}
