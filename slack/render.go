package slack

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/template"
	"time"
	"unicode"

	"github.com/outhook/outhook"
	shared "github.com/outhook/outhook/internal/render"
)

// Limits of a Slack message, from the Block Kit reference
// (https://api.slack.com/reference/block-kit/blocks) and chat.postMessage
// (https://api.slack.com/methods/chat.postMessage#truncating: text longer
// than 40,000 characters is truncated). Lengths are in characters (runes).
// A message that breaks one is refused with 400 invalid_blocks or
// invalid_payload, so the deliverer cuts text to fit, ending it with "…".
const (
	MaxHeaderText  = 150   // text of a header block
	MaxSectionText = 3000  // text of a section block
	MaxFields      = 10    // fields of a section block
	MaxFieldText   = 2000  // text of one field
	MaxBlocks      = 50    // blocks in a message
	MaxContext     = 10    // elements of a context block
	MaxText        = 40000 // the message's top-level text
)

// message is an incoming webhook message
// (https://api.slack.com/messaging/webhooks#advanced_message_formatting):
// text is the notification and fallback text, blocks the layout.
type message struct {
	Text   string  `json:"text"`
	Blocks []block `json:"blocks,omitempty"`
}

// block is a header, section or context block.
type block struct {
	Type     string       `json:"type"`
	Text     *textObject  `json:"text,omitempty"`
	Fields   []textObject `json:"fields,omitempty"`
	Elements []textObject `json:"elements,omitempty"`
}

// textObject is a Block Kit text object.
type textObject struct {
	Type  string `json:"type"` // "plain_text" or "mrkdwn"
	Text  string `json:"text"`
	Emoji bool   `json:"emoji,omitempty"`
}

func mrkdwn(s string) textObject { return textObject{Type: "mrkdwn", Text: s} }

// Keys shown first among a payload's fields, in this order; the others
// follow sorted.
var leadingKeys = []string{"title", "summary", "message", "description", "name", "severity", "priority", "status", "state", "id"}

// Keys whose value, the first one that is a non-empty string, completes the
// notification text.
var summaryKeys = []string{"summary", "title", "message", "description"}

// render builds the message for req:
//
//   - a header with the event's display name (its ID when it has none);
//   - with a template that renders something, a section with its output as
//     mrkdwn; otherwise a section with up to MaxFields fields "*key*\nvalue"
//     made of the payload's top-level scalars (arrays of scalars joined with
//     ", "; objects and nulls left out), or the payload as a code block when
//     it is not an object;
//   - a context line: the event ID, the time it occurred (shown in the
//     reader's time zone), how many fields were left out, and why the
//     template was not used if it failed.
//
// text is the template's output, or "<display name>: <summary>".
func render(req *outhook.DeliveryRequest, tmpl *template.Template) *message {
	doc := decodePayload(req.Payload)
	title := strings.ToValidUTF8(req.Event.DisplayName, "\uFFFD")
	if strings.TrimSpace(title) == "" {
		title = req.EventID
	}
	if strings.TrimSpace(title) == "" {
		title = "Event"
	}
	msg := &message{Blocks: []block{{
		Type: "header",
		Text: &textObject{Type: "plain_text", Text: truncate(title, MaxHeaderText), Emoji: true},
	}}}

	var custom, note string
	if tmpl != nil {
		// The template gets a payload of its own: execute adds to it.
		out, err := execute(tmpl, newTemplateData(req, decodePayload(req.Payload)))
		switch {
		case err != nil:
			note = "textTemplate failed, so the default layout is shown: " + err.Error()
		case strings.TrimSpace(out) != "":
			custom = out
		}
	}

	omitted := 0
	if custom != "" {
		msg.Text = truncateMrkdwn(custom, MaxText)
		msg.Blocks = append(msg.Blocks, block{Type: "section", Text: ptr(mrkdwn(truncateMrkdwn(custom, MaxSectionText)))})
	} else {
		msg.Text = defaultText(title, doc)
		var sec *block
		sec, omitted = payloadSection(doc)
		if sec != nil {
			msg.Blocks = append(msg.Blocks, *sec)
		}
	}

	ctx := block{Type: "context", Elements: []textObject{mrkdwn("`" + escape(truncate(req.EventID, 200)) + "`")}}
	if t := req.OccurredAt; !t.IsZero() {
		// Slack's date formatting
		// (https://api.slack.com/reference/surfaces/formatting#date-formatting):
		// shown in the reader's time zone, with the fallback after "|".
		ctx.Elements = append(ctx.Elements, mrkdwn(fmt.Sprintf("<!date^%d^{date_short_pretty} at {time_secs}|%s>",
			t.Unix(), t.UTC().Format(time.RFC3339))))
	}
	if omitted > 0 {
		ctx.Elements = append(ctx.Elements, mrkdwn(fmt.Sprintf("%d more %s not shown", omitted, plural(omitted, "field", "fields"))))
	}
	if note != "" {
		ctx.Elements = append(ctx.Elements, mrkdwn(truncateMrkdwn(escape(note), 500)))
	}
	msg.Blocks = append(msg.Blocks, ctx)
	return msg
}

