package outhook

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/invopop/jsonschema"
)

// jsonSchemaDraft is the meta-schema every generated schema declares in "$schema".
const jsonSchemaDraft = "https://json-schema.org/draft/2020-12/schema"

// GenerateSchema returns the JSON Schema (draft 2020-12) of the JSON encoding
// of values of type t, indented with two spaces. The output is byte-for-byte
// stable across runs and carries no "$id".
//
// The schema of t itself is at the top level. Named struct, slice and map
// types reached from t are placed under "$defs" and referenced with "$ref";
// a reference back to t (a recursive type) is "$ref": "#". Struct schemas set
// "additionalProperties": false.
//
// Struct field tags shape the result:
//
//   - json: property names; fields tagged "-" and unexported fields are left
//     out, embedded structs are flattened as encoding/json does.
//   - description:"..." or jsonschema:"description=...": the property's
//     description (the jsonschema tag wins when both are present).
//   - validate (github.com/go-playground/validator/v10): a field is listed in
//     "required" when its validate tag has the required rule; omitempty in
//     the json tag plays no part. Other rules become schema keywords (below).
//   - jsonschema: invopop/jsonschema keywords such as jsonschema:"required"
//     or jsonschema:"minLength=2"; they take precedence over keywords derived
//     from validate rules.
//
// The validate rules translated into keywords are:
//
//	strings:        min, max, len, gt, gte, lt, lte → minLength, maxLength;
//	                eq → const; oneof → enum;
//	                email → format "email"; url, http_url, https_url → format "uri";
//	                uri → format "uri-reference"; uuid, uuid3/4/5/7 and the
//	                _rfc4122 variants → format "uuid"; hostname, hostname_rfc1123 →
//	                format "hostname"; ipv4, ipv6 → format "ipv4", "ipv6";
//	                ip → anyOf ipv4/ipv6; alpha, alphanum, numeric → pattern
//	numbers:        min, gte → minimum; max, lte → maximum; gt → exclusiveMinimum;
//	                lt → exclusiveMaximum; eq, len → const; oneof → enum (integers)
//	slices, arrays: min, max, len, eq, gt, gte, lt, lte → minItems, maxItems;
//	                unique (without parameter) → uniqueItems
//	maps:           min, max, len, eq, gt, gte, lt, lte → minProperties, maxProperties
//	modifiers:      dive applies the rules after it to "items" (slices, arrays) or
//	                to the values (maps), "dive,keys,...,endkeys" to "propertyNames";
//	                omitempty and omitzero make the schema accept the zero value
//
// Every other rule (datetime, OR groups such as "email|url", cross-field and
// conditional rules, ...) is left out of the schema. Each translation is
// meant to be exact or looser than the runtime check (up to differences
// between validator's format checks and JSON Schema's format definitions),
// so that the schema does not reject what validation accepts. Rules are not
// translated for types with their own JSON or schema representation
// (json.Marshaler, encoding.TextMarshaler, JSONSchema methods) nor for
// numbers encoded as strings (json:",string").
//
// Pointers are described by the schema of their element type. GenerateSchema
// does no caching.
func GenerateSchema(t reflect.Type) (raw json.RawMessage, err error) {
	if t == nil {
		return nil, errors.New("outhook: generate schema: nil type")
	}
	defer func() {
		// invopop/jsonschema panics on types that have no JSON Schema
		// equivalent (channels, functions, complex numbers).
		if r := recover(); r != nil {
			raw, err = nil, fmt.Errorf("outhook: generate schema for %s: %v", t, r)
		}
	}()

	g := newSchemaGenerator()
	root := g.reflector.ReflectFromType(t)
	root.Version = jsonSchemaDraft

	rootName := g.defName(derefType(t))
	m := &tagMapper{root: root, rootName: rootName, visited: map[*jsonschema.Schema]bool{}}
	m.walkType(t, root)
	if rootName != "" && root.Definitions[rootName] == nil {
		// ExpandedStruct moved the root's definition to the top level but left
		// references to it (from recursive types) pointing into "$defs".
		rewriteRefs(root, "#/$defs/"+rootName, "#")
	}

	compact, err := json.Marshal(root)
	if err != nil {
		return nil, fmt.Errorf("outhook: generate schema for %s: %w", t, err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact, "", "  "); err != nil {
		return nil, fmt.Errorf("outhook: generate schema for %s: %w", t, err)
	}
	return out.Bytes(), nil
}

// SchemaFor returns the JSON Schema of T; it is GenerateSchema(reflect.TypeFor[T]()).
func SchemaFor[T any]() (json.RawMessage, error) {
	return GenerateSchema(reflect.TypeFor[T]())
}

// schemaCache memoises GenerateSchema per type. The zero value is ready to use
// and safe for concurrent use; errors are not cached.
type schemaCache struct {
	m sync.Map // reflect.Type → json.RawMessage
}

// get returns the schema of t, generating it on first use. The returned
// slice is the caller's to keep or modify.
func (c *schemaCache) get(t reflect.Type) (json.RawMessage, error) {
	if s, ok := c.m.Load(t); ok {
		return slices.Clone(s.(json.RawMessage)), nil
	}
	s, err := GenerateSchema(t)
	if err != nil {
		return nil, err
	}
	stored, _ := c.m.LoadOrStore(t, s)
	return slices.Clone(stored.(json.RawMessage)), nil
}

// Go types that invopop/jsonschema, validator or encoding/json treat specially.
var (
	timeType       = reflect.TypeFor[time.Time]()
	durationType   = reflect.TypeFor[time.Duration]()
	urlType        = reflect.TypeFor[url.URL]()
	ipType         = reflect.TypeFor[net.IP]()
	rawMessageType = reflect.TypeFor[json.RawMessage]()
	byteType       = reflect.TypeFor[byte]()
)

// Interfaces through which a type controls its own schema or JSON encoding;
// validate rules are not translated for such types because their JSON shape
// need not follow their Go kind.
var (
	customSchemaType  = reflect.TypeFor[interface{ JSONSchema() *jsonschema.Schema }]()
	aliasSchemaType   = reflect.TypeFor[interface{ JSONSchemaAlias() any }]()
	propertyAliasType = reflect.TypeFor[interface{ JSONSchemaProperty(string) any }]()
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// invalidDefNameChars matches what sanitizeDefName replaces in "$defs" keys.
var invalidDefNameChars = regexp.MustCompile(`[^A-Za-z0-9_]+`)

// schemaGenerator holds the per-call state of one GenerateSchema call.
type schemaGenerator struct {
	reflector *jsonschema.Reflector
	names     map[reflect.Type]string // type → its "$defs" key
	taken     map[string]bool         // "$defs" keys handed out
}

func newSchemaGenerator() *schemaGenerator {
	g := &schemaGenerator{
		names: map[reflect.Type]string{},
		taken: map[string]bool{},
	}
	g.reflector = &jsonschema.Reflector{
		Anonymous:                  true, // no "$id" derived from the Go package path
		ExpandedStruct:             true, // the root type is described at the top level
		RequiredFromJSONSchemaTags: true, // "required" comes from tags, not from omitempty
		Namer:                      g.defName,
		LookupComment:              descriptionFromTag,
	}
	return g
}

// defName names t's "$defs" entry. invopop/jsonschema keys definitions by
// reflect.Type.Name alone, which breaks in two ways that defName repairs:
// instantiated generic types are named like "Page[example.com/pkg.Item]",
// whose slashes corrupt the "$ref" JSON pointer; and distinct types sharing a
// name (pkga.Event and pkgb.Event, or a user type Time and time.Time) end up
// sharing a definition. defName gives each type its own sanitised key,
// numbering duplicates in the (deterministic) order the types are reached.
func (g *schemaGenerator) defName(t reflect.Type) string {
	if t.Name() == "" {
		return ""
	}
	if name, ok := g.names[t]; ok {
		return name
	}
	var name string
	if becomesDefinition(t) {
		base := sanitizeDefName(t.Name())
		name = base
		for i := 2; g.taken[name]; i++ {
			name = base + strconv.Itoa(i)
		}
		g.taken[name] = true
	} else {
		// invopop still looks such types up by name; "~" never occurs in a
		// sanitised key, so the lookup cannot hit another type's definition.
		name = "~" + t.PkgPath() + "." + t.Name()
	}
	g.names[t] = name
	return name
}

// becomesDefinition reports whether invopop/jsonschema stores a "$defs"
// entry for the named type t.
func becomesDefinition(t reflect.Type) bool {
	switch t {
	case timeType, urlType, ipType, rawMessageType:
		return false
	}
	if t.Implements(aliasSchemaType) {
		return false
	}
	if t.Implements(customSchemaType) {
		return true
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Slice, reflect.Array, reflect.Map:
		return true
	}
	return false
}

// sanitizeDefName turns a Go type name into a "$defs" key made of letters,
// digits and underscores: "Page[example.com/pkg.Item,int]" becomes
// "Page_Item_int".
func sanitizeDefName(goName string) string {
	parts := strings.FieldsFunc(goName, func(r rune) bool {
		return strings.ContainsRune("[], *", r)
	})
	for i, p := range parts {
		// Drop package qualifiers: "example.com/pkg.Item" → "Item".
		p = p[strings.LastIndexByte(p, '/')+1:]
		p = p[strings.LastIndexByte(p, '.')+1:]
		parts[i] = invalidDefNameChars.ReplaceAllString(p, "_")
	}
	return strings.Join(parts, "_")
}

// descriptionFromTag is the Reflector's LookupComment hook: it supplies the
// plain description:"..." struct tag of field, which invopop consults only
// when the jsonschema tags set no description.
func descriptionFromTag(t reflect.Type, field string) string {
	if field == "" || t.Kind() != reflect.Struct {
		return ""
	}
	f, ok := t.FieldByName(field)
	if !ok {
		return ""
	}
	return f.Tag.Get("description")
}

// tagMapper walks a reflected schema alongside the Go type it was reflected
// from and applies the validate tags of every struct field it reaches.
type tagMapper struct {
	root     *jsonschema.Schema
	rootName string // "$defs" key of the root type, moved to the top level
	visited  map[*jsonschema.Schema]bool
}

// walkType applies the validate tags of the struct fields reachable from t,
// whose schema is s.
func (m *tagMapper) walkType(t reflect.Type, s *jsonschema.Schema) {
	t = derefType(t)
	s = m.resolve(unwrapNullable(s))
	if s == nil || isBoolSchema(s) || m.visited[s] || hasCustomSchema(t) {
		return
	}
	m.visited[s] = true
	switch t.Kind() {
	case reflect.Struct:
		if s.Properties == nil || t.Implements(propertyAliasType) {
			return // time.Time, url.URL, or properties not following fields
		}
		m.walkStruct(t, s)
		sortRequired(s)
	case reflect.Slice, reflect.Array:
		if s.Items != nil {
			m.walkType(t.Elem(), s.Items)
		}
	case reflect.Map:
		if s.AdditionalProperties != nil {
			m.walkType(t.Elem(), s.AdditionalProperties)
		}
		for _, p := range s.PatternProperties {
			m.walkType(t.Elem(), p)
		}
	}
}

// walkStruct applies the validate tags of struct type t to its schema s. It
// follows invopop's naming rules (reflectFieldName) so that every field is
// matched to the property reflected from it.
func (m *tagMapper) walkStruct(t reflect.Type, s *jsonschema.Schema) {
	for i := range t.NumField() {
		f := t.Field(i)
		jsonTag := strings.Split(f.Tag.Get("json"), ",")
		if jsonTag[0] == "-" || strings.Split(f.Tag.Get("jsonschema"), ",")[0] == "-" {
			continue
		}
		embedded := f.Anonymous && jsonTag[0] == "" && derefType(f.Type).Kind() == reflect.Struct
		if embedded || slices.Contains(jsonTag[1:], "inline") {
			if ft := derefType(f.Type); ft.Kind() == reflect.Struct {
				m.walkStruct(ft, s)
			}
			continue
		}
		if !f.Anonymous && !f.IsExported() {
			continue
		}
		name := f.Name
		if jsonTag[0] != "" {
			name = jsonTag[0]
		}
		prop, ok := s.Properties.Get(name)
		if !ok {
			continue
		}
		rules := parseValidateTag(f.Tag.Get("validate"))
		if fieldLevelRule(rules, "required") && !slices.Contains(s.Required, name) {
			s.Required = append(s.Required, name)
		}
		applyValidateRules(f.Type, prop, rules)
		m.walkType(f.Type, prop)
		if encodesNull(f, jsonTag[1:], rules) && unwrapNullable(prop) == prop && prop.Type != "null" && !isBoolSchema(prop) {
			s.Properties.Set(name, &jsonschema.Schema{OneOf: []*jsonschema.Schema{prop, {Type: "null"}}})
		}
	}
}

// encodesNull reports whether a field can hold a nil value that
// encoding/json writes as null and that validation accepts, in which case
// the schema must accept null too. Nil pointers, slices, maps and
// interfaces are written as null unless the json tag omits them; validator
// refuses nil under required, skips it under omitempty, and otherwise runs
// the field's rules on it: for slices and maps they see length 0, and for
// pointers any rule but omitempty is taken to refuse nil.
func encodesNull(f reflect.StructField, jsonOpts []string, rules []validateRule) bool {
	switch f.Type.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
	default:
		return false
	}
	if slices.Contains(jsonOpts, "omitempty") || slices.Contains(jsonOpts, "omitzero") {
		return false
	}
	for _, r := range rules {
		switch {
		case r.tag == "dive":
			return true
		case r.tag == "omitempty" || r.tag == "omitnil" || r.tag == "omitzero":
			return true
		case r.or, r.tag == "required":
			return false
		case f.Type.Kind() == reflect.Slice || f.Type.Kind() == reflect.Map:
			n, err := strconv.ParseInt(r.param, 0, 64)
			switch r.tag {
			case "max", "lte", "lt":
				if r.tag == "lt" && (err != nil || n <= 0) {
					return false
				}
			case "min", "gte", "len", "eq":
				if err != nil || n > 0 {
					return false
				}
			case "unique":
			default:
				return false
			}
		default:
			return false
		}
	}
	return true
}

// resolve follows local references ("#" and "#/$defs/...") from s to the
// schema they denote. It returns nil for references it cannot follow.
func (m *tagMapper) resolve(s *jsonschema.Schema) *jsonschema.Schema {
	for seen := 0; s != nil && s.Ref != "" && seen < 64; seen++ {
		if s.Ref == "#" {
			return m.root
		}
		name, ok := strings.CutPrefix(s.Ref, "#/$defs/")
		if !ok {
			return nil
		}
		switch def := m.root.Definitions[name]; {
		case def != nil:
			s = def
		case name == m.rootName:
			return m.root
		default:
			return nil
		}
	}
	return s
}

// validateRule is one comma-separated element of a validate tag.
type validateRule struct {
	tag   string // "min", "dive", "email|url", ...
	param string // "1" for min=1; empty when absent
	or    bool   // an OR group such as "email|url"; never translated
}

// parseValidateTag splits a validate tag the way validator/v10 does.
func parseValidateTag(tag string) []validateRule {
	if tag == "" || tag == "-" {
		return nil
	}
	parts := strings.Split(tag, ",")
	rules := make([]validateRule, 0, len(parts))
	for _, p := range parts {
		if strings.Contains(p, "|") {
			rules = append(rules, validateRule{tag: p, or: true})
			continue
		}
		name, param, _ := strings.Cut(p, "=")
		// validator's escapes for commas and pipes inside parameters.
		param = strings.ReplaceAll(strings.ReplaceAll(param, "0x2C", ","), "0x7C", "|")
		rules = append(rules, validateRule{tag: name, param: param})
	}
	return rules
}

// fieldLevelRule reports whether rules contain tag before any dive, that is
// as a rule on the field itself rather than on its elements.
func fieldLevelRule(rules []validateRule, tag string) bool {
	for _, r := range rules {
		switch {
		case r.tag == "dive":
			return false
		case r.tag == tag && !r.or:
			return true
		}
	}
	return false
}

// applyValidateRules translates the validate rules of a value of Go type t
// into keywords of its schema s. Rules after "dive" go to the schema of the
// elements (slices, arrays) or values (maps); "keys ... endkeys" rules after
// "dive" go to "propertyNames".
//
// Named slice and map types are "$ref"s to a shared definition; keywords,
// including "items", are added next to the "$ref" so that the definition,
// shared with other fields, is left untouched.
func applyValidateRules(t reflect.Type, s *jsonschema.Schema, rules []validateRule) {
	if len(rules) == 0 || s == nil || isBoolSchema(s) {
		return
	}
	pointer := t.Kind() == reflect.Pointer
	t = derefType(t)
	s = unwrapNullable(s)

	own, elem, dive := rules, []validateRule(nil), false
	if i := slices.IndexFunc(rules, func(r validateRule) bool { return r.tag == "dive" }); i >= 0 {
		own, elem, dive = rules[:i], rules[i+1:], true
	}
	constrain(t, s, own, pointer)
	if !dive || hasCustomRepresentation(t) {
		return
	}

	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && t.Elem() == byteType {
			return // encoded as a base64 string
		}
		s.Items = withSubschema(s.Items, func(items *jsonschema.Schema) {
			applyValidateRules(t.Elem(), items, elem)
		})
	case reflect.Map:
		if len(elem) > 0 && elem[0].tag == "keys" {
			end := slices.IndexFunc(elem, func(r validateRule) bool { return r.tag == "endkeys" })
			if end < 0 {
				return // malformed; validator panics on it
			}
			if t.Key().Kind() == reflect.String {
				s.PropertyNames = withSubschema(s.PropertyNames, func(names *jsonschema.Schema) {
					applyValidateRules(t.Key(), names, elem[1:end])
				})
			}
			elem = elem[end+1:]
		}
		if len(s.PatternProperties) == 1 && s.Ref == "" {
			for _, values := range s.PatternProperties {
				applyValidateRules(t.Elem(), values, elem)
			}
			return
		}
		s.AdditionalProperties = withSubschema(s.AdditionalProperties, func(values *jsonschema.Schema) {
			applyValidateRules(t.Elem(), values, elem)
		})
	}
}

