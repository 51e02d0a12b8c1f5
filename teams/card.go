package teams

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/outhook/outhook"
)

// The message envelope of an Adaptive Card posted to a Workflows webhook
// (https://learn.microsoft.com/en-us/connectors/teams/ and
// https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using).
type message struct {
	Type        string       `json:"type"` // "message"
	Attachments []attachment `json:"attachments"`
}

type attachment struct {
	ContentType string  `json:"contentType"` // "application/vnd.microsoft.card.adaptive"
	ContentURL  *string `json:"contentUrl"`  // always null
	Content     card    `json:"content"`
}

// card is an Adaptive Card 1.4 (https://adaptivecards.io/explorer/AdaptiveCard.html).
type card struct {
	Schema  string `json:"$schema"`
	Type    string `json:"type"` // "AdaptiveCard"
	Version string `json:"version"`
	Body    []any  `json:"body"`
}

// textBlock is https://adaptivecards.io/explorer/TextBlock.html.
type textBlock struct {
	Type   string `json:"type"` // "TextBlock"
	Text   string `json:"text"`
	Size   string `json:"size,omitempty"`
	Weight string `json:"weight,omitempty"`
	Wrap   bool   `json:"wrap"`
}

// factSet is https://adaptivecards.io/explorer/FactSet.html.
type factSet struct {
	Type  string `json:"type"` // "FactSet"
	Facts []fact `json:"facts"`
}

type fact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

// Adaptive Card constants.
const (
	cardContentType = "application/vnd.microsoft.card.adaptive"
	cardSchema      = "http://adaptivecards.io/schemas/adaptive-card.json"
	cardVersion     = "1.4"
)

// content is what a card shows, before it is fitted to MaxBodyBytes.
type content struct {
	title   string
	text    string
	facts   []fact // from the payload
	omitted int    // payload facts left out
	trailer []fact // Event and Time, always kept
}

// message renders req as the JSON body of a message, at most MaxBodyBytes
// long.
func (p *plan) message(req *outhook.DeliveryRequest) ([]byte, error) {
	doc := decodePayload(req.Payload)
	data := newTemplateData(req, doc)
	c := content{}
	if p.title != nil {
		c.title = strings.TrimSpace(render(p.title, data))
	}
	if c.title == "" {
		c.title = req.Event.DisplayName
	}
	if c.title == "" {
		c.title = req.EventID
	}
	c.title = cutRunes(c.title, maxTitle)
	if p.text != nil {
		c.text = cutRunes(strings.TrimSpace(render(p.text, data)), maxText)
	}
	c.facts = payloadFacts(req.Payload)
	if len(c.facts) > maxPayloadFacts {
		c.omitted = len(c.facts) - maxPayloadFacts
		c.facts = c.facts[:maxPayloadFacts]
	}
	c.trailer = []fact{{Title: "Event", Value: cutRunes(req.EventID, maxFactValue)}}
	if !req.OccurredAt.IsZero() {
		c.trailer = append(c.trailer, fact{Title: "Time", Value: req.OccurredAt.UTC().Format(time.RFC3339)})
	}
	return fit(c)
}

