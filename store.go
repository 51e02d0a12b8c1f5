package outhook

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outhook/outhook/internal/ident"
)

// ErrDeliveryPending is returned when redelivering a delivery that is still
// pending: it will be attempted anyway.
var ErrDeliveryPending = errors.New("outhook: delivery is still pending")

// ErrDeliveryChanged is returned by FailedReopener.ReopenFailedDelivery when
// the delivery is no longer the failed delivery the caller saw: it
// succeeded since, or has more attempts.
var ErrDeliveryChanged = errors.New("outhook: delivery changed since it was read")

// FailedReopener is implemented by stores that can reopen a delivery only
// while it is still failed with a known number of attempts, as one step.
// Recover uses it so that concurrent recoveries (two operators, two nodes)
// send each failed delivery once: the first reopens it, the others find it
// changed. All of outhook's stores implement it; with a store that does
// not, Recover reads the delivery again just before reopening it, which
// leaves a short window in which two concurrent recoveries can both send
// it.
type FailedReopener interface {
	// ReopenFailedDelivery does what Store.ReopenDelivery does, but only
	// if the delivery is failed and has exactly attempts attempts.
	// Otherwise it changes nothing and returns an error matching
	// ErrDeliveryPending (it is pending), ErrDeliveryChanged (it succeeded
	// or has another number of attempts) or ErrNotFound.
	ReopenFailedDelivery(ctx context.Context, id string, attempts int, at time.Time) (*Delivery, error)
}

// Store keeps subscriptions and deliveries. The client validates everything
// before it reaches the store; a store only stores, indexes and answers.
//
// Values passed to a store belong to it afterwards, and values it returns
// must not be modified by the caller: the in-memory store shares them to
// keep routing free of copies.
type Store interface {
	// CreateSubscription stores a new subscription. An existing ID is an
	// error matching ErrDuplicate. Its Health is ignored: a new
	// subscription starts with the zero SubscriptionHealth.
	CreateSubscription(ctx context.Context, s *Subscription) error
	// UpdateSubscription replaces a subscription. A missing ID is an error
	// matching ErrNotFound. Its Health is ignored: the stored one is kept.
	UpdateSubscription(ctx context.Context, s *Subscription) error
	// SetSubscriptionDisabled sets a subscription's Disabled flag,
	// DisabledReason and UpdatedAt as one step, leaving the rest as it is,
	// and returns the result (ErrNotFound if missing). Enabling a disabled
	// subscription also clears Health.ConsecutiveFailures and
	// Health.FailingSince, in the same step.
	SetSubscriptionDisabled(ctx context.Context, id string, disabled bool, reason string, at time.Time) (*Subscription, error)
	// RecordDeliveryOutcome applies the end of one delivery of a
	// subscription, succeeded or failed for good at the given time, to
	// the subscription's Health as SubscriptionHealth.Record does, as one
	// step: concurrent calls for one subscription lose no count. It
	// returns the health before and after (ErrNotFound if the
	// subscription is missing), and leaves the rest of the subscription,
	// UpdatedAt included, as it is. A store may leave out a success to a
	// healthy subscription (no failure counted) whose LastSuccessAt is
	// less than a minute old, returning the health as it is: a write per
	// delivery would put every delivery of a subscription in a line (the
	// SQL stores do this).
	RecordDeliveryOutcome(ctx context.Context, id string, succeeded bool, at time.Time) (before, after SubscriptionHealth, err error)
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
	// ListDeliveries returns the deliveries that match q, newest first:
	// by CreatedAt, then by ID, both descending (see DeliveryCursor).
	ListDeliveries(ctx context.Context, q DeliveryQuery) ([]*Delivery, error)
	// FirstPending returns the pending delivery to a subscription with the
	// given (non-empty) ordering key that comes first in emit order: by
	// OccurredAt, then MessageID, then ID. It returns nil, and no error,
	// when there is none. See EventDefinition.OrderingKey.
	FirstPending(ctx context.Context, subscriptionID, orderingKey string) (*PendingHead, error)
}