// withSubschema calls fill with sub, or with a new schema when sub is nil,
// and returns the schema to store in sub's place: a new schema is kept only
// when fill gave it some keyword.
func withSubschema(sub *jsonschema.Schema, fill func(*jsonschema.Schema)) *jsonschema.Schema {
	if sub != nil {
		fill(sub)
		return sub
	}
	sub = &jsonschema.Schema{}
	fill(sub)
	if isEmptySchema(sub) {
		return nil
	}
	return sub
}

// constrain adds to s the keywords of the rules that apply to a value of
// type t itself (the rules before any dive). pointer tells whether the value
// is reached through a pointer, in which case omitempty only skips nil.
func constrain(t reflect.Type, s *jsonschema.Schema, rules []validateRule, pointer bool) {
	if hasCustomRepresentation(t) {
		return
	}
	kind := jsonKind(t, s)
	if kind == "" {
		return
	}
	c := &jsonschema.Schema{}
	var omitEmpty, omitZero bool
	for _, r := range rules {
		switch r.tag {
		case "omitempty":
			omitEmpty = true
		case "omitzero":
			omitZero = true
		case "required":
			// validator's required refuses the zero value; through a
			// pointer it refuses only nil, which the schema cannot express
			// for an optional property.
			if pointer {
				continue
			}
			switch kind {
			case "string":
				lengthKeywords(&c.MinLength, &c.MaxLength, validateRule{tag: "min", param: "1"})
			case "number":
				c.Not = &jsonschema.Schema{Const: json.Number("0")}
			case "boolean":
				c.Const = true // validator's required refuses false
			}
		default:
			if !r.or {
				schemaKeywordsFromRule(c, t, kind, r)
			}
		}
	}
	if isEmptySchema(c) {
		return
	}

	// The zero value skips validation under omitempty/omitzero, so the
	// schema must accept it too. (Through a pointer only nil is skipped, and
	// for slices and maps omitempty only skips nil, which encodes as null.)
	var zero *jsonschema.Schema
	if !pointer {
		switch {
		case (omitEmpty || omitZero) && kind == "string" && !acceptsZero(c, kind):
			zero = &jsonschema.Schema{Const: ""}
		case (omitEmpty || omitZero) && kind == "number" && !acceptsZero(c, kind):
			zero = &jsonschema.Schema{Const: json.Number("0")}
		case omitZero && kind == "array" && !acceptsZero(c, kind):
			zero = &jsonschema.Schema{MaxItems: new(uint64)}
		case omitZero && kind == "object" && !acceptsZero(c, kind):
			zero = &jsonschema.Schema{MaxProperties: new(uint64)}
		}
	}
	switch {
	case zero == nil:
		mergeKeywords(s, c)
	case zero.Const != nil && onlyEnum(c):
		c.Enum = append(c.Enum, zero.Const)
		mergeKeywords(s, c)
	default:
		addAnyOf(s, []*jsonschema.Schema{zero, c})
	}
}

