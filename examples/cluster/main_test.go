package main

import (
	"bytes"
	"testing"

	"github.com/outhook/outhook/internal/servicetest"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestDemo runs the demo in a schema of the test's own.
func TestDemo(t *testing.T) {
	_, schema := servicetest.PostgresSchema(t)
	var out bytes.Buffer
	require.NoError(t, run(&out, servicetest.PostgresURL(t), schema, 50), out.String())
	text := out.String()
	for _, want := range []string{
		"Received 51 orders (51 deliveries, 0 with a bad signature)",
		"The rolled-back order arrived 0 times.",
		"Split: node-a delivered ",
	} {
		require.Contains(t, text, want)
	}
	t.Log(text)
}
