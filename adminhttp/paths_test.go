package adminhttp

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/outhook/outhook"
	"github.com/stretchr/testify/require"
)

func TestListEvents(t *testing.T) {
	e := newEnv(t, allowAll)
	var out struct {
		Categories []struct {
			Name   string      `json:"name"`
			Events []eventView `json:"events"`
		} `json:"categories"`
	}
	e.do("GET", "/events", "").status(http.StatusOK).matches("EventCategories").decode(&out)
	var names []string
	for _, c := range out.Categories {
		names = append(names, c.Name)
	}
	require.Equal(t, []string{"Incidents", "Maintenance", "Operations", "Uncategorized"}, names, "Operations: outhook's own events")
	inc := out.Categories[0].Events[0]
	require.Equal(t, incidentEvent, inc.ID)
	require.Equal(t, "incident.created", inc.HookID)
	require.Equal(t, "Incident Created", inc.DisplayName)
	require.Equal(t, "An incident was opened.", inc.Description)
	require.Equal(t, "incident", inc.Plugin.PluginID)
	require.Contains(t, string(inc.Schema), `"incidentId"`)
	require.Equal(t, []string{"incidentId", "labels", "labels.*", "owner", "owner.email", "owner.name",
		"severity", "systemIds", "systemIds[]"}, inc.PropertyPaths)
	require.True(t, out.Categories[3].Events[0].Transformed)

	var one eventView
	e.do("GET", "/events/"+maintEvent, "").status(http.StatusOK).matches("Event").decode(&one)
	require.Equal(t, []string{"windowId"}, one.PropertyPaths)
	require.Equal(t, TypeNotFound, e.do("GET", "/events/no.such", "").problem(404).Type)
}

func TestListDeliverers(t *testing.T) {
	e := newEnv(t, allowAll)
	var out struct {
		Items []delivererView `json:"items"`
	}
	e.do("GET", "/deliverers", "").status(http.StatusOK).matches("DelivererList").decode(&out)
	require.Len(t, out.Items, 2)
	require.Equal(t, "vault", out.Items[1].ID)
	require.Contains(t, string(out.Items[1].ConfigSchema), `"writeOnly":true`)
}

// Tree is a recursive type, as GenerateSchema writes it ("$ref": "#").
type Tree struct {
	Name     string  `json:"name"`
	Children []*Tree `json:"children"`
	Parent   *Tree   `json:"parent,omitempty"`
}

// Org reaches a recursive type through "$defs".
type Org struct {
	Root  Dept    `json:"root"`
	Heads []*Dept `json:"heads"`
}

type Dept struct {
	Name string `json:"name"`
	Subs []Dept `json:"subs"`
}

