package outhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/outhook/outhook/internal/ident"
	"github.com/outhook/outhook/queue"
)

// Deliverer sends deliveries to one kind of destination: a signed webhook,
// a Slack channel, PagerDuty, and so on. Deliverers are registered with a
// client (Config.Deliverers) and chosen by ID in each subscription.
//
// A Deliverer makes exactly one attempt per Deliver call and classifies the
// outcome; the client owns retries, their schedule, the attempt record and
// the delivery's final state.
type Deliverer interface {
	// ID names the deliverer in subscriptions, e.g. "webhook". It follows
	// the hook ID rules and is unique within a client.
	ID() string
	// ConfigSchema is the JSON Schema of the configuration a subscription
	// gives this deliverer, for a UI to build a form from.
	ConfigSchema() json.RawMessage
	// ValidateConfig checks a subscription's configuration when the
	// subscription is created or updated. Its error should name the field at
	// fault; a *ConfigError (see ConfigCodec) does.
	ValidateConfig(config json.RawMessage) error
	// Deliver makes one attempt to deliver req.
	//
	// A nil error means success. Any other error is a failed attempt that is
	// retried, unless it is wrapped with Permanent; wrap it with RetryAfter to
	// ask for a later retry (the client never retries earlier than its own
	// schedule). The result is recorded whether or not the attempt failed,
	// so fill in StatusCode and Response when there is one. Deliver must
	// return promptly when ctx is done. A panic is recorded as a failed,
	// retryable attempt.
	Deliver(ctx context.Context, req *DeliveryRequest) (DeliveryResult, error)
}

// DeliveryRequest is what a Deliverer is asked to deliver.
type DeliveryRequest struct {
	// DeliveryID is stable across the retries of this delivery: receivers
	// use it as an idempotency key.
	DeliveryID string
	// MessageID identifies the emitted event; the deliveries of one event to
	// several subscriptions share it.
	MessageID string
	// EventID is the event type, e.g. "incident.incident.created".
	EventID string
	// Event describes the event, when it is registered in this process.
	Event Event
	// Subscription is the subscription this delivery is for, as it is now.
	// Its slices are shared with the store: read them, do not modify them.
	Subscription Subscription
	// Payload is the event's payload as subscribers receive it (after the
	// event's transform), encoded as JSON.
	Payload json.RawMessage
	// OccurredAt is when the event was emitted.
	OccurredAt time.Time
	// Attempt is the 1-based number of this attempt.
	Attempt int
}

// DeliveryResult is what a Deliverer reports about one attempt, successful
// or not.
type DeliveryResult struct {
	// ExternalID is an ID the destination gave the delivery (a Jira issue
	// key, a PagerDuty dedup key, ...), when there is one.
	ExternalID string
	// StatusCode is the destination's protocol status, such as an HTTP
	// status, when there is one.
	StatusCode int
	// Response is an excerpt of the destination's answer. The client keeps
	// at most MaxResponseExcerpt bytes of it.
	Response string
	// RequestHeaders are the headers of the request sent, for the attempt
	// record, with the values of the secrets the deliverer sends replaced
	// by "[redacted]" (the HTTP deliverers do this through a shared
	// helper). The client also redacts credential headers by name and
	// bounds them; see Attempt.RequestHeaders. Nil when nothing was sent.
	RequestHeaders map[string][]string
	// ResponseHeaders are the headers of the destination's answer, when
	// there is one, with the deliverer's secrets redacted as in
	// RequestHeaders. The client drops Set-Cookie and bounds them; see
	// Attempt.ResponseHeaders.
	ResponseHeaders map[string][]string
}

// MaxResponseExcerpt is how many bytes of DeliveryResult.Response an attempt
// record keeps: exactly 16 KiB (16,384 bytes), the first of the body, cut on
// a UTF-8 rune boundary. The HTTP deliverers read no more than that of a
// response body by default (safehttp.DefaultMaxBody).
const MaxResponseExcerpt = 16 << 10

// Bounds of the headers an attempt record keeps (Attempt.RequestHeaders
// and Attempt.ResponseHeaders, each): at most MaxAttemptHeaders values and
// MaxAttemptHeaderBytes bytes of names and values in all. Headers are kept
// in name order until a bound is reached; the rest are dropped.
const (
	MaxAttemptHeaders     = 64
	MaxAttemptHeaderBytes = 8 << 10
)

