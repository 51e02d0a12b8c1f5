package outhook

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// DeliveryLimits bounds how hard a subscription's destination is pressed:
// how many attempts start per second and how many are in progress at once.
// The zero value sets no limit of its own (Config.MaxInFlightPerSubscription
// still applies). See Rate limits and fairness in the package documentation.
//
// Limits hold per process: with several nodes sharing a durable queue, each
// node applies them to the attempts it makes, so a subscription can receive
// up to the number of nodes times Rate.
type DeliveryLimits struct {
	// Rate is the most attempts per second the subscription receives, as a
	// token bucket (golang.org/x/time/rate): 1 for a Slack incoming webhook,
	// 0.5 for one attempt every two seconds. Zero means no rate limit. At
	// most MaxDeliveryRate.
	Rate float64 `json:"rate,omitempty"`
	// Burst is how many attempts may start at once after a quiet spell,
	// within Rate. Zero means Rate rounded up (at least 1). It needs a Rate.
	Burst int `json:"burst,omitempty"`
	// MaxInFlight caps the attempts in progress at once. Zero means
	// Config.MaxInFlightPerSubscription. At most MaxDeliveryInFlight.
	MaxInFlight int `json:"maxInFlight,omitempty"`
}

// Bounds of DeliveryLimits.
const (
	MaxDeliveryRate     = 1e6
	MaxDeliveryInFlight = 1 << 16
)

// validate checks the limits' own shape.
func (l DeliveryLimits) validate() error {
	switch {
	case math.IsNaN(l.Rate) || l.Rate < 0 || l.Rate > MaxDeliveryRate:
		return &SubscriptionError{Field: "limits.rate", Reason: fmt.Sprintf("must be between 0 and %g attempts per second, got %g", float64(MaxDeliveryRate), l.Rate)}
	case l.Burst < 0 || l.Burst > MaxDeliveryInFlight:
		return &SubscriptionError{Field: "limits.burst", Reason: fmt.Sprintf("must be between 0 and %d, got %d", MaxDeliveryInFlight, l.Burst)}
	case l.Burst > 0 && l.Rate == 0:
		return &SubscriptionError{Field: "limits.burst", Reason: "needs a rate"}
	case l.MaxInFlight < 0 || l.MaxInFlight > MaxDeliveryInFlight:
		return &SubscriptionError{Field: "limits.maxInFlight", Reason: fmt.Sprintf("must be between 0 and %d, got %d", MaxDeliveryInFlight, l.MaxInFlight)}
	}
	return nil
}

// burst is the token bucket's size.
func (l DeliveryLimits) burst() int {
	if l.Burst > 0 {
		return l.Burst
	}
	return max(1, int(math.Ceil(l.Rate)))
}

// DefaultFailingMaxInFlight is the default Config.FailingMaxInFlight.
const DefaultFailingMaxInFlight = 2

// Waiting deliveries are paced: each that must wait is given the next
// free moment of its subscription (or ordering key), one step after the
// one given before, so that n waiting deliveries come back one by one over
// n steps instead of all polling together. A step is the subscription's
// recent attempt duration divided by its cap (for the in-flight cap), or
// its attempt duration (for an ordering key), within these bounds, and
// firstStep while no attempt has ended yet; no wait is longer than
// maxWait, after which a delivery asks again.
const (
	minStep   = time.Millisecond
	maxStep   = 30 * time.Second
	firstStep = 20 * time.Millisecond
	maxWait   = 5 * time.Minute
)

// limiters holds the per-subscription state of the rate limits, in-flight
// caps and failing flags of one client. Its zero value is not ready: see
// newLimiters.
type limiters struct {
	defaultMax int // Config.MaxInFlightPerSubscription; 0: no cap
	failingMax int // cap while failing; 0: none
	subs       sync.Map
}

func newLimiters(cfg *Config) (*limiters, error) {
	l := &limiters{defaultMax: cfg.MaxInFlightPerSubscription, failingMax: cfg.FailingMaxInFlight}
	switch {
	case l.defaultMax < 0 || l.defaultMax > MaxDeliveryInFlight:
		return nil, fmt.Errorf("outhook: Config.MaxInFlightPerSubscription must be between 0 and %d, got %d", MaxDeliveryInFlight, l.defaultMax)
	case l.failingMax > MaxDeliveryInFlight:
		return nil, fmt.Errorf("outhook: Config.FailingMaxInFlight must be at most %d, got %d", MaxDeliveryInFlight, l.failingMax)
	case l.failingMax == 0:
		l.failingMax = DefaultFailingMaxInFlight
	case l.failingMax < 0:
		l.failingMax = 0
	}
	return l, nil
}

// subLimiter is the state of one subscription's limits in this process.
type subLimiter struct {
	inFlight atomic.Int32
	// failing is set by an attempt that failed and may be retried (the
	// destination is down, slow or overloaded) and cleared by one that
	// succeeded.
	failing atomic.Bool
	// avgNanos is a moving average of the subscription's attempt
	// durations, for the wait at the in-flight cap.
	avgNanos atomic.Int64
	// rated is set while the subscription has a Rate (bucket is not nil).
	rated atomic.Bool

	mu      sync.Mutex
	limits  DeliveryLimits // the limits the bucket was set up for
	bucket  *rate.Limiter  // nil without a Rate
	granted map[string]time.Time
	swept   time.Time
	capNext time.Time            // the next free moment at the in-flight cap
	lanes   map[string]time.Time // the next free moment of each ordering key
	lanesAt time.Time            // when lanes was last swept
}

