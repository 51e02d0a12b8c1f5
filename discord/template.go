package discord

import (
	"strings"
	"text/template"

	"github.com/outhook/outhook"
	shared "github.com/outhook/outhook/internal/render"
)

// TemplateData is what contentTemplate is executed with: .EventID, .Event,
// .DeliveryID, .MessageID, .OccurredAt, .Attempt, .Payload (the payload's
// JSON object, numbers as json.Number; empty when the payload is not an
// object) and .PayloadJSON (the payload as JSON).
type TemplateData = shared.Data

// maxTemplateOutput caps what a template may write: enough for MaxContent
// characters of four bytes each, and one more so that cutting shows.
const maxTemplateOutput = 4 * (MaxContent + 1)

// maxRanges bounds the {{range}} actions of a template.
const maxRanges = shared.MaxRanges

// templates parses and runs contentTemplate. A missing field renders
// empty, nested ones included ({{.Payload.owner.email}} without an owner).
//
// text/template has no time limit, and a config's author need not be
// trusted with the CPU, so loops are bounded by the payload: {{range}} may
// only go over a field ({{range .Payload.items}}, not {{range 1000000000}}
// nor a variable), not inside another {{range}}, at most maxRanges times;
// and {{define}}, {{block}} and {{template}}, which allow recursion, are
// refused.
var templates = &shared.Engine{
	Restrict:  true,
	Missing:   shared.MissingFill,
	MaxOutput: maxTemplateOutput,
	Invalid:   "\uFFFD",
}

// parseTemplate parses src (nil for an empty src).
func parseTemplate(name, src string) (*template.Template, error) {
	if strings.TrimSpace(src) == "" {
		return nil, nil
	}
	return templates.Parse(name, src)
}

// execute runs tmpl on data, capping its output. It adds the objects the
// template names to data.Payload.
func execute(tmpl *template.Template, data *TemplateData) (string, error) {
	return templates.Execute(tmpl, data)
}

// newTemplateData builds the data of req; doc is the decoded payload.
func newTemplateData(req *outhook.DeliveryRequest, doc any) *TemplateData {
	return shared.NewData(req, doc)
}