// Redacted replaces secret values in attempt records.
const Redacted = "[redacted]"

// PermanentError marks a delivery failure that retrying cannot fix, such as
// a rejected payload or a destination that is gone.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks err as a failure that must not be retried. It returns nil
// for a nil err.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// RetryAfterError carries a destination's request to wait before the next
// attempt, as in an HTTP Retry-After header.
type RetryAfterError struct {
	Err   error
	After time.Duration
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter marks err as retryable no sooner than after d. The client never
// retries earlier than its own schedule and caps d at
// Config.DeliveryRetry.MaxRetryAfter. It returns nil for a nil err.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &RetryAfterError{Err: err, After: d}
}

// GoneError marks a failure that means the destination no longer exists,
// such as an HTTP 410 Gone or a Slack channel that was archived: the attempt
// is not retried and the subscription is disabled, with the error as the
// reason, until someone enables it again.
type GoneError struct{ Err error }

func (e *GoneError) Error() string { return e.Err.Error() }
func (e *GoneError) Unwrap() error { return e.Err }

// Gone marks err as a sign that the destination no longer exists: the
// delivery fails at once and its subscription is disabled. It returns nil
// for a nil err.
func Gone(err error) error {
	if err == nil {
		return nil
	}
	return &GoneError{Err: err}
}

// Error classes of failed attempts (Attempt.ErrorClass). A deliverer's error
// gets its class from an ErrorClass() string method anywhere in its chain,
// as the errors of package safehttp have; other errors are "timeout" when
// they are deadline errors and "deliverer" otherwise.
const (
	ErrorClassTimeout    = "timeout"
	ErrorClassDNS        = "dns"
	ErrorClassConnect    = "connect"
	ErrorClassTLS        = "tls"
	ErrorClassBlocked    = "blocked"
	ErrorClassHTTPStatus = "http_status"
	ErrorClassCanceled   = "canceled"
	ErrorClassDeliverer  = "deliverer"
)