// get returns the state of a subscription, set up for its current limits.
func (l *limiters) get(sub *Subscription) *subLimiter {
	v, ok := l.subs.Load(sub.ID)
	if !ok {
		v, _ = l.subs.LoadOrStore(sub.ID, &subLimiter{})
	}
	s := v.(*subLimiter)
	if sub.Limits.Rate > 0 || s.rated.Load() {
		s.mu.Lock()
		s.setRate(sub.Limits)
		s.mu.Unlock()
	}
	return s
}

// forget drops the state of a subscription that no longer exists.
func (l *limiters) forget(subID string) { l.subs.Delete(subID) }

// setRate brings the token bucket in line with lim. Call with mu held.
func (s *subLimiter) setRate(lim DeliveryLimits) {
	if s.limits.Rate == lim.Rate && s.limits.burst() == lim.burst() {
		return
	}
	s.limits = lim
	switch {
	case lim.Rate == 0:
		s.bucket, s.granted = nil, nil
	case s.bucket == nil:
		s.bucket = rate.NewLimiter(rate.Limit(lim.Rate), lim.burst())
	default:
		// Changing a bucket keeps its tokens and the reservations made.
		now := time.Now()
		s.bucket.SetLimitAt(now, rate.Limit(lim.Rate))
		s.bucket.SetBurstAt(now, lim.burst())
	}
	s.rated.Store(s.bucket != nil)
}

// acquire asks to start an attempt of delivery id to sub now. It returns
// the subscription's state, to release when the attempt ends, or nil and
// how long to wait before asking again. Waiting jobs leave their worker
// free for other subscriptions: a slow or dead destination holds at most
// its cap of workers, and its retries do not keep first attempts to other
// destinations waiting.
func (l *limiters) acquire(sub *Subscription, id string, now time.Time) (*subLimiter, time.Duration) {
	s := l.get(sub)
	limit := sub.Limits.MaxInFlight
	if limit == 0 {
		limit = l.defaultMax
	}
	if l.failingMax > 0 && (s.failing.Load() || sub.Health.Failing()) && (limit == 0 || limit > l.failingMax) {
		limit = l.failingMax
	}
	n := s.inFlight.Add(1)
	if limit > 0 && int(n) > limit {
		s.inFlight.Add(-1)
		return nil, s.capWait(now, limit)
	}
	if s.rated.Load() {
		if wait := s.reserve(id, now); wait > 0 {
			s.inFlight.Add(-1)
			return nil, wait
		}
	}
	return s, 0
}

// reserve takes a token of the rate limit for delivery id, or reserves
// the next one and returns how long to wait for it. A delivery that comes
// back for its reservation starts at once: reservations are kept in order,
// so waiting deliveries start at the rate, oldest reservation first,
// instead of all coming back together.
func (s *subLimiter) reserve(id string, now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bucket == nil {
		return 0
	}
	if at, ok := s.granted[id]; ok {
		if !now.Before(at.Add(-time.Millisecond)) {
			delete(s.granted, id)
			return 0
		}
		return at.Sub(now)
	}
	r := s.bucket.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	if wait <= 0 {
		return 0
	}
	if s.granted == nil {
		s.granted = map[string]time.Time{}
	}
	s.granted[id] = now.Add(wait)
	// A reservation whose delivery never came back (another node took
	// its job, or it was deleted) is dropped a minute after its time.
	if len(s.granted) > 1024 && now.Sub(s.swept) > 10*time.Second {
		s.swept = now
		for k, at := range s.granted {
			if now.Sub(at) > time.Minute {
				delete(s.granted, k)
			}
		}
	}
	return wait
}

// capWait is how long a delivery waits when the in-flight cap (limit) is
// reached: until the subscription's next free moment.
func (s *subLimiter) capWait(now time.Time, limit int) time.Duration {
	step := s.step(limit)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.capNext = later(s.capNext, now).Add(step)
	return pacedWait(s.capNext.Sub(now), step)
}

// laneWait is how long a delivery with an ordering key waits while the
// first delivery of its key is being attempted: until the key's next free
// moment.
func (s *subLimiter) laneWait(key string, now time.Time) time.Duration {
	step := s.step(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lanes == nil {
		s.lanes = map[string]time.Time{}
	}
	if len(s.lanes) > 1024 && now.Sub(s.lanesAt) > 10*time.Second {
		s.lanesAt = now
		for k, at := range s.lanes {
			if at.Before(now) {
				delete(s.lanes, k)
			}
		}
	}
	next := later(s.lanes[key], now).Add(step)
	s.lanes[key] = next
	return pacedWait(next.Sub(now), step)
}

// step is the pacing step of a subscription whose attempts run limit at a
// time.
func (s *subLimiter) step(limit int) time.Duration {
	avg := time.Duration(s.avgNanos.Load())
	if avg == 0 {
		return firstStep
	}
	return min(max(avg/time.Duration(limit), minStep), maxStep)
}

// later returns the later of two times.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// pacedWait bounds a paced wait, and spreads it within a step.
func pacedWait(wait, step time.Duration) time.Duration {
	return min(wait, maxWait) + rand.N(step/4+1)
}

// release ends an attempt that acquire let start.
// An empty outcome is an attempt that did not happen (the queue is
// shutting down).
func (s *subLimiter) release(outcome AttemptOutcome, took time.Duration) {
	s.inFlight.Add(-1)
	switch outcome {
	case "":
		return
	case AttemptSucceeded:
		if s.failing.Load() {
			s.failing.Store(false)
		}
	case AttemptRetryable:
		if !s.failing.Load() {
			s.failing.Store(true)
		}
	}
	// An average over about the last eight attempts; races between
	// concurrent updates lose an update now and then, which is harmless.
	old := s.avgNanos.Load()
	s.avgNanos.Store(old + (int64(took)-old)/8)
}
