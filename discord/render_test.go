package discord

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

// embedTotal counts the characters Discord counts towards MaxEmbedTotal.
func embedTotal(e embed) int {
	n := runes(e.Title) + runes(e.Description)
	for _, f := range e.Fields {
		n += runes(f.Name) + runes(f.Value)
	}
	if e.Footer != nil {
		n += runes(e.Footer.Text)
	}
	return n
}

// checkLimits fails the test if msg breaks a Discord limit or holds text
// that is not valid UTF-8.
func checkLimits(t testing.TB, msg *message) {
	t.Helper()
	text := func(what, s string, lo, hi int) {
		t.Helper()
		if n := runes(s); n < lo || n > hi {
			t.Fatalf("%s has %d characters, want %d to %d: %q", what, n, lo, hi, s)
		}
		if !utf8.ValidString(s) {
			t.Fatalf("%s is not valid UTF-8: %q", what, s)
		}
	}
	text("content", msg.Content, 0, MaxContent)
	if msg.AllowedMentions.Parse == nil {
		t.Fatal("allowed_mentions.parse is null")
	}
	if len(msg.Embeds) == 0 || len(msg.Embeds) > MaxEmbeds {
		t.Fatalf("%d embeds", len(msg.Embeds))
	}
	total := 0
	for _, e := range msg.Embeds {
		text("title", e.Title, 1, MaxTitle)
		text("description", e.Description, 0, MaxDescription)
		if len(e.Fields) > MaxFields {
			t.Fatalf("%d fields", len(e.Fields))
		}
		for _, f := range e.Fields {
			text("field name", f.Name, 1, MaxFieldName)
			text("field value", f.Value, 1, MaxFieldValue)
			if strings.TrimSpace(f.Name) == "" || strings.TrimSpace(f.Value) == "" {
				t.Fatalf("blank field %q: %q", f.Name, f.Value)
			}
		}
		text("footer", e.Footer.Text, 1, MaxFooterText)
		if _, err := time.Parse(time.RFC3339, e.Timestamp); err != nil && e.Timestamp != "" {
			t.Fatalf("timestamp %q: %v", e.Timestamp, err)
		}
		total += embedTotal(e)
	}
	if total > MaxEmbedTotal {
		t.Fatalf("embeds have %d characters", total)
	}
}

func mustParse(t *testing.T, src string) *template.Template {
	t.Helper()
	tmpl, err := parseTemplate("contentTemplate", src)
	require.NoError(t, err)
	return tmpl
}

