package outhooktest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type Ping struct {
	N int `json:"n" validate:"gte=1"`
}

var ping = outhook.MustNewHook[Ping]("ping")

func newRegistry(t *testing.T) *outhook.EventRegistry {
	reg := outhook.NewEventRegistry()
	_, err := outhook.RegisterEvent(reg, outhook.EventDefinition[Ping]{Hook: ping, DisplayName: "Ping"}, outhook.PluginMetadata{PluginID: "test"})
	require.NoError(t, err)
	return reg
}

func TestScriptedOutcomes(t *testing.T) {
	fake := outhooktest.NewDeliverer("fake").Script(
		outhooktest.FailRetryable(nil),
		outhooktest.FailRetryAfter(errors.New("slow down"), time.Millisecond),
		outhooktest.Panic("boom"),
	)
	c := outhooktest.NewClient(t, &outhook.Config{Registry: newRegistry(t), Deliverers: []outhook.Deliverer{fake},
		DeliveryRetry: outhooktest.NoDelay(4)})
	_, err := c.CreateSubscription(context.Background(), outhook.Subscription{Events: []string{"test.ping"}, DelivererID: "fake"})
	require.NoError(t, err)
	require.NoError(t, outhook.EmitHook(context.Background(), c, ping, Ping{N: 1}))
	outhooktest.WaitIdle(t, c)

	calls := fake.Calls()
	require.Len(t, calls, 4)
	require.Equal(t, []string{"fail-retryable", "fail-retryable", "panic", "succeed"},
		[]string{calls[0].Outcome.String(), calls[1].Outcome.String(), calls[2].Outcome.String(), calls[3].Outcome.String()})
	var ra *outhook.RetryAfterError
	require.ErrorAs(t, calls[1].Err, &ra)
	require.Equal(t, time.Millisecond, ra.After)
	require.Len(t, fake.Delivered(), 1)
	outhooktest.AssertDelivered(t, fake, "test.ping", Ping{N: 1})
	require.Equal(t, []Ping{{N: 1}}, outhooktest.DeliveredTo[Ping](t, fake, "test.ping"))
}

func TestPermanentAndReset(t *testing.T) {
	fake := outhooktest.NewDeliverer("fake").SetDefault(outhooktest.FailPermanent(nil))
	c := outhooktest.NewClient(t, &outhook.Config{Registry: newRegistry(t), Deliverers: []outhook.Deliverer{fake}})
	_, err := c.CreateSubscription(context.Background(), outhook.Subscription{Events: []string{"test.ping"}, DelivererID: "fake"})
	require.NoError(t, err)
	require.NoError(t, outhook.EmitHook(context.Background(), c, ping, Ping{N: 2}))
	outhooktest.WaitIdle(t, c)
	require.Len(t, fake.Calls(), 1, "permanent failures are not retried")
	var pe *outhook.PermanentError
	require.ErrorAs(t, fake.Calls()[0].Err, &pe)
	require.Empty(t, fake.Delivered())
	fake.Reset()
	require.Empty(t, fake.Calls())
}

func TestWaitCalls(t *testing.T) {
	fake := outhooktest.NewDeliverer("fake")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, fake.WaitCalls(ctx, 1), context.DeadlineExceeded)

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- fake.WaitCalls(ctx, 2)
	}()
	for range 2 {
		_, err := fake.Deliver(context.Background(), &outhook.DeliveryRequest{})
		require.NoError(t, err)
	}
	require.NoError(t, <-done)
}

func TestValidateConfig(t *testing.T) {
	fake := outhooktest.NewDeliverer("fake")
	require.NoError(t, fake.ValidateConfig(nil))
	require.NoError(t, fake.ValidateConfig([]byte(`{"a":1}`)))
	require.ErrorIs(t, fake.ValidateConfig([]byte(`[1]`)), outhook.ErrInvalidConfig)
	require.JSONEq(t, `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object"}`, string(fake.ConfigSchema()))
}

// recorder captures test failures instead of failing.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = format
	panic(r)
}

func TestAssertDeliveredReportsMismatch(t *testing.T) {
	fake := outhooktest.NewDeliverer("fake")
	_, err := fake.Deliver(context.Background(), &outhook.DeliveryRequest{EventID: "test.ping", Payload: []byte(`{"n":1}`)})
	require.NoError(t, err)
	for _, want := range [][]Ping{{{N: 2}}, {{N: 1}, {N: 1}}} {
		r := &recorder{TB: t}
		func() {
			defer func() { _ = recover() }()
			outhooktest.AssertDelivered(r, fake, "test.ping", want...)
		}()
		require.NotEmpty(t, r.failed, "mismatch %v is reported", want)
	}
}
