package jira

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/outhook/outhook"
)

// FuzzTemplates runs arbitrary summary and description templates on
// arbitrary payloads, as a Jira subscription would (issue 7, item 3). A
// template either fails to parse with an error naming its field, or runs:
// then an execution error names the field, and a result fits Jira — a
// one-line summary within MaxSummary, a description within the ADF bounds
// — as valid UTF-8. Nothing panics.
func FuzzTemplates(f *testing.F) {
	f.Add(DefaultSummaryTemplate, "", `{"title":"DB down","summary":"primary"}`)
	f.Add("{{.Payload.title}}", "{{range $k, $v := .Payload}}{{$k}}: {{$v}}\n{{end}}", `{"title":"a","b":[1,2,{"c":null}]}`)
	f.Add("{{printf \"%s\" .Payload.x.y.z}}", "{{.PayloadJSON}}", `{"x":null}`)
	f.Add("{{.Nope}}", "{{template \"x\"}}", `[]`)
	f.Add("{{define \"x\"}}{{.}}{{end}}{{template \"x\" .EventID}}", "{{with .Payload.t}}{{.}}{{else}}none{{end}}", `"text"`)
	f.Add("{{range .Payload.list}}{{range .}}{{.}}{{end}}{{end}}", "{{len .Payload.list}}", `{"list":[["a","b"],["c"]]}`)
	f.Add("\xff{{.EventID}}\x00", "\r\n\r\n{{.Payload}}", "{\"\xff\":\"\xfe\"}")
	f.Fuzz(func(t *testing.T, summarySrc, descriptionSrc, payload string) {
		if len(summarySrc)+len(descriptionSrc) > 4<<10 || len(payload) > 16<<10 {
			return
		}
		d, err := New(&Options{AllowAnyHost: true})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := json.Marshal(map[string]any{"baseUrl": "https://example.atlassian.net", "email": "a@example.com", "apiToken": "tok-0123456789",
			"projectKey": "OPS", "summaryTemplate": summarySrc, "descriptionTemplate": descriptionSrc})
		if err != nil {
			t.Fatal(err)
		}
		s, err := d.config(raw)
		if err != nil {
			msg := err.Error()
			if !strings.Contains(msg, "Template") && !strings.Contains(msg, "template") && !strings.Contains(msg, "summary") && !strings.Contains(msg, "description") {
				t.Fatalf("a config error that names no template field: %v", err)
			}
			if strings.Contains(msg, "tok-0123456789") {
				t.Fatalf("the error quotes the API token: %v", err)
			}
			return
		}
		req := &outhook.DeliveryRequest{DeliveryID: "dlv_1", MessageID: "msg_1", EventID: "a.b", Event: outhook.Event{ID: "a.b", DisplayName: "A B"},
			Payload: json.RawMessage(payload), OccurredAt: time.Unix(0, 0)}
		if !json.Valid(req.Payload) {
			req.Payload = json.RawMessage(`null`)
		}
		fields, err := s.issueFields(req)
		if err != nil {
			if !strings.Contains(err.Error(), "summaryTemplate") && !strings.Contains(err.Error(), "descriptionTemplate") {
				t.Fatalf("an execution error that names no template field: %v", err)
			}
			return
		}
		if fields.summary == "" || strings.ContainsAny(fields.summary, "\r\n") || !utf8.ValidString(fields.summary) || utf16Len(fields.summary) > MaxSummary {
			t.Fatalf("bad summary %q", fields.summary)
		}
		if doc := fields.description; doc != nil {
			if len(doc.Content) > MaxDescriptionParagraphs {
				t.Fatalf("%d paragraphs", len(doc.Content))
			}
			total := 0
			for _, p := range doc.Content {
				for _, n := range p.Content {
					if !utf8.ValidString(n.Text) || strings.TrimSpace(n.Text) == "" {
						t.Fatalf("bad text node %q", n.Text)
					}
					total += utf16Len(n.Text)
				}
			}
			if total > MaxDescription {
				t.Fatalf("description of %d characters", total)
			}
		}
	})
}