// errorClass returns the class of a deliverer's error.
func errorClass(err error) string {
	if c, ok := errors.AsType[interface {
		error
		ErrorClass() string
	}](err); ok {
		if class := c.ErrorClass(); class != "" {
			return class
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ErrorClassTimeout
	}
	return ErrorClassDeliverer
}

// DeliveryStatus is where a delivery stands.
type DeliveryStatus string

// Delivery states. A delivery is pending until it ends succeeded or failed.
const (
	DeliveryPending   DeliveryStatus = "pending"
	DeliverySucceeded DeliveryStatus = "succeeded"
	DeliveryFailed    DeliveryStatus = "failed"
)

// Delivery is one event on its way to one subscription, with every attempt
// made so far.
type Delivery struct {
	ID             string         `json:"id"`
	MessageID      string         `json:"messageId"`
	EventID        string         `json:"eventId"`
	SubscriptionID string         `json:"subscriptionId"`
	DelivererID    string         `json:"delivererId"`
	Status         DeliveryStatus `json:"status"`
	// OrderingKey is the value of the event's ordering key field in the
	// payload (see EventDefinition.OrderingKey); empty when the delivery
	// is not ordered.
	OrderingKey string `json:"orderingKey,omitempty"`
	// Payload is the document sent, after the event's transform.
	Payload    json.RawMessage `json:"payload"`
	OccurredAt time.Time       `json:"occurredAt"`
	CreatedAt  time.Time       `json:"createdAt"`
	UpdatedAt  time.Time       `json:"updatedAt"`
	// NextAttemptAt is when a pending delivery is tried next.
	NextAttemptAt time.Time `json:"nextAttemptAt,omitzero"`
	// NextAttemptTrigger is what causes the next attempt: TriggerManual
	// after a redelivery, empty (scheduled) otherwise.
	NextAttemptTrigger AttemptTrigger `json:"nextAttemptTrigger,omitempty"`
	// ExternalID is the destination's ID for a succeeded delivery.
	ExternalID string `json:"externalId,omitempty"`
	// LastError is the error of the latest failed attempt.
	LastError string    `json:"lastError,omitempty"`
	Attempts  []Attempt `json:"attempts"`
}

// AttemptOutcome classifies one attempt.
type AttemptOutcome string

// Attempt outcomes.
const (
	AttemptSucceeded AttemptOutcome = "succeeded"
	// AttemptRetryable is a failure the client retries while its schedule
	// allows.
	AttemptRetryable AttemptOutcome = "retryable"
	// AttemptPermanent is a failure the client does not retry.
	AttemptPermanent AttemptOutcome = "permanent"
)

// AttemptTrigger says what caused an attempt.
type AttemptTrigger string

// Attempt triggers.
const (
	// TriggerScheduled is a first attempt or a retry on the schedule.
	TriggerScheduled AttemptTrigger = "scheduled"
	// TriggerManual is the first attempt after Client.Redeliver; the retry
	// schedule starts again from it.
	TriggerManual AttemptTrigger = "manual"
	// TriggerTest is an attempt made by Client.SendTest.
	TriggerTest AttemptTrigger = "test"
)

// Attempt records one delivery attempt.
type Attempt struct {
	// Number counts every attempt of the delivery, from 1, across
	// redeliveries.
	Number    int            `json:"number"`
	Trigger   AttemptTrigger `json:"trigger"`
	StartedAt time.Time      `json:"startedAt"`
	// DelivererID is the deliverer that made the attempt: the
	// subscription's at the time, which an update may have changed since
	// the delivery was created.
	DelivererID string         `json:"delivererId"`
	Duration    time.Duration  `json:"duration"`
	Outcome     AttemptOutcome `json:"outcome"`
	Error       string         `json:"error,omitempty"`
	// ErrorClass classifies a failure: one of the ErrorClass constants
	// ("timeout", "dns", "connect", "tls", "blocked", "http_status",
	// "deliverer").
	ErrorClass string `json:"errorClass,omitempty"`
	StatusCode int    `json:"statusCode,omitempty"`
	// Response is the first MaxResponseExcerpt (16 KiB) bytes of the
	// destination's answer, scrubbed by the deliverer of the secrets it
	// sends.
	Response string `json:"response,omitempty"`
	// RequestHeaders are the headers of the request sent, by name as the
	// deliverer reported them (the HTTP deliverers: canonical names), values
	// in the order sent. Secrets are removed: the values of Authorization,
	// Proxy-Authorization, Cookie, Webhook-Signature and of every header
	// whose name speaks of credentials (auth, token, secret, signature,
	// password, api-key, apikey, session, cookie, credential) are replaced
	// with Redacted, and the deliverer redacts the secrets it knows
	// (signing secrets, tokens, every extra header value of a webhook
	// subscription, the secret parts of URLs) wherever they appear. At
	// most MaxAttemptHeaders values and MaxAttemptHeaderBytes bytes are
	// kept. Nil when the deliverer reported none (nothing was sent, or the
	// deliverer is not HTTP); an empty map when the request had none.
	RequestHeaders map[string][]string `json:"requestHeaders,omitempty"`
	// ResponseHeaders are the headers of the destination's answer, with
	// Set-Cookie (and Set-Cookie2) dropped, and secrets removed and bounds
	// applied as in RequestHeaders. Nil when there was no answer.
	ResponseHeaders map[string][]string `json:"responseHeaders,omitempty"`
	ExternalID      string              `json:"externalId,omitempty"`
	// RetryAfter is the wait the destination asked for, if any.
	RetryAfter time.Duration `json:"retryAfter,omitempty"`
	// NextAttemptAt is when the next attempt was scheduled; zero when this
	// attempt ended the delivery.
	NextAttemptAt time.Time `json:"nextAttemptAt,omitzero"`
}

// classify reads a Deliverer's error.
func classify(err error) (outcome AttemptOutcome, retryAfter time.Duration) {
	if err == nil {
		return AttemptSucceeded, 0
	}
	if _, ok := errors.AsType[*PermanentError](err); ok {
		return AttemptPermanent, 0
	}
	if _, ok := errors.AsType[*GoneError](err); ok {
		return AttemptPermanent, 0
	}
	if ra, ok := errors.AsType[*RetryAfterError](err); ok && ra.After > 0 {
		return AttemptRetryable, ra.After
	}
	return AttemptRetryable, 0
}

// recordHeaders returns the copy of h an attempt record keeps: credential
// headers redacted by name (see Attempt.RequestHeaders), Set-Cookie dropped
// when response is set, and at most MaxAttemptHeaders values and
// MaxAttemptHeaderBytes bytes, by name order. It returns nil for a nil h,
// and an empty map for an empty one.
func recordHeaders(h map[string][]string, response bool) map[string][]string {
	if h == nil {
		return nil
	}
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make(map[string][]string, len(h))
	count, size := 0, 0
	for _, name := range names {
		lower := strings.ToLower(name)
		if response && (lower == "set-cookie" || lower == "set-cookie2") {
			continue
		}
		secret := secretHeader(lower)
		vs := h[name]
		kept := make([]string, 0, len(vs))
		full := false
		for _, v := range vs {
			if secret {
				v = Redacted
			}
			if count+1 > MaxAttemptHeaders || size+len(name)+len(v) > MaxAttemptHeaderBytes {
				full = true
				break
			}
			count, size = count+1, size+len(name)+len(v)
			kept = append(kept, v)
		}
		if len(kept) > 0 || !full {
			out[name] = kept
		}
		if full {
			break
		}
	}
	return out
}

// secretHeader reports whether a header, by its lower-case name, carries
// credentials whatever its value.
func secretHeader(lower string) bool {
	switch lower {
	case "authorization", "proxy-authorization", "cookie", "webhook-signature":
		return true
	}
	for _, word := range []string{"auth", "token", "secret", "signature", "password", "passwd", "api-key", "apikey", "session", "cookie", "credential"} {
		if strings.Contains(lower, word) {
			return true
		}
	}
	return false
}

// cloneAttempts copies attempts with their header maps, so that a store's
// copy shares nothing a caller can change. It returns nil for none.
func cloneAttempts(as []Attempt) []Attempt {
	if len(as) == 0 {
		return nil
	}
	out := slices.Clone(as)
	for i := range out {
		out[i] = out[i].clone()
	}
	return out
}

// clone returns a with its header maps copied.
func (a Attempt) clone() Attempt {
	a.RequestHeaders = cloneHeaders(a.RequestHeaders)
	a.ResponseHeaders = cloneHeaders(a.ResponseHeaders)
	return a
}

// cloneHeaders deep-copies h, keeping nil nil and empty empty.
func cloneHeaders(h map[string][]string) map[string][]string {
	if h == nil {
		return nil
	}
	out := make(map[string][]string, len(h))
	for k, v := range h {
		if v != nil {
			v = slices.Clone(v)
		}
		out[k] = v
	}
	return out
}

// truncate returns s cut to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// Delivery returns the delivery with the given ID and its attempts.
func (c *Client) Delivery(ctx context.Context, id string) (Delivery, error) {
	d, err := c.store.GetDelivery(ctx, id)
	if err != nil {
		return Delivery{}, err
	}
	return *d, nil
}

// Deliveries returns the deliveries that match q, newest first. Failed
// deliveries are those with Status DeliveryFailed. To page through a long
// listing, pass the Cursor of the last delivery returned as q.After:
//
//	q := outhook.DeliveryQuery{SubscriptionID: id, Since: since, Limit: 500}
//	for {
//		page, err := client.Deliveries(ctx, q)
//		if err != nil || len(page) == 0 {
//			break // (handle err)
//		}
//		// ... use page ...
//		q.After = page[len(page)-1].Cursor()
//	}
func (c *Client) Deliveries(ctx context.Context, q DeliveryQuery) ([]Delivery, error) {
	ds, err := c.store.ListDeliveries(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]Delivery, len(ds))
	for i, d := range ds {
		out[i] = *d
	}
	return out, nil
}

