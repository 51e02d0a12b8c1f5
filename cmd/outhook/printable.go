package main

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// printable makes text from outside (a request, an answer of the API) safe
// to print on a terminal: it escapes what could move the cursor, clear the
// screen, start an escape sequence or reorder the text shown. C0 controls
// and DEL become \xNN, C1 controls (U+0080 to U+009F) and the bidi
// controls (U+202A to U+202E, U+2066 to U+2069) \uNNNN, and the bytes of
// invalid UTF-8 \xNN. Tabs are kept, and newlines when multiline.
func printable(s string, multiline bool) string {
	i := strings.IndexFunc(s, func(r rune) bool { return r == utf8.RuneError || unsafeRune(r, multiline) })
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.WriteString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < utf8.RuneSelf && unsafeRune(r, multiline):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r, multiline):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// unsafeRune reports whether printable escapes r.
func unsafeRune(r rune, multiline bool) bool {
	switch {
	case r == '\t', r == '\n' && multiline:
		return false
	case r < 0x20, r >= 0x7f && r <= 0x9f: // C0, DEL, C1
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069: // bidi
		return true
	}
	return false
}
