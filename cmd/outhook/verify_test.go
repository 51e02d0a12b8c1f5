package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outhook/outhook/webhook"
	"github.com/stretchr/testify/require"
)

// wireRequest returns a webhook request in HTTP/1.1 wire format, signed
// with keys at ts.
func wireRequest(t *testing.T, id string, ts time.Time, body string, keys ...string) string {
	t.Helper()
	sig, err := webhook.Sign(id, ts, []byte(body), keys...)
	require.NoError(t, err)
	return fmt.Sprintf("POST /hooks HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/json\r\n"+
		"Content-Length: %d\r\nWebhook-Id: %s\r\nWebhook-Timestamp: %d\r\nWebhook-Signature: %s\r\n\r\n%s",
		len(body), id, ts.Unix(), sig, body)
}

func TestVerify(t *testing.T) {
	secret, signingKey, publicKey := keys(t)
	other, _, otherPublic := keys(t)
	now := time.Now()
	old := now.Add(-time.Hour)
	body := `{"type":"incident.created","data":{"id":"inc_1"}}`
	v1 := wireRequest(t, "msg_1", now, body, secret)
	v1a := wireRequest(t, "msg_2", now, body, signingKey)
	stale := wireRequest(t, "msg_3", old, body, secret)
	noLength := regexp.MustCompile(`Content-Length: \d+\r\n`).ReplaceAllString(v1, "")

	for _, c := range []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stdout string // wanted in stdout
		stderr string // wanted in stderr
		also   string // also wanted in stderr
	}{
		{name: "v1", stdin: v1, args: []string{"--secret", secret}, stdout: "verified: webhook-id msg_1, webhook-timestamp "},
		{name: "v1a", stdin: v1a, args: []string{"--secret", publicKey}, stdout: "verified: webhook-id msg_2"},
		{name: "any key of several", stdin: v1a, args: []string{"--secret", other, "--secret", publicKey}, stdout: "verified: webhook-id msg_2"},
		{name: "LF line endings", stdin: strings.ReplaceAll(v1, "\r\n", "\n"), args: []string{"--secret", secret}, stdout: "verified: webhook-id msg_1"},
		{name: "wrong secret", stdin: v1, args: []string{"--secret", other}, code: 1,
			stderr: "outhook: not verified: webhook: no matching signature: 1 signature (1 v1, 0 v1a, 0 other) checked against 1 secret and 0 public keys\n"},
		{name: "wrong public key", stdin: v1a, args: []string{"--secret", otherPublic}, code: 1, stderr: "no matching signature"},
		{name: "expired", stdin: stale, args: []string{"--secret", secret}, code: 1,
			stderr: "outhook: not verified: webhook: timestamp too old: webhook-timestamp " + fmt.Sprint(old.Unix()) + " is 1h0m",
			also:   " before now (tolerance 5m0s) (a saved request? pass --now " + old.UTC().Format(time.RFC3339) + ", when it was sent)\n"},
		{name: "expired, --now", stdin: stale, args: []string{"--secret", secret, "--now", old.Add(time.Minute).Format(time.RFC3339)}, stdout: "verified: webhook-id msg_3"},
		{name: "expired, --tolerance", stdin: stale, args: []string{"--secret", secret, "--tolerance", "2h"}, stdout: "verified: webhook-id msg_3"},
		{name: "from the future", stdin: v1, args: []string{"--secret", secret, "--now", old.Format(time.RFC3339)}, code: 1, stderr: "webhook: timestamp too new"},
		{name: "unsigned", stdin: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", args: []string{"--secret", secret}, code: 1,
			stderr: "outhook: not verified: webhook: missing headers: webhook-id, webhook-timestamp, webhook-signature\n"},
		{name: "garbage stdin", stdin: "hello world\n\n", args: []string{"--secret", secret}, code: 1, stderr: "outhook: stdin is not an HTTP request: "},
		{name: "empty stdin", stdin: "", args: []string{"--secret", secret}, code: 1, stderr: "outhook: stdin is empty: want an HTTP request"},
		{name: "body cut short", stdin: strings.TrimSuffix(v1, "}"), args: []string{"--secret", secret}, code: 1, stderr: "outhook: stdin: reading the request body"},
		{name: "line ends after the body", stdin: v1 + "\r\n\n", args: []string{"--secret", secret}, stdout: "verified: webhook-id msg_1"},
		{name: "data after the body", stdin: v1 + "\r\n[\"more\"]", args: []string{"--secret", secret}, code: 1,
			stderr: fmt.Sprintf("outhook: stdin: 10 bytes follow the request's body (%d bytes): want one request, as outhook listen --save writes it\n", len(body))},
		{name: "no Content-Length", stdin: noLength, args: []string{"--secret", secret}, code: 1,
			stderr: fmt.Sprintf("outhook: stdin: the request has no Content-Length header, so its body (%d bytes after the headers) was not read: add one\n", len(body))},
		{name: "missing --secret", stdin: v1, code: 2, stderr: `outhook: required flag(s) "secret" not set`},
		{name: "malformed --secret", stdin: v1, args: []string{"--secret", "whsec_!!"}, code: 2, stderr: "outhook: --secret: webhook: verifier: key 1: invalid key: secret is not valid base64"},
		{name: "signing key as --secret", stdin: v1a, args: []string{"--secret", signingKey}, code: 2, stderr: "signing key is the sender's private key"},
		{name: "bad --now", stdin: v1, args: []string{"--secret", secret, "--now", "yesterday"}, code: 2, stderr: `--now "yesterday": want an RFC 3339 time`},
		{name: "bad --tolerance", stdin: v1, args: []string{"--secret", secret, "--tolerance", "0s"}, code: 2, stderr: "--tolerance 0s: want a positive duration"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runCmd(t, c.stdin, nil, append([]string{"verify"}, c.args...)...)
			require.Equal(t, c.code, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
			if c.code == 0 {
				require.Contains(t, r.stdout, c.stdout)
				require.Empty(t, r.stderr)
				return
			}
			require.Empty(t, r.stdout)
			require.Contains(t, r.stderr, c.stderr)
			require.Contains(t, r.stderr, c.also)
			require.NotContains(t, r.stderr, secret, "errors never quote a key")
		})
	}
}

// blockingReader is a stdin that blocks, as a terminal or a pipe with no
// writer yet: its Read signals reading, then waits for release.
type blockingReader struct {
	once             sync.Once
	reading, release chan struct{}
}

func (b *blockingReader) Read([]byte) (int, error) {
	b.once.Do(func() { close(b.reading) })
	<-b.release
	return 0, io.EOF
}

func TestVerifyInterrupted(t *testing.T) {
	secret, _, _ := keys(t)
	stdin := &blockingReader{reading: make(chan struct{}), release: make(chan struct{})}
	defer close(stdin.release) // ends the read left behind
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"verify", "--secret", secret}, stdin, &stdout, &stderr, func(string) string { return "" })
	}()
	select {
	case <-stdin.reading:
	case <-time.After(waitTimeout):
		t.Fatal("verify did not read stdin")
	}
	cancel() // as the first Ctrl-C does
	select {
	case code := <-done:
		require.Equal(t, 1, code)
		require.Empty(t, stdout.String())
		require.Equal(t, "outhook: interrupted while reading stdin: context canceled\n", stderr.String())
	case <-time.After(waitTimeout):
		t.Fatal("verify did not stop when interrupted")
	}
}
