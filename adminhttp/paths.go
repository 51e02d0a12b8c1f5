package adminhttp

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Limits of PropertyPaths: past them the list is cut short and reported
// truncated.
const (
	// MaxPropertyPaths caps the number of paths listed for one schema.
	MaxPropertyPaths = 1000
	// MaxPropertyDepth caps how deeply nested a listed path may be.
	MaxPropertyDepth = 32
	// maxSchemaVisits, maxRefWork and maxPathWork cap the work of one
	// PropertyPaths call, so that it is bounded whatever the schema (beyond
	// decoding it, which takes time in proportion to its size).
	//
	// maxSchemaVisits caps the schemas visited, so that a schema whose
	// alternatives and references multiply (each property a oneOf of
	// references to schemas with more oneOfs) is cut short too.
	maxSchemaVisits = 100_000
	// maxRefWork caps the bytes of the references resolved. Resolving a
	// reference unescapes its JSON pointer and walks it token by token, work
	// in proportion to its length (each token takes at least its "/"). Each
	// distinct reference is resolved at most once per call and remembered
	// (see schemaRef); one that would take the count past maxRefWork is not
	// followed.
	maxRefWork = 1 << 22
	// maxPathWork caps the bytes of the paths built: a path is built at each
	// visit of a property, items or map value schema, as long as the names
	// on it together, and visits multiply. Past it the walk stops.
	maxPathWork = 1 << 24
)

// PropertyPaths lists the paths of the properties a payload JSON Schema
// describes, for building templates and filters, sorted:
//
//   - a property of the payload is its name: "severity";
//   - a property of a nested object is joined with a dot: "owner.name";
//   - the elements of an array are the array's path with "[]":
//     "systemIds[]", and their properties "items[].id";
//   - the values of an object used as a map are the map's path with ".*".
//
// Every property is listed, objects and arrays included ("owner",
// "systemIds" and "systemIds[]" too). Local references ("#" and
// "#/$defs/...", any JSON pointer into the schema) are followed; the
// alternatives of oneOf, anyOf and allOf (and if/then/else) add their
// properties at the same path. A reference to a schema that is already being
// expanded (a recursive type) is listed but not expanded again, so the walk
// always ends; other references are listed as leaves.
//
// truncated reports that the list was cut short at MaxPropertyPaths paths,
// MaxPropertyDepth levels, or a bound on the work. An error means the schema
// is not JSON.
func PropertyPaths(schema json.RawMessage) (paths []string, truncated bool, err error) {
	w, err := walkSchema(schema)
	if err != nil {
		return nil, false, err
	}
	return w.out, w.truncated, nil
}

// walkSchema does the work of PropertyPaths, and returns the walker, for the
// tests to read how much work it did.
func walkSchema(schema json.RawMessage) (*pathWalker, error) {
	var root any
	if err := json.Unmarshal(schema, &root); err != nil {
		return nil, fmt.Errorf("adminhttp: property paths: schema is not JSON: %w", err)
	}
	w := &pathWalker{root: root, refs: map[string]*schemaRef{}, seen: map[string]bool{}}
	w.ref("#").expanding = true
	w.walk(root, "", 0)
	slices.Sort(w.out)
	return w, nil
}

type pathWalker struct {
	root      any
	refs      map[string]*schemaRef // the references met, by their text
	seen      map[string]bool
	out       []string
	visits    int // schemas visited: at most maxSchemaVisits+1
	refWork   int // bytes of the references resolved: at most maxRefWork
	pathWork  int // bytes of the paths built: past maxPathWork, the walk stops
	truncated bool
}

// schemaRef is one reference (one "$ref" text) met in a PropertyPaths call:
// what it resolves to, once resolved, and whether it is being expanded.
//
// The walker replaces the "$ref" string of each schema it visits with the
// reference's *schemaRef (in its own decoded copy of the schema), so that
// visiting that schema again, as alternatives and references that multiply
// do up to maxSchemaVisits times, costs neither a lookup of the text (whose
// cost grows with its length) nor a resolution. A JSON pointer that reaches
// a "$ref" value then finds a *schemaRef instead of a string: neither is a
// schema nor has anything under it, so the paths are the same.
type schemaRef struct {
	ref       string
	resolved  bool // target is known
	target    any  // what ref resolves to; nil if nothing
	expanding bool // being expanded: on the current chain of references
}

// ref returns the reference with the text ref: the same one for every
// schema that has it.
func (w *pathWalker) ref(ref string) *schemaRef {
	r := w.refs[ref]
	if r == nil {
		r = &schemaRef{ref: ref}
		w.refs[ref] = r
	}
	return r
}

// target returns what r resolves to, resolving it the first time if
// maxRefWork allows, or nil.
func (w *pathWalker) target(r *schemaRef) any {
	if r.resolved {
		return r.target
	}
	if w.refWork+len(r.ref) > maxRefWork {
		w.truncated = true
		return nil // and the next look checks again, as cheaply
	}
	w.refWork += len(r.ref)
	r.resolved = true
	r.target = w.resolve(r.ref)
	return r.target
}

