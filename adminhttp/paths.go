package adminhttp

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Limits of PropertyPaths: past them the list is cut short and reported
// truncated.
const (
	// MaxPropertyPaths caps the number of paths listed for one schema.
	MaxPropertyPaths = 1000
	// MaxPropertyDepth caps how deeply nested a listed path may be.
	MaxPropertyDepth = 32
	// maxSchemaVisits caps the work of one PropertyPaths call, so that a
	// schema whose alternatives and references multiply (each property a
	// oneOf of references to schemas with more oneOfs) is cut short too.
	maxSchemaVisits = 100_000
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
	var root any
	if err := json.Unmarshal(schema, &root); err != nil {
		return nil, false, fmt.Errorf("adminhttp: property paths: schema is not JSON: %w", err)
	}
	w := &pathWalker{root: root, expanding: map[string]bool{"#": true}, seen: map[string]bool{}}
	w.walk(root, "", 0)
	slices.Sort(w.out)
	return w.out, w.truncated, nil
}

type pathWalker struct {
	root      any
	expanding map[string]bool // references being expanded: the current chain
	seen      map[string]bool
	out       []string
	visits    int
	truncated bool
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

// walk lists the schema s found at path and what it contains. depth counts
// the levels of nesting of path.
func (w *pathWalker) walk(s any, path string, depth int) {
	w.visits++
	if w.visits > maxSchemaVisits || len(w.out) >= MaxPropertyPaths {
		w.truncated = true
		return
	}
	w.emit(path)
	m, ok := s.(map[string]any)
	if !ok {
		return // true, false, or not a schema
	}
	if ref, ok := m["$ref"].(string); ok {
		if !w.expanding[ref] {
			if target := w.resolve(ref); target != nil {
				w.expanding[ref] = true
				w.walk(target, path, depth)
				delete(w.expanding, ref)
			}
		}
		// Keywords beside "$ref" apply too (draft 2020-12).
	}
	if depth >= MaxPropertyDepth {
		if hasChildren(m) {
			w.truncated = true
		}
		return
	}
	if props, ok := m["properties"].(map[string]any); ok {
		for _, name := range sortedKeys(props) {
			w.walk(props[name], join(path, name), depth+1)
		}
	}
	if pp, ok := m["patternProperties"].(map[string]any); ok {
		for _, k := range sortedKeys(pp) {
			w.walk(pp[k], join(path, "*"), depth+1)
		}
	}
	if ap, ok := m["additionalProperties"].(map[string]any); ok {
		w.walk(ap, join(path, "*"), depth+1)
	}
	if items, ok := m["items"]; ok {
		if _, isBool := items.(bool); !isBool {
			w.walk(items, path+"[]", depth+1)
		}
	}
	if prefix, ok := m["prefixItems"].([]any); ok {
		for _, it := range prefix {
			w.walk(it, path+"[]", depth+1)
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
// references (other documents, anchors) resolve to nil.
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
			i := 0
			if _, err := fmt.Sscanf(tok, "%d", &i); err != nil || i < 0 || i >= len(c) {
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

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
