package jira

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/outhook/outhook"
)

// IssueLabel returns the label that ties an issue to the delivery that
// creates it: "outhook-" followed by the delivery ID. Delivery IDs are made
// of [A-Za-z0-9_]; an ID with other characters, or one that would make the
// label longer than MaxLabel, gives "outhook-sha256-" and the hex SHA-256
// of the ID instead, which no plain ID can spell. Search for it in Jira
// (labels = "outhook-dlv_...") to find the issue of a delivery, or to spot
// duplicates.
func IssueLabel(deliveryID string) string {
	plain := deliveryID != "" && len(LabelPrefix)+len(deliveryID) <= MaxLabel
	for i := 0; plain && i < len(deliveryID); i++ {
		c := deliveryID[i]
		plain = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_'
	}
	if plain {
		return LabelPrefix + deliveryID
	}
	sum := sha256.Sum256([]byte(deliveryID))
	return LabelPrefix + "sha256-" + hex.EncodeToString(sum[:])
}

// jqlString quotes s as a JQL string literal.
func jqlString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// searchJQL is the query that finds the issue carrying label in project.
func searchJQL(project, label string) string {
	return "project = " + jqlString(project) + " AND labels = " + jqlString(label)
}

// issueFields is what a delivery puts in its issue.
type issueFields struct {
	summary     string
	description *adfNode // nil: no description
	label       string   // IssueLabel of the delivery
	labels      []string // the subscription's labels, then label
}

// createRequest is the body of POST /rest/api/3/issue.
type createRequest struct {
	Fields wireFields `json:"fields"`
}

type wireFields struct {
	Project     keyRef   `json:"project"`
	Summary     string   `json:"summary"`
	IssueType   nameRef  `json:"issuetype"`
	Description *adfNode `json:"description,omitempty"`
	Labels      []string `json:"labels"`
}

type keyRef struct {
	Key string `json:"key"`
}

type nameRef struct {
	Name string `json:"name"`
}

func (f *issueFields) wire(s *settings) wireFields {
	return wireFields{
		Project:     keyRef{Key: s.ProjectKey},
		Summary:     f.summary,
		IssueType:   nameRef{Name: s.IssueType},
		Description: f.description,
		Labels:      f.labels,
	}
}

// issueFields renders the issue of req.
func (s *settings) issueFields(req *outhook.DeliveryRequest) (*issueFields, error) {
	data, payload := newTemplateData(req)
	f := &issueFields{label: IssueLabel(req.DeliveryID)}

	summary, err := s.summary.render(data, maxSummaryOutput)
	if err != nil {
		return nil, fmt.Errorf("jira: %w", err)
	}
	f.summary = summaryText(summary, req)

	var description string
	if s.description != nil {
		if description, err = s.description.render(data, maxDescriptionOutput); err != nil {
			return nil, fmt.Errorf("jira: %w", err)
		}
	} else {
		description = defaultDescription(req, payload)
	}
	f.description = adfDocument(description)

	for _, l := range s.Labels {
		if !slices.Contains(f.labels, l) {
			f.labels = append(f.labels, l)
		}
	}
	f.labels = append(f.labels, f.label)
	return f, nil
}

// summaryText makes a rendered summary fit Jira: one line, not empty, at
// most MaxSummary characters.
func summaryText(s string, req *outhook.DeliveryRequest) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if isSpace(r) {
			return ' '
		}
		return dropControl(r)
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		s = firstNonEmpty(req.Event.DisplayName, req.EventID, "outhook event")
	}
	return truncateUTF16(s, MaxSummary)
}

// firstNonEmpty returns the first non-empty string.
func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// defaultDescription describes the event and lists the payload's top-level
// fields, sorted by name.
func defaultDescription(req *outhook.DeliveryRequest, payload any) string {
	var b strings.Builder
	line := func(format string, args ...any) {
		fmt.Fprintf(&b, format, args...)
		b.WriteByte('\n')
	}
	if req.Event.DisplayName != "" {
		line("Event: %s (%s)", req.Event.DisplayName, req.EventID)
	} else {
		line("Event: %s", req.EventID)
	}
	if req.Event.Category != "" {
		line("Category: %s", req.Event.Category)
	}
	if req.Event.Description != "" {
		line("About: %s", req.Event.Description)
	}
	if !req.OccurredAt.IsZero() {
		line("Occurred at: %s", req.OccurredAt.UTC().Format(time.RFC3339))
	}
	line("Delivery: %s", req.DeliveryID)
	line("")
	switch p := payload.(type) {
	case map[string]any:
		if len(p) == 0 {
			line("The payload has no fields.")
			break
		}
		line("Payload fields:")
		keys := make([]string, 0, len(p))
		for k := range p {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			line("%s: %s", k, valueText(p[k]))
		}
	case nil:
		if len(req.Payload) > 0 && strings.TrimSpace(string(req.Payload)) != "null" {
			line("Payload: %s", truncateUTF16(string(req.Payload), maxValueText))
		}
	default:
		line("Payload: %s", valueText(p))
	}
	return b.String()
}

// maxValueText bounds one value in the default description.
const maxValueText = 2000

// valueText renders a payload value for people: strings as they are,
// everything else as compact JSON.
func valueText(v any) string {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case json.Number:
		s = v.String()
	default:
		b, err := json.Marshal(v)
		if err != nil {
			s = fmt.Sprint(v)
		} else {
			s = string(b)
		}
	}
	return truncateUTF16(s, maxValueText)
}