// Redeliver sends a finished (failed or succeeded) delivery again. It keeps
// its ID, so receivers can recognise it, and its attempts; the next attempt
// is recorded with TriggerManual and the retry schedule starts again from
// it. Redelivering a pending delivery is an error matching
// ErrDeliveryPending.
func (c *Client) Redeliver(ctx context.Context, id string) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	before, err := c.store.GetDelivery(ctx, id)
	if err != nil {
		return err
	}
	return c.redeliver(ctx, before, func(now time.Time) error {
		_, err := c.store.ReopenDelivery(ctx, id, now)
		return err
	})
}

// redeliver reopens a delivery with reopen and queues its next attempt;
// before is the delivery as read before, which it is put back to if the
// queue refuses the job.
func (c *Client) redeliver(ctx context.Context, before *Delivery, reopen func(now time.Time) error) error {
	id := before.ID
	now := time.Now()
	if err := reopen(now); err != nil {
		return err
	}
	// The job of a redelivery has an ID of its own, so that it never shares
	// one with a job of an earlier round that is still finishing, nor with
	// an earlier redelivery that ended without an attempt (its subscription
	// was disabled): a queue that drops a job ID it has seen recently
	// (JetStream's duplicate window) would drop this one, and leave the
	// delivery pending with no job.
	jobID := fmt.Sprintf("%s.r%d.%x", id, len(before.Attempts), now.UnixNano())
	// Its attempt joins the caller's trace, when there is one.
	err := c.queue.Enqueue(ctx, &queue.Job{ID: jobID, Group: deliveryGroup, Kind: kindDelivery, Payload: []byte(id), CreatedAt: now,
		Trace: c.tel.jobTrace(ctx)})
	if err == nil {
		return nil
	}
	// Put the delivery back as it was, so it is not left pending with no job.
	u := DeliveryUpdate{Status: before.Status, LastError: before.LastError, ExternalID: before.ExternalID,
		NextAttemptTrigger: before.NextAttemptTrigger, UpdatedAt: before.UpdatedAt}
	if uerr := c.store.UpdateDelivery(context.WithoutCancel(ctx), id, nil, u); uerr != nil {
		return errors.Join(err, uerr)
	}
	if errors.Is(err, queue.ErrClosed) {
		return ErrClosed
	}
	return err
}