func TestRenderLimits(t *testing.T) {
	t.Run("long title", func(t *testing.T) {
		for _, name := range []string{strings.Repeat("n", 300), strings.Repeat("ü", 300), strings.Repeat("🚨", 300)} {
			msg := render(testRequest(name, `{}`), &Config{}, nil)
			checkLimits(t, msg)
			require.Equal(t, string([]rune(name)[:MaxTitle-1])+"…", msg.Embeds[0].Title)
		}
	})
	t.Run("long description", func(t *testing.T) {
		msg := render(testRequest("E", fmt.Sprintf(`{"summary":%q}`, strings.Repeat("d", 5000))), &Config{}, nil)
		checkLimits(t, msg)
		require.Equal(t, MaxDescription, runes(msg.Embeds[0].Description))
		require.True(t, strings.HasSuffix(msg.Embeds[0].Description, "d…"))
	})
	t.Run("long field name and value", func(t *testing.T) {
		payload := fmt.Sprintf(`{%q:%q}`, strings.Repeat("k", 300), strings.Repeat("v", 2000))
		msg := render(testRequest("E", payload), &Config{}, nil)
		checkLimits(t, msg)
		f := msg.Embeds[0].Fields[0]
		require.Equal(t, MaxFieldName, runes(f.Name))
		require.Equal(t, MaxFieldValue, runes(f.Value))
		require.False(t, f.Inline)
	})
	t.Run("30 fields", func(t *testing.T) {
		obj := map[string]any{}
		for i := range 30 {
			obj[fmt.Sprintf("f%02d", i)] = i
		}
		b, _ := json.Marshal(obj)
		msg := render(testRequest("E", string(b)), &Config{}, nil)
		checkLimits(t, msg)
		require.Len(t, msg.Embeds[0].Fields, MaxFields)
		require.Equal(t, "f24", msg.Embeds[0].Fields[24].Name)
		require.Equal(t, "incident.incident.created · 5 more fields not shown", msg.Embeds[0].Footer.Text)
	})
	t.Run("6000 in all", func(t *testing.T) {
		obj := map[string]any{"summary": strings.Repeat("s", 5000)}
		for i := range 25 {
			obj[fmt.Sprintf("%s%02d", strings.Repeat("k", 200), i)] = strings.Repeat("v", 1000)
		}
		b, _ := json.Marshal(obj)
		msg := render(testRequest(strings.Repeat("t", 300), string(b)), &Config{}, nil)
		checkLimits(t, msg)
		e := msg.Embeds[0]
		require.Equal(t, MaxTitle, runes(e.Title))
		require.Equal(t, MaxDescription, runes(e.Description), "the description comes before the fields")
		require.LessOrEqual(t, embedTotal(e), MaxEmbedTotal)
		require.Greater(t, embedTotal(e), MaxEmbedTotal-100, "the room is used")
		require.NotEmpty(t, e.Fields)
		require.Less(t, len(e.Fields), 25)
		require.True(t, strings.HasSuffix(e.Footer.Text, fmt.Sprintf(" · %d more fields not shown", 25-len(e.Fields))), e.Footer.Text)
	})
	t.Run("long content", func(t *testing.T) {
		msg := render(testRequest("E", fmt.Sprintf(`{"x":%q}`, strings.Repeat("c", 5000))), &Config{}, mustParse(t, "{{.Payload.x}}"))
		checkLimits(t, msg)
		require.Equal(t, MaxContent, runes(msg.Content))
		require.True(t, strings.HasSuffix(msg.Content, "c…"))
	})
	t.Run("deep nesting", func(t *testing.T) {
		deep := `{"leaf":"x"}`
		for i := range 500 {
			if i%2 == 0 {
				deep = `{"a":` + deep + `}`
			} else {
				deep = `{"list":[` + deep + `]}`
			}
		}
		payload := `{"title":"Nested","deep":` + deep + `,"ids":[1,2,3],"mixed":[1,{"a":1}],"matrix":[[1]],"nothing":null,"blank":"  "}`
		msg := render(testRequest("E", payload), &Config{}, nil)
		checkLimits(t, msg)
		e := msg.Embeds[0]
		require.Equal(t, "Nested", e.Description)
		require.Equal(t, []embedField{{Name: "ids", Value: "1, 2, 3", Inline: true}}, e.Fields)
	})
}

func TestRenderMentions(t *testing.T) {
	msg := render(testRequest("E", `{"title":"@everyone"}`), &Config{}, mustParse(t, "{{.Payload.title}} @here"))
	checkLimits(t, msg)
	b, err := json.Marshal(msg)
	require.NoError(t, err)
	require.Contains(t, string(b), `"allowed_mentions":{"parse":[]}`, "always sent, empty by default")

	msg = render(testRequest("E", `{}`), &Config{Mentions: []string{MentionUsers, MentionRoles}}, nil)
	require.Equal(t, []string{"users", "roles"}, msg.AllowedMentions.Parse)
}

func TestRenderColors(t *testing.T) {
	for sev, want := range map[string]int{"critical": 0xD92D20, "Warning": 0xF79009, " info ": 0x2E90FA, "unknown": 0} {
		msg := render(testRequest("E", fmt.Sprintf(`{"severity":%q}`, sev)), &Config{}, nil)
		require.Equal(t, want, msg.Embeds[0].Color, sev)
	}
}

func TestRenderPayloadShapes(t *testing.T) {
	for _, tc := range []struct{ payload, description string }{
		{`{}`, ""},
		{`null`, ""},
		{``, ""},
		{`[1,"<two>"]`, "```[1,\"<two>\"]```"},
		{`"text"`, "```\"text\"```"},
		{`{oops`, "```\"{oops\"```"},
	} {
		msg := render(testRequest("E", tc.payload), &Config{}, nil)
		checkLimits(t, msg)
		require.Equal(t, tc.description, msg.Embeds[0].Description, tc.payload)
		require.Empty(t, msg.Embeds[0].Fields)
	}
}

func TestRenderTemplateFailure(t *testing.T) {
	msg := render(testRequest("E", `{"title":"DB down"}`), &Config{}, mustParse(t, "{{.Payload.title.nope}}"))
	checkLimits(t, msg)
	require.Empty(t, msg.Content)
	require.Equal(t, "DB down", msg.Embeds[0].Description)
	require.Contains(t, msg.Embeds[0].Footer.Text, "incident.incident.created · contentTemplate failed: ")
}

