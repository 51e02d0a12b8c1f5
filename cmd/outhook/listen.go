package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/outhook/outhook/webhook"
	"github.com/spf13/cobra"
)

const (
	// maxBodyBytes caps the body listen accepts (413 above) and the size
	// of the request verify reads.
	maxBodyBytes = 5 << 20
	// maxShownBody caps a body that is not JSON when listen prints it.
	maxShownBody = 4 << 10
	// shutdownTimeout bounds how long listen waits for requests in
	// progress when it stops.
	shutdownTimeout = 5 * time.Second
)

type listenOptions struct {
	addr       string
	port       int
	path       string
	secrets    []string
	status     int
	script     string
	retryAfter time.Duration
	save       string
	json       bool
	scriptSet  bool // --script was given
}

func newListenCmd() *cobra.Command {
	var o listenOptions
	cmd := &cobra.Command{
		Use:   "listen",
		Short: "Receive webhooks on a local port and print them",
		Long: `listen runs a local HTTP receiver for webhooks. It prints one line,
"listening on http://ADDR:PORT/PATH", then, for each request: a sequence
number, the time, method and path, the headers (sorted), the body (pretty JSON
when it is JSON, otherwise the text, cut after 4 KiB), and, when --secret is
given, whether the Standard Webhooks signature verified or why not.

--secret takes whsec_ secrets (v1 signatures, HMAC-SHA256) and whpk_ public
keys (v1a, ed25519), repeated for several; any one matching signature verifies.

Each request is answered with --status, or with the statuses of --script in
order, one per request, the last one repeating: --script 500,500,200 rehearses
two retries. Error answers (4xx, 5xx) have a short text body; --retry-after adds
a Retry-After header to 429 and 503 answers. With --path other than /, requests
to other paths are printed and answered 404. Bodies over 5 MiB are answered 413.
These 404 and 413 answers (and a 400 for a body that cannot be read) take no
step of --script, and their signature is not checked.

A body that is not UTF-8 is shown as "(not text)". Control characters of the
body, headers and path (escape sequences, bidi controls) are shown escaped, as
\x1b or \u202e.

--save DIR writes each request, in HTTP/1.1 wire format with its body, to
DIR/NNNN-<webhook-id>.http, which "outhook verify" reads back. Numbers
continue after the files already in DIR.

--json prints one JSON object per request instead, on one line: seq, time,
method, path, headers, body (the JSON document, or a string when the body is
not JSON), verified (absent without --secret), error (why the signature did not
verify), status (the status answered) and saved (the file written).

listen runs until interrupted (SIGINT, SIGTERM), then waits up to 5s for
requests in progress; a second Ctrl-C stops it at once.`,
		Example: `  # Answer 200 to everything on port 8787 and check v1 signatures:
  outhook listen --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw

  # Rehearse two retries, then success, saving each request:
  outhook listen --port 9000 --path /hooks --script 503,503,200 --retry-after 2s --save ./requests

  # Machine-readable output:
  outhook listen --port 0 --json --secret whpk_...`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			o.scriptSet = cmd.Flags().Changed("script")
			return listen(cmd.Context(), &o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "127.0.0.1", "address to listen on")
	f.IntVar(&o.port, "port", 8787, "port to listen on; 0 picks a free one")
	f.StringVar(&o.path, "path", "/", "path that receives webhooks; / accepts every path")
	f.StringArrayVar(&o.secrets, "secret", nil, "whsec_ secret or whpk_ public key to verify signatures with (repeatable)")
	f.IntVar(&o.status, "status", http.StatusOK, "status to answer every request with")
	f.StringVar(&o.script, "script", "", "statuses to answer in order, comma-separated; the last one repeats (e.g. 500,503,200)")
	f.DurationVar(&o.retryAfter, "retry-after", 0, "Retry-After to send with 429 and 503 answers (e.g. 5s)")
	f.StringVar(&o.save, "save", "", "directory to save each request to, as NNNN-<webhook-id>.http")
	f.BoolVar(&o.json, "json", false, "print one JSON object per request")
	cmd.MarkFlagsMutuallyExclusive("status", "script")
	return cmd
}

// listen serves until ctx is done.
func listen(ctx context.Context, o *listenOptions, stdout, stderr io.Writer) error {
	// Requests are handled concurrently, and the server logs its own
	// errors: every write goes through a lock.
	stdout, stderr = &syncWriter{w: stdout}, &syncWriter{w: stderr}
	rc, err := o.receiver(stdout, stderr)
	if err != nil {
		return err
	}
	if o.save != "" {
		if err := os.MkdirAll(o.save, 0o755); err != nil {
			return fmt.Errorf("--save: %w", err)
		}
		if _, err := lastSaved(o.save); err != nil { // the directory can be read
			return fmt.Errorf("--save: %w", err)
		}
	}
	addr := net.JoinHostPort(o.addr, strconv.Itoa(o.port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           rc,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(stderr, "outhook: listen: ", 0),
	}
	fmt.Fprintf(stdout, "listening on http://%s%s\n", ln.Addr(), o.path)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close() // requests still in progress after the timeout
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving: %w", err)
	}
	return nil
}

// receiver checks the options and returns the handler they describe.
func (o *listenOptions) receiver(stdout, stderr io.Writer) (*receiver, error) {
	if o.port < 0 || o.port > 65535 {
		return nil, usageErrorf("--port %d: want 0 to 65535", o.port)
	}
	if !strings.HasPrefix(o.path, "/") {
		return nil, usageErrorf("--path %q: want a path starting with /", o.path)
	}
	if o.retryAfter < 0 {
		return nil, usageErrorf("--retry-after %s: want a positive duration", o.retryAfter)
	}
	statuses := []int{o.status}
	if o.scriptSet {
		var err error
		if statuses, err = parseScript(o.script); err != nil {
			return nil, err
		}
	} else if err := checkStatus(o.status); err != nil {
		return nil, usageErrorf("--status: %v", err)
	}
	rc := &receiver{out: stdout, errOut: stderr, path: o.path, statuses: statuses,
		retryAfter: o.retryAfter, saveDir: o.save, json: o.json, now: time.Now}
	if len(o.secrets) > 0 {
		v, err := webhook.NewVerifier(o.secrets...)
		if err != nil {
			return nil, usageErrorf("--secret: %v", err)
		}
		rc.verifier = v
	}
	return rc, nil
}

// parseScript reads --script: statuses separated by commas.
func parseScript(s string) ([]int, error) {
	if s == "" {
		return nil, usageErrorf(`--script "": want statuses separated by commas, such as 500,503,200`)
	}
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil {
			return nil, usageErrorf("--script %q: %q is not a status code", s, part)
		}
		if err := checkStatus(n); err != nil {
			return nil, usageErrorf("--script %q: %v", s, err)
		}
		out = append(out, n)
	}
	return out, nil
}

