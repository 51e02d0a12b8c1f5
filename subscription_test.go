package outhook_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/outhook/outhook"
	"github.com/stretchr/testify/require"
)

// urlDeliverer is a deliverer with a typed, validated configuration.
type urlDeliverer struct {
	codec *outhook.ConfigCodec[urlConfig]
}

type urlConfig struct {
	URL     string `json:"url" validate:"required,url"`
	Retries int    `json:"retries,omitempty" validate:"gte=0,lte=10"`
}

func newURLDeliverer(t *testing.T) *urlDeliverer {
	codec, err := outhook.NewConfigCodec[urlConfig]("url")
	require.NoError(t, err)
	return &urlDeliverer{codec: codec}
}

func (d *urlDeliverer) ID() string                    { return "url" }
func (d *urlDeliverer) ConfigSchema() json.RawMessage { return d.codec.Schema() }
func (d *urlDeliverer) ValidateConfig(raw json.RawMessage) error {
	_, err := d.codec.Decode(raw)
	return err
}
func (d *urlDeliverer) Deliver(context.Context, *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	return outhook.DeliveryResult{}, nil
}

func TestSubscriptionValidation(t *testing.T) {
	c, _ := setup(t, &outhook.Config{Deliverers: []outhook.Deliverer{newURLDeliverer(t)}})
	ctx := context.Background()
	good := outhook.Subscription{Events: []string{createdEvent}, DelivererID: "url", Config: json.RawMessage(`{"url":"https://example.com/hook"}`)}

	for _, tc := range []struct {
		name  string
		edit  func(s *outhook.Subscription)
		field string
		msg   string
	}{
		{"no events", func(s *outhook.Subscription) { s.Events = nil }, "events", "at least one"},
		{"unknown event", func(s *outhook.Subscription) { s.Events = []string{"incident.incident.exploded"} }, "events[0]", `unknown event "incident.incident.exploded"`},
		{"bad event ID", func(s *outhook.Subscription) { s.Events = []string{createdEvent, "a b"} }, "events[1]", `"a b"`},
		{"bad pattern", func(s *outhook.Subscription) { s.Events = []string{"**.created"} }, "events[0]", `"**"`},
		{"no deliverer", func(s *outhook.Subscription) { s.DelivererID = "" }, "delivererId", "required"},
		{"unknown deliverer", func(s *outhook.Subscription) { s.DelivererID = "carrier-pigeon" }, "delivererId", `unknown deliverer "carrier-pigeon"`},
		{"config missing field", func(s *outhook.Subscription) { s.Config = json.RawMessage(`{}`) }, "config.url", "url"},
		{"config bad value", func(s *outhook.Subscription) { s.Config = json.RawMessage(`{"url":"https://x.io","retries":99}`) }, "config.retries", "retries"},
		{"config unknown field", func(s *outhook.Subscription) { s.Config = json.RawMessage(`{"url":"https://x.io","colour":"red"}`) }, "config", "colour"},
		{"filter without field", func(s *outhook.Subscription) { s.Filter = &outhook.Filter{AnyOf: []string{"a"}} }, "filter.field", "required"},
		{"filter without values", func(s *outhook.Subscription) { s.Filter = &outhook.Filter{Field: "systemIds"} }, "filter.anyOf", "at least one"},
		{"bad ID", func(s *outhook.Subscription) { s.ID = "has space" }, "id", "invalid character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := good
			tc.edit(&s)
			_, err := c.CreateSubscription(ctx, s)
			require.ErrorIs(t, err, outhook.ErrInvalidSubscription)
			var se *outhook.SubscriptionError
			require.ErrorAs(t, err, &se)
			require.Equal(t, tc.field, se.Field)
			require.ErrorContains(t, err, tc.msg)
		})
	}
	subs, err := c.Subscriptions(ctx)
	require.NoError(t, err)
	require.Empty(t, subs, "nothing invalid was stored")

	created, err := c.CreateSubscription(ctx, good)
	require.NoError(t, err)
	require.NotEmpty(t, created.ID)
	require.False(t, created.CreatedAt.IsZero())
	require.False(t, created.Disabled, "new subscriptions are enabled")

	// Updates are validated too, and keep CreatedAt.
	bad := created
	bad.Config = json.RawMessage(`{"url":"not a url"}`)
	_, err = c.UpdateSubscription(ctx, bad)
	require.ErrorIs(t, err, outhook.ErrInvalidSubscription)
	upd := created
	upd.Events = []string{"incident.**"}
	upd.Name = "everything"
	got, err := c.UpdateSubscription(ctx, upd)
	require.NoError(t, err)
	require.Equal(t, created.CreatedAt, got.CreatedAt)
	require.Equal(t, "everything", got.Name)
	_, err = c.UpdateSubscription(ctx, outhook.Subscription{ID: "sub_nope", Events: []string{createdEvent}, DelivererID: "url"})
	require.ErrorIs(t, err, outhook.ErrNotFound)

	// The caller's values are not shared with the store.
	got.Events[0] = "mutated"
	again, err := c.Subscription(ctx, got.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"incident.**"}, again.Events)

	_, err = c.CreateSubscription(ctx, outhook.Subscription{ID: got.ID, Events: []string{createdEvent}, DelivererID: "fake"})
	require.ErrorIs(t, err, outhook.ErrDuplicate)
}
