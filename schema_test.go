package outhook

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/schema")

// sampleIncident is a typical hook payload.
type sampleIncident struct {
	IncidentID   string            `json:"incidentId" validate:"required"`
	SystemIDs    []string          `json:"systemIds" validate:"required,min=1,dive,min=1"`
	Title        string            `json:"title" validate:"required,max=200" description:"Short human-readable summary of the incident."`
	Severity     string            `json:"severity" validate:"required,oneof=critical major minor"`
	StatusChange *string           `json:"statusChange,omitempty"`
	CreatedAt    time.Time         `json:"createdAt"`
	Labels       map[string]string `json:"labels"`
	Count        int               `json:"count" validate:"gte=0,lte=100"`
	Priority     int               `json:"priority" validate:"required,lte=5"`
	Paged        bool              `json:"paged" validate:"required"`
}

// sampleThread is recursive, directly and through a slice, and nests a
// named struct.
type sampleThread struct {
	ID      string         `json:"id" validate:"required,uuid"`
	Author  samplePerson   `json:"author" validate:"required"`
	Body    string         `json:"body" jsonschema:"description=Markdown text.,minLength=1"`
	Replies []sampleThread `json:"replies,omitempty" validate:"max=50"`
	Parent  *sampleThread  `json:"parent,omitempty"`
}

type samplePerson struct {
	Name     string `json:"name" validate:"required,min=1,max=100"`
	Email    string `json:"email,omitempty" validate:"omitempty,email" description:"Contact address."`
	Homepage string `json:"homepage,omitempty" validate:"omitempty,url"`
}

// sampleEventBase is embedded in sampleDeployment.
type sampleEventBase struct {
	EventID    string    `json:"eventId" validate:"required,uuid4"`
	OccurredAt time.Time `json:"occurredAt" validate:"required"`
}

type sampleMeta struct {
	Source string `json:"source" validate:"required,hostname"`
}

// sampleDeployment embeds structs, by value and by pointer, and exercises
// the remaining validate rules that are translated into the schema.
type sampleDeployment struct {
	sampleEventBase
	*sampleMeta
	Service  string         `json:"service" validate:"required,alphanum,min=2,max=63"`
	Replicas uint           `json:"replicas" validate:"min=1,max=10"`
	Ratio    float64        `json:"ratio" validate:"gt=0,lt=1"`
	Priority int            `json:"priority" validate:"oneof=1 2 3"`
	Env      string         `json:"env,omitempty" validate:"omitempty,oneof=prod staging"`
	Region   string         `json:"region,omitempty" validate:"omitempty,min=2"`
	Callback string         `json:"callback" validate:"required,https_url"`
	Addr     string         `json:"addr" validate:"ip"`
	Version  string         `json:"version" validate:"eq=v1"`
	Hosts    [][]string     `json:"hosts" validate:"unique,dive,len=2,dive,hostname_rfc1123"`
	Tags     map[string]int `json:"tags" validate:"max=10,dive,keys,min=1,max=32,endkeys,gte=0"`
	Timeout  time.Duration  `json:"timeout" validate:"gte=1s"`
	Retries  int            `json:"retries,string" validate:"min=0"`
	Checksum []byte         `json:"checksum" validate:"len=32"`
	Started  time.Time      `json:"started" validate:"lt"`
	Either   string         `json:"either" validate:"email|url"`
	Internal string         `json:"-" validate:"required"`
	secret   string
}

// sampleLabels is a named map, referenced from $defs.
type sampleLabels map[string]string

// samplePage is generic; its instantiated name must be sanitised in $defs.
type samplePage[T any] struct {
	Items []T  `json:"items" validate:"max=100"`
	Next  *int `json:"next,omitempty"`
}

type sampleCatalog struct {
	People  samplePage[samplePerson] `json:"people"`
	Labels  sampleLabels             `json:"labels" validate:"min=1,dive,max=64"`
	Aliases sampleLabels             `json:"aliases,omitempty"`
}

