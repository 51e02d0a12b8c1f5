package jira

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/outhook/outhook"
	"github.com/stretchr/testify/require"
)

func TestTruncateUTF16(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "ab…"},
		{"ab  cd", 4, "ab…"},
		{"🔥🔥", 4, "🔥🔥"},
		{"🔥🔥🔥", 4, "🔥…"},
		{"a🔥", 2, "a…"},
		{"abc", 1, "…"},
		{"abc", 0, ""},
		{"é", 1, "é"},
	} {
		got := truncateUTF16(tc.in, tc.max)
		require.Equal(t, tc.want, got, "%q %d", tc.in, tc.max)
		require.LessOrEqual(t, utf16Len(got), max(tc.max, 0))
	}
	require.Equal(t, 2, utf16Len("🔥"))
	require.Equal(t, 1, utf16Len("é"))
	require.Equal(t, 1, utf16Len("\xff"))
}

func TestRateLimitReset(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"2026-03-01T12:05Z", 5 * time.Minute, true},
		{"2026-03-01T12:00:30Z", 30 * time.Second, true},
		{"2026-03-01T13:05+01:00", 5 * time.Minute, true},
		{"2026-03-01T11:00Z", 0, true},
		{"2026-03-03T12:00Z", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{"1717250000", 0, false},
	} {
		got, ok := rateLimitReset(tc.in, now)
		require.Equal(t, tc.ok, ok, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
}

func TestErrorDetail(t *testing.T) {
	require.Equal(t, "Issue type is required; labels: bad; summary: too long",
		errorDetail([]byte(`{"errorMessages":["Issue type is required"," "],"errors":{"summary":"too long","labels":"bad"}}`)))
	require.Equal(t, "Rate limited", errorDetail([]byte(`{"message":"Rate limited"}`)))
	require.Equal(t, "Client must be authenticated", errorDetail([]byte("Client must be\n authenticated\n")))
	require.Empty(t, errorDetail([]byte("<html><body>Bad gateway</body></html>")))
	require.Empty(t, errorDetail(nil))
	require.Empty(t, errorDetail([]byte(`{}`)))
	long := errorDetail([]byte(`{"errorMessages":["` + strings.Repeat("x", 5000) + `"]}`))
	require.Equal(t, maxDetail, utf16Len(long))
}

func TestJQLString(t *testing.T) {
	require.Equal(t, `"OPS"`, jqlString("OPS"))
	require.Equal(t, `"a\"b\\c"`, jqlString(`a"b\c`))
	require.Equal(t, `project = "OPS" AND labels = "outhook-dlv_1"`, searchJQL("OPS", "outhook-dlv_1"))
}

func TestADFDocument(t *testing.T) {
	require.Nil(t, adfDocument(""))
	require.Nil(t, adfDocument("\n \n\t\n\x00"))
	doc := adfDocument("one\r\ntwo\rthree\n\n  indented  \n")
	require.Equal(t, &adfNode{Type: "doc", Version: 1, Content: []adfNode{
		paragraph("one"), paragraph("two"), paragraph("three"), paragraph("  indented"),
	}}, doc)
}

func TestSecretsScrub(t *testing.T) {
	s := secretsOf("me@example.com", "tok+en/=")
	out := s.scrub("a tok+en/= b bWVAZXhhbXBsZS5jb206dG9rK2VuLz0= c tok%2Ben%2F%3D")
	require.Equal(t, "a [redacted] b [redacted] c [redacted]", out)
	require.Nil(t, secretsOf("me@example.com", ""))
}

// FuzzDocumentAndSummary checks the invariants Jira relies on: ADF text
// nodes are never empty, the description and summary stay within their
// bounds, and the output is valid UTF-8.
func FuzzDocumentAndSummary(f *testing.F) {
	// The input is text repeated 1 to 4000 times, so that small inputs
	// reach the bounds.
	for _, seed := range []struct {
		text string
		n    uint16
	}{{"", 0}, {"one\ntwo", 0}, {"\r\n\r\n", 3}, {"🔥\x00\x1b x", 9}, {"a\n", 1200}, {"é", 3999}, {"\xff\xfe", 2}, {"\x1b 0", 0}} {
		f.Add(seed.text, seed.n)
	}
	f.Fuzz(func(t *testing.T, text string, n uint16) {
		if k := 1 + int(n%4000); len(text)*k <= 1<<17 {
			text = strings.Repeat(text, k)
		}
		if doc := adfDocument(text); doc != nil {
			require.Equal(t, "doc", doc.Type)
			require.Equal(t, 1, doc.Version)
			require.NotEmpty(t, doc.Content)
			require.LessOrEqual(t, len(doc.Content), MaxDescriptionParagraphs)
			total := 0
			for _, p := range doc.Content {
				if p.Type != "paragraph" || len(p.Content) != 1 {
					t.Fatalf("bad paragraph %+v", p)
				}
				text := p.Content[0].Text
				if strings.TrimSpace(text) == "" || strings.ContainsAny(text, "\r\n") || !utf8.ValidString(text) {
					t.Fatalf("bad text node %q", text)
				}
				total += utf16Len(text)
			}
			require.LessOrEqual(t, total, MaxDescription)
		}
		s := summaryText(text, &outhook.DeliveryRequest{EventID: "a.b"})
		require.NotEmpty(t, s)
		require.LessOrEqual(t, utf16Len(s), MaxSummary)
		require.NotContains(t, s, "\n")
		require.True(t, utf8.ValidString(s))
		require.Equal(t, strings.TrimSpace(s), s)
	})
}
