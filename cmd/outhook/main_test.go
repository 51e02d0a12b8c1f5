package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitTimeout bounds every wait of these tests.
const waitTimeout = 10 * time.Second

// result is what a command line did.
type result struct {
	code           int
	stdout, stderr string
}

// runCmd runs the command line args with stdin and the environment env.
func runCmd(t *testing.T, stdin string, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), args, strings.NewReader(stdin), &stdout, &stderr, func(k string) string { return env[k] })
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// syncBuffer is an output a command writes to while the test reads it.
type syncBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{} // signalled after each write
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{wrote: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	n, err := s.b.Write(p)
	s.mu.Unlock()
	select {
	case s.wrote <- struct{}{}:
	default:
	}
	return n, err
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until the output contains want, or done is closed, or the
// wait times out, and returns the output.
func (s *syncBuffer) waitFor(t *testing.T, want string, done <-chan struct{}) string {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		if out := s.String(); strings.Contains(out, want) {
			return out
		}
		select {
		case <-s.wrote:
		case <-done:
			if out := s.String(); strings.Contains(out, want) {
				return out
			}
			t.Fatalf("the command ended before writing %q; output:\n%s", want, s.String())
		case <-timer.C:
			t.Fatalf("no %q in the output after %s; output:\n%s", want, waitTimeout, s.String())
		}
	}
}

// commands returns the command paths of the tree under c, c included.
func commands(c *cobra.Command, parent []string) [][]string {
	path := append(parent[:len(parent):len(parent)], c.Name())
	out := [][]string{path}
	for _, sub := range c.Commands() {
		out = append(out, commands(sub, path)...)
	}
	return out
}

func TestHelpOfEveryCommand(t *testing.T) {
	root := newRootCmd(nil, nil, nil, nil)
	paths := commands(root, nil)
	require.GreaterOrEqual(t, len(paths), 15, "the tree: %v", paths)
	for _, path := range paths {
		args := path[1:] // without "outhook"
		t.Run(strings.Join(path, " "), func(t *testing.T) {
			cmd, _, err := root.Find(args)
			require.NoError(t, err)
			require.NotEmpty(t, cmd.Short, "Short")
			require.NotEmpty(t, cmd.Long, "Long")
			require.NotEmpty(t, cmd.Example, "Example")

			r := runCmd(t, "", nil, append(args, "--help")...)
			require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
			require.Contains(t, r.stdout, "Usage:")
			require.Contains(t, r.stdout, strings.Join(path, " "))
			require.Contains(t, r.stdout, "Examples:")
			require.Empty(t, r.stderr)

			h := runCmd(t, "", nil, append([]string{"help"}, args...)...)
			require.Equal(t, 0, h.code, "stderr: %s", h.stderr)
			require.Equal(t, r.stdout, h.stdout, "help %s is %[1]s --help", strings.Join(args, " "))
			require.Empty(t, h.stderr)
		})
	}
	// cobra's own commands.
	for _, args := range [][]string{{"help", "help"}, {"help", "completion"}, {"help", "completion", "bash"}, {"completion", "bash"}, {"completion", "zsh"}} {
		r := runCmd(t, "", nil, args...)
		require.Equal(t, 0, r.code, "%v: stderr: %s", args, r.stderr)
		require.NotEmpty(t, r.stdout, "%v", args)
		require.Empty(t, r.stderr, "%v", args)
	}
	r := runCmd(t, "", nil, "help")
	require.Contains(t, r.stdout, "completion  print a shell completion script", "documented")
}

func TestRootHelpDocumentsExitCodes(t *testing.T) {
	r := runCmd(t, "", nil)
	require.Equal(t, 0, r.code)
	for _, want := range []string{"Exit codes:", "0  success", "1  the operation ran and failed", "2  usage error", "OUTHOOK_ADMIN_URL", "OUTHOOK_TOKEN"} {
		require.Contains(t, r.stdout, want)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"bogus"},
		{"admin", "bogus"},
		{"secret", "bogus"},
		{"listen", "--bogus"},
		{"listen", "extra"},
		{"listen", "--port", "x"},
		{"verify", "extra", "--secret", "whsec_x"},
		{"secret", "new", "--type", "v2"},
		{"admin", "deliveries", "get"},
		{"admin", "subscriptions", "get", "a", "b"},
		{"help", "bogus"},
		{"help", "admin", "bogus"},
		{"help", "listen", "extra"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := runCmd(t, "", nil, args...)
			require.Equal(t, 2, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
			require.Empty(t, r.stdout)
			require.True(t, strings.HasPrefix(r.stderr, "outhook: "), "stderr: %q", r.stderr)
			require.Contains(t, r.stderr, "--help")
			require.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line: %q", r.stderr)
		})
	}
}

func TestGroupWithoutSubcommandPrintsHelp(t *testing.T) {
	r := runCmd(t, "", nil, "admin")
	require.Equal(t, 0, r.code)
	require.Contains(t, r.stdout, "Available Commands:")
	require.Contains(t, r.stdout, "deliveries")
}

func TestPrintable(t *testing.T) {
	for _, c := range []struct{ in, line, text string }{
		{"plain: é, 日本, \t tab", "plain: é, 日本, \t tab", "plain: é, 日本, \t tab"},
		{"a\nb", `a\x0ab`, "a\nb"},
		{"\x1b[2J\x00\x7f\r", `\x1b[2J\x00\x7f\x0d`, `\x1b[2J\x00\x7f\x0d`},
		{"\u0085\u009b31m", `\u0085\u009b31m`, `\u0085\u009b31m`},
		{"\u202atxt\u202e\u2066\u2069", `\u202atxt\u202e\u2066\u2069`, `\u202atxt\u202e\u2066\u2069`},
		{"bad \xff\xc3 utf-8 \ufffd", `bad \xff\xc3 utf-8 ` + "\ufffd", `bad \xff\xc3 utf-8 ` + "\ufffd"},
	} {
		require.Equal(t, c.line, printable(c.in, false), "%q", c.in)
		require.Equal(t, c.text, printable(c.in, true), "%q", c.in)
		require.Equal(t, c.line, printable(printable(c.in, false), false), "%q: idempotent", c.in)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8080/api":          "http://127.0.0.1:8080/api",
		"https://ops:s3cret@example.com/api": "https://xxxxx@example.com/api",
		"http://tok@en@example.com/a@b":      "http://xxxxx@example.com/a@b",
		"ops:s3cret@example.com:8080":        "xxxxx@example.com:8080",
		"http://example.com/x?u=a@b":         "http://example.com/x?u=a@b",
	} {
		require.Equal(t, want, redactURL(in), in)
	}
}