func TestRenderTestEvent(t *testing.T) {
	req := testRequest("", `{"test":true,"message":"This is a test event","subscriptionId":"sub_1"}`)
	req.Event, req.EventID, req.OccurredAt = outhook.Event{}, outhook.TestEventID, time.Time{}
	msg := render(req, &Config{}, nil)
	checkLimits(t, msg)
	e := msg.Embeds[0]
	require.Equal(t, outhook.TestEventID, e.Title)
	require.Equal(t, "This is a test event", e.Description)
	require.Equal(t, []embedField{{"subscriptionId", "sub_1", true}, {"test", "true", true}}, e.Fields)
	require.Empty(t, e.Timestamp)
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 5, "hello"},
		{"hello!", 5, "hell…"},
		{"héllo wörld", 7, "héllo…"},
		{"🔥🔥🔥", 2, "🔥…"},
		{"abc", 1, "…"},
		{"abc", 0, ""},
		{"", 3, ""},
	} {
		require.Equal(t, tc.want, truncate(tc.in, tc.n), "truncate(%q, %d)", tc.in, tc.n)
	}
}

func TestParseTemplateBoundsLoops(t *testing.T) {
	for _, src := range []string{
		`{{range .Payload.items}}{{.}}{{end}}`,
		`{{range $i, $v := .Payload.items}}{{$i}}={{$v}}{{end}}`,
		`{{with .Payload.items}}{{range .}}{{.}}{{end}}{{end}}`,
	} {
		_, err := parseTemplate("contentTemplate", src)
		require.NoError(t, err, src)
	}
	for src, want := range map[string]string{
		`{{range 1000000000}}{{end}}`:                                  "range only over a field",
		`{{range .Payload.a}}{{range .b}}{{end}}{{end}}`:               "{{range}} inside {{range}}",
		`{{define "x"}}{{template "x" .}}{{end}}{{template "x" .}}`:    "not supported",
		strings.Repeat(`{{range .Payload.items}}{{end}}`, maxRanges+1): "more than 10",
	} {
		_, err := parseTemplate("contentTemplate", src)
		require.ErrorContains(t, err, want, src)
	}
}

// FuzzRender checks that no payload, display name or template output
// gives a message that breaks a Discord limit.
func FuzzRender(f *testing.F) {
	f.Add("Incident Created", `{"title":"DB down","n":1,"tags":["a","b"],"severity":"critical"}`, "")
	f.Add(strings.Repeat("é", 300), `{"summary":"`+strings.Repeat("x", 5000)+`","k":"`+strings.Repeat("v", 2000)+`"}`, "{{.Payload.summary}}")
	f.Add("", `[1,2,{"a":null}]`, "{{.PayloadJSON}}")
	f.Add(" ", `"\ud83d"`, "  ")
	f.Add("\xff\xfe", "{\"\xff\":\"\xfe\",\" \":\"x\"}", "{{.Payload.a.b}}\xff")
	f.Fuzz(func(t *testing.T, name, payload, src string) {
		tmpl, err := parseTemplate("contentTemplate", src)
		if err != nil {
			tmpl = nil
		}
		msg := render(testRequest(name, payload), &Config{}, tmpl)
		checkLimits(t, msg)
		if _, err := json.Marshal(msg); err != nil {
			t.Fatal(err)
		}
	})
}

func TestMessageID(t *testing.T) {
	for body, want := range map[string]string{
		`{"id":"1","author":{"id":"2"}}`:                            "1",
		`{"author":{"id":"2"},"embeds":[{"id":"3"}],"id":"4"}`:      "4",
		`{"type":0,"id":"5","content":"` + strings.Repeat("x", 100): "5", // cut body
		`{"content":"` + strings.Repeat("x", 100):                   "",
		`[]`:       "",
		``:         "",
		`{"id":7}`: "",
		`not json`: "",
	} {
		require.Equal(t, want, messageID([]byte(body)), body)
	}
}

func BenchmarkRender(b *testing.B) {
	req := testRequest("Incident Created", `{"title":"Database down","summary":"Primary DB unreachable","severity":"critical","systemIds":["api","db"],"owner":{"email":"oncall@example.com"},"count":3,"acknowledged":false}`)
	b.ReportAllocs()
	for b.Loop() {
		_ = render(req, &Config{}, nil)
	}
}