func checkStatus(n int) error {
	if n < 200 || n > 599 {
		return fmt.Errorf("status %d: want 200 to 599", n)
	}
	return nil
}

// receiver is listen's handler. It prints each request whole, in one
// write, before answering it, so that a sender that got its answer finds
// the request printed.
type receiver struct {
	path       string
	verifier   *webhook.Verifier // nil: signatures are not checked
	retryAfter time.Duration
	saveDir    string
	saveMu     sync.Mutex // held while numbering and writing a file
	json       bool
	now        func() time.Time
	out        io.Writer // safe for concurrent use
	errOut     io.Writer // safe for concurrent use

	mu       sync.Mutex
	seq      int   // requests received
	statuses []int // answers still scripted; the last one repeats
}

// syncWriter serialises writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// requestRecord is what listen prints of a request; --json prints it as is.
type requestRecord struct {
	Seq     int                 `json:"seq"`
	Time    time.Time           `json:"time"`
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Headers map[string][]string `json:"headers"`
	// Body is the JSON document, or a JSON string holding the body.
	Body json.RawMessage `json:"body"`
	// Verified is nil when no --secret was given.
	Verified *bool  `json:"verified,omitempty"`
	Error    string `json:"error,omitempty"`
	Status   int    `json:"status"`
	Saved    string `json:"saved,omitempty"`

	body []byte
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &requestRecord{Time: rc.now().UTC(), Method: r.Method, Path: r.URL.RequestURI(), Headers: r.Header}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	rec.body = body
	switch {
	case err != nil:
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			rec.Status, rec.Error = http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", maxBodyBytes)
		} else {
			rec.Status, rec.Error = http.StatusBadRequest, "reading the body: "+err.Error()
		}
		rc.begin(rec, false)
	case rc.path != "/" && r.URL.Path != rc.path:
		rec.Status = http.StatusNotFound
		rec.Error = "not the --path " + rc.path
		rc.begin(rec, false)
	default:
		if rc.verifier != nil {
			err := rc.verifier.Verify(body, r.Header)
			ok := err == nil
			rec.Verified = &ok
			if err != nil {
				rec.Error = err.Error()
			}
		}
		rc.begin(rec, true)
		rc.saveRequest(rec, r, body)
	}
	rc.print(rec)
	rc.answer(w, rec.Status)
}