// PendingHead is the first pending delivery of an ordering key: the one
// whose turn it is.
type PendingHead struct {
	ID string
	// NextAttemptAt is when it is due.
	NextAttemptAt time.Time
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
	// Since and Until bound CreatedAt: Since <= CreatedAt < Until. A zero
	// time leaves its side open. The SQL stores compare at the microsecond
	// they keep.
	Since, Until time.Time
	// After continues a listing: only the deliveries listed after the one
	// it was taken from are returned (older, or as old with a lower ID).
	// Pass the Cursor of the last delivery of the previous page; the zero
	// value starts from the newest.
	After DeliveryCursor
	// Limit caps the result; zero means 100.
	Limit int
}

func (q DeliveryQuery) match(d *Delivery) bool {
	return (q.SubscriptionID == "" || q.SubscriptionID == d.SubscriptionID) &&
		(q.EventID == "" || q.EventID == d.EventID) &&
		(q.MessageID == "" || q.MessageID == d.MessageID) &&
		(q.Status == "" || q.Status == d.Status) &&
		(q.Since.IsZero() || !d.CreatedAt.Before(q.Since)) &&
		(q.Until.IsZero() || d.CreatedAt.Before(q.Until)) &&
		(q.After.IsZero() || d.Cursor().before(q.After))
}

// DeliveryCursor is a position in a listing of deliveries, which are
// ordered newest first by CreatedAt and then by ID: a page's last
// delivery's Cursor, as DeliveryQuery.After, asks for the next page. A
// position stays valid whatever is created or deleted since (a keyset
// cursor): pages neither repeat nor skip a delivery that existed
// throughout.
type DeliveryCursor struct {
	CreatedAt time.Time
	ID        string
}

// Cursor returns the position of d in a listing of deliveries.
func (d *Delivery) Cursor() DeliveryCursor { return DeliveryCursor{CreatedAt: d.CreatedAt, ID: d.ID} }

// IsZero reports whether c is the zero cursor, the start of a listing.
func (c DeliveryCursor) IsZero() bool { return c.ID == "" && c.CreatedAt.IsZero() }

// before reports whether c comes after o in a listing (it is older, or as
// old with a lower ID).
func (c DeliveryCursor) before(o DeliveryCursor) bool {
	if !c.CreatedAt.Equal(o.CreatedAt) {
		return c.CreatedAt.Before(o.CreatedAt)
	}
	return c.ID < o.ID
}

// String encodes c as an opaque token for an API to hand out: see
// ParseDeliveryCursor.
func (c DeliveryCursor) String() string {
	if c.IsZero() {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.CreatedAt.UnixNano(), 10) + "." + c.ID))
}

// ParseDeliveryCursor decodes a token made by DeliveryCursor.String; the
// empty token is the zero cursor.
func ParseDeliveryCursor(token string) (DeliveryCursor, error) {
	if token == "" {
		return DeliveryCursor{}, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return DeliveryCursor{}, fmt.Errorf("outhook: delivery cursor %q: not a cursor", token)
	}
	ns, id, ok := strings.Cut(string(raw), ".")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || id == "" {
		return DeliveryCursor{}, fmt.Errorf("outhook: delivery cursor %q: not a cursor", token)
	}
	return DeliveryCursor{CreatedAt: time.Unix(0, n).UTC(), ID: id}, nil
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

	// Deliveries have locks of their own: routing reads subscriptions
	// while the delivery workers update deliveries. They are spread over
	// shards by ID, each with its own lock, so that the workers recording
	// attempts of different deliveries do not wait on each other: with one
	// lock for all deliveries they spent about 15 % of their time waiting.
	//
	// A stored Delivery is updated in place under its shard's lock, and
	// every read copies it under that lock, so no caller ever holds a value
	// the store modifies.
	seed   maphash.Seed
	shards [deliveryShards]deliveryShard

	// omu guards order. CreateDeliveries holds it for a whole batch and
	// ListDeliveries while it reads, so that a listing sees a batch whole or
	// not at all; eviction holds it to walk the order. Lock order: omu, then
	// a shard's lock.
	omu      sync.RWMutex
	order    []*Delivery  // by creation
	finished atomic.Int64 // succeeded or failed deliveries stored

	// kmu guards keyed, the pending deliveries that have an ordering key,
	// by subscription and key. Lock order: kmu, then a shard's lock.
	kmu   sync.Mutex
	keyed map[orderingLane]map[string]*Delivery
}

