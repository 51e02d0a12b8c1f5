package outhook

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/outhook/outhook/internal/ident"
)

// ErrDeliveryPending is returned when redelivering a delivery that is still
// pending: it will be attempted anyway.
var ErrDeliveryPending = errors.New("outhook: delivery is still pending")

// Store keeps subscriptions and deliveries. The client validates everything
// before it reaches the store; a store only stores, indexes and answers.
//
// Values passed to a store belong to it afterwards, and values it returns
// must not be modified by the caller: the in-memory store shares them to
// keep routing free of copies.
type Store interface {
	// CreateSubscription stores a new subscription. An existing ID is an
	// error matching ErrDuplicate.
	CreateSubscription(ctx context.Context, s *Subscription) error
	// UpdateSubscription replaces a subscription. A missing ID is an error
	// matching ErrNotFound.
	UpdateSubscription(ctx context.Context, s *Subscription) error
	// SetSubscriptionDisabled sets a subscription's Disabled flag,
	// DisabledReason and UpdatedAt as one step, leaving the rest as it is,
	// and returns the result (ErrNotFound if missing).
	SetSubscriptionDisabled(ctx context.Context, id string, disabled bool, reason string, at time.Time) (*Subscription, error)
	// DeleteSubscription removes a subscription (ErrNotFound if missing).
	// Its deliveries stay.
	DeleteSubscription(ctx context.Context, id string) error
	// GetSubscription returns a subscription (ErrNotFound if missing).
	GetSubscription(ctx context.Context, id string) (*Subscription, error)
	// ListSubscriptions returns every subscription, oldest first.
	ListSubscriptions(ctx context.Context) ([]*Subscription, error)
	// MatchSubscriptions returns every subscription, enabled or not, whose
	// Events select eventID, oldest first. It answers from an index by event
	// ID, not by scanning every subscription.
	MatchSubscriptions(ctx context.Context, eventID string) ([]*Subscription, error)

	// CreateDeliveries stores new deliveries, all or none. A delivery whose
	// ID is already stored is left as it is, so routing an event twice does
	// not duplicate its deliveries.
	CreateDeliveries(ctx context.Context, ds []*Delivery) error
	// GetDelivery returns a delivery with its attempts (ErrNotFound if
	// missing).
	GetDelivery(ctx context.Context, id string) (*Delivery, error)
	// UpdateDelivery appends attempt (when not nil) to a delivery's attempts
	// and applies u, as one step.
	UpdateDelivery(ctx context.Context, id string, attempt *Attempt, u DeliveryUpdate) error
	// ReopenDelivery sets a succeeded or failed delivery back to pending,
	// due at the given time, with NextAttemptTrigger TriggerManual, and
	// returns it. A pending delivery is an error matching
	// ErrDeliveryPending.
	ReopenDelivery(ctx context.Context, id string, at time.Time) (*Delivery, error)
	// ListDeliveries returns the deliveries that match q, newest first.
	ListDeliveries(ctx context.Context, q DeliveryQuery) ([]*Delivery, error)
}

// DeliveryUpdate is the new state of a delivery after an attempt.
type DeliveryUpdate struct {
	Status        DeliveryStatus
	NextAttemptAt time.Time
	// NextAttemptTrigger replaces the delivery's; it is empty after an
	// attempt.
	NextAttemptTrigger AttemptTrigger
	LastError          string
	// ExternalID, when not empty, replaces the delivery's.
	ExternalID string
	UpdatedAt  time.Time
}

// DeliveryQuery selects deliveries. Zero fields match everything.
type DeliveryQuery struct {
	SubscriptionID string
	EventID        string
	MessageID      string
	Status         DeliveryStatus
	// Limit caps the result; zero means 100.
	Limit int
}

func (q DeliveryQuery) match(d *Delivery) bool {
	return (q.SubscriptionID == "" || q.SubscriptionID == d.SubscriptionID) &&
		(q.EventID == "" || q.EventID == d.EventID) &&
		(q.MessageID == "" || q.MessageID == d.MessageID) &&
		(q.Status == "" || q.Status == d.Status)
}

// MemoryStoreConfig configures NewMemoryStore.
type MemoryStoreConfig struct {
	// MaxFinishedDeliveries is about how many succeeded or failed
	// deliveries are kept: when there are a quarter more, the finished
	// deliveries created longest ago are forgotten until there are this
	// many. Pending deliveries are always kept. Zero means 10,000.
	MaxFinishedDeliveries int
}