// adfNode is a node of an Atlassian Document Format document. Only the
// nodes this package writes are modelled: doc, paragraph and text.
// https://developer.atlassian.com/cloud/jira/platform/apis/document/structure/
type adfNode struct {
	Type    string    `json:"type"`
	Version int       `json:"version,omitempty"` // 1 on the doc node
	Text    string    `json:"text,omitempty"`    // never empty: ADF rejects empty text nodes
	Content []adfNode `json:"content,omitempty"`
}

// truncatedMarker ends a description that was cut.
const truncatedMarker = "[… truncated by outhook]"

// adfDocument turns text into an ADF document of one paragraph per
// non-blank line, within MaxDescription characters and
// MaxDescriptionParagraphs paragraphs. It returns nil when no line is left.
func adfDocument(text string) *adfNode {
	text = strings.ToValidUTF8(text, "\uFFFD")
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	budget := MaxDescription - utf16Len(truncatedMarker)
	var paras []adfNode
	truncated := false
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimRightFunc(strings.Map(dropControl, line), unicode.IsSpace)
		if strings.TrimSpace(line) == "" {
			continue
		}
		if len(paras) == MaxDescriptionParagraphs-1 || budget <= 1 {
			truncated = true
			break
		}
		if n := utf16Len(line); n > budget {
			line, truncated = truncateUTF16(line, budget), true
		}
		budget -= utf16Len(line)
		paras = append(paras, paragraph(line))
		if truncated {
			break
		}
	}
	if truncated {
		paras = append(paras, paragraph(truncatedMarker))
	}
	if len(paras) == 0 {
		return nil
	}
	return &adfNode{Type: "doc", Version: 1, Content: paras}
}

func paragraph(text string) adfNode {
	return adfNode{Type: "paragraph", Content: []adfNode{{Type: "text", Text: text}}}
}

// dropControl removes control characters but tabs.
func dropControl(r rune) rune {
	if r != '\t' && unicode.IsControl(r) {
		return -1
	}
	return r
}

func isSpace(r rune) bool { return unicode.IsSpace(r) }

// utf16Len is the length of s as Jira (Java) counts characters: UTF-16
// code units. An invalid byte counts as one (it is sent as U+FFFD).
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// truncateUTF16 cuts s to at most max UTF-16 code units, ending it with "…"
// when it cuts.
func truncateUTF16(s string, max int) string {
	if utf16Len(s) <= max {
		return s
	}
	if max < 1 {
		return ""
	}
	n, end := 0, 0
	for end < len(s) {
		r, size := utf8.DecodeRuneInString(s[end:])
		w := utf16.RuneLen(r) // an invalid byte decodes as U+FFFD: 1
		if n+w > max-1 {
			break
		}
		n += w
		end += size
	}
	return strings.TrimRightFunc(s[:end], unicode.IsSpace) + "…"
}

// secrets are the values kept out of errors and attempt records.
type secrets []string

// secretsOf returns the API token and the Basic credentials built from it,
// in the spellings a server could echo.
func secretsOf(email, token string) secrets {
	if token == "" {
		return nil
	}
	basic := base64.StdEncoding.EncodeToString([]byte(email + ":" + token))
	s := secrets{basic, token}
	for _, v := range []string{url.QueryEscape(token), url.PathEscape(token)} {
		if v != token {
			s = append(s, v)
		}
	}
	return s
}

const redacted = "[redacted]"

func (s secrets) scrub(text string) string {
	for _, v := range s {
		text = strings.ReplaceAll(text, v, redacted)
	}
	return text
}

// detailError adds Jira's explanation to a status error.
type detailError struct {
	err    error
	detail string
}

func (e *detailError) Error() string { return e.err.Error() + ": " + e.detail }
func (e *detailError) Unwrap() error { return e.err }

// maxDetail bounds Jira's explanation in an error.
const maxDetail = 1000

// errorDetail extracts Jira's explanation from an error body:
// {"errorMessages": [...], "errors": {"field": "message"}} (the shape of
// the REST API's ErrorCollection), or the text of a short plain body.
func errorDetail(body []byte) string {
	var e struct {
		ErrorMessages []string       `json:"errorMessages"`
		Errors        map[string]any `json:"errors"`
		Message       string         `json:"message"`
		ErrorMessage  string         `json:"errorMessage"`
	}
	var parts []string
	if err := json.Unmarshal(body, &e); err == nil {
		for _, m := range e.ErrorMessages {
			if m = strings.TrimSpace(m); m != "" {
				parts = append(parts, m)
			}
		}
		keys := make([]string, 0, len(e.Errors))
		for k := range e.Errors {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s: %v", k, e.Errors[k]))
		}
		for _, m := range []string{e.Message, e.ErrorMessage} {
			if m = strings.TrimSpace(m); m != "" {
				parts = append(parts, m)
			}
		}
	} else if text := strings.TrimSpace(string(body)); text != "" && utf8.ValidString(text) &&
		!strings.HasPrefix(text, "<") && len(text) <= 300 {
		parts = append(parts, strings.Join(strings.Fields(text), " "))
	}
	return truncateUTF16(strings.Map(dropControl, strings.Join(parts, "; ")), maxDetail)
}

// rateLimitReset parses Jira's X-RateLimit-Reset header, an ISO 8601 time
// such as 2026-06-13T14:00Z, into the wait from now. A time in the past
// gives 0, true.
func rateLimitReset(value string, now time.Time) (time.Duration, bool) {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, false
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00"} {
		t, err := time.Parse(layout, value)
		if err != nil {
			continue
		}
		d := t.Sub(now)
		switch {
		case d <= 0:
			return 0, true
		case d > maxRateLimitReset:
			return 0, false
		}
		return d, true
	}
	return 0, false
}

// maxRateLimitReset is the longest X-RateLimit-Reset wait believed.
const maxRateLimitReset = 24 * time.Hour
