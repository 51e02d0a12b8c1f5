//go:build unix

package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestVerifyRefusesTerminal: a terminal on stdin is refused at once (a
// usage error) instead of waiting for input that never comes.
func TestVerifyRefusesTerminal(t *testing.T) {
	secret, _, _ := keys(t)
	verify := func(stdin *os.File) result {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), []string{"verify", "--secret", secret}, stdin, &stdout, &stderr, func(string) string { return "" })
		return result{code, stdout.String(), stderr.String()}
	}
	// A character device, as a terminal is: /dev/zero would never end.
	dev, err := os.Open("/dev/zero") // on every Unix
	require.NoError(t, err)
	defer dev.Close()
	r := verify(dev)
	require.Equal(t, 2, r.code, "stderr: %s", r.stderr)
	require.Empty(t, r.stdout)
	require.True(t, strings.HasPrefix(r.stderr, "outhook: stdin is a terminal: redirect a saved request into it, as in outhook verify --secret KEY < request.http"), r.stderr)

	// The null device is a character device too, but an empty stdin.
	null, err := os.Open(os.DevNull)
	require.NoError(t, err)
	defer null.Close()
	r = verify(null)
	require.Equal(t, 1, r.code, "stderr: %s", r.stderr)
	require.Contains(t, r.stderr, "outhook: stdin is empty")
}
