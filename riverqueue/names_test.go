package riverqueue

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// riverQueueName is River's documented rule for queue names: letters and
// digits in runs separated by one underscore or hyphen, at most 64 bytes.
var riverQueueName = regexp.MustCompile(`^[a-z0-9]+(?:[_-][a-z0-9]+)*$`)

func TestQueueNames(t *testing.T) {
	groups := []string{
		"outhook.deliveries",
		"incident.created/integration.incident.incident.created",
		"Hook/Audit-Log",
		"....",
		"",
		"é-ü/ß",
		strings.Repeat("a.", 200),
		"x__y--z",
		"queuetest.retry.1a2b3c4d",
	}
	seen := map[string]string{}
	for _, g := range groups {
		for _, name := range []string{workQueueName(g), broadcastQueueName(g, "node-1"), broadcastQueueName(g, "node-2")} {
			require.LessOrEqual(t, len(name), 64, "%q -> %q", g, name)
			require.Regexp(t, riverQueueName, name, "%q -> %q", g, name)
			if other, dup := seen[name]; dup {
				t.Fatalf("%q and %q both map to %q", other, g, name)
			}
			seen[name] = g
		}
		require.Equal(t, workQueueName(g), workQueueName(g), "deterministic")
		require.True(t, strings.HasPrefix(broadcastQueueName(g, "n"), broadcastPrefix(g)))
	}
	require.Equal(t, "oh_outhook_deliveries_"+shortHash("outhook.deliveries", 10), workQueueName("outhook.deliveries"))
	// Groups that sanitize alike stay apart.
	require.NotEqual(t, workQueueName("a.b"), workQueueName("a/b"))
	require.Regexp(t, riverQueueName, homeQueue)
}

func TestSanitize(t *testing.T) {
	for in, want := range map[string]string{
		"Outhook.Deliveries": "outhook_deliveries",
		"..a..b..":           "a_b",
		"":                   "g",
		"---":                "g",
		"abcdefghij":         "abcdefghij",
	} {
		require.Equal(t, want, sanitize(in, 40), "sanitize(%q)", in)
	}
	require.Equal(t, "abc", sanitize("abc.defgh", 4), "a separator never ends a cut name")
	require.Equal(t, "abcd", sanitize("abcdefgh", 4))
}
