package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outhook/outhook/webhook"
	"github.com/stretchr/testify/require"
)

// listener is an "outhook listen" running in the background.
type listener struct {
	url    string // http://127.0.0.1:PORT/PATH, as printed
	base   string // http://127.0.0.1:PORT
	out    *syncBuffer
	errOut *syncBuffer
	stop   func() int // cancels the command and returns its exit code
	http   *http.Client
}

var listeningLine = regexp.MustCompile(`^listening on ((http://127\.0\.0\.1:\d+)/\S*)\n`)

// startListen runs "outhook listen --port 0 args..." until the test ends
// or stop is called.
func startListen(t *testing.T, args ...string) *listener {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &listener{out: newSyncBuffer(), errOut: newSyncBuffer(),
		http: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: waitTimeout}}
	done := make(chan struct{})
	var code int
	go func() {
		defer close(done)
		code = run(ctx, append([]string{"listen", "--port", "0"}, args...), strings.NewReader(""), l.out, l.errOut, func(string) string { return "" })
	}()
	stopped := false
	l.stop = func() int {
		t.Helper()
		if !stopped {
			stopped = true
			cancel()
			select {
			case <-done:
			case <-time.After(waitTimeout):
				t.Fatal("listen did not stop")
			}
		}
		return code
	}
	t.Cleanup(func() { l.stop() })
	out := l.out.waitFor(t, "\n", done)
	m := listeningLine.FindStringSubmatch(out)
	require.NotNil(t, m, "first line: %q", out)
	l.url, l.base = m[1], m[2]
	return l
}

// send posts body to the listener with the given headers (name, value
// pairs) and returns the status and the answer's body.
func (l *listener) send(t *testing.T, path string, body []byte, headers ...string) (int, string, http.Header) {
	t.Helper()
	u := l.base + path
	req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := l.http.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(answer), resp.Header
}

// signed returns the Standard Webhooks headers of a message signed with
// keys at ts.
func signed(t *testing.T, id string, ts time.Time, body []byte, keys ...string) []string {
	t.Helper()
	sig, err := webhook.Sign(id, ts, body, keys...)
	require.NoError(t, err)
	return []string{webhook.HeaderID, id, webhook.HeaderTimestamp, unixText(ts), webhook.HeaderSignature, sig}
}

func unixText(ts time.Time) string { return strconv.FormatInt(ts.Unix(), 10) }

// keys returns a v1 secret and a v1a signing key with its public key.
func keys(t *testing.T) (secret, signingKey, publicKey string) {
	t.Helper()
	secret, err := webhook.NewSecret()
	require.NoError(t, err)
	signingKey, publicKey, err = webhook.NewSigningKey()
	require.NoError(t, err)
	return secret, signingKey, publicKey
}

// record returns the printed record of request seq.
func record(t *testing.T, out string, seq int) string {
	t.Helper()
	start := strings.Index(out, "\n#"+strconv.Itoa(seq)+" ")
	require.GreaterOrEqual(t, start, 0, "no request %d in:\n%s", seq, out)
	rec := out[start+1:]
	if end := strings.Index(rec, "\n\n"); end >= 0 {
		rec = rec[:end]
	}
	return rec
}

