package pagerduty

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/ident"
	shared "github.com/outhook/outhook/internal/render"
)

// event is the body of POST /v2/enqueue
// (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/).
// Acknowledge and resolve events carry only routing_key, event_action and
// dedup_key.
type event struct {
	RoutingKey  string        `json:"routing_key"`
	EventAction string        `json:"event_action"`
	DedupKey    string        `json:"dedup_key,omitempty"`
	Payload     *eventPayload `json:"payload,omitempty"`
}

type eventPayload struct {
	Summary       string          `json:"summary"`
	Source        string          `json:"source"`
	Severity      string          `json:"severity"`
	Timestamp     string          `json:"timestamp,omitempty"`
	Component     string          `json:"component,omitempty"`
	Group         string          `json:"group,omitempty"`
	Class         string          `json:"class,omitempty"`
	CustomDetails json.RawMessage `json:"custom_details,omitempty"`
}

// event renders the event for req.
func (p *plan) event(req *outhook.DeliveryRequest) *event {
	doc := shared.DecodeObject(req.Payload, false)
	ev := &event{
		RoutingKey:  p.cfg.RoutingKey,
		EventAction: p.action(req.EventID),
		DedupKey:    p.dedupKey(doc, req.DeliveryID),
	}
	if ev.EventAction != ActionTrigger {
		return ev
	}
	ev.Payload = &eventPayload{
		Summary:       p.summaryFor(req, doc),
		Source:        p.source,
		Severity:      p.severityFor(doc),
		Component:     p.cfg.Component,
		Group:         p.cfg.Group,
		Class:         p.cfg.Class,
		CustomDetails: customDetails(req.Payload),
	}
	if !req.OccurredAt.IsZero() {
		ev.Payload.Timestamp = req.OccurredAt.UTC().Format(time.RFC3339Nano)
	}
	return ev
}

// action is the event action of the first rule that matches eventID, or
// trigger.
func (p *plan) action(eventID string) string {
	for _, a := range p.cfg.Actions {
		if ident.Match(a.Events, eventID) {
			return a.Action
		}
	}
	return ActionTrigger
}

// dedupKey is the value of the configured payload field, or deliveryID.
// A key longer than MaxDedupKey keeps its start and ends with a hash of the
// whole, so that two long keys that share a prefix stay apart.
func (p *plan) dedupKey(doc map[string]any, deliveryID string) string {
	key := deliveryID
	if p.cfg.DedupKeyField != "" {
		if v, ok := lookupScalar(doc, p.cfg.DedupKeyField); ok && strings.TrimSpace(v) != "" {
			key = v
		}
	}
	if utf8.RuneCountInString(key) <= MaxDedupKey {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	suffix := "-" + hex.EncodeToString(sum[:])
	return shared.FirstRunes(key, MaxDedupKey-len(suffix)) + suffix
}

// severityFor maps the severity field, falling back to the static severity.
func (p *plan) severityFor(doc map[string]any) string {
	if p.cfg.SeverityField == "" {
		return p.severity
	}
	v, ok := lookupScalar(doc, p.cfg.SeverityField)
	if !ok {
		return p.severity
	}
	k := strings.ToLower(strings.TrimSpace(v))
	if s, ok := p.severityMap[k]; ok {
		return s
	}
	switch k {
	case SeverityCritical, SeverityError, SeverityWarning, SeverityInfo:
		return k
	}
	return p.severity
}

// summaryFor renders the summary template, or the default summary when
// there is none or it renders nothing, and cuts it to MaxSummary characters.
func (p *plan) summaryFor(req *outhook.DeliveryRequest, doc map[string]any) string {
	s := ""
	if p.summary != nil {
		s = strings.TrimSpace(render(p.summary, newTemplateData(req, doc)))
	}
	if s == "" {
		s = defaultSummary(req, doc)
	}
	return shared.Shorten(s, MaxSummary)
}

// defaultSummary is "<display name or event ID>: <title>", the title being
// the payload's first non-empty title, summary, name or message field.
func defaultSummary(req *outhook.DeliveryRequest, doc map[string]any) string {
	name := req.Event.DisplayName
	if name == "" {
		name = req.EventID
	}
	if _, v, ok := shared.FirstField(doc, []string{"title", "summary", "name", "message"}, true); ok {
		v = strings.TrimSpace(v)
		if name == "" {
			return v
		}
		return name + ": " + v
	}
	if name == "" {
		name = "outhook event"
	}
	return name
}

// customDetails is the payload as custom_details: the object itself, or
// {"payload": value} for a payload that is not an object.
func customDetails(raw json.RawMessage) json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) || !json.Valid(raw) {
		return nil
	}
	if raw[0] == '{' {
		return raw
	}
	b, err := json.Marshal(map[string]json.RawMessage{"payload": raw})
	if err != nil {
		return nil
	}
	return b
}

// encodeEvent encodes ev, shrinking custom_details when the event would
// exceed MaxEventBytes: first to the payload's top-level scalar fields,
// then to a note alone.
func encodeEvent(ev *event) ([]byte, error) {
	body, err := shared.Marshal(ev)
	if err != nil || len(body) <= MaxEventBytes || ev.Payload == nil {
		return body, err
	}
	const note = "custom_details exceeded PagerDuty's 512 KB event limit and was cut to the payload's top-level scalar fields; see the delivery in outhook for the whole payload"
	details := map[string]any{}
	var doc map[string]json.RawMessage
	if json.Unmarshal(ev.Payload.CustomDetails, &doc) == nil {
		for k, v := range doc {
			if len(v) > 0 && v[0] != '{' && v[0] != '[' {
				details[k] = v
			}
		}
	}
	details["outhook_truncated"] = note
	ev.Payload.CustomDetails, err = shared.Marshal(details)
	if err != nil {
		return nil, err
	}
	if body, err = shared.Marshal(ev); err != nil || len(body) <= MaxEventBytes {
		return body, err
	}
	ev.Payload.CustomDetails, _ = shared.Marshal(map[string]string{"outhook_truncated": note})
	return shared.Marshal(ev)
}

// lookupScalar follows a dot path through nested objects and returns the
// scalar at its end as text: a string as is, a number as written, a boolean
// as true or false. Objects, arrays, null and missing fields give false.
func lookupScalar(doc map[string]any, path string) (string, bool) {
	v, ok := shared.Lookup(doc, path)
	if !ok {
		return "", false
	}
	return shared.Scalar(v)
}
