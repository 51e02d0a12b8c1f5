package render

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

// Data is what a deliverer's templates are executed with. The slack and
// discord packages export it as TemplateData.
type Data struct {
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

// NewData builds the data of req; doc is the decoded payload, of which
// only an object is kept (any other value gives an empty Payload).
func NewData(req *outhook.DeliveryRequest, doc any) *Data {
	data := &Data{
		EventID:     req.EventID,
		Event:       req.Event,
		DeliveryID:  req.DeliveryID,
		MessageID:   req.MessageID,
		OccurredAt:  req.OccurredAt,
		Attempt:     req.Attempt,
		PayloadJSON: CompactJSON(req.Payload),
	}
	if obj, ok := doc.(map[string]any); ok {
		data.Payload = obj
	} else {
		data.Payload = map[string]any{}
	}
	return data
}

// Missing says what a template does with a payload field that is not there
// (or is null). A missing top-level field ({{.Payload.nope}}) renders empty
// in every mode; they differ on the fields of a missing object.
type Missing int

const (
	// MissingFill renders a missing field empty at any depth
	// ({{.Payload.owner.email}} without an owner): before the template
	// runs, an empty object is added to the payload for each object on a
	// path it reads from .Payload that is missing or null. The payload is
	// changed, so it must be the template's own; Execute takes it from a
	// *Data.
	MissingFill Missing = iota
	// MissingKeep runs with text/template's default missingkey option:
	// a missing key gives an invalid value that text/template carries
	// through, so missing fields render empty at any depth without
	// changing the payload. A null member still fails a field access
	// below it; remove them first with DropNulls.
	MissingKeep
	// MissingZero runs with missingkey=zero: a field of a missing object
	// is an execution error, for deliverers that fall back to a default
	// when their template fails.
	MissingZero
)

// Engine parses and runs the templates of one deliverer's configs. The
// zero Engine has no limits; set MaxOutput.
type Engine struct {
	// Funcs are the functions templates may call besides text/template's.
	Funcs template.FuncMap
	// Restrict bounds what a template may do, since text/template has no
	// time limit and a config's author need not be trusted with the CPU:
	// {{range}} may only go over a field ({{range .Payload.items}}, not
	// {{range 1000000000}} nor a variable), not inside another {{range}},
	// at most MaxRanges times; and {{define}}, {{block}} and {{template}},
	// which allow recursion, are refused.
	Restrict bool
	// Missing is what a missing payload field does.
	Missing Missing
	// MaxOutput caps what a template may write, in bytes: execution stops
	// there and the output is cut (which is not an error).
	MaxOutput int
	// Invalid replaces invalid UTF-8 in the output (such as a character
	// the cap cut in two): "" drops it.
	Invalid string
	// Sample, when set, is data Parse runs the template on, so that errors
	// only execution finds (a field the data type does not have) are
	// reported when the config is saved.
	Sample func() any
	// SampleMaxOutput caps the output of the trial run; 0 means MaxOutput.
	SampleMaxOutput int
	// SampleFails says which errors of the trial run are mistakes in the
	// template; nil means all of them. See UnknownField.
	SampleFails func(error) bool
}

// MaxRanges bounds the {{range}} actions of a restricted template.
const MaxRanges = 10

// noValue is what text/template prints for a missing value, even with
// missingkey=zero, since the payload's values are interfaces.
const noValue = "<no value>"

// Parse parses src as the template name. Errors of the restrictions read
// "template: <name>: ..."; text/template's own say so themselves.
func (e *Engine) Parse(name, src string) (*template.Template, error) {
	tmpl := template.New(name)
	if e.Missing != MissingKeep {
		tmpl.Option("missingkey=zero")
	}
	if e.Funcs != nil {
		tmpl.Funcs(e.Funcs)
	}
	tmpl, err := tmpl.Parse(src)
	if err != nil {
		return nil, err
	}
	if e.Restrict {
		if err := checkRestricted(tmpl); err != nil {
			return nil, fmt.Errorf("template: %s: %w", name, err)
		}
	}
	if e.Sample != nil {
		w := &capWriter{max: cmp.Or(e.SampleMaxOutput, e.MaxOutput)}
		if err := tmpl.Execute(w, e.Sample()); err != nil && !errors.Is(err, errOutputFull) &&
			(e.SampleFails == nil || e.SampleFails(err)) {
			return nil, err
		}
	}
	return tmpl, nil
}

// UnknownField reports whether err is text/template's "can't evaluate
// field", which a run on sample data gives for a field the data type lacks
// (and not for payload fields, which are map keys).
func UnknownField(err error) bool {
	var ee template.ExecError
	return errors.As(err, &ee) && strings.Contains(err.Error(), "can't evaluate field")
}

// Execute runs tmpl, which e parsed, on data, keeping at most e.MaxOutput
// bytes of output. "<no value>" is removed from the output and invalid
// UTF-8 replaced with e.Invalid. An execution error is returned as is.
func (e *Engine) Execute(tmpl *template.Template, data any) (string, error) {
	if d, ok := data.(*Data); ok && e.Missing == MissingFill {
		fillPaths(tmpl, d.Payload)
	}
	w := &capWriter{max: e.MaxOutput}
	if err := tmpl.Execute(w, data); err != nil && !errors.Is(err, errOutputFull) {
		return "", err
	}
	out := w.buf.String()
	if e.Invalid == "" {
		// Dropped before "<no value>" is looked for, so that an invalid
		// byte cannot hide one.
		out = strings.ToValidUTF8(out, "")
	}
	out = strings.ReplaceAll(out, noValue, "")
	return strings.ToValidUTF8(out, e.Invalid), nil
}

// checkRestricted enforces Engine.Restrict.
func checkRestricted(tmpl *template.Template) error {
	var err error
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
			case ranges > MaxRanges:
				err = cmp.Or(err, fmt.Errorf("more than %d {{range}} actions", MaxRanges))
			case !rangesOverField(n.Pipe):
				err = cmp.Or(err, fmt.Errorf("{{range %s}}: range only over a field, such as {{range .Payload.items}}", n.Pipe))
			}
		}
	})
	return err
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

// errOutputFull stops a template whose output reached its bound.
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

// CompactJSON returns raw without insignificant space, or as is when it
// is not valid JSON.
func CompactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}
