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