// jsonKind is the JSON type a value of Go type t is encoded as, as far as
// validate rules are concerned: "string", "number", "array", "object", or ""
// when no rule is translated for t.
func jsonKind(t reflect.Type, s *jsonschema.Schema) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		if s.Type == "string" {
			return "" // json:",string"
		}
		return "number"
	case reflect.Slice:
		if t.Elem() == byteType || t == ipType || t == rawMessageType {
			return ""
		}
		return "array"
	case reflect.Array:
		return "array"
	case reflect.Map:
		return "object"
	case reflect.Bool:
		return "boolean"
	}
	return ""
}

// stringFormat returns the JSON Schema "format" of a string rule, if any.
func stringFormat(tag string) (string, bool) {
	switch tag {
	case "email":
		return "email", true
	case "url", "http_url", "https_url":
		return "uri", true
	case "uri":
		return "uri-reference", true // validator's uri accepts "/relative" too
	case "uuid", "uuid3", "uuid4", "uuid5", "uuid7",
		"uuid_rfc4122", "uuid3_rfc4122", "uuid4_rfc4122", "uuid5_rfc4122":
		return "uuid", true
	case "hostname", "hostname_rfc1123":
		return "hostname", true
	case "ipv4", "ipv6":
		return tag, true
	}
	return "", false
}

