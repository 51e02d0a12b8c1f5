package outhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/outhook/outhook/internal/ident"
	"github.com/outhook/outhook/internal/jsonscalar"
)

// Subscription sends the events it selects to one destination through one
// deliverer.
type Subscription struct {
	// ID is assigned when the subscription is created.
	ID string `json:"id"`
	// Name is a label for people.
	Name string `json:"name,omitempty"`
	// Events selects events by ID ("incident.incident.created") or by
	// pattern: "*" stands for exactly one segment ("incident.incident.*")
	// and a final "**" for one or more ("incident.**"). At least one.
	Events []string `json:"events"`
	// DelivererID names a deliverer registered with the client.
	DelivererID string `json:"delivererId"`
	// Config is the deliverer's configuration, checked by the deliverer's
	// ValidateConfig when the subscription is saved.
	Config json.RawMessage `json:"config,omitempty"`
	// Disabled subscriptions keep their configuration and receive nothing.
	// A new subscription is enabled unless it says otherwise; see also
	// Client.SetSubscriptionEnabled.
	Disabled bool `json:"disabled,omitempty"`
	// DisabledReason says why outhook disabled the subscription (its
	// destination is gone, for example); empty when a person did.
	DisabledReason string `json:"disabledReason,omitempty"`
	// Filter, if set, narrows the events by payload.
	Filter *Filter `json:"filter,omitempty"`
	// Limits bound the pace of attempts to the destination: a rate and a
	// cap on attempts in progress. The zero value sets none.
	Limits DeliveryLimits `json:"limits,omitzero"`
	// Health is how the subscription's recent deliveries ended, kept by
	// outhook (see Endpoint health in the package documentation). It is
	// read-only: CreateSubscription starts it at zero and
	// UpdateSubscription keeps the stored one, whatever the caller passes.
	Health SubscriptionHealth `json:"health"`

	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Filter selects the events a subscription receives by their payload, as
// subscribers receive it (after the event's TransformPayload). It has two
// forms, which may be used alone or together; together, an event must pass
// both.
//
// Expr is an expression in CEL (https://cel.dev), the Common Expression
// Language, over the variable payload; an event passes when it evaluates to
// true:
//
//	payload.severity == "critical" && "sys-1" in payload.systemIds
//
// The expression is compiled and type-checked when the subscription is
// saved, against the JSON Schema of each registered event the subscription
// selects (see Client.CreateSubscription): a misspelt field or a comparison
// of a string with a number is a *FilterError that names the line and
// column. Objects of the schema have exactly the fields of their
// "properties". A property that is missing in a payload, or null, is
// absent, which has(payload.field) tests; but a null array or map (Go
// encodes nil slices and maps so) reads as empty. The standard CEL definitions are
// available (size, contains, startsWith, matches, exists, all, timestamp,
// ...), without extensions.
//
// Field and AnyOf are the simple form: an event passes when any of AnyOf
// appears in the field. For an array field (such as "systemIds") that means
// any element equals any of AnyOf; for a scalar field, the field equals one
// of them. Numbers and booleans compare by their JSON text ("42", "true").
// An event without the field does not pass.
//
// An event that a filter turns away is not a failure: nothing is recorded,
// and Client.FilterStats counts it. An expression that fails at run time
// (it reads a key the payload lacks, or goes over FilterCostLimit) turns the
// event away too, and is counted and logged as a filter error.
type Filter struct {
	// Expr is a CEL expression over payload that yields a bool, at most
	// MaxFilterExprLen code points long.
	Expr string `json:"expr,omitempty"`
	// Field is the path of the field, with dots between the names of nested
	// objects: "systemIds", "incident.severity". Required with AnyOf.
	Field string   `json:"field,omitempty"`
	AnyOf []string `json:"anyOf,omitempty"`
}

// validate checks the filter's own shape.
func (f *Filter) validate() error {
	if f.Expr == "" && f.Field == "" && len(f.AnyOf) == 0 {
		return &SubscriptionError{Field: "filter", Reason: "needs an expr, or a field and anyOf"}
	}
	if f.Field == "" && len(f.AnyOf) == 0 {
		return nil
	}
	if f.Field == "" {
		return &SubscriptionError{Field: "filter.field", Reason: "is required"}
	}
	for _, seg := range strings.Split(f.Field, ".") {
		if seg == "" {
			return &SubscriptionError{Field: "filter.field", Reason: fmt.Sprintf("%q has an empty segment", f.Field)}
		}
	}
	if len(f.AnyOf) == 0 {
		return &SubscriptionError{Field: "filter.anyOf", Reason: "needs at least one value"}
	}
	return nil
}

// match reports whether doc passes the filter. doc is the decoded payload.
func (f *Filter) match(doc any) bool {
	v := doc
	for seg := range strings.SplitSeq(f.Field, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return false
		}
		if v, ok = obj[seg]; !ok {
			return false
		}
	}
	if arr, ok := v.([]any); ok {
		for _, el := range arr {
			if f.matchScalar(el) {
				return true
			}
		}
		return false
	}
	return f.matchScalar(v)
}

