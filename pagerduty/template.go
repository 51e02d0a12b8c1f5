package pagerduty

import (
	"errors"
	"strings"
	"text/template"
	"time"

	"github.com/outhook/outhook"
)

// TemplateData is what the summary template is executed with:
//
//	{{.EventID}} {{.Event.DisplayName}} {{.Event.Category}} {{.DeliveryID}}
//	{{.OccurredAt}} {{.Payload.title}} {{.Payload.incident.id}}
//
// A payload field that is missing renders as nothing. A template that fails
// at run time (say, indexing into a field that is not an object) falls back
// to the default summary rather than failing the delivery.
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

// parseTemplate parses a template of the config field name and checks, by
// running it on empty data, that it names only fields TemplateData has.
func parseTemplate(name, text string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=zero").Parse(text)
	if err != nil {
		return nil, err
	}
	sample := &TemplateData{Payload: map[string]any{}}
	var w cappedWriter
	if err := t.Execute(&w, sample); err != nil {
		// Errors from payload fields that are missing in the empty sample
		// are expected; a field TemplateData or outhook.Event lacks is a
		// mistake in the template.
		var ee template.ExecError
		if errors.As(err, &ee) && strings.Contains(err.Error(), "can't evaluate field") {
			return nil, err
		}
	}
	return t, nil
}

// noValue is what text/template prints for a missing map key even with
// missingkey=zero, since the payload's values are interfaces.
const noValue = "<no value>"

// render executes t on data, capping its output at maxTemplateOutput
// bytes. It returns "" when the template fails.
func render(t *template.Template, data *TemplateData) string {
	var w cappedWriter
	if err := t.Execute(&w, data); err != nil {
		return ""
	}
	// The cap may have cut a multi-byte character in two.
	return strings.ReplaceAll(strings.ToValidUTF8(w.b.String(), ""), noValue, "")
}

// cappedWriter keeps the first maxTemplateOutput bytes written to it and
// discards the rest, so a template cannot build an unbounded string.
type cappedWriter struct{ b strings.Builder }

func (w *cappedWriter) Write(p []byte) (int, error) {
	if room := maxTemplateOutput - w.b.Len(); room > 0 {
		w.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
