package slack

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
)

func testRequest(displayName, payload string) *outhook.DeliveryRequest {
	return &outhook.DeliveryRequest{
		DeliveryID: "del_1",
		MessageID:  "msg_1",
		EventID:    "incident.incident.created",
		Event:      outhook.Event{ID: "incident.incident.created", DisplayName: displayName, Category: "Incidents"},
		Payload:    json.RawMessage(payload),
		OccurredAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		Attempt:    1,
	}
}

// checkLimits fails the test if msg breaks a Slack limit or holds text
// that is not valid UTF-8.
func checkLimits(t testing.TB, msg *message) {
	t.Helper()
	runes := utf8.RuneCountInString
	valid := func(s string) {
		t.Helper()
		if !utf8.ValidString(s) {
			t.Fatalf("invalid UTF-8: %q", s)
		}
	}
	if n := runes(msg.Text); n > MaxText || n == 0 {
		t.Fatalf("text has %d characters", n)
	}
	valid(msg.Text)
	if len(msg.Blocks) > MaxBlocks {
		t.Fatalf("%d blocks", len(msg.Blocks))
	}
	for _, b := range msg.Blocks {
		switch b.Type {
		case "header":
			if n := runes(b.Text.Text); n > MaxHeaderText || n == 0 || b.Text.Type != "plain_text" {
				t.Fatalf("header %q: %d characters", b.Text.Text, n)
			}
			valid(b.Text.Text)
		case "section":
			if b.Text == nil && len(b.Fields) == 0 {
				t.Fatal("section with neither text nor fields")
			}
			if b.Text != nil {
				if n := runes(b.Text.Text); n > MaxSectionText || n == 0 {
					t.Fatalf("section text: %d characters", n)
				}
				valid(b.Text.Text)
			}
			if len(b.Fields) > MaxFields {
				t.Fatalf("%d fields", len(b.Fields))
			}
			for _, f := range b.Fields {
				if n := runes(f.Text); n > MaxFieldText || n == 0 {
					t.Fatalf("field: %d characters", n)
				}
				valid(f.Text)
			}
		case "context":
			if len(b.Elements) == 0 || len(b.Elements) > MaxContext {
				t.Fatalf("%d context elements", len(b.Elements))
			}
			for _, e := range b.Elements {
				if n := runes(e.Text); n > MaxSectionText || n == 0 {
					t.Fatalf("context element: %d characters", n)
				}
				valid(e.Text)
			}
		default:
			t.Fatalf("unexpected block type %q", b.Type)
		}
	}
}

func TestRenderLongDisplayName(t *testing.T) {
	for _, name := range []string{strings.Repeat("n", 200), strings.Repeat("é", 200), strings.Repeat("🔥", 200)} {
		msg := render(testRequest(name, `{"title":"x"}`), nil)
		checkLimits(t, msg)
		header := msg.Blocks[0].Text.Text
		require.Equal(t, MaxHeaderText, utf8.RuneCountInString(header), "cut to the limit in characters, not bytes")
		require.True(t, strings.HasSuffix(header, "…"))
		require.Equal(t, string([]rune(name)[:MaxHeaderText-1])+"…", header)
	}
	// At the limit: not cut.
	name := strings.Repeat("n", MaxHeaderText)
	require.Equal(t, name, render(testRequest(name, `{}`), nil).Blocks[0].Text.Text)
}

func TestRenderLongFieldValue(t *testing.T) {
	long := strings.Repeat("v", 5000)
	msg := render(testRequest("Incident Created", fmt.Sprintf(`{"details":%q,"title":"short"}`, long)), nil)
	checkLimits(t, msg)
	fields := msg.Blocks[1].Fields
	require.Len(t, fields, 2)
	require.Equal(t, "*title*\nshort", fields[0].Text)
	require.Equal(t, MaxFieldText, utf8.RuneCountInString(fields[1].Text))
	require.True(t, strings.HasPrefix(fields[1].Text, "*details*\nvvv"))
	require.True(t, strings.HasSuffix(fields[1].Text, "v…"))
}