// stringPattern returns the JSON Schema "pattern" of a string rule, if any:
// the regular expression validator/v10 checks it with, which is valid
// ECMA-262 as well.
func stringPattern(tag string) (string, bool) {
	switch tag {
	case "alpha":
		return "^[a-zA-Z]+$", true
	case "alphanum":
		return "^[a-zA-Z0-9]+$", true
	case "numeric":
		return `^[-+]?[0-9]+(?:\.[0-9]+)?$`, true
	}
	return "", false
}

// schemaKeywordsFromRule adds to c the keywords for one validate rule on a
// value of Go type t encoded as JSON kind; the translations are listed in the
// documentation of GenerateSchema. Rules it does not translate, and
// parameters validator would reject, are ignored.
func schemaKeywordsFromRule(c *jsonschema.Schema, t reflect.Type, kind string, r validateRule) {
	switch kind {
	case "string":
		switch r.tag {
		case "eq":
			c.Const = r.param
		case "oneof":
			if vals := oneOfValues(r.param); len(vals) > 0 && c.Enum == nil {
				for _, v := range vals {
					c.Enum = append(c.Enum, v)
				}
			}
		case "ip":
			if c.AnyOf == nil {
				c.AnyOf = []*jsonschema.Schema{{Format: "ipv4"}, {Format: "ipv6"}}
			}
		default:
			if f, ok := stringFormat(r.tag); ok {
				if c.Format == "" {
					c.Format = f
				}
			} else if p, ok := stringPattern(r.tag); ok {
				if c.Pattern == "" {
					c.Pattern = p
				}
			} else {
				lengthKeywords(&c.MinLength, &c.MaxLength, r)
			}
		}
	case "number":
		switch r.tag {
		case "oneof":
			if vals := integerEnum(t, r.param); len(vals) > 0 && c.Enum == nil {
				c.Enum = vals
			}
			return
		}
		n, ok := numberParam(t, r.param)
		if !ok {
			return
		}
		switch r.tag {
		case "min", "gte":
			c.Minimum = stricter(c.Minimum, n, 1)
		case "max", "lte":
			c.Maximum = stricter(c.Maximum, n, -1)
		case "gt":
			c.ExclusiveMinimum = stricter(c.ExclusiveMinimum, n, 1)
		case "lt":
			c.ExclusiveMaximum = stricter(c.ExclusiveMaximum, n, -1)
		case "eq", "len":
			c.Const = n
		}
	case "array":
		if r.tag == "unique" && r.param == "" {
			c.UniqueItems = true
			return
		}
		if r.tag == "eq" {
			r.tag = "len"
		}
		lengthKeywords(&c.MinItems, &c.MaxItems, r)
	case "object":
		if r.tag == "eq" {
			r.tag = "len"
		}
		lengthKeywords(&c.MinProperties, &c.MaxProperties, r)
	}
}

