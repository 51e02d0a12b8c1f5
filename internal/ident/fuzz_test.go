package ident

import (
	"regexp"
	"strings"
	"testing"
)

// The fuzz targets check Check, CheckPattern and Match against a second,
// regular-expression reading of the same rules (issue 7, item 3: hook and
// event IDs, subscription patterns).

var (
	idRule      = regexp.MustCompile(`^[a-zA-Z0-9_-]+(\.[a-zA-Z0-9_-]+)*$`)
	segmentRule = `[a-zA-Z0-9_-]+`
)

// patternRegexp turns a well-formed pattern into the regular expression of
// the IDs it selects: "*" one segment, a final "**" one or more.
func patternRegexp(p string) *regexp.Regexp {
	segs := strings.Split(p, ".")
	var b strings.Builder
	b.WriteString("^")
	for i, s := range segs {
		if i > 0 {
			b.WriteString(`\.`)
		}
		switch s {
		case "*":
			b.WriteString(segmentRule)
		case "**":
			b.WriteString(segmentRule + `(\.` + segmentRule + `)*`)
		default:
			b.WriteString(regexp.QuoteMeta(s))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{"incident.created", "healthcheck-http.state.changed", "", ".", "a..b", "a.", ".a",
		"a b", "é", "a\x00b", strings.Repeat("a", 256), "a.*", "**"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		why := Check(id)
		want := idRule.MatchString(id) && len(id) <= 255
		if (why == "") != want {
			t.Fatalf("Check(%q) = %q, but the rule says well formed = %v", id, why, want)
		}
	})
}

func FuzzMatch(f *testing.F) {
	for _, c := range [][2]string{
		{"incident.*", "incident.created"}, {"incident.**", "incident.a.b"}, {"*.created", "x.created"},
		{"incident.**", "incident"}, {"a.*.c", "a.b.c"}, {"**", "a"}, {"a.**.b", "a.x.b"}, {"a*", "ab"},
		{"*", ""}, {"a.*", "a."},
	} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, p, id string) {
		pwhy := CheckPattern(p)
		if Check(id) != "" || pwhy != "" {
			return // Match assumes both are well formed; CheckPattern must not panic
		}
		got, want := Match(p, id), patternRegexp(p).MatchString(id)
		if got != want {
			t.Fatalf("Match(%q, %q) = %v, want %v", p, id, got, want)
		}
	})
}
