package render

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Ellipsis ends text that was cut.
const Ellipsis = "…"

// CutRunes returns the first n-1 runes of s, without trailing space, and
// true, when s has more than n runes (room for the ellipsis); s and false
// otherwise. n <= 1 gives "" and true for any s longer than n.
func CutRunes(s string, n int) (string, bool) {
	if utf8.RuneCountInString(s) <= n {
		return s, false
	}
	if n <= 1 {
		return "", true
	}
	i, count := 0, 0
	for i < len(s) && count < n-1 {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		count++
	}
	return strings.TrimRightFunc(s[:i], unicode.IsSpace), true
}

// Truncate cuts s to at most n runes, ending it with "…" when it cuts;
// space before the "…" is dropped. n <= 0 gives "" for a non-empty s.
func Truncate(s string, n int) string {
	cut, ok := CutRunes(s, n)
	switch {
	case !ok:
		return s
	case n <= 0:
		return ""
	}
	return cut + Ellipsis
}

// Shorten returns s if it has at most n runes, and otherwise its first
// n-1 runes, as they are, followed by "…".
func Shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return FirstRunes(s, n-1) + Ellipsis
}

// FirstRunes returns the first n runes of s (s itself for n < 0).
func FirstRunes(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}

// CutBytes returns s cut to at most n bytes on a rune boundary.
func CutBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
