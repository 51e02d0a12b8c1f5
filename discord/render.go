package discord

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/outhook/outhook"
	shared "github.com/outhook/outhook/internal/render"
)

// Limits of a Discord message
// (https://discord.com/developers/docs/resources/message#create-message-jsonform-params
// and https://discord.com/developers/docs/resources/message#embed-object-embed-limits).
// Lengths are in characters (runes). Discord refuses a message that breaks
// one with 400 Invalid Form Body, so the deliverer cuts text to fit, ending
// it with "…", and leaves out fields that do not fit.
const (
	MaxContent     = 2000 // content
	MaxEmbeds      = 10   // embeds in a message (one is sent)
	MaxTitle       = 256  // embed title
	MaxDescription = 4096 // embed description
	MaxFields      = 25   // embed fields
	MaxFieldName   = 256  // field name
	MaxFieldValue  = 1024 // field value
	MaxFooterText  = 2048 // footer text
	// MaxEmbedTotal bounds the characters of all embeds together: titles,
	// descriptions, field names and values, footer texts and author names.
	MaxEmbedTotal = 6000
	MaxUsername   = 80 // username
)

// message is the JSON body of an execute-webhook request
// (https://discord.com/developers/docs/resources/webhook#execute-webhook).
type message struct {
	Content         string          `json:"content,omitempty"`
	Username        string          `json:"username,omitempty"`
	AvatarURL       string          `json:"avatar_url,omitempty"`
	AllowedMentions allowedMentions `json:"allowed_mentions"`
	Embeds          []embed         `json:"embeds"`
}

// allowedMentions says which mentions in content notify people; an empty
// parse list means none do
// (https://discord.com/developers/docs/resources/message#allowed-mentions-object).
type allowedMentions struct {
	Parse []string `json:"parse"`
}

// embed is a rich embed
// (https://discord.com/developers/docs/resources/message#embed-object).
type embed struct {
	Title       string       `json:"title,omitempty"`
	Description string       `json:"description,omitempty"`
	Color       int          `json:"color,omitempty"`
	Fields      []embedField `json:"fields,omitempty"`
	Footer      *embedFooter `json:"footer,omitempty"`
	Timestamp   string       `json:"timestamp,omitempty"` // ISO 8601
}

type embedField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline"`
}

type embedFooter struct {
	Text string `json:"text"`
}

// Keys shown first among a payload's fields, in this order; the others
// follow sorted.
var leadingKeys = []string{"title", "summary", "message", "description", "name", "severity", "priority", "status", "state", "id"}

// Keys whose value, the first one that is a non-empty string, is the embed's
// description (and is not repeated as a field).
var summaryKeys = []string{"summary", "message", "description", "title"}

// Embed colours by the payload's severity field, compared
// case-insensitively.
var severityColors = map[string]int{
	"critical": 0xD92D20, "fatal": 0xD92D20, "error": 0xD92D20, "high": 0xD92D20, "major": 0xD92D20,
	"warning": 0xF79009, "warn": 0xF79009, "medium": 0xF79009, "minor": 0xF79009,
	"info": 0x2E90FA, "low": 0x2E90FA, "notice": 0x2E90FA,
}

// inlineMax is the longest field value shown inline (side by side).
const inlineMax = 40

// render builds the message for req:
//
//   - content: the template's output, if there is a template and it renders
//     something; none otherwise;
//   - one embed: title, the event's display name (its ID when it has none);
//     description, the payload's first non-empty summary, message,
//     description or title string; fields, the payload's other top-level
//     scalars (arrays of scalars joined with ", "; objects and nulls left
//     out); a colour from its severity; footer, the event ID, how many
//     fields did not fit, and why the template was not used if it failed;
//     timestamp, when the event occurred;
//   - allowed_mentions with the configured types, none by default.
func render(req *outhook.DeliveryRequest, cfg *Config, tmpl *template.Template) *message {
	msg := &message{
		Username:        cfg.Username,
		AvatarURL:       cfg.AvatarURL,
		AllowedMentions: allowedMentions{Parse: append([]string{}, cfg.Mentions...)},
	}
	var note string
	if tmpl != nil {
		// The template gets a payload of its own: execute adds to it.
		out, err := execute(tmpl, newTemplateData(req, decodePayload(req.Payload)))
		switch {
		case err != nil:
			note = "contentTemplate failed: " + err.Error()
		case strings.TrimSpace(out) != "":
			msg.Content = truncate(out, MaxContent)
		}
	}
	msg.Embeds = []embed{buildEmbed(req, decodePayload(req.Payload), note)}
	return msg
}