// TestEventID is the event ID of test deliveries to subscriptions that
// select no registered event.
const TestEventID = "outhook.test"

// SendTest makes one attempt, now, to deliver a test event to a
// subscription (enabled or not) through its deliverer, so that a person can
// check a destination before real events flow. The event is the first
// registered event the subscription selects (TestEventID if none), and the
// payload says it is a test:
//
//	{"test": true, "message": "...", "subscriptionId": "sub_..."}
//
// Nothing is queued, retried or stored. SendTest returns the attempt's
// record, with Trigger TriggerTest, and the deliverer's error: nil when the
// destination accepted the test. It returns an error and an empty Attempt
// when no attempt could be made (unknown subscription, deliverer not
// registered, client stopped).
func (c *Client) SendTest(ctx context.Context, subscriptionID string) (Attempt, error) {
	if c.closed.Load() {
		return Attempt{}, ErrClosed
	}
	sub, err := c.store.GetSubscription(ctx, subscriptionID)
	if err != nil {
		return Attempt{}, err
	}
	dl, ok := c.deliverers[sub.DelivererID]
	if !ok {
		return Attempt{}, fmt.Errorf("%w: deliverer %q is not registered in this process", ErrNotFound, sub.DelivererID)
	}
	ev, found := c.testEvent(sub)
	now := time.Now()
	payload, err := json.Marshal(map[string]any{
		"test":           true,
		"message":        "This is a test event from outhook: if you can read it, subscription " + sub.ID + " reaches its destination.",
		"subscriptionId": sub.ID,
	})
	if err != nil {
		return Attempt{}, err
	}
	req := &DeliveryRequest{
		DeliveryID:   ident.New("test_", now),
		MessageID:    ident.New("msg_", now),
		EventID:      TestEventID,
		Subscription: *sub,
		Payload:      payload,
		OccurredAt:   now,
		Attempt:      1,
	}
	if found {
		req.EventID, req.Event = ev.ID, ev
	}
	a := Attempt{Number: 1, Trigger: TriggerTest, StartedAt: now, DelivererID: dl.ID()}
	res, derr := c.callDeliverer(ctx, dl, req)
	a.record(res, derr, time.Now())
	return a, derr
}

// testEvent picks the event a test delivery to sub pretends to be.
func (c *Client) testEvent(sub *Subscription) (Event, bool) {
	events := c.registry.Events()
	for _, sel := range sub.Events {
		for _, ev := range events {
			if ev.ID == sel || ident.IsPattern(sel) && ident.Match(sel, ev.ID) {
				return ev, true
			}
		}
	}
	return Event{}, false
}