func TestListenVerifiesSignatures(t *testing.T) {
	secret, signingKey, publicKey := keys(t)
	other, _, _ := keys(t)
	l := startListen(t, "--secret", secret, "--secret", publicKey)
	body := []byte(`{"type":"incident.created","data":{"id":"inc_1","n":1}}`)
	now := time.Now()

	cases := []struct {
		name    string
		headers []string
		want    string
	}{
		{"v1", signed(t, "msg_v1", now, body, secret), "  signature: verified\n"},
		{"v1a", signed(t, "msg_v1a", now, body, signingKey), "  signature: verified\n"},
		{"wrong secret", signed(t, "msg_bad", now, body, other), "  signature: NOT verified: webhook: no matching signature"},
		{"unsigned", nil, "  signature: NOT verified: webhook: missing headers: webhook-id, webhook-timestamp, webhook-signature\n"},
	}
	for _, c := range cases {
		status, _, _ := l.send(t, "/", body, c.headers...)
		require.Equal(t, http.StatusOK, status, c.name)
	}
	out := l.out.String() // each request is printed before it is answered
	for i, c := range cases {
		rec := record(t, out, i+1)
		require.Contains(t, rec, c.want, c.name)
		require.Contains(t, rec, " POST /\n")
		require.Contains(t, rec, "  answered: 200 OK")
		// Pretty JSON, indented under the request.
		require.Contains(t, rec, "  body (55 bytes):\n  {\n    \"type\": \"incident.created\",\n    \"data\": {\n      \"id\": \"inc_1\",\n      \"n\": 1\n    }\n  }\n")
	}
	// Headers are sorted.
	rec := record(t, out, 1)
	require.Regexp(t, `(?s)Content-Type: application/json\n.*Webhook-Id: msg_v1\n.*Webhook-Signature: v1,.*\n.*Webhook-Timestamp: \d+\n`, rec)

	require.Equal(t, 0, l.stop())
	require.Empty(t, l.errOut.String())
}

func TestListenWithoutSecretPrintsText(t *testing.T) {
	l := startListen(t, "--path", "/hooks")
	status, _, _ := l.send(t, "/hooks", []byte("plain text\nsecond line"))
	require.Equal(t, http.StatusOK, status)
	status, answer, _ := l.send(t, "/elsewhere", []byte("{}"))
	require.Equal(t, http.StatusNotFound, status)
	require.Contains(t, answer, "404 Not Found")

	out := l.out.String()
	require.True(t, strings.HasPrefix(out, "listening on http://127.0.0.1:"), out)
	require.True(t, strings.HasSuffix(l.url, "/hooks"), l.url)
	rec := record(t, out, 1)
	require.Contains(t, rec, "  body (22 bytes):\n  plain text\n  second line\n")
	require.Contains(t, rec, "  signature: not checked (no --secret)\n")
	rec = record(t, out, 2)
	require.Contains(t, rec, "POST /elsewhere")
	require.Contains(t, rec, "  error: not the --path /hooks\n")
	require.Contains(t, rec, "  answered: 404 Not Found")
}

func TestListenScript(t *testing.T) {
	l := startListen(t, "--script", "500,503,200", "--retry-after", "1500ms")
	var got []int
	for range 4 {
		status, answer, h := l.send(t, "/", []byte(`{}`))
		got = append(got, status)
		switch status {
		case http.StatusInternalServerError:
			require.Equal(t, "500 Internal Server Error (outhook listen)\n", answer)
			require.Empty(t, h.Get("Retry-After"), "Retry-After only on 429 and 503")
		case http.StatusServiceUnavailable:
			require.Equal(t, "2", h.Get("Retry-After"), "rounded up to whole seconds")
		}
	}
	require.Equal(t, []int{500, 503, 200, 200}, got, "the last status repeats")
}

func TestListenStatus(t *testing.T) {
	l := startListen(t, "--status", "202")
	for range 2 {
		status, _, _ := l.send(t, "/", []byte(`{}`))
		require.Equal(t, http.StatusAccepted, status)
	}
}

func TestListenBodyTooLarge(t *testing.T) {
	l := startListen(t)
	status, _, _ := l.send(t, "/", bytes.Repeat([]byte("a"), maxBodyBytes+1))
	require.Equal(t, http.StatusRequestEntityTooLarge, status)
	require.Contains(t, record(t, l.out.String(), 1), "  error: body larger than 5242880 bytes\n")
}

