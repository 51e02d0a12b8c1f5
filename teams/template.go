package teams

import (
	"text/template"
	"time"

	"github.com/outhook/outhook"
	shared "github.com/outhook/outhook/internal/render"
)

// TemplateData is what titleTemplate and textTemplate are executed with:
//
//	{{.EventID}} {{.Event.DisplayName}} {{.Event.Category}} {{.DeliveryID}}
//	{{.OccurredAt}} {{.Payload.title}} {{.Payload.incident.id}}
//
// A payload field that is missing renders as nothing. A template that fails
// at run time (say, indexing into a field that is not an object) falls back
// to the default (the event's name for the title, no text) rather than
// failing the delivery.
type TemplateData struct {
	// EventID is the event's ID, such as "incident.incident.created".
	EventID string
	// Event describes the event; it is zero for events not registered in
	// this process.
	Event outhook.Event
	// DeliveryID is the delivery's ID, stable across its retries.
	DeliveryID string
	// OccurredAt is when the event was emitted.
	OccurredAt time.Time
	// Payload is the payload object, numbers kept as json.Number; nil when
	// the payload is not an object.
	Payload map[string]any
}

func newTemplateData(req *outhook.DeliveryRequest, doc map[string]any) *TemplateData {
	if doc == nil {
		doc = map[string]any{}
	}
	return &TemplateData{
		EventID:    req.EventID,
		Event:      req.Event,
		DeliveryID: req.DeliveryID,
		OccurredAt: req.OccurredAt,
		Payload:    doc,
	}
}

// templates parses and runs the templates of a config. A missing payload
// field renders as nothing; a field of a missing object fails the template
// (which then falls back to the default). Parse checks, by running a
// template on empty data, that it names only fields TemplateData has:
// errors from payload fields that are missing in the empty sample are
// expected, a field TemplateData or outhook.Event lacks is a mistake.
var templates = &shared.Engine{
	Missing:     shared.MissingZero,
	MaxOutput:   maxTemplateOutput,
	Sample:      func() any { return &TemplateData{Payload: map[string]any{}} },
	SampleFails: shared.UnknownField,
}

// parseTemplate parses a template of the config field name and checks, by
// running it on empty data, that it names only fields TemplateData has.
func parseTemplate(name, text string) (*template.Template, error) {
	return templates.Parse(name, text)
}

// render executes t on data, capping its output at maxTemplateOutput
// bytes. It returns "" when the template fails.
func render(t *template.Template, data *TemplateData) string {
	out, err := templates.Execute(t, data)
	if err != nil {
		return ""
	}
	return out
}
