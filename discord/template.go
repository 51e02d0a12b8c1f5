package discord

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"text/template"
	"text/template/parse"
	"time"

	"github.com/outhook/outhook"
)

// TemplateData is what contentTemplate is executed with.
type TemplateData struct {
	// EventID is the event type, such as "incident.incident.created".
	EventID string
	// Event describes the event; it is zero when the event is not
	// registered in this process (test events).
	Event outhook.Event
	// DeliveryID is stable across retries.
	DeliveryID string
	// MessageID is shared by the deliveries of one emitted event.
	MessageID string
	// OccurredAt is when the event was emitted.
	OccurredAt time.Time
	// Attempt is the 1-based number of this attempt.
	Attempt int
	// Payload is the payload's JSON object, numbers as json.Number. It is
	// empty when the payload is not an object.
	Payload map[string]any
	// PayloadJSON is the payload as JSON.
	PayloadJSON string
}

// maxTemplateOutput caps what a template may write: enough for MaxContent
// characters of four bytes each, and one more so that cutting shows.
const maxTemplateOutput = 4 * (MaxContent + 1)

// maxRanges bounds the {{range}} actions of a template.
const maxRanges = 10

// parseTemplate parses src (nil for an empty src). A missing map key
// renders empty ("missingkey=zero", plus the fixes in execute).
//
// text/template has no time limit, and a config's author need not be
// trusted with the CPU, so loops are bounded by the payload: {{range}} may
// only go over a field ({{range .Payload.items}}, not {{range 1000000000}}
// nor a variable), not inside another {{range}}, at most maxRanges times;
// and {{define}}, {{block}} and {{template}}, which allow recursion, are
// refused.
func parseTemplate(name, src string) (*template.Template, error) {
	if strings.TrimSpace(src) == "" {
		return nil, nil
	}
	tmpl, err := template.New(name).Option("missingkey=zero").Parse(src)
	if err != nil {
		return nil, err
	}
	if len(tmpl.Templates()) > 1 {
		err = errors.New("{{define}} and {{block}} are not supported")
	}
	ranges := 0
	inspect(tmpl.Tree.Root, false, func(n parse.Node, inRange bool) {
		switch n := n.(type) {
		case *parse.TemplateNode:
			err = cmp.Or(err, fmt.Errorf("{{template %q}} is not supported", n.Name))
		case *parse.RangeNode:
			ranges++
			switch {
			case inRange:
				err = cmp.Or(err, errors.New("{{range}} inside {{range}} is not supported"))
			case ranges > maxRanges:
				err = cmp.Or(err, fmt.Errorf("more than %d {{range}} actions", maxRanges))
			case !rangesOverField(n.Pipe):
				err = cmp.Or(err, fmt.Errorf("{{range %s}}: range only over a field, such as {{range .Payload.items}}", n.Pipe))
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("template: %s: %w", name, err)
	}
	return tmpl, nil
}

// rangesOverField reports whether a range pipeline is a field of the data
// or of dot, whose length the payload bounds.
func rangesOverField(p *parse.PipeNode) bool {
	if p == nil || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return false
	}
	switch a := p.Cmds[0].Args[0].(type) {
	case *parse.FieldNode, *parse.DotNode:
		return true
	case *parse.VariableNode:
		return len(a.Ident) > 1 && a.Ident[0] == "$" // $.Payload.items
	}
	return false
}

// errOutputFull stops a template that writes more than maxTemplateOutput.
var errOutputFull = errors.New("template output limit reached")

// capWriter keeps up to max bytes and then fails, which stops execution.
type capWriter struct {
	buf bytes.Buffer
	max int
}

func (w *capWriter) Write(p []byte) (int, error) {
	if room := w.max - w.buf.Len(); len(p) > room {
		w.buf.Write(p[:room])
		return room, errOutputFull
	}
	return w.buf.Write(p)
}

// execute runs tmpl on data, capping its output. A missing field renders
// empty, nested ones included ({{.Payload.owner.email}} without an owner):
// text/template prints "<no value>" for a missing map key and fails on a
// field of a missing object, so the objects the template names are added to
// the payload empty before it runs, and "<no value>" is removed after.
func execute(tmpl *template.Template, data *TemplateData) (string, error) {
	fillPaths(tmpl, data.Payload)
	w := &capWriter{max: maxTemplateOutput}
	if err := tmpl.Execute(w, data); err != nil && !errors.Is(err, errOutputFull) {
		return "", err
	}
	out := strings.ReplaceAll(w.buf.String(), "<no value>", "")
	return strings.ToValidUTF8(out, "\uFFFD"), nil
}

// fillPaths adds an empty object to payload for every object on a path the
// template reads from .Payload ({{.Payload.a.b.c}} makes sure of a and a.b)
// that is missing or null. Paths through values that are not objects are
// left alone: reading a field of a string is a template error.
func fillPaths(tmpl *template.Template, payload map[string]any) {
	if payload == nil {
		return
	}
	for _, t := range tmpl.Templates() {
		if t.Tree == nil {
			continue
		}
		inspect(t.Tree.Root, false, func(n parse.Node, _ bool) {
			var idents []string
			switch n := n.(type) {
			case *parse.FieldNode:
				idents = n.Ident
			case *parse.VariableNode:
				if n.Ident[0] == "$" {
					idents = n.Ident[1:]
				}
			}
			if len(idents) < 3 || idents[0] != "Payload" {
				return
			}
			m := payload
			for _, key := range idents[1 : len(idents)-1] {
				switch v := m[key].(type) {
				case nil:
					next := map[string]any{}
					m[key] = next
					m = next
				case map[string]any:
					m = v
				default:
					return
				}
			}
		})
	}
}

// inspect calls f for n and every node under it; inRange tells whether the
// node is inside a {{range}}.
func inspect(n parse.Node, inRange bool, f func(n parse.Node, inRange bool)) {
	if n == nil || reflect.ValueOf(n).IsNil() {
		return
	}
	f(n, inRange)
	switch n := n.(type) {
	case *parse.ListNode:
		for _, c := range n.Nodes {
			inspect(c, inRange, f)
		}
	case *parse.ActionNode:
		inspect(n.Pipe, inRange, f)
	case *parse.PipeNode:
		for _, v := range n.Decl {
			inspect(v, inRange, f)
		}
		for _, c := range n.Cmds {
			inspect(c, inRange, f)
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			inspect(a, inRange, f)
		}
	case *parse.ChainNode:
		inspect(n.Node, inRange, f)
	case *parse.IfNode:
		inspectBranch(&n.BranchNode, inRange, inRange, f)
	case *parse.WithNode:
		inspectBranch(&n.BranchNode, inRange, inRange, f)
	case *parse.RangeNode:
		inspectBranch(&n.BranchNode, inRange, true, f)
	case *parse.TemplateNode:
		inspect(n.Pipe, inRange, f)
	}
}

// inspectBranch inspects the pipeline of an if, with or range (in the
// context around it) and its lists (in the context of its body).
func inspectBranch(b *parse.BranchNode, outer, body bool, f func(parse.Node, bool)) {
	inspect(b.Pipe, outer, f)
	inspect(b.List, body, f)
	inspect(b.ElseList, body, f)
}

// newTemplateData builds the data of req; doc is the decoded payload.
func newTemplateData(req *outhook.DeliveryRequest, doc any) *TemplateData {
	data := &TemplateData{
		EventID:     req.EventID,
		Event:       req.Event,
		DeliveryID:  req.DeliveryID,
		MessageID:   req.MessageID,
		OccurredAt:  req.OccurredAt,
		Attempt:     req.Attempt,
		PayloadJSON: compactJSON(req.Payload),
	}
	if obj, ok := doc.(map[string]any); ok {
		data.Payload = obj
	} else {
		data.Payload = map[string]any{}
	}
	return data
}

// compactJSON returns raw without insignificant space, or as is when it
// is not valid JSON.
func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}
