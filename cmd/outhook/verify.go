package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/outhook/outhook/webhook"
	"github.com/spf13/cobra"
)

// maxRequestBytes caps what verify reads from stdin: a body of
// maxBodyBytes and its headers.
const maxRequestBytes = maxBodyBytes + 1<<20

func newVerifyCmd() *cobra.Command {
	var (
		secrets   []string
		tolerance time.Duration
		nowText   string
	)
	cmd := &cobra.Command{
		Use:   "verify --secret KEY [--secret KEY...] < request.http",
		Short: "Check the Standard Webhooks signature of one HTTP request",
		Long: `verify reads one HTTP/1.1 request in wire format from stdin, as "outhook
listen --save" writes them, and checks its webhook-id, webhook-timestamp and
webhook-signature headers against the keys: whsec_ secrets (v1 signatures) and
whpk_ public keys (v1a). One matching signature from any key is enough.

The body is what the Content-Length (or chunked Transfer-Encoding) header
frames; data after it, other than line ends, is an error, as is a body after
headers without a Content-Length. Stdin must be redirected from a file: a
terminal is refused.

The timestamp must be within --tolerance (5m) of now; to check a request saved
earlier, pass --now with the time it was received.

It prints "verified" and the webhook-id, and exits 0; otherwise it prints why
not ("outhook: not verified: ...") and exits 1. Stdin that is not an HTTP
request also exits 1; bad flags exit 2.`,
		Example: `  outhook verify --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw < requests/0001-dlv_2x.http

  # A request saved yesterday, checked against the old and the new secret:
  outhook verify --secret whsec_OLD... --secret whsec_NEW... --now 2026-01-02T03:04:05Z < saved.http`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			v, err := newVerifier(secrets, tolerance, nowText)
			if err != nil {
				return err
			}
			data, err := readStdin(cmd.Context(), cmd.InOrStdin())
			if err != nil {
				return err
			}
			req, body, err := parseRequest(data)
			if err != nil {
				return err
			}
			if err := v.Verify(body, req.Header); err != nil {
				return fmt.Errorf("not verified: %w%s", err, verifyHint(err, req.Header, nowText))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "verified: webhook-id %s, webhook-timestamp %s\n",
				printable(req.Header.Get(webhook.HeaderID), false), printable(req.Header.Get(webhook.HeaderTimestamp), false))
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringArrayVar(&secrets, "secret", nil, "whsec_ secret or whpk_ public key to verify with (repeatable)")
	f.DurationVar(&tolerance, "tolerance", webhook.DefaultTolerance, "largest accepted distance between webhook-timestamp and now")
	f.StringVar(&nowText, "now", "", "the time to check the timestamp against (RFC 3339), instead of the clock")
	_ = cmd.MarkFlagRequired("secret")
	return cmd
}

// newVerifier checks verify's flags and returns the verifier they describe.
func newVerifier(keys []string, tolerance time.Duration, nowText string) (*webhook.Verifier, error) {
	v, err := webhook.NewVerifier(keys...)
	if err != nil {
		return nil, usageErrorf("--secret: %v", err)
	}
	if tolerance <= 0 {
		return nil, usageErrorf("--tolerance %s: want a positive duration", tolerance)
	}
	v.Tolerance = tolerance
	if nowText != "" {
		now, err := time.Parse(time.RFC3339Nano, nowText)
		if err != nil {
			return nil, usageErrorf("--now %q: want an RFC 3339 time such as 2026-01-02T03:04:05Z", nowText)
		}
		v.Now = func() time.Time { return now }
	}
	return v, nil
}

// readStdin reads r, stdin, up to maxRequestBytes and one more. It returns
// when ctx is done too, so that an interrupt stops a read that blocks (a
// pipe whose writer waits); the read itself goes on until the process
// ends. A terminal is refused at once: verify would wait on the keyboard.
func readStdin(ctx context.Context, r io.Reader) ([]byte, error) {
	if isTerminal(r) {
		return nil, usageErrorf("stdin is a terminal: redirect a saved request into it, as in outhook verify --secret KEY < request.http")
	}
	type result struct {
		data []byte
		err  error
	}
	read := make(chan result, 1)
	go func() {
		data, err := io.ReadAll(io.LimitReader(r, maxRequestBytes+1))
		read <- result{data, err}
	}()
	select {
	case res := <-read:
		if res.err != nil {
			return nil, fmt.Errorf("reading stdin: %w", res.err)
		}
		return res.data, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("interrupted while reading stdin: %w", context.Cause(ctx))
	}
}

// isTerminal reports whether r is a file that is a character device other
// than the null device: a terminal, which verify would wait on for typing.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}

// parseRequest reads one HTTP request and its whole body from data, which
// must hold nothing more than line ends after it.
func parseRequest(data []byte) (*http.Request, []byte, error) {
	switch {
	case len(bytes.TrimSpace(data)) == 0:
		return nil, nil, errors.New("stdin is empty: want an HTTP request, such as a file written by outhook listen --save")
	case len(data) > maxRequestBytes:
		return nil, nil, fmt.Errorf("stdin is larger than %d bytes: not a webhook request", maxRequestBytes)
	}
	br := bufio.NewReader(bytes.NewReader(data))
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, nil, fmt.Errorf("stdin is not an HTTP request: %w", err)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("stdin: reading the request body (Content-Length %d): %w", req.ContentLength, err)
	}
	rest, _ := io.ReadAll(br) // cannot fail: data is in memory
	switch {
	case len(bytes.Trim(rest, "\r\n")) == 0:
		return req, body, nil
	case req.Header.Get("Content-Length") == "" && req.TransferEncoding == nil:
		return nil, nil, fmt.Errorf("stdin: the request has no Content-Length header, so its body (%d bytes after the headers) was not read: add one", len(rest))
	default:
		return nil, nil, fmt.Errorf("stdin: %d bytes follow the request's body (%d bytes): want one request, as outhook listen --save writes it", len(rest), len(body))
	}
}

// verifyHint suggests --now when a saved request's timestamp is too old.
func verifyHint(err error, h http.Header, nowText string) string {
	if !errors.Is(err, webhook.ErrTimestampTooOld) || nowText != "" {
		return ""
	}
	ts, perr := strconv.ParseInt(h.Get(webhook.HeaderTimestamp), 10, 64)
	if perr != nil {
		return ""
	}
	return fmt.Sprintf(" (a saved request? pass --now %s, when it was sent)", time.Unix(ts, 0).UTC().Format(time.RFC3339))
}
