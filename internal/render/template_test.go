package render

import (
	"encoding/json"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/outhook/outhook"
	"github.com/stretchr/testify/require"
)

func testData(t *testing.T, payload string) *Data {
	t.Helper()
	req := &outhook.DeliveryRequest{
		EventID: "incident.incident.created", DeliveryID: "del_1", MessageID: "msg_1", Attempt: 2,
		OccurredAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		Event:      outhook.Event{ID: "incident.incident.created", DisplayName: "Incident Created"},
		Payload:    json.RawMessage(payload),
	}
	return NewData(req, DecodeOrText(req.Payload))
}

func TestNewData(t *testing.T) {
	d := testData(t, `{ "a": 1 }`)
	require.Equal(t, `{"a":1}`, d.PayloadJSON)
	require.Equal(t, json.Number("1"), d.Payload["a"])
	require.Equal(t, 2, d.Attempt)
	require.Equal(t, "msg_1", d.MessageID)
	require.Equal(t, map[string]any{}, testData(t, `[1]`).Payload)
	require.Equal(t, "not json", testData(t, `not json`).PayloadJSON)
}

func TestMissingModes(t *testing.T) {
	const payload = `{"title":"DB down","owner":{"email":"a@example.com"},"gone":null}`
	src := `{{.Payload.title}}|{{.Payload.owner.email}}|{{.Payload.nope}}|{{.Payload.a.b.c}}|{{$.Payload.x.y}}|{{.Payload.gone.z}}|{{if .Payload.q.r}}yes{{else}}no{{end}}`
	want := "DB down|a@example.com||||" + "|no"

	t.Run("fill", func(t *testing.T) {
		e := &Engine{Missing: MissingFill, MaxOutput: 1 << 10}
		tmpl, err := e.Parse("t", src)
		require.NoError(t, err)
		out, err := e.Execute(tmpl, testData(t, payload))
		require.NoError(t, err)
		require.Equal(t, want, out)
	})
	t.Run("keep", func(t *testing.T) {
		e := &Engine{Missing: MissingKeep, MaxOutput: 1 << 10}
		tmpl, err := e.Parse("t", src)
		require.NoError(t, err)
		d := testData(t, payload)
		DropNulls(d.Payload)
		out, err := e.Execute(tmpl, d)
		require.NoError(t, err)
		require.Equal(t, want, out)
		require.NotContains(t, d.Payload, "a", "the payload is not changed")
	})
	t.Run("zero", func(t *testing.T) {
		e := &Engine{Missing: MissingZero, MaxOutput: 1 << 10}
		tmpl, err := e.Parse("t", `{{.Payload.title}}|{{.Payload.nope}}|{{.Payload.owner.email}}`)
		require.NoError(t, err)
		out, err := e.Execute(tmpl, testData(t, payload))
		require.NoError(t, err)
		require.Equal(t, "DB down||a@example.com", out)
		tmpl, err = e.Parse("t", `{{.Payload.a.b}}`)
		require.NoError(t, err)
		_, err = e.Execute(tmpl, testData(t, payload))
		require.Error(t, err, "a field of a missing object fails")
	})
	t.Run("field of a string fails in every mode", func(t *testing.T) {
		for _, m := range []Missing{MissingFill, MissingKeep, MissingZero} {
			e := &Engine{Missing: m, MaxOutput: 1 << 10}
			tmpl, err := e.Parse("t", `{{.Payload.title.nope}}`)
			require.NoError(t, err)
			_, err = e.Execute(tmpl, testData(t, payload))
			require.Error(t, err, m)
		}
	})
}

