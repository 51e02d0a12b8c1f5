package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"

	"github.com/outhook/outhook/internal/jsonscalar"
)

// Decode decodes the first JSON value of raw, numbers as json.Number. With
// whole, anything but white space after that value is an error.
func Decode(raw []byte, whole bool) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	if whole {
		if _, err := dec.Token(); err != io.EOF {
			return nil, errTrailing
		}
	}
	return doc, nil
}

var errTrailing = errors.New("invalid data after the top-level value")

// DecodeObject decodes a payload that is a JSON object, numbers as
// json.Number; any other payload (null, an array, not JSON) gives nil. With
// whole, a payload with anything after the object gives nil too.
func DecodeObject(raw []byte, whole bool) map[string]any {
	doc, err := Decode(raw, whole)
	if err != nil {
		return nil
	}
	obj, _ := doc.(map[string]any)
	return obj
}

// DecodeOrText decodes a payload, numbers as json.Number. An empty or null
// payload gives nil; one that is not JSON gives its text (invalid UTF-8
// replaced with U+FFFD).
func DecodeOrText(raw []byte) any {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil
	}
	doc, err := Decode(raw, false)
	if err != nil {
		return strings.ToValidUTF8(string(raw), "\uFFFD")
	}
	return doc
}

// DropNulls removes the null members of the objects in v, at any depth, and
// returns v. Templates run with MissingKeep then treat null fields as
// missing ones.
func DropNulls(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if e == nil {
				delete(v, k)
				continue
			}
			v[k] = DropNulls(e)
		}
	case []any:
		for i, e := range v {
			v[i] = DropNulls(e)
		}
	}
	return v
}

// Scalar returns the text of a JSON scalar decoded with UseNumber: a
// string as is, a number as written, a boolean as true or false. Other
// values (null, objects, arrays) give false.
func Scalar(v any) (string, bool) { return jsonscalar.Text(v) }

// JoinScalars joins an array of scalars with ", ". It gives false when the
// array holds an object or an array, and, unless skipNulls (which leaves
// them out), a null.
func JoinScalars(arr []any, skipNulls bool) (string, bool) {
	parts := make([]string, 0, len(arr))
	for _, e := range arr {
		if e == nil && skipNulls {
			continue
		}
		s, ok := Scalar(e)
		if !ok {
			return "", false
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", "), true
}

// Field is one payload field as text.
type Field struct{ Key, Value string }

// Fields returns the top-level fields of obj that read as text, in display
// order: the keys of leading first, in its order, then the others sorted.
// Scalars are shown as Scalar writes them, arrays of scalars joined with
// ", " (nulls in them left out); objects, arrays holding objects or arrays,
// nulls, empty keys and blank values are left out.
func Fields(obj map[string]any, leading []string) []Field {
	var fields []Field
	add := func(k string) {
		v, ok := Scalar(obj[k])
		if arr, isArr := obj[k].([]any); isArr {
			v, ok = JoinScalars(arr, true)
		}
		if ok && strings.TrimSpace(v) != "" && k != "" {
			fields = append(fields, Field{k, v})
		}
	}
	for _, k := range leading {
		add(k)
	}
	rest := make([]string, 0, len(obj))
	for k := range obj {
		if !slices.Contains(leading, k) {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	for _, k := range rest {
		add(k)
	}
	return fields
}

// FirstField returns the first of keys whose value in obj is a string (or,
// with scalars, any scalar) that is not blank, and that value as is.
func FirstField(obj map[string]any, keys []string, scalars bool) (key, value string, ok bool) {
	for _, k := range keys {
		var v string
		if scalars {
			v, ok = Scalar(obj[k])
		} else {
			v, ok = obj[k].(string)
		}
		if ok && strings.TrimSpace(v) != "" {
			return k, v, true
		}
	}
	return "", "", false
}

// Lookup follows a dot path ("incident.owner.id") through nested objects
// and returns the value at its end; false when a step is missing or not an
// object.
func Lookup(doc map[string]any, path string) (any, bool) {
	var cur any = doc
	for seg := range strings.SplitSeq(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[seg]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// Marshal encodes v as compact JSON without escaping <, > and & (the
// destinations read JSON, not HTML).
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