// fit encodes c, dropping payload facts from the end and then shortening
// the text and the title until the body is at most MaxBodyBytes.
func fit(c content) ([]byte, error) {
	body, err := c.encode()
	if err != nil || len(body) <= MaxBodyBytes {
		return body, err
	}
	// The most payload facts that fit, by bisection: encode(k) grows with k.
	lo, hi := 0, len(c.facts)-1 // hi: the most that may fit
	for lo < hi {
		mid := (lo + hi + 1) / 2
		b, err := c.keep(mid).encode()
		if err != nil {
			return nil, err
		}
		if len(b) <= MaxBodyBytes {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	if len(c.facts) > 0 {
		c = c.keep(lo)
	}
	if body, err = c.encode(); err != nil || len(body) <= MaxBodyBytes {
		return body, err
	}
	// Then the text, and the title if need be, each to the most runes
	// that fit (by bisection, since JSON escaping makes a rune cost one
	// to six bytes).
	for _, f := range []struct {
		s        *string
		fallback string // when not one rune of it fits
	}{{&c.text, ""}, {&c.title, "…"}} {
		runes := []rune(*f.s)
		cut := func(n int) string {
			if n == 0 {
				return f.fallback
			}
			if n == len(runes) {
				return string(runes)
			}
			return string(runes[:n]) + "…"
		}
		var encErr error
		n := sort.Search(len(runes)+1, func(n int) bool {
			*f.s = cut(n)
			b, err := c.encode()
			if err != nil {
				encErr = err
			}
			return len(b) > MaxBodyBytes
		}) - 1 // the most runes that fit; -1 if none
		if encErr != nil {
			return nil, encErr
		}
		*f.s = cut(max(n, 0))
		if body, err = c.encode(); err != nil || len(body) <= MaxBodyBytes {
			return body, err
		}
	}
	return nil, fmt.Errorf("card is %d bytes with nothing left to cut (limit %d)", len(body), MaxBodyBytes)
}

// keep returns c with only its first k payload facts.
func (c content) keep(k int) content {
	c.omitted += len(c.facts) - k
	c.facts = c.facts[:k]
	return c
}

// encode renders the message body.
func (c content) encode() ([]byte, error) {
	body := []any{textBlock{Type: "TextBlock", Text: c.title, Size: "Large", Weight: "Bolder", Wrap: true}}
	if c.text != "" {
		body = append(body, textBlock{Type: "TextBlock", Text: c.text, Wrap: true})
	}
	facts := make([]fact, 0, len(c.facts)+1+len(c.trailer))
	facts = append(facts, c.facts...)
	if c.omitted > 0 {
		word := "fields"
		if c.omitted == 1 {
			word = "field"
		}
		facts = append(facts, fact{Title: "…", Value: fmt.Sprintf("%d more %s not shown", c.omitted, word)})
	}
	facts = append(facts, c.trailer...)
	body = append(body, factSet{Type: "FactSet", Facts: facts})
	return marshal(message{
		Type: "message",
		Attachments: []attachment{{
			ContentType: cardContentType,
			Content:     card{Schema: cardSchema, Type: "AdaptiveCard", Version: cardVersion, Body: body},
		}},
	})
}

// payloadFacts lists the top-level scalar fields of a payload object, in
// the payload's order: strings as they are, numbers as written, booleans as
// true or false, arrays of scalars joined with ", ". Objects, nulls, empty
// values and arrays holding anything but scalars are left out.
func payloadFacts(raw json.RawMessage) []fact {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	var facts []fact
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return facts
		}
		key, _ := tok.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return facts
		}
		value, ok := scalarText(v)
		if arr, isArr := v.([]any); isArr {
			value, ok = joinScalars(arr)
		}
		if !ok || value == "" || key == "" {
			continue
		}
		facts = append(facts, fact{Title: cutRunes(key, maxFactTitle), Value: cutRunes(value, maxFactValue)})
	}
	return facts
}

// scalarText is the text of a JSON scalar decoded with UseNumber.
func scalarText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		if v {
			return "true", true
		}
		return "false", true
	}
	return "", false
}

// joinScalars joins an array of scalars with ", "; false if it holds
// anything else.
func joinScalars(arr []any) (string, bool) {
	parts := make([]string, 0, len(arr))
	for _, e := range arr {
		s, ok := scalarText(e)
		if !ok {
			return "", false
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", "), true
}

// decodePayload decodes a JSON object payload with numbers kept as
// json.Number; any other payload gives nil.
func decodePayload(raw json.RawMessage) map[string]any {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil
	}
	return doc
}

// marshal encodes v as compact JSON without escaping <, > and &.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// cutRunes returns s if it has at most n runes, and otherwise its first
// n-1 runes followed by "…".
func cutRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return truncateRunes(s, n-1) + "…"
}

// truncateRunes returns the first n runes of s.
func truncateRunes(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}