func ptr[T any](v T) *T { return &v }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// defaultText is "<title>: <summary>", or the title alone when the payload
// has no summary.
func defaultText(title string, doc any) string {
	text := escape(title)
	if obj, ok := doc.(map[string]any); ok {
		if _, s, ok := shared.FirstField(obj, summaryKeys, false); ok {
			text += ": " + escape(s)
		}
	}
	return truncateMrkdwn(text, MaxText)
}

// payloadSection shows the payload: its fields when it is an object (and
// how many did not fit), a code block otherwise, nothing when it is empty.
func payloadSection(doc any) (*block, int) {
	switch doc := doc.(type) {
	case nil:
		return nil, 0
	case map[string]any:
		fields := payloadFields(doc)
		if len(fields) == 0 {
			return nil, 0
		}
		omitted := max(len(fields)-MaxFields, 0)
		fields = fields[:min(len(fields), MaxFields)]
		sec := &block{Type: "section"}
		for _, f := range fields {
			text := "*" + escape(truncate(f.Key, 100)) + "*\n" + escape(f.Value)
			sec.Fields = append(sec.Fields, mrkdwn(truncateMrkdwn(text, MaxFieldText)))
		}
		return sec, omitted
	default:
		code := truncateMrkdwn(escape(marshal(doc)), MaxSectionText-len("``````"))
		return &block{Type: "section", Text: ptr(mrkdwn("```" + code + "```"))}, 0
	}
}

// field is one payload field as text.
type field = shared.Field

// payloadFields returns the top-level fields of obj that read as text, in
// display order: leadingKeys first, then the others sorted. Strings, numbers
// and booleans are shown as they are, arrays of them joined with ", ";
// objects, arrays holding objects or arrays, nulls and empty values are
// left out.
func payloadFields(obj map[string]any) []field { return shared.Fields(obj, leadingKeys) }

// marshal encodes v as JSON without escaping <, > and & (Slack reads
// JSON, not HTML).
func marshal(v any) string {
	b, err := shared.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// textOf returns a template value as text, for the escape function.
func textOf(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	case map[string]any, []any:
		return marshal(v)
	}
	return fmt.Sprint(v)
}

// decodePayload decodes a payload, numbers as json.Number. An empty or null
// payload gives nil; one that is not JSON gives its text.
func decodePayload(raw json.RawMessage) any { return shared.DecodeOrText(raw) }

// escape replaces the three characters Slack reads as markup in text
// (https://api.slack.com/reference/surfaces/formatting#escaping), so that a
// payload's "<!channel>" or "<https://evil|bank>" is shown as typed.
var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func escape(s string) string { return escaper.Replace(s) }

// truncate cuts s to at most n characters (runes), ending it with "…" when
// it cuts.
func truncate(s string, n int) string { return shared.Truncate(s, n) }

// truncateMrkdwn is truncate for escaped mrkdwn: it does not leave half an
// entity ("&am…") behind.
func truncateMrkdwn(s string, n int) string {
	cut, ok := shared.CutRunes(s, n)
	if !ok {
		return s
	}
	if i := strings.LastIndexByte(cut, '&'); i >= 0 && len(cut)-i < len("&amp;") && !strings.Contains(cut[i:], ";") {
		cut = strings.TrimRightFunc(cut[:i], unicode.IsSpace)
	}
	return cut + shared.Ellipsis
}