// MemoryStore is the in-memory Store, the default. It keeps everything in
// the process: subscriptions and deliveries are gone when it exits.
type MemoryStore struct {
	maxFinished int

	mu       sync.RWMutex // guards the subscription fields below
	subs     map[string]*Subscription
	exact    map[string]map[string]struct{} // event ID → subscription IDs
	patterns map[string]map[string]struct{} // pattern → subscription IDs
	matches  map[string][]*Subscription     // event ID → routed subscriptions, cleared on change

	// Deliveries have a lock of their own: routing reads subscriptions
	// while the delivery workers update deliveries, and one lock for both
	// made them wait on each other.
	dmu        sync.RWMutex
	deliveries map[string]*Delivery
	order      []string // delivery IDs by creation
	finished   int
}

// NewMemoryStore returns an empty in-memory store. A nil cfg means defaults.
func NewMemoryStore(cfg *MemoryStoreConfig) *MemoryStore {
	s := &MemoryStore{
		maxFinished: 10_000,
		subs:        map[string]*Subscription{},
		exact:       map[string]map[string]struct{}{},
		patterns:    map[string]map[string]struct{}{},
		matches:     map[string][]*Subscription{},
		deliveries:  map[string]*Delivery{},
	}
	if cfg != nil && cfg.MaxFinishedDeliveries > 0 {
		s.maxFinished = cfg.MaxFinishedDeliveries
	}
	return s
}

var _ Store = (*MemoryStore)(nil)

func (s *MemoryStore) index(sub *Subscription) {
	for _, ev := range sub.Events {
		m := s.exact
		if ident.IsPattern(ev) {
			m = s.patterns
		}
		if m[ev] == nil {
			m[ev] = map[string]struct{}{}
		}
		m[ev][sub.ID] = struct{}{}
	}
	clear(s.matches)
}

func (s *MemoryStore) unindex(sub *Subscription) {
	for _, ev := range sub.Events {
		m := s.exact
		if ident.IsPattern(ev) {
			m = s.patterns
		}
		delete(m[ev], sub.ID)
		if len(m[ev]) == 0 {
			delete(m, ev)
		}
	}
	clear(s.matches)
}

// CreateSubscription implements Store.
func (s *MemoryStore) CreateSubscription(ctx context.Context, sub *Subscription) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.subs[sub.ID]; ok {
		return fmt.Errorf("%w: subscription %q", ErrDuplicate, sub.ID)
	}
	s.subs[sub.ID] = sub
	s.index(sub)
	return nil
}

// UpdateSubscription implements Store.
func (s *MemoryStore) UpdateSubscription(ctx context.Context, sub *Subscription) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.subs[sub.ID]
	if !ok {
		return notFound("subscription", sub.ID)
	}
	s.unindex(old)
	s.subs[sub.ID] = sub
	s.index(sub)
	return nil
}

// SetSubscriptionDisabled implements Store.
func (s *MemoryStore) SetSubscriptionDisabled(ctx context.Context, id string, disabled bool, reason string, at time.Time) (*Subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.subs[id]
	if !ok {
		return nil, notFound("subscription", id)
	}
	sub := old.clone()
	sub.Disabled, sub.DisabledReason, sub.UpdatedAt = disabled, reason, at
	s.subs[id] = sub
	clear(s.matches) // routing skips disabled subscriptions
	return sub, nil
}

// DeleteSubscription implements Store.
func (s *MemoryStore) DeleteSubscription(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.subs[id]
	if !ok {
		return notFound("subscription", id)
	}
	s.unindex(old)
	delete(s.subs, id)
	return nil
}

// GetSubscription implements Store.
func (s *MemoryStore) GetSubscription(ctx context.Context, id string) (*Subscription, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sub, ok := s.subs[id]
	if !ok {
		return nil, notFound("subscription", id)
	}
	return sub, nil
}

func bySubscriptionAge(a, b *Subscription) int {
	return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
}

// ListSubscriptions implements Store.
func (s *MemoryStore) ListSubscriptions(ctx context.Context) ([]*Subscription, error) {
	s.mu.RLock()
	out := make([]*Subscription, 0, len(s.subs))
	for _, sub := range s.subs {
		out = append(out, sub)
	}
	s.mu.RUnlock()
	slices.SortFunc(out, bySubscriptionAge)
	return out, nil
}

