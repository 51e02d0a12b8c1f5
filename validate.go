package outhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"github.com/go-playground/validator/v10"
)

// payloadValidator checks hook payloads and deliverer configs against the
// validate struct tags of github.com/go-playground/validator/v10 and names
// failing fields by their JSON path. It is safe for concurrent use.
//
// Two validator options are enabled: required on a non-pointer struct field
// fails for the zero struct (validator's recommended behaviour, the default
// from v11), and fields of embedded structs are named as encoding/json
// promotes them ("id", not "Base.id").
type payloadValidator struct {
	v *validator.Validate
}

func newPayloadValidator() *payloadValidator {
	v := validator.New(validator.WithRequiredStructEnabled(), validator.WithTagNameFuncBlankOmit())
	v.RegisterTagNameFunc(validationFieldName)
	return &payloadValidator{v: v}
}

// validationFieldName names a struct field in validation errors: its JSON
// name, or "" for an embedded struct whose fields encoding/json promotes
// (the name is then left out of the path). A field that is not encoded
// (json:"-") is still validated and is named by its Go name.
func validationFieldName(f reflect.StructField) string {
	tag := f.Tag.Get("json")
	if tag == "-" {
		return f.Name
	}
	if name, _, _ := strings.Cut(tag, ","); name != "" {
		return name
	}
	if f.Anonymous && derefType(f.Type).Kind() == reflect.Struct {
		return ""
	}
	return f.Name
}

// validate checks the payload v emitted on hook hookID. It returns nil when
// v is valid, a *PayloadError listing every failing field when it is not,
// and another error when v cannot be validated (a malformed validate tag).
//
// Only structs and pointers to structs are validated; any other value,
// including a nil interface and maps or slices of structs, passes as is. A
// nil pointer to a struct fails with Rule "required" and message
// "payload is nil".
func (p *payloadValidator) validate(hookID string, v any) error {
	fields, err := p.check(v, "payload")
	if err != nil {
		return fmt.Errorf("outhook: validate payload for hook %q: %w", hookID, err)
	}
	if len(fields) == 0 {
		return nil
	}
	return &PayloadError{Hook: hookID, Fields: fields}
}

// check validates v and returns its failing fields; subject names v in the
// message for a nil pointer ("payload is nil"). err is non-nil only when v
// could not be validated at all.
func (p *payloadValidator) check(v any, subject string) (fields []FieldError, err error) {
	if v == nil {
		return nil, nil
	}
	rv := reflect.ValueOf(v)
	// Reduce **T and deeper to *T: validator dereferences one level only.
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			if isValidatableStruct(derefType(rv.Type())) {
				return []FieldError{{Rule: "required", Message: subject + " is nil"}}, nil
			}
			return nil, nil
		}
		if rv.Elem().Kind() != reflect.Pointer {
			break
		}
		rv = rv.Elem()
	}
	st := derefType(rv.Type())
	if !isValidatableStruct(st) {
		return nil, nil
	}
	target := v
	if rv.Type() != reflect.TypeOf(v) {
		target = rv.Interface() // a pointer: no allocation
	}

	defer func() {
		// validator panics on malformed tags, such as an unknown rule or
		// dive on a field that is not a slice or map.
		if r := recover(); r != nil {
			fields, err = nil, fmt.Errorf("validate tags of %s: %v", st, r)
		}
	}()
	verr := p.v.Struct(target)
	if verr == nil {
		return nil, nil
	}
	var errs validator.ValidationErrors
	if !errors.As(verr, &errs) {
		return nil, verr // *validator.InvalidValidationError
	}
	fields = make([]FieldError, len(errs))
	for i, fe := range errs {
		path := jsonPath(st, fe)
		fields[i] = FieldError{
			Field:   path,
			Rule:    fe.Tag(),
			Param:   fe.Param(),
			Message: fieldMessage(path, fe),
		}
	}
	return fields, nil
}

// isValidatableStruct reports whether validator can validate values of t.
func isValidatableStruct(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && !t.ConvertibleTo(timeType)
}

// jsonPath turns the namespace of a validation error, such as
// "Incident.systemIds[0]", into the JSON path "systemIds[0]". The namespace
// already uses JSON names (validationFieldName); only the root type's name
// has to go. An error on an embedded struct itself, which has no JSON name,
// is named by the Go field name.
func jsonPath(root reflect.Type, fe validator.FieldError) string {
	path := fe.Namespace()
	if name := root.Name(); name != "" {
		if path == name {
			path = ""
		} else {
			path = strings.TrimPrefix(path, name+".")
		}
	}
	if path == "" {
		path = fe.StructField()
	}
	return path
}