func (w *pathWalker) emit(path string) {
	if path == "" || w.seen[path] {
		return
	}
	if len(w.out) >= MaxPropertyPaths {
		w.truncated = true
		return
	}
	w.seen[path] = true
	w.out = append(w.out, path)
}

// visit counts a visit of a schema and reports whether the bounds on the
// work allow it.
func (w *pathWalker) visit() bool {
	w.visits++
	if w.visits > maxSchemaVisits || w.pathWork > maxPathWork || len(w.out) >= MaxPropertyPaths {
		w.truncated = true
		return false
	}
	return true
}

// walk lists what the schema s found at path contains; path itself is
// already listed. depth counts the levels of nesting of path.
func (w *pathWalker) walk(s any, path string, depth int) {
	if w.visit() {
		w.expand(s, path, depth)
	}
}

// walkChild lists the path parent+sep+name (sep is left out at the top) of
// the schema s, and what s contains. depth counts the levels of nesting of
// that path.
func (w *pathWalker) walkChild(s any, parent, sep, name string, depth int) {
	if !w.visit() {
		return
	}
	if parent == "" {
		sep = ""
	}
	n := len(parent) + len(sep) + len(name)
	if w.pathWork+n > maxPathWork {
		w.pathWork = maxPathWork + 1 // no more visits
		w.truncated = true
		return
	}
	w.pathWork += n
	path := parent + sep + name
	w.emit(path)
	w.expand(s, path, depth)
}

// expand lists what the schema s found at path contains.
func (w *pathWalker) expand(s any, path string, depth int) {
	m, ok := s.(map[string]any)
	if !ok {
		return // true, false, or not a schema
	}
	var r *schemaRef
	switch ref := m["$ref"].(type) {
	case string:
		r = w.ref(ref)
		m["$ref"] = r // see schemaRef
	case *schemaRef:
		r = ref
	}
	if r != nil && !r.expanding {
		if target := w.target(r); target != nil {
			r.expanding = true
			w.walk(target, path, depth)
			r.expanding = false
		}
	}
	// Keywords beside "$ref" apply too (draft 2020-12).
	if depth >= MaxPropertyDepth {
		if hasChildren(m) {
			w.truncated = true
		}
		return
	}
	if props, ok := m["properties"].(map[string]any); ok {
		for _, name := range sortedKeys(props) {
			w.walkChild(props[name], path, ".", name, depth+1)
		}
	}
	if pp, ok := m["patternProperties"].(map[string]any); ok {
		for _, k := range sortedKeys(pp) {
			w.walkChild(pp[k], path, ".", "*", depth+1)
		}
	}
	if ap, ok := m["additionalProperties"].(map[string]any); ok {
		w.walkChild(ap, path, ".", "*", depth+1)
	}
	if items, ok := m["items"]; ok {
		if _, isBool := items.(bool); !isBool {
			w.walkChild(items, path, "", "[]", depth+1)
		}
	}
	if prefix, ok := m["prefixItems"].([]any); ok {
		for _, it := range prefix {
			w.walkChild(it, path, "", "[]", depth+1)
		}
	}
	for _, key := range []string{"allOf", "anyOf", "oneOf"} {
		if alts, ok := m[key].([]any); ok {
			for _, alt := range alts {
				w.walk(alt, path, depth)
			}
		}
	}
	for _, key := range []string{"then", "else"} {
		if alt, ok := m[key]; ok {
			w.walk(alt, path, depth)
		}
	}
}

// hasChildren reports whether a schema has nested schemas that walk would
// expand.
func hasChildren(m map[string]any) bool {
	for _, k := range []string{"properties", "patternProperties", "additionalProperties", "items", "prefixItems", "allOf", "anyOf", "oneOf", "then", "else"} {
		if _, ok := m[k]; ok {
			return true
		}
	}
	return false
}

// resolve follows a local reference: "#" or a JSON pointer "#/...". Other
// references (other documents, anchors) resolve to nil. Its work grows with
// the length of ref: target calls it once per reference, within maxRefWork.
func (w *pathWalker) resolve(ref string) any {
	if ref == "#" {
		return w.root
	}
	ptr, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil
	}
	if unescaped, err := url.PathUnescape(ptr); err == nil {
		ptr = unescaped
	}
	cur := w.root
	for tok := range strings.SplitSeq(ptr, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			cur = c[tok]
		case []any:
			i, ok := arrayIndex(tok)
			if !ok || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
		if cur == nil {
			return nil
		}
	}
	return cur
}

// arrayIndex parses a JSON pointer token that refers to an element of an
// array. RFC 6901, section 4, allows only
//
//	array-index = %x30 / ( %x31-39 *(%x30-39) )
//	              ; "0", or digits without a leading "0"
//
// so "01", "+1", "1x", " 1", "" and "-" (the element after the last) refer
// to no element.
func arrayIndex(tok string) (int, bool) {
	if tok == "" || len(tok) > 1 && tok[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] < '0' || tok[i] > '9' {
			return 0, false
		}
	}
	i, err := strconv.Atoi(tok) // fails only past the largest int: no element
	return i, err == nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