func TestListenJSON(t *testing.T) {
	secret, _, _ := keys(t)
	l := startListen(t, "--json", "--secret", secret, "--script", "500,200")
	body := []byte(`{"type":"t","data":{"a":[1,2]}}`)
	l.send(t, "/", body, signed(t, "msg_1", time.Now(), body, secret)...)
	l.send(t, "/", []byte("not json"))

	lines := strings.Split(strings.TrimSpace(l.out.String()), "\n")
	require.Len(t, lines, 3, "the listening line and one line per request")
	var recs [2]struct {
		Seq      int                 `json:"seq"`
		Method   string              `json:"method"`
		Path     string              `json:"path"`
		Headers  map[string][]string `json:"headers"`
		Body     json.RawMessage     `json:"body"`
		Verified *bool               `json:"verified"`
		Error    string              `json:"error"`
		Status   int                 `json:"status"`
		Time     time.Time           `json:"time"`
	}
	for i := range recs {
		require.NoError(t, json.Unmarshal([]byte(lines[i+1]), &recs[i]), lines[i+1])
	}
	require.Equal(t, 1, recs[0].Seq)
	require.Equal(t, "POST", recs[0].Method)
	require.Equal(t, "/", recs[0].Path)
	require.Equal(t, []string{"msg_1"}, recs[0].Headers["Webhook-Id"])
	require.JSONEq(t, string(body), string(recs[0].Body))
	require.NotNil(t, recs[0].Verified)
	require.True(t, *recs[0].Verified)
	require.Empty(t, recs[0].Error)
	require.Equal(t, 500, recs[0].Status)
	require.False(t, recs[0].Time.IsZero())

	require.Equal(t, `"not json"`, string(recs[1].Body))
	require.NotNil(t, recs[1].Verified)
	require.False(t, *recs[1].Verified)
	require.Contains(t, recs[1].Error, "missing headers")
	require.Equal(t, 200, recs[1].Status)
}

func TestListenSaveThenVerify(t *testing.T) {
	secret, signingKey, publicKey := keys(t)
	dir := filepath.Join(t.TempDir(), "requests")
	l := startListen(t, "--save", dir, "--secret", secret)
	body := []byte(`{"type":"incident.created","data":{"severity":"critical"}}`)
	status, _, _ := l.send(t, "/", body, signed(t, "msg_2x/9", time.Now(), body, secret, signingKey)...)
	require.Equal(t, http.StatusOK, status)

	name := filepath.Join(dir, "0001-msg_2x_9.http")
	require.Contains(t, record(t, l.out.String(), 1), "  saved: "+name+"\n")
	saved, err := os.ReadFile(name)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(saved), "POST / HTTP/1.1\r\n"), "%q", saved)

	for _, key := range []string{secret, publicKey} {
		r := runCmd(t, string(saved), nil, "verify", "--secret", key)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		require.Contains(t, r.stdout, "verified: webhook-id msg_2x/9")
	}

	tampered := strings.Replace(string(saved), "critical", "critica1", 1)
	require.NotEqual(t, string(saved), tampered)
	r := runCmd(t, tampered, nil, "verify", "--secret", secret)
	require.Equal(t, 1, r.code)
	require.Empty(t, r.stdout)
	require.Contains(t, r.stderr, "outhook: not verified: webhook: no matching signature")

	// A second run in the same directory keeps the first run's files.
	require.Equal(t, 0, l.stop())
	l = startListen(t, "--save", dir)
	l.send(t, "/", []byte(`{}`)) // unsigned
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 2)
	require.Equal(t, "0002-no-id.http", entries[1].Name())
}

func TestListenPortInUse(t *testing.T) {
	l := startListen(t)
	port := l.base[strings.LastIndex(l.base, ":")+1:]
	r := runCmd(t, "", nil, "listen", "--port", port)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "outhook: cannot listen on 127.0.0.1:"+port+": ")
	require.Contains(t, r.stderr, "address already in use")
}

