package pagerduty

import (
	"text/template"

	shared "github.com/outhook/outhook/internal/render"
)

// TemplateData is what the summary template is executed with:
//
//	{{.EventID}} {{.Event.DisplayName}} {{.Event.Category}} {{.DeliveryID}}
//	{{.OccurredAt}} {{.Payload.title}} {{.Payload.incident.id}}
//
// A payload field that is missing renders as nothing. A template that fails
// at run time (say, indexing into a field that is not an object) falls back
// to the default summary rather than failing the delivery.
type TemplateData = shared.EventData

// newTemplateData returns the template data of a delivery.
var newTemplateData = shared.NewEventData

// templates parses and runs the templates of a config (see
// shared.NewEventEngine).
var templates = shared.NewEventEngine(maxTemplateOutput)

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