func TestRenderManyFields(t *testing.T) {
	obj := map[string]any{}
	for i := range 30 {
		obj[fmt.Sprintf("f%02d", i)] = i
	}
	obj["status"] = "open" // a leading key goes first
	b, _ := json.Marshal(obj)
	msg := render(testRequest("Incident Created", string(b)), nil)
	checkLimits(t, msg)
	fields := msg.Blocks[1].Fields
	require.Len(t, fields, MaxFields)
	require.Equal(t, "*status*\nopen", fields[0].Text)
	require.Equal(t, "*f00*\n0", fields[1].Text)
	require.Equal(t, "*f08*\n8", fields[9].Text)
	ctx := msg.Blocks[2].Elements
	require.Equal(t, "21 more fields not shown", ctx[len(ctx)-1].Text)
}

func TestRenderDeepNesting(t *testing.T) {
	deep := `{"leaf":"x"}`
	for i := range 500 {
		if i%2 == 0 {
			deep = `{"a":` + deep + `,"n":1}`
		} else {
			deep = `{"list":[` + deep + `]}`
		}
	}
	payload := `{"title":"Nested","deep":` + deep + `,"ids":[1,2,3],"mixed":[1,{"a":1}],"matrix":[[1,2]],"nothing":null}`
	msg := render(testRequest("Incident Created", payload), nil)
	checkLimits(t, msg)
	var texts []string
	for _, f := range msg.Blocks[1].Fields {
		texts = append(texts, f.Text)
	}
	require.Equal(t, []string{"*title*\nNested", "*ids*\n1, 2, 3"}, texts, "objects, arrays of objects or arrays, and nulls are left out")
	require.Equal(t, "Incident Created: Nested", msg.Text)
}

func TestRenderLongText(t *testing.T) {
	summary := strings.Repeat("s", 50000)
	msg := render(testRequest("Incident Created", fmt.Sprintf(`{"summary":%q}`, summary)), nil)
	checkLimits(t, msg)
	require.Equal(t, MaxText, utf8.RuneCountInString(msg.Text))
	require.True(t, strings.HasPrefix(msg.Text, "Incident Created: sss"))
}

func TestRenderEscapes(t *testing.T) {
	msg := render(testRequest("Deploy <b> & co", `{"title":"<!channel> <https://evil.example|your bank> & more"}`), nil)
	checkLimits(t, msg)
	require.Equal(t, "Deploy <b> & co", msg.Blocks[0].Text.Text, "plain_text is not escaped")
	require.Equal(t, "Deploy &lt;b&gt; &amp; co: &lt;!channel&gt; &lt;https://evil.example|your bank&gt; &amp; more", msg.Text)
	require.Equal(t, "*title*\n&lt;!channel&gt; &lt;https://evil.example|your bank&gt; &amp; more", msg.Blocks[1].Fields[0].Text)

	// Cutting escaped text never leaves half an entity.
	value := strings.Repeat("x", MaxFieldText-len("*k*\n")-3) + "&&&&"
	msg = render(testRequest("E", fmt.Sprintf(`{"k":%q}`, value)), nil)
	checkLimits(t, msg)
	f := msg.Blocks[1].Fields[0].Text
	require.True(t, strings.HasSuffix(f, "x&amp;…") || strings.HasSuffix(f, "x…"), f)
}

func TestRenderPayloadShapes(t *testing.T) {
	for _, tc := range []struct {
		name, payload string
		section       string // "" for no section
	}{
		{"empty object", `{}`, ""},
		{"only objects", `{"a":{"b":1}}`, ""},
		{"null", `null`, ""},
		{"empty", ``, ""},
		{"array", `[1,"two"]`, "```[1,\"two\"]```"},
		{"string", `"<hi>"`, "```\"&lt;hi&gt;\"```"},
		{"not JSON", `{oops`, "```\"{oops\"```"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := render(testRequest("Incident Created", tc.payload), nil)
			checkLimits(t, msg)
			require.Equal(t, "Incident Created", msg.Text)
			if tc.section == "" {
				require.Len(t, msg.Blocks, 2)
				return
			}
			require.Len(t, msg.Blocks, 3)
			require.Equal(t, tc.section, msg.Blocks[1].Text.Text)
		})
	}
}

