package adminui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// schema is the part of a JSON Schema (draft 2020-12) the console reads to
// build forms and field tables. Properties keep the order of the document,
// which is the order of the Go struct the schema was generated from.
type schema struct {
	Ref                  string             `json:"$ref"`
	Defs                 map[string]*schema `json:"$defs"`
	Type                 typeList           `json:"type"`
	Properties           properties         `json:"properties"`
	Required             []string           `json:"required"`
	Items                *schema            `json:"items"`
	AdditionalProperties json.RawMessage    `json:"additionalProperties"`
	Enum                 []any              `json:"enum"`
	Format               string             `json:"format"`
	Title                string             `json:"title"`
	Description          string             `json:"description"`
	WriteOnly            bool               `json:"writeOnly"`
	SecretKind           string             `json:"x-outhook-secret"`
	MinLength            *int               `json:"minLength"`
	MaxLength            *int               `json:"maxLength"`
	Minimum              *float64           `json:"minimum"`
	Maximum              *float64           `json:"maximum"`
	MaxItems             *int               `json:"maxItems"`
	OneOf                []json.RawMessage  `json:"oneOf"`
	AnyOf                []json.RawMessage  `json:"anyOf"`
	AllOf                []json.RawMessage  `json:"allOf"`
}

// typeList is a schema's "type": one name or a list of them.
type typeList []string

func (t *typeList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*t = typeList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("type must be a string or a list of strings")
	}
	*t = many
	return nil
}

// main returns the type other than "null", or "" when there is none or
// several.
func (t typeList) main() string {
	var out string
	for _, name := range t {
		if name == "null" {
			continue
		}
		if out != "" {
			return ""
		}
		out = name
	}
	return out
}

// property is one entry of "properties".
type property struct {
	Name   string
	Schema *schema
}

// properties decodes "properties" in document order.
type properties []property

func (p *properties) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("properties must be an object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		var s schema
		if err := dec.Decode(&s); err != nil {
			return fmt.Errorf("property %q: %w", name, err)
		}
		*p = append(*p, property{Name: name, Schema: &s})
	}
	_, err = dec.Token()
	return err
}

// parseSchema decodes a schema document.
func parseSchema(doc json.RawMessage) (*schema, error) {
	var s schema
	if len(bytes.TrimSpace(doc)) == 0 {
		return &s, nil
	}
	if err := json.Unmarshal(doc, &s); err != nil {
		return nil, fmt.Errorf("JSON Schema: %w", err)
	}
	return &s, nil
}

// maxRefDepth bounds how many references resolve follows in a row.
const maxRefDepth = 16

// resolve follows s's local "#/$defs/..." reference against root, keeping
// the referring schema's own description. It returns s when there is no
// reference it can follow.
func resolve(root, s *schema) *schema {
	for range maxRefDepth {
		if s == nil || s.Ref == "" {
			return s
		}
		name, ok := strings.CutPrefix(s.Ref, "#/$defs/")
		if !ok || root.Defs[name] == nil {
			return s
		}
		target := *root.Defs[name]
		if s.Description != "" {
			target.Description = s.Description
		}
		if s.Title != "" {
			target.Title = s.Title
		}
		s = &target
	}
	return s
}

// additional returns the schema of an object's additional properties, or
// nil when there is none (absent, or false).
func (s *schema) additional() *schema {
	raw := bytes.TrimSpace(s.AdditionalProperties)
	if len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	var a schema
	if json.Unmarshal(raw, &a) != nil {
		return nil
	}
	return &a
}

func (s *schema) requires(name string) bool {
	for _, r := range s.Required {
		if r == name {
			return true
		}
	}
	return false
}

// secret reports whether values of s are never shown: writeOnly strings.
// (An "x-outhook-secret": "url" string is shown with its secret parts
// masked by the API, so it is not one.)
func (s *schema) secret() bool { return s.WriteOnly }

