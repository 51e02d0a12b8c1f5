package outhook

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// RetryPolicy decides when failed work is tried again: a delivery whose
// attempt failed, or a hook event whose handler or transform failed.
//
// The policy is replayed from the start for every decision: the client asks
// a fresh BackOff from NewBackOff for its n-th delay, so the schedule
// survives restarts and moves between nodes with the job. Any
// backoff.BackOff works (backoff.NewExponentialBackOff with MaxElapsedTime
// 0, backoff.WithMaxRetries, backoff.ZeroBackOff in tests); backoff.Stop
// ends the retries.
//
// Because every decision replays a fresh BackOff, a stop must count
// attempts (backoff.WithMaxRetries, a Schedule's length): a stop on elapsed
// time never comes, since each fresh BackOff has just started.
// NewClient refuses an *backoff.ExponentialBackOff with a MaxElapsedTime
// for that reason.
type RetryPolicy struct {
	// NewBackOff returns a fresh schedule. Nil means the default for the
	// policy's use: DeliverySchedule for deliveries, HandlerSchedule for
	// hook handlers and transforms.
	NewBackOff func() backoff.BackOff
	// MaxRetryAfter caps the wait a destination may ask for with RetryAfter.
	// A Retry-After never brings a retry earlier than the schedule. Zero
	// means one hour.
	MaxRetryAfter time.Duration
}

// DefaultMaxRetryAfter is the cap on Retry-After when
// RetryPolicy.MaxRetryAfter is zero.
const DefaultMaxRetryAfter = time.Hour

// delay returns how long to wait before the attempt after the given one
// (1-based), or false when there is none left.
func (p RetryPolicy) delay(attempt int, fallback func() backoff.BackOff) (time.Duration, bool) {
	newBackOff := p.NewBackOff
	if newBackOff == nil {
		newBackOff = fallback
	}
	b := newBackOff()
	var d time.Duration
	for range attempt {
		if d = b.NextBackOff(); d == backoff.Stop {
			return 0, false
		}
	}
	return d, true
}

// retryAt returns when to retry after a failed attempt (1-based), honouring
// a destination's retry-after request without letting it bring the retry
// earlier, or false when the schedule is exhausted.
func (p RetryPolicy) retryAt(now time.Time, attempt int, retryAfter time.Duration, fallback func() backoff.BackOff) (time.Time, bool) {
	d, ok := p.delay(attempt, fallback)
	if !ok {
		return time.Time{}, false
	}
	if retryAfter > 0 {
		limit := p.MaxRetryAfter
		if limit <= 0 {
			limit = DefaultMaxRetryAfter
		}
		d = max(d, min(retryAfter, limit))
	}
	return now.Add(d), true
}

// Schedule is a backoff.BackOff that walks a fixed list of delays, each
// randomized by ±Jitter of itself, and then stops.
type Schedule struct {
	// Delays are the waits before the second, third, ... attempts.
	Delays []time.Duration
	// Jitter is the fraction, between 0 and 1, by which each delay is
	// randomized, so that retries of many deliveries failing together do
	// not arrive together.
	Jitter float64

	next int
}

// NewSchedule returns a Schedule of the given delays with ±10 % jitter.
func NewSchedule(delays ...time.Duration) *Schedule {
	return &Schedule{Delays: delays, Jitter: 0.1}
}

// NextBackOff returns the next delay, or backoff.Stop after the last.
func (s *Schedule) NextBackOff() time.Duration {
	if s.next >= len(s.Delays) {
		return backoff.Stop
	}
	d := s.Delays[s.next]
	s.next++
	if s.Jitter > 0 && d > 0 {
		spread := float64(d) * min(s.Jitter, 1)
		d = time.Duration(float64(d) - spread + rand.Float64()*2*spread)
	}
	return d
}

// Reset starts the schedule again.
func (s *Schedule) Reset() { s.next = 0 }

// DeliverySchedule is the default delivery retry schedule, after the
// Standard Webhooks example: the first attempt at once, then retries after
// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h, each with ±10 %
// jitter: ten attempts over about three days.
func DeliverySchedule() backoff.BackOff {
	return NewSchedule(5*time.Second, 5*time.Minute, 30*time.Minute, 2*time.Hour,
		5*time.Hour, 10*time.Hour, 14*time.Hour, 20*time.Hour, 24*time.Hour)
}

// HandlerSchedule is the default retry schedule of hook handlers and
// transforms: exponential from 1 s, doubling up to 5 min, ±10 % jitter,
// eight attempts in all.
func HandlerSchedule() backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = time.Second
	b.Multiplier = 2
	b.RandomizationFactor = 0.1
	b.MaxInterval = 5 * time.Minute
	b.MaxElapsedTime = 0
	return backoff.WithMaxRetries(b, 7)
}

// validate refuses policies whose stop condition cannot work when replayed.
func (p RetryPolicy) validate(field string) error {
	if p.MaxRetryAfter < 0 {
		return fmt.Errorf("outhook: Config.%s.MaxRetryAfter must not be negative, got %s", field, p.MaxRetryAfter)
	}
	if p.NewBackOff == nil {
		return nil
	}
	b := p.NewBackOff()
	if b == nil {
		return fmt.Errorf("outhook: Config.%s.NewBackOff returned nil", field)
	}
	if e, ok := b.(*backoff.ExponentialBackOff); ok && e.MaxElapsedTime > 0 {
		return fmt.Errorf("outhook: Config.%s: an ExponentialBackOff with MaxElapsedTime %s would never stop, "+
			"because each retry decision replays a fresh BackOff; set MaxElapsedTime to 0 and bound the retries with backoff.WithMaxRetries", field, e.MaxElapsedTime)
	}
	return nil
}