// lengthKeywords narrows the bounds *lo and *hi by a length rule.
func lengthKeywords(lo, hi **uint64, r validateRule) {
	n, err := strconv.ParseInt(r.param, 0, 64) // as validator's asInt
	if err != nil || n < 0 {
		return
	}
	raise := func(v uint64) {
		if *lo == nil || **lo < v {
			*lo = &v
		}
	}
	lower := func(v uint64) {
		if *hi == nil || **hi > v {
			*hi = &v
		}
	}
	switch r.tag {
	case "min", "gte":
		raise(uint64(n))
	case "gt":
		raise(uint64(n) + 1)
	case "max", "lte":
		lower(uint64(n))
	case "lt":
		if n > 0 {
			lower(uint64(n) - 1)
		}
	case "len":
		raise(uint64(n))
		lower(uint64(n))
	}
}

// numberParam parses a numeric rule parameter as validator/v10 does for a
// value of type t and returns it as a JSON number.
func numberParam(t reflect.Type, p string) (json.Number, bool) {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if t == durationType {
			if d, err := time.ParseDuration(p); err == nil {
				return json.Number(strconv.FormatInt(int64(d), 10)), true
			}
		}
		n, err := strconv.ParseInt(p, 0, 64)
		if err != nil {
			return "", false
		}
		return json.Number(strconv.FormatInt(n, 10)), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(p, 0, 64)
		if err != nil {
			return "", false
		}
		return json.Number(strconv.FormatUint(n, 10)), true
	case reflect.Float32, reflect.Float64:
		bits := t.Bits()
		f, err := strconv.ParseFloat(p, bits)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return "", false
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, bits)), true
	}
	return "", false
}

