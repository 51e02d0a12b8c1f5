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
		`"secrets":[{"secret":"[secret]"}]`,
		`config.secrets[0].secret: rejected by deliverer "webhook"`,
		"test attempt: succeeded 200 (test)",
		`invalid payload for hook "incident.created": systemIds is required; title is required; severity must be one of [critical major minor]`,
		"-> 503 (failing once on purpose)",
		"#1 retryable 503 http_status, #2 succeeded 204",
		"pagerduty /v2/enqueue trigger dedup_key=inc-1 severity=critical",
		"pagerduty /v2/enqueue resolve dedup_key=inc-1",
		"slack     Incident Created: Primary database unreachable",
		"All 7 deliveries succeeded.",
	} {
		require.Contains(t, text, want)
	}
	require.Equal(t, 4, strings.Count(text, "signature verified"), "3 events and 1 retry reach the webhook receiver, all signed")
	require.NotContains(t, text, "SIGNATURE REJECTED")
	require.NotContains(t, text, "0123456789abcdef0123456789abcdef", "the routing key never shows")
}
