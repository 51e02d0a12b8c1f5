package outhook

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// schemaEvent is an event with the given payload schema.
func schemaEvent(t testing.TB, id, schema string) *eventRecord {
	t.Helper()
	return &eventRecord{Event: Event{ID: id, Schema: json.RawMessage(schema)}}
}

func goldenEvent(t testing.TB, name string) *eventRecord {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "schema", name+".golden.json"))
	require.NoError(t, err)
	return schemaEvent(t, "golden."+name, string(b))
}

// The JSON Schemas outhook generates map to the CEL types filters are
// checked against.
func TestPayloadTypeOfGoldenSchemas(t *testing.T) {
	for _, tc := range []struct {
		schema string
		typ    string // the type of payload
		ok     []string
		bad    []string
	}{
		{"incident", "payload", []string{
			`payload.severity == "critical" && "sys-1" in payload.systemIds`,
			`payload.count > 3 && payload.priority == 2 && payload.paged`,
			`payload.labels["team"] == "db"`, // oneOf [map, null]
			`timestamp(payload.createdAt) > timestamp("2024-01-01T00:00:00Z")`,
		}, []string{`payload.count == "3"`, `payload.severity > 1`, `payload.nope`, `payload.labels.team > 1`}},
		{"array", "list(sampleIncident)", []string{
			`payload.exists(i, i.severity == "critical")`,
			`size(payload) > 1 && payload[0].count == 1`,
		}, []string{`payload.severity == "x"`, `payload.exists(i, i.sev == "x")`}},
		{"catalog", "payload", []string{
			`payload.people.items.exists(p, p.name == "Ann" && p.email.endsWith("@example.com"))`,
			`payload.labels["a"] == "b" && payload.aliases["x"] != ""`,
			`payload.people.next > 0`,
		}, []string{`payload.people.items.exists(p, p.age > 1)`, `payload.labels["a"] > 1`}},
		{"deployment", "payload", []string{
			`payload.ratio > 0.5 && payload.ratio < 1 && payload.replicas >= 2`,
			`payload.tags["x"] > 1 && payload.hosts[0][1] == "h"`,
			`payload.env in ["prod", "staging"]`,
		}, []string{`payload.replicas == "2"`, `payload.hosts[0] == "h"`}},
		{"map", "map(string, double)", []string{`payload["cpu"] > 0.5`, `"cpu" in payload`}, []string{`payload["cpu"] == "high"`}},
		{"thread", "payload", []string{
			`payload.replies.exists(r, r.replies.exists(q, q.author.name == "Ann"))`,
			`has(payload.parent) && payload.parent.body != ""`,
		}, []string{`payload.replies.exists(r, r.title != "")`}},
	} {
		t.Run(tc.schema, func(t *testing.T) {
			pt := newPayloadType(goldenEvent(t, tc.schema))
			require.NoError(t, pt.err)
			require.Equal(t, tc.typ, pt.typ.String())
			for _, expr := range tc.ok {
				require.Nil(t, compileFilter(pt, expr).err, expr)
			}
			for _, expr := range tc.bad {
				require.NotNil(t, compileFilter(pt, expr).err, expr)
			}
		})
	}
}

func TestPayloadTypeMapping(t *testing.T) {
	for _, tc := range []struct {
		schema, typ string
	}{
		{`true`, "dyn"},
		{`{}`, "dyn"},
		{`{"type":"string"}`, "string"},
		{`{"type":["integer","null"]}`, "int"},
		{`{"type":["integer","string"]}`, "dyn"},
		{`{"type":"null"}`, "null_type"},
		{`{"type":"array"}`, "list(dyn)"},
		{`{"type":"object"}`, "map(string, dyn)"},
		{`{"type":"object","additionalProperties":true}`, "map(string, dyn)"},
		{`{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":{"type":"string"}}`, "map(string, string)"},
		{`{"oneOf":[{"type":"boolean"},{"type":"null"}]}`, "bool"},
		{`{"anyOf":[{"type":"boolean"},{"type":"string"}]}`, "dyn"},
		{`{"allOf":[{"type":"number"}]}`, "double"},
		{`{"$ref":"#/definitions/n","definitions":{"n":{"type":"number"}}}`, "double"},
		{`{"$ref":"https://example.com/other.json"}`, "dyn"},
		{`{"$ref":"#/$defs/missing"}`, "dyn"},
		// A cycle that is not through an object is dyn.
		{`{"$ref":"#/$defs/a","$defs":{"a":{"type":"array","items":{"$ref":"#/$defs/a"}}}}`, "list(dyn)"},
		{`{"$ref":"#/$defs/a","$defs":{"a":{"$ref":"#/$defs/a"}}}`, "dyn"},
	} {
		pt := newPayloadType(schemaEvent(t, "x.y", tc.schema))
		require.NoError(t, pt.err, tc.schema)
		require.Equal(t, tc.typ, pt.typ.String(), tc.schema)
	}
	pt := newPayloadType(schemaEvent(t, "x.y", `{"type": 3}`))
	require.Error(t, pt.err)
	p := compileFilter(pt, "true")
	require.NotNil(t, p.err)
	require.Contains(t, p.err.Msg, `payload schema of event "x.y"`)
}

// evalOn compiles expr for pt and evaluates it on the JSON payload doc.
func evalOn(t *testing.T, pt *payloadType, expr, doc string) (bool, error) {
	t.Helper()
	p := compileFilter(pt, expr)
	require.Nil(t, p.err, expr)
	in := filterInput{raw: json.RawMessage(doc)}
	v, err := in.decode("x.y")
	require.NoError(t, err)
	return evalFilter(context.Background(), p.prg, &payloadActivation{payload: pt.value(v, pt.typ)})
}