// deliveryShards is the number of delivery shards of a MemoryStore: a power
// of two, as many as memqueue's default number of workers, so that two
// workers rarely want one shard at the same time.
const deliveryShards = 32

// deliveryShard holds the deliveries whose IDs hash to it.
type deliveryShard struct {
	mu sync.Mutex
	m  map[string]*Delivery
	_  [64 - 16]byte // one shard per cache line, so the locks do not share one
}

// NewMemoryStore returns an empty in-memory store. A nil cfg means defaults.
func NewMemoryStore(cfg *MemoryStoreConfig) *MemoryStore {
	s := &MemoryStore{
		maxFinished: 10_000,
		subs:        map[string]*Subscription{},
		exact:       map[string]map[string]struct{}{},
		patterns:    map[string]map[string]struct{}{},
		matches:     map[string][]*Subscription{},
		seed:        maphash.MakeSeed(),
	}
	for i := range s.shards {
		s.shards[i].m = map[string]*Delivery{}
	}
	if cfg != nil && cfg.MaxFinishedDeliveries > 0 {
		s.maxFinished = cfg.MaxFinishedDeliveries
	}
	return s
}

// shard returns the shard of the delivery with the given ID.
func (s *MemoryStore) shard(id string) *deliveryShard {
	return &s.shards[maphash.String(s.seed, id)&(deliveryShards-1)]
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
	sub.Health = SubscriptionHealth{}
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
	sub.Health = old.Health
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
	if old.Disabled && !disabled {
		sub.Health.ConsecutiveFailures, sub.Health.FailingSince = 0, time.Time{}
	}
	sub.Disabled, sub.DisabledReason, sub.UpdatedAt = disabled, reason, at
	s.subs[id] = sub
	clear(s.matches) // routing skips disabled subscriptions
	return sub, nil
}

// RecordDeliveryOutcome implements Store. The stored subscription is
// replaced by a shallow copy with the new health (stored subscriptions are
// never modified, and their slices are shared); the routing cache is kept,
// since routing does not read health.
func (s *MemoryStore) RecordDeliveryOutcome(ctx context.Context, id string, succeeded bool, at time.Time) (before, after SubscriptionHealth, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.subs[id]
	if !ok {
		return SubscriptionHealth{}, SubscriptionHealth{}, notFound("subscription", id)
	}
	sub := *old
	sub.Health = old.Health.Record(succeeded, at)
	s.subs[id] = &sub
	return old.Health, sub.Health, nil
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
	if len(ds) == 0 {
		return nil
	}
	s.omu.Lock()
	defer s.omu.Unlock()
	for _, d := range ds {
		sh := s.shard(d.ID)
		sh.mu.Lock()
		_, dup := sh.m[d.ID]
		if !dup {
			sh.m[d.ID] = d
			if d.Status != DeliveryPending {
				s.finished.Add(1)
			}
		}
		sh.mu.Unlock()
		if !dup {
			s.insertOrdered(d)
			if d.OrderingKey != "" {
				s.syncLane(d)
			}
		}
	}
	s.evictIfDue(true)
	return nil
}