// begin numbers the request and, when scripted, takes its status.
func (rc *receiver) begin(rec *requestRecord, scripted bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.seq++
	rec.Seq = rc.seq
	if scripted {
		rec.Status = rc.statuses[0]
		if len(rc.statuses) > 1 {
			rc.statuses = rc.statuses[1:]
		}
	}
}

func (rc *receiver) answer(w http.ResponseWriter, status int) {
	if rc.retryAfter > 0 && (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) {
		secs := int64((rc.retryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	if status >= 400 {
		fmt.Fprintf(w, "%d %s (outhook listen)\n", status, http.StatusText(status))
	} else if status != http.StatusNoContent && status != http.StatusNotModified {
		fmt.Fprintln(w, "ok")
	}
}

// saveRequest writes the request to the --save directory.
func (rc *receiver) saveRequest(rec *requestRecord, r *http.Request, body []byte) {
	if rc.saveDir == "" {
		return
	}
	name, err := rc.save(r, body)
	if err != nil {
		fmt.Fprintf(rc.errOut, "outhook: listen: saving request %d: %v\n", rec.Seq, err)
		return
	}
	rec.Saved = name
}

// save writes the request to a new file of the --save directory, numbered
// after the files there. The number is looked for at each request, and the
// file created only if new (O_EXCL), the next number taken otherwise: two
// listen runs saving to one directory do not overwrite each other's files.
func (rc *receiver) save(r *http.Request, body []byte) (string, error) {
	dump, err := dumpRequest(r, body)
	if err != nil {
		return "", err
	}
	rc.saveMu.Lock()
	defer rc.saveMu.Unlock()
	n, err := lastSaved(rc.saveDir)
	if err != nil {
		return "", err
	}
	for {
		n++
		name := filepath.Join(rc.saveDir, fmt.Sprintf("%04d-%s.http", n, fileID(r.Header.Get(webhook.HeaderID))))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		_, err = f.Write(dump)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return name, err
	}
}

// lastSaved returns the highest number of the NNNN-*.http files in dir.
func lastSaved(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	last := 0
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "-")
		if n, err := strconv.Atoi(num); ok && err == nil && strings.HasSuffix(e.Name(), ".http") {
			last = max(last, n)
		}
	}
	return last, nil
}

// dumpRequest returns r in HTTP/1.1 wire format with body, framed by a
// Content-Length whatever the sender's framing was, so that
// http.ReadRequest reads it back.
func dumpRequest(r *http.Request, body []byte) ([]byte, error) {
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	r2.TransferEncoding = nil
	r2.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return httputil.DumpRequest(r2, true)
}

// fileID makes a webhook-id safe to use in a file name.
func fileID(id string) string {
	if id == "" {
		return "no-id"
	}
	b := []byte(id)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b[:min(len(b), 64)])
}