// typeName describes s for a field table: "string", "integer[]",
// "object", "string (date-time)", "one of: a, b".
func typeName(root, s *schema) string {
	s = resolve(root, s)
	if s == nil {
		return "any"
	}
	t := s.Type.main()
	switch {
	case t == "array" && s.Items != nil:
		return typeName(root, s.Items) + "[]"
	case t == "object" && len(s.Properties) == 0 && s.additional() != nil:
		return "map of " + typeName(root, s.additional())
	case t == "":
		if len(s.OneOf)+len(s.AnyOf)+len(s.AllOf) > 0 {
			return "composite"
		}
		return "any"
	case s.Format != "":
		return t + " (" + s.Format + ")"
	}
	return t
}

// fieldRow is one line of an event's field table.
type fieldRow struct {
	Path        string
	Type        string
	Required    bool
	Description string
	Rules       string
}

// maxFieldRows and maxFieldDepth bound an event's field table.
const (
	maxFieldRows  = 500
	maxFieldDepth = 8
)

// fieldRows lists the properties of a payload schema as a table: nested
// objects are joined with dots and array elements with "[]", as the admin
// API's property paths are. Recursive and deep schemas end the walk.
func fieldRows(doc json.RawMessage) ([]fieldRow, error) {
	root, err := parseSchema(doc)
	if err != nil {
		return nil, err
	}
	var rows []fieldRow
	var walk func(prefix string, s *schema, depth int, seen map[string]bool)
	walk = func(prefix string, s *schema, depth int, seen map[string]bool) {
		if s.Ref != "" {
			if seen[s.Ref] {
				return
			}
			seen = cloneSet(seen, s.Ref)
		}
		s = resolve(root, s)
		if s == nil || depth > maxFieldDepth {
			return
		}
		for _, p := range s.Properties {
			if len(rows) >= maxFieldRows {
				return
			}
			ps := resolve(root, p.Schema)
			path := p.Name
			if prefix != "" {
				path = prefix + "." + p.Name
			}
			rows = append(rows, fieldRow{
				Path: path, Type: typeName(root, p.Schema), Required: s.requires(p.Name),
				Description: ps.Description, Rules: rules(ps),
			})
			switch ps.Type.main() {
			case "object":
				walk(path, p.Schema, depth+1, seen)
			case "array":
				if ps.Items != nil {
					walk(path+"[]", ps.Items, depth+1, seen)
				}
			}
		}
	}
	walk("", root, 0, map[string]bool{})
	return rows, nil
}

func cloneSet(m map[string]bool, add string) map[string]bool {
	out := make(map[string]bool, len(m)+1)
	for k := range m {
		out[k] = true
	}
	out[add] = true
	return out
}

// rules summarises a schema's constraints for a field table.
func rules(s *schema) string {
	var parts []string
	if len(s.Enum) > 0 {
		vals := make([]string, 0, len(s.Enum))
		for _, v := range s.Enum {
			if str, ok := v.(string); ok && str == "" {
				continue
			}
			vals = append(vals, fmt.Sprint(v))
		}
		parts = append(parts, "one of: "+strings.Join(vals, ", "))
	}
	if s.MinLength != nil && *s.MinLength == 1 {
		parts = append(parts, "not empty")
	} else if s.MinLength != nil && *s.MinLength > 1 {
		parts = append(parts, fmt.Sprintf("at least %d characters", *s.MinLength))
	}
	if s.MaxLength != nil {
		parts = append(parts, fmt.Sprintf("at most %d characters", *s.MaxLength))
	}
	if s.Minimum != nil {
		parts = append(parts, fmt.Sprintf("≥ %v", *s.Minimum))
	}
	if s.Maximum != nil {
		parts = append(parts, fmt.Sprintf("≤ %v", *s.Maximum))
	}
	if s.MaxItems != nil {
		parts = append(parts, fmt.Sprintf("at most %d items", *s.MaxItems))
	}
	return strings.Join(parts, "; ")
}