// stricter returns the stricter of the bounds cur (possibly unset) and n:
// the larger when sign is 1, the smaller when sign is -1.
func stricter(cur, n json.Number, sign int) json.Number {
	if cur == "" {
		return n
	}
	a, _, errA := big.ParseFloat(string(cur), 10, 128, big.ToNearestEven)
	b, _, errB := big.ParseFloat(string(n), 10, 128, big.ToNearestEven)
	if errA != nil || errB != nil {
		return cur
	}
	if b.Cmp(a) == sign {
		return n
	}
	return cur
}

// oneOfParam matches the values of a oneof parameter, as validator/v10 does.
var oneOfParam = regexp.MustCompile(`'[^']*'|\S+`)

// oneOfValues splits a oneof parameter: "a b 'c d'" → a, b, c d.
func oneOfValues(param string) []string {
	vals := oneOfParam.FindAllString(param, -1)
	for i, v := range vals {
		vals[i] = strings.ReplaceAll(v, "'", "")
	}
	return vals
}

// integerEnum returns the enum for a oneof rule on an integer of type t.
// validator compares the decimal form of the value with each parameter, so
// parameters not in canonical decimal form can never match and are dropped.
func integerEnum(t reflect.Type, param string) []any {
	var enum []any
	for _, v := range oneOfValues(param) {
		var canonical string
		switch t.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				canonical = strconv.FormatInt(n, 10)
			}
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			if n, err := strconv.ParseUint(v, 10, 64); err == nil {
				canonical = strconv.FormatUint(n, 10)
			}
		default:
			return nil // validator panics on oneof for floats
		}
		if canonical != "" && canonical == v {
			enum = append(enum, json.Number(v))
		}
	}
	return enum
}