func TestRenderHeaderFallsBackToEventID(t *testing.T) {
	req := testRequest("", `{"message":"hello"}`)
	req.Event = outhook.Event{}
	req.EventID = outhook.TestEventID
	req.OccurredAt = time.Time{}
	msg := render(req, nil)
	checkLimits(t, msg)
	require.Equal(t, outhook.TestEventID, msg.Blocks[0].Text.Text)
	require.Equal(t, "outhook.test: hello", msg.Text)
	require.Len(t, msg.Blocks[2].Elements, 1, "no time when it is unknown")
}

func TestRenderTemplate(t *testing.T) {
	parse := func(src string) *template.Template {
		tmpl, err := parseTemplate("textTemplate", src)
		require.NoError(t, err)
		return tmpl
	}
	payload := `{"title":"DB down","owner":{"email":"a@example.com"},"count":3}`

	t.Run("fields and missing fields", func(t *testing.T) {
		tmpl := parse(`{{.EventID}}|{{.Event.DisplayName}}|{{.Event.Category}}|{{.DeliveryID}}|{{.OccurredAt.Format "2006-01-02"}}|{{.Payload.title}}|{{.Payload.count}}|{{.Payload.owner.email}}|{{.Payload.nope}}|{{.Payload.a.b.c}}|{{$.Payload.x.y}}|{{with .Payload.owner}}{{.email}}{{end}}|{{if .Payload.q.r}}yes{{else}}no{{end}}`)
		msg := render(testRequest("Incident Created", payload), tmpl)
		checkLimits(t, msg)
		want := "incident.incident.created|Incident Created|Incidents|del_1|2026-03-01|DB down|3|a@example.com||||a@example.com|no"
		require.Equal(t, want, msg.Text)
		require.Equal(t, want, msg.Blocks[1].Text.Text)
		require.Empty(t, msg.Blocks[1].Fields)
	})
	t.Run("long output", func(t *testing.T) {
		tmpl := parse(`{{range $i, $_ := .Payload.items}}0123456789{{end}}`)
		items := make([]int, 5000) // 50,000 characters
		b, _ := json.Marshal(map[string]any{"items": items})
		msg := render(testRequest("E", string(b)), tmpl)
		checkLimits(t, msg)
		require.Equal(t, MaxSectionText, utf8.RuneCountInString(msg.Blocks[1].Text.Text))
		require.Equal(t, MaxText, utf8.RuneCountInString(msg.Text))
		require.True(t, strings.HasSuffix(msg.Text, "…"))
	})
	t.Run("runaway output is capped", func(t *testing.T) {
		items := make([]int, 1000)
		b, _ := json.Marshal(map[string]any{"items": items})
		tmpl := parse(`{{range .Payload.items}}{{$.PayloadJSON}}{{end}}`) // 2 MB
		out, err := execute(tmpl, newTemplateData(testRequest("E", string(b)), decodePayload(json.RawMessage(b))))
		require.NoError(t, err)
		require.Len(t, out, maxTemplateOutput)
	})
	t.Run("failure falls back to the default layout", func(t *testing.T) {
		tmpl := parse(`{{.Payload.title.nope}}`) // a field of a string
		msg := render(testRequest("Incident Created", payload), tmpl)
		checkLimits(t, msg)
		require.Equal(t, "Incident Created: DB down", msg.Text)
		require.Equal(t, "*title*\nDB down", msg.Blocks[1].Fields[0].Text)
		ctx := msg.Blocks[2].Elements
		require.Contains(t, ctx[len(ctx)-1].Text, "textTemplate failed")
	})
	t.Run("blank output falls back to the default layout", func(t *testing.T) {
		msg := render(testRequest("Incident Created", payload), parse(`  {{.Payload.nope}}  `))
		checkLimits(t, msg)
		require.Equal(t, "Incident Created: DB down", msg.Text)
	})
	t.Run("escape", func(t *testing.T) {
		msg := render(testRequest("E", `{"t":"<!here> & <x>","n":1.5}`), parse(`{{escape .Payload.t}} {{escape .Payload.n}} {{escape .Payload.none}}.`))
		require.Equal(t, "&lt;!here&gt; &amp; &lt;x&gt; 1.5 .", msg.Text)
	})
	t.Run("test event payload", func(t *testing.T) {
		req := testRequest("", `{"test":true,"message":"This is a test event","subscriptionId":"sub_1"}`)
		req.Event, req.EventID = outhook.Event{}, outhook.TestEventID
		msg := render(req, parse(`*{{.Event.DisplayName}}* {{.Payload.incident.title}} {{.Payload.message}}`))
		checkLimits(t, msg)
		require.Equal(t, "**  This is a test event", msg.Text)
	})
}