// goldenSchemaTypes are the types whose schemas are compared against
// testdata/schema/<name>.golden.json.
var goldenSchemaTypes = []struct {
	name string
	typ  reflect.Type
}{
	{"incident", reflect.TypeFor[sampleIncident]()},
	{"thread", reflect.TypeFor[sampleThread]()},
	{"deployment", reflect.TypeFor[*sampleDeployment]()},
	{"catalog", reflect.TypeFor[sampleCatalog]()},
	{"map", reflect.TypeFor[map[string]float64]()},
	{"array", reflect.TypeFor[[]sampleIncident]()},
}

func TestGenerateSchemaGolden(t *testing.T) {
	for _, tc := range goldenSchemaTypes {
		t.Run(tc.name, func(t *testing.T) {
			got, err := GenerateSchema(tc.typ)
			require.NoError(t, err)
			got = append(got, '\n')

			path := filepath.Join("testdata", "schema", tc.name+".golden.json")
			if *updateGolden {
				require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
				require.NoError(t, os.WriteFile(path, got, 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run go test -run TestGenerateSchemaGolden -update to create it")
			require.Equal(t, string(want), string(got))
		})
	}
}

func TestGenerateSchemaIsWellFormed(t *testing.T) {
	defName := regexp.MustCompile(`^[A-Za-z0-9_]+$`)
	for _, tc := range goldenSchemaTypes {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := GenerateSchema(tc.typ)
			require.NoError(t, err)
			require.True(t, json.Valid(raw))

			var doc map[string]any
			require.NoError(t, json.Unmarshal(raw, &doc))
			require.Equal(t, "https://json-schema.org/draft/2020-12/schema", doc["$schema"])
			require.NotContains(t, doc, "$id")

			defs, _ := doc["$defs"].(map[string]any)
			for name := range defs {
				require.Regexp(t, defName, name)
			}
			for _, ref := range collectRefs(doc) {
				if ref == "#" {
					continue
				}
				name, ok := strings.CutPrefix(ref, "#/$defs/")
				require.True(t, ok, "unexpected $ref %q", ref)
				require.Contains(t, defs, name, "dangling $ref %q", ref)
			}

			var indented bytes.Buffer
			require.NoError(t, json.Indent(&indented, raw, "", "  "))
			require.Equal(t, indented.String(), string(raw), "output is indented with two spaces")
		})
	}
}

func TestGenerateSchemaIsDeterministic(t *testing.T) {
	for _, tc := range goldenSchemaTypes {
		first, err := GenerateSchema(tc.typ)
		require.NoError(t, err)
		for range 5 {
			again, err := GenerateSchema(tc.typ)
			require.NoError(t, err)
			require.Equal(t, string(first), string(again), tc.name)
		}
	}
}

func TestSchemaForMatchesGenerateSchema(t *testing.T) {
	viaGeneric, err := SchemaFor[sampleIncident]()
	require.NoError(t, err)
	viaType, err := GenerateSchema(reflect.TypeFor[sampleIncident]())
	require.NoError(t, err)
	require.Equal(t, string(viaType), string(viaGeneric))
}

func TestGenerateSchemaRecursiveRootRefersToRoot(t *testing.T) {
	doc := schemaDoc(t, reflect.TypeFor[sampleThread]())
	props := doc["properties"].(map[string]any)
	require.Equal(t, "#", props["parent"].(map[string]any)["$ref"])
	replies := props["replies"].(map[string]any)
	require.Equal(t, "#", replies["items"].(map[string]any)["$ref"])
	require.NotContains(t, doc["$defs"], "sampleThread")
}

func TestGenerateSchemaRequiredComesFromTags(t *testing.T) {
	type payload struct {
		NoTag      string  `json:"noTag"`
		Omit       string  `json:"omit,omitempty"`
		Validate   string  `json:"validate,omitempty" validate:"required"`
		SchemaTag  string  `json:"schemaTag,omitempty" jsonschema:"required"`
		Pointer    *string `json:"pointer"`
		PointerReq *string `json:"pointerReq" validate:"required"`
		ElemOnly   []int   `json:"elemOnly" validate:"dive,required"`
		OrRequired string  `json:"orRequired" validate:"required|email"`
	}
	doc := schemaDoc(t, reflect.TypeFor[payload]())
	require.Equal(t, []any{"validate", "schemaTag", "pointerReq"}, doc["required"])
}

func TestGenerateSchemaDescriptionTags(t *testing.T) {
	type payload struct {
		Plain  string `json:"plain" description:"From the description tag."`
		Schema string `json:"schema" jsonschema:"description=From the jsonschema tag."`
		Both   string `json:"both" description:"Loses." jsonschema:"description=Wins."`
	}
	props := schemaDoc(t, reflect.TypeFor[payload]())["properties"].(map[string]any)
	require.Equal(t, "From the description tag.", props["plain"].(map[string]any)["description"])
	require.Equal(t, "From the jsonschema tag.", props["schema"].(map[string]any)["description"])
	require.Equal(t, "Wins.", props["both"].(map[string]any)["description"])
}

func TestGenerateSchemaOmitemptyLetsZeroValueThrough(t *testing.T) {
	type payload struct {
		Email string   `json:"email" validate:"omitempty,email"`
		Code  string   `json:"code" validate:"omitempty,oneof=a b"`
		Short string   `json:"short" validate:"omitempty,max=3"`
		Level int      `json:"level" validate:"omitempty,min=1"`
		Ptr   *string  `json:"ptr" validate:"omitempty,min=2"`
		List  []string `json:"list" validate:"omitzero,min=1"`
	}
	props := schemaDoc(t, reflect.TypeFor[payload]())["properties"].(map[string]any)
	require.Equal(t, []any{map[string]any{"const": ""}, map[string]any{"format": "email"}}, props["email"].(map[string]any)["anyOf"])
	require.Equal(t, []any{"a", "b", ""}, props["code"].(map[string]any)["enum"])
	require.Equal(t, map[string]any{"type": "string", "maxLength": 3.0}, props["short"])
	require.Equal(t, []any{map[string]any{"const": 0.0}, map[string]any{"minimum": 1.0}}, props["level"].(map[string]any)["anyOf"])
	// A nil pointer or slice is written as null, which omitempty/omitzero
	// let through.
	nullable := func(s any) map[string]any {
		alts := s.(map[string]any)["oneOf"].([]any)
		require.Len(t, alts, 2)
		require.Equal(t, map[string]any{"type": "null"}, alts[1])
		return alts[0].(map[string]any)
	}
	require.Equal(t, map[string]any{"type": "string", "minLength": 2.0}, nullable(props["ptr"]))
	require.Equal(t, []any{map[string]any{"maxItems": 0.0}, map[string]any{"minItems": 1.0}}, nullable(props["list"])["anyOf"])
}

func TestGenerateSchemaNamedTypesKeepDefinitionsShared(t *testing.T) {
	// Rules of one field must not leak into the definition that other
	// fields of the same named type refer to.
	doc := schemaDoc(t, reflect.TypeFor[sampleCatalog]())
	defs := doc["$defs"].(map[string]any)
	require.Equal(t, map[string]any{
		"type":                 "object",
		"additionalProperties": map[string]any{"type": "string"},
	}, defs["sampleLabels"])
	props := doc["properties"].(map[string]any)
	require.Equal(t, map[string]any{
		"$ref":                 "#/$defs/sampleLabels",
		"minProperties":        1.0,
		"additionalProperties": map[string]any{"maxLength": 64.0},
	}, props["labels"])
	require.Equal(t, map[string]any{"$ref": "#/$defs/sampleLabels"}, props["aliases"])
}

func TestGenerateSchemaTypeNameCollisions(t *testing.T) {
	t.Run("user type named like time.Time", func(t *testing.T) {
		type Time struct {
			Hour int `json:"hour"`
		}
		type payload struct {
			Slot Time      `json:"slot"`
			At   time.Time `json:"at"`
		}
		doc := schemaDoc(t, reflect.TypeFor[payload]())
		props := doc["properties"].(map[string]any)
		require.Equal(t, map[string]any{"type": "string", "format": "date-time"}, props["at"])
		require.Equal(t, map[string]any{"$ref": "#/$defs/Time"}, props["slot"])
	})
	t.Run("distinct types with one name", func(t *testing.T) {
		first := func() reflect.Type {
			type Item struct {
				A string `json:"a"`
			}
			return reflect.TypeFor[Item]()
		}()
		second := func() reflect.Type {
			type Item struct {
				B int `json:"b"`
			}
			return reflect.TypeFor[Item]()
		}()
		payload := reflect.StructOf([]reflect.StructField{
			{Name: "First", Type: first, Tag: `json:"first"`},
			{Name: "Second", Type: second, Tag: `json:"second"`},
		})
		doc := schemaDoc(t, payload)
		props := doc["properties"].(map[string]any)
		require.Equal(t, "#/$defs/Item", props["first"].(map[string]any)["$ref"])
		require.Equal(t, "#/$defs/Item2", props["second"].(map[string]any)["$ref"])
		defs := doc["$defs"].(map[string]any)
		require.Contains(t, defs["Item"].(map[string]any)["properties"], "a")
		require.Contains(t, defs["Item2"].(map[string]any)["properties"], "b")
	})
}

func TestGenerateSchemaErrors(t *testing.T) {
	_, err := GenerateSchema(nil)
	require.ErrorContains(t, err, "outhook: ")

	type bad struct {
		C chan int `json:"c"`
	}
	_, err = GenerateSchema(reflect.TypeFor[bad]())
	require.ErrorContains(t, err, "outhook: generate schema for")
}

func TestSanitizeDefName(t *testing.T) {
	for in, want := range map[string]string{
		"Incident":                           "Incident",
		"Page[example.com/pkg.Item]":         "Page_Item",
		"Pair[string,gopkg.in/yaml.v3.Node]": "Pair_string_Node",
		"Page[map[string]*example.com/x.T]":  "Page_map_string_T",
	} {
		require.Equal(t, want, sanitizeDefName(in), in)
	}
}

func TestSchemaCache(t *testing.T) {
	var c schemaCache
	typ := reflect.TypeFor[sampleIncident]()
	want, err := GenerateSchema(typ)
	require.NoError(t, err)

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			got, err := c.get(typ)
			require.NoError(t, err)
			require.Equal(t, string(want), string(got))
		})
	}
	wg.Wait()

	got, err := c.get(typ)
	require.NoError(t, err)
	got[0] = 'X' // callers own the returned slice
	again, err := c.get(typ)
	require.NoError(t, err)
	require.Equal(t, string(want), string(again))

	_, err = c.get(reflect.TypeFor[chan int]())
	require.Error(t, err)
}

// schemaDoc generates the schema of t and decodes it.
func schemaDoc(t *testing.T, typ reflect.Type) map[string]any {
	t.Helper()
	raw, err := GenerateSchema(typ)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(raw, &doc))
	return doc
}

// collectRefs returns every "$ref" value in a decoded JSON document.
func collectRefs(v any) []string {
	var refs []string
	switch v := v.(type) {
	case map[string]any:
		for k, sub := range v {
			if s, ok := sub.(string); ok && k == "$ref" {
				refs = append(refs, s)
				continue
			}
			refs = append(refs, collectRefs(sub)...)
		}
	case []any:
		for _, sub := range v {
			refs = append(refs, collectRefs(sub)...)
		}
	}
	return refs
}