// insertOrdered adds d to the order, which it keeps sorted by (CreatedAt,
// ID) for ListDeliveries. Deliveries come in about in that order, so the
// place is found from the end, in a step or two. The caller holds omu.
func (s *MemoryStore) insertOrdered(d *Delivery) {
	c := d.Cursor()
	i := len(s.order)
	for i > 0 && c.before(s.order[i-1].Cursor()) {
		i--
	}
	s.order = slices.Insert(s.order, i, d)
}

// GetDelivery implements Store.
func (s *MemoryStore) GetDelivery(ctx context.Context, id string) (*Delivery, error) {
	sh := s.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	d, ok := sh.m[id]
	if !ok {
		return nil, notFound("delivery", id)
	}
	return cloneDelivery(d), nil
}

// cloneDelivery copies d, except its payload, which nobody modifies. Call
// it with d's shard locked. A delivery without attempts has nil Attempts,
// whatever room its stored slice has.
func cloneDelivery(d *Delivery) *Delivery {
	c := *d
	c.Attempts = nil
	if len(d.Attempts) > 0 {
		c.Attempts = cloneAttempts(d.Attempts)
	}
	return &c
}

// UpdateDelivery implements Store.
func (s *MemoryStore) UpdateDelivery(ctx context.Context, id string, attempt *Attempt, u DeliveryUpdate) error {
	sh := s.shard(id)
	sh.mu.Lock()
	d, ok := sh.m[id]
	if !ok {
		sh.mu.Unlock()
		return notFound("delivery", id)
	}
	// In place: readers get copies, made under the same lock.
	wasDone := d.Status != DeliveryPending
	if attempt != nil {
		d.Attempts = append(d.Attempts, attempt.clone())
	}
	d.Status, d.NextAttemptAt, d.LastError, d.UpdatedAt = u.Status, u.NextAttemptAt, u.LastError, u.UpdatedAt
	d.NextAttemptTrigger = u.NextAttemptTrigger
	if u.ExternalID != "" {
		d.ExternalID = u.ExternalID
	}
	isDone := d.Status != DeliveryPending
	switch {
	case !wasDone && isDone:
		s.finished.Add(1)
	case wasDone && !isDone:
		s.finished.Add(-1)
	}
	keyed := d.OrderingKey != "" && wasDone != isDone
	sh.mu.Unlock()
	if keyed {
		s.syncLane(d)
	}
	if !wasDone && isDone {
		s.evictIfDue(false)
	}
	return nil
}

// evictIfDue forgets the oldest finished deliveries beyond the limit. It lets
// the count run a quarter over the limit and then trims it back in one pass,
// so the cost per finished delivery stays constant. locked says whether the
// caller holds omu.
func (s *MemoryStore) evictIfDue(locked bool) {
	if s.finished.Load() <= int64(s.maxFinished+s.maxFinished/4) {
		return
	}
	if !locked {
		s.omu.Lock()
		defer s.omu.Unlock()
		if s.finished.Load() <= int64(s.maxFinished+s.maxFinished/4) {
			return // another caller has just trimmed it
		}
	}
	kept := s.order[:0]
	for _, d := range s.order {
		if s.finished.Load() > int64(s.maxFinished) {
			// d.ID never changes once stored: reading it needs no lock.
			sh := s.shard(d.ID)
			sh.mu.Lock()
			evict := d.Status != DeliveryPending
			if evict {
				delete(sh.m, d.ID)
				s.finished.Add(-1)
			}
			sh.mu.Unlock()
			if evict {
				continue
			}
		}
		kept = append(kept, d)
	}
	clear(s.order[len(kept):])
	s.order = kept
}

// ReopenDelivery implements Store.
func (s *MemoryStore) ReopenDelivery(ctx context.Context, id string, at time.Time) (*Delivery, error) {
	return s.reopen(id, at, -1)
}

// ReopenFailedDelivery implements FailedReopener.
func (s *MemoryStore) ReopenFailedDelivery(ctx context.Context, id string, attempts int, at time.Time) (*Delivery, error) {
	return s.reopen(id, at, attempts)
}