func TestRestrict(t *testing.T) {
	e := &Engine{Restrict: true, MaxOutput: 1 << 10}
	for _, src := range []string{
		`{{range .Payload.items}}{{.}}{{end}}`,
		`{{range $i, $v := .Payload.items}}{{$i}}={{$v}}{{end}}`,
		`{{range $.Payload.items}}{{.}}{{end}}`,
		`{{with .Payload.items}}{{range .}}{{.}}{{end}}{{end}}`,
		strings.Repeat(`{{range .Payload.items}}{{end}}`, MaxRanges),
	} {
		_, err := e.Parse("x", src)
		require.NoError(t, err, src)
	}
	for src, want := range map[string]string{
		`{{range 1000000000}}{{end}}`:                                     "range only over a field",
		`{{$n := 1000000000}}{{range $n}}{{end}}`:                         "range only over a field",
		`{{range .Payload.a}}{{range .b}}{{end}}{{end}}`:                  "{{range}} inside {{range}}",
		`{{range .Payload.a}}{{with .b}}{{range .}}{{end}}{{end}}{{end}}`: "{{range}} inside {{range}}",
		`{{define "x"}}{{template "x" .}}{{end}}{{template "x" .}}`:       "not supported",
		`{{block "x" .}}{{end}}`:                                          "not supported",
		strings.Repeat(`{{range .Payload.items}}{{end}}`, MaxRanges+1):    "more than 10",
	} {
		_, err := e.Parse("t", src)
		require.ErrorContains(t, err, want, src)
		require.True(t, strings.HasPrefix(err.Error(), "template: t: "), err.Error())
	}
	// Without Restrict the same templates parse.
	_, err := (&Engine{}).Parse("x", `{{define "x"}}{{end}}{{range 3}}{{end}}`)
	require.NoError(t, err)
	_, err = e.Parse("x", `{{.Payload.title`)
	require.ErrorContains(t, err, "template: x:1: unclosed action")
}

func TestOutputCap(t *testing.T) {
	items := make([]int, 1000)
	b, _ := json.Marshal(map[string]any{"items": items})
	e := &Engine{Restrict: true, MaxOutput: 100, Invalid: "\uFFFD"}
	tmpl, err := e.Parse("t", `{{range .Payload.items}}{{$.PayloadJSON}}{{end}}`)
	require.NoError(t, err)
	out, err := e.Execute(tmpl, testData(t, string(b)))
	require.NoError(t, err, "the cap is not an error")
	require.Len(t, out, 100)

	// A character cut in two is replaced, or dropped.
	e.MaxOutput = 101
	tmpl, err = e.Parse("t", `ab{{.Payload.s}}`)
	require.NoError(t, err)
	d := testData(t, `{"s":"`+strings.Repeat("é", 60)+`"}`)
	out, err = e.Execute(tmpl, d)
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(out, "é\uFFFD"), out)
	e.Invalid = ""
	out, err = e.Execute(tmpl, d)
	require.NoError(t, err)
	require.Equal(t, "ab"+strings.Repeat("é", 49), out)
}

func TestFuncs(t *testing.T) {
	e := &Engine{Funcs: template.FuncMap{"upper": strings.ToUpper}, MaxOutput: 1 << 10}
	tmpl, err := e.Parse("t", `{{upper .EventID}}`)
	require.NoError(t, err)
	out, err := e.Execute(tmpl, testData(t, `{}`))
	require.NoError(t, err)
	require.Equal(t, "INCIDENT.INCIDENT.CREATED", out)
	_, err = (&Engine{}).Parse("t", `{{upper .EventID}}`)
	require.ErrorContains(t, err, `function "upper" not defined`)
}

func TestSample(t *testing.T) {
	type data struct {
		EventID string
		Payload map[string]any
	}
	sample := func() any { return &data{Payload: map[string]any{}} }
	strict := &Engine{Missing: MissingZero, MaxOutput: 1 << 10, Sample: sample}
	lenient := &Engine{Missing: MissingZero, MaxOutput: 1 << 10, Sample: sample, SampleFails: UnknownField}
	for _, e := range []*Engine{strict, lenient} {
		_, err := e.Parse("t", `{{.EventId}}`)
		require.ErrorContains(t, err, "can't evaluate field EventId")
		_, err = e.Parse("t", `{{.EventID}} {{.Payload.title}}`)
		require.NoError(t, err)
		_, err = e.Parse("t", `{{range .Payload.items}}{{.}}{{end}}{{printf "%0500d" 1}}{{printf "%0600d" 1}}`)
		require.NoError(t, err, "reaching the cap is not a mistake")
	}
	// A field of a missing object fails on empty sample data: a mistake
	// only for an engine that says so.
	_, err := strict.Parse("t", `{{.Payload.incident.title}}`)
	require.Error(t, err)
	_, err = lenient.Parse("t", `{{.Payload.incident.title}}`)
	require.NoError(t, err)
}
