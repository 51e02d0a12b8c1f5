package adminhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/outhook/outhook"
)

// Problem types: the "type" member of the problem details the API answers
// with. Problems without a type of their own (405, 413, 415, 500, 503, and
// 404 for a path that matches no route) are "about:blank", whose title is
// the HTTP status text (RFC 9457, section 4.2.1).
const (
	// TypeValidation: the request is malformed or names a bad value; the
	// "errors" member lists each field at fault. 400.
	TypeValidation = "urn:outhook:problem:validation"
	// TypeNotFound: the subscription, delivery or event does not exist. 404.
	TypeNotFound = "urn:outhook:problem:not-found"
	// TypeConflict: the request conflicts with the resource's state, such as
	// a subscription ID already taken or a redelivery of a pending delivery.
	// 409.
	TypeConflict = "urn:outhook:problem:conflict"
	// TypeUnauthenticated: the request lacks valid credentials. 401.
	TypeUnauthenticated = "urn:outhook:problem:unauthenticated"
	// TypeForbidden: the caller may not perform the operation. 403.
	TypeForbidden = "urn:outhook:problem:forbidden"
)

var typeTitles = map[string]string{
	TypeValidation:      "Invalid request",
	TypeNotFound:        "Not found",
	TypeConflict:        "Conflict",
	TypeUnauthenticated: "Unauthenticated",
	TypeForbidden:       "Forbidden",
}

// Problem is an RFC 9457 problem detail, the body of every error answer
// (Content-Type application/problem+json).
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Errors names each field at fault in a TypeValidation problem.
	Errors []FieldProblem `json:"errors,omitempty"`
}

// FieldProblem is one field at fault. Field is the path of the field in the
// request: "events[0]", "config.url", "filter.field", or a query parameter
// such as "limit".
type FieldProblem struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
	// Line and Column locate the problem inside the field's value, counted
	// from 1, when it is a filter expression that does not compile.
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
}

// requestError is a request the handler refuses before calling the client.
type requestError struct {
	status int
	detail string
	fields []FieldProblem
}

func (e *requestError) Error() string { return e.detail }

// badRequest returns a 400 error naming field.
func badRequest(field, detail string) error {
	return &requestError{status: http.StatusBadRequest, detail: "The request is invalid: " + field + " " + detail + ".",
		fields: []FieldProblem{{Field: field, Detail: detail}}}
}

// problem writes p, filling in its title and instance.
func (h *Handler) problem(w http.ResponseWriter, r *http.Request, p *Problem) {
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if p.Title == "" {
		p.Title = typeTitles[p.Type]
		if p.Title == "" {
			p.Title = http.StatusText(p.Status)
		}
	}
	if p.Instance == "" {
		p.Instance = instance(r)
	}
	body, err := encode(p)
	if err != nil {
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_, _ = w.Write(body)
}

// instance is the problem's "instance": the path the client asked for,
// with the prefix a StripPrefix removed, and without the query.
func instance(r *http.Request) string {
	if r.RequestURI != "" {
		if path, _, _ := strings.Cut(r.RequestURI, "?"); strings.HasPrefix(path, "/") {
			return path
		}
	}
	return r.URL.EscapedPath()
}

// fail answers err as a problem detail. Every text taken from err has the
// given secrets removed.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error, secrets []string) {
	h.problem(w, r, h.problemOf(r.Context(), err, secrets))
}

func (h *Handler) problemOf(ctx context.Context, err error, secrets []string) *Problem {
	text := func(s string) string { return scrub(strings.TrimPrefix(s, "outhook: "), secrets) }
	if re, ok := errors.AsType[*requestError](err); ok {
		p := &Problem{Status: re.status, Detail: text(re.detail), Errors: scrubFields(re.fields, secrets)}
		if re.status == http.StatusBadRequest {
			p.Type = TypeValidation
		}
		return p
	}
	if se, ok := errors.AsType[*outhook.SubscriptionError](err); ok {
		fs := scrubFields(subscriptionFields(se), secrets)
		return &Problem{Type: TypeValidation, Status: http.StatusBadRequest, Detail: fieldsDetail("The subscription is invalid", fs), Errors: fs}
	}
	if ce, ok := errors.AsType[*outhook.ConfigError](err); ok {
		fs := scrubFields(configFields("config", ce), secrets)
		return &Problem{Type: TypeValidation, Status: http.StatusBadRequest, Detail: fieldsDetail("The config is invalid", fs), Errors: fs}
	}
	if ie, ok := errors.AsType[*outhook.IDError](err); ok {
		return &Problem{Type: TypeValidation, Status: http.StatusBadRequest, Detail: text(ie.Error()),
			Errors: scrubFields([]FieldProblem{{Field: "id", Detail: ie.Reason}}, secrets)}
	}
	switch {
	case errors.Is(err, outhook.ErrNotFound):
		return &Problem{Type: TypeNotFound, Status: http.StatusNotFound, Detail: text(err.Error())}
	case errors.Is(err, outhook.ErrDuplicate), errors.Is(err, outhook.ErrDeliveryPending):
		return &Problem{Type: TypeConflict, Status: http.StatusConflict, Detail: text(err.Error())}
	case errors.Is(err, outhook.ErrClosed):
		return &Problem{Status: http.StatusServiceUnavailable, Detail: "The outhook client is stopped."}
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return &Problem{Status: http.StatusServiceUnavailable, Detail: "The request was cancelled or timed out."}
	}
	h.log.ErrorContext(ctx, "adminhttp: internal error", "error", text(err.Error()))
	return &Problem{Status: http.StatusInternalServerError, Detail: "An internal error occurred; it has been logged."}
}

