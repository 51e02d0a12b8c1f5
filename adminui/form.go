package adminui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
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
	Name  string // "config.secrets[0]"
	Index int
	// Existing reports an item of the saved list, as opposed to the blank
	// row for adding one; Stored, one that holds a stored secret.
	Existing bool
	Stored   bool
	Fields   []*field
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

// maxListRows bounds the rows a list field accepts from a form, and
// maxFormDepth the nesting of groups and lists: deeper (or recursive)
// parts of a schema are edited as JSON.
const (
	maxListRows  = 100
	maxFormDepth = 6
)

// configFields builds the inputs for a config object described by doc,
// filled from value (the config as the admin API shows it: secrets
// masked).
func configFields(doc json.RawMessage, value map[string]any) ([]*field, error) {
	root, err := parseSchema(doc)
	if err != nil {
		return nil, err
	}
	return objectFields(root, resolve(root, root), "config", value, 0), nil
}

func objectFields(root, s *schema, prefix string, value map[string]any, depth int) []*field {
	out := make([]*field, 0, len(s.Properties))
	for _, p := range s.Properties {
		out = append(out, buildField(root, prefix+"."+p.Name, p.Name, p.Schema, s.requires(p.Name), value[p.Name], depth))
	}
	return out
}

// formKind is the input a property gets: the kinds of field.Kind.
func formKind(root, ps *schema, depth int) string {
	switch t := ps.Type.main(); {
	case t == "string" && ps.secret():
		return "password"
	case t == "string" && len(ps.Enum) > 0:
		return "select"
	case t == "string" && ps.Format == "uri":
		return "url"
	case t == "string":
		return "text"
	case t == "integer" || t == "number":
		return "number"
	case t == "boolean":
		return "checkbox"
	case depth >= maxFormDepth:
		return "json"
	case t == "array" && ps.Items != nil && isObject(resolve(root, ps.Items)):
		return "list"
	case t == "array" && ps.Items != nil && isScalar(resolve(root, ps.Items)):
		return "lines"
	case t == "object" && len(ps.Properties) > 0:
		return "group"
	case t == "object" && ps.additional() != nil && isScalar(resolve(root, ps.additional())):
		return "pairs"
	}
	return "json"
}

func buildField(root *schema, name, label string, ps *schema, required bool, value any, depth int) *field {
	ps = resolve(root, ps)
	f := &field{Name: name, Label: label, Help: ps.Description, Required: required, Kind: formKind(root, ps, depth)}
	if ps.Title != "" {
		f.Label = ps.Title
	}
	switch f.Kind {
	case "password":
		// Only a value the API masked is stored; one the user typed into
		// a refused form is never shown again, nor taken as stored.
		f.Stored = value == outhook.SecretMask
	case "select":
		for _, e := range ps.Enum {
			if s, ok := e.(string); ok {
				f.Options = append(f.Options, s)
			}
		}
		if !slices.Contains(f.Options, "") {
			f.Options = append([]string{""}, f.Options...)
		}
		f.Value = scalarText(value)
	case "url", "text", "number":
		f.Value = scalarText(value)
	case "checkbox":
		f.Checked = value == true
	case "list":
		items := resolve(root, ps.Items)
		list, _ := value.([]any)
		for i, v := range list {
			m, _ := v.(map[string]any)
			f.Rows = append(f.Rows, newRow(root, items, name, i, m, depth+1))
		}
		if ps.MaxItems == nil || len(list) < *ps.MaxItems {
			f.Rows = append(f.Rows, newRow(root, items, name, len(list), nil, depth+1))
		}
	case "lines":
		list, _ := value.([]any)
		lines := make([]string, 0, len(list))
		for _, v := range list {
			lines = append(lines, scalarText(v))
		}
		f.Value = strings.Join(lines, "\n")
	case "group":
		m, _ := value.(map[string]any)
		f.Children = objectFields(root, ps, name, m, depth+1)
	case "pairs":
		m, _ := value.(map[string]any)
		secret := resolve(root, ps.additional()).secret()
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		lines := make([]string, 0, len(keys))
		for _, k := range keys {
			v := scalarText(m[k])
			if secret && v != outhook.SecretMask {
				v = "" // typed into a refused form: never shown again
			}
			// Masked values sent back as they are keep the stored ones.
			lines = append(lines, k+": "+v)
		}
		f.Value = strings.Join(lines, "\n")
	default:
		if value != nil {
			if b, err := json.MarshalIndent(value, "", "  "); err == nil {
				f.Value = string(b)
			}
		}
	}
	return f
}