// acceptsZero reports whether the keywords c are known to accept the zero
// value of JSON kind ("" or 0, [] or {}). It errs towards false.
func acceptsZero(c *jsonschema.Schema, kind string) bool {
	var zero any
	switch kind {
	case "string":
		if (c.MinLength != nil && *c.MinLength > 0) || c.Format != "" || c.Pattern != "" || c.AnyOf != nil {
			return false
		}
		zero = ""
	case "number":
		if !boundAllows(c.Minimum, false, 1) || !boundAllows(c.ExclusiveMinimum, true, 1) ||
			!boundAllows(c.Maximum, false, -1) || !boundAllows(c.ExclusiveMaximum, true, -1) {
			return false
		}
		zero = json.Number("0")
	case "array":
		return c.MinItems == nil || *c.MinItems == 0
	case "object":
		return c.MinProperties == nil || *c.MinProperties == 0
	}
	if c.Const != nil && !equalJSONValue(c.Const, zero) {
		return false
	}
	if c.Enum != nil && !slices.ContainsFunc(c.Enum, func(v any) bool { return equalJSONValue(v, zero) }) {
		return false
	}
	return true
}

// boundAllows reports whether the bound n (unset when empty) lets 0 through.
// dir is 1 for a lower bound, -1 for an upper bound: a lower bound lets 0
// through when n < 0, or n == 0 if it is inclusive; an upper bound when
// n > 0, or n == 0 if it is inclusive.
func boundAllows(n json.Number, exclusive bool, dir int) bool {
	if n == "" {
		return true
	}
	f, err := n.Float64()
	if err != nil {
		return false
	}
	sign := 0
	switch {
	case f > 0:
		sign = 1
	case f < 0:
		sign = -1
	}
	if exclusive {
		return sign == -dir
	}
	return sign != dir
}

func equalJSONValue(a, b any) bool {
	an, aok := a.(json.Number)
	bn, bok := b.(json.Number)
	if aok && bok {
		af, errA := an.Float64()
		bf, errB := bn.Float64()
		return errA == nil && errB == nil && af == bf
	}
	return a == b
}

// onlyEnum reports whether enum is the only keyword set in c.
func onlyEnum(c *jsonschema.Schema) bool {
	rest := *c
	rest.Enum = nil
	return c.Enum != nil && isEmptySchema(&rest)
}

// mergeKeywords copies to dst the keywords set in c that dst does not set
// already; keywords from jsonschema struct tags therefore take precedence.
func mergeKeywords(dst, c *jsonschema.Schema) {
	setPtr := func(d **uint64, v *uint64) {
		if *d == nil {
			*d = v
		}
	}
	setNum := func(d *json.Number, v json.Number) {
		if *d == "" {
			*d = v
		}
	}
	setPtr(&dst.MinLength, c.MinLength)
	setPtr(&dst.MaxLength, c.MaxLength)
	setPtr(&dst.MinItems, c.MinItems)
	setPtr(&dst.MaxItems, c.MaxItems)
	setPtr(&dst.MinProperties, c.MinProperties)
	setPtr(&dst.MaxProperties, c.MaxProperties)
	setNum(&dst.Minimum, c.Minimum)
	setNum(&dst.Maximum, c.Maximum)
	setNum(&dst.ExclusiveMinimum, c.ExclusiveMinimum)
	setNum(&dst.ExclusiveMaximum, c.ExclusiveMaximum)
	if dst.Format == "" {
		dst.Format = c.Format
	}
	if dst.Pattern == "" {
		dst.Pattern = c.Pattern
	}
	if dst.Const == nil {
		dst.Const = c.Const
	}
	if dst.Enum == nil {
		dst.Enum = c.Enum
	}
	if dst.Not == nil {
		dst.Not = c.Not
	}
	dst.UniqueItems = dst.UniqueItems || c.UniqueItems
	if c.AnyOf != nil {
		addAnyOf(dst, c.AnyOf)
	}
}

