package outhooktest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
)

// What a plugin's unit test does: the fake deliverer fails once, the client
// retries at once, and the test checks what was delivered. In a test, use
// NewClient, WaitIdle and AssertDelivered, which take the test's testing.TB.
func Example() {
	reg := outhook.NewEventRegistry()
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[Ping]{Hook: ping, DisplayName: "Ping"}, outhook.PluginMetadata{PluginID: "test"})

	fake := outhooktest.NewDeliverer("fake").Script(outhooktest.FailRetryable(errors.New("503")))
	c, err := outhook.NewClient(&outhook.Config{Registry: reg, Deliverers: []outhook.Deliverer{fake},
		DeliveryRetry: outhooktest.NoDelay(3), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	_ = c.Start(context.Background())
	defer c.Stop(context.Background())

	_, _ = c.CreateSubscription(context.Background(), outhook.Subscription{Events: []string{"test.ping"}, DelivererID: "fake"})
	_ = outhook.EmitHook(context.Background(), c, ping, Ping{N: 42})
	_ = c.WaitIdle(context.Background()) // in a test: outhooktest.WaitIdle(t, c)

	for _, call := range fake.Calls() {
		fmt.Println(call.Request.Attempt, call.Outcome)
	}
	// In a test: outhooktest.AssertDelivered(t, fake, "test.ping", Ping{N: 42})
	fmt.Println(string(fake.Delivered()[0].Request.Payload))
	// Output:
	// 1 fail-retryable
	// 2 succeed
	// {"n":42}
}