func TestPropertyPaths(t *testing.T) {
	gen := func(v any) string {
		var raw json.RawMessage
		var err error
		switch v.(type) {
		case Tree:
			raw, err = outhook.SchemaFor[Tree]()
		case Org:
			raw, err = outhook.SchemaFor[Org]()
		}
		require.NoError(t, err)
		return string(raw)
	}
	cases := []struct {
		name   string
		schema string
		want   []string
	}{
		{"flat", `{"type":"object","properties":{"b":{"type":"string"},"a":{"type":"integer"}}}`, []string{"a", "b"}},
		{"nested and arrays", `{"properties":{"owner":{"properties":{"name":{}}},"ids":{"type":"array","items":{"type":"string"}},
			"rows":{"items":{"properties":{"id":{}}}},"grid":{"items":{"items":{"type":"number"}}}}}`,
			[]string{"grid", "grid[]", "grid[][]", "ids", "ids[]", "owner", "owner.name", "rows", "rows[]", "rows[].id"}},
		{"map", `{"properties":{"labels":{"additionalProperties":{"type":"string"}},"free":{"type":"object"}}}`,
			[]string{"free", "labels", "labels.*"}},
		{"recursive root", gen(Tree{}), []string{"children", "children[]", "name", "parent"}},
		{"recursive defs", gen(Org{}), []string{"heads", "heads[]", "heads[].name", "heads[].subs", "heads[].subs[]",
			"root", "root.name", "root.subs", "root.subs[]"}},
		{"oneOf nullable", `{"properties":{"owner":{"oneOf":[{"$ref":"#/$defs/Owner"},{"type":"null"}]}},
			"$defs":{"Owner":{"properties":{"name":{},"team":{"$ref":"#/$defs/Team"}}},"Team":{"properties":{"lead":{"$ref":"#/$defs/Owner"}}}}}`,
			[]string{"owner", "owner.name", "owner.team", "owner.team.lead"}},
		{"anyOf and allOf", `{"anyOf":[{"properties":{"a":{}}},{"properties":{"b":{"allOf":[{"properties":{"c":{}}},{"properties":{"d":{}}}]}}}],
			"allOf":[{"properties":{"e":{}}}]}`, []string{"a", "b", "b.c", "b.d", "e"}},
		{"self-referencing oneOf", `{"$defs":{"X":{"oneOf":[{"$ref":"#/$defs/X"},{"properties":{"x":{"$ref":"#/$defs/X"}}}]}},"$ref":"#/$defs/X"}`,
			[]string{"x"}},
		{"ref to itself", `{"$defs":{"L":{"$ref":"#/$defs/L"}},"properties":{"l":{"$ref":"#/$defs/L"}}}`, []string{"l"}},
		{"external and dangling refs", `{"properties":{"a":{"$ref":"https://example.com/s.json"},"b":{"$ref":"#/$defs/missing"},"c":{"$ref":"#/properties/a"}}}`,
			[]string{"a", "b", "c"}},
		{"boolean schemas", `{"properties":{"any":true,"none":false,"list":{"items":true}}}`, []string{"any", "list", "none"}},
		{"not an object", `true`, []string{}},
		{"tuple", `{"properties":{"pair":{"prefixItems":[{"properties":{"k":{}}},{"properties":{"v":{}}}]}}}`,
			[]string{"pair", "pair[]", "pair[].k", "pair[].v"}},
		{"if then else", `{"if":{},"then":{"properties":{"t":{}}},"else":{"properties":{"e":{}}}}`, []string{"e", "t"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, truncated, err := PropertyPaths(json.RawMessage(c.schema))
			require.NoError(t, err)
			require.False(t, truncated)
			if got == nil {
				got = []string{}
			}
			require.Equal(t, c.want, got)
		})
	}
	_, _, err := PropertyPaths(json.RawMessage(`{`))
	require.Error(t, err)
}

// TestPropertyPathsBounded: schemas whose expansion would not end, or end
// only after exponential work, are cut short and say so.
func TestPropertyPathsBounded(t *testing.T) {
	// Each level has two properties that both refer to the next level: 2^40
	// paths.
	var defs []string
	for i := range 40 {
		defs = append(defs, fmt.Sprintf(`"L%d":{"properties":{"a":{"$ref":"#/$defs/L%d"},"b":{"$ref":"#/$defs/L%d"}}}`, i, i+1, i+1))
	}
	wide := `{"$ref":"#/$defs/L0","$defs":{` + strings.Join(defs, ",") + `}}`
	paths, truncated, err := PropertyPaths(json.RawMessage(wide))
	require.NoError(t, err)
	require.True(t, truncated)
	require.LessOrEqual(t, len(paths), MaxPropertyPaths)

	// Deep nesting without references.
	deep := strings.Repeat(`{"properties":{"x":`, 100) + `{}` + strings.Repeat(`}}`, 100)
	paths, truncated, err = PropertyPaths(json.RawMessage(deep))
	require.NoError(t, err)
	require.True(t, truncated)
	require.Len(t, paths, MaxPropertyDepth)

	// Alternatives that multiply without adding paths.
	alts := `{"$defs":{` + strings.Join(func() []string {
		var out []string
		for i := range 30 {
			out = append(out, fmt.Sprintf(`"A%d":{"anyOf":[{"$ref":"#/$defs/A%d"},{"$ref":"#/$defs/A%d"}]}`, i, i+1, i+1))
		}
		return out
	}(), ",") + `},"properties":{"p":{"$ref":"#/$defs/A0"}}}`
	paths, truncated, err = PropertyPaths(json.RawMessage(alts))
	require.NoError(t, err)
	require.True(t, truncated)
	require.Equal(t, []string{"p"}, paths)
}