func newRow(root, items *schema, name string, i int, value map[string]any, depth int) *listRow {
	rowName := fmt.Sprintf("%s[%d]", name, i)
	row := &listRow{Name: rowName, Index: i, Existing: value != nil, Fields: objectFields(root, items, rowName, value, depth)}
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
	m := parseObject(root, resolve(root, root), "config", form, errs, 0)
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

func parseObject(root, s *schema, prefix string, form url.Values, errs fieldErrors, depth int) map[string]any {
	var out map[string]any
	for _, p := range s.Properties {
		v, ok := parseValue(root, prefix+"."+p.Name, p.Schema, form, errs, depth)
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
func parseValue(root *schema, name string, ps *schema, form url.Values, errs fieldErrors, depth int) (any, bool) {
	ps = resolve(root, ps)
	text := form.Get(name)
	switch formKind(root, ps, depth) {
	case "password":
		if form.Get(name+".clear") != "" {
			return nil, false // the stored value is removed
		}
		if text == "" {
			if form.Get(name+".stored") == "1" {
				return outhook.SecretMask, true // keep the stored value
			}
			return nil, false
		}
		return text, true
	case "select", "url", "text":
		if text == "" {
			return nil, false
		}
		return text, true
	case "number":
		text = strings.TrimSpace(text)
		if text == "" {
			return nil, false
		}
		v, err := scalarOf(ps, text)
		if err != nil {
			errs.add(name, err.Error())
			return text, true
		}
		return v, true
	case "checkbox":
		if text == "" {
			return nil, false
		}
		return true, true
	case "list":
		return parseList(root, name, resolve(root, ps.Items), form, errs, depth+1)
	case "lines":
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
	case "group":
		m := parseObject(root, ps, name, form, errs, depth+1)
		if m == nil {
			return nil, false
		}
		return m, true
	case "pairs":
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
//
// The admin API puts a stored secret back in place of its mask by the
// item's position, so a removed item must not shift a later item that
// keeps a stored secret: that one has to be typed again.
func parseList(root *schema, name string, items *schema, form url.Values, errs fieldErrors, depth int) (any, bool) {
	n, _ := strconv.Atoi(form.Get(name + ".rows"))
	n = min(max(n, 0), maxListRows)
	var out []any
	removed := false
	for i := range n {
		rowName := fmt.Sprintf("%s[%d]", name, i)
		if form.Get(rowName+".remove") != "" {
			removed = true
			continue
		}
		// Errors are named by the row's place in the saved list, which
		// may differ from its place in the form once rows are dropped.
		rowErrs := fieldErrors{}
		m := parseObject(root, items, rowName, form, rowErrs, depth)
		if m == nil {
			continue
		}
		newName := fmt.Sprintf("%s[%d]", name, len(out))
		for k, v := range rowErrs {
			errs.add(newName+strings.TrimPrefix(k, rowName), v)
		}
		if removed && len(out) != i {
			for k, v := range m {
				if v == outhook.SecretMask {
					errs.add(newName+"."+k, "type this secret again: removing an item above it moves it, and stored secrets are kept by position")
				}
			}
		}
		out = append(out, m)
	}
	if out == nil {
		return nil, false
	}
	return out, true
}

// The JSON grammar of numbers (RFC 8259, section 6): strconv accepts more
// ("+1", "0x1p3", "Inf", "010"), which would not encode as JSON.
var (
	jsonInteger = regexp.MustCompile(`^-?(?:0|[1-9][0-9]*)$`)
	jsonNumber  = regexp.MustCompile(`^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?$`)
)

// scalarOf converts an input's text to the JSON scalar s describes.
func scalarOf(s *schema, text string) (any, error) {
	switch s.Type.main() {
	case "integer":
		if !jsonInteger.MatchString(text) {
			return nil, fmt.Errorf("%q is not a whole number", text)
		}
		if _, err := strconv.ParseInt(text, 10, 64); err != nil {
			return nil, fmt.Errorf("%q is out of range", text)
		}
		return json.Number(text), nil
	case "number":
		if !jsonNumber.MatchString(text) {
			return nil, fmt.Errorf("%q is not a number", text)
		}
		if _, err := strconv.ParseFloat(text, 64); err != nil {
			return nil, fmt.Errorf("%q is out of range", text)
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
