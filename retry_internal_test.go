package outhook

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/stretchr/testify/require"
)

func TestDefaultDeliverySchedule(t *testing.T) {
	want := []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
		5 * time.Hour, 10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour}
	var p RetryPolicy
	for i, w := range want {
		d, ok := p.delay(i+1, DeliverySchedule)
		require.True(t, ok)
		require.InDelta(t, float64(w), float64(d), float64(w)/10+1, "retry %d", i+1)
	}
	_, ok := p.delay(len(want)+1, DeliverySchedule)
	require.False(t, ok, "ten attempts in all")
}

func TestScheduleJitterSpreads(t *testing.T) {
	seen := map[time.Duration]bool{}
	for range 20 {
		s := NewSchedule(time.Minute)
		seen[s.NextBackOff()] = true
	}
	require.Greater(t, len(seen), 1)
	s := &Schedule{Delays: []time.Duration{time.Second}}
	require.Equal(t, time.Second, s.NextBackOff())
	require.Equal(t, backoff.Stop, s.NextBackOff())
	s.Reset()
	require.Equal(t, time.Second, s.NextBackOff())
}

func TestRetryAfterNeverEarlierAndCapped(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	fixed := func(d time.Duration) func() backoff.BackOff {
		return func() backoff.BackOff { return backoff.NewConstantBackOff(d) }
	}
	p := RetryPolicy{NewBackOff: fixed(time.Minute), MaxRetryAfter: 10 * time.Minute}

	at, ok := p.retryAt(now, 1, 0, nil)
	require.True(t, ok)
	require.Equal(t, now.Add(time.Minute), at)

	at, _ = p.retryAt(now, 1, 5*time.Second, nil)
	require.Equal(t, now.Add(time.Minute), at, "Retry-After never brings a retry earlier")

	at, _ = p.retryAt(now, 1, 3*time.Minute, nil)
	require.Equal(t, now.Add(3*time.Minute), at)

	at, _ = p.retryAt(now, 1, 48*time.Hour, nil)
	require.Equal(t, now.Add(10*time.Minute), at, "Retry-After is capped")

	at, _ = RetryPolicy{NewBackOff: fixed(0)}.retryAt(now, 1, 48*time.Hour, nil)
	require.Equal(t, now.Add(DefaultMaxRetryAfter), at, "default cap")

	stop := RetryPolicy{NewBackOff: func() backoff.BackOff { return &backoff.StopBackOff{} }}
	_, ok = stop.retryAt(now, 1, time.Second, nil)
	require.False(t, ok)
}

func TestHandlerSchedule(t *testing.T) {
	var p RetryPolicy
	prev := time.Duration(0)
	for i := 1; i <= 7; i++ {
		d, ok := p.delay(i, HandlerSchedule)
		require.True(t, ok, "retry %d", i)
		require.Greater(t, d, prev/2)
		require.LessOrEqual(t, d, 5*time.Minute+30*time.Second)
		prev = d
	}
	_, ok := p.delay(8, HandlerSchedule)
	require.False(t, ok)
}

func TestClassify(t *testing.T) {
	o, ra := classify(nil)
	require.Equal(t, AttemptSucceeded, o)
	require.Zero(t, ra)
	o, _ = classify(Permanent(errString("x")))
	require.Equal(t, AttemptPermanent, o)
	o, ra = classify(RetryAfter(errString("x"), time.Second))
	require.Equal(t, AttemptRetryable, o)
	require.Equal(t, time.Second, ra)
	o, _ = classify(errString("x"))
	require.Equal(t, AttemptRetryable, o)
	require.Nil(t, Permanent(nil))
	require.Nil(t, RetryAfter(nil, time.Second))
}

type errString string

func (e errString) Error() string { return string(e) }

func TestFilterMatch(t *testing.T) {
	doc := map[string]any{
		"systemIds": []any{"sys-1", "sys-2"},
		"severity":  "critical",
		"count":     jsonNumber("3"),
		"flag":      true,
		"nested":    map[string]any{"team": "db"},
	}
	for _, tc := range []struct {
		f    Filter
		want bool
	}{
		{Filter{Field: "systemIds", AnyOf: []string{"sys-2"}}, true},
		{Filter{Field: "systemIds", AnyOf: []string{"sys-3", "sys-1"}}, true},
		{Filter{Field: "systemIds", AnyOf: []string{"sys-3"}}, false},
		{Filter{Field: "severity", AnyOf: []string{"minor", "critical"}}, true},
		{Filter{Field: "severity", AnyOf: []string{"minor"}}, false},
		{Filter{Field: "count", AnyOf: []string{"3"}}, true},
		{Filter{Field: "flag", AnyOf: []string{"true"}}, true},
		{Filter{Field: "nested.team", AnyOf: []string{"db"}}, true},
		{Filter{Field: "nested.missing", AnyOf: []string{"db"}}, false},
		{Filter{Field: "missing", AnyOf: []string{"x"}}, false},
		{Filter{Field: "severity.deeper", AnyOf: []string{"x"}}, false},
	} {
		require.Equal(t, tc.want, tc.f.match(doc), "%+v", tc.f)
	}
}

func TestTruncate(t *testing.T) {
	require.Equal(t, "abc", truncate("abc", 5))
	require.Equal(t, "ab", truncate("abc", 2))
	require.Equal(t, "", truncate("é", 1), "never splits a rune")
}

func jsonNumber(s string) any { return json.Number(s) }