func FuzzPropertyPaths(f *testing.F) {
	for _, s := range []string{
		`{"properties":{"a":{"$ref":"#"}}}`,
		`{"$defs":{"X":{"oneOf":[{"$ref":"#/$defs/X"},{"items":{"$ref":"#/$defs/X"}}]}},"$ref":"#/$defs/X"}`,
		`{"properties":{"a":{"anyOf":[{"$ref":"#/properties/a"},{"properties":{"b":{"$ref":"#/properties"}}}]}}}`,
		`{"$ref":"#/$defs/a~1b","$defs":{"a/b":{"properties":{"c":{}}}}}`,
		`{"prefixItems":[{"$ref":"#/prefixItems/0"}],"items":{"$ref":"#/prefixItems"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, schema []byte) {
		paths, _, err := PropertyPaths(schema)
		if err != nil {
			return
		}
		if len(paths) > MaxPropertyPaths {
			t.Fatalf("%d paths", len(paths))
		}
		seen := map[string]bool{}
		for i, p := range paths {
			if p == "" || seen[p] || i > 0 && paths[i-1] > p {
				t.Fatalf("paths not sorted, unique and non-empty: %q", paths)
			}
			seen[p] = true
		}
	})
}

// fanOut is a schema whose one property "p" reaches the schema last by
// 2^17 routes (each level an anyOf of two references to the next), so that
// the walk visits last until maxSchemaVisits.
func fanOut(last string, more ...string) string {
	var defs []string
	for i := range 17 {
		defs = append(defs, fmt.Sprintf(`"L%d":{"anyOf":[{"$ref":"#/$defs/L%d"},{"$ref":"#/$defs/L%d"}]}`, i, i+1, i+1))
	}
	defs = append(defs, `"L17":`+last)
	return `{"$defs":{` + strings.Join(defs, ",") + `},"properties":{"p":{"$ref":"#/$defs/L0"}}` +
		strings.Join(append([]string{""}, more...), ",") + `}`
}

// fanOutRefs is the bytes of the references of fanOut resolved: each
// once.
func fanOutRefs(last string) int {
	n := len(last)
	for i := range 18 {
		n += len(fmt.Sprintf("#/$defs/L%d", i))
	}
	return n
}

// TestPropertyPathsReferenceWork: a reference is resolved once per call
// however often the walk meets it, so that the work of resolving grows with
// the references' length, not with their length times the visits; and it
// stays within maxRefWork whatever the schema.
func TestPropertyPathsReferenceWork(t *testing.T) {
	deep := func(levels int) (ref, schema string) {
		ref = "#/deep" + strings.Repeat("/a", levels)
		return ref, fanOut(`{"$ref":"`+ref+`"}`, `"deep":`+strings.Repeat(`{"a":`, levels)+`{}`+strings.Repeat(`}`, levels))
	}
	deep500, deep500Schema := deep(500)
	deep5000, deep5000Schema := deep(5000)
	cases := []struct {
		name, ref, schema string
	}{
		// A pointer to nowhere, 10 KB and 100 KB long: 0.6 s and 8 s before.
		{"10 KB pointer", "#/" + strings.Repeat("a", 10_000), ""},
		{"100 KB pointer", "#/" + strings.Repeat("a", 100_000), ""},
		// A pointer 500 and 5,000 tokens deep, to a schema: 5,000 took 9 s.
		{"500 tokens", deep500, deep500Schema},
		{"5,000 tokens", deep5000, deep5000Schema},
	}
	var works []int
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.schema == "" {
				c.schema = fanOut(`{"$ref":"` + c.ref + `"}`)
			}
			w, err := walkSchema(json.RawMessage(c.schema))
			require.NoError(t, err)
			require.Equal(t, []string{"p"}, w.out)
			require.True(t, w.truncated, "cut short at maxSchemaVisits, as before")
			require.Greater(t, w.visits, maxSchemaVisits, "the schema makes the walk meet the long reference thousands of times")
			require.Equal(t, fanOutRefs(c.ref), w.refWork, "each reference resolved once")
			require.LessOrEqual(t, w.refWork, maxRefWork)
			works = append(works, w.refWork)
		})
	}
	if len(works) == len(cases) {
		// Ten times the pointer, ten times its bytes once: not ten times the
		// work of every visit, which would be some 25,000 times the pointer.
		require.Less(t, works[1], 10*works[0])
		require.Less(t, works[3], 10*works[2])
	}

	t.Run("past maxRefWork", func(t *testing.T) {
		// One pointer longer than the budget, and references that together
		// are: those past the budget are not resolved, however many.
		long := "#/" + strings.Repeat("a", maxRefWork)
		var props []string
		for i := range 100 {
			props = append(props, fmt.Sprintf(`"q%02d":{"$ref":"#/%d%s"}`, i, i, strings.Repeat("b", maxRefWork/50)))
		}
		for _, schema := range []string{
			fanOut(`{"$ref":"` + long + `"}`),
			`{"properties":{` + strings.Join(props, ",") + `}}`,
		} {
			w, err := walkSchema(json.RawMessage(schema))
			require.NoError(t, err)
			require.True(t, w.truncated)
			require.LessOrEqual(t, w.refWork, maxRefWork)
			requireBoundedPaths(t, w.out)
		}
	})

	t.Run("a pointer to a reference", func(t *testing.T) {
		// The walker replaces the "$ref" strings it has met (see schemaRef):
		// a pointer to one still finds no schema, as before.
		for _, schema := range []string{
			`{"properties":{"a":{"$ref":"#/$defs/A"},"b":{"$ref":"#/properties/a/$ref"}},"$defs":{"A":{"properties":{"x":{}}}}}`,
			`{"properties":{"b":{"$ref":"#/properties/a/$ref"},"a":{"$ref":"#/$defs/A"}},"$defs":{"A":{"properties":{"x":{}}}}}`,
		} {
			paths, truncated, err := PropertyPaths(json.RawMessage(schema))
			require.NoError(t, err)
			require.False(t, truncated)
			require.Equal(t, []string{"a", "a.x", "b"}, paths)
		}
	})
}

// TestPropertyPathsPathWork: a long property name met again and again (here
// 25,000 times through alternatives: 1.7 s for a 100 KB name before) costs
// at most maxPathWork bytes of paths built.
func TestPropertyPathsPathWork(t *testing.T) {
	for _, n := range []int{10_000, 100_000} {
		name := strings.Repeat("n", n)
		w, err := walkSchema(json.RawMessage(fanOut(`{"properties":{"` + name + `":{}}}`)))
		require.NoError(t, err)
		require.Equal(t, []string{"p", "p." + name}, w.out)
		require.True(t, w.truncated)
		require.LessOrEqual(t, w.pathWork, maxPathWork+1)
	}
	// An ordinary schema, however deep, is far from the bound.
	w, err := walkSchema(json.RawMessage(strings.Repeat(`{"properties":{"x":`, 100) + `{}` + strings.Repeat(`}}`, 100)))
	require.NoError(t, err)
	require.Less(t, w.pathWork, 2*MaxPropertyDepth*MaxPropertyDepth)
}

// TestPropertyPathsArrayIndex: a JSON pointer token into an array is an
// index as RFC 6901 (section 4) writes one, "0" or digits without a leading
// "0", or refers to no element.
func TestPropertyPathsArrayIndex(t *testing.T) {
	var elems []string
	for i := range 11 {
		elems = append(elems, fmt.Sprintf(`{"properties":{"e%d":{}}}`, i))
	}
	paths := func(tok string) []string {
		schema := `{"x":[` + strings.Join(elems, ",") + `],"properties":{"r":{"$ref":"#/x/` + tok + `"}}}`
		paths, truncated, err := PropertyPaths(json.RawMessage(schema))
		require.NoError(t, err)
		require.False(t, truncated)
		return paths
	}
	for tok, want := range map[string]string{
		"0": "e0", "1": "e1", "10": "e10",
		"%31": "e1", // a URI fragment is unescaped first (RFC 6901, section 6)
	} {
		require.Equal(t, []string{"r", "r." + want}, paths(tok), "%q", tok)
	}
	for _, tok := range []string{"01", "00", "+1", "-1", "1x", "x1", " 1", "1 ", "", "-", "0x1", "1e0", "1.0",
		"１", "%2B1", "11", "99999999999999999999999"} {
		require.Equal(t, []string{"r"}, paths(tok), "%q refers to no element", tok)
	}
	for tok, want := range map[string]int{"0": 0, "7": 7, "120": 120} {
		i, ok := arrayIndex(tok)
		require.True(t, ok, tok)
		require.Equal(t, want, i)
	}
	for _, tok := range []string{"", "-", "01", "+0", "-0", "٣", "9223372036854775808"} {
		_, ok := arrayIndex(tok)
		require.False(t, ok, tok)
	}
}