// buildEmbed builds the embed within the limits. The title and the footer
// come first, then the description, then as many fields as fit in what is
// left of MaxEmbedTotal; the last field that fits only in part is cut.
func buildEmbed(req *outhook.DeliveryRequest, doc any, note string) embed {
	title := strings.ToValidUTF8(req.Event.DisplayName, "\uFFFD")
	if strings.TrimSpace(title) == "" {
		title = req.EventID
	}
	if strings.TrimSpace(title) == "" {
		title = "Event"
	}
	e := embed{Title: truncate(title, MaxTitle)}
	if t := req.OccurredAt; !t.IsZero() {
		e.Timestamp = t.UTC().Format(time.RFC3339Nano)
	}

	footer := truncate(req.EventID, 200)
	if note != "" {
		footer += " · " + truncate(note, 500)
	}
	// Room for " · 25 more fields not shown", added once the fields are
	// known.
	const omittedReserve = len(" · 99 more fields not shown")
	budget := MaxEmbedTotal - runes(e.Title) - runes(footer) - omittedReserve

	var fields []field
	descKey := ""
	switch doc := doc.(type) {
	case map[string]any:
		if k, s, ok := shared.FirstField(doc, summaryKeys, false); ok {
			descKey = k
			e.Description = truncate(s, min(MaxDescription, budget))
		}
		if sev, ok := doc["severity"].(string); ok {
			e.Color = severityColors[strings.ToLower(strings.TrimSpace(sev))]
		}
		for _, f := range payloadFields(doc) {
			if f.Key != descKey {
				fields = append(fields, f)
			}
		}
	case nil:
	default:
		// Not an object: the payload as a code block.
		code := truncate(marshal(doc), min(MaxDescription, budget)-len("``````"))
		e.Description = "```" + code + "```"
	}
	budget -= runes(e.Description)

	shown := 0
	for _, f := range fields {
		if shown == MaxFields {
			break
		}
		name := truncate(f.Key, MaxFieldName)
		value := truncate(f.Value, MaxFieldValue)
		need := runes(name) + runes(value)
		if need > budget {
			// Cut the value to what is left, if that leaves something
			// worth reading; stop either way.
			if room := budget - runes(name); room >= 20 {
				value = truncate(value, room)
				e.Fields = append(e.Fields, embedField{Name: name, Value: value})
				budget -= runes(name) + runes(value)
				shown++
			}
			break
		}
		e.Fields = append(e.Fields, embedField{
			Name: name, Value: value,
			Inline: runes(value) <= inlineMax && !strings.Contains(value, "\n"),
		})
		budget -= need
		shown++
	}
	if omitted := len(fields) - shown; omitted > 0 {
		footer += fmt.Sprintf(" · %d more %s not shown", omitted, plural(omitted, "field", "fields"))
	}
	e.Footer = &embedFooter{Text: truncate(footer, MaxFooterText)}
	return e
}

func runes(s string) int { return utf8.RuneCountInString(s) }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// field is one payload field as text.
type field = shared.Field

// payloadFields returns the top-level fields of obj that read as text, in
// display order: leadingKeys first, then the others sorted. Strings, numbers
// and booleans are shown as they are, arrays of them joined with ", ";
// objects, arrays holding objects or arrays, nulls and empty values are
// left out (Discord refuses an empty field name or value).
func payloadFields(obj map[string]any) []field {
	fields := shared.Fields(obj, leadingKeys)
	return slices.DeleteFunc(fields, func(f field) bool { return strings.TrimSpace(f.Key) == "" })
}

// marshal encodes v as JSON without escaping <, > and &.
func marshal(v any) string {
	b, err := shared.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// decodePayload decodes a payload, numbers as json.Number. An empty or null
// payload gives nil; one that is not JSON gives its text.
func decodePayload(raw json.RawMessage) any { return shared.DecodeOrText(raw) }

// truncate cuts s to at most n characters (runes), ending it with "…" when
// it cuts.
func truncate(s string, n int) string { return shared.Truncate(s, n) }