func (rc *receiver) print(rec *requestRecord) {
	var b bytes.Buffer
	if rc.json {
		rec.Body = jsonBody(rec.body)
		line, err := json.Marshal(rec)
		if err != nil { // cannot happen: every field marshals
			line = fmt.Appendf(nil, `{"seq":%d,"error":%q}`, rec.Seq, err.Error())
		}
		b.Write(line)
		b.WriteByte('\n')
	} else {
		writeRecord(&b, rec)
	}
	_, _ = rc.out.Write(b.Bytes())
}

// jsonBody is the body as a JSON value: itself when it is JSON, otherwise
// a string.
func jsonBody(body []byte) json.RawMessage {
	if len(bytes.TrimSpace(body)) > 0 && json.Valid(body) {
		return body
	}
	s, _ := json.Marshal(string(body)) // invalid UTF-8 becomes U+FFFD
	return s
}

// writeRecord writes rec for people, what comes from the request escaped by
// printable.
func writeRecord(b *bytes.Buffer, rec *requestRecord) {
	fmt.Fprintf(b, "#%d %s %s %s\n", rec.Seq, rec.Time.Format(time.RFC3339Nano), printable(rec.Method, false), printable(rec.Path, false))
	names := make([]string, 0, len(rec.Headers))
	for name := range rec.Headers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		for _, v := range rec.Headers[name] {
			fmt.Fprintf(b, "  %s: %s\n", printable(name, false), printable(v, false))
		}
	}
	writeBody(b, rec.body)
	errText := printable(rec.Error, false)
	switch {
	case rec.Verified == nil && rec.Error != "":
		fmt.Fprintf(b, "  error: %s\n", errText)
	case rec.Verified == nil:
		b.WriteString("  signature: not checked (no --secret)\n")
	case *rec.Verified:
		b.WriteString("  signature: verified\n")
	default:
		fmt.Fprintf(b, "  signature: NOT verified: %s\n", errText)
	}
	if rec.Saved != "" {
		fmt.Fprintf(b, "  saved: %s\n", rec.Saved)
	}
	fmt.Fprintf(b, "  answered: %d %s\n\n", rec.Status, http.StatusText(rec.Status))
}

// writeBody writes a body indented: pretty JSON, text cut after
// maxShownBody bytes, or "(not text)" for binary data, escaped by
// printable.
func writeBody(b *bytes.Buffer, body []byte) {
	if len(body) == 0 {
		b.WriteString("  body: empty\n")
		return
	}
	fmt.Fprintf(b, "  body (%d bytes):\n", len(body))
	var pretty bytes.Buffer
	switch {
	case json.Valid(body) && json.Indent(&pretty, body, "", "  ") == nil:
		writeIndented(b, pretty.String())
	case !utf8.Valid(body):
		b.WriteString("  (not text)\n")
	default:
		shown := body[:min(len(body), maxShownBody)]
		for !utf8.Valid(shown) { // do not cut a character
			shown = shown[:len(shown)-1]
		}
		writeIndented(b, strings.ReplaceAll(string(shown), "\r\n", "\n"))
		if n := len(body) - len(shown); n > 0 {
			fmt.Fprintf(b, "  ... (%d more bytes)\n", n)
		}
	}
}

// writeIndented writes text, escaped by printable, with each line
// indented by two spaces.
func writeIndented(b *bytes.Buffer, text string) {
	b.WriteString("  ")
	b.WriteString(strings.ReplaceAll(printable(strings.TrimRight(text, "\r\n"), true), "\n", "\n  "))
	b.WriteByte('\n')
}