// MatchSubscriptions implements Store. Exact event IDs are looked up in a
// map; patterns are matched once per event ID and the result is cached until
// the subscriptions change.
func (s *MemoryStore) MatchSubscriptions(ctx context.Context, eventID string) ([]*Subscription, error) {
	s.mu.RLock()
	cached, ok := s.matches[eventID]
	s.mu.RUnlock()
	if ok {
		return cached, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cached, ok := s.matches[eventID]; ok {
		return cached, nil
	}
	ids := map[string]struct{}{}
	for id := range s.exact[eventID] {
		ids[id] = struct{}{}
	}
	for p, set := range s.patterns {
		if ident.Match(p, eventID) {
			for id := range set {
				ids[id] = struct{}{}
			}
		}
	}
	out := make([]*Subscription, 0, len(ids))
	for id := range ids {
		out = append(out, s.subs[id])
	}
	slices.SortFunc(out, bySubscriptionAge)
	s.matches[eventID] = out
	return out, nil
}

// CreateDeliveries implements Store.
func (s *MemoryStore) CreateDeliveries(ctx context.Context, ds []*Delivery) error {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	for _, d := range ds {
		if _, ok := s.deliveries[d.ID]; ok {
			continue
		}
		s.deliveries[d.ID] = d
		s.order = append(s.order, d.ID)
	}
	return nil
}

// GetDelivery implements Store.
func (s *MemoryStore) GetDelivery(ctx context.Context, id string) (*Delivery, error) {
	s.dmu.RLock()
	defer s.dmu.RUnlock()
	d, ok := s.deliveries[id]
	if !ok {
		return nil, notFound("delivery", id)
	}
	return cloneDelivery(d), nil
}

// cloneDelivery copies d, except its payload, which nobody modifies.
func cloneDelivery(d *Delivery) *Delivery {
	c := *d
	c.Attempts = slices.Clone(d.Attempts)
	return &c
}

// UpdateDelivery implements Store.
func (s *MemoryStore) UpdateDelivery(ctx context.Context, id string, attempt *Attempt, u DeliveryUpdate) error {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	old, ok := s.deliveries[id]
	if !ok {
		return notFound("delivery", id)
	}
	// Replace rather than modify, so readers holding the old value are safe.
	d := cloneDelivery(old)
	if attempt != nil {
		d.Attempts = append(d.Attempts, *attempt)
	}
	d.Status, d.NextAttemptAt, d.LastError, d.UpdatedAt = u.Status, u.NextAttemptAt, u.LastError, u.UpdatedAt
	d.NextAttemptTrigger = u.NextAttemptTrigger
	if u.ExternalID != "" {
		d.ExternalID = u.ExternalID
	}
	s.deliveries[id] = d
	wasDone, isDone := old.Status != DeliveryPending, d.Status != DeliveryPending
	if !wasDone && isDone {
		s.finished++
		s.evict()
	} else if wasDone && !isDone {
		s.finished--
	}
	return nil
}

// evict forgets the oldest finished deliveries beyond the limit. It lets the
// count run a quarter over the limit and then trims it back in one pass, so
// the cost per finished delivery stays constant.
func (s *MemoryStore) evict() {
	if s.finished <= s.maxFinished+s.maxFinished/4 {
		return
	}
	kept := s.order[:0]
	for _, id := range s.order {
		if s.finished > s.maxFinished && s.deliveries[id].Status != DeliveryPending {
			delete(s.deliveries, id)
			s.finished--
			continue
		}
		kept = append(kept, id)
	}
	clear(s.order[len(kept):])
	s.order = kept
}

// ReopenDelivery implements Store.
func (s *MemoryStore) ReopenDelivery(ctx context.Context, id string, at time.Time) (*Delivery, error) {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	old, ok := s.deliveries[id]
	if !ok {
		return nil, notFound("delivery", id)
	}
	if old.Status == DeliveryPending {
		return nil, fmt.Errorf("%w: %q", ErrDeliveryPending, id)
	}
	d := cloneDelivery(old)
	d.Status, d.NextAttemptAt, d.UpdatedAt, d.NextAttemptTrigger = DeliveryPending, at, at, TriggerManual
	s.deliveries[id] = d
	s.finished--
	return cloneDelivery(d), nil
}

// ListDeliveries implements Store.
func (s *MemoryStore) ListDeliveries(ctx context.Context, q DeliveryQuery) ([]*Delivery, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	s.dmu.RLock()
	defer s.dmu.RUnlock()
	var out []*Delivery
	for i := len(s.order) - 1; i >= 0 && len(out) < limit; i-- {
		if d := s.deliveries[s.order[i]]; q.match(d) {
			out = append(out, cloneDelivery(d))
		}
	}
	return out, nil
}