// subscriptionFields lists the fields at fault in a subscription error: one
// per failing field of a deliverer's ConfigError, or the one field the
// error names.
func subscriptionFields(se *outhook.SubscriptionError) []FieldProblem {
	if ce, ok := errors.AsType[*outhook.ConfigError](se.Err); ok && len(ce.Fields) > 0 {
		return configFields("config", ce)
	}
	fp := FieldProblem{Field: se.Field, Detail: se.Reason}
	if se.Err != nil && !errors.Is(se.Err, outhook.ErrNotFound) {
		fp.Detail += ": " + strings.TrimPrefix(se.Err.Error(), "outhook: ")
	}
	if fe, ok := errors.AsType[*outhook.FilterError](se.Err); ok {
		fp.Line, fp.Column = fe.Line, fe.Column
	}
	return []FieldProblem{fp}
}

// configFields lists the failing fields of a ConfigError under prefix.
func configFields(prefix string, ce *outhook.ConfigError) []FieldProblem {
	if len(ce.Fields) == 0 {
		return []FieldProblem{{Field: prefix, Detail: strings.TrimPrefix(ce.Error(), "outhook: ")}}
	}
	out := make([]FieldProblem, len(ce.Fields))
	for i, f := range ce.Fields {
		field := prefix
		if f.Field != "" {
			field += "." + f.Field
		}
		out[i] = FieldProblem{Field: field, Detail: f.Message}
	}
	return out
}

// fieldsDetail is the detail of a problem with the given fields at fault.
func fieldsDetail(lead string, fs []FieldProblem) string {
	var b strings.Builder
	b.WriteString(lead)
	for i, f := range fs {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.Field + ": " + f.Detail)
	}
	b.WriteString(".")
	return b.String()
}

func scrubFields(fs []FieldProblem, secrets []string) []FieldProblem {
	for i := range fs {
		fs[i].Detail = scrub(fs[i].Detail, secrets)
	}
	return fs
}

// encode marshals v as the API's JSON: HTML characters are not escaped.
func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// writeJSON answers v with the given status.
func (h *Handler) writeJSON(w http.ResponseWriter, status int, v any) error {
	body, err := encode(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return nil
}

// decodeBody decodes the JSON body of r into dst, strictly: the media type
// must be JSON, the body at most MaxBodyBytes, unknown fields and trailing
// data are refused. An empty body decodes to nothing when optional.
func (h *Handler) decodeBody(w http.ResponseWriter, r *http.Request, dst any, optional bool) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return &requestError{status: http.StatusRequestEntityTooLarge,
				detail: fmt.Sprintf("The request body is larger than %d bytes.", h.maxBody)}
		}
		return badRequest("body", "cannot be read")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return nil
		}
		return badRequest("body", "is required")
	}
	if ct := r.Header.Get("Content-Type"); !isJSON(ct) {
		return &requestError{status: http.StatusUnsupportedMediaType,
			detail: "The request body must be application/json."}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("body", "has data after the JSON value")
	}
	return nil
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// decodeError describes a JSON decoding error, naming the field at fault.
// It never quotes the value that was sent.
func decodeError(err error) error {
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		field := te.Field
		if field == "" {
			field = "body"
		}
		return badRequest(field, "must be "+jsonType(te.Type.Kind().String()))
	}
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return badRequest("body", fmt.Sprintf("is not valid JSON (at byte %d)", se.Offset))
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return badRequest("body", "is not valid JSON (it ends too soon)")
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return badRequest(strings.Trim(name, `"`), "is not a known field")
	}
	return badRequest("body", "cannot be decoded")
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	case "int", "int64", "uint", "float64":
		return "a number"
	}
	return "of another type"
}
