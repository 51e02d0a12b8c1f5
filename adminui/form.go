package adminui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/outhook/outhook"
)

// field is one input of a form generated from a deliverer's config schema.
// Its Name is both the form field's name and the path the admin API uses
// for it in validation errors ("config.url", "config.secrets[0].secret"),
// so that an error lands next to its input.
type field struct {
	Name     string
	Label    string
	Help     string
	Kind     string // text, url, password, number, checkbox, select, lines, pairs, json, group, list
	Value    string
	Checked  bool
	Options  []string
	Required bool
	// Stored reports, for a secret field, that a value is stored: it is
	// never shown, and leaving the input blank keeps it.
	Stored bool
	Error  string
	// Children are the fields of a group (a nested object).
	Children []*field
	// Rows are the items of a list (an array of objects), plus one blank
	// row to add an item.
	Rows []*listRow
}

// listRow is one item of a list field.
type listRow struct {
	Name   string // "config.secrets[0]"
	Index  int
	Stored bool // the item holds a stored secret: it is kept unless removed
	Fields []*field
}

// ID is the field's HTML id.
func (f *field) ID() string { return htmlID(f.Name) }

// htmlID turns a field name into an HTML id.
func htmlID(name string) string {
	var b strings.Builder
	b.WriteString("f-")
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// maxListRows bounds the rows a list field accepts from a form.
const maxListRows = 100

// configFields builds the inputs for a config object described by doc,
// filled from value (the config as the admin API shows it: secrets
// masked).
func configFields(doc json.RawMessage, value map[string]any) ([]*field, error) {
	root, err := parseSchema(doc)
	if err != nil {
		return nil, err
	}
	return objectFields(root, resolve(root, root), "config", value), nil
}

func objectFields(root, s *schema, prefix string, value map[string]any) []*field {
	out := make([]*field, 0, len(s.Properties))
	for _, p := range s.Properties {
		out = append(out, buildField(root, prefix+"."+p.Name, p.Name, p.Schema, s.requires(p.Name), value[p.Name]))
	}
	return out
}

func buildField(root *schema, name, label string, ps *schema, required bool, value any) *field {
	ps = resolve(root, ps)
	f := &field{Name: name, Label: label, Help: ps.Description, Required: required}
	if ps.Title != "" {
		f.Label = ps.Title
	}
	switch t := ps.Type.main(); {
	case t == "string" && ps.secret():
		f.Kind = "password"
		s, _ := value.(string)
		f.Stored = s != ""
	case t == "string" && len(ps.Enum) > 0:
		f.Kind = "select"
		for _, e := range ps.Enum {
			if s, ok := e.(string); ok {
				f.Options = append(f.Options, s)
			}
		}
		if !slices.Contains(f.Options, "") {
			f.Options = append([]string{""}, f.Options...)
		}
		f.Value = scalarText(value)
	case t == "string":
		f.Kind = "text"
		if ps.Format == "uri" {
			f.Kind = "url"
		}
		f.Value = scalarText(value)
	case t == "integer" || t == "number":
		f.Kind = "number"
		f.Value = scalarText(value)
	case t == "boolean":
		f.Kind = "checkbox"
		f.Checked = value == true
	case t == "array" && ps.Items != nil && isObject(resolve(root, ps.Items)):
		f.Kind = "list"
		items := resolve(root, ps.Items)
		list, _ := value.([]any)
		for i, v := range list {
			m, _ := v.(map[string]any)
			f.Rows = append(f.Rows, newRow(root, items, name, i, m))
		}
		if ps.MaxItems == nil || len(list) < *ps.MaxItems {
			f.Rows = append(f.Rows, newRow(root, items, name, len(list), nil))
		}
	case t == "array" && ps.Items != nil && isScalar(resolve(root, ps.Items)):
		f.Kind = "lines"
		list, _ := value.([]any)
		lines := make([]string, 0, len(list))
		for _, v := range list {
			lines = append(lines, scalarText(v))
		}
		f.Value = strings.Join(lines, "\n")
	case t == "object" && len(ps.Properties) > 0:
		f.Kind = "group"
		m, _ := value.(map[string]any)
		f.Children = objectFields(root, ps, name, m)
	case t == "object" && ps.additional() != nil && isScalar(resolve(root, ps.additional())):
		f.Kind = "pairs"
		m, _ := value.(map[string]any)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		lines := make([]string, 0, len(keys))
		for _, k := range keys {
			// Secret values come masked from the API; sent back as they
			// are, they keep the stored values.
			lines = append(lines, k+": "+scalarText(m[k]))
		}
		f.Value = strings.Join(lines, "\n")
	default:
		f.Kind = "json"
		if value != nil {
			if b, err := json.MarshalIndent(value, "", "  "); err == nil {
				f.Value = string(b)
			}
		}
	}
	return f
}

func newRow(root, items *schema, name string, i int, value map[string]any) *listRow {
	rowName := fmt.Sprintf("%s[%d]", name, i)
	row := &listRow{Name: rowName, Index: i, Fields: objectFields(root, items, rowName, value)}
	for _, f := range row.Fields {
		if f.Stored {
			row.Stored = true
		}
	}
	return row
}

func isObject(s *schema) bool { return s != nil && s.Type.main() == "object" && len(s.Properties) > 0 }

func isScalar(s *schema) bool {
	if s == nil {
		return false
	}
	switch s.Type.main() {
	case "string", "integer", "number", "boolean":
		return true
	}
	return false
}

// scalarText shows a JSON scalar in an input.
func scalarText(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// fieldErrors collects the problems found while reading a form, by field
// name, before anything is sent to the admin API.
type fieldErrors map[string]string

func (e fieldErrors) add(name, msg string) {
	if _, ok := e[name]; !ok {
		e[name] = msg
	}
}

// parseConfig reads a config object back from a submitted form, walking
// the schema as configFields does. Values that do not parse are kept as
// their text, so that the form shows them again with an error.
func parseConfig(doc json.RawMessage, form url.Values, errs fieldErrors) (map[string]any, error) {
	root, err := parseSchema(doc)
	if err != nil {
		return nil, err
	}
	m := parseObject(root, resolve(root, root), "config", form, errs)
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

func parseObject(root, s *schema, prefix string, form url.Values, errs fieldErrors) map[string]any {
	var out map[string]any
	for _, p := range s.Properties {
		v, ok := parseValue(root, prefix+"."+p.Name, p.Schema, form, errs)
		if !ok {
			continue
		}
		if out == nil {
			out = map[string]any{}
		}
		out[p.Name] = v
	}
	return out
}

// parseValue reads one field; ok is false when the field is left empty and
// must be left out of the config.
func parseValue(root *schema, name string, ps *schema, form url.Values, errs fieldErrors) (any, bool) {
	ps = resolve(root, ps)
	text := form.Get(name)
	switch t := ps.Type.main(); {
	case t == "string" && ps.secret():
		if text == "" {
			if form.Get(name+".stored") == "1" {
				return outhook.SecretMask, true // keep the stored value
			}
			return nil, false
		}
		return text, true
	case t == "string":
		if text == "" {
			return nil, false
		}
		return text, true
	case t == "integer":
		text = strings.TrimSpace(text)
		if text == "" {
			return nil, false
		}
		if _, err := strconv.ParseInt(text, 10, 64); err != nil {
			errs.add(name, "must be a whole number")
			return text, true
		}
		return json.Number(text), true
	case t == "number":
		text = strings.TrimSpace(text)
		if text == "" {
			return nil, false
		}
		if _, err := strconv.ParseFloat(text, 64); err != nil {
			errs.add(name, "must be a number")
			return text, true
		}
		return json.Number(text), true
	case t == "boolean":
		if text == "" {
			return nil, false
		}
		return true, true
	case t == "array" && ps.Items != nil && isObject(resolve(root, ps.Items)):
		return parseList(root, name, resolve(root, ps.Items), form, errs)
	case t == "array" && ps.Items != nil && isScalar(resolve(root, ps.Items)):
		items := resolve(root, ps.Items)
		var out []any
		for i, line := range nonEmptyLines(text) {
			v, err := scalarOf(items, line)
			if err != nil {
				errs.add(name, fmt.Sprintf("line %d: %v", i+1, err))
				v = line
			}
			out = append(out, v)
		}
		if out == nil {
			return nil, false
		}
		return out, true
	case t == "object" && len(ps.Properties) > 0:
		m := parseObject(root, ps, name, form, errs)
		if m == nil {
			return nil, false
		}
		return m, true
	case t == "object" && ps.additional() != nil && isScalar(resolve(root, ps.additional())):
		values := resolve(root, ps.additional())
		var out map[string]any
		for i, line := range nonEmptyLines(text) {
			k, v, ok := strings.Cut(line, ":")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if !ok || k == "" {
				errs.add(name, fmt.Sprintf("line %d: write one entry per line as Name: value", i+1))
				continue
			}
			val, err := scalarOf(values, v)
			if err != nil {
				errs.add(name, fmt.Sprintf("line %d: %v", i+1, err))
				val = v
			}
			if out == nil {
				out = map[string]any{}
			}
			out[k] = val
		}
		if out == nil {
			return nil, false
		}
		return out, true
	default:
		if strings.TrimSpace(text) == "" {
			return nil, false
		}
		if !json.Valid([]byte(text)) {
			errs.add(name, "must be JSON")
			return text, true
		}
		return json.RawMessage(text), true
	}
}

// parseList reads the rows of a list field: the form says how many were
// shown (name.rows); a row is kept when it holds a value or a stored
// secret, unless its remove box is ticked.
func parseList(root *schema, name string, items *schema, form url.Values, errs fieldErrors) (any, bool) {
	n, _ := strconv.Atoi(form.Get(name + ".rows"))
	n = min(max(n, 0), maxListRows)
	var out []any
	for i := range n {
		rowName := fmt.Sprintf("%s[%d]", name, i)
		if form.Get(rowName+".remove") != "" {
			continue
		}
		// Errors are named by the row's place in the saved list, which
		// may differ from its place in the form once rows are dropped.
		rowErrs := fieldErrors{}
		m := parseObject(root, items, rowName, form, rowErrs)
		if m == nil {
			continue
		}
		newName := fmt.Sprintf("%s[%d]", name, len(out))
		for k, v := range rowErrs {
			errs.add(newName+strings.TrimPrefix(k, rowName), v)
		}
		out = append(out, m)
	}
	if out == nil {
		return nil, false
	}
	return out, true
}

// scalarOf converts an input's text to the JSON scalar s describes.
func scalarOf(s *schema, text string) (any, error) {
	switch s.Type.main() {
	case "integer":
		if _, err := strconv.ParseInt(text, 10, 64); err != nil {
			return nil, fmt.Errorf("%q is not a whole number", text)
		}
		return json.Number(text), nil
	case "number":
		if _, err := strconv.ParseFloat(text, 64); err != nil {
			return nil, fmt.Errorf("%q is not a number", text)
		}
		return json.Number(text), nil
	case "boolean":
		b, err := strconv.ParseBool(text)
		if err != nil {
			return nil, fmt.Errorf("%q is not true or false", text)
		}
		return b, nil
	}
	return text, nil
}

func nonEmptyLines(text string) []string {
	var out []string
	for line := range strings.Lines(text) {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// decodeConfig decodes a config as the admin API shows it, keeping numbers
// as they are written.
func decodeConfig(raw json.RawMessage) map[string]any {
	var m map[string]any
	if len(bytes.TrimSpace(raw)) == 0 {
		return map[string]any{}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&m) != nil || m == nil {
		return map[string]any{}
	}
	return m
}

// attachErrors puts each problem on the field it names, or on the nearest
// field above it ("config.headers.X-Key" on "config.headers"); the problems
// that match no field are returned.
func attachErrors(fields []*field, problems map[string]string) map[string]string {
	left := map[string]string{}
	byName := map[string]*field{}
	var index func([]*field)
	index = func(fs []*field) {
		for _, f := range fs {
			byName[f.Name] = f
			index(f.Children)
			for _, r := range f.Rows {
				index(r.Fields)
			}
		}
	}
	index(fields)
	for name, msg := range problems {
		target := name
		for {
			if f, ok := byName[target]; ok {
				if f.Error == "" {
					f.Error = msg
				} else if !strings.Contains(f.Error, msg) {
					f.Error += "; " + msg
				}
				break
			}
			i := strings.LastIndexAny(target, ".[")
			if i <= 0 {
				left[name] = msg
				break
			}
			target = target[:i]
		}
	}
	return left
}