func TestParseTemplateBoundsLoops(t *testing.T) {
	for _, src := range []string{
		`{{range .Payload.items}}{{.}}{{end}}`,
		`{{range $i, $v := .Payload.items}}{{$i}}={{$v}}{{end}}`,
		`{{range $.Payload.items}}{{.}}{{end}}`,
		`{{with .Payload.items}}{{range .}}{{.}}{{end}}{{end}}`,
		strings.Repeat(`{{range .Payload.items}}{{end}}`, maxRanges),
	} {
		_, err := parseTemplate("textTemplate", src)
		require.NoError(t, err, src)
	}
	for src, want := range map[string]string{
		`{{range 1000000000}}{{end}}`:                                     "range only over a field",
		`{{$n := 1000000000}}{{range $n}}{{end}}`:                         "range only over a field",
		`{{range len .PayloadJSON}}{{end}}`:                               "range only over a field",
		`{{range .Payload.a}}{{range .b}}{{end}}{{end}}`:                  "{{range}} inside {{range}}",
		`{{range .Payload.a}}{{with .b}}{{range .}}{{end}}{{end}}{{end}}`: "{{range}} inside {{range}}",
		`{{define "x"}}{{template "x" .}}{{end}}{{template "x" .}}`:       "not supported",
		`{{block "x" .}}{{end}}`:                                          "not supported",
		strings.Repeat(`{{range .Payload.items}}{{end}}`, maxRanges+1):    "more than 10",
	} {
		_, err := parseTemplate("textTemplate", src)
		require.ErrorContains(t, err, want, src)
		require.True(t, strings.HasPrefix(err.Error(), "template: textTemplate: "), err.Error())
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 5, "hello"},
		{"hello!", 5, "hell…"},
		{"héllo wörld", 7, "héllo…"}, // trailing space dropped before the ellipsis
		{"🔥🔥🔥", 2, "🔥…"},
		{"abc", 1, "…"},
		{"", 3, ""},
	} {
		require.Equal(t, tc.want, truncate(tc.in, tc.n), "truncate(%q, %d)", tc.in, tc.n)
	}
	require.Equal(t, "a&amp;…", truncateMrkdwn("a&amp;&amp;", 7))
	require.Equal(t, "a…", truncateMrkdwn("a&amp;&amp;", 6))
	require.Equal(t, "a…", truncateMrkdwn("a&amp;", 5))
}

// FuzzRender checks that no payload, display name or template output
// gives a message that breaks a Slack limit.
func FuzzRender(f *testing.F) {
	f.Add("Incident Created", `{"title":"DB down","n":1,"tags":["a","b"]}`, "")
	f.Add(strings.Repeat("é", 300), `{"x":"`+strings.Repeat("&<>", 2000)+`"}`, "{{.Payload.x}}")
	f.Add("", `[1,2,{"a":null}]`, "{{escape .PayloadJSON}}")
	f.Add(" ", `"\ud83d"`, "  ")
	f.Add("\xff\xfe", "{\"\xff\":\"\xfe\"}", "{{.Payload.a.b}}\xff")
	f.Fuzz(func(t *testing.T, name, payload, src string) {
		tmpl, err := parseTemplate("textTemplate", src)
		if err != nil {
			tmpl = nil
		}
		req := testRequest(name, payload)
		msg := render(req, tmpl)
		checkLimits(t, msg)
		if _, err := json.Marshal(msg); err != nil {
			t.Fatal(err)
		}
	})
}

func BenchmarkRender(b *testing.B) {
	req := testRequest("Incident Created", `{"title":"Database down","summary":"Primary DB unreachable","severity":"critical","systemIds":["api","db"],"owner":{"email":"oncall@example.com"},"count":3,"acknowledged":false}`)
	b.ReportAllocs()
	for b.Loop() {
		_ = render(req, nil)
	}
}
