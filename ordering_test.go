package outhook_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
)

type orderedPayload struct {
	Incident struct {
		ID    string `json:"id"`
		Level int    `json:"level"`
	} `json:"incident"`
	Key      any             `json:"key,omitempty"`
	At       time.Time       `json:"at"`
	Raw      json.RawMessage `json:"raw,omitempty"`
	Tags     []string        `json:"tags"`
	Internal string          `json:"-"`
	Embedded
}

type Embedded struct {
	Region string `json:"region"`
}

var orderedHook = outhook.MustNewHook[orderedPayload]("ordered")

func TestOrderingKeyChecked(t *testing.T) {
	for _, tc := range []struct {
		key, want string
	}{
		{"incident.id", ""},
		{"incident.level", ""},
		{"region", ""}, // a field of an embedded struct
		{"key", ""},    // an interface: checked per event
		{"at", ""},     // a time.Time encodes itself, as a string
		{"raw", ""},    // so does a json.RawMessage
		{"incident", `outhook: event "p.ordered": OrderingKey: "incident" is a struct { ID string "json:\"id\""; Level int "json:\"level\"" }: an ordering key must be a string, a number or a boolean`},
		{"tags", `outhook: event "p.ordered": OrderingKey: "tags" is a []string: an ordering key must be a string, a number or a boolean`},
		{"incident.name", `outhook: event "p.ordered": OrderingKey: "incident.name": struct { ID string "json:\"id\""; Level int "json:\"level\"" } has no JSON field "name"`},
		{"Internal", `outhook: event "p.ordered": OrderingKey: "Internal": outhook_test.orderedPayload has no JSON field "Internal"`},
		{"incident..id", `outhook: event "p.ordered": OrderingKey: "incident..id" has an empty segment`},
		{"incident.id.x", `outhook: event "p.ordered": OrderingKey: "incident.id.x": "x" is not an object: incident.id is a string`},
		{strings.Repeat("a", 257), `outhook: event "p.ordered": OrderingKey: path is 257 bytes long, at most 256`},
	} {
		reg := outhook.NewEventRegistry()
		ev, err := outhook.RegisterEvent(reg, outhook.EventDefinition[orderedPayload]{Hook: orderedHook, DisplayName: "Ordered", OrderingKey: tc.key},
			outhook.PluginMetadata{PluginID: "p"})
		if tc.want == "" {
			require.NoError(t, err, tc.key)
			assert.Equal(t, tc.key, ev.OrderingKey)
		} else {
			assert.EqualError(t, err, tc.want)
			assert.Empty(t, reg.Events(), "nothing registered")
		}
	}
	// With a transform, only the form is checked: the payload is the
	// transform's.
	reg := outhook.NewEventRegistry()
	_, err := outhook.RegisterEvent(reg, outhook.EventDefinition[orderedPayload]{Hook: orderedHook, DisplayName: "Ordered", OrderingKey: "anything.goes",
		TransformPayload: func(p orderedPayload) (map[string]any, error) {
			return map[string]any{"anything": map[string]any{"goes": 1}}, nil
		}},
		outhook.PluginMetadata{PluginID: "p"})
	require.NoError(t, err)
}

// A delivery keeps its event's ordering key as text: numbers and booleans
// as JSON writes them, a long value as its hash; a payload without the
// field, or with an object there, is not ordered.
func TestOrderingKeyValues(t *testing.T) {
	reg := outhook.NewEventRegistry()
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[orderedPayload]{Hook: orderedHook, DisplayName: "Ordered", OrderingKey: "key"},
		outhook.PluginMetadata{PluginID: "p"})
	fake := outhooktest.NewDeliverer("fake")
	c := outhooktest.NewClient(t, &outhook.Config{Registry: reg, Deliverers: []outhook.Deliverer{fake}, OrderingSettle: -1})
	ctx := context.Background()
	sub, err := c.CreateSubscription(ctx, outhook.Subscription{Events: []string{"p.ordered"}, DelivererID: "fake"})
	require.NoError(t, err)
	long := strings.Repeat("é", 150)
	for _, key := range []any{"inc-1", 42, 1.5, true, nil, map[string]any{"a": 1}, long} {
		require.NoError(t, outhook.EmitHook(ctx, c, orderedHook, orderedPayload{Key: key, Tags: []string{}}))
	}
	outhooktest.WaitIdle(t, c)
	ds, err := c.Deliveries(ctx, outhook.DeliveryQuery{SubscriptionID: sub.ID})
	require.NoError(t, err)
	require.Len(t, ds, 7)
	var got []string
	for _, d := range ds {
		assert.Equal(t, outhook.DeliverySucceeded, d.Status)
		if strings.HasPrefix(d.OrderingKey, "sha256:") {
			assert.Len(t, d.OrderingKey, len("sha256:")+64, "a long key is kept as its hash")
			continue
		}
		got = append(got, d.OrderingKey)
	}
	assert.ElementsMatch(t, []string{"inc-1", "42", "1.5", "true", "", ""}, got)
}

// An ordered delivery waits OrderingSettle after its event was emitted, so
// that the events emitted just before it are routed first. The bound is a
// lower one: a slow machine only stretches the wait.
func TestOrderingSettle(t *testing.T) {
	reg := outhook.NewEventRegistry()
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[orderedPayload]{Hook: orderedHook, DisplayName: "Ordered", OrderingKey: "incident.id"},
		outhook.PluginMetadata{PluginID: "p"})
	fake := outhooktest.NewDeliverer("fake")
	const settle = 150 * time.Millisecond
	c := outhooktest.NewClient(t, &outhook.Config{Registry: reg, Deliverers: []outhook.Deliverer{fake}, OrderingSettle: settle})
	ctx := context.Background()
	_, err := c.CreateSubscription(ctx, outhook.Subscription{Events: []string{"p.ordered"}, DelivererID: "fake"})
	require.NoError(t, err)
	var p orderedPayload
	p.Incident.ID = "inc-1"
	require.NoError(t, outhook.EmitHook(ctx, c, orderedHook, p))
	outhooktest.WaitIdle(t, c)
	ds, err := c.Deliveries(ctx, outhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	d := ds[0]
	assert.Equal(t, "inc-1", d.OrderingKey)
	require.Len(t, d.Attempts, 1, "waiting is not an attempt")
	assert.GreaterOrEqual(t, d.Attempts[0].StartedAt.Sub(d.OccurredAt), settle)

	_, err = outhook.NewClient(&outhook.Config{OrderingSettle: -time.Second})
	require.NoError(t, err, "a negative settle means none")
}