// addAnyOf adds the alternatives to dst as its anyOf, or as an allOf entry
// when dst has an anyOf of its own already.
func addAnyOf(dst *jsonschema.Schema, alternatives []*jsonschema.Schema) {
	if dst.AnyOf == nil {
		dst.AnyOf = alternatives
		return
	}
	dst.AllOf = append(dst.AllOf, &jsonschema.Schema{AnyOf: alternatives})
}

// sortRequired orders s.Required like s.Properties, since fields required by
// jsonschema tags and by validate tags are collected separately. Names that
// are not properties keep their relative order at the end.
func sortRequired(s *jsonschema.Schema) {
	if len(s.Required) < 2 || s.Properties == nil {
		return
	}
	pos := map[string]int{}
	i := 0
	for pair := s.Properties.Oldest(); pair != nil; pair = pair.Next() {
		pos[pair.Key] = i
		i++
	}
	slices.SortStableFunc(s.Required, func(a, b string) int {
		pa, okA := pos[a]
		pb, okB := pos[b]
		switch {
		case okA && okB:
			return pa - pb
		case okA:
			return -1
		case okB:
			return 1
		}
		return 0
	})
}

// rewriteRefs replaces every "$ref": from with to in s and its subschemas.
func rewriteRefs(s *jsonschema.Schema, from, to string) {
	visitSchemas(s, map[*jsonschema.Schema]bool{}, func(s *jsonschema.Schema) {
		if s.Ref == from {
			s.Ref = to
		}
	})
}

// visitSchemas calls fn for s and every subschema of s, once each.
func visitSchemas(s *jsonschema.Schema, seen map[*jsonschema.Schema]bool, fn func(*jsonschema.Schema)) {
	if s == nil || isBoolSchema(s) || seen[s] {
		return
	}
	seen[s] = true
	fn(s)
	visit := func(subs ...*jsonschema.Schema) {
		for _, sub := range subs {
			visitSchemas(sub, seen, fn)
		}
	}
	for _, sub := range s.Definitions {
		visit(sub)
	}
	for _, sub := range s.DependentSchemas {
		visit(sub)
	}
	for _, sub := range s.PatternProperties {
		visit(sub)
	}
	if s.Properties != nil {
		for pair := s.Properties.Oldest(); pair != nil; pair = pair.Next() {
			visit(pair.Value)
		}
	}
	visit(s.AllOf...)
	visit(s.AnyOf...)
	visit(s.OneOf...)
	visit(s.PrefixItems...)
	visit(s.Not, s.If, s.Then, s.Else, s.Items, s.Contains,
		s.AdditionalProperties, s.PropertyNames, s.ContentSchema)
}

// unwrapNullable returns the schema inside invopop's wrapper for
// jsonschema:"nullable" fields ({"oneOf": [schema, {"type": "null"}]}), or s.
func unwrapNullable(s *jsonschema.Schema) *jsonschema.Schema {
	if s != nil && s.Type == "" && s.Ref == "" && len(s.OneOf) == 2 && s.OneOf[1] != nil && s.OneOf[1].Type == "null" {
		return s.OneOf[0]
	}
	return s
}

// isBoolSchema reports whether s is one of invopop's shared true/false
// schemas, which must never be modified.
func isBoolSchema(s *jsonschema.Schema) bool {
	return s == jsonschema.TrueSchema || s == jsonschema.FalseSchema
}

func isEmptySchema(s *jsonschema.Schema) bool {
	return reflect.DeepEqual(s, &jsonschema.Schema{})
}

func derefType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// hasCustomSchema reports whether t supplies its own schema to invopop.
func hasCustomSchema(t reflect.Type) bool {
	return t.Implements(customSchemaType) || t.Implements(aliasSchemaType)
}

// hasCustomRepresentation reports whether the JSON encoding or the schema of
// t may not follow its Go kind, so that validate rules must not be translated.
func hasCustomRepresentation(t reflect.Type) bool {
	if hasCustomSchema(t) {
		return true
	}
	for _, i := range []reflect.Type{jsonMarshalerType, textMarshalerType} {
		if t.Implements(i) || reflect.PointerTo(t).Implements(i) {
			return true
		}
	}
	return false
}