// fieldMessage describes a validation error in words, naming the field by
// its JSON path.
func fieldMessage(path string, fe validator.FieldError) string {
	tag, param := fe.ActualTag(), fe.Param()
	unit := lengthUnit(fe.Kind())
	isTime := fe.Type() != nil && derefType(fe.Type()) == timeType
	must := func(format string, args ...any) string {
		return path + " must " + fmt.Sprintf(format, args...)
	}

	switch {
	case tag == "required" || strings.HasPrefix(tag, "required_"):
		return path + " is required"
	case strings.HasPrefix(tag, "uuid"):
		return must("be a valid UUID")
	case tag == "hostname" || tag == "hostname_rfc1123":
		return must("be a valid hostname")
	case isTime:
		switch tag {
		case "gt":
			return must("be in the future")
		case "gte":
			return must("not be in the past")
		case "lt":
			return must("be in the past")
		case "lte":
			return must("not be in the future")
		}
	case unit != "":
		// Length rules on strings, slices, arrays and maps.
		verb := "have"
		if unit == "character" {
			verb = "be"
		}
		long := ""
		if unit == "character" {
			long = " long"
		}
		switch tag {
		case "min", "gte":
			return must("%s at least %s%s", verb, count(param, unit), long)
		case "max", "lte":
			return must("%s at most %s%s", verb, count(param, unit), long)
		case "gt":
			return must("%s more than %s%s", verb, count(param, unit), long)
		case "lt":
			return must("%s fewer than %s%s", verb, count(param, unit), long)
		case "len":
			return must("%s exactly %s%s", verb, count(param, unit), long)
		case "eq", "ne":
			if unit == "character" {
				break // string equality, below
			}
			if tag == "ne" {
				return must("not have exactly %s", count(param, unit))
			}
			return must("have exactly %s", count(param, unit))
		}
	default:
		// Numbers.
		switch tag {
		case "min", "gte":
			return must("be at least %s", param)
		case "max", "lte":
			return must("be at most %s", param)
		case "gt":
			return must("be greater than %s", param)
		case "lt":
			return must("be less than %s", param)
		case "len":
			return must("be equal to %s", param)
		}
	}

	switch tag {
	case "eq":
		return must("be equal to %s", quoteIfString(fe, param))
	case "ne":
		return must("not be equal to %s", quoteIfString(fe, param))
	case "oneof":
		return must("be one of [%s]", param)
	case "email":
		return must("be a valid email address")
	case "url", "uri":
		return must("be a valid URL")
	case "http_url":
		return must("be a valid HTTP or HTTPS URL")
	case "https_url":
		return must("be a valid HTTPS URL")
	case "ip":
		return must("be a valid IP address")
	case "ipv4":
		return must("be a valid IPv4 address")
	case "ipv6":
		return must("be a valid IPv6 address")
	case "fqdn":
		return must("be a fully qualified domain name")
	case "datetime":
		return must("be a date-time in the layout %q", param)
	case "unique":
		return must("not contain duplicate values")
	case "alpha":
		return must("contain only ASCII letters")
	case "alphanum":
		return must("contain only ASCII letters and digits")
	case "numeric":
		return must("be a numeric string")
	}
	rule := fe.Tag()
	if param != "" {
		rule += "=" + param
	}
	return fmt.Sprintf("%s failed the %q rule", path, rule)
}

// lengthUnit is what length rules count for values of kind k, or "" when
// they compare the value itself.
func lengthUnit(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "character"
	case reflect.Slice, reflect.Array:
		return "item"
	case reflect.Map:
		return "entry"
	}
	return ""
}

// count formats n units: "1 item", "3 items", "2 entries".
func count(n, unit string) string {
	if n == "1" {
		return n + " " + unit
	}
	if unit == "entry" {
		return n + " entries"
	}
	return n + " " + unit + "s"
}

func quoteIfString(fe validator.FieldError, param string) string {
	if fe.Kind() == reflect.String {
		return fmt.Sprintf("%q", param)
	}
	return param
}

