package teams

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/outhook/outhook"
	shared "github.com/outhook/outhook/internal/render"
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
	doc := shared.DecodeObject(req.Payload, true)
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
	c.title = shared.Shorten(c.title, maxTitle)
	if p.text != nil {
		c.text = shared.Shorten(strings.TrimSpace(render(p.text, data)), maxText)
	}
	c.facts = payloadFacts(req.Payload)
	if len(c.facts) > maxPayloadFacts {
		c.omitted = len(c.facts) - maxPayloadFacts
		c.facts = c.facts[:maxPayloadFacts]
	}
	c.trailer = []fact{{Title: "Event", Value: shared.Shorten(req.EventID, maxFactValue)}}
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
	return shared.Marshal(message{
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
		value, ok := shared.Scalar(v)
		if arr, isArr := v.([]any); isArr {
			value, ok = shared.JoinScalars(arr, false)
		}
		if !ok || value == "" || key == "" {
			continue
		}
		facts = append(facts, fact{Title: shared.Shorten(key, maxFactTitle), Value: shared.Shorten(value, maxFactValue)})
	}
	return facts
}
