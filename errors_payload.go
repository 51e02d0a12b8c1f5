package outhook

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidPayload is matched (errors.Is) by every *PayloadError.
var ErrInvalidPayload = errors.New("outhook: invalid payload")

// ErrInvalidConfig is matched (errors.Is) by every *ConfigError.
var ErrInvalidConfig = errors.New("outhook: invalid config")

// FieldError describes one failing field of a payload or config.
type FieldError struct {
	// Field is the JSON path of the field, such as "title", "systemIds[0]"
	// or "owner.email". Names come from json tags, or are the Go field name
	// when a field has none; fields of embedded structs are promoted as in
	// encoding/json. It is empty when the value as a whole is at fault.
	Field string
	// Rule is the validate rule that failed, such as "required" or "min".
	Rule string
	// Param is the rule's parameter, such as "1" for min=1; it may be empty.
	Param string
	// Message is a human-readable description, such as "title is required"
	// or "systemIds must have at least 1 item".
	Message string
}

// PayloadError reports every failing field of a hook payload.
type PayloadError struct {
	Hook   string // ID of the hook the payload was emitted on; may be empty
	Fields []FieldError
}

// Error lists the message of every failing field, for example
//
//	outhook: invalid payload for hook "incident.created": title is required; severity must be one of [critical major minor]
func (e *PayloadError) Error() string {
	var b strings.Builder
	b.WriteString("outhook: invalid payload")
	if e.Hook != "" {
		fmt.Fprintf(&b, " for hook %q", e.Hook)
	}
	writeFieldMessages(&b, ": ", e.Fields)
	return b.String()
}

// Is reports whether target is ErrInvalidPayload.
func (e *PayloadError) Is(target error) bool {
	return target == ErrInvalidPayload
}

// ConfigError reports why a deliverer or subscription config is invalid:
// either every failing field (Fields), or why the config could not be
// decoded at all (Err: malformed JSON, an unknown field, a value of the wrong
// type for a field).
type ConfigError struct {
	Deliverer string // ID of the deliverer the config is for; may be empty
	Fields    []FieldError
	Err       error
}

// Error describes the decoding error or lists the message of every failing
// field, for example
//
//	outhook: invalid config for deliverer "slack": url is required
func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("outhook: invalid config")
	if e.Deliverer != "" {
		fmt.Fprintf(&b, " for deliverer %q", e.Deliverer)
	}
	sep := ": "
	if e.Err != nil {
		b.WriteString(sep)
		b.WriteString(e.Err.Error())
		sep = "; "
	}
	writeFieldMessages(&b, sep, e.Fields)
	return b.String()
}

// Is reports whether target is ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool {
	return target == ErrInvalidConfig
}

// Unwrap returns the decoding error, if any.
func (e *ConfigError) Unwrap() error {
	return e.Err
}

// writeFieldMessages appends the field messages to b, separated by "; "
// and preceded by first.
func writeFieldMessages(b *strings.Builder, first string, fields []FieldError) {
	for i, f := range fields {
		if i == 0 {
			b.WriteString(first)
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.Message)
	}
}