func (f *Filter) matchScalar(v any) bool {
	s, ok := jsonscalar.Text(v) // decoded with UseNumber
	if !ok {
		return false
	}
	for _, want := range f.AnyOf {
		if s == want {
			return true
		}
	}
	return false
}

// clone returns a deep copy, so stores never share mutable state with
// callers.
func (s *Subscription) clone() *Subscription {
	c := *s
	c.Events = append([]string(nil), s.Events...)
	c.Config = append(json.RawMessage(nil), s.Config...)
	if s.Filter != nil {
		f := *s.Filter
		f.AnyOf = append([]string(nil), s.Filter.AnyOf...)
		c.Filter = &f
	}
	return &c
}

// CreateSubscription validates sub and stores it. An empty ID is replaced
// by a new one; CreatedAt and UpdatedAt are set. Each event in Events must be
// registered (patterns need only be well formed), DelivererID must name a
// registered deliverer, and that deliverer must accept Config. A
// Filter.Expr must compile and type-check against the payload schema of
// each registered event that Events selects (without a schema, payload being
// dyn, when they select none yet); its errors wrap a *FilterError. Errors
// match ErrInvalidSubscription and name the field at fault.
func (c *Client) CreateSubscription(ctx context.Context, sub Subscription) (Subscription, error) {
	if c.closed.Load() {
		return Subscription{}, ErrClosed
	}
	s := sub.clone()
	if s.ID == "" {
		s.ID = ident.New("sub_", time.Now())
	} else if why := ident.Check(s.ID); why != "" {
		return Subscription{}, &SubscriptionError{Field: "id", Reason: fmt.Sprintf("%q %s", s.ID, why)}
	}
	if err := c.validateSubscription(s); err != nil {
		return Subscription{}, err
	}
	s.Health = SubscriptionHealth{} // kept by outhook, not set by callers
	now := time.Now()
	s.CreatedAt, s.UpdatedAt = now, now
	if err := c.store.CreateSubscription(ctx, s); err != nil {
		return Subscription{}, err
	}
	return c.view(s), nil
}

// UpdateSubscription validates sub and replaces the stored subscription with
// the same ID, keeping its CreatedAt. Deliveries already pending use the new
// configuration from their next attempt.
func (c *Client) UpdateSubscription(ctx context.Context, sub Subscription) (Subscription, error) {
	if c.closed.Load() {
		return Subscription{}, ErrClosed
	}
	old, err := c.store.GetSubscription(ctx, sub.ID)
	if err != nil {
		return Subscription{}, err
	}
	s := sub.clone()
	// Secrets the caller was shown masked, and sent back as they were,
	// keep their stored values, for the same deliverer and destination;
	// a mask that cannot be kept is refused rather than stored.
	prev := old.Config
	if s.DelivererID != old.DelivererID {
		prev = nil
	}
	if s.Config, err = c.secrets[s.DelivererID].restoreConfig(s.Config, prev); err != nil {
		if me, ok := errors.AsType[*maskError](err); ok {
			return Subscription{}, &SubscriptionError{Field: "config." + me.field, Reason: me.msg}
		}
		return Subscription{}, &SubscriptionError{Field: "config", Reason: "cannot restore masked secrets", Err: err}
	}
	if err := c.validateSubscription(s); err != nil {
		return Subscription{}, err
	}
	s.CreatedAt, s.UpdatedAt = old.CreatedAt, time.Now()
	s.Health = old.Health // kept by outhook; the store keeps its own
	if err := c.store.UpdateSubscription(ctx, s); err != nil {
		return Subscription{}, err
	}
	return c.view(s), nil
}