// ConfigCodec decodes and validates the JSON config of a deliverer (or of a
// subscription to it) into a C, typically a struct with json and validate
// tags. Deliverers use it to check a config when a subscription is saved. A
// ConfigCodec is safe for concurrent use.
type ConfigCodec[C any] struct {
	delivererID string
	schema      json.RawMessage
	validator   *payloadValidator
}

// NewConfigCodec returns a ConfigCodec for configs of type C of the
// deliverer delivererID. It generates the JSON Schema of C once, and reports
// validate tags of C that validator rejects (best effort: tags of types only
// reachable through nil pointers, empty slices or maps are checked on use).
func NewConfigCodec[C any](delivererID string) (*ConfigCodec[C], error) {
	schema, err := SchemaFor[C]()
	if err != nil {
		return nil, fmt.Errorf("outhook: config codec for deliverer %q: %w", delivererID, err)
	}
	c := &ConfigCodec[C]{
		delivererID: delivererID,
		schema:      schema,
		validator:   newPayloadValidator(),
	}
	if _, err := c.validator.check(new(C), "config"); err != nil {
		return nil, fmt.Errorf("outhook: config codec for deliverer %q: %w", delivererID, err)
	}
	return c, nil
}

// Schema returns the JSON Schema of C (see GenerateSchema). The returned
// slice is a copy.
func (c *ConfigCodec[C]) Schema() json.RawMessage {
	return slices.Clone(c.schema)
}

// Decode decodes raw strictly into a C and validates it. Unknown fields,
// values of the wrong type and data after the JSON value are rejected; empty
// or null raw decodes to the zero C, which is then validated like any other.
// Every error is a *ConfigError: with Err set when raw cannot be decoded,
// with Fields set when the decoded config fails validation. On error the
// zero C is returned.
func (c *ConfigCodec[C]) Decode(raw json.RawMessage) (C, error) {
	var cfg, zero C
	if trimmed := bytes.TrimSpace(raw); len(trimmed) > 0 && !bytes.Equal(trimmed, []byte("null")) {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			return zero, &ConfigError{Deliverer: c.delivererID, Err: describeDecodeError(err)}
		}
		if _, err := dec.Token(); err != io.EOF {
			return zero, &ConfigError{Deliverer: c.delivererID, Err: &configDecodeError{
				msg: "malformed JSON: unexpected data after the top-level value",
				err: err,
			}}
		}
	}
	fields, err := c.validator.check(&cfg, "config")
	if err != nil {
		return zero, &ConfigError{Deliverer: c.delivererID, Err: err}
	}
	if len(fields) > 0 {
		return zero, &ConfigError{Deliverer: c.delivererID, Fields: fields}
	}
	return cfg, nil
}

// configDecodeError describes in plain words why a config could not be
// decoded; it wraps the error of encoding/json.
type configDecodeError struct {
	msg string
	err error
}

func (e *configDecodeError) Error() string { return e.msg }
func (e *configDecodeError) Unwrap() error { return e.err }

// describeDecodeError rewords an encoding/json decoding error.
func describeDecodeError(err error) error {
	var (
		typeErr   *json.UnmarshalTypeError
		syntaxErr *json.SyntaxError
		msg       string
	)
	switch {
	case errors.As(err, &typeErr):
		want := jsonTypeName(typeErr.Type)
		if strings.HasPrefix(typeErr.Value, "number ") {
			// A number that does not fit the Go type (1.5 or 300 for an int8).
			want += " (" + typeErr.Type.String() + ")"
		}
		if typeErr.Field == "" {
			msg = fmt.Sprintf("wrong type: got JSON %s, want %s", typeErr.Value, want)
		} else {
			msg = fmt.Sprintf("wrong type for field %q: got JSON %s, want %s", typeErr.Field, typeErr.Value, want)
		}
	case errors.As(err, &syntaxErr):
		msg = fmt.Sprintf("malformed JSON at offset %d: %s", syntaxErr.Offset, syntaxErr.Error())
	case errors.Is(err, io.ErrUnexpectedEOF):
		msg = "malformed JSON: unexpected end of input"
	default:
		// Unknown fields ("unknown field \"x\"") and errors of custom
		// UnmarshalJSON methods.
		msg = strings.TrimPrefix(err.Error(), "json: ")
	}
	return &configDecodeError{msg: msg, err: err}
}

// jsonTypeName is the JSON type values of Go type t are decoded from.
func jsonTypeName(t reflect.Type) string {
	if t == nil {
		return "a different type"
	}
	switch derefType(t).Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	}
	return t.String()
}