// Payload values: numbers are what the schema says, null arrays and maps
// are empty, other nulls absent.
func TestPayloadValue(t *testing.T) {
	deployment := newPayloadType(goldenEvent(t, "deployment"))
	require.NoError(t, deployment.err)
	doc := `{"ratio": 1, "replicas": 2, "hosts": null, "tags": null, "env": null, "service": "api"}`
	for _, expr := range []string{
		`type(payload.ratio) == double && payload.ratio == 1.0 && payload.ratio * 2.0 == 2.0`,
		`type(payload.replicas) == int && payload.replicas + 1 == 3`,
		`payload.hosts == [] && size(payload.tags) == 0 && !payload.hosts.exists(h, true)`,
		`!has(payload.env) && has(payload.service) && !has(payload.region)`,
	} {
		ok, err := evalOn(t, deployment, expr, doc)
		require.NoError(t, err, expr)
		require.True(t, ok, expr)
	}
	_, err := evalOn(t, deployment, `payload.env == ""`, doc)
	require.ErrorContains(t, err, "no such key: env")

	dyn := newPayloadType(nil)
	ok, err := evalOn(t, dyn, `type(payload.a) == int && type(payload.b) == double && type(payload.c) == double && !has(payload.d) && payload.e[0].f && payload.e[1] == null`,
		`{"a": 1, "b": 1.5, "c": 12345678901234567890, "d": null, "e": [{"f": true}, null]}`)
	require.NoError(t, err)
	require.True(t, ok)
}

func TestFilterProgramCache(t *testing.T) {
	var e filterEngine
	rec := goldenEvent(t, "incident")
	p1 := e.program(rec, `payload.count > 1`)
	require.Nil(t, p1.err)
	require.Same(t, p1, e.program(rec, `payload.count > 1`), "cached")
	require.NotSame(t, p1, e.program(nil, `payload.count > 1`), "by event")

	// Bounded: past the limit, an eighth is forgotten.
	e.maxPrograms = 80
	for i := range 200 {
		e.program(nil, fmt.Sprintf("payload.n == %d", i))
	}
	require.LessOrEqual(t, e.nprograms.Load(), e.maxPrograms)
	require.Greater(t, e.nprograms.Load(), e.maxPrograms/2)
	n := 0
	e.programs.Range(func(any, any) bool { n++; return true })
	require.Equal(t, int(e.nprograms.Load()), n)
}

func TestEvalFilterNotBool(t *testing.T) {
	pt := newPayloadType(nil)
	p := compileFilter(pt, `payload.x`)
	require.Nil(t, p.err, "dyn may be a bool")
	act := &payloadActivation{payload: pt.value(map[string]any{"x": "yes"}, pt.typ)}
	_, err := evalFilter(context.Background(), p.prg, act)
	require.ErrorContains(t, err, "filter returned string, not bool")
}

func TestEvalFilterCancelled(t *testing.T) {
	pt := newPayloadType(nil)
	p := compileFilter(pt, `payload.all(a, payload.all(b, a != b || a == b))`)
	require.Nil(t, p.err)
	list := make([]any, 200)
	for i := range list {
		list[i] = json.Number(fmt.Sprint(i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	act := &payloadActivation{payload: pt.value(list, pt.typ)}
	_, err := evalFilter(ctx, p.prg, act)
	require.ErrorIs(t, err, context.Canceled)
}

// FuzzFilterCompile compiles any source against a schema with every kind of
// type and without one, and evaluates what compiles: nothing panics, and
// errors are positioned within the source.
func FuzzFilterCompile(f *testing.F) {
	for _, s := range []string{
		`payload.severity == "critical" && "sys-1" in payload.systemIds`,
		`payload.count > 3 || payload.labels["a"] == "b"`,
		`payload.nope`,
		`payload.systemIds.map(s, s + s).exists(x, x.size() > 1)`,
		`timestamp(payload.createdAt).getHours() > 3`,
		"payload.title.matches('[a-z')",
		`1 / 0 == 1`,
		`"\u0000" == payload.title`,
	} {
		f.Add(s)
	}
	incident := newPayloadType(goldenEvent(f, "incident"))
	thread := newPayloadType(goldenEvent(f, "thread"))
	dyn := newPayloadType(nil)
	in := filterInput{raw: json.RawMessage(`{"incidentId": "inc-1", "systemIds": ["sys-1", "sys-2"], "title": "Database down",
		"severity": "critical", "createdAt": "2024-05-01T10:00:00Z", "labels": {"a": "b"}, "count": 3, "priority": 2, "paged": true,
		"replies": [{"id": "r", "body": "x", "replies": null}], "parent": null}`)}
	payload, err := in.decode("x.y")
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, expr string) {
		for _, pt := range []*payloadType{incident, thread, dyn} {
			p := compileFilter(pt, expr)
			if p.err != nil {
				lines := strings.Count(expr, "\n") + 1
				require.GreaterOrEqual(t, p.err.Line, 0)
				require.LessOrEqual(t, p.err.Line, lines, "line of %q", p.err.Msg)
				require.GreaterOrEqual(t, p.err.Column, 0)
				require.Equal(t, p.err.Line == 0, p.err.Column == 0)
				require.NotEmpty(t, p.err.Msg)
				continue
			}
			act := &payloadActivation{payload: pt.value(payload, pt.typ)}
			_, _ = evalFilter(context.Background(), p.prg, act)
		}
	})
}

func TestFilterErrorText(t *testing.T) {
	require.Equal(t, `outhook: filter expression at 2:5: undefined field 'x' (payload of event "a.b")`,
		(&FilterError{EventID: "a.b", Line: 2, Column: 5, Msg: "undefined field 'x'"}).Error())
	require.Equal(t, `outhook: filter expression: too long`, (&FilterError{Msg: "too long"}).Error())
}
