package render

import (
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/stretchr/testify/require"
)

func TestEventData(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	req := &outhook.DeliveryRequest{EventID: "a.b", DeliveryID: "dlv_1", OccurredAt: at, Event: outhook.Event{DisplayName: "B"}}
	d := NewEventData(req, nil)
	require.Equal(t, map[string]any{}, d.Payload, "a non-object payload is an empty map")

	e := NewEventEngine(64)
	_, err := e.Parse("summaryTemplate", "{{.MessageID}}")
	require.Error(t, err, "EventData has no MessageID")
	tmpl, err := e.Parse("summaryTemplate", "{{.Event.DisplayName}}: {{.Payload.title}}{{.Payload.missing}} {{.DeliveryID}}")
	require.NoError(t, err)
	out, err := e.Execute(tmpl, NewEventData(req, map[string]any{"title": "db down"}))
	require.NoError(t, err)
	require.Equal(t, "B: db down dlv_1", out)
}