// SetSubscriptionEnabled enables or disables a subscription. Deliveries of a
// disabled subscription that are still pending end failed at their next
// attempt and can be redelivered. Enabling a disabled subscription starts
// its Health afresh (no failures, not failing), so that the automatic
// disabling of Config.DisableAfterFailures and
// Config.DisableAfterFailingFor counts from then on.
func (c *Client) SetSubscriptionEnabled(ctx context.Context, id string, enabled bool) (Subscription, error) {
	if c.closed.Load() {
		return Subscription{}, ErrClosed
	}
	s, err := c.store.SetSubscriptionDisabled(ctx, id, !enabled, "", time.Now())
	if err != nil {
		return Subscription{}, err
	}
	return c.view(s), nil
}

// DeleteSubscription removes a subscription. Its deliveries stay in the
// store; pending ones end failed.
func (c *Client) DeleteSubscription(ctx context.Context, id string) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if err := c.store.DeleteSubscription(ctx, id); err != nil {
		return err
	}
	c.limits.forget(id)
	return nil
}

// Subscription returns the subscription with the given ID.
func (c *Client) Subscription(ctx context.Context, id string) (Subscription, error) {
	s, err := c.store.GetSubscription(ctx, id)
	if err != nil {
		return Subscription{}, err
	}
	return c.view(s), nil
}

// Subscriptions returns every subscription, oldest first.
func (c *Client) Subscriptions(ctx context.Context) ([]Subscription, error) {
	subs, err := c.store.ListSubscriptions(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Subscription, len(subs))
	for i, s := range subs {
		out[i] = c.view(s)
	}
	return out, nil
}

// validateSubscription checks everything but the ID.
func (c *Client) validateSubscription(s *Subscription) error {
	if len(s.Events) == 0 {
		return &SubscriptionError{Field: "events", Reason: "must name at least one event"}
	}
	for i, ev := range s.Events {
		field := fmt.Sprintf("events[%d]", i)
		if ident.IsPattern(ev) {
			if why := ident.CheckPattern(ev); why != "" {
				return &SubscriptionError{Field: field, Reason: fmt.Sprintf("pattern %q %s", ev, why)}
			}
			continue
		}
		if why := ident.Check(ev); why != "" {
			return &SubscriptionError{Field: field, Reason: fmt.Sprintf("event ID %q %s", ev, why)}
		}
		if _, ok := c.registry.Event(ev); !ok {
			return &SubscriptionError{Field: field, Reason: fmt.Sprintf("unknown event %q", ev), Err: ErrNotFound}
		}
	}
	if err := s.Limits.validate(); err != nil {
		return err
	}
	if s.DelivererID == "" {
		return &SubscriptionError{Field: "delivererId", Reason: "is required"}
	}
	dl, ok := c.deliverers[s.DelivererID]
	if !ok {
		return &SubscriptionError{Field: "delivererId", Reason: fmt.Sprintf("unknown deliverer %q", s.DelivererID), Err: ErrNotFound}
	}
	if err := dl.ValidateConfig(s.Config); err != nil {
		field := "config"
		if ce, ok := errors.AsType[*ConfigError](err); ok && len(ce.Fields) > 0 && ce.Fields[0].Field != "" {
			field = "config." + ce.Fields[0].Field
		}
		return &SubscriptionError{Field: field, Reason: fmt.Sprintf("rejected by deliverer %q", s.DelivererID), Err: err}
	}
	if s.Filter != nil {
		if err := s.Filter.validate(); err != nil {
			return err
		}
		if s.Filter.Expr != "" {
			if err := c.checkFilter(s); err != nil {
				return &SubscriptionError{Field: "filter.expr", Reason: "is not a valid filter", Err: err}
			}
		}
	}
	return nil
}

// view returns a copy of a stored subscription for a caller, with the
// secrets of its config masked (see SecretMask).
func (c *Client) view(s *Subscription) Subscription {
	v := *s.clone()
	v.Config = c.secrets[v.DelivererID].maskConfig(v.Config)
	return v
}
