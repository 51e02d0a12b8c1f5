package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestDemo runs the demo and checks that it shows what it promises.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(&out))
	text := out.String()
	for _, want := range []string{
		"[Incidents] incident.incident.created",
		`config.url: rejected by deliverer "http-post"`,
		`invalid payload for hook "incident.created": systemIds is required; title is required; severity must be one of [critical major minor]`,
		"-> 503 (failing once on purpose)",
		"#1 retryable 503",
		"#2 succeeded 204",
		"All 4 deliveries succeeded",
	} {
		require.Contains(t, text, want)
	}
	require.Equal(t, 5, strings.Count(text, "  receiver: #"), "4 deliveries and 1 retry reach the receiver")
}