// reopen reopens a finished delivery; with attempts at 0 or more, only a
// failed one with that many attempts.
func (s *MemoryStore) reopen(id string, at time.Time, attempts int) (*Delivery, error) {
	sh := s.shard(id)
	sh.mu.Lock()
	d, ok := sh.m[id]
	if !ok {
		sh.mu.Unlock()
		return nil, notFound("delivery", id)
	}
	if d.Status == DeliveryPending {
		sh.mu.Unlock()
		return nil, fmt.Errorf("%w: %q", ErrDeliveryPending, id)
	}
	if attempts >= 0 && (d.Status != DeliveryFailed || len(d.Attempts) != attempts) {
		sh.mu.Unlock()
		return nil, fmt.Errorf("%w: %q is %s with %d attempts", ErrDeliveryChanged, id, d.Status, len(d.Attempts))
	}
	d.Status, d.NextAttemptAt, d.UpdatedAt, d.NextAttemptTrigger = DeliveryPending, at, at, TriggerManual
	s.finished.Add(-1)
	out := cloneDelivery(d)
	sh.mu.Unlock()
	if d.OrderingKey != "" {
		s.syncLane(d)
	}
	return out, nil
}

// ListDeliveries implements Store.
func (s *MemoryStore) ListDeliveries(ctx context.Context, q DeliveryQuery) ([]*Delivery, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	s.omu.RLock()
	defer s.omu.RUnlock()
	// The order is sorted by (CreatedAt, ID), which never change once
	// stored: the listing starts below Until and After, and stops at Since.
	end := len(s.order)
	if !q.Until.IsZero() {
		end = sort.Search(end, func(i int) bool { return !s.order[i].CreatedAt.Before(q.Until) })
	}
	if !q.After.IsZero() {
		end = min(end, sort.Search(len(s.order), func(i int) bool { return !s.order[i].Cursor().before(q.After) }))
	}
	var out []*Delivery
	for i := end - 1; i >= 0 && len(out) < limit; i-- {
		d := s.order[i]
		if !q.Since.IsZero() && d.CreatedAt.Before(q.Since) {
			break
		}
		sh := s.shard(d.ID)
		sh.mu.Lock()
		if q.match(d) {
			out = append(out, cloneDelivery(d))
		}
		sh.mu.Unlock()
	}
	return out, nil
}

// deliveryState is what the delivery worker reads of a delivery before an
// attempt: the fields it needs, without the attempts themselves.
type deliveryState struct {
	ID, MessageID, EventID, SubscriptionID string
	OrderingKey                            string
	Status                                 DeliveryStatus
	NextAttemptTrigger                     AttemptTrigger
	Payload                                json.RawMessage
	OccurredAt                             time.Time
	// attempts is the number of attempts made so far.
	attempts int
	// sinceManual is the number of attempts since the latest one with
	// TriggerManual, that one included; all of them when there is none.
	sinceManual int
}

// stateOf returns the state of d.
func stateOf(d *Delivery) deliveryState {
	st := deliveryState{ID: d.ID, MessageID: d.MessageID, EventID: d.EventID, SubscriptionID: d.SubscriptionID,
		OrderingKey: d.OrderingKey, Status: d.Status, NextAttemptTrigger: d.NextAttemptTrigger, Payload: d.Payload, OccurredAt: d.OccurredAt,
		attempts: len(d.Attempts)}
	for i := len(d.Attempts) - 1; i >= 0; i-- {
		st.sinceManual++
		if d.Attempts[i].Trigger == TriggerManual {
			break
		}
	}
	return st
}

// deliveryState returns the state of a delivery (ErrNotFound if missing).
// It is GetDelivery for the delivery worker, without copying the delivery
// and its attempts to the heap.
func (s *MemoryStore) deliveryState(id string) (deliveryState, error) {
	sh := s.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	d, ok := sh.m[id]
	if !ok {
		return deliveryState{}, notFound("delivery", id)
	}
	return stateOf(d), nil
}