func TestListenBadFlags(t *testing.T) {
	_, signingKey, _ := keys(t)
	for _, args := range [][]string{
		{"--script", "500,abc"},
		{"--script", "500,99"},
		{"--script", ""},
		{"--status", "600"},
		{"--status", "200", "--script", "500"},
		{"--secret", signingKey}, // the private key: receivers need the public one
		{"--secret", "whsec_short"},
		{"--path", "hooks"},
		{"--port", "70000"},
		{"--retry-after", "-1s"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			// Run in the background: should listen start, the test fails
			// rather than waiting for it.
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			out, errOut := newSyncBuffer(), newSyncBuffer()
			done := make(chan int, 1)
			go func() {
				done <- run(ctx, append([]string{"listen", "--port", "0"}, args...), strings.NewReader(""), out, errOut, func(string) string { return "" })
			}()
			select {
			case code := <-done:
				require.Equal(t, 2, code, "stderr: %s", errOut)
				require.Empty(t, out.String(), "nothing listens")
				require.True(t, strings.HasPrefix(errOut.String(), "outhook: "), errOut.String())
			case <-out.wrote:
				cancel()
				<-done
				t.Fatalf("listen started: %s", out)
			case <-time.After(waitTimeout):
				t.Fatal("listen did not end")
			}
		})
	}
}

func TestListenEscapesControls(t *testing.T) {
	l := startListen(t)
	l.send(t, "/", []byte("hi \x1b[2J\u202e there\r\nline2\x7f\rover"), "X-Evil", "a\u009b31mb")
	l.send(t, "/", []byte("{\"name\":\"\u2066x\u2069\"}")) // raw bidi controls: valid JSON
	out := l.out.String()
	rec := record(t, out, 1)
	require.Contains(t, rec, "\n  hi \\x1b[2J\\u202e there\n  line2\\x7f\\x0dover\n", "CRLF is a line end; a lone CR is escaped")
	require.Contains(t, rec, "\n  X-Evil: a\\u009b31mb\n")
	require.Contains(t, record(t, out, 2), "\n  {\n    \"name\": \"\\u2066x\\u2069\"\n  }\n", "in JSON too")
	for _, c := range []string{"\x1b", "\x7f", "\r", "\u009b", "\u202e", "\u2066"} {
		require.NotContains(t, out, c)
	}
}

func TestListenErrorAnswersTakeNoScriptStep(t *testing.T) {
	l := startListen(t, "--path", "/hooks", "--script", "500,200")
	status, _, _ := l.send(t, "/elsewhere", []byte(`{}`))
	require.Equal(t, http.StatusNotFound, status)
	status, _, _ = l.send(t, "/hooks", bytes.Repeat([]byte("a"), maxBodyBytes+1))
	require.Equal(t, http.StatusRequestEntityTooLarge, status)
	status, _, _ = l.send(t, "/hooks", []byte(`{}`))
	require.Equal(t, http.StatusInternalServerError, status, "the script's first step")
	status, _, _ = l.send(t, "/hooks", []byte("\xff\xfe"))
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, record(t, l.out.String(), 4), "  body (2 bytes):\n  (not text)\n")
}

func TestListenSaveTwoRunsOneDir(t *testing.T) {
	dir := t.TempDir()
	a, b := startListen(t, "--save", dir), startListen(t, "--save", dir)
	for _, s := range []struct {
		l    *listener
		id   string
		seq  int
		want string
	}{{a, "a1", 1, "0001-a1.http"}, {b, "b1", 1, "0002-b1.http"}, {a, "a2", 2, "0003-a2.http"}} {
		status, _, _ := s.l.send(t, "/", []byte(`{}`), webhook.HeaderID, s.id)
		require.Equal(t, http.StatusOK, status)
		require.Contains(t, record(t, s.l.out.String(), s.seq), "  saved: "+filepath.Join(dir, s.want)+"\n")
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	require.Equal(t, []string{"0001-a1.http", "0002-b1.http", "0003-a2.http"}, names)
}
