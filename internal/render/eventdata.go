package render

import (
	"time"

	"github.com/outhook/outhook"
)

// EventData is the template data of the deliverers whose templates see the
// event, the delivery ID, the time and the payload, and nothing else
// (pagerduty and teams export it as TemplateData). A template naming a
// field it lacks, such as {{.MessageID}}, is refused when it is parsed.
type EventData struct {
	// EventID is the event's ID, such as "incident.incident.created".
	EventID string
	// Event describes the event; it is zero for events not registered in
	// this process.
	Event outhook.Event
	// DeliveryID is the delivery's ID, stable across its retries.
	DeliveryID string
	// OccurredAt is when the event was emitted.
	OccurredAt time.Time
	// Payload is the payload object, numbers kept as json.Number; empty
	// when the payload is not an object.
	Payload map[string]any
}

// NewEventData returns the template data of a delivery whose decoded
// payload object is doc (nil when the payload is not an object).
func NewEventData(req *outhook.DeliveryRequest, doc map[string]any) *EventData {
	if doc == nil {
		doc = map[string]any{}
	}
	return &EventData{
		EventID:    req.EventID,
		Event:      req.Event,
		DeliveryID: req.DeliveryID,
		OccurredAt: req.OccurredAt,
		Payload:    doc,
	}
}

// NewEventEngine returns the engine of EventData templates: a missing
// payload field renders as nothing, a field of a missing object fails the
// template (the deliverer then falls back to its default), output stops at
// maxOutput bytes, and Parse refuses fields EventData lacks by running the
// template on empty data.
func NewEventEngine(maxOutput int) *Engine {
	return &Engine{
		Missing:     MissingZero,
		MaxOutput:   maxOutput,
		Sample:      func() any { return &EventData{Payload: map[string]any{}} },
		SampleFails: UnknownField,
	}
}
