package render

import (
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 5, "hello"},
		{"hello!", 5, "hell…"},
		{"héllo wörld", 7, "héllo…"}, // trailing space dropped before the ellipsis
		{"🔥🔥🔥", 2, "🔥…"},
		{"abc", 1, "…"},
		{"abc", 0, ""},
		{"", 3, ""},
	} {
		require.Equal(t, tc.want, Truncate(tc.in, tc.n), "Truncate(%q, %d)", tc.in, tc.n)
	}
	cut, ok := CutRunes("ab cd", 4)
	require.True(t, ok)
	require.Equal(t, "ab", cut)
	cut, ok = CutRunes("abc", 3)
	require.False(t, ok)
	require.Equal(t, "abc", cut)
}

func TestShorten(t *testing.T) {
	require.Equal(t, "abc", Shorten("abc", 3))
	require.Equal(t, "ab …", Shorten("ab cd", 4), "space is kept")
	require.Equal(t, "🔥…", Shorten("🔥🔥🔥", 2))
	require.Equal(t, "🔥", FirstRunes("🔥🔥", 1))
	require.Equal(t, "🔥🔥", FirstRunes("🔥🔥", 5))
	require.Equal(t, "", FirstRunes("ab", 0))
}

func TestCutBytes(t *testing.T) {
	require.Equal(t, "abc", CutBytes("abc", 5))
	require.Equal(t, "a", CutBytes("aé", 2))
	require.Equal(t, "aé", CutBytes("aé", 3))
	require.Equal(t, "", CutBytes("🔥", 3))
}

func TestTextProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := rapid.String().Draw(t, "s")
		n := rapid.IntRange(1, 40).Draw(t, "n")
		for _, out := range []string{Truncate(s, n), Shorten(s, n)} {
			if utf8.RuneCountInString(out) > n {
				t.Fatalf("%q cut to %d runes is %q", s, n, out)
			}
			if utf8.ValidString(s) && !utf8.ValidString(out) {
				t.Fatalf("%q cut to %q is not valid UTF-8", s, out)
			}
		}
		b := rapid.IntRange(0, 40).Draw(t, "b")
		if out := CutBytes(s, b); len(out) > b || (utf8.ValidString(s) && !utf8.ValidString(out)) {
			t.Fatalf("CutBytes(%q, %d) = %q", s, b, out)
		}
	})
}
