package jira

import (
	"text/template"
	"time"

	"github.com/outhook/outhook"
	shared "github.com/outhook/outhook/internal/render"
)

// TemplateData is what summaryTemplate and descriptionTemplate are executed
// with:
//
//	{{.EventID}}              incident.incident.created
//	{{.Event.DisplayName}}    Incident Created (empty for unregistered events)
//	{{.Event.Category}}       and the other fields of outhook.Event
//	{{.DeliveryID}}           dlv_... (also in the label)
//	{{.MessageID}}            msg_...
//	{{.OccurredAt}}           when the event was emitted (a time.Time)
//	{{.Payload.title}}        a top-level field of the payload
//	{{.Payload.owner.email}}  a nested field
//
// Payload is the delivery's payload (after the event's transform) decoded
// into a map, numbers as json.Number; it is nil when the payload is not a
// JSON object. A field that is missing, or null, renders as nothing (not
// "<no value>"), nested ones included, so a template written for one event
// renders for others and for test events too.
type TemplateData struct {
	EventID    string
	Event      outhook.Event
	DeliveryID string
	MessageID  string
	OccurredAt time.Time
	Payload    map[string]any
}

// Output bounds of the templates: beyond them execution stops and the text
// is cut.
const (
	maxSummaryOutput     = 8 << 10
	maxDescriptionOutput = 256 << 10
)

// newTemplateData returns the data of req's templates, and the decoded
// payload (any JSON value; nil when there is none or it does not decode).
func newTemplateData(req *outhook.DeliveryRequest) (*TemplateData, any) {
	data := &TemplateData{
		EventID:    req.EventID,
		Event:      req.Event,
		DeliveryID: req.DeliveryID,
		MessageID:  req.MessageID,
		OccurredAt: req.OccurredAt,
	}
	payload, err := shared.Decode(req.Payload, false)
	if err != nil {
		return data, nil
	}
	payload = shared.DropNulls(payload)
	if m, ok := payload.(map[string]any); ok {
		data.Payload = m
	}
	return data, payload
}

// templateSet is one parsed template of a config.
type templateSet struct {
	t *template.Template
}

// templates parses and runs the templates of a config. Parse runs a
// template once on a test event's data, so that errors only execution finds
// (a field TemplateData does not have) are reported when the subscription
// is saved.
//
// Templates run with text/template's default missingkey option, not
// missingkey=zero: with zero, a missing key of a map[string]any yields a nil
// interface that fails any further field access ({{.Payload.a.b}}), while
// the default yields an invalid value that text/template carries through.
// Its "<no value>" rendering is removed by Execute, and null members are
// dropped from the payload (newTemplateData) so that they read as missing.
var templates = shared.Engine{
	Missing:         shared.MissingKeep,
	Sample:          func() any { return sampleData() },
	SampleMaxOutput: 4 << 10,
}

// newTemplateSet parses text as the template named field and runs it once
// on a test event's data.
func newTemplateSet(field, text string) (*templateSet, error) {
	t, err := templates.Parse(field, text)
	if err != nil {
		return nil, err
	}
	return &templateSet{t: t}, nil
}

// sampleData is the data of a test event, as Client.SendTest sends it.
func sampleData() *TemplateData {
	return &TemplateData{
		EventID:    outhook.TestEventID,
		DeliveryID: "test_01KAAAAAAAAAAAAAAAAAAAAAAA",
		MessageID:  "msg_01KAAAAAAAAAAAAAAAAAAAAAAA",
		OccurredAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Payload: map[string]any{
			"test":           true,
			"message":        "This is a test event from outhook.",
			"subscriptionId": "sub_01KAAAAAAAAAAAAAAAAAAAAAAA",
		},
	}
}

// render executes the template on data, keeping at most max bytes of
// output (a longer output is cut, not an error). Execution errors name the
// template's field.
func (ts *templateSet) render(data *TemplateData, max int) (string, error) {
	e := templates
	e.MaxOutput = max
	return e.Execute(ts.t, data)
}
